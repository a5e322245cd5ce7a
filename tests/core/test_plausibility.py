"""Plausibility bounds and their explicit overrides; the rig-vs-frame check; good inputs still load."""

from __future__ import annotations

import numpy as np
import pytest

from graspseg.core import CameraIntrinsics, CameraRig, ConfigError, RGBDFrame, Transform, UnitsError
from graspseg.core.camera import check_rig_matches_frame
from graspseg.core.transform import BASE, CAMERA, TCP

INTR = CameraIntrinsics(640, 480, 615.0, 615.0, 319.5, 239.5)
TCP_CAM = Transform.from_xyz_quat_xyzw([0.0, 0.0325, 0.045], [0, 0, 0, 1], TCP, CAMERA)


def _frame(intr=INTR, depth_scale=1e-3):
    return RGBDFrame(np.zeros((intr.height, intr.width, 3), np.uint8), np.full((intr.height, intr.width), 0.5, np.float32),
                     intr, frame_id="f", meta={"depth_scale": depth_scale})


@pytest.mark.parametrize("xyz", [[0.0, 0.06, 0.03], [0.1, -0.2, 0.3], [0.0, 0.0, 0.499]])
def test_plausible_wrist_cameras_load(xyz):
    t = Transform.from_dict({"xyz_m": xyz, "quat_xyzw": [0, 0, 0, 1]}, to_frame=TCP, from_frame=CAMERA)
    assert np.allclose(t.translation, xyz)
    assert CameraRig(INTR, t).tcp_from_camera == t


@pytest.mark.parametrize("xyz", [[0.8, 0.0, 0.3], [-1.2, 1.5, 0.9], [0.0, 0.0, 2.99]])
def test_plausible_robot_poses_load(xyz):
    t = Transform.from_dict({"xyz_m": xyz, "quat_xyzw": [0, 0, 0, 1]}, to_frame=BASE, from_frame=TCP)
    assert np.allclose(t.translation, xyz)


def test_bounds_are_overridable_explicitly():
    far = {"xyz_m": [0.0, 0.0, 0.8], "quat_xyzw": [0, 0, 0, 1]}
    with pytest.raises(UnitsError, match=r"0.800 m long, more than the plausible 0.5 m — millimetres\?"):
        Transform.from_dict(far, to_frame=TCP, from_frame=CAMERA)
    assert Transform.from_dict({**far, "max_translation_m": 1.0}, to_frame=TCP, from_frame=CAMERA).translation[2] == 0.8
    assert Transform.from_dict({**far, "allow_implausible": True}, to_frame=TCP, from_frame=CAMERA).translation[2] == 0.8
    with pytest.raises(UnitsError, match="more than the plausible 0.7 m"):
        Transform.from_dict({**far, "max_translation_m": 0.7}, to_frame=TCP, from_frame=CAMERA)
    t = Transform.from_dict(far, to_frame=TCP, from_frame=CAMERA, check_plausible=False)
    with pytest.raises(UnitsError, match="set max_tcp_from_camera_m"):
        CameraRig(INTR, t)
    rig = CameraRig(INTR, t, max_tcp_from_camera_m=1.0)
    d = rig.to_dict()
    assert d["max_tcp_from_camera_m"] == 1.0
    assert CameraRig.from_dict(d) == rig
    assert CameraRig.from_dict({**CameraRig(INTR, t, allow_implausible=True).to_dict()}).allow_implausible


def test_implausible_intrinsics_overridable_and_default_rig_omits_override_fields():
    d = {**INTR.to_dict(), "fx": 1.93, "fy": 1.93}
    with pytest.raises(UnitsError, match="fx = 1.93 px is implausible for a 640 px image"):
        CameraIntrinsics.from_dict(d)
    assert CameraIntrinsics.from_dict({**d, "allow_implausible": True}).fx == 1.93
    d = CameraRig(INTR, TCP_CAM).to_dict()
    assert "max_tcp_from_camera_m" not in d and "allow_implausible" not in d


