"""Depth-aware refinement of a colour-only mask (SAM's): snap its rim to depth discontinuities.

A SAM mask is predicted from colour at 256×256 and upsampled, so its rim is a few pixels off, and it
bleeds onto the background where colours match. Depth knows better wherever the object stands in front of
what is behind it. Within a band around the rim:

1. the *core* (the mask eroded by ``band_px``) is trusted; the *outside* (beyond the mask dilated by
   ``band_px``) is background;
2. each band pixel gets the depth of its nearest core pixel and of its nearest outside pixel; where these
   differ by more than ``jump_m`` (a depth discontinuity crosses the band), the pixel goes to whichever
   depth it is closer to — this drops pixels across a depth jump and adds object pixels the mask missed;
3. where the two depths are alike (the object's foot on the table, a flat label) the original label stays;
4. pieces no longer connected to the core are dropped.

No SAM pipeline uses the depth image; this adds it as an option (``refine_mask_with_depth``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..core.errors import ConfigError, ShapeError


def _disk(radius: int) -> np.ndarray:
    y, x = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    return x * x + y * y <= radius * radius


def refine_mask_with_depth(mask: np.ndarray, depth_m: np.ndarray, *, band_px: int = 6, jump_m: float = 0.015,
                           jump_rel: float = 0.02) -> np.ndarray:
    """Snap ``mask``'s rim to depth discontinuities.

    Parameters
    ----------
    mask : (H, W) bool
        The mask to refine (e.g. a SAM candidate).
    depth_m : (H, W) float32
        Depth registered to the mask, metres, 0 = no reading (such pixels keep their label).
    band_px : int
        Half-width of the band around the rim that may change, pixels.
    jump_m, jump_rel : float
        A discontinuity is a depth difference above ``jump_m + jump_rel * depth`` (metres).

    Returns
    -------
    (H, W) bool
        The refined mask (the input mask when it is too thin to have a core).
    """
    mask = np.asarray(mask, dtype=bool)
    depth = np.asarray(depth_m, dtype=np.float32)
    if mask.shape != depth.shape:
        raise ShapeError(f"mask is {mask.shape} but depth is {depth.shape}; register depth to the mask's image")
    if band_px < 1 or jump_m <= 0 or jump_rel < 0:
        raise ConfigError(f"band_px must be >= 1 and jump_m > 0, jump_rel >= 0; got {band_px}, {jump_m}, {jump_rel}")
    if not mask.any():
        return mask.copy()
    valid = depth > 0
    disk = _disk(band_px)
    core = ndimage.binary_erosion(mask, structure=disk) & valid
    if not core.any():
        return mask.copy()
    outside = ~ndimage.binary_dilation(mask, structure=disk) & valid
    if not outside.any():
        return mask.copy()
    band = ~(core | outside)
    # Depth of the nearest core pixel and of the nearest outside pixel, for every pixel.
    _, core_idx = ndimage.distance_transform_edt(~core, return_indices=True)
    _, out_idx = ndimage.distance_transform_edt(~outside, return_indices=True)
    d_core = depth[core_idx[0], core_idx[1]]
    d_out = depth[out_idx[0], out_idx[1]]
    threshold = jump_m + jump_rel * np.minimum(d_core, d_out)
    decisive = band & valid & (np.abs(d_core - d_out) > threshold)
    closer_to_core = np.abs(depth - d_core) < np.abs(depth - d_out)
    refined = mask.copy()
    refined[decisive] = closer_to_core[decisive]
    # Keep only what is connected to the core.
    labels, n = ndimage.label(refined)
    if n > 1:
        keep = np.unique(labels[core & refined])
        refined = np.isin(labels, keep[keep > 0])
    return refined
