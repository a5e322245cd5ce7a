import numpy as np
import pytest

from graspseg.core.errors import ShapeError
from graspseg.eval.metrics import boundary_f_score, boundary_iou, mask_boundary, mask_iou


def rect(h=60, w=80, y0=10, y1=40, x0=20, x1=60):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_iou_of_known_overlap():
    a = rect(x0=20, x1=60)  # 30 x 40
    b = rect(x0=40, x1=80)  # 30 x 40, overlap 30 x 20
    assert mask_iou(a, b) == pytest.approx(600 / (1200 + 1200 - 600))
    assert mask_iou(a, a) == 1.0
    assert mask_iou(a, ~a) == 0.0
    assert mask_iou(np.zeros((5, 5), bool), np.zeros((5, 5), bool)) == 1.0


def test_boundary_is_inner_contour():
    m = rect(h=10, w=10, y0=2, y1=7, x0=3, x1=8)
    b = mask_boundary(m)
    assert b.sum() == 2 * 5 + 2 * 3  # 5x5 square: perimeter pixels
    assert not b[4, 5] and b[2, 5] and b[4, 3]
    # a mask touching the image border has its border pixels on the boundary
    assert mask_boundary(np.ones((4, 4), bool)).sum() == 12


def test_boundary_f_tolerance():
    a = rect()
    shifted1 = np.roll(a, 1, axis=1)
    shifted5 = np.roll(a, 5, axis=1)
    assert boundary_f_score(a, a) == 1.0
    assert boundary_f_score(shifted1, a, tolerance_px=2) == 1.0
    assert boundary_f_score(shifted1, a, tolerance_px=0) < 0.8
    f5 = boundary_f_score(shifted5, a, tolerance_px=2)
    assert 0.3 < f5 < 0.8  # horizontal edges still match, vertical ones do not
    assert boundary_f_score(np.zeros_like(a), a) == 0.0
    assert boundary_f_score(np.zeros_like(a), np.zeros_like(a)) == 1.0


def test_boundary_iou_is_stricter_than_iou_for_boundary_errors():
    big = rect(h=200, w=200, y0=20, y1=180, x0=20, x1=180)
    grown = rect(h=200, w=200, y0=17, y1=183, x0=17, x1=183)
    assert mask_iou(grown, big) > 0.9
    biou = boundary_iou(grown, big, width_px=3)
    assert biou < 0.7
    assert boundary_iou(big, big) == 1.0
    assert boundary_iou(np.zeros_like(big), np.zeros_like(big)) == 1.0


def test_metric_errors():
    with pytest.raises(ShapeError, match="same image size"):
        mask_iou(np.zeros((4, 4), bool), np.zeros((4, 5), bool))
    with pytest.raises(ShapeError, match=r"\(H, W\) images"):
        boundary_f_score(np.zeros((2, 4, 4), bool), np.zeros((2, 4, 4), bool))
    with pytest.raises(ShapeError, match="tolerance_px must be >= 0"):
        boundary_f_score(rect(), rect(), tolerance_px=-1)
    with pytest.raises(ShapeError, match="boundary width must be > 0"):
        boundary_iou(rect(), rect(), width_px=0)
    with pytest.raises(ShapeError, match=r"mask must be an \(H, W\) image"):
        mask_boundary(np.zeros(5, bool))


# --- reference definitions against hand-computed cases ------------------------------------------------

import cv2  # noqa: E402

from graspseg.core import CameraIntrinsics, Transform  # noqa: E402
from graspseg.eval.metrics import (  # noqa: E402
    boundary_band,
    boundary_error_3d_mm,
    boundary_width_px,
    davis_boundary_f,
    davis_boundary_map,
    davis_tolerance_px,
    mask_centroid_in_camera,
    mask_scores,
    position_error_mm,
    rim_offsets_px,
    signed_boundary_offset_px,
)


def square(n=12, r0=2, r1=7, c0=2, c1=7):
    m = np.zeros((n, n), bool)
    m[r0:r1, c0:c1] = True
    return m


def test_fixed_pixel_boundary_f_hand_computed():
    # 5x5 squares two columns apart, tolerance 1 px: 10 of the 16 rim pixels of each side match
    # (top and bottom rows: 4 of 5 each; the near column: its two off-centre pixels; the far column: none)
    gt = square(r0=2, r1=7, c0=2, c1=7)
    pred = square(r0=2, r1=7, c0=4, c1=9)
    p = r = 10 / 16
    assert boundary_f_score(pred, gt, tolerance_px=1) == pytest.approx(2 * p * r / (p + r))
    assert boundary_f_score(pred, gt, tolerance_px=2) == 1.0  # every rim pixel within 2 px


