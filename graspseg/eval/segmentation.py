"""Segmenter evaluation over a data set: the one-click metrics and the interactive protocol per object.

:func:`evaluate_dataset` runs, for every annotated instance, the click loop of
:func:`graspseg.eval.clicks.simulate_clicks` and scores the first click's prediction with every metric of
:mod:`graspseg.eval.metrics`. ``graspseg eval segment`` writes its rows, summary and plots; the fine-tuning
report calls it before and after training.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import InputError
from .clicks import MAX_CLICKS, NOC_THRESHOLDS, simulate_clicks
from .datasets import Sample
from .metrics import (
    boundary_error_3d_mm,
    mask_centroid_in_camera,
    mask_scores,
    position_error_mm,
    rim_offsets_px,
)

log = logging.getLogger(__name__)

#: Instances smaller than this (pixels) are skipped, as ``graspseg bench quality`` does.
MIN_AREA_PX = 400
#: The interactive session of an object ends once its IoU reaches this (the highest NoC threshold): NoC@85,
#: NoC@90 and the failures are then exact, and the IoU is carried forward to the budget (RITM's
#: ``--target-iou``). ``stop_iou=None`` runs every click (the full IoU-vs-clicks curve).
STOP_IOU = max(NOC_THRESHOLDS)
#: Columns of the per-object table, in order (CSV header).
TABLE_COLUMNS: tuple[str, ...] = (
    "set", "sample", "object_id", "category", "area_px", "click_u", "click_v",
    "iou_1click", "iou_1click_top", "iou_1click_best", "iou_box", "boundary_f_davis", "boundary_f_2px", "boundary_iou",
    "signed_offset_px", "boundary_error_3d_mean_mm", "boundary_error_3d_median_mm", "boundary_error_3d_p90_mm",
    "position_error_mm", "position_error_gt_mask_mm", "noc85", "noc90", "failed85", "failed90", "clicks_run",
    "error",
)


@dataclass(frozen=True, eq=False)
class WorstCase:
    """A low-scoring object kept for an overlay: its colour image, masks and clicks."""

    row: dict
    color: np.ndarray
    pred: np.ndarray
    gt: np.ndarray
    clicks_uv: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True, eq=False)
class Evaluation:
    """What :func:`evaluate_dataset` found.

    Attributes
    ----------
    rows : list of dict
        One per evaluated instance (keys :data:`TABLE_COLUMNS`, plus ``ious``: the IoU after each click).
    summary : dict
        Means over every instance and per set (see :func:`summarise`).
    worst : list of WorstCase
        The lowest one-click IoUs, worst first.
    rim_offsets_px : list of (N,) float32
        Signed rim offsets of each row's one-click prediction (:func:`graspseg.eval.rim_offsets_px`).
    """

    rows: list[dict]
    summary: dict
    worst: list[WorstCase] = field(default_factory=list)
    rim_offsets_px: list[np.ndarray] = field(default_factory=list)


def _r(x, digits: int = 4):
    return None if x is None else round(float(x), digits)


def _box_iou(segmenter, gt: np.ndarray, granularity: str) -> float:
    """IoU of the policy's candidate for the tight true box (0 when the segmenter fails on it)."""
    from ..core.errors import GraspsegError
    from ..segment import Prompt, select_candidate
    from .metrics import mask_iou

    vv, uu = np.nonzero(gt)
    box = np.array([uu.min(), vv.min(), uu.max() + 1, vv.max() + 1], np.float64)
    try:
        ms = segmenter.predict(Prompt(box_xyxy=box))
    except GraspsegError as e:
        log.info("box prompt failed: %s", e)
        return 0.0
    return mask_iou(ms.masks[select_candidate(ms, granularity)], gt)


