"""Per-frame geometry and boundary maps of the ``rgbd`` segmenter (computed once in ``set_frame``).

The frame is decomposed at three granularities, each a label image (0 = not an object pixel):

* ``group`` — connected regions above the support plane, cut only at depth discontinuities (objects
  that touch in 3D stay together);
* ``whole`` — ``group`` additionally cut at concave creases (two convex objects pressed together meet at
  a concave crease; one convex object has none), small concave-separated fragments re-attached;
* ``part`` — ``whole`` additionally cut at sharp convex creases and strong colour edges (faces, handles,
  printed panels).

Everything is vectorised (OpenCV and numpy); the decomposition is repeated with perturbed thresholds so
that every prompt can be scored by the stability of its mask.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from scipy import ndimage

from ...core.errors import ShapeError
from ...core.frame import RGBDFrame
from ...core.geometry import fit_plane_ransac

log = logging.getLogger(__name__)

_SQUARE3 = np.ones((3, 3), np.uint8)


@dataclass(frozen=True, eq=False)
class SupportFit:
    """The support plane ``normal · p + offset = 0`` in ``camera_color_optical`` (normal towards the camera).

    ``found`` is False when no plane was plausible as a support (``reason`` then says why, e.g. a
    close-up where the only large plane runs through the object). ``outline_uv`` is the convex hull of
    the plane's inlier pixels, (K, 2) int32 image coordinates: the table's outline in the image.
    ``supported_fraction`` is the fraction of the depth samples standing on it; ``noise_per_m2`` the depth
    noise measured on it, σ(z) = noise_per_m2 z² (1/m). ``raised`` marks a smaller support above the
    primary one carrying objects of its own (a stool on the floor, :func:`_parallel_supports`).
    """

    normal: np.ndarray  # (3,) float64
    offset: float  # metres
    rmse_m: float
    inlier_ratio: float
    found: bool
    reason: str = ""
    outline_uv: np.ndarray | None = None
    supported_fraction: float = 0.0
    noise_per_m2: float = 0.0
    raised: bool = False


@dataclass(frozen=True, eq=False)
class Decomposition:
    """Label images (H, W) int32 of one threshold setting; 0 = background / support / no depth."""

    group: np.ndarray
    whole: np.ndarray
    part: np.ndarray


@dataclass(eq=False)
class FrameFeatures:
    """Everything ``predict`` needs, computed once per frame.

    Full-frame maps are (H, W); ``crop`` is the region above the support (plus a margin) where the
    boundary maps were computed, and ``crop_maps`` holds the maps only needed inside it.

    Attributes
    ----------
    depth_m : (H, W) float32
        Metres, 0 = no reading (or outside the configured depth range); scattered dropouts are filled
        from the nearest reading (:func:`fill_speckle`).
    filled_depth_m : (H, W) float32
        Depth with holes (inside ``crop``) replaced by the nearest valid reading (lookups only).
    height_m : (H, W) float32
        Signed height above the support plane, metres (0 where no depth).
    support : (H, W) bool
        Pixels on the support plane (or below it).
    jump : (H, W) bool
        Far-side pixels of depth discontinuities.
    concave : (H, W) bool
        Pixels on concave creases.
    levels : list of Decomposition
        The nominal decomposition (group / whole / part label images).
    hole_owner : (H, W) int32
        For pixels without depth: the ``whole`` label the hole pixel was given from colour and the
        neighbouring geometry (0 = background).
    crop : tuple of 2 slices
        Rows and columns of the processed region.
    crop_maps : dict
        Inside ``crop``: ``lab`` and ``lab_filled`` (h, w, 3) float32 CIELAB, ``convex`` and
        ``color_edge`` (h, w) bool, ``curvature`` (h, w) float32 mean convexity.
    plane : SupportFit
        The primary support (the one most samples stand on).
    timings_ms : dict
    supports : list of SupportFit
        Every accepted support, primary first (a floor beside the table with objects of its own).
    support_region : (H, W) bool
        Inside the image outline of an accepted support: where objects can stand.
    """

    depth_m: np.ndarray
    filled_depth_m: np.ndarray
    height_m: np.ndarray
    support: np.ndarray
    jump: np.ndarray
    concave: np.ndarray
    plane: SupportFit
    levels: list
    hole_owner: np.ndarray
    crop: tuple
    crop_maps: dict
    timings_ms: dict
    supports: list = field(default_factory=list)
    support_region: np.ndarray | None = None


# --------------------------------------------------------------------------------------------------
# support plane and height
# --------------------------------------------------------------------------------------------------
def fit_support_plane(depth_m: np.ndarray, rays: np.ndarray, cfg) -> tuple[SupportFit, list[SupportFit]]:
    """The support planes of a frame, judged by what stands on them.

    Every threshold is taken at each sample's own depth (inlier band ``a + b z²``: a table at 1 m and the
    floor at 2.5 m in one view). Up to ``plane_candidates`` planes are found by sequential seeded RANSAC on a
    strided subsample of the organised cloud (each on the samples the previous ones did not explain). A
    candidate is a support when

    * it is large: at least ``plane_min_inlier_ratio`` of the samples, and its inliers' outline (convex
      hull in the image) covers ``plane_min_hull_fraction`` of the image;
    * it is opaque: inside its outline at most ``plane_max_below_fraction`` of the samples lie more than
      ``plane_below_factor`` inlier thresholds behind it. A table hides what is beneath it; what lies
      behind it *outside* its outline (the floor and the room past its edge) says nothing against it;
      a plane through a curved object has the object's own surface (the inside of a bowl) behind it;
    * something stands on it: at least ``plane_min_supported_fraction`` of the samples lie inside its
      outline, above its inlier band and by more than ``plane_below_factor`` sigmas of the depth noise
      measured on it (:func:`_plane_noise_per_m2`; a sensor used beyond its range is noisier than the
      band assumes), in connected regions (of 3 samples or more) no higher than
      ``max_object_height_m`` (objects; a wall rising from the floor, or the table seen from the floor's
      plane, is scenery). A plane fitted to a curved object filling the view has nothing on it.

    Further supports (a floor beside the table) must be parallel to the primary one within
    ``support_max_tilt_deg`` (horizontal surfaces; a wall with things in front of it is not one); smaller
    parallel ones (a stool on the floor) are then searched for by :func:`_parallel_supports`.
    When no candidate has anything on it, the largest opaque candidate explaining at least
    ``plane_empty_min_inlier_ratio`` of the samples is the support (an empty table), unless the surface
    continues smoothly behind it (:func:`_bends_away`: a curved object filling the view). Gravity is not
    used.

    Returns
    -------
    primary : SupportFit
        The support with the most samples standing on it (``found`` False, with the reason, when none).
    supports : list of SupportFit
        Every accepted support, primary first.
    """
    s = cfg.plane_stride_px
    z = depth_m[::s, ::s]
    r = rays[::s, ::s]
    ok = (z > cfg.min_depth_m) & (z < cfg.max_depth_m)
    none = SupportFit(np.array([0.0, 0.0, 1.0]), 0.0, 0.0, 0.0, False, "fewer than 50 depth samples")
    if np.count_nonzero(ok) < 50:
        return none, []
    rows, cols = np.nonzero(ok)
    zz = z[ok]
    pts = np.empty((zz.size, 3), np.float32)
    pts[:, :2] = r[ok] * zz[:, None]
    pts[:, 2] = zz
    gh, gw = z.shape
    n_all = zz.size
    thr = support_threshold_m(zz, cfg).astype(np.float32)  # (N,) metres
    remaining = np.ones(n_all, bool)
    candidates: list[tuple[SupportFit, float]] = []
    reasons: list[str] = []
    for k in range(max(1, cfg.plane_candidates)):
        step = _next_plane(pts, zz, remaining, thr, cfg, cfg.seed + k)
        if step is None:
            break
        fit, height, inlier = step
        ratio = float(np.count_nonzero(inlier & remaining)) / n_all
        remaining &= ~inlier
        if ratio < cfg.plane_min_inlier_ratio:
            reasons.append(f"plane {k + 1} explains {ratio:.0%} of the depth samples "
                           f"(< plane_min_inlier_ratio {cfg.plane_min_inlier_ratio:.0%})")
            break
        noise = _plane_noise_per_m2(height, zz, rows, cols, (gh, gw), cfg.plane_below_factor * thr)
        verdict, outline, supported = _judge_support(height, inlier, rows, cols, (gh, gw), thr, zz, noise, cfg)
        fit_k = SupportFit(fit.normal, float(fit.offset), fit.rmse_m, ratio, True, "",
                           None if outline is None else outline * s, supported, noise)
        if verdict:
            reasons.append(f"plane {k + 1}: {verdict}")
        candidates.append((fit_k, float(verdict == "")))
    supports = [f for f, good in candidates if good and f.supported_fraction >= cfg.plane_min_supported_fraction]
    if not supports:
        empty = [f for f, good in candidates if good and f.inlier_ratio >= cfg.plane_empty_min_inlier_ratio]
        bend = _bends_away(z, empty[0], r, cfg) if empty else 0.0
        if bend > cfg.plane_max_below_fraction:
            reasons.append(f"nothing stands on the largest plane and {bend:.0%} of the samples continue it "
                           "smoothly behind it: a curved surface filling the view, not a table")
        elif empty:
            supports = empty[:1]
        elif candidates:
            reasons.append(f"no opaque plane has {cfg.plane_min_supported_fraction:.1%} of the samples standing "
                           f"on it (plane_min_supported_fraction), nor explains "
                           f"{cfg.plane_empty_min_inlier_ratio:.0%} of them alone (an empty table)")
    if not supports:
        reason = "; ".join(reasons) or "no plane found"
        log.debug("no support plane: %s", reason)
        first = candidates[0][0] if candidates else none
        return replace(first, found=False, reason=reason), []
    supports.sort(key=lambda f: -f.supported_fraction)
    # supports are horizontal, so parallel to each other: a wall with something in front of it is not one
    cos_max = np.cos(np.radians(cfg.support_max_tilt_deg))
    supports = [supports[0]] + [f for f in supports[1:] if float(f.normal @ supports[0].normal) > cos_max]
    supports += _parallel_supports(pts, zz, thr, rows, cols, (gh, gw), supports, cfg)
    return supports[0], supports


def support_threshold_m(depth_m, cfg):
    """Support-plane inlier threshold ``plane_threshold_m + plane_threshold_per_m2 z²`` (m) at ``depth_m`` (m;
    a float or an array of any shape)."""
    return cfg.plane_threshold_m + cfg.plane_threshold_per_m2 * depth_m * depth_m


def _next_plane(pts: np.ndarray, depth_m: np.ndarray, remaining: np.ndarray, thr: np.ndarray, cfg, seed: int,
                **restrict) -> tuple | None:
    """One step of sequential RANSAC: the plane best explaining the ``remaining`` samples, or None when fewer
    than 50 remain.

    Hypotheses are scored with the threshold at the remaining samples' median depth; inliers then use each
    sample's own threshold ``thr`` (a table seen from 1 m beside a floor at 2.5 m). ``pts`` (N, 3) camera-frame
    samples, ``depth_m``/``thr``/``remaining`` (N,); ``restrict`` goes to :func:`fit_plane_ransac` (``axis``,
    ``max_tilt_deg``; it raises ShapeError when no plane lies within the tilt). Returns (fit, height (N,) m
    above the plane, inlier (N,) bool).
    """
    idx = np.flatnonzero(remaining)
    if idx.size < 50:
        return None
    fit = fit_plane_ransac(pts[idx], threshold_m=support_threshold_m(float(np.median(depth_m[idx])), cfg),
                           iterations=cfg.plane_iterations, seed=seed, score_points=cfg.plane_score_points,
                           refine_iterations=2, viewpoint=np.zeros(3), **restrict)
    height = pts @ np.asarray(fit.normal, np.float32) + np.float32(fit.offset)
    return fit, height, np.abs(height) < thr


def _parallel_supports(pts: np.ndarray, depth_m: np.ndarray, thr: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                       grid_shape: tuple[int, int], supports: list[SupportFit], cfg) -> list[SupportFit]:
    """Smaller supports raised above the first, parallel to it (a stool or a shelf above the floor), judged by
    what stands on them.

    Among the samples no accepted support explains, up to ``plane_candidates`` planes within
    ``support_max_tilt_deg`` of the first support are fitted in turn (RANSAC restricted to that tilt);
    those lying above it (median height of their inliers) are judged.
    Each is a support, whatever share of the samples it explains, when it is a real surface (50 inlier
    samples or more, an outline covering ``plane_min_hull_fraction`` of the image), opaque (what lies
    behind it on an accepted support, the floor seen past its edge, does not count against it) and
    ``plane_min_supported_fraction`` of the samples stand on it and on no accepted support (they rise
    ``max_object_height_m`` or more above every support beneath them; :func:`_judge_support`). A box
    top with nothing on it stays part of its box, and so does a flat box with objects on the table
    beside it.

    ``pts`` (N, 3) camera-frame samples, ``depth_m`` (N,), ``thr`` (N,) their inlier thresholds,
    ``rows``/``cols`` (N,) their positions on the strided grid of ``grid_shape``.
    """
    s = cfg.plane_stride_px
    axis = supports[0].normal
    cos_max = np.cos(np.radians(cfg.support_max_tilt_deg))
    explained = np.zeros(len(pts), bool)
    rise = np.full(len(pts), np.inf, np.float32)  # height above the nearest accepted support beneath
    h_primary = pts @ axis.astype(np.float32) + np.float32(supports[0].offset)
    for f in supports:
        h_f = pts @ f.normal.astype(np.float32) + np.float32(f.offset)
        explained |= np.abs(h_f) < thr
        rise = np.minimum(rise, np.where(h_f > -thr, h_f, np.inf))
    rise[np.isinf(rise)] = 0.0  # beneath every support: it rises above none
    if not np.any(rise >= cfg.max_object_height_m):
        return []  # nothing stands on a raised support and on no other (a wrist view): no search needed
    remaining = ~explained
    found: list[SupportFit] = []
    for k in range(max(1, cfg.plane_candidates)):
        try:
            step = _next_plane(pts, depth_m, remaining, thr, cfg, cfg.seed + 100 + k, axis=axis,
                               max_tilt_deg=cfg.support_max_tilt_deg)
        except ShapeError:
            break
        if step is None:
            break
        fit, height, inlier = step
        n_new = int(np.count_nonzero(inlier & remaining))
        remaining &= ~inlier
        if n_new < 50:
            break
        if float(fit.normal @ axis) <= cos_max or np.median(h_primary[inlier]) <= 0:
            continue  # tilted, or beneath the first support (the room seen past the table's edge)
        noise = _plane_noise_per_m2(height, depth_m, rows, cols, grid_shape, cfg.plane_below_factor * thr)
        verdict, outline, supported = _judge_support(height, inlier, rows, cols, grid_shape, thr, depth_m, noise,
                                                     cfg, explained, rise)
        log.debug("parallel plane %d: %d samples, %.1f%% standing on it%s", k + 1, n_new, 100 * supported,
                  f" ({verdict})" if verdict else "")
        if verdict or supported < cfg.plane_min_supported_fraction:
            continue
        found.append(SupportFit(fit.normal, float(fit.offset), fit.rmse_m, n_new / len(pts), True, "",
                                outline * s, supported, noise, raised=True))
        explained |= inlier
    return found


def _bends_away(z_grid: np.ndarray, plane: SupportFit, rays_grid: np.ndarray, cfg) -> float:
    """Fraction of the samples that lie behind ``plane`` and are reached from its inliers without a depth jump.

    A table ends at an edge with a depth discontinuity (the floor far below); a curved surface filling
    the view continues smoothly behind the plane fitted to its front. ``z_grid`` (h, w) metres, 0 = none.
    """
    valid = z_grid > 0
    n = plane.normal.astype(np.float32)
    height = z_grid * (rays_grid[..., 0] * n[0] + rays_grid[..., 1] * n[1] + n[2]) + np.float32(plane.offset)
    thr = support_threshold_m(z_grid, cfg)
    jump_thr = cfg.jump_a_m + cfg.jump_b_per_m * z_grid ** 2
    broken = ~valid
    for axis in (0, 1):
        dz = np.abs(np.diff(z_grid, axis=axis)) > (jump_thr[:-1] if axis == 0 else jump_thr[:, :-1])
        if axis == 0:
            broken[:-1] |= dz
            broken[1:] |= dz
        else:
            broken[:, :-1] |= dz
            broken[:, 1:] |= dz
    lbl, _ = ndimage.label(~broken)
    on_plane = valid & (np.abs(height) < thr) & (lbl > 0)
    if not on_plane.any():
        return 0.0
    main = np.bincount(lbl[on_plane]).argmax()
    behind = (lbl == main) & (height < -cfg.plane_below_factor * thr)
    return float(np.count_nonzero(behind)) / max(1, int(np.count_nonzero(valid)))


def _plane_noise_per_m2(height_m: np.ndarray, depth_m: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                        grid_shape: tuple[int, int], band_m: np.ndarray) -> float:
    """Depth noise measured on a plane: ``k`` in σ(z) = k z² (one sigma, 1/m), 0 when too few samples.

    ``k`` comes from the differences between horizontally neighbouring samples within ``band_m`` of the
    plane (the strided samples are farther apart than the sensor's noise correlation; a robust MAD, so
    objects standing on the plane do not count). Stereo noise grows as z², whatever the sensor's
    baseline: a D405 at 1 m or beyond is as noisy as the fitted inlier threshold or more.
    """
    gh, gw = grid_shape
    near = np.abs(height_m) < band_m
    grid = np.full((gh, gw), np.nan, np.float32)
    grid[rows[near], cols[near]] = height_m[near] / (depth_m[near] * depth_m[near])
    d = np.abs(np.diff(grid, axis=1))
    d = d[np.isfinite(d)]
    if d.size < 20:
        return 0.0
    return 1.4826 * float(np.median(d)) / np.sqrt(2.0)


def _judge_support(height_m: np.ndarray, inlier: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                   grid_shape: tuple[int, int], threshold_m: np.ndarray, depth_m: np.ndarray, noise_per_m2: float,
                   cfg, explained: np.ndarray | None = None, rise_m: np.ndarray | None = None) -> tuple:
    """Judge one plane (see :func:`fit_support_plane`): ``(why not, or '', outline, supported fraction)``.

    Parameters
    ----------
    height_m : (N,) float
        Signed height of the samples above the plane (normal towards the camera), metres.
    inlier : (N,) bool
    rows, cols : (N,) int
        Grid positions of the samples on the strided grid of shape ``grid_shape``.
    threshold_m : (N,) float
        The inlier threshold of each sample, a + b z², metres.
    depth_m : (N,) float
        Depth of the samples, metres.
    noise_per_m2 : float
        Depth noise measured on the plane, σ(z) = noise_per_m2 z² (:func:`_plane_noise_per_m2`).
    explained : (N,) bool, optional
        Samples on an accepted support: lying behind the plane there says nothing against it.
    rise_m : (N,) float, optional
        Height of the samples above the nearest accepted support beneath them (inf: none), metres: only
        regions rising ``max_object_height_m`` or more above it (standing on no accepted support) count
        as standing on this plane.
    """
    gh, gw = grid_shape
    # the outline is that of the largest connected inlier region: samples elsewhere that happen to lie
    # on the plane (where a wall crosses the table's height) are not part of the table
    grid = np.zeros((gh, gw), np.uint8)
    grid[rows[inlier], cols[inlier]] = 1
    n_lbl, lbl, stats, _ = cv2.connectedComponentsWithStats(grid, connectivity=8)
    if n_lbl < 2:
        return "fewer than 3 inlier samples", None, 0.0
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    vs, us = np.nonzero(lbl == biggest)
    pts = np.stack([us, vs], axis=1).astype(np.int32)
    if len(pts) < 3:
        return "fewer than 3 inlier samples", None, 0.0
    hull = cv2.convexHull(pts).reshape(-1, 2)
    hull_mask = np.zeros((gh, gw), np.uint8)
    cv2.fillConvexPoly(hull_mask, hull, 1)
    spread = float(np.count_nonzero(hull_mask)) / (gh * gw)
    if spread < cfg.plane_min_hull_fraction:
        return (f"its inliers cover {spread:.0%} of the image (< plane_min_hull_fraction "
                f"{cfg.plane_min_hull_fraction:.0%}): too small to be the table"), hull, 0.0
    inside = hull_mask[rows, cols] > 0
    n_inside = max(1, int(np.count_nonzero(inside)))
    behind_m = inside & (height_m < -cfg.plane_below_factor * threshold_m)
    if explained is not None:
        behind_m &= ~explained
    behind = np.count_nonzero(behind_m) / n_inside
    # what stands on it: connected regions above it inside its outline that stay below
    # max_object_height_m (a wall or the table seen from the floor's plane rises higher: scenery)
    # above it: outside the inlier band and clear of the depth noise measured on the plane itself
    above = inside & (height_m > np.maximum(threshold_m, cfg.plane_below_factor * noise_per_m2 * depth_m * depth_m))
    grid_above = np.zeros((gh, gw), np.uint8)
    grid_above[rows[above], cols[above]] = 1
    n_reg, reg = cv2.connectedComponents(grid_above, connectivity=8)
    supported = 0
    if n_reg > 1:
        top = np.zeros(n_reg, np.float64)
        np.maximum.at(top, reg[rows[above], cols[above]], height_m[above])
        size = np.bincount(reg[rows[above], cols[above]], minlength=n_reg)
        bounded = (top < cfg.max_object_height_m) & (size >= 3)  # (single noisy samples are no objects)
        if rise_m is not None:
            rise = np.zeros(n_reg, np.float64)
            np.maximum.at(rise, reg[rows[above], cols[above]], rise_m[above])
            bounded &= rise >= cfg.max_object_height_m
        bounded[0] = False
        supported = int(size[bounded].sum())
    supported_fraction = supported / max(1, height_m.size)
    if behind > cfg.plane_max_below_fraction:
        return (f"{behind:.0%} of the depth samples inside its outline lie behind it (> plane_max_below_fraction "
                f"{cfg.plane_max_below_fraction:.0%}): it runs through an object rather than under it"), \
            hull, supported_fraction
    return "", hull, supported_fraction


# --------------------------------------------------------------------------------------------------
# boundary maps
# --------------------------------------------------------------------------------------------------
def depth_jump_far_side(depth_m: np.ndarray, a_m: float, b_per_m: float) -> np.ndarray:
    """Far-side pixels of depth discontinuities between 4-neighbours.

    A pair (p, q) of valid neighbours is a discontinuity when ``|z_p - z_q| > a + b z_min²`` (stereo noise
    grows with z²); the farther pixel is marked, so the occluding object keeps its full silhouette.

    Returns
    -------
    (H, W) bool
    """
    z = depth_m
    valid = z > 0
    out = np.zeros(z.shape, bool)
    for axis in (0, 1):
        z0 = z[:-1] if axis == 0 else z[:, :-1]
        z1 = z[1:] if axis == 0 else z[:, 1:]
        both = (valid[:-1] & valid[1:]) if axis == 0 else (valid[:, :-1] & valid[:, 1:])
        zmin = np.minimum(z0, z1)
        d = z1 - z0
        thr = a_m + b_per_m * zmin * zmin
        big = both & (np.abs(d) > thr)
        far1 = big & (d > 0)  # pixel 1 is farther
        far0 = big & (d < 0)
        if axis == 0:
            out[1:] |= far1
            out[:-1] |= far0
        else:
            out[:, 1:] |= far1
            out[:, :-1] |= far0
    return out


def crease_maps(depth_m: np.ndarray, rays: np.ndarray, fx: float, fy: float, cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concave and sharp-convex crease pixels from surface normals at reduced resolution.

    Normals come from box-filtered depth gradients (normalised convolution over valid pixels) through
    ``n ∝ (-fx z_u, -fy z_v, z + x fx z_u + y fy z_v)``; the convexity of two pixels ``s`` apart is
    ``(n_a - n_b)·(p_a - p_b) / |p_a - p_b|`` (> 0 convex, < 0 concave; LCCP's criterion).

    Returns
    -------
    concave, convex : (H, W) bool
    curvature : (H, W) float32
        Mean convexity of the two directions (< 0 on concave surfaces such as the inside of a mug,
        > 0 on convex ones, 0 where unknown), dimensionless.
    """
    h, w = depth_m.shape
    f = cfg.normal_downsample
    hs, ws = h // f, w // f
    z = depth_m[: hs * f, : ws * f].reshape(hs, f, ws, f)
    valid = (z > 0).astype(np.float32)
    cnt = valid.sum(axis=(1, 3))
    zsum = z.sum(axis=(1, 3))
    zs = np.where(cnt > 0, zsum / np.maximum(cnt, 1), 0).astype(np.float32)
    vs = (cnt > 0).astype(np.float32)
    k = 2 * cfg.normal_smoothing_px + 1
    num = cv2.boxFilter(zs, -1, (k, k), normalize=False, borderType=cv2.BORDER_CONSTANT)
    den = cv2.boxFilter(vs, -1, (k, k), normalize=False, borderType=cv2.BORDER_CONSTANT)
    zsm = np.where(den > 0.5, num / np.maximum(den, 1e-6), 0).astype(np.float32)
    rs = rays[f // 2: hs * f: f, f // 2: ws * f: f]
    x, y = rs[..., 0], rs[..., 1]
    fxs, fys = fx / f, fy / f
    zu = cv2.Sobel(zsm, cv2.CV_32F, 1, 0, ksize=1, scale=0.5)
    zv = cv2.Sobel(zsm, cv2.CV_32F, 0, 1, ksize=1, scale=0.5)
    nx = -fxs * zu
    ny = -fys * zv
    nz = zsm + x * fxs * zu + y * fys * zv
    # unit normals towards the camera (n_z < 0 in the optical frame), one (hs, ws) array per component
    inv = -np.sign(nz + 1e-12) / (np.sqrt(nx * nx + ny * ny + nz * nz) + 1e-12)
    n = (nx * inv, ny * inv, nz * inv)
    p = (x * zsm, y * zsm, zsm)
    ok = (vs > 0) & (den >= 0.6 * k * k) & (zsm > 0)
    s = cfg.crease_step_px
    conc = np.zeros((hs, ws), np.float32)
    conv = np.zeros((hs, ws), np.float32)
    csum = np.zeros((hs, ws), np.float32)
    ccnt = np.zeros((hs, ws), np.float32)
    for axis in (0, 1):
        sl_a = (slice(None, -2 * s), slice(None)) if axis == 0 else (slice(None), slice(None, -2 * s))
        sl_b = (slice(2 * s, None), slice(None)) if axis == 0 else (slice(None), slice(2 * s, None))
        dp = [pc[sl_b] - pc[sl_a] for pc in p]
        dist = np.sqrt(dp[0] * dp[0] + dp[1] * dp[1] + dp[2] * dp[2]) + 1e-9
        c = ((n[0][sl_b] - n[0][sl_a]) * dp[0] + (n[1][sl_b] - n[1][sl_a]) * dp[1]
             + (n[2][sl_b] - n[2][sl_a]) * dp[2]) / dist
        both = ok[sl_a] & ok[sl_b]
        # a depth jump between the samples is not a crease
        smooth = np.abs(dp[2]) < cfg.crease_max_dz_rel * zsm[sl_a]
        c = np.where(both & smooth, c, 0)
        tgt = (slice(s, -s), slice(None)) if axis == 0 else (slice(None), slice(s, -s))
        conc[tgt] = np.minimum(conc[tgt], c)
        conv[tgt] = np.maximum(conv[tgt], c)
        csum[tgt] += c
        ccnt[tgt] += both & smooth
    concave_s = (conc < -cfg.concave_threshold).astype(np.uint8)
    if cfg.crease_dilate_px > 0:  # close one-sample gaps so that a crease line really separates
        kd = 2 * cfg.crease_dilate_px + 1
        concave_s = cv2.dilate(concave_s, cv2.getStructuringElement(cv2.MORPH_CROSS, (kd, kd)))
    convex_s = (conv > cfg.convex_threshold).astype(np.uint8)
    concave = cv2.resize(concave_s, (ws * f, hs * f), interpolation=cv2.INTER_NEAREST)
    convex = cv2.resize(convex_s, (ws * f, hs * f), interpolation=cv2.INTER_NEAREST)
    if (hs * f, ws * f) != (h, w):
        concave = cv2.copyMakeBorder(concave, 0, h - hs * f, 0, w - ws * f, cv2.BORDER_REPLICATE)
        convex = cv2.copyMakeBorder(convex, 0, h - hs * f, 0, w - ws * f, cv2.BORDER_REPLICATE)
    curv = cv2.resize(csum / np.maximum(ccnt, 1), (ws * f, hs * f), interpolation=cv2.INTER_NEAREST)
    if (hs * f, ws * f) != (h, w):
        curv = cv2.copyMakeBorder(curv, 0, h - hs * f, 0, w - ws * f, cv2.BORDER_REPLICATE)
    return concave > 0, convex > 0, curv


def color_edges(lab: np.ndarray, threshold: float) -> np.ndarray:
    """Strong colour edges: Sobel magnitude of the CIELAB image (ΔE per pixel) above ``threshold``."""
    gx = cv2.Sobel(lab, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = cv2.Sobel(lab, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    # squared magnitude summed over the channels in OpenCV (no (H, W, 3) numpy temporaries, no sqrt)
    mag2 = cv2.transform(cv2.add(cv2.multiply(gx, gx), cv2.multiply(gy, gy)), np.ones((1, 3), np.float32))
    return mag2 > np.float32(threshold) ** 2


# --------------------------------------------------------------------------------------------------
# labelling
# --------------------------------------------------------------------------------------------------
def components(mask: np.ndarray, min_px: int) -> np.ndarray:
    """4-connected components of ``mask`` as int32 labels; components under ``min_px`` pixels become 0."""
    n, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    if min_px <= 1:
        return lab
    small = np.bincount(lab.ravel(), minlength=n) < min_px
    small[0] = True
    if small[1:].any():
        keep = np.arange(n, dtype=np.int32)
        keep[small] = 0
        lab = keep[lab]
    return lab


def assign_nearest(labels: np.ndarray, todo: np.ndarray, max_dist_px: float,
                   same_as: np.ndarray | None = None) -> np.ndarray:
    """Give every ``todo`` pixel the label of the nearest labelled pixel within ``max_dist_px``.

    When ``same_as`` (H, W) int is given, a pixel only takes a label whose seed pixel has the same
    ``same_as`` value (e.g. stays inside its group).
    """
    seeds = labels > 0
    if not todo.any() or not seeds.any():
        return labels
    src = np.where(seeds, 0, 1).astype(np.uint8)
    dist, idx = cv2.distanceTransformWithLabels(src, cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
    seed_flat = np.flatnonzero(seeds.ravel())
    tv = np.flatnonzero((todo & ~seeds & (dist <= max_dist_px)).ravel())
    if tv.size == 0:
        return labels
    src_flat = seed_flat[idx.ravel()[tv] - 1]
    new = labels.ravel()[src_flat]
    if same_as is not None:
        sa = same_as.ravel()
        new = np.where(sa[src_flat] == sa[tv], new, 0)
    out = labels.copy()
    out.ravel()[tv] = new
    return out


def relabel(labels: np.ndarray) -> np.ndarray:
    """Consecutive labels 1..K (0 stays 0)."""
    present = np.bincount(labels.ravel()) > 0
    present[0] = False
    lut = np.cumsum(present).astype(np.int32)
    lut[0] = 0
    return lut[labels]


def _adjacency(labels: np.ndarray, n: int, depth_m: np.ndarray, filled_m: np.ndarray, cfg) -> tuple:
    """Shared 4-neighbour boundaries between labels 0..n.

    Returns
    -------
    shared : (n + 1, n + 1) int64
        ``shared[a, b]`` = number of neighbour pairs with labels a and b (symmetric, zero diagonal).
    perimeter : (n + 1,) int64
        Neighbour pairs with one pixel in the label and the other outside it (any label, 0 included).
    behind : (n + 1, n + 1) float64
        ``behind[a, b]`` = summed depth of a's pixel minus b's over those pairs (> 0: a lies behind b), m.
    jumps : (n + 1, n + 1) int64
        Number of those pairs across a depth discontinuity or a pixel without depth.

    ``behind`` uses ``filled_m`` (holes filled from the nearest reading), the rest ``depth_m``.
    """
    m = n + 1
    codes, dz, zref, hole = [], [], [], []
    valid = depth_m > 0
    for (a, b), (za, zb), (va, vb) in (
        ((labels[:, :-1], labels[:, 1:]), (filled_m[:, :-1], filled_m[:, 1:]), (valid[:, :-1], valid[:, 1:])),
        ((labels[:-1], labels[1:]), (filled_m[:-1], filled_m[1:]), (valid[:-1], valid[1:])),
    ):
        d = a != b
        codes.append(a[d].astype(np.int64) * m + b[d])
        dz.append(za[d].astype(np.float64) - zb[d])
        zref.append(np.minimum(za[d], zb[d]))
        hole.append(~(va[d] & vb[d]))
    c = np.concatenate(codes)
    dzc = np.concatenate(dz)
    zc = np.concatenate(zref)
    is_jump = (np.abs(dzc) > cfg.jump_a_m + cfg.jump_b_per_m * zc * zc) | np.concatenate(hole)
    jumps = np.bincount(c[is_jump], minlength=m * m).reshape(m, m)
    jumps = jumps + jumps.T
    shared = np.bincount(c, minlength=m * m).reshape(m, m)
    shared = shared + shared.T
    np.fill_diagonal(shared, 0)
    beh = np.bincount(c, weights=dzc, minlength=m * m).reshape(m, m)
    beh = beh - beh.T
    return shared, shared.sum(axis=1), beh, jumps


def _bridges(frag: np.ndarray, n: int, depth_m: np.ndarray, filled_m: np.ndarray, lab_filled: np.ndarray,
             cfg) -> tuple[np.ndarray, np.ndarray]:
    """Label pairs facing each other across a band without depth.

    Returns
    -------
    good, total : (n + 1, n + 1) int64
        Neighbour pairs on the meeting line of two regions grown into a hole band, whose rims' depths
        and colours agree (``good``), and all of them (``total``).
    """
    m = n + 1
    empty = np.zeros((m, m), np.int64)
    holes = depth_m == 0
    seeds = frag > 0
    if cfg.hole_bridge_px <= 0 or not holes.any() or not seeds.any():
        return empty, empty
    # grow every region into the holes; each grown pixel remembers the region pixel it came from, so the
    # depth and colour compared across the meeting line are those of the two regions' own rims
    dist, idx = cv2.distanceTransformWithLabels((~seeds).astype(np.uint8), cv2.DIST_L2, 3,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    reach = holes & (dist <= cfg.hole_bridge_px / 2)
    if not reach.any():
        return empty, empty
    seed_flat = np.flatnonzero(seeds.ravel())
    rflat = np.flatnonzero(reach.ravel())
    src = seed_flat[idx.ravel()[rflat] - 1]
    grown = frag.copy()
    grown.ravel()[rflat] = frag.ravel()[src]
    z_src = np.zeros(frag.shape, np.float32)
    z_src.ravel()[rflat] = depth_m.ravel()[src]
    lab_src = np.zeros(lab_filled.shape, np.float32)
    lab_src.reshape(-1, 3)[rflat] = lab_filled.reshape(-1, 3)[src]
    codes, ok = [], []
    for sl_a, sl_b in (((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
                       ((slice(None, -1), slice(None)), (slice(1, None), slice(None)))):
        la, lb = grown[sl_a], grown[sl_b]
        d = (la != lb) & (la > 0) & (lb > 0) & reach[sl_a] & reach[sl_b]
        if not d.any():
            continue
        za, zb = z_src[sl_a][d], z_src[sl_b][d]
        zmin = np.minimum(za, zb)
        smooth = np.abs(za - zb) <= cfg.jump_a_m + cfg.jump_b_per_m * zmin * zmin
        de = np.linalg.norm(lab_src[sl_a][d] - lab_src[sl_b][d], axis=1)
        codes.append(la[d].astype(np.int64) * m + lb[d])
        ok.append(smooth & (de <= cfg.hole_bridge_color_de))
    if not codes:
        return empty, empty
    c = np.concatenate(codes)
    k = np.concatenate(ok)
    total = np.bincount(c, minlength=m * m).reshape(m, m)
    good = np.bincount(c[k], minlength=m * m).reshape(m, m)
    return good + good.T, total + total.T


def _inscribed_radius(labels: np.ndarray, n: int) -> np.ndarray:
    """(n + 1,) float: largest distance (px) from a pixel of each label to a pixel of another label."""
    edge = np.zeros(labels.shape, bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, 1:] != labels[:, :-1]
    edge[1:] |= labels[1:] != labels[:-1]
    edge[:-1] |= labels[1:] != labels[:-1]
    dist = cv2.distanceTransform((~edge).astype(np.uint8), cv2.DIST_L2, 3)
    out = np.zeros(n + 1, np.float64)
    present = np.flatnonzero(np.bincount(labels.ravel(), minlength=n + 1))
    present = present[present > 0]
    if present.size:
        out[present] = ndimage.maximum(dist, labels, present)
    return out


def merge_fragments(frag: np.ndarray, height_m: np.ndarray, depth_m: np.ndarray, filled_m: np.ndarray,
                    lab_filled: np.ndarray, curvature: np.ndarray, cfg) -> np.ndarray:
    """Merge concave-separated fragments that cannot be objects on their own.

    Fragments facing each other across a band without depth (up to ``hole_bridge_px`` wide) are joined
    first when the depth and the colour on both sides of the band agree and the band is a substantial
    part of their outline: a hole never splits an object by itself (and, needing both cues, never joins
    two by itself).

    Then fragments are visited from the smallest. One joins the neighbour it shares the longest
    boundary with when

    * it is too small to be an object (``min_whole_px``);
    * it meets that neighbour at a crease rather than an occluding edge and is an appendage of it:
      much smaller (``appendage_max_area_ratio``) and not reaching down to the support
      (``contact_height_m``) or touching it with only a few pixels (a handle, a lid, a rim);
    * that neighbour encloses it (``enclosed_fraction`` of its perimeter);
    * it is clearly concave and not a thin crease band (mean convexity below ``-hollow_curvature``,
      inscribed radius at least ``hollow_min_radius_px``): objects are convex from outside, so this is
      an inside (a bowl's floor); when it lies on the support and continues its neighbour smoothly or
      is enclosed (``enclosed_fraction``) by the rims occluding it, those rims belong to the same object
      too;
    * it is not clearly convex (mean convexity below ``open_top_max_convexity``), meets that neighbour at
      a crease and does not reach down to the support: the rim and inside of an open container seen
      from above, over its outer wall.

    A fragment whose mean chroma (CIELAB a*, b*) differs from that neighbour's by more than
    ``merge_max_chroma_de`` is only merged when small or enclosed: a differently coloured surface is
    another object (a box's top behind another box), not an appendage, hollow or open top.

    A hollow-ish fragment (mean convexity below ``-inside_curvature``) lying behind a neighbour across
    an occluding edge is that neighbour's inside (a mug seen over its front rim). Objects standing
    side by side, or one in front of another, keep their concave crease or occluding edge and stay
    apart.

    A container has one inside and one top: a fragment that already holds them (joined as open top or
    inside) and stands on the support (``contact_min_px`` pixels within ``contact_height_m``) is a whole
    object, never the open top or inside of another (a mug beside a box it touches).
    """
    n = int(frag.max())
    if n <= 1:
        return frag
    ff = frag.ravel()
    area = np.bincount(ff, minlength=n + 1)
    low_px = np.bincount(ff[height_m.ravel() < cfg.contact_height_m], minlength=n + 1)
    low = low_px >= cfg.contact_min_px
    # neighbours across a thin band without depth (a rim's invalid edge) count as adjacent, as jumps
    adj = assign_nearest(frag, depth_m == 0, cfg.gap_px) if cfg.gap_px > 0 else frag
    shared, perim, behind, jumps = _adjacency(adj, n, depth_m, filled_m, cfg)
    shared[0, :] = 0
    shared[:, 0] = 0
    parent = np.arange(n + 1)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    curv_sum = np.bincount(ff, weights=curvature.ravel(), minlength=n + 1)
    # summed chroma (CIELAB a*, b*) of each fragment: clearly differently coloured neighbours are never
    # each other's appendage, hollow or open top
    chroma_sum = np.stack([np.bincount(ff, weights=lab_filled[..., i].ravel(), minlength=n + 1)
                           for i in (1, 2)], axis=1)
    # inscribed radius, only for the fragments concave enough to be hollows (the rest never need it)
    radius = np.zeros(n + 1)
    hollow_cand = np.flatnonzero(curv_sum < -cfg.hollow_curvature * np.maximum(area, 1))
    hollow_cand = hollow_cand[(hollow_cand > 0) & (area[hollow_cand] >= cfg.min_whole_px)]
    if hollow_cand.size:
        radius[hollow_cand] = _inscribed_radius(frag, n)[hollow_cand]

    # fragments holding an open top or inside (a container's outer wall with its top)
    container = np.zeros(n + 1, bool)

    def union(a: int, b: int, why: str) -> None:
        a, b = find(a), find(b)
        if a == b:
            return
        log.debug("merge fragment %d (%d px) into %d (%d px): %s", a, area[a], b, area[b], why)
        parent[a] = b
        perim[b] += perim[a] - 2 * shared[a, b]  # the boundary between them is no longer outline
        for m in (shared, jumps, behind):
            m[b] += m[a]
            m[:, b] += m[:, a]
            m[b, b] = 0
            m[a] = 0  # a is gone: no fragment may pick it (or, through it, b itself) as a neighbour again
            m[:, a] = 0
        area[b] += area[a]
        curv_sum[b] += curv_sum[a]
        chroma_sum[b] += chroma_sum[a]
        low[b] |= low[a]
        low_px[b] += low_px[a]
        container[b] |= container[a]

    good, total = _bridges(frag, n, depth_m, filled_m, lab_filled, cfg)
    # a bridge must be a substantial part of the smaller region's outline (a stripe across one object),
    # not the contact point of two similar-looking touching objects
    pmin = np.minimum(perim[:, None], perim[None, :])
    bridged = (good >= cfg.min_shared_px) & (good >= 0.5 * total) & (good >= cfg.hole_bridge_min_fraction * pmin)
    for a, b in zip(*np.nonzero(bridged), strict=True):
        if a < b:
            union(int(a), int(b), "bridged across a hole")

    for a in np.argsort(area, kind="stable"):
        a = int(a)
        if a == 0 or area[a] == 0 or find(a) != a:
            continue
        row = shared[a]
        b = int(np.argmax(row))
        if row[b] == 0:
            continue
        b = find(b)
        attached = jumps[a, b] <= cfg.attached_max_jump_fraction * row[b]  # a crease, not an occlusion
        appendage = area[a] < cfg.appendage_max_area_ratio * area[b] and (
            not low[a] or low_px[a] < cfg.appendage_max_low_fraction * area[a])
        chroma_de = float(np.linalg.norm(chroma_sum[a] / area[a] - chroma_sum[b] / max(1, area[b])))
        if chroma_de > cfg.merge_max_chroma_de:
            if area[a] < cfg.min_whole_px or row[b] >= cfg.enclosed_fraction * max(1, perim[a]):
                union(a, b, f"small or enclosed, chroma differs by {chroma_de:.0f}")
            continue
        # fragments in front of this one across an occluding edge (or a thin band without depth)
        front = np.flatnonzero((shared[a] >= cfg.min_shared_px) & (behind[a] > 0))
        front = front[front > 0]
        if radius[a] >= cfg.hollow_min_radius_px and curv_sum[a] < -cfg.hollow_curvature * area[a]:
            # clearly concave: never an object on its own (a bowl's floor). It belongs to its largest
            # neighbour and to the rims that occlude it.
            rimmed = shared[a, front].sum() >= cfg.enclosed_fraction * max(1, perim[a])
            union(a, b, "hollow")
            if (attached or rimmed) and low[a]:
                # a floor (on the support) smoothly continuing the inner wall, or enclosed by the rims in front
                # of it (a container seen from above): the rims are the same object's (a wedge between two
                # touching objects is bounded by occluding edges and the support)
                for x in front:
                    union(x, b, "rim occluding a hollow")
            continue
        if (area[a] < cfg.min_whole_px or (attached and appendage)
                or row[b] >= cfg.enclosed_fraction * max(1, perim[a])):
            union(a, b, f"small={area[a] < cfg.min_whole_px} attached={attached} appendage={appendage}")
        elif container[a] and low[a]:
            continue  # a whole container standing on the support: nobody's open top or inside
        elif (attached and curv_sum[a] < cfg.open_top_max_convexity * area[a]
              and low_px[a] < cfg.appendage_max_low_fraction * area[a]):
            # not clearly convex, not standing on the support, met at a crease: the rim and inside of an open
            # container above its outer wall (a closed object's visible faces are flat or convex)
            union(a, b, "open top over its wall")
            container[find(b)] = True
        elif curv_sum[a] < -cfg.inside_curvature * area[a] and front.size:
            # a hollow surface seen over an occluding rim: the inside of the object in front
            union(a, int(front[np.argmax(shared[a, front])]), "inside seen over a rim")
            container[find(a)] = True
    lut = np.array([find(i) for i in range(n + 1)], np.int32)
    lut[0] = 0
    return lut[frag]


def _assign_by_depth(labels: np.ndarray, todo: np.ndarray, depth_m: np.ndarray,
                     same_as: np.ndarray | None = None, iterations: int = 1) -> np.ndarray:
    """Give ``todo`` pixels the label of their 4-neighbour with the closest depth, growing ring by ring.

    With ``same_as``, a pixel only takes labels of neighbours with the same ``same_as`` value. Pixels
    still unlabelled after ``iterations`` rings stay 0. Visits only the ``todo`` pixels.
    """
    h, w = labels.shape
    left = np.flatnonzero((todo & (labels == 0)).ravel())
    if left.size == 0:
        return labels
    out = labels.copy()
    lf = out.ravel()  # a view: updated in place
    zf = depth_m.ravel()
    sf = None if same_as is None else same_as.ravel()
    # only the pixels still to do are visited (a few thousand, not the whole region)
    for _ in range(iterations):
        if left.size == 0:
            break
        row, col = np.divmod(left, w)
        zl = zf[left]
        sl = None if sf is None else sf[left]
        best_l = np.zeros(left.size, lf.dtype)
        best_d = np.full(left.size, np.inf, np.float32)
        for step, inside in ((-w, row > 0), (w, row < h - 1), (-1, col > 0), (1, col < w - 1)):
            nb = np.where(inside, left + step, left)
            nl = np.where(inside, lf[nb], 0)
            d = np.abs(zf[nb] - zl)
            better = (nl > 0) & (d < best_d)
            if sl is not None:
                better &= sf[nb] == sl
            best_l[better] = nl[better]
            best_d[better] = d[better]
        got = best_l > 0
        if not got.any():
            break
        lf[left[got]] = best_l[got]  # every neighbour was read before this ring's update
        left = left[~got]
    return out


def _groups_containing(group: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """Merge groups that one ``whole`` region spans (an inside seen over a rim joins its outside)."""
    ng = int(group.max())
    nw = int(whole.max())
    if ng <= 1 or nw == 0:
        return group
    pairs = np.flatnonzero(np.bincount(whole.ravel().astype(np.int64) * (ng + 1) + group.ravel()))
    w_of, g_of = np.divmod(pairs, ng + 1)
    keep = (w_of > 0) & (g_of > 0)
    w_of, g_of = w_of[keep], g_of[keep]
    first = np.full(nw + 1, -1, np.int64)
    parent = np.arange(ng + 1)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for wl, gl in zip(w_of.tolist(), g_of.tolist(), strict=True):
        if first[wl] < 0:
            first[wl] = gl
        else:
            ra, rb = find(gl), find(int(first[wl]))
            if ra != rb:
                parent[ra] = rb
    lut = np.array([find(i) for i in range(ng + 1)], np.int32)
    return lut[group]


def decompose(above: np.ndarray, jump: np.ndarray, concave: np.ndarray, part_cut: np.ndarray,
              height_m: np.ndarray, depth_m: np.ndarray, filled_m: np.ndarray, lab_filled: np.ndarray,
              curvature: np.ndarray, cfg) -> Decomposition:
    """Label images of the three granularities from the boundary maps (see the module docstring)."""
    group = components(above & ~jump, cfg.min_region_px)
    # far-side jump pixels above the support belong to the farther region next to them
    lost = above & (group == 0)
    if lost.any():
        group = _assign_by_depth(group, lost, depth_m)
    fg = group > 0
    frag = components(fg & ~concave & ~jump, cfg.min_fragment_px)
    frag = assign_nearest(frag, fg, cfg.reassign_max_px, same_as=group)
    frag = _assign_by_depth(frag, fg & (frag == 0), filled_m, group, cfg.regrow_iterations)
    whole = merge_fragments(frag, height_m, depth_m, filled_m, lab_filled, curvature, cfg)
    whole = np.where(fg, whole, 0)
    group = _groups_containing(group, whole)
    part = components(fg & ~concave & ~part_cut & ~jump, cfg.min_fragment_px)
    part = assign_nearest(part, whole > 0, cfg.reassign_max_px, same_as=whole)
    part = _assign_by_depth(part, (whole > 0) & (part == 0), filled_m, whole, cfg.regrow_iterations)
    part = np.where(whole > 0, part, 0)
    return Decomposition(relabel(group), relabel(whole), relabel(part))


def _height_above(depth_m: np.ndarray, rays: np.ndarray, plane: SupportFit) -> np.ndarray:
    """(H, W) float32 signed height above ``plane`` (normal towards the camera: objects on it > 0), metres."""
    n = plane.normal.astype(np.float32)
    kdot = rays[..., 0] * n[0] + rays[..., 1] * n[1] + n[2]
    height = depth_m * kdot
    height += np.float32(plane.offset)
    return height


def _outline_mask(plane: SupportFit, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: inside the plane's image outline (all False when it has none)."""
    mask = np.zeros(shape, np.uint8)
    if plane.outline_uv is not None and len(plane.outline_uv) >= 3:
        cv2.fillConvexPoly(mask, np.ascontiguousarray(plane.outline_uv, np.int32), 1)
    return mask > 0


def _foot_inside(depth_m: np.ndarray, rays: np.ndarray, height_m: np.ndarray, normal: np.ndarray, intr,
                 outline: np.ndarray) -> np.ndarray:
    """(N,) bool: the feet of N points (their projection along ``normal`` onto a plane ``height_m`` below
    them) fall inside ``outline`` ((H, W) bool image mask). ``depth_m`` (N,) metres, ``rays`` (N, 2)."""
    n = np.asarray(normal, np.float32)
    foot_x = rays[:, 0] * depth_m - height_m * n[0]
    foot_y = rays[:, 1] * depth_m - height_m * n[1]
    foot_z = depth_m - height_m * n[2]
    ok = foot_z > 1e-3
    foot_z = np.where(ok, foot_z, 1)
    u = np.round(intr.fx * foot_x / foot_z + intr.cx).astype(np.int64)
    v = np.round(intr.fy * foot_y / foot_z + intr.cy).astype(np.int64)
    hh, ww = outline.shape
    ok &= (u >= 0) & (u < ww) & (v >= 0) & (v < hh)
    out = np.zeros(depth_m.shape, bool)
    out[ok] = outline[v[ok], u[ok]]
    return out


def _remove_raised_islands(support: np.ndarray, height: np.ndarray, image_px: int, cfg) -> np.ndarray:
    """Support pixels minus small near-plane islands raised above the support (a bowl's floor).

    Islands level with the support (the table seen through a mug's handle) stay support. ``support``
    is a crop whose border touches the main support; ``image_px`` is the full image's pixel count.
    """
    sup_lbl = components(support, 1)
    sizes = np.bincount(sup_lbl.ravel())
    sizes[0] = 0
    if sizes.size <= 2:
        return support
    main = sizes >= max(cfg.support_min_image_fraction * image_px, cfg.support_min_fraction * sizes.max())
    for edge in (sup_lbl[0], sup_lbl[-1], sup_lbl[:, 0], sup_lbl[:, -1]):
        main[edge] = True  # whatever reaches the crop border continues outside it
    main[0] = False
    if not (~main[1:]).any() or not main[1:].any():
        return support
    sl = sup_lbl.ravel()
    hs = height.ravel()
    noise = float(np.median(np.abs(hs[main[sl]])))
    mean_h = np.bincount(sl, weights=hs, minlength=sizes.size) / np.maximum(sizes, 1)
    raised = ~main & (mean_h > max(cfg.island_min_height_m, cfg.island_noise_factor * noise))
    raised[0] = False
    return support & ~raised[sup_lbl]


def compute_features(frame: RGBDFrame, cfg) -> FrameFeatures:
    """Run the whole per-frame computation (see :class:`FrameFeatures`)."""
    t = {}
    t0 = time.perf_counter()
    z = frame.depth_m
    intr = frame.intrinsics
    rays = intr.ray_image
    h, w = z.shape
    valid = (z > cfg.min_depth_m) & (z < cfg.max_depth_m)
    z = np.where(valid, z, np.float32(0))
    if cfg.speckle_fill_px > 0:
        z = fill_speckle(z, cfg.speckle_fill_px, cfg.speckle_window_px, cfg.speckle_min_valid_fraction)
        valid = z > 0

    plane, supports = fit_support_plane(z, rays, cfg)
    if plane.found:
        height = _height_above(z, rays, plane)
        margin = z * z
        margin *= np.float32(cfg.height_margin_per_m2)
        margin += np.float32(cfg.height_margin_m)
        # outside the primary support's outline, a secondary support's outline governs (the floor beside
        # the table, with objects of its own) what lies below the primary's plane or nearer above its own:
        # each point stands on the nearest support beneath it (an object at the table's back edge, outside
        # the table's image outline, still stands on the table, not on the floor far below); a support
        # raised above the primary one (a stool on the floor) governs the points whose foot, their
        # projection along its normal onto it, falls inside its outline, wherever they lie in the image
        governed = np.zeros((h, w), bool)
        primary_outline = _outline_mask(plane, (h, w))
        for extra in supports[1:]:
            outline = _outline_mask(extra, (h, w))
            h_extra = _height_above(z, rays, extra)
            if extra.raised:
                sel = valid & ~governed & (h_extra > -margin) & (h_extra < height)
                sel[sel] = _foot_inside(z[sel], rays[sel], h_extra[sel], extra.normal, intr, outline)
            else:
                sel = outline & ~primary_outline & ~governed
                sel &= (height < -margin) | (h_extra < height)
            height[sel] = h_extra[sel]
            governed |= sel
        height[~valid] = 0
        support = valid & (height < margin)
        region = np.zeros((h, w), bool)
        for sup in supports:
            region |= _outline_mask(sup, (h, w))
    else:
        region = np.zeros((h, w), bool)
        height = np.zeros_like(z)
        support = np.zeros_like(valid)
    above = valid & ~support
    t["plane_ms"] = (time.perf_counter() - t0) * 1e3

    # everything else happens inside the bounding box of the pixels above the support (plus a margin)
    t1 = time.perf_counter()
    # (isolated noisy readings above the plane must not blow the region up: erode them away first)
    core = cv2.erode(above.view(np.uint8), np.ones((5, 5), np.uint8)) > 0
    rows = np.flatnonzero(core.any(axis=1))
    cols = np.flatnonzero(core.any(axis=0))
    zeros_i = np.zeros((h, w), np.int32)
    if rows.size == 0:
        empty = Decomposition(zeros_i, zeros_i, zeros_i)
        t["total_ms"] = (time.perf_counter() - t0) * 1e3
        zeros_b = np.zeros((h, w), bool)
        return FrameFeatures(z, z, height, support, zeros_b, zeros_b, plane, [empty], zeros_i,
                             (slice(0, 0), slice(0, 0)), {}, t, supports, region)
    m = int(cfg.hole_max_px) + 8
    crop = (slice(max(0, rows[0] - m), min(h, rows[-1] + 1 + m)), slice(max(0, cols[0] - m), min(w, cols[-1] + 1 + m)))
    if plane.found:
        support[crop] = _remove_raised_islands(support[crop], height[crop], support.size, cfg)
    zc = z[crop]
    above_c = (zc > 0) & ~support[crop]
    lab_c = cv2.cvtColor(np.ascontiguousarray(frame.color[crop]), cv2.COLOR_RGB2Lab).astype(np.float32)
    lab_c *= np.array([100.0 / 255.0, 1.0, 1.0], np.float32)
    lab_c -= np.array([0.0, 128.0, 128.0], np.float32)
    jump_c = depth_jump_far_side(zc, cfg.jump_a_m, cfg.jump_b_per_m)
    conc_c, conv_c, curv_c = crease_maps(zc, rays[crop], intr.fx, intr.fy, cfg)
    cedge_c = color_edges(lab_c, cfg.color_edge_threshold)
    t["edges_ms"] = (time.perf_counter() - t1) * 1e3

    t1 = time.perf_counter()
    filled_c, labf_c = fill_nearest(zc, lab_c)
    # without a support plane no fragment reaches down to a support (the contact rules see infinite height)
    height_c = height[crop] if plane.found else np.full(zc.shape, np.inf, np.float32)
    dec_c = decompose(above_c, jump_c, conc_c, conv_c | cedge_c, height_c, zc, filled_c, labf_c, curv_c, cfg)
    t["label_ms"] = (time.perf_counter() - t1) * 1e3

    t1 = time.perf_counter()
    owner_c = fill_holes(zc, lab_c, dec_c.whole, cfg)
    t["holes_ms"] = (time.perf_counter() - t1) * 1e3

    def full(a, dtype):
        out = np.zeros((h, w), dtype)
        out[crop] = a
        return out

    filled = z.copy()
    filled[crop] = filled_c
    dec = Decomposition(full(dec_c.group, np.int32), full(dec_c.whole, np.int32), full(dec_c.part, np.int32))
    crop_maps = {"lab": lab_c, "lab_filled": labf_c, "convex": conv_c, "color_edge": cedge_c, "curvature": curv_c}
    feats = FrameFeatures(z, filled, height, support, full(jump_c, bool), full(conc_c, bool), plane, [dec],
                          full(owner_c, np.int32), crop, crop_maps, t, supports, region)
    t["total_ms"] = (time.perf_counter() - t0) * 1e3
    return feats


def fill_speckle(z: np.ndarray, max_dist_px: float, window_px: int, min_valid_fraction: float) -> np.ndarray:
    """Depth with scattered dropouts filled from the nearest reading.

    A pixel without depth (0) takes the depth of the nearest valid pixel when that pixel is at most
    ``max_dist_px`` away and at least ``min_valid_fraction`` of its ``window_px`` × ``window_px``
    neighbourhood has depth: dark or shiny surfaces that the sensor reads only in speckles become
    continuous surfaces again, while wide holes (shadows, out-of-range background) stay holes.

    Parameters
    ----------
    z : (H, W) float32
        Depth in metres, 0 = no reading.

    Returns
    -------
    (H, W) float32
        A new array; ``z`` is not modified.
    """
    holes = z == 0
    if not holes.any() or holes.all():
        return z.copy()
    frac = cv2.boxFilter((~holes).astype(np.float32), -1, (window_px, window_px), borderType=cv2.BORDER_REPLICATE)
    out = z.copy()
    todo = np.flatnonzero((holes & (frac >= min_valid_fraction)).ravel())
    if todo.size == 0:
        return out
    # only the candidate pixels are visited: their neighbours within max_dist_px, nearest first
    h, w = z.shape
    r = int(np.floor(max_dist_px))
    offsets = sorted((dy * dy + dx * dx, dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)
                     if 0 < dy * dy + dx * dx <= max_dist_px * max_dist_px)
    row, col = np.divmod(todo, w)
    zf, of = z.ravel(), out.ravel()
    for _, dy, dx in offsets:
        if todo.size == 0:
            break
        inside = (row + dy >= 0) & (row + dy < h) & (col + dx >= 0) & (col + dx < w)
        val = np.where(inside, zf[np.where(inside, todo + dy * w + dx, todo)], 0)
        got = val > 0
        of[todo[got]] = val[got]
        todo, row, col = todo[~got], row[~got], col[~got]
    return out


def fill_nearest(z: np.ndarray, lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth and colour with every hole (depth 0) replaced by those of the nearest valid reading.

    For lookups across holes (which side does a hole pixel face?), never as geometry.
    """
    holes = z == 0
    if not holes.any() or holes.all():
        return z.copy(), lab.copy()
    _, idx = cv2.distanceTransformWithLabels(holes.astype(np.uint8), cv2.DIST_L2, 3,
                                             labelType=cv2.DIST_LABEL_PIXEL)
    vflat = np.flatnonzero(~holes.ravel())
    hflat = np.flatnonzero(holes.ravel())
    src = vflat[idx.ravel()[hflat] - 1]
    filled = z.copy()
    filled.ravel()[hflat] = z.ravel()[src]
    lab_f = lab.copy()
    lab_f.reshape(-1, 3)[hflat] = lab.reshape(-1, 3)[src]
    return filled, lab_f


def fill_holes(z: np.ndarray, lab: np.ndarray, whole: np.ndarray, cfg):
    """Decide pixels without depth from colour and the neighbouring geometry.

    A hole pixel within ``hole_max_px`` of an object (``whole`` label) compares its (smoothed) colour
    with that of the nearest object pixel and of the nearest valid non-object pixel, and joins the
    object only if it is clearly (``hole_color_margin`` times) closer to the object's colour; hole
    pixels that join must also connect to their object through other joined pixels. A hole never
    connects two objects (each hole pixel has one owner) and never splits one.

    Returns
    -------
    hole_owner : (H, W) int32
        ``whole`` label of hole pixels given to an object, 0 otherwise.
    """
    holes = z == 0
    owner = np.zeros(z.shape, np.int32)
    if not holes.any() or holes.all():
        return owner
    hflat = np.flatnonzero(holes.ravel())
    obj = whole > 0
    bg = ~obj & ~holes
    if not obj.any() or not bg.any():
        return owner
    k = 2 * cfg.hole_color_window_px + 1
    lab_s = cv2.blur(lab, (k, k))
    d_o, i_o = cv2.distanceTransformWithLabels((~obj).astype(np.uint8), cv2.DIST_L2, 3,
                                               labelType=cv2.DIST_LABEL_PIXEL)
    near = hflat[d_o.ravel()[hflat] <= cfg.hole_max_px]
    if near.size == 0:
        return owner
    src_o = np.flatnonzero(obj.ravel())[i_o.ravel()[near] - 1]
    # hole components that touch no valid background pixel (nor the crop border) are enclosed by
    # objects: they take the nearest object's label whatever their colour
    hole_lbl = components(holes, 1)
    open_ = np.zeros(int(hole_lbl.max()) + 1, bool)
    ring = cv2.dilate(bg.astype(np.uint8), _SQUARE3) > 0
    open_[hole_lbl[ring & holes]] = True
    open_[hole_lbl[0, :]] = open_[hole_lbl[-1, :]] = True
    open_[hole_lbl[:, 0]] = open_[hole_lbl[:, -1]] = True
    open_[0] = False
    is_open = open_[hole_lbl.ravel()[near]]
    # large holes or holes reaching the crop border (out of range, far background) are never objects
    hsize = np.bincount(hole_lbl.ravel())
    vast = hsize > cfg.hole_max_component_px
    vast[hole_lbl[0, :]] = vast[hole_lbl[-1, :]] = True
    vast[hole_lbl[:, 0]] = vast[hole_lbl[:, -1]] = True
    vast[0] = False
    is_vast = vast[hole_lbl.ravel()[near]]
    # open holes (shadows, out-of-range background, dark or shiny stripes): only pixels closer to the
    # object than to the background, away from the narrow invalid band at silhouettes, and by colour
    d_b, i_b = cv2.distanceTransformWithLabels((~bg).astype(np.uint8), cv2.DIST_L2, 3,
                                               labelType=cv2.DIST_LABEL_PIXEL)
    bflat = np.flatnonzero(bg.ravel())
    src_b = bflat[i_b.ravel()[near] - 1]
    lf = lab_s.reshape(-1, 3)
    c = lab.reshape(-1, 3)[near]
    do = np.linalg.norm(c - lf[src_o], axis=1)
    db = np.linalg.norm(c - lf[src_b], axis=1)
    dist_o = d_o.ravel()[near]
    dist_b = d_b.ravel()[near]
    by_color = (do * cfg.hole_color_margin < db) & (dist_o < dist_b) & (dist_b >= cfg.hole_open_min_bg_px)
    join = ~is_open | (by_color & ~is_vast)
    owner.ravel()[near[join]] = whole.ravel()[src_o[join]]
    # keep joined hole pixels only where they connect to their owner object
    if join.any():
        cand = (owner > 0) | obj
        lbl = components(cand, 1)
        keep_lbl = np.zeros(int(lbl.max()) + 1, bool)
        keep_lbl[lbl[obj]] = True
        owner[~keep_lbl[lbl]] = 0
    return owner
