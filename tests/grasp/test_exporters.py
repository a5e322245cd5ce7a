import numpy as np
import pytest

from graspseg.core import BASE, ConfigError, ShapeError
from graspseg.grasp import exporters as ex

from .helpers import make_set, pose

# A grasp 0.5 m in front of the camera, approaching along the optical axis (+z), closing along +x.
IDENTITY = pose(np.eye(3), [0.1, 0.2, 0.5])
# The same point, approaching along camera +x and closing along camera +y (so y_grasp = z × x = camera +z).
SIDEWAYS = pose(np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], float), [0.1, 0.2, 0.5])


def test_graspnet_rows_hand_checked():
    s = make_set([IDENTITY, SIDEWAYS], [0.04, 0.05], scores=[0.9, 0.6])
    rows = ex.to_graspnet_array(s, depth_m=0.02, object_id=7)
    assert rows.shape == (2, 17)
    # graspnetAPI: approach = x axis of R, closing = y axis; t is `depth` behind the fingertips
    # width = the finger opening (the helper's opening is the width + 1 cm), not the object width
    np.testing.assert_allclose(rows[0, :4], [0.9, 0.05, 0.02, 0.02])
    np.testing.assert_allclose(rows[0, 4:13], [0, 1, 0, 0, 0, 1, 1, 0, 0])  # columns (z, x, y) of identity
    np.testing.assert_allclose(rows[0, 13:16], [0.1, 0.2, 0.48])
    assert rows[0, 16] == 7
    r1 = rows[1, 4:13].reshape(3, 3)
    np.testing.assert_allclose(r1[:, 0], [1, 0, 0])  # approach = camera +x
    np.testing.assert_allclose(r1[:, 1], [0, 1, 0])  # closing = camera +y
    np.testing.assert_allclose(rows[1, 13:16], [0.08, 0.2, 0.5])


def test_graspnet_round_trip_and_contact_depth():
    s = make_set([IDENTITY, SIDEWAYS], [0.04, 0.05])
    rows = ex.to_graspnet_array(s)
    np.testing.assert_allclose(rows[:, 3], [0.01, 0.01])  # the helper's contacts sit 1 cm behind the tips
    back = ex.from_graspnet_array(rows)
    np.testing.assert_allclose(back["poses"], s.camera_from_grasp, atol=1e-12)
    np.testing.assert_allclose(back["opening_m"], [0.05, 0.06])
    with pytest.raises(ShapeError, match=r"\(N, 17\)"):
        ex.from_graspnet_array(np.zeros((2, 16)))


def _build_6d_grasp(contact_pts, baseline_dirs, approach_dirs, widths, gripper_depth=0.1034):
    """Contact-GraspNet's and M2T2's published decoding (``build_6d_grasp``), re-implemented in numpy:
    R = [baseline, approach × baseline, approach], t = contact + width/2 · baseline − gripper_depth · approach."""
    n = len(contact_pts)
    out = np.tile(np.eye(4), (n, 1, 1))
    out[:, :3, 0] = baseline_dirs
    out[:, :3, 1] = np.cross(approach_dirs, baseline_dirs)
    out[:, :3, 2] = approach_dirs
    out[:, :3, 3] = contact_pts + widths[:, None] / 2 * baseline_dirs - gripper_depth * approach_dirs
    return out


FRANKA_FLANGE_TO_TIPS_M = 0.1034 + 0.0086  # panda_hand -> panda_hand_tcp -> fingertips (franka_hand.yaml)


