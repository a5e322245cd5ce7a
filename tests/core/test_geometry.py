"""Depth-image geometry: back-projection, depth jumps, RANSAC and least-squares planes."""

from __future__ import annotations

import numpy as np
import pytest

from graspseg.core import CameraIntrinsics, ShapeError, UnitsError
from graspseg.core.geometry import (
    backproject,
    depth_jump,
    fit_plane_ransac,
    organized_points,
    orient_plane,
    refine_plane,
)


def _plane_depth(intr: CameraIntrinsics, normal, offset) -> np.ndarray:
    """Exact depth image of the plane n·p + d = 0 seen by the camera (float32, metres)."""
    rays = intr.ray_image.astype(np.float64)
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    denom = rays[:, :, 0] * n[0] + rays[:, :, 1] * n[1] + n[2]
    z = -offset / np.linalg.norm(normal) / denom
    return z.astype(np.float32)


def test_organized_points_match_unproject(intrinsics):
    rng = np.random.default_rng(1)
    depth = rng.uniform(0.3, 1.0, (480, 640)).astype(np.float32)
    pts = organized_points(depth, intrinsics)
    assert pts.shape == (480, 640, 3) and pts.dtype == np.float32
    uv = np.array([[0, 0], [639, 479], [123, 321], [320, 240]])
    ref = intrinsics.unproject(uv, depth[uv[:, 1], uv[:, 0]])
    np.testing.assert_allclose(pts[uv[:, 1], uv[:, 0]], ref, rtol=1e-5, atol=1e-6)


def test_organized_points_with_distortion_undistort_rays():
    intr = CameraIntrinsics(64, 48, 60.0, 61.0, 31.0, 24.0, (0.1, -0.05, 0.001, 0.002, 0.0))
    depth = np.full((48, 64), 0.7, np.float32)
    pts = organized_points(depth, intr)
    # projecting the back-projected points must give back the pixel centres
    uv = intr.project(pts.reshape(-1, 3))
    u, v = np.meshgrid(np.arange(64), np.arange(48))
    np.testing.assert_allclose(uv, np.stack([u.ravel(), v.ravel()], 1), atol=1e-3)


def test_backproject_masked_skips_missing_depth_and_reports_pixels(intrinsics):
    depth = np.zeros((480, 640), np.float32)
    depth[100:110, 200:220] = 0.5
    depth[105, 210] = 0.0  # a hole inside the region
    mask = np.zeros((480, 640), bool)
    mask[100:110, 200:215] = True
    pts, uv = backproject(depth, intrinsics, mask)
    assert pts.dtype == np.float32 and uv.dtype == np.int32
    assert len(pts) == 10 * 15 - 1
    assert not ((uv[:, 0] == 210) & (uv[:, 1] == 105)).any()
    assert uv[:, 0].min() == 200 and uv[:, 0].max() == 214 and uv[:, 1].min() == 100 and uv[:, 1].max() == 109
    ref = intrinsics.unproject(uv, depth[uv[:, 1], uv[:, 0]])
    np.testing.assert_allclose(pts, ref, rtol=1e-5, atol=1e-6)


def test_backproject_without_mask_returns_every_valid_pixel(flat_frame):
    pts, uv = backproject(flat_frame.depth_m, flat_frame.intrinsics)
    assert len(pts) == 480 * 640
    assert np.isclose(pts[:, 2].min(), 0.44) and np.isclose(pts[:, 2].max(), 0.5)


def test_backproject_rejects_mismatched_mask_and_integer_depth(intrinsics):
    depth = np.ones((480, 640), np.float32)
    with pytest.raises(ShapeError, match=r"mask is 320x240 .* depth image is 640x480"):
        backproject(depth, intrinsics, np.ones((240, 320), bool))
    with pytest.raises(UnitsError, match="convert raw depth units to metres"):
        backproject(np.ones((480, 640), np.uint16), intrinsics)
    with pytest.raises(ShapeError, match="depth image is 320x240 but the intrinsics are for 640x480"):
        backproject(np.ones((240, 320), np.float32), intrinsics)
    with pytest.raises(ShapeError, match=r"depth_m must be an \(H, W\) image"):
        backproject(np.ones((480, 640, 1), np.float32), intrinsics)


def test_depth_jump_finds_step_edges_and_ignores_holes():
    depth = np.full((20, 30), 0.5, np.float32)
    depth[:, 15:] = 0.6
    depth[5, 5] = 0.0
    jump = depth_jump(depth)
    assert np.allclose(jump[:, 14:16], 0.1, atol=1e-6)
    assert np.all(jump[:, :14] == 0) and np.all(jump[:, 16:] == 0)  # the hole creates no jump


