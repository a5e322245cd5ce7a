import pytest

from graspseg.core.errors import BackendNotFoundError, PromptError
from graspseg.segment import base
from graspseg.segment.base import SEGMENTERS, Segmenter, create_segmenter, text_prompt_error


def test_rgbd_is_registered_and_satisfies_the_protocol():
    assert "rgbd" in SEGMENTERS
    seg = create_segmenter("rgbd")
    assert isinstance(seg, Segmenter)
    assert seg.name == "rgbd" and seg.accepts_text is False
    seg2 = create_segmenter("rgbd", jump_a_m=0.01)
    assert seg2.config.jump_a_m == 0.01


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(BackendNotFoundError, match="rgbd"):
        create_segmenter("no-such-backend")


def test_text_prompt_error_without_and_with_text_backends(monkeypatch):
    monkeypatch.setattr(base, "TEXT_BACKENDS", {})
    err = text_prompt_error("rgbd")
    assert isinstance(err, PromptError)
    assert "backend 'rgbd' does not accept text prompts" in str(err)
    assert "no installed backend accepts text" in str(err)
    monkeypatch.setattr(base, "TEXT_BACKENDS", {})
    base.register_text_backend("grounded-sam", "sam")
    err = text_prompt_error("rgbd")
    assert "'grounded-sam' (pip install 'graspseg[sam]')" in str(err)
