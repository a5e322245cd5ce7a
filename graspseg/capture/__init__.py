"""Frame sources: frame folders, plain files (RealSense live and recordings come in their own modules)."""

from .frame_folder import (
    GroundTruthObject,
    frame_from_files,
    load_frame_folder,
    load_ground_truth,
    save_frame_folder,
)
from .images import read_color, read_depth_raw, read_mask, write_png

__all__ = [
    "GroundTruthObject", "frame_from_files", "load_frame_folder", "load_ground_truth", "read_color",
    "read_depth_raw", "read_mask", "save_frame_folder", "write_png",
]
