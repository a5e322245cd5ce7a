"""``graspseg bench latency``: per-stage latency of one frame, and the open3d baselines measured in the same run.

Stages are ``(name, fn(ctx), in_path)`` triples run in order on a shared context dict (``frame``,
``prompt``, ``point_uv``, ``mask``...). A stage marked ``in_path`` is part of the end-to-end path; the
others are diagnostics timed in isolation (e.g. the masked back-projection, which ``cloud.build`` also
does). Adding a later stage is a function returning more stages, appended to :data:`STAGE_FACTORIES`.

Every repeat runs all stages and both baselines back to back, so machine load hits them alike; medians
over repeats are reported. On a shared machine the figures are pessimistic.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import GraspsegError, PromptError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Stage:
    """One timed step: ``fn(ctx)`` reads and writes the shared context dict."""

    name: str
    fn: Callable[[dict], None]
    in_path: bool = True


# --------------------------------------------------------------------------------------------------
# stages
# --------------------------------------------------------------------------------------------------
def segment_stages(args: argparse.Namespace, ctx: dict) -> list[Stage]:
    """``segment.set_frame`` and ``segment.predict`` of the chosen backend (none when unavailable)."""
    from ..core.errors import BackendNotFoundError, MissingDependencyError
    from ..segment import create_segmenter, select_candidate

    try:
        segmenter = create_segmenter(args.backend)
    except (BackendNotFoundError, MissingDependencyError, ImportError, AttributeError) as e:
        ctx["notes"].append(f"segmenter '{args.backend}' unavailable ({e}); segment stages skipped")
        return []
    ctx["segmenter"] = segmenter

    def set_frame(c: dict) -> None:
        segmenter.set_frame(c["frame"])

    def predict(c: dict) -> None:
        mask_set = segmenter.predict(c["prompt"])
        c["selected"] = select_candidate(mask_set, args.granularity)
        c["mask_set"] = mask_set
        c["mask"] = mask_set.masks[c["selected"]]
        c["mask_source"] = f"segmenter:{args.backend}"

    return [Stage("segment.set_frame", set_frame), Stage("segment.predict", predict)]


def cloud_stages(args: argparse.Namespace, ctx: dict) -> list[Stage]:
    """Masked back-projection, support plane, boundary band (diagnostics) and the full cloud build."""
    from ..cloud import CloudConfig, build_object_cloud, compute_band, fit_support_plane
    from ..core.errors import NoSupportPlaneError
    from ..core.geometry import backproject

    cfg = CloudConfig()

    def bp(c: dict) -> None:
        c["points"], _ = backproject(c["frame"].depth_m, c["frame"].intrinsics, c["mask"])

    def plane(c: dict) -> None:
        try:
            c["plane"] = fit_support_plane(c["frame"], cfg, exclude_mask=c["mask"])
        except NoSupportPlaneError:
            c["plane"] = None

    def band(c: dict) -> None:
        compute_band(c["frame"].depth_m, c["mask"], c["frame"].intrinsics, cfg, plane=c["plane"])

    def build(c: dict) -> None:
        c["cloud"] = build_object_cloud(c["frame"], c["mask"], cfg, plane=c["plane"])

    return [
        Stage("cloud.backproject", bp, in_path=False),
        Stage("cloud.plane", plane),
        Stage("cloud.band", band, in_path=False),
        Stage("cloud.build", build),
    ]


def shape_grasp_stages(args: argparse.Namespace, ctx: dict) -> list[Stage]:
    """Shape estimate and grasp planning with margins and robustness, with the default pipeline config.

    The boundary error comes from the segmenter's candidates as in :meth:`Pipeline.perceive` (2 px when
    no segmenter ran).
    """
    from ..grasp import load_gripper, plan_grasps
    from ..pipeline import PipelineConfig
    from ..segment.uncertainty import boundary_error_px
    from ..shape import estimate_shape

    cfg = PipelineConfig()
    gripper = load_gripper(cfg.gripper)

    def shape(c: dict) -> None:
        mask_set = c.get("mask_set")
        c["k_px"] = boundary_error_px(mask_set, c["selected"]) if mask_set is not None else 2.0
        c["shape"] = estimate_shape(c["cloud"], cfg.shape, boundary_error_px=c["k_px"], intrinsics=c["frame"].intrinsics)

    def grasp(c: dict) -> None:
        mask_set = c.get("mask_set")
        alternatives = [] if mask_set is None else [m for i, m in enumerate(mask_set.masks) if i != c["selected"]]
        c["grasps"] = plan_grasps(c["frame"], c["cloud"], c["shape"], gripper, cfg.grasp, boundary_error_px=c["k_px"],
                                  alternative_masks=alternatives, cloud_config=cfg.cloud)

    return [Stage("shape", shape), Stage("grasp", grasp)]


#: Stage factories in pipeline order; each ``(args, ctx) -> list[Stage]``. Later stages append here.
STAGE_FACTORIES: list[Callable[[argparse.Namespace, dict], list[Stage]]] = [
    segment_stages, cloud_stages, shape_grasp_stages,
]

#: Prefixes of the stages that make up the "segment + cloud" path of the speed target.
SEGMENT_CLOUD_PREFIXES = ("segment.", "cloud.")


def baseline_stages(args: argparse.Namespace, ctx: dict) -> list[Stage]:
    """The two open3d baselines (none, with a note, when open3d is missing)."""
    from ..core.errors import MissingDependencyError

    try:
        from ..baselines import classic_segmentation, open3d_backproject
        from ..cloud.interop import import_open3d

        import_open3d()
    except MissingDependencyError as e:
        ctx["notes"].append(f"open3d baselines skipped: {e}")
        return []

    def o3d_bp(c: dict) -> None:
        open3d_backproject(c["frame"], c["mask"])

    def classic(c: dict) -> None:
        c["classic"] = classic_segmentation(c["frame"], c["point_uv"])

    return [
        Stage("open3d.create_from_rgbd_image", o3d_bp, in_path=False),
        Stage("open3d.classic_recipe", classic, in_path=False),
    ]


# --------------------------------------------------------------------------------------------------
# running and reporting
# --------------------------------------------------------------------------------------------------
def _summary(values_ms: list[float]) -> dict:
    a = np.asarray(values_ms, dtype=np.float64)
    return {
        "median_ms": round(float(np.median(a)), 3),
        "min_ms": round(float(a.min()), 3),
        "max_ms": round(float(a.max()), 3),
        "n": int(a.size),
    }


def _fallback_mask(frame, folder: Path | None, point_uv, ctx: dict) -> np.ndarray:
    """A mask for the cloud stages when no segmenter ran: the frame folder's ground truth under the click,
    else the classic recipe's mask."""
    if folder is not None:
        from ..capture.frame_folder import load_ground_truth

        try:
            objects = load_ground_truth(folder, (frame.height, frame.width))
        except GraspsegError:
            objects = []
        u, v = (int(round(x)) for x in point_uv)
        for obj in objects:
            if obj.mask[v, u]:
                ctx["mask_source"] = f"ground_truth:{obj.name}"
                return obj.mask
    from ..baselines import classic_segmentation

    ctx["mask_source"] = "open3d.classic_recipe"
    return classic_segmentation(frame, point_uv).mask


