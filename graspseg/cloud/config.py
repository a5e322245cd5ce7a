"""Configuration of the cloud stage."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import ConfigError


@dataclass(frozen=True)
class CloudConfig:
    """Every tunable of the cloud stage (depth cleanup, boundary band, scene subsampling, support plane).

    Attributes
    ----------
    depth_range_m : (float, float)
        Readings outside ``[near, far]`` metres are discarded.
    flying_a_m, flying_b_per_m : float
        Two neighbours lie on one surface when their depths differ by at most ``a + b·z²`` metres
        (the quadratic term follows stereo/ToF depth noise).
    flying_min_neighbors : int
        A pixel with fewer than this many of its 8 neighbours on its surface is a flying pixel (mixed
        depth at a discontinuity, or a speckle) and is removed. 0 disables the removal.
    band_px : int
        Width of the boundary band on each side of the mask edge, pixels.
    band_a_m, band_b_per_m : float
        Depth tolerance ``a + b·z²`` (metres) when comparing a band pixel with the object's and the
        background's reference depths.
    band_max_slope : float
        Surface slope (depth change per lateral metre, ``tan`` of the angle to the image plane) the
        object may have near its rim; widens the object tolerance by ``slope · distance`` to the
        interior.
    drop_background_band : bool
        Mask pixels labelled ``BACKGROUND`` (the mask leaked onto the background) are left out of the
        object cloud (they stay in the scene points).
    scene_stride_px : int
        Scene (obstacle) points keep every n-th pixel in u and v.
    fit_plane : bool
        ``build_object_cloud`` fits the support plane itself when none is passed.
    plane_stride_px : int
        Pixel stride of the points used for the support-plane fit.
    plane_threshold_m : float
        RANSAC inlier distance of the support plane, metres.
    plane_iterations : int
        RANSAC hypotheses (scored in one batch).
    plane_score_points : int
        Points each hypothesis is scored on.
    plane_min_inlier_ratio : float
        The plane must hold at least this fraction of the sampled valid depth.
    plane_min_points : int
        ... and at least this many sampled points.
    min_mask_px : int
        Smaller masks are rejected.
    min_points : int
        Fewer valid object points (after cleanup) are rejected.
    seed : int
        Seed of every random choice of the stage.
    """

    depth_range_m: tuple[float, float] = (0.07, 2.0)
    flying_a_m: float = 0.004
    flying_b_per_m: float = 0.02
    flying_min_neighbors: int = 3
    band_px: int = 4
    band_a_m: float = 0.005
    band_b_per_m: float = 0.02
    band_max_slope: float = 3.0
    drop_background_band: bool = True
    scene_stride_px: int = 4
    fit_plane: bool = True
    plane_stride_px: int = 6
    plane_threshold_m: float = 0.006
    plane_iterations: int = 200
    plane_score_points: int = 2000
    plane_min_inlier_ratio: float = 0.15
    plane_min_points: int = 200
    min_mask_px: int = 10
    min_points: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        try:
            near, far = (float(x) for x in self.depth_range_m)
        except (TypeError, ValueError):
            raise ConfigError(
                f"cloud.depth_range_m must be two numbers (near, far) in metres, got {self.depth_range_m!r}"
            ) from None
        if not (0 <= near < far):
            raise ConfigError(
                f"cloud.depth_range_m must satisfy 0 <= near < far (metres), got ({near}, {far})"
            )
        if far > 50:
            raise ConfigError(
                f"cloud.depth_range_m far limit {far} is implausible: the range is in metres, not millimetres"
            )
        object.__setattr__(self, "depth_range_m", (near, far))
        for name in ("flying_a_m", "flying_b_per_m", "band_a_m", "band_b_per_m", "band_max_slope"):
            if not float(getattr(self, name)) >= 0:
                raise ConfigError(f"cloud.{name} must be >= 0, got {getattr(self, name)!r}")
        if not self.plane_threshold_m > 0:
            raise ConfigError(
                f"cloud.plane_threshold_m must be a positive distance in metres (e.g. 0.006), got {self.plane_threshold_m}"
            )
        if not 0 <= self.flying_min_neighbors <= 8:
            raise ConfigError(
                f"cloud.flying_min_neighbors counts 8-neighbours: 0..8, got {self.flying_min_neighbors}"
            )
        for name in ("band_px", "min_mask_px", "min_points", "plane_min_points"):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"cloud.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("scene_stride_px", "plane_stride_px", "plane_iterations", "plane_score_points"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"cloud.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.plane_min_inlier_ratio <= 1:
            raise ConfigError(
                f"cloud.plane_min_inlier_ratio is a fraction in [0, 1], got {self.plane_min_inlier_ratio}"
            )

    def surface_tolerance_m(self, depth_m):
        """Depth difference (metres) under which two neighbours at depth ``depth_m`` lie on one surface."""
        return self.flying_a_m + self.flying_b_per_m * depth_m * depth_m

    def band_tolerance_m(self, depth_m):
        """Depth tolerance (metres) of the boundary-band comparisons at depth ``depth_m``."""
        return self.band_a_m + self.band_b_per_m * depth_m * depth_m
