"""Camera model: pinhole intrinsics with Brown–Conrady distortion, and the camera rig file.

Pixels are (u, v) = (column, row); the camera frame is ``camera_color_optical`` (z forward, x right,
y down, as OpenCV).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from .errors import ConfigError, ShapeError, UnitsError
from .transform import CAMERA, TCP, Transform


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics with Brown–Conrady distortion (OpenCV's ``k1, k2, p1, p2, k3`` order).

    Attributes
    ----------
    width, height : int
        Image size in pixels.
    fx, fy, cx, cy : float
        Focal lengths and principal point, pixels.
    distortion : tuple of 5 floats
        ``(k1, k2, p1, p2, k3)``; all zero for an undistorted (or rectified) image.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise UnitsError(f"image size must be positive, got {self.width}x{self.height}")
        for name in ("fx", "fy", "cx", "cy"):
            v = float(getattr(self, name))
            if not math.isfinite(v):
                raise UnitsError(f"intrinsics {name}={v} is not finite")
            object.__setattr__(self, name, v)
        if self.fx <= 0 or self.fy <= 0:
            raise UnitsError(f"focal lengths must be positive pixels, got fx={self.fx}, fy={self.fy}")
        d = tuple(float(x) for x in self.distortion)
        if len(d) != 5:
            raise ShapeError(f"distortion must be 5 numbers (k1, k2, p1, p2, k3), got {len(d)}")
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))
        object.__setattr__(self, "distortion", d)

    # --- construction / I/O -----------------------------------------------------------------------
    @property
    def K(self) -> np.ndarray:  # noqa: N802 - the conventional name
        """(3, 3) camera matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.width, self.height

    @property
    def has_distortion(self) -> bool:
        return any(abs(x) > 0 for x in self.distortion)

    @classmethod
    def from_K(cls, K: np.ndarray, width: int, height: int, distortion=None) -> CameraIntrinsics:  # noqa: N803
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3):
            raise ShapeError(f"K must be 3x3, got {K.shape}")
        d = (0.0,) * 5 if distortion is None else tuple(np.asarray(distortion, float).ravel().tolist() + [0.0] * 5)[:5]
        return cls(width, height, K[0, 0], K[1, 1], K[0, 2], K[1, 2], d)

    def to_dict(self) -> dict:
        return {
            "width": self.width,
            "height": self.height,
            "fx": self.fx,
            "fy": self.fy,
            "cx": self.cx,
            "cy": self.cy,
            "distortion_k1_k2_p1_p2_k3": list(self.distortion),
        }

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "intrinsics") -> CameraIntrinsics:
        """Read ``width, height, fx, fy, cx, cy`` (+ optional distortion) or ``K`` + size."""
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: expected a mapping of intrinsics, got {type(d).__name__}")
        try:
            if "K" in d and "fx" not in d:
                return cls.from_K(d["K"], int(d["width"]), int(d["height"]), d.get("distortion"))
            dist = d.get("distortion_k1_k2_p1_p2_k3", d.get("distortion", d.get("coeffs")))
            dist = (0.0,) * 5 if dist is None else tuple((list(map(float, dist)) + [0.0] * 5)[:5])
            return cls(int(d["width"]), int(d["height"]), d["fx"], d["fy"], d["cx"], d["cy"], dist)
        except KeyError as e:
            raise ConfigError(
                f"{source}: missing field {e.args[0]!r}; intrinsics need width, height, fx, fy, cx, cy (pixels)"
            ) from None
        except (TypeError, ValueError) as e:
            if isinstance(e, UnitsError):
                raise
            raise ConfigError(f"{source}: malformed intrinsics ({e})") from None

    @classmethod
    def from_json(cls, path: str | Path) -> CameraIntrinsics:
        from .io import read_json

        return cls.from_dict(read_json(path, "intrinsics file"), source=str(path))

    def scaled(self, width: int, height: int) -> CameraIntrinsics:
        """Intrinsics for the same camera resampled to ``width`` × ``height`` (pixel-centre convention)."""
        sx, sy = width / self.width, height / self.height
        return replace(
            self,
            width=int(width),
            height=int(height),
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=(self.cx + 0.5) * sx - 0.5,
            cy=(self.cy + 0.5) * sy - 0.5,
        )

    def check_image_size(self, width: int, height: int, *, what: str = "image") -> None:
        """Raise :class:`ShapeError` unless the intrinsics were made for a ``width`` × ``height`` image."""
        if (width, height) != (self.width, self.height):
            raise ShapeError(
                f"{what} is {width}x{height} but the intrinsics are for {self.width}x{self.height}; "
                f"use intrinsics.scaled({width}, {height}) if the image was resized"
            )

    # --- distortion ----------------------------------------------------------------------------
    def _distort_normalized(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k1, k2, p1, p2, k3 = self.distortion
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        return xd, yd

    def _undistort_normalized(self, xd: np.ndarray, yd: np.ndarray, iterations: int = 20):
        x, y = xd.copy(), yd.copy()
        k1, k2, p1, p2, k3 = self.distortion
        for _ in range(iterations):
            r2 = x * x + y * y
            radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
            dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
            dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
            x = (xd - dx) / radial
            y = (yd - dy) / radial
        return x, y

    # --- projection ------------------------------------------------------------------------------
    def project(self, points_in_camera: np.ndarray) -> np.ndarray:
        """Project (N, 3) points in the camera frame (metres) to (N, 2) pixels (u, v).

        Points with z ≤ 0 map to NaN.
        """
        p = np.asarray(points_in_camera, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3:
            raise ShapeError(f"points_in_camera must be (N, 3), got {p.shape}")
        z = p[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(z > 0, p[:, 0] / z, np.nan)
            y = np.where(z > 0, p[:, 1] / z, np.nan)
        if self.has_distortion:
            x, y = self._distort_normalized(x, y)
        return np.stack([self.fx * x + self.cx, self.fy * y + self.cy], axis=1)

    def pixel_rays(self, pixels_uv: np.ndarray) -> np.ndarray:
        """Rays (N, 3) with z = 1 through (N, 2) pixels (u, v), distortion removed."""
        uv = np.asarray(pixels_uv, dtype=np.float64)
        if uv.ndim != 2 or uv.shape[1] != 2:
            raise ShapeError(f"pixels_uv must be (N, 2), got {uv.shape}")
        x = (uv[:, 0] - self.cx) / self.fx
        y = (uv[:, 1] - self.cy) / self.fy
        if self.has_distortion:
            x, y = self._undistort_normalized(x, y)
        return np.stack([x, y, np.ones_like(x)], axis=1)

    def unproject(self, pixels_uv: np.ndarray, depth_m: np.ndarray) -> np.ndarray:
        """Back-project (N, 2) pixels with (N,) depths (metres, along z) to (N, 3) camera-frame points."""
        rays = self.pixel_rays(pixels_uv)
        d = np.asarray(depth_m, dtype=np.float64).reshape(-1)
        if d.shape[0] != rays.shape[0]:
            raise ShapeError(f"got {rays.shape[0]} pixels but {d.shape[0]} depths")
        return rays * d[:, None]

    @cached_property
    def ray_image(self) -> np.ndarray:
        """(H, W, 2) float32 normalised ray coordinates (x/z, y/z) of every pixel centre.

        Precomputed once per intrinsics; back-projection is then ``xyz = (ray * z, z)``.
        """
        u, v = np.meshgrid(np.arange(self.width, dtype=np.float64), np.arange(self.height, dtype=np.float64))
        rays = self.pixel_rays(np.stack([u.ravel(), v.ravel()], axis=1))[:, :2]
        out = rays.reshape(self.height, self.width, 2).astype(np.float32)
        out.setflags(write=False)
        return out

    def pixel_size_m(self, depth_m: np.ndarray | float) -> np.ndarray | float:
        """Metric width of one pixel at ``depth_m`` (metres per pixel, mean of x and y)."""
        return np.asarray(depth_m, dtype=np.float64) * (2.0 / (self.fx + self.fy))


@dataclass(frozen=True)
class CameraRig:
    """A camera mounted on the robot: intrinsics, hand-eye transform and depth scale.

    Attributes
    ----------
    intrinsics : CameraIntrinsics
        Colour-camera intrinsics (depth is aligned to colour).
    tcp_from_camera : Transform or None
        Eye-in-hand calibration (``tcp`` ← ``camera_color_optical``); None when uncalibrated.
    depth_scale : float
        Metres per raw depth unit (D405: 1e-4, D435: 1e-3).
    depth_range_m : (float, float)
        Valid depth range used to discard readings, metres.
    name : str
        Free-form identifier (e.g. camera serial).
    """

    intrinsics: CameraIntrinsics
    tcp_from_camera: Transform | None = None
    depth_scale: float = 1e-3
    depth_range_m: tuple[float, float] = (0.07, 2.0)
    name: str = "camera"
    extra: dict = field(default_factory=dict, compare=False)

    SCHEMA_VERSION = 1

    def __post_init__(self) -> None:
        check_depth_scale(self.depth_scale)
        lo, hi = (float(x) for x in self.depth_range_m)
        if not (0 <= lo < hi):
            raise UnitsError(f"depth_range_m must be 0 <= near < far in metres, got ({lo}, {hi})")
        if hi > 50:
            raise UnitsError(f"depth_range_m far limit {hi} m is implausible; the range is in metres, not mm")
        object.__setattr__(self, "depth_range_m", (lo, hi))
        if self.tcp_from_camera is not None:
            t = self.tcp_from_camera
            if (t.to_frame, t.from_frame) != (TCP, CAMERA):
                raise ConfigError(f"rig transform must be tcp_from_{CAMERA}, got {t.name}")

    def to_dict(self) -> dict:
        d = {
            "schema_version": self.SCHEMA_VERSION,
            "name": self.name,
            "units": {"length": "m", "depth_scale": "m per raw depth unit"},
            "intrinsics": self.intrinsics.to_dict(),
            "depth_scale": self.depth_scale,
            "depth_range_m": list(self.depth_range_m),
            "tcp_from_camera": None if self.tcp_from_camera is None else self.tcp_from_camera.to_dict(),
        }
        if self.extra:
            d["extra"] = self.extra
        return d

    @classmethod
    def from_dict(cls, d: dict, *, source: str = "rig") -> CameraRig:
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: a rig file must be a mapping, got {type(d).__name__}")
        missing = [k for k in ("intrinsics", "depth_scale") if k not in d]
        if missing:
            raise ConfigError(
                f"{source}: missing field(s) {missing}; a rig needs 'intrinsics' and 'depth_scale' "
                "(and 'tcp_from_camera' once hand-eye calibrated)"
            )
        version = d.get("schema_version", cls.SCHEMA_VERSION)
        if version != cls.SCHEMA_VERSION:
            raise ConfigError(f"{source}: schema_version {version} is not supported (this graspseg reads {cls.SCHEMA_VERSION})")
        t = d.get("tcp_from_camera")
        tcp_from_camera = None
        if t is not None:
            tcp_from_camera = Transform.from_dict(t, to_frame=TCP, from_frame=CAMERA)
        try:
            return cls(
                intrinsics=CameraIntrinsics.from_dict(d["intrinsics"], source=f"{source}: intrinsics"),
                tcp_from_camera=tcp_from_camera,
                depth_scale=float(d["depth_scale"]),
                depth_range_m=tuple(d.get("depth_range_m", (0.07, 2.0))),
                name=str(d.get("name", "camera")),
                extra=dict(d.get("extra", {})),
            )
        except (UnitsError, ShapeError) as e:
            raise ConfigError(f"{source}: {e}") from None

    def save_yaml(self, path: str | Path) -> Path:
        """Write the rig as YAML (atomically: a crash never leaves a half-written file)."""
        import yaml

        from .io import atomic_write_text

        return atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load_yaml(cls, path: str | Path) -> CameraRig:
        from .io import read_yaml

        return cls.from_dict(read_yaml(path, "rig file"), source=str(path))


def check_depth_scale(depth_scale: float) -> float:
    """Validate a depth scale in metres per raw unit (D405 1e-4, D435 1e-3; 1 for depth already in metres)."""
    s = float(depth_scale)
    if not math.isfinite(s) or s <= 0:
        raise UnitsError(
            f"depth scale must be a positive number of metres per raw unit (D405: 0.0001, D435: 0.001), got {depth_scale}"
        )
    if s > 1.0:
        raise UnitsError(f"depth scale {s} m per unit is implausible; expected about 1e-4 to 1e-2 m per raw unit (1 for metres)")
    return s
