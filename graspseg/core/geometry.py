"""Depth-image geometry: back-projection, depth jumps, plane fitting (numpy/scipy only).

Every function works on depth images ``depth_m`` (H, W) float32 in metres along the optical axis of
``camera_color_optical`` (0 = no reading) and returns points in that frame, metres. Back-projection uses
the pixel rays precomputed once per :class:`~graspseg.core.camera.CameraIntrinsics`
(:attr:`~graspseg.core.camera.CameraIntrinsics.ray_image`), so lens distortion is already removed and a
640×480 masked back-projection costs about a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .camera import CameraIntrinsics
from .errors import ShapeError, UnitsError

__all__ = [
    "PlaneFit",
    "backproject",
    "backproject_flat",
    "depth_jump",
    "fit_plane_ransac",
    "organized_points",
    "ray_planes",
    "orient_plane",
    "refine_plane",
]


# --------------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------------
def _check_depth(depth_m: np.ndarray, intrinsics: CameraIntrinsics | None = None) -> np.ndarray:
    depth = np.asarray(depth_m)
    if depth.ndim != 2:
        raise ShapeError(f"depth_m must be an (H, W) image in metres, got shape {depth.shape}")
    if depth.dtype != np.float32:
        if not np.issubdtype(depth.dtype, np.floating):
            raise UnitsError(
                f"depth_m has dtype {depth.dtype}; convert raw depth units to metres first "
                "(depth_m = raw * depth_scale, float32)"
            )
        depth = depth.astype(np.float32)
    if intrinsics is not None:
        intrinsics.check_image_size(depth.shape[1], depth.shape[0], what="depth image")
    return depth


def _check_mask(mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != shape:
        raise ShapeError(
            f"mask is {m.shape[1] if m.ndim > 1 else '?'}x{m.shape[0] if m.ndim else '?'} (shape {m.shape}) but the "
            f"depth image is {shape[1]}x{shape[0]}; give an (H, W) mask of the same size"
        )
    return m if m.dtype == bool else m > 0


def _check_points(points: np.ndarray, name: str = "points") -> np.ndarray:
    p = np.asarray(points)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ShapeError(f"{name} must be an (N, 3) array of points in metres, got shape {p.shape}")
    return p


# --------------------------------------------------------------------------------------------------
# back-projection
# --------------------------------------------------------------------------------------------------
def organized_points(depth_m: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray:
    """Back-project every pixel of a depth image into an organised point image.

    Parameters
    ----------
    depth_m : (H, W) float32
        Depth along the optical axis, metres; 0 = no reading.
    intrinsics : CameraIntrinsics
        Intrinsics of the (colour-registered) depth image, for an W×H image.

    Returns
    -------
    (H, W, 3) float32
        Points in ``camera_color_optical``, metres; pixels without depth are (0, 0, 0).
    """
    depth = _check_depth(depth_m, intrinsics)
    rays = intrinsics.ray_image
    out = np.empty(depth.shape + (3,), np.float32)
    out[:, :, 0] = rays[:, :, 0] * depth
    out[:, :, 1] = rays[:, :, 1] * depth
    out[:, :, 2] = depth
    return out


@lru_cache(maxsize=16)
def ray_planes(intrinsics: CameraIntrinsics) -> tuple[np.ndarray, np.ndarray]:
    """The two planes of :attr:`CameraIntrinsics.ray_image`, flattened and contiguous (cached).

    Returns
    -------
    x_over_z, y_over_z : (H*W,) float32
        Normalised ray coordinates of every pixel centre in row-major order (distortion removed).
    """
    rays = intrinsics.ray_image
    rx = np.ascontiguousarray(rays[:, :, 0]).reshape(-1)
    ry = np.ascontiguousarray(rays[:, :, 1]).reshape(-1)
    rx.setflags(write=False)
    ry.setflags(write=False)
    return rx, ry


def backproject_flat(flat_index: np.ndarray, depth_m: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray:
    """Back-project pixels given by row-major flat indices (``v * W + u``).

    Parameters
    ----------
    flat_index : (N,) int
        Flat pixel indices into the W×H image.
    depth_m : (N,) float32 or (H, W) float32
        The depth of those pixels (metres), or the whole depth image to read it from.
    intrinsics : CameraIntrinsics

    Returns
    -------
    (N, 3) float32
        Points in ``camera_color_optical``, metres.
    """
    idx = np.asarray(flat_index)
    z = np.asarray(depth_m, dtype=np.float32)
    if z.ndim == 2:
        z = z.reshape(-1).take(idx)
    rx, ry = ray_planes(intrinsics)
    pts = np.empty((idx.size, 3), np.float32)
    # column by column: several times faster than one broadcast into a strided (N, 2) slice
    np.multiply(rx.take(idx), z, out=pts[:, 0])
    np.multiply(ry.take(idx), z, out=pts[:, 1])
    pts[:, 2] = z
    return pts


def backproject(
    depth_m: np.ndarray, intrinsics: CameraIntrinsics, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Back-project the pixels with depth (inside ``mask`` when given) to 3D points.

    Parameters
    ----------
    depth_m : (H, W) float32
        Depth along the optical axis, metres; 0 = no reading (skipped).
    intrinsics : CameraIntrinsics
        Intrinsics for a W×H image; its precomputed :attr:`~CameraIntrinsics.ray_image` is used.
    mask : (H, W) bool, optional
        Only pixels where the mask is True are back-projected.

    Returns
    -------
    points : (N, 3) float32
        Points in ``camera_color_optical``, metres, in row-major pixel order.
    pixels_uv : (N, 2) int32
        Source pixel (u = column, v = row) of each point.
    """
    depth = _check_depth(depth_m, intrinsics)
    m = _check_mask(mask, depth.shape)
    valid = depth > 0
    if m is not None:
        valid &= m
    idx = np.flatnonzero(valid)
    points = backproject_flat(idx, depth, intrinsics)
    idx32 = idx.astype(np.int32, copy=False)
    pixels = np.empty((idx.size, 2), np.int32)
    v, u = np.divmod(idx32, np.int32(depth.shape[1]))
    pixels[:, 0] = u
    pixels[:, 1] = v
    return points, pixels