def _noisy_plane_with_outliers(seed=0, n_in=4000, n_out=2000):
    rng = np.random.default_rng(seed)
    normal = np.array([0.1, -0.7, -0.7])
    normal /= np.linalg.norm(normal)
    offset = 0.45
    # points on the plane: pick x, y and solve z
    x = rng.uniform(-0.3, 0.3, n_in)
    y = rng.uniform(-0.2, 0.2, n_in)
    z = -(offset + normal[0] * x + normal[1] * y) / normal[2]
    on = np.stack([x, y, z], 1) + rng.normal(0, 0.001, (n_in, 3)) * normal
    off = rng.uniform([-0.3, -0.2, 0.2], [0.3, 0.2, 0.5], (n_out, 3))
    pts = np.concatenate([on, off]).astype(np.float32)
    return pts, normal, offset, n_in


def test_ransac_recovers_plane_among_outliers_and_is_seeded():
    pts, normal, offset, n_in = _noisy_plane_with_outliers()
    fit = fit_plane_ransac(pts, threshold_m=0.004, iterations=200, seed=3, viewpoint=np.zeros(3))
    n_true, o_true = orient_plane(normal, offset, np.zeros(3))
    assert abs(abs(fit.normal @ n_true) - 1) < 1e-4
    assert fit.normal @ n_true > 0 and abs(fit.offset - o_true) < 1e-3
    assert fit.inliers[:n_in].mean() > 0.99
    assert fit.inliers[n_in:].mean() < 0.1
    assert fit.rmse_m < 0.002
    assert fit.hypotheses > 150
    again = fit_plane_ransac(pts, threshold_m=0.004, iterations=200, seed=3, viewpoint=np.zeros(3))
    np.testing.assert_array_equal(fit.normal, again.normal)
    np.testing.assert_array_equal(fit.inliers, again.inliers)


def test_ransac_viewpoint_orients_normal():
    pts, normal, offset, _ = _noisy_plane_with_outliers(seed=1)
    far = np.array([0.0, 0.0, 5.0])  # behind the plane
    fit = fit_plane_ransac(pts, threshold_m=0.004, seed=0, viewpoint=far)
    assert fit.signed_distance(far[None])[0] > 0
    assert fit.signed_distance(np.zeros((1, 3)))[0] < 0


def test_ransac_restricted_to_a_tilt_finds_the_smaller_parallel_plane():
    rng = np.random.default_rng(4)
    wall = np.stack([rng.uniform(-0.5, 0.5, 3000), rng.uniform(-0.5, 0.5, 3000), np.full(3000, 1.0)], 1)
    shelf = np.stack([rng.uniform(-0.3, 0.3, 1000), np.full(1000, 0.2), rng.uniform(0.5, 0.9, 1000)], 1)
    pts = np.concatenate([wall, shelf]).astype(np.float32)
    assert abs(fit_plane_ransac(pts, threshold_m=0.004, seed=0).normal[2]) > 0.99  # the larger plane
    fit = fit_plane_ransac(pts, threshold_m=0.004, seed=0, axis=np.array([0.0, 1.0, 0.0]), max_tilt_deg=15)
    assert abs(fit.normal[1]) > 0.99 and fit.inliers[3000:].mean() > 0.99
    with pytest.raises(ShapeError, match="no RANSAC hypothesis .* within 15 deg of the given axis"):
        fit_plane_ransac(wall.astype(np.float32), seed=0, axis=np.array([0.0, 1.0, 0.0]), max_tilt_deg=15)


def test_ransac_rejects_bad_input():
    with pytest.raises(ShapeError, match="needs at least 3 points"):
        fit_plane_ransac(np.zeros((2, 3)))
    with pytest.raises(ShapeError, match=r"must be an \(N, 3\) array"):
        fit_plane_ransac(np.zeros((10, 2)))
    with pytest.raises(UnitsError, match="threshold_m must be a positive distance"):
        fit_plane_ransac(np.random.default_rng(0).normal(size=(10, 3)), threshold_m=0)
    line = np.stack([np.linspace(0, 1, 50)] * 3, 1)
    with pytest.raises(ShapeError, match="degenerate"):
        fit_plane_ransac(line, iterations=20)
    with pytest.raises(ShapeError, match="fewer than the 500 required"):
        fit_plane_ransac(np.random.default_rng(0).uniform(size=(300, 3)), threshold_m=0.001, min_inliers=500)


def test_refine_plane_least_squares_and_weights():
    rng = np.random.default_rng(5)
    xy = rng.uniform(-1, 1, (500, 2))
    pts = np.column_stack([xy, 2.0 + 0.01 * rng.normal(size=500)])
    n, d, rmse = refine_plane(pts)
    assert abs(abs(n[2]) - 1) < 1e-3 and abs(abs(d) - 2.0) < 2e-3 and 0.005 < rmse < 0.02
    assert d >= 0  # origin on the positive side
    # a heavily weighted subset pulls the plane onto itself
    pts2 = np.concatenate([pts, np.column_stack([xy[:50], np.full(50, 3.0)])])
    w = np.concatenate([np.full(500, 1e-6), np.ones(50)])
    n2, d2, _ = refine_plane(pts2, weights=w)
    assert abs(abs(d2) - 3.0) < 1e-2
    with pytest.raises(ShapeError, match="at least 3 points"):
        refine_plane(pts[:2])
    with pytest.raises(ShapeError, match="non-negative with a positive sum"):
        refine_plane(pts, weights=-np.ones(500))
