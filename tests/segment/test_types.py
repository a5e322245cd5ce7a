import numpy as np
import pytest

from graspseg.core.errors import PromptError, ShapeError
from graspseg.segment.types import MaskSet, Prompt, select_candidate


# --- Prompt -------------------------------------------------------------------------------------------
def test_prompt_from_point_and_views():
    p = Prompt(points_uv=[[10, 20], [30, 40]], point_labels=[1, 0])
    assert p.positive_points.tolist() == [[10, 20]]
    assert p.negative_points.tolist() == [[30, 40]]
    assert p.kind == "points"
    assert Prompt.from_point(3, 4).point_labels.tolist() == [1]
    # labels default to positive
    assert Prompt(points_uv=[[1, 2]]).point_labels.tolist() == [1]
    with pytest.raises(ValueError):
        p.points_uv[0, 0] = 5  # read-only


def test_prompt_only_negative_point_is_rejected():
    with pytest.raises(PromptError, match="only negative points given"):
        Prompt.from_point(3, 4, positive=False)


def test_prompt_box_mask_text_and_dict():
    m = np.zeros((8, 10), bool)
    m[2:4, 3:6] = True
    p = Prompt(box_xyxy=[1, 2, 5, 6], mask=m, text=" red mug ")
    assert p.text == "red mug"
    assert p.kind == "box+mask+text"
    d = p.to_dict()  # the JSON form of the request: the mask travels apart (a PNG part or an array)
    assert d["box_xyxy"] == [1, 2, 5, 6] and d["text"] == "red mug" and "mask_area_px" not in d
    assert p.describe() == d | {"mask_area_px": 6}  # reports add the mask's area
    assert Prompt.from_dict(d, m).to_dict() == d
    assert Prompt(mask=m.astype(np.uint8) * 255).mask.dtype == bool


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"points_uv": [[1, 2]], "point_labels": [1, 0]}, "1 points but 2 labels"),
        ({"points_uv": [[1, 2]], "point_labels": [2]}, "must be 1 .positive. or 0"),
        ({"points_uv": [[np.nan, 2]]}, "must be finite"),
        ({"box_xyxy": [1, 2, 3]}, "box must be 4 finite numbers"),
        ({"box_xyxy": [5, 2, 5, 8]}, "is empty: need x1 > x0"),
        ({"box_xyxy": [1, 9, 5, 8]}, "is empty"),
        ({"mask": np.zeros((2, 3, 4))}, r"must be an \(H, W\) image"),
        ({"mask": np.zeros((4, 4), bool)}, "mask prompt is empty"),
        ({"text": "   "}, "text prompt is empty"),
        ({}, "empty prompt"),
    ],
)
def test_prompt_validation(kwargs, match):
    with pytest.raises(PromptError, match=match):
        Prompt(**kwargs)


def test_prompt_validate_for_image():
    Prompt.from_point(639, 479).validate_for(640, 480)
    with pytest.raises(PromptError, match=r"point \(640, 10\) is outside the 640x480 image"):
        Prompt.from_point(640, 10).validate_for(640, 480)
    with pytest.raises(PromptError, match="outside the 640x480 image"):
        Prompt.from_point(-1, 10).validate_for(640, 480)
    with pytest.raises(PromptError, match="lies entirely outside"):
        Prompt.from_box(700, 10, 800, 50).validate_for(640, 480)
    with pytest.raises(PromptError, match="mask prompt is 10x8 but the frame is 640x480"):
        Prompt(mask=np.ones((8, 10), bool)).validate_for(640, 480)


def test_clipped_box():
    p = Prompt.from_box(-5.5, 10.2, 700, 30.7)
    assert p.clipped_box(640, 480).tolist() == [0, 10, 640, 31]
    assert Prompt.from_point(1, 1).clipped_box(640, 480) is None


# --- MaskSet ------------------------------------------------------------------------------------------
def _set(scores=(0.5, 0.9, 0.7), gran=("part", "whole", "group")):
    k = len(scores)
    masks = np.zeros((k, 6, 8), bool)
    for i in range(k):
        masks[i, : i + 1] = True
    return MaskSet(masks, scores, gran, np.where(masks, 1.0, -1.0), "test", details={"stability": np.arange(k)})


def test_maskset_basics():
    ms = _set()
    assert len(ms) == 3 and ms.shape == (6, 8)
    assert ms.areas.tolist() == [8, 16, 24]
    sub = ms[1]
    assert len(sub) == 1 and sub.granularity == ("whole",) and sub.details["stability"].tolist() == [1]
    top = ms.top(2)
    assert top.granularity == ("whole", "group") and top.scores.tolist() == pytest.approx([0.9, 0.7])
    single = MaskSet(np.ones((6, 8), bool), [1.0], ("whole",))
    assert single.masks.shape == (1, 6, 8)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.zeros((6, 8, 2, 2), bool), [1.0], ("whole",)), r"masks must be \(K, H, W\)"),
        ((np.zeros((2, 6, 8), bool), [1.0], ("whole", "part")), "2 masks but 1 scores"),
        ((np.zeros((2, 6, 8), bool), [1.0, 0.5], ("whole",)), "2 masks but 1 granularity"),
        ((np.zeros((1, 6, 8), bool), [1.0], ("object",)), "granularity labels must be in"),
    ],
)
def test_maskset_validation(args, match):
    with pytest.raises(ShapeError, match=match):
        MaskSet(*args)
    with pytest.raises(ShapeError, match="logits shape"):
        MaskSet(np.zeros((1, 6, 8), bool), [1.0], ("whole",), np.zeros((1, 6, 7)))


def test_select_candidate_policies():
    ms = _set(scores=(0.5, 0.9, 0.7))
    assert select_candidate(ms, "part") == 0
    assert select_candidate(ms, "whole") == 1
    assert ms.select("group") == 2
    assert select_candidate(ms, "auto") == 1
    # auto prefers whole within 0.02 of the best score
    assert select_candidate(_set(scores=(0.91, 0.9, 0.5)), "auto") == 1
    assert select_candidate(_set(scores=(0.95, 0.9, 0.5)), "auto") == 0
    # a missing granularity falls back to the nearest one
    only = _set(scores=(0.4, 0.8), gran=("whole", "group"))
    assert select_candidate(only, "part") == 0
    with pytest.raises(PromptError, match="granularity policy must be one of"):
        select_candidate(ms, "biggest")
    with pytest.raises(ShapeError, match="empty MaskSet"):
        select_candidate(MaskSet(np.zeros((0, 4, 4), bool), [], ()), "auto")
