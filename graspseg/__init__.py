"""graspseg: grasp-planning perception for wrist RGB-D cameras."""

__version__ = "0.1.0"
