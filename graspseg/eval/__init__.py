"""Evaluation: segmentation metrics and interactive click simulation."""

from .clicks import first_click, next_click
from .metrics import boundary_f_score, boundary_iou, mask_boundary, mask_iou

__all__ = ["boundary_f_score", "boundary_iou", "first_click", "mask_boundary", "mask_iou", "next_click"]
