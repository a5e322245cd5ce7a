"""The robot pose at a frame's capture time: interpolated in a timestamped stream, or from a callable."""

from __future__ import annotations

import numpy as np
import pytest

from graspseg.capture.poses import PoseStream, attach_pose
from graspseg.core import RGBDFrame, Transform
from graspseg.core.errors import ConfigError, InputError


def _pose(x_m: float, yaw_rad: float) -> Transform:
    return Transform.from_rotvec([0.0, 0.0, yaw_rad], [x_m, 0.0, 0.5], "base", "tcp")


def _frame(flat_frame, t_s: float) -> RGBDFrame:
    return RGBDFrame(flat_frame.color, flat_frame.depth_m, flat_frame.intrinsics, t_s, None, "f")


def test_stream_interpolates_position_and_rotation_at_the_frame_time_plus_offset(flat_frame):
    s = PoseStream(time_offset_s=0.010)
    s.add(100.000, _pose(0.0, 0.0))
    s.add(100.040, _pose(0.04, 0.4))
    pose, note = s.at(100.010)  # robot time 100.020: halfway
    np.testing.assert_allclose(pose.translation, [0.02, 0.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(pose.rotation, _pose(0.0, 0.2).rotation, atol=1e-12)
    assert "interpolated" in note
    f = attach_pose(_frame(flat_frame, 100.010), s)
    np.testing.assert_allclose(f.base_from_tcp.matrix, pose.matrix)
    assert f.meta["pose_source"] == "stream" and f.meta["pose_time_offset_s"] == 0.010


def test_stream_refuses_to_guess_across_gaps_and_beyond_its_samples(flat_frame):
    s = PoseStream(max_gap_s=0.05, max_extrapolation_s=0.005)
    assert s.at(1.0) == (None, "no pose sample received yet")
    s.add(1.0, _pose(0.0, 0.0))
    s.add(1.2, _pose(0.1, 0.0))
    pose, why = s.at(1.1)
    assert pose is None and "200 ms apart" in why
    assert s.at(1.203)[0] is not None  # within the extrapolation limit: the newest sample
    pose, why = s.at(1.3)
    assert pose is None and "after the newest" in why
    f = attach_pose(_frame(flat_frame, 1.3), s)
    assert f.base_from_tcp is None and "after the newest" in f.meta["pose_note"]
    with pytest.raises(InputError, match="not after the previous one"):
        s.add(1.1, _pose(0.0, 0.0))
    with pytest.raises(ConfigError, match="base_from_tcp"):
        s.add(2.0, Transform.identity("base", "camera_color_optical"))
    with pytest.raises(ConfigError, match="capacity >= 2"):
        PoseStream(capacity=1)


def test_a_callable_gives_the_pose_when_the_frame_arrives(flat_frame):
    f = attach_pose(_frame(flat_frame, 5.0), lambda: _pose(0.3, 0.0))
    assert f.base_from_tcp.translation[0] == pytest.approx(0.3) and f.meta["pose_source"] == "callable"
    with pytest.raises(ConfigError, match="must return a base_from_tcp Transform"):
        attach_pose(_frame(flat_frame, 5.0), lambda: np.eye(4))
    with pytest.raises(ConfigError, match="a callable returning base_from_tcp or a PoseStream"):
        attach_pose(_frame(flat_frame, 5.0), 42)
    assert attach_pose(_frame(flat_frame, 5.0), None).base_from_tcp is None


def test_realsense_frames_get_the_interpolated_pose(flat_frame):
    pytest.importorskip("pyrealsense2")
    from graspseg.capture.realsense import RealSenseConfig, RealSenseSource
    from graspseg.capture.realsense_synthetic import EPOCH_START_MS, SoftwareCamera

    intr = flat_frame.intrinsics.scaled(160, 120)
    cam = SoftwareCamera(intr, depth_to_color_translation_m=(0.0, 0.0, 0.0))
    stream = PoseStream()
    t0 = EPOCH_START_MS / 1000
    for k in range(40):  # a 1 kHz-like robot state at 100 Hz, moving 0.1 m/s along x
        stream.add(t0 + k * 0.01, _pose(0.001 * k, 0.0))
    cfg = RealSenseConfig(color_width=160, color_height=120, depth_width=160, depth_height=120, reconnect_attempts=0)
    color, depth = np.zeros((120, 160, 3), np.uint8), np.full((120, 160), 500, np.uint16)
    with RealSenseSource(cfg, device=cam.device, pose=stream) as src:
        cam.push(color, depth, frame_number=0)
        for k in range(1, 6):
            cam.push(color, depth, frame_number=k)
            f = src.read()
            n = f.meta["color_frame_number"]
            assert f.base_from_tcp.translation[0] == pytest.approx(0.1 * n / 30, abs=1e-6)  # 1 µm: epoch-second float precision
            assert f.meta["pose_source"] == "stream"
