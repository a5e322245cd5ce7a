"""estimate_shape on analytically ray-cast scenes with exact ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graspseg.cloud.types import BandLabel, SupportPlane
from graspseg.core import (
    BASE,
    CAMERA,
    OBJECT,
    FrameMismatchError,
    InputError,
    ShapeError,
    Transform,
    UnitsError,
)
from graspseg.shape import ShapeConfig, ShapeEstimate, estimate_shape

NOISE = (0.0005, 0.002)  # sigma_z = 0.5 mm + 2 mm/m² z²: about 0.8 mm at 0.45 m


def _yaw_error_deg(est: ShapeEstimate, truth, period_rad=np.pi) -> float:
    """Angle between estimated and true object x axes about the plane normal, modulo ``period_rad``."""
    n = est.camera_from_object.rotation[:, 2]
    xe = est.camera_from_object.rotation[:, 0]
    xt = truth.camera_from_object.rotation[:, 0]
    xt = xt - (xt @ n) * n
    ang = np.arctan2(np.cross(xt, xe) @ n, xe @ xt)
    ang = (ang + period_rad / 2) % period_rad - period_rad / 2
    return float(np.degrees(abs(ang)))


@pytest.mark.parametrize("noise", [(0.0, 0.0), NOISE], ids=["exact", "noisy"])
@pytest.mark.parametrize("yaw", [0.0, 0.9, 2.4])
@pytest.mark.parametrize("dims", [(0.12, 0.07, 0.05), (0.20, 0.05, 0.03), (0.08, 0.045, 0.16)])
def test_box_pose_and_size_within_targets(synth, dims, yaw, noise):
    cloud, truth, _, _ = synth("box", dims, yaw_rad=yaw, noise=noise, seed=3)
    est = estimate_shape(cloud, intrinsics=truth.intrinsics)
    pos_err = np.linalg.norm(est.camera_from_object.translation - truth.camera_from_object.translation)
    assert pos_err <= 0.005
    assert _yaw_error_deg(est, truth) <= 5.0
    np.testing.assert_allclose(est.extents_m, dims, atol=0.003)
    assert abs(est.height_m - dims[2]) <= 0.003
    assert est.primitive == "box"
    np.testing.assert_allclose(est.primitive_params["size_m"], est.extents_m)
    assert est.frame_source == "support_plane"
    # z is the table normal, up
    np.testing.assert_allclose(est.camera_from_object.rotation[:, 2], cloud.plane.normal, atol=1e-9)
    # the base pose chains through the cloud's base_from_camera
    d_t, _ = est.base_from_object.distance_to(truth.base_from_object)
    assert d_t <= 0.005


def test_box_footprint_corners_lie_on_the_plane_and_match_the_size(synth):
    cloud, truth, _, _ = synth("box", (0.12, 0.07, 0.05), yaw_rad=0.7)
    est = estimate_shape(cloud)
    corners = est.footprint_corners_in_camera
    np.testing.assert_allclose(cloud.plane.signed_distance(corners), 0.0, atol=1e-9)
    sides = np.linalg.norm(np.roll(corners, -1, axis=0) - corners, axis=1)
    np.testing.assert_allclose(sorted(sides), sorted([0.07, 0.07, 0.12, 0.12]), atol=0.002)
    np.testing.assert_allclose(est.footprint_size_m, [0.12, 0.07], atol=0.002)
    # true footprint corners (object frame, z = -height/2), each near an estimated corner
    sx, sy, sz = truth.dims
    true_c = np.array([[x, y, -sz / 2] for x in (-sx / 2, sx / 2) for y in (-sy / 2, sy / 2)])
    true_cam = truth.camera_from_object.apply(true_c)
    dist = np.linalg.norm(true_cam[:, None] - corners[None], axis=2).min(axis=1)
    assert dist.max() < 0.003


def test_box_completion_fills_the_hidden_faces_and_bottom(synth):
    dims = (0.12, 0.07, 0.05)
    cloud, truth, _, _ = synth("box", dims, yaw_rad=0.4)
    est = estimate_shape(cloud)
    gen = est.completed_points_in_camera[est.num_visible_points:]
    assert len(gen) > 100
    local = truth.camera_from_object.inverse().apply(gen)
    half = np.asarray(dims) / 2
    # every generated point is on the true box surface
    surface_dist = np.abs(np.abs(local) - half).min(axis=1)
    assert np.all(np.abs(local) <= half + 0.003)
    assert np.percentile(surface_dist, 99) < 0.003
    # bottom face and the faces looking away from the camera are present; the visible top is not generated
    assert (np.abs(local[:, 2] + half[2]) < 1e-3).sum() > 50
    cam_in_obj = truth.camera_from_object.inverse().translation
    hidden_side = np.argmax(np.abs(cam_in_obj[:2]))
    far_sign = -np.sign(cam_in_obj[hidden_side])
    assert (np.abs(local[:, hidden_side] - far_sign * half[hidden_side]) < 1e-3).sum() > 50
    top_interior = (np.abs(local[:, 2] - half[2]) < 1e-3) & np.all(np.abs(local[:, :2]) < half[:2] - 0.003, axis=1)
    assert top_interior.sum() == 0
    # the visible points come first and are the measured ones
    vis = est.visible_points_in_camera
    assert len(vis) == est.num_visible_points <= len(cloud)


@pytest.mark.parametrize("noise", [(0.0, 0.0), NOISE], ids=["exact", "noisy"])
def test_upright_cylinder_radius_axis_and_mirrored_back(synth, noise):
    radius, length = 0.035, 0.10
    cloud, truth, _, _ = synth("cylinder", (radius, length), yaw_rad=0.2, noise=noise)
    est = estimate_shape(cloud)
    assert est.primitive == "cylinder"
    p = est.primitive_params
    assert p["orientation"] == "upright"
    assert abs(2 * p["radius_m"] - 2 * radius) <= 0.003
    np.testing.assert_allclose(est.footprint_size_m, [2 * radius, 2 * radius], atol=0.003)
    np.testing.assert_allclose(p["axis_in_camera"], cloud.plane.normal, atol=1e-9)
    assert np.linalg.norm(p["centre_in_camera"] - truth.camera_from_object.translation) <= 0.003
    assert np.linalg.norm(est.camera_from_object.translation - truth.camera_from_object.translation) <= 0.005
    assert abs(est.height_m - length) <= 0.003
    assert "yaw is undefined" in " ".join(est.notes) and est.uncertainty["yaw_rad"] == pytest.approx(np.pi)
    # the visible half is biased towards the camera; visible + mirrored points are centred on the axis
    centre_in_obj = truth.camera_from_object.inverse()
    vis_c = centre_in_obj.apply(est.visible_points_in_camera)[:, :2].mean(axis=0)
    all_c = centre_in_obj.apply(est.completed_points_in_camera)[:, :2].mean(axis=0)
    assert np.linalg.norm(vis_c) > 0.005
    assert np.linalg.norm(all_c) < 0.002


def test_lying_cylinder_axis_along_the_footprint(synth):
    radius, length = 0.03, 0.14
    cloud, truth, _, _ = synth("lying_cylinder", (radius, length), yaw_rad=0.9, noise=NOISE)
    est = estimate_shape(cloud)
    assert est.primitive == "cylinder"
    p = est.primitive_params
    assert p["orientation"] == "lying"
    assert abs(p["radius_m"] - radius) <= 0.0015
    assert abs(p["length_m"] - length) <= 0.003
    axis_true = truth.camera_from_object.rotation[:, 0]
    assert np.degrees(np.arccos(min(1.0, abs(p["axis_in_camera"] @ axis_true)))) <= 5.0
    assert np.linalg.norm(p["centre_in_camera"] - truth.camera_from_object.translation) <= 0.005
    np.testing.assert_allclose(est.extents_m, [length, 2 * radius, 2 * radius], atol=0.003)


def test_sphere_resting_on_the_table(synth):
    cloud, truth, _, _ = synth("sphere", (0.04,), noise=NOISE)
    est = estimate_shape(cloud)
    assert est.primitive == "sphere"
    assert abs(est.primitive_params["radius_m"] - 0.04) <= 0.0015
    assert np.linalg.norm(est.primitive_params["centre_in_camera"] - truth.camera_from_object.translation) <= 0.003
    assert min(est.primitive_residuals_m, key=est.primitive_residuals_m.get) == "sphere"


def test_residuals_rank_the_true_primitive_first(synth):
    for kind, dims, want in (("box", (0.07, 0.06, 0.065), "box"), ("cylinder", (0.04, 0.09), "cylinder"),
                             ("sphere", (0.035,), "sphere")):
        cloud, _, _, _ = synth(kind, dims)
        est = estimate_shape(cloud)
        res = est.primitive_residuals_m
        assert est.primitive == want
        assert min(res, key=res.get) == want, (kind, res)


def test_implausible_primitives_are_not_tried(synth):
    # a long flat box: neither round (upright cylinder, sphere) nor as tall as wide (lying cylinder, sphere)
    cloud, _, _, _ = synth("box", (0.20, 0.05, 0.02))
    assert set(estimate_shape(cloud).primitive_residuals_m) == {"box"}
    cloud, _, _, _ = synth("box", (0.07, 0.06, 0.065))
    assert set(estimate_shape(cloud).primitive_residuals_m) == {"box", "cylinder", "sphere"}


def test_non_primitive_shape_is_other_and_extruded_to_the_plane(synth, replace_points):
    a, truth, _, _ = synth("box", (0.16, 0.04, 0.05), xy=(0.0, 0.0), yaw_rad=0.0)
    b, _, _, _ = synth("box", (0.04, 0.12, 0.05), xy=(0.06, 0.08), yaw_rad=0.0, cam_pos=(0.05, -0.32, 0.38))
    # both clouds come from different look-at cameras; express b's points in a's camera frame
    b_in_a = (a.base_from_camera.inverse() @ b.base_from_camera).apply(b.points_in_camera)
    cloud = replace_points(a, np.concatenate([a.points_in_camera, b_in_a]))
    est = estimate_shape(cloud)
    assert est.primitive == "other"
    assert "no primitive fits" in " ".join(est.notes)
    gen = est.completed_points_in_camera[est.num_visible_points:]
    h = cloud.plane.signed_distance(gen)
    assert h.min() > -1e-6 and h.max() <= est.height_m + 1e-6
    assert (np.abs(h) < 1e-6).sum() > 100  # the footprint dropped onto the plane


def test_unknown_band_points_are_ignored(synth, replace_points):
    cloud, truth, _, _ = synth("box", (0.12, 0.07, 0.05), yaw_rad=0.3)
    base = estimate_shape(cloud)
    # a leaking rim: points of a neighbour just beside the object, labelled UNKNOWN
    rng = np.random.default_rng(0)
    leak = truth.camera_from_object.apply(
        np.column_stack([rng.uniform(0.06, 0.10, 400), rng.uniform(-0.035, 0.035, 400), np.full(400, 0.0)]))
    pts = np.concatenate([cloud.points_in_camera, leak])
    labels = np.concatenate([cloud.labels, np.full(400, BandLabel.UNKNOWN, np.uint8)])
    est = estimate_shape(replace_points(cloud, pts, labels))
    np.testing.assert_allclose(est.extents_m, base.extents_m, atol=1e-6)
    # the same points labelled OBJECT do change the footprint: the label is what protects the estimate
    wrong = estimate_shape(replace_points(cloud, pts, np.full(len(pts), BandLabel.OBJECT, np.uint8)))
    assert wrong.extents_m[0] > base.extents_m[0] + 0.02


def test_tilted_support_plane(synth):
    cloud, truth, _, _ = synth("box", (0.12, 0.07, 0.05), yaw_rad=0.3, plane_tilt_rad=0.35)
    est = estimate_shape(cloud)
    assert np.linalg.norm(est.camera_from_object.translation - truth.camera_from_object.translation) <= 0.005
    np.testing.assert_allclose(est.extents_m, [0.12, 0.07, 0.05], atol=0.003)
    assert _yaw_error_deg(est, truth) <= 5.0


def test_no_plane_falls_back_to_pca_and_says_so(synth, replace_points):
    cloud, truth, _, _ = synth("box", (0.12, 0.07, 0.05), yaw_rad=0.3, with_plane=False, with_base=False)
    est = estimate_shape(cloud)
    assert est.frame_source == "pca"
    assert est.base_from_object is None
    notes = " ".join(est.notes)
    assert "no support plane" in notes and "PCA" in notes
    z = est.camera_from_object.rotation[:, 2]
    assert z @ -est.camera_from_object.translation > 0  # z towards the camera
    np.testing.assert_allclose(z, est.principal_axes[2], atol=1e-9)
    assert est.num_visible_points == len(est.completed_points_in_camera)  # no completion without a plane
    assert np.all(est.extents_m > 0) and np.isfinite(est.height_m)
    assert est.to_dict()["frame_source"] == "pca"


def test_plane_above_the_object_is_ignored(synth, replace_points):
    cloud, _, _, _ = synth("box", (0.12, 0.07, 0.05))
    n = cloud.plane.normal
    # the same plane moved 10 cm towards the camera: every object point lies below it
    bad = SupportPlane(n, cloud.plane.offset - 0.10)
    est = estimate_shape(replace_points(cloud, cloud.points_in_camera, plane=bad))
    assert est.frame_source == "pca"
    assert "support plane ignored" in " ".join(est.notes)


def test_flat_object_is_explained(synth):
    cloud, _, _, _ = synth("box", (0.10, 0.06, 0.002))
    est = estimate_shape(cloud)
    assert "object is flat" in " ".join(est.notes)
    assert est.height_m < 0.004
    np.testing.assert_allclose(est.extents_m[:2], [0.10, 0.06], atol=0.003)


def test_uncertainty_follows_pixel_size_and_boundary_error(synth):
    cloud, truth, _, _ = synth("box", (0.12, 0.07, 0.05), yaw_rad=0.3)
    e2 = estimate_shape(cloud, boundary_error_px=2.0, intrinsics=truth.intrinsics).uncertainty
    e6 = estimate_shape(cloud, boundary_error_px=6.0, intrinsics=truth.intrinsics).uncertainty
    z = float(np.median(cloud.points_in_camera[:, 2]))
    assert e2["pixel_size_m"] == pytest.approx(z / 615.0, rel=0.01)
    assert e6["boundary_error_m"] == pytest.approx(3 * e2["boundary_error_m"])
    assert e6["position_m"] > e2["position_m"] and e6["yaw_rad"] > e2["yaw_rad"]
    assert np.all(e6["extents_m"][:2] > e2["extents_m"][:2])
    assert e2["depth_sigma_m"] == pytest.approx(0.0005 + 0.002 * z**2, rel=0.01)
    # without intrinsics the focal length is regressed from the cloud's own pixels and points
    e_auto = estimate_shape(cloud, boundary_error_px=2.0).uncertainty
    assert e_auto["pixel_size_m"] == pytest.approx(e2["pixel_size_m"], rel=1e-3)


def test_square_footprint_yaw_is_flagged(synth):
    cloud, _, _, _ = synth("box", (0.06, 0.06, 0.10), yaw_rad=0.3)
    est = estimate_shape(cloud)
    assert "ambiguous by 90 deg" in " ".join(est.notes)
    assert est.uncertainty["yaw_rad"] == pytest.approx(np.pi / 4)


def test_completion_can_be_disabled(synth):
    cloud, _, _, _ = synth("cylinder", (0.035, 0.1))
    est = estimate_shape(cloud, ShapeConfig(completion=False))
    assert est.num_visible_points == len(est.completed_points_in_camera)
    assert "completion disabled" in " ".join(est.notes)


def test_input_is_not_modified(synth):
    cloud, _, _, _ = synth("box", (0.12, 0.07, 0.05))
    before = cloud.points_in_camera.copy()
    estimate_shape(cloud)
    np.testing.assert_array_equal(cloud.points_in_camera, before)


def test_to_dict_is_json_ready_with_units_and_frames(synth):
    cloud, _, _, _ = synth("box", (0.12, 0.07, 0.05))
    est = estimate_shape(cloud)
    d = json.loads(json.dumps(est.to_dict()))
    assert d["schema_version"] == 1 and d["units"] == {"length": "m", "angle": "rad"}
    assert d["frame"] == CAMERA
    assert d["camera_from_object"]["to_frame"] == CAMERA and d["camera_from_object"]["from_frame"] == OBJECT
    assert d["base_from_object"]["to_frame"] == BASE
    assert d["primitive"] == "box" and len(d["uncertainty"]["extents_m"]) == 3
    assert "completed_points_in_camera" not in d
    full = json.loads(json.dumps(est.to_dict(include_points=True)))
    assert len(full["completed_points_in_camera"]) == d["num_completed_points"]


# --- bad input --------------------------------------------------------------------------------------------
def test_empty_cloud_raises(synth, replace_points):
    cloud, _, _, _ = synth("box", (0.12, 0.07, 0.05))
    with pytest.raises(ShapeError, match=r"0 OBJECT-labelled points.*at least 30 are needed"):
        estimate_shape(replace_points(cloud, np.zeros((0, 3))))


def test_too_few_points_raises(synth, replace_points):
    cloud, _, _, _ = synth("box", (0.12, 0.07, 0.05))
    with pytest.raises(ShapeError, match=r"12 OBJECT-labelled points"):
        estimate_shape(replace_points(cloud, cloud.points_in_camera[:12]))


def test_few_object_points_fall_back_to_unknown_ones(synth, replace_points):
    cloud, _, _, _ = synth("box", (0.12, 0.07, 0.05))
    labels = np.full(len(cloud), BandLabel.UNKNOWN, np.uint8)
    labels[:5] = BandLabel.OBJECT
    est = estimate_shape(replace_points(cloud, cloud.points_in_camera, labels))
    assert "UNKNOWN boundary-band points were used" in " ".join(est.notes)
    with pytest.raises(ShapeError, match="5 OBJECT-labelled points"):
        estimate_shape(replace_points(cloud, cloud.points_in_camera, labels), ShapeConfig(use_unknown_when_short=False))


def test_non_finite_points_are_dropped(synth, replace_points):
    cloud, _, _, _ = synth("box", (0.12, 0.07, 0.05))
    pts = cloud.points_in_camera.copy()
    pts[::7] = np.nan
    pts[1::7, 2] = -1.0
    est = estimate_shape(replace_points(cloud, pts))
    np.testing.assert_allclose(est.extents_m, [0.12, 0.07, 0.05], atol=0.003)
    with pytest.raises(ShapeError, match=r"0 OBJECT-labelled points with valid depth"):
        estimate_shape(replace_points(cloud, np.full((100, 3), np.nan)))


def test_collinear_points_raise(synth, replace_points):
    cloud, _, _, _ = synth("box", (0.12, 0.07, 0.05))
    t = np.linspace(0, 0.1, 200)
    line = np.column_stack([t, 0.5 * t, 0.4 + 0.2 * t])
    with pytest.raises(ShapeError, match="collinear"):
        estimate_shape(replace_points(cloud, line))


def test_single_spot_raises(synth, replace_points):
    cloud, _, _, _ = synth("box", (0.12, 0.07, 0.05))
    with pytest.raises(ShapeError, match="of one spot"):
        estimate_shape(replace_points(cloud, np.tile([[0.01, 0.02, 0.4]], (100, 1))))


def test_bad_arguments_raise(synth, replace_points):
    cloud, _, _, _ = synth("box", (0.12, 0.07, 0.05))
    with pytest.raises(InputError, match="needs an ObjectCloud"):
        estimate_shape(np.zeros((10, 3)))
    with pytest.raises(UnitsError, match="boundary_error_px=-1"):
        estimate_shape(cloud, boundary_error_px=-1)
    with pytest.raises(UnitsError, match="boundary_error_px=nan"):
        estimate_shape(cloud, boundary_error_px=float("nan"))
    with pytest.raises(InputError, match="intrinsics must be a CameraIntrinsics"):
        estimate_shape(cloud, intrinsics={"fx": 600})
    with pytest.raises(InputError, match="config must be a ShapeConfig"):
        estimate_shape(cloud, {"completion": False})


def test_plane_in_another_frame_raises(synth, replace_points):
    cloud, _, _, _ = synth("box", (0.12, 0.07, 0.05))
    plane_base = cloud.plane.transformed(cloud.base_from_camera)
    with pytest.raises(FrameMismatchError, match="cloud.plane is in frame 'base'"):
        estimate_shape(replace_points(cloud, cloud.points_in_camera, plane=plane_base))


def test_base_pose_absent_without_base_from_camera(synth):
    cloud, truth, _, _ = synth("box", (0.12, 0.07, 0.05), with_base=False)
    est = estimate_shape(cloud)
    assert est.base_from_object is None
    assert isinstance(est.camera_from_object, Transform)


def test_partial_arc_is_not_completed_as_a_cylinder(synth, replace_points):
    cloud, truth, _, _ = synth("cylinder", (0.04, 0.06), cam_pos=(0.0, -0.05, 0.45))
    local = truth.camera_from_object.inverse().apply(cloud.points_in_camera)
    ang = np.arctan2(local[:, 1], local[:, 0])
    sector = (np.abs(ang) < np.pi / 5) & (np.hypot(local[:, 0], local[:, 1]) > 0.02)  # a 72 deg slice of the rim
    est = estimate_shape(replace_points(cloud, cloud.points_in_camera[sector]))
    assert est.primitive != "cylinder"
    full = estimate_shape(cloud)
    assert full.primitive == "cylinder" and full.primitive_params["footprint_coverage"] > 0.9


def test_plane_normal_pointing_away_is_flipped(synth, replace_points):
    cloud, truth, _, _ = synth("box", (0.12, 0.07, 0.05), yaw_rad=0.3)
    flipped = SupportPlane(-cloud.plane.normal, -cloud.plane.offset)
    est = estimate_shape(replace_points(cloud, cloud.points_in_camera, plane=flipped))
    assert "flipped" in " ".join(est.notes)
    assert est.frame_source == "support_plane"
    np.testing.assert_allclose(est.extents_m, [0.12, 0.07, 0.05], atol=0.003)
    np.testing.assert_allclose(est.camera_from_object.rotation[:, 2], cloud.plane.normal, atol=1e-9)


def test_side_view_without_the_top_uses_the_side_faces(synth):
    # camera below the top of a tall box: two side faces seen, an L-shaped footprint
    cloud, truth, _, _ = synth("box", (0.10, 0.06, 0.20), yaw_rad=0.6, cam_pos=(0.05, -0.4, 0.12))
    est = estimate_shape(cloud)
    assert "the top is not in view" in " ".join(est.notes)
    assert est.primitive == "box"
    np.testing.assert_allclose(est.extents_m, [0.10, 0.06, 0.20], atol=0.003)
    assert np.linalg.norm(est.camera_from_object.translation - truth.camera_from_object.translation) <= 0.005
    assert _yaw_error_deg(est, truth) <= 5.0
    # a single face seen head-on: the depth is not observed, and the note says it is a lower bound
    cloud, _, _, _ = synth("box", (0.10, 0.06, 0.20), yaw_rad=0.0, cam_pos=(0.05, -0.4, 0.12))
    est = estimate_shape(cloud)
    assert est.extents_m[1] < 0.01 and "lower bound" in " ".join(est.notes)
    assert est.uncertainty["top_visible"] is False
