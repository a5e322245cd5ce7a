"""Mask labelling with CLIP-family models through transformers: CLIP, SigLIP and SigLIP 2.

:class:`ClipLabeller` embeds one crop per mask (:func:`graspseg.segment.labelling.mask_crop`: square, with
context, background blurred or masked out) and phrases into the model's joint space, and scores them
with the model's own logit scale (and SigLIP's bias):

=============  ===================  ====================================  =====================================
``model_type`` transformers class   pixels                                text
=============  ===================  ====================================  =====================================
``clip``       ``CLIPModel``        S×S (``image_size``), bicubic          padded to the longest phrase
``siglip``     ``SiglipModel``      S×S (``image_size``), bicubic          padded to 64 tokens (as trained)
``siglip2``    ``Siglip2Model``     √N·p square of patches (NaFlex), bilinear  padded to 64 tokens
=============  ===================  ====================================  =====================================

Pixels are made here (PIL resize of the uint8 crop, then the checkpoint's rescale/mean/std from
``preprocessor_config.json``), exactly as transformers' image processors make them for a square image;
tests check both against those processors. Text is tokenised by the checkpoint's own tokenizer as its
processor does. Checkpoints load through :mod:`.hf_loading` (local directory or Hugging Face cache,
safetensors only, ``HF_HUB_OFFLINE`` respected). Phrase embeddings are cached; crops are embedded in
batches of ``batch_size``.

torch and transformers are imported inside functions only.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ...core.errors import ConfigError, MissingDependencyError, PromptError
from ..labelling import DEFAULT_MIN_MARGIN, CropOptions, MaskLabels, check_masks, mask_crop, parse_phrases
from .hf_loading import (
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

log = logging.getLogger(__name__)

#: model_type → (transformers class, scoring, default pixel mean, std, PIL resample filter).
FAMILIES: dict[str, tuple[str, str, tuple, tuple, int]] = {
    "clip": ("CLIPModel", "softmax", (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711), 3),
    "siglip": ("SiglipModel", "sigmoid", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 3),
    "siglip2": ("Siglip2Model", "sigmoid", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 2),
}
QUANTIZE: tuple[str, ...] = ("int8",)
DEFAULT_TEMPLATE = "a photo of a {}."


def load_tokenizer(path: Path):
    """The checkpoint's own tokenizer (``AutoTokenizer``), refusing a checkpoint without tokenizer files.

    transformers would otherwise build an empty tokenizer (every word unknown) without a word of warning.
    """
    import transformers

    fix = "download the whole repository (`hf download <repo> --local-dir <dir>`), tokenizer files included"
    if not has_tokenizer_files(path):
        raise ConfigError(
            f"labeller checkpoint '{path}' has no tokenizer files (tokenizer.json, vocab.json + merges.txt, spiece.model "
            f"or tokenizer.model), so phrases cannot be encoded; {fix}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except ImportError as exc:
        text = str(exc).lower()
        if "sentencepiece" in text or "protobuf" in text:
            raise MissingDependencyError("sentencepiece", "labels",
                                         f"the SentencePiece tokenizer of '{path}' (SigLIP)") from exc
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"labeller checkpoint '{path}' has no usable tokenizer ({exc}); {fix}") from exc


def _pixel_config(path: Path) -> dict:
    """``preprocessor_config.json``, or the ``image_processor`` part of ``processor_config.json``."""
    cfg = read_json_if_present(path, "preprocessor_config.json")
    return cfg or read_json_if_present(path, "processor_config.json").get("image_processor", {}) or {}


class ClipLabeller:
    """Label masks with a CLIP, SigLIP or SigLIP 2 checkpoint.

    Parameters
    ----------
    model : str or path
        Checkpoint directory (``config.json``, ``model.safetensors``, tokenizer files,
        ``preprocessor_config.json``), or a repository id already in the Hugging Face cache
        (e.g. ``openai/clip-vit-base-patch32``, ``google/siglip-base-patch16-224``).
    device : str
        ``auto`` (CUDA, MPS, CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
    dtype : str
        ``fp32``, ``bf16`` or ``fp16`` (GPU only).
    quantize : {"int8"} or None
        ``int8``: dynamic int8 quantisation of every linear layer (CPU, fp32 only): about 3× less CPU time on
        a CPU with VNNI; with random weights the embeddings keep a cosine >= 0.999 to fp32's (check on your data).
    template : str
        How a phrase becomes the text the model reads; ``{}`` is replaced by the phrase.
    context, background, blur_sigma, min_side_px
        The crop of each mask (:class:`~graspseg.segment.labelling.CropOptions`).
    batch_size : int
        Crops per forward pass.
    allow_download : bool
        Fetch a repository id missing from the cache (ignored when ``HF_HUB_OFFLINE`` is set).
    """

    name = "clip"

    def __init__(self, model: str | Path, *, device: str = "auto", dtype: str = "fp32", quantize: str | None = None,
                 template: str = DEFAULT_TEMPLATE, context: float = 0.2, background: str = "blur",
                 blur_sigma: float = 0.04, min_side_px: int = 16, batch_size: int = 16,
                 allow_download: bool = False, text_cache_size: int = 4096) -> None:
        check_model_argument(model, "labeller", "--labeller")
        self.crop = CropOptions(context, background, blur_sigma, min_side_px)
        self.batch_size = option_number(batch_size, "batch_size", "labeller", low=1, integer=True)
        self.text_cache_size = option_number(text_cache_size, "text_cache_size", "labeller", low=0, integer=True)
        allow_download = option_flag(allow_download, "allow_download", "labeller")
        if not isinstance(template, str) or template.count("{}") != 1:
            raise ConfigError(f"labeller template is {template!r}; it must contain '{{}}' once, where the phrase goes "
                              f"(default {DEFAULT_TEMPLATE!r}; '{{}}' alone uses the bare phrase)")
        if quantize is not None and quantize not in QUANTIZE:
            raise ConfigError(f"labeller quantize is {quantize!r}; expected one of {', '.join(QUANTIZE)} or null")
        require_torch_transformers("mask labelling")
        import torch
        import transformers

        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        if quantize and (self.device.type != "cpu" or self.dtype != torch.float32):
            raise ConfigError(f"labeller quantize='{quantize}' runs on the CPU in fp32 only, got device {self.device} and "
                              f"dtype {dtype}; drop quantize, or use device='cpu' and dtype='fp32'")
        self.template = template
        self.quantize = quantize
        self.checkpoint = resolve_checkpoint(model, allow_download=allow_download)
        config = read_config(self.checkpoint)
        self.model_type = check_model_type(config, tuple(FAMILIES), "labeller", self.checkpoint)
        class_name, self.scoring, mean, std, resample = FAMILIES[self.model_type]
        self.tokenizer = load_tokenizer(self.checkpoint)
        self.model = load_pretrained(getattr(transformers, class_name), self.checkpoint, device=self.device,
                                     dtype=self.dtype, backend="labeller")
        pix = _pixel_config(self.checkpoint)
        if not pix:
            log.warning("labeller checkpoint '%s' has no preprocessor_config.json; using the %s pixel defaults",
                        self.checkpoint, self.model_type)
        self.mean = tuple(float(v) for v in pix.get("image_mean", mean))
        self.std = tuple(float(v) for v in pix.get("image_std", std))
        self.rescale = float(pix.get("rescale_factor", 1.0 / 255.0))
        self.resample = int(pix.get("resample", resample))
        vision = self.model.config.vision_config
        if self.model_type == "siglip2":
            self.patch_size = int(pix.get("patch_size", vision.patch_size))
            self.max_num_patches = int(pix.get("max_num_patches", vision.num_patches))
            self.image_size = self.patch_size * math.isqrt(self.max_num_patches)
        else:
            self.patch_size = int(vision.patch_size)
            self.image_size = int(vision.image_size)
        text_cfg = self.model.config.text_config
        self.max_text_tokens = int(text_cfg.max_position_embeddings)
        #: RGB of the padding past the frame and of masked-out backgrounds: the mean colour (zero once normalised).
        self.fill = tuple(int(round(255 * m)) for m in self.mean)
        with torch.no_grad():
            self.logit_scale = float(self.model.logit_scale.float().exp().item())
            bias = getattr(self.model, "logit_bias", None)
            self.logit_bias = float(bias.float().reshape(-1)[0].item()) if bias is not None else 0.0
        if quantize == "int8":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao's eager quantisation warns that it moves to torchao
                torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        self._text_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        #: Times of the last ``embed_masks`` call, ms: ``crop``, ``embed``, ``masks`` (count).
        self.timings: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"ClipLabeller({self.model_type}, {self.checkpoint}, device={self.device}, dtype={self.dtype})"

    def describe(self) -> dict:
        """What the labeller is, for reports."""
        return {"name": self.name, "model_type": self.model_type, "checkpoint": str(self.checkpoint),
                "image_size_px": self.image_size, "scoring": self.scoring, "template": self.template,
                "logit_scale": round(self.logit_scale, 4), "logit_bias": round(self.logit_bias, 4),
                "crop": {"context": self.crop.context, "background": self.crop.background,
                         "blur_sigma": self.crop.blur_sigma, "min_side_px": self.crop.min_side_px},
                "device": str(self.device), "dtype": str(self.dtype).replace("torch.", ""), "quantize": self.quantize}

    # ---------------------------------------------------------------------------------------------
    # Images
    # ---------------------------------------------------------------------------------------------
    def crops(self, color: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(K, S, S, 3) uint8 crops the model sees and (K, S, S) bool object masks, for ``masks`` (K, H, W) on ``color``."""
        masks = check_masks(color, masks)
        s = self.image_size
        out = np.empty((len(masks), s, s, 3), np.uint8)
        inside = np.empty((len(masks), s, s), bool)
        for k, m in enumerate(masks):  # one small crop per object; the model dominates the time
            out[k], inside[k], _ = mask_crop(color, m, self.crop, size=s, fill=self.fill, resample=self.resample)
        return out, inside

    def pixel_inputs(self, crops: np.ndarray) -> dict:
        """The model's image inputs for (N, S, S, 3) uint8 crops, as its image processor makes them.

        ``pixel_values`` (N, 3, S, S); SigLIP 2 (NaFlex): ``pixel_values`` (N, max_num_patches, 3·p²) patches
        in row-major order, ``pixel_attention_mask`` (N, max_num_patches) and ``spatial_shapes`` (N, 2).
        """
        import torch

        x = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device).permute(0, 3, 1, 2).float()
        mean = torch.tensor(self.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=self.device).view(1, 3, 1, 1)
        x = (x * self.rescale - mean) / std
        if self.model_type != "siglip2":
            return {"pixel_values": x.to(self.dtype)}
        n, c, h, w = x.shape
        p = self.patch_size
        nh, nw = h // p, w // p
        patches = x.reshape(n, c, nh, p, nw, p).permute(0, 2, 4, 3, 5, 1).reshape(n, nh * nw, p * p * c)
        pad = self.max_num_patches - nh * nw
        mask = torch.ones((n, self.max_num_patches), dtype=torch.long, device=self.device)
        if pad > 0:
            patches = torch.nn.functional.pad(patches, (0, 0, 0, pad))
            mask[:, nh * nw:] = 0
        shapes = torch.tensor([[nh, nw]] * n, dtype=torch.long, device=self.device)
        return {"pixel_values": patches.to(self.dtype), "pixel_attention_mask": mask, "spatial_shapes": shapes}

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, D) float32 unit-length image embeddings of (N, S, S, 3) uint8 crops, ``batch_size`` per pass."""
        import torch

        crops = np.asarray(crops, np.uint8)
        if crops.ndim != 4 or crops.shape[1:] != (self.image_size, self.image_size, 3):
            raise ConfigError(f"crops must be (N, {self.image_size}, {self.image_size}, 3) uint8, got {crops.shape}; "
                              "make them with crops(color, masks)")
        outs = []
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                out = self.model.get_image_features(**self.pixel_inputs(crops[start:start + self.batch_size]))
                emb = getattr(out, "pooler_output", out).float()
                outs.append(torch.nn.functional.normalize(emb, dim=-1).cpu().numpy())
        dim = int(self.model.config.projection_dim) if self.model_type == "clip" else \
            int(self.model.config.vision_config.hidden_size)
        return np.concatenate(outs) if outs else np.zeros((0, dim), np.float32)

    def embed_masks(self, color: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """(K, D) float32 unit-length embeddings of the crops of ``masks`` (K, H, W) bool on ``color`` (H, W, 3) uint8."""
        t0 = time.perf_counter()
        crops, _ = self.crops(color, masks)
        t1 = time.perf_counter()
        emb = self.embed_crops(crops)
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)
        self.timings = {"crop": (t1 - t0) * 1e3, "embed": (time.perf_counter() - t1) * 1e3, "masks": float(len(crops))}
        return emb

    # ---------------------------------------------------------------------------------------------
    # Text
    # ---------------------------------------------------------------------------------------------
    def text_inputs(self, texts: list[str]) -> dict:
        """Token ids (and attention mask where the tokenizer makes one), as the model's processor makes them."""
        padding = True if self.model_type == "clip" else "max_length"  # SigLIP was trained on 64-token padded text
        enc = self.tokenizer(texts, padding=padding, truncation=True, max_length=self.max_text_tokens,
                             return_tensors="pt")
        return {k: enc[k].to(self.device) for k in ("input_ids", "attention_mask") if k in enc}

    def embed_phrases(self, phrases) -> np.ndarray:
        """(P, D) float32 unit-length embeddings of ``phrases`` (each put into :attr:`template`), cached."""
        import torch

        phrases = list(phrases) if not isinstance(phrases, str) else [phrases]
        if not phrases or any(not isinstance(p, str) or not p.strip() for p in phrases):
            raise PromptError(f"phrases must be non-empty strings, got {phrases!r}; e.g. ['mug', 'bowl']")
        texts = [self.template.format(" ".join(p.split())) for p in phrases]
        todo = [t for t in dict.fromkeys(texts) if t not in self._text_cache]
        if todo:
            with torch.inference_mode():
                out = self.model.get_text_features(**self.text_inputs(todo))
                emb = torch.nn.functional.normalize(getattr(out, "pooler_output", out).float(), dim=-1).cpu().numpy()
            for t, e in zip(todo, emb, strict=True):
                self._text_cache[t] = e
        result = np.stack([self._text_cache[t] for t in texts])
        for t in texts:
            self._text_cache.move_to_end(t)
        while len(self._text_cache) > self.text_cache_size:
            self._text_cache.popitem(last=False)
        return result

    # ---------------------------------------------------------------------------------------------
    # Scores
    # ---------------------------------------------------------------------------------------------
    def logits(self, image_embeddings: np.ndarray, text_embeddings: np.ndarray) -> np.ndarray:
        """(K, P) float32 logits: the model's logit scale × cosine similarity (+ SigLIP's bias)."""
        img = np.asarray(image_embeddings, np.float32)
        txt = np.asarray(text_embeddings, np.float32)
        return (self.logit_scale * (img @ txt.T) + self.logit_bias).astype(np.float32)

    def label(self, color: np.ndarray, masks: np.ndarray, phrases, *, min_margin: float = DEFAULT_MIN_MARGIN) -> MaskLabels:
        """Each of ``masks`` (K, H, W) bool on ``color`` labelled with one of ``phrases``."""
        phrases = parse_phrases(phrases)
        masks = check_masks(color, masks)
        logits = self.logits(self.embed_masks(color, masks), self.embed_phrases(phrases))
        return MaskLabels(phrases, logits, self.scoring, float(min_margin))
