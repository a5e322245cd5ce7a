"""Open-vocabulary labels for masks, and text prompts answered by labelling segment-everything's masks.

A labeller (a CLIP-family model, :class:`graspseg.segment.backends.clip.ClipLabeller`) embeds one crop per
mask and a list of phrases into the same space; their scaled cosine similarities are the model's logits.
This module holds the parts that need no model:

* :func:`mask_crop`: the square crop the model sees for one mask, with context around the mask and the
  background blurred, masked out or kept;
* :class:`MaskLabels`: K masks × P phrases logits → each mask's label, its margin over the runner-up phrase
  and an ``ambiguous`` flag; :func:`match_phrase`: one phrase → which mask it names, with the margin over
  the runner-up mask;
* :class:`LabelledSegmenter`: any segmenter with ``segment_all`` answers ``Prompt(text=...)`` by
  labelling the masks it finds, picking the best match, and flagging (never silently resolving) a tie.

Margins are in logit units (natural log-odds): a margin of 1 means the model finds the best match about
e ≈ 2.7 times likelier than the runner-up.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from functools import cached_property

import cv2
import numpy as np

from ..core.errors import ConfigError, MaskError, PromptError, SegmentationError, ShapeError
from ..core.frame import RGBDFrame
from .types import MaskSet, Prompt

log = logging.getLogger(__name__)

#: What happens to the pixels of a crop outside the mask.
BACKGROUNDS: tuple[str, ...] = ("blur", "mask", "none")
#: How a labeller turns logits into probabilities: CLIP's softmax over phrases, SigLIP's per-phrase sigmoid.
SCORINGS: tuple[str, ...] = ("softmax", "sigmoid")
#: Margin (log-odds) under which two phrases, or two masks, count as scoring alike.
DEFAULT_MIN_MARGIN = 1.0
#: What ``LabelledSegmenter`` does with an ambiguous text prompt.
ON_AMBIGUOUS: tuple[str, ...] = ("flag", "error")


# --------------------------------------------------------------------------------------------------
# Crops
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CropOptions:
    """How the crop of one mask is made.

    Attributes
    ----------
    context : float
        Context kept around the mask's bounding box on every side, as a fraction of its longer side
        (0.2: a 100 px object gets 20 px on each side). The crop is square and centred on the box.
    background : {"blur", "mask", "none"}
        Pixels outside the mask: Gaussian-blurred (the object stays sharp, its surroundings stay
        recognisable), replaced by ``fill`` (the model's mean colour: zero after normalisation), or kept.
    blur_sigma : float
        Gaussian sigma of ``blur`` as a fraction of the crop side.
    min_side_px : int
        Smallest crop side, pixels of the frame (tiny masks get more context).
    """

    context: float = 0.2
    background: str = "blur"
    blur_sigma: float = 0.04
    min_side_px: int = 16

    def __post_init__(self) -> None:
        ok = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)  # noqa: E731
        if not ok(self.context) or not 0 <= self.context <= 2:
            raise ConfigError(f"crop context is {self.context!r}; expected a fraction of the mask's size in [0, 2] "
                              "(0.2 keeps 20 % of the object's size around it)")
        if self.background not in BACKGROUNDS:
            raise ConfigError(f"crop background is {self.background!r}; expected one of {', '.join(BACKGROUNDS)}")
        if not ok(self.blur_sigma) or not 0 < self.blur_sigma <= 1:
            raise ConfigError(f"crop blur_sigma is {self.blur_sigma!r}; expected a fraction of the crop side in (0, 1]")
        if not isinstance(self.min_side_px, int) or isinstance(self.min_side_px, bool) or self.min_side_px < 1:
            raise ConfigError(f"crop min_side_px is {self.min_side_px!r}; expected a positive integer (pixels)")


def check_masks(color: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``masks`` as (K, H, W) bool matching ``color`` (H, W, 3) uint8; :class:`MaskError` names an empty mask."""
    color = np.asarray(color)
    if color.ndim != 3 or color.shape[2] != 3 or color.dtype != np.uint8:
        raise ShapeError(f"colour image must be (H, W, 3) uint8 RGB, got {color.shape} {color.dtype}")
    m = np.asarray(masks)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3 or m.shape[1:] != color.shape[:2]:
        raise ShapeError(f"masks must be (K, H, W) with (H, W) = {color.shape[:2]} of the colour image, got {m.shape}")
    m = m.astype(bool, copy=False)
    empty = np.flatnonzero(~m.reshape(len(m), -1).any(axis=1))
    if len(empty):
        raise MaskError(f"mask {int(empty[0])} is empty (no pixel set), so there is nothing to label; "
                        "drop empty masks before labelling")
    return m


def crop_box(mask: np.ndarray, context: float = 0.2, min_side_px: int = 16) -> np.ndarray:
    """(4,) int64 square crop ``x0, y0, x1, y1`` (x1, y1 exclusive) around ``mask`` (H, W) bool, pixels.

    The side is the mask's longer bounding-box side times ``1 + 2 * context`` (at least ``min_side_px``),
    centred on the box; it may extend past the image (:func:`mask_crop` pads there).
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        raise MaskError("mask is empty (no pixel set), so it has no crop; drop empty masks before labelling")
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    side = max(int(math.ceil(max(y1 - y0, x1 - x0) * (1.0 + 2.0 * context))), int(min_side_px))
    cx2, cy2 = x0 + x1, y0 + y1  # twice the centre, integer
    bx0, by0 = (cx2 - side) // 2, (cy2 - side) // 2
    return np.array([bx0, by0, bx0 + side, by0 + side], np.int64)


def _cut(image: np.ndarray, box: np.ndarray, fill) -> np.ndarray:
    """The ``box`` region of ``image`` (H, W[, C]), padded with ``fill`` where it leaves the image."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in box)
    out = np.empty((y1 - y0, x1 - x0, *image.shape[2:]), image.dtype)
    out[...] = fill
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


def blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur of (H, W, 3) uint8 ``image`` with sigma ``sigma_px``; a wide blur runs at a quarter of the
    resolution (sigma / 4, then resized back): the same picture at a tenth of the cost."""
    h, w = image.shape[:2]
    if sigma_px < 4 or min(h, w) < 16:
        return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma_px, borderType=cv2.BORDER_REPLICATE)
    small = cv2.resize(image, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma_px / 4, borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def mask_crop(color: np.ndarray, mask: np.ndarray, options: CropOptions = CropOptions(), *, size: int | None = None,
              fill: tuple[int, int, int] = (128, 128, 128), resample: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The square crop a labeller sees for one mask.

    Parameters
    ----------
    color : (H, W, 3) uint8
        RGB frame.
    mask : (H, W) bool
        The object; must not be empty.
    options : CropOptions
        Context, background treatment, blur strength.
    size : int, optional
        Side of the returned crop in pixels (the model's input); ``None`` keeps the frame's resolution.
        The image is resized with PIL filter ``resample`` (3 = bicubic, as CLIP's processor), the mask
        by area (or nearest neighbour when that would lose it); the background is treated after resizing.
    fill : (3,) int
        RGB of the padding past the image border and of the ``mask`` background.

    Returns
    -------
    crop : (S, S, 3) uint8
    crop_mask : (S, S) bool
        Where the object is in the crop.
    box_xyxy : (4,) int64
        The crop's square in frame pixels (may extend past the image).
    """
    mask = np.asarray(mask, bool)
    box = crop_box(mask, options.context, options.min_side_px)
    crop = _cut(np.asarray(color, np.uint8), box, np.asarray(fill, np.uint8))
    cmask = _cut(mask, box, False)
    side = crop.shape[0]
    if size is not None and size != side:
        from PIL import Image

        crop = np.asarray(Image.fromarray(crop).resize((size, size), resample=resample))
        small = cv2.resize(cmask.astype(np.float32), (size, size),
                           interpolation=cv2.INTER_AREA if size < side else cv2.INTER_LINEAR) >= 0.5
        cmask = small if small.any() else cv2.resize(cmask.astype(np.uint8), (size, size),
                                                     interpolation=cv2.INTER_NEAREST).astype(bool)
        if not cmask.any():  # thinner than one model pixel: keep the pixel under its centre
            ys, xs = np.nonzero(_cut(mask, box, False))
            cmask[min(size - 1, int(ys.mean() * size / side)), min(size - 1, int(xs.mean() * size / side))] = True
        side = size
    if options.background == "mask":
        crop = crop.copy()
        crop[~cmask] = fill
    elif options.background == "blur":
        crop = np.where(cmask[..., None], crop, blur(crop, max(0.5, options.blur_sigma * side)))
    return np.ascontiguousarray(crop), cmask, box


# --------------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------------
def parse_phrases(phrases) -> tuple[str, ...]:
    """Phrases from ``"mug, bowl,box"`` or a list: stripped, empty ones dropped, duplicates removed (first kept)."""
    if isinstance(phrases, str):
        items = phrases.split(",")
    elif isinstance(phrases, (list, tuple)):
        items = list(phrases)
    else:
        raise PromptError(f"phrases must be a comma-separated string or a list of strings, got {type(phrases).__name__}")
    bad = [p for p in items if not isinstance(p, str)]
    if bad:
        raise PromptError(f"phrases must be strings, got {bad[0]!r}")
    out: list[str] = []
    for p in items:
        p = " ".join(p.split())
        if p and p.lower() not in (q.lower() for q in out):
            out.append(p)
    if not out:
        raise PromptError(f"no phrases given (got {phrases!r}); name what to look for, e.g. --phrases 'mug,bowl,box'")
    return tuple(out)


def _top2_gap(logits: np.ndarray, axis: int) -> np.ndarray:
    """Best minus second-best along ``axis`` (inf when there is only one)."""
    if logits.shape[axis] < 2:
        return np.full(np.delete(logits.shape, axis), np.inf, np.float64)
    part = -np.partition(-logits.astype(np.float64), 1, axis=axis)
    return np.take(part, 0, axis=axis) - np.take(part, 1, axis=axis)


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    z = x.astype(np.float64) - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


@dataclass(frozen=True, eq=False)
class TextMatch:
    """Which of K masks a phrase names.

    Attributes
    ----------
    phrase : str
    logits : (K,) float32
        The labeller's logit of each mask for the phrase.
    min_margin : float
        Margin under which the match is ambiguous.
    order : (K,) int64
        Masks best first.
    probabilities : (K,) float32
        Softmax of ``logits`` over the masks: the model's belief that each mask is the one named.
    margin : float
        ``logits[best] - logits[runner_up]`` (log-odds; ``inf`` with one mask).
    ambiguous : bool
        ``margin < min_margin``: two masks score alike, the phrase does not single one out.
    scoring : {"softmax", "sigmoid"}
        The labeller's; with ``sigmoid`` (SigLIP) :meth:`to_dict` adds ``phrase_probability``, the best mask's
        own probability of showing the phrase (low when the phrase names nothing in view).
    """

    phrase: str
    logits: np.ndarray
    min_margin: float = DEFAULT_MIN_MARGIN
    scoring: str = "softmax"

    def __post_init__(self) -> None:
        lg = np.asarray(self.logits, np.float32).reshape(-1)
        if not len(lg):
            raise ShapeError(f"no masks to match '{self.phrase}' against")
        if self.scoring not in SCORINGS:
            raise ConfigError(f"scoring must be one of {SCORINGS}, got {self.scoring!r}")
        lg.setflags(write=False)
        object.__setattr__(self, "logits", lg)

    @cached_property
    def order(self) -> np.ndarray:
        return np.argsort(-self.logits, kind="stable")

    @cached_property
    def probabilities(self) -> np.ndarray:
        return _softmax(self.logits, 0).astype(np.float32)

    @property
    def best(self) -> int:
        return int(self.order[0])

    @property
    def runner_up(self) -> int | None:
        return int(self.order[1]) if len(self.order) > 1 else None

    @property
    def margin(self) -> float:
        return float(_top2_gap(self.logits, 0))

    @property
    def ambiguous(self) -> bool:
        return bool(self.margin < self.min_margin)

    def to_dict(self) -> dict:
        """JSON form: phrase, best / runner-up index, probability and logit, margin, ambiguous."""
        r = self.runner_up
        return {"phrase": self.phrase, "best_index": self.best, "probability": float(self.probabilities[self.best]),
                "logit": float(self.logits[self.best]),
                "runner_up_index": r, "runner_up_probability": None if r is None else float(self.probabilities[r]),
                "margin": None if math.isinf(self.margin) else round(self.margin, 4), "min_margin": self.min_margin,
                "ambiguous": self.ambiguous,
                "phrase_probability": (float(1.0 / (1.0 + math.exp(-float(self.logits[self.best]))))
                                       if self.scoring == "sigmoid" else None)}


def match_phrase(logits: np.ndarray, phrase: str, min_margin: float = DEFAULT_MIN_MARGIN,
                 scoring: str = "softmax") -> TextMatch:
    """The mask ``phrase`` names among K masks, from the labeller's (K,) logits for it."""
    return TextMatch(phrase, logits, float(min_margin), scoring)


@dataclass(frozen=True, eq=False)
class MaskLabels:
    """Labels of K masks from P phrases.

    Attributes
    ----------
    phrases : tuple of P str
    logits : (K, P) float32
        The labeller's image-text logits (logit scale × cosine similarity, plus SigLIP's bias).
    scoring : {"softmax", "sigmoid"}
        ``softmax`` (CLIP): probabilities over the phrases sum to 1; ``sigmoid`` (SigLIP): each phrase's
        probability on its own.
    min_margin : float
        Margin (log-odds) under which a mask's label is ambiguous.
    """

    phrases: tuple[str, ...]
    logits: np.ndarray
    scoring: str = "softmax"
    min_margin: float = DEFAULT_MIN_MARGIN
    details: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        phrases = tuple(self.phrases)
        lg = np.asarray(self.logits, np.float32)
        if lg.ndim != 2 or lg.shape[1] != len(phrases):
            raise ShapeError(f"logits must be (K, {len(phrases)}) for {len(phrases)} phrases, got {lg.shape}")
        if self.scoring not in SCORINGS:
            raise ConfigError(f"scoring must be one of {SCORINGS}, got {self.scoring!r}")
        lg.setflags(write=False)
        object.__setattr__(self, "phrases", phrases)
        object.__setattr__(self, "logits", lg)

    def __len__(self) -> int:
        return len(self.logits)

    @cached_property
    def probabilities(self) -> np.ndarray:
        """(K, P) float32: softmax over phrases (CLIP) or per-phrase sigmoid (SigLIP)."""
        if self.scoring == "softmax":
            return _softmax(self.logits, 1).astype(np.float32) if self.logits.size else self.logits.copy()
        return (1.0 / (1.0 + np.exp(-self.logits.astype(np.float64)))).astype(np.float32)

    @cached_property
    def best(self) -> np.ndarray:
        """(K,) int64: index of each mask's best phrase."""
        return np.argmax(self.logits, axis=1) if len(self) else np.zeros(0, np.int64)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.phrases[i] for i in self.best)

    @cached_property
    def margins(self) -> np.ndarray:
        """(K,) float64: logit of the best phrase minus the runner-up phrase's (inf with one phrase)."""
        return _top2_gap(self.logits, 1) if len(self) else np.zeros(0)

    @property
    def ambiguous(self) -> np.ndarray:
        """(K,) bool: the best and the runner-up phrase score alike."""
        return self.margins < self.min_margin

    def match(self, phrase: str) -> TextMatch:
        """Which mask ``phrase`` (one of :attr:`phrases`) names."""
        if phrase not in self.phrases:
            raise PromptError(f"'{phrase}' is not one of the labelled phrases {list(self.phrases)}; label with it first")
        return match_phrase(self.logits[:, self.phrases.index(phrase)], phrase, self.min_margin, self.scoring)

    def object_dict(self, k: int) -> dict:
        """JSON form of mask ``k``'s label: label, probability, margin, ambiguous, every phrase's probability."""
        m = float(self.margins[k])
        return {"label": self.phrases[int(self.best[k])], "probability": float(self.probabilities[k, self.best[k]]),
                "logit": float(self.logits[k, self.best[k]]), "margin": None if math.isinf(m) else round(m, 4),
                "ambiguous": bool(self.ambiguous[k]),
                "probabilities": {p: round(float(self.probabilities[k, j]), 5) for j, p in enumerate(self.phrases)}}