def test_davis_tolerance_is_ceil_of_0008_diagonal():
    assert davis_tolerance_px((480, 640)) == 7.0  # 0.008 * 800 = 6.4
    assert davis_tolerance_px((720, 1280)) == 12.0  # 0.008 * 1468.6 = 11.7
    assert davis_tolerance_px((480, 640), bound_th=3) == 3.0  # >= 1: pixels, as the DAVIS toolkit
    with pytest.raises(ShapeError, match="bound_th must be > 0"):
        davis_tolerance_px((480, 640), bound_th=0)


def test_davis_boundary_map_is_seg2bmap():
    m = np.zeros((4, 4), bool)
    m[1:3, 1:3] = True
    expected = np.array([[1, 1, 1, 0],
                         [1, 0, 1, 0],
                         [1, 1, 1, 0],
                         [0, 0, 0, 0]], bool)
    assert (davis_boundary_map(m) == expected).all()
    # the image border is no boundary: a full mask has none
    assert not davis_boundary_map(np.ones((5, 5), bool)).any()


def test_davis_boundary_f_matches_within_ceil_0008_diagonal():
    gt = rect(h=480, w=640, y0=100, y1=300, x0=200, x1=400)
    assert davis_boundary_f(gt, gt) == 1.0
    assert davis_boundary_f(np.roll(gt, 7, axis=1), gt) == 1.0  # 7 px = the 640x480 tolerance
    assert davis_boundary_f(np.roll(gt, 8, axis=1), gt) < 1.0
    assert boundary_f_score(np.roll(gt, 7, axis=1), gt, tolerance_px=2) < 0.6  # the strict variant
    assert davis_boundary_f(np.zeros_like(gt), gt) == 0.0
    assert davis_boundary_f(np.zeros_like(gt), np.zeros_like(gt)) == 1.0


def test_boundary_iou_hand_computed():
    # 8x8 squares one column apart, d = 1: each band is the 28-pixel ring, they share the top and bottom rows
    # (7 + 7 pixels): 14 / (28 + 28 - 14)
    gt = square(r0=2, r1=10, c0=2, c1=10)
    pred = square(r0=2, r1=10, c0=3, c1=11)
    assert boundary_band(gt, 1).sum() == 28
    assert boundary_iou(pred, gt, width_px=1) == pytest.approx(14 / 42)
    assert boundary_width_px((480, 640)) == 16  # 2 % of the 800 px diagonal


def test_boundary_band_is_the_reference_erosion():
    """Cheng et al.'s ``mask - erode(pad(mask), 3x3, d)``: chessboard distance, image border outside."""
    m = np.zeros((60, 70), np.uint8)
    cv2.circle(m, (30, 28), 17, 1, -1)
    cv2.rectangle(m, (0, 40), (20, 59), 1, -1)  # touches the image border
    for d in (1, 3, 7):
        padded = cv2.copyMakeBorder(m, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=d)[1:-1, 1:-1]
        ref = (m - eroded) > 0
        assert (boundary_band(m.astype(bool), d) == ref).all()


def test_rim_offsets_and_signed_offset():
    gt = square(n=20, r0=5, r1=15, c0=5, c1=15)
    grown = square(n=20, r0=3, r1=17, c0=3, c1=17)  # 2 px outside everywhere
    shrunk = square(n=20, r0=6, r1=14, c0=6, c1=14)  # 1 px inside
    assert np.median(rim_offsets_px(grown, gt)) == pytest.approx(2.0)
    assert signed_boundary_offset_px(shrunk, gt) == pytest.approx(-1.0)
    assert signed_boundary_offset_px(gt, gt) == 0.0
    assert rim_offsets_px(np.zeros_like(gt), gt).size == 0 and signed_boundary_offset_px(gt, np.zeros_like(gt)) is None


def test_boundary_error_3d_on_a_plane_hand_computed():
    # depth 1 m everywhere, f = 1000 px: one pixel is one millimetre on the plane
    intr = CameraIntrinsics(80, 80, 1000.0, 1000.0, 39.5, 39.5)
    depth = np.ones((80, 80), np.float32)
    gt = square(n=80, r0=20, r1=40, c0=20, c1=40)
    grown = square(n=80, r0=15, r1=45, c0=15, c1=45)  # the rim 5 px outside
    e = boundary_error_3d_mm(grown, gt, depth, intr)
    # 80 of the 116 rim pixels face an edge at 5 px; the 36 near the corners are at sqrt(25 + k^2), k = 1..5
    assert e["median_mm"] == pytest.approx(5.0, abs=1e-6)
    assert 5.0 < e["mean_mm"] < 6.0 and e["p90_mm"] <= np.sqrt(50) + 1e-6
    assert e["pred_points"] == 116 and e["gt_points"] == 76
    assert boundary_error_3d_mm(gt, gt, depth, intr)["mean_mm"] == 0.0
    assert boundary_error_3d_mm(gt, gt, np.zeros_like(depth), intr) is None  # no depth on the rim
    with pytest.raises(ShapeError, match="registered depth"):
        boundary_error_3d_mm(gt, gt, depth[:10], intr)


