"""One episode, frame by frame: follow the prompted target, run the pipeline on it, flag what would fail.

:func:`analyze_source` is pure computation (an :class:`~graspseg.capture.sources.EpisodeSource` in, an
:class:`EpisodeAnalysis` out) and deterministic: the same episode and config give the same rows whatever
process runs it (only the ``t_*_ms`` timing columns and ``summary["timing"]`` differ).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..capture.sources import EpisodeSource
from ..core.errors import ConfigError, GraspsegError, InputError, SegmentationError
from ..core.frame import RGBDFrame
from ..pipeline import Pipeline, PipelineConfig
from ..segment import Prompt
from ..segment.tracking import create_tracker
from .config import ANALYSIS_SCHEMA_VERSION, AnalysisConfig

log = logging.getLogger(__name__)

#: Visible fraction (ground truth) under which the target counts as hidden when scoring loss detection.
HIDDEN_FRACTION = 0.1
#: Frames either side within which a detected loss / re-acquisition is matched to the true one.
EVENT_WINDOW = 10


class SharedSegmenter:
    """One segmenter for the tracker and the pipeline: ``set_frame`` runs once per frame, and the
    pipeline's ``predict`` with the tracker's own prompt object returns the tracker's candidates."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self._frame = None
        self.last: tuple[Prompt, object] | None = None

    def __getattr__(self, name):  # name, accepts_text, features, ...
        return getattr(self.inner, name)

    def set_frame(self, frame: RGBDFrame) -> None:
        if frame is not self._frame:
            self.inner.set_frame(frame)
            self._frame = frame
            self.last = None

    def predict(self, prompt: Prompt):
        if self.last is not None and self.last[0] is prompt:
            return self.last[1]
        ms = self.inner.predict(prompt)
        self.last = (prompt, ms)
        return ms


@dataclass
class EpisodeAnalysis:
    """Rows (one dict per frame, columns of :data:`graspseg.analysis.table.COLUMNS`), the summary, and the
    per-frame images kept for the report (masks of flagged frames)."""

    rows: list[dict]
    summary: dict
    keep: dict = field(default_factory=dict)  # frame -> (color, mask, result or None)


def _interior_click(mask: np.ndarray) -> Prompt:
    dist = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    v, u = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return Prompt.from_point(float(u), float(v))


def _start_frame(source: EpisodeSource, cfg: AnalysisConfig) -> tuple[int, Prompt]:
    n = len(source)
    if n == 0:
        raise InputError(f"{source.ref.name}: no readable frame" + (f" ({'; '.join(source.problems)})"
                                                                     if source.problems else ""))
    if cfg.prompt is not None:
        k = cfg.prompt_frame or 0
        if k >= n:
            raise ConfigError(f"{source.ref.name}: prompt_frame {k} is beyond the episode's {n} frames")
        return k, Prompt.from_dict(cfg.prompt)
    ks = [cfg.prompt_frame] if cfg.prompt_frame is not None else range(n)
    for k in ks:
        if k < n and source.prompt(k):
            return k, Prompt.from_dict(source.prompt(k))
    raise ConfigError(f"{source.ref.name}: no prompt recorded with the episode"
                      + (f" at frame {cfg.prompt_frame}" if cfg.prompt_frame is not None else "")
                      + "; give the target with --point U,V or --box X0,Y0,X1,Y1 (and --prompt-frame K)")


def _target_gt(source: EpisodeSource, k: int, mask: np.ndarray) -> int | None:
    """Id of the ground-truth object the first mask covers best (None without ground truth)."""
    from ..eval.metrics import mask_iou

    best, best_iou = None, 0.3
    for obj in source.ground_truth(k):
        iou = mask_iou(mask, obj.mask)
        if iou > best_iou:
            best, best_iou = obj.id, iou
    return best


def _nan() -> float:
    return float("nan")


def _pose_of(result) -> tuple[np.ndarray, str]:
    shape = result.shape
    if shape.base_from_object is not None:
        return np.asarray(shape.base_from_object.translation, float), "base"
    return np.asarray(shape.camera_from_object.translation, float), "camera_color_optical"


