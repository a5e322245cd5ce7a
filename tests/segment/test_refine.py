"""Depth-aware refinement of a mask on synthetic scenes with exact masks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from graspseg.core.errors import ConfigError, ShapeError
from graspseg.segment.refine import refine_mask_with_depth


def _iou(a, b):
    return np.count_nonzero(a & b) / max(1, np.count_nonzero(a | b))


def _step_scene():
    depth = np.full((60, 80), 0.6, np.float32)
    gt = np.zeros((60, 80), bool)
    gt[15:45, 20:60] = True
    depth[gt] = 0.5
    return gt, depth


def test_bleeding_mask_snaps_back_to_the_depth_jump():
    gt, depth = _step_scene()
    bled = ndimage.binary_dilation(gt, iterations=3)
    refined = refine_mask_with_depth(bled, depth, band_px=5)
    assert _iou(bled, gt) < 0.85
    assert np.array_equal(refined, gt)


def test_shrunk_and_shifted_masks_grow_to_the_object():
    gt, depth = _step_scene()
    shrunk = ndimage.binary_erosion(gt, iterations=2)
    assert np.array_equal(refine_mask_with_depth(shrunk, depth, band_px=5), gt)
    shifted = np.roll(gt, (2, 3), axis=(0, 1))
    assert _iou(refine_mask_with_depth(shifted, depth, band_px=6), gt) > 0.97 > _iou(shifted, gt)


def test_no_depth_jump_keeps_the_mask_and_islands_are_dropped():
    gt, depth = _step_scene()
    flat = np.full_like(depth, 0.6)
    bled = ndimage.binary_dilation(gt, iterations=3)
    assert np.array_equal(refine_mask_with_depth(bled, flat), bled)  # colour boundary, depth says nothing
    holes = depth.copy()
    holes[gt] = 0.0  # no readings on the object: nothing decisive, keep the label
    assert np.array_equal(refine_mask_with_depth(bled, holes), bled)


def test_on_synthetic_scenes_refinement_improves_a_bleeding_mask():
    synthetic = pytest.importorskip("graspseg.sim.synthetic")
    scene = synthetic.make_scene("clutter", seed=1, n_objects=3, width=320, height=240)
    before, after = [], []
    for obj_id in np.unique(scene.instance_ids)[1:]:
        gt = scene.instance_ids == obj_id
        if gt.sum() < 400:
            continue
        bled = ndimage.binary_dilation(gt, iterations=3)
        before.append(_iou(bled, gt))
        after.append(_iou(refine_mask_with_depth(bled, scene.frame.depth_m), gt))
    assert before and np.mean(after) > np.mean(before) + 0.03


def test_bad_inputs():
    gt, depth = _step_scene()
    with pytest.raises(ShapeError, match="register depth"):
        refine_mask_with_depth(gt, depth[:10])
    with pytest.raises(ConfigError, match="band_px must be >= 1"):
        refine_mask_with_depth(gt, depth, band_px=0)
