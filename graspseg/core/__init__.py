"""Core data model: transforms, cameras, frames, errors and the backend registry (numpy/scipy only)."""

from .camera import CameraIntrinsics, CameraRig, check_depth_scale
from .errors import (
    BackendNotFoundError,
    CalibrationError,
    CaptureTimeoutError,
    ConfigError,
    DeviceNotConnectedError,
    FrameMismatchError,
    GraspsegError,
    InputError,
    MaskError,
    MissingDependencyError,
    NoGraspError,
    NoSupportPlaneError,
    PromptError,
    SegmentationError,
    ShapeError,
    UnitsError,
)
from .frame import RGBDFrame
from .registry import Registry
from .transform import BASE, CAMERA, GRASP, OBJECT, TCP, Transform, check_rigid

__all__ = [
    "BASE", "CAMERA", "GRASP", "OBJECT", "TCP",
    "BackendNotFoundError", "CalibrationError", "CameraIntrinsics", "CameraRig", "CaptureTimeoutError",
    "ConfigError", "DeviceNotConnectedError", "FrameMismatchError", "GraspsegError", "InputError", "MaskError", "NoSupportPlaneError",
    "MissingDependencyError", "NoGraspError", "PromptError", "RGBDFrame", "Registry", "SegmentationError",
    "ShapeError", "Transform", "UnitsError", "check_depth_scale", "check_rigid",
]
