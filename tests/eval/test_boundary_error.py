"""Calibration of the boundary-error default: measured rim offsets written as the pipeline's boundary_error_px."""

import json

import numpy as np
import pytest
import yaml

from graspseg.cli import main
from graspseg.core.errors import InputError
from graspseg.eval import load_frame_folders, measure_boundary_error, write_boundary_error_config
from graspseg.pipeline import PipelineConfig

from .helpers import OffsetSegmenter, write_boxes


@pytest.fixture
def boxes(tmp_path):
    return write_boxes(tmp_path)


def test_a_known_error_becomes_the_config_default(boxes, tmp_path):
    ds = load_frame_folders(boxes)
    masks = {s.frame.frame_id: s.instances[0].mask for s in ds}
    result = measure_boundary_error(OffsetSegmenter(masks, grow=2), ds)
    d = result["distribution"]
    # every rim pixel of the grown square is 2 px out, the 12 near each corner's diagonal a little more
    assert d["signed_median_px"] == 2.0 and d["abs_median_px"] == 2.0 and d["objects"] == 2
    assert 2.0 <= d["abs_p90_px"] <= 2.9 and result["boundary_error_px"] == d["abs_p90_px"]
    assert result["per_object"][0]["signed_median_px"] == 2.0 and result["per_object"][0]["rim_pixels"] == 332
    assert result["excluded_objects"] == 0 and result["sets"]["boxes"] == d
    # a wrong-object mask (IoU < min_iou) is counted but left out of k
    merged = dict(masks)
    merged["030"] = np.ones_like(masks["030"])  # the whole image for the second box
    mixed = measure_boundary_error(OffsetSegmenter(merged, grow=2), ds)
    assert mixed["excluded_objects"] == 1 and mixed["distribution"]["objects"] == 1
    assert mixed["distribution_all"]["objects"] == 2 and [r["used"] for r in mixed["per_object"]] == [True, False]
    yaml_path, json_path = write_boundary_error_config(result, tmp_path / "k.yaml", source="test")
    text = yaml_path.read_text()
    assert text.startswith("# graspseg boundary-error calibration") and "p95" in text
    assert yaml.safe_load(text) == {"boundary_error_px": result["boundary_error_px"]}
    # the pipeline reads it as its boundary_error_px (what `graspseg perceive --config k.yaml` uses)
    assert PipelineConfig.from_yaml(yaml_path).boundary_error_px == result["boundary_error_px"]
    side = json.loads(json_path.read_text())
    assert side["distribution"] == d and len(side["per_object"]) == 2
    # a base config keeps its other settings
    (tmp_path / "base.yaml").write_text("gripper: franka_hand\nsegment:\n  granularity: whole\nboundary_error_px: 9\n")
    p, _ = write_boundary_error_config(result, tmp_path / "full.yaml", base_config=tmp_path / "base.yaml")
    cfg = PipelineConfig.from_yaml(p)
    assert cfg.boundary_error_px == result["boundary_error_px"] and cfg.gripper == "franka_hand"


