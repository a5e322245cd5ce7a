from __future__ import annotations

import numpy as np
import pytest

from calibration.board import BoardDetection, board_pose
from calibration.depth_check import board_region_mask, depth_check
from calibration.synthetic import default_intrinsics, render_plane_depth, sample_camera_from_board
from graspseg.core.errors import CalibrationError, ShapeError


def _views(board, n=6, seed=0, **depth_kw):
    intr = default_intrinsics()
    rng = np.random.default_rng(seed)
    edges = np.linspace(0.32, 0.62, n + 1)
    obj = board.corners_in_board()
    poses, depths = [], []
    for v in range(n):
        truth = sample_camera_from_board(rng, board, intr, distance_m=(edges[v], edges[v + 1]))
        uv = intr.project(truth.apply(obj)) + rng.normal(0, 0.2, (obj.shape[0], 2))
        poses.append(board_pose(BoardDetection(uv, np.arange(obj.shape[0])), board, intr).camera_from_board)
        depths.append(render_plane_depth(intr, truth, rng=rng, **depth_kw))
    return intr, poses, depths


def test_recovers_injected_scale_error(board):
    intr, poses, depths = _views(board, scale_error=0.02, noise_m=0.001, quantum_m=0.001)
    r = depth_check(depths, poses, board, intr)
    assert r.scale_error == pytest.approx(0.02, abs=0.003)
    assert abs(r.bias_m) < 0.002
    assert r.distance_m.shape == (6,) and np.all(np.diff(r.distance_m) > 0)
    # per-view error grows with distance, about 2 % of the distance
    np.testing.assert_allclose(r.error_mm, r.distance_m * 20.0, atol=2.0)
    assert r.to_dict()["scale_error_percent"] == pytest.approx(r.scale_error * 100)


def test_recovers_bias_and_no_scale(board):
    intr, poses, depths = _views(board, seed=1, bias_m=0.005, noise_m=0.0005)
    r = depth_check(depths, poses, board, intr)
    assert r.bias_m == pytest.approx(0.005, abs=0.0015)
    assert abs(r.scale_error) < 0.003


def test_board_mask_covers_the_board(board):
    intr, poses, _ = _views(board, n=1)
    mask = board_region_mask(board, intr, poses[0])
    uv = intr.project(poses[0].apply(board.corners_in_board()))
    inside = mask[np.round(uv[:, 1]).astype(int), np.round(uv[:, 0]).astype(int)]
    assert inside.all() and 0.05 < mask.mean() < 0.9


def test_views_without_depth_are_skipped(board):
    intr, poses, depths = _views(board, n=4, scale_error=0.01)
    depths[1] = None
    depths[2] = np.zeros_like(depths[2])
    r = depth_check(depths, poses, board, intr, names=["a", "b", "c", "d"])
    assert r.names == ["a", "d"]
    assert [n for n, _ in r.skipped] == ["b", "c"]


def test_too_few_views_raise(board):
    intr, poses, depths = _views(board, n=2)
    with pytest.raises(CalibrationError, match="depth check needs board views at >= 2 distances"):
        depth_check([depths[0], None], poses, board, intr)


def test_count_mismatch_and_size_mismatch(board):
    intr, poses, depths = _views(board, n=2)
    with pytest.raises(CalibrationError, match="2 depth images but 1 board poses"):
        depth_check(depths, poses[:1], board, intr)
    with pytest.raises(ShapeError, match="intrinsics are for 640x480"):
        depth_check([d[:240, :320] for d in depths], poses, board, intr)
