"""Synthetic frames for the cloud-stage tests (a box on a table, a tilted table)."""

from __future__ import annotations

import numpy as np
import pytest

from graspseg.core import CameraIntrinsics, RGBDFrame

INTR = CameraIntrinsics(640, 480, 615.0, 615.0, 319.5, 239.5)
BOX = (slice(200, 280), slice(280, 360))  # rows, cols of the box top in the image


def box_mask() -> np.ndarray:
    m = np.zeros((480, 640), bool)
    m[BOX] = True
    return m


def box_frame(top_m: float = 0.44, table_m: float = 0.5, **kw) -> RGBDFrame:
    """A fronto-parallel table at ``table_m`` with a box whose top face is at ``top_m`` at the image centre."""
    depth = np.full((480, 640), table_m, np.float32)
    depth[BOX] = top_m
    color = np.full((480, 640, 3), 120, np.uint8)
    color[BOX] = (200, 30, 30)
    return RGBDFrame(color, depth, INTR, frame_id="box", **kw)


def tilted_table_depth(normal=(0.0, -0.8, -0.6), offset_m: float = 0.4) -> np.ndarray:
    """Exact depth image of the plane ``n·p + d = 0`` (metres)."""
    n = np.asarray(normal, float)
    n = n / np.linalg.norm(n)
    rays = INTR.ray_image.astype(np.float64)
    z = -offset_m / (rays[:, :, 0] * n[0] + rays[:, :, 1] * n[1] + n[2])
    return z.astype(np.float32)


@pytest.fixture
def make_box_frame():
    return box_frame


@pytest.fixture
def mask_of_box() -> np.ndarray:
    return box_mask()
