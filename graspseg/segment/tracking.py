"""Trackers: prompt an object once, follow it frame by frame, and say when it is lost.

Two implementations behind one small interface (:class:`Tracker`):

``rgbd`` — :class:`RepromptTracker`
    Re-prompts any :class:`~graspseg.segment.base.Segmenter` (the embedded ``rgbd`` backend by default)
    on every frame from the previous mask: it looks for pixels near the previous mask whose depth matches
    the object's, clicks the most interior of them, and picks the candidate that agrees best with them.
    No weights, no memory beyond the last good mask; loses the object honestly when nothing at its depth
    is left near where it was (full occlusion) and finds it again when it reappears.
``sam2`` — :class:`Sam2VideoTracker`
    SAM 2 / 2.1 (or EdgeTAM, SAM 3 tracker) video model from transformers in streaming mode: frames are
    fed one at a time, and the session's per-frame state is pruned to a fixed window so memory stays
    bounded over long sequences. Loss = the model's object-presence score below 0.5.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
from scipy import ndimage

from ..core.errors import ConfigError, SegmentationError, ShapeError
from ..core.frame import RGBDFrame
from ..core.registry import Registry
from .base import Segmenter, create_segmenter
from .types import MaskSet, Prompt

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class TrackStep:
    """The tracked object on one frame.

    Attributes
    ----------
    frame_index : int
        0 for the prompted frame, then 1, 2, ...
    mask : (H, W) bool
        The object's visible pixels (empty when lost).
    score : float
        Quality in [0, 1] (the segmenter's score of the chosen candidate, or SAM 2's presence score).
    lost : bool
        True when the tracker could not find the object on this frame.
    reason : str
        Why it is lost ("" when not).
    iou_previous : float
        IoU with the last good mask (motion + shape change indicator).
    timestamp_s : float
        The frame's timestamp.
    details : dict
        Tracker-specific diagnostics.
    """

    frame_index: int
    mask: np.ndarray
    score: float
    lost: bool = False
    reason: str = ""
    iou_previous: float = 1.0
    timestamp_s: float = 0.0
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = np.asarray(self.mask)
        if m.ndim != 2:
            raise ShapeError(f"track mask must be (H, W), got shape {m.shape}")
        m = m.astype(bool, copy=False)
        m.setflags(write=False)
        object.__setattr__(self, "mask", m)
        object.__setattr__(self, "score", float(self.score))

    @property
    def area_px(self) -> int:
        return int(self.mask.sum())


@runtime_checkable
class Tracker(Protocol):
    """Prompt once with :meth:`start`, then :meth:`step` on each new frame."""

    name: str

    def start(self, frame: RGBDFrame, prompt: Prompt) -> TrackStep: ...

    def step(self, frame: RGBDFrame) -> TrackStep: ...

    def reset(self) -> None: ...


def track(tracker: Tracker, frames: Iterable[RGBDFrame], prompt: Prompt) -> list[TrackStep]:
    """Run ``tracker`` over ``frames``, prompting on the first one."""
    steps: list[TrackStep] = []
    for i, frame in enumerate(frames):
        steps.append(tracker.start(frame, prompt) if i == 0 else tracker.step(frame))
    return steps


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 0.0


def _disk(radius_px: int) -> np.ndarray:
    r = max(1, int(radius_px))
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    return x * x + y * y <= r * r


def _dilate(mask: np.ndarray, radius_px: int) -> np.ndarray:
    """(H, W) bool dilation by a disk of ``radius_px`` (as ``ndimage.binary_dilation``, ~100x faster)."""
    return cv2.dilate(np.ascontiguousarray(mask, bool).view(np.uint8), _disk(radius_px).view(np.uint8)).view(bool)


def _box_slices(mask: np.ndarray, pad_px: int) -> tuple[slice, slice]:
    """Row and column slices of ``mask``'s bounding box grown by ``pad_px`` (clipped to the image)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (slice(max(0, rows[0] - pad_px), min(h, rows[-1] + pad_px + 1)),
            slice(max(0, cols[0] - pad_px), min(w, cols[-1] + pad_px + 1)))


