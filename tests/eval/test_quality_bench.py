"""The ``graspseg bench quality`` benchmark on the frame shipped in the package (no synthetic scenes)."""

import argparse
import json

import pytest

from graspseg.bench import quality
from graspseg.core.errors import ConfigError, InputError


def _args(tmp_path, data, **kw):
    ns = dict(data=[str(data)], no_real=False, synthetic=0, viewpoints=["wrist"], resolutions=["640x480"],
              sensors=["d435"], scenes=["row"], backend="rgbd", granularity="whole", tolerance_px=2.0, repeat=1,
              no_baselines=True, overlays=str(tmp_path / "ov"), quiet=True)
    ns.update(kw)
    return argparse.Namespace(**ns)


def test_quality_report_on_the_sample_frame(tmp_path, sample_frame_dir):
    # a folder holding the one shipped frame folder
    data = tmp_path / "frames"
    data.mkdir()
    (data / "sample").symlink_to(sample_frame_dir, target_is_directory=True)
    report = quality.run_quality(_args(tmp_path, data))
    assert report["schema_version"] == quality.SCHEMA_VERSION and report["units"]["time"] == "ms"
    cell = report["real"]["sets"]["frames"]
    frames = cell["frames_detail"]
    assert len(frames) == 1 and frames[0]["objects"][0]["object"] == "red_mug"
    row = frames[0]["objects"][0]
    # the sample's true mask was projected from the object's depth cloud: the colour-refined rim scores
    # lower against it than the depth rim does (see the override run below)
    assert row["iou"] > 0.93 and row["boundary_f"] > 0.75 and 0 < row["boundary_iou"] <= 1
    assert abs(row["signed_offset_px"]) <= 2
    assert report["real"]["mean_iou"] == cell["mean_iou"] == row["iou"]
    assert cell["met"] is True and cell["objects"] == 1
    assert report["timing_ms"]["set_frame_median"] > 0 and report["timing_ms"]["predict_median"] > 0
    assert report["met"]["cells"] == report["met"]["cells_met"] == 1
    assert report["synthetic"]["mean_iou"] is None and report["synthetic"]["cells"] == []
    assert (tmp_path / "ov" / "sample_red_mug.png").is_file()
    json.dumps(report)  # serialisable
    # segmenter options from the command line reach the segmenter and are recorded
    off = quality.run_quality(_args(tmp_path, data, overlays=None,
                                    overrides={"segment.options.refine_band_px": 0}))
    assert off["overrides"] == {"segment.options.refine_band_px": 0, "segment.backend": "rgbd"}
    row_off = off["real"]["sets"]["frames"]["frames_detail"][0]["objects"][0]
    assert row_off["iou"] != row["iou"] and row_off["boundary_f"] > 0.9


def test_quality_bad_arguments(tmp_path, capsys):
    with pytest.raises(InputError, match="--repeat must be >= 1"):
        quality.run(_args(tmp_path, tmp_path, repeat=0))
    with pytest.raises(InputError, match="--synthetic must be >= 0"):
        quality.run(_args(tmp_path, tmp_path, synthetic=-1))
    with pytest.raises(InputError, match="is not a directory"):
        quality.run_quality(_args(tmp_path, tmp_path / "missing"))
    with pytest.raises(InputError, match=r"--scenes: unknown \['heap'\]; choose from"):
        quality.run(_args(tmp_path, tmp_path, scenes=["heap"]))
    with pytest.raises(InputError, match=r"only segment\.\* overrides, got --grasp\.clearance_m"):
        quality.run_quality(_args(tmp_path, tmp_path, overrides={"grasp.clearance_m": 0.01}))
    with pytest.raises(ConfigError, match=r"unknown rgbd segmenter option\(s\) \['bogus'\]"):
        quality.run_quality(_args(tmp_path, tmp_path, overrides={"segment.options.bogus": 1}))


def test_quality_matrix_cell_with_its_baseline(tmp_path):
    """One synthetic cell end to end: exact masks, the classic recipe beside, the cell's verdicts."""
    pytest.importorskip("open3d")
    args = _args(tmp_path, tmp_path, no_real=True, synthetic=1, no_baselines=False, overlays=None)
    report = quality.run_quality(args)
    (cell,) = report["synthetic"]["cells"]
    assert (cell["viewpoint"], cell["resolution"], cell["sensor"], cell["scene"]) == ("wrist", "640x480", "d435", "row")
    assert cell["objects"] >= 3
    assert 0 <= cell["mean_iou"] <= 1 and 0 <= cell["baseline_mean_iou"] <= 1
    assert cell["met"] == (cell["mean_iou"] >= 0.9 and cell["mean_boundary_f"] >= 0.8)
    assert cell["ahead_of_baseline"] == (cell["mean_iou"] > cell["baseline_mean_iou"]
                                         and cell["mean_boundary_f"] > cell["baseline_mean_boundary_f"])
    assert report["met"]["cells"] == 1
    json.dumps(report)


