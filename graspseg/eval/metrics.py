"""Mask quality metrics: IoU, boundary F (fixed-pixel and DAVIS), Boundary IoU, rim offsets, 3-D rim error.

All masks are (H, W) bool images of the same size. Each function states its reference definition; the
definitions, with worked examples, are collected in ``docs/metrics.md``. Two boundary maps are used:

* the *inner contour* (:func:`mask_boundary`): mask pixels with a 4-neighbour outside the mask, the image
  border counting as outside — used by the fixed-pixel boundary F, the rim offsets and the 3-D rim error;
* the *DAVIS boundary map* (:func:`davis_boundary_map`): the pixels whose right, lower or lower-right
  neighbour has the other label (``seg2bmap`` of the DAVIS toolkit, image border not a boundary) — used by
  :func:`davis_boundary_f` so that its numbers are the DAVIS benchmark's.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..core.errors import ShapeError

#: DAVIS boundary tolerance as a fraction of the image diagonal (``bound_th`` of the DAVIS toolkit).
DAVIS_BOUND_TH = 0.008
#: Boundary IoU band as a fraction of the image diagonal (Cheng et al. 2021).
BOUNDARY_IOU_RATIO = 0.02


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
    """Intersection over union ``|P ∩ G| / |P ∪ G|`` of two (H, W) bool masks; 1.0 when both are empty.

    Examples
    --------
    >>> a = np.zeros((4, 4), bool); a[:2] = True
    >>> b = np.zeros((4, 4), bool); b[1:3] = True
    >>> mask_iou(a, b)  # 4 shared pixels of 12
    0.3333333333333333
    """
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


def davis_boundary_map(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool boundary map of the DAVIS toolkit (``seg2bmap`` at the image's own size).

    A pixel is on the boundary when its right, lower or lower-right neighbour has the other label; in the
    last row only the right neighbour counts, in the last column only the lower one, and the bottom-right
    pixel never is. The image border is not a boundary. The map is one pixel wide and lies on the upper-left
    side of each transition (outside the mask on its left and top edges, inside on its right and bottom).
    """
    seg = np.asarray(mask)
    if seg.ndim != 2:
        raise ShapeError(f"mask must be an (H, W) image, got shape {seg.shape}")
    seg = seg.astype(bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def _dist_to(boundary: np.ndarray) -> np.ndarray:
    """Euclidean distance (px) of every pixel to the nearest True pixel of ``boundary`` (inf if none)."""
    if not boundary.any():
        return np.full(boundary.shape, np.inf, np.float32)
    return cv2.distanceTransform((~boundary).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _f_measure(bp: np.ndarray, bg: np.ndarray, tolerance_px: float) -> float:
    n_p, n_g = int(bp.sum()), int(bg.sum())
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0  # DAVIS: precision 1 and recall 0 (or the reverse)
    precision = float(np.count_nonzero(_dist_to(bg)[bp] <= tolerance_px) / n_p)
    recall = float(np.count_nonzero(_dist_to(bp)[bg] <= tolerance_px) / n_g)
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def boundary_f_score(pred: np.ndarray, gt: np.ndarray, tolerance_px: float = 2.0) -> float:
    """Boundary F-measure at a fixed pixel tolerance (Martin et al. 2004; the ``F`` of DAVIS).

    Reference definition: with ``B_P``, ``B_G`` the boundary pixels of prediction and reference (inner
    contours, :func:`mask_boundary`), precision ``P = |{p ∈ B_P : d(p, B_G) ≤ t}| / |B_P|``, recall
    ``R = |{g ∈ B_G : d(g, B_P) ≤ t}| / |B_G|`` with ``d`` the Euclidean distance in pixels (a disk of
    radius ``t``), and ``F = 2PR / (P + R)``. 1.0 when both masks are empty, 0.0 when exactly one is.

    Parameters
    ----------
    pred, gt : (H, W) bool
    tolerance_px : float
        Matching tolerance ``t``, pixels (>= 0).
    """
    pred, gt = _pair(pred, gt)
    if not tolerance_px >= 0:
        raise ShapeError(f"tolerance_px must be >= 0 pixels, got {tolerance_px}")
    return _f_measure(mask_boundary(pred), mask_boundary(gt), tolerance_px)


def davis_tolerance_px(shape_hw: tuple[int, int], bound_th: float = DAVIS_BOUND_TH) -> float:
    """The DAVIS boundary tolerance: ``bound_th`` pixels when ``bound_th >= 1``, else ``ceil(bound_th × diagonal)``.

    >>> davis_tolerance_px((480, 640))  # ceil(0.008 * 800)
    7.0
    >>> davis_tolerance_px((480, 854))  # ceil(0.008 * 979.7)
    8.0
    """
    if not bound_th > 0:
        raise ShapeError(f"bound_th must be > 0 (a fraction of the diagonal, or pixels when >= 1), got {bound_th}")
    if bound_th >= 1:
        return float(bound_th)
    h, w = shape_hw
    return float(math.ceil(bound_th * math.hypot(h, w)))


def davis_boundary_f(pred: np.ndarray, gt: np.ndarray, bound_th: float = DAVIS_BOUND_TH) -> float:
    """Boundary F of the DAVIS benchmark (Perazzi et al. 2016, ``db_eval_boundary`` of the DAVIS toolkit).

    Reference definition: boundary maps by :func:`davis_boundary_map` (``seg2bmap``); tolerance
    ``t = ceil(bound_th × sqrt(H² + W²))`` pixels (``bound_th = 0.008``: 7 px at 640×480, 12 px at 1280×720);
    a boundary pixel matches when the other boundary has a pixel inside the disk of radius ``t`` around it;
    ``F = 2PR / (P + R)`` as in :func:`boundary_f_score`. 1.0 when both masks are empty, 0.0 when one is.
    """
    pred, gt = _pair(pred, gt)
    return _f_measure(davis_boundary_map(pred), davis_boundary_map(gt), davis_tolerance_px(gt.shape, bound_th))


def boundary_width_px(shape_hw: tuple[int, int], dilation_ratio: float = BOUNDARY_IOU_RATIO) -> int:
    """Boundary IoU band width ``d = max(1, round(dilation_ratio × diagonal))`` pixels (16 px at 640×480).

    >>> boundary_width_px((480, 640))
    16
    """
    h, w = shape_hw
    return max(1, int(round(dilation_ratio * math.hypot(h, w))))


def boundary_band(mask: np.ndarray, width_px: float) -> np.ndarray:
    """Mask pixels within ``width_px`` of the mask's outside, chessboard distance (image border outside).

    This is ``mask - erode(pad(mask), 3×3 square, iterations=d)`` of the Boundary IoU reference code.
    """
    m = np.asarray(mask).astype(np.uint8)
    padded = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    dist = cv2.distanceTransform(padded, cv2.DIST_C, 3)[1:-1, 1:-1]
    return (m > 0) & (dist <= width_px)


def boundary_iou(pred: np.ndarray, gt: np.ndarray, dilation_ratio: float = BOUNDARY_IOU_RATIO,
                 width_px: float | None = None) -> float:
    """Boundary IoU (Cheng et al., CVPR 2021).

    Reference definition: ``|(G_d ∩ G) ∩ (P_d ∩ P)| / |(G_d ∩ G) ∪ (P_d ∩ P)|`` where ``X_d ∩ X`` is the set
    of pixels of mask ``X`` within distance ``d`` of its contour — the reference code takes
    ``X − erode(X, 3×3, d iterations)`` after padding by one background pixel, i.e. chessboard distance,
    the image border counting as contour (:func:`boundary_band`). ``d = width_px`` when given, else
    ``max(1, round(dilation_ratio × diagonal))`` (2 % of the diagonal: 16 px at 640×480). 1.0 when both
    bands are empty.
    """
    pred, gt = _pair(pred, gt)
    if width_px is None:
        width_px = boundary_width_px(gt.shape, dilation_ratio)
    if not width_px > 0:
        raise ShapeError(f"boundary width must be > 0 pixels, got {width_px}")
    bp, bg = boundary_band(pred, width_px), boundary_band(gt, width_px)
    union = np.count_nonzero(bp | bg)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(bp & bg) / union)


def rim_offsets_px(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) float32 signed distance (px) of each predicted rim pixel to the reference outline.

    For every inner-contour pixel of ``pred``: outside ``gt``, its Euclidean distance to the nearest ``gt``
    pixel (+1 one pixel outside); inside, minus its distance to the nearest pixel off ``gt``, plus one (0 on
    the reference's own rim, -1 one pixel further in). Positive: the prediction is too large there. Empty
    when either mask is empty.
    """
    pred, gt = _pair(pred, gt)
    bp = mask_boundary(pred)
    if not bp.any() or not gt.any():
        return np.zeros(0, np.float32)
    outside = cv2.distanceTransform((~gt).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    padded = cv2.copyMakeBorder(gt.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    inside = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    signed = np.where(gt, -(inside - 1.0), outside)
    return signed[bp].astype(np.float32)


def signed_boundary_offset_px(pred: np.ndarray, gt: np.ndarray) -> float | None:
    """Median of :func:`rim_offsets_px`: where the predicted outline lies against the reference, pixels.

    Positive: the predicted outline lies outside the reference (mask too large), negative: inside. A
    predicted boundary pixel on the reference's own boundary counts 0, one pixel outside +1, one pixel
    further inside -1. ``None`` when either mask is empty.
    """
    off = rim_offsets_px(pred, gt)
    return float(np.median(off)) if off.size else None


def _rim_points(mask: np.ndarray, depth_m: np.ndarray, intrinsics) -> np.ndarray:
    rim = mask_boundary(mask) & (depth_m > 0)
    vv, uu = np.nonzero(rim)
    if not len(uu):
        return np.zeros((0, 3))
    return intrinsics.unproject(np.stack([uu, vv], axis=1).astype(np.float64), depth_m[vv, uu])


def boundary_error_3d_mm(pred: np.ndarray, gt: np.ndarray, depth_m: np.ndarray, intrinsics) -> dict | None:
    """3-D boundary error: predicted rim points against the reference rim in the cloud, millimetres.

    Reference definition: the inner-contour pixels of ``pred`` and of ``gt`` that have a depth reading are
    back-projected with ``depth_m`` and ``intrinsics`` into the camera frame; for every predicted rim point
    the Euclidean distance to the nearest reference rim point is taken. Returns the mean, median and 90th
    percentile of those distances (mm) and the point counts, or ``None`` when either rim has no depth.
    A rim pixel whose depth reading is the background behind the object (mixed pixels, depth registered off
    the colour edge) lands far behind the object: the metric measures the rim as the cloud sees it.

    Parameters
    ----------
    pred, gt : (H, W) bool
    depth_m : (H, W) float32
        Depth along the optical axis, metres, 0 = no reading.
    intrinsics : CameraIntrinsics
        Of the H×W colour camera (``camera_color_optical`` frame).
    """
    pred, gt = _pair(pred, gt)
    depth = np.asarray(depth_m)
    if depth.shape != gt.shape:
        raise ShapeError(f"depth is {depth.shape[1] if depth.ndim == 2 else depth.shape} but the masks are "
                         f"{gt.shape[1]}x{gt.shape[0]}; give the frame's registered depth")
    from scipy.spatial import cKDTree

    p = _rim_points(pred, depth, intrinsics)
    g = _rim_points(gt, depth, intrinsics)
    if not len(p) or not len(g):
        return None
    d_mm = cKDTree(g).query(p, k=1)[0] * 1e3
    return {"mean_mm": float(d_mm.mean()), "median_mm": float(np.median(d_mm)),
            "p90_mm": float(np.percentile(d_mm, 90)), "pred_points": len(p), "gt_points": len(g)}


def mask_centroid_in_camera(mask: np.ndarray, depth_m: np.ndarray, intrinsics) -> np.ndarray | None:
    """(3,) centroid (m, ``camera_color_optical``) of the masked pixels with depth, back-projected; None if none."""
    m = np.asarray(mask, bool)
    depth = np.asarray(depth_m)
    if m.shape != depth.shape:
        raise ShapeError(f"mask is {m.shape[::-1]} but depth is {depth.shape[::-1]}; give masks of the frame's size")
    vv, uu = np.nonzero(m & (depth > 0))
    if not len(uu):
        return None
    pts = intrinsics.unproject(np.stack([uu, vv], axis=1).astype(np.float64), depth[vv, uu])
    return pts.mean(axis=0)


def position_error_mm(estimate_in_camera: np.ndarray, camera_from_object) -> float:
    """Distance (mm) between an estimated object position and the true pose's origin, both in the camera frame.

    Parameters
    ----------
    estimate_in_camera : (3,) float, metres, ``camera_color_optical``
        The estimated object position (a cloud's centroid, or a completed shape's centre).
    camera_from_object : Transform or (4, 4) array
        The true pose; its translation (metres) is the object origin in the camera frame.
    """
    est = np.asarray(estimate_in_camera, dtype=np.float64).reshape(-1)
    if est.shape != (3,):
        raise ShapeError(f"estimate_in_camera must be a (3,) point in metres, got shape {est.shape}")
    mat = np.asarray(getattr(camera_from_object, "matrix", camera_from_object), dtype=np.float64)
    if mat.shape != (4, 4):
        raise ShapeError(f"camera_from_object must be a Transform or a (4, 4) matrix, got shape {mat.shape}")
    return float(np.linalg.norm(est - mat[:3, 3]) * 1e3)


def mask_scores(pred: np.ndarray, gt: np.ndarray, *, tolerance_px: float = 2.0) -> dict:
    """Every 2-D metric of one predicted mask against its reference, unrounded.

    Keys: ``iou``, ``boundary_f`` (fixed ``tolerance_px``), ``boundary_f_davis``, ``boundary_iou``,
    ``signed_offset_px`` (None when a mask is empty).
    """
    return {
        "iou": mask_iou(pred, gt),
        "boundary_f": boundary_f_score(pred, gt, tolerance_px),
        "boundary_f_davis": davis_boundary_f(pred, gt),
        "boundary_iou": boundary_iou(pred, gt),
        "signed_offset_px": signed_boundary_offset_px(pred, gt),
    }
