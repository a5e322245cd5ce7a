"""Boundary-error helpers, in image space: the certainty map of the mask, perturbed masks and their points.

The expected mask-boundary error ``k`` (pixels) becomes metres at a point's depth ``z`` as
``k * z / f`` (``f`` the mean focal length). Beyond that lateral error, a mask that leaks by ``k`` pixels
drags in the depth of whatever lies behind the rim: :func:`leak_depth_m` measures that jump, and the
robustness re-check back-projects the leaked pixels themselves (:func:`mask_points`).
"""

from __future__ import annotations

import math

import numpy as np

from ..cloud.types import BandLabel

#: A pixel is "mixed depth" when it lies this far (metres, plus a z² term) in front of a neighbour and
#: behind another one: a flying pixel between an object edge and the background.
MIXED_DEPTH_A_M = 0.008
MIXED_DEPTH_B_PER_M = 0.01


def roi_of(mask: np.ndarray, pad: int) -> tuple[slice, slice]:
    """Bounding box of ``mask`` padded by ``pad`` pixels and clipped to the image: (rows, cols) slices."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    if not len(rows):
        return slice(0, 0), slice(0, 0)
    return (slice(max(0, rows[0] - pad), min(h, rows[-1] + pad + 1)),
            slice(max(0, cols[0] - pad), min(w, cols[-1] + pad + 1)))


def _disk(r: int) -> np.ndarray:
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return (x * x + y * y <= r * r + r).astype(np.uint8)


def erode(mask: np.ndarray, r: int) -> np.ndarray:
    import cv2

    if r <= 0:
        return mask.copy()
    return cv2.erode(mask.astype(np.uint8), _disk(r), borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def dilate(mask: np.ndarray, r: int) -> np.ndarray:
    import cv2

    if r <= 0:
        return mask.copy()
    return cv2.dilate(mask.astype(np.uint8), _disk(r)).astype(bool)


def mixed_depth(depth_m: np.ndarray, *, window: int = 5) -> np.ndarray:
    """(H, W) bool: valid pixels whose depth lies well between a nearer and a farther neighbour.

    Such pixels are typical of stereo sensors at depth edges (flying pixels) and of a mask that leaks
    over a rim: their 3D points float between the object and the background.
    """
    import cv2

    z = np.asarray(depth_m, np.float32)
    valid = z > 0
    k = np.ones((window, window), np.uint8)
    near = cv2.erode(np.where(valid, z, np.float32(1e6)), k, borderType=cv2.BORDER_REPLICATE)
    far = cv2.dilate(z, k, borderType=cv2.BORDER_REPLICATE)
    tau = MIXED_DEPTH_A_M + MIXED_DEPTH_B_PER_M * z * z
    return valid & (z - near > tau) & (far - z > tau)


def certainty_distance_px(mask: np.ndarray, depth_m: np.ndarray, band: np.ndarray | None, roi: tuple[slice, slice],
                          *, cap_px: float = 99.0, rim_budget_px: float = 0.0,
                          point_pixels: np.ndarray | None = None) -> np.ndarray:
    """Distance (px) from each ROI pixel to the nearest *uncertain* mask pixel, capped at ``cap_px``.

    Uncertain mask pixels: ``UNKNOWN`` in the boundary band, no depth reading, mixed (flying) depth, or
    on the image border (the object may continue outside the picture).

    ``rim_budget_px``: uncertain pixels within this distance of the mask's outline that carry *no false
    point* — no depth reading, a reading the cloud's cleanup removed (not in ``point_pixels``, (H, W) bool
    of the pixels that became cloud points), or an ``UNKNOWN`` band label on a reading that is not mixed — are boundary
    error already budgeted for (the opening margin adds ``2·error`` and the robustness check erodes and
    dilates the mask by it): they stay at distance 0 themselves but are not sources of the distance. A
    stereo camera loses depth, and a grazing view blurs depth, in a thin strip along every silhouette,
    exactly where side contacts lie. Mixed depth that became a point always counts: it is what a leaking
    mask drags in.

    Returns
    -------
    (h, w) float32 over the ROI; 0 on uncertain pixels.
    """
    import cv2

    m = mask[roi]
    z = depth_m[roi]
    mixed = m & mixed_depth(z)
    soft = m & (z <= 0)  # uncertain, but adds no false point
    if point_pixels is not None:
        soft |= m & ~point_pixels[roi]
    if band is not None:
        soft |= m & (band[roi] == BandLabel.UNKNOWN) & ~mixed
    unc = mixed | soft
    h, w = mask.shape
    r0, c0 = roi[0].start, roi[1].start
    if r0 == 0:
        unc[0] |= m[0]
    if c0 == 0:
        unc[:, 0] |= m[:, 0]
    if roi[0].stop == h:
        unc[-1] |= m[-1]
    if roi[1].stop == w:
        unc[:, -1] |= m[:, -1]
    if not unc.any():
        return np.full(m.shape, cap_px, np.float32)
    sources = unc
    if rim_budget_px > 0:
        inside = cv2.distanceTransform(np.pad(m, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
        sources = unc & ~(soft & (inside <= rim_budget_px))
    d = cv2.distanceTransform((~sources).astype(np.uint8), cv2.DIST_L2, 5) if sources.any() else \
        np.full(m.shape, cap_px, np.float32)
    d = np.minimum(d, cap_px)
    d[unc] = 0.0
    return d


def mask_points(depth_m: np.ndarray, ray_image: np.ndarray, mask: np.ndarray, roi: tuple[slice, slice]
                ) -> tuple[np.ndarray, np.ndarray]:
    """Back-project the valid-depth pixels of ``mask`` inside ``roi``.

    Returns
    -------
    points : (N, 3) float64, camera frame, metres
    pixels_uv : (N, 2) int32
    """
    m = mask[roi] & (depth_m[roi] > 0)
    v, u = np.nonzero(m)
    v = v + roi[0].start
    u = u + roi[1].start
    z = depth_m[v, u].astype(np.float64)
    rays = ray_image[v, u].astype(np.float64)
    pts = np.stack([rays[:, 0] * z, rays[:, 1] * z, z], axis=1)
    return pts, np.stack([u, v], axis=1).astype(np.int32)


def rim_flags(mask: np.ndarray, pixels_uv: np.ndarray, roi: tuple[slice, slice], width_px: float = 2.5) -> np.ndarray:
    """(N,) bool: pixels within ``width_px`` of the mask's outer boundary."""
    rim = rim_image(mask[roi], width_px)
    u = pixels_uv[:, 0] - roi[1].start
    v = pixels_uv[:, 1] - roi[0].start
    ok = (u >= 0) & (v >= 0) & (u < rim.shape[1]) & (v < rim.shape[0])
    out = np.ones(len(pixels_uv), bool)
    out[ok] = rim[v[ok], u[ok]]
    return out