# --------------------------------------------------------------------------------------------------
# Text prompts for any segmenter that segments everything
# --------------------------------------------------------------------------------------------------
def interior_point(mask: np.ndarray) -> tuple[float, float]:
    """Pixel (u, v) deepest inside ``mask`` (H, W) bool: the maximum of its distance transform."""
    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    v, u = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(u), float(v)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


class LabelledSegmenter:
    """A segmenter that also takes ``Prompt(text=...)``: segment everything, label each mask, pick the best.

    Every other prompt, attribute and method is the wrapped segmenter's. For a text prompt:

    1. ``segment_all`` of the wrapped segmenter (once per frame);
    2. one crop per mask embedded by ``labeller`` (once per frame; phrases are cached by the labeller);
    3. the mask whose logit for the phrase is highest is the answer; its margin over the runner-up mask
       and the ``ambiguous`` flag (margin below ``min_margin``) go in ``details["text_match"]``;
       ``on_ambiguous="error"`` raises instead of answering;
    4. with ``reprompt`` (default), the wrapped segmenter is clicked at the chosen mask's deepest
       interior point, so the answer carries the usual candidates with their soft logits (boundary-error
       cues), restricted to those of the labelled object: candidates overlapping the chosen mask
       (IoU >= 0.5) and parts lying inside it (>= 90 % of their pixels), not groups reaching other objects.
       When no candidate overlaps the chosen mask the chosen mask is returned alone.

    A wrapped segmenter that accepts text itself (``sam3``, ``grounded``) answers text prompts itself.

    Parameters
    ----------
    segmenter : Segmenter
        Any backend with ``set_frame``, ``predict`` and ``segment_all``.
    labeller : object
        With ``embed_masks(color, masks) -> (K, D)``, ``embed_phrases(phrases) -> (P, D)``,
        ``logits(image_emb, text_emb) -> (K, P)``, ``scoring`` and ``describe()``.
    min_margin : float
        Log-odds margin under which two masks count as matching the phrase alike.
    on_ambiguous : {"flag", "error"}
        ``flag``: answer with ``ambiguous`` set (and a logged warning); ``error``: raise
        :class:`~graspseg.core.errors.SegmentationError` naming both candidates.
    """

    accepts_text = True

    def __init__(self, segmenter, labeller, *, min_margin: float = DEFAULT_MIN_MARGIN, on_ambiguous: str = "flag",
                 reprompt: bool = True) -> None:
        for attr in ("set_frame", "predict", "segment_all"):
            if not callable(getattr(segmenter, attr, None)):
                raise ConfigError(f"a labelled segmenter needs a segmenter with {attr}(), got {type(segmenter).__name__}")
        for attr in ("embed_masks", "embed_phrases", "logits"):
            if not callable(getattr(labeller, attr, None)):
                raise ConfigError(f"labeller must have {attr}() (a CLIP-family labeller), got {type(labeller).__name__}")
        if isinstance(min_margin, bool) or not isinstance(min_margin, (int, float)) or not 0 <= min_margin < math.inf:
            raise ConfigError(f"min_margin is {min_margin!r}; expected a finite log-odds margin >= 0 (default 1.0)")
        if on_ambiguous not in ON_AMBIGUOUS:
            raise ConfigError(f"on_ambiguous is {on_ambiguous!r}; expected one of {', '.join(ON_AMBIGUOUS)}")
        if not isinstance(reprompt, bool):
            raise ConfigError(f"reprompt is {reprompt!r}; expected true or false")
        self.segmenter = segmenter
        self.labeller = labeller
        self.min_margin = float(min_margin)
        self.on_ambiguous = on_ambiguous
        self.reprompt = reprompt
        self._frame: RGBDFrame | None = None
        self._instances: MaskSet | None = None
        self._embeddings: np.ndarray | None = None

    def __getattr__(self, name: str):
        if name in ("segmenter", "labeller"):  # not set yet (during construction or unpickling)
            raise AttributeError(name)
        return getattr(self.segmenter, name)

    @property
    def name(self) -> str:
        return self.segmenter.name

    def __repr__(self) -> str:
        return f"LabelledSegmenter({self.segmenter!r}, {self.labeller!r})"

    def set_frame(self, frame: RGBDFrame) -> None:
        if frame is not self._frame:
            self._instances = self._embeddings = None
        self._frame = frame
        self.segmenter.set_frame(frame)

    def segment_all(self, frame: RGBDFrame | None = None) -> MaskSet:
        """The wrapped segmenter's ``segment_all`` (cached for the current frame)."""
        if frame is not None:
            self.set_frame(frame)
        if self._frame is None:
            raise SegmentationError(f"{self.name}: no frame set; call set_frame(frame) before segment_all()")
        if self._instances is None:
            self._instances = self.segmenter.segment_all()
            self._embeddings = None
        return self._instances

    def instance_embeddings(self) -> np.ndarray:
        """(K, D) float32 embeddings of the current frame's ``segment_all`` masks (cached)."""
        instances = self.segment_all()
        if self._embeddings is None:
            self._embeddings = self.labeller.embed_masks(self._frame.color, instances.masks)
        return self._embeddings

    def label(self, phrases, frame: RGBDFrame | None = None) -> tuple[MaskSet, MaskLabels]:
        """Every object of ``frame`` (or the current one) and its label among ``phrases``."""
        phrases = parse_phrases(phrases)
        instances = self.segment_all(frame)
        logits = self.labeller.logits(self.instance_embeddings(), self.labeller.embed_phrases(phrases))
        return instances, MaskLabels(phrases, logits, self.labeller.scoring, self.min_margin)

    def predict(self, prompt: Prompt) -> MaskSet:
        if not isinstance(prompt, Prompt):
            raise PromptError(f"predict takes a graspseg Prompt, got {type(prompt).__name__}; build one with Prompt(...)")
        if prompt.text is None or getattr(self.segmenter, "accepts_text", False):
            return self.segmenter.predict(prompt)
        if prompt.kind != "text":
            raise PromptError(f"text cannot be combined with {prompt.kind.replace('+text', '')} when text is answered "
                              "by labelling; give the phrase alone, or the clicks/box/mask alone")
        if self._frame is None:
            raise SegmentationError(f"{self.name}: no frame set; call set_frame(frame) before predict(prompt)")
        instances = self.segment_all()
        if len(instances) == 0:
            raise SegmentationError(
                f"'{prompt.text}': segment-all found no object on this frame, so there is nothing to label; "
                "check the frame (objects on a visible support), or click on the object instead")
        logits = self.labeller.logits(self.instance_embeddings(), self.labeller.embed_phrases([prompt.text]))[:, 0]
        match = match_phrase(logits, prompt.text, self.min_margin, getattr(self.labeller, "scoring", "softmax"))
        doc = match.to_dict()
        if match.ambiguous:
            r = match.runner_up
            what = (f"'{prompt.text}' is ambiguous: objects {match.best} and {r} score alike (probabilities "
                    f"{match.probabilities[match.best]:.2f} and {match.probabilities[r]:.2f}, margin {match.margin:.2f} "
                    f"< {self.min_margin:g} log-odds)")
            if self.on_ambiguous == "error":
                raise SegmentationError(f"{what}; add a distinguishing word (colour, position), click on the object, "
                                        "or lower min_margin")
            log.warning("%s; answering with object %d", what, match.best)
        chosen = instances.masks[match.best]
        details = {"text_match": doc, "segment_all_index": match.best}
        if self.reprompt:
            click = interior_point(chosen)
            result = self.segmenter.predict(Prompt.from_point(*click))
            ious = np.array([_iou(chosen, m) for m in result.masks])
            inside = np.array([np.logical_and(chosen, m).sum() / max(1, m.sum()) for m in result.masks])
            keep = np.flatnonzero((ious >= 0.5) | (inside >= 0.9))  # the object and its parts, not a larger group
            if (ious[keep] >= 0.5).any():
                details |= {"click_uv": [round(click[0], 1), round(click[1], 1)],
                            "segment_all_iou": round(float(ious.max()), 4)}
                result = replace(result[keep], prompt=prompt)
                return replace(result, details={**result.details, **details})
            log.info("'%s': the click at (%.0f, %.0f) gave no mask overlapping the labelled one (IoU %.2f); "
                     "answering with the segment-all mask", prompt.text, *click, float(ious.max()))
        logit = None if instances.logits is None else instances.logits[match.best][None]
        return MaskSet(chosen[None], [float(instances.scores[match.best])], ("whole",), logit, self.name, prompt,
                       details)


def split_labeller_options(options: dict) -> tuple[dict, dict]:
    """``segment.labeller`` options → (labeller factory options, :class:`LabelledSegmenter` options)."""
    if not isinstance(options, dict):
        raise ConfigError(f"segment.labeller is {options!r}; expected a mapping such as {{model: <checkpoint dir>}}")
    wrapper_keys = ("min_margin", "on_ambiguous", "reprompt")
    return ({k: v for k, v in options.items() if k not in wrapper_keys},
            {k: v for k, v in options.items() if k in wrapper_keys})


__all__ = [
    "BACKGROUNDS", "DEFAULT_MIN_MARGIN", "CropOptions", "LabelledSegmenter", "MaskLabels", "TextMatch",
    "check_masks", "crop_box", "interior_point", "mask_crop", "match_phrase", "parse_phrases", "split_labeller_options",
]