def test_rig_matching_the_frame_passes_within_tolerance():
    check_rig_matches_frame(None, _frame())
    check_rig_matches_frame(CameraRig(INTR, TCP_CAM, depth_scale=1e-3), _frame())
    near = CameraIntrinsics(640, 480, 621.0, 609.0, 325.0, 235.0)  # a calibration ~1 % off the factory values
    check_rig_matches_frame(CameraRig(near, TCP_CAM, depth_scale=1e-3), _frame())


@pytest.mark.parametrize(
    "rig_intr, rig_scale, frame_scale, match",
    [
        (CameraIntrinsics(640, 480, 1066.8, 1067.5, 313.0, 241.3), 1e-3, 1e-3,
         r"rig 'camera' has fx = 1066.80 px but the frame 'f' says fx = 615.00 px \(73.5% apart"),
        (CameraIntrinsics(640, 480, 615.0, 580.0, 319.5, 239.5), 1e-3, 1e-3, r"has fy = 580.00 px .* fy = 615.00 px"),
        (CameraIntrinsics(640, 480, 615.0, 615.0, 360.0, 239.5), 1e-3, 1e-3, r"has cx = 360.00 px .* cx = 319.50 px"),
        (CameraIntrinsics(1280, 720, 900.0, 900.0, 639.5, 359.5), 1e-3, 1e-3,
         r"rig 'camera' is for 1280x720 images but the frame 'f' is 640x480"),
        (INTR, 1e-3, 1e-4, r"rig 'camera' has depth_scale 0.001 m per unit but the frame 'f' was decoded with "
                           r"depth_scale 0.0001"),
    ],
)
def test_rig_disagreeing_with_the_frame_is_refused_with_both_values(rig_intr, rig_scale, frame_scale, match):
    rig = CameraRig(rig_intr, TCP_CAM, depth_scale=rig_scale)
    with pytest.raises(ConfigError, match=match):
        check_rig_matches_frame(rig, _frame(depth_scale=frame_scale))
    check_rig_matches_frame(CameraRig(rig_intr, TCP_CAM, depth_scale=rig_scale, allow_implausible=True),
                            _frame(depth_scale=frame_scale))


def test_pipeline_refuses_a_rig_of_another_camera():
    from graspseg.pipeline import Pipeline
    from graspseg.segment import Prompt

    rig = CameraRig(CameraIntrinsics(640, 480, 1066.8, 1067.5, 313.0, 241.3), TCP_CAM, depth_scale=1e-3)
    with pytest.raises(ConfigError, match="rig 'camera' has fx = 1066.80 px but the frame"):
        Pipeline(rig=rig).perceive(_frame(), Prompt.from_point(320, 240))


def test_default_config_loads():
    from graspseg.pipeline import PipelineConfig
    from tests.sweep_cases import REPO

    assert PipelineConfig.from_yaml(REPO / "configs" / "default.yaml") == PipelineConfig()


def test_from_raw_depth_records_the_scale_for_the_rig_check():
    raw = np.full((480, 640), 500, np.uint16)
    frame = RGBDFrame.from_raw_depth(np.zeros((480, 640, 3), np.uint8), raw, 1e-3, INTR, frame_id="raw")
    assert frame.meta["depth_scale"] == 1e-3 and float(frame.depth_m.max()) == pytest.approx(0.5)
    check_rig_matches_frame(CameraRig(INTR, TCP_CAM, depth_scale=1e-3), frame)
    with pytest.raises(ConfigError, match="has depth_scale 0.0001 m per unit but the frame 'raw' was decoded with"):
        check_rig_matches_frame(CameraRig(INTR, TCP_CAM, depth_scale=1e-4), frame)
    with pytest.raises(UnitsError, match="depth_raw has dtype complex128"):
        RGBDFrame.from_raw_depth(np.zeros((480, 640, 3), np.uint8), raw + 0j, 1e-3, INTR)
