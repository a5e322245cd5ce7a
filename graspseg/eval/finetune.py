"""Fine-tuning a SAM-family checkpoint on a robot's own annotated images (``graspseg finetune``).

What is trained
    The mask decoder (and, by default, the prompt encoder) of a SAM / SAM-HQ / SAM 2 checkpoint. The image
    encoder stays frozen, so each image is encoded **once** and its embedding cached (in memory, and on disk
    as ``.safetensors`` when ``embedding_cache`` is given). With ``lora_rank > 0`` low-rank adapters (peft
    LoRA) are added to the encoder's ``qkv`` projections and trained too; the encoder then changes every
    step, so embeddings cannot be cached and every step runs the encoder forward and backward (a GPU job).
    The adapters are merged into the weights before saving, so the result is a plain checkpoint.

Prompts, as the interactive protocol (:mod:`graspseg.eval.clicks`) gives them
    Each batch is either boxes (the true box with Gaussian jitter of ``box_jitter`` × its side per corner)
    or 1 to ``max_clicks`` clicks: the first at the interior point farthest from the boundary (with
    probability ``random_click_fraction`` a uniformly random interior point instead, as real users click),
    each next one at the point of the larger error region of the model's *current* prediction farthest from
    that region's boundary (positive on missed object, negative on leaked background).

Loss, at the model's mask resolution (256² for SAM, 4× the embedding grid) against the true mask resized
into the model's input frame (letterbox padding excluded)
    ``dice_weight`` × Dice + ``bce_weight`` × BCE on the logits. With the three multimask outputs only the
    best of the three counts (min over masks, as SAM is trained); the IoU head is trained with MSE to the
    true IoU of every output (``iou_weight``). Unambiguous prompts (a box or several clicks) also train the
    single-mask output (``train_single_mask``), which ``multimask="auto"`` uses.

Validation and result
    A seeded split by image (``val_fraction``), the 1-click mIoU of the top-scored candidate on it after
    every epoch, early stopping after ``patience`` epochs without a gain of ``min_delta``, and the best
    weights kept (the base weights when no epoch beats them). The before/after evaluation on the held-out
    split is :func:`graspseg.eval.evaluate_dataset` (what ``graspseg eval segment`` reports: 1-click mIoU of
    the ``whole`` candidate, the top-scored one and the best of 3, box mIoU, boundary F, Boundary IoU, NoC)
    served from the cached embeddings; the tuned model's boundary error
    (:func:`graspseg.eval.boundary_error.boundary_error_from_evaluation`) is written beside the weights
    (``graspseg_boundary_error.json``) where the SAM backend reads it as the boundary error of its masks.

Memory
    Only the instance masks (bit-packed) and the embeddings stay in memory; images are read from the data
    set when needed (the embedding pass, evaluation, and every step with LoRA).

torch, transformers, safetensors and peft are imported inside functions only.
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..core.errors import ConfigError, InputError, MissingDependencyError
from .clicks import first_click, next_click
from .datasets import Sample
from .metrics import mask_iou

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
REPORT_FILE = "finetune_report.json"
#: Checkpoint model types ``graspseg finetune`` can tune, and the segmenter backend that runs each.
FINETUNE_MODEL_TYPES: dict[str, str] = {"sam": "sam", "sam_hq": "sam", "sam2": "sam2"}
#: Files of a base checkpoint that are not copied into the tuned one (weights are rewritten, our own outputs
#: are regenerated).
_NOT_COPIED_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".msgpack", ".h5", ".onnx")
_NOT_COPIED_NAMES = ("config.json", "model.safetensors.index.json", "pytorch_model.bin.index.json", REPORT_FILE)

ProgressFn = Callable[[dict], None]


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Image:
    """What training keeps of one annotated image: its name, size and usable instance masks (bit-packed)."""

    name: str
    height: int
    width: int
    packed: tuple[np.ndarray, ...]

    def mask(self, k: int) -> np.ndarray:
        """(H, W) bool mask of instance ``k``."""
        n = self.height * self.width
        return np.unpackbits(self.packed[k], count=n).reshape(self.height, self.width).astype(bool)


def _read_images(dataset: Sequence[Sample], min_area_px: int, progress: ProgressFn | None = None) -> list[_Image]:
    """One pass over ``dataset``: every sample's usable instances (at least ``min_area_px`` pixels)."""
    images, seen = [], set()
    for i, s in enumerate(dataset):
        if not isinstance(s, Sample):
            raise InputError(f"finetune takes graspseg.eval Sample items (a Dataset from graspseg.eval.load_dataset), "
                             f"got {type(s).__name__} at {i}")
        name = s.name
        if not name or name in seen:
            raise InputError(f"sample {i} is named {name!r}, {'twice' if name else 'empty'}; fine-tuning needs unique "
                             "sample names (the held-out split and the report name them)")
        seen.add(name)
        masks = [inst.mask for inst in s.instances if inst.area_px >= max(1, min_area_px)]
        images.append(_Image(name, s.frame.height, s.frame.width, tuple(np.packbits(m.ravel()) for m in masks)))
        if progress is not None:
            progress({"stage": "read", "done": i + 1, "total": len(dataset)})
    return images


