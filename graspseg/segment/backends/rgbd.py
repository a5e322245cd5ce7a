"""The embedded ``rgbd`` segmenter: promptable segmentation from colour + depth, no learned weights.

``set_frame`` finds the support planes (sequential RANSAC at any distance and tilt, inlier thresholds at
each sample's depth; a plane is a support when objects stand on it inside its outline beyond the depth
noise measured on it, whatever lies behind it — a floor, a wall; a smaller raised plane parallel to it, a
stool or a shelf, when objects stand on it and on no other support), depth
discontinuities (threshold ``a + b z²``), concave and convex creases (LCCP's convexity criterion on depth
normals) and colour edges, and decomposes the frame at three granularities (see :mod:`.rgbd_features`).
``predict`` then answers a prompt with three candidates, each rim moved onto the colour edge within
``refine_band_px`` where colour clearly says where it is (depth and colour disagree by 1–6 px on most
sensors; :func:`graspseg.segment.refine.refine_mask_with_color`), and ``whole`` and ``group`` take the gaps
they enclose unless depth sees another surface through them (depth dropouts on shiny or dark surfaces;
:func:`graspseg.segment.refine.fill_enclosed_gaps`):

* ``part`` — the convex, smooth, uniformly coloured patch under the prompt (a mug's handle, a box face);
* ``whole`` — the object: patches joined by convex or smooth connections;
* ``group`` — every object touching it above the support plane.

Scores average four cues: the stability of the mask under perturbed depth-jump thresholds, the contrast
of its boundary (depth jump or support plane = sharp; concave crease = touching neighbour; colour only =
weak), its purity (no long concave crease inside it) and its solidity (area over convex-hull area).
The soft logits are a signed distance to the mask boundary divided by the local boundary uncertainty
(≈ 1 px on depth jumps, several px where the boundary was decided from colour in a depth hole), so the
width of their transition band estimates the expected boundary error in pixels.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, fields, replace

import cv2
import numpy as np
from scipy import ndimage

from ...core.errors import ConfigError, PromptError, SegmentationError
from ...core.frame import RGBDFrame
from ..base import text_prompt_error
from ..refine import fill_enclosed_gaps, lab_gradients, refine_mask_with_color
from ..types import MaskSet, Prompt
from .rgbd_features import (
    Decomposition,
    FrameFeatures,
    components,
    compute_features,
    depth_jump_far_side,
    support_threshold_m,
)

log = logging.getLogger(__name__)

__all__ = ["RGBDSegmenter", "RGBDSegmenterConfig"]


@dataclass(frozen=True)
class RGBDSegmenterConfig:
    """Tunables of the ``rgbd`` segmenter (embedded in the pipeline config as ``segment.rgbd``).

    Distances in metres, image distances in pixels (``_px``), colour differences in CIELAB ΔE.
    """

    #: depth readings outside [min_depth_m, max_depth_m] are ignored (treated as holes)
    min_depth_m: float = 0.1
    max_depth_m: float = 3.0
    #: scattered dropouts (dark, shiny surfaces) up to speckle_fill_px from a reading, where at least
    #: speckle_min_valid_fraction of the speckle_window_px square has depth, take the nearest reading
    #: (0 disables)
    speckle_fill_px: float = 2.0
    speckle_window_px: int = 5
    speckle_min_valid_fraction: float = 0.5
    #: support plane: RANSAC on every ``plane_stride_px``-th pixel, inlier threshold a + b z²
    plane_stride_px: int = 6
    plane_threshold_m: float = 0.004
    plane_threshold_per_m2: float = 0.004
    plane_iterations: int = 64
    plane_score_points: int = 1000
    plane_min_inlier_ratio: float = 0.1
    #: support planes: up to plane_candidates planes by sequential RANSAC; one is a support when it explains
    #: plane_min_inlier_ratio of the samples, its inliers' image outline covers plane_min_hull_fraction of
    #: the image, at most plane_max_below_fraction of the samples inside that outline lie more than
    #: plane_below_factor thresholds behind it (it is opaque), and plane_min_supported_fraction of the
    #: samples stand on it (inside the outline, above its inlier band and plane_below_factor sigmas of the
    #: depth noise measured on it, by up to max_object_height_m); with nothing
    #: standing on any plane, the largest opaque one explaining plane_empty_min_inlier_ratio is the support
    #: (an empty table); further supports must be parallel to the first within support_max_tilt_deg, and
    #: smaller ones parallel to it (a stool on the floor) are searched for whatever share of the samples
    #: they explain: each is a support when things stand on it.
    #: See rgbd_features.fit_support_plane.
    plane_candidates: int = 3
    support_max_tilt_deg: float = 15.0
    plane_min_hull_fraction: float = 0.1
    plane_max_below_fraction: float = 0.05
    plane_below_factor: float = 3.0
    plane_min_supported_fraction: float = 0.002
    plane_empty_min_inlier_ratio: float = 0.5
    #: ... and no object is larger: a flat region wider than this in every direction of its plane (a table
    #: top, the floor, a wall) is scenery, whether or not it was taken as a support (see flat_surface)
    max_object_height_m: float = 0.4
    #: pixels lower than margin = a + b z² above the plane belong to the support
    height_margin_m: float = 0.005
    height_margin_per_m2: float = 0.004
    #: near-plane regions smaller than support_min_image_fraction of the image (any resolution) or
    #: support_min_fraction of the largest, whose mean height exceeds island_min_height_m and
    #: island_noise_factor x the support's median |height|, are object surfaces (a bowl's floor), not support
    support_min_image_fraction: float = 0.01
    support_min_fraction: float = 0.1
    island_min_height_m: float = 0.002
    island_noise_factor: float = 1.4
    #: depth discontinuity between 4-neighbours: |Δz| > jump_a_m + jump_b_per_m z²
    jump_a_m: float = 0.004
    jump_b_per_m: float = 0.02
    #: normals on a grid downsampled by this factor, box-smoothed over (2 s + 1)² samples
    normal_downsample: int = 2
    normal_smoothing_px: int = 1
    #: convexity between samples crease_step_px apart (downsampled grid): concave below -t, convex above t
    crease_step_px: int = 2
    concave_threshold: float = 0.3
    crease_dilate_px: int = 1
    convex_threshold: float = 0.6
    crease_max_dz_rel: float = 0.15
    #: colour edges: CIELAB gradient magnitude (ΔE per pixel)
    color_edge_threshold: float = 12.0
    #: regions
    min_region_px: int = 60
    min_fragment_px: int = 20
    min_whole_px: int = 150
    reassign_max_px: float = 12.0
    regrow_iterations: int = 6
    #: whole = fragments between concave creases, merged (see rgbd_features.merge_fragments): fragments
    #: under min_whole_px; appendages met at a crease (a jump on at most attached_max_jump_fraction of the
    #: shared boundary) that do not reach within contact_height_m of the support (contact_min_px pixels),
    #: or are smaller than appendage_max_area_ratio x their neighbour and touch the support with under
    #: appendage_max_low_fraction of their pixels (handles, rims); fragments enclosed by a neighbour
    #: (enclosed_fraction of their perimeter; a hollow on the support enclosed this much by the rims in
    #: front of it joins them all)
    contact_height_m: float = 0.015
    contact_min_px: int = 10
    enclosed_fraction: float = 0.6
    #: fragments this close across pixels without depth count as neighbours (never as attached)
    gap_px: float = 3.0
    attached_max_jump_fraction: float = 0.65
    appendage_max_area_ratio: float = 0.25
    appendage_max_low_fraction: float = 0.12
    #: fragments whose mean convexity is below -hollow_curvature are insides, never objects; below
    #: -inside_curvature and behind an occluding rim they are the inside of the object in front
    hollow_curvature: float = 0.05
    hollow_min_radius_px: float = 6.0
    inside_curvature: float = 0.015
    #: a fragment met at a crease, with mean convexity below open_top_max_convexity and under
    #: appendage_max_low_fraction of its pixels near the support, is the open top of its neighbour
    open_top_max_convexity: float = 0.02
    min_shared_px: int = 5
    #: fragments whose mean chroma (CIELAB a*, b*) differs from their neighbour's by more than this are
    #: only merged into it when small or enclosed (a differently coloured object behind, not a part)
    merge_max_chroma_de: float = 30.0
    #: stability score: the candidates are re-cut at the jump threshold scaled by each of these factors
    stability_scales: tuple[float, ...] = (0.6, 1.6)
    #: holes (no depth): decided up to hole_max_px from valid depth, from colour in a window
    hole_max_px: float = 25.0
    hole_color_window_px: int = 7
    hole_color_margin: float = 2.5
    #: regions facing each other across a band without depth up to this wide, with depths continuous and
    #: colours within hole_bridge_color_de (CIELAB ΔE) on both sides, are one region
    hole_bridge_px: float = 16.0
    hole_bridge_color_de: float = 12.0
    hole_bridge_min_fraction: float = 0.15
    #: a hole pixel connected to the background joins an object (by colour) only when it is at least this
    #: far from valid background pixels (silhouettes' narrow invalid bands stay out)
    hole_open_min_bg_px: float = 10.0
    #: connected holes larger than this (or reaching the processed region's border) stay background
    hole_max_component_px: int = 4000
    #: a click on an unowned hole selects the connected hole pixels within this colour range (RGB levels)
    hole_click_color_tol: int = 20
    hole_click_max_fraction: float = 0.25
    #: prompts
    snap_radius_px: int = 8
    prompt_depth_radius_px: int = 10
    box_inside_fraction: float = 0.6
    mask_inside_fraction: float = 0.5
    #: logits = 2 x signed distance to the boundary / w, clipped; w = boundary uncertainty (px) by boundary
    #: kind, so sigmoid(logit) goes from 0.12 to 0.88 across a band of 2 w pixels
    width_jump_px: float = 1.0
    width_support_px: float = 2.0
    width_crease_px: float = 2.5
    width_color_px: float = 3.0
    width_hole_px: float = 4.0
    logit_clip: float = 12.0
    #: the boundary uncertainty of the nearest rim pixels (within this many px) sets the local width
    width_spread_px: int = 15
    roi_margin_px: int = 24
    #: depth and colour disagree at the rim by 1–6 px on most sensors (misregistration, ragged depth
    #: edges): the rim moves onto a colour edge up to this far, px (graspseg.segment.refine
    #: .refine_mask_with_color); 0 keeps the depth rim
    refine_band_px: int = 4
    #: ... onto an edge min_gain**d times stronger than the one the depth rim lies on, d px away
    refine_min_gain: float = 1.5
    #: segment-everything keeps objects of at least this many pixels
    min_object_px: int = 300
    seed: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "stability_scales":
                v = tuple(float(x) for x in v)
                if any(x <= 0 for x in v):
                    raise ConfigError(f"segment.rgbd.stability_scales must be positive factors, got {v}")
                object.__setattr__(self, f.name, v)
                continue
            if isinstance(v, int | float) and not isinstance(v, bool) and v < 0:
                raise ConfigError(f"segment.rgbd.{f.name} must be >= 0, got {v}")
        if self.max_depth_m <= self.min_depth_m:
            raise ConfigError(
                f"segment.rgbd.max_depth_m ({self.max_depth_m}) must exceed min_depth_m ({self.min_depth_m})"
            )
        for name in ("plane_stride_px", "normal_downsample", "crease_step_px", "plane_iterations"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"segment.rgbd.{name} must be >= 1, got {getattr(self, name)}")
        if self.refine_min_gain < 1:
            raise ConfigError(f"segment.rgbd.refine_min_gain must be >= 1 (a ratio of edge strengths), got "
                              f"{self.refine_min_gain}; use refine_band_px=0 to keep the depth rim")


class RGBDSegmenter:
    """Promptable colour + depth segmenter (see the module docstring).

    Parameters
    ----------
    config : RGBDSegmenterConfig, optional
    **overrides
        Field overrides of the config, e.g. ``RGBDSegmenter(jump_a_m=0.006)``.
    """

    name = "rgbd"
    accepts_text = False

    def __init__(self, config: RGBDSegmenterConfig | None = None, **overrides) -> None:
        cfg = config or RGBDSegmenterConfig()
        if overrides:
            known = {f.name for f in fields(RGBDSegmenterConfig)}
            bad = sorted(set(overrides) - known)
            if bad:
                raise ConfigError(f"unknown rgbd segmenter option(s) {bad}; known options: {sorted(known)}")
            cfg = replace(cfg, **overrides)
        self.config = cfg
        self._frame: RGBDFrame | None = None
        self._f: FrameFeatures | None = None
        self.last_timings_ms: dict = {}

    # ------------------------------------------------------------------------------------------
    @property
    def frame(self) -> RGBDFrame | None:
        return self._frame

    @property
    def features(self) -> FrameFeatures:
        """The per-frame maps of the current frame (raises if no frame is set)."""
        if self._f is None:
            raise SegmentationError("no frame set: call set_frame(frame) before predict(prompt)")
        return self._f

    def set_frame(self, frame: RGBDFrame) -> None:
        """Compute the per-frame maps (support plane, boundaries, decompositions) once."""
        if not isinstance(frame, RGBDFrame):
            raise SegmentationError(f"set_frame needs an RGBDFrame, got {type(frame).__name__}")
        self._frame = frame
        self._f = compute_features(frame, self.config)
        f = self._f
        # lookup tables whole -> group for each level
        self._w2g = []
        for lv in f.levels:
            lut = np.zeros(int(lv.whole.max()) + 1, np.int32)
            lut[lv.whole.ravel()] = lv.group.ravel()
            self._w2g.append(lut)
        self._group_boxes = ndimage.find_objects(f.levels[0].group)
        self.last_timings_ms = dict(f.timings_ms)

    # ------------------------------------------------------------------------------------------
    def predict(self, prompt: Prompt) -> MaskSet:
        """Three candidates (part, whole, group) for ``prompt``; see the module docstring."""
        if not isinstance(prompt, Prompt):
            raise PromptError(f"predict needs a Prompt, got {type(prompt).__name__}; e.g. Prompt.from_point(u, v)")
        if prompt.text is not None:
            raise text_prompt_error(self.name)
        f = self.features
        frame = self._frame
        h, w = f.depth_m.shape
        prompt.validate_for(w, h)
        t0 = time.perf_counter()
        self._check_prompt_depth(prompt)
        cfg = self.config
        region = self._prompt_region(prompt, h, w)
        masks0 = self._select_fast(prompt, region)
        extra, table_hole = self._hole_click_region(prompt)
        if extra is not None:
            masks0 = tuple(mk | extra for mk in masks0)
        union = masks0[0] | masks0[1] | masks0[2]
        if not union.any():
            on_support = any(f.support[int(round(v)), int(round(u))] for u, v in prompt.positive_points)
            if on_support:
                where = "on the support plane (the table), not on an object above it"
            elif table_hole:
                where = ("on a patch without depth inside the support plane (the table) and coloured like it, "
                         "not on an object")
            elif f.plane.found:
                where = "on no object above the support plane"
            else:
                where = "on no region with depth large enough to be an object (no support plane was found)"
            raise SegmentationError(
                f"no region found under the prompt {prompt.describe()}: it lies {where}; click on an object "
                "(points are (u=column, v=row) pixels) or draw a box around it"
            )
        surface = self.flat_surface(masks0[1])
        if surface is not None:
            why = "" if f.plane.found else f" (no support plane was accepted: {f.plane.reason})"
            raise SegmentationError(
                f"the region under the prompt {prompt.describe()} is {surface}: the table, the floor or a wall, "
                f"not an object{why}; click on an object standing on it — if you did, the object was not told "
                "apart from the surface (a thin object, or a table not taken as the support): move the camera "
                "closer to the object"
            )
        rows = np.flatnonzero(union.any(axis=1))
        cols = np.flatnonzero(union.any(axis=0))
        m = cfg.roi_margin_px
        y0, y1 = max(0, rows[0] - m), min(h, rows[-1] + 1 + m)
        x0, x1 = max(0, cols[0] - m), min(w, cols[-1] + 1 + m)
        roi = (slice(y0, y1), slice(x0, x1))
        stab = self._stability(tuple(mk[roi] for mk in masks0), roi)
        out_masks = np.zeros((3, h, w), bool)
        logits = np.full((3, h, w), -cfg.logit_clip, np.float32)
        contrast = np.zeros(3, np.float32)
        done: list[tuple[np.ndarray, np.ndarray, float]] = []
        cand = [masks0[k][roi] | self._holes_for(masks0[k], k, roi) for k in range(3)]
        cand = self._fill_gaps(self._onto_colour_edges(cand, roi), roi)
        for k in range(3):
            mk = cand[k]
            out_masks[k][roi] = mk
            # candidates often coincide (a lone object is its own group): compute each mask once
            same = next((d for d in done if np.array_equal(d[0], mk)), None)
            lg, c = (same[1], same[2]) if same is not None else self._logits_and_contrast(mk, roi)
            if same is None:
                done.append((mk, lg, c))
            logits[k][roi] = lg
            contrast[k] = c
        purity = np.array([self._purity(out_masks[k][roi], roi) for k in range(3)], np.float32)
        solidity = np.array([_solidity(out_masks[k][roi]) for k in range(3)], np.float32)
        scores = np.clip((stab + contrast + purity + solidity) / 4.0, 0.0, 1.0).astype(np.float32)
        self.last_timings_ms = {"predict_ms": (time.perf_counter() - t0) * 1e3}
        log.debug("rgbd predict %s: scores %s (%.1f ms)", prompt.kind, scores, self.last_timings_ms["predict_ms"])
        return MaskSet(out_masks, scores, ("part", "whole", "group"), logits, self.name, prompt,
                       {"stability": stab, "contrast": contrast, "purity": purity, "solidity": solidity,
                        "frame_id": frame.frame_id if frame else ""})

    # ------------------------------------------------------------------------------------------
    def segment_all(self, frame: RGBDFrame | None = None) -> MaskSet:
        """One ``whole`` mask per object standing on a support, largest first.

        Regions above the support that do not stand on it (walls, shelves and the room past the table's
        edge: no part of them reaches the support inside its outline) are background, and so are flat
        regions wider than any object (:meth:`flat_surface`: a table or floor not taken as the support).
        ``details`` holds ``support`` (H, W) bool (the support planes' pixels), ``background`` (H, W) bool
        (every other pixel with depth that is not an object), ``labels`` (the ``whole`` label of each mask)
        and, when no object is found, ``explanation`` (str: why).
        """
        if frame is not None:
            self.set_frame(frame)
        f = self.features
        cfg = self.config
        lv = f.levels[0]
        whole = lv.whole
        n = int(whole.max())
        h, w = whole.shape
        holes = f.hole_owner
        full = np.where(whole > 0, whole, holes)
        standing = self._standing_labels(full, n)
        area = np.bincount(full.ravel(), minlength=n + 1)
        keep = [i for i in np.argsort(-area) if i > 0 and area[i] >= cfg.min_object_px and standing[i]]
        surfaces = self._scenery_labels(full, keep)
        keep = [i for i in keep if i not in surfaces]
        is_object = np.zeros(n + 1, bool)
        is_object[keep] = True
        # background: every pixel with depth that is neither the support nor an object
        details = {"support": f.support.copy(), "background": (f.depth_m > 0) & ~f.support & ~is_object[full]}
        if not keep:
            details["explanation"] = self._why_no_object(area, standing, len(surfaces))
            log.info("rgbd segment_all: no object (%s)", details["explanation"])
            return MaskSet(np.zeros((0, h, w), bool), np.zeros(0, np.float32), (), None, self.name, None, details)
        masks = np.zeros((len(keep), h, w), bool)
        scores = np.zeros(len(keep), np.float32)
        for j, lab in enumerate(keep):
            mk = full == lab
            masks[j] = mk
            rows = np.flatnonzero(mk.any(axis=1))
            cols = np.flatnonzero(mk.any(axis=0))
            m = cfg.roi_margin_px
            roi = (slice(max(0, rows[0] - m), min(h, rows[-1] + 1 + m)),
                   slice(max(0, cols[0] - m), min(w, cols[-1] + 1 + m)))
            _, scores[j] = self._logits_and_contrast(mk[roi], roi)
        details["labels"] = np.asarray(keep, np.int32)
        return MaskSet(masks, scores, ("whole",) * len(keep), None, self.name, None, details)

    def flat_surface(self, mask: np.ndarray) -> str | None:
        """``"a flat surface L1 x L2 m ..."`` when ``mask`` ((H, W) bool, current frame) is scenery, else None.

        A region is scenery when it is flat — a plane fitted to its depth pixels (least squares, refitted
        on the points within twice the support-plane threshold a + b z² of it; about 2000 points)
        holds 80 % of them — and wider than ``max_object_height_m`` in both directions of that plane
        (2–98 % spread of its inliers): a table top, the floor or a wall, not an object to grasp.
        """
        fit = self._flat_fit(mask)
        return None if fit is None else fit[2]

    def _mask_points(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) camera-frame points (m) of about 2000 of the mask's depth pixels (a regular grid), and (N,)
        tolerances (twice the support-plane threshold a + b z²)."""
        cfg = self.config
        z = self.features.depth_m
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            return np.zeros((0, 3)), np.zeros(0)
        # a regular grid of about 2000 of the mask's pixels
        step = max(1, int(np.sqrt(np.count_nonzero(mask) / 2000.0)))
        box = (slice(rows[0], rows[-1] + 1, step), slice(cols[0], cols[-1] + 1, step))
        v, u = np.nonzero(mask[box] & (z[box] > 0))
        v, u = v * step + rows[0], u * step + cols[0]
        zz = z[v, u].astype(np.float64)
        rays = self._frame.intrinsics.ray_image
        p = np.stack([rays[v, u, 0] * zz, rays[v, u, 1] * zz, zz], axis=1)
        return p, 2.0 * support_threshold_m(zz, cfg)

    def _flat_fit(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, str] | None:
        """(centre (3,), unit normal (3,), description) of the scenery plane of :meth:`flat_surface`, or None."""
        cfg = self.config
        if np.count_nonzero(mask) < max(3, cfg.min_object_px):
            return None
        # quick out: a plane wider than L in every direction spans at least L f / z pixels along the direction
        # parallel to the image; half of that bounds it safely
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        intr = self._frame.intrinsics
        z_far = float(self.features.depth_m[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1].max())
        if max((rows[-1] - rows[0] + 1) / intr.fy, (cols[-1] - cols[0] + 1) / intr.fx) * z_far < 0.5 * cfg.max_object_height_m:
            return None
        p, tol = self._mask_points(mask)
        keep = np.ones(len(p), bool)
        for _ in range(2):
            if np.count_nonzero(keep) < 3:
                return None
            c = p[keep].mean(axis=0)
            axes = np.linalg.svd(p[keep] - c, full_matrices=False)[2]
            keep = np.abs((p - c) @ axes[2]) <= tol
        if np.mean(keep) < 0.8:
            return None
        q = (p[keep] - c) @ axes[:2].T
        size = np.percentile(q, 98, axis=0) - np.percentile(q, 2, axis=0)
        if size.min() <= cfg.max_object_height_m:
            return None
        return c, axes[2], (f"a flat surface {size.max():.2f} x {size.min():.2f} m (wider than any object: "
                            f"max_object_height_m {cfg.max_object_height_m:g} m)")

    def _scenery_labels(self, full: np.ndarray, labels: list) -> list:
        """The labels of ``full`` that are scenery: flat surfaces (:meth:`flat_surface`) and regions lying
        in one of their planes (80 % of their points within the tolerance: the same floor cut by a colour
        edge)."""
        planes = []
        out = []
        for i in labels:
            mk = full == i
            fit = self._flat_fit(mk)
            if fit is not None:
                planes.append(fit[:2])
                out.append(i)
        if not planes:
            return out
        for i in labels:
            if i in out:
                continue
            p, tol = self._mask_points(full == i)
            if len(p) and any(np.mean(np.abs((p - c) @ n) <= tol) >= 0.8 for c, n in planes):
                out.append(i)
        return out

    def _why_no_object(self, area: np.ndarray, standing: np.ndarray, n_surfaces: int) -> str:
        """Why :meth:`segment_all` found no object, in one sentence (``area``/``standing`` per label)."""
        f = self._f
        cfg = self.config
        valid = float(np.mean(f.depth_m > 0))
        support = float(np.mean(f.support))
        if valid == 0:
            return ("the frame has no depth reading in the rgbd range "
                    f"{cfg.min_depth_m:g}-{cfg.max_depth_m:g} m: check the depth stream and its depth scale")
        regions = int(np.count_nonzero(area[1:]))
        small = int(np.count_nonzero((area[1:] > 0) & (area[1:] < cfg.min_object_px)))
        parts = [f"the support plane covers {support:.0%} of the view" if f.plane.found else
                 f"no support plane was found ({f.plane.reason})"]
        if regions == 0:
            parts.append("nothing rises above it" if f.plane.found else "no region with depth is large enough")
        else:
            if small:
                parts.append(f"{small} region(s) are smaller than min_object_px {cfg.min_object_px}")
            not_standing = int(np.count_nonzero((area[1:] >= cfg.min_object_px) & ~standing[1:]))
            if not_standing:
                parts.append(f"{not_standing} region(s) do not stand on the support (walls, the room past the table)")
            if n_surfaces:
                parts.append(f"{n_surfaces} region(s) are flat surfaces wider than any object "
                             f"(max_object_height_m {cfg.max_object_height_m:g} m)")
        return "no object found: " + "; ".join(parts)

    def _standing_labels(self, labels: np.ndarray, n: int) -> np.ndarray:
        """(n + 1,) bool: which labels of ``labels`` stand on a support (index 0 False).

        A ``group`` region (objects touching in 3D, stacks included) stands when it borders support
        pixels inside a support's outline and lies in front of the support there (median height of its
        bordering pixels at least ``-contact_height_m``: a wall or floor seen past the table's edge lies
        behind it), and its top (95th percentile height) stays under ``max_object_height_m`` (a wall
        rising from the table's edge is scenery). Every label inside a standing group stands. Without a
        support plane every label stands.
        """
        f = self._f
        cfg = self.config
        out = np.zeros(n + 1, bool)
        if n == 0:
            return out
        if not f.plane.found or f.support_region is None:
            out[1:] = True
            return out
        group = f.levels[0].group
        base = f.support & f.support_region
        near_base = cv2.dilate(base.view(np.uint8), np.ones((5, 5), np.uint8)) > 0
        g_n = int(group.max())
        g_stand = np.zeros(g_n + 1, bool)
        has_depth = f.depth_m > 0
        ring = near_base & has_depth & (group > 0) & ~base
        for g in np.unique(group[ring]):
            border_h = f.height_m[ring & (group == g)]
            top = np.percentile(f.height_m[(group == g) & has_depth], 95)
            g_stand[g] = np.median(border_h) >= -cfg.contact_height_m and top < cfg.max_object_height_m
        # each label belongs to the group most of its pixels are in (hole pixels carry no group)
        sel = (labels > 0) & (group > 0)
        pair = labels[sel].astype(np.int64) * (g_n + 1) + group[sel]
        counts = np.bincount(pair, minlength=(n + 1) * (g_n + 1)).reshape(n + 1, g_n + 1)
        has = counts.sum(1) > 0
        out[has] = g_stand[counts[has].argmax(1)]
        out[0] = False
        return out

    # ------------------------------------------------------------------------------------------
    def _check_prompt_depth(self, prompt: Prompt) -> None:
        f = self._f
        z = f.depth_m
        h, w = z.shape
        r = self.config.prompt_depth_radius_px
        region = np.zeros((h, w), bool)
        for u, v in prompt.positive_points:
            ui, vi = int(round(u)), int(round(v))
            region[max(0, vi - r): vi + r + 1, max(0, ui - r): ui + r + 1] = True
        box = prompt.clipped_box(w, h)
        if box is not None:
            region[box[1]: box[3], box[0]: box[2]] = True
        if prompt.mask is not None:
            region |= prompt.mask
        raw = self._frame.depth_m[region] if self._frame is not None else z[region]
        zs = raw[raw > 0]
        c = self.config
        out_of_range = zs.size and not ((zs >= c.min_depth_m) & (zs <= c.max_depth_m)).any()
        if region.any() and not (z[region] > 0).any() and out_of_range:
            raise PromptError(
                f"the depth under the prompt {prompt.describe()} is out of range: readings {float(zs.min()):.3f}-"
                f"{float(zs.max()):.3f} m lie outside the rgbd depth range ({c.min_depth_m:g}-"
                f"{c.max_depth_m:g} m); move the camera, widen the range (segment options min_depth_m, max_depth_m), or "
                "check the depth scale (millimetres read as metres?)"
            )
        if region.any() and not (z[region] > 0).any():
            raise PromptError(
                f"the depth image has no reading (all zero) in the prompt region {prompt.describe()}; the rgbd "
                "backend needs some depth on the object: move the prompt onto a part with depth, enlarge the box, "
                "or check the depth stream (range limits, exposure)"
            )

    def _stability(self, masks: tuple, roi) -> np.ndarray:
        """(3,) mean IoU of each candidate with itself re-cut at perturbed depth-jump thresholds.

        For each scale of ``stability_scales`` the region above the support is re-cut at the scaled
        jump threshold; the perturbed candidate is the union of the new regions that lie mostly inside
        the candidate or hold most of it. Leaks into neighbours under looser thresholds and losses under
        stricter ones both lower the IoU.
        """
        cfg = self.config
        f = self._f
        z = f.depth_m[roi]
        above = (z > 0) & ~f.support[roi]
        out = np.ones(3, np.float32)
        if not cfg.stability_scales:
            return out
        ious = np.zeros((len(cfg.stability_scales), 3), np.float32)
        for i, scale in enumerate(cfg.stability_scales):
            jr = depth_jump_far_side(z, cfg.jump_a_m * scale, cfg.jump_b_per_m * scale)
            g = components(above & ~jr, cfg.min_region_px)
            n = int(g.max())
            size = np.bincount(g.ravel(), minlength=n + 1)
            for k, mk in enumerate(masks):
                m_area = int(mk.sum())
                if m_area == 0:
                    continue
                inside = np.bincount(g[mk], minlength=n + 1)
                keep = (inside >= 0.5 * size) | (inside >= 0.5 * m_area)
                keep[0] = False
                ious[i, k] = _iou(mk, keep[g])
        return ious.mean(axis=0)

    def _hole_click_region(self, prompt: Prompt) -> tuple[np.ndarray | None, bool]:
        """Pixels without depth that a positive click on an unowned hole selects, decided from colour
        (None if none), and whether a click was on a hole in the table.

        A click on a surface the camera gave no depth for (dark, shiny) selects the connected pixels
        without depth whose colour is within ``hole_click_color_tol`` of the click's; a region that
        reaches the image border or covers more than ``hole_click_max_fraction`` of the image is
        background and is dropped, and so is a hole in the table (:meth:`_hole_in_support`).
        """
        f = self._f
        z = f.depth_m
        h, w = z.shape
        out = None
        table_hole = False
        for u, v in prompt.positive_points:
            ui, vi = int(round(u)), int(round(v))
            if z[vi, ui] > 0 or f.hole_owner[vi, ui] > 0:
                continue
            block = np.zeros((h + 2, w + 2), np.uint8)
            block[1:-1, 1:-1] = z > 0
            tol = (self.config.hole_click_color_tol,) * 3
            img = np.ascontiguousarray(self._frame.color)
            cv2.floodFill(img.copy(), block, (ui, vi), (0, 0, 0), tol, tol,
                          4 | cv2.FLOODFILL_MASK_ONLY | (2 << 8))
            reg = block[1:-1, 1:-1] == 2
            n = int(reg.sum())
            touches = reg[0].any() or reg[-1].any() or reg[:, 0].any() or reg[:, -1].any()
            if n == 0 or touches or n > self.config.hole_click_max_fraction * h * w:
                continue
            if self._hole_in_support(reg):
                table_hole = True
                continue
            out = reg if out is None else out | reg
        return out, table_hole

    def _hole_in_support(self, hole: np.ndarray) -> bool:
        """Whether ``hole`` ((H, W) bool, pixels without depth) is a patch of the table the camera gave no depth
        for: most of the pixels with depth around it (2 px ring) are support, and its mean colour is within
        ``hole_bridge_color_de`` (CIELAB ΔE) of theirs."""
        f = self._f
        rows = np.flatnonzero(hole.any(axis=1))
        cols = np.flatnonzero(hole.any(axis=0))
        if rows.size == 0:
            return False
        h, w = hole.shape
        box = (slice(max(0, rows[0] - 3), min(h, rows[-1] + 4)), slice(max(0, cols[0] - 3), min(w, cols[-1] + 4)))
        reg = hole[box]
        ring = (cv2.dilate(reg.view(np.uint8), np.ones((5, 5), np.uint8)) > 0) & ~reg & (f.depth_m[box] > 0)
        sup = ring & f.support[box]
        if np.count_nonzero(sup) < max(1, 0.5 * np.count_nonzero(ring)):
            return False
        lab = cv2.cvtColor(np.ascontiguousarray(self._frame.color[box]), cv2.COLOR_RGB2Lab).astype(np.float32)
        lab[..., 0] *= 100.0 / 255.0  # OpenCV's 8-bit L is 0-255
        return float(np.linalg.norm(lab[reg].mean(0) - lab[sup].mean(0))) <= self.config.hole_bridge_color_de

    def _labels_at(self, lbl: np.ndarray, pts: np.ndarray, x0: int = 0, y0: int = 0) -> list[int]:
        """Label under each point, snapping to the nearest labelled pixel within ``snap_radius_px``.

        A point on a pixel without depth that no object owns does not snap (its region is decided
        from colour, see :meth:`_hole_click_region`). ``lbl`` may be a crop at (x0, y0).
        """
        r = self.config.snap_radius_px
        f = self._f
        out = []
        for u, v in pts:
            ui, vi = int(round(u)), int(round(v))
            lab = int(lbl[vi, ui])
            if lab == 0 and f.depth_m[vi + y0, ui + x0] == 0 and f.hole_owner[vi + y0, ui + x0] == 0:
                out.append(0)
                continue
            if lab == 0:
                ya, xa = max(0, vi - r), max(0, ui - r)
                win = lbl[ya: vi + r + 1, xa: ui + r + 1]
                yy, xx = np.nonzero(win)
                if yy.size:
                    d = (yy + ya - vi) ** 2 + (xx + xa - ui) ** 2
                    j = int(np.argmin(d))
                    lab = int(win[yy[j], xx[j]])
            out.append(lab)
        return out

    def _select_fast(self, prompt: Prompt, region: np.ndarray | None):
        """Like :meth:`_select` on the nominal decomposition, computed inside the bounding box of the groups
        under the points (the whole frame for box and mask prompts)."""
        f = self._f
        dec = f.levels[0]
        h, w = dec.group.shape
        if region is not None or not len(prompt.positive_points):
            return self._select(prompt, dec, region, 0, 0)
        groups = [g for g in self._labels_at(dec.group, prompt.positive_points) if g > 0]
        boxes = [self._group_boxes[g - 1] for g in groups if g - 1 < len(self._group_boxes)]
        boxes = [b for b in boxes if b is not None]
        if not boxes:
            return self._select(prompt, dec, None, 0, 0)
        m = 1
        y0 = max(0, min(b[0].start for b in boxes) - m)
        y1 = min(h, max(b[0].stop for b in boxes) + m)
        x0 = max(0, min(b[1].start for b in boxes) - m)
        x1 = min(w, max(b[1].stop for b in boxes) + m)
        # the negative points' regions must be in the crop too
        for u, v in prompt.negative_points:
            x0, x1 = min(x0, int(u)), max(x1, int(u) + 1)
            y0, y1 = min(y0, int(v)), max(y1, int(v) + 1)
        roi = (slice(y0, y1), slice(x0, x1))
        crop = Decomposition(dec.group[roi], dec.whole[roi], dec.part[roi])
        out = []
        for mk in self._select(prompt, crop, None, x0, y0):
            full = np.zeros((h, w), bool)
            full[roi] = mk
            out.append(full)
        return tuple(out)

    @staticmethod
    def _prompt_region(prompt: Prompt, h: int, w: int) -> np.ndarray | None:
        """(H, W) bool region of the box and/or mask prompt (their intersection when both), or None."""
        region = None
        if prompt.box_xyxy is not None:
            b = prompt.clipped_box(w, h)
            region = np.zeros((h, w), bool)
            region[b[1]: b[3], b[0]: b[2]] = True
        if prompt.mask is not None:
            region = prompt.mask if region is None else region & prompt.mask
        return region

    def _select(self, prompt: Prompt, dec: Decomposition, region: np.ndarray | None, x0: int, y0: int):
        """(part, whole, group) masks of one decomposition for the prompt (no holes yet).

        ``dec`` and ``region`` may be crops whose top-left corner is pixel (x0, y0) of the frame.
        """
        cfg = self.config
        off = np.array([x0, y0], np.float64)
        pos_uv = prompt.positive_points - off
        neg_uv = prompt.negative_points - off
        frac = cfg.mask_inside_fraction if prompt.mask is not None else cfg.box_inside_fraction
        results = []
        for lbl in (dec.part, dec.whole, dec.group):
            h, w = lbl.shape
            inb_p = (pos_uv[:, 0] >= 0) & (pos_uv[:, 1] >= 0) & (pos_uv[:, 0] <= w - 1) & (pos_uv[:, 1] <= h - 1)
            inb_n = (neg_uv[:, 0] >= 0) & (neg_uv[:, 1] >= 0) & (neg_uv[:, 0] <= w - 1) & (neg_uv[:, 1] <= h - 1)
            sel = {x for x in self._labels_at(lbl, pos_uv[inb_p], x0, y0) if x > 0}
            neg = {x for x in self._labels_at(lbl, neg_uv[inb_n], x0, y0) if x > 0}
            n = int(lbl.max())
            if region is not None and n > 0:
                area = np.bincount(lbl.ravel(), minlength=n + 1)
                inside = np.bincount(lbl[region], minlength=n + 1)
                ratio = inside / np.maximum(area, 1)
                cand = np.flatnonzero(ratio >= frac)
                cand = cand[cand > 0]
                if cand.size == 0:
                    best = int(np.argmax(inside[1:])) + 1
                    if inside[best] > 0:
                        cand = np.array([best])
                sel |= {int(c) for c in cand}
            split = sel & neg
            sel -= neg
            if sel:
                lut = np.zeros(n + 1, bool)
                lut[list(sel)] = True
                mk = lut[lbl]
            else:
                mk = np.zeros((h, w), bool)
            for lab in split:
                mk |= self._split_region(lbl == lab, prompt, x0, y0)
            results.append(mk)
        return results[0], results[1], results[2]

    def _split_region(self, region: np.ndarray, prompt: Prompt, x0: int = 0, y0: int = 0) -> np.ndarray:
        """The part of ``region`` (a crop at (x0, y0)) closer in 3D to a positive than to any negative point."""
        f = self._f
        rays = self._frame.intrinsics.ray_image
        vy, ux = np.nonzero(region)
        vy_f, ux_f = vy + y0, ux + x0
        z = f.filled_depth_m[vy_f, ux_f]
        p = np.stack([rays[vy_f, ux_f, 0] * z, rays[vy_f, ux_f, 1] * z, z], axis=1)
        hh, ww = f.depth_m.shape

        def pts3(uv):
            ui = np.clip(np.round(uv[:, 0]).astype(int), 0, ww - 1)
            vi = np.clip(np.round(uv[:, 1]).astype(int), 0, hh - 1)
            zz = f.filled_depth_m[vi, ui]
            return np.stack([rays[vi, ui, 0] * zz, rays[vi, ui, 1] * zz, zz], axis=1)

        pos, neg = prompt.positive_points, prompt.negative_points
        out = np.zeros(region.shape, bool)
        if len(pos) == 0:
            return out
        dp = np.min(((p[:, None, :] - pts3(pos)[None]) ** 2).sum(-1), axis=1)
        dn = np.min(((p[:, None, :] - pts3(neg)[None]) ** 2).sum(-1), axis=1)
        keep = dp < dn
        out[vy[keep], ux[keep]] = True
        return out

    def _onto_colour_edges(self, cand: list, roi) -> list:
        """The candidates (ROI crops) with their rims moved onto the colour outline
        (:func:`~graspseg.segment.refine.refine_mask_with_color`); identical candidates are refined once.

        ``cand`` is [part, whole, group], (h, w) bool each."""
        cfg = self.config
        if cfg.refine_band_px <= 0:
            return cand
        lab = cv2.cvtColor(np.ascontiguousarray(self._frame.color[roi]), cv2.COLOR_RGB2Lab).astype(np.float32)
        grads = lab_gradients(lab)
        out: list[np.ndarray] = []
        for k, mk in enumerate(cand):
            same = next((j for j in range(k) if np.array_equal(cand[j], mk)), None)
            out.append(out[same] if same is not None else
                       refine_mask_with_color(mk, lab, band_px=cfg.refine_band_px, min_gain=cfg.refine_min_gain,
                                              gradients=grads))
        # refined one by one, the levels stay nested: part within whole within group
        return [out[0] & out[1], out[1], out[2] | out[1]]

    def _fill_gaps(self, cand: list, roi) -> list:
        """The object levels (whole, group; ROI crops) with the gaps they enclose filled where depth sees no
        other surface through them (:func:`~graspseg.segment.refine.fill_enclosed_gaps`); part is left as it
        is (a label or a patch inside a face is a part of its own)."""
        cfg = self.config
        z = self._f.depth_m[roi]
        whole = fill_enclosed_gaps(cand[1], z, jump_a_m=cfg.jump_a_m, jump_b_per_m=cfg.jump_b_per_m)
        group = whole if np.array_equal(cand[2], cand[1]) else \
            fill_enclosed_gaps(cand[2], z, jump_a_m=cfg.jump_a_m, jump_b_per_m=cfg.jump_b_per_m) | whole
        return [cand[0], whole, group]

    def _holes_for(self, mask: np.ndarray, k: int, roi) -> np.ndarray:
        """Hole pixels (no depth) that belong to the candidate ``k`` (0 part, 1 whole, 2 group), in the ROI."""
        f = self._f
        owner = f.hole_owner[roi]
        if not owner.any():
            return np.zeros(owner.shape, bool)
        whole = f.levels[0].whole[roi]
        wl = np.flatnonzero(np.bincount(whole[mask[roi]], minlength=1))
        wl = wl[wl > 0]
        if wl.size == 0:
            return np.zeros(owner.shape, bool)
        if k == 2:
            g = np.zeros(int(self._w2g[0].max()) + 1, bool)
            g[self._w2g[0][wl]] = True
            lut = g[self._w2g[0]]
        else:
            lut = np.zeros(self._w2g[0].size, bool)
            lut[wl] = True
        hole = lut[owner] & (owner > 0)
        if k == 0:
            near = cv2.dilate(mask[roi].astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
            hole &= near
        return hole

    def _purity(self, mk: np.ndarray, roi) -> float:
        """1 - (concave-crease pixels inside the mask) / (its outline length), clipped to [0, 1].

        A long concave crease inside a mask is where two touching objects (or an object and its support)
        meet: such masks are likely merges.
        """
        if not mk.any():
            return 0.0
        m8 = mk.astype(np.uint8)
        interior = cv2.erode(m8, np.ones((5, 5), np.uint8)) > 0
        outline = int(np.count_nonzero(mk & ~(cv2.erode(m8, _CROSS3) > 0)))
        inside = int(np.count_nonzero(self._f.concave[roi] & interior))
        return float(np.clip(1.0 - inside / max(1, outline), 0.0, 1.0))

    def _logits_and_contrast(self, mk: np.ndarray, roi) -> tuple[np.ndarray, float]:
        """Soft logits (ROI) and the boundary contrast score of one mask (ROI crop)."""
        cfg = self.config
        f = self._f
        m8 = mk.astype(np.uint8)
        if not mk.any():
            return np.full(mk.shape, -cfg.logit_clip, np.float32), 0.0
        ring = (cv2.dilate(m8, _CROSS3) > 0) & ~mk
        if not ring.any():  # the mask fills the view (a close-up): no boundary seen, nothing uncertain
            return np.full(mk.shape, cfg.logit_clip, np.float32), 0.0
        z = f.depth_m[roi]
        jump = f.jump[roi]
        sup = f.support[roi]
        hole = z == 0
        conc = f.concave[roi]
        # boundary kind on the outer ring: depth jump / support plane / hole / crease / colour only
        r_jump = ring & (jump | (cv2.dilate(jump.astype(np.uint8), _CROSS3) > 0) & ~sup)
        r_sup = ring & sup & ~r_jump
        r_hole = ring & hole & ~r_jump
        r_crease = ring & conc & ~(r_jump | r_sup | r_hole)
        r_other = ring & ~(r_jump | r_sup | r_hole | r_crease)
        n_ring = max(1, int(ring.sum()))
        counts = np.array([r_jump.sum(), r_sup.sum(), r_hole.sum(), r_crease.sum(), r_other.sum()], np.float64)
        contrast = float(counts @ np.array([1.0, 0.9, 0.6, 0.6, 0.3]) / n_ring)
        # width map: kind-specific uncertainty at the ring, spread over the ROI
        wmap = np.zeros(mk.shape, np.float32)
        for sel, wv in ((r_jump, cfg.width_jump_px), (r_sup, cfg.width_support_px), (r_hole, cfg.width_hole_px),
                        (r_crease, cfg.width_crease_px), (r_other, cfg.width_color_px)):
            wmap[sel] = wv
        k = 2 * cfg.width_spread_px + 1
        wsum = cv2.boxFilter(wmap, -1, (k, k), normalize=False)
        wcnt = cv2.boxFilter(ring.astype(np.float32), -1, (k, k), normalize=False)
        mean_width = float(counts @ np.array([cfg.width_jump_px, cfg.width_support_px, cfg.width_hole_px,
                                              cfg.width_crease_px, cfg.width_color_px]) / n_ring)
        width = np.where(wcnt > 0, wsum / np.maximum(wcnt, 1e-6), mean_width).astype(np.float32)
        d_in = cv2.distanceTransform(m8, cv2.DIST_L2, 3)
        d_out = cv2.distanceTransform(1 - m8, cv2.DIST_L2, 3)
        sd = np.where(mk, d_in - 0.5, 0.5 - d_out)
        logits = np.clip(2.0 * sd / width, -cfg.logit_clip, cfg.logit_clip).astype(np.float32)
        return logits, contrast


_CROSS3 = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def _solidity(mk: np.ndarray) -> float:
    """Mask area over the area of its convex hull (1 for convex silhouettes, 0 for an empty mask).

    Objects seen from a wrist camera are mostly convex in the image; merges of neighbours and masks
    that lost a part tend to be less so.
    """
    if not mk.any():
        return 0.0
    contours, _ = cv2.findContours(mk.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(np.concatenate(contours))
    return float(min(1.0, np.count_nonzero(mk) / max(1.0, cv2.contourArea(hull))))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.count_nonzero(a | b)
    return 1.0 if u == 0 else float(np.count_nonzero(a & b) / u)
