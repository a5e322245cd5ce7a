"""Grasp planning on synthetic scenes with exact geometry (ray-cast boxes and cylinders on a table)."""

import itertools
import re

import numpy as np
import pytest

from graspseg.core import NoGraspError, Transform
from graspseg.core.errors import ConfigError, ShapeError
from graspseg.grasp import GraspConfig, load_gripper, plan_grasps
from graspseg.sim.synthetic import true_grasp_width

from .scenes import Scene, box, cylinder, leaky_frame, naive_cloud

FRANKA = load_gripper("franka_hand")


@pytest.fixture(scope="module")
def box_scene():
    return Scene([box((0.05, 0.08, 0.10), yaw_deg=25.0)], tilt_deg=35.0)


@pytest.fixture(scope="module")
def box_grasps(box_scene):
    return plan_grasps(box_scene.frame, box_scene.cloud(), None, FRANKA, boundary_error_px=2.0)




def _hand_corner_heights(scene, grasps, gripper):
    """(N,) lowest height above the table of the fingers and palm of each grasp (exact, base frame)."""
    base_from_cam = scene.camera_from_base.inverse().matrix
    out = []
    for i in range(len(grasps)):
        boxes = [*gripper.finger_boxes(grasps.opening_m[i]), gripper.palm_box()]
        corners = np.array([[b[ix][0], b[iy][1], b[iz][2]] for b in boxes for ix, iy, iz in itertools.product((0, 1), repeat=3)])
        pts = corners @ grasps.camera_from_grasp[i][:3, :3].T + grasps.camera_from_grasp[i][:3, 3]
        out.append((pts @ base_from_cam[:3, :3].T + base_from_cam[:3, 3])[:, 2].min())
    return np.array(out)


def test_box_widths_match_the_exact_geometry(box_scene, box_grasps):
    acc = box_grasps.accepted_only()
    assert len(acc) >= 3, box_grasps
    base_from_cam = box_scene.camera_from_base.inverse().matrix
    prim = box_scene.primitives[0]
    errors = [abs(acc.width_m[i] - true_grasp_width(prim, base_from_cam @ acc.camera_from_grasp[i], FRANKA.finger_width_m,
                                              FRANKA.finger_depth_m, 0.10)) for i in range(len(acc))]
    assert max(errors) <= 0.003, errors
    # the short side (5 cm) is graspable across its faces
    assert np.min(np.abs(acc.width_m - 0.05)) < 0.003


def test_cylinder_widths_match_the_exact_geometry():
    sc = Scene([cylinder(0.03, 0.12)], tilt_deg=45.0)
    gs = plan_grasps(sc.frame, sc.cloud(), None, "robotiq_2f85", boundary_error_px=2.0)
    acc = gs.accepted_only()
    assert len(acc) >= 3, gs
    base_from_cam = sc.camera_from_base.inverse().matrix
    g = load_gripper("robotiq_2f85")
    errors = [abs(acc.width_m[i] - true_grasp_width(sc.primitives[0], base_from_cam @ acc.camera_from_grasp[i], g.finger_width_m,
                                              g.finger_depth_m, 0.12)) for i in range(len(acc))]
    assert max(errors) <= 0.003, errors


def test_no_accepted_grasp_touches_the_table_and_none_comes_from_below(box_scene, box_grasps):
    acc = box_grasps.accepted_only()
    low = _hand_corner_heights(box_scene, acc, FRANKA)
    assert (low >= GraspConfig().table_clearance_m - 1e-6).all(), low
    # every candidate, rejected or not, approaches from above the plane
    n = box_scene.plane.normal
    assert (box_grasps.approach @ n <= 1e-9).all()
    # and the rejected set does contain table violations (the check is exercised)
    assert box_grasps.rejected_counts.get("table", 0) > 0


