import numpy as np
import pytest

from graspseg.core import BASE, CAMERA, TCP, CameraIntrinsics, RGBDFrame, ShapeError, Transform, UnitsError


@pytest.fixture
def small_intr():
    return CameraIntrinsics(8, 6, 10.0, 10.0, 3.5, 2.5)


def test_frame_is_read_only_and_typed(small_intr):
    f = RGBDFrame(np.zeros((6, 8, 3), np.uint8), np.ones((6, 8)), small_intr)
    assert f.depth_m.dtype == np.float32
    with pytest.raises(ValueError):
        f.depth_m[0, 0] = 3.0


def test_mismatched_sizes(small_intr):
    with pytest.raises(ShapeError, match="color is 8x6 but depth is 8x5"):
        RGBDFrame(np.zeros((6, 8, 3), np.uint8), np.ones((5, 8), np.float32), small_intr)


def test_intrinsics_disagree_with_image():
    intr = CameraIntrinsics(640, 480, 600.0, 600.0, 320.0, 240.0)
    with pytest.raises(ShapeError, match="frame is 8x6 but the intrinsics are for 640x480"):
        RGBDFrame(np.zeros((6, 8, 3), np.uint8), np.ones((6, 8), np.float32), intr)


def test_non_finite_and_negative_depth(small_intr):
    d = np.ones((6, 8), np.float32)
    d[0, 0] = np.nan
    with pytest.raises(UnitsError, match="NaN/inf values; encode missing readings as 0"):
        RGBDFrame(np.zeros((6, 8, 3), np.uint8), d, small_intr)
    d[0, 0] = -0.1
    with pytest.raises(UnitsError, match="negative values"):
        RGBDFrame(np.zeros((6, 8, 3), np.uint8), d, small_intr)


def test_raw_depth_needs_scale(small_intr):
    raw = np.full((6, 8), 5000, np.uint16)
    with pytest.raises(UnitsError, match="integer dtype uint16"):
        RGBDFrame(np.zeros((6, 8, 3), np.uint8), raw, small_intr)
    f = RGBDFrame.from_raw_depth(np.zeros((6, 8, 3), np.uint8), raw, 1e-4, small_intr)
    assert f.depth_m[0, 0] == pytest.approx(0.5)
    with pytest.raises(UnitsError, match="depth scale must be a positive"):
        RGBDFrame.from_raw_depth(np.zeros((6, 8, 3), np.uint8), raw, 0.0, small_intr)
    with pytest.raises(UnitsError, match="depth reaches 5000.0 m"):
        RGBDFrame(np.zeros((6, 8, 3), np.uint8), raw.astype(np.float32), small_intr)


def test_base_from_camera_chain(small_intr):
    pose = Transform.from_rt(np.eye(3), [0.4, 0.0, 0.5], BASE, TCP)
    f = RGBDFrame(np.zeros((6, 8, 3), np.uint8), np.ones((6, 8), np.float32), small_intr, base_from_tcp=pose)
    tcp_from_camera = Transform.from_rt(np.eye(3), [0.0, 0.05, 0.0], TCP, CAMERA)
    b = f.base_from_camera(tcp_from_camera)
    assert b.name == "base_from_camera_color_optical"
    np.testing.assert_allclose(b.translation, [0.4, 0.05, 0.5])
    assert f.base_from_camera(None) is None
