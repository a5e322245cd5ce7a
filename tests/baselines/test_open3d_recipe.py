"""The open3d baselines: create_from_rgbd_image back-projection and the classic segmentation recipe."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("open3d")

from graspseg.baselines import ClassicRecipeConfig, classic_segmentation, open3d_backproject  # noqa: E402
from graspseg.core import PromptError, SegmentationError, ShapeError  # noqa: E402
from graspseg.core.geometry import backproject  # noqa: E402


def _box_mask():
    m = np.zeros((480, 640), bool)
    m[200:280, 280:360] = True
    return m


def test_open3d_backprojection_agrees_with_ours(flat_frame):
    mask = _box_mask()
    pcd = open3d_backproject(flat_frame, mask)
    theirs = np.asarray(pcd.points)
    ours, _ = backproject(flat_frame.depth_m, flat_frame.intrinsics, mask)
    assert theirs.shape == ours.shape
    order_t = np.lexsort(theirs.T)
    order_o = np.lexsort(ours.T.astype(np.float64))
    np.testing.assert_allclose(theirs[order_t], ours[order_o], atol=1e-6)
    np.testing.assert_allclose(np.asarray(pcd.colors)[0] * 255, [200, 30, 30], atol=0.5)
    # without a mask every pixel comes back
    assert len(open3d_backproject(flat_frame).points) == 480 * 640
    with pytest.raises(ShapeError, match="mask shape"):
        open3d_backproject(flat_frame, mask[:10])


def _two_boxes_frame(intrinsics):
    from graspseg.core import RGBDFrame

    depth = np.full((480, 640), 0.5, np.float32)
    depth[200:280, 200:260] = 0.44
    depth[200:280, 380:440] = 0.45
    color = np.full((480, 640, 3), 120, np.uint8)
    return RGBDFrame(color, depth, intrinsics, frame_id="two_boxes")


def test_classic_recipe_segments_the_clicked_box(intrinsics):
    frame = _two_boxes_frame(intrinsics)
    res = classic_segmentation(frame, (230, 240))
    gt = np.zeros((480, 640), bool)
    gt[200:280, 200:260] = True
    iou = (res.mask & gt).sum() / (res.mask | gt).sum()
    assert iou > 0.95
    assert res.num_clusters == 2
    assert abs(abs(res.plane_model[2]) - 1) < 1e-3
    assert set(res.timings_ms) == {"backproject", "downsample", "plane", "dbscan", "mask", "total"}
    other = classic_segmentation(frame, (410, 240))
    assert other.mask[240, 410] and not other.mask[240, 230]


def test_classic_recipe_is_seeded_but_open3d_is_only_nearly_repeatable(intrinsics):
    # open3d 0.20's segment_plane is not bit-reproducible even after o3d.utility.random.seed (measured:
    # consecutive seeded calls return slightly different planes, with OMP_NUM_THREADS=1 too), so the
    # baseline is only checked to be stable within noise
    rng = np.random.default_rng(0)
    frame = _two_boxes_frame(intrinsics)
    from graspseg.core import RGBDFrame

    noisy = RGBDFrame(
        frame.color,
        frame.depth_m + rng.normal(0, 0.002, frame.depth_m.shape).astype(np.float32),
        frame.intrinsics,
    )
    a = classic_segmentation(noisy, (230, 240), ClassicRecipeConfig(seed=3))
    b = classic_segmentation(noisy, (230, 240), ClassicRecipeConfig(seed=3))
    assert abs(a.plane_model[:3] @ b.plane_model[:3]) > 1 - 1e-4
    assert abs(abs(a.plane_model[3]) - abs(b.plane_model[3])) < 1e-3
    iou = (a.mask & b.mask).sum() / (a.mask | b.mask).sum()
    assert iou > 0.98


def test_classic_recipe_errors(flat_frame, intrinsics):
    with pytest.raises(PromptError, match=r"point \(700, 10\) is outside the 640x480 image"):
        classic_segmentation(flat_frame, (700, 10))
    with pytest.raises(SegmentationError, match="falls on the removed plane or on DBSCAN noise"):
        classic_segmentation(flat_frame, (50, 50))  # the table
    from graspseg.core import RGBDFrame

    depth = flat_frame.depth_m.copy()
    depth[220:260, 300:340] = 0
    with pytest.raises(SegmentationError, match="no depth within 10 px of the click"):
        classic_segmentation(RGBDFrame(flat_frame.color, depth, intrinsics), (320, 240))


def test_classic_recipe_on_a_real_frame(real_dir):
    from graspseg.capture import load_frame_folder, load_ground_truth

    frame = load_frame_folder(real_dir / "red_mug")
    gt = load_ground_truth(real_dir / "red_mug")[0].mask
    vs, us = np.nonzero(gt)
    res = classic_segmentation(frame, (float(np.median(us)), float(np.median(vs))))
    iou = (res.mask & gt).sum() / (res.mask | gt).sum()
    assert iou > 0.9
