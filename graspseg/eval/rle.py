"""COCO mask encodings in numpy: run-length (uncompressed and compressed strings) and polygons.

The algorithms are those of the COCO API (``common/maskApi.c``), re-implemented without pycocotools:

* **RLE counts**: the mask is read in column-major order (down the first column, then the next); counts
  alternate runs of 0 and 1, starting with 0 (a first count of 0 when the first pixel is set).
  ``{"size": [H, W], "counts": [c0, c1, ...]}`` is the *uncompressed* form (COCO's ``iscrowd`` annotations).
* **Compressed string** (``rleToString`` / ``rleFrString``): each count from the fourth on is stored as the
  difference to the count two places before it; every value is cut into 5-bit groups, least significant
  first, each written as one character ``48 + group``, with 0x20 added while more groups follow. A value
  ends when the remaining bits are all copies of the sign bit (bit 0x10 of the last group), so negative
  differences take few characters.
* **Polygons**: ``[x1, y1, x2, y2, ...]`` in COCO's continuous coordinates (pixel ``(u, v)`` covers
  ``[u, u+1) × [v, v+1)``), filled by sampling pixel centres (even-odd scanline). On random convex
  polygons this differs from pycocotools' ``frPyObjects`` (its own 5x-upsampled rasteriser) by about 2 pixels
  per polygon, at the rim; ``cv2.fillPoly``, which fills every pixel an edge touches, differs by about 20.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.errors import ConfigError, ShapeError


def rle_counts(mask: np.ndarray) -> list[int]:
    """Column-major run lengths of an (H, W) bool mask, starting with the number of leading zeros.

    >>> m = np.zeros((3, 4), bool); m[1, 1:3] = True; m[0, 3] = True
    >>> rle_counts(m)  # column-major: 0000 1 00 1 0 1 00
    [4, 1, 2, 1, 1, 1, 2]
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ShapeError(f"mask must be an (H, W) image, got shape {m.shape}")
    flat = m.astype(bool).T.ravel()
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(edges).tolist()
    if flat[0]:
        counts.insert(0, 0)
    return [int(c) for c in counts]


def rle_decode_counts(counts, size) -> np.ndarray:
    """(H, W) bool mask from column-major run lengths (see :func:`rle_counts`)."""
    h, w = _size(size)
    c = np.asarray(counts, dtype=np.int64).reshape(-1)
    if (c < 0).any():
        raise ConfigError(f"RLE counts must be >= 0, got {int(c.min())}; the annotation is corrupt")
    if int(c.sum()) != h * w:
        raise ShapeError(f"RLE counts add up to {int(c.sum())} pixels but its size {h}x{w} (H x W) has {h * w}; "
                         "the counts belong to another image size")
    values = (np.arange(len(c)) % 2).astype(bool)
    flat = np.repeat(values, c)
    return np.ascontiguousarray(flat.reshape(w, h).T)


def counts_to_string(counts) -> str:
    """COCO's compressed RLE string (``rleToString``) of run lengths.

    >>> counts_to_string([4, 1, 2, 1, 1, 1, 2])
    '4120O01'
    >>> counts_to_string([40, 60])
    'X1l1'
    """
    out = []
    cnts = [int(x) for x in counts]
    for i, x in enumerate(cnts):
        if i > 2:
            x -= cnts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift: Python ints keep the sign like C's signed long
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def string_to_counts(text: str | bytes) -> list[int]:
    """Run lengths of COCO's compressed RLE string (``rleFrString``).

    >>> string_to_counts('4120O01')
    [4, 1, 2, 1, 1, 1, 2]
    """
    s = text.decode("ascii") if isinstance(text, bytes) else str(text)
    cnts: list[int] = []
    p, n = 0, len(s)
    while p < n:
        x, k, more = 0, 0, True
        while more:
            if p >= n:
                raise ConfigError(f"compressed RLE string {s[:40]!r}... ends inside a count; the annotation is truncated")
            c = ord(s[p]) - 48
            if not 0 <= c < 64:
                raise ConfigError(f"compressed RLE string has character {s[p]!r} at {p}; only chars '0'..'o' occur")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(cnts) > 2:
            x += cnts[-2]
        cnts.append(x)
    return cnts


def _size(size) -> tuple[int, int]:
    try:
        h, w = (int(x) for x in size)
    except (TypeError, ValueError):
        raise ConfigError(f"RLE size must be [height, width], got {size!r}") from None
    if h < 0 or w < 0:
        raise ConfigError(f"RLE size must be [height, width] >= 0, got {size!r}")
    return h, w


def encode_rle(mask: np.ndarray, *, compressed: bool = True) -> dict:
    """COCO RLE of an (H, W) bool mask: ``{"size": [H, W], "counts": str | list[int]}``."""
    m = np.asarray(mask)
    counts = rle_counts(m)
    return {"size": [int(m.shape[0]), int(m.shape[1])],
            "counts": counts_to_string(counts) if compressed else counts}


