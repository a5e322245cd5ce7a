"""The support plane (table) of a frame: seeded, batched RANSAC on subsampled depth."""

from __future__ import annotations

import logging

import numpy as np

from ..core.camera import CameraIntrinsics
from ..core.errors import FrameMismatchError, NoSupportPlaneError, ShapeError
from ..core.frame import RGBDFrame
from ..core.geometry import PlaneFit, backproject_flat, fit_plane_ransac, orient_plane
from ..core.transform import CAMERA
from .cleanup import range_mask
from .config import CloudConfig
from .types import SupportPlane

log = logging.getLogger(__name__)


def strided_points(
    depth_m: np.ndarray, intrinsics: CameraIntrinsics, stride_px: int, keep: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Back-project every ``stride_px``-th pixel (u and v) with a reading.

    Parameters
    ----------
    depth_m : (H, W) float32
        Depth in metres, 0 = no reading.
    intrinsics : CameraIntrinsics
        For the W×H image.
    stride_px : int
        Pixel step.
    keep : (H, W) bool, optional
        Only these pixels.

    Returns
    -------
    points : (N, 3) float32
        ``camera_color_optical``, metres.
    pixels_uv : (N, 2) int32
    """
    s = int(stride_px)
    d = depth_m[::s, ::s]
    valid = d > 0
    if keep is not None:
        valid &= keep[::s, ::s]
    vs, us = np.nonzero(valid)
    width = depth_m.shape[1]
    flat = vs * (s * width) + us * s
    pts = backproject_flat(flat, depth_m, intrinsics)
    uv = np.empty((len(pts), 2), np.int32)
    uv[:, 0] = us * s
    uv[:, 1] = vs * s
    return pts, uv


def fit_support_plane(
    frame: RGBDFrame,
    config: CloudConfig | None = None,
    *,
    exclude_mask: np.ndarray | None = None,
    initial: SupportPlane | None = None,
) -> SupportPlane:
    """Find the plane the objects stand on (the dominant plane of the depth image).

    Every ``config.plane_stride_px``-th pixel with an in-range reading, outside ``exclude_mask``, is
    back-projected; a seeded RANSAC (``config.plane_iterations`` hypotheses scored in one batch,
    ``config.seed``) followed by least-squares refinement gives the plane. Same frame and config, same
    plane.

    Parameters
    ----------
    frame : RGBDFrame
        The frame (depth in metres).
    config : CloudConfig, optional
        Defaults to ``CloudConfig()``.
    exclude_mask : (H, W) bool, optional
        Pixels to ignore (e.g. the object's mask, so a large box top is not taken for the table).
    initial : SupportPlane, optional
        A plane already found for this frame (e.g. by the segmenter, in ``camera_color_optical``): it
        replaces the RANSAC hypotheses, and is only refined by least squares on its inliers among the
        samples (much faster; same acceptance tests).

    Returns
    -------
    SupportPlane
        In ``camera_color_optical``; the normal points towards the camera (the camera origin is on the
        positive side). ``inlier_ratio`` is the fraction of the sampled valid pixels on the plane.

    Raises
    ------
    NoSupportPlaneError
        Too little valid depth, or no plane holding ``config.plane_min_inlier_ratio`` of it.
    """
    cfg = config or CloudConfig()
    s = int(cfg.plane_stride_px)
    depth = frame.depth_m[::s, ::s]  # work on the subsampled grid only
    keep = range_mask(depth, cfg)
    if exclude_mask is not None:
        ex = np.asarray(exclude_mask)
        if ex.shape != frame.depth_m.shape:
            raise ShapeError(
                f"exclude_mask is {ex.shape[::-1]} (W, H) but the frame is {frame.width}x{frame.height}; give an (H, W) mask"
            )
        ex = ex[::s, ::s]
        keep &= ~(ex if ex.dtype == bool else ex > 0)
    vs, us = np.nonzero(keep)
    pts = backproject_flat(vs * (s * frame.width) + us * s, frame.depth_m, frame.intrinsics)
    near, far = cfg.depth_range_m
    if len(pts) < max(3, cfg.plane_min_points):
        raise NoSupportPlaneError(
            f"no support plane: only {len(pts)} depth samples within {near:g}-{far:g} m (every {cfg.plane_stride_px}th "
            f"pixel, outside the object), at least {max(3, cfg.plane_min_points)} needed; point the camera at the "
            "table from farther away, check the depth range (cloud.depth_range_m) or lower cloud.plane_min_points"
        )
    try:
        if initial is not None:
            fit = _refine_initial(pts, initial, cfg)
        else:
            fit = fit_plane_ransac(
                pts,
                threshold_m=cfg.plane_threshold_m,
                iterations=cfg.plane_iterations,
                seed=cfg.seed,
                score_points=cfg.plane_score_points,
                viewpoint=np.zeros(3),
            )
    except ShapeError as e:
        raise NoSupportPlaneError(f"no support plane: {e}") from None
    ratio = fit.inlier_ratio
    if ratio < cfg.plane_min_inlier_ratio or fit.inlier_count < cfg.plane_min_points:
        raise NoSupportPlaneError(
            f"no support plane: the best plane holds {ratio:.0%} of {len(pts)} depth samples ({fit.inlier_count} "
            f"within {cfg.plane_threshold_m * 1000:.1f} mm), wanted at least {cfg.plane_min_inlier_ratio:.0%} and "
            f"{cfg.plane_min_points} samples; make more of the table visible, or loosen cloud.plane_threshold_m / "
            "cloud.plane_min_inlier_ratio"
        )
    log.debug(
        "support plane: normal %s offset %.4f m, %.0f%% inliers, rmse %.2f mm",
        np.round(fit.normal, 3),
        fit.offset,
        100 * ratio,
        1000 * fit.rmse_m,
    )
    return SupportPlane(fit.normal, fit.offset, ratio, fit.rmse_m, cfg.plane_threshold_m, CAMERA)


def _refine_initial(pts: np.ndarray, initial: SupportPlane, cfg: CloudConfig) -> PlaneFit:
    """The last step of :func:`fit_plane_ransac` started from ``initial``: least squares on its inliers.

    One refinement on the inliers of ``pts`` (N, 3) float32 within ``cfg.plane_threshold_m``, then two on
    those within half of it (the table's dense core, as the best RANSAC hypothesis would pick); the
    normal points towards the camera.
    """
    if initial.frame != CAMERA:
        raise FrameMismatchError(
            f"the initial support plane is in '{initial.frame}', wanted '{CAMERA}'; transform it first"
        )
    p = np.asarray(pts, np.float32)
    thr = np.float32(cfg.plane_threshold_m)

    def inliers_of(nrm: np.ndarray, off: float, t: np.float32) -> np.ndarray:
        d = p @ np.asarray(nrm, np.float32)
        d += np.float32(off)
        return np.abs(d, out=d) <= t

    normal, offset = np.asarray(initial.normal, np.float64), float(initial.offset)
    for scale in (1.0, 0.5, 0.5):  # the last refinements on the core inliers: the densest plane wins
        sel = np.flatnonzero(inliers_of(normal, offset, thr * np.float32(scale)))
        if len(sel) < 3:
            break
        if len(sel) > _REFINE_POINTS:  # an evenly spaced subset fixes the plane just as well, faster
            sel = sel[:: -(-len(sel) // _REFINE_POINTS)]
        normal, offset = _plane_lsq(p[sel])
    inliers = inliers_of(normal, offset, thr)
    count = int(np.count_nonzero(inliers))
    if count < 3:
        raise ShapeError(
            f"the initial plane has {count} inliers within {cfg.plane_threshold_m * 1000:.1f} mm among "
            f"{len(p)} depth samples; it does not describe this frame"
        )
    resid = p[inliers].astype(np.float64) @ normal + offset
    normal, offset = orient_plane(normal, offset, np.zeros(3))
    return PlaneFit(normal, offset, inliers, float(np.sqrt(np.mean(resid**2))), float(cfg.plane_threshold_m), 1)


_REFINE_POINTS = 4096


def _plane_lsq(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Total-least-squares plane of (N, 3) points: (unit normal, offset). No BLAS call (a threaded
    matrix product stalls when the cores are busy)."""
    q = np.asarray(points, np.float64)
    centroid = q.mean(axis=0)
    x, y, z = (q - centroid).T.copy()
    xy, xz, yz = x @ y, x @ z, y @ z
    cov = np.array([[x @ x, xy, xz], [xy, y @ y, yz], [xz, yz, z @ z]])
    _, evecs = np.linalg.eigh(cov)
    normal = evecs[:, 0]
    return normal, -float(normal @ centroid)
