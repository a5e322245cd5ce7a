"""The planner-facing API: configure once, then ask for grasps frame by frame.

A motion planner wants poses it can command, in its own frame, and a reason when there are none. The
plugin returns, for each accepted grasp, the grasp pose (fingertip centre), the **TCP target pose**
(the grasp pose moved back by the gripper's TCP offset and turned to the TCP's own closing axis),
and a pre-grasp TCP pose backed off along the approach — in the robot base frame when the frame has a
robot pose and the rig is hand-eye calibrated, else in the camera frame, always named.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .core.camera import CameraRig
from .core.errors import NoGraspError
from .core.frame import RGBDFrame
from .core.transform import BASE, CAMERA, GRASP, TCP, Transform
from .grasp import GripperModel
from .pipeline import PerceptionResult, Pipeline, PipelineConfig
from .segment import Prompt

log = logging.getLogger(__name__)


def grasp_from_tcp(gripper: GripperModel) -> Transform:
    """Where the robot's TCP sits in the grasp frame.

    The fingertip centre is ``tcp_offset_m`` ahead of the TCP along the approach (+z); a gripper whose
    TCP closes along its y axis (``tcp_closing_axis: y``, e.g. the Franka Hand) is turned by +90° about z
    so that the TCP's y axis is the grasp's closing (+x) axis.
    """
    rot = np.eye(3)
    if gripper.tcp_closing_axis == "y":
        rot = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # columns: TCP axes in grasp frame
    return Transform.from_rt(rot, [0.0, 0.0, -float(gripper.tcp_offset_m)], GRASP, TCP)


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
    margins_mm : dict
        Opening, contact and finger-landing margins beyond the boundary error; robustness fraction.
    worst_case_margin_mm : float
    score : float
    """

    grasp_pose: Transform
    tcp_target: Transform
    pregrasp_tcp: Transform
    opening_m: float
    width_m: float
    margins_mm: dict
    worst_case_margin_mm: float
    score: float

    def to_dict(self) -> dict:
        def pose(t: Transform) -> dict:
            xyz, q = t.as_xyz_quat_xyzw()
            return {"frame_id": t.to_frame, "child_frame_id": t.from_frame, "position_m": xyz.tolist(),
                    "orientation_quat_xyzw": q.tolist(), "matrix": t.matrix.tolist()}

        return {"grasp": pose(self.grasp_pose), "tcp_target": pose(self.tcp_target),
                "pregrasp_tcp": pose(self.pregrasp_tcp), "opening_m": self.opening_m, "width_m": self.width_m,
                "margins_mm": self.margins_mm, "worst_case_margin_mm": self.worst_case_margin_mm,
                "score": self.score}


@dataclass(frozen=True)
class GraspResponse:
    """The plugin's answer: ``status`` is ``"ok"`` or ``"no_grasp"`` (never a silent empty list)."""

    status: str
    frame: str
    grasps: tuple[PlannedGrasp, ...]
    rejected_counts: dict = field(default_factory=dict)
    suggestion: str = ""
    boundary_error_px: float = 0.0
    result: PerceptionResult | None = field(default=None, repr=False)

    def raise_for_status(self) -> GraspResponse:
        """Return self, or raise :class:`NoGraspError` carrying the per-reason counts."""
        if self.status != "ok":
            raise NoGraspError(f"no grasp accepted: {self.suggestion}; rejected: {self.rejected_counts}",
                               self.rejected_counts)
        return self

    def to_dict(self) -> dict:
        return {"schema_version": 1, "status": self.status, "frame": self.frame,
                "units": {"length": "m", "margins": "mm"}, "grasps": [g.to_dict() for g in self.grasps],
                "rejected_counts": self.rejected_counts, "suggestion": self.suggestion,
                "boundary_error_px": self.boundary_error_px}


class GraspPlanningPlugin:
    """Planner plugin: ``plan(frame, prompt)`` → :class:`GraspResponse`.

    Parameters
    ----------
    config : PipelineConfig, optional
    rig : CameraRig, optional
        With ``tcp_from_camera`` (from ``graspseg-calibrate``) poses come out in the base frame.
    gripper : GripperModel or str, optional
    approach_distance_m : float
        Back-off of the pre-grasp pose along the approach.
    """

    def __init__(self, config: PipelineConfig | None = None, *, rig: CameraRig | None = None,
                 gripper: GripperModel | str | None = None, approach_distance_m: float = 0.10) -> None:
        self.pipeline = Pipeline(config, rig=rig, gripper=gripper)
        self.approach_distance_m = float(approach_distance_m)
        self._grasp_from_tcp = grasp_from_tcp(self.pipeline.gripper)

    def plan(self, frame: RGBDFrame, prompt: Prompt, *, max_grasps: int = 5, **perceive_kw) -> GraspResponse:
        result = self.pipeline.perceive(frame, prompt, **perceive_kw)
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
                margins_mm={k: float(v[i]) for k, v in grasps.margins.items() if k.endswith("_mm") or k == "robustness"},
                worst_case_margin_mm=float(grasps.worst_case_margin_mm[i]),
                score=float(grasps.score[i]),
            ))
        status = "ok" if planned else "no_grasp"
        if not planned:
            log.warning("no grasp accepted for frame %s: %s", frame.frame_id, result.grasps.suggestion)
        return GraspResponse(status, frame_name, tuple(planned), dict(result.grasps.rejected_counts),
                             result.grasps.suggestion, result.boundary_error_px, result)
