"""Parallel-jaw grasp planning with boundary-error margin checks.

Pipeline of :func:`plan_grasps` (vectorised over candidates):

1. Object points: every rim point (up to a share of the cap) and a seeded sample of the interior. With a
   support plane, the unseen part under the silhouette is assumed solid: vertical columns from rim points
   down to the plane (exact segments for contacts and widths, a sampling of them as obstacles), and a
   2.5D height map of the object for the "no finger through the object" test. A part mask (``part=True``)
   is not completed.
2. Hand orientations: top-down (approach = -plane normal, closing axes along the object's axes and at
   even angles) and tilted/side approaches around the object. An approach never has a component
   pointing up out of the table (tilt <= 90 deg), so approaching from below is impossible by construction.
3. For each orientation and offset across the finger width, the fingers go as deep as the palm and the
   table allow. The object points between the fingers are split along the closing axis wherever a finger
   fits in a gap: each cluster (a mug's wall, a handle) and the whole extent are candidates; contacts are
   the extreme points along the closing axis, the width their distance.
4. Checks, in order (the first failing one is the grasp's ``rejected_because``): contacts, grasp depth,
   stroke, table, collision of the swept fingers and palm with the scene cloud and with the object's
   solid (unless the camera saw that space empty), friction cone (slope of the silhouette across the
   pad), contacts on uncertain pixels, the boundary-error margins (opening, finger landing), then
   robustness under the eroded, dilated and alternative masks. Each finger starts ``clearance_m`` plus the
   boundary error from its contact, plus ``unseen_clearance_m`` where the object's far side is hidden.
5. Ranking: accepted first, then by score (friction alignment, centring, approach preference, how deep the
   object sits between the fingers, and whether the camera saw the width end to end) plus a small bonus for
   margin beyond the expected error.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from time import perf_counter

import numpy as np

from ..cloud.types import BandLabel, ObjectCloud
from ..core.errors import ConfigError, ShapeError
from ..core.frame import RGBDFrame
from . import collision as col
from . import margins as mg
from .config import GraspConfig
from .gripper import GripperModel, load_gripper
from .types import REJECT_REASONS, GraspSet

log = logging.getLogger(__name__)

_NEIGHBOUR_RADIUS_M = 0.008
#: The default options (frozen, shared).
DEFAULT_CONFIG = GraspConfig()
_COLUMN_SPACING_M = 0.015
_COLUMN_SOURCES = 100
_ANALYTIC_COLUMNS = 300
_HEIGHT_CELL_M = 0.002
_DENSE_POINTS = 6000
#: Dense re-check passes: contacts moved outwards re-centre and re-open the hand, re-checked on the next pass.
_DENSE_PASSES = 3
_FRICTION_BINS = 4
#: A shallow variant of a hand is added when it is at least this much shallower than the deepest one.
_SHALLOW_MIN_STEP_M = 0.008
#: Ranking: accepted grasps by score + _MARGIN_WEIGHT · min(worst-case margin / _MARGIN_SATURATION_MM, 1).
_MARGIN_WEIGHT = 0.1
_MARGIN_SATURATION_MM = 5.0


# --------------------------------------------------------------------------------------------------
# object points
# --------------------------------------------------------------------------------------------------
def _subsample(n: int, keep: np.ndarray, cap: int, rng: np.random.Generator, keep_share: float = 0.6) -> np.ndarray:
    """Seeded indices of at most ``cap`` points: ``keep`` points (rim) fill up to ``keep_share`` of the cap,
    the others (interior) the rest."""
    keep_idx = np.flatnonzero(keep)
    other = np.flatnonzero(~keep)
    n_keep = min(len(keep_idx), max(int(cap * keep_share), cap - len(other)))
    if len(keep_idx) > n_keep:
        keep_idx = rng.choice(keep_idx, n_keep, replace=False)
    room = cap - len(keep_idx)
    if len(other) > room:
        other = rng.choice(other, room, replace=False)
    return np.sort(np.concatenate([keep_idx, other]))


def _with_columns(points: np.ndarray, is_rim: np.ndarray, plane, cfg: GraspConfig,
                  rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Points plus virtual points under rim points down to the plane; returns (points, source index).

    Every ``_COLUMN_SPACING_M`` a virtual point, so that any finger-wide slab (tilted or not) that crosses
    a column contains one of its points; at most ``_COLUMN_SOURCES`` rim points (seeded sample) get columns.
    """
    src = np.arange(len(points))
    if plane is None or not cfg.complete_to_plane:
        return points, src
    h = plane.signed_distance(points)
    sel = np.flatnonzero(is_rim & (h > 2 * cfg.table_noise_m))
    if not len(sel):
        return points, src
    if len(sel) > _COLUMN_SOURCES:
        sel = np.sort((rng or np.random.default_rng(0)).choice(sel, _COLUMN_SOURCES, replace=False))
    n_lv = int(np.ceil(float(h[sel].max()) / _COLUMN_SPACING_M))
    frac = (np.arange(n_lv) + 0.5) / n_lv  # fractions of each column's height, evenly spread
    hs = h[sel]
    levels = np.maximum(hs[None, :] * frac[:, None], cfg.table_noise_m)  # (L, S) target heights
    keep = levels < hs[None, :] - 0.5 * _COLUMN_SPACING_M
    extra = points[sel][None, :, :] - (hs[None, :] - levels)[..., None] * plane.normal
    return (np.concatenate([points, extra[keep]]),
            np.concatenate([src, np.broadcast_to(sel, levels.shape)[keep]]))


# --------------------------------------------------------------------------------------------------
# orientations
# --------------------------------------------------------------------------------------------------
def _cross(a, b) -> np.ndarray:
    """Cross product of two 3-vectors (np.cross is slow on tiny arrays)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _object_axes(points: np.ndarray, normal: np.ndarray, shape) -> np.ndarray:
    """Long footprint axis of the object, perpendicular to ``normal`` (camera frame)."""
    e1 = None
    t = getattr(shape, "camera_from_object", None)
    if t is not None:
        e1 = np.asarray(t.rotation if hasattr(t, "rotation") else np.asarray(t)[:3, :3])[:, 0]
    if e1 is None or abs(float(e1 @ normal)) > 0.9:
        q = points - points.mean(0)
        q = q - np.outer(q @ normal, normal)
        _, _, vt = np.linalg.svd(q[:: max(1, len(q) // 500)], full_matrices=False)
        e1 = vt[0]
    e1 = e1 - (e1 @ normal) * normal
    if np.linalg.norm(e1) < 1e-6:
        e1 = _cross(normal, [1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else _cross(normal, [0.0, 1.0, 0.0])
    return _unit(e1)


@lru_cache(maxsize=16)
def _closing_angles(n_closing_angles: int) -> np.ndarray:
    """Top-down closing angles in [0, pi): 0, pi/2 and ``n_closing_angles`` even steps, without duplicates."""
    angles = np.concatenate([[0.0, np.pi / 2], np.linspace(0.0, np.pi, n_closing_angles, endpoint=False)])
    out = np.unique(np.round(np.mod(angles, np.pi), 6))
    out.setflags(write=False)
    return out


def _cross_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross products of (N, 3) (or broadcastable (3,)) arrays (np.cross is slow on small arrays)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def _orientations(normal: np.ndarray, e1: np.ndarray, cfg: GraspConfig, view_dir_h: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K, 3, 3) rotations with columns (closing x, y, approach z), (K,) tilt in degrees, (K,) preference."""
    normal = np.asarray(normal, np.float64)
    e2 = _cross(normal, e1)
    rots, tilts, pref = [np.zeros((0, 3, 3))], [np.zeros(0)], [np.zeros(0)]
    if cfg.top_down:
        angles = _closing_angles(int(cfg.n_closing_angles))
        c = np.cos(angles)[:, None] * e1 + np.sin(angles)[:, None] * e2  # (A, 3)
        a = np.broadcast_to(-normal, c.shape)
        rots.append(np.stack([c, _cross_rows(a, c), a], axis=2))
        tilts.append(np.zeros(len(angles)))
        pref.append(np.ones(len(angles)))
    phi = np.linspace(0.0, 2 * np.pi, cfg.n_azimuths, endpoint=False)
    d = np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2  # (Z, 3) horizontal directions
    c = _unit(_cross_rows(np.broadcast_to(normal, d.shape), d))
    # the hand comes from -a: prefer hands on the camera's side of the object (seen space)
    cam_side = np.maximum(0.0, -(d @ view_dir_h))
    for tilt in cfg.side_tilts_deg:
        t = math.radians(tilt)
        a = _unit(-np.cos(t) * normal + np.sin(t) * d)
        rots.append(np.stack([c, _cross_rows(a, c), a], axis=2))
        tilts.append(np.full(len(phi), float(tilt)))
        pref.append(0.85 - 0.25 * tilt / 90.0 + 0.15 * cam_side)
    return np.concatenate(rots), np.concatenate(tilts), np.concatenate(pref)


