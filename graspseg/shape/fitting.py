"""Small geometric fits used by the shape estimator: footprint rectangle, circles, spheres, surface distances.

Everything works on plane-local coordinates ``(a, b, h)``: ``a, b`` along two orthonormal in-plane axes and
``h`` the height above the support plane, metres. All functions are vectorised numpy (plus OpenCV for the
minimum-area rectangle and connected components) and deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np


def strided_subset(n: int, k: int) -> np.ndarray:
    """Indices of an evenly strided, deterministic subset of at most ``k`` of ``n`` items."""
    if n <= k:
        return np.arange(n)
    return np.linspace(0, n - 1, k).astype(np.int64)


def trimmed_rms(residuals: np.ndarray, trim_fraction: float) -> float:
    """RMS of the ``1 - trim_fraction`` smallest absolute residuals."""
    r = np.abs(np.asarray(residuals, dtype=np.float64))
    if r.size == 0:
        return float("inf")
    keep = max(1, int(np.ceil(r.size * (1.0 - trim_fraction))))
    if keep < r.size:
        r = np.partition(r, keep - 1)[:keep]
    return float(np.sqrt(np.mean(r * r)))


def largest_components(ab: np.ndarray, cell_m: float, min_fraction: float) -> np.ndarray:
    """(K,) bool: points of the 2D occupancy-grid components holding at least ``min_fraction`` of the largest.

    Parameters
    ----------
    ab : (K, 2) float64
        In-plane coordinates, metres.
    cell_m : float
        Grid cell, metres (enlarged so the grid never exceeds 1024 cells a side).
    """
    if len(ab) == 0:
        return np.zeros(0, bool)
    mn = ab.min(axis=0)
    span = float((ab.max(axis=0) - mn).max())
    cell = max(cell_m, span / 1023.0)
    ij = np.floor((ab - mn) / cell).astype(np.int32)
    w, h = int(ij[:, 0].max()) + 1, int(ij[:, 1].max()) + 1
    grid = np.zeros((h + 2, w + 2), np.uint8)
    grid[ij[:, 1] + 1, ij[:, 0] + 1] = 1
    n, lab = cv2.connectedComponents(grid, connectivity=8)
    if n <= 2:
        return np.ones(len(ab), bool)
    comp = lab[ij[:, 1] + 1, ij[:, 0] + 1]
    counts = np.bincount(comp, minlength=n)
    counts[0] = 0
    keep_comp = counts >= max(1.0, min_fraction * counts.max())
    return keep_comp[comp]


@dataclass(frozen=True)
class Rect2D:
    """A rectangle in plane-local coordinates (metres)."""

    centre: np.ndarray  # (2,)
    long_dir: np.ndarray  # (2,) unit, along the long side
    long: float
    short: float
    corners: np.ndarray  # (4, 2), in order around the rectangle

    def local(self, ab: np.ndarray) -> np.ndarray:
        """(K, 2) coordinates along (long, short) axes relative to the centre."""
        d = ab - self.centre
        perp = np.array([-self.long_dir[1], self.long_dir[0]])
        return np.stack([d @ self.long_dir, d @ perp], axis=1)


def min_area_rect(ab: np.ndarray) -> Rect2D:
    """Minimum-area rectangle of (K, 2) in-plane points (metres), via ``cv2.minAreaRect``."""
    mean = ab.mean(axis=0)
    pts_mm = ((ab - mean) * 1000.0).astype(np.float32)
    rect = cv2.minAreaRect(pts_mm)
    corners = cv2.boxPoints(rect).astype(np.float64) / 1000.0 + mean
    return _rect_from_corners(corners)


def rect_from_bounds(centre: np.ndarray, long_dir: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> Rect2D:
    """Rectangle spanning ``[lo, hi]`` (2,) along (``long_dir``, its left normal) about ``centre`` (2,)."""
    u = np.asarray(long_dir, dtype=np.float64)
    v = np.array([-u[1], u[0]])
    cl = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    return _rect_from_corners(centre + cl[:, :1] * u + cl[:, 1:] * v)


def _rect_from_corners(corners: np.ndarray) -> Rect2D:
    e0 = corners[1] - corners[0]
    e1 = corners[2] - corners[1]
    l0, l1 = float(np.linalg.norm(e0)), float(np.linalg.norm(e1))
    if l0 >= l1:
        long_dir, long, short = e0 / max(l0, 1e-12), l0, l1
    else:
        long_dir, long, short = e1 / max(l1, 1e-12), l1, l0
    if long < 1e-12:
        long_dir = np.array([1.0, 0.0])
    return Rect2D(corners.mean(axis=0), long_dir, long, short, corners)


def _trimmed_bounds(local: np.ndarray, noise_m: float) -> np.ndarray:
    """(2, 2) [[lo_x, hi_x], [lo_y, hi_y]]: per-side quantiles that cut the depth-noise tail.

    With Gaussian noise ``noise_m`` blurring an edge of a region of extent ``L``, a fraction
    ``noise_m / (sqrt(2 pi) L)`` of the points falls beyond the true edge; that fraction is cut on each side.
    """
    out = np.empty((2, 2))
    n = len(local)
    for k in range(2):
        c = local[:, k]
        ext = float(c.max() - c.min())
        q = min(0.02, noise_m / (np.sqrt(2 * np.pi) * max(ext, 1e-6)))
        i = int(np.floor(q * (n - 1)))
        if i == 0:
            out[k] = c.min(), c.max()
        else:
            part = np.partition(c, (i, n - 1 - i))
            out[k] = part[i], part[n - 1 - i]
    return out


def footprint_rect(ab: np.ndarray, noise_m: float, max_points: int = 1500) -> Rect2D:
    """Minimum-area rectangle of (K, 2) in-plane points, robust to depth noise.

    The orientation comes from ``cv2.minAreaRect`` on an evenly strided subset; the sides are placed at
    quantiles that cut the noise tail (see :func:`_trimmed_bounds`), and the orientation is re-fitted once on
    the points inside.
    """
    rect = min_area_rect(ab[strided_subset(len(ab), max_points)])
    if noise_m <= 0:
        return min_area_rect(ab)
    for it in range(2):
        loc = rect.local(ab)
        b = _trimmed_bounds(loc, noise_m)
        if it == 1:
            break
        inside = ((loc[:, 0] >= b[0, 0]) & (loc[:, 0] <= b[0, 1]) & (loc[:, 1] >= b[1, 0]) & (loc[:, 1] <= b[1, 1]))
        if inside.sum() >= 5:
            sub = ab[inside]
            rect = min_area_rect(sub[strided_subset(len(sub), max_points)])
    return rect_from_bounds(rect.centre, rect.long_dir, b[:, 0], b[:, 1])


def boundary_rect(ab: np.ndarray, noise_m: float, max_points: int = 600) -> Rect2D:
    """Rectangle whose sides the (K, 2) points lie on, for a hollow footprint (side faces seen, top not).

    With only the side faces in view the points trace an L (or a single line) instead of filling the
    footprint; the minimum-area rectangle of an L is ambiguous (a diagonal rectangle has the same area). The
    orientation is chosen among the convex-hull edge directions as the one that puts the points closest to
    the rectangle's sides; the sides are then placed as in :func:`footprint_rect`.
    """
    sub = ab[strided_subset(len(ab), max_points)]
    mean = sub.mean(axis=0)
    hull = cv2.convexHull(((sub - mean) * 1000.0).astype(np.float32)).reshape(-1, 2).astype(np.float64)
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.concatenate([np.arctan2(edges[:, 1], edges[:, 0]) % (np.pi / 2), [0.0]])
    c, s = np.cos(angles)[:, None], np.sin(angles)[:, None]
    d = sub - mean
    x = c * d[:, 0] + s * d[:, 1]  # (C, K)
    y = -s * d[:, 0] + c * d[:, 1]
    dx = np.minimum(x - x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True) - x)
    dy = np.minimum(y - y.min(axis=1, keepdims=True), y.max(axis=1, keepdims=True) - y)
    best = int(np.argmin(np.minimum(dx, dy).mean(axis=1)))
    u = np.array([np.cos(angles[best]), np.sin(angles[best])])
    v = np.array([-u[1], u[0]])
    loc = np.column_stack([(ab - mean) @ u, (ab - mean) @ v])
    b = _trimmed_bounds(loc, noise_m)
    rect = rect_from_bounds(mean, u, b[:, 0], b[:, 1])
    return rect


def gauss_newton(fun: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], x0: np.ndarray,
                 iterations: int = 6, tol_m: float = 1e-5) -> np.ndarray:
    """Minimise ``|r(x)|²`` from ``x0`` (damped Gauss–Newton); ``fun`` returns residuals (K,) and Jacobian (K, P)."""
    x = np.asarray(x0, dtype=np.float64).copy()
    for _ in range(iterations):
        r, jac = fun(x)
        if not np.isfinite(r).all() or not np.isfinite(jac).all():
            break
        jtj = jac.T @ jac
        jtj.flat[:: jtj.shape[0] + 1] *= 1.0 + 1e-9
        jtj.flat[:: jtj.shape[0] + 1] += 1e-12
        try:
            step = np.linalg.solve(jtj, -(jac.T @ r))
        except np.linalg.LinAlgError:
            break
        x = x + step
        if float(np.abs(step).max()) < tol_m:
            break
    return x


def robust_refit(fit: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 residual: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 n: int, x0: np.ndarray, floor_m: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``fit(indices, x_init)`` on all ``n`` items, drop residuals above ``median + 3·1.4826·MAD`` (at least
    ``floor_m``), refit from the first solution. Returns (x, inlier mask)."""
    idx = np.arange(n)
    x = fit(idx, x0)
    r = np.abs(residual(x, idx))
    med = float(np.median(r))
    mad = float(np.median(np.abs(r - med))) * 1.4826
    inl = r <= max(3.0 * mad + med, floor_m)
    if inl.sum() >= 5 and inl.sum() < n:
        x = fit(idx[inl], x)
    return x, inl


