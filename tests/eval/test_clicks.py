import numpy as np
import pytest

from graspseg.core.errors import InputError, ShapeError
from graspseg.eval.clicks import first_click, next_click


def test_first_click_is_farthest_from_boundary():
    m = np.zeros((50, 80), bool)
    m[10:31, 20:61] = True  # centre at (u=40, v=20)
    u, v = first_click(m)
    assert (u, v) == (40.0, 20.0)
    # an L shape: the click lands in the thick arm, inside the mask
    m2 = np.zeros((60, 60), bool)
    m2[5:55, 5:15] = True
    m2[30:55, 5:55] = True
    u, v = first_click(m2)
    assert m2[int(v), int(u)] and v > 30


def test_first_click_at_image_border_stays_inside():
    m = np.zeros((20, 20), bool)
    m[:, :6] = True  # touches the left border: the border counts as boundary
    u, v = first_click(m)
    assert 2 <= u <= 3


def test_next_click_goes_to_largest_error():
    gt = np.zeros((60, 60), bool)
    gt[10:50, 10:50] = True
    pred = gt.copy()
    pred[10:50, 30:50] = False  # missed half: positive click there
    u, v, label = next_click(pred, gt)
    assert label == 1 and gt[int(v), int(u)] and not pred[int(v), int(u)]
    pred2 = gt.copy()
    pred2[0:10, :] = True  # leak above the object
    pred2[50:60, 0:60] = True
    u, v, label = next_click(pred2, gt)
    assert label == 0 and not gt[int(v), int(u)]
    assert next_click(gt, gt) is None


def test_click_errors():
    with pytest.raises(InputError, match="ground-truth mask is empty"):
        first_click(np.zeros((5, 5), bool))
    with pytest.raises(ShapeError, match=r"\(H, W\) image"):
        first_click(np.zeros(5, bool))
    with pytest.raises(ShapeError, match="of one size"):
        next_click(np.zeros((5, 5), bool), np.zeros((5, 6), bool))
