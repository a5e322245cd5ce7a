"""Depth cleanup: range limits and flying-pixel removal at depth discontinuities."""

from __future__ import annotations

import numpy as np

from ..core.errors import ShapeError
from .config import CloudConfig

# the 4 neighbour pairs of an 8-connected grid, as (pixel, neighbour) slices
_PAIRS = (
    ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),  # right
    ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),  # down
    ((slice(None, -1), slice(None, -1)), (slice(1, None), slice(1, None))),  # down-right
    ((slice(None, -1), slice(1, None)), (slice(1, None), slice(None, -1))),  # down-left
)


def range_mask(depth_m: np.ndarray, config: CloudConfig) -> np.ndarray:
    """(H, W) bool: pixels with a reading inside ``config.depth_range_m``.

    Parameters
    ----------
    depth_m : (H, W) float32
        Depth in metres, 0 = no reading.
    """
    near, far = config.depth_range_m
    d = np.asarray(depth_m)
    return (d > max(near, 0.0)) & (d <= far) if near > 0 else (d > 0) & (d <= far)


def surface_support(depth_m: np.ndarray, config: CloudConfig, *, stride_px: int = 1) -> np.ndarray:
    """Number of 8-neighbours on the same surface as each pixel.

    Two neighbours lie on one surface when their depths differ by at most ``stride_px · (a + b·z²)``
    with z the larger of the two depths (:meth:`CloudConfig.surface_tolerance_m`; ``stride_px`` is the
    pixel spacing of a subsampled image).

    Parameters
    ----------
    depth_m : (H, W) float32
        Depth in metres, 0 = no reading (never support).

    Returns
    -------
    (H, W) uint8
        0..8; 0 where the pixel has no reading.
    """
    d = np.asarray(depth_m, dtype=np.float32)
    if d.ndim != 2:
        raise ShapeError(f"depth_m must be an (H, W) image, got shape {d.shape}")
    h, w = d.shape
    valid = d > 0
    tol = (config.surface_tolerance_m(d) * np.float32(stride_px)).astype(np.float32)
    count = np.zeros((h, w), np.uint8)
    # each unordered neighbour pair once (right, down, down-right, down-left), credited to both pixels;
    # the pair's tolerance is the larger of the two (tolerance grows with depth)
    for a_sl, b_sl in _PAIRS:
        da, db = d[a_sl], d[b_sl]
        diff = np.abs(da - db)
        ok = diff <= np.maximum(tol[a_sl], tol[b_sl])
        ok &= valid[a_sl]
        ok &= valid[b_sl]
        count[a_sl] += ok
        count[b_sl] += ok
    return count


def clean_depth(depth_m: np.ndarray, config: CloudConfig, *, stride_px: int = 1) -> tuple[np.ndarray, dict]:
    """Depth with out-of-range readings and flying pixels set to 0 (no reading).

    Parameters
    ----------
    depth_m : (H, W) float32
        Depth in metres, 0 = no reading.
    config : CloudConfig
        ``depth_range_m``, ``flying_a_m``, ``flying_b_per_m``, ``flying_min_neighbors``.
    stride_px : int
        Pixel spacing of ``depth_m`` relative to the sensor image (for subsampled images).

    Returns
    -------
    depth : (H, W) float32
        Cleaned copy, metres.
    stats : dict
        ``valid_px`` (readings before), ``out_of_range_px``, ``flying_px``, ``kept_px``.
    """
    d = np.asarray(depth_m, dtype=np.float32)
    valid = d > 0
    in_range = range_mask(d, config)
    out = np.where(in_range, d, np.float32(0)).astype(np.float32, copy=False)
    n_flying = 0
    if config.flying_min_neighbors > 0:
        flying = in_range & (surface_support(out, config, stride_px=stride_px) < config.flying_min_neighbors)
        n_flying = int(np.count_nonzero(flying))
        if n_flying:
            out[flying] = 0
    n_valid = int(np.count_nonzero(valid))
    n_range = int(np.count_nonzero(in_range))
    stats = {
        "valid_px": n_valid,
        "out_of_range_px": n_valid - n_range,
        "flying_px": n_flying,
        "kept_px": n_range - n_flying,
    }
    return out, stats