def kasa_circle(ab: np.ndarray) -> np.ndarray:
    """Algebraic circle fit: returns (cx, cy, r) of (K, 2) points."""
    m = ab.mean(axis=0)
    d = ab - m
    a = np.column_stack([2 * d, np.ones(len(d))])
    y = (d * d).sum(axis=1)
    sol = np.linalg.lstsq(a, y, rcond=None)[0]
    r = np.sqrt(max(sol[2] + sol[0] ** 2 + sol[1] ** 2, 0.0))
    return np.array([sol[0] + m[0], sol[1] + m[1], r])


def circle_geometric(ab: np.ndarray, x0: np.ndarray, iterations: int = 4) -> np.ndarray:
    """Geometric (orthogonal-distance) circle fit from ``x0 = (cx, cy, r)``."""

    def fun(x):
        d = ab - x[:2]
        rho = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-12)
        jac = np.column_stack([-d[:, 0] / rho, -d[:, 1] / rho, -np.ones(len(d))])
        return rho - x[2], jac

    return gauss_newton(fun, x0, iterations)


def angular_envelope(ab: np.ndarray, centre: np.ndarray, bins: int = 72, min_count: int = 2,
                     tail_fraction: float = 0.0) -> np.ndarray:
    """(B, 2) outer envelope of (K, 2) points around ``centre``: per angular bin, the point whose radius is the
    ``1 - tail_fraction`` quantile of the bin (the outermost one for 0). Bins with fewer than ``min_count``
    points are skipped."""
    d = ab - centre
    ang = np.arctan2(d[:, 1], d[:, 0])
    rho = np.hypot(d[:, 0], d[:, 1])
    b = np.minimum(((ang + np.pi) / (2 * np.pi) * bins).astype(np.int64), bins - 1)
    order = np.argsort(b + rho / (float(rho.max()) * 1.000001 + 1e-12))
    counts = np.bincount(b, minlength=bins)
    starts = np.cumsum(counts) - counts
    ok = counts >= min_count
    pick = starts + np.floor((1.0 - tail_fraction) * (counts - 1)).astype(np.int64)
    return ab[order[pick[ok]]]


