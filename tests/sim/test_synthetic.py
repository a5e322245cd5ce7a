"""Analytic synthetic scenes: exact masks, depth, poses, contacts, noise model and input errors."""

from __future__ import annotations

import numpy as np
import pytest

from graspseg.capture.frame_folder import load_frame_folder, load_ground_truth, save_frame_folder
from graspseg.core.errors import ConfigError, UnitsError
from graspseg.sim.synthetic import Box, Cylinder, DepthNoise, Mug, Sphere, d435_intrinsics, make_scene


@pytest.fixture(scope="module")
def scenes():
    """A few small scenes of every layout (320x240 keeps the suite fast; geometry is resolution-free)."""
    out = {}
    for layout in ("single", "side_by_side", "clutter"):
        for seed in (0, 1, 2):
            out[layout, seed] = make_scene(layout, seed=seed, n_objects=4, width=320, height=240)
    return out


def _backproject(scene, mask):
    intr = scene.frame.intrinsics
    v, u = np.nonzero(mask)
    z = scene.depth_true_m[v, u].astype(np.float64)
    return intr.unproject(np.stack([u, v], 1).astype(float), z)


def test_same_seed_same_scene_and_different_seed_differs():
    a = make_scene("clutter", seed=5, width=160, height=120, noise=DepthNoise())
    b = make_scene("clutter", seed=5, width=160, height=120, noise=DepthNoise())
    c = make_scene("clutter", seed=6, width=160, height=120, noise=DepthNoise())
    assert np.array_equal(a.frame.color, b.frame.color)
    assert np.array_equal(a.frame.depth_m, b.frame.depth_m)
    assert np.array_equal(a.instance_ids, b.instance_ids)
    assert [o.name for o in a.objects] == [o.name for o in b.objects]
    assert not np.array_equal(a.frame.depth_m, c.frame.depth_m)


def test_noise_does_not_change_the_geometry():
    clean = make_scene("clutter", seed=3, width=160, height=120)
    noisy = make_scene("clutter", seed=3, width=160, height=120, noise=DepthNoise())
    assert np.array_equal(clean.depth_true_m, noisy.depth_true_m)
    assert np.array_equal(clean.frame.color, noisy.frame.color)
    assert np.array_equal(clean.frame.depth_m, clean.depth_true_m)
    assert not np.array_equal(noisy.frame.depth_m, noisy.depth_true_m)


@pytest.mark.parametrize("layout", ["single", "side_by_side", "clutter"])
def test_masks_lie_on_the_posed_primitive_surfaces(scenes, layout):
    for seed in (0, 1, 2):
        scene = scenes[layout, seed]
        ids = scene.instance_ids
        masks = np.stack([o.mask for o in scene.objects])
        assert masks.sum(0).max() <= 1, "instance masks overlap"
        for gt, prim in zip(scene.objects, scene.primitives, strict=True):
            assert np.array_equal(gt.mask, ids == gt.id)
            if gt.mask.sum() == 0:
                continue
            pts = _backproject(scene, gt.mask)
            sdf = prim.shape.sdf(gt.camera_from_object.inverse().apply(pts))
            assert np.abs(sdf).max() < 2e-4, f"{gt.name}: depth of its mask is off its surface by {np.abs(sdf).max()} m"
            # the object pixels are above the table, never below
            assert scene.plane.signed_distance(pts).min() > -1e-5
        # every background pixel is on the table plane
        table = _backproject(scene, (ids == 0) & (scene.depth_true_m > 0))
        assert np.abs(scene.plane.signed_distance(table)).max() < 1e-5


