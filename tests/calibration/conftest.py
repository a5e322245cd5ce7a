"""Fixtures for the calibration tests: seeded synthetic eye-in-hand data and a rendered image folder."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.board import CharucoBoardSpec
from calibration.formats import write_poses_jsonl
from calibration.synthetic import make_hand_eye_dataset, render_board_view, render_plane_depth
from graspseg.capture.images import write_png
from graspseg.core.io import atomic_write_json


@pytest.fixture(scope="session")
def board() -> CharucoBoardSpec:
    return CharucoBoardSpec()


@pytest.fixture(scope="session")
def dataset():
    """12 noisy eye-in-hand views (projected corners)."""
    return make_hand_eye_dataset(7, n_poses=12)


@pytest.fixture(scope="session")
def rendered_dir(tmp_path_factory):
    """A folder of 10 rendered ChArUco views + depth with a 2 % scale error, poses.jsonl and intrinsics."""
    ds = make_hand_eye_dataset(11, n_poses=10)
    out = tmp_path_factory.mktemp("handeye_views")
    rng = np.random.default_rng(5)
    for k, c in enumerate(ds.camera_from_board):
        write_png(out / f"view_{k:02d}.png", render_board_view(ds.board, ds.intrinsics, c, rng=rng))
        depth = render_plane_depth(ds.intrinsics, c, scale_error=0.02, noise_m=0.001, rng=rng)
        np.save(out / f"view_{k:02d}_depth.npy", depth)
    write_poses_jsonl(out / "poses.jsonl", ds.base_from_tcp)
    atomic_write_json(out / "intrinsics.json", ds.intrinsics.to_dict())
    return out, ds