def analyze_source(source: EpisodeSource, cfg: AnalysisConfig | None = None, *,
                   progress: Callable[[int, int], None] | None = None, pipeline: Pipeline | None = None,
                   on_frame: Callable | None = None) -> EpisodeAnalysis:
    """Track the target through ``source`` and run the pipeline on it (see the module docstring).

    Parameters
    ----------
    source : EpisodeSource
    cfg : AnalysisConfig
    progress : callable (done, total), optional
        Called after every frame.
    pipeline : Pipeline, optional
        Reused when given (its segmenter is shared with an ``rgbd`` tracker).
    on_frame : callable (frame, mask, result, row), optional
        Called after every frame with the :class:`RGBDFrame`, the tracked mask ((H, W) bool, empty when lost),
        the :class:`~graspseg.pipeline.PerceptionResult` (None when lost or not analysed) and the finished row
        (e.g. to write an ``.rrd`` recording as the episode is read).

    Raises
    ------
    ConfigError
        No prompt for the episode.
    SegmentationError
        The target is not found on the prompted frame.
    """
    from ..eval.metrics import boundary_f_score, mask_iou

    cfg = cfg or AnalysisConfig()
    t_episode = time.perf_counter()
    k0, prompt = _start_frame(source, cfg)
    if pipeline is None:
        pcfg = PipelineConfig.from_dict(cfg.pipeline_config) if cfg.pipeline_config else PipelineConfig()
        pipeline = Pipeline(pcfg, rig=source.rig)
    elif source.rig is not None:
        pipeline.set_rig(source.rig)
    shared = None
    if cfg.tracker == "rgbd":
        if not isinstance(pipeline.segmenter, SharedSegmenter):
            pipeline.segmenter = SharedSegmenter(pipeline.segmenter)
        shared = pipeline.segmenter
        tracker = create_tracker("rgbd", segmenter=shared, **cfg.tracker_options)
    else:
        tracker = create_tracker(cfg.tracker, **cfg.tracker_options)
    n = len(source)
    rows: list[dict] = []
    keep: dict = {}
    target_id: int | None = None
    history: list[tuple[int, np.ndarray, float, float]] = []  # (frame, centre, width, bound) of analysed frames
    prev_lost = False
    t0_stamp = None
    pose_frame = None
    read_errors: list[str] = []
    for i in range(k0, n):
        t = time.perf_counter()
        try:
            frame = source.frame(i)
        except (GraspsegError, OSError, ValueError) as e:
            read_errors.append(f"frame {i}: {e}")
            source.problems.append(f"frame {i} could not be read ({e}); the episode is analysed up to it")
            break
        t_read = (time.perf_counter() - t) * 1e3
        t0_stamp = frame.timestamp_s if t0_stamp is None else t0_stamp
        t = time.perf_counter()
        if i == k0:
            try:
                step = tracker.start(frame, prompt)
            except (SegmentationError, GraspsegError) as e:
                raise SegmentationError(f"{source.ref.name}: the target was not found on the prompted frame {k0} "
                                        f"({e}); check the prompt (--point/--box) and --prompt-frame") from None
            if step.lost:
                raise SegmentationError(f"{source.ref.name}: the target was not found on the prompted frame {k0} "
                                        f"({step.reason}); check the prompt and --prompt-frame")
            target_id = _target_gt(source, i, step.mask)
        else:
            step = tracker.step(frame)
        t_track = (time.perf_counter() - t) * 1e3
        lost, reason = step.lost, step.reason
        if not lost and i > k0 and step.score < cfg.min_track_score:
            lost, reason = True, f"score collapsed to {step.score:.3f} (< {cfg.min_track_score:g})"
        if not lost and i > k0 and not prev_lost and step.iou_previous < cfg.min_iou_previous:
            lost, reason = True, f"mask jumped (IoU {step.iou_previous:.2f} with the previous mask)"
        mask = step.mask if not lost else np.zeros_like(step.mask)
        event = "lost" if lost and not prev_lost else ("reacquired" if prev_lost and not lost else "")
        extra = source.extra(i)
        row = {
            "frame": i, "frame_id": frame.frame_id, "timestamp_s": float(frame.timestamp_s),
            "t_rel_s": float(frame.timestamp_s - t0_stamp), "tracked": not lost, "track_event": event,
            "track_reason": reason, "track_score": float(step.score) if not lost else 0.0,
            "iou_previous": float(step.iou_previous), "mask_area_px": int(mask.sum()),
            "has_pose": frame.base_from_tcp is not None,
            "gt_iou": _nan(), "gt_boundary_f": _nan(), "gt_visible_fraction": _nan(), "gt_area_px": -1,
            "analysed": False, "error": "", "boundary_error_px": _nan(), "boundary_error_m": _nan(),
            "pose_frame": "", "center_x_m": _nan(), "center_y_m": _nan(), "center_z_m": _nan(),
            "yaw_rad": _nan(), "width_m": _nan(), "height_m": _nan(), "primitive": "",
            "grasps_evaluated": 0, "grasps_accepted": 0, "best_score": _nan(), "best_width_m": _nan(),
            "best_opening_m": _nan(), "best_worst_margin_mm": _nan(), "rejections": "{}",
            "jump_m": _nan(), "jump_bound_m": _nan(), "flagged": False, "flags": "",
            "t_read_ms": t_read, "t_track_ms": t_track, "t_perceive_ms": 0.0,
        }
        if "visible_fraction" in extra:
            row["gt_visible_fraction"] = float(extra["visible_fraction"])
        if target_id is not None:
            gts = [o for o in source.ground_truth(i) if o.id == target_id]
            gt = gts[0].mask if gts else np.zeros_like(mask)
            row["gt_iou"] = mask_iou(mask, gt)
            row["gt_boundary_f"] = boundary_f_score(mask, gt, 2.0)
            row["gt_area_px"] = int(gt.sum())
        flags = []
        result = None
        if lost:
            flags.append("lost")
            history.clear()
        elif (i - k0) % cfg.every == 0:
            t = time.perf_counter()
            p = shared.last[0] if (shared is not None and shared.last is not None) else _interior_click(mask)
            try:
                result = pipeline.perceive(frame, p, mask_override=mask)
            except GraspsegError as e:
                row["error"] = f"{type(e).__name__}: {e}"
                flags.append("error")
            row["t_perceive_ms"] = (time.perf_counter() - t) * 1e3
            if result is not None:
                row["analysed"] = True
                flags += _fill_result(row, result, history, i, cfg)
                pose_frame = pose_frame or row["pose_frame"]
        row["flagged"] = bool(flags)
        row["flags"] = ",".join(flags)
        rows.append(row)
        if on_frame is not None:
            on_frame(frame, mask, result, row)
        if flags or i == k0:
            keep[i] = (frame.color, mask, result)
        prev_lost = lost
        if progress is not None:
            progress(i - k0 + 1, n - k0)
    summary = _summary(source, cfg, rows, k0, prompt, target_id, pose_frame)
    summary["timing"] = {"wall_s": round(time.perf_counter() - t_episode, 3),
                         **{c: _stats([r[c] for r in rows]) for c in ("t_read_ms", "t_track_ms", "t_perceive_ms")}}
    keep = _choose_overlays(keep, rows, cfg.overlays, k0)
    return EpisodeAnalysis(rows, summary, keep)


