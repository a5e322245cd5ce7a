"""frame → segment → cloud → shape → grasps, composed from one config.

The only module that knows every stage. ``Pipeline.perceive`` returns a frozen
:class:`PerceptionResult`; the command line, the planner plugin, the simulator and offline analysis all
call it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .cloud import CloudConfig, ObjectCloud, build_object_cloud, fit_support_plane
from .cloud.types import SupportPlane
from .core.camera import CameraRig, check_rig_matches_frame
from .core.config import from_dict, load_yaml, to_dict, with_overrides
from .core.errors import ConfigError, GraspsegError, InputError, NoSupportPlaneError
from .core.frame import RGBDFrame
from .core.transform import CAMERA, Transform
from .grasp import GraspConfig, GraspSet, GripperModel, load_gripper, plan_grasps
from .segment import MaskSet, Prompt, create_segmenter
from .segment.types import POLICIES
from .segment.uncertainty import boundary_error_details
from .shape import ShapeConfig, ShapeEstimate, estimate_shape

log = logging.getLogger(__name__)

#: ``result.json``'s schema version; the JSON Schema is ``graspseg/schemas/perception_result.schema.json``.
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class SegmentStageConfig:
    """Which segmenter, how to pick its candidate, and the backend's own options.

    ``granularity`` defaults to ``whole``: a grasp is planned on one whole object. ``part`` when asked (a
    handle); ``group`` is used only when the segmenter offers no whole-object candidate, and the result's
    notes say so. ``auto`` (best score, SAM's convention) can pick a group of touching objects.

    ``labeller``: empty, or a CLIP-family labeller (``model`` = checkpoint directory, plus its options and
    ``min_margin`` / ``on_ambiguous``): the backend then also answers text prompts by labelling the masks of
    its segment-everything (see docs/labels.md).
    """

    backend: str = "rgbd"
    granularity: str = "whole"
    options: dict = field(default_factory=dict)
    labeller: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.granularity not in POLICIES:
            raise ConfigError(f"segment.granularity must be one of {POLICIES}, got {self.granularity!r}")
        if not isinstance(self.labeller, dict):
            raise ConfigError(f"segment.labeller must be a mapping such as {{model: <checkpoint dir>}} or empty, "
                              f"got {self.labeller!r}")


@dataclass(frozen=True)
class LimitsConfig:
    """Resource limits checked before any heavy work.

    ``max_frame_pixels``: largest accepted frame (width × height). Memory grows ~100 bytes per pixel through
    the stages; the default admits 1920×1200 (every RealSense colour mode) and refuses e.g. 4000×3000 photos
    at once instead of spending seconds and gigabytes on them. Raise it explicitly for larger sensors.
    """

    max_frame_pixels: int = 1920 * 1200

    def __post_init__(self) -> None:
        if isinstance(self.max_frame_pixels, bool) or not isinstance(self.max_frame_pixels, int) \
                or self.max_frame_pixels < 1:
            raise ConfigError(f"limits.max_frame_pixels must be a positive integer (pixels), got {self.max_frame_pixels!r}")

    def check_size(self, width: int, height: int) -> None:
        """Raise :class:`InputError` when a ``width`` × ``height`` frame exceeds ``max_frame_pixels``."""
        if width * height > self.max_frame_pixels:
            raise InputError(
                f"frame is {width}x{height} = {width * height} pixels, above limits.max_frame_pixels = "
                f"{self.max_frame_pixels}; downscale it (and its intrinsics) or raise the limit with "
                f"--limits.max_frame_pixels={width * height}"
            )


@dataclass(frozen=True)
class PipelineConfig:
    """Every tunable of the pipeline; ``configs/default.yaml`` stores the defaults.

    ``boundary_error_px``: expected mask boundary error for the margin checks; ``None`` takes
    ``grasp.boundary_error_px``, then the segmenter's own estimate (see :meth:`Pipeline.boundary_error`).
    """

    segment: SegmentStageConfig = field(default_factory=SegmentStageConfig)
    cloud: CloudConfig = field(default_factory=CloudConfig)
    shape: ShapeConfig = field(default_factory=ShapeConfig)
    grasp: GraspConfig = field(default_factory=GraspConfig)
    gripper: str = "franka_hand"
    boundary_error_px: float | None = None
    limits: LimitsConfig = field(default_factory=LimitsConfig)

    def __post_init__(self) -> None:
        k = self.boundary_error_px
        if k is not None and (isinstance(k, bool) or not isinstance(k, int | float) or not np.isfinite(k) or k < 0):
            raise ConfigError(f"boundary_error_px must be a finite number of pixels >= 0 or null (the segmenter's "
                              f"own estimate), got {k!r}")

    @classmethod
    def from_yaml(cls, path: str | Path) -> PipelineConfig:
        return load_yaml(cls, path)

    @classmethod
    def from_dict(cls, data: dict) -> PipelineConfig:
        return from_dict(cls, data)

    def to_dict(self) -> dict:
        return to_dict(self)

    def with_overrides(self, overrides) -> PipelineConfig:
        return with_overrides(self, overrides)


@dataclass(frozen=True, eq=False)
class PerceptionResult:
    """Everything one ``perceive`` call found, stage by stage.

    Attributes
    ----------
    frame : RGBDFrame
    prompt : Prompt
    mask_set : MaskSet
        All candidates of the segmenter.
    selected_index : int
        The candidate used downstream (or -1 when ``mask_override`` was given).
    mask : (H, W) bool
        The mask used downstream.
    cloud : ObjectCloud
    shape : ShapeEstimate
    grasps : GraspSet
        Ranked best first; ``grasps.accepted`` marks those that pass every margin check.
    boundary_error_px : float
        Expected boundary error the margins were checked against, and ``boundary_error_source``.
    timings_ms : dict
        Wall-clock per stage.
    """

    frame: RGBDFrame
    prompt: Prompt
    mask_set: MaskSet
    selected_index: int
    mask: np.ndarray
    cloud: ObjectCloud
    shape: ShapeEstimate
    grasps: GraspSet
    gripper: GripperModel
    boundary_error_px: float
    boundary_error_source: str
    timings_ms: dict
    backend: str = ""
    notes: tuple[str, ...] = ()

    @property
    def best_grasp(self):
        """The best accepted grasp as a one-element GraspSet, or None when none was accepted."""
        acc = self.grasps.accepted_only()
        return acc[:1] if len(acc) else None

    def to_dict(self, *, compact: bool = False, top_k: int | None = None) -> dict:
        """The ``result.json`` document (units and frames named), valid against
        ``graspseg/schemas/perception_result.schema.json``.

        ``compact`` (for planners): accepted grasps only, the best ``top_k`` (default 5) of them, no
        per-candidate pixel data. ``top_k`` alone trims the full list.
        """
        if compact and top_k is None:
            top_k = 5
        return {
            "schema": "graspseg.perception_result",
            "schema_version": SCHEMA_VERSION,
            "units": {"length": "m", "angle": "rad", "margins": "mm and px", "time": "ms", "pixels": "u=column, v=row"},
            "frames": {"camera": "camera_color_optical (x right, y down, z forward)",
                       "grasp": "+z approach, +x closing, origin at the fingertip centre",
                       "base": "robot base (present when the frame has base_from_tcp and the rig tcp_from_camera)"},
            "frame_id": self.frame.frame_id,
            "backend": self.backend,
            "prompt": self.prompt.describe(),
            "segmentation": {
                "selected_index": self.selected_index,
                "candidates": [{"index": k, "granularity": self.mask_set.granularity[k],
                                "score": float(self.mask_set.scores[k]), "area_px": int(self.mask_set.areas[k])}
                               for k in range(len(self.mask_set))],
                "mask_area_px": int(self.mask.sum()),
                **({"text_match": self.mask_set.details["text_match"]}
                   if isinstance(self.mask_set.details.get("text_match"), dict) else {}),
            },
            "boundary_error": {"px": float(self.boundary_error_px), "source": self.boundary_error_source},
            "cloud": {"num_points": len(self.cloud), "stats": self.cloud.stats,
                      "support_plane": None if self.cloud.plane is None else self.cloud.plane.to_dict(),
                      "base_from_camera": None if self.cloud.base_from_camera is None else self.cloud.base_from_camera.to_dict()},
            "shape": self.shape.to_dict(),
            "gripper": self.gripper.to_dict(),
            "grasps": self.grasps.to_dict(compact=compact, top_k=top_k),
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
            "notes": list(self.notes),
        }


class Pipeline:
    """Compose the stages from a :class:`PipelineConfig`.

    The segmenter's per-frame embedding is computed once per frame: several prompts on the same frame
    reuse it (``set_frame`` is skipped when the frame object is unchanged).

    Thread safety: one ``Pipeline`` may be shared by threads. The segmenter holds per-frame state, so
    ``perceive`` and ``set_frame`` calls are serialised by a lock and each returns exactly what it would
    single-threaded. For parallel throughput give each thread (or process) its own ``Pipeline``.
    """

    def __init__(self, config: PipelineConfig | None = None, *, rig: CameraRig | None = None,
                 gripper: GripperModel | str | None = None, segmenter=None) -> None:
        self.config = config or PipelineConfig()
        self.rig = rig
        g = gripper if gripper is not None else self.config.gripper
        self.gripper = g if isinstance(g, GripperModel) else load_gripper(g)
        seg = self.config.segment
        self.segmenter = segmenter or create_segmenter(seg.backend, labeller=seg.labeller, **seg.options)
        self._frame_ref: RGBDFrame | None = None
        self._lock = threading.RLock()

    @classmethod
    def from_config_file(cls, path: str | Path | None = None, overrides=None, **kw) -> Pipeline:
        cfg = PipelineConfig.from_yaml(path) if path else PipelineConfig()  # configs/default.yaml == the defaults
        if overrides:
            cfg = cfg.with_overrides(overrides)
        return cls(cfg, **kw)

    def set_frame(self, frame: RGBDFrame) -> float:
        """Run the segmenter's per-frame embedding if ``frame``'s images are new; returns the time spent (ms).

        Frames sharing the same colour, depth and intrinsics objects (``frame.with_pose(...)``) reuse the
        embedding; images modified in place are not detected — pass a new frame.
        """
        with self._lock:
            ref = self._frame_ref
            if ref is frame or (ref is not None and ref.color is frame.color and ref.depth_m is frame.depth_m
                                and ref.intrinsics is frame.intrinsics):  # same images, e.g. with_pose() copies
                return 0.0
            self.config.limits.check_size(frame.width, frame.height)
            t0 = time.perf_counter()
            self.segmenter.set_frame(frame)
            self._frame_ref = frame
            return (time.perf_counter() - t0) * 1e3

    def _segmenter_plane(self) -> SupportPlane | None:
        """The support plane the segmenter fitted for the current frame (camera frame), if it exposes one.

        A segmenter with per-frame ``features.plane`` (normal towards the camera, ``offset``, ``found``,
        ``rmse_m``, ``inlier_ratio``) saves the cloud stage its RANSAC search (the plane is only refined
        on the samples outside the mask). ``None`` when it has none or did not find one.
        """
        try:
            fit = getattr(getattr(self.segmenter, "features", None), "plane", None)
        except GraspsegError:  # no frame set
            return None
        if fit is None or not getattr(fit, "found", False):
            return None
        try:
            return SupportPlane(np.asarray(fit.normal, np.float64), float(fit.offset),
                                float(getattr(fit, "inlier_ratio", 0.0)), float(getattr(fit, "rmse_m", 0.0)),
                                self.config.cloud.plane_threshold_m, CAMERA)
        except (GraspsegError, TypeError, ValueError):
            return None

    def perceive(self, frame: RGBDFrame, prompt: Prompt, *, granularity: str | None = None,
                 mask_override: np.ndarray | None = None, boundary_error_px: float | None = None,
                 base_from_tcp: Transform | None = None) -> PerceptionResult:
        """Segment the prompted object and plan grasps with boundary-error margins.

        Parameters
        ----------
        frame : RGBDFrame
        prompt : Prompt
        granularity : {"part", "whole", "group", "auto"}, optional
            Overrides ``config.segment.granularity``.
        mask_override : (H, W) bool, optional
            Use this mask instead of the segmenter's (e.g. ground truth in benchmarks). The segmenter
            still runs so that its alternative candidates feed the robustness check.
        boundary_error_px : float, optional
            Overrides the config and the segmenter's estimate.
        base_from_tcp : Transform, optional
            The robot's TCP pose at capture (``base`` ← ``tcp``), replacing ``frame.base_from_tcp``.
        """
        return self.perceive_many(frame, [prompt], granularity=granularity, mask_override=mask_override,
                                  boundary_error_px=boundary_error_px, base_from_tcp=base_from_tcp)[0]

    def perceive_many(self, frame: RGBDFrame, prompts, *, granularity: str | None = None,
                      mask_override: np.ndarray | None = None, boundary_error_px: float | None = None,
                      base_from_tcp: Transform | None = None) -> list[PerceptionResult]:
        """:meth:`perceive` for several prompts on one frame, sharing one image encoding.

        The frame is encoded once; the prompts are answered in order while the pipeline is held, so no
        other thread's frame can slip in between. Every prompt is validated before any work is done.
        """
        prompts = list(prompts)
        if not prompts:
            raise InputError("perceive_many needs at least one prompt, got none")
        for p in prompts:
            if not isinstance(p, Prompt):
                raise InputError(f"prompts must be graspseg.Prompt objects (Prompt.point/box/mask/text), "
                                 f"got {type(p).__name__}")
            p.validate_for(frame.width, frame.height)
        if base_from_tcp is not None:
            frame = frame.with_pose(base_from_tcp)
        with self._lock:
            return [self._perceive(frame, p, granularity, mask_override, boundary_error_px) for p in prompts]

    def set_rig(self, rig: CameraRig | None) -> None:
        """Replace the camera rig (hand-eye calibration) used from the next call on."""
        if rig is not None and not isinstance(rig, CameraRig):
            raise ConfigError(f"rig must be a graspseg CameraRig (CameraRig.load_yaml(path)) or None, "
                              f"got {type(rig).__name__}")
        with self._lock:
            self.rig = rig

    def boundary_error(self, mask_set: MaskSet, selected: int, argument: float | None = None) -> tuple[float, str]:
        """The expected mask boundary error ``k`` (px) the shape and grasp stages use, and where it came from.

        The first that is set: ``argument`` (``"argument"``), the config's ``boundary_error_px``
        (``"config"``), ``grasp.boundary_error_px`` (``"config (grasp)"``), else the segmenter's estimate for
        candidate ``selected`` (``"segmenter (<source>)"``, :func:`~graspseg.segment.uncertainty.
        boundary_error_details`: ``calibrated`` when the segmenter ships a measured error, e.g. a SAM checkpoint
        written by ``graspseg finetune``, else its soft-mask / candidate cues). ``graspseg eval boundary-error``
        writes a measured value into a config (docs/metrics.md).
        """
        cfg = self.config
        if argument is not None:
            return float(argument), "argument"
        if cfg.boundary_error_px is not None:
            return float(cfg.boundary_error_px), "config"
        if cfg.grasp.boundary_error_px is not None:
            return float(cfg.grasp.boundary_error_px), "config (grasp)"
        details = boundary_error_details(mask_set, selected)
        return float(details["boundary_error_px"]), f"segmenter ({details['source']})"

    def _perceive(self, frame, prompt, granularity, mask_override, boundary_error_px) -> PerceptionResult:
        cfg = self.config
        timings: dict[str, float] = {}
        notes: list[str] = []
        cfg.limits.check_size(frame.width, frame.height)
        prompt.validate_for(frame.width, frame.height)
        check_rig_matches_frame(self.rig, frame)

        timings["segment.set_frame"] = self.set_frame(frame)
        t = time.perf_counter()
        mask_set = self.segmenter.predict(prompt)
        wanted = granularity or cfg.segment.granularity
        selected = mask_set.select(wanted)
        text_match = mask_set.details.get("text_match")
        if isinstance(text_match, dict) and text_match.get("ambiguous"):
            notes.append(f"text '{text_match['phrase']}' is ambiguous: objects {text_match['best_index']} and "
                         f"{text_match['runner_up_index']} of segment-all score alike (margin {text_match['margin']} < "
                         f"{text_match['min_margin']} log-odds); the first was used: check it, or click on the object")
        if wanted != "auto" and mask_set.granularity[selected] != wanted:
            notes.append(f"no {wanted!r} candidate: used the {mask_set.granularity[selected]!r} mask instead "
                         f"(candidates: {', '.join(mask_set.granularity)})")
        timings["segment.predict"] = (time.perf_counter() - t) * 1e3
        return self._downstream(frame, prompt, mask_set, selected, mask_override, boundary_error_px, timings, notes,
                                self._segmenter_plane())

    def segmenter_plane(self) -> SupportPlane | None:
        """The support plane the segmenter fitted on its current frame (camera frame), or None."""
        return self._segmenter_plane()

    def perceive_masks(self, frame: RGBDFrame, prompt: Prompt, mask_set: MaskSet, selected: int, *,
                       boundary_error_px: float | None = None, initial_plane: SupportPlane | None = None,
                       notes: tuple[str, ...] = ()) -> PerceptionResult:
        """Cloud, shape and grasps for candidate ``selected`` of a ``mask_set`` found elsewhere (a tracker's step,
        a keyframe encoded earlier): the segmenter does not run.

        ``initial_plane``: the support plane of ``frame`` when already known (:meth:`segmenter_plane` read right
        after the segmenter saw ``frame``); otherwise the plane is searched for.
        """
        if not isinstance(mask_set, MaskSet) or not -len(mask_set) <= selected < len(mask_set):
            raise InputError(f"perceive_masks needs a MaskSet and a candidate index in it, got "
                             f"{type(mask_set).__name__} and {selected!r}")
        if mask_set.shape != (frame.height, frame.width):
            raise InputError(f"masks are {mask_set.shape[::-1]} but the frame is {frame.width}x{frame.height}")
        with self._lock:
            self.config.limits.check_size(frame.width, frame.height)
            check_rig_matches_frame(self.rig, frame)
            return self._downstream(frame, prompt, mask_set, selected % len(mask_set), None, boundary_error_px,
                                    {}, list(notes), initial_plane)

    def _downstream(self, frame, prompt, mask_set, selected, mask_override, boundary_error_px, timings,
                    notes, initial) -> PerceptionResult:
        cfg = self.config
        if mask_override is not None:
            mask = np.asarray(mask_override, bool)
            if mask.shape != (frame.height, frame.width):
                raise InputError(f"mask_override is {mask.shape[::-1]} but the frame is {frame.width}x{frame.height}")
            selected_index = -1
        else:
            mask = mask_set.masks[selected]
            selected_index = selected

        k_px, k_source = self.boundary_error(mask_set, selected, boundary_error_px)

        t = time.perf_counter()
        tcp_from_camera = self.rig.tcp_from_camera if self.rig is not None else None
        plane = None
        # the segmenter's plane (when it exposes one) replaces the RANSAC search and is only refined here;
        # when it does not hold as the table outside the mask, the full search runs
        for start in ((initial, None) if initial is not None else (None,)):
            try:
                plane = fit_support_plane(frame, cfg.cloud, exclude_mask=mask, initial=start)
                break
            except NoSupportPlaneError as e:
                if start is None:
                    notes.append(str(e))
        cloud_cfg = cfg.cloud if plane is not None else replace(cfg.cloud, fit_plane=False)  # don't fit twice
        cloud = build_object_cloud(frame, mask, cloud_cfg, tcp_from_camera=tcp_from_camera, plane=plane)
        timings["cloud"] = (time.perf_counter() - t) * 1e3
        if frame.base_from_tcp is not None and tcp_from_camera is None:
            notes.append("frame has base_from_tcp but no rig tcp_from_camera was given: results are in the camera frame")

        t = time.perf_counter()
        shape = estimate_shape(cloud, cfg.shape, boundary_error_px=k_px, intrinsics=frame.intrinsics)
        timings["shape"] = (time.perf_counter() - t) * 1e3

        t = time.perf_counter()
        alternatives = [mask_set.masks[i] for i in range(len(mask_set)) if i != selected]
        # k is resolved above; a grasp.boundary_error_px left in the grasp config would override it there
        grasp_cfg = cfg.grasp if cfg.grasp.boundary_error_px is None else replace(cfg.grasp, boundary_error_px=None)
        grasps = plan_grasps(frame, cloud, shape, self.gripper, grasp_cfg, boundary_error_px=k_px,
                             alternative_masks=alternatives, cloud_config=cfg.cloud,
                             part=selected_index >= 0 and mask_set.granularity[selected] == "part")
        timings["grasp"] = (time.perf_counter() - t) * 1e3
        timings["total"] = sum(v for k, v in timings.items())
        return PerceptionResult(frame, prompt, mask_set, selected_index, mask, cloud, shape, grasps, self.gripper,
                                k_px, k_source, timings, cfg.segment.backend, tuple(notes))