@dataclass(frozen=True)
class FinetuneConfig:
    """Settings of one fine-tuning run (every field is a ``graspseg finetune`` flag)."""

    epochs: int = 10
    lr: float = 1e-4
    batch_size: int = 8
    val_fraction: float = 0.2
    lora_rank: int = 0  # 0: no LoRA, the encoder is frozen and its embeddings cached
    lora_alpha: float | None = None  # None: equal to the rank (scale 1)
    seed: int = 0
    patience: int = 3  # epochs without a validation gain before stopping
    min_delta: float = 1e-3  # smallest validation mIoU gain that counts
    weight_decay: float = 1e-4
    max_grad_norm: float = 1.0
    box_fraction: float = 0.4  # share of batches prompted with a box
    box_jitter: float = 0.1  # std of each box corner's shift, as a fraction of the box side
    max_clicks: int = 3  # click batches get 1..max_clicks clicks
    random_click_fraction: float = 0.25  # first click at a random interior point instead of the farthest one
    dice_weight: float = 1.0
    bce_weight: float = 1.0
    iou_weight: float = 1.0
    train_prompt_encoder: bool = True
    train_single_mask: bool = True
    min_instance_area_px: int = 16
    eval_clicks: int = 20  # click budget of the before/after evaluation (NoC cap)
    device: str = "auto"

    def __post_init__(self) -> None:
        def number(name: str, *, low: float, high: float | None = None, integer: bool = False,
                   low_open: bool = False, high_open: bool = False) -> None:
            v = getattr(self, name)
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
            if ok and integer:
                ok = float(v).is_integer()
            lo_ok = ok and (v > low if low_open else v >= low)
            hi_ok = ok and (high is None or (v < high if high_open else v <= high))
            if not (lo_ok and hi_ok):
                lo = f"{'>' if low_open else '>='} {low:g}"
                hi = "" if high is None else f" and {'<' if high_open else '<='} {high:g}"
                kind = "an integer" if integer else "a number"
                raise ConfigError(f"finetune: {name} is {v!r}; expected {kind} {lo}{hi} "
                                  f"(flag --{name.replace('_', '-')})")

        if not (isinstance(self.val_fraction, int | float) and not isinstance(self.val_fraction, bool)
                and 0.0 < float(self.val_fraction) < 1.0):
            raise ConfigError(f"finetune: val_fraction is {self.val_fraction!r}; expected a fraction strictly between "
                              "0 and 1 (e.g. --val-fraction 0.2 holds out a fifth of the images)")
        for name in ("epochs", "batch_size", "max_clicks", "eval_clicks"):
            number(name, low=1, integer=True)
        for name in ("lora_rank", "seed", "patience", "min_instance_area_px"):
            number(name, low=0, integer=True)
        number("lr", low=0, low_open=True)
        for name in ("min_delta", "weight_decay", "box_jitter", "dice_weight", "bce_weight", "iou_weight"):
            number(name, low=0)
        number("max_grad_norm", low=0, low_open=True)
        for name in ("box_fraction", "random_click_fraction"):
            number(name, low=0, high=1)
        if self.lora_alpha is not None:
            number("lora_alpha", low=0, low_open=True)
        if self.dice_weight + self.bce_weight <= 0:
            raise ConfigError("finetune: dice_weight and bce_weight are both 0; the masks would not be trained")


@dataclass(frozen=True)
class FinetuneResult:
    """What :func:`finetune` did: the report (also in ``finetune_report.json``) and the per-step losses."""

    out_dir: Path
    report: dict
    step_losses: tuple[float, ...] = field(default=())

    @property
    def before(self) -> dict:
        return self.report["evaluation"]["before"]

    @property
    def after(self) -> dict:
        return self.report["evaluation"]["after"]


# --------------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------------
def check_base_checkpoint(base: str | Path) -> tuple[Path, str, str]:
    """``(directory, model_type, backend)`` of a base checkpoint that can be fine-tuned.

    Raises
    ------
    ConfigError
        The directory is missing, lacks ``config.json`` or safetensors weights, or holds a model other
        than SAM / SAM-HQ / SAM 2.
    """
    from ..segment.backends.hf_loading import check_checkpoint_dir, read_config

    path = Path(base).expanduser()
    if not path.is_dir():
        raise ConfigError(f"base checkpoint '{base}' is not a directory; give the folder holding config.json and "
                          "model.safetensors (e.g. `hf download facebook/sam-vit-base --local-dir DIR`)")
    check_checkpoint_dir(path)
    model_type = str(read_config(path).get("model_type", ""))
    if model_type not in FINETUNE_MODEL_TYPES:
        raise ConfigError(
            f"base checkpoint '{path}' is a '{model_type or 'unknown'}' model; graspseg finetune tunes SAM-family "
            f"prompt decoders only ({', '.join(FINETUNE_MODEL_TYPES)}); give a SAM, SAM-HQ or SAM 2 checkpoint")
    return path, model_type, FINETUNE_MODEL_TYPES[model_type]


def _instances(images: Sequence[_Image]) -> list[tuple[int, int]]:
    """``(image index, instance index)`` of every usable instance."""
    return [(i, k) for i, im in enumerate(images) for k in range(len(im.packed))]


