"""COCO RLE (uncompressed and compressed strings) and polygons, against hand-computed cases and pycocotools."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from graspseg.core.errors import ConfigError, ShapeError
from graspseg.eval.rle import (
    counts_to_string,
    decode_polygons,
    decode_rle,
    decode_segmentation,
    encode_polygons,
    encode_rle,
    rle_area,
    rle_counts,
    string_to_counts,
)


def test_counts_are_column_major_starting_with_zeros():
    m = np.zeros((3, 4), bool)
    m[1, 1:3] = True
    m[0, 3] = True
    # columns top to bottom: 000 | 010 | 010 | 100 -> 4 zeros, 1, 2, 1, 1, 1, 2
    assert rle_counts(m) == [4, 1, 2, 1, 1, 1, 2]
    assert rle_counts(np.ones((2, 2), bool)) == [0, 4]  # a set first pixel: a leading 0 count
    assert rle_counts(np.zeros((2, 3), bool)) == [6]
    assert rle_counts(np.zeros((0, 3), bool)) == []


def test_compressed_string_hand_computed():
    # 4, 1, 2 as themselves; then differences to two back: 1-1=0, 1-2=-1 (31 = 'O' with the sign bit), 0, 1
    assert counts_to_string([4, 1, 2, 1, 1, 1, 2]) == "4120O01"
    assert counts_to_string([0, 4]) == "04"
    # 40 = 0b01000 + 1<<5: 'X' (48+8 | 0x20) then '1'; 60: 28 has bit 0x10 so a second group: 'l', '1'
    assert counts_to_string([40, 60]) == "X1l1"
    for s, c in (("4120O01", [4, 1, 2, 1, 1, 1, 2]), ("04", [0, 4]), ("X1l1", [40, 60])):
        assert string_to_counts(s) == c
        assert string_to_counts(s.encode()) == c


def test_rle_dicts_round_trip_and_area():
    m = np.zeros((5, 7), bool)
    m[1:4, 2:6] = True
    for compressed in (True, False):
        rle = encode_rle(m, compressed=compressed)
        assert rle["size"] == [5, 7]
        assert isinstance(rle["counts"], str if compressed else list)
        assert (decode_rle(rle) == m).all() and rle_area(rle) == 12
        assert (decode_segmentation(rle, 5, 7) == m).all()


@settings(max_examples=60, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 40), st.integers(1, 40))))
def test_rle_round_trips_any_mask(m):
    assert (decode_rle(encode_rle(m)) == m).all()
    assert (decode_rle(encode_rle(m, compressed=False)) == m).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2**31 - 1), max_size=30))
def test_string_round_trips_any_counts(counts):
    assert string_to_counts(counts_to_string(counts)) == counts


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_against_pycocotools_when_installed():
    mask_api = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(0)
    for k in range(50):
        h, w = rng.integers(1, 80, 2)
        m = rng.random((h, w)) < rng.random()
        if k % 2:
            m[:] = False
            m[rng.integers(0, h):, rng.integers(0, w):] = True
        ref = mask_api.encode(np.asfortranarray(m.astype(np.uint8)))
        assert encode_rle(m)["counts"] == ref["counts"].decode()
        assert (decode_rle({"size": ref["size"], "counts": ref["counts"]}) == m).all()
    # polygons: both sample pixel centres; pycocotools' 5x-upsampled rasteriser differs at a few rim pixels
    xor = []
    for _ in range(50):
        c, r, n = rng.uniform(15, 45, 2), rng.uniform(4, 15), int(rng.integers(3, 9))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        poly = [np.stack([c[0] + r * np.cos(ang), c[1] + r * np.sin(ang)], 1).ravel().tolist()]
        ref = mask_api.decode(mask_api.frPyObjects(poly, 64, 64))[:, :, 0].astype(bool)
        xor.append(int((decode_polygons(poly, 64, 64) ^ ref).sum()))
    assert np.mean(xor) < 4


def test_polygons_sample_pixel_centres():
    # the rectangle [2, 6) x [2, 5): pixels u = 2..5, v = 2..4 (as pycocotools)
    m = decode_polygons([[2, 2, 6, 2, 6, 5, 2, 5]], 8, 8)
    expected = np.zeros((8, 8), bool)
    expected[2:5, 2:6] = True
    assert (m == expected).all()
    # the triangle (1,1) (6,1) (1,6), hypotenuse u + v = 7: row v has the centres 1.5 .. 6.5 - v - 1 left of
    # it (a centre on the hypotenuse, a right edge, is outside): 4, 3, 2, 1, 0 pixels — pycocotools' answer too
    tri = decode_polygons([[1, 1, 6, 1, 1, 6]], 8, 8)
    assert tri.sum(axis=1).tolist() == [0, 4, 3, 2, 1, 0, 0, 0] and tri[1:5, 1].all()
    # two polygons of one annotation are united
    two = decode_polygons([[0, 0, 2, 0, 2, 2, 0, 2], [4, 4, 6, 4, 6, 6, 4, 6]], 8, 8)
    assert two.sum() == 8 and two[0, 0] and two[5, 5]


def test_polygon_export_reads_back_exactly():
    import cv2

    m = np.zeros((40, 50), np.uint8)
    cv2.circle(m, (15, 20), 9, 1, -1)
    cv2.fillPoly(m, [np.array([[30, 5], [48, 12], [36, 30]], np.int32)], 1)
    m[38, 2] = 1  # a single pixel
    polys = encode_polygons(m)
    assert len(polys) == 3
    assert (decode_polygons(polys, 40, 50) == m.astype(bool)).all()
    ring = np.zeros((20, 20), bool)
    ring[4:16, 4:16] = True
    ring[8:12, 8:12] = False  # a hole: polygons keep only the outline
    assert decode_polygons(encode_polygons(ring), 20, 20).sum() == 144


def test_bad_encodings():
    with pytest.raises(ShapeError, match=r"add up to 5 pixels but its size 2x3"):
        decode_rle({"size": [2, 3], "counts": [2, 3]})
    with pytest.raises(ShapeError, match="the RLE mask is 3x2 but its image is 4x4"):
        decode_segmentation({"size": [2, 3], "counts": [6]}, 4, 4)
    with pytest.raises(ConfigError, match="ends inside a count"):
        string_to_counts("X")
    with pytest.raises(ConfigError, match="only chars '0'..'o'"):
        string_to_counts("4~")
    with pytest.raises(ConfigError, match=r"an RLE is \{'size'"):
        decode_rle({"counts": "04"})
    with pytest.raises(ConfigError, match="RLE size must be"):
        decode_rle({"size": "big", "counts": "04"})
    with pytest.raises(ConfigError, match="counts must be >= 0"):
        decode_rle({"size": [1, 2], "counts": [3, -1]})
    with pytest.raises(ConfigError, match="at least 3 finite"):
        decode_polygons([[0, 0, 1, 1]], 4, 4)
    with pytest.raises(ConfigError, match="not a list of numbers"):
        decode_polygons([["a", "b", "c"]], 4, 4)
    with pytest.raises(ConfigError, match="polygon segmentation must be a list"):
        decode_polygons(3, 4, 4)
    with pytest.raises(ShapeError, match=r"mask must be an \(H, W\) image"):
        encode_rle(np.zeros(4, bool))
