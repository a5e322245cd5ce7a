"""Mask quality metrics: IoU, boundary F-score at a pixel tolerance, and Boundary IoU.

All masks are (H, W) bool images of the same size. Boundaries are the inner contour pixels of a mask
(mask pixels with a 4-neighbour outside the mask; the image border counts as outside).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.errors import ShapeError


def _pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.ndim != 2 or gt.ndim != 2:
        raise ShapeError(f"masks must be (H, W) images, got shapes {pred.shape} and {gt.shape}")
    if pred.shape != gt.shape:
        raise ShapeError(
            f"predicted mask is {pred.shape[1]}x{pred.shape[0]} but the reference is {gt.shape[1]}x{gt.shape[0]}; "
            "compare masks of the same image size"
        )
    return pred.astype(bool, copy=False), gt.astype(bool, copy=False)


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union of two (H, W) bool masks; 1.0 when both are empty."""
    pred, gt = _pair(pred, gt)
    union = np.count_nonzero(pred | gt)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(pred & gt) / union)


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool inner boundary: mask pixels with at least one 4-neighbour outside (or off the image)."""
    m = np.asarray(mask).astype(np.uint8)
    if m.ndim != 2:
        raise ShapeError(f"mask must be an (H, W) image, got shape {m.shape}")
    padded = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))[1:-1, 1:-1]
    return (m > 0) & (eroded == 0)


def _dist_to(boundary: np.ndarray) -> np.ndarray:
    """Euclidean distance (px) of every pixel to the nearest True pixel of ``boundary`` (inf if none)."""
    if not boundary.any():
        return np.full(boundary.shape, np.inf, np.float32)
    return cv2.distanceTransform((~boundary).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def boundary_f_score(pred: np.ndarray, gt: np.ndarray, tolerance_px: float = 2.0) -> float:
    """Boundary F-measure (Martin et al. / DAVIS ``F``) with a matching tolerance in pixels.

    A predicted boundary pixel is correct when a reference boundary pixel lies within ``tolerance_px``
    (Euclidean); recall is the same the other way round. Returns the harmonic mean of precision and
    recall; 1.0 when both masks are empty, 0.0 when exactly one is.
    """
    pred, gt = _pair(pred, gt)
    if tolerance_px < 0:
        raise ShapeError(f"tolerance_px must be >= 0 pixels, got {tolerance_px}")
    bp, bg = mask_boundary(pred), mask_boundary(gt)
    n_p, n_g = int(bp.sum()), int(bg.sum())
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    precision = float(np.count_nonzero(_dist_to(bg)[bp] <= tolerance_px) / n_p)
    recall = float(np.count_nonzero(_dist_to(bp)[bg] <= tolerance_px) / n_g)
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def _inner_band(mask: np.ndarray, width_px: float) -> np.ndarray:
    """Mask pixels within ``width_px`` of the mask's outside (image border counts as outside)."""
    m = mask.astype(np.uint8)
    padded = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    return mask & (dist <= width_px)


def boundary_iou(pred: np.ndarray, gt: np.ndarray, dilation_ratio: float = 0.02, width_px: float | None = None) -> float:
    """Boundary IoU (Cheng et al., CVPR 2021): IoU of the mask pixels within ``d`` of each contour.

    ``d = width_px`` when given, else ``dilation_ratio`` × the image diagonal (at least 1 px).
    """
    pred, gt = _pair(pred, gt)
    if width_px is None:
        h, w = gt.shape
        width_px = max(1.0, round(dilation_ratio * float(np.hypot(h, w))))
    if width_px <= 0:
        raise ShapeError(f"boundary width must be > 0 pixels, got {width_px}")
    bp, bg = _inner_band(pred, width_px), _inner_band(gt, width_px)
    union = np.count_nonzero(bp | bg)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(bp & bg) / union)


def signed_boundary_offset_px(pred: np.ndarray, gt: np.ndarray) -> float | None:
    """Median signed distance (px) of the predicted boundary to the reference outline.

    Positive: the predicted outline lies outside the reference (mask too large), negative: inside. A
    predicted boundary pixel on the reference's own boundary counts 0, one pixel outside +1, one pixel
    further inside -1. ``None`` when either mask is empty.
    """
    pred, gt = _pair(pred, gt)
    bp = mask_boundary(pred)
    if not bp.any() or not gt.any():
        return None
    outside = cv2.distanceTransform((~gt).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    inside = cv2.distanceTransform(gt.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    signed = np.where(gt, -(inside - 1.0), outside)
    return float(np.median(signed[bp]))