def rect_coverage(ab: np.ndarray, rect: Rect2D, cell_m: float) -> float:
    """Fraction of the grid cells of ``rect`` that hold at least one of the (K, 2) points."""
    loc = rect.local(ab)
    nx = max(1, int(np.ceil(rect.long / cell_m)))
    ny = max(1, int(np.ceil(rect.short / cell_m)))
    i = np.floor((loc[:, 0] + rect.long / 2) / max(rect.long, 1e-12) * nx).astype(np.int64)
    j = np.floor((loc[:, 1] + rect.short / 2) / max(rect.short, 1e-12) * ny).astype(np.int64)
    ok = (i >= 0) & (i < nx) & (j >= 0) & (j < ny)
    occ = np.zeros(nx * ny, bool)
    occ[i[ok] * ny + j[ok]] = True
    return float(occ.sum()) / (nx * ny)


def circle_coverage(ab: np.ndarray, centre: np.ndarray, radius: float, cell_m: float) -> float:
    """Fraction of the grid cells whose centre lies inside the circle that hold at least one of the points."""
    n = max(1, int(np.ceil(2 * radius / cell_m)))
    step = 2 * radius / n
    g = (np.arange(n) + 0.5) * step - radius
    gx, gy = np.meshgrid(g, g, indexing="ij")
    inside = gx**2 + gy**2 <= radius**2
    if not inside.any():
        return 0.0
    d = ab - centre
    i = np.floor((d[:, 0] + radius) / step).astype(np.int64)
    j = np.floor((d[:, 1] + radius) / step).astype(np.int64)
    ok = (i >= 0) & (i < n) & (j >= 0) & (j < n)
    occ = np.zeros((n, n), bool)
    occ[i[ok], j[ok]] = True
    return float((occ & inside).sum()) / float(inside.sum())


