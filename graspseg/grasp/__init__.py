"""Parallel-jaw grasps with boundary-error margins: gripper models, planning, the grasp set, exporters."""

from .config import GraspConfig
from .gripper import GRIPPERS, GripperModel, available_grippers, grasp_from_tcp, load_gripper
from .planner import plan_grasps
from .types import MARGIN_NAMES, REJECT_REASONS, GraspSet

__all__ = [
    "GRIPPERS", "MARGIN_NAMES", "REJECT_REASONS", "GraspConfig", "GraspSet", "GripperModel", "available_grippers",
    "grasp_from_tcp",
    "load_gripper", "plan_grasps",
]
