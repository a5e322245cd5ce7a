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


# --- the interactive protocol with a segmenter whose answers we script ------------------------------

from graspseg.core.errors import SegmentationError  # noqa: E402
from graspseg.eval.clicks import MAX_CLICKS, noc, simulate_clicks  # noqa: E402
from graspseg.segment import MaskSet  # noqa: E402


class ScriptedSegmenter:
    """Answers the k-th predict with ``answers[k]`` (a mask, a (masks, scores, granularity) triple, or an
    exception) and records every prompt."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.prompts = []

    def set_frame(self, frame):
        pass

    def predict(self, prompt):
        self.prompts.append(prompt)
        a = self.answers[min(len(self.prompts), len(self.answers)) - 1]
        if isinstance(a, Exception):
            raise a
        if isinstance(a, tuple):
            return MaskSet(np.stack(a[0]), a[1], a[2])
        return MaskSet(a[None], [0.9], ("whole",))


def _gt():
    gt = np.zeros((60, 60), bool)
    gt[10:50, 10:50] = True
    return gt


def test_noc_counts_clicks_to_the_threshold():
    assert noc([0.5, 0.86, 0.91], 0.85) == 2
    assert noc([0.5, 0.86, 0.91], 0.90) == 3
    assert noc([0.5, 0.6], 0.90) == MAX_CLICKS == 20
    assert noc([0.95], 0.90) == 1
    assert noc([0.5] * 25 + [0.95], 0.90) == 20  # beyond the budget does not count


def test_simulated_clicks_follow_the_largest_error():
    gt = _gt()
    left = gt.copy()
    left[:, 30:] = False  # click 1: left half only (IoU 0.5): click 2 positive in the right half
    leak = gt.copy()
    leak[0:10, 10:50] = True  # click 2: the object and a 10 px leak above it: click 3 negative in the leak
    nearly = gt.copy()
    nearly[10:50, 49] = False  # click 3: one column missed (IoU 0.975)
    seg = ScriptedSegmenter([left, leak, nearly, gt])
    tr = simulate_clicks(seg, gt, max_clicks=20)
    assert tr.ious[:4].tolist() == pytest.approx([0.5, 1600 / 2000, 1560 / 1600, 1.0])
    # an exact mask ends the session; its IoU is carried to the end of the budget
    assert len(seg.prompts) == 4 and len(tr.ious) == 20 and (tr.ious[3:] == 1.0).all()
    assert tr.labels.tolist() == [1, 1, 0, 1]
    assert np.abs(tr.clicks_uv[0] - 29.5).max() <= 0.5  # click 1: the centre of the square
    u2, v2 = tr.clicks_uv[1]
    assert 30 <= u2 < 50 and 10 <= v2 < 50  # inside the missed half, away from its rim
    assert abs(u2 - 39.5) <= 1 and abs(v2 - 29.5) <= 1
    u3, v3 = tr.clicks_uv[2]
    assert 0 <= v3 < 10 and 10 <= u3 < 50  # in the leak
    # each prompt holds all clicks so far, with their labels
    assert seg.prompts[2].point_labels.tolist() == [1, 1, 0] and len(seg.prompts[3].points_uv) == 4
    assert tr.noc(0.85) == 3 and tr.noc(0.90) == 3 and not tr.failed(0.90)


def test_first_click_top_scored_versus_best_of_three():
    gt = _gt()
    part = np.zeros_like(gt)
    part[20:40, 20:40] = True  # IoU 0.25, scored highest
    group = np.ones_like(gt)  # IoU 1600 / 3600
    seg = ScriptedSegmenter([((part, gt, group), [0.95, 0.8, 0.5], ("part", "whole", "group"))])
    tr = simulate_clicks(seg, gt, max_clicks=1, granularity="whole")
    assert tr.first_iou == 1.0 and tr.first_top_iou == pytest.approx(0.25) and tr.first_best_iou == 1.0
    tr = simulate_clicks(ScriptedSegmenter(seg.answers), gt, max_clicks=1, granularity="auto")
    assert tr.first_iou == pytest.approx(0.25)


def test_failures_and_segmenter_errors():
    gt = _gt()
    half = gt.copy()
    half[:, 30:] = False
    seg = ScriptedSegmenter([half])  # never improves
    tr = simulate_clicks(seg, gt, max_clicks=5)
    assert len(seg.prompts) == 5 and tr.failed(0.85) and tr.noc(0.85) == 5
    seg = ScriptedSegmenter([SegmentationError("no region under the prompt"), gt])
    tr = simulate_clicks(seg, gt, max_clicks=3)
    assert tr.ious.tolist() == [0.0, 1.0, 1.0] and "click 1: no region" in tr.errors[0]
    assert tr.first_mask.sum() == 0
    # stop_iou: RITM's early stop, the IoU carried forward
    seg = ScriptedSegmenter([half, gt])
    tr = simulate_clicks(seg, gt, max_clicks=4, stop_iou=0.4)
    assert len(seg.prompts) == 1 and tr.ious.tolist() == [0.5] * 4


def test_simulate_clicks_bad_input():
    gt = _gt()
    with pytest.raises(InputError, match="max_clicks must be an integer >= 1, got 0"):
        simulate_clicks(ScriptedSegmenter([gt]), gt, max_clicks=0)
    with pytest.raises(ShapeError, match=r"gt_mask must be an \(H, W\) image"):
        simulate_clicks(ScriptedSegmenter([gt]), gt[None], max_clicks=1)
    with pytest.raises(InputError, match="ground-truth mask is empty"):
        simulate_clicks(ScriptedSegmenter([gt]), np.zeros_like(gt), max_clicks=1)
    with pytest.raises(ShapeError, match="returned 30x30 masks for a 60x60 reference"):
        simulate_clicks(ScriptedSegmenter([np.ones((30, 30), bool)]), gt, max_clicks=1)


def test_ties_go_negative_and_no_pixel_is_clicked_twice():
    gt = np.zeros((40, 70), bool)
    gt[10:30, 10:30] = True
    pred = np.zeros_like(gt)
    pred[10:30, 40:60] = True  # missed and leaked regions of one shape: RITM's clicker goes negative
    u, v, label = next_click(pred, gt)
    assert label == 0 and pred[int(v), int(u)]
    one = np.zeros((9, 9), bool)
    one[4, 4] = True
    assert next_click(np.zeros_like(one), one)[:2] == (4.0, 4.0)
    assert next_click(np.zeros_like(one), one, clicked_uv=np.array([[4.0, 4.0]])) is None  # nothing left to click
    half = _gt()
    half[:, 30:] = False
    seg = ScriptedSegmenter([half])  # ignores every click: the user does not click the same pixel again
    tr = simulate_clicks(seg, _gt(), max_clicks=6)
    assert len({tuple(c) for c in tr.clicks_uv.tolist()}) == 6 and (tr.labels[1:] == 1).all()
