"""``graspseg finetune``: adapt a SAM-family checkpoint to your own camera and objects (see docs/finetune.md).

Reads annotated images (COCO JSON with depth and intrinsics beside the images, a frame folder, or a folder
of frame folders), trains the prompt encoder and mask decoder on cached embeddings of the frozen encoder
(or LoRA on the encoder with ``--lora-rank``), and writes a checkpoint directory that ``--backend sam``
(or ``sam2``) loads with ``--model OUT``, plus ``finetune_report.json`` (before/after on the held-out split,
training curve) and ``graspseg_boundary_error.json`` (the measured boundary error the grasp margins use).
Prints a summary JSON on stdout; progress goes to stderr unless ``--quiet``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ..core.errors import InputError

#: Name of the on-disk embedding cache inside ``--out`` (``--cache-embeddings``).
EMBEDDING_CACHE_DIR = "embedding_cache"


def register(subparsers) -> None:
    from ..eval.finetune import FinetuneConfig

    d = FinetuneConfig()
    p = subparsers.add_parser(
        "finetune", help="fine-tune a SAM/SAM 2 checkpoint on annotated images; writes a checkpoint and a report",
        description="Fine-tune the prompt encoder and mask decoder of a SAM, SAM-HQ or SAM 2 checkpoint on your "
                    "annotated images (image embeddings of the frozen encoder cached once), with a held-out "
                    "split, early stopping and a before/after report. See docs/finetune.md.")
    p.add_argument("--data", type=Path, required=True, metavar="COCO_OR_DIR",
                   help="COCO JSON (depth and intrinsics beside the images), a frame folder, or a folder of frame "
                        "folders (color.png, depth.png, camera.json, masks/ + objects.json)")
    p.add_argument("--base", type=Path, required=True, metavar="CHECKPOINT_DIR",
                   help="base checkpoint directory (config.json, model.safetensors, preprocessor_config.json)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output checkpoint directory (replaced as a whole when the run succeeds)")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"passes over the training instances (default {d.epochs})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"AdamW learning rate (default {d.lr:g})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"instances per step (default {d.batch_size})")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help=f"share of the images held out for validation and the report, in (0, 1) (default {d.val_fraction})")
    p.add_argument("--lora-rank", type=int, default=d.lora_rank,
                   help="LoRA rank on the image encoder's qkv projections (0 = encoder frozen, embeddings cached; "
                        ">0 needs peft: pip install 'graspseg[finetune]', and a GPU)")
    p.add_argument("--lora-alpha", type=float, default=None, help="LoRA alpha (default: the rank)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed of the split, prompts and order (default {d.seed})")
    p.add_argument("--patience", type=int, default=d.patience,
                   help=f"epochs without a validation gain before stopping; 0 = never stop early (default {d.patience})")
    p.add_argument("--max-clicks", type=int, default=d.max_clicks,
                   help=f"click prompts get 1..N clicks, each next at the largest error (default {d.max_clicks})")
    p.add_argument("--box-fraction", type=float, default=d.box_fraction,
                   help=f"share of steps prompted with a jittered box (default {d.box_fraction})")
    p.add_argument("--freeze-prompt-encoder", action="store_true", help="train the mask decoder only")
    p.add_argument("--device", default=d.device, help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:N, mps (default auto)")
    p.add_argument("--cache-embeddings", action="store_true",
                   help=f"keep the frozen encoder's embeddings as .safetensors in OUT/{EMBEDDING_CACHE_DIR} (reused "
                        "by the next run into the same --out; holds memory flat on large data sets)")
    p.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bar")
    p.set_defaults(func=run_finetune)


# --------------------------------------------------------------------------------------------------
# Data: COCO (through graspseg.eval.coco) or frame folders
# --------------------------------------------------------------------------------------------------
def _is_coco_json(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16).decode("utf-8", "ignore")
    except OSError:
        return False
    return '"images"' in head or '"annotations"' in head


def _samples_from_coco(path: Path) -> list:
    """Samples from a COCO data set read by :func:`graspseg.eval.coco.load_coco_dataset`.

    A thin adapter: it accepts the loader's items as objects or dicts with a ``frame`` (RGBDFrame) and the
    instance masks as ``masks`` ((K, H, W) bool) or ``objects``/``instances``/``annotations`` carrying a
    ``mask`` each.
    """
    from ..eval.finetune import Sample

    try:
        from ..eval.coco import load_coco_dataset  # the evaluation toolkit's loader (one implementation)
    except ImportError as exc:
        raise InputError(
            f"--data {path} is COCO JSON, but this build has no COCO loader (graspseg.eval.coco.load_coco_dataset); "
            "give a frame folder or a folder of frame folders instead") from exc
    dataset = load_coco_dataset(path)

    def get(obj, name):
        return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)

    items = dataset
    for name in ("samples", "frames", "items", "images"):
        inner = get(dataset, name)
        if inner is not None and not isinstance(inner, str | bytes):
            items = inner
            break
    samples = []
    for n, item in enumerate(items):
        frame = get(item, "frame")
        masks = get(item, "masks")
        if masks is None:
            for name in ("objects", "instances", "annotations"):
                objs = get(item, name)
                if objs is not None:
                    masks = [get(o, "mask") for o in objs]
                    break
        if frame is None or masks is None:
            raise InputError(f"--data {path}: item {n} of the COCO loader has no frame or masks the fine-tuning "
                             "can read; report this (graspseg.commands.finetune._samples_from_coco)")
        masks = np.asarray(masks, bool) if len(masks) else np.zeros((0, frame.height, frame.width), bool)
        name = get(item, "name") or get(item, "file_name") or getattr(frame, "frame_id", "") or str(n)
        samples.append(Sample(frame, masks, str(name)))
    return samples


def _samples_from_frame_folder(folder: Path):
    from ..capture import load_frame_folder
    from ..capture.frame_folder import load_ground_truth
    from ..eval.finetune import Sample

    frame = load_frame_folder(folder)
    objs = load_ground_truth(folder, (frame.height, frame.width))
    masks = np.stack([o.mask for o in objs]) if objs else np.zeros((0, frame.height, frame.width), bool)
    return Sample(frame, masks, folder.name)


def load_samples(data: Path) -> list:
    """The annotated images named by ``--data``."""
    data = Path(data)
    if not data.exists():
        raise InputError(f"--data {data} does not exist; give a COCO JSON file, a frame folder or a folder of frame "
                         "folders")
    if data.is_file():
        if data.suffix.lower() == ".json":
            return _samples_from_coco(data)
        raise InputError(f"--data {data} is a file but not COCO JSON; give a .json file or a folder")
    if (data / "camera.json").is_file():
        return [_samples_from_frame_folder(data)]
    folders = sorted(p for p in data.iterdir() if p.is_dir() and (p / "camera.json").is_file())
    if folders:
        return [_samples_from_frame_folder(p) for p in folders]
    coco = sorted(p for p in data.glob("*.json") if _is_coco_json(p))
    if coco:
        preferred = [p for p in coco if p.stem in ("annotations", "instances", "coco")]
        return _samples_from_coco((preferred or coco)[0])
    raise InputError(f"--data {data} holds no frame folders (subfolders with camera.json) and no COCO JSON; see "
                     "docs/finetune.md for the layouts")


# --------------------------------------------------------------------------------------------------
# Progress bar (stderr)
# --------------------------------------------------------------------------------------------------
class ProgressBar:
    """One updating line on stderr per stage: embedding, then training epochs with the validation mIoU."""

    def __init__(self, stream=None, width: int = 28) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.stage = None
        self.val = None
        self.best = None
        self.t0 = time.perf_counter()

    def _bar(self, frac: float) -> str:
        n = int(round(self.width * min(max(frac, 0.0), 1.0)))
        return "#" * n + "." * (self.width - n)

    def __call__(self, ev: dict) -> None:
        stage = ev.get("stage")
        if stage != self.stage and self.stage in ("embed", "train"):
            print(file=self.stream)
        if stage == "embed":
            line = f"\rembedding [{self._bar(ev['done'] / ev['total'])}] {ev['done']}/{ev['total']} images"
            print(line, end="", file=self.stream, flush=True)
        elif stage == "train":
            done = (ev["epoch"] - 1 + ev["step"] / ev["steps"]) / ev["epochs"]
            val = "" if self.val is None else f" | val mIoU {self.val:.3f} (best {self.best:.3f})"
            print(f"\rtraining  [{self._bar(done)}] epoch {ev['epoch']}/{ev['epochs']} step {ev['step']}/{ev['steps']} "
                  f"loss {ev['loss']:.4f}{val} | {time.perf_counter() - self.t0:.0f} s  ",
                  end="", file=self.stream, flush=True)
        elif stage == "validate":
            self.val, self.best = ev["val_miou_1click"], ev["best"]
        elif stage == "evaluate":
            print(f"{ev['which']}: held-out 1-click mIoU {ev['miou_1click']:.3f}", file=self.stream, flush=True)
        if stage != "validate":
            self.stage = stage

    def close(self) -> None:
        if self.stage in ("embed", "train"):
            print(file=self.stream)
            self.stage = None


@contextlib.contextmanager
def _no_transformers_progress():
    """Silence transformers' own "Loading weights" bars while ours runs (restored afterwards)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # the base check names the missing extra
        yield
        return
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _carry_cache(old: Path, new: Path) -> None:
    """Hard-link (or copy) the previous run's embedding files into the new output set."""
    if not old.is_dir():
        return
    new.mkdir(parents=True, exist_ok=True)
    for f in old.glob("*.safetensors"):
        try:
            os.link(f, new / f.name)
        except OSError:
            shutil.copy2(f, new / f.name)