def test_grasp_frame_is_right_handed_and_contacts_lie_on_the_closing_axis(box_grasps):
    r = box_grasps.camera_from_grasp[:, :3, :3]
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-5)
    np.testing.assert_allclose(r[:, :, 2], box_grasps.approach)
    np.testing.assert_allclose(r[:, :, 0], box_grasps.closing)
    acc = box_grasps.accepted_only()
    d = acc.contacts_in_camera[:, 1] - acc.contacts_in_camera[:, 0]
    np.testing.assert_allclose(np.einsum("ni,ni->n", d, acc.closing), acc.width_m, atol=1e-6)


def test_sorted_best_first_with_reasons_and_margins(box_scene, box_grasps):
    acc = box_grasps.accepted
    assert not (np.diff(acc.astype(int)) > 0).any(), "accepted grasps come first"
    # accepted grasps by score plus a small margin bonus (saturating at 5 mm)
    key = box_grasps.score[acc] + 0.1 * np.clip(box_grasps.worst_case_margin_mm[acc] / 5.0, 0.0, 1.0)
    assert (np.diff(key) <= 1e-9).all()
    assert ((box_grasps.rejected_because == "") == acc).all()
    for name in ("opening", "contact", "finger_landing"):
        mm, px = box_grasps.margins[f"{name}_mm"], box_grasps.margins[f"{name}_px"]
        assert (np.sign(mm[acc]) == np.sign(px[acc])).all()
        assert (mm[acc] >= 0).all()
    # the error in mm is the 2 px error at the depth of the contacts' pixels: 2 * z / f
    uv = box_grasps.contacts_uv.astype(int)
    z = box_scene.frame.depth_m[uv[..., 1], uv[..., 0]].max(1)
    np.testing.assert_allclose(box_grasps.margins["error_mm"], 2.0 * z / 615.45 * 1e3, rtol=1e-3)
    assert (box_grasps.margins["robustness"][acc] >= GraspConfig().min_robustness).all()
    worst = np.minimum.reduce([box_grasps.margins[f"{m}_mm"] for m in ("opening", "contact", "finger_landing")])
    np.testing.assert_allclose(box_grasps.worst_case_margin_mm[acc], worst[acc])


def test_object_wider_than_the_stroke_gets_an_explained_empty_result():
    sc = Scene([box((0.12, 0.12, 0.06))], tilt_deg=30.0)
    gs = plan_grasps(sc.frame, sc.cloud(), None, FRANKA, boundary_error_px=2.0)
    assert gs.n_accepted == 0 and gs.n_candidates > 0
    assert max(gs.rejected_counts, key=gs.rejected_counts.get) == "too_wide"
    m = re.search(r"object wider than the gripper's stroke by (\d+) mm", gs.suggestion)
    assert m, gs.suggestion
    # 12 cm + 2 x 4 mm clearance against an 8 cm stroke
    assert abs(int(m.group(1)) - 48) <= 3
    with pytest.raises(NoGraspError, match="wider than the gripper's stroke") as info:
        gs.raise_if_empty()
    assert info.value.rejected_counts["too_wide"] == gs.rejected_counts["too_wide"]
    # a wider gripper takes it
    wide = FRANKA.__class__(**{**FRANKA.__dict__, "name": "wide", "max_opening_m": 0.16, "palm_width_m": 0.3})
    assert plan_grasps(sc.frame, sc.cloud(), None, wide, boundary_error_px=2.0).n_accepted > 0


def test_a_leaking_masks_false_rim_puts_no_finger_on_the_object():
    """A mask dilated by 3 px over flying pixels, taken as certain object points: the accepted grasps still open
    around the whole true object, with the clearance, and the flying rim is what they treat as the contacts."""
    sc = Scene([box((0.05, 0.07, 0.06))], tilt_deg=35.0)
    frame, dilated, rim = leaky_frame(sc, sc.mask(), r_px=3)
    cloud = naive_cloud(frame, dilated, sc.plane)  # no depth check of the rim at all
    checked = plan_grasps(frame, cloud, None, FRANKA, GraspConfig(max_grasps=1000), boundary_error_px=3.0)
    acc = checked.accepted_only()
    assert len(acc) >= 2, checked
    true_pts = sc.points()
    for i in range(len(acc)):
        t = np.linalg.inv(acc.camera_from_grasp[i])
        loc = true_pts @ t[:3, :3].T + t[:3, 3]
        between = (np.abs(loc[:, 1]) <= FRANKA.finger_width_m / 2) & (loc[:, 2] >= -FRANKA.finger_depth_m) & (loc[:, 2] <= 0)
        # every true object point between the fingers lies at least the clearance inside them
        assert (np.abs(loc[between, 0]) <= acc.opening_m[i] / 2 - GraspConfig().clearance_m).all()


