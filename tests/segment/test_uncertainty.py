import math

import numpy as np
import pytest

from graspseg.core.errors import ShapeError
from graspseg.segment.types import MaskSet
from graspseg.segment.uncertainty import (
    band_width_px,
    boundary_error_details,
    boundary_error_px,
    boundary_length_px,
    disagreement_px,
)


def _disk(r, shape=(200, 200), c=(100, 100)):
    y, x = np.mgrid[: shape[0], : shape[1]]
    return np.hypot(x - c[1], y - c[0]), np.hypot(x - c[1], y - c[0]) <= r


def test_boundary_length_of_a_disk_is_its_circumference():
    _, m = _disk(40)
    assert boundary_length_px(m) == pytest.approx(2 * math.pi * 40, rel=0.05)
    assert boundary_length_px(np.zeros((5, 5), bool)) == 0.0


def test_band_width_of_a_linear_logit_ramp():
    d, m = _disk(40)
    # logit falls by s per pixel across the rim: |logit| < ln 9 over 2 ln9 / s pixels
    for slope in (0.5, 1.0, 2.0):
        logits = slope * (40 - d)
        expected = 2 * math.log(9) / slope
        assert band_width_px(logits, m) == pytest.approx(expected, rel=0.1)


def test_disagreement_of_concentric_candidates_and_other_granularities():
    _, a = _disk(40)
    _, b = _disk(43)
    _, part = _disk(10, c=(60, 60))
    masks = np.stack([a, b, part])
    # symmetric difference / boundary length = (43² - 40²) / (2 · 40)
    assert disagreement_px(masks, 0) == pytest.approx((43**2 - 40**2) / 80, rel=0.05)
    assert disagreement_px(masks[[0, 2]], 0) == 0.0  # a different part is not boundary error


def test_boundary_error_uses_the_larger_cue_and_clips():
    d, a = _disk(40)
    _, b = _disk(44)
    soft = np.stack([1.0 * (40 - d), 1.0 * (44 - d)]).astype(np.float32)
    ms = MaskSet(np.stack([a, b]), [0.9, 0.8], ("whole", "whole"), logits=soft)
    det = boundary_error_details(ms, 0)
    assert det["band_px"] == pytest.approx(math.log(9), rel=0.1)  # half the band of a unit-slope ramp
    assert det["disagreement_px"] == pytest.approx(4.0, rel=0.2)
    assert det["source"] == "disagreement" and det["boundary_error_px"] == pytest.approx(det["disagreement_px"])
    sharp = MaskSet(a, [0.9], ("whole",), logits=(50.0 * (40 - d))[None].astype(np.float32))
    assert boundary_error_px(sharp) == 1.0  # floor
    assert boundary_error_details(sharp)["source"] == "floor"
    assert boundary_error_px(ms, 0, max_px=2.5) == 2.5
    assert boundary_error_px(MaskSet(a, [1.0], ("whole",))) == 1.0  # no cue at all: the floor


def test_bad_inputs_raise():
    _, a = _disk(10)
    ms = MaskSet(a, [1.0], ("whole",))
    with pytest.raises(ShapeError, match="out of range"):
        boundary_error_px(ms, 3)
    with pytest.raises(ShapeError, match="min_px <= max_px"):
        boundary_error_px(ms, min_px=3, max_px=1)
    empty = MaskSet(np.zeros((0, 4, 4), bool), [], ())
    with pytest.raises(ShapeError, match="empty MaskSet"):
        boundary_error_px(empty)