def test_position_error_of_the_cloud_centroid():
    intr = CameraIntrinsics(81, 81, 1000.0, 1000.0, 40.0, 40.0)
    depth = np.ones((81, 81), np.float32)
    m = square(n=81, r0=30, r1=51, c0=30, c1=51)  # symmetric about the principal point
    c = mask_centroid_in_camera(m, depth, intr)
    assert np.allclose(c, [0, 0, 1])
    pose = Transform.from_rt(np.eye(3), [0.0, 0.0, 1.01], "camera_color_optical", "object")
    assert position_error_mm(c, pose) == pytest.approx(10.0)
    assert position_error_mm(c, pose.matrix) == pytest.approx(10.0)
    assert mask_centroid_in_camera(m, np.zeros_like(depth), intr) is None
    with pytest.raises(ShapeError, match=r"\(3,\) point"):
        position_error_mm([1, 2], pose)
    with pytest.raises(ShapeError, match=r"\(4, 4\) matrix"):
        position_error_mm(c, np.eye(3))
    with pytest.raises(ShapeError, match="frame's size"):
        mask_centroid_in_camera(m[:5], depth, intr)


def test_mask_scores_holds_every_2d_metric():
    gt = rect()
    s = mask_scores(np.roll(gt, 1, axis=1), gt)
    assert set(s) == {"iou", "boundary_f", "boundary_f_davis", "boundary_iou", "signed_offset_px"}
    assert s["boundary_f"] == 1.0 and s["iou"] == pytest.approx(30 * 39 / (30 * 41))


# --- against the reference implementations ----------------------------------------------------------

def _blobs(rng, h=120, w=160, n=3):
    m = np.zeros((h, w), np.uint8)
    for _ in range(n):
        c = (int(rng.integers(10, w - 10)), int(rng.integers(10, h - 10)))
        ax = (int(rng.integers(4, 30)), int(rng.integers(4, 30)))
        cv2.ellipse(m, c, ax, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return m.astype(bool)


def _davis_f_measure(fg, gt, bound_th=0.008):
    """The DAVIS toolkit's ``f_measure`` written out as the benchmark defines it (``seg2bmap`` boundaries,
    each dilated by a disk of radius ``ceil(bound_th × diagonal)``), as an independent oracle."""
    bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(fg.shape))
    r = int(bound_pix)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = (xx ** 2 + yy ** 2 <= r ** 2).astype(np.uint8)
    fb, gb = davis_boundary_map(fg), davis_boundary_map(gt)
    fg_dil = cv2.dilate(fb.astype(np.uint8), disk) > 0
    gt_dil = cv2.dilate(gb.astype(np.uint8), disk) > 0
    n_fg, n_gt = fb.sum(), gb.sum()
    if n_fg == 0 and n_gt == 0:
        p = rc = 1.0
    elif n_fg == 0 or n_gt == 0:
        p, rc = (1.0, 0.0) if n_fg == 0 else (0.0, 1.0)
    else:
        p, rc = (fb & gt_dil).sum() / n_fg, (gb & fg_dil).sum() / n_gt
    return 0.0 if p + rc == 0 else 2 * p * rc / (p + rc)


def test_davis_boundary_f_equals_the_benchmarks_f_measure():
    rng = np.random.default_rng(0)
    for k in range(12):
        gt = _blobs(rng)
        pred = np.roll(gt, (int(rng.integers(-6, 7)), int(rng.integers(-9, 10))), axis=(0, 1)) if k % 3 else _blobs(rng)
        for th in (0.008, 0.02, 3):
            assert davis_boundary_f(pred, gt, bound_th=th) == pytest.approx(_davis_f_measure(pred, gt, th), abs=1e-12)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_iou_area_and_box_agree_with_pycocotools():
    mask_api = pytest.importorskip("pycocotools.mask")
    from graspseg.eval.coco import _bbox
    from graspseg.eval.rle import encode_rle, rle_area

    rng = np.random.default_rng(1)
    for _ in range(20):
        a, b = _blobs(rng), _blobs(rng)
        ra, rb = (mask_api.encode(np.asfortranarray(m.astype(np.uint8))) for m in (a, b))
        assert mask_iou(a, b) == pytest.approx(float(mask_api.iou([ra], [rb], [0])[0, 0]), abs=1e-12)
        assert rle_area(encode_rle(a)) == int(mask_api.area(ra)) == int(a.sum())
        assert _bbox(a) == pytest.approx(mask_api.toBbox(ra).tolist())
