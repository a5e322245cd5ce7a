"""Depth check: compare the depth camera with the board plane seen by the colour camera.

The board pose from the colour image (PnP) fixes the board plane in ``camera_color_optical``. For
every depth pixel inside the board the plane gives the expected depth along that pixel's ray; a
least-squares line ``measured = (1 + scale_error) * expected + bias`` over all views measures the
depth scale error and bias, and per-view medians give the error in mm at each distance. A silent
depth-scale error moves every grasp along the viewing ray, so check it whenever the rig changes.
Depth must be aligned to the colour image (as in :class:`graspseg.core.frame.RGBDFrame`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from graspseg.core.camera import CameraIntrinsics
from graspseg.core.errors import CalibrationError
from graspseg.core.transform import Transform

from .board import CharucoBoardSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DepthCheckResult:
    """Depth scale error and bias of a depth camera against board planes.

    Attributes
    ----------
    scale_error : float
        Fractional scale error: measured ≈ (1 + scale_error) · true + bias (0.02 = 2 % too far).
    bias_m : float
        Constant offset, metres.
    distance_m : (V,) float
        Median true depth of the board in each used view, metres.
    error_mm : (V,) float
        Median (measured − expected) depth over the board in each view, mm.
    residual_mm : float
        RMS of the pixel residuals after removing scale and bias, mm (depth noise + flatness).
    n_pixels : int
    names : list of str
    skipped : list of (str, str)
    """

    scale_error: float
    bias_m: float
    distance_m: np.ndarray
    error_mm: np.ndarray
    residual_mm: float
    n_pixels: int
    names: list = field(default_factory=list)
    skipped: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "schema_version": 1,
            "units": {"scale_error": "fraction", "bias": "m", "distance": "m", "error": "mm"},
            "scale_error": self.scale_error,
            "scale_error_percent": self.scale_error * 100.0,
            "bias_m": self.bias_m,
            "residual_mm": self.residual_mm,
            "n_pixels": self.n_pixels,
            "per_view": [
                {"name": n, "distance_m": float(d), "error_mm": float(e)}
                for n, d, e in zip(self.names, self.distance_m, self.error_mm, strict=True)
            ],
            "skipped": [f"{n}: {r}" for n, r in self.skipped],
        }


def board_region_mask(
    board: CharucoBoardSpec, intrinsics: CameraIntrinsics, camera_from_board: Transform, *, inset_m: float = 0.005
) -> np.ndarray:
    """(H, W) bool mask of the pixels that see the board (its outline shrunk by ``inset_m``)."""
    w, h = board.size_m
    outline = np.array([[inset_m, inset_m, 0], [w - inset_m, inset_m, 0], [w - inset_m, h - inset_m, 0], [inset_m, h - inset_m, 0]])
    uv = intrinsics.project(camera_from_board.apply(outline))
    mask = np.zeros((intrinsics.height, intrinsics.width), np.uint8)
    if np.all(np.isfinite(uv)):
        cv2.fillConvexPoly(mask, np.round(uv * 16).astype(np.int32), 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def expected_plane_depth(intrinsics: CameraIntrinsics, camera_from_board: Transform, mask: np.ndarray) -> np.ndarray:
    """Depth (metres along z) of the board plane at the masked pixels, (K,) float64 in row-major order."""
    rays = intrinsics.ray_image[mask].astype(np.float64)
    n = camera_from_board.rotation[:, 2]
    d = float(n @ camera_from_board.translation)
    denom = rays[:, 0] * n[0] + rays[:, 1] * n[1] + n[2]
    return d / denom


def depth_check(
    depths_m: Sequence[np.ndarray | None],
    camera_from_board: Sequence[Transform | None],
    board: CharucoBoardSpec,
    intrinsics: CameraIntrinsics,
    *,
    names: Sequence[str] | None = None,
    min_views: int = 2,
    min_pixels: int = 200,
    outlier_m: float = 0.02,
) -> DepthCheckResult:
    """Fit depth scale error and bias from board views (see module docstring).

    Parameters
    ----------
    depths_m : sequence of (H, W) float32 or None
        Depth aligned to colour, metres, 0 = no reading.
    camera_from_board : sequence of Transform or None
        Board pose from the colour image of the same view (None: board not found).
    """
    if len(depths_m) != len(camera_from_board):
        raise CalibrationError(f"got {len(depths_m)} depth images but {len(camera_from_board)} board poses")
    names = list(names) if names is not None else [f"view_{k:03d}" for k in range(len(depths_m))]
    exp_all, meas_all, view_idx, used, skipped = [], [], [], [], []
    for k, (dep, cb) in enumerate(zip(depths_m, camera_from_board, strict=True)):
        if dep is None:
            skipped.append((names[k], "no depth image"))
            continue
        if cb is None:
            skipped.append((names[k], "no board pose"))
            continue
        dep = np.asarray(dep)
        intrinsics.check_image_size(dep.shape[1], dep.shape[0], what=f"depth image {names[k]}")
        mask = board_region_mask(board, intrinsics, cb)
        expected = expected_plane_depth(intrinsics, cb, mask)
        measured = dep[mask].astype(np.float64)
        ok = (measured > 0) & np.isfinite(measured) & (np.abs(measured - expected) < max(outlier_m, 0.1 * float(np.median(expected))))
        if ok.sum() < min_pixels:
            skipped.append((names[k], f"only {int(ok.sum())} valid depth pixels on the board (need {min_pixels})"))
            continue
        exp_all.append(expected[ok])
        meas_all.append(measured[ok])
        view_idx.append(np.full(int(ok.sum()), len(used)))
        used.append(k)
    for nm, why in skipped:
        log.warning("depth check skips %s: %s", nm, why)
    if len(used) < min_views:
        raise CalibrationError(
            f"depth check needs board views at >= {min_views} distances with valid depth, got {len(used)} "
            f"(skipped: {[f'{n}: {r}' for n, r in skipped]}); capture the board at e.g. 0.3, 0.45 and 0.6 m"
        )
    e = np.concatenate(exp_all)
    m = np.concatenate(meas_all)
    vi = np.concatenate(view_idx)
    dist = np.array([np.median(x) for x in exp_all])
    if dist.max() - dist.min() < 0.05:
        log.warning(
            "depth check: all board views lie within %.0f mm of each other; scale and bias are hard to separate. "
            "Capture the board at several distances (0.3 to 0.6 m)", (dist.max() - dist.min()) * 1000,
        )
    # Weight views equally (large close-up views would otherwise dominate).
    wts = 1.0 / np.bincount(vi)[vi]
    a = np.stack([e, np.ones_like(e)], axis=1) * np.sqrt(wts)[:, None]
    sol, *_ = np.linalg.lstsq(a, m * np.sqrt(wts), rcond=None)
    scale, bias = float(sol[0]), float(sol[1])
    resid = m - (scale * e + bias)
    err_mm = np.array([np.median(mm - ee) * 1000.0 for mm, ee in zip(meas_all, exp_all, strict=True)])
    return DepthCheckResult(
        scale - 1.0, bias, dist, err_mm, float(np.sqrt(np.mean(resid**2)) * 1000.0), int(e.size),
        [names[k] for k in used], skipped,
    )