def angular_coverage(ab: np.ndarray, centre: np.ndarray, radius: float, band_m: float, bins: int = 36) -> float:
    """Fraction of ``bins`` angular sectors around ``centre`` holding a point within ``band_m`` of the circle."""
    d = ab - centre
    rho = np.hypot(d[:, 0], d[:, 1])
    near = np.abs(rho - radius) <= band_m
    if not near.any():
        return 0.0
    ang = np.arctan2(d[near, 1], d[near, 0])
    b = np.minimum(((ang + np.pi) / (2 * np.pi) * bins).astype(np.int64), bins - 1)
    return float(np.unique(b).size) / bins


def box_surface_distance(local: np.ndarray, half: np.ndarray) -> np.ndarray:
    """(K,) distance of (K, 3) points (box-centred coordinates) to the surface of a box with half sizes ``half``."""
    q = np.abs(local) - half
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
    inside = np.minimum(q.max(axis=1), 0.0)
    return np.abs(outside + inside)


def cylinder_surface_distance(radial: np.ndarray, axial: np.ndarray, radius: float, half_length: float) -> np.ndarray:
    """(K,) distance to a closed finite cylinder, from radial distance and axial offset from its centre."""
    q = np.stack([radial - radius, np.abs(axial) - half_length], axis=1)
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
    inside = np.minimum(q.max(axis=1), 0.0)
    return np.abs(outside + inside)


def sample_rectangle(origin: np.ndarray, u: np.ndarray, v: np.ndarray, spacing: float) -> np.ndarray:
    """(K, 3) grid points on the parallelogram ``origin + s·u + t·v``, s, t in [0, 1], at about ``spacing``."""
    nu = max(2, int(np.ceil(np.linalg.norm(u) / spacing)) + 1)
    nv = max(2, int(np.ceil(np.linalg.norm(v) / spacing)) + 1)
    s, t = np.meshgrid(np.linspace(0, 1, nu), np.linspace(0, 1, nv), indexing="ij")
    return origin + s.reshape(-1, 1) * u + t.reshape(-1, 1) * v
