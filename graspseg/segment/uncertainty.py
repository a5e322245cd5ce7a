"""The segmenter's own estimate of its mask-boundary error, in pixels.

Two cues, both from a :class:`~graspseg.segment.types.MaskSet`:

- the width of the soft-mask transition band: pixels whose logit lies in ``(-t, t)`` (probability
  between ``sigmoid(-t)`` and ``sigmoid(t)``), divided by the boundary length, is the mean band width;
  the boundary is uncertain by about half of it on either side;
- the disagreement of the candidate masks of the same object (IoU above ``same_object_iou``): the
  symmetric difference with the selected mask, divided by its boundary length, is the mean distance
  between their boundaries.

The default expected error is the larger of the two, clipped to ``[min_px, max_px]``. A segmenter whose
boundary error was measured on held-out ground truth (a fine-tuned SAM checkpoint with
``graspseg_boundary_error.json``, see docs/finetune.md) puts the measured p90 in
``MaskSet.details["calibrated_boundary_error_px"]``; that measurement is used instead of the two cues.
"""

from __future__ import annotations

import math

import numpy as np

from ..core.errors import ShapeError
from .types import MaskSet

#: logit threshold of the transition band: probabilities between 0.1 and 0.9.
DEFAULT_LOGIT_BAND = math.log(9.0)


def boundary_length_px(mask: np.ndarray) -> float:
    """Length of the mask's boundary in pixels (4-connected edge count, divided by ~1.27 for diagonals)."""
    m = np.asarray(mask, bool)
    if not m.any():
        return 0.0
    p = np.pad(m, 1)
    edges = (p[1:, :] != p[:-1, :]).sum() + (p[:, 1:] != p[:, :-1]).sum()
    # a 4-connected edge count overestimates the length of oblique boundaries by 4/pi on average
    return float(edges) * math.pi / 4.0


def band_width_px(logits: np.ndarray, mask: np.ndarray, *, logit_band: float = DEFAULT_LOGIT_BAND) -> float:
    """Mean width (px) of the transition band of ``logits`` (H, W) around ``mask`` (H, W)."""
    length = boundary_length_px(mask)
    if length <= 0:
        return 0.0
    band = np.abs(np.asarray(logits, np.float32)) < logit_band
    return float(band.sum()) / length


def disagreement_px(masks: np.ndarray, index: int, *, same_object_iou: float = 0.7) -> float:
    """Mean boundary distance (px) between mask ``index`` and the other candidates of the same object.

    Candidates whose IoU with the selected one is below ``same_object_iou`` are a different part or
    object (another granularity), not boundary error, and are ignored.
    """
    ms = np.asarray(masks, bool)
    sel = ms[index]
    length = boundary_length_px(sel)
    if length <= 0 or len(ms) < 2:
        return 0.0
    dists = []
    for j in range(len(ms)):
        if j == index:
            continue
        inter = np.logical_and(sel, ms[j]).sum()
        union = np.logical_or(sel, ms[j]).sum()
        if union == 0 or inter / union < same_object_iou:
            continue
        dists.append(np.logical_xor(sel, ms[j]).sum() / length)
    return float(np.mean(dists)) if dists else 0.0


def boundary_error_details(mask_set: MaskSet, index: int | None = None, *, logit_band: float = DEFAULT_LOGIT_BAND,
                           same_object_iou: float = 0.7, min_px: float = 1.0, max_px: float = 20.0) -> dict:
    """Both cues and the resulting expected boundary error for candidate ``index`` (default: selected by ``auto``).

    Returns
    -------
    dict with ``band_px`` (half the transition band width, or None without logits), ``disagreement_px``
    (or None with a single candidate of that object), ``calibrated_px`` (the segmenter's measured error, or
    None), ``boundary_error_px`` (float) and ``source``
    (``band``, ``disagreement``, ``calibrated`` (measured, from the checkpoint) or ``floor``).
    """
    if len(mask_set) == 0:
        raise ShapeError("cannot estimate the boundary error of an empty MaskSet")
    if not (0 <= min_px <= max_px):
        raise ShapeError(f"need 0 <= min_px <= max_px, got min_px={min_px}, max_px={max_px}")
    i = mask_set.select("auto") if index is None else int(index)
    if not -len(mask_set) <= i < len(mask_set):
        raise ShapeError(f"candidate index {i} out of range for a MaskSet of {len(mask_set)} masks")
    i %= len(mask_set)
    band = None
    if mask_set.logits is not None:
        band = 0.5 * band_width_px(mask_set.logits[i], mask_set.masks[i], logit_band=logit_band)
    dis = None
    if len(mask_set) > 1:
        dis = disagreement_px(mask_set.masks, i, same_object_iou=same_object_iou)
    cues = {k: v for k, v in (("band", band), ("disagreement", dis)) if v is not None}
    calibrated = mask_set.details.get("calibrated_boundary_error_px")
    calibrated = None if calibrated is None else float(calibrated)
    if calibrated is not None and math.isfinite(calibrated) and calibrated >= 0:
        source, raw = "calibrated", calibrated
    elif cues:
        source = max(cues, key=cues.get)
        raw = cues[source]
    else:
        source, raw = "floor", min_px
    err = float(min(max(raw, min_px), max_px))
    if err == min_px and raw < min_px:
        source = "floor"
    return {"band_px": band, "disagreement_px": dis, "calibrated_px": calibrated, "boundary_error_px": err,
            "source": source, "index": i}


def boundary_error_px(mask_set: MaskSet, index: int | None = None, **kw) -> float:
    """Expected mask-boundary error in pixels for candidate ``index`` (see :func:`boundary_error_details`)."""
    return boundary_error_details(mask_set, index, **kw)["boundary_error_px"]