def evaluate_sample(segmenter, sample: Sample, *, max_clicks: int = MAX_CLICKS, granularity: str = "whole",
                    tolerance_px: float = 2.0, min_area_px: int = MIN_AREA_PX, stop_iou: float | None = STOP_IOU,
                    box: bool = False, keep: bool = False, set_frame: Callable[[Sample], None] | None = None):
    """Evaluate every instance of one sample: ``(rows, cases, offsets, set_frame_ms, predict_ms)``.

    ``cases`` holds a :class:`WorstCase` per row when ``keep``; ``predict_ms`` are the times of all predicts.
    ``set_frame(sample)`` replaces ``segmenter.set_frame(sample.frame)`` (e.g. cached image embeddings).
    """
    frame = sample.frame
    todo = [i for i in sample.instances if i.area_px >= min_area_px]
    if not todo:
        return [], [], [], None, []
    t0 = time.perf_counter()
    if set_frame is None:
        segmenter.set_frame(frame)
    else:
        set_frame(sample)
    set_ms = (time.perf_counter() - t0) * 1e3
    rows, cases, offsets, pred_ms = [], [], [], []
    for inst in todo:
        gt = inst.mask
        t0 = time.perf_counter()
        trace = simulate_clicks(segmenter, gt, max_clicks=max_clicks, granularity=granularity, stop_iou=stop_iou)
        n_run = len(trace.labels)
        pred_ms.append((time.perf_counter() - t0) * 1e3 / max(1, n_run))
        pred = trace.first_mask
        s = mask_scores(pred, gt, tolerance_px=tolerance_px)
        b3 = boundary_error_3d_mm(pred, gt, frame.depth_m, frame.intrinsics)
        pos = pos_gt = None
        if inst.camera_from_object is not None:
            c = mask_centroid_in_camera(pred, frame.depth_m, frame.intrinsics)
            pos = None if c is None else position_error_mm(c, inst.camera_from_object)
            c = mask_centroid_in_camera(gt, frame.depth_m, frame.intrinsics)
            pos_gt = None if c is None else position_error_mm(c, inst.camera_from_object)
        u, v = trace.clicks_uv[0]
        row = {
            "set": sample.set_name, "sample": sample.name, "object_id": inst.object_id, "category": inst.category,
            "area_px": inst.area_px, "click_u": float(u), "click_v": float(v),
            "iou_1click": _r(trace.first_iou), "iou_1click_top": _r(trace.first_top_iou),
            "iou_1click_best": _r(trace.first_best_iou),
            "iou_box": _r(_box_iou(segmenter, gt, granularity)) if box else None,
            "boundary_f_davis": _r(s["boundary_f_davis"]),
            "boundary_f_2px": _r(s["boundary_f"]), "boundary_iou": _r(s["boundary_iou"]),
            "signed_offset_px": _r(s["signed_offset_px"], 2),
            "boundary_error_3d_mean_mm": _r(b3 and b3["mean_mm"], 2),
            "boundary_error_3d_median_mm": _r(b3 and b3["median_mm"], 2),
            "boundary_error_3d_p90_mm": _r(b3 and b3["p90_mm"], 2),
            "position_error_mm": _r(pos, 2), "position_error_gt_mask_mm": _r(pos_gt, 2),
            "noc85": trace.noc(0.85), "noc90": trace.noc(0.90),
            "failed85": trace.failed(0.85), "failed90": trace.failed(0.90), "clicks_run": n_run,
            "error": "; ".join(trace.errors) or None,
            "ious": [round(float(x), 4) for x in trace.ious],
        }
        rows.append(row)
        offsets.append(rim_offsets_px(pred, gt))
        if keep:
            cases.append(WorstCase(row, frame.color, pred, gt, trace.clicks_uv[:1], trace.labels[:1]))
    return rows, cases, offsets, set_ms, pred_ms


def evaluate_dataset(segmenter, dataset: Sequence[Sample], *, max_clicks: int = MAX_CLICKS, granularity: str = "whole",
                     tolerance_px: float = 2.0, min_area_px: int = MIN_AREA_PX, stop_iou: float | None = STOP_IOU,
                     box: bool = False, worst: int = 6, set_frame: Callable[[Sample], None] | None = None,
                     progress: Callable[[int, int, Sample, list[dict]], None] | None = None) -> Evaluation:
    """Evaluate ``segmenter`` on every instance of ``dataset`` (samples without instances are skipped).

    Parameters
    ----------
    segmenter : Segmenter
        From :func:`graspseg.segment.create_segmenter`.
    dataset : Dataset or sequence of Sample
    max_clicks : int
        Click budget of the interactive protocol (20: the literature's NoC cap).
    granularity : str
        The candidate taken after each click (``whole``: the grasp stage's default).
    tolerance_px : float
        Tolerance of the fixed-pixel boundary F (``boundary_f_2px`` at the default 2).
    stop_iou : float or None
        An object's clicking ends at this IoU (:data:`STOP_IOU`; NoC and failures stay exact, the IoU is
        carried forward); None runs the whole budget.
    box : bool
        Also prompt each object with its tight true box (``iou_box``).
    worst : int
        How many of the lowest one-click IoUs to keep as :class:`WorstCase` (for overlays).
    set_frame : callable, optional
        ``set_frame(sample)`` instead of ``segmenter.set_frame(sample.frame)`` (cached embeddings).
    progress : callable, optional
        Called after each sample as ``progress(index, total, sample, rows)``.
    """
    name = getattr(dataset, "name", "given")
    if len(dataset) == 0:
        raise InputError(f"data set {name} is empty; nothing to evaluate")
    if stop_iou is not None and not 0 < stop_iou <= 1:
        raise InputError(f"stop_iou must be in (0, 1] or None (run every click), got {stop_iou}")
    rows: list[dict] = []
    kept: list[WorstCase] = []
    offsets: list[np.ndarray] = []
    set_ms: list[float] = []
    pred_ms: list[float] = []
    for k, sample in enumerate(dataset):
        r, cases, off, s_ms, p_ms = evaluate_sample(segmenter, sample, max_clicks=max_clicks, granularity=granularity,
                                                    tolerance_px=tolerance_px, min_area_px=min_area_px,
                                                    stop_iou=stop_iou, box=box, keep=worst > 0, set_frame=set_frame)
        rows += r
        offsets += off
        if s_ms is not None:
            set_ms.append(s_ms)
        pred_ms += p_ms
        if cases:
            kept = sorted(kept + cases, key=lambda c: c.row["iou_1click"])[:worst]
        if progress is not None:
            progress(k, len(dataset), sample, r)
    if not rows:
        raise InputError(f"data set {name} has no annotated instance of at least {min_area_px} pixels; "
                         "nothing to evaluate (a data set with masks is needed)")
    summary = summarise(rows, max_clicks=max_clicks)
    summary["stop_iou"] = stop_iou
    summary["timing_ms"] = {"set_frame_median": _r(np.median(set_ms), 2) if set_ms else None,
                            "predict_median": _r(np.median(pred_ms), 2) if pred_ms else None}
    summary["rim_offset_px"] = rim_offset_distribution(offsets)
    return Evaluation(rows, summary, kept, offsets)