def test_poses_project_onto_the_masks(scenes):
    rng = np.random.default_rng(0)
    for scene in scenes.values():
        intr = scene.frame.intrinsics
        for k, (gt, prim) in enumerate(zip(scene.objects, scene.primitives, strict=True)):
            amodal = scene.amodal_masks[k]
            if amodal.sum() < 50:
                continue
            # front-facing surface points (sampled from the posed primitive) project inside the silhouette
            pts_obj = prim.shape.sample_surface(3000, rng)
            pts_cam = gt.camera_from_object.apply(pts_obj)
            eps = 1e-4
            grad = np.stack([(prim.shape.sdf(pts_obj + eps * e) - prim.shape.sdf(pts_obj - eps * e)) / (2 * eps)
                             for e in np.eye(3)], 1)
            n_cam = grad @ gt.camera_from_object.rotation.T
            facing = np.einsum("ij,ij->i", n_cam, -pts_cam) > 0.2 * np.linalg.norm(pts_cam, axis=1)
            uv = np.round(intr.project(pts_cam[facing])).astype(int)
            inside = (uv[:, 0] >= 0) & (uv[:, 0] < intr.width) & (uv[:, 1] >= 0) & (uv[:, 1] < intr.height)
            uv = uv[inside]
            if len(uv) < 20:
                continue
            import cv2

            grown = cv2.dilate(amodal.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            frac = grown[uv[:, 1], uv[:, 0]].mean()
            assert frac > 0.97, f"{gt.name}: only {frac:.2%} of its projected surface lies in its silhouette"
            # and the visible mask is part of the amodal silhouette
            assert not (gt.mask & ~amodal).any()


def test_side_by_side_objects_touch_their_neighbours(scenes):
    rng = np.random.default_rng(1)
    for seed in (0, 1, 2):
        scene = scenes["side_by_side", seed]
        prims = scene.primitives
        for a, b in zip(prims, prims[1:], strict=False):
            assert (a.id, b.id) in scene.touching
            gap = min(b.sdf_in_base(a.surface_points_in_base(20000, rng)).min(),
                      a.sdf_in_base(b.surface_points_in_base(20000, rng)).min())
            assert -5e-4 < gap < 1e-3, f"{a.name} and {b.name} should touch, closest approach {gap * 1000:.2f} mm"


def test_clutter_objects_never_interpenetrate_and_some_touch():
    rng = np.random.default_rng(2)
    n_touching = 0
    occluded = 0
    for seed in range(6):
        scene = make_scene("clutter", seed=seed, n_objects=5, width=160, height=120)
        n_touching += len(scene.touching)
        occluded += int((scene.visible_fraction()[scene.visible_fraction() > 0] < 0.97).any())
        for a in scene.primitives:
            # resting on the table: lowest point at z = 0
            low = a.surface_points_in_base(5000, rng)[:, 2].min()
            assert -1e-9 <= low < 2e-3
            for b in scene.primitives:
                if a.id < b.id:
                    depth = min(b.sdf_in_base(a.surface_points_in_base(5000, rng)).min(),
                                a.sdf_in_base(b.surface_points_in_base(5000, rng)).min())
                    assert depth > -5e-4, f"seed {seed}: {a.name} penetrates {b.name} by {-depth * 1000:.2f} mm"
    assert n_touching >= 6
    assert occluded >= 2


def test_a_touching_pair_shares_nearly_the_same_colour(scenes):
    found = 0
    for (layout, _), scene in scenes.items():
        if layout == "single":
            continue
        by_id = {p.id: p for p in scene.primitives}
        diffs = [np.abs(np.subtract(by_id[i].albedo_rgb, by_id[j].albedo_rgb)).max() for i, j in scene.touching]
        found += min(diffs) < 0.05
    assert found >= 5


def test_straight_down_view_of_a_box_top_and_a_mug_bottom_is_exact():
    box = make_scene("single", seed=4, kinds=("box",), tilt_deg=0.0, distance_m=0.5, width=640, height=480)
    shape = box.primitives[0].shape
    assert isinstance(shape, Box)
    # the optical axis meets the look-at point (0.03 m above the table); depth of the box top follows
    intr = box.frame.intrinsics
    z_axis = box.base_from_camera.rotation[:, 2]
    assert np.allclose(z_axis, [0, 0, -1], atol=1e-9)
    height = box.base_from_camera.translation[2]
    v, u = int(round(intr.cy)), int(round(intr.cx))
    assert box.depth_true_m[v, u] == pytest.approx(height - shape.size_m[2], abs=1e-6)
    mug = make_scene("single", seed=4, kinds=("mug",), tilt_deg=0.0, distance_m=0.5)
    m = mug.primitives[0].shape
    assert isinstance(m, Mug)
    h = mug.base_from_camera.translation[2]
    assert mug.depth_true_m[v, u] == pytest.approx(h - m.bottom_m, abs=1e-6)  # the inside bottom
    # the rim is visible all round: some object pixels are at the rim height
    pts = mug.base_from_camera.apply(_backproject(mug, mug.objects[0].mask))
    assert np.isclose(pts[:, 2], m.height_m, atol=1e-5).sum() > 100
    # the handle is rendered: object pixels more than the body radius from the axis
    axis_xy = mug.primitives[0].base_from_object.translation[:2]
    assert (np.linalg.norm(pts[:, :2] - axis_xy, axis=1) > m.radius_m + 0.005).sum() > 50


def test_plane_pose_and_rig_agree(scenes):
    for scene in scenes.values():
        cam_origin = np.zeros((1, 3))
        height = scene.base_from_camera.translation[2]
        assert scene.plane.signed_distance(cam_origin)[0] == pytest.approx(height, abs=1e-9)
        base_from_camera = scene.frame.base_from_camera(scene.rig.tcp_from_camera)
        assert np.allclose(base_from_camera.matrix, scene.base_from_camera.matrix, atol=1e-9)
        tilt = np.degrees(np.arccos(-scene.base_from_camera.rotation[2, 2]))
        assert 30 - 1e-6 <= tilt <= 60 + 1e-6
        assert scene.frame.intrinsics.fx == pytest.approx(615.3 / 2)


def test_tilt_and_distance_are_honoured():
    s = make_scene("single", seed=0, tilt_deg=45.0, distance_m=0.4, width=160, height=120)
    r = s.base_from_camera.rotation
    assert np.degrees(np.arccos(-r[2, 2])) == pytest.approx(45.0)
    assert s.meta["distance_m"] == pytest.approx(0.4)


def test_depth_noise_follows_the_stereo_model():
    clean = make_scene("side_by_side", seed=7, noise=None)
    noise = DepthNoise()
    noisy = make_scene("side_by_side", seed=7, noise=noise)
    z, zt = noisy.frame.depth_m, noisy.depth_true_m
    both = (z > 0) & (zt > 0)
    holes = (z == 0) & (zt > 0)
    assert 0.005 < holes.mean() < 0.5
    # noise magnitude grows with depth squared: robust sigma in two depth bands
    err = (z - zt)[both]
    zz = zt[both]
    sig_model = zz**2 * noise.subpixel_px / (noisy.frame.intrinsics.fx * noise.baseline_m)
    ratio = np.median(np.abs(err)) / np.median(sig_model)
    assert 0.3 < ratio < 3.0
    near, far = zz < np.quantile(zz, 0.3), zz > np.quantile(zz, 0.7)
    assert np.median(np.abs(err[far])) > np.median(np.abs(err[near]))
    # quantised to 1 mm
    assert np.allclose(z[z > 0] * 1000, np.round(z[z > 0] * 1000), atol=1e-3)
    # stereo shadow: background just left of a foreground edge has more holes than just right of it
    fg = clean.instance_ids > 0
    left_band = np.zeros_like(fg)
    right_band = np.zeros_like(fg)
    left_band[:, :-3] = fg[:, 3:] & ~fg[:, :-3]
    right_band[:, 3:] = fg[:, :-3] & ~fg[:, 3:]
    assert holes[left_band].mean() > holes[right_band].mean() + 0.2


def test_dark_objects_lose_depth():
    noise = DepthNoise(stereo_shadow=False, flying_prob=0.0)
    rate = {"dark": [], "bright": []}
    for seed in range(12):
        s = make_scene("single", seed=seed, noise=noise, width=320, height=240)
        m = s.objects[0].mask
        lum = (s.frame.color[m] @ [0.299, 0.587, 0.114]).mean() / 255
        (rate["dark"] if lum < 0.08 else rate["bright"]).append(float((s.frame.depth_m[m] == 0).mean()))
    assert rate["bright"] and np.mean(rate["bright"]) < 0.2
    assert rate["dark"] and np.mean(rate["dark"]) > 0.4


def test_frame_folder_round_trip(tmp_path):
    s = make_scene("clutter", seed=1, width=160, height=120)
    folder = save_frame_folder(s.frame, tmp_path / "f", objects=s.objects)
    frame = load_frame_folder(folder)
    gt = load_ground_truth(folder)
    assert np.abs(frame.depth_m - s.frame.depth_m).max() < 1e-4
    assert [g.name for g in gt] == [o.name for o in s.objects]
    for a, b in zip(gt, s.objects, strict=True):
        assert np.array_equal(a.mask, b.mask)
        assert np.allclose(a.camera_from_object.matrix, b.camera_from_object.matrix)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"layout": "heap"}, ConfigError, "unknown synthetic layout 'heap'"),
        ({"n_objects": 0}, ConfigError, "n_objects must be between 1 and 12"),
        ({"layout": "side_by_side", "n_objects": 1}, ConfigError, "needs n_objects >= 2"),
        ({"kinds": ("box", "torus")}, ConfigError, "must be a non-empty subset"),
        ({"tilt_deg": 80.0}, UnitsError, "tilt_deg must be in"),
        ({"distance_m": 3.0}, UnitsError, "distance_m must be in"),
        ({"width": 8}, UnitsError, "at least 16x16"),
    ],
)
def test_bad_scene_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_scene(**kwargs)