# --------------------------------------------------------------------------------------------------
# the planner
# --------------------------------------------------------------------------------------------------
def _resolve_error(config: GraspConfig, boundary_error_px: float | None) -> float:
    k = config.boundary_error_px if config.boundary_error_px is not None else boundary_error_px
    if k is None:
        raise ConfigError(
            "no boundary error given: pass boundary_error_px (e.g. from graspseg.segment.uncertainty."
            "boundary_error_px(mask_set)) or set grasp.boundary_error_px in the config"
        )
    k = float(k)
    if not math.isfinite(k) or k < 0 or k > 50:
        raise ConfigError(f"boundary_error_px must be in [0, 50] pixels, got {k}")
    return k


def _suggestion(counts: dict, width_excess_mm: float, narrow_mm: float, k: float, gripper: GripperModel) -> str:
    if not counts:
        return ""
    reason = max(counts, key=lambda r: (counts[r], -REJECT_REASONS.index(r)))
    excess = f"{width_excess_mm:.0f} mm" if width_excess_mm >= 0.5 else "less than 1 mm"
    if "too_wide" in counts and width_excess_mm > 0 and reason in ("too_wide", "friction", "no_contact"):
        return (f"object wider than the gripper's stroke by {excess} "
                f"({gripper.name} opens {gripper.max_opening_m * 1000:.0f} mm); use a wider gripper or a part mask")
    return {
        "no_contact": "too few object points between the fingers; check the mask has valid depth",
        "shallow": "the fingers can only hold a sliver of the object (the table or the palm stops them); "
                   "lower min_grasp_depth_m or table_clearance_m, or use longer fingers",
        "too_narrow": f"object narrower than the gripper's minimum opening by {narrow_mm:.0f} mm",
        "too_wide": f"object wider than the gripper's stroke by {excess}",
        "table": "the fingers would touch the table: the object is too flat for this gripper "
                 "(lower table_clearance_m or use thinner fingers)",
        "collision": "every hand pose hits the scene (neighbours or the object itself); "
                     "try side approaches, a part mask, or clear the neighbours",
        "friction": "no antipodal contact pair within the friction cone; "
                    "raise friction_coefficient if the pads grip better",
        "contact_unknown": "the contacts would sit on uncertain boundary pixels (no depth or ambiguous depth); "
                           "refine the mask with another click or re-observe from closer",
        "opening_margin": f"the object fits the stroke but not with a {k:g} px boundary error on each side; "
                          "refine the mask or use a wider gripper",
        "finger_landing": f"the fingers would pass within {k:g} px of the object or its neighbours; "
                          "refine the mask or approach from another side",
        "robustness": f"the grasps do not survive the mask eroded/dilated by {k:g} px or the alternative "
                      "masks; refine the mask",
    }[reason]


