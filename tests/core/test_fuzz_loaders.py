"""Generated inputs (hypothesis): no value a JSON/YAML file can hold makes a loader raise anything but a
graspseg error, and whatever loads is valid (finite, rigid, plausible).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from graspseg.core import CameraIntrinsics, CameraRig, GraspsegError, Transform  # noqa: E402
from graspseg.core.transform import BASE, CAMERA, TCP  # noqa: E402
from tests.sweep_cases import GOOD_INTR, GOOD_TCP  # noqa: E402

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True) \
    | st.text(max_size=6)
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=4), c, max_size=3),
                           max_leaves=20)
#: Numbers near the valid ones, scaled by unit mistakes (mm, cm) or broken (NaN, sign flips, wrong length).
numbers = st.floats(-5.0, 5.0) | st.sampled_from([0.0, 1e3, -1e3, 32.5, 45.0, float("nan"), float("inf")])
vectors = st.lists(numbers, min_size=0, max_size=6)


def _loads_or_refuses(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except GraspsegError as e:
        assert str(e), "an error must say what is wrong"
        return None


def _valid_transform(t: Transform, bound: float | None):
    assert np.all(np.isfinite(t.matrix))
    assert np.allclose(t.rotation @ t.rotation.T, np.eye(3), atol=1e-4)
    if bound is not None:
        assert np.linalg.norm(t.translation) <= bound


@SETTINGS
@given(key=st.sampled_from(["matrix", "xyz_m", "quat_xyzw", "to_frame", "from_frame", "max_translation_m",
                            "allow_implausible"]), value=json_values)
def test_transform_fields_take_any_json(key, value):
    d = {**GOOD_TCP, key: value}
    t = _loads_or_refuses(Transform.from_dict, d, to_frame=TCP, from_frame=CAMERA)
    if t is not None:
        plausible = key not in ("max_translation_m", "allow_implausible")
        _valid_transform(t, 0.5 if plausible else None)


@SETTINGS
@given(xyz=vectors, quat=vectors, frames=st.sampled_from([(TCP, CAMERA), (BASE, TCP)]))
def test_transform_numbers_near_valid(xyz, quat, frames):
    t = _loads_or_refuses(Transform.from_dict, {"xyz_m": xyz, "quat_xyzw": quat}, to_frame=frames[0],
                          from_frame=frames[1])
    if t is not None:
        assert len(xyz) == 3 and len(quat) == 4
        _valid_transform(t, 0.5 if frames == (TCP, CAMERA) else 3.0)


@SETTINGS
@given(key=st.sampled_from(sorted(GOOD_INTR) + ["K", "distortion_k1_k2_p1_p2_k3", "allow_implausible"]),
       value=json_values | numbers)
def test_intrinsics_fields_take_any_json(key, value):
    intr = _loads_or_refuses(CameraIntrinsics.from_dict, {**GOOD_INTR, key: value})
    if intr is not None:
        assert all(math.isfinite(v) for v in (intr.fx, intr.fy, intr.cx, intr.cy)) and intr.fx > 0 and intr.fy > 0
        if key != "allow_implausible":
            assert 0 <= intr.cx <= intr.width and 0 <= intr.cy <= intr.height


@SETTINGS
@given(key=st.sampled_from(["intrinsics", "depth_scale", "depth_range_m", "tcp_from_camera", "name", "extra",
                            "schema_version", "units", "max_tcp_from_camera_m", "allow_implausible"]),
       value=json_values | numbers)
def test_rig_fields_take_any_json(key, value):
    d = {"intrinsics": dict(GOOD_INTR), "depth_scale": 1e-3, "tcp_from_camera": dict(GOOD_TCP), key: value}
    rig = _loads_or_refuses(CameraRig.from_dict, d)
    if rig is not None:
        assert 0 < rig.depth_scale <= 1 and rig.depth_range_m[0] < rig.depth_range_m[1]
        if rig.tcp_from_camera is not None and not rig.allow_implausible:
            assert np.linalg.norm(rig.tcp_from_camera.translation) <= rig.max_tcp_from_camera_m


@SETTINGS
@given(key=st.sampled_from(["xyz_m", "quat_xyzw", "base_from_tcp", "units", "quat_wxyz"]), value=json_values | vectors)
def test_pose_records_take_any_json(key, value):
    from calibration.formats import parse_pose_record

    _loads_or_refuses(parse_pose_record, {"xyz_m": [0.4, 0, 0.3], "quat_xyzw": [0, 0, 0, 1], key: value})


@SETTINGS
@given(section=st.sampled_from(["translation", "rotation"]), value=json_values)
def test_easy_handeye2_files_take_any_json(section, value):
    from calibration.formats import from_easy_handeye2

    d = {"transform": {"translation": {"x": 0, "y": 0.03, "z": 0.04}, "rotation": {"x": 0, "y": 0, "z": 0, "w": 1}}}
    d["transform"][section] = value
    _loads_or_refuses(from_easy_handeye2, d)


@SETTINGS
@given(key=st.sampled_from(["image_width", "image_height", "camera_matrix", "distortion_coefficients",
                            "distortion_model"]), value=json_values)
def test_camera_info_takes_any_json(key, value):
    from calibration.intrinsics import intrinsics_from_camera_info

    d = {"image_width": 640, "image_height": 480, "camera_matrix": {"data": [615, 0, 319.5, 0, 615, 239.5, 0, 0, 1]},
         key: value}
    _loads_or_refuses(intrinsics_from_camera_info, d)


@SETTINGS
@given(key=st.sampled_from(["squares_x", "squares_y", "square_length_m", "marker_length_m", "dictionary"]),
       value=json_values)
def test_board_files_take_any_json(key, value):
    from calibration.board import CharucoBoardSpec

    _loads_or_refuses(CharucoBoardSpec.from_dict, {key: value})


@SETTINGS
@given(key=st.sampled_from(["segment.backend", "segment.granularity", "grasp.friction_coefficient",
                            "cloud.depth_range_m", "boundary_error_px", "gripper"]), value=json_values)
def test_config_overrides_take_any_value(key, value):
    from graspseg.pipeline import PipelineConfig

    _loads_or_refuses(PipelineConfig().with_overrides, {key: value})
