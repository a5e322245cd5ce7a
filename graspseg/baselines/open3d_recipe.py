"""Open3D baselines: the code a user would write instead of graspseg, for latency and quality comparisons.

1. :func:`open3d_backproject` — back-projection through ``PointCloud.create_from_rgbd_image``.
2. :func:`classic_segmentation` — the classic recipe: build the cloud, downsample, remove the dominant
   plane with RANSAC (seeded with ``o3d.utility.random.seed``), cluster the rest with DBSCAN, take the
   cluster under the click, and map it back to a pixel mask.

open3d is imported inside the functions; without it they raise :class:`MissingDependencyError`.
Note: open3d 0.20's ``segment_plane`` is not bit-reproducible even after ``o3d.utility.random.seed``
(consecutive seeded calls may return slightly different planes), so the recipe's mask can differ by a few
pixels between runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..cloud.interop import import_open3d
from ..core.errors import PromptError, SegmentationError, ShapeError
from ..core.frame import RGBDFrame


@dataclass(frozen=True)
class ClassicRecipeConfig:
    """Parameters of the classic Open3D segmentation recipe (values a user would typically pick).

    Attributes
    ----------
    depth_trunc_m : float
        Depth beyond this is dropped by ``create_from_rgbd_image``, metres.
    voxel_size_m : float
        ``voxel_down_sample`` size, metres.
    plane_threshold_m : float
        ``segment_plane`` distance threshold, metres.
    plane_iterations : int
        ``segment_plane`` RANSAC iterations.
    dbscan_eps_m : float
        DBSCAN neighbourhood radius, metres.
    dbscan_min_points : int
        DBSCAN core-point size.
    mask_radius_m : float
        A pixel joins the mask when its 3D point lies within this distance of a cluster point, metres.
    click_search_px : int
        When the click has no depth, the nearest valid pixel within this radius is used.
    seed : int
        ``o3d.utility.random.seed`` value.
    """

    depth_trunc_m: float = 2.0
    voxel_size_m: float = 0.005
    plane_threshold_m: float = 0.01
    plane_iterations: int = 1000
    dbscan_eps_m: float = 0.015
    dbscan_min_points: int = 10
    mask_radius_m: float = 0.0075
    click_search_px: int = 10
    seed: int = 0


@dataclass(frozen=True, eq=False)
class ClassicRecipeResult:
    """Output of :func:`classic_segmentation`.

    Attributes
    ----------
    mask : (H, W) bool
        Pixels of the cluster under the click.
    cluster_points : (N, 3) float64
        The (downsampled) cluster, ``camera_color_optical``, metres.
    plane_model : (4,) float64
        ``a, b, c, d`` of the removed plane (``ax + by + cz + d = 0``).
    num_clusters : int
        DBSCAN clusters found (noise excluded).
    timings_ms : dict
        Per-step wall time, milliseconds.
    """

    mask: np.ndarray
    cluster_points: np.ndarray
    plane_model: np.ndarray
    num_clusters: int
    timings_ms: dict = field(default_factory=dict)


def _o3d_intrinsic(o3d, frame: RGBDFrame):
    k = frame.intrinsics
    return o3d.camera.PinholeCameraIntrinsic(k.width, k.height, k.fx, k.fy, k.cx, k.cy)


def open3d_backproject(frame: RGBDFrame, mask: np.ndarray | None = None, *, depth_trunc_m: float = 3.0):
    """Masked back-projection through ``open3d.geometry.PointCloud.create_from_rgbd_image``.

    The depth outside ``mask`` is zeroed (what a user would do), both images are wrapped as
    ``open3d.geometry.Image``, combined with ``RGBDImage.create_from_color_and_depth`` and back-projected.
    Lens distortion is ignored (open3d's pinhole model has none).

    Parameters
    ----------
    frame : RGBDFrame
    mask : (H, W) bool, optional
    depth_trunc_m : float
        Depth beyond this is dropped, metres.

    Returns
    -------
    open3d.geometry.PointCloud
        Points in ``camera_color_optical``, metres, with colours.
    """
    o3d = import_open3d()
    depth = frame.depth_m
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != depth.shape:
            raise ShapeError(f"mask shape {m.shape} differs from the frame's {depth.shape}")
        depth = np.where(m, depth, np.float32(0))
    rgbd = o3d.geometry.RGBDImage.create_from_color_and_depth(
        o3d.geometry.Image(np.ascontiguousarray(frame.color)),
        o3d.geometry.Image(np.ascontiguousarray(depth, dtype=np.float32)),
        depth_scale=1.0,
        depth_trunc=float(depth_trunc_m),
        convert_rgb_to_intensity=False,
    )
    return o3d.geometry.PointCloud.create_from_rgbd_image(rgbd, _o3d_intrinsic(o3d, frame))


def _click_point(frame: RGBDFrame, point_uv, search_px: int) -> np.ndarray:
    u, v = (float(x) for x in point_uv)
    w, h = frame.width, frame.height
    if not (0 <= u <= w - 1 and 0 <= v <= h - 1):
        raise PromptError(f"point ({u:g}, {v:g}) is outside the {w}x{h} image")
    ui, vi = int(round(u)), int(round(v))
    y0, y1 = max(0, vi - search_px), min(h, vi + search_px + 1)
    x0, x1 = max(0, ui - search_px), min(w, ui + search_px + 1)
    win = frame.depth_m[y0:y1, x0:x1]
    vs, us = np.nonzero(win > 0)
    if len(vs) == 0:
        raise SegmentationError(
            f"no depth within {search_px} px of the click ({u:g}, {v:g}); the classic recipe needs depth at the click"
        )
    k = int(np.argmin((vs + y0 - vi) ** 2 + (us + x0 - ui) ** 2))
    vv, uu = vs[k] + y0, us[k] + x0
    return frame.intrinsics.unproject(np.array([[uu, vv]]), frame.depth_m[vv, uu : uu + 1])[0]


def classic_segmentation(
    frame: RGBDFrame, point_uv, config: ClassicRecipeConfig | None = None
) -> ClassicRecipeResult:
    """The classic Open3D recipe: plane RANSAC, DBSCAN of the rest, the cluster under the click → mask.

    Parameters
    ----------
    frame : RGBDFrame
    point_uv : (2,) float
        The click, pixels (u = column, v = row).
    config : ClassicRecipeConfig, optional

    Returns
    -------
    ClassicRecipeResult

    Raises
    ------
    SegmentationError
        No depth at the click, or the click falls on the removed plane / DBSCAN noise.
    """
    import time

    from scipy.spatial import cKDTree

    o3d = import_open3d()
    cfg = config or ClassicRecipeConfig()
    t = {}
    t0 = time.perf_counter()
    pcd = open3d_backproject(frame, depth_trunc_m=cfg.depth_trunc_m)
    t["backproject"] = time.perf_counter()
    down = pcd.voxel_down_sample(cfg.voxel_size_m)
    t["downsample"] = time.perf_counter()
    o3d.utility.random.seed(int(cfg.seed))
    plane_model, inliers = down.segment_plane(
        distance_threshold=cfg.plane_threshold_m, ransac_n=3, num_iterations=cfg.plane_iterations
    )
    rest = down.select_by_index(inliers, invert=True)
    t["plane"] = time.perf_counter()
    labels = np.asarray(rest.cluster_dbscan(eps=cfg.dbscan_eps_m, min_points=cfg.dbscan_min_points))
    t["dbscan"] = time.perf_counter()
    rest_pts = np.asarray(rest.points)
    click = _click_point(frame, point_uv, cfg.click_search_px)
    tree = o3d.geometry.KDTreeFlann(rest)
    k, idx, dist2 = tree.search_knn_vector_3d(click, 1)
    if k == 0 or dist2[0] > (2 * cfg.dbscan_eps_m) ** 2 or labels[idx[0]] < 0:
        raise SegmentationError(
            f"the click {tuple(point_uv)} falls on the removed plane or on DBSCAN noise; click on the object"
        )
    cluster = rest_pts[labels == labels[idx[0]]]
    # back to pixels: every valid pixel whose 3D point lies within mask_radius_m of a cluster point
    plane = np.asarray(plane_model, dtype=np.float64)
    uv = frame.intrinsics.project(cluster)
    pad = 5
    u0, v0 = np.floor(np.nanmin(uv, axis=0)).astype(int) - pad
    u1, v1 = np.ceil(np.nanmax(uv, axis=0)).astype(int) + pad
    u0, v0 = max(0, u0), max(0, v0)
    u1, v1 = min(frame.width, u1 + 1), min(frame.height, v1 + 1)
    d = frame.depth_m[v0:v1, u0:u1]
    vs, us = np.nonzero((d > 0) & (d <= cfg.depth_trunc_m))
    z = d[vs, us].astype(np.float64)
    rays = frame.intrinsics.ray_image[v0:v1, u0:u1][vs, us].astype(np.float64)
    pts = np.column_stack([rays * z[:, None], z])
    off_plane = np.abs(pts @ plane[:3] + plane[3]) / np.linalg.norm(plane[:3]) > cfg.plane_threshold_m
    near, _ = cKDTree(cluster).query(pts[off_plane], k=1, distance_upper_bound=cfg.mask_radius_m)
    sel = np.flatnonzero(off_plane)[np.isfinite(near)]
    mask = np.zeros((frame.height, frame.width), bool)
    mask[vs[sel] + v0, us[sel] + u0] = True
    t["mask"] = time.perf_counter()
    steps = ["backproject", "downsample", "plane", "dbscan", "mask"]
    prev = t0
    timings = {}
    for s in steps:
        timings[s] = (t[s] - prev) * 1e3
        prev = t[s]
    timings["total"] = (t["mask"] - t0) * 1e3
    return ClassicRecipeResult(mask, cluster, plane, int(labels.max() + 1) if len(labels) else 0, timings)
