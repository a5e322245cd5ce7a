"""Click simulation for interactive segmentation (the protocol of the field's NoC benchmarks).

The first click is the interior point of the true mask farthest from its boundary. Each next click goes
into the largest error region (missed object pixels give a positive click, leaked background pixels a
negative one), at the point of that region farthest from the region's boundary.

Reference: the protocol of RITM (Sofiiuk et al. 2022) and of Xu et al. 2016: false-negative and
false-positive pixels are each one error map; the distance of every error pixel to the nearest correct
pixel (the image border counting as correct) is taken, and the click goes to the error map whose farthest
pixel is farther — positive in missed object, negative in leaked background (on a tie, as RITM's clicker) —
at that farthest pixel, never on a pixel already clicked (RITM's ``not_clicked_map``; ties between pixels: the
tied pixel nearest the tied pixels' centroid, where RITM takes the first in raster order).
:func:`simulate_clicks` runs the loop and :func:`noc` counts the clicks to a target IoU.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..core.errors import InputError, ShapeError


def _interior_distance(region: np.ndarray) -> np.ndarray:
    """Distance (px) of each region pixel to the nearest non-region pixel; the image border is outside."""
    padded = cv2.copyMakeBorder(region.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def _farthest_point(region: np.ndarray, exclude_uv: np.ndarray | None = None) -> tuple[float, float, float]:
    """(u, v, distance) of the region pixel farthest from the region's outside; distance -1 when every region
    pixel is excluded (``exclude_uv``: (N, 2) pixels already clicked)."""
    # the distance transform runs on the region's bounding box: every pixel outside it is off the region,
    # so a one-pixel ring of zeros around the box (or the image border) gives the same distances
    rows = np.flatnonzero(region.any(axis=1))
    cols = np.flatnonzero(region.any(axis=0))
    r0, c0 = int(rows[0]), int(cols[0])
    dist = _interior_distance(region[r0:rows[-1] + 1, c0:cols[-1] + 1])
    if exclude_uv is not None and len(exclude_uv):
        uu = np.round(np.asarray(exclude_uv, np.float64)[:, 0]).astype(np.int64) - c0
        vv = np.round(np.asarray(exclude_uv, np.float64)[:, 1]).astype(np.int64) - r0
        inside = (uu >= 0) & (uu < dist.shape[1]) & (vv >= 0) & (vv < dist.shape[0])
        dist[vv[inside], uu[inside]] = 0.0
    best = float(dist.max())
    if best <= 0:
        return 0.0, 0.0, -1.0
    # ties (a plateau of maxima, e.g. along a rectangle's midline): take the tied pixel nearest their
    # centroid, so the click sits in the middle of the plateau (deterministic)
    vv, uu = np.nonzero(dist >= best - 1e-4)
    j = int(np.argmin((uu - uu.mean()) ** 2 + (vv - vv.mean()) ** 2))
    return float(uu[j] + c0), float(vv[j] + r0), best


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


def next_click(pred_mask: np.ndarray, gt_mask: np.ndarray, *,
               clicked_uv: np.ndarray | None = None) -> tuple[float, float, int] | None:
    """The corrective click for the current prediction, or None when the prediction is exact.

    Parameters
    ----------
    pred_mask, gt_mask : (H, W) bool
    clicked_uv : (N, 2) float, optional
        Pixels (u, v) clicked before; they are not clicked again. None is also returned when every error
        pixel has been clicked.

    Returns
    -------
    (u, v, label) : label 1 (positive) when the largest error is missed object, 0 when it is leaked background
    (also on a tie).
    """
    pred = np.asarray(pred_mask).astype(bool)
    gt = np.asarray(gt_mask).astype(bool)
    if pred.shape != gt.shape or gt.ndim != 2:
        raise ShapeError(f"masks must be (H, W) images of one size, got {pred.shape} and {gt.shape}")
    fn = gt & ~pred
    fp = pred & ~gt
    if not fn.any() and not fp.any():
        return None
    u_n, v_n, d_n = _farthest_point(fn, clicked_uv) if fn.any() else (0.0, 0.0, -1.0)
    u_p, v_p, d_p = _farthest_point(fp, clicked_uv) if fp.any() else (0.0, 0.0, -1.0)
    if d_n < 0 and d_p < 0:
        return None
    if d_n > d_p:
        return u_n, v_n, 1
    return u_p, v_p, 0


# --- the interactive protocol ------------------------------------------------------------------------

#: The click budget of the interactive-segmentation literature (NoC@85 / NoC@90 cap, failure count).
MAX_CLICKS = 20
#: IoU thresholds of NoC@85 / NoC@90.
NOC_THRESHOLDS: tuple[float, ...] = (0.85, 0.90)


@dataclass(frozen=True, eq=False)
class ClickTrace:
    """One object's simulated interactive session.

    Attributes
    ----------
    ious : (N,) float64
        IoU of the selected candidate after click 1..N (a failed prediction scores 0).
    clicks_uv : (N, 2) float64
        The clicks, pixels (u, v).
    labels : (N,) int8
        1 positive, 0 negative.
    first_top_iou : float
        IoU of the top-scored candidate after the first click.
    first_best_iou : float
        IoU of the best of the first click's candidates (oracle choice: SAM's "best of 3").
    first_mask : (H, W) bool
        The selected candidate after the first click.
    errors : tuple of str
        Segmenter errors met on the way (each such click scored 0).
    """

    ious: np.ndarray
    clicks_uv: np.ndarray
    labels: np.ndarray
    first_top_iou: float
    first_best_iou: float
    first_mask: np.ndarray
    errors: tuple[str, ...] = ()

    @property
    def max_clicks(self) -> int:
        return len(self.ious)

    @property
    def first_iou(self) -> float:
        """IoU after the first click with the selection policy's candidate."""
        return float(self.ious[0]) if len(self.ious) else 0.0

    def noc(self, threshold: float) -> int:
        """Number of clicks to reach ``threshold`` IoU; ``max_clicks`` when never reached (see :func:`noc`)."""
        return noc(self.ious, threshold, self.max_clicks)

    def failed(self, threshold: float) -> bool:
        """True when ``threshold`` is not reached within the budget."""
        return not bool((self.ious >= threshold).any())


