"""The boundary band: rim pixels of a mask labelled object / background / unknown from depth jumps.

A mask from any segmenter is a few pixels off at the rim. Within ``band_px`` of the mask edge (both
sides) every pixel is compared with two local reference depths: the object's (distance-weighted mean
depth of the mask interior nearby) and the background's (the same outside the band). A pixel whose depth agrees
with the object is ``OBJECT``; one that agrees with the background — or lies clearly behind the object,
or on the support plane while the object nearby stands above it — is ``BACKGROUND`` (inside the mask:
the mask leaked); a pixel without depth, or whose depth fits both or neither, is ``UNKNOWN``.
``UNKNOWN`` points may be obstacles but are never grasp contacts.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.camera import CameraIntrinsics
from ..core.errors import FrameMismatchError, ShapeError
from ..core.transform import CAMERA
from .config import CloudConfig
from .types import BandLabel, SupportPlane

_OBJ, _BG, _UNK, _OUT = (
    np.uint8(BandLabel.OBJECT),
    np.uint8(BandLabel.BACKGROUND),
    np.uint8(BandLabel.UNKNOWN),
    np.uint8(BandLabel.OUTSIDE),
)


def _crop_bounds(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask[rows[0] : rows[-1] + 1].any(axis=0))
    h, w = mask.shape
    return (
        slice(max(0, rows[0] - margin), min(h, rows[-1] + 1 + margin)),
        slice(max(0, cols[0] - margin), min(w, cols[-1] + 1 + margin)),
    )


def _smooth(img: np.ndarray, k: int, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)


def compute_band(
    depth_m: np.ndarray,
    mask: np.ndarray,
    intrinsics: CameraIntrinsics,
    config: CloudConfig | None = None,
    *,
    plane: SupportPlane | None = None,
) -> tuple[np.ndarray, dict]:
    """Label the boundary band of ``mask`` from depth.

    Parameters
    ----------
    depth_m : (H, W) float32
        Cleaned depth (:func:`~graspseg.cloud.cleanup.clean_depth`), metres, 0 = no reading.
    mask : (H, W) bool
        The object mask.
    intrinsics : CameraIntrinsics
        For the W×H image (pixel size, rays for the plane test).
    config : CloudConfig, optional
        ``band_px``, ``band_a_m``, ``band_b_per_m``, ``band_max_slope``.
    plane : SupportPlane, optional
        The support plane in ``camera_color_optical``; band pixels on it next to an object standing
        above it are ``BACKGROUND``, and object-like pixels on it next to an object surface at table
        height (where the object touches the table) are ``UNKNOWN``.

    Returns
    -------
    band : (H, W) uint8
        :class:`BandLabel` per pixel: ``OBJECT`` in the mask interior, ``OUTSIDE`` outside the mask and
        the band, the band pixels labelled.
    stats : dict
        Per-label pixel counts of the inner band (``band_inner_*``, mask pixels near the edge) and the
        outer band (``band_outer_*``, pixels just outside the mask), ``band_px``, ``band_leak_fraction``
        (inner pixels labelled background) and ``band_missed_fraction`` (outer pixels labelled object:
        the mask is too tight).
    """
    cfg = config or CloudConfig()
    depth = np.asarray(depth_m, dtype=np.float32)
    m = np.asarray(mask)
    if m.shape != depth.shape:
        raise ShapeError(
            f"mask shape {m.shape} differs from the depth shape {depth.shape}; give an (H, W) mask"
        )
    m = m if m.dtype == bool else m > 0
    if plane is not None and plane.frame != CAMERA:
        raise FrameMismatchError(
            f"compute_band needs the support plane in '{CAMERA}', got it in '{plane.frame}'"
        )
    band = m.view(np.uint8).copy()  # OBJECT (1) inside, OUTSIDE (0) elsewhere
    bounds = _crop_bounds(m, margin=band_margin_px(cfg)) if cfg.band_px > 0 else None
    if bounds is None:
        return band, _empty_stats(cfg)
    sy, sx = bounds
    stats = label_band_crop(band, depth[sy, sx], m[sy, sx], sy, sx, intrinsics, cfg, plane)
    return band, stats


def band_margin_px(config: CloudConfig) -> int:
    """Pixels of context around the mask's bounding box that the band computation reads."""
    r = int(config.band_px)
    return r + (2 * r + 1) + 2


def _empty_stats(cfg: CloudConfig) -> dict:
    stats: dict = {"band_px": int(cfg.band_px)}
    for side in ("inner", "outer"):
        for label in ("object", "background", "unknown"):
            stats[f"band_{side}_{label}_px"] = 0
    stats["band_leak_fraction"] = 0.0
    stats["band_missed_fraction"] = 0.0
    stats["band_thin_object"] = False
    return stats


