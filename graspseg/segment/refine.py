"""Rim refinement across modalities: a colour mask checked against depth, a depth mask against colour.

``refine_mask_with_depth`` — a SAM mask is predicted from colour at 256×256 and upsampled, so its rim is a
few pixels off, and it bleeds onto the background where colours match. Depth knows better wherever the
object stands in front of what is behind it. Within a band around the rim:

1. the *core* (the mask eroded by ``band_px``) is trusted; the *outside* (beyond the mask dilated by
   ``band_px``) is background;
2. each band pixel gets the depth of its nearest core pixel and of its nearest outside pixel; where these
   differ by more than ``jump_m`` (a depth discontinuity crosses the band), the pixel goes to whichever
   depth it is closer to — this drops pixels across a depth jump and adds object pixels the mask missed;
3. where the two depths are alike (the object's foot on the table, a flat label) the original label stays;
4. pieces no longer connected to the core are dropped.

``refine_mask_with_color`` — the converse for the embedded ``rgbd`` segmenter, whose masks follow the
depth silhouette: depth is registered to colour only approximately on most sensors and its edges are
ragged, so the rim is moved onto the colour edge where colour clearly says where it is.

``fill_enclosed_gaps`` — a mask decided from depth has gaps inside it wherever the camera gave no reading
(specular or dark spots) or a part was left out. A gap enclosed by the mask
belongs to the object unless depth shows a different surface through it (a handle's opening, a hole in a
part): each enclosed gap is filled when it has (almost) no depth reading, or when its readings lie on the
surface around it (within the depth-jump threshold).
"""

from __future__ import annotations

import cv2
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


def refine_mask_with_color(mask: np.ndarray, lab: np.ndarray, *, band_px: int = 4, min_gain: float = 1.5,
                           window_px: int | None = None, gradients: tuple | None = None) -> np.ndarray:
    """Move ``mask``'s rim onto the colour edge within ``band_px`` of it, where colour clearly says so.

    A depth mask's rim is off the colour outline by the depth-to-colour misregistration and the ragged
    depth edge (1–6 px on many sensors). Every outline parallel to the rim, moved by ``c`` pixels
    (``-band_px..band_px``, > 0 inwards), is scored locally by the mean colour-gradient magnitude *across*
    it (the directional derivative of CIELAB along the rim normal, on the two pixel rings either side of
    the moved outline, averaged in a ``window_px`` box, default ``4 * band_px + 1``). Each pixel takes the
    move of its neighbourhood whose score, divided by ``min_gain ** |c|``, is best — the rim itself
    (``c = 0``) included, so a rim on its colour edge stays and a farther edge must be much stronger. The
    largest piece is kept.

    Parameters
    ----------
    mask : (H, W) bool
        The depth-derived mask.
    lab : (H, W, 3) float32
        The colour image registered to the mask, CIELAB (any fixed scaling).
    band_px : int
        Largest move of the rim, pixels.
    min_gain : float
        How much stronger (ratio) an edge one pixel farther must be to win.
    gradients : (gx, gy), optional
        :func:`lab_gradients` of ``lab``, when several masks of one image are refined.

    Returns
    -------
    (H, W) bool
        The refined mask.
    """
    mask = np.asarray(mask, dtype=bool)
    lab = np.asarray(lab, dtype=np.float32)
    if lab.shape[:2] != mask.shape or lab.ndim != 3 or lab.shape[2] != 3:
        raise ShapeError(f"lab must be (H, W, 3) matching the mask {mask.shape}, got {lab.shape}")
    if band_px < 1 or min_gain < 1:
        raise ConfigError(f"band_px must be >= 1 and min_gain >= 1; got {band_px}, {min_gain}")
    if not mask.any() or mask.all():
        return mask.copy()
    ring, sd = _rings(mask)
    nx = cv2.Sobel(sd, cv2.CV_32F, 1, 0, ksize=3)
    ny = cv2.Sobel(sd, cv2.CV_32F, 0, 1, ksize=3)
    norm = np.maximum(np.hypot(nx, ny), 1e-6)
    gx, gy = gradients if gradients is not None else lab_gradients(lab)
    across = np.sqrt(((gx * (nx / norm)[..., None] + gy * (ny / norm)[..., None]) ** 2).sum(2))
    k = window_px or 4 * band_px + 1
    edge = {}  # ring index -> local mean gradient across that ring
    pair = np.empty(mask.shape + (2,), np.float32)  # (on ring, gradient on ring): one box filter for both
    for r in range(-band_px, band_px + 2):
        on = ring == r
        pair[..., 0] = on
        pair[..., 1] = np.where(on, across, 0.0)
        ns = cv2.boxFilter(pair, -1, (k, k), normalize=False)
        edge[r] = ns[..., 1] / np.maximum(ns[..., 0], 1e-6)
    # a move by c px must find an edge min_gain**|c| times stronger: small disagreements are likely,
    # large ones need strong evidence (a shadow edge beside the object's own edge does not win)
    best = 0.5 * (edge[0] + edge[1])
    shift = np.zeros(mask.shape, np.int32)
    for c in range(-band_px, band_px + 1):
        if c == 0:
            continue
        sc = 0.5 * (edge[c] + edge[c + 1]) / min_gain ** abs(c)
        better = sc > best
        best = np.where(better, sc, best)
        shift[better] = c
    refined = ring > shift
    n_lab, labels = cv2.connectedComponents(refined.astype(np.uint8), connectivity=4)
    if n_lab > 2:
        size = np.bincount(labels.ravel(), minlength=n_lab)
        size[0] = 0
        refined = labels == int(size.argmax())
    return refined