def rim_image(mask: np.ndarray, width_px: float = 2.5) -> np.ndarray:
    """(h, w) bool: pixels within ``width_px`` of the outer boundary of ``mask`` (h, w) by the 3×3 chamfer
    distance (``cv2.DIST_L2``, mask 3; the image border counts as outside); True outside the mask too.

    For ``1 <= width_px < 1.91`` (one 8-neighbour step: 0.955 / 1.369 px) this is the mask minus its
    3×3 erosion, computed without the distance transform.
    """
    import cv2

    m = np.asarray(mask).astype(np.uint8)
    if 1.3693 <= width_px < 1.91:
        inner = cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
        return inner == 0
    d = cv2.distanceTransform(np.pad(m, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
    return d <= width_px


def leak_depth_m(depth_m: np.ndarray, contacts_uv: np.ndarray, outward_uv: np.ndarray, contact_z: np.ndarray,
                 k_px: float) -> np.ndarray:
    """Depth jump (metres) between each contact and the pixel ``k_px + 1`` outward along ``outward_uv``.

    Parameters
    ----------
    contacts_uv : (N, 2) float
    outward_uv : (N, 2) float
        Image direction pointing away from the object at each contact (normalised here).
    contact_z : (N,) float
        Depth of each contact, metres.

    Returns
    -------
    (N,) float64; the full background depth jump where the leaked pixel has no reading is reported as 0.
    """
    h, w = depth_m.shape
    d = np.asarray(outward_uv, np.float64)
    n = np.linalg.norm(d, axis=1, keepdims=True)
    d = np.where(n > 1e-9, d / np.maximum(n, 1e-9), 0.0)
    step = max(1.0, math.ceil(k_px)) + 1.0
    uv = np.rint(np.asarray(contacts_uv, np.float64) + step * d).astype(int)
    uv[:, 0] = np.clip(uv[:, 0], 0, w - 1)
    uv[:, 1] = np.clip(uv[:, 1], 0, h - 1)
    z = depth_m[uv[:, 1], uv[:, 0]].astype(np.float64)
    return np.where(z > 0, np.abs(z - contact_z), 0.0)