def label_band_crop(
    band: np.ndarray,
    dc: np.ndarray,
    mc: np.ndarray,
    sy: slice,
    sx: slice,
    intrinsics: CameraIntrinsics,
    cfg: CloudConfig,
    plane: SupportPlane | None,
) -> dict:
    """Label the band inside the crop ``(sy, sx)`` and write the labels into ``band`` (H, W) uint8.

    ``dc`` and ``mc`` are the crop of the cleaned depth (float32, metres) and of the mask (bool); the crop
    must extend :func:`band_margin_px` beyond the mask where the image allows. Returns the band stats.
    """
    stats = _empty_stats(cfg)
    r = int(cfg.band_px)
    if r == 0:
        return stats
    # reference depths are Gaussian-weighted means (sigma = band_px) over a window reaching 2·band_px + 1
    # pixels: nearby reference pixels dominate, farther ones count where there is nothing nearer
    k_ref = 2 * (2 * r + 1) + 1
    mc = mc.view(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    interior = cv2.erode(mc, kernel)
    dilated = cv2.dilate(mc, kernel)
    inner = (mc > 0) & (interior == 0)
    outer = (dilated > 0) & (mc == 0)
    valid = dc > 0
    obj_ref = (interior > 0) & valid
    if not obj_ref.any():  # a thin object: no interior survives the erosion; use the whole mask
        obj_ref = (mc > 0) & valid
        stats["band_thin_object"] = True
    bg_ref = (dilated == 0) & valid

    vs, us = np.nonzero(inner | outer)
    is_inner = inner[vs, us]
    z = dc[vs, us]
    # reference depths: weighted means of the reference pixels around each band pixel
    obj_w = obj_ref.astype(np.float32)
    bg_w = bg_ref.astype(np.float32)
    cnt_obj = _smooth(obj_w, k_ref, r)[vs, us]
    sum_obj = _smooth(dc * obj_w, k_ref, r)[vs, us]
    cnt_bg = _smooth(bg_w, k_ref, r)[vs, us]
    sum_bg = _smooth(dc * bg_w, k_ref, r)[vs, us]
    has_obj = cnt_obj > 1e-4
    has_bg = cnt_bg > 1e-4
    z_obj = np.where(has_obj, sum_obj / np.maximum(cnt_obj, 1e-4), 0).astype(np.float32)
    z_bg = np.where(has_bg, sum_bg / np.maximum(cnt_bg, 1e-4), 0).astype(np.float32)

    has_z = z > 0
    tol = cfg.band_tolerance_m(z)
    pixel_m = z * np.float32(2.0 / (intrinsics.fx + intrinsics.fy))
    allow = tol + np.float32(cfg.band_max_slope) * pixel_m * np.float32(r + 1)
    d_obj = np.abs(z - z_obj)
    d_bg = np.abs(z - z_bg)
    obj_like = has_z & has_obj & (d_obj <= allow)
    bg_like = has_z & has_bg & (d_bg <= allow)
    both = obj_like & bg_like
    labels = np.full(z.shape, _UNK, np.uint8)
    labels[obj_like & ~bg_like] = _OBJ
    labels[bg_like & ~obj_like] = _BG
    labels[both & (d_obj + tol < d_bg)] = _OBJ
    labels[both & (d_bg + tol < d_obj)] = _BG
    behind = has_z & has_obj & ~obj_like & ~bg_like & (z > z_obj + allow)
    labels[behind] = _BG

    if plane is not None and len(z):
        rays = intrinsics.ray_image[sy, sx][vs, us]
        n = plane.normal.astype(np.float32)
        ray_dot = rays[:, 0] * n[0] + rays[:, 1] * n[1] + n[2]
        h = z * ray_dot + np.float32(plane.offset)
        h_obj = z_obj * ray_dot + np.float32(plane.offset)
        thr = np.float32(plane.inlier_threshold_m or cfg.plane_threshold_m)
        on_plane = has_z & (np.abs(h) <= thr)
        obj_above = has_obj & (h_obj > 2 * thr)
        labels[on_plane & obj_above] = _BG
        labels[on_plane & ~obj_above & (labels == _OBJ)] = _UNK

    band[sy, sx][vs, us] = labels  # basic slicing gives a view: this writes into band
    for side, sel in (("inner", is_inner), ("outer", ~is_inner)):
        lab = labels[sel]
        for name, val in (("object", _OBJ), ("background", _BG), ("unknown", _UNK)):
            stats[f"band_{side}_{name}_px"] = int(np.count_nonzero(lab == val))
    n_inner = int(is_inner.sum())
    n_outer = len(is_inner) - n_inner
    stats["band_leak_fraction"] = stats["band_inner_background_px"] / n_inner if n_inner else 0.0
    stats["band_missed_fraction"] = stats["band_outer_object_px"] / n_outer if n_outer else 0.0
    return stats
