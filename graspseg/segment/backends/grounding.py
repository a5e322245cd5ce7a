"""Text prompts: a grounding detector turns a phrase into boxes, a box-promptable segmenter into masks.

``GroundedSegmenter(detector=..., segmenter=...)``: the detector is OWLv2 or Grounding DINO through
transformers (``Owlv2ForObjectDetection`` / ``GroundingDinoForObjectDetection``, loaded from a local
checkpoint like every SAM backend), or any object with ``detect(frame, text) -> (boxes_xyxy (N, 4),
scores (N,))``. Non-text prompts go straight to the inner segmenter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.errors import ConfigError, PromptError, SegmentationError
from ...core.frame import RGBDFrame
from ...core.registry import check_arguments
from ..base import create_segmenter
from ..types import MaskSet, Prompt
from .hf_loading import (
    BACKEND_FOR_MODEL_TYPE,
    check_model_argument,
    check_model_type,
    has_tokenizer_files,
    load_pretrained,
    option_flag,
    option_number,
    read_config,
    require_torch_transformers,
    resolve_checkpoint,
    resolve_device,
)

DETECTORS: dict[str, tuple[str, str]] = {  # model_type -> (model class, processor class)
    "owlv2": ("Owlv2ForObjectDetection", "Owlv2Processor"),
    "grounding-dino": ("GroundingDinoForObjectDetection", "GroundingDinoProcessor"),
    "mm-grounding-dino": ("MMGroundingDinoForObjectDetection", "GroundingDinoProcessor"),
}

#: Box-promptable segmenter backends, by checkpoint ``model_type`` (for ``GroundedSegmenter(model=...)``).
BOX_SEGMENTER_TYPES: tuple[str, ...] = ("sam", "sam2", "edgetam")


class HFDetector:
    """Open-vocabulary box detector from a transformers checkpoint (OWLv2 or Grounding DINO).

    The checkpoint directory holds ``config.json``, ``model.safetensors``, the tokenizer files and the
    processor configs (``preprocessor_config.json`` or ``processor_config.json``); transformers' own
    processor class turns text and image into model inputs and boxes back into pixels (its PIL image
    processor: no torchvision).

    Parameters
    ----------
    model : str or path
        Checkpoint directory, or a repository id already in the Hugging Face cache.
    device : str
        ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    box_threshold : float
        Detections scoring at or below this are dropped (OWLv2: sigmoid class score; Grounding DINO: best token probability).
    text_threshold : float
        Grounding DINO only: token probability for a phrase to be attributed to a box.
    """

    def __init__(self, model: str | Path, *, device: str = "auto", box_threshold: float = 0.3,
                 text_threshold: float = 0.25, allow_download: bool = False) -> None:
        check_model_argument(model, "grounded detector", "--detector")
        box_threshold = option_number(box_threshold, "box_threshold", "grounded detector", low=0.0, high=1.0)
        text_threshold = option_number(text_threshold, "text_threshold", "grounded detector", low=0.0, high=1.0)
        allow_download = option_flag(allow_download, "allow_download", "grounded detector")
        require_torch_transformers("text grounding")
        import torch
        import transformers

        self.device = resolve_device(device)
        self.checkpoint = resolve_checkpoint(model, allow_download=allow_download)
        self.model_type = check_model_type(read_config(self.checkpoint), tuple(DETECTORS), "grounded", self.checkpoint)
        model_cls, proc_cls = DETECTORS[self.model_type]
        self.model = load_pretrained(getattr(transformers, model_cls), self.checkpoint, device=self.device,
                                     dtype=torch.float32, backend="grounded")
        self.processor = load_processor(transformers, proc_cls, self.checkpoint)
        self.box_threshold = float(box_threshold)
        self.text_threshold = float(text_threshold)
        self.calls = 0

    def __repr__(self) -> str:
        return f"HFDetector({self.model_type}, {self.checkpoint}, device={self.device})"

    def model_inputs(self, frame: RGBDFrame, text: str):
        """The processor's model inputs for ``text`` on ``frame`` (a ``BatchFeature`` on the model's device).

        OWLv2 takes the phrase as one query; Grounding DINO takes it lower-cased and ending in ``.``
        (its captions are dot-separated phrases).
        """
        if self.model_type == "owlv2":
            inputs = self.processor(text=[[text]], images=frame.color, return_tensors="pt")
        else:
            inputs = self.processor(images=frame.color, text=grounding_dino_caption(text), return_tensors="pt")
        return inputs.to(self.device)

    def detect(self, frame: RGBDFrame, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(N, 4) float64 pixel boxes ``x0, y0, x1, y1`` and (N,) float32 scores for ``text`` on ``frame``, best first."""
        import torch

        text = str(text).strip()
        if not text:
            raise PromptError("text prompt is empty; give a phrase such as 'red mug'")
        inputs = self.model_inputs(frame, text)
        with torch.inference_mode():
            out = self.model(**inputs)
        self.calls += 1
        sizes = [(frame.height, frame.width)]
        if self.model_type == "owlv2":
            res = self.processor.post_process_grounded_object_detection(
                out, threshold=self.box_threshold, target_sizes=sizes)[0]
        else:
            res = self.processor.post_process_grounded_object_detection(
                out, inputs["input_ids"], threshold=self.box_threshold, text_threshold=self.text_threshold,
                target_sizes=sizes)[0]
        boxes = res["boxes"].float().cpu().numpy().reshape(-1, 4).astype(np.float64)
        scores = res["scores"].float().cpu().numpy().reshape(-1).astype(np.float32)
        order = np.argsort(-scores, kind="stable")
        return boxes[order], scores[order]