# --------------------------------------------------------------------------------------------------
# depth discontinuities
# --------------------------------------------------------------------------------------------------
def depth_jump(depth_m: np.ndarray) -> np.ndarray:
    """Largest absolute depth difference between each pixel and its 4-neighbours.

    Neighbours without a reading (0) are ignored; a pixel without a reading gets 0.

    Parameters
    ----------
    depth_m : (H, W) float32
        Depth in metres, 0 = no reading.

    Returns
    -------
    (H, W) float32
        Metres.
    """
    d = _check_depth(depth_m)
    valid = d > 0
    jump = np.zeros_like(d)
    # horizontal neighbours
    diff = np.abs(d[:, 1:] - d[:, :-1])
    diff[~(valid[:, 1:] & valid[:, :-1])] = 0
    np.maximum(jump[:, 1:], diff, out=jump[:, 1:])
    np.maximum(jump[:, :-1], diff, out=jump[:, :-1])
    # vertical neighbours
    diff = np.abs(d[1:] - d[:-1])
    diff[~(valid[1:] & valid[:-1])] = 0
    np.maximum(jump[1:], diff, out=jump[1:])
    np.maximum(jump[:-1], diff, out=jump[:-1])
    return jump


# --------------------------------------------------------------------------------------------------
# planes
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PlaneFit:
    """A plane ``normal · p + offset = 0`` fitted to a point set.

    Attributes
    ----------
    normal : (3,) float64
        Unit normal (same frame as the points).
    offset : float
        Metres.
    inliers : (N,) bool
        Points within the inlier threshold of the plane.
    rmse_m : float
        RMS distance of the inliers, metres.
    threshold_m : float
        The inlier threshold used, metres.
    hypotheses : int
        Number of (non-degenerate) RANSAC hypotheses scored.
    """

    normal: np.ndarray
    offset: float
    inliers: np.ndarray
    rmse_m: float
    threshold_m: float
    hypotheses: int = 0

    @property
    def inlier_count(self) -> int:
        return int(np.count_nonzero(self.inliers))

    @property
    def inlier_ratio(self) -> float:
        return float(self.inlier_count / max(1, len(self.inliers)))

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """(N,) signed distances (metres) of (N, 3) points."""
        return np.asarray(points, np.float64) @ self.normal + self.offset


