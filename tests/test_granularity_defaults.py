"""Grasp-facing defaults: Pipeline, the plugin and ``perceive`` take the whole object (part when asked, group
only when no whole exists, and they say so); ``segment`` keeps the best-score ``auto`` convention."""

import json

import numpy as np
import pytest

from graspseg.capture import load_frame_folder
from graspseg.cli import main
from graspseg.plugin import GraspPerception
from graspseg.segment import SEGMENTERS, Prompt
from graspseg.segment.backends.rgbd import RGBDSegmenter
from graspseg.segment.types import MaskSet

MUG = (352, 280)


class _GroupScoresBest:
    """The rgbd segmenter with the group candidate scored above the others (what makes ``auto`` pick a group);
    ``drop_whole`` also removes the whole-object candidate (a backend that offers part and group only)."""

    name = "group_best"
    accepts_text = False

    def __init__(self, drop_whole: bool = False) -> None:
        self.inner = RGBDSegmenter()
        self.drop_whole = drop_whole

    def set_frame(self, frame):
        self.inner.set_frame(frame)

    def segment_all(self, frame=None):
        return self.inner.segment_all(frame)

    def predict(self, prompt):
        ms = self.inner.predict(prompt)
        scores = np.where(np.array(ms.granularity) == "group", 0.99, 0.5)
        ms = MaskSet(ms.masks, scores, ms.granularity, ms.logits, self.name, prompt, {})
        if self.drop_whole:
            ms = ms[np.array([i for i, g in enumerate(ms.granularity) if g != "whole"])]
        return ms


@pytest.fixture
def group_best_backend():
    SEGMENTERS.register("group_best", lambda **kw: _GroupScoresBest(**kw), replace=True)
    yield "group_best"
    SEGMENTERS.unregister("group_best")


def _selected(ms, index):
    return ms.granularity[index]


def test_plugin_takes_the_whole_object_by_default_part_when_asked_group_only_as_a_fallback(sample_frame_dir):
    frame = load_frame_folder(sample_frame_dir)
    prompt = Prompt.from_point(*MUG)
    plugin = GraspPerception(segmenter=_GroupScoresBest())
    res = plugin.perceive(frame, prompt)
    assert _selected(res.mask_set, res.selected_index) == "whole"  # not the best-scoring group
    assert not any("candidate" in n for n in res.notes)
    part = plugin.perceive(frame, prompt, granularity="part")
    assert _selected(part.mask_set, part.selected_index) == "part"
    auto = plugin.perceive(frame, prompt, granularity="auto")
    assert _selected(auto.mask_set, auto.selected_index) == "group"  # auto = best score, only when asked
    fallback = GraspPerception(segmenter=_GroupScoresBest(drop_whole=True)).perceive(frame, prompt)
    assert _selected(fallback.mask_set, fallback.selected_index) == "group"
    assert any("no 'whole' candidate: used the 'group' mask" in n for n in fallback.notes)


def test_perceive_cli_takes_the_whole_object_and_segment_cli_the_best_score(group_best_backend, sample_frame_dir,
                                                                             tmp_path, capsys):
    point = f"{MUG[0]},{MUG[1]}"
    assert main(["perceive", "--frame", str(sample_frame_dir), "--point", point, "--backend", group_best_backend,
                 "--out", str(tmp_path / "p")]) in (0, 3)  # 3: no grasp accepted, the outputs are written
    doc = json.loads((tmp_path / "p" / "result.json").read_text())
    seg = doc["segmentation"]
    assert seg["candidates"][seg["selected_index"]]["granularity"] == "whole"
    assert main(["segment", "--frame", str(sample_frame_dir), "--point", point, "--backend", group_best_backend,
                 "--out", str(tmp_path / "s")]) == 0
    doc = json.loads((tmp_path / "s" / "segment.json").read_text())
    assert doc["candidates"][doc["selected_index"]]["granularity"] == "group"
    capsys.readouterr()