def _mean(rows: list[dict], key: str, digits: int = 4):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return round(float(np.mean(vals)), digits) if vals else None


def _median(rows: list[dict], key: str, digits: int = 2):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return round(float(np.median(vals)), digits) if vals else None


def _cell(rows: list[dict], max_clicks: int) -> dict:
    curve = np.mean(np.array([r["ious"] for r in rows], np.float64), axis=0)
    return {
        "objects": len(rows), "samples": len({(r["set"], r["sample"]) for r in rows}),
        "mean_iou_1click": _mean(rows, "iou_1click"), "mean_iou_1click_top": _mean(rows, "iou_1click_top"),
        "mean_iou_1click_best": _mean(rows, "iou_1click_best"), "mean_iou_box": _mean(rows, "iou_box"),
        "mean_boundary_f_davis": _mean(rows, "boundary_f_davis"), "mean_boundary_f_2px": _mean(rows, "boundary_f_2px"),
        "mean_boundary_iou": _mean(rows, "boundary_iou"), "median_signed_offset_px": _median(rows, "signed_offset_px", 3),
        "mean_boundary_error_3d_mm": _mean(rows, "boundary_error_3d_mean_mm", 2),
        "median_boundary_error_3d_mm": _median(rows, "boundary_error_3d_median_mm"),
        "median_position_error_mm": _median(rows, "position_error_mm"),
        "median_position_error_gt_mask_mm": _median(rows, "position_error_gt_mask_mm"),
        "noc85": _mean(rows, "noc85", 2), "noc90": _mean(rows, "noc90", 2),
        "failures85": int(sum(bool(r["failed85"]) for r in rows)),
        "failures90": int(sum(bool(r["failed90"]) for r in rows)),
        "miou_at_clicks": [round(float(x), 4) for x in curve],
        "segmenter_errors": int(sum(r["error"] is not None for r in rows)),
    }


def summarise(rows: list[dict], *, max_clicks: int = MAX_CLICKS) -> dict:
    """Means over all rows and per set: 1-click mIoU (selected / top-scored / best of the candidates),
    boundary F (DAVIS and 2 px), Boundary IoU, 3-D boundary error, position error, NoC@85/90, failures,
    and the mean IoU after each click (``miou_at_clicks``)."""
    if not rows:
        raise InputError("no evaluated objects to summarise")
    sets: dict[str, list[dict]] = {}
    for r in rows:
        sets.setdefault(r["set"], []).append(r)
    return {"max_clicks": max_clicks, "noc_thresholds": list(NOC_THRESHOLDS), **_cell(rows, max_clicks),
            "sets": {name: _cell(rs, max_clicks) for name, rs in sorted(sets.items())}}


def rim_offset_distribution(offsets: list[np.ndarray]) -> dict:
    """Distribution of rim offsets (px) pooled over every predicted rim pixel of every object.

    ``abs_*``: the unsigned distance of a predicted rim pixel to the true outline; ``signed_*``: > 0 outside
    (mask too large), < 0 inside; ``per_object_*``: over the objects' own medians.
    """
    per = [o for o in offsets if o.size]
    if not per:
        return {"objects": 0, "rim_pixels": 0}
    pooled = np.concatenate(per).astype(np.float64)
    a = np.abs(pooled)
    med_abs = np.array([np.median(np.abs(o)) for o in per])
    med_signed = np.array([np.median(o) for o in per])
    return {
        "objects": len(per), "rim_pixels": int(pooled.size),
        "abs_mean_px": _r(a.mean(), 3), "abs_median_px": _r(np.median(a), 3),
        "abs_p90_px": _r(np.percentile(a, 90), 3), "abs_p95_px": _r(np.percentile(a, 95), 3),
        "signed_median_px": _r(np.median(pooled), 3), "signed_p10_px": _r(np.percentile(pooled, 10), 3),
        "signed_p90_px": _r(np.percentile(pooled, 90), 3),
        "per_object_abs_median_px": {"median": _r(np.median(med_abs), 3), "p90": _r(np.percentile(med_abs, 90), 3)},
        "per_object_signed_median_px": {"median": _r(np.median(med_signed), 3),
                                        "p10": _r(np.percentile(med_signed, 10), 3),
                                        "p90": _r(np.percentile(med_signed, 90), 3)},
    }
