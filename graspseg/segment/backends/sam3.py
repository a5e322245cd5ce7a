"""SAM 3 text segmentation through transformers' ``Sam3Model`` (backend ``sam3``).

SAM 3 finds every instance of a phrase ("red mug") on an image: a DETR-style detector conditioned on
the text, with one mask per query. This backend

* runs the image encoder once per frame (``set_frame``, ``Sam3Model.get_vision_features``) and answers
  every phrase from the cached features (``Sam3Model(vision_embeds=..., input_ids=...)``);
* tokenises with the checkpoint's CLIP tokenizer exactly as ``Sam3Processor`` does (padded to the
  text encoder's 32 positions);
* preprocesses pixels itself in torch (stretch to the model's square input, rescale, normalise) because
  transformers' ``Sam3ImageProcessor`` needs torchvision, which this project does not use;
* maps the outputs onto :class:`~graspseg.segment.types.MaskSet` as ``Sam3ImageProcessor.
  post_process_instance_segmentation`` does: score = sigmoid(query logit) × sigmoid(presence logit),
  instances above ``score_threshold``, masks = sigmoid(mask logits) resized bilinearly to the frame
  > ``mask_threshold``. Each instance is one ``whole`` candidate, best first; ``logits`` keep the soft
  masks at frame resolution as logit(p) − logit(mask_threshold) (> 0 inside) for the boundary-error estimate.

Clicks, boxes and mask prompts are not taken here (SAM 3's box exemplars need torchvision's
``roi_align``): use the ``sam2`` backend with a SAM 3 tracker checkpoint, or ``grounded``, for those.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np

from ...core.errors import ConfigError, PromptError, SegmentationError
from ...core.frame import RGBDFrame
from ..types import MaskSet, Prompt
from .hf_loading import (
    ImageNorm,
    check_model_argument,
    check_model_type,
    has_tokenizer_files,
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
from .sam import InputGeometry, model_pixels, stability_scores

log = logging.getLogger(__name__)

#: Checkpoint types the ``sam3`` backend runs (``sam3_video`` checkpoints carry the detector as ``detector_config``).
SAM3_MODEL_TYPES: tuple[str, ...] = ("sam3", "sam3_video")

#: Sam3ImageProcessor's pixel normalisation (used when the checkpoint's processor config gives none).
SAM3_NORM = ImageNorm(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def sam3_image_norm(path: Path) -> ImageNorm:
    """Pixel normalisation from ``preprocessor_config.json`` or ``processor_config.json`` (SAM 3 defaults)."""
    cfg = read_json_if_present(path, "preprocessor_config.json")
    if not cfg:
        cfg = read_json_if_present(path, "processor_config.json").get("image_processor", {})
    return ImageNorm(tuple(cfg.get("image_mean", SAM3_NORM.mean)), tuple(cfg.get("image_std", SAM3_NORM.std)),
                     float(cfg.get("rescale_factor", SAM3_NORM.rescale)))


class Sam3Segmenter:
    """SAM 3 promptable concept segmentation: a phrase in, one mask per instance out.

    Parameters
    ----------
    model : str or path
        SAM 3 checkpoint directory (``config.json``, ``model.safetensors``, tokenizer files) or a repository
        id already in the Hugging Face cache (``facebook/sam3``, gated).
    device : str
        ``auto`` (CUDA, MPS, CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
    dtype : str
        ``fp32``, ``bf16`` or ``fp16`` (GPU only).
    score_threshold : float
        Instances scoring at or below this (query × presence probability) are dropped (transformers' default 0.3).
    mask_threshold : float
        Probability above which a pixel is inside an instance (transformers' default 0.5).
    max_instances : int
        At most this many instances, best first.
    compile : bool
        Wrap the vision encoder in ``torch.compile``.
    allow_download : bool
        Fetch a repository id missing from the cache (ignored when ``HF_HUB_OFFLINE`` is set).
    """

    accepts_text = True

    def __init__(self, model: str | Path, *, device: str = "auto", dtype: str = "fp32", score_threshold: float = 0.3,
                 mask_threshold: float = 0.5, max_instances: int = 20, compile: bool = False,
                 allow_download: bool = False) -> None:
        require_torch_transformers("segmenter backend 'sam3'")
        import torch
        import transformers

        check_model_argument(model, "sam3")
        mask_threshold = option_number(mask_threshold, "mask_threshold", "sam3")
        score_threshold = option_number(score_threshold, "score_threshold", "sam3")
        max_instances = option_number(max_instances, "max_instances", "sam3", integer=True)
        compile, allow_download = (option_flag(v, n, "sam3") for v, n in ((compile, "compile"),
                                                                          (allow_download, "allow_download")))
        if not 0.0 < mask_threshold < 1.0:
            raise ConfigError(f"sam3: mask_threshold is a probability in (0, 1), got {mask_threshold}")
        if not 0.0 <= score_threshold < 1.0:
            raise ConfigError(f"sam3: score_threshold is a probability in [0, 1), got {score_threshold}")
        if max_instances < 1:
            raise ConfigError(f"sam3: max_instances must be >= 1, got {max_instances}")
        if getattr(transformers, "Sam3Model", None) is None:
            raise ConfigError(
                f"transformers {transformers.__version__} has no Sam3Model; SAM 3 needs transformers >= 5.0 "
                "(pip install -U 'graspseg[sam]')"
            )
        self.name = "sam3"
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.checkpoint = resolve_checkpoint(model, allow_download=allow_download)
        self.model_type = check_model_type(read_config(self.checkpoint), SAM3_MODEL_TYPES, "sam3", self.checkpoint)
        self.model = load_pretrained(transformers.Sam3Model, self.checkpoint, device=self.device, dtype=self.dtype,
                                     backend="sam3")
        try:
            if not has_tokenizer_files(self.checkpoint):
                raise OSError("no tokenizer.json, vocab.json + merges.txt or vocab.txt")
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(self.checkpoint), local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"SAM 3 checkpoint '{self.checkpoint}' has no usable tokenizer files ({exc}); download the whole "
                "repository (`hf download facebook/sam3 --local-dir <dir>`)"
            ) from exc
        self.input_size = int(self.model.config.vision_config.image_size)
        self.text_length = int(self.model.config.text_config.max_position_embeddings)
        self.norm = sam3_image_norm(self.checkpoint)
        self.score_threshold = float(score_threshold)
        self.mask_threshold = float(mask_threshold)
        self.max_instances = int(max_instances)
        if compile:
            self.model.vision_encoder = torch.compile(self.model.vision_encoder)
        self.frame: RGBDFrame | None = None
        self.geometry: InputGeometry | None = None
        self._vision = None
        self._text_cache: dict[str, object] = {}
        #: Times of the last calls, seconds: ``encode``, ``decode`` (model only), ``predict`` (whole call).
        self.timings: dict[str, float] = {}
        self.encoder_calls = 0

    def __repr__(self) -> str:
        return f"Sam3Segmenter({self.model_type}, {self.checkpoint}, device={self.device}, dtype={self.dtype})"

    # ---------------------------------------------------------------------------------------------
    def preprocess(self, color: np.ndarray):
        """(H, W, 3) uint8 RGB → (1, 3, S, S) normalised pixels (stretched to the model's square input)."""
        geom = InputGeometry(*color.shape[:2], self.input_size, letterbox=False)
        return model_pixels(color, geom, self.norm, self.device, self.dtype), geom

    def tokenize(self, text: str) -> dict:
        """``input_ids`` and ``attention_mask`` (1, 32) for ``text``, padded as ``Sam3Processor`` pads."""
        enc = self.tokenizer([text], return_tensors="pt", padding="max_length", max_length=self.text_length,
                             truncation=True)
        return {"input_ids": enc["input_ids"].to(self.device), "attention_mask": enc["attention_mask"].to(self.device)}

    def set_frame(self, frame: RGBDFrame) -> None:
        """Run the vision encoder on ``frame.color`` once; every phrase reuses the features."""
        import torch

        if frame is self.frame and self._vision is not None:
            return
        t0 = time.perf_counter()
        pixels, geom = self.preprocess(frame.color)
        with torch.inference_mode():
            vision = self.model.get_vision_features(pixel_values=pixels)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.encoder_calls += 1
        self.timings["encode"] = time.perf_counter() - t0
        self._vision = vision
        self.frame = frame
        self.geometry = geom

    @property
    def vision_features(self):
        """The cached ``Sam3VisionEncoderOutput`` of the current frame."""
        return self._vision

    def decode(self, text: str):
        """One raw ``Sam3Model`` call for ``text`` on the cached vision features (the transformers output)."""
        import torch

        if self._vision is None:
            raise SegmentationError("sam3: no frame set; call set_frame(frame) before predict(prompt)")
        tokens = self.tokenize(text)
        with torch.inference_mode():
            return self.model(vision_embeds=self._vision, **tokens)

    def _check_prompt(self, prompt: Prompt) -> None:
        if not isinstance(prompt, Prompt):
            raise PromptError(f"predict takes a graspseg Prompt, got {type(prompt).__name__}; build one with Prompt(...)")
        if prompt.text is None or len(prompt.points_uv) or prompt.box_xyxy is not None or prompt.mask is not None:
            raise PromptError(
                f"backend 'sam3' segments by text only, got a {prompt.kind} prompt; give Prompt(text='red mug'), "
                "or use backend 'sam2' (SAM 3 tracker checkpoint) or 'rgbd' for clicks, boxes and masks"
            )

    def predict(self, prompt: Prompt) -> MaskSet:
        """Every instance of ``prompt.text`` on the current frame: one ``whole`` mask each, best first."""
        import torch
        import torch.nn.functional as F

        if self._vision is None or self.frame is None:
            raise SegmentationError("sam3: no frame set; call set_frame(frame) before predict(prompt)")
        self._check_prompt(prompt)
        t0 = time.perf_counter()
        out = self.decode(prompt.text)
        self.timings["decode"] = time.perf_counter() - t0
        geom = self.geometry
        with torch.inference_mode():
            query = out.pred_logits[0].float().sigmoid()  # (Q,)
            presence = out.presence_logits[0].float().sigmoid().reshape(-1)[0] if out.presence_logits is not None \
                else torch.ones((), device=query.device)
            scores = query * presence
            keep = torch.nonzero(scores > self.score_threshold).reshape(-1)
            if len(keep) == 0:
                best = float(scores.max()) if len(scores) else 0.0
                raise SegmentationError(
                    f"sam3: no '{prompt.text}' found on this frame (best score {best:.3f} <= score_threshold "
                    f"{self.score_threshold}); rephrase the text, lower score_threshold, or click on the object"
                )
            keep = keep[torch.argsort(-scores[keep], stable=True)][:self.max_instances]
            # As transformers: probabilities resized bilinearly to the frame, then thresholded.
            probs = F.interpolate(out.pred_masks[0, keep].float().sigmoid()[None], size=(geom.height, geom.width),
                                  mode="bilinear", align_corners=False)[0]
            inside = probs > self.mask_threshold
            # Soft logits with 0 at the decision boundary: logit(p) - logit(mask_threshold).
            p = probs.clamp(1e-6, 1.0 - 1e-6)
            full = torch.log(p / (1.0 - p)) - math.log(self.mask_threshold / (1.0 - self.mask_threshold))
            stab = stability_scores(full, 0.0)
            boxes = out.pred_boxes[0, keep].float() * torch.tensor(
                [geom.width, geom.height, geom.width, geom.height], dtype=torch.float32, device=full.device)
        n = len(keep)
        details = {
            "box_xyxy": boxes.cpu().numpy().astype(np.float64),
            "query_score": query[keep].cpu().numpy().astype(np.float32),
            "presence_score": np.full(n, float(presence), np.float32),
            "stability": stab.cpu().numpy().astype(np.float32),
            "query_index": keep.cpu().numpy().astype(np.int64),
            "model_type": self.model_type,
        }
        self.timings["predict"] = time.perf_counter() - t0
        return MaskSet(inside.cpu().numpy(), scores[keep].cpu().numpy().astype(np.float32), ("whole",) * n,
                       full.cpu().numpy(), self.name, prompt, details)

    def segment_all(self, frame: RGBDFrame | None = None) -> MaskSet:
        """Not available: SAM 3 segments the instances of a phrase; there is no phrase here."""
        raise PromptError(
            "backend 'sam3' segments the instances of a phrase and has no segment-everything mode; call "
            "predict(Prompt(text='...')) per object class, or use backend 'sam2' or 'rgbd' for segment_all"
        )


def create_sam3(model: str | Path, **options) -> Sam3Segmenter:
    """Factory for the ``sam3`` backend (SAM 3 text → every instance's mask)."""
    from ...core.registry import check_arguments

    check_arguments(Sam3Segmenter, (model,), options, what="segmenter 'sam3'")
    return Sam3Segmenter(model, **options)
