"""The planner-facing API: configure once, then ask for grasps frame by frame.

Two levels, one object (:class:`GraspPerception`):

* ``perceive(frame, prompt)`` → :class:`~graspseg.pipeline.PerceptionResult`: every stage's output (mask,
  cloud, shape, all grasp candidates with margins and rejection reasons);
* ``plan(frame, prompt)`` → :class:`GraspResponse`: what a motion planner commands — for each accepted
  grasp the grasp pose (fingertip centre), the **TCP target pose** (the grasp pose moved back by the
  gripper's TCP offset and turned to the TCP's own closing axis) and a pre-grasp TCP pose backed off along
  the approach by ``grasp.approach_distance_m`` (the distance the collision check swept), in the robot base
  frame when the frame has a robot pose and the rig is hand-eye calibrated, else in the camera frame,
  always named; ``status`` ``"no_grasp"`` with the per-reason counts instead of a silent empty list.

A planner finds installed perception plugins through the ``graspseg.plugins`` entry-point group
(:func:`discover_plugins`); third-party segmenters and trackers register into
``graspseg.segmenters`` / ``graspseg.trackers`` (see ``docs/plugin.md``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .core.camera import CameraRig
from .core.errors import BackendNotFoundError, ConfigError, NoGraspError
from .core.frame import RGBDFrame
from .core.transform import BASE, CAMERA, GRASP, Transform
from .grasp import GripperModel, grasp_from_tcp
from .pipeline import PerceptionResult, Pipeline, PipelineConfig
from .segment import Prompt

#: Entry-point group under which perception plugins are published.
PLUGIN_GROUP = "graspseg.plugins"
#: The plan response's JSON Schema: ``graspseg/schemas/grasp_response.schema.json``.
RESPONSE_SCHEMA_VERSION = 2

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedGrasp:
    """One grasp ready to execute, all poses in ``frame``.

    Attributes
    ----------
    grasp_pose : Transform
        ``<frame>_from_grasp``: fingertip centre, +z approach, +x closing.
    tcp_target : Transform
        ``<frame>_from_tcp`` to command at the grasp.
    pregrasp_tcp : Transform
        ``<frame>_from_tcp`` backed off by ``approach_distance_m`` along the approach.
    opening_m, width_m : float
        Opening to preset, and the measured object width between the contacts.
    margins : dict of str -> float
        Keys carry their unit: ``opening_mm``, ``contact_mm``, ``finger_landing_mm`` (slack beyond the
        boundary error), ``error_mm`` (the boundary error at the contacts' depth), ``leak_depth_mm``, and
        ``robustness`` (fraction of perturbed masks the grasp survived).
    worst_case_margin_mm : float
    score : float
    """

    grasp_pose: Transform
    tcp_target: Transform
    pregrasp_tcp: Transform
    opening_m: float
    width_m: float
    margins: dict
    worst_case_margin_mm: float
    score: float

    def to_dict(self) -> dict:
        """Poses as ``{frame_id, child_frame_id, position_m, orientation_quat_xyzw, matrix}``."""
        return {"grasp": pose_dict(self.grasp_pose), "tcp_target": pose_dict(self.tcp_target),
                "pregrasp_tcp": pose_dict(self.pregrasp_tcp), "opening_m": self.opening_m, "width_m": self.width_m,
                "margins": self.margins, "worst_case_margin_mm": self.worst_case_margin_mm,
                "score": self.score}


def pose_dict(t: Transform) -> dict:
    """``<to>_from_<from>`` as a JSON pose: ``frame_id`` = to, ``child_frame_id`` = from (the tf2 convention)."""
    xyz, q = t.as_xyz_quat_xyzw()
    return {"frame_id": t.to_frame, "child_frame_id": t.from_frame, "position_m": xyz.tolist(),
            "orientation_quat_xyzw": q.tolist(), "matrix": t.matrix.tolist()}


@dataclass(frozen=True)
class GraspResponse:
    """The plugin's answer: ``status`` is ``"ok"`` or ``"no_grasp"`` (never a silent empty list)."""

    status: str
    frame: str
    grasps: tuple[PlannedGrasp, ...]
    rejected_counts: dict = field(default_factory=dict)
    suggestion: str = ""
    boundary_error_px: float = 0.0
    approach_distance_m: float = 0.0
    result: PerceptionResult | None = field(default=None, repr=False)

    def raise_for_status(self) -> GraspResponse:
        """Return self, or raise :class:`NoGraspError` carrying the per-reason counts."""
        if self.status != "ok":
            raise NoGraspError(f"no grasp accepted: {self.suggestion}; rejected: {self.rejected_counts}",
                               self.rejected_counts)
        return self

    def to_dict(self) -> dict:
        return {"schema": "graspseg.grasp_response", "schema_version": RESPONSE_SCHEMA_VERSION,
                "status": self.status, "frame": self.frame,
                "units": {"length": "m", "margins": "unit in the key: _mm, robustness a fraction"}, "grasps": [g.to_dict() for g in self.grasps],
                "rejected_counts": self.rejected_counts, "suggestion": self.suggestion,
                "boundary_error_px": self.boundary_error_px, "approach_distance_m": self.approach_distance_m}


class GraspPerception:
    """The perception plugin a planner holds: one model, loaded once, shared by every call.

    Parameters
    ----------
    config : PipelineConfig, optional
        Defaults to ``configs/default.yaml`` (the dataclass defaults).
    rig : CameraRig, optional
        With ``tcp_from_camera`` (from ``graspseg-calibrate``) poses come out in the base frame.
    gripper : GripperModel or str, optional
        Overrides ``config.gripper``.
    approach_distance_m : float, optional
        Back-off of the pre-grasp pose along the approach; defaults to ``config.grasp.approach_distance_m``.
        Given, it replaces ``grasp.approach_distance_m``: the collision check sweeps the hand over exactly the
        path from the pre-grasp to the grasp, never a shorter one.
    segmenter : Segmenter, optional
        An already built segmenter (otherwise built from ``config.segment``).

    Thread safety: one instance may be shared by threads; calls are serialised on the one model and each
    returns exactly what it would single-threaded (``tests/test_threads.py``). For parallel throughput use
    one instance per process.

    Examples
    --------
    >>> import graspseg
    >>> from graspseg import GraspPerception, Prompt
    >>> perception = GraspPerception.from_config(gripper="franka_hand")          # doctest: +SKIP
    >>> perception.set_rig(graspseg.CameraRig.load_yaml("rig.yaml"))              # doctest: +SKIP
    >>> response = perception.plan(frame, Prompt.from_point(352, 280), base_from_tcp=tcp_pose)  # doctest: +SKIP
    >>> best = response.raise_for_status().grasps[0]                              # doctest: +SKIP
    """

    def __init__(self, config: PipelineConfig | None = None, *, rig: CameraRig | None = None,
                 gripper: GripperModel | str | None = None, approach_distance_m: float | None = None,
                 segmenter=None) -> None:
        config = config or PipelineConfig()
        d = config.grasp.approach_distance_m if approach_distance_m is None else approach_distance_m
        if isinstance(d, bool) or not isinstance(d, int | float) or not np.isfinite(d) or not 0 < d <= 0.5:
            raise ConfigError(f"approach_distance_m must be a distance in metres in (0, 0.5], got {d!r} "
                              "(millimetres? 0.08 is 8 cm)")
        if float(d) != config.grasp.approach_distance_m:  # the collision check sweeps exactly the pre-grasp path
            config = config.with_overrides({"grasp.approach_distance_m": float(d)})
        self.pipeline = Pipeline(config, rig=rig, gripper=gripper, segmenter=segmenter)
        self.approach_distance_m = float(d)
        self._grasp_from_tcp = grasp_from_tcp(self.pipeline.gripper)

    @classmethod
    def from_config(cls, config: PipelineConfig | dict | str | Path | None = None, *, overrides: dict | None = None,
                    rig: CameraRig | str | Path | None = None, gripper: GripperModel | str | None = None,
                    **kw) -> GraspPerception:
        """Build from a config object, a dict, or a YAML path, with ``{"section.field": value}`` overrides.

        ``rig`` may be a :class:`CameraRig` or the path of a rig YAML written by ``graspseg-calibrate``.
        """
        if config is None:
            cfg = PipelineConfig()
        elif isinstance(config, PipelineConfig):
            cfg = config
        elif isinstance(config, dict):
            cfg = PipelineConfig.from_dict(config)
        elif isinstance(config, str | Path):
            cfg = PipelineConfig.from_yaml(config)
        else:
            raise ConfigError(f"config must be a PipelineConfig, a dict or a YAML path, got {type(config).__name__}")
        if overrides:
            cfg = cfg.with_overrides(overrides)
        if isinstance(rig, str | Path):
            rig = CameraRig.load_yaml(rig)
        return cls(cfg, rig=rig, gripper=gripper, **kw)

    @property
    def config(self) -> PipelineConfig:
        return self.pipeline.config

    @property
    def gripper(self) -> GripperModel:
        return self.pipeline.gripper

    @property
    def rig(self) -> CameraRig | None:
        return self.pipeline.rig

    def set_rig(self, rig: CameraRig | None) -> None:
        """Use this camera rig (intrinsics check, ``tcp_from_camera``) from the next call on."""
        self.pipeline.set_rig(rig)

    def perceive(self, frame: RGBDFrame, prompt: Prompt, *, granularity: str | None = None,
                 base_from_tcp: Transform | None = None, **kw) -> PerceptionResult:
        """Everything the stages found for one prompt (see :meth:`graspseg.pipeline.Pipeline.perceive`).

        ``base_from_tcp``: the robot's TCP pose at capture time (``base`` ← ``tcp``), replacing the
        frame's own; with a calibrated rig the result's poses are then also in the base frame.
        """
        return self.pipeline.perceive(frame, prompt, granularity=granularity, base_from_tcp=base_from_tcp, **kw)

    def perceive_many(self, frame: RGBDFrame, prompts, *, granularity: str | None = None,
                      base_from_tcp: Transform | None = None, **kw) -> list[PerceptionResult]:
        """One result per prompt; the image is encoded once for all of them."""
        return self.pipeline.perceive_many(frame, prompts, granularity=granularity, base_from_tcp=base_from_tcp,
                                           **kw)

    def plan(self, frame: RGBDFrame, prompt: Prompt, *, max_grasps: int = 5, granularity: str | None = None,
             base_from_tcp: Transform | None = None, **perceive_kw) -> GraspResponse:
        """The best ``max_grasps`` accepted grasps as poses to command.

        Returns
        -------
        GraspResponse
            ``status`` ``"ok"`` with grasps best first (worst-case margin, then score), or ``"no_grasp"``
            with ``rejected_counts`` and a ``suggestion``; ``response.result`` holds the full
            :class:`PerceptionResult`.
        """
        result = self.perceive(frame, prompt, granularity=granularity, base_from_tcp=base_from_tcp, **perceive_kw)
        return self.respond(result, max_grasps=max_grasps)

    def respond(self, result: PerceptionResult, *, max_grasps: int = 5) -> GraspResponse:
        """Turn a :class:`PerceptionResult` into the planner's :class:`GraspResponse`."""
        if isinstance(max_grasps, bool) or not isinstance(max_grasps, int) or max_grasps < 1:
            raise ConfigError(f"max_grasps must be a positive integer, got {max_grasps!r}")
        grasps = result.grasps.accepted_only().top(max_grasps)
        in_base = grasps.base_from_grasp is not None
        frame_name = BASE if in_base else CAMERA
        back_off = Transform.from_rt(np.eye(3), [0.0, 0.0, -self.approach_distance_m], GRASP, GRASP)
        planned = []
        for i in range(len(grasps)):
            g = grasps.pose(i, frame_name)
            planned.append(PlannedGrasp(
                grasp_pose=g,
                tcp_target=g @ self._grasp_from_tcp,
                pregrasp_tcp=g @ back_off @ self._grasp_from_tcp,
                opening_m=float(grasps.opening_m[i]),
                width_m=float(grasps.width_m[i]),
                margins={k: float(v[i]) for k, v in grasps.margins.items() if k.endswith("_mm") or k == "robustness"},
                worst_case_margin_mm=float(grasps.worst_case_margin_mm[i]),
                score=float(grasps.score[i]),
            ))
        status = "ok" if planned else "no_grasp"
        if not planned:
            log.warning("no grasp accepted for frame %s: %s", result.frame.frame_id, result.grasps.suggestion)
        return GraspResponse(status, frame_name, tuple(planned), dict(result.grasps.rejected_counts),
                             result.grasps.suggestion, result.boundary_error_px, self.approach_distance_m, result)


#: The name this package's plugin was known by first.
GraspPlanningPlugin = GraspPerception


def _plugin_entry_points() -> tuple[dict[str, type], dict[str, str]]:
    """Loaded plugins ``{name: class}`` and the ones that failed ``{name: reason}``."""
    from importlib.metadata import entry_points

    found: dict[str, type] = {}
    failed: dict[str, str] = {}
    for ep in entry_points(group=PLUGIN_GROUP):
        try:
            found[ep.name] = ep.load()
        except Exception as e:  # a broken third-party package must not stop the planner
            failed[ep.name] = f"{ep.name} = {ep.value} cannot be loaded ({type(e).__name__}: {e})"
            log.warning("perception plugin %s; skipped", failed[ep.name])
    return found, failed


def discover_plugins() -> dict[str, type]:
    """Perception plugins installed in this environment: ``{entry-point name: class}``.

    Packages publish a plugin under the ``graspseg.plugins`` entry-point group, e.g. in pyproject.toml
    ``[project.entry-points."graspseg.plugins"] mylab = "mylab.perception:Perception"``; graspseg's own is
    ``graspseg``. A plugin that fails to import is logged and skipped, never fatal.
    """
    return _plugin_entry_points()[0]


def load_plugin(name: str = "graspseg") -> type:
    """The plugin class published under ``name``.

    Raises
    ------
    BackendNotFoundError
        No plugin of that name (the message lists what exists), or its package failed to import (the message
        says why).
    """
    found, failed = _plugin_entry_points()
    if name in failed:
        raise BackendNotFoundError(f"perception plugin {failed[name]}; reinstall or fix that package "
                                   f"(installed and loadable: {sorted(found) or 'none'})")
    if name not in found:
        raise BackendNotFoundError(f"no perception plugin {name!r}; installed: {sorted(found) or 'none'} "
                                   f"(packages publish them under the {PLUGIN_GROUP!r} entry-point group)")
    return found[name]
