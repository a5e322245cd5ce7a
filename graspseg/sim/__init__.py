"""Simulation: analytic synthetic RGB-D scenes (numpy) and the pybullet grasping benchmark (extra ``sim``).

Only :mod:`graspseg.sim.synthetic` is imported eagerly; pybullet is imported inside the modules that need it.
"""

from .synthetic import DepthNoise, SyntheticScene, make_scene

__all__ = ["DepthNoise", "SyntheticScene", "make_scene"]