def _fill_result(row: dict, result, history: list, i: int, cfg: AnalysisConfig) -> list[str]:
    """Copy the pipeline's numbers into ``row``; returns the flags they raise."""
    shape, grasps = result.shape, result.grasps
    centre, frame_name = _pose_of(result)
    bound = float(shape.uncertainty.get("boundary_error_m", float("nan")))
    width = float(np.min(shape.footprint_size_m)) if np.size(shape.footprint_size_m) else float("nan")
    r = shape.camera_from_object.rotation if frame_name != "base" else shape.base_from_object.rotation
    row.update({
        "boundary_error_px": float(result.boundary_error_px), "boundary_error_m": bound, "pose_frame": frame_name,
        "center_x_m": float(centre[0]), "center_y_m": float(centre[1]), "center_z_m": float(centre[2]),
        "yaw_rad": float(math.atan2(r[1, 0], r[0, 0])), "width_m": width, "height_m": float(shape.height_m),
        "primitive": str(shape.primitive), "grasps_evaluated": int(len(grasps)),
        "grasps_accepted": int(np.count_nonzero(grasps.accepted)) if len(grasps) else 0,
    })
    counts = {str(k): int(v) for k, v in sorted(grasps.rejected_counts.items()) if int(v)}
    row["rejections"] = json.dumps(counts, sort_keys=True)
    flags = []
    acc = grasps.accepted_only()
    if len(acc):
        row.update({"best_score": float(acc.score[0]), "best_width_m": float(acc.width_m[0]),
                    "best_opening_m": float(acc.opening_m[0]),
                    "best_worst_margin_mm": float(acc.worst_case_margin_mm[0])})
    else:
        flags.append("no_grasp")
    if np.isfinite(bound) and bound > 0:
        limit = cfg.jump_factor * bound
        row["jump_bound_m"] = limit
        if len(history) >= 2:  # the two last analysed frames since the last loss: a constant-velocity prediction
            (f1, c1, _, _), (f2, c2, _, _) = history[-2], history[-1]
            predicted = c2 + (c2 - c1) * (i - f2) / max(f2 - f1, 1)
            row["jump_m"] = float(np.linalg.norm(centre - predicted))
            if row["jump_m"] > limit:
                flags.append("pose_jump")
        elif history:  # one reference frame: the displacement is reported, not judged (the object may move)
            row["jump_m"] = float(np.linalg.norm(centre - history[-1][1]))
        if history and np.isfinite(width) and abs(width - history[-1][2]) > 2 * limit:
            flags.append("width_jump")
    history.append((i, centre, width, bound))
    del history[:-2]
    return flags