def interior_pixel(mask: np.ndarray) -> tuple[int, int]:
    """(u, v) of the pixel of ``mask`` farthest from its border (exact Euclidean distance)."""
    roi = _box_slices(mask, 1)
    dist = cv2.distanceTransform(np.ascontiguousarray(mask[roi], np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    v, u = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(u) + roi[1].start, int(v) + roi[0].start


# --------------------------------------------------------------------------------------------------
# rgbd: re-prompt a segmenter from the previous mask
# --------------------------------------------------------------------------------------------------
class RepromptTracker:
    """Follow an object by re-prompting a segmenter each frame from the previous mask (see module docstring).

    Parameters
    ----------
    segmenter : Segmenter or str
        An instance, or a registered backend name (default ``"rgbd"``).
    segmenter_options : dict
        Passed to :func:`create_segmenter` when ``segmenter`` is a name.
    search_px : int
        How far (pixels) the object may move between frames.
    depth_tol_m : float
        Pixels within this depth of the object's previous median depth count as the object.
    max_area_ratio : float
        An area change beyond this factor in one frame is treated as a wrong candidate (lost).
    min_support_px : int
        Fewer object-depth pixels near the previous mask than this means the object is hidden or gone.
    use_box : bool
        Also give the segmenter the previous box grown by ``search_px``.
    """

    name = "rgbd"

    def __init__(self, segmenter: Segmenter | str = "rgbd", *, segmenter_options: dict | None = None,
                 search_px: int = 20, depth_tol_m: float = 0.03, max_area_ratio: float = 3.0,
                 min_support_px: int = 20, use_box: bool = False) -> None:
        if search_px < 1 or depth_tol_m <= 0 or max_area_ratio <= 1 or min_support_px < 1:
            raise ConfigError(
                f"tracker options out of range: search_px={search_px} (>= 1), depth_tol_m={depth_tol_m} (> 0), "
                f"max_area_ratio={max_area_ratio} (> 1), min_support_px={min_support_px} (>= 1)"
            )
        self.segmenter = create_segmenter(segmenter, **(segmenter_options or {})) if isinstance(segmenter, str) else segmenter
        self.search_px = int(search_px)
        self.depth_tol_m = float(depth_tol_m)
        self.max_area_ratio = float(max_area_ratio)
        self.min_support_px = int(min_support_px)
        self.use_box = bool(use_box)
        self.reset()

    def reset(self) -> None:
        self._last_mask: np.ndarray | None = None
        self._last_depth_m = 0.0
        self._max_area_px = 0
        self._ref_mask: np.ndarray | None = None  # the last mask showing most of the object
        self._lost = False
        self._index = -1

    def _remember(self, frame: RGBDFrame, mask: np.ndarray) -> None:
        d = frame.depth_m[mask & frame.valid_depth]
        if d.size:
            self._last_depth_m = float(np.median(d))
        self._last_mask = mask
        area = int(mask.sum())
        self._max_area_px = max(self._max_area_px, area)
        if area >= 0.8 * self._max_area_px:
            self._ref_mask = mask

    def start(self, frame: RGBDFrame, prompt: Prompt) -> TrackStep:
        self.reset()
        self._index = 0
        self.segmenter.set_frame(frame)
        ms = self.segmenter.predict(prompt)
        k = ms.select("auto")
        mask = ms.masks[k]
        if not mask.any():
            raise SegmentationError("the prompt gave an empty mask on the first frame; prompt the object again")
        self._remember(frame, mask)
        return TrackStep(0, mask, float(ms.scores[k]), timestamp_s=frame.timestamp_s,
                         details={"granularity": ms.granularity[k], "mask_set": ms, "candidate": k})

    def anchor(self, frame: RGBDFrame, mask: np.ndarray) -> None:
        """Follow ``mask`` (found on ``frame`` by another segmenter, e.g. a keyframe) from the next step on,
        without segmenting ``frame`` again."""
        m = np.asarray(mask, bool)
        if m.shape != (frame.height, frame.width) or not m.any():
            raise SegmentationError(f"anchor mask is {m.shape[::-1]} with {int(m.sum())} px; it must be a non-empty "
                                    f"mask of the {frame.width}x{frame.height} frame")
        self._index = max(self._index, 0)
        self._remember(frame, m)

    def _support(self, frame: RGBDFrame) -> np.ndarray:
        """Pixels near the last mask whose depth matches the object's last median depth.

        While the object is lost, "near" also covers the last mask that showed most of it: an object comes
        out from behind an occluder on the side opposite to the one last seen. Computed inside the box of
        that region grown by ``search_px`` (nothing farther can be near it), so the cost follows the
        object's size, not the image's.
        """
        base, radius = self._last_mask, self.search_px
        if self._lost and self._ref_mask is not None:
            base = self._last_mask | self._ref_mask
        roi = _box_slices(base, radius + 1)
        near = _dilate(base[roi], radius)
        depth = frame.depth_m[roi]
        at_depth = (depth > 0) & (np.abs(depth - self._last_depth_m) <= self.depth_tol_m)
        support = np.zeros_like(self._last_mask)
        support[roi] = near & at_depth
        if not support.any():
            return support
        # Keep the connected pieces that overlap the last mask most (others are neighbours at the same depth).
        labels, n = ndimage.label(support[roi])
        if n > 1:
            overlap = ndimage.sum(base[roi], labels, index=np.arange(1, n + 1))
            sizes = ndimage.sum(support[roi], labels, index=np.arange(1, n + 1))
            best = np.argmax(overlap * 1e6 + sizes) + 1 if overlap.max() > 0 else np.argmax(sizes) + 1
            support[roi] = labels == best
        return support

    def step(self, frame: RGBDFrame) -> TrackStep:
        if self._last_mask is None:
            raise SegmentationError("tracker not started; call start(frame, prompt) on the first frame")
        if frame.depth_m.shape != self._last_mask.shape:
            raise ShapeError(f"frame is {frame.width}x{frame.height} but the track was started on "
                             f"{self._last_mask.shape[1]}x{self._last_mask.shape[0]}")
        self._index += 1
        empty = np.zeros_like(self._last_mask)
        support = self._support(frame)
        n_support = int(support.sum())
        if n_support < self.min_support_px:
            self._lost = True
            return TrackStep(self._index, empty, 0.0, True,
                             f"only {n_support} px at the object's depth near its last position (occluded or gone)",
                             0.0, frame.timestamp_s, {"support_px": n_support})
        u, v = interior_pixel(support)
        box = None
        if self.use_box:
            grown = np.zeros_like(support)
            roi = _box_slices(support, self.search_px // 2 + 1)
            grown[roi] = _dilate(support[roi], self.search_px // 2)
            rows, cols = np.nonzero(grown)
            box = [max(0, cols.min()), max(0, rows.min()), min(frame.width - 1, cols.max()), min(frame.height - 1, rows.max())]
        prompt = Prompt(points_uv=[[float(u), float(v)]], point_labels=[1], box_xyxy=box)
        self.segmenter.set_frame(frame)
        try:
            ms: MaskSet = self.segmenter.predict(prompt)
        except SegmentationError:
            # the click fell on support pixels that are not the object (the table at the object's depth around
            # its base, seen at a tilt): click where the support overlaps the last mask instead
            inner = support & self._last_mask
            u, v = interior_pixel(inner if inner.any() else self._last_mask)
            try:
                ms = self.segmenter.predict(Prompt(points_uv=[[float(u), float(v)]], point_labels=[1], box_xyxy=box))
            except SegmentationError as e:  # nothing there either: the object is lost on this frame
                self._lost = True
                why = str(e).split(";")[0]  # the segmenter's reason, without its advice to the user
                why = why.rsplit("}: ", 1)[-1] if "}: " in why else why.split(": ", 1)[-1]
                return TrackStep(self._index, empty, 0.0, True, f"no object under the re-prompt at ({u}, {v}): {why}",
                                 0.0, frame.timestamp_s, {"support_px": n_support, "click_uv": (float(u), float(v))})
        agree = np.array([mask_iou(m, support) for m in ms.masks])
        k = int(np.argmax(agree + 0.05 * ms.scores))
        mask = ms.masks[k]
        prev_area = int(self._last_mask.sum())
        area = int(mask.sum())
        iou_prev = mask_iou(mask, self._last_mask)
        details = {"support_px": n_support, "click_uv": (float(u), float(v)), "agreement": float(agree[k]),
                   "granularity": ms.granularity[k], "mask_set": ms, "candidate": k}
        # growth is judged against the largest mask of the track (an object coming out from behind an occluder
        # grows back to its size), shrinking against the last mask, except when re-acquiring (only a part of
        # the object may have come out yet)
        grow = max(area, 1) / max(prev_area, self._max_area_px, 1)
        ratio = grow if grow > 1 else max(area, 1) / max(prev_area, 1)
        shrunk = ratio < 1 / self.max_area_ratio and not self._lost
        self._lost = area == 0 or grow > self.max_area_ratio or shrunk
        if self._lost:
            return TrackStep(self._index, empty, 0.0, True,
                             f"candidate area changed x{ratio:.2f} in one frame (limit x{self.max_area_ratio:g})",
                             iou_prev, frame.timestamp_s, details)
        score = float(ms.scores[k]) * float(agree[k])
        self._remember(frame, mask)
        return TrackStep(self._index, mask, score, False, "", iou_prev, frame.timestamp_s, details)


# --------------------------------------------------------------------------------------------------
# SAM 2 video model, streaming
# --------------------------------------------------------------------------------------------------
VIDEO_FAMILIES: dict[str, str] = {
    "sam2_video": "Sam2VideoModel",
    "edgetam_video": "EdgeTamVideoModel",
    "sam3_tracker_video": "Sam3TrackerVideoModel",
}


class Sam2VideoTracker:
    """SAM 2-family video model in streaming mode with a bounded state window.

    Parameters
    ----------
    model : str or path
        A video checkpoint (``model_type`` ``sam2_video``, ``edgetam_video`` or ``sam3_tracker_video``;
        the ``facebook/sam2.1-hiera-*`` repositories are ``sam2_video``).
    device, dtype, allow_download
        As for :class:`~graspseg.segment.backends.sam.HFSamSegmenter`.
    window : int or None
        Frames of state kept besides the prompted frame; None = what the model reads
        (``max(num_maskmem, max_object_pointers_in_encoder)``).
    presence_threshold : float
        The object counts as lost below this presence probability.
    """

    name = "sam2"

    def __init__(self, model: str | Path, *, device: str = "auto", dtype: str = "fp32", window: int | None = None,
                 presence_threshold: float = 0.5, mask_threshold: float = 0.0, allow_download: bool = False) -> None:
        from .backends.hf_loading import (
            ImageNorm,
            check_model_type,
            load_pretrained,
            read_config,
            require_torch_transformers,
            resolve_checkpoint,
            resolve_device,
            resolve_dtype,
        )

        require_torch_transformers("the SAM 2 video tracker")
        import transformers

        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.checkpoint = resolve_checkpoint(model, allow_download=allow_download)
        cfg = read_config(self.checkpoint)
        self.model_type = check_model_type(cfg, tuple(VIDEO_FAMILIES), "sam2-video", self.checkpoint)
        cls = getattr(transformers, VIDEO_FAMILIES[self.model_type])
        self.model = load_pretrained(cls, self.checkpoint, device=self.device, dtype=self.dtype, backend="sam2-video")
        mc = self.model.config
        self.input_size = int(mc.image_size)
        needed = max(int(getattr(mc, "num_maskmem", 7)), int(getattr(mc, "max_object_pointers_in_encoder", 16)))
        self.window = needed if window is None else int(window)
        if self.window < 1:
            raise ConfigError(f"window must be >= 1 frame, got {window}")
        self.presence_threshold = float(presence_threshold)
        self.mask_threshold = float(mask_threshold)
        self._norm = ImageNorm.from_dir(self.checkpoint)
        self.timings: dict[str, float] = {}
        self.reset()

    def reset(self) -> None:
        self.session = None
        self._index = -1
        self._last_mask: np.ndarray | None = None

    def _pixels(self, color: np.ndarray):
        from .backends.sam import InputGeometry, model_pixels

        geom = InputGeometry(*color.shape[:2], self.input_size, letterbox=False)
        return model_pixels(color, geom, self._norm, self.device, self.dtype)

    def _prune(self) -> None:
        """Drop per-frame state older than the window (the prompted frame's state is kept)."""
        s = self.session
        oldest = self._index - self.window
        for k in [k for k in s.processed_frames if 0 < k < oldest]:
            del s.processed_frames[k]
        for obj in s.output_dict_per_obj.values():
            for k in [k for k in obj["non_cond_frame_outputs"] if k < oldest]:
                del obj["non_cond_frame_outputs"][k]
        for tracked in s.frames_tracked_per_obj.values():
            for k in [k for k in tracked if 0 < k < oldest]:
                del tracked[k]

    def state_size(self) -> dict:
        """How many frames of state the session holds (for checking that memory stays bounded)."""
        s = self.session
        if s is None:
            return {"frames": 0, "outputs": 0}
        return {"frames": len(s.processed_frames or {}),
                "outputs": sum(len(o["non_cond_frame_outputs"]) + len(o["cond_frame_outputs"])
                               for o in s.output_dict_per_obj.values())}

    def _run(self, frame: RGBDFrame) -> TrackStep:
        import torch
        import torch.nn.functional as F

        t0 = time.perf_counter()
        with torch.inference_mode():
            out = self.model(inference_session=self.session, frame_idx=self._index, frame=self._pixels(frame.color))
            logits = F.interpolate(out.pred_masks[:1].float(), size=(frame.height, frame.width), mode="bilinear",
                                   align_corners=False)[0, 0]
            presence = float(torch.sigmoid(out.object_score_logits.float().reshape(-1)[0]))
        mask = (logits > self.mask_threshold).cpu().numpy()
        self._prune()
        self.timings["step"] = time.perf_counter() - t0
        prev = self._last_mask
        iou_prev = 1.0 if prev is None else mask_iou(mask, prev)
        details = {"presence": presence, "state": self.state_size()}
        if presence < self.presence_threshold or not mask.any():
            return TrackStep(self._index, np.zeros_like(mask), presence, True,
                             f"object presence {presence:.2f} < {self.presence_threshold:g} (occluded or gone)",
                             iou_prev, frame.timestamp_s, details)
        self._last_mask = mask
        return TrackStep(self._index, mask, presence, False, "", iou_prev, frame.timestamp_s, details)

    def start(self, frame: RGBDFrame, prompt: Prompt) -> TrackStep:
        import torch
        import transformers

        if prompt.text is not None:
            from .base import text_prompt_error

            raise text_prompt_error("sam2-video")
        prompt.validate_for(frame.width, frame.height)
        self.reset()
        self._index = 0
        session_cls = getattr(transformers, VIDEO_FAMILIES[self.model_type].replace("Model", "InferenceSession"))
        self.session = session_cls(video_height=frame.height, video_width=frame.width, inference_device=self.device,
                                   inference_state_device=self.device, video_storage_device=self.device,
                                   dtype=self.dtype, max_vision_features_cache_size=1)
        obj_idx = self.session.obj_id_to_idx(1)
        su, sv = self.input_size / frame.width, self.input_size / frame.height
        if prompt.mask is not None and not len(prompt.points_uv) and prompt.box_xyxy is None:
            m = torch.from_numpy(prompt.mask.astype(np.float32))[None, None]
            m = torch.nn.functional.interpolate(m, size=(self.input_size, self.input_size), mode="bilinear",
                                                align_corners=False, antialias=True)
            self.session.add_mask_inputs(obj_idx, 0, (m >= 0.5).float())
        else:
            pts = [[float(u) * su, float(v) * sv] for u, v in prompt.points_uv]
            labels = [int(x) for x in prompt.point_labels]
            if prompt.box_xyxy is not None:
                x0, y0, x1, y1 = prompt.box_xyxy
                pts = [[x0 * su, y0 * sv], [x1 * su, y1 * sv]] + pts
                labels = [2, 3] + labels
            self.session.add_point_inputs(obj_idx, 0, {
                "point_coords": torch.tensor(pts, dtype=torch.float32)[None, None],
                "point_labels": torch.tensor(labels, dtype=torch.int32)[None, None]})
        self.session.obj_with_new_inputs = [1]
        step = self._run(frame)
        if step.lost:
            log.warning("SAM 2 video: the object is not visible on the prompted frame (%s)", step.reason)
        return step

    def step(self, frame: RGBDFrame) -> TrackStep:
        if self.session is None:
            raise SegmentationError("tracker not started; call start(frame, prompt) on the first frame")
        if (frame.height, frame.width) != (self.session.video_height, self.session.video_width):
            raise ShapeError(f"frame is {frame.width}x{frame.height} but the track was started on "
                             f"{self.session.video_width}x{self.session.video_height}")
        self._index += 1
        return self._run(frame)


#: Tracker factories by name.
TRACKERS: Registry = Registry("tracker", entry_point_group="graspseg.trackers")
TRACKERS.register("rgbd", RepromptTracker, description="re-prompts a segmenter (rgbd by default) from the previous mask")
TRACKERS.register("sam2", Sam2VideoTracker, requires=("torch", "transformers"), extra="sam",
                  description="SAM 2 / 2.1 video model, streaming, bounded memory")


def create_tracker(name: str = "rgbd", **options) -> Tracker:
    """Instantiate a registered tracker by name."""
    return TRACKERS.create(name, **options)
