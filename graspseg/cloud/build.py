"""Mask → object cloud: cleanup, back-projection with precomputed rays, boundary band, scene points."""

from __future__ import annotations

import logging

import numpy as np

from ..core.camera import CameraRig
from ..core.errors import ConfigError, FrameMismatchError, MaskError, NoSupportPlaneError
from ..core.frame import RGBDFrame
from ..core.geometry import backproject_flat
from ..core.transform import CAMERA, TCP, Transform
from .band import band_margin_px, label_band_crop
from .cleanup import clean_depth
from .config import CloudConfig
from .plane import fit_support_plane
from .types import BandLabel, ObjectCloud, SupportPlane

log = logging.getLogger(__name__)


def check_mask(mask: np.ndarray, frame: RGBDFrame, config: CloudConfig) -> np.ndarray:
    """Validate an object mask for ``frame``; returns it as (H, W) bool.

    Raises
    ------
    MaskError
        Wrong size, empty, or smaller than ``config.min_mask_px``.
    """
    m = np.asarray(mask)
    if m.ndim != 2 or m.shape != (frame.height, frame.width):
        got = f"{m.shape[1]}x{m.shape[0]}" if m.ndim == 2 else f"shape {m.shape}"
        raise MaskError(
            f"mask is {got} but the frame is {frame.width}x{frame.height}; give an (H, W) mask of the frame's "
            "size (resize it with nearest-neighbour interpolation if it came from a smaller image)"
        )
    m = m if m.dtype == bool else m > 0
    area = int(np.count_nonzero(m))
    if area == 0:
        raise MaskError(
            "mask is empty (no pixel set): there is no object to build a cloud from; check the "
            "segmentation result or the prompt"
        )
    if area < max(1, config.min_mask_px):
        raise MaskError(
            f"mask has only {area} pixel{'s' if area != 1 else ''}, at least {config.min_mask_px} needed for a "
            "point cloud; prompt the whole object (a box or more points), or lower cloud.min_mask_px"
        )
    return m


def _tcp_from_camera(tcp_from_camera) -> Transform | None:
    if tcp_from_camera is None:
        return None
    t = getattr(tcp_from_camera, "tcp_from_camera", tcp_from_camera)  # a CameraRig works too
    if t is None:
        return None
    if not isinstance(t, Transform):
        raise ConfigError(f"tcp_from_camera must be a Transform ({TCP} <- {CAMERA}), got {type(t).__name__}")
    if (t.to_frame, t.from_frame) != (TCP, CAMERA):
        raise FrameMismatchError(f"tcp_from_camera must map '{CAMERA}' to '{TCP}', got {t.name}")
    return t


