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
from .validate import (
    MAX_TCP_FROM_CAMERA_M,
    as_flag,
    as_float_array,
    as_number,
    check_fov_plausible,
    check_translation_plausible,
)


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
        for name in ("width", "height"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not (
                math.isfinite(float(v)) and float(v).is_integer()
            ):
                raise ConfigError(f"intrinsics {name} is {v!r}; expected a whole number of pixels (e.g. 640)")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise UnitsError(f"image size must be positive pixels, got {self.width}x{self.height}")
        for name in ("fx", "fy", "cx", "cy"):
            v = as_number(getattr(self, name), field=f"intrinsics {name}", unit="pixels")
            object.__setattr__(self, name, v)
        if self.fx <= 0 or self.fy <= 0:
            raise UnitsError(f"focal lengths must be positive pixels, got fx={self.fx}, fy={self.fy}")
        d = tuple(as_float_array(self.distortion, (None,), field="distortion", unit="OpenCV coefficients").tolist())
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
        K = as_float_array(K, (3, 3), field="K", unit="pixels (3x3 camera matrix)")
        d = (0.0,) * 5 if distortion is None else tuple(
            as_float_array(distortion, (None,), field="distortion", unit="OpenCV coefficients").tolist() + [0.0] * 5
        )[:5]
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
    def from_dict(cls, d: dict, *, source: str = "intrinsics", check_plausible: bool = True) -> CameraIntrinsics:
        """Read ``width, height, fx, fy, cx, cy`` (pixels, + optional distortion) or ``K`` + size.

        Unless ``check_plausible`` is false or the mapping has ``allow_implausible: true``, intrinsics no
        pinhole camera of that image size has (field of view outside 5-160 deg, principal point outside the
        image) are refused (:func:`graspseg.core.validate.check_fov_plausible`).

        Raises
        ------
        ConfigError
            Not a mapping, a missing field, a string or null where a number belongs.
        ShapeError, UnitsError
            Wrong shapes, NaN, non-positive or implausible values.
        """
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: expected a mapping of intrinsics, got {type(d).__name__}")
        missing = [k for k in ("width", "height") if k not in d]
        missing += [] if "K" in d and "fx" not in d else [k for k in ("fx", "fy", "cx", "cy") if k not in d]
        if missing:
            raise ConfigError(
                f"{source}: missing field {', '.join(repr(k) for k in missing)}; intrinsics need width, height, "
                "fx, fy, cx, cy (pixels)"
            )
        try:
            dist = d.get("distortion_k1_k2_p1_p2_k3", d.get("distortion", d.get("coeffs")))
            if dist is not None:
                dist = as_float_array(dist, (None,), field="distortion_k1_k2_p1_p2_k3", unit="OpenCV coefficients",
                                      fix="give k1, k2, p1, p2, k3 (or [] for none)").tolist()
                if len(dist) > 14:
                    raise ShapeError(f"distortion has {len(dist)} coefficients; OpenCV models have at most 14")
            if "K" in d and "fx" not in d:
                out = cls.from_K(d["K"], d["width"], d["height"], dist)
            else:
                vals = {k: as_number(d[k], field=k, unit="pixels") for k in ("fx", "fy", "cx", "cy")}
                dist5 = (0.0,) * 5 if dist is None else tuple((list(dist) + [0.0] * 5)[:5])
                out = cls(d["width"], d["height"], vals["fx"], vals["fy"], vals["cx"], vals["cy"], dist5)
            allow = "allow_implausible" in d and as_flag(d["allow_implausible"], field="allow_implausible")
        except (ConfigError, ShapeError, UnitsError) as e:
            raise type(e)(f"{source}: {e}") from None
        if check_plausible and not allow:
            check_intrinsics_plausible(out, source=source)
        return out

    @classmethod
    def from_json(cls, path: str | Path) -> CameraIntrinsics:
        from .validate import read_data_file

        return cls.from_dict(read_data_file(path, "intrinsics file", kind="json"), source=str(path))

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
    max_tcp_from_camera_m: float = MAX_TCP_FROM_CAMERA_M
    allow_implausible: bool = False

    SCHEMA_VERSION = 1

    def __post_init__(self) -> None:
        if not isinstance(self.intrinsics, CameraIntrinsics):
            raise ConfigError(
                f"rig intrinsics must be a CameraIntrinsics, got {type(self.intrinsics).__name__}; use "
                "CameraRig.from_dict for a mapping"
            )
        if self.tcp_from_camera is not None and not isinstance(self.tcp_from_camera, Transform):
            raise ConfigError(
                f"rig tcp_from_camera must be a Transform or None, got {type(self.tcp_from_camera).__name__}; use "
                "Transform.from_dict(..., to_frame='tcp', from_frame='camera_color_optical')"
            )
        if not isinstance(self.name, str) or not isinstance(self.extra, dict):
            raise ConfigError(f"rig name must be a string and extra a dict, got {self.name!r} and "
                              f"{type(self.extra).__name__}")
        object.__setattr__(self, "depth_scale", check_depth_scale(self.depth_scale))
        bound = as_number(self.max_tcp_from_camera_m, field="max_tcp_from_camera_m", unit="metres")
        if bound <= 0:
            raise UnitsError(f"max_tcp_from_camera_m must be > 0 m, got {bound}")
        object.__setattr__(self, "max_tcp_from_camera_m", bound)
        object.__setattr__(self, "allow_implausible", as_flag(self.allow_implausible, field="allow_implausible"))
        lo, hi = as_float_array(self.depth_range_m, (2,), field="depth_range_m", unit="metres (near, far)").tolist()
        if not (0 <= lo < hi):
            raise UnitsError(f"depth_range_m must be 0 <= near < far in metres, got ({lo}, {hi})")
        if hi > 50:
            raise UnitsError(f"depth_range_m far limit {hi} m is implausible; the range is in metres, not mm")
        object.__setattr__(self, "depth_range_m", (lo, hi))
        if self.tcp_from_camera is not None:
            t = self.tcp_from_camera
            if (t.to_frame, t.from_frame) != (TCP, CAMERA):
                raise ConfigError(f"rig transform must be tcp_from_{CAMERA}, got {t.name}")
            if not self.allow_implausible:
                check_translation_plausible(
                    t.translation, self.max_tcp_from_camera_m, name=t.name, source=f"rig '{self.name}'",
                    override="set max_tcp_from_camera_m: <metres> (or allow_implausible: true) in the rig",
                )
        if not self.allow_implausible:
            check_intrinsics_plausible(self.intrinsics, source=f"rig '{self.name}' intrinsics")

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
        if self.max_tcp_from_camera_m != MAX_TCP_FROM_CAMERA_M:
            d["max_tcp_from_camera_m"] = self.max_tcp_from_camera_m
        if self.allow_implausible:
            d["allow_implausible"] = True
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
            raise ConfigError(f"{source}: schema_version {version!r} is not supported (this graspseg reads {cls.SCHEMA_VERSION})")
        known = {"schema_version", "name", "units", "intrinsics", "depth_scale", "depth_range_m", "tcp_from_camera",
                 "extra", "max_tcp_from_camera_m", "allow_implausible"}
        unknown = sorted(str(k) for k in set(d) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown field(s) {unknown}; a rig file has {sorted(known)}")
        units = d.get("units", {})
        length = units.get("length", "m") if isinstance(units, dict) else units
        if str(length).lower() not in ("m", "metre", "meter", "metres", "meters"):
            raise UnitsError(
                f"{source}: units.length is {length!r}; rig files are in metres — convert the translation "
                "(mm / 1000) and set units.length: m"
            )
        try:
            allow = as_flag(d.get("allow_implausible", False), field="allow_implausible")
            bound = as_number(d.get("max_tcp_from_camera_m", MAX_TCP_FROM_CAMERA_M), field="max_tcp_from_camera_m",
                              unit="metres")
            depth_scale = check_depth_scale(d["depth_scale"], field="depth_scale")
            depth_range = as_float_array(d.get("depth_range_m", (0.07, 2.0)), (2,), field="depth_range_m",
                                         unit="metres (near, far)", fix="e.g. [0.07, 2.0]")
            extra = d.get("extra", {})
            if not isinstance(extra, dict):
                raise ConfigError(f"extra is {type(extra).__name__}; expected a mapping (or leave it out)")
            name = d.get("name", "camera")
            if not isinstance(name, (str, int)):
                raise ConfigError(f"name is {name!r}; expected a string such as the camera serial")
            t = d.get("tcp_from_camera")
            tcp_from_camera = None
            if t is not None:
                tcp_from_camera = Transform.from_dict(t, to_frame=TCP, from_frame=CAMERA, check_plausible=False,
                                                      source="tcp_from_camera")
            intrinsics = CameraIntrinsics.from_dict(d["intrinsics"], source="intrinsics", check_plausible=False)
            return cls(
                intrinsics=intrinsics,
                tcp_from_camera=tcp_from_camera,
                depth_scale=depth_scale,
                depth_range_m=tuple(depth_range.tolist()),
                name=str(name),
                extra=dict(extra),
                max_tcp_from_camera_m=bound,
                allow_implausible=allow,
            )
        except (ConfigError, UnitsError, ShapeError) as e:
            raise type(e)(f"{source}: {e}") from None

    def save_yaml(self, path: str | Path) -> Path:
        """Write the rig as YAML (atomically: a crash never leaves a half-written file)."""
        import yaml

        from .io import atomic_write_text

        return atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load_yaml(cls, path: str | Path) -> CameraRig:
        from .validate import read_data_file

        return cls.from_dict(read_data_file(path, "rig file"), source=str(path))


def check_depth_scale(depth_scale: float, *, field: str = "depth scale") -> float:
    """Validate a depth scale in metres per raw unit (D405 1e-4, D435 1e-3; 1 for depth already in metres).

    Raises
    ------
    ConfigError
        Not a number (``null``, a string, a list).
    UnitsError
        Zero, negative, NaN or above 1 m per unit.
    """
    fix = "D405: 0.0001, D435: 0.001, 1 for depth already in metres"
    s = as_number(depth_scale, field=field, unit="metres per raw depth unit", fix=fix)
    if s <= 0:
        raise UnitsError(
            f"{field} must be a positive number of metres per raw unit ({fix}), got {depth_scale}"
        )
    if s > 1.0:
        raise UnitsError(f"{field} {s} m per unit is implausible; expected about 1e-4 to 1e-2 m per raw unit (1 for metres)")
    return s


def check_intrinsics_plausible(intrinsics: CameraIntrinsics, *, source: str = "intrinsics") -> CameraIntrinsics:
    """Refuse intrinsics implausible for their image size (see :func:`graspseg.core.validate.check_fov_plausible`)."""
    i = intrinsics
    try:
        check_fov_plausible(i.width, i.height, i.fx, i.fy, i.cx, i.cy, source=source)
    except UnitsError as e:
        raise UnitsError(f"{e}; if these intrinsics are right, add 'allow_implausible: true'") from None
    return intrinsics


#: Tolerances of :func:`check_rig_matches_frame`: relative focal length, principal point (fraction of
#: the image size) and relative depth scale.
RIG_FRAME_TOLERANCE = {"focal": 0.02, "principal_point": 0.02, "depth_scale": 1e-6}


def check_rig_matches_frame(rig: CameraRig | None, frame, *, tolerance: dict | None = None) -> None:
    """Refuse a rig whose intrinsics or depth scale disagree with the frame's own camera data.

    The rig's ``tcp_from_camera`` is only valid for the camera it was calibrated on; a frame whose
    intrinsics (from its camera.json) differ by more than 2 % in focal length or 2 % of the image size
    in principal point, or whose recorded depth scale (``frame.meta["depth_scale"]``) differs from the
    rig's, most likely comes from another camera or resolution. ``rig.allow_implausible`` skips the check.

    Parameters
    ----------
    rig : CameraRig or None
        Nothing is checked when None.
    frame : RGBDFrame
    tolerance : dict, optional
        Overrides of :data:`RIG_FRAME_TOLERANCE`.

    Raises
    ------
    ConfigError
        Naming both values and the fix.
    """
    if rig is None or rig.allow_implausible:
        return
    tol = {**RIG_FRAME_TOLERANCE, **(tolerance or {})}
    ri, fi = rig.intrinsics, frame.intrinsics
    fix = ("use the rig calibrated for this camera and resolution, or fix the frame's camera.json; set "
           "allow_implausible: true in the rig to use it anyway")
    if ri.size != fi.size:
        raise ConfigError(
            f"rig '{rig.name}' is for {ri.width}x{ri.height} images but the frame {frame.frame_id!r} is "
            f"{fi.width}x{fi.height}; calibrate at the streaming resolution or {fix}"
        )
    for name in ("fx", "fy"):
        a, b = getattr(ri, name), getattr(fi, name)
        if abs(a - b) > tol["focal"] * b:
            raise ConfigError(
                f"rig '{rig.name}' has {name} = {a:.2f} px but the frame {frame.frame_id!r} says {name} = {b:.2f} px "
                f"({abs(a - b) / b:.1%} apart, tolerance {tol['focal']:.0%}); {fix}"
            )
    for name, size in (("cx", fi.width), ("cy", fi.height)):
        a, b = getattr(ri, name), getattr(fi, name)
        if abs(a - b) > tol["principal_point"] * size:
            raise ConfigError(
                f"rig '{rig.name}' has {name} = {a:.2f} px but the frame {frame.frame_id!r} says {name} = {b:.2f} px "
                f"(more than {tol['principal_point'] * size:.1f} px apart); {fix}"
            )
    frame_scale = (frame.meta or {}).get("depth_scale")
    if frame_scale is not None and abs(float(frame_scale) - rig.depth_scale) > tol["depth_scale"] * rig.depth_scale:
        raise ConfigError(
            f"rig '{rig.name}' has depth_scale {rig.depth_scale:g} m per unit but the frame {frame.frame_id!r} was "
            f"decoded with depth_scale {float(frame_scale):g} m per unit; one of them belongs to another camera "
            f"(D405: 0.0001, D435: 0.001) — {fix}"
        )
