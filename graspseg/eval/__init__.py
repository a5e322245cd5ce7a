"""Evaluation: segmentation metrics and interactive click simulation."""

from .clicks import first_click, next_click
from .metrics import boundary_f_score, boundary_iou, mask_boundary, mask_iou, signed_boundary_offset_px

__all__ = ["boundary_f_score", "boundary_iou", "first_click", "mask_boundary", "mask_iou", "next_click",
           "signed_boundary_offset_px"]
