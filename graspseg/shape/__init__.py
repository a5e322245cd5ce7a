"""Shape and pose: object frame, extents, footprint, primitive fit and completion against the support plane."""

from .estimate import estimate_shape
from .types import FITTABLE_PRIMITIVES, PRIMITIVES, ShapeConfig, ShapeEstimate

__all__ = ["FITTABLE_PRIMITIVES", "PRIMITIVES", "ShapeConfig", "ShapeEstimate", "estimate_shape"]
