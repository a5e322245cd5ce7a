"""The rgbd backend names out-of-range depth under a prompt as out of range, with the values."""

from __future__ import annotations

import numpy as np
import pytest

from graspseg.core import CameraIntrinsics, PromptError, RGBDFrame
from graspseg.segment import Prompt, create_segmenter


def _frame(depth_m: float) -> RGBDFrame:
    intr = CameraIntrinsics(160, 120, 150.0, 150.0, 79.5, 59.5)
    depth = np.full((120, 160), depth_m, np.float32)
    depth[:, :20] = 0.0
    return RGBDFrame(np.full((120, 160, 3), 128, np.uint8), depth, intr)


@pytest.mark.parametrize("depth_m, match", [
    (5.0, r"out of range: readings 5.000-5.000 m lie outside the rgbd depth range \(0.1-3 m\)"),
    (0.05, r"out of range: readings 0.050-0.050 m lie outside the rgbd depth range \(0.1-3 m\)"),
])
def test_out_of_range_depth_is_named_with_its_value(depth_m, match):
    seg = create_segmenter("rgbd")
    seg.set_frame(_frame(depth_m))
    with pytest.raises(PromptError, match=match):
        seg.predict(Prompt.from_point(80, 60))


def test_missing_depth_is_still_reported_as_no_reading():
    seg = create_segmenter("rgbd")
    seg.set_frame(_frame(0.6))
    with pytest.raises(PromptError, match=r"no reading \(all zero\)"):
        seg.predict(Prompt.from_point(5, 60))