def noc(ious, threshold: float, max_clicks: int = MAX_CLICKS) -> int:
    """Number of Clicks (NoC@threshold): the first click count k (1-based) with ``IoU_k >= threshold``.

    Reference definition (Xu et al. 2016; RITM, Sofiiuk et al. 2022): clicks are counted up to the budget
    ``max_clicks`` (20); an object that never reaches the threshold counts ``max_clicks`` and is a failure.

    >>> noc([0.5, 0.86, 0.91], 0.85), noc([0.5, 0.86, 0.91], 0.90), noc([0.5, 0.6], 0.9, max_clicks=20)
    (2, 3, 20)
    """
    arr = np.asarray(ious, dtype=np.float64)[:max_clicks]
    hit = np.flatnonzero(arr >= threshold)
    return int(hit[0] + 1) if len(hit) else int(max_clicks)


def simulate_clicks(segmenter, gt_mask: np.ndarray, *, max_clicks: int = MAX_CLICKS, granularity: str = "whole",
                    stop_iou: float | None = None) -> ClickTrace:
    """Run the interactive protocol on one object of the frame already given to ``segmenter.set_frame``.

    Click 1 is :func:`first_click`; each later click is :func:`next_click` on the previous prediction
    (never on a pixel clicked before), added to all earlier ones in one :class:`~graspseg.segment.Prompt`. After every click the candidate
    chosen by ``granularity`` (:func:`~graspseg.segment.select_candidate`) is the prediction. An exact
    prediction stops the clicking (its IoU, 1.0, is carried to the end of the budget); so does reaching
    ``stop_iou`` when given (its IoU carried forward). A segmenter error
    (:class:`~graspseg.core.errors.GraspsegError`) scores that click 0 and the next click is chosen from an
    empty prediction.

    Parameters
    ----------
    segmenter : Segmenter
        With ``set_frame`` already called for this object's frame.
    gt_mask : (H, W) bool
        The true object mask.
    max_clicks : int
        The click budget (20 in the literature).
    granularity : str
        Candidate selection policy: ``part``, ``whole``, ``group`` or ``auto``.
    """
    from ..core.errors import GraspsegError
    from ..segment import Prompt, select_candidate
    from .metrics import mask_iou

    if isinstance(max_clicks, bool) or not isinstance(max_clicks, int | np.integer) or max_clicks < 1:
        raise InputError(f"max_clicks must be an integer >= 1, got {max_clicks!r}")
    gt = np.asarray(gt_mask)
    if gt.ndim != 2:
        raise ShapeError(f"gt_mask must be an (H, W) image, got shape {gt.shape}")
    gt = gt.astype(bool)
    u, v = first_click(gt)
    points, labels = [[u, v]], [1]
    ious: list[float] = []
    errors: list[str] = []
    first_top = first_best = 0.0
    first_mask = np.zeros_like(gt)
    pred = first_mask
    while len(ious) < max_clicks:
        prompt = Prompt(points_uv=np.array(points, np.float64), point_labels=labels)
        try:
            ms = segmenter.predict(prompt)
        except GraspsegError as e:
            errors.append(f"click {len(ious) + 1}: {e}")
            pred = np.zeros_like(gt)
        else:
            if ms.shape != gt.shape:
                raise ShapeError(f"the segmenter returned {ms.shape[1]}x{ms.shape[0]} masks for a "
                                 f"{gt.shape[1]}x{gt.shape[0]} reference; give the reference of the frame set")
            pred = ms.masks[select_candidate(ms, granularity)]
            if not ious:
                cand = [mask_iou(m, gt) for m in ms.masks]
                first_top = cand[int(np.argmax(ms.scores))]
                first_best = max(cand)
        iou = mask_iou(pred, gt)
        if not ious:
            first_mask = pred
        ious.append(iou)
        if stop_iou is not None and iou >= stop_iou:
            break
        nxt = next_click(pred, gt, clicked_uv=np.asarray(points, np.float64))
        if nxt is None:
            break
        points.append([nxt[0], nxt[1]])
        labels.append(nxt[2])
    n_done = len(ious)
    ious += [ious[-1]] * (max_clicks - n_done)
    return ClickTrace(np.array(ious), np.array(points[:n_done], np.float64).reshape(-1, 2),
                      np.array(labels[:n_done], np.int8), float(first_top), float(first_best), first_mask,
                      tuple(errors))
