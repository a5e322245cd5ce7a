"""Promptable segmentation: prompts, candidate mask sets, selection, backends."""

from .base import (
    LABELLERS,
    SEGMENTERS,
    TEXT_BACKENDS,
    Segmenter,
    create_labeller,
    create_segmenter,
    register_text_backend,
    text_prompt_error,
)
from .types import GRANULARITIES, POLICIES, MaskSet, Prompt, select_candidate

__all__ = [
    "GRANULARITIES", "LABELLERS", "POLICIES", "SEGMENTERS", "TEXT_BACKENDS", "MaskSet", "Prompt", "Segmenter",
    "create_labeller", "create_segmenter", "register_text_backend", "select_candidate", "text_prompt_error",
]