def test_neighbours_are_obstacles():
    sc = Scene([box((0.04, 0.06, 0.08), xy=(0.0, 0.0), obj_id=1),
                box((0.04, 0.06, 0.12), xy=(0.06, 0.0), obj_id=2, name="tall")], tilt_deg=30.0)
    gs = plan_grasps(sc.frame, sc.cloud(sc.mask(1)), None, FRANKA, boundary_error_px=2.0)
    assert gs.rejected_counts.get("collision", 0) > 0
    acc = gs.accepted_only()
    assert len(acc) > 0, gs
    other = sc.points(2)
    # the clearance of the swept fingers from the neighbour, as the ranking sees it (a subsample of the scene)
    from graspseg.grasp import collision as col

    exact = col.finger_palm_tests(col.to_grasp_frames(other, acc.camera_from_grasp[:, :3, 3],
                                                      acc.camera_from_grasp[:, :3, :3]), acc.opening_m, FRANKA, 0.08)[1]
    nb = acc.margins["neighbour_clearance_mm"] / 1e3
    assert (nb >= exact - 1e-4).all() and (nb <= exact + 0.004).all(), (nb, exact)
    for i in range(len(acc)):
        t = np.linalg.inv(acc.camera_from_grasp[i])
        loc = other @ t[:3, :3].T + t[:3, 3]
        for lo, hi in FRANKA.finger_boxes(acc.opening_m[i]):
            # the planner checks the scene at every 4th pixel: allow half that spacing (~1.5 mm) of overlap
            inside = np.all((loc >= lo + 0.0015) & (loc <= hi - 0.0015), axis=1)
            assert not inside.any()


