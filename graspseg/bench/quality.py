"""``graspseg bench quality``: segmentation quality of a backend with the standard one-click protocol.

For every annotated object, the first click is the interior point farthest from its true boundary
(:func:`graspseg.eval.first_click`); the candidate of the chosen granularity (``whole`` by default) is
scored by mask IoU, boundary F at a pixel tolerance and Boundary IoU. Two data sets:

* real frame folders with (approximate) masks, e.g. ``shared/data/real/6dof_graspnet``;
* synthetic cluttered tabletops with exact masks where objects touch and occlude
  (:func:`graspseg.sim.synthetic.make_scene`), with and without stereo-like depth noise.

The classic Open3D recipe (plane RANSAC, DBSCAN, the cluster under the click) is scored on the same
clicks when open3d is installed. ``set_frame`` and ``predict`` times are medians over repeats, in ms;
on a shared machine they are pessimistic.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from ..core.errors import GraspsegError, InputError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
TARGETS = {
    "real_mean_iou": 0.93,
    "real_mean_boundary_f": 0.92,
    "synthetic_mean_iou": 0.92,
    "set_frame_ms": 30.0,
    "predict_ms": 10.0,
}
#: Layouts of the synthetic benchmark: objects touching in a row, and pushed together from all sides.
SYNTHETIC_LAYOUTS: tuple[str, ...] = ("side_by_side", "clutter")


def _default_real_dir() -> Path | None:
    here = Path(__file__).resolve()
    for base in (here.parents[2].parent / "shared", here.parents[2] / "shared", Path.cwd().parent / "shared",
                 Path.cwd() / "shared"):
        p = base / "data" / "real" / "6dof_graspnet"
        if p.is_dir():
            return p
    return None


def _median(xs: list[float]) -> float | None:
    return round(float(statistics.median(xs)), 3) if xs else None


def _score(pred: np.ndarray, gt: np.ndarray, tol_px: float) -> dict:
    from ..eval import boundary_f_score, boundary_iou, mask_iou

    return {
        "iou": round(mask_iou(pred, gt), 4),
        "boundary_f": round(boundary_f_score(pred, gt, tol_px), 4),
        "boundary_iou": round(boundary_iou(pred, gt), 4),
    }


def _baseline(frame, click) -> tuple[np.ndarray | None, str | None]:
    try:
        from ..baselines.open3d_recipe import classic_segmentation
    except ImportError as e:  # module absent
        return None, f"baseline unavailable: {e}"
    try:
        return classic_segmentation(frame, click).mask, None
    except ImportError as e:  # open3d missing (MissingDependencyError is an ImportError)
        return None, f"baseline unavailable: {e}"
    except GraspsegError as e:
        return np.zeros(frame.depth_m.shape, bool), f"baseline failed: {e}"


def evaluate_frame(segmenter, frame, objects, *, granularity: str, tol_px: float, repeat: int,
                   baseline: bool, min_area_px: int = 400, overlay_dir: Path | None = None) -> dict:
    """Score one frame: every object of ``objects`` (GroundTruthObject-like) gets one click."""
    from ..eval import first_click
    from ..segment import Prompt, select_candidate

    t_set = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        segmenter.set_frame(frame)
        t_set.append((time.perf_counter() - t0) * 1e3)
    rows, t_pred = [], []
    for obj in objects:
        gt = np.asarray(obj.mask, bool)
        if gt.sum() < min_area_px:
            continue
        u, v = first_click(gt)
        prompt = Prompt.from_point(u, v)
        times = []
        try:
            for _ in range(max(1, repeat)):
                t0 = time.perf_counter()
                ms = segmenter.predict(prompt)
                times.append((time.perf_counter() - t0) * 1e3)
        except GraspsegError as e:  # counted as a miss, with the reason
            pred = np.zeros_like(gt)
            row = {"object": obj.name, "click_uv": [u, v], "area_px": int(gt.sum()), **_score(pred, gt, tol_px),
                   "score": 0.0, "error": str(e)}
        else:
            t_pred += times
            k = select_candidate(ms, granularity)
            pred = ms.masks[k]
            row = {"object": obj.name, "click_uv": [u, v], "area_px": int(gt.sum()), **_score(pred, gt, tol_px),
                   "score": round(float(ms.scores[k]), 4)}
        if baseline:
            bmask, note = _baseline(frame, (u, v))
            if bmask is not None:
                b = _score(bmask, gt, tol_px)
                row["baseline"] = b
            if note:
                row["baseline_note"] = note
        rows.append(row)
        if overlay_dir is not None:
            _write_overlay(overlay_dir / f"{frame.frame_id}_{obj.name}.png", frame.color, pred, gt, (u, v))
    return {"frame": frame.frame_id, "objects": rows, "set_frame_ms": _median(t_set),
            "predict_ms": _median(t_pred)}


def _write_overlay(path: Path, color: np.ndarray, pred: np.ndarray, gt: np.ndarray, click) -> None:
    import cv2

    from ..capture.images import write_png

    img = color.astype(np.float32)
    for sel, rgb in ((pred & gt, (0, 200, 0)), (pred & ~gt, (255, 0, 0)), (gt & ~pred, (0, 80, 255))):
        img[sel] = 0.45 * img[sel] + 0.55 * np.array(rgb, np.float32)
    img = img.astype(np.uint8)
    cv2.circle(img, (int(round(click[0])), int(round(click[1]))), 4, (255, 255, 0), -1)
    write_png(path, img)


def _summary(frames: list[dict], key_path: tuple[str, ...]) -> float | None:
    vals = []
    for fr in frames:
        for row in fr["objects"]:
            d = row
            for k in key_path:
                d = d.get(k) if isinstance(d, dict) else None
            if d is not None:
                vals.append(float(d))
    return round(float(np.mean(vals)), 4) if vals else None


def run_quality(args: argparse.Namespace) -> dict:
    from ..segment import create_segmenter

    segmenter = create_segmenter(args.backend)
    notes: list[str] = []
    overlay_dir = Path(args.overlays) if args.overlays else None
    report: dict = {
        "schema_version": SCHEMA_VERSION,
        "benchmark": "quality",
        "backend": args.backend,
        "protocol": "one click at the interior point farthest from the true boundary",
        "granularity": args.granularity,
        "boundary_tolerance_px": args.tolerance_px,
        "units": {"iou": "fraction", "boundary_f": "fraction", "boundary_iou": "fraction", "time": "ms"},
        "frame": "camera_color_optical",
        "targets": TARGETS,
    }
    all_set, all_pred = [], []

    # --- real frames ------------------------------------------------------------------------
    real_dir = Path(args.data) if args.data else _default_real_dir()
    if args.no_real:
        real_dir = None
    real = []
    if real_dir is not None:
        from ..capture.frame_folder import load_frame_folder, load_ground_truth

        if not real_dir.is_dir():
            raise InputError(f"--data {real_dir} is not a directory; give a folder of frame folders with masks/")
        for folder in sorted(p for p in real_dir.iterdir() if p.is_dir()):
            gts = load_ground_truth(folder)
            if not gts:
                continue
            frame = load_frame_folder(folder)
            res = evaluate_frame(segmenter, frame, gts, granularity=args.granularity, tol_px=args.tolerance_px,
                                 repeat=args.repeat, baseline=not args.no_baselines, overlay_dir=overlay_dir)
            real.append(res)
            all_set.append(res["set_frame_ms"])
            all_pred.append(res["predict_ms"])
            log.info("real %s: %s", folder.name, res["objects"])
    else:
        notes.append("no real frame folders given or found (--data DIR)")
    report["real"] = {
        "data": str(real_dir) if real_dir else None,
        "frames": real,
        "mean_iou": _summary(real, ("iou",)),
        "mean_boundary_f": _summary(real, ("boundary_f",)),
        "mean_boundary_iou": _summary(real, ("boundary_iou",)),
        "baseline_mean_iou": _summary(real, ("baseline", "iou")),
        "baseline_mean_boundary_f": _summary(real, ("baseline", "boundary_f")),
    }

    # --- synthetic clutter ----------------------------------------------------------------------
    synth = []
    if args.synthetic > 0:
        try:
            from ..sim.synthetic import DepthNoise, make_scene
        except ImportError as e:
            notes.append(f"synthetic scenes unavailable ({e})")
        else:
            for layout in args.layouts:
                for noisy in (True, False) if args.noise == "both" else ((args.noise == "on"),):
                    for seed in range(args.synthetic):
                        scene = make_scene(layout, seed=seed, n_objects=args.objects,
                                           noise=DepthNoise() if noisy else None)
                        frame = scene.frame
                        res = evaluate_frame(segmenter, frame, scene.objects, granularity=args.granularity,
                                             tol_px=args.tolerance_px, repeat=args.repeat,
                                             baseline=not args.no_baselines, overlay_dir=overlay_dir)
                        touching = {i for pair in scene.touching for i in pair}
                        ids = {o.name: o.id for o in scene.objects}
                        for row in res["objects"]:
                            row["touching"] = ids.get(row["object"]) in touching
                        res.update(layout=layout, seed=seed, noise=noisy)
                        synth.append(res)
                        all_set.append(res["set_frame_ms"])
                        all_pred.append(res["predict_ms"])
    touching_frames = [{"objects": [r for r in fr["objects"] if r.get("touching")]} for fr in synth]
    report["synthetic"] = {
        "generator": "graspseg.sim.synthetic.make_scene",
        "layouts": list(args.layouts),
        "objects_per_scene": args.objects,
        "frames": synth,
        "mean_iou": _summary(synth, ("iou",)),
        "mean_boundary_f": _summary(synth, ("boundary_f",)),
        "mean_iou_touching_objects": _summary(touching_frames, ("iou",)),
        "mean_iou_noisy_depth": _summary([f for f in synth if f.get("noise")], ("iou",)),
        "mean_iou_exact_depth": _summary([f for f in synth if not f.get("noise")], ("iou",)),
        "baseline_mean_iou": _summary(synth, ("baseline", "iou")),
        "baseline_mean_iou_touching_objects": _summary(touching_frames, ("baseline", "iou")),
    }
    set_ms = [x for x in all_set if x is not None]
    pred_ms = [x for x in all_pred if x is not None]
    report["timing_ms"] = {
        "set_frame_median": _median(set_ms),
        "predict_median": _median(pred_ms),
        "set_frame_median_real": _median([f["set_frame_ms"] for f in real if f["set_frame_ms"] is not None]),
        "predict_median_real": _median([f["predict_ms"] for f in real if f["predict_ms"] is not None]),
        "set_frame_median_synthetic": _median([f["set_frame_ms"] for f in synth if f["set_frame_ms"] is not None]),
        "predict_median_synthetic": _median([f["predict_ms"] for f in synth if f["predict_ms"] is not None]),
        "repeats_per_measurement": args.repeat,
        "note": "medians of per-frame medians; shared machine, figures are pessimistic",
    }
    if args.no_baselines:
        notes.append("baselines skipped (--no-baselines)")
    report["met"] = {
        "real_mean_iou": _ge(report["real"]["mean_iou"], TARGETS["real_mean_iou"]),
        "real_mean_boundary_f": _ge(report["real"]["mean_boundary_f"], TARGETS["real_mean_boundary_f"]),
        "synthetic_mean_iou": _ge(report["synthetic"]["mean_iou"], TARGETS["synthetic_mean_iou"]),
        "set_frame_ms": _le(report["timing_ms"]["set_frame_median"], TARGETS["set_frame_ms"]),
        "predict_ms": _le(report["timing_ms"]["predict_median"], TARGETS["predict_ms"]),
    }
    report["notes"] = notes
    return report


def _ge(x, t):
    return None if x is None else bool(x >= t)


def _le(x, t):
    return None if x is None else bool(x <= t)


def _table(report: dict) -> str:
    lines = [f"{'frame':28s} {'object':22s} {'IoU':>6s} {'BF':>6s} {'BIoU':>6s} {'base IoU':>8s}"]
    for part in ("real", "synthetic"):
        for fr in report[part]["frames"]:
            name = fr["frame"]
            for row in fr["objects"]:
                b = row.get("baseline", {}).get("iou")
                lines.append(f"{name[:28]:28s} {row['object'][:22]:22s} {row['iou']:6.3f} {row['boundary_f']:6.3f} "
                             f"{row['boundary_iou']:6.3f} {'' if b is None else f'{b:8.3f}'}")
    r, s, t = report["real"], report["synthetic"], report["timing_ms"]
    lines.append(f"real: mean IoU {r['mean_iou']} BF {r['mean_boundary_f']} (baseline {r['baseline_mean_iou']} / "
                 f"{r['baseline_mean_boundary_f']})")
    lines.append(f"synthetic: mean IoU {s['mean_iou']} touching {s['mean_iou_touching_objects']} "
                 f"(baseline {s['baseline_mean_iou']} / touching {s['baseline_mean_iou_touching_objects']})")
    lines.append(f"median set_frame {t['set_frame_median']} ms, predict {t['predict_median']} ms")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.repeat < 1:
        raise InputError(f"--repeat must be >= 1, got {args.repeat}")
    if args.synthetic < 0:
        raise InputError(f"--synthetic must be >= 0 scenes per layout, got {args.synthetic}")
    report = run_quality(args)
    print(json.dumps(report, indent=2))
    if not args.quiet:
        print(_table(report), file=sys.stderr)
    return 0


def register(bench_subparsers) -> None:
    p = bench_subparsers.add_parser(
        "quality", help="one-click segmentation quality (IoU, boundary F) on real and synthetic frames, with timings"
    )
    p.add_argument("--data", metavar="DIR", help="folder of frame folders with masks/ (default: the shared "
                   "6dof_graspnet frames when found)")
    p.add_argument("--no-real", action="store_true", help="skip the real frames")
    p.add_argument("--synthetic", type=int, default=4, metavar="N", help="synthetic scenes per layout and noise "
                   "setting (default 4; 0 skips)")
    p.add_argument("--layouts", nargs="+", default=list(SYNTHETIC_LAYOUTS), help="synthetic layouts")
    p.add_argument("--objects", type=int, default=4, help="objects per synthetic scene (default 4)")
    p.add_argument("--noise", choices=("on", "off", "both"), default="both", help="synthetic depth noise")
    p.add_argument("--backend", default="rgbd", help="segmenter backend (default rgbd)")
    p.add_argument("--granularity", default="whole", choices=("part", "whole", "group", "auto"))
    p.add_argument("--tolerance-px", type=float, default=2.0, help="boundary F tolerance, pixels (default 2)")
    p.add_argument("--repeat", type=int, default=3, help="timed repeats of set_frame/predict (default 3)")
    p.add_argument("--no-baselines", action="store_true", help="skip the classic open3d recipe")
    p.add_argument("--overlays", metavar="DIR", help="write one overlay PNG per object there")
    p.add_argument("--quiet", action="store_true", help="no human-readable table on stderr")
    p.set_defaults(func=run)