def test_boundary_error_command(boxes, tmp_path, capsys):
    out = tmp_path / "cal" / "rgbd_k.yaml"
    assert main(["-q", "eval", "boundary-error", "--data", str(boxes), "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backend"] == "rgbd" and report["config"] == str(out)
    assert out.is_file() and out.with_suffix(".json").is_file()
    k = PipelineConfig.from_yaml(out).boundary_error_px
    assert k == report["boundary_error_px"] and 0 <= k < 5


def test_boundary_error_bad_input(boxes, tmp_path, capsys):
    ds = load_frame_folders(boxes)
    masks = {s.frame.frame_id: s.instances[0].mask for s in ds}
    result = measure_boundary_error(OffsetSegmenter(masks), ds)
    with pytest.raises(InputError, match="give a path ending in .yaml"):
        write_boundary_error_config(result, tmp_path / "k.txt")
    (tmp_path / "d.yaml").mkdir()
    with pytest.raises(InputError, match="is a folder; give the path of a .yaml file"):
        write_boundary_error_config(result, tmp_path / "d.yaml")
    with pytest.raises(InputError, match="data set boxes is empty; nothing to evaluate"):
        measure_boundary_error(OffsetSegmenter(masks), ds.subset([]))
    with pytest.raises(InputError, match="no annotated instance of at least 1000000 pixels"):
        measure_boundary_error(OffsetSegmenter(masks), ds, min_area_px=10**6)
    with pytest.raises(InputError, match=r"min_iou must be in \[0, 1\), got 1.5"):
        measure_boundary_error(OffsetSegmenter(masks), ds, min_iou=1.5)
    with pytest.raises(InputError, match="no one-click mask reached IoU 0.5"):
        measure_boundary_error(OffsetSegmenter(masks, grow=40), ds)  # 160x160 for an 80x80 box: IoU 0.25
    assert main(["eval", "boundary-error", "--data", str(boxes), "--out", str(tmp_path / "k.json")]) == 2
    assert "give a path ending in .yaml" in capsys.readouterr().err


def test_measured_offsets_are_the_metric_functions(boxes):
    from graspseg.eval import rim_offsets_px

    ds = load_frame_folders(boxes)
    s = ds[0]
    m = s.instances[0].mask
    grown = np.zeros_like(m)
    grown[199:281, 279:361] = True
    assert np.median(rim_offsets_px(grown, m)) == 1.0


def test_perceive_uses_the_calibrated_config(sample_frame_dir, tmp_path, capsys):
    """``graspseg perceive --config k.yaml``: the margins take the measured boundary error (source: config)."""
    from graspseg.eval import first_click, load_dataset

    assert main(["-q", "eval", "boundary-error", "--data", str(sample_frame_dir), "--out", str(tmp_path / "k.yaml")]) == 0
    k = json.loads(capsys.readouterr().out)["boundary_error_px"]
    u, v = first_click(load_dataset(sample_frame_dir)[0].instances[0].mask)
    rc = main(["-q", "perceive", "--frame", str(sample_frame_dir), "--point", f"{u:g},{v:g}", "--config",
               str(tmp_path / "k.yaml"), "--out", str(tmp_path / "p")])
    assert rc in (0, 3)  # 3: perceived, no grasp accepted
    result = json.loads((tmp_path / "p" / "result.json").read_text())
    assert result["boundary_error"] == {"px": k, "source": "config"}


def test_a_checkpoint_carries_the_same_measurement(boxes, tmp_path):
    """``write_checkpoint_boundary_error`` writes what the SAM backend reads, scaled with the image size."""
    from graspseg.eval.boundary_error import write_checkpoint_boundary_error
    from graspseg.segment.backends.sam import calibrated_error_px, read_boundary_calibration

    ds = load_frame_folders(boxes)
    masks = {s.frame.frame_id: s.instances[0].mask for s in ds}
    result = measure_boundary_error(OffsetSegmenter(masks, grow=2), ds)
    path = write_checkpoint_boundary_error(result, tmp_path, reference_long_side_px=640, data="boxes")
    cal = read_boundary_calibration(tmp_path)
    assert path.name == "graspseg_boundary_error.json" and cal["p90_px"] == result["boundary_error_px"]
    assert cal["distribution"] == result["distribution"] and cal["statistic"] == "abs_p90_px"
    assert calibrated_error_px(cal, 720, 1280) == pytest.approx(2 * result["boundary_error_px"])
    with pytest.raises(InputError, match="reference_long_side_px must be > 0 pixels, got 0"):
        write_checkpoint_boundary_error(result, tmp_path, reference_long_side_px=0)


def test_one_place_picks_k_and_the_grasp_stage_uses_it(sample_frame_dir):
    """argument > boundary_error_px > grasp.boundary_error_px > the segmenter's estimate; shape and grasp
    stages get the same k (a grasp.boundary_error_px used to win inside the planner unreported)."""
    from graspseg.capture import load_frame_folder
    from graspseg.eval import first_click, load_dataset
    from graspseg.pipeline import Pipeline
    from graspseg.segment import Prompt

    frame = load_frame_folder(sample_frame_dir)
    prompt = Prompt.from_point(*first_click(load_dataset(sample_frame_dir)[0].instances[0].mask))

    def k(config: dict, argument=None):
        r = Pipeline(PipelineConfig.from_dict(config)).perceive(frame, prompt, boundary_error_px=argument)
        assert r.grasps.boundary_error_px == r.boundary_error_px == r.shape.uncertainty["boundary_error_px"]
        return r.boundary_error_px, r.boundary_error_source

    own, source = k({})
    assert source.startswith("segmenter (")
    assert k({"grasp": {"boundary_error_px": 7.0}}) == (7.0, "config (grasp)")
    assert k({"grasp": {"boundary_error_px": 7.0}}, argument=3.0) == (3.0, "argument")
    assert k({"boundary_error_px": 5.0, "grasp": {"boundary_error_px": 7.0}}) == (5.0, "config")
