"""``evaluate_dataset`` and ``graspseg eval segment|summary|export``: tables, summary, plots, agreement with
``graspseg bench quality``."""

import argparse
import csv
import json

import pytest

from graspseg.cli import main
from graspseg.core.errors import InputError
from graspseg.eval import evaluate_dataset, load_dataset, load_frame_folders
from graspseg.eval.segmentation import TABLE_COLUMNS, summarise

from .helpers import OffsetSegmenter, write_boxes


@pytest.fixture
def boxes(tmp_path):
    return write_boxes(tmp_path)


def test_evaluate_dataset_with_a_known_error(boxes):
    ds = load_frame_folders(boxes)
    masks = {s.frame.frame_id: s.instances[0].mask for s in ds}
    ev = evaluate_dataset(OffsetSegmenter(masks, grow=3), ds, max_clicks=4, worst=1)
    assert len(ev.rows) == 2 and set(TABLE_COLUMNS) <= set(ev.rows[0])
    r = ev.rows[0]
    assert r["iou_1click"] == round(6400 / (86 * 86), 4) and r["signed_offset_px"] == 3.0
    assert r["boundary_f_2px"] == 0.0 and r["boundary_f_davis"] == 1.0  # 3 px: beyond 2 px, within DAVIS's 7
    assert r["noc85"] == 1 and r["noc90"] == 4 and r["failed90"]  # 0.865: never 0.90 within the 4-click budget
    stopped = evaluate_dataset(OffsetSegmenter(masks, grow=3), ds, max_clicks=4, worst=0, stop_iou=0.85).rows[0]
    assert stopped["clicks_run"] == 1 and stopped["ious"] == [r["iou_1click"]] * 4  # carried forward
    assert len(r["ious"]) == 4 and r["clicks_run"] == 4
    # the grown rim lies on the table, 6 cm behind the box's rim: the 3-D error is what the cloud gets
    assert 60.0 <= r["boundary_error_3d_median_mm"] <= 60.5
    s = ev.summary
    assert s["objects"] == 2 and s["failures90"] == 2 and s["noc90"] == 4 and len(s["miou_at_clicks"]) == 4
    assert s["sets"]["boxes"]["objects"] == 2 and s["rim_offset_px"]["signed_median_px"] == 3.0
    # 2 px: the 12 corner pixels of the 332-pixel grown rim are farther (sqrt 5, sqrt 8); recall 1
    r2 = evaluate_dataset(OffsetSegmenter(masks, grow=2), ds, max_clicks=1, worst=0, box=True).rows[0]
    assert r2["iou_box"] == r2["iou_1click"] == round(6400 / (84 * 84), 4) and r["iou_box"] is None
    p = 320 / 332
    assert r2["boundary_f_2px"] == round(2 * p / (p + 1), 4) and r2["noc90"] == 1
    assert len(ev.worst) == 1 and ev.worst[0].pred.shape == (480, 640)
    exact = evaluate_dataset(OffsetSegmenter(masks), ds, max_clicks=3, worst=0)
    assert exact.summary["mean_iou_1click"] == 1.0 and exact.summary["noc90"] == 1.0 and not exact.worst
    with pytest.raises(InputError, match="no annotated instance of at least 1000000 pixels"):
        evaluate_dataset(OffsetSegmenter(masks), ds, max_clicks=1, min_area_px=10**6)
    with pytest.raises(InputError, match="is empty; nothing to evaluate"):
        evaluate_dataset(OffsetSegmenter(masks), ds.subset([]))
    with pytest.raises(InputError, match="no evaluated objects"):
        summarise([])


def test_eval_segment_command_writes_its_set(boxes, tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(["-q", "eval", "segment", "--data", str(boxes), "--clicks", "3", "--worst", "2", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["command"] == "eval segment" and report["backend"] == "rgbd" and report["objects"] == 2
    assert report["max_clicks"] == 3 and report["mean_iou_1click"] > 0.9
    for name in ("objects.csv", "objects.json", "summary.json", "iou_vs_clicks.png"):
        assert (out / name).is_file(), name
    assert len(list((out / "worst").glob("*.png"))) == 2
    rows = list(csv.DictReader((out / "objects.csv").open()))
    assert list(rows[0]) == list(TABLE_COLUMNS) and len(rows) == 2
    assert json.loads((out / "summary.json").read_text())["mean_iou_1click"] == report["mean_iou_1click"]
    # through COCO the same numbers
    assert main(["-q", "eval", "export", "--data", str(boxes), "--out", str(tmp_path / "coco")]) == 0
    capsys.readouterr()
    assert main(["-q", "eval", "segment", "--data", str(tmp_path / "coco"), "--clicks", "3", "--out",
                 str(tmp_path / "ev2")]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["layout"] == "coco" and again["miou_at_clicks"] == report["miou_at_clicks"]
    assert main(["eval", "summary", "--data", str(tmp_path / "coco")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 2 and summary["categories"] == {"box": 2}


def test_eval_segment_bad_arguments(boxes, tmp_path, capsys):
    assert main(["eval", "segment", "--data", str(boxes), "--clicks", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--clicks must be >= 1, got 0" in capsys.readouterr().err
    assert main(["eval", "segment", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist or is not a folder" in capsys.readouterr().err
    assert main(["eval", "segment", "--data", str(boxes), "--out", str(tmp_path / "o"), "--grasp.clearance_m=1"]) == 2
    assert "takes only segment.* and limits.* overrides" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_one_click_numbers_agree_with_bench_quality(tmp_path, sample_frame_dir):
    """The same click, candidate and metric functions: eval segment's 1-click row is bench quality's."""
    from graspseg.bench import quality
    from graspseg.segment import create_segmenter

    data = tmp_path / "frames"
    data.mkdir()
    (data / "sample").symlink_to(sample_frame_dir, target_is_directory=True)
    args = argparse.Namespace(data=[str(data)], no_real=False, synthetic=0, viewpoints=["wrist"],
                              resolutions=["640x480"], sensors=["d435"], scenes=["row"], backend="rgbd",
                              granularity="whole", tolerance_px=2.0, repeat=1, no_baselines=True, overlays=None,
                              quiet=True)
    bench = quality.run_quality(args)["real"]["sets"]["frames"]["frames_detail"][0]["objects"][0]
    ev = evaluate_dataset(create_segmenter("rgbd"), load_dataset(data), max_clicks=1)
    row = ev.rows[0]
    assert [row["click_u"], row["click_v"]] == bench["click_uv"]
    assert row["iou_1click"] == bench["iou"] and row["boundary_f_2px"] == bench["boundary_f"]
    assert row["boundary_iou"] == bench["boundary_iou"] and row["boundary_f_davis"] == bench["boundary_f_davis"]
    assert row["signed_offset_px"] == bench["signed_offset_px"]