def _table(report: dict) -> str:
    t = report["evaluation"]["table"]
    rows = [("1-click mIoU (top-scored)", "miou_1click", "{:.3f}"), ("1-click mIoU (best of 3)", "miou_1click_best_of_3", "{:.3f}"),
            ("box mIoU", "miou_box", "{:.3f}"), ("boundary F (DAVIS tol.)", "boundary_f", "{:.3f}"),
            ("boundary error median px", "boundary_error_median_px", "{:.2f}"),
            ("boundary error p90 px", "boundary_error_p90_px", "{:.2f}")]
    n = report["evaluation"]["after"]["n_instances"]
    lines = [f"held-out split: {n} instances in {report['dataset']['validation']['images']} images",
             f"{'':28s} {'before':>8s} {'after':>8s}"]
    for label, key, fmt in rows:
        b, a = t["before"][key], t["after"][key]
        lines.append(f"{label:28s} {fmt.format(b) if b is not None else '-':>8s} {fmt.format(a) if a is not None else '-':>8s}")
    tr = report["training"]
    lines.append(f"kept {tr['kept']} after {tr['epochs_run']} epoch(s){' (stopped early)' if tr['stopped_early'] else ''}")
    return "\n".join(lines)


def run_finetune(args: argparse.Namespace) -> int:
    from ..core.io import output_set
    from ..eval.finetune import FinetuneConfig, check_base_checkpoint, finetune

    config = FinetuneConfig(
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, val_fraction=args.val_fraction,
        lora_rank=args.lora_rank, lora_alpha=args.lora_alpha, seed=args.seed, patience=args.patience,
        max_clicks=args.max_clicks, box_fraction=args.box_fraction,
        train_prompt_encoder=not args.freeze_prompt_encoder, device=args.device)
    base_dir, _, _ = check_base_checkpoint(args.base)
    if Path(args.out).absolute().resolve() == base_dir.absolute().resolve():
        raise InputError(f"--out {args.out} is the base checkpoint; give a new folder (the base is read while the "
                         "tuned checkpoint is written)")
    samples = load_samples(args.data)
    quiet = bool(getattr(args, "quiet", False))
    bar = None if quiet else ProgressBar()
    with output_set(args.out) as tmp, _no_transformers_progress():
        cache = None
        if args.cache_embeddings:
            cache = tmp / EMBEDDING_CACHE_DIR
            _carry_cache(Path(args.out) / EMBEDDING_CACHE_DIR, cache)
        try:
            result = finetune(samples, base_dir, tmp, config, embedding_cache=cache, progress=bar, data=str(args.data))
        finally:
            if bar is not None:
                bar.close()
    report = result.report
    summary = {
        "schema_version": report["schema_version"],
        "out": str(args.out),
        "units": report["units"],
        "model_type": report["model_type"], "backend": report["backend"],
        "dataset": {k: report["dataset"][k] for k in ("images", "instances", "train", "validation")},
        "before": report["evaluation"]["table"]["before"], "after": report["evaluation"]["table"]["after"],
        "training": {k: report["training"][k] for k in ("epochs_run", "best_epoch", "stopped_early", "kept")},
        "boundary_error_written": report["boundary_error_written"],
        "use_with": f"--backend {report['backend']} --model {args.out}",
    }
    summary["dataset"]["validation"] = {k: v for k, v in summary["dataset"]["validation"].items() if k != "names"}
    print(json.dumps(summary, indent=2))
    if not quiet:
        print(_table(report), file=sys.stderr)
    return 0