def test_matrix_cell_scenes_follow_their_cell():
    scene, frame = quality.render_cell_scene({"viewpoint": "third_person", "resolution": "848x480",
                                              "sensor": "xtion", "scene": "thin_flat"}, seed=0)
    assert frame.depth_m.shape == (480, 848)
    assert 0.8 <= scene.meta["distance_m"] <= 1.6 and 30 <= scene.meta["tilt_deg"] <= 60
    assert scene.meta["room"] is not None
    assert "depth_shift_px" in frame.meta and 2 <= abs(frame.meta["depth_shift_px"][0]) <= 6
    assert all(p.kind in ("box", "cylinder") for p in scene.primitives)


def test_poses_give_the_perceive_position_error_on_a_ycb_frame(tmp_path, real_dir):
    """--poses: the pipeline's object centre against the true pose origin (the model centre), mm."""
    ycb = real_dir.parent / "ycb_video"
    if not (ycb / "000001").is_dir():
        pytest.skip("shared ycb_video frames not found")
    data = tmp_path / "ycb"
    data.mkdir()
    (data / "000001").symlink_to(ycb / "000001", target_is_directory=True)
    report = quality.run_quality(_args(tmp_path, data, overlays=None, poses=True))
    cell = report["real"]["sets"]["ycb"]
    rows = cell["frames_detail"][0]["objects"]
    assert len(rows) == 3 and all(r["position_error_mm"] is not None for r in rows)
    assert all(r["perceive_granularity"] == "whole" for r in rows)  # the grasp-facing default
    # touching objects, each found within about a centimetre of its true centre
    assert cell["median_position_error_mm"] < 12.0
    assert "position error" in quality._table(report)
    assert report["met"]["median_position_error_mm"] == (cell["median_position_error_mm"] <= 8.0)
    # without --poses nothing is perceived
    plain = quality.run_quality(_args(tmp_path, data, overlays=None))
    assert plain["real"]["sets"]["ycb"]["median_position_error_mm"] is None


def test_matrix_truth_lies_on_the_rendered_colour_outline():
    """The measurement itself: the exact mask scores 1 / 0 px, it sits on the colour edge, and the offset's sign."""
    import cv2
    import numpy as np

    from graspseg.eval import mask_scores, signed_boundary_offset_px

    scene, frame = quality.render_cell_scene({"viewpoint": "wrist", "resolution": "640x480", "sensor": "xtion",
                                              "scene": "single"}, seed=0)
    gt = scene.objects[0].mask
    s = mask_scores(gt, gt, tolerance_px=2.0)
    assert s["boundary_f"] == 1.0 and s["signed_offset_px"] == 0.0 and s["iou"] == 1.0
    # the colour gradient across the true outline peaks on its two rim rings (the depth is shifted, colour not)
    lab = cv2.cvtColor(frame.color, cv2.COLOR_RGB2Lab).astype(np.float32)
    grad = np.hypot(cv2.Sobel(lab, cv2.CV_32F, 1, 0), cv2.Sobel(lab, cv2.CV_32F, 0, 1)).max(axis=2)
    d_in = cv2.distanceTransform(gt.astype(np.uint8), cv2.DIST_L2, 5)
    d_out = cv2.distanceTransform((~gt).astype(np.uint8), cv2.DIST_L2, 5)
    ring = np.where(gt, np.ceil(d_in - 0.5), 1 - np.ceil(d_out - 0.5)).astype(int)
    profile = {r: float(grad[ring == r].mean()) for r in range(-3, 5)}
    assert min(profile[0], profile[1]) > 3 * max(profile[r] for r in (-3, -2, 3, 4))
    # sign: a mask inside the true outline is negative, outside positive
    k = np.ones((5, 5), np.uint8)
    assert signed_boundary_offset_px(cv2.erode(gt.astype(np.uint8), k).astype(bool), gt) == pytest.approx(-2, abs=0.5)
    assert signed_boundary_offset_px(cv2.dilate(gt.astype(np.uint8), k).astype(bool), gt) == pytest.approx(2, abs=0.5)
