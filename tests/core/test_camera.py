import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from graspseg.core import (
    CAMERA,
    TCP,
    CameraIntrinsics,
    CameraRig,
    ConfigError,
    ShapeError,
    Transform,
    UnitsError,
)


def test_project_unproject_round_trip_with_distortion():
    intr = CameraIntrinsics(640, 480, 600.0, 601.0, 320.0, 240.0, (0.1, -0.05, 0.001, -0.002, 0.01))
    rng = np.random.default_rng(0)
    uv = rng.uniform([20, 20], [620, 460], size=(200, 2))
    z = rng.uniform(0.2, 1.5, size=200)
    pts = intr.unproject(uv, z)
    np.testing.assert_allclose(pts[:, 2], z)
    np.testing.assert_allclose(intr.project(pts), uv, atol=1e-6)


def test_distortion_matches_opencv():
    import cv2

    intr = CameraIntrinsics(640, 480, 600.0, 600.0, 320.0, 240.0, (0.12, -0.3, 0.001, 0.002, 0.1))
    pts = np.array([[0.1, -0.05, 0.5], [-0.2, 0.1, 0.8], [0.0, 0.0, 1.0]])
    ref, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), intr.K, np.array(intr.distortion))
    np.testing.assert_allclose(intr.project(pts), ref.reshape(-1, 2), atol=1e-6)


def test_ray_image_matches_unproject():
    intr = CameraIntrinsics(64, 48, 60.0, 61.0, 31.5, 23.5)
    rays = intr.ray_image
    assert rays.shape == (48, 64, 2)
    p = intr.unproject(np.array([[10.0, 7.0]]), [2.0])[0]
    np.testing.assert_allclose(rays[7, 10] * 2.0, p[:2], rtol=1e-6)


def test_scaled_intrinsics_keep_projection_consistent():
    intr = CameraIntrinsics(640, 480, 600.0, 600.0, 319.5, 239.5)
    half = intr.scaled(320, 240)
    assert (half.fx, half.cx, half.cy) == (300.0, 159.5, 119.5)
    p = np.array([[0.1, 0.05, 0.7]])
    uv_full = intr.project(p)[0]
    uv_half = half.project(p)[0]
    np.testing.assert_allclose((uv_full + 0.5) / 2 - 0.5, uv_half)


def test_pixel_size():
    intr = CameraIntrinsics(640, 480, 600.0, 600.0, 320.0, 240.0)
    assert intr.pixel_size_m(0.3) == pytest.approx(0.0005)


def test_bad_intrinsics():
    with pytest.raises(UnitsError, match="focal lengths must be positive"):
        CameraIntrinsics(640, 480, -1.0, 600.0, 320.0, 240.0)
    with pytest.raises(ConfigError, match="missing field 'fy'"):
        CameraIntrinsics.from_dict({"width": 640, "height": 480, "fx": 1, "cx": 1, "cy": 1})
    intr = CameraIntrinsics(640, 480, 600.0, 600.0, 320.0, 240.0)
    with pytest.raises(ShapeError, match=r"intrinsics are for 640x480; use intrinsics.scaled\(320, 240\)"):
        intr.check_image_size(320, 240)


def test_rig_yaml_round_trip(tmp_path):
    intr = CameraIntrinsics(640, 480, 600.0, 600.0, 320.0, 240.0, (0.01, 0, 0, 0, 0))
    t = Transform.from_rt(Rotation.from_euler("z", 90, degrees=True).as_matrix(), [0.05, 0.0, 0.1], TCP, CAMERA)
    rig = CameraRig(intr, t, depth_scale=1e-4, name="d405")
    path = rig.save_yaml(tmp_path / "rig.yaml")
    back = CameraRig.load_yaml(path)
    assert back.intrinsics == intr
    assert back.tcp_from_camera == t
    assert back.depth_scale == 1e-4 and back.name == "d405"


def test_rig_bad_files(tmp_path):
    p = tmp_path / "rig.yaml"
    p.write_text("name: x\n")
    with pytest.raises(ConfigError, match=r"missing field\(s\) \['intrinsics', 'depth_scale'\]"):
        CameraRig.load_yaml(p)
    intr = CameraIntrinsics(640, 480, 600.0, 600.0, 320.0, 240.0)
    with pytest.raises(UnitsError, match="depth scale must be a positive"):
        CameraRig(intr, depth_scale=0)
    with pytest.raises(UnitsError, match="not mm"):
        CameraRig(intr, depth_range_m=(70, 2000))
    d = CameraRig(intr).to_dict()
    d["tcp_from_camera"] = {"matrix": (np.eye(4) * 1000).tolist()}
    with pytest.raises(UnitsError, match="last row"):
        CameraRig.from_dict(d)
    with pytest.raises(ConfigError, match="does not exist"):
        CameraRig.load_yaml(tmp_path / "nope.yaml")
