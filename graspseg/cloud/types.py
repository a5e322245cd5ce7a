"""Data types of the cloud stage: the support plane and the masked object cloud."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property

import numpy as np

from ..core.errors import FrameMismatchError, ShapeError
from ..core.transform import BASE, CAMERA, Transform


class BandLabel(IntEnum):
    """Label of a pixel near the mask rim (the boundary band).

    ``UNKNOWN`` pixels may be obstacles, but never grasp contacts.
    """

    OUTSIDE = 0  # not in the band, outside the mask
    OBJECT = 1  # certain object (mask interior, or band pixel whose depth agrees with the object)
    BACKGROUND = 2  # band pixel whose depth is clearly behind/away from the object
    UNKNOWN = 3  # band pixel that cannot be decided (no depth, or ambiguous depth)


@dataclass(frozen=True)
class SupportPlane:
    """The plane the objects stand on: ``normal · p + offset = 0``, in ``frame``.

    Attributes
    ----------
    normal : (3,) float64
        Unit normal pointing away from the table, towards the camera side.
    offset : float
        Metres.
    inlier_ratio : float
        Fraction of the valid-depth pixels within ``inlier_threshold_m``.
    rmse_m : float
        RMS distance of the inliers to the plane, metres.
    frame : str
        Frame of ``normal`` and ``offset`` (``camera_color_optical`` unless transformed).
    """

    normal: np.ndarray
    offset: float
    inlier_ratio: float = 0.0
    rmse_m: float = 0.0
    inlier_threshold_m: float = 0.0
    frame: str = CAMERA

    def __post_init__(self) -> None:
        n = np.asarray(self.normal, dtype=np.float64).reshape(-1)
        if n.shape != (3,) or not np.isfinite(n).all() or np.linalg.norm(n) < 1e-9:
            raise ShapeError(f"plane normal must be a finite non-zero 3-vector, got {self.normal!r}")
        scale = np.linalg.norm(n)
        n = n / scale
        n.setflags(write=False)
        object.__setattr__(self, "normal", n)
        object.__setattr__(self, "offset", float(self.offset) / scale)

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """(N,) signed distance in metres of (N, 3) points in ``frame``; positive above the table."""
        p = np.asarray(points, dtype=np.float64)
        return p @ self.normal + self.offset

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) orthogonal projections of (N, 3) points onto the plane."""
        p = np.asarray(points, dtype=np.float64)
        return p - self.signed_distance(p)[:, None] * self.normal

    def transformed(self, to_from: Transform) -> SupportPlane:
        """The same plane expressed in ``to_from.to_frame``."""
        if to_from.from_frame != self.frame:
            raise FrameMismatchError(f"plane is in '{self.frame}', transform is {to_from.name}")
        n = to_from.rotation @ self.normal
        point = to_from.apply((-self.offset * self.normal)[None])[0]
        return SupportPlane(n, -float(n @ point), self.inlier_ratio, self.rmse_m, self.inlier_threshold_m, to_from.to_frame)

    def to_dict(self) -> dict:
        return {"frame": self.frame, "normal": self.normal.tolist(), "offset_m": self.offset,
                "inlier_ratio": self.inlier_ratio, "rmse_m": self.rmse_m}


@dataclass(frozen=True, eq=False)
class ObjectCloud:
    """The 3D points of one mask, with its boundary band and the scene around it.

    Attributes
    ----------
    points_in_camera : (N, 3) float32
        Object points (mask pixels with valid, cleaned depth), metres, ``camera_color_optical``.
    pixels_uv : (N, 2) int32
        Source pixel (u, v) of each point.
    colors : (N, 3) uint8
        RGB of each point.
    labels : (N,) uint8
        :class:`BandLabel` of each point: ``OBJECT`` or ``UNKNOWN`` (band pixels inside the mask that
        could belong to the background). Grasp contacts use ``OBJECT`` points only.
    mask : (H, W) bool
        The mask the cloud was built from.
    band : (H, W) uint8
        :class:`BandLabel` per pixel; ``OUTSIDE`` and ``OBJECT`` away from the rim.
    scene_points_in_camera : (M, 3) float32
        Every valid (cleaned) depth pixel of the frame, subsampled; obstacles for collision checks.
    plane : SupportPlane or None
        The support plane, camera frame; None when none was found.
    base_from_camera : Transform or None
        Set when the frame carries ``base_from_tcp`` and the rig ``tcp_from_camera``.
    stats : dict
        Cleanup and band statistics (counts of removed flying pixels, band label counts...).
    """

    points_in_camera: np.ndarray
    pixels_uv: np.ndarray
    colors: np.ndarray
    labels: np.ndarray
    mask: np.ndarray
    band: np.ndarray
    scene_points_in_camera: np.ndarray
    plane: SupportPlane | None = None
    base_from_camera: Transform | None = None
    stats: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.points_in_camera)
        for name, arr, width in (("pixels_uv", self.pixels_uv, 2), ("colors", self.colors, 3)):
            if np.shape(arr) != (n, width):
                raise ShapeError(f"{name} must be ({n}, {width}), got {np.shape(arr)}")
        if np.shape(self.labels) != (n,):
            raise ShapeError(f"labels must be ({n},), got {np.shape(self.labels)}")
        if np.shape(self.mask) != np.shape(self.band):
            raise ShapeError(f"mask {np.shape(self.mask)} and band {np.shape(self.band)} differ in shape")
        if self.base_from_camera is not None and (self.base_from_camera.to_frame, self.base_from_camera.from_frame) != (BASE, CAMERA):
            raise FrameMismatchError(f"base_from_camera must map {CAMERA} to {BASE}, got {self.base_from_camera.name}")
        for name in ("points_in_camera", "pixels_uv", "colors", "labels", "mask", "band", "scene_points_in_camera"):
            a = np.asarray(getattr(self, name))
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    def __len__(self) -> int:
        return len(self.points_in_camera)

    @cached_property
    def contact_eligible(self) -> np.ndarray:
        """(N,) bool: points that may serve as grasp contacts (``OBJECT`` label)."""
        return self.labels == BandLabel.OBJECT

    @cached_property
    def points_in_base(self) -> np.ndarray | None:
        """(N, 3) float64 object points in the base frame, or None without a base pose."""
        return None if self.base_from_camera is None else self.base_from_camera.apply(self.points_in_camera)

    @cached_property
    def plane_in_base(self) -> SupportPlane | None:
        if self.plane is None or self.base_from_camera is None:
            return None
        return self.plane.transformed(self.base_from_camera)