def refine_plane(points: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, float, float]:
    """Least-squares (total least squares) plane through points.

    Parameters
    ----------
    points : (N, 3) float
        At least 3 non-collinear points, metres.
    weights : (N,) float, optional
        Non-negative weight per point.

    Returns
    -------
    normal : (3,) float64
        Unit normal; its sign makes ``offset >= 0`` (the origin is on the positive side).
    offset : float
        Metres.
    rmse_m : float
        RMS (weighted) orthogonal distance of the points to the plane, metres.
    """
    p = _check_points(points).astype(np.float64, copy=False)
    if len(p) < 3:
        raise ShapeError(f"a plane needs at least 3 points, got {len(p)}")
    if weights is None:
        centroid = p.mean(axis=0)
        q = p - centroid
        cov = q.T @ q / len(p)
    else:
        wts = np.asarray(weights, np.float64).reshape(-1)
        if wts.shape != (len(p),) or (wts < 0).any() or wts.sum() <= 0:
            raise ShapeError(
                f"weights must be ({len(p)},) non-negative with a positive sum, got shape {wts.shape}"
            )
        wn = wts / wts.sum()
        centroid = wn @ p
        q = p - centroid
        cov = (q * wn[:, None]).T @ q
    evals, evecs = np.linalg.eigh(cov)
    normal = evecs[:, 0]
    offset = -float(normal @ centroid)
    if offset < 0:
        normal, offset = -normal, -offset
    rmse = float(np.sqrt(max(evals[0], 0.0)))
    return normal, offset, rmse


def orient_plane(normal: np.ndarray, offset: float, viewpoint: np.ndarray) -> tuple[np.ndarray, float]:
    """Flip a plane so that ``viewpoint`` (3,) lies on its positive side."""
    n = np.asarray(normal, np.float64)
    if float(n @ np.asarray(viewpoint, np.float64)) + offset < 0:
        return -n, -float(offset)
    return n, float(offset)


