"""Shared fixtures: the real frame folders of the shared data set and small synthetic frames."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from graspseg.core import CameraIntrinsics, RGBDFrame

REPO = Path(__file__).resolve().parents[1]


def _find_shared_real() -> Path | None:
    for base in (REPO.parent / "shared", REPO / "shared"):
        p = base / "data" / "real" / "6dof_graspnet"
        if p.is_dir():
            return p
    return None


REAL_DIR = _find_shared_real()
SAMPLE_DIR = REPO / "graspseg" / "data" / "sample_frame"
REAL_NAMES = sorted(p.name for p in REAL_DIR.iterdir() if p.is_dir()) if REAL_DIR else []


@pytest.fixture(scope="session")
def real_dir() -> Path:
    if REAL_DIR is None:
        pytest.skip("shared real frames not found")
    return REAL_DIR


@pytest.fixture(scope="session")
def sample_frame_dir() -> Path:
    """The frame shipped inside the package (always present)."""
    return SAMPLE_DIR


@pytest.fixture
def intrinsics() -> CameraIntrinsics:
    return CameraIntrinsics(640, 480, 615.0, 615.0, 319.5, 239.5)


@pytest.fixture
def flat_frame(intrinsics) -> RGBDFrame:
    """A 640x480 frame of a flat table at 0.5 m with one 6 cm box standing on it at the image centre."""
    depth = np.full((480, 640), 0.5, np.float32)
    depth[200:280, 280:360] = 0.44
    color = np.full((480, 640, 3), 120, np.uint8)
    color[200:280, 280:360] = (200, 30, 30)
    return RGBDFrame(color, depth, intrinsics, frame_id="flat")


@pytest.fixture
def no_thread_leak():
    """Fail the test when it leaves threads running (capture, loop and recorder threads must all be joined)."""
    before = {t.ident for t in threading.enumerate()}
    yield
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        extra = [t.name for t in threading.enumerate() if t.ident not in before and t.is_alive()]
        if not extra:
            return
        time.sleep(0.05)
    raise AssertionError(f"threads left running: {extra}")
