"""Frame sources: frame folders, plain files; RealSense cameras and SDK recordings in :mod:`.realsense` (extra
``realsense``; the recording files themselves, without the SDK, in :mod:`.realsense_file`), a software-device
camera in :mod:`.realsense_synthetic`, robot poses at capture in :mod:`.poses`, the native episode layout in
:mod:`.episode`, live-session recording in :mod:`.session`, and every kind of episode for the analysis in
:mod:`.sources`."""

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
