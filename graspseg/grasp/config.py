"""Configuration of grasp planning (candidate sampling, clearances, margin checks)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.errors import ConfigError


@dataclass(frozen=True)
class GraspConfig:
    """Options of :func:`graspseg.grasp.plan_grasps`. Lengths in metres, angles in degrees (suffix ``_deg``).

    Attributes
    ----------
    friction_coefficient : float
        Coulomb friction at the pads; the friction cone half-angle is ``atan(mu)``.
    clearance_m : float
        Free space wanted between each open finger and the object (beyond the boundary error).
    unseen_clearance_m : float
        More free space for a finger whose contact's outward side points away from the camera (the object's far
        side, of which only the silhouette is seen: a round object reaches further behind it), times the
        alignment of that side with the camera ray (0 sideways, 1 straight away), as far as the stroke allows.
    table_clearance_m : float
        The lowest point of any finger stays at least this far above the support plane.
    top_down : bool
        Sample approaches along the plane normal (from above).
    side_tilts_deg : tuple of float
        Tilts of the other approaches from the downward normal, in [0, 90]; 90 = horizontal side grasp.
        An approach never points up out of the table: tilt > 90 is rejected.
    n_azimuths : int
        Azimuths sampled around the plane normal for each tilt.
    n_closing_angles : int
        Closing-axis angles (over 180 deg) sampled for top-down approaches, besides the object's axes.
    n_offsets : int
        Positions of the hand across the finger width (along grasp-frame y) per top-down orientation.
    n_side_offsets : int
        The same for tilted and side approaches.
    max_grasps : int
        Largest number of grasps returned (accepted first).
    boundary_error_px : float or None
        Expected mask-boundary error; None = take it from the segmenter (argument of ``plan_grasps``).
    erode_dilate : bool
        Re-check each grasp under the mask eroded and dilated by the boundary error.
    use_alternative_masks : bool
        Re-check each grasp under the segmenter's alternative candidate masks.
    alternative_min_iou : float
        Alternatives overlapping the selected mask less than this (IoU) show another part or group, not
        another outline of the same object, and are not used.
    min_robustness : float
        Fraction of all perturbations (eroded, dilated, alternatives) a grasp must survive to be accepted;
        the eroded and the dilated mask (the error budget itself) must both be survived in any case.
    rebuild_cloud_for_robustness : bool
        Rebuild perturbed clouds with ``graspseg.cloud.build_object_cloud`` (slower, full cleanup)
        instead of back-projecting the perturbed masks directly.
    complete_to_plane : bool
        Treat the unseen part below the object's silhouette as solid down to the support plane.
    approach_distance_m : float
        Length of the straight approach swept by the fingers and palm before closing.
    max_object_points, max_scene_points : int
        Subsampling caps (seeded) for the evaluation.
    scene_radius_m : float
        Scene points farther than this from the object's bounding sphere are ignored.
    min_contact_points : int
        Object points needed between the fingers.
    min_grasp_depth_m : float
        How far the object must reach between the fingers, from the fingertips towards the palm.
    shallow_depth_m : float
        Every hand is also tried with the fingertips only this far past the top of the object (0: off), besides
        as deep as the palm and the table allow: a target resting on others or beside lower neighbours is often
        held by its upper part only.
    collision_min_points : int
        Points inside a finger or the palm that count as a collision (1 = any).
    table_noise_m : float
        Points this close to the support plane are the table (checked against the plane, not as obstacles).
    seed : int
    """

    friction_coefficient: float = 0.5
    clearance_m: float = 0.004
    unseen_clearance_m: float = 0.012
    table_clearance_m: float = 0.005
    top_down: bool = True
    side_tilts_deg: tuple[float, ...] = (45.0, 90.0)
    n_azimuths: int = 8
    n_closing_angles: int = 8
    n_offsets: int = 5
    n_side_offsets: int = 3
    max_grasps: int = 100
    boundary_error_px: float | None = None
    erode_dilate: bool = True
    use_alternative_masks: bool = True
    alternative_min_iou: float = 0.5
    min_robustness: float = 0.66
    rebuild_cloud_for_robustness: bool = False
    complete_to_plane: bool = True
    approach_distance_m: float = 0.08
    max_object_points: int = 700
    max_scene_points: int = 2000
    scene_radius_m: float = 0.15
    min_contact_points: int = 3
    min_grasp_depth_m: float = 0.01
    shallow_depth_m: float = 0.02
    collision_min_points: int = 2
    table_noise_m: float = 0.006
    seed: int = 0

    def __post_init__(self) -> None:
        positive = ("friction_coefficient", "approach_distance_m", "scene_radius_m")
        nonneg = ("clearance_m", "unseen_clearance_m", "shallow_depth_m", "table_clearance_m", "table_noise_m", "min_grasp_depth_m")
        for name in positive + nonneg:
            v = float(getattr(self, name))
            if not math.isfinite(v) or v < 0 or (name in positive and v == 0):
                raise ConfigError(f"grasp.{name} must be {'> 0' if name in positive else '>= 0'}, got {v}")
            if name.endswith("_m") and v > 2.0:
                raise ConfigError(f"grasp.{name} = {v} m is implausible; lengths are in metres")
            object.__setattr__(self, name, v)
        tilts = tuple(float(t) for t in self.side_tilts_deg)
        for t in tilts:
            if not (0.0 < t <= 90.0):
                raise ConfigError(
                    f"grasp.side_tilts_deg contains {t}; tilts from the downward plane normal must be in (0, 90] "
                    "(above 90 the gripper would come from below the table)"
                )
        object.__setattr__(self, "side_tilts_deg", tilts)
        if not self.top_down and not tilts:
            raise ConfigError("grasp: no approach enabled; set top_down: true or give side_tilts_deg")
        for name in ("n_azimuths", "n_closing_angles", "n_offsets", "n_side_offsets", "max_grasps", "max_object_points",
                     "max_scene_points", "min_contact_points", "collision_min_points"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or int(v) < 1:
                raise ConfigError(f"grasp.{name} must be an integer >= 1, got {v!r}")
            object.__setattr__(self, name, int(v))
        if self.boundary_error_px is not None:
            k = float(self.boundary_error_px)
            if not math.isfinite(k) or k < 0 or k > 50:
                raise ConfigError(f"grasp.boundary_error_px must be in [0, 50] pixels or null, got {k}")
            object.__setattr__(self, "boundary_error_px", k)
        iou = float(self.alternative_min_iou)
        if not 0.0 <= iou <= 1.0:
            raise ConfigError(f"grasp.alternative_min_iou is an IoU in [0, 1], got {iou}")
        object.__setattr__(self, "alternative_min_iou", iou)
        r = float(self.min_robustness)
        if not 0.0 <= r <= 1.0:
            raise ConfigError(f"grasp.min_robustness is a fraction in [0, 1], got {r}")
        object.__setattr__(self, "min_robustness", r)
