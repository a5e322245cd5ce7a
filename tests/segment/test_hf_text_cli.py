"""``graspseg segment|perceive --text ... --model DIR [--detector DIR]`` end to end on tiny checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from graspseg.capture.frame_folder import save_frame_folder  # noqa: E402
from graspseg.capture.images import read_mask  # noqa: E402
from graspseg.cli import main  # noqa: E402
from graspseg.segment import Prompt, create_segmenter  # noqa: E402
from graspseg.segment.backends import hf_testing  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("text_cli")
    frame = hf_testing.synthetic_frame()
    save_frame_folder(frame, root / "frame")
    return {
        "frame_dir": root / "frame",
        "owlv2": hf_testing.save_text_checkpoint("owlv2", root / "owlv2"),
        "sam3": hf_testing.save_text_checkpoint("sam3", root / "sam3"),
        "sam": hf_testing.save_checkpoint("SamModel", hf_testing.sam_config(), root / "sam"),
    }


def _api_mask(frame_dir, backend, text, **options):
    from graspseg.capture import load_frame_folder

    seg = create_segmenter(backend, device="auto", **options)
    seg.set_frame(load_frame_folder(frame_dir))
    ms = seg.predict(Prompt(text=text))
    return ms, ms.select("auto")


def test_segment_grounded_text(setup, tmp_path):
    out = tmp_path / "grounded"
    rc = main(["segment", "--frame", str(setup["frame_dir"]), "--backend", "grounded", "--text", "red mug",
               "--detector", str(setup["owlv2"]), "--model", str(setup["sam"]), "--out", str(out)])
    assert rc == 0
    doc = json.loads((out / "segment.json").read_text())
    assert doc["backend"] == "grounded" and doc["prompt"] == {"text": "red mug"}
    assert all(c["granularity"] == "whole" and 0 < c["detection_score"] <= 1 for c in doc["candidates"])
    ms, k = _api_mask(setup["frame_dir"], "grounded", "red mug", detector=str(setup["owlv2"]), model=str(setup["sam"]))
    assert doc["selected_index"] == k and len(doc["candidates"]) == len(ms)
    np.testing.assert_array_equal(read_mask(out / "mask.png"), ms.masks[k])


def test_segment_sam3_text(setup, tmp_path):
    out = tmp_path / "sam3"
    rc = main(["segment", "--frame", str(setup["frame_dir"]), "--backend", "sam3", "--text", "red mug",
               "--model", str(setup["sam3"]), "--out", str(out)])
    assert rc in (0, 3)  # 3: it ran and wrote everything, but a random-weight model's mask may give no grasp
    doc = json.loads((out / "segment.json").read_text())
    ms, k = _api_mask(setup["frame_dir"], "sam3", "red mug", model=str(setup["sam3"]))
    assert doc["backend"] == "sam3" and len(doc["candidates"]) == len(ms) > 0
    assert {"query_score", "presence_score", "stability"} <= set(doc["candidates"][0])
    np.testing.assert_array_equal(read_mask(out / "mask.png"), ms.masks[k])


def test_perceive_takes_text_and_model(setup, tmp_path):
    out = tmp_path / "perceive"
    rc = main(["perceive", "--frame", str(setup["frame_dir"]), "--backend", "sam3", "--text", "red mug",
               "--model", str(setup["sam3"]), "--out", str(out)])
    assert rc in (0, 3)  # 3: it ran and wrote everything, but a random-weight model's mask may give no grasp
    doc = json.loads((out / "result.json").read_text())
    assert doc["prompt"]["text"] == "red mug"
    assert "sam3" in json.dumps(doc)
    ms, k = _api_mask(setup["frame_dir"], "sam3", "red mug", model=str(setup["sam3"]))
    np.testing.assert_array_equal(read_mask(out / "mask.png"), ms.masks[k])


def test_model_flag_errors(setup, tmp_path, capsys):
    rc = main(["segment", "--frame", str(setup["frame_dir"]), "--point", "50,30", "--model", str(setup["sam"]),
               "--out", str(tmp_path / "x")])
    assert rc == 2
    assert "--model given but backend 'rgbd' has no checkpoint" in capsys.readouterr().err
    rc = main(["segment", "--frame", str(setup["frame_dir"]), "--backend", "grounded", "--text", "red mug",
               "--detector", str(setup["owlv2"]), "--out", str(tmp_path / "y")])
    assert rc == 2
    assert "no segmenter given; pass model=" in capsys.readouterr().err
    # The rgbd default still runs without any checkpoint.
    assert main(["segment", "--frame", str(setup["frame_dir"]), "--point", "50,30", "--out", str(tmp_path / "z")]) == 0
