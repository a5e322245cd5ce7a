"""``graspseg eval``: data-set summaries, COCO export, segmenter evaluation, boundary-error calibration.

* ``graspseg eval summary --data DIR_OR_COCO``: images, instances, categories, mask areas, depth coverage.
* ``graspseg eval export --data DIR --out DIR``: a data set (frame folders or COCO) as COCO with depth.
* ``graspseg eval segment --data DIR_OR_COCO --out DIR``: per-object table (CSV, JSON), summary, plots.
* ``graspseg eval boundary-error --data DIR_OR_COCO --out FILE.yaml``: the measured boundary error as a
  pipeline config (``boundary_error_px``) for ``graspseg perceive --config FILE.yaml``.

Each prints one JSON object on stdout; progress goes to stderr (``--quiet`` silences it). Definitions of
every number: ``docs/metrics.md``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

from ..core.errors import InputError

SCHEMA_VERSION = 1


def _progress(args) -> bool:
    return not getattr(args, "quiet", False)


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, metavar="DIR_OR_COCO",
                   help="COCO annotations JSON (or its folder, with images/ and depth/), frame folders "
                        "(one, a set of them, or a folder of sets), or native episodes (one or a folder of them)")
    p.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress on stderr")


def _add_segmenter(p: argparse.ArgumentParser) -> None:
    from .segment import add_model_args

    p.add_argument("--backend", help="segmenter backend (default from the config: rgbd)")
    p.add_argument("--config", type=Path, help="pipeline YAML whose segment section is used; "
                   "--segment.field=value flags override it")
    add_model_args(p)
    p.add_argument("--granularity", default="whole", choices=("part", "whole", "group", "auto"),
                   help="candidate taken after each click (default whole, as bench quality and the grasp stage)")


def register(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="evaluation: data-set summary, COCO export, segmenter metrics "
                                   "(IoU, boundary F, Boundary IoU, NoC), boundary-error calibration")
    sub = parser.add_subparsers(dest="eval", metavar="EVAL")

    p = sub.add_parser("summary", help="what a data set holds: images, instances, categories, mask areas, depth")
    _add_data(p)
    p.set_defaults(func=run_summary)

    p = sub.add_parser("export", help="write a data set (frame folders or COCO) as COCO with depth and intrinsics")
    _add_data(p)
    p.add_argument("--mask-format", default="rle", choices=("rle", "rle_uncompressed", "polygon"),
                   help="segmentation encoding (default rle: compressed RLE; polygon loses holes)")
    p.add_argument("--depth-scale", type=float, help="metres per unit of the depth PNGs (default: each frame's own)")
    p.add_argument("--out", type=Path, required=True, help="output folder (replaced as a whole)")
    p.set_defaults(func=run_export)

    p = sub.add_parser("segment", help="evaluate a segmenter: per-object table, summary, IoU-vs-clicks plot, "
                       "worst cases as overlays")
    _add_data(p)
    _add_segmenter(p)
    p.add_argument("--clicks", type=int, default=20, metavar="N",
                   help="click budget of the interactive protocol and NoC cap (default 20, as in the literature)")
    p.add_argument("--full-curve", action="store_true",
                   help="run every click of the budget; by default an object's clicking ends once its IoU reaches "
                        "0.90 (NoC and failures are the same; the IoU-vs-clicks curve carries that IoU forward)")
    p.add_argument("--box", action="store_true", help="also prompt every object with its tight true box (iou_box)")
    p.add_argument("--tolerance-px", type=float, default=2.0, help="fixed boundary F tolerance, pixels (default 2)")
    p.add_argument("--worst", type=int, default=6, metavar="K", help="overlays of the K lowest 1-click IoUs (default 6)")
    p.add_argument("--out", type=Path, required=True, help="output folder (replaced as a whole)")
    p.set_defaults(func=run_segment_eval)

    p = sub.add_parser("boundary-error", help="measure the segmenter's boundary error (px) and write it as the "
                       "pipeline's boundary_error_px (a YAML for perceive --config)")
    _add_data(p)
    _add_segmenter(p)
    p.add_argument("--base-config", type=Path, help="pipeline YAML to copy, with boundary_error_px replaced")
    p.add_argument("--min-iou", type=float, default=0.5, help="one-click masks below this IoU took the wrong object "
                   "and are left out of the boundary error (default 0.5)")
    p.add_argument("--out", dest="out_yaml", type=Path, required=True, metavar="FILE.yaml",
                   help="the config to write; the distribution goes beside it as FILE.json")
    p.set_defaults(func=run_boundary_error)
    parser.set_defaults(func=lambda args: parser.print_help() or 1)


def _dataset(args):
    from ..eval.datasets import load_dataset

    return load_dataset(args.data)


def run_summary(args: argparse.Namespace) -> int:
    from ..eval.datasets import dataset_summary

    report = {"schema_version": SCHEMA_VERSION, "command": "eval summary", **dataset_summary(_dataset(args))}
    print(json.dumps(report, indent=2))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from ..eval.coco import export_coco

    ds = _dataset(args)
    t0 = time.perf_counter()
    path = export_coco(ds, args.out, mask_format=args.mask_format, depth_scale=args.depth_scale,
                       description=f"exported from {args.data} by graspseg eval export")
    print(json.dumps({"schema_version": SCHEMA_VERSION, "command": "eval export", "data": str(args.data),
                      "annotations": str(path), "images": len(ds), "mask_format": args.mask_format,
                      "seconds": round(time.perf_counter() - t0, 2)}, indent=2))
    return 0


def _segmenter(args):
    from .segment import _segmenter_from_args

    return _segmenter_from_args(args)


def _printer(args, what: str):
    if not _progress(args):
        return None

    def progress(k, total, sample=None, rows=None):
        tail = ""
        if rows:
            tail = " ".join(f"{r['category']}:{r['iou_1click']:.3f}/NoC90 {r['noc90']}" for r in rows)
        name = f" {sample.name}" if sample is not None else ""
        print(f"{what} {k + 1}/{total}{name} {tail}".rstrip(), file=sys.stderr, flush=True)

    return progress


def _csv_text(rows: list[dict], columns) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return buf.getvalue()


def _curve_png(path: Path, summary: dict) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    n = summary["max_clicks"]
    x = np.arange(1, n + 1)
    ax.plot(x, summary["miou_at_clicks"], "k-o", ms=3, lw=2, label=f"all ({summary['objects']} objects)")
    for name, cell in summary["sets"].items():
        ax.plot(x, cell["miou_at_clicks"], "-", lw=1.2, label=f"{name} ({cell['objects']})")
    for t in summary["noc_thresholds"]:
        ax.axhline(t, color="grey", lw=0.6, ls="--")
    ax.set_xlabel("clicks")
    ax.set_ylabel("mean IoU")
    ax.set_xlim(1, max(2, n))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(max(0.0, min(0.5, min(summary["miou_at_clicks"]) - 0.05)), 1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    stop = summary.get("stop_iou")
    ax.set_title("IoU vs clicks (farthest-point clicks in the larger error)" if stop is None else
                 f"IoU vs clicks (an object's IoU carried forward from {stop:.2f} on)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")


def _worst_png(path: Path, case) -> None:
    from ..capture.images import write_png
    from ..segment import Prompt
    from ..viz.overlay import blend_mask, draw_contour, draw_label, draw_prompt

    img = case.color.copy()
    pred, gt = case.pred, case.gt
    img = blend_mask(img, pred & gt, (0, 200, 0), 0.5)
    img = blend_mask(img, pred & ~gt, (255, 0, 0), 0.6)
    img = blend_mask(img, gt & ~pred, (0, 80, 255), 0.6)
    draw_contour(img, gt, (255, 255, 255), 1)
    draw_prompt(img, Prompt(points_uv=case.clicks_uv, point_labels=case.labels))
    r = case.row
    draw_label(img, f"{r['sample']} {r['category']}  1-click IoU {r['iou_1click']:.3f}  BF {r['boundary_f_davis']:.3f}",
               (8, 20))
    draw_label(img, "green: right  red: leaked  blue: missed  white: true outline", (8, img.shape[0] - 10),
               scale=0.45)
    write_png(path, img)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def run_segment_eval(args: argparse.Namespace) -> int:
    from ..core.io import atomic_write_json, atomic_write_text, output_set
    from ..eval.segmentation import STOP_IOU, TABLE_COLUMNS, evaluate_dataset

    if args.clicks < 1:
        raise InputError(f"--clicks must be >= 1, got {args.clicks}")
    if args.worst < 0:
        raise InputError(f"--worst must be >= 0, got {args.worst}")
    if not args.tolerance_px >= 0:
        raise InputError(f"--tolerance-px must be >= 0 pixels, got {args.tolerance_px}")
    t0 = time.perf_counter()
    ds = _dataset(args)
    backend, segmenter = _segmenter(args)
    ev = evaluate_dataset(segmenter, ds, max_clicks=args.clicks, granularity=args.granularity,
                          tolerance_px=args.tolerance_px, stop_iou=None if args.full_curve else STOP_IOU, box=args.box,
                          worst=args.worst, progress=_printer(args, "eval segment"))
    seconds = round(time.perf_counter() - t0, 2)
    summary = {
        "schema_version": SCHEMA_VERSION, "command": "eval segment", "data": str(args.data), "layout": ds.layout,
        "backend": backend, "granularity": args.granularity, "boundary_tolerance_px": args.tolerance_px,
        "protocol": "click 1 at the interior point farthest from the true boundary; each next click at the point "
                    "farthest from the boundary of the larger error (positive in missed object, negative in "
                    "leaked background), until the IoU reaches stop_iou (null: every click); 2-D and 3-D metrics on "
                    "the 1-click prediction",
        "units": {"iou": "fraction", "boundary_f": "fraction", "boundary_iou": "fraction",
                  "boundary_error_3d": "mm", "position_error": "mm", "signed_offset": "px (< 0: inside)",
                  "time": "ms"},
        "frame": "camera_color_optical",
        **ev.summary,
        "seconds": seconds,
    }
    outputs = ["objects.csv", "objects.json", "summary.json", "iou_vs_clicks.png"]
    with output_set(args.out) as tmp:
        atomic_write_text(tmp / "objects.csv", _csv_text(ev.rows, TABLE_COLUMNS))
        atomic_write_json(tmp / "objects.json", {"schema_version": SCHEMA_VERSION, "columns": list(TABLE_COLUMNS),
                                                 "objects": ev.rows})
        _curve_png(tmp / "iou_vs_clicks.png", summary)
        for k, case in enumerate(ev.worst):
            rel = f"worst/{k + 1:02d}_{_safe(case.row['sample'])}_{_safe(case.row['category'])}.png"
            (tmp / "worst").mkdir(exist_ok=True)
            _worst_png(tmp / rel, case)
            outputs.append(rel)
        summary["outputs"] = outputs
        atomic_write_json(tmp / "summary.json", summary)
    summary["out"] = str(args.out)
    print(json.dumps(summary, indent=2))
    if _progress(args):
        s = summary
        print(f"{s['objects']} objects in {s['samples']} samples, {seconds} s: 1-click mIoU {s['mean_iou_1click']} "
              f"(top-scored {s['mean_iou_1click_top']}, best of candidates {s['mean_iou_1click_best']}), "
              f"BF DAVIS {s['mean_boundary_f_davis']}, BF 2px {s['mean_boundary_f_2px']}, bIoU {s['mean_boundary_iou']}, "
              f"NoC@85 {s['noc85']} NoC@90 {s['noc90']} (failures {s['failures85']}/{s['failures90']})",
              file=sys.stderr)
    return 0


def run_boundary_error(args: argparse.Namespace) -> int:
    from ..eval.boundary_error import measure_boundary_error, write_boundary_error_config

    out = Path(args.out_yaml)
    if out.suffix.lower() not in (".yaml", ".yml"):
        raise InputError(f"--out {out}: the boundary-error config is a YAML file; give a path ending in .yaml")
    ds = _dataset(args)
    backend, segmenter = _segmenter(args)
    pr = _printer(args, "eval boundary-error")
    result = measure_boundary_error(segmenter, ds, granularity=args.granularity, min_iou=args.min_iou,
                                    progress=(lambda k, n: pr(k, n)) if pr else None)
    result = {"backend": backend, "data": str(args.data), **result}
    yaml_path, json_path = write_boundary_error_config(
        result, out, base_config=args.base_config,
        source=f"backend {backend} on {args.data}")
    report = {"schema_version": SCHEMA_VERSION, "command": "eval boundary-error", "backend": backend,
              "data": str(args.data), "boundary_error_px": result["boundary_error_px"],
              "statistic": result["statistic"], "min_iou": result["min_iou"],
              "excluded_objects": result["excluded_objects"], "distribution": result["distribution"],
              "sets": result["sets"],
              "config": str(yaml_path), "distribution_file": str(json_path),
              "use": f"graspseg perceive --config {yaml_path} ..."}
    print(json.dumps(report, indent=2))
    return 0