def build_object_cloud(
    frame: RGBDFrame,
    mask: np.ndarray,
    config: CloudConfig | None = None,
    *,
    tcp_from_camera: Transform | CameraRig | None = None,
    plane: SupportPlane | None = None,
) -> ObjectCloud:
    """The 3D points of a mask, with its boundary band and the scene around it.

    Steps: depth cleanup (range limits; flying pixels at discontinuities) around the mask; back-projection
    of the mask pixels with the intrinsics' precomputed rays; the boundary band (:func:`compute_band`);
    the scene points (every ``scene_stride_px``-th cleaned pixel, for collision checks); the support plane
    (fitted here when ``plane`` is None and ``config.fit_plane``; ``None`` when no plane is visible).

    Parameters
    ----------
    frame : RGBDFrame
        Colour and depth (metres) of one instant; ``frame.base_from_tcp`` gives the base frame.
    mask : (H, W) bool
        The object's mask.
    config : CloudConfig, optional
        Defaults to ``CloudConfig()``.
    tcp_from_camera : Transform or CameraRig, optional
        Hand-eye calibration; with ``frame.base_from_tcp`` it sets ``base_from_camera`` (clouds in base).
    plane : SupportPlane, optional
        A support plane already fitted (camera frame); skips the fit.

    Returns
    -------
    ObjectCloud
        Points in ``camera_color_optical`` (and ``points_in_base`` when the base pose is known).

    Raises
    ------
    MaskError
        Empty, one-pixel or wrongly sized mask; no valid depth under the mask.
    """
    cfg = config or CloudConfig()
    m = check_mask(mask, frame, cfg)
    t_cam = _tcp_from_camera(tcp_from_camera)
    intr = frame.intrinsics
    depth = frame.depth_m

    # cleanup of the whole frame at the scene stride (obstacles) and at full resolution near the mask
    scene_depth = depth[:: cfg.scene_stride_px, :: cfg.scene_stride_px]
    scene_clean, _ = clean_depth(scene_depth, cfg, stride_px=cfg.scene_stride_px)
    rows = np.flatnonzero(m.any(axis=1))
    cols = np.flatnonzero(m[rows[0] : rows[-1] + 1].any(axis=0))
    margin = band_margin_px(cfg) + 1  # +1: the flying-pixel test reads one more neighbour
    sy = slice(max(0, rows[0] - margin), min(frame.height, rows[-1] + 1 + margin))
    sx = slice(max(0, cols[0] - margin), min(frame.width, cols[-1] + 1 + margin))
    raw = depth[sy, sx]
    crop_clean, _ = clean_depth(raw, cfg)
    mc = m[sy, sx]
    n_mask = int(np.count_nonzero(mc))
    n_raw = int(np.count_nonzero(mc & (raw > 0)))
    near, far = cfg.depth_range_m
    in_range = mc & (raw > near) & (raw <= far)
    n_range = int(np.count_nonzero(in_range))
    keep_c = mc & (crop_clean > 0)
    n_clean = int(np.count_nonzero(keep_c))

    if n_clean < max(1, cfg.min_points):
        if n_raw == 0:
            why = (
                f"none of its {n_mask} pixels has a depth reading; move the camera (stereo needs texture and "
                "a minimum distance; shiny or dark surfaces return no depth) or check the depth image"
            )
        elif n_range == 0:
            zs = raw[mc & (raw > 0)]
            scale = frame.meta.get("depth_scale") if isinstance(frame.meta, dict) else None
            units = "" if float(zs.min()) <= far else (
                f", or check the depth scale{f' ({scale:g} m per raw unit)' if scale else ''}: readings 10x too far "
                "are 0.1 mm units (D405: depth_scale 0.0001) decoded as millimetres"
            )
            why = (
                f"all {n_raw} readings ({float(zs.min()):.3f}-{float(zs.max()):.3f} m) lie outside the depth range "
                f"{near:g}-{far:g} m; move the camera or widen cloud.depth_range_m{units}"
            )
        else:
            why = (
                f"only {n_clean} of {n_raw} readings survive the cleanup ({n_range} in range, the rest removed as "
                "flying pixels at depth discontinuities); move the camera for a clearer view, or lower "
                "cloud.flying_min_neighbors"
            )
        raise MaskError(f"mask has no usable depth: {why} (at least {cfg.min_points} points needed)")

    if plane is None and cfg.fit_plane:
        try:
            plane = fit_support_plane(frame, cfg, exclude_mask=m)
        except NoSupportPlaneError as e:
            log.info("%s", e)
            plane = None
    if plane is not None and plane.frame != CAMERA:
        raise FrameMismatchError(
            f"build_object_cloud needs the support plane in '{CAMERA}', got it in '{plane.frame}'"
        )

    band = m.view(np.uint8).copy()  # OBJECT (1) in the mask, OUTSIDE (0) elsewhere; the band is labelled next
    band_stats = label_band_crop(band, crop_clean, mc, sy, sx, intr, cfg, plane)

    # object points: mask pixels with cleaned depth, minus leaked (background) band pixels
    band_c = band[sy, sx]
    n_leak = int(np.count_nonzero(keep_c & (band_c == BandLabel.BACKGROUND)))
    if cfg.drop_background_band:
        keep_c &= band_c != BandLabel.BACKGROUND
    vs, us = np.nonzero(keep_c)
    width = frame.width
    flat = (vs + sy.start) * width + (
        us + sx.start
    )  # flat indices: np.take is much faster than 2-D fancy indexing
    pts = backproject_flat(flat, depth, intr)
    labels = band.reshape(-1).take(flat)
    labels[labels == BandLabel.BACKGROUND] = BandLabel.UNKNOWN  # only when kept (drop_background_band=False)
    uv = np.empty((len(pts), 2), np.int32)
    uv[:, 0] = us + sx.start
    uv[:, 1] = vs + sy.start
    colors = frame.color.reshape(-1, 3).take(flat, axis=0)
    if len(pts) < max(1, cfg.min_points):
        raise MaskError(
            f"mask has no usable depth: {len(pts)} points remain after removing {n_leak} pixels whose depth belongs "
            f"to the background (at least {cfg.min_points} needed); the mask is probably on the background — "
            "re-prompt on the object"
        )

    s = cfg.scene_stride_px
    svs, sus = np.nonzero(scene_clean > 0)
    sflat = svs * (s * width) + sus * s
    scene = backproject_flat(sflat, depth, intr)

    stats = {
        "mask_px": n_mask,
        "mask_depth_px": n_raw,
        "mask_out_of_range_px": n_raw - n_range,
        "mask_flying_px": n_range - n_clean,
        "mask_background_px": n_leak,
        "num_points": int(len(pts)),
        "num_contact_points": int(np.count_nonzero(labels == BandLabel.OBJECT)),
        "num_unknown_points": int(np.count_nonzero(labels == BandLabel.UNKNOWN)),
        "num_scene_points": int(len(scene)),
        "scene_stride_px": s,
        "plane_found": plane is not None,
        **band_stats,
    }
    base_from_camera = frame.base_from_camera(t_cam)
    return ObjectCloud(
        points_in_camera=pts,
        pixels_uv=uv,
        colors=colors,
        labels=labels,
        mask=m,
        band=band,
        scene_points_in_camera=scene,
        plane=plane,
        base_from_camera=base_from_camera,
        stats=stats,
    )
