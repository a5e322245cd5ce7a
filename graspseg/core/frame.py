"""One RGB-D frame, aligned to the colour camera."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .camera import CameraIntrinsics
from .errors import ConfigError, ShapeError, UnitsError
from .transform import BASE, TCP, Transform
from .validate import as_number


@dataclass(frozen=True, eq=False)
class RGBDFrame:
    """Colour and depth of one instant, depth registered to the colour camera.

    Attributes
    ----------
    color : (H, W, 3) uint8
        RGB image.
    depth_m : (H, W) float32
        Depth along the optical axis in metres; 0 = no reading. Never NaN or negative.
    intrinsics : CameraIntrinsics
        Of the colour camera, for an H×W image.
    timestamp_s : float
        Capture time, seconds (epoch or recording-relative).
    base_from_tcp : Transform or None
        Robot TCP pose at capture time, when known.
    frame_id : str
        Identifier (folder name, sequence number).
    """

    color: np.ndarray
    depth_m: np.ndarray
    intrinsics: CameraIntrinsics
    timestamp_s: float = 0.0
    base_from_tcp: Transform | None = None
    frame_id: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.intrinsics, CameraIntrinsics):
            raise ConfigError(
                f"intrinsics must be a CameraIntrinsics, got {type(self.intrinsics).__name__}; build it with "
                "CameraIntrinsics.from_dict(...) or CameraIntrinsics.from_json(path)"
            )
        if self.base_from_tcp is not None and not isinstance(self.base_from_tcp, Transform):
            raise ConfigError(
                f"base_from_tcp must be a Transform or None, got {type(self.base_from_tcp).__name__}; build it with "
                "Transform.from_dict({'matrix': ...}, to_frame='base', from_frame='tcp')"
            )
        if not isinstance(self.meta, dict):
            raise ConfigError(f"meta must be a dict, got {type(self.meta).__name__}")
        object.__setattr__(self, "timestamp_s", as_number(self.timestamp_s, field="timestamp_s", unit="seconds"))
        try:
            color = np.asarray(self.color)
            depth = np.asarray(self.depth_m)
        except (TypeError, ValueError):
            raise ShapeError("color and depth_m must be arrays ((H, W, 3) uint8 and (H, W) float32 metres)") from None
        if color.ndim == 2:
            color = np.repeat(color[:, :, None], 3, axis=2)
        if color.ndim != 3 or color.shape[2] not in (3, 4):
            raise ShapeError(f"color must be an (H, W, 3) RGB image, got shape {color.shape}")
        if color.shape[2] == 4:
            color = color[:, :, :3]
        if color.dtype == bool or color.dtype.kind not in "iuf":
            raise ShapeError(f"color has dtype {color.dtype}; expected an RGB image of uint8 (or floats in 0..1)")
        if np.issubdtype(color.dtype, np.floating) and color.size and not np.isfinite(color).all():
            raise UnitsError("color contains NaN or inf values; give an RGB image of uint8 (or finite floats in 0..1)")
        if color.dtype != np.uint8:
            if np.issubdtype(color.dtype, np.floating) and color.size and float(np.nanmax(color)) <= 1.0:
                color = (np.clip(color, 0, 1) * 255).round()
            color = np.clip(color, 0, 255).astype(np.uint8)
        if depth.ndim == 3 and depth.shape[2] == 1:
            depth = depth[:, :, 0]
        if depth.ndim != 2:
            raise ShapeError(f"depth must be an (H, W) image, got shape {depth.shape}")
        if depth.shape != color.shape[:2]:
            raise ShapeError(
                f"color is {color.shape[1]}x{color.shape[0]} but depth is {depth.shape[1]}x{depth.shape[0]}; "
                "register depth to the colour camera (e.g. rs.align) so both have the same size"
            )
        if np.iscomplexobj(depth) or depth.dtype == bool or depth.dtype.kind not in "iuf":
            raise UnitsError(
                f"depth_m has dtype {depth.dtype}; depth is a real distance in metres (float32), 0 = no reading"
            )
        if np.issubdtype(depth.dtype, np.integer):
            raise UnitsError(
                f"depth_m has integer dtype {depth.dtype}: raw depth units must be converted to metres with "
                "the device's depth scale (e.g. depth_m = raw * 0.001); use RGBDFrame.from_raw_depth"
            )
        depth = depth.astype(np.float32, copy=False)
        finite = np.isfinite(depth)
        if not finite.all():
            raise UnitsError(
                f"depth has {int((~finite).sum())} NaN/inf values; encode missing readings as 0 "
                "(e.g. np.nan_to_num(depth, nan=0, posinf=0))"
            )
        if (depth < 0).any():
            raise UnitsError(
                f"depth has {int((depth < 0).sum())} negative values (min {float(depth.min()):.3f} m); depth is "
                "a distance along the optical axis, >= 0, with 0 meaning no reading"
            )
        if depth.size and float(depth.max()) > 100.0:
            raise UnitsError(
                f"depth reaches {float(depth.max()):.1f} m; depth_m is in metres — was a depth scale missed "
                "(millimetres or raw units passed)?"
            )
        self.intrinsics.check_image_size(depth.shape[1], depth.shape[0], what="frame")
        if self.base_from_tcp is not None and (self.base_from_tcp.to_frame, self.base_from_tcp.from_frame) != (BASE, TCP):
            raise ConfigError(f"frame pose must be base_from_tcp, got {self.base_from_tcp.name}")
        color = np.ascontiguousarray(color)
        depth = np.ascontiguousarray(depth)
        color.setflags(write=False)
        depth.setflags(write=False)
        object.__setattr__(self, "color", color)
        object.__setattr__(self, "depth_m", depth)

    @classmethod
    def from_raw_depth(cls, color: np.ndarray, depth_raw: np.ndarray, depth_scale: float, intrinsics: CameraIntrinsics, **kw) -> RGBDFrame:
        """Build from raw integer depth (device units) and the device's depth scale (m per unit).

        The depth scale is recorded in ``meta["depth_scale"]``, where
        :func:`graspseg.core.camera.check_rig_matches_frame` compares it with the rig's.
        """
        from .camera import check_depth_scale

        s = check_depth_scale(depth_scale)
        raw = np.asarray(depth_raw)
        if np.iscomplexobj(raw) or raw.dtype == bool or raw.dtype.kind not in "iuf":
            raise UnitsError(f"depth_raw has dtype {raw.dtype}; expected raw integer depth units (uint16)")
        meta = {"depth_scale": s, **(kw.pop("meta", None) or {})}
        return cls(color, raw.astype(np.float32) * np.float32(s), intrinsics, meta=meta, **kw)

    @property
    def height(self) -> int:
        return self.depth_m.shape[0]

    @property
    def width(self) -> int:
        return self.depth_m.shape[1]

    @cached_property
    def valid_depth(self) -> np.ndarray:
        """(H, W) bool, True where depth has a reading."""
        return self.depth_m > 0

    def base_from_camera(self, tcp_from_camera: Transform | None) -> Transform | None:
        """``base_from_tcp @ tcp_from_camera`` when both are known, else None."""
        if self.base_from_tcp is None or tcp_from_camera is None:
            return None
        return self.base_from_tcp @ tcp_from_camera

    def with_pose(self, base_from_tcp: Transform | None) -> RGBDFrame:
        """A copy carrying a different TCP pose."""
        return RGBDFrame(self.color, self.depth_m, self.intrinsics, self.timestamp_s, base_from_tcp, self.frame_id, dict(self.meta))

    def __repr__(self) -> str:
        return (
            f"RGBDFrame({self.frame_id!r}, {self.width}x{self.height}, t={self.timestamp_s:.3f}s, "
            f"valid depth {self.valid_depth.mean():.0%}, pose={'yes' if self.base_from_tcp else 'no'})"
        )