def run_latency(
    frame,
    point_uv,
    *,
    backend: str = "rgbd",
    granularity: str = "whole",
    repeat: int = 20,
    warmup: int = 1,
    frame_folder: Path | None = None,
    with_baselines: bool = True,
) -> dict:
    """Time every stage ``repeat`` times on one frame; returns the JSON-ready report."""
    from ..segment import Prompt

    if repeat < 1:
        raise PromptError(f"--repeat must be >= 1, got {repeat}")
    args = argparse.Namespace(backend=backend, granularity=granularity)
    prompt = Prompt.from_point(*point_uv)
    prompt.validate_for(frame.width, frame.height)
    ctx: dict = {"frame": frame, "prompt": prompt, "point_uv": tuple(point_uv), "notes": []}
    stages: list[Stage] = []
    for factory in STAGE_FACTORIES:
        stages += factory(args, ctx)
    if not any(s.name == "segment.predict" for s in stages):  # no segmenter: the cloud stages need a mask
        ctx["mask"] = _fallback_mask(frame, frame_folder, point_uv, ctx)
    baselines = baseline_stages(args, ctx) if with_baselines else []
    times: dict[str, list[float]] = {s.name: [] for s in stages + baselines}
    derived: dict[str, list[float]] = {"cloud.total": [], "path.segment+cloud": [], "path.all": []}
    for i in range(warmup + repeat):
        per: dict[str, float] = {}
        for s in stages + baselines:
            t0 = time.perf_counter()
            s.fn(ctx)
            per[s.name] = (time.perf_counter() - t0) * 1e3
        if i < warmup:
            continue
        for k, v in per.items():
            times[k].append(v)
        path = [s for s in stages if s.in_path]
        derived["cloud.total"].append(sum(per[s.name] for s in path if s.name.startswith("cloud.")))
        derived["path.segment+cloud"].append(
            sum(per[s.name] for s in path if s.name.startswith(SEGMENT_CLOUD_PREFIXES))
        )
        derived["path.all"].append(sum(per[s.name] for s in path))

    stage_stats = {s.name: _summary(times[s.name]) for s in stages}
    totals = {k: _summary(v) for k, v in derived.items()}
    base_stats = {s.name: _summary(times[s.name]) for s in baselines}
    if "open3d.classic_recipe" in base_stats and "classic" in ctx:
        base_stats["open3d.classic_recipe"]["last_steps_ms"] = {
            k: round(v, 3) for k, v in ctx["classic"].timings_ms.items()
        }

    def pick(table: dict, name: str, key: str = "median_ms") -> float | None:
        return table[name][key] if name in table else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or not b else a / b

    targets = []

    def target(
        name: str, value: float | None, limit: float, unit: str, best: float | None = None, note: str = ""
    ) -> None:
        entry = {
            "name": name,
            "value": None if value is None else round(value, 3),
            "limit": limit,
            "unit": unit,
            "met": None if value is None else bool(value <= limit),
        }
        if best is not None:  # the same figure from the fastest repeats: the least disturbed by machine load
            entry["value_from_min"] = round(best, 3)
        if note:
            entry["note"] = note
        targets.append(entry)

    has_segmenter = any(s.name == "segment.predict" for s in stages)
    o3d_name, classic_name = "open3d.create_from_rgbd_image", "open3d.classic_recipe"
    target(
        "segment.set_frame",
        pick(stage_stats, "segment.set_frame"),
        30.0,
        "ms",
        pick(stage_stats, "segment.set_frame", "min_ms"),
    )
    target(
        "segment.predict",
        pick(stage_stats, "segment.predict"),
        10.0,
        "ms",
        pick(stage_stats, "segment.predict", "min_ms"),
    )
    target(
        "cloud.backproject (masked)",
        pick(stage_stats, "cloud.backproject"),
        2.0,
        "ms",
        pick(stage_stats, "cloud.backproject", "min_ms"),
    )
    target(
        "cloud.backproject / open3d.create_from_rgbd_image",
        ratio(pick(stage_stats, "cloud.backproject"), pick(base_stats, o3d_name)),
        0.3,
        "ratio",
        ratio(pick(stage_stats, "cloud.backproject", "min_ms"), pick(base_stats, o3d_name, "min_ms")),
    )
    path, path_min = (
        (totals["path.segment+cloud"]["median_ms"], totals["path.segment+cloud"]["min_ms"])
        if has_segmenter
        else (None, None)
    )
    target(
        "path.segment+cloud / open3d.classic_recipe",
        ratio(path, pick(base_stats, classic_name)),
        0.25,
        "ratio",
        ratio(path_min, pick(base_stats, classic_name, "min_ms")),
        "" if has_segmenter else "no segmenter: path not measured",
    )

    target(
        "perceive (segment + cloud + shape + grasp)",
        totals["path.all"]["median_ms"] if has_segmenter else None,
        50.0,
        "ms",
        totals["path.all"]["min_ms"] if has_segmenter else None,
        "aim: 33 ms, the camera's frame time" if has_segmenter else "no segmenter: path not measured",
    )

    mask = ctx.get("mask")
    report = {
        "schema_version": SCHEMA_VERSION,
        "benchmark": "latency",
        "units": {"time": "ms"},
        "frame": frame.frame_id,
        "image_size_wh": [frame.width, frame.height],
        "point_uv": [float(x) for x in point_uv],
        "backend": backend,
        "granularity": granularity,
        "repeat": repeat,
        "mask_source": ctx.get("mask_source"),
        "mask_area_px": None if mask is None else int(np.count_nonzero(mask)),
        "num_object_points": len(ctx["cloud"]) if "cloud" in ctx else None,
        "accepted_grasps": int(ctx["grasps"].n_accepted) if "grasps" in ctx else None,
        "stages": stage_stats,
        "totals": totals,
        "baselines": base_stats,
        "targets": targets,
        "machine": {
            "cpu_count": os.cpu_count(),
            "loadavg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        },
        "notes": ctx["notes"],
    }
    return report


# --------------------------------------------------------------------------------------------------
# mask labelling
# --------------------------------------------------------------------------------------------------
#: Named labeller configs for ``--labeller``: default-size image towers with random weights (timing does not
#: depend on the weights), saved and loaded through the normal checkpoint loader.
LABELLER_CONFIGS: dict[str, tuple[str, str]] = {
    "clip-b32": ("clip", "CLIP ViT-B/32 at 224 px (openai/clip-vit-base-patch32)"),
    "siglip-base": ("siglip", "SigLIP base/16 at 224 px (google/siglip-base-patch16-224)"),
    "siglip2-base": ("siglip2", "SigLIP 2 base/16 NaFlex, 256 patches (google/siglip2-base-patch16-naflex)"),
}
#: Labelling time per mask, batched, that the target asks for (ms).
LABEL_PER_MASK_LIMIT_MS = 30.0


def _labeller_from_spec(spec: str, tmp: Path, options: dict):
    """A labeller for ``spec``: a name of :data:`LABELLER_CONFIGS` (random weights) or a checkpoint directory."""
    from ..core.errors import ConfigError
    from ..segment import create_labeller
    from ..segment.backends import hf_testing

    if spec in LABELLER_CONFIGS:
        kind, what = LABELLER_CONFIGS[spec]
        path = hf_testing.save_labeller_checkpoint(kind, tmp / spec, size="base")
        what += ", random weights"
    elif Path(spec).is_dir():
        path, what = Path(spec), f"checkpoint {spec}"
    else:
        raise ConfigError(f"--labeller {spec!r} is neither a named config ({', '.join(LABELLER_CONFIGS)}) nor a "
                          "checkpoint directory")
    return create_labeller(model=path, **options), what


def run_labeller_latency(frame, specs: list[str], *, backend: str = "rgbd", repeat: int = 5, warmup: int = 1,
                         max_masks: int = 16, phrases: tuple[str, ...] = ("mug", "bowl", "box", "can", "bottle"),
                         device: str = "cpu", dtype: str = "fp32", quantize: str | None = None,
                         batch_size: int = 16) -> dict:
    """Labelling time per mask for each labeller: the frame's segment-all masks (at most ``max_masks``), batched
    and one by one; crops alone; phrase embedding (uncached). Medians and minima over ``repeat`` runs, ms.

    ``cpu_per_mask_batched`` is the process's CPU time per mask (all threads together; on a busy machine it
    includes threads spinning while they wait for a descheduled sibling). ``cpu_per_mask_one_thread`` is the
    same work on one thread, where CPU time is the work itself; ``idle_estimate_per_mask_ms`` = its minimum
    divided by ``torch_threads``: the batched wall time to expect on an idle machine with perfect scaling."""
    import tempfile

    import torch

    from ..segment import create_segmenter

    if repeat < 1:
        raise PromptError(f"--labeller-repeat must be >= 1, got {repeat}")
    if max_masks < 1:
        raise PromptError(f"--labeller-masks must be >= 1, got {max_masks}")
    masks = create_segmenter(backend).segment_all(frame).masks[:max_masks]
    mask_source = f"segment_all:{backend}"
    if not len(masks):  # nothing found: one box in the middle keeps the timing meaningful
        masks = np.zeros((1, frame.height, frame.width), bool)
        masks[0, frame.height // 3:2 * frame.height // 3, frame.width // 3:2 * frame.width // 3] = True
        mask_source = "central box (segment-all found no object)"
    k = len(masks)
    one_by_one = masks[:min(k, 4)]
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in specs:
            labeller, what = _labeller_from_spec(spec, Path(tmp), {"device": device, "dtype": dtype,
                                                                   "quantize": quantize, "batch_size": batch_size})
            vision = labeller.model.vision_model
            n_vision = sum(p.numel() for p in vision.parameters()) if not quantize else None
            times: dict[str, list[float]] = {"per_mask_batched": [], "per_mask_one_by_one": [], "crop_per_mask": [],
                                             "model_per_mask_batched": [], "text_per_phrase_uncached": [],
                                             "cpu_per_mask_batched": [], "cpu_per_mask_one_thread": []}
            threads = torch.get_num_threads()
            for i in range(warmup + repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                labeller.embed_masks(frame.color, masks)
                batched = (time.perf_counter() - t0) * 1e3 / k
                cpu = (time.process_time() - c0) * 1e3 / k
                crop, model = labeller.timings["crop"] / k, labeller.timings["embed"] / k
                t0 = time.perf_counter()
                for m in one_by_one:
                    labeller.embed_masks(frame.color, m[None])
                single = (time.perf_counter() - t0) * 1e3 / len(one_by_one)
                labeller._text_cache.clear()
                t0 = time.perf_counter()
                labeller.embed_phrases(list(phrases))
                text = (time.perf_counter() - t0) * 1e3 / len(phrases)
                torch.set_num_threads(1)  # one thread: no thread waits on a descheduled sibling, CPU time = work
                try:
                    c0 = time.process_time()
                    labeller.embed_masks(frame.color, masks)
                    cpu1 = (time.process_time() - c0) * 1e3 / k
                finally:
                    torch.set_num_threads(threads)
                if i >= warmup:
                    for name, v in zip(times, (batched, single, crop, model, text, cpu, cpu1), strict=True):
                        times[name].append(v)
            entry = {"model": what, "model_type": labeller.model_type, "image_size_px": labeller.image_size,
                     "vision_params_m": None if n_vision is None else round(n_vision / 1e6, 2),
                     "dtype": str(labeller.dtype).replace("torch.", ""), "quantize": quantize,
                     "masks": k, "batch_size": batch_size, "one_by_one_masks": len(one_by_one),
                     "torch_threads": threads}
            entry |= {name: _summary(v) for name, v in times.items()}
            entry["idle_estimate_per_mask_ms"] = round(entry["cpu_per_mask_one_thread"]["min_ms"] / threads, 3)
            out[spec] = entry
            del labeller
    return {"mask_source": mask_source, "phrases": list(phrases), "repeat": repeat, "labellers": out}


def labeller_targets(labelling: dict) -> list[dict]:
    """One target per labeller: labelling time per mask, batched (crop + model), median (and from the minimum)."""
    targets = []
    for spec, e in labelling["labellers"].items():
        s = e["per_mask_batched"]
        targets.append({"name": f"label per mask, batched [{spec}]", "value": s["median_ms"],
                        "limit": LABEL_PER_MASK_LIMIT_MS, "unit": "ms", "met": bool(s["median_ms"] <= LABEL_PER_MASK_LIMIT_MS),
                        "value_from_min": s["min_ms"],
                        "note": f"idle-machine estimate from one-thread CPU time: {e['idle_estimate_per_mask_ms']:.1f} ms "
                                f"({e['dtype']}{', ' + e['quantize'] if e['quantize'] else ''})"})
    return targets


def _labelling_table(labelling: dict) -> list[str]:
    k = next(iter(labelling["labellers"].values()))["masks"] if labelling["labellers"] else 0
    lines = [f"labelling {k} masks from {labelling['mask_source']}, {labelling['repeat']} repeats",
             f"{'labeller / ms per mask':<48}{'median':>9}{'min':>9}{'max':>9}  ms"]
    for spec, e in labelling["labellers"].items():
        for name in ("per_mask_batched", "model_per_mask_batched", "crop_per_mask", "per_mask_one_by_one",
                     "text_per_phrase_uncached", "cpu_per_mask_batched", "cpu_per_mask_one_thread"):
            st = e[name]
            lines.append(f"{spec + ' ' + name:<48}{st['median_ms']:>9.2f}{st['min_ms']:>9.2f}{st['max_ms']:>9.2f}")
    return lines


def _table(report: dict) -> str:
    lines = [
        f"latency on {report['frame']} ({report['image_size_wh'][0]}x{report['image_size_wh'][1]}), "
        f"{report['repeat']} repeats, mask from {report['mask_source']}",
        f"{'stage':<48}{'median':>9}{'min':>9}{'max':>9}  ms",
    ]
    for group in ("stages", "totals", "baselines"):
        for name, s in report[group].items():
            lines.append(f"{name:<48}{s['median_ms']:>9.2f}{s['min_ms']:>9.2f}{s['max_ms']:>9.2f}")
    if "labelling" in report:
        lines += _labelling_table(report["labelling"])
    lines.append("targets:")
    for t in report["targets"]:
        val = "n/a" if t["value"] is None else f"{t['value']:.3f}"
        ok = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        best = f"  (from the fastest repeats: {t['value_from_min']:.3f})" if "value_from_min" in t else ""
        note = f"; {t['note']}" if t.get("note") else ""
        lines.append(f"  {t['name']:<52} {val:>8} <= {t['limit']:<6} {t['unit']:<5} {ok}{best}{note}")
    for n in report["notes"]:
        lines.append(f"note: {n}")
    return "\n".join(lines)


def _parse_point(text: str) -> tuple[float, float]:
    try:
        vals = [float(x) for x in text.replace(" ", "").split(",")]
    except ValueError:
        raise PromptError(f"--point {text!r} must be U,V in pixels (u = column, v = row)") from None
    if len(vals) != 2:
        raise PromptError(f"--point {text!r} must be two numbers U,V in pixels (u = column, v = row)")
    return vals[0], vals[1]


def run(args: argparse.Namespace) -> int:
    from ..commands.common import load_frame
    from ..segment import SEGMENTERS

    SEGMENTERS.get(args.backend)  # unknown backend: refused with the registered names
    if args.warmup < 0:
        raise PromptError(f"--warmup must be >= 0 untimed repeats, got {args.warmup}")
    if args.point is None and not args.labeller:
        raise PromptError("give --point U,V (a click on the object) for the pipeline stages, and/or --labeller "
                          f"{'|'.join(LABELLER_CONFIGS)}|DIR for mask labelling")
    frame = load_frame(args)
    if args.point is not None:
        report = run_latency(
            frame,
            _parse_point(args.point),
            backend=args.backend,
            granularity=args.granularity,
            repeat=args.repeat,
            warmup=args.warmup,
            frame_folder=args.frame,
            with_baselines=not args.no_baselines,
        )
    else:
        report = {"schema_version": SCHEMA_VERSION, "benchmark": "latency", "units": {"time": "ms"},
                  "frame": frame.frame_id, "image_size_wh": [frame.width, frame.height], "backend": args.backend,
                  "repeat": args.labeller_repeat, "mask_source": None, "stages": {}, "totals": {}, "baselines": {},
                  "targets": [], "notes": []}
    if args.labeller:
        labelling = run_labeller_latency(
            frame, args.labeller, backend=args.backend, repeat=args.labeller_repeat, warmup=args.warmup,
            max_masks=args.labeller_masks, device=args.labeller_device, dtype=args.labeller_dtype,
            quantize=None if args.labeller_quantize == "none" else args.labeller_quantize,
            batch_size=args.labeller_batch)
        report["labelling"] = labelling
        report["targets"] = report["targets"] + labeller_targets(labelling)
        report.setdefault("machine", {"cpu_count": os.cpu_count(),
                                      "loadavg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None})
    print(json.dumps(report, indent=2))
    if not args.quiet:
        print(_table(report), file=sys.stderr)
    return 0


def register(bench_subparsers) -> None:
    from ..commands.common import add_frame_args

    p = bench_subparsers.add_parser(
        "latency",
        help="per-stage latency (median/min/max ms) with the open3d baselines and the speed targets",
    )
    add_frame_args(p)
    p.add_argument(
        "--point", metavar="U,V", help="click on the object, pixels (u=column, v=row); needed for the pipeline stages"
    )
    p.add_argument("--repeat", type=int, default=20, help="timed repeats (default 20)")
    p.add_argument("--warmup", type=int, default=1, help="untimed repeats first (default 1)")
    p.add_argument("--backend", default="rgbd", help="segmenter backend (default rgbd)")
    p.add_argument(
        "--granularity",
        default="whole",
        choices=("part", "whole", "group", "auto"),
        help="candidate used for the cloud stages (default whole)",
    )
    p.add_argument("--no-baselines", action="store_true", help="skip the open3d baselines")
    g = p.add_argument_group("mask labelling (CLIP-family)")
    g.add_argument("--labeller", action="append", metavar="NAME|DIR",
                   help=f"time labelling per mask of the frame's segment-all masks: {', '.join(LABELLER_CONFIGS)} "
                        "(default-size configs, random weights) or a checkpoint directory; repeatable")
    g.add_argument("--labeller-repeat", type=int, default=5, help="timed labelling repeats (default 5)")
    g.add_argument("--labeller-masks", type=int, default=16, help="at most this many masks (default 16)")
    g.add_argument("--labeller-batch", type=int, default=16, help="crops per forward pass (default 16)")
    g.add_argument("--labeller-device", default="cpu", help="labeller device (default cpu)")
    g.add_argument("--labeller-dtype", default="fp32", choices=("fp32", "bf16", "fp16"), help="default fp32")
    g.add_argument("--labeller-quantize", default="none", choices=("none", "int8"),
                   help="int8: dynamic int8 linear layers (CPU, fp32)")
    p.add_argument("--quiet", action="store_true", help="no human-readable table on stderr")
    p.set_defaults(func=run)
