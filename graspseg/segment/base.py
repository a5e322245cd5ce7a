"""The segmenter protocol and the backend registry."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..core.errors import ConfigError, PromptError
from ..core.frame import RGBDFrame
from ..core.registry import Registry
from .types import MaskSet, Prompt


@runtime_checkable
class Segmenter(Protocol):
    """A promptable segmenter.

    ``set_frame`` computes the per-frame embedding once (SAM's image encoder, rgbd's boundary maps);
    every ``predict`` then answers a prompt from it.
    """

    name: str
    accepts_text: bool

    def set_frame(self, frame: RGBDFrame) -> None: ...

    def predict(self, prompt: Prompt) -> MaskSet: ...

    def segment_all(self, frame: RGBDFrame | None = None) -> MaskSet: ...


#: Every segmenter backend. Entries are factories ``(**options) -> Segmenter``.
SEGMENTERS: Registry = Registry("segmenter", entry_point_group="graspseg.segmenters")
SEGMENTERS.register("rgbd", "graspseg.segment.backends.rgbd:RGBDSegmenter",
                    description="embedded colour+depth segmenter, no weights (default)")

#: Backends whose ``predict`` accepts ``Prompt.text``; kept here so error messages can name them
#: without importing heavy modules.
TEXT_BACKENDS: dict[str, str] = {}


def register_text_backend(name: str, extra: str) -> None:
    TEXT_BACKENDS[name] = extra


def text_prompt_error(backend: str) -> PromptError:
    """The error a backend without text support raises for a text prompt."""
    if TEXT_BACKENDS:
        options = ", ".join(f"'{n}' (pip install 'graspseg[{e}]')" for n, e in sorted(TEXT_BACKENDS.items()))
        hint = f"use a backend that accepts text: {options}"
    else:
        hint = "no installed backend accepts text; give a point, box or mask prompt instead"
    return PromptError(f"backend '{backend}' does not accept text prompts; {hint}, or configure a labeller checkpoint "
                       "(--labeller DIR, segment.labeller.model) to pick among its segment-all masks by label, "
                       "or give a point, box or mask")


#: Mask labellers (CLIP-family models). Entries are factories ``(model, **options) -> labeller``.
LABELLERS: Registry = Registry("labeller", entry_point_group="graspseg.labellers")


def create_labeller(name: str = "clip", **options):
    """Instantiate a registered labeller by name (``model=<checkpoint dir>`` plus its options)."""
    return LABELLERS.create(name, **options)


def create_segmenter(name: str = "rgbd", *, labeller=None, **options) -> Segmenter:
    """Instantiate a registered backend by name.

    ``labeller``: a labeller object, or the ``segment.labeller`` mapping (``model`` = a CLIP/SigLIP checkpoint,
    ``name`` = the registered labeller, default ``clip``, plus its options and ``min_margin``,
    ``on_ambiguous``, ``reprompt``). With one, the backend also answers text prompts by labelling the masks
    of its ``segment_all`` (:class:`~graspseg.segment.labelling.LabelledSegmenter`). ``None`` or ``{}``: none.

    Raises
    ------
    ConfigError
        The factory (e.g. a third-party entry point) built something that is not a :class:`Segmenter`; the
        message names the missing members. A ``labeller`` mapping names no checkpoint.
    """
    segmenter = SEGMENTERS.create(name, **options)
    missing = [m for m in ("name", "accepts_text", "set_frame", "predict", "segment_all") if not hasattr(segmenter, m)]
    if missing:
        raise ConfigError(f"segmenter '{name}' built a {type(segmenter).__name__} without {', '.join(missing)}; a "
                          "segmenter follows graspseg.segment.Segmenter (name, accepts_text, set_frame(frame), "
                          "predict(prompt) -> MaskSet, segment_all(frame) -> MaskSet; see docs/plugin.md)")
    if labeller is None or (isinstance(labeller, dict) and not labeller):
        return segmenter
    from .labelling import LabelledSegmenter, split_labeller_options

    wrap_options: dict = {}
    if isinstance(labeller, dict):
        labeller_options, wrap_options = split_labeller_options(labeller)
        if not labeller_options.get("model"):
            raise ConfigError(
                f"segment.labeller is {labeller!r} but names no checkpoint; set segment.labeller.model to a CLIP or "
                "SigLIP checkpoint directory (command line: --labeller DIR), or leave segment.labeller empty"
            )
        labeller = create_labeller(labeller_options.pop("name", "clip"), **labeller_options)
    return LabelledSegmenter(segmenter, labeller, **wrap_options)

# SAM family through Hugging Face transformers (extra ``sam``); see docs/sam_backends.md.
_HF = ("torch", "transformers")
SEGMENTERS.register("sam", "graspseg.segment.backends.sam:create_sam", requires=_HF, extra="sam",
                    description="SAM ViT-B/L/H and SAM-HQ via transformers (checkpoint dir or HF cache)")
SEGMENTERS.register("sam2", "graspseg.segment.backends.sam:create_sam2", requires=_HF, extra="sam",
                    description="SAM 2 / 2.1 Hiera and SAM 3 tracker via transformers")
SEGMENTERS.register("edgetam", "graspseg.segment.backends.sam:create_edgetam", requires=(*_HF, "timm", "torchvision"),
                    extra="edgetam", description="EdgeTAM via transformers (its RepViT backbone is a timm model, and "
                    "timm imports torchvision: needs timm and a torchvision matching the installed torch)")
SEGMENTERS.register("sam3", "graspseg.segment.backends.sam3:create_sam3", requires=_HF, extra="sam",
                    description="SAM 3 via transformers: a phrase in, every instance's mask out")
SEGMENTERS.register("grounded", "graspseg.segment.backends.grounding:GroundedSegmenter", requires=_HF, extra="sam",
                    description="text → boxes (OWLv2 or Grounding DINO) → any box-promptable segmenter")
LABELLERS.register("clip", "graspseg.segment.backends.clip:ClipLabeller", requires=(*_HF, "safetensors"), extra="labels",
                   description="CLIP, SigLIP and SigLIP 2 via transformers (checkpoint dir or HF cache)")
register_text_backend("grounded", "sam")
register_text_backend("sam3", "sam")