def test_alternative_masks_lower_robustness(box_scene):
    mask = box_scene.mask()
    cloud = box_scene.cloud()
    base = plan_grasps(box_scene.frame, cloud, None, FRANKA, boundary_error_px=2.0)
    # another outline of the same object that misses the strip the best grasp holds (IoU above 0.5)
    v, u = np.nonzero(mask)
    z = box_scene.frame.depth_m[v, u]
    rays = box_scene.intrinsics.ray_image[v, u]
    pts = np.stack([rays[:, 0] * z, rays[:, 1] * z, z], 1)
    g = np.linalg.inv(base.camera_from_grasp[0])
    loc = pts @ g[:3, :3].T + g[:3, 3]
    in_strip = (np.abs(loc[:, 1]) <= 0.5 * FRANKA.finger_width_m + 0.002) & (loc[:, 2] >= -FRANKA.finger_depth_m - 0.01)
    part = mask.copy()
    part[v[in_strip], u[in_strip]] = False
    assert (part & mask).sum() / mask.sum() > 0.35
    cols = np.flatnonzero(mask.any(0))
    corner = mask.copy()  # a different part: IoU far below alternative_min_iou, ignored
    corner[:, cols[0] + (cols[-1] - cols[0]) // 6:] = False
    cfg = GraspConfig(alternative_min_iou=0.3)
    alt = plan_grasps(box_scene.frame, cloud, None, FRANKA, cfg, boundary_error_px=2.0, alternative_masks=[part, mask])
    assert alt.margins["robustness"].min() < 1.0
    assert (alt.margins["robustness"][alt.accepted] >= GraspConfig().min_robustness).all()
    assert alt.n_accepted <= base.n_accepted
    strict = plan_grasps(box_scene.frame, cloud, None, FRANKA, GraspConfig(min_robustness=1.0, alternative_min_iou=0.3),
                         boundary_error_px=2.0, alternative_masks=[part])
    assert strict.n_accepted < base.n_accepted and strict.rejected_counts.get("robustness", 0) > 0
    ignored = plan_grasps(box_scene.frame, cloud, None, FRANKA, GraspConfig(min_robustness=1.0, alternative_min_iou=0.3),
                          boundary_error_px=2.0, alternative_masks=[corner])
    assert ignored.n_accepted == base.n_accepted


def test_boundary_error_resolution_and_input_errors(box_scene):
    cloud = box_scene.cloud()
    with pytest.raises(ConfigError, match="no boundary error given"):
        plan_grasps(box_scene.frame, cloud, None, FRANKA)
    gs = plan_grasps(box_scene.frame, cloud, None, FRANKA, GraspConfig(boundary_error_px=4.0), boundary_error_px=1.0)
    assert gs.boundary_error_px == 4.0
    with pytest.raises(ConfigError, match="boundary_error_px must be in"):
        plan_grasps(box_scene.frame, cloud, None, FRANKA, boundary_error_px=-2.0)
    with pytest.raises(ShapeError, match="alternative mask is"):
        plan_grasps(box_scene.frame, cloud, None, FRANKA, boundary_error_px=2.0, alternative_masks=[np.ones((4, 4), bool)])
    small = Scene.__new__(Scene)
    with pytest.raises(ShapeError, match="build the cloud from this frame"):
        from graspseg.core import RGBDFrame
        from graspseg.sim.synthetic import d435_intrinsics
        f2 = RGBDFrame(np.zeros((240, 320, 3), np.uint8), np.zeros((240, 320), np.float32), d435_intrinsics(320, 240))
        plan_grasps(f2, cloud, None, FRANKA, boundary_error_px=2.0)
    del small


def test_mask_without_depth_gives_an_explained_empty_result(box_scene):
    depth = np.array(box_scene.frame.depth_m)
    mask = box_scene.mask()
    depth[mask] = 0.0
    from graspseg.core import RGBDFrame

    frame = RGBDFrame(box_scene.frame.color, depth, box_scene.intrinsics)
    gs = plan_grasps(frame, naive_cloud(frame, mask, box_scene.plane), None, FRANKA, boundary_error_px=2.0)
    assert len(gs) == 0 and "valid depth" in gs.suggestion
    with pytest.raises(NoGraspError, match="valid depth"):
        gs.raise_if_empty()


def test_base_frame_poses_follow_the_robot_pose():
    from graspseg.cloud import build_object_cloud
    from graspseg.sim import make_scene

    sc = make_scene("single", seed=2, kinds=("box",), tilt_deg=35.0, distance_m=0.45)
    cloud = build_object_cloud(sc.frame, sc.objects[0].mask, tcp_from_camera=sc.rig.tcp_from_camera, plane=sc.plane)
    gs = plan_grasps(sc.frame, cloud, None, "generic", boundary_error_px=2.0)
    assert len(gs) and gs.base_from_grasp is not None
    expected = np.einsum("ij,njk->nik", sc.base_from_camera.matrix, gs.camera_from_grasp)
    np.testing.assert_allclose(gs.base_from_grasp, expected, atol=1e-9)
    # base = table frame: accepted approaches point down (negative base z)
    acc = gs.accepted_only()
    if len(acc):
        assert (acc.base_from_grasp[:, 2, 2] <= 1e-9).all()
    assert isinstance(gs.pose(0, "base"), Transform)


def test_part_mask_mug_handle():
    from graspseg.sim.synthetic import Mug, PlacedPrimitive

    mug = Mug(0.04, 0.10)  # handle tube: 2 x 6 mm thick, the rim 2 cm above the handle's top
    prim = PlacedPrimitive(1, "mug", mug, Transform.from_rt(np.eye(3), [0, 0, 0.05], "base", "object"), (0.8, 0.8, 0.8))
    sc = Scene([prim], tilt_deg=30.0, azimuth_deg=120.0)
    v, u = np.nonzero(sc.mask())
    z = sc.frame.depth_m[v, u]
    rays = sc.intrinsics.ray_image[v, u]
    obj_from_cam = (sc.camera_from_base @ prim.base_from_object).inverse()
    p_obj = obj_from_cam.apply(np.stack([rays[:, 0] * z, rays[:, 1] * z, z], 1))
    is_handle = p_obj[:, 0] > mug.radius_m + 0.001
    handle = np.zeros_like(sc.mask())
    handle[v[is_handle], u[is_handle]] = True
    gs = plan_grasps(sc.frame, sc.cloud(handle), None, FRANKA, boundary_error_px=1.0, part=True)
    acc = gs.accepted_only()
    assert len(acc) >= 1, gs
    # the contacts are on the handle, the width a chord of the tube no more oblique than the friction cone
    # (mu 0.5, widened by the 1 px boundary error: about 37 deg) allows
    c_obj = obj_from_cam.apply(acc.contacts_in_camera.reshape(-1, 3))
    assert (c_obj[:, 0] > mug.radius_m - 0.002).all()
    assert (acc.width_m <= 2 * mug.handle_thickness_m / np.cos(np.radians(37.0)) + 0.003).all()
    # completed down to the table, the handle would look like a solid wall reaching the table: grasps measure
    # that wall (contacts below the handle), which the part mask never does
    whole_like = plan_grasps(sc.frame, sc.cloud(handle), None, FRANKA, boundary_error_px=1.0).accepted_only()
    low = obj_from_cam.apply(whole_like.contacts_in_camera.reshape(-1, 3))[:, 2]
    assert low.min() < c_obj[:, 2].min() - 0.005


def _check_openings(grasps, clearance_m, unseen_m=None):
    unseen_m = GraspConfig().unseen_clearance_m if unseen_m is None else unseen_m
    acc = np.flatnonzero(grasps.accepted)
    assert len(acc), "no accepted grasp to check"
    width = grasps.width_m[acc]
    err = grasps.margins["error_mm"][acc] / 1e3
    planned = width + 2 * (clearance_m + err)
    # the opening is width + 2 (clearance + error), plus up to unseen_clearance_m per hidden far side
    assert (grasps.opening_m[acc] >= planned - 1e-9).all(), (grasps.opening_m[acc] - planned).min()
    assert (grasps.opening_m[acc] <= planned + 2 * unseen_m + 1e-9).all()
    # each finger keeps clearance + error from its own contact: the hand is centred between the contacts
    pose = grasps.camera_from_grasp[acc]
    local_x = np.einsum("gsi,gi->gs", grasps.contacts_in_camera[acc] - pose[:, None, :3, 3], pose[:, :3, 0])
    np.testing.assert_allclose(local_x[:, 1] - local_x[:, 0], width, atol=1e-6)
    half = 0.5 * grasps.opening_m[acc]
    per_side = np.minimum(half + local_x[:, 0], half - local_x[:, 1])
    assert (per_side >= clearance_m + err - 1e-6).all(), (per_side - clearance_m - err).min()
    return len(acc)


def test_opening_is_width_plus_clearance_and_error_on_every_accepted_synthetic_grasp(box_scene, box_grasps):
    n = _check_openings(box_grasps, GraspConfig().clearance_m)
    scene = Scene([cylinder(0.035, 0.12)], tilt_deg=40.0)
    n += _check_openings(plan_grasps(scene.frame, scene.cloud(), None, FRANKA, boundary_error_px=2.0),
                         GraspConfig().clearance_m)
    # without the unseen-side allowance the opening is exactly width + 2 (clearance + error)
    n += _check_openings(plan_grasps(scene.frame, scene.cloud(), None, FRANKA, GraspConfig(unseen_clearance_m=0.0),
                                     boundary_error_px=2.0), GraspConfig().clearance_m, unseen_m=0.0)
    assert n >= 5


def test_opening_is_width_plus_clearance_and_error_on_the_shared_real_frames(real_dir):
    """After the dense re-check the opening follows the re-measured width (it once lagged by up to 7 mm)."""
    from graspseg.capture import load_frame_folder
    from graspseg.capture.images import read_mask
    from graspseg.eval import first_click
    from graspseg.pipeline import Pipeline
    from graspseg.segment import Prompt

    pipe = Pipeline()
    checked = 0
    for folder in sorted(p for p in real_dir.iterdir() if p.is_dir()):
        frame = load_frame_folder(folder)
        mask = read_mask(sorted((folder / "masks").glob("*.png"))[0])
        u, v = first_click(mask)
        res = pipe.perceive(frame, Prompt.from_point(u, v), mask_override=mask)
        if res.grasps.accepted.any():
            checked += _check_openings(res.grasps, pipe.config.grasp.clearance_m)
    assert checked >= 20


def test_far_side_of_a_ball_gets_room_for_what_the_camera_cannot_see():
    """Seen 45 deg from above, the far silhouette of a ball lies above its equator, inside its radius: a width
    measured along the view is too small and the far finger lands on the ball unless it gets the unseen-side
    allowance."""
    from graspseg.core import BASE, Transform
    from graspseg.sim.synthetic import PlacedPrimitive, Sphere

    r = 0.028
    ball = PlacedPrimitive(1, "ball", Sphere(r), Transform.from_rt(np.eye(3), [0, 0, r], BASE, "object"), (0.2, 0.6, 0.3))
    sc = Scene([ball], tilt_deg=45.0, target=(0.0, 0.0, r))
    base_from_cam = sc.camera_from_base.inverse().matrix

    def finger_gaps(cfg):
        acc = plan_grasps(sc.frame, sc.cloud(), None, FRANKA, cfg, boundary_error_px=2.0).accepted_only()
        assert len(acc) >= 10
        gaps = []
        for i in range(len(acc)):
            grid = [np.stack(np.meshgrid(*[np.linspace(lo[j], hi[j], 5) for j in range(3)], indexing="ij"), -1)
                    for lo, hi in FRANKA.finger_boxes(acc.opening_m[i])]
            bg = base_from_cam @ acc.camera_from_grasp[i]
            pts = np.concatenate([g.reshape(-1, 3) for g in grid]) @ bg[:3, :3].T + bg[:3, 3]
            gaps.append(np.linalg.norm(pts - [0.0, 0.0, r], axis=1).min() - r)
        return np.array(gaps)

    assert (finger_gaps(GraspConfig(unseen_clearance_m=0.0)) < -0.003).sum() >= 5  # fingers 3 mm inside the ball
    assert (finger_gaps(GraspConfig()) > -0.001).all()  # at most a brush


def test_a_target_resting_on_a_wider_object_is_grasped_by_its_upper_part():
    """Fingers as deep as the palm allows hit the object underneath; the shallow variant of each hand stands in,
    and its fingers stay above the lower object."""
    from graspseg.core import BASE, Transform
    from graspseg.sim.synthetic import Box, PlacedPrimitive

    under = box((0.16, 0.16, 0.05), obj_id=2, name="under")
    top = PlacedPrimitive(1, "top", Box((0.04, 0.06, 0.04)), Transform.from_rt(np.eye(3), [0, 0, 0.07], BASE, "object"),
                          (0.7, 0.2, 0.2))
    sc = Scene([under, top], tilt_deg=35.0, target=(0.0, 0.0, 0.07))
    deep_only = plan_grasps(sc.frame, sc.cloud(sc.mask(1)), None, FRANKA, GraspConfig(shallow_depth_m=0.0),
                            boundary_error_px=2.0)
    both = plan_grasps(sc.frame, sc.cloud(sc.mask(1)), None, FRANKA, boundary_error_px=2.0)
    assert both.n_accepted > deep_only.n_accepted
    acc = both.accepted_only()
    base_from_cam = sc.camera_from_base.inverse().matrix
    for i in range(len(acc)):
        bg = base_from_cam @ acc.camera_from_grasp[i]
        corners = np.array([[b[ix][0], b[iy][1], b[iz][2]] for b in FRANKA.finger_boxes(acc.opening_m[i])
                            for ix, iy, iz in itertools.product((0, 1), repeat=3)])
        assert (corners @ bg[:3, :3].T + bg[:3, 3])[:, 2].min() > 0.05  # above the lower object's top