def _choose_overlays(keep: dict, rows: list[dict], limit: int, k0: int) -> dict:
    """The prompted frame and each flagged frame whose flags differ from the previous frame's (the start of
    every distinct failure), at most ``limit`` in all."""
    chosen = [k0]
    prev = ""
    for r in rows:
        if r["flagged"] and r["flags"] != prev and r["frame"] != k0:
            chosen.append(r["frame"])
        prev = r["flags"]
    chosen = chosen[: max(limit, 0)]
    return {k: keep[k] for k in chosen if k in keep}


def _stats(values) -> dict:
    a = np.asarray([v for v in values if v is not None and np.isfinite(v)], float)
    if not a.size:
        return {"n": 0}
    return {"n": int(a.size), "median": round(float(np.median(a)), 4), "mean": round(float(a.mean()), 4),
            "min": round(float(a.min()), 4), "max": round(float(a.max()), 4)}


def _runs(flags: list[bool]) -> list[tuple[int, int]]:
    runs, start = [], None
    for k, f in enumerate([*flags, False]):
        if f and start is None:
            start = k
        elif not f and start is not None:
            runs.append((start, k - 1))
            start = None
    return runs


def event_delays(rows: list[dict], hidden_fraction: float = HIDDEN_FRACTION, window: int = EVENT_WINDOW) -> dict:
    """Loss and re-acquisition detected by the tracker against the ground truth (rows with
    ``gt_visible_fraction``). Each true event is matched to the nearest detected event of its kind within
    ``window`` frames; ``delay`` = detected − true frame (None: not detected)."""
    vis = [r["gt_visible_fraction"] for r in rows]
    if not rows or not all(np.isfinite(v) for v in vis):
        return {}
    frames = [r["frame"] for r in rows]
    hidden = [v < hidden_fraction for v in vis]
    true_loss = [frames[k] for k in range(1, len(rows)) if hidden[k] and not hidden[k - 1]]
    true_back = [frames[k] for k in range(1, len(rows)) if not hidden[k] and hidden[k - 1]]
    det_loss = [r["frame"] for r in rows if r["track_event"] == "lost"]
    det_back = [r["frame"] for r in rows if r["track_event"] == "reacquired"]

    def match(truth, detected):
        out = []
        for f in truth:
            near = [d for d in detected if abs(d - f) <= window]
            d = min(near, key=lambda d: (abs(d - f), d)) if near else None
            out.append({"true_frame": f, "detected_frame": d, "delay_frames": None if d is None else d - f})
        return out

    loss, back = match(true_loss, det_loss), match(true_back, det_back)
    delays = [abs(e["delay_frames"]) for e in loss + back if e["delay_frames"] is not None]
    missed = sum(e["delay_frames"] is None for e in loss + back)
    spurious = (len([d for d in det_loss if all(abs(d - f) > window for f in true_loss)])
                + len([d for d in det_back if all(abs(d - f) > window for f in true_back)]))
    return {"loss": loss, "reacquire": back, "max_abs_delay_frames": max(delays) if delays else None,
            "missed": missed, "spurious": spurious, "hidden_fraction": hidden_fraction}


