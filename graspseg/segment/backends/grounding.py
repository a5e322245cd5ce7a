"""Text prompts: a grounding detector turns a phrase into boxes, a box-promptable segmenter into masks.

``GroundedSegmenter(detector=..., segmenter=...)``: the detector is OWLv2 or Grounding DINO through
transformers (``Owlv2ForObjectDetection`` / ``GroundingDinoForObjectDetection``, loaded from a local
checkpoint like every SAM backend), or any object with ``detect(frame, text) -> (boxes_xyxy (N, 4),
scores (N,))``. Non-text prompts go straight to the inner segmenter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.errors import ConfigError, SegmentationError
from ...core.frame import RGBDFrame
from ..base import create_segmenter
from ..types import MaskSet, Prompt
from .hf_loading import (
    check_model_type,
    load_pretrained,
    read_config,
    require_torch_transformers,
    resolve_checkpoint,
    resolve_device,
)

DETECTORS: dict[str, tuple[str, str, str]] = {  # model_type -> (model class, processor class, image processor class)
    "owlv2": ("Owlv2ForObjectDetection", "Owlv2Processor", "Owlv2ImageProcessorPil"),
    "grounding-dino": ("GroundingDinoForObjectDetection", "GroundingDinoProcessor", "GroundingDinoImageProcessorPil"),
}


class HFDetector:
    """Open-vocabulary box detector from a transformers checkpoint (OWLv2 or Grounding DINO)."""

    def __init__(self, model: str | Path, *, device: str = "auto", box_threshold: float = 0.3,
                 text_threshold: float = 0.25, allow_download: bool = False) -> None:
        require_torch_transformers("text grounding")
        import transformers

        self.device = resolve_device(device)
        self.checkpoint = resolve_checkpoint(model, allow_download=allow_download)
        self.model_type = check_model_type(read_config(self.checkpoint), tuple(DETECTORS), "grounded", self.checkpoint)
        model_cls, proc_cls, image_proc_cls = DETECTORS[self.model_type]
        import torch

        self.model = load_pretrained(getattr(transformers, model_cls), self.checkpoint, device=self.device,
                                     dtype=torch.float32, backend="grounded")
        tok = transformers.AutoTokenizer.from_pretrained(str(self.checkpoint), local_files_only=True)
        image_proc = getattr(transformers, image_proc_cls).from_pretrained(str(self.checkpoint), local_files_only=True)
        self.processor = getattr(transformers, proc_cls)(image_processor=image_proc, tokenizer=tok)
        self.box_threshold = float(box_threshold)
        self.text_threshold = float(text_threshold)

    def detect(self, frame: RGBDFrame, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(N, 4) pixel boxes ``x0, y0, x1, y1`` and (N,) scores for ``text`` on ``frame``, best first."""
        import torch

        sizes = [(frame.height, frame.width)]
        if self.model_type == "owlv2":
            inputs = self.processor(text=[[text]], images=frame.color, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                out = self.model(**inputs)
            res = self.processor.post_process_grounded_object_detection(
                out, threshold=self.box_threshold, target_sizes=sizes)[0]
        else:
            phrase = text.lower().strip().rstrip(".") + "."
            inputs = self.processor(images=frame.color, text=phrase, return_tensors="pt").to(self.device)
            with torch.inference_mode():
                out = self.model(**inputs)
            res = self.processor.post_process_grounded_object_detection(
                out, inputs["input_ids"], threshold=self.box_threshold, text_threshold=self.text_threshold,
                target_sizes=sizes)[0]
        boxes = res["boxes"].float().cpu().numpy().reshape(-1, 4)
        scores = res["scores"].float().cpu().numpy().reshape(-1)
        order = np.argsort(-scores, kind="stable")
        return boxes[order], scores[order]


class GroundedSegmenter:
    """Text → boxes (detector) → masks (any box-promptable segmenter).

    Parameters
    ----------
    detector : str, path or object
        A detector checkpoint (OWLv2 / Grounding DINO) or an object with ``detect(frame, text)``.
    segmenter : str or Segmenter
        The box-promptable segmenter (a registered name with ``segmenter_options``, or an instance).
    max_instances : int
        At most this many detections become masks.
    """

    accepts_text = True

    def __init__(self, detector, segmenter="sam2", *, segmenter_options: dict | None = None,
                 detector_options: dict | None = None, max_instances: int = 5) -> None:
        self.name = "grounded"
        if isinstance(detector, (str, Path)):
            detector = HFDetector(detector, **(detector_options or {}))
        if not hasattr(detector, "detect"):
            raise ConfigError(f"detector must be a checkpoint path or have detect(frame, text), got {type(detector).__name__}")
        self.detector = detector
        self.segmenter = create_segmenter(segmenter, **(segmenter_options or {})) if isinstance(segmenter, str) else segmenter
        if max_instances < 1:
            raise ConfigError(f"max_instances must be >= 1, got {max_instances}")
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
        boxes, det_scores = boxes[:self.max_instances], det_scores[:self.max_instances]
        w, h = self.frame.width, self.frame.height
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
