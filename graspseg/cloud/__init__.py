"""Mask → points: back-projection, depth cleanup, boundary band (object / background / unknown), support plane."""

from .band import compute_band
from .build import build_object_cloud, check_mask
from .cleanup import clean_depth, range_mask, surface_support
from .config import CloudConfig
from .interop import from_open3d, to_open3d
from .plane import fit_support_plane, strided_points
from .ply import read_ply, write_ply
from .types import BandLabel, ObjectCloud, SupportPlane

__all__ = [
    "BandLabel", "CloudConfig", "ObjectCloud", "SupportPlane", "build_object_cloud", "check_mask", "clean_depth",
    "compute_band", "fit_support_plane", "from_open3d", "range_mask", "read_ply", "strided_points",
    "surface_support", "to_open3d", "write_ply",
]
