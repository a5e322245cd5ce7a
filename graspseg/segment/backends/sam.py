"""SAM-family segmenters through Hugging Face transformers: SAM / SAM-HQ, SAM 2 / 2.1, EdgeTAM, SAM 3 tracker.

One class, :class:`HFSamSegmenter`, runs every model whose prompt encoder and mask decoder follow SAM:

=============  ===============================================  ====================================
backend        checkpoint ``model_type``                        image into the encoder
=============  ===============================================  ====================================
``sam``        ``sam``, ``sam_hq``                              longest side resized to 1024, padded
``sam2``       ``sam2``, ``sam2_video``, ``sam3_tracker(_video)``  stretched to 1024×1024 (1008 for SAM 3)
``edgetam``    ``edgetam``, ``edgetam_video``                   stretched to 1024×1024
=============  ===============================================  ====================================

``set_frame`` runs the image encoder once and caches the embedding; every ``predict`` runs only the
prompt encoder and mask decoder on it (``predict_batch`` runs many prompts in one decoder call).
The three multimask outputs are ordered by area and labelled part / whole / group; their scores are
the model's predicted IoU (transformers returns them unsorted, in token order). Soft logits at full
image resolution are kept for the boundary-error estimate, and the low-resolution logits of every
returned mask are remembered so that feeding a returned mask back as ``Prompt.mask`` (iterative
clicking) gives the decoder its own logits, as SAM's predictor does.

Pixel preprocessing and coordinate mapping are done here in torch (transformers' SAM 2 image
processor needs torchvision, which this project does not use); tests check both against
transformers' own processors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...core.errors import ConfigError, PromptError, SegmentationError
from ...core.frame import RGBDFrame
from ..base import text_prompt_error
from ..types import MaskSet, Prompt
from .hf_loading import (
    ImageNorm,
    check_model_argument,
    check_model_type,
    load_pretrained,
    option_flag,
    option_number,
    read_config,
    read_json_if_present,
    require_torch_transformers,
    resolve_checkpoint,
    resolve_device,
    resolve_dtype,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelFamily:
    """How one transformers model type is run."""

    model_class: str  # transformers class name
    letterbox: bool  # True: resize longest side + pad (SAM 1); False: stretch to a square (SAM 2 family)
    hq: bool = False  # SAM-HQ passes the encoder's intermediate embeddings to the decoder


FAMILIES: dict[str, ModelFamily] = {
    "sam": ModelFamily("SamModel", letterbox=True),
    "sam_hq": ModelFamily("SamHQModel", letterbox=True, hq=True),
    "sam2": ModelFamily("Sam2Model", letterbox=False),
    "sam2_video": ModelFamily("Sam2Model", letterbox=False),
    "sam3_tracker": ModelFamily("Sam3TrackerModel", letterbox=False),
    "sam3_tracker_video": ModelFamily("Sam3TrackerModel", letterbox=False),
    "edgetam": ModelFamily("EdgeTamModel", letterbox=False),
    "edgetam_video": ModelFamily("EdgeTamModel", letterbox=False),
}

#: Which model types each registered backend name accepts.
BACKEND_MODEL_TYPES: dict[str, tuple[str, ...]] = {
    "sam": ("sam", "sam_hq"),
    "sam2": ("sam2", "sam2_video", "sam3_tracker", "sam3_tracker_video"),
    "edgetam": ("edgetam", "edgetam_video"),
}

GRANULARITY_BY_AREA: tuple[str, ...] = ("part", "whole", "group")


# --------------------------------------------------------------------------------------------------
# Geometry of the model's input frame
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InputGeometry:
    """Where an H×W image lands in the model's square S×S input.

    ``letterbox``: resized so the longest side is S (``int(side * S / max(H, W) + 0.5)``, as SAM's
    processor) and padded at the bottom/right; otherwise stretched to S×S.
    """

    height: int
    width: int
    input_size: int
    letterbox: bool

    @property
    def resized_hw(self) -> tuple[int, int]:
        if not self.letterbox:
            return self.input_size, self.input_size
        scale = self.input_size / max(self.height, self.width)
        return int(self.height * scale + 0.5), int(self.width * scale + 0.5)

    @property
    def scale_uv(self) -> tuple[float, float]:
        """Multipliers taking pixel (u, v) of the image to the model's input frame."""
        rh, rw = self.resized_hw
        return rw / self.width, rh / self.height

    def to_input_uv(self, uv: np.ndarray) -> np.ndarray:
        """(..., 2) pixel (u, v) → (..., 2) float32 coordinates in the model's input frame."""
        su, sv = self.scale_uv
        out = np.asarray(uv, dtype=np.float64).copy()
        out[..., 0] *= su
        out[..., 1] *= sv
        return out.astype(np.float32)

    def to_input_box(self, box_xyxy: np.ndarray) -> np.ndarray:
        """(..., 4) pixel boxes → (..., 4) float32 boxes in the model's input frame."""
        b = np.asarray(box_xyxy, dtype=np.float64)
        return self.to_input_uv(b.reshape(*b.shape[:-1], 2, 2)).reshape(b.shape).astype(np.float32)