def decode_rle(rle: dict) -> np.ndarray:
    """(H, W) bool mask of a COCO RLE (compressed string or uncompressed list of counts)."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ConfigError(f"an RLE is {{'size': [H, W], 'counts': ...}}, got {str(rle)[:80]}")
    counts = rle["counts"]
    if isinstance(counts, str | bytes):
        counts = string_to_counts(counts)
    elif not isinstance(counts, list):
        raise ConfigError(f"RLE counts must be a string or a list of ints, got {type(counts).__name__}")
    return rle_decode_counts(counts, rle["size"])


def rle_area(rle: dict) -> int:
    """Pixel count of a COCO RLE without decoding the image."""
    counts = rle["counts"]
    if isinstance(counts, str | bytes):
        counts = string_to_counts(counts)
    return int(sum(counts[1::2]))


def _fill_polygon(xy: np.ndarray, height: int, width: int) -> np.ndarray:
    """Even-odd scanline fill sampled at pixel centres ``(u + 0.5, v + 0.5)`` (vectorised over rows and edges)."""
    x0, y0 = xy[:, 0], xy[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    yc = np.arange(height, dtype=np.float64)[:, None] + 0.5
    hit = (yc >= np.minimum(y0, y1)) & (yc < np.maximum(y0, y1))  # half-open: each vertex counted once
    rows, edges = np.nonzero(hit)
    dy = (y1 - y0)[edges]
    xs = x0[edges] + (yc[rows, 0] - y0[edges]) * (x1 - x0)[edges] / dy
    # the first pixel whose centre lies at or right of the crossing toggles inside/outside
    u = np.clip(np.ceil(xs - 0.5), 0, width).astype(np.int64)
    toggles = np.zeros((height, width + 1), np.int32)
    np.add.at(toggles, (rows, u), 1)
    return (np.cumsum(toggles, axis=1)[:, :width] % 2) == 1


def decode_polygons(polygons, height: int, width: int) -> np.ndarray:
    """(H, W) bool union of COCO polygons ``[[x1, y1, x2, y2, ...], ...]`` (continuous pixel coordinates).

    A pixel is inside a polygon when its centre is (even-odd rule; a centre on a left or top edge is
    inside, on a right or bottom edge outside), the polygons of one annotation are united. cv2.fillPoly is
    not used: it fills every pixel an edge touches (about ten times the disagreement with pycocotools).
    """
    if not isinstance(polygons, list | tuple):
        raise ConfigError(f"polygon segmentation must be a list of [x1, y1, x2, y2, ...] lists, got "
                          f"{type(polygons).__name__}")
    h, w = int(height), int(width)
    mask = np.zeros((h, w), bool)
    for k, poly in enumerate(polygons):
        try:
            xy = np.asarray(poly, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ConfigError(f"polygon {k} is not a list of numbers: {str(poly)[:60]}") from None
        if xy.size < 6 or xy.size % 2 or not np.isfinite(xy).all():
            raise ConfigError(f"polygon {k} needs at least 3 finite (x, y) vertices as [x1, y1, x2, y2, ...], "
                              f"got {xy.size} numbers")
        mask |= _fill_polygon(xy.reshape(-1, 2), h, w)
    return mask


def encode_polygons(mask: np.ndarray) -> list[list[float]]:
    """COCO polygons of a mask's outer contours (one per connected blob; holes are lost).

    Each polygon follows the outline of the blob's pixel squares a quarter pixel inside it (the contour of
    the mask upsampled 2x), so every pixel centre is on the right side and :func:`decode_polygons` gives
    back every hole-free blob exactly.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ShapeError(f"mask must be an (H, W) image, got shape {m.shape}")
    up = np.repeat(np.repeat(m.astype(np.uint8), 2, axis=0), 2, axis=1)
    contours, _ = cv2.findContours(up, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours:
        xy = (c.reshape(-1, 2).astype(np.float64) + 0.5) / 2.0
        if len(xy) < 3:
            continue  # cannot happen for a 2x2-upsampled blob; kept for safety
        out.append([float(x) for x in xy.reshape(-1)])
    return out


def decode_segmentation(segmentation, height: int, width: int) -> np.ndarray:
    """(H, W) bool mask of any COCO ``segmentation`` field: polygons, uncompressed or compressed RLE.

    Raises :class:`~graspseg.core.errors.ShapeError` when an RLE's size is not ``(height, width)``.
    """
    if isinstance(segmentation, dict):
        size = _size(segmentation.get("size"))
        if size != (int(height), int(width)):
            raise ShapeError(f"the RLE mask is {size[1]}x{size[0]} but its image is {width}x{height}; masks must "
                             "have their image's size")
        return decode_rle(segmentation)
    return decode_polygons(segmentation, height, width)
