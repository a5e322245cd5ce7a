"""Rim refinement (a colour mask against depth, a depth mask against colour) on scenes with exact masks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from graspseg.core.errors import ConfigError, ShapeError
from graspseg.segment.refine import fill_enclosed_gaps, refine_mask_with_color, refine_mask_with_depth


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


# --- colour: a depth mask's rim onto the colour edge -------------------------------------------------
def _lab_scene(rng_seed=0):
    """A red square on a grey, slightly noisy background; (mask, lab (H, W, 3) float32)."""
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(rng_seed)
    rgb = np.full((80, 100, 3), 120, np.float32)
    gt = np.zeros((80, 100), bool)
    gt[20:60, 25:75] = True
    rgb[gt] = (200, 40, 40)
    rgb = np.clip(rgb + rng.normal(0, 3, rgb.shape), 0, 255).astype(np.uint8)
    return gt, cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).astype(np.float32)


def test_shrunk_and_shifted_depth_masks_move_onto_the_colour_edge():
    gt, lab = _lab_scene()
    shrunk = ndimage.binary_erosion(gt, iterations=3)
    assert _iou(refine_mask_with_color(shrunk, lab, band_px=4), gt) > 0.98 > _iou(shrunk, gt) + 0.08
    shifted = np.roll(gt, (3, -2), axis=(0, 1))
    assert _iou(refine_mask_with_color(shifted, lab, band_px=4), gt) > 0.97 > _iou(shifted, gt) + 0.1
    # an edge beyond the band is out of reach: the rim stays
    far = ndimage.binary_erosion(gt, iterations=8)
    assert np.array_equal(refine_mask_with_color(far, lab, band_px=4), far)


def test_a_rim_on_the_colour_edge_and_a_uniform_colour_keep_the_mask():
    gt, lab = _lab_scene()
    assert _iou(refine_mask_with_color(gt, lab, band_px=4), gt) > 0.995  # registered: nothing moves
    flat = np.full_like(lab, 128.0)
    shrunk = ndimage.binary_erosion(gt, iterations=2)
    assert np.array_equal(refine_mask_with_color(shrunk, flat, band_px=4), shrunk)  # colour says nothing


def test_color_refinement_refuses_bad_input():
    gt, lab = _lab_scene()
    with pytest.raises(ShapeError, match="lab must be"):
        refine_mask_with_color(gt, lab[:10])
    with pytest.raises(ConfigError, match="band_px"):
        refine_mask_with_color(gt, lab, band_px=0)
    with pytest.raises(ConfigError, match="min_gain"):
        refine_mask_with_color(gt, lab, min_gain=0.5)


def _gap_scene():
    """A 40x60 object 0.5 m away in front of a background at 1.0 m; its mask has four enclosed gaps."""
    obj = np.zeros((60, 80), bool)
    obj[10:50, 10:70] = True
    depth = np.where(obj, 0.5, 1.0).astype(np.float32)
    mask = obj.copy()
    gaps = {"unseen": (slice(20, 30), slice(20, 30)), "see_through": (slice(20, 30), slice(40, 50)),
            "same_surface": (slice(35, 40), slice(40, 50)), "in_front": (slice(35, 40), slice(60, 66))}
    for sl in gaps.values():
        mask[sl] = False
    depth[gaps["unseen"]] = 0.0  # no reading (a specular or dark spot)
    depth[gaps["see_through"]] = 1.0  # the background seen through an opening
    depth[gaps["in_front"]] = 0.3  # something in front of the object
    return obj, mask, depth, gaps


def test_enclosed_gaps_fill_unless_depth_sees_another_surface():
    obj, mask, depth, gaps = _gap_scene()
    out = fill_enclosed_gaps(mask, depth, jump_a_m=0.004, jump_b_per_m=0.02)
    assert out[gaps["unseen"]].all() and out[gaps["same_surface"]].all()
    assert not out[gaps["see_through"]].any() and not out[gaps["in_front"]].any()
    assert not (out & ~obj).any() and (out >= mask).all()
    # nothing enclosed: the mask comes back unchanged (a copy)
    same = fill_enclosed_gaps(obj, depth, jump_a_m=0.004, jump_b_per_m=0.02)
    assert np.array_equal(same, obj) and same is not obj


def test_enclosed_gaps_bad_input():
    obj, mask, depth, _ = _gap_scene()
    with pytest.raises(ShapeError, match="register depth to the mask's image"):
        fill_enclosed_gaps(mask, depth[:, :-1], jump_a_m=0.004, jump_b_per_m=0.02)
    with pytest.raises(ConfigError, match="jump_a_m must be > 0"):
        fill_enclosed_gaps(mask, depth, jump_a_m=0.0, jump_b_per_m=0.02)
