"""Baselines a user would write instead of graspseg (open3d recipes), for latency and quality comparisons."""

from .open3d_recipe import ClassicRecipeConfig, ClassicRecipeResult, classic_segmentation, open3d_backproject

__all__ = ["ClassicRecipeConfig", "ClassicRecipeResult", "classic_segmentation", "open3d_backproject"]
