"""``graspseg bench quality``: segmentation quality of a backend with the standard one-click protocol.

For every annotated object, the first click is the interior point farthest from its true boundary
(:func:`graspseg.eval.first_click`); the candidate of the chosen granularity (``whole`` by default) is
scored by mask IoU, boundary F at a pixel tolerance (and DAVIS's) and Boundary IoU — the metric functions of
:mod:`graspseg.eval.metrics` that ``graspseg eval segment`` uses (definitions in ``docs/metrics.md``). Two data sets:

* real frame folders with masks: every shared set that has them (``6dof_graspnet``, ``ycb_video``), or
  the ``--data`` folders, each scored as its own cell;
* a synthetic matrix with exact masks (:func:`graspseg.sim.synthetic.make_scene`): viewpoint (wrist
  0.2–0.5 m, third-person 0.8–1.6 m, both looking 30–60° off vertical; overhead 0.6–0.9 m) × resolution ×
  sensor (:data:`graspseg.sim.synthetic.SENSORS`) × scene (single, touching row, packed clutter, thin and
  flat objects, objects cut by the image border), every scene with a finite table, floor and wall.

Every cell reports mean IoU and boundary F beside the classic recipe's, and the median signed boundary
offset (px; < 0: masks inside the true outline).

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

SCHEMA_VERSION = 2
#: Per-cell targets (every real set and every synthetic cell), and the speed targets at 640x480.
TARGETS = {
    "cell_mean_iou": 0.90,
    "cell_mean_boundary_f": 0.80,
    "set_frame_ms": 30.0,
    "predict_ms": 10.0,
    "median_position_error_mm": 8.0,
}
#: Shared real sets with masks scored by default (looked up under ``shared/data/real``).
REAL_SETS: tuple[str, ...] = ("6dof_graspnet", "ycb_video")
#: Viewpoints: camera distance from the objects (m) and angle of the optical axis from vertical (deg).
VIEWPOINTS: dict[str, dict] = {
    "wrist": {"distance_m": (0.2, 0.5), "tilt_deg": (30.0, 60.0)},
    "third_person": {"distance_m": (0.8, 1.6), "tilt_deg": (30.0, 60.0)},
    "overhead": {"distance_m": (0.6, 0.9), "tilt_deg": (0.0, 10.0)},
}
RESOLUTIONS: dict[str, tuple[int, int]] = {"640x480": (640, 480), "848x480": (848, 480), "1280x720": (1280, 720)}
#: Scenes: make_scene layout, object count, kinds (None: the default kinds) and view shift.
SCENES: dict[str, dict] = {
    "single": {"layout": "single", "n_objects": 1},
    "row": {"layout": "side_by_side", "n_objects": 4},
    "packed": {"layout": "clutter", "n_objects": 8},
    "thin_flat": {"layout": "clutter", "n_objects": 4, "kinds": ("flat_box", "thin_cylinder")},
    "border": {"layout": "clutter", "n_objects": 5, "view_shift": 0.9},
}


def _default_real_dirs() -> list[Path]:
    """The shared real sets with masks (:data:`REAL_SETS`), where a ``shared`` folder is found."""
    here = Path(__file__).resolve()
    for base in (here.parents[2].parent / "shared", here.parents[2] / "shared", Path.cwd().parent / "shared",
                 Path.cwd() / "shared"):
        found = [base / "data" / "real" / name for name in REAL_SETS if (base / "data" / "real" / name).is_dir()]
        if found:
            return found
    return []


def _median(xs: list[float]) -> float | None:
    return round(float(statistics.median(xs)), 3) if xs else None


def _score(pred: np.ndarray, gt: np.ndarray, tol_px: float) -> dict:
    """The metrics of :func:`graspseg.eval.mask_scores` (the ones ``graspseg eval segment`` reports), rounded."""
    from ..eval import mask_scores

    s = mask_scores(pred, gt, tolerance_px=tol_px)
    offset = s["signed_offset_px"]
    return {
        "iou": round(s["iou"], 4),
        "boundary_f": round(s["boundary_f"], 4),
        "boundary_f_davis": round(s["boundary_f_davis"], 4),
        "boundary_iou": round(s["boundary_iou"], 4),
        "signed_offset_px": None if offset is None else round(offset, 2),
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
                   baseline: bool, min_area_px: int = 400, overlay_dir: Path | None = None,
                   pipeline=None) -> dict:
    """Score one frame: every object of ``objects`` (GroundTruthObject-like) gets one click.

    With ``pipeline`` (a :class:`~graspseg.pipeline.Pipeline`), objects with a true ``camera_from_object``
    are also perceived with the pipeline's defaults on the same click: ``position_error_mm`` is the distance
    between the estimated object centre (the completed shape's) and the true pose's origin."""
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
        if pipeline is not None and getattr(obj, "camera_from_object", None) is not None:
            row.update(_position_error(pipeline, frame, prompt, obj.camera_from_object))
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


def _position_error(pipeline, frame, prompt, camera_from_object) -> dict:
    """``position_error_mm`` of ``pipeline.perceive`` against the true pose (or ``perceive_error``)."""
    try:
        result = pipeline.perceive(frame, prompt)
    except GraspsegError as e:
        return {"position_error_mm": None, "perceive_error": str(e)}
    from ..eval import position_error_mm

    est = np.asarray(result.shape.camera_from_object.matrix)[:3, 3]
    return {"position_error_mm": round(position_error_mm(est, camera_from_object), 2),
            "perceive_granularity": result.mask_set.granularity[result.selected_index]
            if result.selected_index >= 0 else "override"}


def _write_overlay(path: Path, color: np.ndarray, pred: np.ndarray, gt: np.ndarray, click) -> None:
    import cv2

    from ..capture.images import write_png

    img = color.astype(np.float32)
    for sel, rgb in ((pred & gt, (0, 200, 0)), (pred & ~gt, (255, 0, 0)), (gt & ~pred, (0, 80, 255))):
        img[sel] = 0.45 * img[sel] + 0.55 * np.array(rgb, np.float32)
    img = img.astype(np.uint8)
    cv2.circle(img, (int(round(click[0])), int(round(click[1]))), 4, (255, 255, 0), -1)
    write_png(path, img)


def _values(frames: list[dict], key_path: tuple[str, ...]) -> list[float]:
    vals = []
    for fr in frames:
        for row in fr["objects"]:
            d = row
            for k in key_path:
                d = d.get(k) if isinstance(d, dict) else None
            if d is not None:
                vals.append(float(d))
    return vals


def _summary(frames: list[dict], key_path: tuple[str, ...]) -> float | None:
    vals = _values(frames, key_path)
    return round(float(np.mean(vals)), 4) if vals else None


def cell_summary(frames: list[dict]) -> dict:
    """Means over every object of ``frames`` (evaluate_frame results), with the baseline's beside them."""
    out = {
        "frames": len(frames),
        "objects": len(_values(frames, ("iou",))),
        "mean_iou": _summary(frames, ("iou",)),
        "mean_boundary_f": _summary(frames, ("boundary_f",)),
        "mean_boundary_f_davis": _summary(frames, ("boundary_f_davis",)),
        "mean_boundary_iou": _summary(frames, ("boundary_iou",)),
        "median_signed_offset_px": _median(_values(frames, ("signed_offset_px",))),
        "median_position_error_mm": _median(_values(frames, ("position_error_mm",))),
        "baseline_mean_iou": _summary(frames, ("baseline", "iou")),
        "baseline_mean_boundary_f": _summary(frames, ("baseline", "boundary_f")),
        "set_frame_ms": _median([f["set_frame_ms"] for f in frames if f["set_frame_ms"] is not None]),
        "predict_ms": _median([f["predict_ms"] for f in frames if f["predict_ms"] is not None]),
    }
    iou, bf = out["mean_iou"], out["mean_boundary_f"]
    b_iou, b_bf = out["baseline_mean_iou"], out["baseline_mean_boundary_f"]
    out["met"] = None if iou is None else bool(iou >= TARGETS["cell_mean_iou"] and bf >= TARGETS["cell_mean_boundary_f"])
    out["ahead_of_baseline"] = None if iou is None or b_iou is None else bool(iou > b_iou and bf > b_bf)
    return out


def synthetic_cells(viewpoints, resolutions, sensors, scenes) -> list[dict]:
    """The cells of the synthetic matrix: one dict per viewpoint × resolution × sensor × scene."""
    return [{"viewpoint": v, "resolution": r, "sensor": se, "scene": sc}
            for v in viewpoints for r in resolutions for se in sensors for sc in scenes]


def render_cell_scene(cell: dict, seed: int):
    """One seeded scene of a matrix cell: ``(scene, frame)`` as the cell's sensor delivers it."""
    from ..sim.synthetic import make_scene, sensor_frame, sensor_noise

    view = VIEWPOINTS[cell["viewpoint"]]
    spec = SCENES[cell["scene"]]
    width, height = RESOLUTIONS[cell["resolution"]]
    rng = np.random.default_rng([int(seed), 11])
    scene = make_scene(spec["layout"], seed=seed, n_objects=spec["n_objects"], width=width, height=height,
                       distance_m=float(rng.uniform(*view["distance_m"])), tilt_deg=float(rng.uniform(*view["tilt_deg"])),
                       noise=sensor_noise(cell["sensor"]), kinds=spec.get("kinds"), room=True,
                       view_shift=spec.get("view_shift", 0.0))
    frame, _ = sensor_frame(scene, cell["sensor"], seed)
    return scene, frame


def _segmenter(args: argparse.Namespace):
    """``(backend, segmenter, overrides)`` from ``--backend``, ``--config`` and ``--segment.*`` overrides."""
    from ..pipeline import PipelineConfig
    from ..segment import create_segmenter

    overrides = dict(getattr(args, "overrides", None) or {})
    foreign = sorted(k for k in overrides if not k.startswith("segment."))
    if foreign:
        raise InputError(f"bench quality takes only segment.* overrides, got {', '.join('--' + k for k in foreign)}")
    cfg = PipelineConfig.from_yaml(args.config) if getattr(args, "config", None) else PipelineConfig()
    if getattr(args, "backend", None):
        overrides["segment.backend"] = args.backend
    if overrides:
        cfg = cfg.with_overrides(overrides)
    return cfg, create_segmenter(cfg.segment.backend, **cfg.segment.options), overrides


def run_quality(args: argparse.Namespace) -> dict:
    cfg, segmenter, overrides = _segmenter(args)
    backend = cfg.segment.backend
    pipeline = None
    if getattr(args, "poses", False):
        from ..pipeline import Pipeline

        pipeline = Pipeline(cfg)
    notes: list[str] = []
    overlay_dir = Path(args.overlays) if args.overlays else None
    report: dict = {
        "schema_version": SCHEMA_VERSION,
        "benchmark": "quality",
        "backend": backend,
        "overrides": overrides,
        "protocol": "one click at the interior point farthest from the true boundary",
        "granularity": args.granularity,
        "boundary_tolerance_px": args.tolerance_px,
        "metrics": "graspseg.eval.mask_scores (definitions: docs/metrics.md); boundary_f at --tolerance-px, "
                   "boundary_f_davis at ceil(0.008 x diagonal)",
        "units": {"iou": "fraction", "boundary_f": "fraction", "boundary_iou": "fraction", "time": "ms",
                  "signed_offset": "px (< 0: inside the true outline)"},
        "frame": "camera_color_optical",
        "targets": TARGETS,
    }
    baseline = not args.no_baselines

    # --- real sets ------------------------------------------------------------------------------
    from ..capture.frame_folder import load_frame_folder, load_ground_truth

    real_dirs = [] if args.no_real else ([Path(d) for d in args.data] if args.data else _default_real_dirs())
    if not args.no_real and not real_dirs:
        notes.append("no real frame folders given or found (--data DIR ...)")
    real_sets: dict[str, dict] = {}
    real_frames: list[dict] = []
    for real_dir in real_dirs:
        if not real_dir.is_dir():
            raise InputError(f"--data {real_dir} is not a directory; give folders of frame folders with masks/")
        frames = []
        for folder in sorted(p for p in real_dir.iterdir() if p.is_dir()):
            gts = load_ground_truth(folder)
            if not gts:
                continue
            res = evaluate_frame(segmenter, load_frame_folder(folder), gts, granularity=args.granularity,
                                 tol_px=args.tolerance_px, repeat=args.repeat, baseline=baseline,
                                 overlay_dir=overlay_dir, pipeline=pipeline)
            frames.append(res)
            log.info("real %s/%s: %s", real_dir.name, folder.name, res["objects"])
        if not frames:
            notes.append(f"{real_dir} holds no frame folder with masks")
            continue
        real_sets[real_dir.name] = {"data": str(real_dir), **cell_summary(frames), "frames_detail": frames}
        real_frames += frames
    report["real"] = {"sets": real_sets, **{k: v for k, v in cell_summary(real_frames).items()
                                             if k.startswith(("mean", "baseline", "median"))}}

    # --- synthetic matrix --------------------------------------------------------------------------
    cells = []
    if args.synthetic > 0:
        for cell in synthetic_cells(args.viewpoints, args.resolutions, args.sensors, args.scenes):
            frames = []
            for seed in range(args.synthetic):
                scene, frame = render_cell_scene(cell, seed)
                res = evaluate_frame(segmenter, frame, scene.objects, granularity=args.granularity,
                                     tol_px=args.tolerance_px, repeat=args.repeat, baseline=baseline,
                                     overlay_dir=overlay_dir)
                res["seed"] = seed
                frames.append(res)
            summary = cell_summary(frames)
            cells.append({**cell, **summary, "frames_detail": frames})
            if not args.quiet:  # progress: one line per cell as it completes
                if len(cells) == 1:
                    print(TABLE_HEADER, file=sys.stderr)
                print(_cell_line(_cell_name(cell), summary), file=sys.stderr, flush=True)
    synth_frames = [f for c in cells for f in c["frames_detail"]]
    report["synthetic"] = {
        "generator": "graspseg.sim.synthetic.make_scene (room=True) + sensor_frame",
        "scenes_per_cell": args.synthetic,
        "cells": cells,
        **{k: v for k, v in cell_summary(synth_frames).items() if k.startswith(("mean", "baseline", "median"))},
    }

    # --- timing and verdicts ----------------------------------------------------------------------
    all_frames = real_frames + synth_frames
    by_res: dict[str, list] = {}
    for fr, res_name in [(f, "real") for f in real_frames] + [(f, c["resolution"]) for c in cells
                                                                for f in c["frames_detail"]]:
        by_res.setdefault(res_name, []).append(fr)
    report["timing_ms"] = {
        "set_frame_median": _median([f["set_frame_ms"] for f in all_frames if f["set_frame_ms"] is not None]),
        "predict_median": _median([f["predict_ms"] for f in all_frames if f["predict_ms"] is not None]),
        "by_resolution": {k: {"set_frame_median": _median([f["set_frame_ms"] for f in v if f["set_frame_ms"]]),
                              "predict_median": _median([f["predict_ms"] for f in v if f["predict_ms"]])}
                          for k, v in by_res.items()},
        "repeats_per_measurement": args.repeat,
        "note": "medians of per-frame medians; shared machine, figures are pessimistic",
    }
    if args.no_baselines:
        notes.append("baselines skipped (--no-baselines)")
    every = list(real_sets.values()) + cells
    report["met"] = {
        "cells": len(every),
        "cells_met": sum(1 for c in every if c["met"]),
        "cells_ahead_of_baseline": sum(1 for c in every if c["ahead_of_baseline"]),
        "all_cells_met": None if not every else all(bool(c["met"]) for c in every),
        "set_frame_ms": _le(report["timing_ms"]["set_frame_median"], TARGETS["set_frame_ms"]),
        "predict_ms": _le(report["timing_ms"]["predict_median"], TARGETS["predict_ms"]),
        "median_position_error_mm": _le(max((c["median_position_error_mm"] for c in real_sets.values()
                                             if c["median_position_error_mm"] is not None), default=None),
                                        TARGETS["median_position_error_mm"]),
    }
    report["notes"] = notes
    return report


def _ge(x, t):
    return None if x is None else bool(x >= t)


def _le(x, t):
    return None if x is None else bool(x <= t)


def _cell_name(cell: dict) -> str:
    return f"{cell['viewpoint']}/{cell['resolution']}/{cell['sensor']}/{cell['scene']}"


def _fmt(x, spec: str = "6.3f") -> str:
    return f"{x:{spec}}" if x is not None else " " * int(spec.split(".")[0])


def _cell_line(name: str, c: dict) -> str:
    verdict = {True: "met", False: "short", None: "-"}[c["met"]]
    ahead = {True: "ahead", False: "behind", None: "-"}[c["ahead_of_baseline"]]
    return (f"{name[:44]:44s} {c['objects']:4d} {_fmt(c['mean_iou'])} {_fmt(c['mean_boundary_f'])} "
            f"{_fmt(c['baseline_mean_iou'])} {_fmt(c['baseline_mean_boundary_f'])} "
            f"{_fmt(c['median_signed_offset_px'], '6.2f')} {_fmt(c['set_frame_ms'], '7.1f')}  {verdict:5s} {ahead}")


TABLE_HEADER = (f"{'cell':44s} {'obj':>4s} {'IoU':>6s} {'BF':>6s} {'bIoU':>6s} {'bBF':>6s} {'offset':>6s} "
                f"{'set ms':>7s}  target/baseline")


def _table(report: dict) -> str:
    lines = [TABLE_HEADER]
    for name, c in report["real"]["sets"].items():
        lines.append(_cell_line(f"real/{name}", c))
    for c in report["synthetic"]["cells"]:
        lines.append(_cell_line(_cell_name(c), c))
    r, s, t, m = report["real"], report["synthetic"], report["timing_ms"], report["met"]
    lines.append(f"real: mean IoU {r['mean_iou']} BF {r['mean_boundary_f']} (baseline {r['baseline_mean_iou']} / "
                 f"{r['baseline_mean_boundary_f']})")
    lines.append(f"synthetic: mean IoU {s['mean_iou']} BF {s['mean_boundary_f']} (baseline {s['baseline_mean_iou']} / "
                 f"{s['baseline_mean_boundary_f']})")
    lines.append(f"cells meeting IoU >= {TARGETS['cell_mean_iou']} and BF >= {TARGETS['cell_mean_boundary_f']}: "
                 f"{m['cells_met']}/{m['cells']}; ahead of the baseline on both: {m['cells_ahead_of_baseline']}/{m['cells']}")
    for name, c in report["real"]["sets"].items():
        if c["median_position_error_mm"] is not None:
            lines.append(f"real/{name}: perceive (defaults) median position error {c['median_position_error_mm']} mm "
                         f"(target <= {TARGETS['median_position_error_mm']})")
    for k, v in t["by_resolution"].items():
        lines.append(f"median set_frame {v['set_frame_median']} ms, predict {v['predict_median']} ms ({k})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.repeat < 1:
        raise InputError(f"--repeat must be >= 1, got {args.repeat}")
    if args.synthetic < 0:
        raise InputError(f"--synthetic must be >= 0 scenes per cell, got {args.synthetic}")
    if args.tolerance_px < 0:
        raise InputError(f"--tolerance-px must be >= 0 pixels, got {args.tolerance_px}")
    for flag, given, known in (("--viewpoints", args.viewpoints, VIEWPOINTS), ("--resolutions", args.resolutions,
                               RESOLUTIONS), ("--scenes", args.scenes, SCENES)):
        bad = [x for x in given if x not in known]
        if bad:
            raise InputError(f"{flag}: unknown {bad}; choose from {list(known)}")
    from ..sim.synthetic import SENSORS

    bad = [x for x in args.sensors if x not in SENSORS]
    if bad:
        raise InputError(f"--sensors: unknown {bad}; choose from {list(SENSORS)}")
    report = run_quality(args)
    print(json.dumps(report, indent=2))
    if not args.quiet:
        print(_table(report), file=sys.stderr)
    return 0


def register(bench_subparsers) -> None:
    from ..sim.synthetic import SENSORS

    p = bench_subparsers.add_parser(
        "quality", help="one-click segmentation quality (IoU, boundary F, boundary offset) on every shared real set "
        "and a synthetic viewpoint x resolution x sensor x scene matrix, beside the classic recipe"
    )
    p.add_argument("--data", metavar="DIR", nargs="+", help="folders of frame folders with masks/ (default: the "
                   f"shared sets {', '.join(REAL_SETS)} when found)")
    p.add_argument("--no-real", action="store_true", help="skip the real frames")
    p.add_argument("--synthetic", type=int, default=1, metavar="N", help="synthetic scenes per matrix cell "
                   "(default 1; 0 skips the matrix)")
    p.add_argument("--viewpoints", nargs="+", default=list(VIEWPOINTS), help=f"of {list(VIEWPOINTS)}")
    p.add_argument("--resolutions", nargs="+", default=list(RESOLUTIONS), help=f"of {list(RESOLUTIONS)}")
    p.add_argument("--sensors", nargs="+", default=list(SENSORS), help=f"of {list(SENSORS)}")
    p.add_argument("--scenes", nargs="+", default=list(SCENES), help=f"of {list(SCENES)}")
    p.add_argument("--backend", help="segmenter backend (default from the config: rgbd)")
    p.add_argument("--config", type=Path, help="pipeline YAML whose segment section is used; "
                   "--segment.field=value flags override it")
    p.add_argument("--granularity", default="whole", choices=("part", "whole", "group", "auto"))
    p.add_argument("--tolerance-px", type=float, default=2.0, help="boundary F tolerance, pixels (default 2)")
    p.add_argument("--repeat", type=int, default=3, help="timed repeats of set_frame/predict (default 3)")
    p.add_argument("--no-baselines", action="store_true", help="skip the classic open3d recipe")
    p.add_argument("--poses", action="store_true", help="also perceive (pipeline defaults) every real object "
                   "with a true pose: median position error of the estimated object centre, mm")
    p.add_argument("--overlays", metavar="DIR", help="write one overlay PNG per object there")
    p.add_argument("--quiet", action="store_true", help="no human-readable table on stderr")
    p.set_defaults(func=run)
