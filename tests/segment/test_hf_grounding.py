"""Text prompts through a detector and a box-promptable SAM segmenter (tiny random checkpoint)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from graspseg.core.errors import ConfigError, SegmentationError  # noqa: E402
from graspseg.segment import TEXT_BACKENDS, create_segmenter  # noqa: E402
from graspseg.segment.backends import hf_testing  # noqa: E402
from graspseg.segment.types import Prompt  # noqa: E402


class FixedDetector:
    def __init__(self, boxes, scores):
        self.boxes, self.scores, self.calls = np.asarray(boxes, float), np.asarray(scores, float), 0

    def detect(self, frame, text):
        self.calls += 1
        return (self.boxes, self.scores) if text == "red box" else (np.zeros((0, 4)), np.zeros(0))


@pytest.fixture(scope="module")
def sam(tmp_path_factory):
    ckpt = hf_testing.save_checkpoint("SamModel", hf_testing.sam_config(), tmp_path_factory.mktemp("g") / "sam")
    return create_segmenter("sam", model=ckpt, device="cpu")


def test_text_goes_through_boxes_to_the_segmenter(sam):
    frame = hf_testing.synthetic_frame()
    det = FixedDetector([[30, 20, 70, 50], [0, 0, 20, 20]], [0.9, 0.4])
    seg = create_segmenter("grounded", detector=det, segmenter=sam)
    assert seg.accepts_text and "grounded" in TEXT_BACKENDS
    seg.set_frame(frame)
    ms = seg.predict(Prompt(text="red box"))
    seg.predict(Prompt(text="red box"))
    assert det.calls == 1  # cached per phrase and frame
    assert len(ms) == 2 and ms.granularity == ("whole", "whole")
    direct = sam.predict(Prompt.from_box(30, 20, 70, 50.001))
    k = direct.select("whole")
    np.testing.assert_allclose(ms.logits[0], direct.logits[k], atol=1e-3)
    assert ms.scores[0] == pytest.approx(0.9 * direct.scores[k], rel=1e-4)
    point = seg.predict(Prompt.from_point(50, 30))  # non-text prompts go to the segmenter
    assert len(point) == 3


def test_text_not_found_and_bad_detector(sam):
    seg = create_segmenter("grounded", detector=FixedDetector([[1, 1, 5, 5]], [0.5]), segmenter=sam)
    with pytest.raises(SegmentationError, match="call set_frame"):
        seg.predict(Prompt(text="red box"))
    seg.set_frame(hf_testing.synthetic_frame())
    with pytest.raises(SegmentationError, match="no 'blue mug' found.*lower box_threshold"):
        seg.predict(Prompt(text="blue mug"))
    with pytest.raises(ConfigError, match="detect\\(frame, text\\)"):
        create_segmenter("grounded", detector=object(), segmenter=sam)