def fit_plane_ransac(
    points: np.ndarray,
    *,
    threshold_m: float = 0.005,
    iterations: int = 256,
    seed: int = 0,
    score_points: int = 3000,
    refine_iterations: int = 2,
    refine_points: int = 4096,
    min_inliers: int = 3,
    viewpoint: np.ndarray | None = None,
    axis: np.ndarray | None = None,
    max_tilt_deg: float = 90.0,
) -> PlaneFit:
    """Seeded RANSAC plane fit, all hypotheses scored in one vectorised batch, then least-squares refined.

    ``iterations`` triples are drawn with ``numpy.random.default_rng(seed)``; each hypothesis is scored by
    its inlier count on a fixed random subset of ``score_points`` points (one (iterations × score_points)
    matrix product). The best hypothesis is re-scored on all points and refined by total least squares
    on its inliers ``refine_iterations`` times.

    Parameters
    ----------
    points : (N, 3) float
        Points, metres (any frame).
    threshold_m : float
        Inlier distance, metres.
    iterations : int
        Number of hypotheses.
    seed : int
        Seed of the random generator: the same inputs give the same plane.
    score_points : int
        Size of the scoring subset (all points when N is smaller).
    refine_iterations : int
        Least-squares refinements on the inliers (0 keeps the raw RANSAC plane).
    refine_points : int
        At most this many (evenly spaced) inliers enter each refinement.
    min_inliers : int
        Fewer inliers than this raises :class:`ShapeError`.
    viewpoint : (3,) float, optional
        When given, the normal is oriented so the viewpoint is on its positive side (for camera-frame
        points, the origin: the normal then points towards the camera).
    axis : (3,) float, optional
        When given, only hypotheses whose normal is within ``max_tilt_deg`` of ``±axis`` are scored (a
        plane parallel to a known one); the refined plane may tilt slightly further.
    max_tilt_deg : float
        See ``axis``.

    Returns
    -------
    PlaneFit
    """
    p = np.ascontiguousarray(_check_points(points), dtype=np.float32)
    n_pts = len(p)
    if n_pts < 3:
        raise ShapeError(f"RANSAC plane fit needs at least 3 points, got {n_pts}")
    if not threshold_m > 0:
        raise UnitsError(f"threshold_m must be a positive distance in metres (e.g. 0.005), got {threshold_m}")
    if iterations < 1:
        raise ShapeError(f"iterations must be >= 1, got {iterations}")
    rng = np.random.default_rng(seed)
    # scoring subset (drawn with replacement: cheap, and unbiased), fixed for all hypotheses
    sub = p[rng.integers(0, n_pts, size=score_points)] if n_pts > score_points else p
    # hypotheses from random triples of the scoring subset
    tri = rng.integers(0, len(sub), size=(iterations, 3))
    a, b, c = sub[tri[:, 0]], sub[tri[:, 1]], sub[tri[:, 2]]
    normals = np.cross(b - a, c - a)
    norms = np.linalg.norm(normals, axis=1)
    ok = norms > 1e-12
    if not ok.any():
        raise ShapeError(
            f"all {iterations} RANSAC samples of the {n_pts} points were degenerate (collinear or duplicate "
            "points); a plane needs points that span two directions"
        )
    normals = normals[ok] / norms[ok, None]
    offsets = -np.einsum("ij,ij->i", normals, a[ok])
    # (M, 4) @ (4, I): signed distances of every scoring point to every hypothesis in one product
    sub_h = np.empty((len(sub), 4), np.float32)
    sub_h[:, :3] = sub
    sub_h[:, 3] = 1.0
    planes = np.empty((4, len(normals)), np.float32)
    planes[:3] = normals.T
    planes[3] = offsets
    # einsum rather than BLAS: a threaded sgemm stalls badly when the cores are busy (measured 0.1 -> 16 ms)
    dist = np.einsum("mk,ki->mi", sub_h, planes)
    np.abs(dist, out=dist)
    counts = np.count_nonzero(dist <= np.float32(threshold_m), axis=0)
    if axis is not None:
        ax = np.asarray(axis, np.float64) / np.linalg.norm(axis)
        counts[np.abs(normals @ ax) < np.cos(np.radians(max_tilt_deg))] = -1
        if counts.max() < 0:
            raise ShapeError(f"no RANSAC hypothesis of the {n_pts} points lies within {max_tilt_deg:g} deg of "
                             "the given axis; the points hold no plane parallel to it")
    best = int(np.argmax(counts))  # first maximum: deterministic
    normal = normals[best].astype(np.float64)
    offset = float(offsets[best])
    thr = np.float32(threshold_m)

    def _inliers(nrm: np.ndarray, off: float) -> np.ndarray:
        d = p @ nrm.astype(np.float32)
        d += np.float32(off)
        return np.abs(d, out=d) <= thr

    inliers = _inliers(normal, offset)
    for _ in range(refine_iterations):
        sel = np.flatnonzero(inliers)
        if len(sel) < 3:
            break
        if len(sel) > refine_points:  # an evenly spaced subset fixes the plane just as well, faster
            sel = sel[:: -(-len(sel) // refine_points)]
        n_new, o_new, _ = refine_plane(p[sel])
        inl_new = _inliers(n_new, o_new)
        if np.count_nonzero(inl_new) < np.count_nonzero(inliers):
            break
        normal, offset, inliers = n_new, o_new, inl_new
    count = int(np.count_nonzero(inliers))
    if count < max(3, min_inliers):
        raise ShapeError(
            f"the best plane has {count} inliers within {threshold_m * 1000:.1f} mm, fewer than the {min_inliers} "
            "required; the points may not contain a plane, or the threshold is too tight"
        )
    resid = p[inliers].astype(np.float64) @ normal + offset
    rmse = float(np.sqrt(np.mean(resid**2)))
    if viewpoint is not None:
        normal, offset = orient_plane(normal, offset, viewpoint)
    return PlaneFit(normal, offset, inliers, rmse, float(threshold_m), int(ok.sum()))
