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
