"""A synthetic moving-object sequence with exact masks, for tracking and live-loop tests and benchmarks.

One object of a seeded :func:`~graspseg.sim.synthetic.make_scene` slides back and forth on the table along
a line (``x(t) = x0 + amplitude · sin(2π t / period)``), seen by a fixed wrist-like camera. One period is
rendered (exact depth and visible masks); frame ``n`` of an endless stream is frame ``n mod period``, so the
motion is smooth across the loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.camera import CameraIntrinsics
from ..core.errors import ConfigError
from ..core.frame import RGBDFrame
from ..core.transform import BASE, OBJECT, Transform
from .synthetic import PlacedPrimitive, make_scene, render


@dataclass(frozen=True, eq=False)
class MovingSequence:
    """One period of a moving-object sequence.

    Attributes
    ----------
    colors : (N, H, W, 3) uint8
    depths_m : (N, H, W) float32
        Exact depth, metres (0 = nothing hit).
    masks : (N, H, W) bool
        The moving object's visible pixels.
    intrinsics : CameraIntrinsics
    fps : float
        Frames per second the motion was sampled at.
    amplitude_m, period_s : float
        The motion: peak displacement (metres) and period (seconds); peak speed ``2π·amplitude/period``.
    """

    colors: np.ndarray
    depths_m: np.ndarray
    masks: np.ndarray
    intrinsics: CameraIntrinsics
    fps: float
    amplitude_m: float
    period_s: float

    def __len__(self) -> int:
        return len(self.colors)

    def frame_at(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(color, depth_m)`` of frame ``n`` of the endless stream."""
        k = n % len(self)
        return self.colors[k], self.depths_m[k]

    def mask_at(self, n: int) -> np.ndarray:
        return self.masks[n % len(self)]

    def rgbd(self, n: int) -> RGBDFrame:
        c, d = self.frame_at(n)
        return RGBDFrame(c, d, self.intrinsics, timestamp_s=n / self.fps, frame_id=f"{n:06d}")

    def prompt_point(self, n: int = 0) -> tuple[float, float]:
        """The most interior pixel (u, v) of the object's mask on frame ``n``."""
        from scipy import ndimage

        dist = ndimage.distance_transform_edt(self.mask_at(n))
        v, u = np.unravel_index(int(np.argmax(dist)), dist.shape)
        return float(u), float(v)

    @property
    def peak_speed_mps(self) -> float:
        return 2 * math.pi * self.amplitude_m / self.period_s


def moving_object_sequence(*, seed: int = 0, width: int = 640, height: int = 480, fps: float = 30.0,
                           period_s: float = 2.0, amplitude_m: float = 0.04, distance_m: float = 0.45,
                           tilt_deg: float = 35.0) -> MovingSequence:
    """Render one period of an object sliding on a table (see the module docstring).

    ``amplitude_m`` 0.04 over ``period_s`` 2 s peaks at 0.126 m/s (a push, a slow conveyor).
    """
    if width < 64 or height < 48 or fps <= 0 or period_s <= 0 or not 0 < amplitude_m <= 0.2:
        raise ConfigError(f"moving_object_sequence: need width >= 64, height >= 48, fps > 0, period_s > 0 and "
                          f"0 < amplitude_m <= 0.2, got {width}x{height}, fps={fps}, period_s={period_s}, "
                          f"amplitude_m={amplitude_m}")
    scene = make_scene("single", seed=seed, width=width, height=height, distance_m=distance_m, tilt_deg=tilt_deg,
                       kinds=("box", "cylinder"))
    prim = scene.primitives[0]
    intr = scene.frame.intrinsics
    # slide along the camera's image x direction projected on the table: the motion is seen across the image
    x_cam_in_base = scene.camera_from_base.inverse().rotation[:, 0]
    direction = np.array([x_cam_in_base[0], x_cam_in_base[1], 0.0])
    direction /= np.linalg.norm(direction)
    n = max(2, int(round(period_s * fps)))
    colors = np.empty((n, height, width, 3), np.uint8)
    depths = np.empty((n, height, width), np.float32)
    masks = np.empty((n, height, width), bool)
    for k in range(n):
        shift = amplitude_m * math.sin(2 * math.pi * k / n) * direction
        m = prim.base_from_object.matrix.copy()
        m[:3, 3] += shift
        moved = PlacedPrimitive(prim.id, prim.name, prim.shape, Transform(m, BASE, OBJECT), prim.albedo_rgb,
                                prim.label_rgb, prim.lying)
        r = render(intr, scene.camera_from_base, [moved], seed=seed, color_noise=0.0)
        colors[k] = r.color
        depths[k] = np.where(np.isfinite(r.depth), r.depth, 0.0)
        masks[k] = r.ids == prim.id
    return MovingSequence(colors, depths, masks, intr, float(fps), float(amplitude_m), float(period_s))


__all__ = ["MovingSequence", "moving_object_sequence"]
