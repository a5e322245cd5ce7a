"""Evaluation: mask metrics, the interactive click protocol, COCO-with-depth data sets, segmenter evaluation
and the boundary-error calibration. Definitions: ``docs/metrics.md``."""

from .boundary_error import (
    boundary_error_from_evaluation,
    measure_boundary_error,
    write_boundary_error_config,
    write_checkpoint_boundary_error,
)
from .clicks import MAX_CLICKS, NOC_THRESHOLDS, ClickTrace, first_click, next_click, noc, simulate_clicks
from .coco import export_coco, load_coco_dataset
from .datasets import (
    Dataset,
    Instance,
    Sample,
    dataset_summary,
    load_dataset,
    load_episodes,
    load_frame_folders,
)
from .metrics import (
    boundary_band,
    boundary_error_3d_mm,
    boundary_f_score,
    boundary_iou,
    davis_boundary_f,
    davis_boundary_map,
    davis_tolerance_px,
    mask_boundary,
    mask_centroid_in_camera,
    mask_iou,
    mask_scores,
    position_error_mm,
    rim_offsets_px,
    signed_boundary_offset_px,
)
from .rle import decode_polygons, decode_rle, decode_segmentation, encode_polygons, encode_rle
from .segmentation import Evaluation, evaluate_dataset, evaluate_sample, rim_offset_distribution, summarise

__all__ = [
    "MAX_CLICKS", "NOC_THRESHOLDS", "ClickTrace", "Dataset", "Evaluation", "Instance", "Sample", "boundary_band",
    "boundary_error_3d_mm", "boundary_error_from_evaluation", "write_checkpoint_boundary_error", "boundary_f_score", "boundary_iou", "dataset_summary", "davis_boundary_f",
    "davis_boundary_map", "davis_tolerance_px", "decode_polygons", "decode_rle", "decode_segmentation",
    "encode_polygons", "encode_rle", "evaluate_dataset", "evaluate_sample", "export_coco", "first_click",
    "load_coco_dataset", "load_dataset", "load_episodes", "load_frame_folders", "mask_boundary", "mask_centroid_in_camera",
    "mask_iou", "mask_scores", "measure_boundary_error", "next_click", "noc", "position_error_mm",
    "rim_offset_distribution", "rim_offsets_px", "signed_boundary_offset_px", "simulate_clicks", "summarise",
    "write_boundary_error_config",
]
