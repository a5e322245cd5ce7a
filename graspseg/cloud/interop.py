"""Conversion to and from ``open3d.geometry.PointCloud`` (open3d is imported only here, when called)."""

from __future__ import annotations

import numpy as np

from ..core.errors import MissingDependencyError, ShapeError


def import_open3d():
    """Import open3d or raise :class:`MissingDependencyError` naming the extra to install."""
    try:
        import open3d
    except ImportError as e:  # also OSError-style failures surface as ImportError (missing libGL, libgomp)
        raise MissingDependencyError("open3d", "open3d", purpose=f"open3d point clouds ({e})") from None
    return open3d


def to_open3d(cloud_or_points, colors: np.ndarray | None = None):
    """An ``open3d.geometry.PointCloud`` of an :class:`ObjectCloud` or of (N, 3) points.

    Parameters
    ----------
    cloud_or_points : ObjectCloud or (N, 3) float
        An ObjectCloud gives its camera-frame points and colours; an array gives points in metres.
    colors : (N, 3) uint8 or float in [0, 1], optional
        Overrides / supplies the colours.

    Returns
    -------
    open3d.geometry.PointCloud
        Points as float64, colours in [0, 1].
    """
    o3d = import_open3d()
    points = getattr(cloud_or_points, "points_in_camera", cloud_or_points)
    if colors is None:
        colors = getattr(cloud_or_points, "colors", None)
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ShapeError(f"points must be an (N, 3) array in metres, got shape {p.shape}")
    pcd = o3d.geometry.PointCloud()
    pcd.points = o3d.utility.Vector3dVector(np.ascontiguousarray(p))
    if colors is not None:
        c = np.asarray(colors)
        if c.shape != p.shape:
            raise ShapeError(f"colors must be ({len(p)}, 3), got shape {c.shape}")
        c = c.astype(np.float64) / 255.0 if not np.issubdtype(c.dtype, np.floating) else c.astype(np.float64)
        pcd.colors = o3d.utility.Vector3dVector(np.ascontiguousarray(np.clip(c, 0.0, 1.0)))
    return pcd


def from_open3d(pcd) -> tuple[np.ndarray, np.ndarray | None]:
    """Points and colours of an ``open3d.geometry.PointCloud``.

    Returns
    -------
    points : (N, 3) float32
        Metres, in the point cloud's frame.
    colors : (N, 3) uint8 or None
        None when the point cloud has no colours.
    """
    if not hasattr(pcd, "points") or not hasattr(pcd, "has_colors"):
        raise ShapeError(f"expected an open3d.geometry.PointCloud, got {type(pcd).__name__}")
    points = np.asarray(pcd.points, dtype=np.float32).reshape(-1, 3)
    colors = None
    if pcd.has_colors():
        colors = np.clip(np.round(np.asarray(pcd.colors) * 255.0), 0, 255).astype(np.uint8)
    return points, colors