def plan_grasps(frame: RGBDFrame, cloud: ObjectCloud, shape=None, gripper: GripperModel | str = "franka_hand",
                config: GraspConfig = DEFAULT_CONFIG, *, boundary_error_px: float | None = None,
                alternative_masks: Sequence[np.ndarray] = (), cloud_config=None, part: bool = False) -> GraspSet:
    """Parallel-jaw grasps on the object of ``cloud``, each checked against the expected boundary error.

    Parameters
    ----------
    frame : RGBDFrame
        The frame the cloud was built from (depth and intrinsics are read for the image-space checks).
    cloud : ObjectCloud
        Object points (camera frame), boundary band, scene points and support plane.
    shape : ShapeEstimate or None
        When given, its ``camera_from_object`` x axis (long footprint axis) seeds the closing axes.
    gripper : GripperModel or str
        A model or the name/path for :func:`load_gripper`.
    config : GraspConfig
    boundary_error_px : float
        Expected mask-boundary error in pixels (e.g. from :func:`graspseg.segment.uncertainty.boundary_error_px`);
        ``config.boundary_error_px`` overrides it when set.
    alternative_masks : sequence of (H, W) bool
        The segmenter's other candidate masks for the robustness re-check.
    cloud_config : optional
        Passed to ``graspseg.cloud.build_object_cloud`` when ``config.rebuild_cloud_for_robustness``.
    part : bool
        The mask is a part of a larger object (a mug's handle, granularity ``part``): it is not completed
        down to the support plane (the rest of the object is in the scene cloud, as an obstacle).

    Returns
    -------
    GraspSet
        Sorted best first; empty (with ``rejected_counts`` and ``suggestion``) when nothing fits.
    """
    t_start = perf_counter()
    timings: dict[str, float] = {}
    gripper = load_gripper(gripper)
    k = _resolve_error(config, boundary_error_px)
    mask = np.asarray(cloud.mask, bool)
    depth = frame.depth_m
    if mask.shape != depth.shape:
        raise ShapeError(f"cloud mask is {mask.shape[::-1]} but the frame is {depth.shape[::-1]} (W, H); "
                         "build the cloud from this frame")
    intr = frame.intrinsics
    f_px = 0.5 * (intr.fx + intr.fy)
    cfg = replace(config, complete_to_plane=False) if part else config
    rng = np.random.default_rng(cfg.seed)
    n_obs_total = len(cloud)
    if n_obs_total < cfg.min_contact_points:
        return GraspSet.empty(
            boundary_error_px=k, gripper=gripper.name,
            suggestion=(f"the mask has {n_obs_total} point(s) with valid depth (need {cfg.min_contact_points}); "
                        "re-observe the object (depth holes) or check the mask"),
        )
    pad = int(math.ceil(k)) + 6
    roi = mg.roi_of(mask, pad)

    # --- object points -----------------------------------------------------------------------------
    pts_all = np.asarray(cloud.points_in_camera, np.float64)
    rim_all = mg.rim_flags(mask, cloud.pixels_uv, roi, width_px=1.5)
    sel = _subsample(len(pts_all), rim_all, cfg.max_object_points, rng)
    obs = pts_all[sel]
    obs_uv = np.asarray(cloud.pixels_uv)[sel]
    obs_lab = np.asarray(cloud.labels)[sel]
    obs_rim = rim_all[sel]
    plane = cloud.plane
    centroid = obs.mean(0)
    if plane is not None:
        normal = plane.normal
    else:
        normal = -centroid / max(np.linalg.norm(centroid), 1e-9)
    # columns under rim points down to the plane (the unseen part is assumed solid): exact, analytic
    # segments for the contacts and widths; a coarse sampling of them as obstacles
    col_idx = np.zeros(0, int)
    col_len = np.zeros(0)
    if plane is not None and cfg.complete_to_plane:
        hh = plane.signed_distance(obs)
        col_idx = np.flatnonzero(obs_rim & (hh > 2 * cfg.table_noise_m))
        if len(col_idx) > _ANALYTIC_COLUMNS:
            col_idx = np.sort(rng.choice(col_idx, _ANALYTIC_COLUMNS, replace=False))
        col_len = hh[col_idx] - cfg.table_noise_m
    # obstacles: the rim points, half of the interior sample, and coarse columns
    obst_sel = obs_rim | (np.arange(len(obs)) % 2 == 0)
    obj_obst, _ = _with_columns(obs[obst_sel], obs_rim[obst_sel], plane, cfg, rng)
    timings["points"] = (perf_counter() - t_start) * 1e3

    # --- orientations and hands ---------------------------------------------------------------------
    e1 = _object_axes(obs, normal, shape)
    view = -centroid - ((-centroid) @ normal) * normal
    view_h = view / max(np.linalg.norm(view), 1e-9)
    rots, tilts, pref = _orientations(normal, e1, cfg, view_h)
    local = np.matmul((obs - centroid).astype(np.float32)[None], rots.astype(np.float32))  # (K, P, 3)
    fw, fd = gripper.finger_width_m, gripper.finger_depth_m
    # offsets across the finger width: n_off evenly spaced slabs, or the middle when the object is narrow
    ly_lo = local[:, :, 1].min(1).astype(np.float64)
    ly_hi = local[:, :, 1].max(1).astype(np.float64)
    n_off = np.where(tilts == 0, cfg.n_offsets, cfg.n_side_offsets)
    single = (ly_hi - ly_lo <= fw) | (n_off == 1)
    n_each = np.where(single, 1, n_off)
    kk = np.repeat(np.arange(len(rots)), n_each)
    j = np.arange(len(kk)) - np.repeat(np.cumsum(n_each) - n_each, n_each)  # index within the orientation
    a0, a1 = ly_lo[kk] + 0.5 * fw, ly_hi[kk] - 0.5 * fw
    frac = j / np.maximum(n_each[kk] - 1, 1)
    s = np.where(single[kk], 0.5 * (ly_lo[kk] + ly_hi[kk]), a0 + frac * (a1 - a0))
    last = (j == n_each[kk] - 1) & ~single[kk]
    s[last] = a1[last]  # as np.linspace: the end point exactly
    g_n = len(kk)
    local_t = np.ascontiguousarray(local.transpose(2, 0, 1))  # (3, K, P): contiguous rows per coordinate
    lx, ly, lz = local_t[0][kk], local_t[1][kk], local_t[2][kk]  # (G, P)
    slab = np.abs(ly - s[:, None]) <= 0.5 * fw
    top = np.where(slab, lz, np.inf).min(1)
    # with columns the object reaches down to the plane: the table limit below bounds the fingertips
    bottom = np.full(g_n, np.inf) if len(col_idx) else np.where(slab, lz, -np.inf).max(1)
    tip = np.minimum(top + fd - cfg.clearance_m, bottom)
    axes_n = np.einsum("kij,i->kj", rots, normal)[kk]  # (G, 3): x, y, z axes dotted with the normal
    if plane is not None:
        h0 = float(plane.signed_distance(centroid[None])[0])
        with np.errstate(invalid="ignore"):  # an empty slab gives inf - inf = nan, zeroed below
            xmid0 = 0.5 * (np.where(slab, lx, np.inf).min(1) + np.where(slab, lx, -np.inf).max(1))
        cn, yn, an = np.abs(axes_n[:, 0]), np.abs(axes_n[:, 1]), axes_n[:, 2]
        need_f = cfg.table_clearance_m + (0.5 * gripper.max_opening_m + gripper.finger_thickness_m) * cn + 0.5 * fw * yn
        need_p = cfg.table_clearance_m + 0.5 * gripper.palm_width_m * cn + 0.5 * gripper.palm_depth_m * yn + fd * an
        need = np.maximum(need_f, need_p)
        base_h = h0 + np.nan_to_num(xmid0) * axes_n[:, 0] + s * axes_n[:, 1]
        down = an < -0.05
        limit = np.where(down, (base_h - need) / np.where(down, -an, 1.0), np.inf)
        tip = np.minimum(tip, limit)
    # each hand also with the fingers only shallow_depth_m past the top of the object in its slab: a target
    # resting on others (a pile) or next to lower neighbours is often held by its upper part only
    g_deep = g_n
    more = np.zeros(0, int)  # the deep hand of each shallow variant (hands g_deep, g_deep + 1, ...)
    if cfg.shallow_depth_m > 0:
        shallow_tip = top + cfg.shallow_depth_m
        more = np.flatnonzero(np.isfinite(top) & np.isfinite(tip) & (shallow_tip < tip - _SHALLOW_MIN_STEP_M))
        if len(more):
            kk, s, top = np.r_[kk, kk[more]], np.r_[s, s[more]], np.r_[top, top[more]]
            tip = np.r_[tip, shallow_tip[more]]
            lx, ly, lz = (np.concatenate([a, a[more]]) for a in (lx, ly, lz))
            axes_n = np.concatenate([axes_n, axes_n[more]])
            g_n = len(kk)
    n_obs = len(obs)
    t_col = np.zeros((g_n, 0))
    if len(col_idx):
        # each column in each hand frame, at the middle of its stretch inside the closing region
        cl = np.moveaxis(local_t[:, :, col_idx][:, kk], 0, -1)  # (G, S, 3), a view with contiguous rows
        feas, t_col = _columns_in_region(cl, col_len, s, tip, axes_n, fw, fd)
        t_col = np.where(feas, t_col, 0.0)
        nanf = np.float32(np.nan)
        lx = np.concatenate([lx, np.where(feas, cl[..., 0] - t_col * axes_n[:, 0:1], nanf)], axis=1)
        ly = np.concatenate([ly, np.where(feas, cl[..., 1] - t_col * axes_n[:, 1:2], nanf)], axis=1)
        lz = np.concatenate([lz, np.where(feas, cl[..., 2] - t_col * axes_n[:, 2:3], nanf)], axis=1)
    with np.errstate(invalid="ignore"):
        inreg_h = (np.abs(ly - s[:, None]) <= 0.5 * fw) & (lz >= (tip - fd)[:, None]) & (lz <= tip[:, None])
    # --- split each hand's closing region into clusters along the closing axis ---------------------
    # A gap wide enough for a finger makes each side a candidate of its own (a mug's wall, a bowl's rim);
    # the whole extent stays a candidate too.
    gap_m = gripper.finger_thickness_m + 2 * cfg.clearance_m
    cand = _clusters(np.where(inreg_h, lx, np.inf), gap_m)
    hand, xmin, xmax, imin, imax, count, inner_l, inner_r = cand
    kk, s, tip, top, t_col = kk[hand], s[hand], tip[hand], top[hand], t_col[hand]
    lx, ly, lz = lx[hand], ly[hand], lz[hand]
    axes_n = axes_n[hand]
    g_n = len(hand)
    ok_pts = (count >= cfg.min_contact_points) & np.isfinite(xmin) & np.isfinite(xmax) & np.isfinite(tip)
    xmin = np.where(ok_pts, xmin, 0.0)
    xmax = np.where(ok_pts, xmax, 0.0)
    tip = np.where(ok_pts, tip, 0.0)
    width = xmax - xmin
    xmid = 0.5 * (xmin + xmax)
    R = rots[kk]  # (G, 3, 3)
    origin = centroid + np.einsum("gij,gj->gi", R, np.stack([xmid, s, tip], 1))
    # combined index: < n_obs an observed point, else a column (point of its source, lowered by t)
    def _point(i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        is_col = i >= n_obs
        j = np.where(is_col, i - n_obs, 0)
        source = np.where(is_col, col_idx[j] if len(col_idx) else 0, i)
        t = np.where(is_col, t_col[np.arange(len(i)), j] if t_col.shape[1] else 0.0, 0.0)
        return obs[source] - t[:, None] * normal, source

    (c0, s0), (c1, s1) = _point(imin), _point(imax)
    contacts = np.stack([c0, c1], axis=1)  # (G, 2, 3)
    csrc = np.stack([s0, s1], axis=1)  # (G, 2) indices into obs
    c_uv = obs_uv[csrc]  # (G, 2, 2)
    c_lab = obs_lab[csrc]
    c_z = obs[csrc][..., 2]
    err_m = k * c_z.max(1) / f_px
    pix_m = c_z.mean(1) / f_px
    unseen = _unseen_sides(contacts, R[:, :, 0], normal)
    opening, shift = _hand_placement(width, err_m, unseen, gripper, cfg)
    origin += shift[:, None] * R[:, :, 0]
    xmid = xmid + shift
    timings["candidates"] = (perf_counter() - t_start) * 1e3

    reason = np.full(g_n, "", dtype="<U16")

    def reject(cond: np.ndarray, name: str) -> None:
        reason[(reason == "") & cond] = name

    reject(~ok_pts, "no_contact")
    # how far the object reaches into the closing region (from the fingertips back towards the palm)
    with np.errstate(invalid="ignore"):
        in_cl = inreg_h[hand] & (lx >= xmin[:, None] - 1e-6) & (lx <= xmax[:, None] + 1e-6)
    grasp_depth = tip - np.where(in_cl, lz, np.inf).min(1)
    reject(~(grasp_depth >= cfg.min_grasp_depth_m), "shallow")
    reject(width + 2 * cfg.clearance_m > gripper.max_opening_m, "too_wide")
    reject(width <= gripper.min_opening_m, "too_narrow")
    if plane is not None:
        low = col.lowest_height(plane.signed_distance(origin), axes_n, opening, gripper)
        reject(low < cfg.table_clearance_m - 1e-9, "table")

    # --- collision and landing clearance against the scene ------------------------------------------
    scene = np.asarray(cloud.scene_points_in_camera, np.float64).reshape(-1, 3)
    radius = float(np.linalg.norm(obs - centroid, axis=1).max()) + cfg.scene_radius_m
    if len(scene):
        ds = scene - centroid
        scene = scene[np.einsum("ij,ij->i", ds, ds) <= radius * radius]
        if plane is not None:  # the table is checked against the plane: sample the obstacles standing on it
            scene = scene[plane.signed_distance(scene) > cfg.table_noise_m]
        if len(scene) > cfg.max_scene_points:
            scene = scene[rng.choice(len(scene), cfg.max_scene_points, replace=False)]
    obst = np.concatenate([scene, obj_obst]) if len(scene) else obj_obst
    if plane is not None:
        obst = obst[plane.signed_distance(obst) > cfg.table_noise_m]
    landing = np.full(g_n, np.inf)
    neighbour = np.full(g_n, np.inf)  # clearance of the swept fingers from everything but the target
    # the scene points come first in obst (all above the table already); the target's own pixels (its mask,
    # dilated by the error and a rim) are not neighbours
    nb_idx = np.zeros(0, int)
    if len(scene):
        su = np.rint(intr.fx * scene[:, 0] / scene[:, 2] + intr.cx).astype(int)
        sv = np.rint(intr.fy * scene[:, 1] / scene[:, 2] + intr.cy).astype(int)
        inside = (su >= 0) & (sv >= 0) & (su < intr.width) & (sv < intr.height)
        own = np.zeros(len(scene), bool)
        own[inside] = mg.dilate(mask, int(math.ceil(k)) + 2)[sv[inside], su[inside]]
        nb_idx = np.flatnonzero(~own)

    def clearances(idx: np.ndarray) -> np.ndarray:
        """Hits of the swept hand at grasps ``idx``; fills landing (all obstacles) and neighbour (scene only)."""
        loc = col.to_grasp_frames(obst, origin[idx], R[idx])
        hits, clear = col.finger_palm_tests(loc, opening[idx], gripper, cfg.approach_distance_m)
        landing[idx] = clear
        if len(nb_idx):
            neighbour[idx] = col.finger_palm_tests(loc[:, nb_idx], opening[idx], gripper, cfg.approach_distance_m)[1]
        return hits

    alive = np.flatnonzero(reason == "")
    if len(alive) and len(obst):
        coll = np.zeros(g_n, bool)
        coll[alive] = clearances(alive) >= cfg.collision_min_points
        reject(coll, "collision")
    # fingers must not pass through the solid object: with a support plane every object point stands on a
    # solid column (2.5D height map); a finger point under it is blocked unless the camera saw it empty. Without a plane only fingers placed in a gap are checked (seen empty).
    alive = np.flatnonzero(reason == "")
    if plane is None:
        alive = alive[(inner_l | inner_r)[alive]]
    if len(alive):
        blocked = _fingers_blocked(frame, origin[alive], R[alive], opening[alive], gripper, cfg, plane, obs,
                                   inner_l[alive], inner_r[alive])
        through = np.zeros(g_n, bool)
        through[alive] = blocked
        reject(through, "collision")
    timings["collision"] = (perf_counter() - t_start) * 1e3

    # --- friction: slope of the silhouette across the pad, seen along the approach -----------------
    cos_f = np.zeros((g_n, 2))

    def friction(ga: np.ndarray) -> None:
        """Fill cos_f[ga]: cosine between each contact's normal and the closing axis.

        The extreme closing coordinate is taken in bins across the finger width on each side; the median
        slope between neighbouring bins gives the angle of the surface normal (a corner fails)."""
        if not len(ga):
            return
        half = max(0.5 * fw, _NEIGHBOUR_RADIUS_M)
        if half == 0.5 * fw:  # the span across the pad is the closing region between the contacts
            span = in_cl[ga]
        else:
            dy = np.nan_to_num(ly[ga] - s[ga, None], nan=1e3)
            lxg = lx[ga]
            span = (lz[ga] >= (tip[ga] - fd)[:, None]) & (lz[ga] <= tip[ga][:, None]) & (np.abs(dy) <= half)
            span &= (lxg >= xmin[ga, None] - 1e-6) & (lxg <= xmax[ga, None] + 1e-6)
        edges = np.linspace(-half, half, _FRICTION_BINS + 1)
        # extreme closing coordinate per (hand, bin), over the points in the span only
        rr, cc = np.nonzero(span)
        gr = ga[rr]
        d_in = ly[gr, cc] - s[gr]
        key = rr * _FRICTION_BINS + np.clip(((d_in + half) / (2 * half) * _FRICTION_BINS).astype(np.int8),
                                            0, _FRICTION_BINS - 1)
        x_in = lx[gr, cc].astype(np.float64)
        lo_b = np.full(len(ga) * _FRICTION_BINS, np.inf)
        hi_b = np.full(len(ga) * _FRICTION_BINS, -np.inf)
        np.minimum.at(lo_b, key, x_in)
        np.maximum.at(hi_b, key, x_in)
        lo_b = np.where(np.isfinite(lo_b), lo_b, np.nan).reshape(len(ga), _FRICTION_BINS)
        hi_b = np.where(np.isfinite(hi_b), hi_b, np.nan).reshape(len(ga), _FRICTION_BINS)
        bin_w = edges[1] - edges[0]
        for j, edge in enumerate((lo_b, hi_b)):
            slopes = np.abs(np.diff(edge, axis=1)) / bin_w  # (n, BINS - 1), NaN where a bin is empty
            valid = np.isfinite(slopes)
            nv = valid.sum(1)
            srt = np.sort(np.where(valid, slopes, np.inf), axis=1)
            med = srt[np.arange(len(ga)), np.maximum(nv - 1, 0) // 2]
            # an outline uncertain by the boundary error makes neighbouring bins differ by about that much: only
            # the slope beyond it tells that the surface turns against the pad; a corner (45 deg or more) always does
            med = np.where(med >= 1.0, med, np.maximum(med - err_m[ga] / bin_w, 0.0))
            # the contact must span most of the pad (at least three of the four bins): a sliver is no grip
            cos_f[ga, j] = np.where(nv >= _FRICTION_BINS - 2, 1.0 / np.sqrt(1.0 + np.minimum(med, 1e6) ** 2), 0.0)

    friction(np.flatnonzero(reason == ""))
    cone = math.cos(math.atan(cfg.friction_coefficient))
    reject((cos_f < cone).any(1), "friction")

    # --- contacts on uncertain pixels, and the margins ---------------------------------------------
    point_pixels = np.zeros(mask.shape, bool)
    point_pixels[cloud.pixels_uv[:, 1], cloud.pixels_uv[:, 0]] = True
    cert = mg.certainty_distance_px(mask, depth, cloud.band, roi, rim_budget_px=k, point_pixels=point_pixels)
    cu = np.clip(c_uv[..., 0] - roi[1].start, 0, cert.shape[1] - 1)
    cv = np.clip(c_uv[..., 1] - roi[0].start, 0, cert.shape[0] - 1)
    c_cert = cert[cv, cu].astype(np.float64)  # (G, 2)
    reject((c_lab != BandLabel.OBJECT).any(1) | (c_cert <= 0).any(1), "contact_unknown")
    opening_m_margin = _opening_margin_m(width, err_m, gripper, cfg)
    contact_px_each = c_cert - k
    contact_mm_each = contact_px_each * c_z / f_px * 1e3
    landing_m_margin = landing - err_m
    margins = {
        "opening_mm": opening_m_margin * 1e3,
        "opening_px": opening_m_margin / pix_m,
        "contact_mm": contact_mm_each.min(1),
        "contact_px": contact_px_each.min(1),
        "finger_landing_mm": np.minimum(landing_m_margin, 1.0) * 1e3,
        "finger_landing_px": np.minimum(landing_m_margin, 1.0) / pix_m,
        "error_mm": err_m * 1e3,
    }
    reject(margins["opening_mm"] < 0, "opening_margin")
    reject(margins["finger_landing_mm"] < 0, "finger_landing")
    # depth a leaking mask drags in at each contact (image direction of the outward closing axis)
    outward = np.stack([-R[:, :, 0], R[:, :, 0]], axis=1)  # (G, 2, 3)
    tip_pts = contacts + outward * 0.01
    uv0 = contacts[..., :2] / contacts[..., 2:3]
    uv1 = tip_pts[..., :2] / np.maximum(tip_pts[..., 2:3], 1e-6)
    out_uv = (uv1 - uv0) * np.array([intr.fx, intr.fy])
    leak = mg.leak_depth_m(depth, c_uv.reshape(-1, 2), out_uv.reshape(-1, 2), c_z.reshape(-1), k).reshape(g_n, 2)
    margins["leak_depth_mm"] = leak.max(1) * 1e3
    margins["neighbour_clearance_mm"] = np.minimum(neighbour, 1.0) * 1e3
    timings["margins"] = (perf_counter() - t_start) * 1e3

    # --- robustness: eroded, dilated and alternative masks -----------------------------------------
    robustness = np.ones(g_n)
    alive = np.flatnonzero(reason == "")
    # perturbed masks as (crop, ROI): the eroded and dilated masks stay inside the padded ROI (pad > r_px)
    perturbed: list[tuple[np.ndarray, tuple[slice, slice]]] = []
    r_px = int(math.ceil(k - 1e-9))
    if cfg.erode_dilate and r_px > 0:
        m_roi = mask[roi]
        perturbed += [(mg.erode(m_roi, r_px), roi), (mg.dilate(m_roi, r_px), roi)]
    if cfg.use_alternative_masks:
        n_mask = int(np.count_nonzero(mask[roi]))
        for m in alternative_masks:
            m = np.asarray(m, bool)
            if m.shape != mask.shape:
                raise ShapeError(f"alternative mask is {m.shape}, the frame is {mask.shape}")
            m_box = mg.roi_of(m, pad)
            if m_box[0].stop <= m_box[0].start:  # empty
                continue
            n_m = int(np.count_nonzero(m[m_box]))
            n_and = int(np.count_nonzero(m[roi] & mask[roi]))
            if n_and == n_m == n_mask:  # the same mask
                continue
            # another outline of the same object; a different part or group is not boundary error
            iou = n_and / max(n_m + n_mask - n_and, 1)
            if iou >= cfg.alternative_min_iou:
                perturbed.append((m[m_box], m_box))
    n_budget = 2 if (cfg.erode_dilate and r_px > 0) else 0  # the first two: the error budget itself
    if len(alive) and perturbed:
        survived = np.zeros(len(alive))
        budget_ok = np.ones(len(alive), bool)
        for j, (m, m_roi) in enumerate(perturbed):
            p_pts = _perturbed_points(frame, m, m_roi, pad, plane, cfg, rng, cloud_config)
            ok = _survives(p_pts, origin[alive], R[alive], opening[alive], gripper, cfg)
            survived += ok
            if j < n_budget:
                budget_ok &= ok
        robustness[alive] = survived / len(perturbed)
        fail = np.zeros(g_n, bool)
        fail[alive] = ~budget_ok | (robustness[alive] < cfg.min_robustness - 1e-9)
        reject(fail, "robustness")
    margins["robustness"] = robustness
    timings["robustness"] = (perf_counter() - t_start) * 1e3

    # --- dense re-check: the surviving grasps against a denser sample of the cloud -----------------
    # (the candidates were evaluated on a sample; a contact between sample points can sit further out).
    # A dense extreme beyond a contact becomes the contact: the width is re-measured, the hand re-centred
    # between the contacts and re-opened to width + 2·(clearance + error), so each finger keeps
    # clearance + error from its contact; the moved hand is checked again (table, scene, solid object, and
    # the dense points on the next pass). A contact still moving on the last pass is a finger landing on it.
    step = max(1, len(pts_all) // _DENSE_POINTS)
    dense = pts_all[::step]
    dense_uv = np.asarray(cloud.pixels_uv)[::step]
    dense_lab = np.asarray(cloud.labels)[::step]
    check = np.flatnonzero(reason == "")
    for it in range(_DENSE_PASSES):
        alive = check[reason[check] == ""]
        if not len(alive):
            break
        loc = col.to_grasp_frames(dense, origin[alive], R[alive])
        dx, dy_, dz = loc[..., 0], loc[..., 1], loc[..., 2]
        reach = (0.5 * opening[alive] + gripper.finger_thickness_m)[:, None]
        region = (np.abs(dy_) <= 0.5 * fw) & (dz >= -fd) & (dz <= 0) & (np.abs(dx) <= reach)
        dmin = np.where(region, dx, np.inf).min(1)
        dmax = np.where(region, dx, -np.inf).max(1)
        hits, _ = col.finger_palm_tests(loc, opening[alive], gripper, cfg.approach_distance_m)
        half = 0.5 * opening[alive]
        bad = (hits >= cfg.collision_min_points) | ~((dmin > -half) & (dmax < half))
        fail = np.zeros(g_n, bool)
        fail[alive] = bad
        reject(fail, "collision")
        i_lo = np.where(region, dx, np.inf).argmin(1)
        i_hi = np.where(region, dx, -np.inf).argmax(1)
        changed = np.zeros(g_n, bool)
        for side, d_ext, i_ext in ((0, dmin, i_lo), (1, dmax, i_hi)):
            local_cur = np.einsum("gi,gi->g", contacts[alive, side] - origin[alive], R[alive][:, :, 0])
            further = ~bad & np.isfinite(d_ext) & ((d_ext < local_cur - 1e-6) if side == 0 else (d_ext > local_cur + 1e-6))
            idx = alive[further]
            if it == _DENSE_PASSES - 1:  # still moving after the re-centred passes: a finger lands on the object
                last = np.zeros(g_n, bool)
                last[idx] = True
                reject(last, "collision")
                continue
            # a dense extreme on an UNKNOWN band point is never a contact
            unk = np.zeros(g_n, bool)
            unk[idx[dense_lab[i_ext[further]] != BandLabel.OBJECT]] = True
            reject(unk, "contact_unknown")
            contacts[idx, side] = dense[i_ext[further]]
            c_uv[idx, side] = dense_uv[i_ext[further]]
            c_z[idx, side] = dense[i_ext[further], 2]
            changed[idx] = True
        upd = np.flatnonzero(changed & (reason == ""))
        if not len(upd):
            break
        x_axis = R[upd][:, :, 0]
        c_loc = np.einsum("gsi,gi->gs", contacts[upd] - origin[upd, None, :], x_axis)  # (U, 2) along closing
        width[upd] = c_loc[:, 1] - c_loc[:, 0]
        err_m[upd] = k * c_z[upd].max(1) / f_px
        pix_m[upd] = c_z[upd].mean(1) / f_px
        unseen[upd] = _unseen_sides(contacts[upd], x_axis, normal)
        opening[upd], shift = _hand_placement(width[upd], err_m[upd], unseen[upd], gripper, cfg)
        shift += 0.5 * (c_loc[:, 0] + c_loc[:, 1])  # centred between the contacts, then the unseen allowance
        origin[upd] += shift[:, None] * x_axis
        xmid[upd] += shift
        if plane is not None:
            low_u = col.lowest_height(plane.signed_distance(origin[upd]), axes_n[upd], opening[upd], gripper)
            tbl = np.zeros(g_n, bool)
            tbl[upd] = low_u < cfg.table_clearance_m - 1e-9
            reject(tbl, "table")
        if len(obst):
            coll_u = np.zeros(g_n, bool)
            coll_u[upd] = clearances(upd) >= cfg.collision_min_points
            reject(coll_u, "collision")
        blk = upd if plane is not None else upd[(inner_l | inner_r)[upd]]
        if len(blk):
            blocked_u = np.zeros(g_n, bool)
            blocked_u[blk] = _fingers_blocked(frame, origin[blk], R[blk], opening[blk], gripper, cfg, plane, obs,
                                              inner_l[blk], inner_r[blk])
            reject(blocked_u, "collision")
        lm = np.minimum(landing[upd] - err_m[upd], 1.0)
        margins["finger_landing_mm"][upd] = lm * 1e3
        margins["finger_landing_px"][upd] = lm / pix_m[upd]
        om = _opening_margin_m(width[upd], err_m[upd], gripper, cfg)
        margins["opening_mm"][upd] = om * 1e3
        margins["opening_px"][upd] = om / pix_m[upd]
        cu2 = np.clip(c_uv[upd, :, 0] - roi[1].start, 0, cert.shape[1] - 1)
        cv2_ = np.clip(c_uv[upd, :, 1] - roi[0].start, 0, cert.shape[0] - 1)
        cc = cert[cv2_, cu2].astype(np.float64)
        margins["contact_px"][upd] = (cc - k).min(1)
        margins["contact_mm"][upd] = ((cc - k) * c_z[upd] / f_px * 1e3).min(1)
        margins["error_mm"][upd] = err_m[upd] * 1e3
        unknown = np.zeros(g_n, bool)
        unknown[upd] = (cc <= 0).any(1)
        reject(unknown, "contact_unknown")
        sel_upd = np.zeros(g_n, bool)
        sel_upd[upd] = True
        reject(sel_upd & (margins["opening_mm"] < 0), "opening_margin")
        reject(sel_upd & (margins["finger_landing_mm"] < 0), "finger_landing")
        check = upd
    timings["dense"] = (perf_counter() - t_start) * 1e3

    # --- shallow variants stand in only where the deep hand hits something ------------------------
    # (a neighbour, the table); where the deep hand fails for a reason of the object itself (too wide, friction,
    # margins) the shallow one inherits that reason, and where it is accepted the shallow one is not listed
    keep = np.ones(g_n, bool)
    if len(more):
        sh = np.flatnonzero(hand >= g_deep)
        deep_hand = more[hand[sh] - g_deep]
        dp = np.flatnonzero(hand < g_deep)
        hit = np.isin(reason[dp], ("collision", "table"))
        n_deep = np.bincount(hand[dp], minlength=g_deep)
        n_hit = np.bincount(hand[dp], weights=hit, minlength=g_deep)
        n_acc = np.bincount(hand[dp], weights=reason[dp] == "", minlength=g_deep)
        first = np.full(g_deep, -1)
        first[hand[dp][::-1]] = dp[::-1]  # the first deep candidate of each hand
        stands_in = (n_deep[deep_hand] > 0) & (n_hit[deep_hand] == n_deep[deep_hand])
        keep[sh[n_acc[deep_hand] > 0]] = False
        inherit = sh[~stands_in & (n_acc[deep_hand] == 0) & (first[deep_hand] >= 0)]
        reason[inherit] = reason[first[deep_hand[~stands_in & (n_acc[deep_hand] == 0) & (first[deep_hand] >= 0)]]]
        reason[sh[~stands_in & (first[deep_hand] < 0)]] = "no_contact"
        reason[~keep] = "no_contact"  # a duplicate of an accepted deep grasp: not listed, not counted
    # --- score, ranking, result ---------------------------------------------------------------------
    friction_term = np.clip(cos_f.mean(1), 0.0, 1.0)
    l0 = local[0, :, :2]
    radius_xy = max(float((l0.max(0) - l0.min(0)).max()) * 0.5, 1e-3)
    off = np.hypot(xmid, s) / radius_xy
    centring = np.clip(1.0 - off, 0.0, 1.0)
    depth_fill = np.clip((tip - np.maximum(top, tip - fd)) / fd, 0.0, 1.0)
    depth_fill = np.where(np.isfinite(depth_fill), depth_fill, 0.0)
    # a width the camera saw end to end (both contacts on the side silhouettes) over one whose far side is hidden
    seen = 1.0 - unseen.max(1)
    score = 0.3 * friction_term + 0.2 * centring + 0.2 * pref[kk] + 0.1 * depth_fill + 0.2 * seen
    accepted = reason == ""
    worst = np.minimum(margins["opening_mm"], margins["finger_landing_mm"])
    worst = np.where(np.isfinite(worst), worst, -1e3)
    counts = {r: int((keep & (reason == r)).sum()) for r in REJECT_REASONS if (keep & (reason == r)).any()}
    # accepted first; then the score, with a small bonus for margin beyond the expected error (saturating at
    # _MARGIN_SATURATION_MM: past that, more slack does not make a grasp more likely to hold)
    margins["neighbour_clearance_mm"] = np.minimum(neighbour, 1.0) * 1e3  # after the dense re-check moved hands
    rank_key = score + _MARGIN_WEIGHT * np.clip(worst / _MARGIN_SATURATION_MM, 0.0, 1.0)
    order = np.lexsort((-rank_key, ~accepted))
    # keep every accepted grasp (up to max_grasps) and the best-explained rejections after them
    order = order[: cfg.max_grasps]
    order = order[(ok_pts[order] | accepted[order]) & keep[order]]
    wide = reason == "too_wide"
    if wide.any() and not accepted.any():
        friction(np.flatnonzero(wide))
    if (wide & (cos_f >= cone).all(1)).any():  # the narrowest stable (friction-cone) cross-section
        wide &= (cos_f >= cone).all(1)
    excess_mm = float(((width + 2 * cfg.clearance_m - gripper.max_opening_m)[wide]).min() * 1e3) if wide.any() else 0.0
    narrow = reason == "too_narrow"
    narrow_mm = float((gripper.min_opening_m - width[narrow]).max() * 1e3) if narrow.any() else 0.0
    suggestion = "" if accepted.any() else _suggestion(counts, excess_mm, narrow_mm, k, gripper)
    cam_from_grasp = np.zeros((g_n, 4, 4))
    cam_from_grasp[:, :3, :3] = R
    cam_from_grasp[:, :3, 3] = origin
    cam_from_grasp[:, 3, 3] = 1.0
    base_from_grasp = None
    if cloud.base_from_camera is not None:
        base_from_grasp = np.einsum("ij,gjk->gik", cloud.base_from_camera.matrix, cam_from_grasp[order])
    timings["total"] = (perf_counter() - t_start) * 1e3
    log.debug("plan_grasps: %d candidates, %d accepted, %s", g_n, int(accepted.sum()), counts)
    return GraspSet(
        camera_from_grasp=cam_from_grasp[order], width_m=width[order], opening_m=opening[order],
        approach=R[order][:, :, 2], closing=R[order][:, :, 0], contacts_in_camera=contacts[order],
        contacts_uv=c_uv[order].astype(np.float64), score=score[order],
        margins={key: v[order] for key, v in margins.items()}, worst_case_margin_mm=worst[order],
        accepted=accepted[order], rejected_because=reason[order], boundary_error_px=k,
        base_from_grasp=base_from_grasp, rejected_counts=counts, suggestion=suggestion, gripper=gripper.name,
        n_candidates=int(keep.sum()), timings_ms={key: round(v, 3) for key, v in timings.items()},
    )


def _columns_in_region(cl: np.ndarray, length: np.ndarray, s: np.ndarray, tip: np.ndarray, axes_n: np.ndarray,
                       fw: float, fd: float) -> tuple[np.ndarray, np.ndarray]:
    """Which vertical columns cross each hand's closing region, and where.

    A column starts at a rim point (hand coordinates ``cl`` (G, S, 3)) and runs down the plane normal for
    ``length`` (S,) metres: ``q(t) = cl - t * v`` with ``v = axes_n`` (G, 3), ``t`` in ``[0, length]``. The
    region is ``|y - s| <= fw/2`` and ``tip - fd <= z <= tip``.

    Returns
    -------
    feasible : (G, S) bool
    t_mid : (G, S) float, the middle of the stretch inside the region
    """
    lo = np.zeros(cl.shape[:2], np.float32)
    hi = np.broadcast_to(length[None, :], cl.shape[:2]).astype(np.float32)

    def clip(lo, hi, q, v, a, b):  # a <= q - t v <= b
        v = v[:, None]
        small = np.abs(v) < 1e-9
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (q - b[:, None]) / v, (q - a[:, None]) / v
        inside = (q >= a[:, None]) & (q <= b[:, None])
        tl = np.where(small, np.where(inside, -np.inf, np.inf), np.minimum(t1, t2))
        th = np.where(small, np.where(inside, np.inf, -np.inf), np.maximum(t1, t2))
        return np.maximum(lo, tl), np.minimum(hi, th)

    lo, hi = clip(lo, hi, cl[..., 1], axes_n[:, 1], s - 0.5 * fw, s + 0.5 * fw)
    lo, hi = clip(lo, hi, cl[..., 2], axes_n[:, 2], tip - fd, tip)
    feasible = lo <= hi
    return feasible, 0.5 * (np.where(feasible, lo, 0.0) + np.where(feasible, hi, 0.0))


def _clusters(x: np.ndarray, gap_m: float):
    """Clusters of the finite values of each row of ``x`` (H, P) separated by gaps > ``gap_m``.

    Returns per candidate (clusters, plus the whole extent of rows with several clusters, plus an empty
    candidate for rows with no value): hand row, xmin, xmax, index of the min and max point, count, and
    whether the left/right finger sits in a gap (another cluster beyond it).
    """
    h, p = x.shape
    # only the finite values, sorted by (row, value) in one flat sort
    r0, c0 = np.nonzero(np.isfinite(x))
    vals = x[r0, c0]
    if len(vals):
        v_lo, v_hi = float(vals.min()), float(vals.max())
        key = r0 + 0.5 * (vals.astype(np.float64) - v_lo) / max(v_hi - v_lo, 1e-12)  # row + [0, 0.5)
        order = np.argsort(key, kind="stable")
    else:
        order = np.zeros(0, np.int64)
    r, sv, sc = r0[order], vals[order], c0[order]
    same_row = np.zeros(len(r), bool)
    same_row[1:] = r[1:] == r[:-1]
    new = ~same_row
    with np.errstate(invalid="ignore"):
        new[1:] |= sv[1:] - sv[:-1] > x.dtype.type(gap_m)
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(r)] - 1
    hand = r[starts]
    lo, hi = sv[starts], sv[ends]
    i_lo, i_hi = sc[starts], sc[ends]
    cnt = ends - starts + 1
    n_cl = np.bincount(hand, minlength=h)
    first = np.r_[True, hand[1:] != hand[:-1]]
    last = np.r_[hand[1:] != hand[:-1], True]
    multi = n_cl[hand] > 1
    inner_l = multi & ~first
    inner_r = multi & ~last
    # whole extent of rows with several clusters
    rows_m = np.flatnonzero(n_cl > 1)
    f_idx = np.flatnonzero(first & multi)
    l_idx = np.flatnonzero(last & multi)
    tot = np.bincount(hand, weights=cnt, minlength=h)
    empty = np.flatnonzero(n_cl == 0)
    z = np.zeros(len(empty))
    out = (
        np.concatenate([hand, rows_m, empty]),
        np.concatenate([lo, lo[f_idx], z + np.nan]),
        np.concatenate([hi, hi[l_idx], z + np.nan]),
        np.concatenate([i_lo, i_lo[f_idx], z.astype(int)]),
        np.concatenate([i_hi, i_hi[l_idx], z.astype(int)]),
        np.concatenate([cnt, tot[rows_m], z]).astype(int),
        np.concatenate([inner_l, np.zeros(len(rows_m) + len(empty), bool)]),
        np.concatenate([inner_r, np.zeros(len(rows_m) + len(empty), bool)]),
    )
    order_c = np.argsort(out[0], kind="stable")
    return tuple(a[order_c] for a in out)


def _unseen_sides(contacts: np.ndarray, closing: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """(G, 2) in [0, 1]: how far beyond each contact the camera could not see, along the closing axis.

    The outward direction of contact 0 is −x, of contact 1 +x; its part along the support plane (the object is
    bounded by the plane below) is compared with the camera ray through the contact: 1 when it points straight
    away from the camera (the far side of the object, only its silhouette seen), 0 when it points sideways or
    towards the camera (the extent there is observed).

    Parameters
    ----------
    contacts : (G, 2, 3) float, camera frame, metres
    closing : (G, 3) float, unit closing axes (grasp x) in the camera frame
    normal : (3,) float, support-plane normal (or the direction towards the camera without a plane)
    """
    normal = np.asarray(normal, np.float64)
    rays = contacts / np.maximum(np.linalg.norm(contacts, axis=2, keepdims=True), 1e-9)
    x_h = closing - (closing @ normal)[:, None] * normal  # along the plane
    out = np.stack([-np.einsum("gi,gi->g", x_h, rays[:, 0]), np.einsum("gi,gi->g", x_h, rays[:, 1])], axis=1)
    return np.clip(out, 0.0, 1.0)


def _hand_placement(width: np.ndarray, err_m: np.ndarray, unseen: np.ndarray, gripper: GripperModel,
                    cfg: GraspConfig) -> tuple[np.ndarray, np.ndarray]:
    """Opening (G,) and the shift (G,) of the hand centre along +x from the contacts' midpoint, metres.

    Each finger starts ``clearance_m`` + the boundary error from its contact, plus ``unseen_clearance_m`` times
    :func:`_unseen_sides` where the object may reach further than seen (a round object's far side): the
    allowance uses what the stroke leaves, scaled down together when both do not fit. The opening is capped by
    the stroke (a grasp that needs more fails its opening margin).
    """
    base = width + 2 * (cfg.clearance_m + err_m)
    extra = cfg.unseen_clearance_m * np.asarray(unseen, np.float64)  # (G, 2)
    room = np.maximum(gripper.max_opening_m - base, 0.0)
    total = extra.sum(1)
    scale = np.where(total > room, room / np.maximum(total, 1e-12), 1.0)
    extra = extra * scale[:, None]
    opening = np.minimum(gripper.max_opening_m, base + extra.sum(1))
    return opening, 0.5 * (extra[:, 1] - extra[:, 0])


def _opening_margin_m(width: np.ndarray, err_m: np.ndarray, gripper: GripperModel, cfg: GraspConfig) -> np.ndarray:
    """Slack (m) of the planned opening ``width + 2·(clearance + error)`` inside the stroke; < 0 = does not fit.

    The smaller of what is left to the maximum opening and what the object, shrunk by the error on both sides,
    keeps above the minimum opening. Shapes: (G,) in, (G,) out.
    """
    return np.minimum(gripper.max_opening_m - width - 2 * (err_m + cfg.clearance_m),
                      width - 2 * err_m - gripper.min_opening_m)


def _fingers_blocked(frame: RGBDFrame, origins: np.ndarray, rots: np.ndarray, opening: np.ndarray,
                     gripper: GripperModel, cfg: GraspConfig, plane, obs: np.ndarray, inner_l: np.ndarray,
                     inner_r: np.ndarray, tol_m: float = 0.003, max_blocked: float = 0.0) -> np.ndarray:
    """(G,) bool: a finger (swept along the approach) passes through the object's solid (the 2.5D height
    map of its points over the plane), or, without a plane, a finger placed in a gap occupies space the
    camera did not see empty.

    A finger point is *seen empty* when the depth observed along its pixel ray lies behind it.
    """
    intr = frame.intrinsics
    t, w, d = gripper.finger_thickness_m, 0.5 * gripper.finger_width_m, gripper.finger_depth_m
    zs = np.linspace(-d - 0.5 * cfg.approach_distance_m, 0.0, 7)
    gx, gy, gz = np.meshgrid([0.2, 0.8], [-0.8 * w, 0.0, 0.8 * w], zs, indexing="ij")
    unit = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], 1)
    g = len(origins)
    grid = None
    if plane is not None:
        import cv2

        # 2.5D height map of the object over the plane: every observed point stands on a solid column
        e1 = _unit(_cross(plane.normal, [1.0, 0.0, 0.0] if abs(plane.normal[0]) < 0.9 else [0.0, 1.0, 0.0]))
        e2 = _cross(plane.normal, e1)
        xy = np.stack([obs @ e1, obs @ e2], 1)
        lo_xy = xy.min(0) - 2 * _HEIGHT_CELL_M
        ij = ((xy - lo_xy) / _HEIGHT_CELL_M).astype(int)
        shape = tuple(ij.max(0) + 3)
        grid = np.full(shape, -np.inf, np.float32)
        np.maximum.at(grid, (ij[:, 0], ij[:, 1]), plane.signed_distance(obs).astype(np.float32))
        grid = cv2.dilate(grid, np.ones((3, 3), np.uint8))
    blocked = np.zeros(g, bool)
    n_u = len(unit)
    # with a plane every finger is tested: both sides in one batch (left points, then right points)
    sides = (((-1.0, 1.0), np.arange(g)),) if plane is not None else \
        (((-1.0,), np.flatnonzero(inner_l)), ((1.0,), np.flatnonzero(inner_r)))
    for side_signs, idx in sides:
        if not len(idx):
            continue
        loc = np.tile(unit, (len(idx), len(side_signs), 1))  # (g, n_u * sides, 3)
        for j, side in enumerate(side_signs):
            loc[:, j * n_u:(j + 1) * n_u, 0] = side * (0.5 * opening[idx, None] + unit[None, :, 0] * t)
        pts = np.matmul(loc, rots[idx].transpose(0, 2, 1)) + origins[idx, None, :]
        z = pts[..., 2]
        u = np.rint(intr.fx * pts[..., 0] / np.maximum(z, 1e-6) + intr.cx).astype(int)
        v = np.rint(intr.fy * pts[..., 1] / np.maximum(z, 1e-6) + intr.cy).astype(int)
        inside_img = (u >= 0) & (v >= 0) & (u < intr.width) & (v < intr.height) & (z > 0)
        obs_z = np.zeros_like(z)
        obs_z[inside_img] = frame.depth_m[v[inside_img], u[inside_img]]
        seen_empty = inside_img & (obs_z > 0) & (obs_z >= z + tol_m)
        if grid is not None:
            q = pts.reshape(-1, 3)
            cij = ((np.stack([q @ e1, q @ e2], 1) - lo_xy) / _HEIGHT_CELL_M).astype(int)
            ok = (cij >= 0).all(1) & (cij[:, 0] < grid.shape[0]) & (cij[:, 1] < grid.shape[1])
            ground = np.full(len(q), -np.inf, np.float32)
            ground[ok] = grid[cij[ok, 0], cij[ok, 1]]
            solid = (plane.signed_distance(q) <= ground - tol_m).reshape(z.shape)
            bad = solid & ~seen_empty
        else:
            bad = ~seen_empty
        for j in range(len(side_signs)):  # per finger
            blocked[idx] |= bad[:, j * n_u:(j + 1) * n_u].mean(1) > max_blocked
    return blocked


def _perturbed_points(frame: RGBDFrame, mask_crop: np.ndarray, roi: tuple[slice, slice], pad: int, plane,
                      cfg: GraspConfig, rng: np.random.Generator, cloud_config) -> np.ndarray:
    """Object points (with columns) of a perturbed mask given by its crop ``mask_crop`` of the image region
    ``roi`` (the mask is empty outside it): back-projected directly, or rebuilt by the cloud stage."""
    if cfg.rebuild_cloud_for_robustness:
        from .. import cloud as cloud_stage

        build = getattr(cloud_stage, "build_object_cloud", None)
        if build is None:
            raise ConfigError("rebuild_cloud_for_robustness needs graspseg.cloud.build_object_cloud, which is missing")
        mask = np.zeros(frame.depth_m.shape, bool)
        mask[roi] = mask_crop
        rebuilt = build(frame, mask, cloud_config, plane=plane)
        pts, uv = np.asarray(rebuilt.points_in_camera, np.float64), np.asarray(rebuilt.pixels_uv)
        if not len(pts):
            return pts.reshape(0, 3)
        rim = mg.rim_flags(mask, uv, mg.roi_of(mask, pad), width_px=1.5)
        sel = _subsample(len(pts), rim, cfg.max_object_points, rng)
        pts, rim = pts[sel], rim[sel]
    else:
        # choose the pixels first (every rim pixel up to its share, a sample of the interior), then back-project
        depth = frame.depth_m[roi]
        v, u = np.nonzero(mask_crop & (depth > 0))
        if not len(v):
            return np.zeros((0, 3))
        rim_all = mg.rim_image(mask_crop, 1.5)[v, u]
        sel = _subsample(len(v), rim_all, cfg.max_object_points, rng)
        v, u, rim = v[sel], u[sel], rim_all[sel]
        z = depth[v, u].astype(np.float64)
        rays = frame.intrinsics.ray_image[roi][v, u]
        pts = np.stack([rays[:, 0] * z, rays[:, 1] * z, z], 1)
    p, _ = _with_columns(pts, rim, plane, cfg, rng)
    return p


def _survives(points: np.ndarray, origins: np.ndarray, rots: np.ndarray, opening: np.ndarray,
              gripper: GripperModel, cfg: GraspConfig) -> np.ndarray:
    """(G,) bool: with the hand fixed, the perturbed object still sits between the open fingers, is
    still gripped (contacts on both sides, width above the minimum opening) and no finger lands on it."""
    if not len(points):
        return np.zeros(len(origins), bool)
    loc = col.to_grasp_frames(points, origins, rots)
    lx, ly, lz = loc[..., 0], loc[..., 1], loc[..., 2]
    # points beyond the outer faces of the fingers belong to something else (another wall, a neighbour):
    # only the fingers' own boxes are checked against them (the hit test below)
    reach = (0.5 * np.asarray(opening, np.float32) + gripper.finger_thickness_m)[:, None]
    inreg = (np.abs(ly) <= 0.5 * gripper.finger_width_m) & (lz >= -gripper.finger_depth_m) & (lz <= 0)
    inreg &= np.abs(lx) <= reach
    cnt = inreg.sum(1)
    xmin = np.where(inreg, lx, np.inf).min(1)
    xmax = np.where(inreg, lx, -np.inf).max(1)
    half = 0.5 * opening
    fits = (xmin > -half) & (xmax < half)
    grips = (xmax - xmin) > gripper.min_opening_m
    hits, _ = col.finger_palm_tests(loc, opening, gripper, cfg.approach_distance_m)
    return (cnt >= cfg.min_contact_points) & fits & grips & (hits < cfg.collision_min_points)
