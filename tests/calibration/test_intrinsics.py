from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from calibration.board import BoardDetection
from calibration.intrinsics import (
    calibrate_intrinsics,
    camera_info_dict,
    check_intrinsics,
    intrinsics_from_camera_info,
    intrinsics_from_realsense,
    intrinsics_from_realsense_profile,
    load_intrinsics,
)
from calibration.synthetic import sample_camera_from_board
from graspseg.core.camera import CameraIntrinsics, CameraRig
from graspseg.core.errors import CalibrationError, MissingDependencyError

TRUE = CameraIntrinsics(640, 480, 612.0, 610.0, 322.0, 236.0, (0.05, -0.1, 0.0, 0.0, 0.0))


def _detections(board, intr, n=10, seed=0, noise=0.2):
    rng = np.random.default_rng(seed)
    obj = board.corners_in_board()
    dets = []
    for _ in range(n):
        pose = sample_camera_from_board(rng, board, intr, max_tilt_deg=45, distance_m=(0.32, 0.5))
        uv = intr.project(pose.apply(obj)) + rng.normal(0, noise, (obj.shape[0], 2))
        dets.append(BoardDetection(uv, np.arange(obj.shape[0])))
    return dets


def test_camera_info_ros1_calibration_file():
    d = camera_info_dict(TRUE, "wrist")
    assert intrinsics_from_camera_info(d) == TRUE


def test_camera_info_message_dump():
    d = {"width": 640, "height": 480, "distortion_model": "plumb_bob", "d": list(TRUE.distortion),
         "k": TRUE.K.ravel().tolist(), "header": {"frame_id": "camera_color_optical_frame"}}
    assert intrinsics_from_camera_info(d) == TRUE
    d2 = {"width": 640, "height": 480, "D": [], "K": TRUE.K.ravel().tolist()}
    assert intrinsics_from_camera_info(d2).fx == TRUE.fx


@pytest.mark.parametrize(
    "d, match",
    [
        ({"width": 640, "k": [1] * 9}, r"missing \['height'\]"),
        ({"width": 640, "height": 480, "k": [1, 2, 3]}, "has 3 numbers, expected 9"),
        ({"width": 640, "height": 480, "k": [600, 0, 320, 0, 600, 240, 0, 0, 1], "distortion_model": "equidistant"},
         "distortion model 'equidistant' is not supported"),
        ({"width": 0, "height": 0, "k": [0] * 9}, "never filled in"),
        ({"width": 640, "height": 480, "k": [0.0019, 0, 320, 0, 0.0019, 240, 0, 0, 1]}, "fx = 0.0019 px is implausible for a 640 px image"),
        ({"width": 640, "height": 480, "k": [600, 0, 3200, 0, 600, 240, 0, 0, 1]}, "principal point"),
    ],
)
def test_camera_info_errors(d, match):
    with pytest.raises(CalibrationError, match=match):
        intrinsics_from_camera_info(d)


def test_load_intrinsics_from_every_format(tmp_path):
    (tmp_path / "info.yaml").write_text(yaml.safe_dump(camera_info_dict(TRUE)))
    (tmp_path / "intr.json").write_text(json.dumps(TRUE.to_dict()))
    CameraRig(TRUE).save_yaml(tmp_path / "rig.yaml")
    for name in ("info.yaml", "intr.json", "rig.yaml"):
        assert load_intrinsics(tmp_path / name) == TRUE
    (tmp_path / "bad.json").write_text(json.dumps({"fx": 600}))
    with pytest.raises(CalibrationError, match="missing field 'width'.*give a rig YAML, a ROS CameraInfo"):
        load_intrinsics(tmp_path / "bad.json")
    with pytest.raises(CalibrationError, match="does not exist"):
        load_intrinsics(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(CalibrationError, match="must hold a mapping"):
        load_intrinsics(tmp_path / "list.yaml")


def test_realsense_profile_conversion():
    prof = SimpleNamespace(width=848, height=480, fx=420.5, fy=420.1, ppx=424.2, ppy=240.7, coeffs=[0.1, 0, 0, 0, 0])
    intr = intrinsics_from_realsense_profile(prof)
    assert (intr.width, intr.fx, intr.cx, intr.distortion[0]) == (848, 420.5, 424.2, 0.1)


def test_realsense_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)  # import fails as it does without the extra
    with pytest.raises(MissingDependencyError, match=r"graspseg\[realsense\]"):
        intrinsics_from_realsense()


def test_calibrate_recovers_intrinsics(board):
    dets = _detections(board, TRUE, n=12)
    dets[3] = None
    res = calibrate_intrinsics(dets, board, (640, 480), names=[f"v{k}" for k in range(12)], distortion="k1k2")
    i = res.intrinsics
    assert abs(i.fx - TRUE.fx) < 3 and abs(i.fy - TRUE.fy) < 3
    assert abs(i.cx - TRUE.cx) < 3 and abs(i.cy - TRUE.cy) < 3
    assert res.per_view_rms_px.shape == (11,) and 0.1 < res.rms_px < 0.4
    assert res.skipped == [("v3", "no board detected")]
    assert res.to_dict()["per_view"][0]["name"] == "v0"


def test_calibrate_needs_enough_views(board):
    with pytest.raises(CalibrationError, match="needs >= 6 board views"):
        calibrate_intrinsics(_detections(board, TRUE, n=3), board, (640, 480))
    with pytest.raises(CalibrationError, match="unknown distortion model"):
        calibrate_intrinsics(_detections(board, TRUE, n=6), board, (640, 480), distortion="fisheye")


def test_check_accepts_right_and_rejects_wrong_intrinsics(board):
    dets = _detections(board, TRUE, n=8, seed=4)
    good = check_intrinsics(TRUE, dets, board)
    assert good.ok and good.median_rms_px < 0.5
    assert np.abs(good.delta_fx_fy_cx_cy_px).max() < 5
    wrong = CameraIntrinsics(640, 480, 640.0, 638.0, 300.0, 250.0, TRUE.distortion)
    bad = check_intrinsics(wrong, dets, board)
    assert not bad.ok
    assert "intrinsics look wrong" in bad.message and "focal length" in bad.message
    with pytest.raises(CalibrationError, match="no usable board view"):
        check_intrinsics(TRUE, [None, None], board)
