"""Click simulation for interactive segmentation (the protocol of the field's NoC benchmarks).

The first click is the interior point of the true mask farthest from its boundary. Each next click goes
into the largest error region (missed object pixels give a positive click, leaked background pixels a
negative one), at the point of that region farthest from the region's boundary.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.errors import InputError, ShapeError


def _interior_distance(region: np.ndarray) -> np.ndarray:
    """Distance (px) of each region pixel to the nearest non-region pixel; the image border is outside."""
    padded = cv2.copyMakeBorder(region.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def _farthest_point(region: np.ndarray) -> tuple[float, float, float]:
    dist = _interior_distance(region)
    best = float(dist.max())
    # ties (a plateau of maxima, e.g. along a rectangle's midline): take the tied pixel nearest their
    # centroid, so the click sits in the middle of the plateau (deterministic)
    vv, uu = np.nonzero(dist >= best - 1e-4)
    j = int(np.argmin((uu - uu.mean()) ** 2 + (vv - vv.mean()) ** 2))
    return float(uu[j]), float(vv[j]), best


def first_click(gt_mask: np.ndarray) -> tuple[float, float]:
    """The standard first click: the pixel (u, v) of ``gt_mask`` farthest from its boundary.

    Parameters
    ----------
    gt_mask : (H, W) bool
        The true object mask.

    Returns
    -------
    (u, v) : tuple of float
        Column and row of the click, pixels.
    """
    gt = np.asarray(gt_mask)
    if gt.ndim != 2:
        raise ShapeError(f"gt_mask must be an (H, W) image, got shape {gt.shape}")
    gt = gt.astype(bool)
    if not gt.any():
        raise InputError("the ground-truth mask is empty; a click needs at least one object pixel")
    u, v, _ = _farthest_point(gt)
    return u, v


def next_click(pred_mask: np.ndarray, gt_mask: np.ndarray) -> tuple[float, float, int] | None:
    """The corrective click for the current prediction, or None when the prediction is exact.

    Returns
    -------
    (u, v, label) : label 1 (positive) when the largest error is missed object, 0 when it is leaked background.
    """
    pred = np.asarray(pred_mask).astype(bool)
    gt = np.asarray(gt_mask).astype(bool)
    if pred.shape != gt.shape or gt.ndim != 2:
        raise ShapeError(f"masks must be (H, W) images of one size, got {pred.shape} and {gt.shape}")
    fn = gt & ~pred
    fp = pred & ~gt
    if not fn.any() and not fp.any():
        return None
    u_n, v_n, d_n = _farthest_point(fn) if fn.any() else (0.0, 0.0, -1.0)
    u_p, v_p, d_p = _farthest_point(fp) if fp.any() else (0.0, 0.0, -1.0)
    if d_n >= d_p:
        return u_n, v_n, 1
    return u_p, v_p, 0
