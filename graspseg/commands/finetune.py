"""``graspseg finetune``: adapt a SAM-family checkpoint to your own camera and objects (see docs/finetune.md).

Reads annotated images (:func:`graspseg.eval.load_dataset`: COCO JSON with depth and intrinsics beside the
images, frame folders, native episodes), trains the prompt encoder and mask decoder on cached embeddings of the frozen encoder
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
                   help="COCO JSON or its folder (depth and intrinsics beside the images), frame folders (one, a set, "
                        "or a folder of sets), or native episodes, as graspseg eval reads them (docs/metrics.md)")
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
    p.add_argument("--eval-clicks", type=int, default=d.eval_clicks,
                   help=f"click budget of the before/after evaluation (NoC cap; default {d.eval_clicks})")
    p.add_argument("--freeze-prompt-encoder", action="store_true", help="train the mask decoder only")
    p.add_argument("--device", default=d.device, help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:N, mps (default auto)")
    p.add_argument("--cache-embeddings", action="store_true",
                   help=f"keep the frozen encoder's embeddings as .safetensors in OUT/{EMBEDDING_CACHE_DIR} (reused "
                        "by the next run into the same --out; holds memory flat on large data sets)")
    p.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bar")
    p.set_defaults(func=run_finetune)


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
        if stage != self.stage and self.stage in ("read", "embed", "train"):
            print(file=self.stream)
        if stage == "read":
            line = f"\rreading   [{self._bar(ev['done'] / ev['total'])}] {ev['done']}/{ev['total']} images"
            print(line, end="", file=self.stream, flush=True)
        elif stage == "embed":
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
        if self.stage in ("read", "embed", "train"):
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
    rows = [("1-click mIoU (top-scored)", "miou_1click_top", "{:.3f}"),
            ("1-click mIoU (best of 3)", "miou_1click_best_of_3", "{:.3f}"),
            ("1-click mIoU (whole)", "miou_1click_whole", "{:.3f}"), ("box mIoU", "miou_box", "{:.3f}"),
            ("boundary F (DAVIS)", "boundary_f_davis", "{:.3f}"), ("boundary F (2 px)", "boundary_f_2px", "{:.3f}"),
            ("Boundary IoU", "boundary_iou", "{:.3f}"), ("NoC@90", "noc90", "{:.2f}"),
            ("boundary error median px", "boundary_error_median_px", "{:.2f}"),
            ("boundary error p90 px", "boundary_error_p90_px", "{:.2f}")]
    n = report["evaluation"]["after"]["objects"]
    lines = [f"held-out split: {n} instances in {report['dataset']['validation']['images']} images",
             f"{'':28s} {'before':>8s} {'after':>8s}"]
    for label, key, fmt in rows:
        b, a = t["before"][key], t["after"][key]
        lines.append(f"{label:28s} {fmt.format(b) if b is not None else '-':>8s} {fmt.format(a) if a is not None else '-':>8s}")
    if report["boundary_error_written"] is None:
        lines.append("no boundary error written: " + report["evaluation"]["boundary_error"]["after"].get("why", ""))
    tr = report["training"]
    lines.append(f"kept {tr['kept']} after {tr['epochs_run']} epoch(s){' (stopped early)' if tr['stopped_early'] else ''}")
    return "\n".join(lines)


def run_finetune(args: argparse.Namespace) -> int:
    from ..core.io import output_set
    from ..eval.datasets import load_dataset
    from ..eval.finetune import FinetuneConfig, check_base_checkpoint, finetune

    config = FinetuneConfig(
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, val_fraction=args.val_fraction,
        lora_rank=args.lora_rank, lora_alpha=args.lora_alpha, seed=args.seed, patience=args.patience,
        max_clicks=args.max_clicks, box_fraction=args.box_fraction, eval_clicks=args.eval_clicks,
        train_prompt_encoder=not args.freeze_prompt_encoder, device=args.device)
    base_dir, _, _ = check_base_checkpoint(args.base)
    if Path(args.out).absolute().resolve() == base_dir.absolute().resolve():
        raise InputError(f"--out {args.out} is the base checkpoint; give a new folder (the base is read while the "
                         "tuned checkpoint is written)")
    dataset = load_dataset(args.data)
    quiet = bool(getattr(args, "quiet", False))
    bar = None if quiet else ProgressBar()
    with output_set(args.out) as tmp, _no_transformers_progress():
        cache = None
        if args.cache_embeddings:
            cache = tmp / EMBEDDING_CACHE_DIR
            _carry_cache(Path(args.out) / EMBEDDING_CACHE_DIR, cache)
        try:
            result = finetune(dataset, base_dir, tmp, config, embedding_cache=cache, progress=bar, data=str(args.data))
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
