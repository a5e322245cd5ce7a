"""``graspseg segment`` and ``graspseg segment-all``: promptable segmentation of one frame."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..capture.images import write_png
from ..core.errors import ConfigError
from ..core.io import atomic_write_json, output_set
from ..segment import POLICIES, SEGMENTERS, create_segmenter
from .common import Stopwatch, add_frame_args, add_prompt_args, build_prompt, load_frame

SCHEMA_VERSION = 1


def register(subparsers) -> None:
    p = subparsers.add_parser("segment", help="segment the prompted object; writes masks, overlay and segment.json")
    add_frame_args(p)
    add_prompt_args(p)
    p.add_argument("--granularity", choices=POLICIES, default="auto", help="which candidate to select (default auto)")
    p.add_argument("--backend", help=f"segmenter backend (default from the config: rgbd; registered: {', '.join(SEGMENTERS.names())})")
    p.add_argument("--config", type=Path, help="pipeline YAML whose segment section is used; --segment.field=value flags override it")
    add_model_args(p)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.set_defaults(func=run_segment)

    p = subparsers.add_parser("segment-all", help="one mask per object above the support plane")
    add_frame_args(p)
    p.add_argument("--backend", help="segmenter backend (default from the config: rgbd)")
    p.add_argument("--config", type=Path, help="pipeline YAML whose segment section is used; --segment.field=value flags override it")
    add_model_args(p)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=run_segment_all)


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """``--model DIR`` and ``--detector DIR``: checkpoints of the SAM-family and text-grounding backends."""
    parser.add_argument("--model", type=Path, metavar="DIR",
                        help="checkpoint directory or cached repo id of a sam/sam2/sam3 backend (for grounded: its SAM)")
    parser.add_argument("--detector", type=Path, metavar="DIR",
                        help="grounded backend: OWLv2 or Grounding DINO checkpoint directory that turns --text into boxes")
    parser.add_argument("--labeller", type=Path, metavar="DIR",
                        help="CLIP/SigLIP checkpoint directory: --text on any backend (rgbd included) picks the "
                             "segment-all mask whose label matches best (segment.labeller.model in the config)")


def labeller_overrides(args: argparse.Namespace, cfg) -> dict:
    """``{"segment.labeller": {...}}`` when ``--labeller DIR`` is given (merged into the config's labeller options)."""
    if getattr(args, "labeller", None) is None:
        return {}
    return {"segment.labeller": {**cfg.segment.labeller, "model": str(args.labeller)}}


def backend_options(args: argparse.Namespace, backend: str) -> dict:
    """The ``create_segmenter`` options named by ``--model`` / ``--detector`` (none for the rgbd default)."""
    options = {k: str(getattr(args, k)) for k in ("model", "detector") if getattr(args, k, None) is not None}
    if options and backend == "rgbd":
        raise ConfigError(
            f"{' and '.join('--' + k for k in options)} given but backend 'rgbd' has no checkpoint; pass "
            "--backend sam|sam2|sam3|grounded with them, or drop them"
        )
    return options


def segment_report(backend: str, prompt, mask_set, selected: int, timings_ms: dict) -> dict:
    """The ``segment.json`` document."""
    return {
        "schema_version": SCHEMA_VERSION,
        "backend": backend,
        "units": {"pixels": "u=column, v=row", "time": "ms"},
        "prompt": prompt.describe(),
        "candidates": [
            {"index": k, "granularity": mask_set.granularity[k], "score": float(mask_set.scores[k]),
             "area_px": int(mask_set.areas[k]), "mask": f"candidate_{k}_{mask_set.granularity[k]}.png",
             **{name: float(v[k]) for name, v in mask_set.details.items()
                if np.ndim(v) == 1 and len(v) == len(mask_set) and not isinstance(v, str)}}
            for k in range(len(mask_set))
        ],
        "selected_index": selected,
        **({"text_match": mask_set.details["text_match"]} if isinstance(mask_set.details.get("text_match"), dict) else {}),
        "timings_ms": {k: round(v, 3) for k, v in timings_ms.items()},
    }


def segment_config(args: argparse.Namespace):
    """The pipeline config from ``--config``, ``--backend``, ``--labeller`` and ``--segment.*`` overrides.

    Overrides are validated against the pipeline config like ``perceive``'s; keys outside ``segment.`` are
    refused here (they would have no effect on segmentation); ``limits.*`` are checked when the frame is read.
    """
    from ..pipeline import PipelineConfig

    overrides = dict(getattr(args, "overrides", {}) or {})
    foreign = sorted(k for k in overrides if not k.startswith(("segment.", "limits.")))
    if foreign:
        raise ConfigError(f"{args.command} takes only segment.* and limits.* overrides, got {', '.join('--' + k for k in foreign)}; "
                          "use them with `graspseg perceive`")
    cfg = PipelineConfig.from_yaml(args.config) if getattr(args, "config", None) else PipelineConfig()
    if args.backend is not None:
        overrides["segment.backend"] = args.backend
    overrides |= labeller_overrides(args, cfg)
    return cfg.with_overrides(overrides) if overrides else cfg


def _segmenter_from_args(args: argparse.Namespace):
    """``(backend, segmenter)`` from ``--backend``, ``--model/--detector/--labeller``, ``--config`` and overrides."""
    cfg = segment_config(args)
    backend = cfg.segment.backend
    options = {**cfg.segment.options, **backend_options(args, backend)}
    return backend, create_segmenter(backend, labeller=cfg.segment.labeller, **options)


def run_segment(args: argparse.Namespace) -> int:
    from ..viz.overlay import mask_set_overlay

    watch = Stopwatch()
    with watch("load"):
        frame = load_frame(args)
        prompt = build_prompt(args, (frame.height, frame.width))
        prompt.validate_for(frame.width, frame.height)
        backend, segmenter = _segmenter_from_args(args)
    with watch("set_frame"):
        segmenter.set_frame(frame)
    with watch("predict"):
        mask_set = segmenter.predict(prompt)
    selected = mask_set.select(args.granularity)
    report = segment_report(backend, prompt, mask_set, selected, watch.ms)
    out: Path = args.out
    with output_set(out) as tmp:
        write_png(tmp / "mask.png", mask_set.masks[selected])
        for k in range(len(mask_set)):
            write_png(tmp / f"candidate_{k}_{mask_set.granularity[k]}.png", mask_set.masks[k])
        write_png(tmp / "overlay.png", mask_set_overlay(frame.color, mask_set, selected, prompt))
        atomic_write_json(tmp / "segment.json", report)
    summary = {"out": str(out), "selected": report["candidates"][selected], "timings_ms": report["timings_ms"]}
    match = report.get("text_match")
    if match:
        summary["text_match"] = match
        if match["ambiguous"]:
            print(f"graspseg segment: '{match['phrase']}' is ambiguous: objects {match['best_index']} and "
                  f"{match['runner_up_index']} score alike (margin {match['margin']} < {match['min_margin']}); "
                  f"the first was used — check {out / 'overlay.png'}, or click on the object", file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0


def run_segment_all(args: argparse.Namespace) -> int:
    from ..viz.overlay import instances_overlay

    watch = Stopwatch()
    frame = load_frame(args)
    backend, segmenter = _segmenter_from_args(args)
    with watch("segment_all"):
        instances = segmenter.segment_all(frame)
    report = {
        "schema_version": SCHEMA_VERSION,
        "backend": backend,
        "units": {"time": "ms"},
        "objects": [{"index": k, "score": float(instances.scores[k]), "area_px": int(instances.areas[k]),
                     "mask": f"object_{k:02d}.png"} for k in range(len(instances))],
        "timings_ms": {k: round(v, 3) for k, v in watch.ms.items()},
    }
    # what is not an object: the support planes' pixels and the regions that do not stand on them
    # (walls, shelves, the room past the table), when the backend tells them apart
    scene_parts = {name: np.asarray(instances.details[name], bool) for name in ("support", "background")
                   if isinstance(instances.details.get(name), np.ndarray)}
    for name, mask in scene_parts.items():
        report[name] = {"mask": f"{name}.png", "area_px": int(mask.sum())}
    explanation = instances.details.get("explanation")
    if len(instances) == 0:
        report["explanation"] = explanation if isinstance(explanation, str) else "the backend found no object"
    out: Path = args.out
    with output_set(out) as tmp:
        for k in range(len(instances)):
            write_png(tmp / f"object_{k:02d}.png", instances.masks[k])
        for name, mask in scene_parts.items():
            write_png(tmp / f"{name}.png", mask)
        write_png(tmp / "overlay.png", instances_overlay(frame.color, instances, **scene_parts,
                                                         note=report.get("explanation")))
        atomic_write_json(tmp / "segment_all.json", report)
    summary = {"out": str(out), "objects": len(instances),
               **{f"{name}_px": report[name]["area_px"] for name in scene_parts},
               **({"explanation": report["explanation"]} if "explanation" in report else {}),
               "timings_ms": report["timings_ms"]}
    if "explanation" in report:
        print(f"graspseg segment-all: {report['explanation']}", file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0