def test_contact_graspnet_exports_the_planned_pose_and_follows_its_decoding_rule():
    s = make_set([IDENTITY, SIDEWAYS], [0.04, 0.05])
    d = ex.to_contact_graspnet(s)
    assert set(d) == {"pred_grasps_cam", "scores", "contact_pts", "gripper_openings"}
    np.testing.assert_allclose(d["gripper_openings"], [0.04, 0.05])
    # the rule t = c + w/2 x - 0.1034 z holds exactly
    decoded = _build_6d_grasp(d["contact_pts"], s.camera_from_grasp[:, :3, 0], s.camera_from_grasp[:, :3, 2],
                              d["gripper_openings"])
    np.testing.assert_allclose(d["pred_grasps_cam"], decoded, atol=1e-12)
    # the pose is the planned hand: the Panda hand frame 0.112 m behind our fingertips, whatever the contact depth
    # (the helper's contacts sit 1 cm behind the tips; an export that put the pads on the contacts moved the hand)
    np.testing.assert_allclose(d["pred_grasps_cam"][0][:3, 3], [0.1, 0.2, 0.5 - FRANKA_FLANGE_TO_TIPS_M])
    np.testing.assert_allclose(d["pred_grasps_cam"][1][:3, 3], [0.1 - FRANKA_FLANGE_TO_TIPS_M, 0.2, 0.5])
    tips = d["pred_grasps_cam"][:, :3, 3] + FRANKA_FLANGE_TO_TIPS_M * d["pred_grasps_cam"][:, :3, 2]
    np.testing.assert_allclose(tips, s.camera_from_grasp[:, :3, 3], atol=1e-12)
    # hand checked: the contact is the -x contact moved along the finger onto the pad baseline (the TCP's depth)
    np.testing.assert_allclose(d["contact_pts"][0], [0.08, 0.2, 0.5 - 0.0086])
    np.testing.assert_allclose(d["contact_pts"][1], [0.1 - 0.0086, 0.175, 0.5])
    back = ex.from_contact_graspnet(d["pred_grasps_cam"], d["gripper_openings"])
    np.testing.assert_allclose(back["poses"], s.camera_from_grasp, atol=1e-12)
    np.testing.assert_allclose(back["width_m"], s.width_m)


def test_contact_graspnet_export_of_planned_grasps_keeps_the_checked_pose():
    """On grasps the planner made (contacts anywhere along the fingers), the exported hand is the checked hand and
    the decoded contacts lie on the pads at the measured width."""
    from graspseg.grasp import GraspConfig, load_gripper, plan_grasps

    from .scenes import Scene, box

    franka = load_gripper("franka_hand")
    sc = Scene([box((0.05, 0.08, 0.10), yaw_deg=25.0)], tilt_deg=35.0)
    gs = plan_grasps(sc.frame, sc.cloud(), None, franka, boundary_error_px=2.0).accepted_only()
    assert len(gs) >= 3
    d = ex.to_contact_graspnet(gs)
    poses = d["pred_grasps_cam"]
    np.testing.assert_allclose(poses[:, :3, :3], gs.camera_from_grasp[:, :3, :3], atol=1e-12)
    np.testing.assert_allclose(poses[:, :3, 3] + franka.flange_to_fingertip_m * poses[:, :3, 2],
                               gs.camera_from_grasp[:, :3, 3], atol=1e-9)
    # the contact: on the pad baseline through the TCP, half the measured width from the hand centre
    local = np.einsum("nij,ni->nj", gs.camera_from_grasp[:, :3, :3], d["contact_pts"] - gs.camera_from_grasp[:, :3, 3])
    np.testing.assert_allclose(local[:, 0], -0.5 * gs.width_m, atol=1e-9)
    np.testing.assert_allclose(local[:, 1:], np.tile([0.0, -franka.tcp_offset_m], (len(gs), 1)), atol=1e-9)
    # ... which is the planner's -x contact, moved along the finger (and across by the unseen-side allowance, when
    # the hand sits off the contacts' midpoint)
    mine = np.einsum("nij,ni->nj", gs.camera_from_grasp[:, :3, :3],
                     gs.contacts_in_camera[:, 0] - gs.camera_from_grasp[:, :3, 3])
    assert (np.abs(mine[:, 0] - local[:, 0]) <= GraspConfig().unseen_clearance_m / 2 + 1e-6).all()


def test_m2t2_keys_and_decoding_rule():
    b = pose(np.eye(3), [1.0, 0.0, 0.0])
    s = make_set([IDENTITY, SIDEWAYS], [0.04, 0.05], base_from_camera=b)
    d = ex.to_m2t2(s)
    assert set(d) == {"grasps", "grasp_confidence", "grasp_contacts"}
    decoded = _build_6d_grasp(d["grasp_contacts"], s.base_from_grasp[:, :3, 0], s.base_from_grasp[:, :3, 2],
                              s.width_m)
    np.testing.assert_allclose(d["grasps"], decoded, atol=1e-12)
    np.testing.assert_allclose(d["grasps"][0][:3, 3], [1.1, 0.2, 0.5 - FRANKA_FLANGE_TO_TIPS_M])
    np.testing.assert_allclose(d["grasp_contacts"][0], [1.08, 0.2, 0.5 - 0.0086])
    np.testing.assert_allclose(d["grasp_confidence"], s.score)
    cam = ex.to_m2t2(s, frame="camera_color_optical")
    np.testing.assert_allclose(cam["grasps"], ex.to_contact_graspnet(s)["pred_grasps_cam"])