def test_bad_primitives_and_noise_parameters():
    with pytest.raises(UnitsError, match="box size_m must be 3 positive"):
        Box((0.1, -0.02, 0.03))
    with pytest.raises(UnitsError, match="cylinder radius_m and height_m must be positive"):
        Cylinder(0.0, 0.1)
    with pytest.raises(UnitsError, match="sphere radius_m must be positive"):
        Sphere(-1.0)
    with pytest.raises(UnitsError, match="must be thinner than its radius"):
        Mug(0.04, 0.1, wall_m=0.05)
    with pytest.raises(UnitsError, match="does not fit the body height"):
        Mug(0.04, 0.05, handle_radius_m=0.03)
    with pytest.raises(UnitsError, match="mug height_m must be a positive length"):
        Mug(0.04, 0.0)
    with pytest.raises(UnitsError, match="flying_prob is a probability"):
        DepthNoise(flying_prob=1.5)
    with pytest.raises(UnitsError, match="steep_start_deg < steep_full_deg"):
        DepthNoise(steep_start_deg=80, steep_full_deg=70)
    with pytest.raises(UnitsError, match="baseline_m must be >= 0"):
        DepthNoise(baseline_m=-0.05)
    with pytest.raises(UnitsError, match="range_m must be"):
        DepthNoise(range_m=(1.0, 0.5))
    s = make_scene("single", seed=0, width=64, height=48)
    with pytest.raises(ConfigError, match="scene has no object id 9"):
        s.object_by_id(9)