def model_pixels(color: np.ndarray, geom: InputGeometry, norm: ImageNorm, device, dtype):
    """(H, W, 3) uint8 RGB → (1, 3, S, S) normalised pixels as the reference processors make them.

    Resized in 8-bit steps (bilinear, antialiased) to ``geom.resized_hw``, normalised with ``norm``, and
    padded at the bottom/right to S×S when ``geom.letterbox``; returned on ``device`` in ``dtype``.
    """
    import torch
    import torch.nn.functional as F

    h, w = color.shape[:2]
    rh, rw = geom.resized_hw
    x = torch.from_numpy(np.array(color, dtype=np.uint8, copy=True)).to(device).permute(2, 0, 1)[None].float()
    if (rh, rw) != (h, w):
        x = F.interpolate(x, size=(rh, rw), mode="bilinear", align_corners=False, antialias=True)
        x = x.clamp_(0, 255).round_()  # the reference processors resize 8-bit images
    mean = torch.tensor(norm.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std = torch.tensor(norm.std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    x = (x * norm.rescale - mean) / std
    size = geom.input_size
    if (rh, rw) != (size, size):
        x = F.pad(x, (0, size - rw, 0, size - rh))
    return x.to(dtype)


# --------------------------------------------------------------------------------------------------
# Small pure helpers (torch passed in to keep the module importable without it)
# --------------------------------------------------------------------------------------------------
def stability_scores(logits, threshold: float = 0.0, offset: float = 1.0):
    """SAM's stability score: IoU of the mask at ``threshold + offset`` vs at ``threshold - offset``.

    ``logits`` is a torch tensor or numpy array (..., H, W); returns (...,) in [0, 1] (1 for two empty masks).
    """
    if isinstance(logits, np.ndarray):
        hi = (logits > threshold + offset).reshape(*logits.shape[:-2], -1).sum(-1)
        lo = (logits > threshold - offset).reshape(*logits.shape[:-2], -1).sum(-1)
        return np.where(lo > 0, hi / np.maximum(lo, 1), 1.0)
    hi = (logits > threshold + offset).flatten(-2).sum(-1).float()
    lo = (logits > threshold - offset).flatten(-2).sum(-1).float()
    return (hi / lo.clamp(min=1)).masked_fill(lo == 0, 1.0)


def upsample_to_image(low_res, geom: InputGeometry):
    """(..., h, w) low-resolution torch logits → (..., H, W) float32 logits at the image resolution of ``geom``.

    Letterboxed (SAM 1): up to the padded S×S input, crop the resized image, resize to H×W (transformers'
    ``SamImageProcessor.post_process_masks``); stretched (SAM 2 family): straight to H×W.
    """
    import torch.nn.functional as F

    lead = low_res.shape[:-2]
    x = low_res.reshape(-1, 1, *low_res.shape[-2:]).float()
    if geom.letterbox:
        rh, rw = geom.resized_hw
        x = F.interpolate(x, size=(geom.input_size, geom.input_size), mode="bilinear", align_corners=False)
        x = x[..., :rh, :rw]
    x = F.interpolate(x, size=(geom.height, geom.width), mode="bilinear", align_corners=False)
    return x.reshape(*lead, geom.height, geom.width)


# --------------------------------------------------------------------------------------------------
# Measured boundary error of a (fine-tuned) checkpoint
# --------------------------------------------------------------------------------------------------
#: File in a checkpoint directory with the boundary error measured on held-out ground truth
#: (written by ``graspseg finetune``; see docs/finetune.md).
BOUNDARY_CALIBRATION_FILE = "graspseg_boundary_error.json"


def read_boundary_calibration(path: Path) -> dict | None:
    """The checkpoint's measured boundary error (``graspseg_boundary_error.json``), or None when it has none.

    The file holds ``p90_px`` (the 90th percentile of the rim distance to the true outline, pixels) measured
    on images whose longest side was ``reference_long_side_px``. Raises :class:`ConfigError` when the file
    is there but unusable.
    """
    doc = read_json_if_present(Path(path), BOUNDARY_CALIBRATION_FILE)
    if not doc:
        return None
    where = Path(path) / BOUNDARY_CALIBRATION_FILE
    try:
        p90 = float(doc["p90_px"])
        side = float(doc["reference_long_side_px"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"'{where}' needs numbers p90_px and reference_long_side_px; got keys {sorted(doc)}; "
                          "rerun graspseg finetune or delete the file") from None
    if not (np.isfinite(p90) and p90 >= 0 and np.isfinite(side) and side > 0):
        raise ConfigError(f"'{where}': p90_px={p90!r} must be >= 0 and reference_long_side_px={side!r} > 0 "
                          "(pixels); rerun graspseg finetune or delete the file")
    return {**doc, "p90_px": p90, "reference_long_side_px": side}


def calibrated_error_px(calibration: dict, height: int, width: int) -> float:
    """The measured p90 boundary error scaled to an H×W frame, pixels.

    The model sees every image at the same input size, so its rim error in image pixels grows with the
    image: the p90 is scaled by ``max(H, W) / reference_long_side_px``.
    """
    return float(calibration["p90_px"]) * max(height, width) / float(calibration["reference_long_side_px"])


class HFSamSegmenter:
    """A SAM-family model from transformers behind the :class:`~graspseg.segment.base.Segmenter` protocol.

    Parameters
    ----------
    model : str or path
        Checkpoint directory (``config.json``, ``model.safetensors``, processor configs) or a Hugging Face
        repository id already in the local cache (e.g. ``facebook/sam2.1-hiera-tiny``).
    backend : str
        Registered name (``sam``, ``sam2``, ``edgetam``); decides which model types are accepted.
    device : str
        ``auto`` (CUDA, MPS, CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
    dtype : str
        ``fp32``, ``bf16`` or ``fp16`` (GPU only).
    compile : bool
        Wrap the image encoder in ``torch.compile`` (pays off on GPUs over many frames).
    multimask : bool or "auto"
        True: always the three candidates; ``"auto"``: a single mask when the prompt is unambiguous
        (several points, or points with a box), as SAM's authors recommend.
    mask_threshold : float
        Logit threshold of the binary masks.
    mask_prompt_logit : float
        Magnitude of the logits a binary ``Prompt.mask`` is turned into when it is not a mask this
        segmenter returned (those reuse their own low-resolution logits).
    allow_download : bool
        Fetch a repository id missing from the cache (ignored when ``HF_HUB_OFFLINE`` is set).
    automask : dict
        Defaults for :meth:`segment_all` (see :func:`graspseg.segment.backends.automask.generate_masks`).
    """

    accepts_text = False

    def __init__(self, model: str | Path, *, backend: str = "sam", device: str = "auto", dtype: str = "fp32",
                 compile: bool = False, multimask: bool | str = True, mask_threshold: float = 0.0,
                 mask_prompt_logit: float = 10.0, allow_download: bool = False, automask: dict | None = None) -> None:
        check_model_argument(model, backend)
        mask_threshold = option_number(mask_threshold, "mask_threshold", backend)
        mask_prompt_logit = option_number(mask_prompt_logit, "mask_prompt_logit", backend, low=0.0, low_open=True)
        compile, allow_download = (option_flag(v, n, backend) for v, n in ((compile, "compile"),
                                                                           (allow_download, "allow_download")))
        if automask is not None and not isinstance(automask, dict):
            raise ConfigError(f"{backend}: option automask is {automask!r}; expected a mapping of segment_all options")
        require_torch_transformers(f"segmenter backend '{backend}'")
        import torch
        import transformers

        if backend not in BACKEND_MODEL_TYPES:
            raise ConfigError(f"unknown SAM backend '{backend}'; use one of {', '.join(BACKEND_MODEL_TYPES)}")
        if multimask not in (True, False, "auto"):
            raise ConfigError(f"multimask must be True, False or 'auto', got {multimask!r}")
        self.name = backend
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.checkpoint = resolve_checkpoint(model, allow_download=allow_download)
        config = read_config(self.checkpoint)
        self.model_type = check_model_type(config, BACKEND_MODEL_TYPES[backend], backend, self.checkpoint)
        self.family = FAMILIES[self.model_type]
        model_class = getattr(transformers, self.family.model_class)
        self.model = load_pretrained(model_class, self.checkpoint, device=self.device, dtype=self.dtype, backend=backend)
        self.input_size = int(self.model.config.prompt_encoder_config.image_size)
        pe = self.model.config.prompt_encoder_config
        self.mask_input_size = 4 * (int(pe.image_size) // int(pe.patch_size))
        self.norm = ImageNorm.from_dir(self.checkpoint)
        self.multimask = multimask
        self.mask_threshold = float(mask_threshold)
        self.mask_prompt_logit = float(mask_prompt_logit)
        self.automask_options = dict(automask or {})
        #: Boundary error measured on held-out data (``graspseg_boundary_error.json``), or None.
        self.boundary_calibration = read_boundary_calibration(self.checkpoint)
        if compile:
            self.model.vision_encoder = torch.compile(self.model.vision_encoder)
        self.frame: RGBDFrame | None = None
        self.geometry: InputGeometry | None = None
        self._embeddings = None
        self._returned: list[tuple[np.ndarray, np.ndarray]] = []  # (full-res mask, low-res logits) of recent outputs
        #: Times of the last calls, seconds: ``encode``, ``decode`` (model only), ``predict`` (whole call).
        self.timings: dict[str, float] = {}
        self.encoder_calls = 0

    def __repr__(self) -> str:
        return f"HFSamSegmenter({self.name!r}, {self.model_type}, {self.checkpoint}, device={self.device}, dtype={self.dtype})"

    # ---------------------------------------------------------------------------------------------
    # Frame / encoder
    # ---------------------------------------------------------------------------------------------
    def preprocess(self, color: np.ndarray):
        """(H, W, 3) uint8 RGB → (1, 3, S, S) normalised pixel tensor on the model's device and dtype."""
        geom = InputGeometry(*color.shape[:2], self.input_size, self.family.letterbox)
        return model_pixels(color, geom, self.norm, self.device, self.dtype), geom

    def set_frame(self, frame: RGBDFrame) -> None:
        """Run the image encoder on ``frame.color`` once; later prompts reuse the embedding."""
        import torch

        if frame is self.frame and self._embeddings is not None:
            return
        t0 = time.perf_counter()
        pixels, geom = self.preprocess(frame.color)
        with torch.inference_mode():
            emb = self.model.get_image_embeddings(pixels)
        self.encoder_calls += 1
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.timings["encode"] = time.perf_counter() - t0
        self._embeddings = emb
        self.frame = frame
        self.geometry = geom
        self._returned = []

    def set_embeddings(self, frame: RGBDFrame, embeddings) -> None:
        """Use precomputed image ``embeddings`` (as returned by the model's ``get_image_embeddings``) for ``frame``."""
        self.frame = frame
        self.geometry = InputGeometry(frame.height, frame.width, self.input_size, self.family.letterbox)
        self._embeddings = embeddings
        self._returned = []

    @property
    def image_embeddings(self):
        """The cached encoder output of the current frame (tensor, tuple or list, as transformers returns it)."""
        return self._embeddings

    # ---------------------------------------------------------------------------------------------
    # Prompts
    # ---------------------------------------------------------------------------------------------
    def _require_frame(self) -> None:
        if self._embeddings is None or self.frame is None:
            raise SegmentationError(f"{self.name}: no frame set; call set_frame(frame) before predict(prompt)")

    def _check_prompt(self, prompt: Prompt) -> None:
        if not isinstance(prompt, Prompt):
            raise PromptError(f"predict takes a graspseg Prompt, got {type(prompt).__name__}; build one with Prompt(...)")
        if prompt.text is not None:
            raise text_prompt_error(self.name)
        prompt.validate_for(self.frame.width, self.frame.height)

    def _use_multimask(self, prompt: Prompt) -> bool:
        if self.multimask == "auto":
            n_sparse = len(prompt.points_uv) + (2 if prompt.box_xyxy is not None else 0)
            return n_sparse < 2
        return bool(self.multimask)

    def mask_to_low_res(self, mask: np.ndarray) -> np.ndarray:
        """The low-resolution logits the decoder takes for ``mask`` (H, W) bool.

        A mask returned by this segmenter on this frame gives back its own logits; any other mask is
        mapped into the model's input frame and scaled to ±``mask_prompt_logit``.
        """
        import torch
        import torch.nn.functional as F

        for full, low in reversed(self._returned):
            if full.shape == mask.shape and np.array_equal(full, mask):
                return low
        geom = self.geometry
        m = self.mask_input_size
        rh, rw = geom.resized_hw
        th, tw = max(1, round(rh * m / self.input_size)), max(1, round(rw * m / self.input_size))
        x = torch.from_numpy(np.asarray(mask, dtype=np.float32).copy())[None, None]
        x = F.interpolate(x, size=(th, tw), mode="bilinear", align_corners=False, antialias=True)
        x = F.pad(x, (0, m - tw, 0, m - th))
        return ((x[0, 0] * 2.0 - 1.0) * self.mask_prompt_logit).numpy()

    def _signature(self, prompt: Prompt) -> tuple:
        return (len(prompt.points_uv), prompt.box_xyxy is not None, prompt.mask is not None, self._use_multimask(prompt))

    def model_inputs(self, prompts: Sequence[Prompt]) -> dict:
        """The transformers keyword arguments for one decoder call on ``prompts`` (same signature each).

        Points: ``input_points`` (1, P, N, 2) and ``input_labels`` (1, P, N) in the model's input frame;
        boxes: ``input_boxes`` (1, P, 4); masks: ``input_masks`` (P, 1, m, m) low-resolution logits. A prompt
        with only a mask gets SAM's "not a point" placeholder (0, 0) with label -1.
        """
        import torch

        geom = self.geometry
        p0 = prompts[0]
        kw: dict = {}
        if len(p0.points_uv):
            pts = np.stack([geom.to_input_uv(p.points_uv) for p in prompts])[None]
            labels = np.stack([p.point_labels.astype(np.int64) for p in prompts])[None]
            kw["input_points"] = torch.from_numpy(pts).to(self.device, self.dtype)
            kw["input_labels"] = torch.from_numpy(labels).to(self.device)
        if p0.box_xyxy is not None:
            boxes = np.stack([geom.to_input_box(p.box_xyxy) for p in prompts])[None]
            kw["input_boxes"] = torch.from_numpy(boxes).to(self.device, self.dtype)
        if "input_points" not in kw and "input_boxes" not in kw:
            kw["input_points"] = torch.zeros((1, len(prompts), 1, 2), device=self.device, dtype=self.dtype)
            kw["input_labels"] = -torch.ones((1, len(prompts), 1), device=self.device, dtype=torch.int64)
        if p0.mask is not None:
            low = np.stack([self.mask_to_low_res(p.mask) for p in prompts])[:, None]
            kw["input_masks"] = torch.from_numpy(low).to(self.device, self.dtype)
        return kw

    def decode(self, **inputs):
        """One raw decoder call on the cached embedding: the transformers model output."""
        import torch

        self._require_frame()
        kw = dict(inputs)
        if self.family.hq:
            emb, inter = self._embeddings
            kw["image_embeddings"] = emb
            kw["intermediate_embeddings"] = inter
        else:
            kw["image_embeddings"] = self._embeddings
        with torch.inference_mode():
            return self.model(**kw)

    def upsample_logits(self, low_res):
        """(..., h, w) low-resolution logits → (..., H, W) float32 logits at the frame's resolution.

        SAM 1: up to the padded S×S input, crop the resized image, resize to H×W (transformers'
        ``SamImageProcessor.post_process_masks``); SAM 2 family: straight to H×W.
        """
        return upsample_to_image(low_res, self.geometry)

    def predict(self, prompt: Prompt) -> MaskSet:
        """Candidate masks for one prompt (three, ordered part → whole → group, unless single-mask)."""
        return self.predict_batch([prompt])[0]

    def predict_batch(self, prompts: Sequence[Prompt]) -> list[MaskSet]:
        """Masks for several prompts on the current frame; prompts of the same kind share one decoder call."""
        self._require_frame()
        t0 = time.perf_counter()
        prompts = list(prompts)
        for p in prompts:
            self._check_prompt(p)
        groups: dict[tuple, list[int]] = {}
        for i, p in enumerate(prompts):
            groups.setdefault(self._signature(p), []).append(i)
        results: list[MaskSet | None] = [None] * len(prompts)
        decode_s = 0.0
        for sig, idx in groups.items():
            group = [prompts[i] for i in idx]
            inputs = self.model_inputs(group)
            td = time.perf_counter()
            out = self.decode(**inputs, multimask_output=sig[3])
            decode_s += time.perf_counter() - td
            for j, ms in enumerate(self._to_mask_sets(out, group)):
                results[idx[j]] = ms
        self.timings["decode"] = decode_s
        self.timings["predict"] = time.perf_counter() - t0
        return results  # type: ignore[return-value]

    def _to_mask_sets(self, out, prompts: Sequence[Prompt]) -> list[MaskSet]:
        import torch

        low = out.pred_masks[0].float()  # (P, K, h, w)
        iou = out.iou_scores[0].float()  # (P, K)
        obj = getattr(out, "object_score_logits", None)
        with torch.inference_mode():
            full = self.upsample_logits(low)  # (P, K, H, W)
            inside = full > self.mask_threshold
            areas = inside.flatten(-2).sum(-1)  # (P, K)
            stab = stability_scores(full, self.mask_threshold)
        full_np = full.cpu().numpy()
        inside_np = inside.cpu().numpy()
        low_np = low.cpu().numpy()
        iou_np = iou.cpu().numpy()
        areas_np = areas.cpu().numpy()
        stab_np = stab.cpu().numpy()
        obj_np = None if obj is None else torch.sigmoid(obj[0].float().reshape(len(prompts), -1)[:, 0]).cpu().numpy()
        sets = []
        for i, prompt in enumerate(prompts):
            k = low_np.shape[1]
            if k == 1:
                order = np.array([0])
                gran: tuple[str, ...] = ("whole",)
            else:
                order = np.argsort(areas_np[i], kind="stable")
                gran = GRANULARITY_BY_AREA[:k] if k <= 3 else tuple(GRANULARITY_BY_AREA[min(j, 2)] for j in range(k))
            details = {
                "predicted_iou": iou_np[i, order].astype(np.float32),
                "stability": stab_np[i, order].astype(np.float32),
                "multimask_index": order.astype(np.int64),
                "low_res_logits": low_np[i, order].astype(np.float32),
                "model_type": self.model_type,
            }
            if obj_np is not None:
                details["object_score"] = np.full(k, obj_np[i], np.float32)
            if self.boundary_calibration is not None:
                details["calibrated_boundary_error_px"] = calibrated_error_px(
                    self.boundary_calibration, self.geometry.height, self.geometry.width)
            ms = MaskSet(inside_np[i, order], np.clip(iou_np[i, order], 0.0, 1.0), gran,
                         full_np[i, order], self.name, prompt, details)
            for j in range(k):
                self._returned.append((ms.masks[j], details["low_res_logits"][j]))
            sets.append(ms)
        del self._returned[:-64]
        return sets

    # ---------------------------------------------------------------------------------------------
    # Everything
    # ---------------------------------------------------------------------------------------------
    def segment_all(self, frame: RGBDFrame | None = None, **options) -> MaskSet:
        """Every object: a point grid, quality/stability filtering and NMS (SAM's automatic mask generator)."""
        from .automask import generate_masks

        if frame is not None:
            self.set_frame(frame)
        self._require_frame()
        return generate_masks(self, **{**self.automask_options, **options})


def _build(model, backend: str, options: dict) -> HFSamSegmenter:
    from ...core.registry import check_arguments

    options = {**options, "backend": backend}
    check_arguments(HFSamSegmenter, (model,), options, what=f"segmenter '{backend}'")
    return HFSamSegmenter(model, **options)


def create_sam(model: str | Path, **options) -> HFSamSegmenter:
    """Factory for the ``sam`` backend (SAM ViT-B/L/H, SAM-HQ)."""
    return _build(model, "sam", options)


def create_sam2(model: str | Path, **options) -> HFSamSegmenter:
    """Factory for the ``sam2`` backend (SAM 2 / 2.1 Hiera tiny…large, SAM 3 tracker)."""
    return _build(model, "sam2", options)


def create_edgetam(model: str | Path, **options) -> HFSamSegmenter:
    """Factory for the ``edgetam`` backend (EdgeTAM; its RepViT backbone needs the ``timm`` package).

    transformers builds EdgeTAM's image encoder through ``TimmWrapperModel``, so ``timm`` must import, and
    timm imports ``torchvision`` at import time (``timm.layers`` uses ``torchvision.ops``). Where no
    torchvision matches the installed torch (e.g. torch CPU builds newer than PyPI's torchvision), EdgeTAM
    cannot be built; the error says so.
    """
    import importlib.util

    from ...core.errors import MissingDependencyError

    for package in ("timm", "torchvision"):
        if importlib.util.find_spec(package) is None:
            raise MissingDependencyError(
                package, "edgetam",
                "segmenter 'edgetam': transformers builds its RepViT image encoder as a timm model, and timm "
                "imports torchvision; install a torchvision build matching your torch, then timm")
    return _build(model, "edgetam", options)
