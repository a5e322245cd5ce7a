import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from graspseg.core import BASE, CAMERA, TCP, FrameMismatchError, ShapeError, Transform, UnitsError


def _random_transform(rng, to, frm):
    return Transform.from_rt(Rotation.random(random_state=rng).as_matrix(), rng.normal(size=3) * 0.3, to, frm)


def test_compose_chains_frames_and_matches_matrix_product():
    rng = np.random.default_rng(0)
    base_from_tcp = _random_transform(rng, BASE, TCP)
    tcp_from_camera = _random_transform(rng, TCP, CAMERA)
    base_from_camera = base_from_tcp @ tcp_from_camera
    assert (base_from_camera.to_frame, base_from_camera.from_frame) == (BASE, CAMERA)
    np.testing.assert_allclose(base_from_camera.matrix, base_from_tcp.matrix @ tcp_from_camera.matrix)
    p = rng.normal(size=(5, 3))
    np.testing.assert_allclose(base_from_camera.apply(p), base_from_tcp.apply(tcp_from_camera.apply(p)), atol=1e-12)


def test_compose_mismatched_frames_raises():
    a = Transform.identity(BASE, TCP)
    with pytest.raises(FrameMismatchError, match="inner frames 'tcp' and 'base' differ"):
        a @ Transform.identity(BASE, CAMERA)


def test_inverse_round_trip():
    rng = np.random.default_rng(1)
    t = _random_transform(rng, BASE, CAMERA)
    ident = t @ t.inverse()
    np.testing.assert_allclose(ident.matrix, np.eye(4), atol=1e-12)
    assert t.inverse().name == "camera_color_optical_from_base"


def test_quaternion_xyzw_round_trip():
    q = Rotation.from_euler("xyz", [10, 20, 30], degrees=True).as_quat()
    t = Transform.from_xyz_quat_xyzw([0.1, 0.2, 0.3], q, TCP, CAMERA)
    xyz, q2 = t.as_xyz_quat_xyzw()
    np.testing.assert_allclose(xyz, [0.1, 0.2, 0.3])
    assert np.allclose(q2, q) or np.allclose(q2, -q)
    assert Transform.from_dict(t.to_dict()) == t


def test_non_rigid_matrix_rejected():
    m = np.eye(4)
    m[0, 0] = 2.0
    with pytest.raises(UnitsError, match="not a rigid transform"):
        Transform(m, BASE, TCP)


def test_millimetre_translation_rejected():
    m = np.eye(4)
    m[:3, 3] = [250.0, 0, 500.0]
    with pytest.raises(UnitsError, match="did you pass millimetres"):
        Transform(m, BASE, TCP)


def test_bad_shape_and_quaternion():
    with pytest.raises(ShapeError, match="4x4"):
        Transform(np.eye(3), BASE, TCP)
    with pytest.raises(UnitsError, match="has norm"):
        Transform.from_xyz_quat_xyzw([0, 0, 0], [0, 0, 0, 2], BASE, TCP)
    with pytest.raises(UnitsError, match="needs 'matrix'"):
        Transform.from_dict({"xyz_m": [0, 0, 0]}, to_frame=BASE, from_frame=TCP)


def test_distance_to():
    a = Transform.identity(BASE, TCP)
    b = Transform.from_rotvec([0, 0, np.pi / 2], [0.003, 0, 0.004], BASE, TCP)
    dt, dr = a.distance_to(b)
    assert dt == pytest.approx(0.005)
    assert dr == pytest.approx(np.pi / 2)