def test_room_adds_a_finite_table_with_floor_and_wall_as_background():
    scene = make_scene("clutter", seed=1, n_objects=6, width=320, height=180, distance_m=1.3, tilt_deg=50, room=True)
    room = scene.meta["room"]
    assert room is not None and room["floor_z_m"] < 0
    depth = scene.depth_true_m
    ids = scene.instance_ids
    v, u = np.nonzero((ids == 0) & (depth > 0))
    pts = scene.base_from_camera.apply(scene.frame.intrinsics.unproject(np.stack([u, v], 1).astype(float),
                                                                        depth[v, u].astype(float)))
    cx, cy = room["table_centre_xy"]
    hx, hy = room["table_half_xy"]
    on_top = np.abs(pts[:, 2]) < 1e-6
    inside = (np.abs(pts[:, 0] - cx) <= hx + 1e-6) & (np.abs(pts[:, 1] - cy) <= hy + 1e-6)
    floor = np.abs(pts[:, 2] - room["floor_z_m"]) < 1e-6
    n = np.array([*room["wall_normal_xy"], 0.0])
    wall = np.abs((pts - np.array([*room["wall_point_xy"], 0.0])) @ n) < 1e-6
    # every background pixel is the table top (inside its rectangle), the floor or the wall
    assert np.all((on_top & inside) | floor | wall)
    assert floor.mean() > 0.05 and on_top.mean() > 0.2
    # the objects stand inside the table top
    for prim in scene.primitives:
        x, y = prim.base_from_object.translation[:2]
        assert abs(x - cx) < hx and abs(y - cy) < hy
    # without a room the same scene keeps its infinite table (and the same objects)
    plain = make_scene("clutter", seed=1, n_objects=6, width=320, height=180, distance_m=1.3, tilt_deg=50)
    assert [p.name for p in plain.primitives] == [p.name for p in scene.primitives]
    assert np.array_equal(plain.instance_ids, scene.instance_ids)
    assert plain.meta["room"] is None


@pytest.mark.parametrize(("width", "height", "focal_px"), [(640, 480, 615.5), (848, 480, 615.5), (1280, 720, 923.2),
                                                           (320, 240, 307.7)])
def test_d435_modes_keep_square_pixels_and_the_vertical_field_of_view(width, height, focal_px):
    intr = d435_intrinsics(width, height)
    assert (intr.width, intr.height) == (width, height)
    assert intr.fx == pytest.approx(intr.fy, rel=1e-3) and intr.fy == pytest.approx(focal_px, abs=0.5)
    assert abs(intr.cx - (width - 1) / 2) < 3 and abs(intr.cy - (height - 1) / 2) < 3
