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


@pytest.fixture(scope="session")
def empty_table_720p() -> RGBDFrame:
    """An empty wooden table filling a 1280x720 view from 0.4 m at 30° tilt, with a D405's depth noise and its
    0.1 mm depth units (what a click on nothing but the table, or segment-all on it, gets)."""
    import math

    from graspseg.sim.synthetic import _look_at, d435_intrinsics, render, sensor_noise

    intr = d435_intrinsics(1280, 720)
    r = render(intr, _look_at(np.zeros(3), 0.4, math.radians(30.0), 0.3, 0.0), [], seed=0)
    depth = sensor_noise("d405").apply(r.depth, intrinsics=intr, normals_in_camera=r.normals_cam,
                                       luminance=r.luminance, specular=r.specular, rng=np.random.default_rng(0))
    return RGBDFrame(r.color, depth, intr, frame_id="empty_table")


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