def split_by_image(n_images: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded ``(train, validation)`` image indices; every image lands on one side only (no leakage).

    The validation side gets ``round(n × val_fraction)`` images, at least one, and leaves at least one for
    training.
    """
    if n_images < 2:
        raise InputError(f"the data set has {n_images} usable image(s); a training and a validation split need at "
                         "least 2 (add annotated images)")
    n_val = min(n_images - 1, max(1, round(n_images * val_fraction)))
    perm = np.random.default_rng(seed).permutation(n_images)
    return sorted(int(i) for i in perm[n_val:]), sorted(int(i) for i in perm[:n_val])


# --------------------------------------------------------------------------------------------------
# Small pure helpers
# --------------------------------------------------------------------------------------------------
def mask_box_xyxy(mask: np.ndarray) -> np.ndarray:
    """Tight box ``x0, y0, x1, y1`` (pixels, x1/y1 one past the last pixel) of a non-empty (H, W) mask."""
    vv, uu = np.nonzero(mask)
    return np.array([uu.min(), vv.min(), uu.max() + 1, vv.max() + 1], np.float64)


def jitter_box(box: np.ndarray, jitter: float, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """``box`` with each corner shifted by N(0, jitter × side), clipped to the image, kept non-empty."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    d = rng.normal(0.0, jitter, 4) * np.array([bw, bh, bw, bh])
    x0, y0, x1, y1 = box + d
    x0, x1 = np.clip([x0, x1], 0, width - 1)
    y0, y1 = np.clip([y0, y1], 0, height - 1)
    if x1 - x0 < 1:
        x0, x1 = max(0.0, min(x0, x1) - 0.5), min(width - 1.0, max(x0, x1) + 0.5)
    if y1 - y0 < 1:
        y0, y1 = max(0.0, min(y0, y1) - 0.5), min(height - 1.0, max(y0, y1) + 0.5)
    return np.array([x0, y0, x1, y1], np.float64)


def _target_low_res(mask: np.ndarray, geom, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(m, m) float32 soft target and (m, m) float32 validity of ``mask`` in the model's mask frame.

    The mask is resized as the image is (into the letterboxed or stretched S×S input) and then to m×m;
    letterbox padding is outside the image and gets weight 0.
    """
    rh, rw = geom.resized_hw
    th, tw = max(1, round(rh * m / geom.input_size)), max(1, round(rw * m / geom.input_size))
    small = cv2.resize(mask.astype(np.float32), (tw, th), interpolation=cv2.INTER_AREA)
    target = np.zeros((m, m), np.float32)
    valid = np.zeros((m, m), np.float32)
    target[:th, :tw] = small
    valid[:th, :tw] = 1.0
    return target, valid


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it lies inside it (the report travels with its folder), else absolute."""
    try:
        return str(Path(path).absolute().relative_to(Path(root).absolute()))
    except ValueError:
        return str(Path(path).absolute())


# --------------------------------------------------------------------------------------------------
# Embeddings: flattened to a tuple of tensors so one code path serves SAM, SAM-HQ and SAM 2
# --------------------------------------------------------------------------------------------------
def _pack(emb, family) -> tuple:
    """Model embedding → flat tuple of (1, ...) tensors."""
    if family.hq:
        main, inter = emb
        return (main, *inter)
    if isinstance(emb, list | tuple):
        return tuple(emb)
    return (emb,)


def _unpack(parts: Sequence, family, model_type: str):
    """Flat tuple of tensors → the structure the model's forward takes."""
    if family.hq:
        return (parts[0], list(parts[1:]))
    if model_type.startswith("sam2") or len(parts) > 1:
        return list(parts)
    return parts[0]


def _decoder_kwargs(emb, family) -> dict:
    if family.hq:
        return {"image_embeddings": emb[0], "intermediate_embeddings": emb[1]}
    return {"image_embeddings": emb}


def _encoder_fingerprint(model) -> str:
    """sha256 over the image encoder's weights: embeddings cached on disk are reused only for the same encoder."""
    h = hashlib.sha256()
    for name, t in sorted(model.vision_encoder.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class EmbeddingCache:
    """Image embeddings of the frozen encoder, computed once per image.

    In memory by default (SAM ViT-B/L/H: 256×64×64 float32 = 4 MiB per image; SAM 2: three levels, 16 MiB).
    With ``cache_dir`` each image is one ``<sha256>.safetensors`` file there (named from the encoder's weights,
    the input size, the normalisation and the image bytes) and is read back per batch instead of held in
    memory, so a later run over the same images and base reuses them and large data sets fit; nothing is
    ever unpickled.
    """

    def __init__(self, segmenter, cache_dir: Path | None = None) -> None:
        self.seg = segmenter
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.parts: dict[int, tuple] = {}  # in memory
        self.files: dict[int, Path] = {}  # on disk
        self.hits = 0
        self.computed = 0
        self._fingerprint = _encoder_fingerprint(segmenter.model) if cache_dir is not None else ""

    def _key(self, color: np.ndarray) -> str:
        h = hashlib.sha256(self._fingerprint.encode())
        h.update(f"{self.seg.model_type}|{self.seg.input_size}|{self.seg.norm}|{color.shape}".encode())
        h.update(np.ascontiguousarray(color).tobytes())
        return h.hexdigest()

    def compute(self, dataset: Sequence[Sample], indices: Sequence[int], progress: ProgressFn | None = None) -> None:
        import torch

        for n, i in enumerate(indices):
            if i in self.parts or i in self.files:
                continue
            color = dataset[i].frame.color
            path = None if self.cache_dir is None else self.cache_dir / f"{self._key(color)}.safetensors"
            if path is not None and path.is_file():
                self.files[i] = path
                self.hits += 1
            else:
                pixels, _ = self.seg.preprocess(color)
                with torch.inference_mode():
                    emb = self.seg.model.get_image_embeddings(pixels)
                parts = tuple(t.detach().float().cpu().clone() for t in _pack(emb, self.seg.family))
                self.computed += 1
                if path is None:
                    self.parts[i] = parts
                else:
                    from safetensors.torch import save_file

                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_name(f".{path.name}.tmp")
                    save_file({f"part_{k}": t.contiguous() for k, t in enumerate(parts)}, str(tmp),
                              metadata={"model_type": self.seg.model_type, "format": "graspseg-embedding-v1"})
                    tmp.replace(path)
                    self.files[i] = path
            if progress is not None:
                progress({"stage": "embed", "done": n + 1, "total": len(indices)})

    def _parts(self, i: int) -> tuple:
        if i in self.parts:
            return self.parts[i]
        from safetensors.torch import load_file

        loaded = load_file(str(self.files[i]))
        return tuple(loaded[f"part_{k}"] for k in range(len(loaded)))

    def batch(self, indices: Sequence[int]):
        """The embeddings of ``indices`` concatenated along the batch axis, on the model's device."""
        import torch

        per_image = [self._parts(i) for i in indices]
        parts = [torch.cat([p[k] for p in per_image]).to(self.seg.device) for k in range(len(per_image[0]))]
        return _unpack(parts, self.seg.family, self.seg.model_type)

    def one(self, i: int):
        return self.batch([i])


# --------------------------------------------------------------------------------------------------
# LoRA (peft) on the image encoder
# --------------------------------------------------------------------------------------------------
def _require_peft():
    try:
        import peft
    except ImportError as exc:
        raise MissingDependencyError("peft", "finetune", "LoRA on the image encoder (--lora-rank > 0)") from exc
    return peft


def add_lora(model, rank: int, alpha: float | None) -> int:
    """Inject LoRA adapters into the image encoder's ``qkv`` projections; returns their parameter count."""
    peft = _require_peft()
    targets = sorted({n.rsplit(".", 1)[-1] for n, mod in model.vision_encoder.named_modules()
                      if n.endswith("qkv") and type(mod).__name__ == "Linear"})
    if not targets:
        raise ConfigError(f"{type(model).__name__}: its image encoder has no 'qkv' projection for LoRA; "
                          "use --lora-rank 0 (decoder only)")
    config = peft.LoraConfig(r=int(rank), lora_alpha=float(alpha if alpha is not None else rank),
                             lora_dropout=0.0, target_modules=targets, bias="none")
    peft.inject_adapter_in_model(config, model.vision_encoder)
    return sum(p.numel() for n, p in model.vision_encoder.named_parameters() if "lora_" in n)


def merge_lora(model) -> int:
    """Fold every LoRA adapter into its base weight and put the plain layer back; returns how many were merged."""
    merged = 0
    for name, mod in list(model.vision_encoder.named_modules()):
        if hasattr(mod, "merge") and hasattr(mod, "get_base_layer") and hasattr(mod, "lora_A"):
            mod.merge()
            parent_name, _, attr = name.rpartition(".")
            parent = model.vision_encoder.get_submodule(parent_name) if parent_name else model.vision_encoder
            setattr(parent, attr, mod.get_base_layer())
            merged += 1
    return merged


# --------------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------------
class _Trainer:
    def __init__(self, seg, dataset: Sequence[Sample], images: Sequence[_Image], config: FinetuneConfig,
                 rng: np.random.Generator) -> None:
        from ..segment.backends.sam import InputGeometry

        self.seg = seg
        self.dataset = dataset
        self.images = images
        self.cfg = config
        self.rng = rng
        self.lora = config.lora_rank > 0
        self.m = seg.mask_input_size
        self.geoms = [InputGeometry(im.height, im.width, seg.input_size, seg.family.letterbox) for im in images]

    # --- tensors ---------------------------------------------------------------------------------
    def target(self, item: tuple[int, int]):
        """(m, m) soft target and validity of an instance (computed per step: memory stays flat)."""
        import torch

        i, k = item
        t, v = _target_low_res(self.images[i].mask(k), self.geoms[i], self.m)
        return torch.from_numpy(t), torch.from_numpy(v)

    def embeddings(self, items, cache: EmbeddingCache | None, grad: bool):
        """Embeddings of the items' images: from the cache, or (LoRA) through the encoder."""
        import torch

        idx = [i for i, _ in items]
        if not self.lora:
            return cache.batch(idx)
        pixels = torch.cat([self.seg.preprocess(self.dataset[i].frame.color)[0] for i in idx])
        encode = self.seg.model.get_image_embeddings
        encode = getattr(encode, "__wrapped__", None)  # the public method runs under no_grad
        with torch.set_grad_enabled(grad):
            emb = encode(self.seg.model, pixels) if encode is not None else self.seg.model.get_image_embeddings(pixels)
        return emb

    @staticmethod
    def detach(emb):
        if isinstance(emb, tuple):
            return (emb[0].detach(), [t.detach() for t in emb[1]])
        if isinstance(emb, list):
            return [t.detach() for t in emb]
        return emb.detach()

    def prompt_tensors(self, items, points, labels, boxes) -> dict:
        import torch

        dev, dt = self.seg.device, self.seg.dtype
        kw: dict = {}
        if points is not None:
            pts = np.stack([self.geoms[i].to_input_uv(p) for (i, _), p in zip(items, points, strict=True)])
            kw["input_points"] = torch.from_numpy(pts[:, None]).to(dev, dt)  # (B, 1, N, 2)
            kw["input_labels"] = torch.from_numpy(np.stack(labels)[:, None].astype(np.int64)).to(dev)
        if boxes is not None:
            bx = np.stack([self.geoms[i].to_input_box(b) for (i, _), b in zip(items, boxes, strict=True)])
            kw["input_boxes"] = torch.from_numpy(bx[:, None]).to(dev, dt)  # (B, 1, 4)
        return kw

    def forward(self, emb, prompt_kw: dict, multimask: bool):
        out = self.seg.model(**_decoder_kwargs(emb, self.seg.family), **prompt_kw, multimask_output=multimask)
        return out.pred_masks[:, 0], out.iou_scores[:, 0]  # (B, K, m, m), (B, K)

    # --- prompts ---------------------------------------------------------------------------------
    def first_clicks(self, items) -> list[np.ndarray]:
        pts = []
        for i, k in items:
            gt = self.images[i].mask(k)
            if self.rng.random() < self.cfg.random_click_fraction:
                vv, uu = np.nonzero(gt)
                j = int(self.rng.integers(len(uu)))
                pts.append(np.array([[float(uu[j]), float(vv[j])]]))
            else:
                pts.append(np.array([first_click(gt)], np.float64))
        return pts

    def corrective_clicks(self, items, emb, points, labels) -> tuple[list, list]:
        """One more click per item, at the largest error of the model's current top-scored prediction.

        The prediction is made as the SAM backend makes it by default (three candidates, the top-scored shown).
        """
        import torch

        from ..segment.backends.sam import upsample_to_image

        with torch.no_grad():
            low, iou = self.forward(self.detach(emb), self.prompt_tensors(items, points, labels, None), multimask=True)
        best = iou.argmax(dim=1)
        new_pts, new_lab = [], []
        for b, (i, k) in enumerate(items):
            full = upsample_to_image(low[b, best[b]].detach().float().cpu(), self.geoms[i]).numpy() > 0
            click = next_click(full, self.images[i].mask(k), clicked_uv=points[b])
            if click is None:  # already exact: repeat the last click
                u, v, lab = points[b][-1, 0], points[b][-1, 1], int(labels[b][-1])
            else:
                u, v, lab = click
            new_pts.append(np.vstack([points[b], [[u, v]]]))
            new_lab.append(np.append(labels[b], lab).astype(np.int8))
        return new_pts, new_lab

    # --- loss ------------------------------------------------------------------------------------
    def loss(self, low, iou_pred, items, multimask: bool):
        """(scalar loss, dict of its parts) for logits (B, K, m, m) and predicted IoU (B, K)."""
        import torch
        import torch.nn.functional as F

        tw = [self.target(it) for it in items]
        t = torch.stack([a for a, _ in tw]).to(low.device)[:, None]  # (B, 1, m, m)
        w = torch.stack([b for _, b in tw]).to(low.device)[:, None]
        logits = low.float()
        if logits.shape[-2:] != t.shape[-2:]:  # pragma: no cover - decoders give 4x the embedding grid
            logits = F.interpolate(logits, size=t.shape[-2:], mode="bilinear", align_corners=False)
        n_valid = w.sum(dim=(-2, -1)).clamp(min=1.0)
        bce = (F.binary_cross_entropy_with_logits(logits, t.expand_as(logits), reduction="none") * w).sum((-2, -1))
        bce = bce / n_valid
        p = torch.sigmoid(logits) * w
        dice = 1.0 - (2.0 * (p * t).sum((-2, -1)) + 1.0) / (p.sum((-2, -1)) + (t * w).sum((-2, -1)) + 1.0)
        per_mask = self.cfg.dice_weight * dice + self.cfg.bce_weight * bce  # (B, K)
        mask_loss = per_mask.min(dim=1).values.mean() if multimask else per_mask[:, 0].mean()
        with torch.no_grad():
            pred = (logits > 0) & (w > 0)
            gt = (t > 0.5) & (w > 0)
            inter = (pred & gt).sum((-2, -1)).float()
            union = (pred | gt).sum((-2, -1)).float()
            true_iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
        iou_loss = F.mse_loss(iou_pred.float(), true_iou)
        total = mask_loss + self.cfg.iou_weight * iou_loss
        return total, {"mask": float(mask_loss.detach()), "iou": float(iou_loss.detach())}

    def step_loss(self, items, cache):
        """Sample a prompt for the batch, run the decoder with gradients, return the loss."""
        cfg = self.cfg
        emb = self.embeddings(items, cache, grad=True)
        if self.rng.random() < cfg.box_fraction:
            boxes = [jitter_box(mask_box_xyxy(self.images[i].mask(k)), cfg.box_jitter, self.images[i].width,
                                self.images[i].height, self.rng) for i, k in items]
            kw = self.prompt_tensors(items, None, None, boxes)
            n_sparse = 2
        else:
            n_clicks = int(self.rng.integers(1, cfg.max_clicks + 1))
            points = self.first_clicks(items)
            labels = [np.ones(1, np.int8) for _ in items]
            for _ in range(n_clicks - 1):
                points, labels = self.corrective_clicks(items, emb, points, labels)
            kw = self.prompt_tensors(items, points, labels, None)
            n_sparse = n_clicks
        low, iou = self.forward(emb, kw, multimask=True)
        loss, parts = self.loss(low, iou, items, multimask=True)
        if cfg.train_single_mask and n_sparse >= 2:  # the mean of both, so every step's loss has one scale
            low1, iou1 = self.forward(emb, kw, multimask=False)
            single, _ = self.loss(low1, iou1, items, multimask=False)
            loss = 0.5 * (loss + single)
        return loss, parts


# --------------------------------------------------------------------------------------------------
# Per-epoch validation through the segmenter's own inference path
# --------------------------------------------------------------------------------------------------
def validation_miou(seg, dataset: Sequence[Sample], images: Sequence[_Image], items: Sequence[tuple[int, int]],
                    embed: Callable[[int], object], *, chunk: int = 16) -> dict:
    """1-click mIoU of ``seg`` on instance ``items``: the top-scored candidate and the best of the candidates.

    The click is :func:`graspseg.eval.first_click` (as in :func:`graspseg.eval.evaluate_dataset`, whose
    ``mean_iou_1click_top`` / ``mean_iou_1click_best`` this reproduces); ``embed(i)`` gives the image embedding
    of sample ``i``. Prompts of one image are decoded ``chunk`` at a time.

    Returns
    -------
    dict with ``n_instances``, ``miou_1click_top`` and ``miou_1click_best``.
    """
    from ..segment.types import Prompt

    by_image: dict[int, list[int]] = {}
    for i, k in items:
        by_image.setdefault(i, []).append(k)
    top, best = [], []
    for i, ks in sorted(by_image.items()):
        seg.set_embeddings(dataset[i].frame, embed(i))
        gts = [images[i].mask(k) for k in ks]
        for j in range(0, len(gts), chunk):  # bounded memory: (chunk, 3, H, W) full-resolution logits at a time
            part = gts[j:j + chunk]
            for gt, ms in zip(part, seg.predict_batch([Prompt.from_point(*first_click(gt)) for gt in part]),
                              strict=True):
                ious = [mask_iou(m, gt) for m in ms.masks]
                top.append(ious[int(np.argmax(ms.scores))])
                best.append(max(ious))
    return {"n_instances": len(top), "miou_1click_top": float(np.mean(top)) if top else 0.0,
            "miou_1click_best": float(np.mean(best)) if best else 0.0}


# --------------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------------
def save_tuned_checkpoint(model, base_dir: Path, out_dir: Path) -> list[str]:
    """Write ``model`` as a checkpoint directory (``config.json``, ``model.safetensors``) plus the base's other files.

    Processor configs, tokenizer files, README and licence are copied from ``base_dir``; weights and
    ``config.json`` are the tuned model's. Returns the copied file names.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    copied = []
    for f in sorted(Path(base_dir).iterdir()):
        if (not f.is_file() or f.name in _NOT_COPIED_NAMES or f.name.endswith(_NOT_COPIED_SUFFIXES)
                or f.name.startswith(".")):
            continue
        from ..segment.backends.sam import BOUNDARY_CALIBRATION_FILE

        if f.name == BOUNDARY_CALIBRATION_FILE:  # the base's measurement is not the tuned model's
            continue
        shutil.copy2(f, out_dir / f.name)
        copied.append(f.name)
    return copied


# --------------------------------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------------------------------
#: The before/after table: (report key, summary key of :func:`graspseg.eval.evaluate_dataset`).
TABLE_ROWS: tuple[tuple[str, str], ...] = (
    ("miou_1click_top", "mean_iou_1click_top"), ("miou_1click_best_of_3", "mean_iou_1click_best"),
    ("miou_1click_whole", "mean_iou_1click"), ("miou_box", "mean_iou_box"),
    ("boundary_f_davis", "mean_boundary_f_davis"), ("boundary_f_2px", "mean_boundary_f_2px"),
    ("boundary_iou", "mean_boundary_iou"), ("noc85", "noc85"), ("noc90", "noc90"), ("failures90", "failures90"),
)


def _subset(dataset: Sequence[Sample], indices: Sequence[int]) -> Sequence[Sample]:
    sub = getattr(dataset, "subset", None)
    return sub(indices) if callable(sub) else [dataset[i] for i in indices]


def finetune(dataset: Sequence[Sample], base: str | Path, out_dir: str | Path,
             config: FinetuneConfig | None = None, *, embedding_cache: str | Path | None = None,
             progress: ProgressFn | None = None, data: str = "") -> FinetuneResult:
    """Fine-tune the SAM-family checkpoint ``base`` on ``dataset`` and write the tuned checkpoint to ``out_dir``.

    Parameters
    ----------
    dataset : Dataset or sequence of Sample
        Annotated images (:func:`graspseg.eval.load_dataset`: COCO with depth, frame folders, episodes).
    base : path
        Checkpoint directory of a ``sam``, ``sam_hq`` or ``sam2`` model (``config.json``, ``model.safetensors``,
        processor configs).
    out_dir : path
        Where the tuned checkpoint, ``finetune_report.json`` and ``graspseg_boundary_error.json`` go (created).
    config : FinetuneConfig
    embedding_cache : path, optional
        Folder for the frozen encoder's embeddings as ``.safetensors`` (reused by later runs); ignored with LoRA.
    progress : callable, optional
        Called with dicts ``{"stage": "read"|"embed"|"train"|"validate"|"evaluate", ...}`` as the work proceeds.
    data : str
        Where the samples came from, for the report.

    Raises
    ------
    ConfigError
        Bad settings or an unusable base checkpoint (see :func:`check_base_checkpoint`).
    InputError
        No instances with at least ``min_instance_area_px`` pixels, or fewer than two usable images.
    MissingDependencyError
        ``lora_rank > 0`` without peft (extra ``finetune``).
    """
    import torch

    from ..core.io import atomic_write_json
    from ..segment import create_segmenter
    from .boundary_error import boundary_error_from_evaluation, write_checkpoint_boundary_error
    from .segmentation import evaluate_dataset, rim_offset_distribution

    cfg = config or FinetuneConfig()
    base_dir, model_type, backend = check_base_checkpoint(base)
    if cfg.lora_rank > 0:
        _require_peft()
    images = _read_images(dataset, cfg.min_instance_area_px, progress)
    instances = _instances(images)
    if not instances:
        raise InputError(
            f"the data set has no instances to train on: {len(images)} image(s), none with an instance of "
            f">= {cfg.min_instance_area_px} pixels; check the annotations (masks, polygons or RLE) and --data")
    used = sorted({i for i, _ in instances})
    tr_pos, va_pos = split_by_image(len(used), cfg.val_fraction, cfg.seed)
    train_images = [used[p] for p in tr_pos]
    val_images = [used[p] for p in va_pos]
    train_items = [it for it in instances if it[0] in set(train_images)]
    val_items = [it for it in instances if it[0] in set(val_images)]
    val_set = _subset(dataset, val_images)
    out_dir = Path(out_dir)

    t_start = time.perf_counter()
    with torch.random.fork_rng():  # seeded here, the caller's RNG state untouched
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        seg = create_segmenter(backend, model=str(base_dir), device=cfg.device, dtype="fp32")
        seg.boundary_calibration = None  # the base's measurement does not describe the model being trained
        model = seg.model
        n_params = sum(p.numel() for p in model.parameters())

        # 1. embeddings of the frozen base encoder, once per image (with LoRA only the held-out images', for
        #    the before-evaluation: training then runs the changing encoder itself)
        t0 = time.perf_counter()
        cache = EmbeddingCache(seg, None if (embedding_cache is None or cfg.lora_rank > 0) else Path(embedding_cache))
        cache.compute(dataset, used if cfg.lora_rank == 0 else val_images, progress)
        embed_s = time.perf_counter() - t0
        trainer = _Trainer(seg, dataset, images, cfg, rng)
        name_to_index = {images[i].name: i for i in val_images}

        def val_embed(i: int):
            if cfg.lora_rank == 0:
                return cache.one(i)
            with torch.inference_mode():
                return trainer.embeddings([(i, 0)], None, grad=False)

        def evaluation(embed: Callable[[int], object]):
            """evaluate_dataset on the held-out split, the image encoder's output served by ``embed``."""
            return evaluate_dataset(seg, val_set, max_clicks=cfg.eval_clicks, granularity="whole", box=True, worst=0,
                                    min_area_px=max(1, cfg.min_instance_area_px),
                                    set_frame=lambda s: seg.set_embeddings(s.frame, embed(name_to_index[s.name])))

        before_ev = evaluation(cache.one)
        before = before_ev.summary
        if progress is not None:
            progress({"stage": "evaluate", "which": "before", "miou_1click": before["mean_iou_1click_top"]})

        # 2. what trains
        for p in model.parameters():
            p.requires_grad_(False)
        trained = ["mask_decoder"] + (["prompt_encoder"] if cfg.train_prompt_encoder else [])
        for name in trained:
            for p in getattr(model, name).parameters():
                p.requires_grad_(True)
        n_lora = 0
        if cfg.lora_rank > 0:
            n_lora = add_lora(model, cfg.lora_rank, cfg.lora_alpha)
            model.to(seg.device)
            for n, p in model.vision_encoder.named_parameters():
                p.requires_grad_("lora_" in n)
            trained.append(f"vision_encoder LoRA r={cfg.lora_rank} (qkv)")
        params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        n_trainable = sum(p.numel() for p in params.values())
        opt = torch.optim.AdamW(params.values(), lr=cfg.lr, weight_decay=cfg.weight_decay)

        # 3. epochs with validation and early stopping (epoch 0 = the base model)
        val0 = validation_miou(seg, dataset, images, val_items, cache.one)
        best_iou, best_epoch = val0["miou_1click_top"], 0
        best_state = {n: p.detach().clone() for n, p in params.items()}
        curve = [{"epoch": 0, "train_loss": None, "val_miou_1click": best_iou, "seconds": 0.0}]
        step_losses: list[float] = []
        bad_epochs, stopped_early = 0, False
        n_steps = math.ceil(len(train_items) / cfg.batch_size)
        t_train = time.perf_counter()
        for epoch in range(1, cfg.epochs + 1):
            te = time.perf_counter()
            order = rng.permutation(len(train_items))
            losses = []
            model.train()
            for step in range(n_steps):
                items = [train_items[j] for j in order[step * cfg.batch_size:(step + 1) * cfg.batch_size]]
                loss, _parts = trainer.step_loss(items, cache)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.max_grad_norm)
                opt.step()
                losses.append(float(loss.detach()))
                step_losses.append(losses[-1])
                if progress is not None:
                    progress({"stage": "train", "epoch": epoch, "epochs": cfg.epochs, "step": step + 1,
                              "steps": n_steps, "loss": losses[-1]})
            model.eval()
            val = validation_miou(seg, dataset, images, val_items, val_embed)["miou_1click_top"]
            curve.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_miou_1click": val,
                          "seconds": round(time.perf_counter() - te, 3)})
            if progress is not None:
                progress({"stage": "validate", "epoch": epoch, "epochs": cfg.epochs, "val_miou_1click": val,
                          "best": max(best_iou, val)})
            if val > best_iou + cfg.min_delta:
                best_iou, best_epoch, bad_epochs = val, epoch, 0
                best_state = {n: p.detach().clone() for n, p in params.items()}
            else:
                bad_epochs += 1
                if bad_epochs >= cfg.patience > 0:
                    stopped_early = epoch < cfg.epochs
                    break
        train_s = time.perf_counter() - t_train
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(best_state[n])
        for p in model.parameters():
            p.requires_grad_(False)

        # 4. after-evaluation with the kept weights, then save
        after_ev = evaluation(val_embed)
        after = after_ev.summary
        if progress is not None:
            progress({"stage": "evaluate", "which": "after", "miou_1click": after["mean_iou_1click_top"]})
        n_merged = merge_lora(model) if cfg.lora_rank > 0 else 0
        copied = save_tuned_checkpoint(model, base_dir, out_dir)

    bounds = {}
    for which, ev in (("before", before_ev), ("after", after_ev)):
        try:
            bounds[which] = boundary_error_from_evaluation(ev)
        except InputError as e:  # no held-out mask found its object: no boundary error to speak of
            bounds[which] = {"boundary_error_px": None, "distribution": {}, "why": str(e),
                             "distribution_all": rim_offset_distribution(list(ev.rim_offsets_px))}
    reference_side = float(np.median([max(images[i].height, images[i].width) for i in val_images]))
    written = None
    if bounds["after"]["boundary_error_px"] is not None:
        written = write_checkpoint_boundary_error(bounds["after"], out_dir, reference_long_side_px=reference_side,
                                                  data=data)
    else:
        log.warning("finetune: no boundary error written: %s", bounds["after"]["why"])

    def table_row(summary: dict, bound: dict) -> dict:
        row = {key: summary.get(src) for key, src in TABLE_ROWS}
        d = bound.get("distribution") or {}
        return row | {"boundary_error_median_px": d.get("abs_median_px"),
                      "boundary_error_p90_px": bound.get("boundary_error_px")}

    before_row, after_row = table_row(before, bounds["before"]), table_row(after, bounds["after"])
    report = {
        "schema_version": SCHEMA_VERSION,
        "units": {"distance": "px", "time": "s", "iou": "fraction"},
        "base": str(base_dir), "model_type": model_type, "backend": backend, "data": data,
        "config": asdict(cfg),
        "device": str(seg.device),
        "dataset": {
            "images": len(images), "images_with_instances": len(used), "instances": len(instances),
            "train": {"images": len(train_images), "instances": len(train_items)},
            "validation": {"images": len(val_images), "instances": len(val_items),
                           "names": [images[i].name for i in val_images]},
            "image_sizes_px": sorted({f"{images[i].width}x{images[i].height}" for i in used}),
        },
        "trained": {"modules": trained, "parameters": int(n_trainable), "model_parameters": int(n_params),
                    "lora_parameters": int(n_lora), "lora_merged_layers": int(n_merged)},
        "embeddings": ({"cached": True, "computed": cache.computed, "reused_from_disk": cache.hits,
                        "on_disk": None if cache.cache_dir is None else _relative(cache.cache_dir, out_dir)}
                       if cfg.lora_rank == 0 else
                       {"cached": False, "why": "LoRA changes the image encoder every step; embeddings are recomputed "
                        "(the base embeddings were computed once for the before-evaluation only)"}),
        "training": {"epochs_run": len(curve) - 1, "best_epoch": best_epoch, "stopped_early": stopped_early,
                     "kept": "base weights (no epoch improved validation mIoU)" if best_epoch == 0 else
                     f"weights of epoch {best_epoch}",
                     "selection": "1-click mIoU of the top-scored candidate on the held-out split",
                     "steps": len(step_losses), "curve": curve},
        "evaluation": {
            "split": "validation (held out by image)",
            "protocol": "graspseg.eval.evaluate_dataset (as graspseg eval segment): first click at the interior point "
                        "farthest from the boundary, corrective clicks up to eval_clicks (stopping at IoU 0.90); "
                        "box = tight true box; boundary error = p90 of |rim offset| of the 1-click masks with "
                        "IoU >= 0.5",
            "before": before, "after": after,
            "boundary_error": {"before": bounds["before"], "after": bounds["after"]},
            "per_object": {"before": before_ev.rows, "after": after_ev.rows},
            "table": {"before": before_row, "after": after_row,
                      "change": {k: (None if before_row[k] is None or after_row[k] is None
                                     else after_row[k] - before_row[k]) for k in before_row}},
        },
        "boundary_error_file": None if written is None else written.name,
        "boundary_error_written": None if written is None else
        {"p90_px": bounds["after"]["boundary_error_px"], "reference_long_side_px": reference_side},
        "copied_from_base": copied,
        "timings_s": {"embeddings": round(embed_s, 3), "training": round(train_s, 3),
                      "total": round(time.perf_counter() - t_start, 3)},
    }
    atomic_write_json(out_dir / REPORT_FILE, report)
    log.info("finetune: 1-click mIoU (top-scored) %.3f -> %.3f on %d held-out instances; wrote %s",
             before["mean_iou_1click_top"], after["mean_iou_1click_top"], after["objects"], out_dir)
    return FinetuneResult(out_dir, report, tuple(step_losses))
