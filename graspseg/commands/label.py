"""``graspseg label``: segment everything on one frame and say what each object is, from a list of phrases."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..capture.images import write_png
from ..core.errors import ConfigError
from ..core.io import atomic_write_json, output_set
from ..segment import SEGMENTERS, create_segmenter
from ..segment.labelling import BACKGROUNDS, parse_phrases
from .common import Stopwatch, add_frame_args, load_frame
from .segment import backend_options, segment_config

SCHEMA_VERSION = 1


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "label", help="label every object of a frame with one of --phrases (CLIP/SigLIP); writes overlay and labels.json")
    add_frame_args(p)
    p.add_argument("--phrases", required=True, metavar="'A,B,C'", help="comma-separated phrases, e.g. 'mug,bowl,box'")
    p.add_argument("--checkpoint", dest="labeller", type=Path, metavar="DIR",
                   help="CLIP, SigLIP or SigLIP 2 checkpoint directory (default: segment.labeller.model of --config)")
    p.add_argument("--backend", help=f"segmenter that finds the objects (default from the config: rgbd; registered: "
                                     f"{', '.join(SEGMENTERS.names())})")
    p.add_argument("--model", type=Path, metavar="DIR", help="checkpoint of a sam/sam2 backend")
    p.add_argument("--config", type=Path, help="pipeline YAML whose segment section is used; --segment.field=value overrides it")
    p.add_argument("--context", type=float, help="context around each mask, fraction of its size (default 0.2)")
    p.add_argument("--background", choices=BACKGROUNDS, help="pixels outside the mask: blur (default), mask or none")
    p.add_argument("--min-margin", type=float, help="log-odds margin under which a label is ambiguous (default 1.0)")
    p.add_argument("--device", help="labeller device: auto (default), cpu, cuda, cuda:N, mps")
    p.add_argument("--quantize", choices=("int8",), help="int8: dynamic int8 linear layers (CPU; about 3x less work)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.set_defaults(func=run_label)


def _labelled_segmenter(args: argparse.Namespace):
    """``(backend, LabelledSegmenter)`` from the flags, ``--config`` and ``--segment.*`` overrides."""
    cfg = segment_config(args)
    labeller = dict(cfg.segment.labeller)
    for key in ("context", "background", "min_margin", "device", "quantize"):
        if getattr(args, key, None) is not None:
            labeller[key] = getattr(args, key)
    if not labeller.get("model"):
        raise ConfigError("no labeller checkpoint: pass --checkpoint DIR (a CLIP, SigLIP or SigLIP 2 checkpoint "
                          "directory, e.g. from `hf download openai/clip-vit-base-patch32 --local-dir DIR`; see "
                          "docs/labels.md) or set segment.labeller.model in --config")
    backend = cfg.segment.backend
    options = {**cfg.segment.options, **backend_options(args, backend)}
    return backend, create_segmenter(backend, labeller=labeller, **options)


def run_label(args: argparse.Namespace) -> int:
    from ..viz.overlay import crop_sheet, labelled_instances_overlay

    watch = Stopwatch()
    phrases = parse_phrases(args.phrases)
    with watch("load"):
        frame = load_frame(args)
        backend, segmenter = _labelled_segmenter(args)
    with watch("segment_all"):
        segmenter.set_frame(frame)
        instances = segmenter.segment_all()
    with watch("label"):
        _, labels = segmenter.label(phrases)
    labeller = segmenter.labeller
    crop_ms = dict(getattr(labeller, "timings", {}))
    objects = []
    for k in range(len(instances)):
        objects.append({"index": k, "mask": f"object_{k:02d}.png", "area_px": int(instances.areas[k]),
                        "segment_score": float(instances.scores[k]), **labels.object_dict(k)})
    n = len(instances)
    report = {
        "schema_version": SCHEMA_VERSION,
        "backend": backend,
        "labeller": labeller.describe() if hasattr(labeller, "describe") else type(labeller).__name__,
        "phrases": list(phrases),
        "min_margin": labels.min_margin,
        "units": {"margin": "log-odds (logit difference)", "time": "ms"},
        "objects": objects,
        "timings_ms": {k: round(v, 3) for k, v in watch.ms.items()}
        | ({"label_per_object": round(watch.ms["label"] / n, 3)} if n else {}),
        "labeller_timings_ms": {k: round(v, 3) for k, v in crop_ms.items() if k != "masks"},
    }
    out: Path = args.out
    with output_set(out) as tmp:
        for k in range(n):
            write_png(tmp / f"object_{k:02d}.png", instances.masks[k])
        write_png(tmp / "overlay.png", labelled_instances_overlay(frame.color, instances, labels))
        if n and hasattr(labeller, "crops"):
            crops, _ = labeller.crops(frame.color, instances.masks)
            write_png(tmp / "crops.png", crop_sheet(crops, [f"{o['index']}:{o['label']}" for o in objects]))
            report["crops"] = "crops.png"
        atomic_write_json(tmp / "labels.json", report)
    if n == 0:
        print(f"graspseg label: {backend} found no object on this frame; nothing was labelled", file=sys.stderr)
    unsure = [o["index"] for o in objects if o["ambiguous"]]
    if unsure:
        print(f"graspseg label: {len(unsure)} of {n} labels are ambiguous (best phrase ahead of the runner-up by less "
              f"than {labels.min_margin:g} log-odds): objects {', '.join(map(str, unsure))}; see {out / 'overlay.png'}",
              file=sys.stderr)
    print(json.dumps({"out": str(out), "objects": [{k: o[k] for k in ("index", "label", "probability", "margin",
                                                                       "ambiguous")} for o in objects],
                      "timings_ms": report["timings_ms"]}, indent=2))
    return 0
