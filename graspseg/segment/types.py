"""Prompts, candidate mask sets and the selection policy shared by every segmenter backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

from ..core.errors import PromptError, ShapeError

Granularity = Literal["part", "whole", "group"]
GRANULARITIES: tuple[str, ...] = ("part", "whole", "group")
SelectionPolicy = Literal["part", "whole", "group", "auto"]
POLICIES: tuple[str, ...] = ("part", "whole", "group", "auto")


@dataclass(frozen=True, eq=False)
class Prompt:
    """What the user points at. Any combination of points, a box, a coarse mask and text.

    Attributes
    ----------
    points_uv : (N, 2) float64
        Click positions, pixels (u = column, v = row).
    point_labels : (N,) int8
        1 = on the object (positive), 0 = not on it (negative).
    box_xyxy : (4,) float64 or None
        ``x0, y0, x1, y1`` in pixels, x1 > x0, y1 > y0.
    mask : (H, W) bool or None
        A coarse mask of the object (e.g. the previous frame's mask).
    text : str or None
        A phrase ("red mug"); only text-capable backends accept it.
    """

    points_uv: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    point_labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int8))
    box_xyxy: np.ndarray | None = None
    mask: np.ndarray | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        pts = np.asarray(self.points_uv, dtype=np.float64).reshape(-1, 2) if np.size(self.points_uv) else np.zeros((0, 2))
        labels = np.asarray(self.point_labels, dtype=np.int8).reshape(-1) if np.size(self.point_labels) else np.ones(len(pts), np.int8)
        if len(labels) != len(pts):
            raise PromptError(f"got {len(pts)} points but {len(labels)} labels; give one label (1 or 0) per point")
        if not np.all(np.isin(labels, (0, 1))):
            raise PromptError(f"point labels must be 1 (positive) or 0 (negative), got {sorted(set(labels.tolist()))}")
        if not np.all(np.isfinite(pts)):
            raise PromptError("point coordinates must be finite pixel positions")
        box = None
        if self.box_xyxy is not None:
            box = np.asarray(self.box_xyxy, dtype=np.float64).reshape(-1)
            if box.shape != (4,) or not np.all(np.isfinite(box)):
                raise PromptError(f"box must be 4 finite numbers x0,y0,x1,y1 in pixels, got {self.box_xyxy!r}")
            if box[2] <= box[0] or box[3] <= box[1]:
                raise PromptError(
                    f"box {box.tolist()} is empty: need x1 > x0 and y1 > y0 (pixels, x0,y0 top-left, x1,y1 bottom-right)"
                )
        mask = None
        if self.mask is not None:
            mask = np.asarray(self.mask)
            if mask.ndim != 2:
                raise PromptError(f"mask prompt must be an (H, W) image, got shape {mask.shape}")
            mask = mask > 0 if mask.dtype != bool else mask
            if not mask.any():
                raise PromptError("mask prompt is empty (no pixel set); draw at least part of the object")
        text = self.text.strip() if isinstance(self.text, str) else None
        if self.text is not None and not text:
            raise PromptError("text prompt is empty; give a phrase such as 'red mug'")
        if not len(pts) and box is None and mask is None and text is None:
            raise PromptError("empty prompt: give at least one point, a box, a mask or a text phrase")
        if len(pts) and not (labels == 1).any() and box is None and mask is None:
            raise PromptError("only negative points given; add a positive point, a box or a mask on the object")
        for name, val in (("points_uv", pts), ("point_labels", labels), ("box_xyxy", box), ("mask", mask)):
            if val is not None:
                val.setflags(write=False)
                object.__setattr__(self, name, val)
        object.__setattr__(self, "text", text)

    # --- construction -----------------------------------------------------------------------------
    @classmethod
    def from_point(cls, u: float, v: float, positive: bool = True) -> Prompt:
        return cls(points_uv=[[u, v]], point_labels=[1 if positive else 0])

    @classmethod
    def from_box(cls, x0: float, y0: float, x1: float, y1: float) -> Prompt:
        return cls(box_xyxy=[x0, y0, x1, y1])

    def to_dict(self) -> dict:
        """The JSON form ``{"points_uv", "point_labels", "box_xyxy", "text"}`` (a mask prompt is not included:
        it travels as an image beside the JSON)."""
        d: dict = {}
        if len(self.points_uv):
            d["points_uv"] = self.points_uv.tolist()
            d["point_labels"] = self.point_labels.astype(int).tolist()
        if self.box_xyxy is not None:
            d["box_xyxy"] = self.box_xyxy.tolist()
        if self.text is not None:
            d["text"] = self.text
        return d

    def describe(self) -> dict:
        """:meth:`to_dict` plus the mask prompt's area, for reports."""
        return self.to_dict() | ({"mask_area_px": int(self.mask.sum())} if self.mask is not None else {})

    @classmethod
    def from_dict(cls, d: dict, mask: np.ndarray | None = None) -> Prompt:
        """A prompt from its JSON form (see :meth:`to_dict`) and an optional mask; labels default to positive."""
        if not isinstance(d, dict):
            raise PromptError(f"a prompt is a JSON object with points_uv, point_labels, box_xyxy or text, got "
                              f"{type(d).__name__}")
        unknown = sorted(str(k) for k in set(d) - {"points_uv", "point_labels", "box_xyxy", "text"})
        if unknown:
            raise PromptError(f"unknown prompt field(s) {unknown}; a prompt has points_uv, point_labels, box_xyxy, text")
        points = d.get("points_uv") or []
        labels = d.get("point_labels")
        try:
            points = np.array(points, np.float64).reshape(-1, 2)
        except (TypeError, ValueError):
            raise PromptError(f"points_uv must be a list of [u, v] pixel pairs, got {str(d.get('points_uv'))[:60]}") from None
        text = d.get("text")
        if text is not None and not isinstance(text, str):
            raise PromptError(f"text must be a string, got {type(text).__name__}")
        return cls(points_uv=points, point_labels=labels if labels is not None else [1] * len(points),
                   box_xyxy=d.get("box_xyxy"), mask=mask, text=text)

    # --- views --------------------------------------------------------------------------------------
    @property
    def positive_points(self) -> np.ndarray:
        return self.points_uv[self.point_labels == 1]

    @property
    def negative_points(self) -> np.ndarray:
        return self.points_uv[self.point_labels == 0]

    @property
    def kind(self) -> str:
        parts = [k for k, present in (("points", len(self.points_uv)), ("box", self.box_xyxy is not None),
                                      ("mask", self.mask is not None), ("text", self.text is not None)) if present]
        return "+".join(parts)

    def validate_for(self, width: int, height: int) -> None:
        """Raise :class:`PromptError` when the prompt does not fit a ``width`` × ``height`` image."""
        pts = self.points_uv
        if len(pts):
            bad = (pts[:, 0] < 0) | (pts[:, 0] > width - 1) | (pts[:, 1] < 0) | (pts[:, 1] > height - 1)
            if bad.any():
                u, v = pts[bad][0]
                raise PromptError(
                    f"point ({u:g}, {v:g}) is outside the {width}x{height} image; points are (u=column, v=row) "
                    f"with 0 <= u <= {width - 1} and 0 <= v <= {height - 1}"
                )
        if self.box_xyxy is not None:
            x0, y0, x1, y1 = self.box_xyxy
            if x1 <= 0 or y1 <= 0 or x0 >= width - 1 or y0 >= height - 1:
                raise PromptError(f"box {self.box_xyxy.tolist()} lies entirely outside the {width}x{height} image")
        if self.mask is not None and self.mask.shape != (height, width):
            raise PromptError(
                f"mask prompt is {self.mask.shape[1]}x{self.mask.shape[0]} but the frame is {width}x{height}"
            )

    def clipped_box(self, width: int, height: int) -> np.ndarray | None:
        """The box clipped to the image, as int pixel bounds ``x0, y0, x1, y1`` (inclusive-exclusive)."""
        if self.box_xyxy is None:
            return None
        x0, y0, x1, y1 = self.box_xyxy
        return np.array([max(0, int(np.floor(x0))), max(0, int(np.floor(y0))),
                         min(width, int(np.ceil(x1))), min(height, int(np.ceil(y1)))])


@dataclass(frozen=True, eq=False)
class MaskSet:
    """K candidate masks for one prompt (or one per object for segment-everything).

    Attributes
    ----------
    masks : (K, H, W) bool
    scores : (K,) float32
        Predicted quality in [0, 1] (higher is better), comparable across candidates of one set.
    granularity : tuple of K str
        ``"part"``, ``"whole"`` or ``"group"`` for each candidate.
    logits : (K, H, W) float32 or None
        Soft mask logits (> 0 inside); their transition band width measures boundary uncertainty.
    backend : str
        Name of the segmenter that produced it.
    details : dict
        Backend-specific per-candidate diagnostics (e.g. ``stability`` (K,), ``contrast`` (K,)).
    """

    masks: np.ndarray
    scores: np.ndarray
    granularity: tuple[str, ...]
    logits: np.ndarray | None = None
    backend: str = ""
    prompt: Prompt | None = None
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        masks = np.asarray(self.masks)
        if masks.ndim == 2:
            masks = masks[None]
        if masks.ndim != 3:
            raise ShapeError(f"masks must be (K, H, W), got {masks.shape}")
        masks = masks.astype(bool, copy=False)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if len(scores) != len(masks):
            raise ShapeError(f"{len(masks)} masks but {len(scores)} scores")
        gran = tuple(self.granularity)
        if len(gran) != len(masks):
            raise ShapeError(f"{len(masks)} masks but {len(gran)} granularity labels")
        bad = [g for g in gran if g not in GRANULARITIES]
        if bad:
            raise ShapeError(f"granularity labels must be in {GRANULARITIES}, got {bad}")
        logits = None
        if self.logits is not None:
            logits = np.asarray(self.logits, dtype=np.float32)
            if logits.shape != masks.shape:
                raise ShapeError(f"logits shape {logits.shape} differs from masks shape {masks.shape}")
            logits.setflags(write=False)
        masks.setflags(write=False)
        scores.setflags(write=False)
        object.__setattr__(self, "masks", masks)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "granularity", gran)
        object.__setattr__(self, "logits", logits)

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, index) -> MaskSet:
        idx = np.atleast_1d(np.arange(len(self))[index])
        return MaskSet(
            self.masks[idx], self.scores[idx], tuple(self.granularity[i] for i in idx),
            None if self.logits is None else self.logits[idx], self.backend, self.prompt,
            {k: (np.asarray(v)[idx] if isinstance(v, np.ndarray | list) and len(v) == len(self) else v)
             for k, v in self.details.items()},
        )

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the masks."""
        return self.masks.shape[1], self.masks.shape[2]

    @cached_property
    def areas(self) -> np.ndarray:
        """(K,) int64 pixel count of each mask."""
        return self.masks.sum(axis=(1, 2), dtype=np.int64)

    def select(self, policy: str = "auto") -> int:
        """Index of the candidate chosen by ``policy`` (see :func:`select_candidate`)."""
        return select_candidate(self, policy)

    def top(self, k: int) -> MaskSet:
        """The k best-scoring candidates, best first."""
        return self[np.argsort(-self.scores, kind="stable")[:k]]


def select_candidate(mask_set: MaskSet, policy: str = "auto") -> int:
    """Choose one candidate.

    ``part``/``whole``/``group`` take the best-scoring candidate with that label, falling back to the
    nearest granularity present (part → whole → group; whole → group → part; group → whole → part);
    ``auto`` (SAM's convention) takes the best score overall, preferring ``whole`` on ties within 0.02.
    """
    if policy not in POLICIES:
        raise PromptError(f"granularity policy must be one of {POLICIES}, got {policy!r}")
    if len(mask_set) == 0:
        raise ShapeError("cannot select from an empty MaskSet")
    labels = np.array(mask_set.granularity)
    scores = mask_set.scores.astype(np.float64)
    if policy == "auto":
        best = float(scores.max())
        whole = np.flatnonzero((labels == "whole") & (scores >= best - 0.02))
        return int(whole[np.argmax(scores[whole])]) if len(whole) else int(np.argmax(scores))
    order = {"part": ("part", "whole", "group"), "whole": ("whole", "group", "part"), "group": ("group", "whole", "part")}[policy]
    for g in order:
        idx = np.flatnonzero(labels == g)
        if len(idx):
            return int(idx[np.argmax(scores[idx])])
    return int(np.argmax(scores))