PROCESSOR_FILES: tuple[str, ...] = ("preprocessor_config.json", "processor_config.json")


def load_processor(transformers, proc_cls: str, path: Path):
    """transformers' processor ``proc_cls`` from checkpoint ``path``, refusing one without tokenizer or image config.

    transformers would otherwise build an empty tokenizer (every word unknown) or a default image processor
    without a word of warning.
    """
    has_tokenizer = has_tokenizer_files(path)
    has_image_cfg = any((path / f).is_file() for f in PROCESSOR_FILES)
    if not (has_tokenizer and has_image_cfg):
        missing = [] if has_tokenizer else ["tokenizer files (tokenizer.json, vocab.json + merges.txt or vocab.txt)"]
        missing += [] if has_image_cfg else ["preprocessor_config.json"]
        raise ConfigError(
            f"detector checkpoint '{path}' has no usable tokenizer/processor files: missing {' and '.join(missing)}; "
            "download the whole repository (`hf download <repo> --local-dir <dir>`)"
        )
    try:
        return getattr(transformers, proc_cls).from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"detector checkpoint '{path}' has no usable tokenizer/processor files for {proc_cls} ({exc}); "
            "download the whole repository (`hf download <repo> --local-dir <dir>`)"
        ) from exc


def grounding_dino_caption(text: str) -> str:
    """Grounding DINO's caption form of a phrase: lower case, ending in a single ``.``."""
    return text.lower().strip().rstrip(".").strip() + "."


def boxes_inside(boxes_xyxy: np.ndarray, width: int, height: int, min_side_px: float = 1.0) -> np.ndarray:
    """(N,) bool: boxes that keep at least ``min_side_px`` on each side once clipped to the image."""
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    lo = np.clip(b[:, :2], 0, [width - 1, height - 1])
    hi = np.clip(b[:, 2:], 0, [width - 1, height - 1])
    return np.all(np.isfinite(b), axis=1) & np.all(hi - lo >= min_side_px, axis=1)


def segmenter_backend_for(model: str | Path) -> str:
    """The box-promptable backend (``sam``, ``sam2``, ``edgetam``) that runs checkpoint ``model``."""
    path = resolve_checkpoint(model)
    model_type = str(read_config(path).get("model_type", ""))
    backend = BACKEND_FOR_MODEL_TYPE.get(model_type)
    if backend not in BOX_SEGMENTER_TYPES:
        raise ConfigError(
            f"checkpoint '{path}' is a '{model_type or 'unknown'}' model, not a box-promptable segmenter; "
            f"give a SAM, SAM 2 or EdgeTAM checkpoint as model= (the detector goes in detector=)"
        )
    return backend


