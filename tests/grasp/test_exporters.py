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
    np.testing.assert_allclose(rows[0, :4], [0.9, 0.04, 0.02, 0.02])
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
    np.testing.assert_allclose(back["width_m"], [0.04, 0.05])
    with pytest.raises(ShapeError, match=r"\(N, 17\)"):
        ex.from_graspnet_array(np.zeros((2, 16)))


def test_contact_graspnet_hand_checked_and_round_trip():
    s = make_set([IDENTITY, SIDEWAYS], [0.04, 0.05])
    d = ex.to_contact_graspnet(s)
    # same axes; origin at the hand base 10.34 cm behind the fingertips along the approach
    np.testing.assert_allclose(d["pred_grasps_cam"][0][:3, 3], [0.1, 0.2, 0.5 - 0.1034])
    np.testing.assert_allclose(d["pred_grasps_cam"][1][:3, 3], [0.1 - 0.1034, 0.2, 0.5])
    np.testing.assert_allclose(d["pred_grasps_cam"][:, :3, :3], s.camera_from_grasp[:, :3, :3])
    # contact_pts: the contact at -x; the other lies width along +x (Contact-GraspNet's convention)
    np.testing.assert_allclose(d["contact_pts"][0], [0.08, 0.2, 0.49])
    np.testing.assert_allclose(d["gripper_openings"], [0.04, 0.05])
    back = ex.from_contact_graspnet(d["pred_grasps_cam"], d["gripper_openings"])
    np.testing.assert_allclose(back["poses"], s.camera_from_grasp, atol=1e-12)
    assert ex.to_m2t2 is ex.to_contact_graspnet


def test_base_frame_export_and_errors():
    b = pose(np.eye(3), [1.0, 0.0, 0.0])
    s = make_set([IDENTITY], [0.04], base_from_camera=b)
    d = ex.to_contact_graspnet(s, frame=BASE)
    np.testing.assert_allclose(d["pred_grasps_cam"][0][:3, 3], [1.1, 0.2, 0.5 - 0.1034])
    np.testing.assert_allclose(d["contact_pts"][0], [1.08, 0.2, 0.49])
    with pytest.raises(ShapeError, match="no base_from_grasp"):
        ex.to_graspnet_array(make_set([IDENTITY], [0.04]), frame=BASE)
    with pytest.raises(ConfigError, match="export frame must be"):
        ex.to_plain_dict(s, frame="tcp")


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