def _summary(source, cfg, rows, k0, prompt, target_id, pose_frame) -> dict:
    n = len(rows)
    tracked = [r["tracked"] for r in rows]
    flagged = [r["flagged"] for r in rows]
    analysed = [r for r in rows if r["analysed"]]
    lost_runs = _runs([not t for t in tracked])
    flag_counts: dict[str, int] = {}
    for r in rows:
        for f in filter(None, r["flags"].split(",")):
            flag_counts[f] = flag_counts.get(f, 0) + 1
    s = {
        "schema": "graspseg.analysis.episode", "schema_version": ANALYSIS_SCHEMA_VERSION, "status": "ok",
        "episode": source.ref.to_dict(), "frames_in_episode": len(source), "frames": n, "prompt_frame": k0,
        "prompt": prompt.describe(), "tracker": cfg.tracker, "every": cfg.every,
        "units": {"length": "m", "margin": "mm", "time": "s (timings ms)", "pixels": "u=column, v=row"},
        "pose_frame": pose_frame,
        "tracking": {
            "tracked_frames": int(sum(tracked)), "lost_frames": int(n - sum(tracked)),
            "lost_runs": [{"from_frame": rows[a]["frame"], "to_frame": rows[b]["frame"],
                           "reason": rows[a]["track_reason"]} for a, b in lost_runs],
            "events": [{"frame": r["frame"], "event": r["track_event"], "reason": r["track_reason"]}
                       for r in rows if r["track_event"]],
        },
        "analysed_frames": len(analysed),
        "flagged_frames": int(sum(flagged)), "flag_counts": dict(sorted(flag_counts.items())),
        "flagged_runs": [{"from_frame": rows[a]["frame"], "to_frame": rows[b]["frame"], "flags": rows[a]["flags"]}
                         for a, b in _runs(flagged)],
        "grasps": {
            "frames_with_accepted": int(sum(r["grasps_accepted"] > 0 for r in analysed)),
            "best_worst_margin_mm": _stats([r["best_worst_margin_mm"] for r in analysed]),
            "best_width_m": _stats([r["best_width_m"] for r in analysed]),
            "best_score": _stats([r["best_score"] for r in analysed]),
        },
        "boundary_error_px": _stats([r["boundary_error_px"] for r in analysed]),
        "sync": getattr(source, "sync", {}) or {},
        "problems": list(source.problems),
        "config": cfg.to_dict(),
    }
    if target_id is not None:
        ious = [r["gt_iou"] for r in rows]
        visible = [r["gt_iou"] for r in rows if not (r["gt_visible_fraction"] < 0.5)]
        s["ground_truth"] = {
            "target_id": target_id,
            "mean_iou": round(float(np.mean(ious)), 4),
            "mean_iou_visible": round(float(np.mean(visible)), 4) if visible else None,
            "mean_boundary_f": round(float(np.mean([r["gt_boundary_f"] for r in rows])), 4),
            "iou_definition": "per frame IoU of the tracked mask (empty when lost) with the visible true mask, "
                              "1 when both are empty; mean_iou_visible over frames with >= 50% of the target visible",
            "events": event_delays(rows),
        }
    return s


__all__ = ["EVENT_WINDOW", "HIDDEN_FRACTION", "EpisodeAnalysis", "SharedSegmenter", "analyze_source", "event_delays"]