def test_base_frame_export_and_errors():
    b = pose(np.eye(3), [1.0, 0.0, 0.0])
    s = make_set([IDENTITY], [0.04], base_from_camera=b)
    d = ex.to_contact_graspnet(s, frame=BASE)
    np.testing.assert_allclose(d["pred_grasps_cam"][0][:3, 3], [1.1, 0.2, 0.5 - FRANKA_FLANGE_TO_TIPS_M])
    np.testing.assert_allclose(d["contact_pts"][0], [1.08, 0.2, 0.5 - 0.0086])
    # GraspGen-style: origin at a base link d behind the fingertips, no TCP offset
    gg = ex.to_contact_graspnet(s, gripper_depth_m=0.15, tcp_offset_m=0.0)
    np.testing.assert_allclose(gg["pred_grasps_cam"][0][:3, 3], [0.1, 0.2, 0.35])
    with pytest.raises(ShapeError, match="no base_from_grasp"):
        ex.to_graspnet_array(make_set([IDENTITY], [0.04]), frame=BASE)
    with pytest.raises(ConfigError, match="export frame must be"):
        ex.to_plain_dict(s, frame="tcp")
    from dataclasses import replace

    with pytest.raises(ConfigError, match="pass tcp_offset_m"):
        ex.to_m2t2(replace(s, gripper="my_custom_hand"))


def _graspnet_api():
    """graspnetAPI's GraspGroup without its evaluation toolkit (whose package __init__ needs autolab_core)."""
    import importlib.util
    import sys
    import types

    spec = importlib.util.find_spec("graspnetAPI")
    if spec is None:
        pytest.skip("graspnetAPI not installed (make test installs it with --no-deps)")
    if "graspnetAPI" not in sys.modules:
        pkg = types.ModuleType("graspnetAPI")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["graspnetAPI"] = pkg
    pytest.importorskip("open3d")
    from graspnetAPI.grasp import GraspGroup

    return GraspGroup


def test_graspnet_export_read_by_graspnetapi_puts_the_fingers_at_the_opening():
    GraspGroup = _graspnet_api()
    s = make_set([IDENTITY, SIDEWAYS], [0.04, 0.05])
    gg = GraspGroup(ex.to_graspnet_array(s))
    np.testing.assert_allclose(gg.widths, s.opening_m)
    for i in range(len(s)):
        g = gg[i]
        verts = np.asarray(g.to_open3d_geometry().vertices)
        local = (verts - s.camera_from_grasp[i, :3, 3]) @ s.camera_from_grasp[i, :3, :3]  # our grasp frame
        # graspnetAPI's fingertips reach our fingertip plane (z = 0), not beyond
        assert local[:, 2].max() == pytest.approx(0.0, abs=1e-6)
        # its inner finger faces lie at ±opening/2 along our closing axis: the object (±width/2) fits inside
        inner = np.abs(local[:, 0])[np.abs(local[:, 0]) < s.opening_m[i] / 2 + 1e-3]
        assert inner.max() == pytest.approx(s.opening_m[i] / 2, abs=1e-6)
        assert inner.max() > s.width_m[i] / 2


def test_plain_json_round_trip(tmp_path):
    s = make_set([IDENTITY, SIDEWAYS], [0.04, 0.05], accepted=[True, False])
    p = ex.write_plain_json(tmp_path / "grasps.json", s)
    back = ex.read_plain_json(p)
    assert back["frame"] == "camera_color_optical"
    np.testing.assert_allclose(back["poses"], s.camera_from_grasp)
    np.testing.assert_allclose(back["width_m"], [0.04, 0.05])
    assert back["accepted"].tolist() == [True, False]
    (tmp_path / "bad.json").write_text('{"schema_version": 9}')
    with pytest.raises(ConfigError, match="schema_version 9"):
        ex.read_plain_json(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="does not exist"):
        ex.read_plain_json(tmp_path / "none.json")
