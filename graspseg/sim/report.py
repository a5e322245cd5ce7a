"""Summaries, failure images and episode folders of simulated grasp trials."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from ..core.errors import UnitsError

SCHEMA_VERSION = 1


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (default 95 %); (0, 1) when ``n`` is 0."""
    if n < 0 or successes < 0 or successes > n:
        raise UnitsError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def summarise(records: list[dict], *, config: dict | None = None, wall_s: float | None = None) -> dict:
    """The summary document: success rate with its 95 % Wilson interval, failure causes, mask quality."""
    n = len(records)
    ok = sum(bool(r.get("success")) for r in records)
    lo, hi = wilson_interval(ok, n)
    causes = Counter(r.get("cause", "") for r in records if not r.get("success"))
    ious = [r["mask_iou"] for r in records if "mask_iou" in r]
    bfs = [r["boundary_f"] for r in records if "boundary_f" in r]
    pos = [r["position_error_mm"] for r in records if "position_error_mm" in r]
    out = {
        "schema_version": SCHEMA_VERSION,
        "units": {"rates": "fraction", "time": "s", "position_error": "mm"},
        "frames": {"world": "base (table top, +z up)", "grasp": "+z approach, +x closing, origin at the fingertip centre"},
        "config": dict(config or {}),
        "trials": n,
        "successes": ok,
        "success_rate": ok / n if n else 0.0,
        "success_rate_ci95": [lo, hi],
        "failure_causes": dict(sorted(causes.items(), key=lambda kv: -kv[1])),
        "mask_iou_mean": float(np.mean(ious)) if ious else None,
        "boundary_f_mean": float(np.mean(bfs)) if bfs else None,
        "position_error_mm_median": float(np.median(pos)) if pos else None,
    }
    if wall_s is not None:
        out["wall_s"] = wall_s
        out["trials_per_s"] = n / wall_s if wall_s > 0 else None
    return out


def failure_image(color: np.ndarray, gt_mask: np.ndarray | None, used_mask: np.ndarray | None,
                  camera_from_grasp: np.ndarray | None, intrinsics, *, opening_m: float = 0.08, title: str = "",
                  execution_views=()) -> np.ndarray:
    """(H, W, 3) RGB: the frame with the true mask (green contour), the used mask (red contour) and the grasp
    (fingertip centre and closing line, yellow); below it, when given, ``execution_views`` ((phase, image)
    pairs: side views of the grasp execution), each labelled and scaled to the frame's width."""
    img = np.ascontiguousarray(color.copy())
    for mask, col in ((gt_mask, (40, 220, 40)), (used_mask, (230, 40, 40))):
        if mask is not None and np.asarray(mask).any():
            cs, _ = cv2.findContours(np.asarray(mask, np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(img, cs, -1, col, 1)
    if camera_from_grasp is not None:
        g = np.asarray(camera_from_grasp)
        pts = np.array([g[:3, 3], g[:3, 3] - g[:3, 0] * opening_m / 2, g[:3, 3] + g[:3, 0] * opening_m / 2,
                        g[:3, 3] - g[:3, 2] * 0.05])
        uv = intrinsics.project(pts)
        if np.isfinite(uv).all():
            p = [tuple(int(round(x)) for x in q) for q in uv]
            cv2.line(img, p[1], p[2], (250, 220, 30), 2)
            cv2.line(img, p[0], p[3], (250, 220, 30), 1)
            cv2.circle(img, p[0], 3, (250, 220, 30), -1)
    if title:
        cv2.putText(img, title, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 2, cv2.LINE_AA)
        cv2.putText(img, title, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    rows = [img]
    for name, view in execution_views:
        v = np.ascontiguousarray(view)
        h = int(round(v.shape[0] * img.shape[1] / v.shape[1]))
        v = np.ascontiguousarray(cv2.resize(v, (img.shape[1], h), interpolation=cv2.INTER_AREA))
        cv2.putText(v, str(name), (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(v)
    return np.concatenate(rows, axis=0) if len(rows) > 1 else img


def save_episode(out_dir: Path, trial) -> dict:
    """Write one trial as an episode: a frame folder per frame (here the perception frame) and its index entry."""
    from ..capture.frame_folder import save_frame_folder

    rec = trial.record
    folder = Path(out_dir) / f"trial_{rec['trial']:05d}"
    frames = []
    if trial.frame is not None:
        f0 = folder / "frame_000"
        extra = {"camera_from_base": trial.camera_from_base.to_dict() if trial.camera_from_base is not None else None,
                 "prompt": trial.prompt.describe() if trial.prompt is not None else None}
        save_frame_folder(trial.frame, f0, depth_scale=1e-4, objects=trial.objects_gt, extra=extra)
        frames.append({"folder": str(f0.relative_to(out_dir)), "timestamp_s": trial.frame.timestamp_s,
                       "camera_from_base": extra["camera_from_base"], "prompt": extra["prompt"]})
    return {"trial": rec["trial"], "folder": str(folder.relative_to(out_dir)), "frames": frames,
            "target": rec.get("target"), "success": rec.get("success"), "cause": rec.get("cause")}


__all__ = ["failure_image", "save_episode", "summarise", "wilson_interval"]