class GroundedSegmenter:
    """Text → boxes (detector) → masks (any box-promptable segmenter).

    Parameters
    ----------
    detector : str, path or object
        A detector checkpoint (OWLv2 / Grounding DINO) or an object with ``detect(frame, text)``.
    segmenter : str, Segmenter or None
        The box-promptable segmenter: a registered name (built with ``model`` and ``segmenter_options``),
        an instance, or None to pick the backend from ``model``'s checkpoint type.
    model : str or path, optional
        The segmenter's checkpoint (SAM, SAM 2 or EdgeTAM).
    device : str
        Device of the detector and of a segmenter built here (``auto``, ``cpu``, ``cuda``...).
    max_instances : int
        At most this many detections become masks.
    """

    accepts_text = True

    def __init__(self, detector, segmenter=None, *, model: str | Path | None = None, device: str = "auto",
                 segmenter_options: dict | None = None, detector_options: dict | None = None,
                 max_instances: int = 5) -> None:
        self.name = "grounded"
        max_instances = option_number(max_instances, "max_instances", "grounded", low=1, integer=True)
        for name, opts in (("segmenter_options", segmenter_options), ("detector_options", detector_options)):
            if opts is not None and not isinstance(opts, dict):
                raise ConfigError(f"grounded: option {name} is {opts!r}; expected a mapping of options")
        if isinstance(detector, (str, Path)):
            opts = {"device": device, **(detector_options or {})}
            check_arguments(HFDetector, (detector,), opts, what="grounded detector")
            detector = HFDetector(detector, **opts)
        if not hasattr(detector, "detect"):
            raise ConfigError(f"detector must be a checkpoint path or have detect(frame, text), got {type(detector).__name__}")
        self.detector = detector
        if segmenter is None or isinstance(segmenter, str):
            options = {"device": device, **(segmenter_options or {})}
            if model is not None:
                options["model"] = model
            if "model" not in options:
                raise ConfigError(
                    "grounded: no segmenter given; pass model=<SAM, SAM 2 or EdgeTAM checkpoint dir> "
                    "(on the command line: --model DIR) or segmenter=<a segmenter instance>"
                )
            name = segmenter or segmenter_backend_for(options["model"])
            segmenter = create_segmenter(name, **options)
        elif model is not None:
            raise ConfigError("grounded: give either a segmenter instance or model=<checkpoint>, not both")
        self.segmenter = segmenter
        self.max_instances = int(max_instances)
        self.frame: RGBDFrame | None = None
        self._detections: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def set_frame(self, frame: RGBDFrame) -> None:
        if frame is not self.frame:
            self._detections = {}
        self.frame = frame
        self.segmenter.set_frame(frame)

    def detect(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Boxes and scores for ``text`` on the current frame (cached per phrase)."""
        if self.frame is None:
            raise SegmentationError("grounded: no frame set; call set_frame(frame) before predict(prompt)")
        if text not in self._detections:
            self._detections[text] = self.detector.detect(self.frame, text)
        return self._detections[text]

    def predict(self, prompt: Prompt) -> MaskSet:
        """For text: one mask per detected instance (best candidate of each box), scored detection × mask."""
        if self.frame is None:
            raise SegmentationError("grounded: no frame set; call set_frame(frame) before predict(prompt)")
        if prompt.text is None:
            return self.segmenter.predict(prompt)
        boxes, det_scores = self.detect(prompt.text)
        if len(boxes) == 0:
            raise SegmentationError(
                f"no '{prompt.text}' found on this frame (detector threshold too high, or the object is not in view); "
                "rephrase the text, lower box_threshold, or click on the object"
            )
        w, h = self.frame.width, self.frame.height
        inside = boxes_inside(boxes, w, h)
        if not inside.any():
            raise SegmentationError(
                f"every '{prompt.text}' box lies outside the {w}x{h} frame or is under a pixel wide; "
                "rephrase the text, raise box_threshold, or click on the object"
            )
        boxes, det_scores = boxes[inside][:self.max_instances], det_scores[inside][:self.max_instances]
        box_prompts = [Prompt(box_xyxy=np.clip(b, 0, [w - 1, h - 1, w - 1, h - 1]) + [0, 0, 1e-3, 1e-3]) for b in boxes]
        batch = getattr(self.segmenter, "predict_batch", None)
        sets = batch(box_prompts) if batch is not None else [self.segmenter.predict(p) for p in box_prompts]
        masks, scores, logits = [], [], []
        for ms, s in zip(sets, det_scores, strict=True):
            k = ms.select("whole")
            masks.append(ms.masks[k])
            scores.append(float(s) * float(ms.scores[k]))
            if ms.logits is not None:
                logits.append(ms.logits[k])
        return MaskSet(np.stack(masks), np.asarray(scores, np.float32), ("whole",) * len(masks),
                       np.stack(logits) if len(logits) == len(masks) else None, self.name, prompt,
                       {"box_xyxy": boxes.astype(np.float64), "detection_score": det_scores.astype(np.float32)})

    def segment_all(self, frame: RGBDFrame | None = None) -> MaskSet:
        return self.segmenter.segment_all(frame)
