import numpy as np

from graspseg.cloud.types import BandLabel
from graspseg.grasp import margins as mg


def _step_depth():
    """A 40x40 frame: an object at 0.40 m in columns 10..19, the table at 0.50 m elsewhere."""
    z = np.full((40, 40), 0.5, np.float32)
    z[:, 10:20] = 0.4
    mask = np.zeros((40, 40), bool)
    mask[5:35, 10:20] = True
    return z, mask


def test_mixed_depth_flags_only_flying_pixels():
    z, mask = _step_depth()
    assert not mg.mixed_depth(z).any()  # a clean step: every pixel agrees with one side
    z[:, 20] = 0.45  # a flying column halfway between the object and the table
    flags = mg.mixed_depth(z)
    assert flags[:, 20].all() and flags.sum() == 40


def test_certainty_distance_to_uncertain_mask_pixels():
    z, mask = _step_depth()
    roi = mg.roi_of(mask, 3)
    d = mg.certainty_distance_px(mask, z, None, roi)
    assert (d == 99.0).all()  # nothing uncertain: capped
    z[:, 19] = 0.45  # the mask's last column has mixed depth
    band = np.zeros_like(mask, np.uint8)
    band[20, 12] = BandLabel.UNKNOWN
    d = mg.certainty_distance_px(mask, z, band, roi)
    r0, c0 = roi[0].start, roi[1].start
    assert d[20 - r0, 19 - c0] == 0 and d[20 - r0, 12 - c0] == 0
    assert d[10 - r0, 16 - c0] == np.float32(3.0)  # three columns from the mixed one
    assert 0.9 < d[20 - r0, 13 - c0] < 1.1


def test_erode_dilate_mask_points_and_rim():
    z, mask = _step_depth()
    assert mg.erode(mask, 2).sum() == (30 - 4) * (10 - 4)
    assert mg.dilate(mask, 1).sum() > mask.sum()
    ray = np.zeros((40, 40, 2), np.float32)
    pts, uv = mg.mask_points(z, ray, mask, mg.roi_of(mask, 2))
    assert len(pts) == mask.sum() and np.allclose(pts[:, 2], 0.4)
    rim = mg.rim_flags(mask, uv, mg.roi_of(mask, 2), width_px=1.5)
    assert rim.sum() == 2 * 30 + 2 * 8  # the one-pixel outline


def test_leak_depth_is_the_jump_beyond_the_rim():
    z, _ = _step_depth()
    jump = mg.leak_depth_m(z, np.array([[19.0, 20.0], [15.0, 20.0]]), np.array([[1.0, 0.0], [0.0, 1.0]]),
                           np.array([0.4, 0.4]), 2.0)
    np.testing.assert_allclose(jump, [0.1, 0.0], atol=1e-6)


def test_rim_image_fast_path_matches_the_distance_transform():
    import cv2

    rng = np.random.default_rng(3)
    for _ in range(20):
        blobs = (rng.random((50, 60)) > 0.97).astype(np.uint8)
        mask = cv2.dilate(blobs, np.ones((5, 5), np.uint8)).astype(bool)
        mask[0, rng.integers(0, 60, 10)] = True  # pixels on the image border are rim
        for width in (1.5, 2.5):
            d = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
            np.testing.assert_array_equal(mg.rim_image(mask, width), d <= width)
    square = np.zeros((10, 10), bool)
    square[2:8, 2:8] = True
    assert mg.rim_image(square, 1.5)[square].sum() == 20  # the one-pixel outline of a 6x6 square


def test_rim_budget_spares_pixels_that_add_no_false_point():
    z, mask = _step_depth()
    roi = mg.roi_of(mask, 3)
    r0, c0 = roi[0].start, roi[1].start
    z[:, 19] = 0.0  # a stereo dropout strip along the silhouette: no reading, no point
    strict = mg.certainty_distance_px(mask, z, None, roi)
    budget = mg.certainty_distance_px(mask, z, None, roi, rim_budget_px=2.0)
    assert strict[20 - r0, 17 - c0] == np.float32(2.0)  # without the budget the strip is a source
    assert budget[20 - r0, 17 - c0] > 4.0  # with it, only the mask's top/bottom rows are (no sources nearby)
    assert budget[20 - r0, 19 - c0] == 0  # the strip itself stays uncertain: never a contact
    # a mixed-depth strip that became cloud points is what a leak drags in: it always counts
    z[:, 19] = 0.45
    points = mask.copy()
    budget_mixed = mg.certainty_distance_px(mask, z, None, roi, rim_budget_px=2.0, point_pixels=points)
    assert budget_mixed[20 - r0, 17 - c0] == np.float32(2.0)
    # ... unless the cloud's cleanup removed those flying pixels
    points[:, 19] = False
    cleaned = mg.certainty_distance_px(mask, z, None, roi, rim_budget_px=2.0, point_pixels=points)
    assert cleaned[20 - r0, 17 - c0] > 4.0
    # an uncertain pixel deeper inside than the budget still counts
    z[:, 19] = 0.4
    z[20, 14] = 0.0
    deep = mg.certainty_distance_px(mask, z, None, roi, rim_budget_px=2.0)
    assert deep[20 - r0, 16 - c0] == np.float32(2.0)