def fill_enclosed_gaps(mask: np.ndarray, depth_m: np.ndarray, *, jump_a_m: float, jump_b_per_m: float,
                       min_valid_fraction: float = 0.1, ring_px: int = 3) -> np.ndarray:
    """``mask`` with the gaps it encloses filled, except where depth sees another surface through them.

    Parameters
    ----------
    mask : (H, W) bool
    depth_m : (H, W) float32
        Depth registered to the mask, metres, 0 = no reading.
    jump_a_m, jump_b_per_m : float
        A reading is on another surface when it differs from the gap's surrounding mask depth ``z`` by more
        than ``jump_a_m + jump_b_per_m * z**2`` (the segmenter's depth-jump threshold).
    min_valid_fraction : float
        A gap with fewer readings than this fraction of its pixels (or under 10) is filled: the camera did not
        see through it.
    ring_px : int
        The surrounding depth is the median over the mask pixels within this many pixels of the gap.

    Returns
    -------
    (H, W) bool
        The mask, a superset of the input.
    """
    mask = np.asarray(mask, dtype=bool)
    depth = np.asarray(depth_m, dtype=np.float32)
    if mask.shape != depth.shape:
        raise ShapeError(f"mask is {mask.shape} but depth is {depth.shape}; register depth to the mask's image")
    if jump_a_m <= 0 or jump_b_per_m < 0 or not 0 <= min_valid_fraction <= 1:
        raise ConfigError(f"jump_a_m must be > 0, jump_b_per_m >= 0 and min_valid_fraction in [0, 1]; got "
                          f"{jump_a_m}, {jump_b_per_m}, {min_valid_fraction}")
    n, comp = cv2.connectedComponents((~mask).view(np.uint8), connectivity=4)
    if n <= 2:  # the background is one piece (or absent): nothing enclosed
        return mask.copy()
    outer = np.zeros(n, bool)
    outer[np.unique(np.concatenate([comp[0], comp[-1], comp[:, 0], comp[:, -1]]))] = True
    outer[0] = True  # label 0 is the mask itself
    if outer.all():
        return mask.copy()
    gaps = ~outer[comp]
    ys, xs = np.nonzero(gaps)
    r = ring_px
    win = (slice(max(0, ys.min() - r), ys.max() + r + 1), slice(max(0, xs.min() - r), xs.max() + r + 1))
    labels = np.where(gaps[win], comp[win], 0).astype(np.int32)
    z, inside = depth[win], mask[win]
    valid = z > 0
    area = np.bincount(labels.ravel(), minlength=n)
    n_valid = np.bincount(labels.ravel(), weights=valid.ravel(), minlength=n)
    # the surface around each gap: median depth of the mask pixels with depth within ring_px (nearest gap's label)
    near = cv2.dilate(labels.astype(np.float32), np.ones((2 * r + 1, 2 * r + 1), np.uint8)).astype(np.int32)
    sel = (near > 0) & inside & valid
    lab_r, z_r = near[sel], z[sel]
    order = np.lexsort((z_r, lab_r))
    lab_r, z_r = lab_r[order], z_r[order]
    first = np.searchsorted(lab_r, np.arange(n))
    count = np.bincount(lab_r, minlength=n)
    z_ring = np.zeros(n, np.float64)
    has = count > 0
    z_ring[has] = z_r[first[has] + count[has] // 2]
    zr = z_ring[labels]
    on_surface = (labels > 0) & valid & (np.abs(z - zr) <= jump_a_m + jump_b_per_m * zr * zr)
    n_on = np.bincount(labels.ravel(), weights=on_surface.ravel(), minlength=n)
    unseen = n_valid < np.maximum(10, min_valid_fraction * area)
    same = (z_ring > 0) & (n_on >= 0.5 * np.maximum(n_valid, 1))
    fill = (unseen | same) & ~outer
    out = mask.copy()
    out[win] |= fill[labels]
    return out


def lab_gradients(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical derivatives (H, W, 3) float32 of a CIELAB image (3×3 Sobel / 8)."""
    return (cv2.Sobel(lab, cv2.CV_32F, 1, 0, ksize=3, scale=0.125),
            cv2.Sobel(lab, cv2.CV_32F, 0, 1, ksize=3, scale=0.125))


def _rings(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ring index (H, W) int32 — 1, 2, ... inside (1 = the rim pixels), 0, -1, ... outside; the rim lies
    between 0 and 1 — and the signed distance (H, W) float32 to the rim, px (> 0 inside)."""
    m8 = mask.astype(np.uint8)
    d_in = cv2.distanceTransform(m8, cv2.DIST_L2, 5)
    d_out = cv2.distanceTransform(1 - m8, cv2.DIST_L2, 5)
    ring = np.where(mask, np.ceil(d_in - 0.5), 1 - np.ceil(d_out - 0.5)).astype(np.int32)
    return ring, np.where(mask, d_in, -d_out).astype(np.float32)
