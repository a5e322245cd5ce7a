"""Data types of the shape stage: the estimator's tunables and the shape/pose estimate."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import ConfigError, FrameMismatchError, ShapeError, UnitsError
from ..core.transform import BASE, CAMERA, OBJECT, Transform

#: Shape classes an estimate may carry.
PRIMITIVES = ("box", "cylinder", "sphere", "other")
#: Primitive fits the estimator can try (``cylinder`` covers upright and lying cylinders).
FITTABLE_PRIMITIVES = ("box", "cylinder", "sphere")
#: Where the object frame's z axis came from.
FRAME_SOURCES = ("support_plane", "pca")

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ShapeConfig:
    """Tunables of :func:`graspseg.shape.estimate_shape`.

    Attributes
    ----------
    min_points : int
        Fewest ``OBJECT``-labelled points with finite depth accepted for an estimate.
    use_unknown_when_short : bool
        When fewer than ``min_points`` ``OBJECT`` points exist, also use ``UNKNOWN`` band points (noted in the
        result) instead of raising.
    max_points : int
        Larger clouds are thinned to about this many points before fitting: the silhouette pixels are all kept
        (they carry the footprint), the interior is taken on a regular pixel grid. 0 keeps every point.
    completion : bool
        Complete the unseen back half against the support plane (needs a plane).
    completion_spacing_m : float
        Sampling step of the completed (unseen) surfaces, metres.
    max_completion_points : int
        Upper bound on the number of generated (unseen) points.
    table_clearance_m : float
        Points closer than this to the support plane are treated as table, not object, metres.
    top_percentile : float
        Percentile of the point heights taken as the candidate top of the object.
    footprint_cell_m : float
        Cell of the occupancy grid used to drop detached outlier points before the footprint fit, metres.
    min_component_fraction : float
        Detached point groups smaller than this fraction of the largest group are dropped from the footprint.
    max_fit_points : int
        Points used by the primitive fits (a deterministic, evenly strided subset).
    primitives : tuple of str
        Primitive fits to try, from ``("box", "cylinder", "sphere")``.
    trim_fraction : float
        Fraction of the worst residuals left out of the RMS used to compare primitives (handles, spouts).
    other_residual_m, other_residual_ratio : float
        The best primitive is accepted only when its trimmed RMS residual is below
        ``max(other_residual_m, other_residual_ratio * smallest extent)``; otherwise the shape is ``"other"``.
    depth_noise_a_m, depth_noise_b_per_m : float
        Depth noise model ``sigma_z = a + b * z**2`` (metres, z in metres).
    """

    min_points: int = 30
    use_unknown_when_short: bool = True
    max_points: int = 6000
    completion: bool = True
    completion_spacing_m: float = 0.004
    max_completion_points: int = 20000
    table_clearance_m: float = 0.004
    top_percentile: float = 99.5
    footprint_cell_m: float = 0.003
    min_component_fraction: float = 0.2
    max_fit_points: int = 800
    primitives: tuple[str, ...] = FITTABLE_PRIMITIVES
    trim_fraction: float = 0.1
    other_residual_m: float = 0.004
    other_residual_ratio: float = 0.05
    min_coverage: float = 0.7
    min_rim_coverage: float = 0.4
    depth_noise_a_m: float = 0.0005
    depth_noise_b_per_m: float = 0.002

    def __post_init__(self) -> None:
        if int(self.min_points) < 4:
            raise ConfigError(f"ShapeConfig.min_points={self.min_points}; at least 4 points are needed for a 3D shape")
        positive = ("completion_spacing_m", "footprint_cell_m", "other_residual_m")
        for name in positive:
            v = float(getattr(self, name))
            if not math.isfinite(v) or v <= 0:
                raise ConfigError(f"ShapeConfig.{name}={v!r}; give a positive finite length in metres")
        for name in ("table_clearance_m", "depth_noise_a_m", "depth_noise_b_per_m", "other_residual_ratio"):
            v = float(getattr(self, name))
            if not math.isfinite(v) or v < 0:
                raise ConfigError(f"ShapeConfig.{name}={v!r}; give a non-negative finite number")
        if self.completion_spacing_m < 5e-4:
            raise ConfigError(
                f"ShapeConfig.completion_spacing_m={self.completion_spacing_m} m is finer than 0.5 mm; "
                "use metres (e.g. 0.004), not millimetres"
            )
        if not 50.0 <= float(self.top_percentile) <= 100.0:
            raise ConfigError(f"ShapeConfig.top_percentile={self.top_percentile}; give a percentile in [50, 100]")
        if not 0.0 <= float(self.trim_fraction) < 0.5:
            raise ConfigError(f"ShapeConfig.trim_fraction={self.trim_fraction}; give a fraction in [0, 0.5)")
        for name in ("min_coverage", "min_rim_coverage"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ConfigError(f"ShapeConfig.{name}={getattr(self, name)}; give a fraction in [0, 1]")
        if not 0.0 <= float(self.min_component_fraction) <= 1.0:
            raise ConfigError(
                f"ShapeConfig.min_component_fraction={self.min_component_fraction}; give a fraction in [0, 1]"
            )
        if int(self.max_points) != 0 and int(self.max_points) < 100:
            raise ConfigError(f"ShapeConfig.max_points={self.max_points}; give 0 (keep all) or at least 100")
        if int(self.max_fit_points) < 50 or int(self.max_completion_points) < 0:
            raise ConfigError(
                f"ShapeConfig.max_fit_points={self.max_fit_points} (want >= 50) and max_completion_points="
                f"{self.max_completion_points} (want >= 0)"
            )
        prims = tuple(self.primitives)
        bad = [p for p in prims if p not in FITTABLE_PRIMITIVES]
        if bad or not prims:
            raise ConfigError(
                f"ShapeConfig.primitives={list(prims)}; choose one or more of {list(FITTABLE_PRIMITIVES)}"
            )
        object.__setattr__(self, "primitives", prims)

    def depth_sigma_m(self, z_m: float | np.ndarray) -> float | np.ndarray:
        """Depth noise (1 sigma, metres) at depth ``z_m`` (metres): ``a + b * z**2``."""
        return self.depth_noise_a_m + self.depth_noise_b_per_m * np.square(z_m)


def _readonly(a, dtype=np.float64) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


def _jsonable(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return v


@dataclass(frozen=True, eq=False)
class ShapeEstimate:
    """Object frame, size, footprint, primitive and completion of one object.

    The object frame has its origin at the centre of the completed shape; ``z`` is the support-plane normal
    (up, away from the table) when a plane is known, else the smallest principal axis pointing towards the
    camera (``frame_source == "pca"``); ``x`` is the long axis of the footprint rectangle, ``y = z × x``.

    Attributes
    ----------
    camera_from_object : Transform
        ``camera_color_optical`` ← ``object``; translation in metres.
    base_from_object : Transform or None
        ``base`` ← ``object`` when the cloud carries ``base_from_camera``.
    extents_m : (3,) float64
        Full size of the completed shape along object x, y, z, metres.
    principal_axes : (3, 3) float64
        Rows: unit principal axes of the visible object points in the camera frame, by decreasing variance,
        each oriented towards the camera.
    footprint_corners_in_camera : (4, 3) float64
        Corners of the minimum-area rectangle of the (completed) points projected on the support plane, camera
        frame, metres, in order around the rectangle.
    footprint_size_m : (2,) float64
        Long and short side of the footprint rectangle, metres.
    height_m : float
        Top of the object above the support plane, metres (without a plane: the visible extent along z).
    primitive : str
        ``"box"``, ``"cylinder"``, ``"sphere"`` or ``"other"``.
    primitive_params : dict
        Parameters of the chosen primitive in the camera frame (metres): box ``size_m``; cylinder ``radius_m``,
        ``height_m``/``length_m``, ``axis_in_camera``, ``centre_in_camera``, ``orientation`` (upright/lying);
        sphere ``radius_m``, ``centre_in_camera``. Empty for ``"other"``.
    primitive_residuals_m : dict
        Trimmed RMS distance (metres) of the visible points to each primitive tried.
    completed_points_in_camera : (M, 3) float64
        Visible object points followed by the generated points of the unseen surfaces, camera frame, metres.
    num_visible_points : int
        How many of ``completed_points_in_camera`` (the first ones) were measured.
    uncertainty : dict
        1-sigma-like bounds: ``position_m``, ``yaw_rad``, ``extents_m`` (3,), ``height_m``, plus the inputs
        ``pixel_size_m``, ``boundary_error_px``, ``boundary_error_m``, ``depth_sigma_m`` and ``top_visible``
        (False: the footprint's depth away from the camera was not observed and may be a lower bound).
    frame_source : str
        ``"support_plane"`` or ``"pca"`` (no usable plane: z, height and footprint are from PCA).
    notes : tuple of str
        Why any field is less trustworthy than usual (fallbacks taken, ambiguities).
    """

    camera_from_object: Transform
    base_from_object: Transform | None
    extents_m: np.ndarray
    principal_axes: np.ndarray
    footprint_corners_in_camera: np.ndarray
    footprint_size_m: np.ndarray
    height_m: float
    primitive: str
    primitive_params: dict
    primitive_residuals_m: dict
    completed_points_in_camera: np.ndarray
    uncertainty: dict
    num_visible_points: int = 0
    frame_source: str = "support_plane"
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        t = self.camera_from_object
        if not isinstance(t, Transform) or (t.to_frame, t.from_frame) != (CAMERA, OBJECT):
            name = t.name if isinstance(t, Transform) else type(t).__name__
            raise FrameMismatchError(f"camera_from_object must map {OBJECT} to {CAMERA}, got {name}")
        b = self.base_from_object
        if b is not None and (not isinstance(b, Transform) or (b.to_frame, b.from_frame) != (BASE, OBJECT)):
            name = b.name if isinstance(b, Transform) else type(b).__name__
            raise FrameMismatchError(f"base_from_object must map {OBJECT} to {BASE}, got {name}")
        for name, shape in (("extents_m", (3,)), ("principal_axes", (3, 3)),
                            ("footprint_corners_in_camera", (4, 3)), ("footprint_size_m", (2,))):
            arr = _readonly(getattr(self, name))
            if arr.shape != shape:
                raise ShapeError(f"ShapeEstimate.{name} must be {shape}, got {arr.shape}")
            if not np.isfinite(arr).all():
                raise UnitsError(f"ShapeEstimate.{name} has non-finite values: {arr.tolist()}")
            object.__setattr__(self, name, arr)
        if (self.extents_m < 0).any():
            raise UnitsError(f"ShapeEstimate.extents_m must be >= 0 metres, got {self.extents_m.tolist()}")
        pts = _readonly(self.completed_points_in_camera)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ShapeError(f"completed_points_in_camera must be (M, 3), got {pts.shape}")
        object.__setattr__(self, "completed_points_in_camera", pts)
        if not 0 <= int(self.num_visible_points) <= len(pts):
            raise ShapeError(f"num_visible_points={self.num_visible_points} must lie in [0, {len(pts)}]")
        object.__setattr__(self, "num_visible_points", int(self.num_visible_points))
        if self.primitive not in PRIMITIVES:
            raise ConfigError(f"primitive {self.primitive!r} is not one of {list(PRIMITIVES)}")
        if self.frame_source not in FRAME_SOURCES:
            raise ConfigError(f"frame_source {self.frame_source!r} is not one of {list(FRAME_SOURCES)}")
        h = float(self.height_m)
        if not math.isfinite(h):
            raise UnitsError(f"ShapeEstimate.height_m={h} is not finite")
        object.__setattr__(self, "height_m", h)
        object.__setattr__(self, "notes", tuple(str(n) for n in self.notes))

    # --- derived ---------------------------------------------------------------------------------
    @property
    def centre_in_camera(self) -> np.ndarray:
        """(3,) centre of the completed shape in the camera frame, metres."""
        return self.camera_from_object.translation.copy()

    @property
    def visible_points_in_camera(self) -> np.ndarray:
        """(K, 3) measured object points used for the estimate (camera frame, metres)."""
        return self.completed_points_in_camera[: self.num_visible_points]

    @property
    def axes_in_camera(self) -> np.ndarray:
        """(3, 3) rows: object x, y, z axes in the camera frame."""
        return self.camera_from_object.rotation.T.copy()

    def to_dict(self, *, include_points: bool = False) -> dict:
        """JSON-ready summary: metres and radians; frames named. Points only with ``include_points``."""
        d = {
            "schema_version": SCHEMA_VERSION,
            "units": {"length": "m", "angle": "rad"},
            "frame": CAMERA,
            "object_frame": "origin at the centre of the completed shape; z up (support-plane normal) or "
                            "smallest principal axis towards the camera; x long side of the footprint",
            "frame_source": self.frame_source,
            "camera_from_object": self.camera_from_object.to_dict(),
            "base_from_object": None if self.base_from_object is None else self.base_from_object.to_dict(),
            "extents_m": self.extents_m.tolist(),
            "principal_axes_in_camera": self.principal_axes.tolist(),
            "footprint_corners_in_camera": self.footprint_corners_in_camera.tolist(),
            "footprint_size_m": self.footprint_size_m.tolist(),
            "height_m": self.height_m,
            "primitive": self.primitive,
            "primitive_params": _jsonable(self.primitive_params),
            "primitive_residuals_m": _jsonable(self.primitive_residuals_m),
            "num_visible_points": self.num_visible_points,
            "num_completed_points": int(len(self.completed_points_in_camera)),
            "uncertainty": _jsonable(self.uncertainty),
            "notes": list(self.notes),
        }
        if include_points:
            d["completed_points_in_camera"] = self.completed_points_in_camera.tolist()
        return d
