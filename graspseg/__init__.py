"""graspseg: grasp-planning perception for wrist RGB-D cameras.

The planner-facing API (imported on first use, so ``import graspseg`` stays light)::

    from graspseg import GraspPerception, Prompt, RGBDFrame, CameraRig, Transform
"""

from __future__ import annotations

__version__ = "0.1.0"

#: Public names and the module each lives in.
_EXPORTS = {
    "GraspPerception": "graspseg.plugin",
    "GraspPlanningPlugin": "graspseg.plugin",
    "GraspResponse": "graspseg.plugin",
    "PlannedGrasp": "graspseg.plugin",
    "discover_plugins": "graspseg.plugin",
    "Pipeline": "graspseg.pipeline",
    "PipelineConfig": "graspseg.pipeline",
    "PerceptionResult": "graspseg.pipeline",
    "Prompt": "graspseg.segment",
    "RGBDFrame": "graspseg.core.frame",
    "CameraRig": "graspseg.core.camera",
    "CameraIntrinsics": "graspseg.core.camera",
    "Transform": "graspseg.core.transform",
    "GraspSet": "graspseg.grasp",
    "load_gripper": "graspseg.grasp",
    "GraspsegError": "graspseg.core.errors",
    "NoGraspError": "graspseg.core.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'graspseg' has no attribute {name!r}")
