from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from calibration.formats import (
    from_easy_handeye2,
    list_images,
    load_rig,
    pair_images_and_poses,
    parse_pose_record,
    parse_static_transform_publisher,
    read_easy_handeye2,
    read_poses_jsonl,
    static_transform_publisher_line,
    to_easy_handeye2,
    write_easy_handeye2,
    write_poses_jsonl,
)
from graspseg.core.camera import CameraIntrinsics, CameraRig
from graspseg.core.errors import CalibrationError
from graspseg.core.transform import BASE, CAMERA, TCP, Transform

X = Transform.from_xyz_quat_xyzw([0.032, -0.061, 0.045], [0.1, -0.2, 0.7, 0.6] / np.linalg.norm([0.1, -0.2, 0.7, 0.6]), TCP, CAMERA)
INTR = CameraIntrinsics(640, 480, 615.0, 615.0, 319.5, 239.5)


def test_poses_jsonl_round_trip_and_both_forms(tmp_path):
    poses = [Transform.from_rotvec([0.1 * k, 0.2, 0.0], [0.4, 0.01 * k, 0.3], BASE, TCP) for k in range(3)]
    write_poses_jsonl(tmp_path / "p.jsonl", poses, images=["a.png", "b.png", "c.png"])
    got, images = read_poses_jsonl(tmp_path / "p.jsonl")
    assert got == poses and images == ["a.png", "b.png", "c.png"]
    xyz, q = poses[1].as_xyz_quat_xyzw()
    lines = [
        "# comment",
        json.dumps({"base_from_tcp": poses[0].matrix.tolist()}),
        "",
        json.dumps({"xyz": xyz.tolist(), "quat_xyzw": q.tolist()}),
    ]
    (tmp_path / "q.jsonl").write_text("\n".join(lines))
    got, images = read_poses_jsonl(tmp_path / "q.jsonl")
    assert got == poses[:2] and images == [None, None]


@pytest.mark.parametrize(
    "rec, match",
    [
        ({"xyz_m": [0.4, 0, 0.3], "quat_xyzw": [0, 0, 0, 2]}, "has norm 2.0000; poses must be rigid"),
        ({"xyz_m": [0.4, 0, 0.3], "quat_wxyz": [1, 0, 0, 0]}, "wants 'quat_xyzw'"),
        ({"xyz_m": [400.0, 0, 300.0], "quat_xyzw": [0, 0, 0, 1]}, r"millimetres\?.*as millimetres it would be"),
        ({"xyz_m": [0.4, 0, 0.3], "quat_xyzw": [0, 0, 0, 1], "units": "mm"}, "must be in metres"),
        ({"position": [0, 0, 0]}, "needs 'base_from_tcp'"),
        ({"base_from_tcp": [[1, 0, 0], [0, 1, 0]]}, "expected 4x4"),
        ({"base_from_tcp": (np.eye(4) * 2).tolist()}, "not a rigid transform"),
    ],
)
def test_bad_pose_records(rec, match):
    with pytest.raises(CalibrationError, match=match):
        parse_pose_record(rec, where="poses.jsonl:3")


def test_bad_pose_file(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"xyz_m": [0.4, 0, 0.3], "quat_xyzw": [0, 0, 0, 1]}\n{oops\n')
    with pytest.raises(CalibrationError, match=r"p.jsonl:2: not valid JSON"):
        read_poses_jsonl(tmp_path / "p.jsonl")
    (tmp_path / "e.jsonl").write_text("\n# nothing\n")
    with pytest.raises(CalibrationError, match="holds no poses"):
        read_poses_jsonl(tmp_path / "e.jsonl")
    with pytest.raises(CalibrationError, match="does not exist"):
        read_poses_jsonl(tmp_path / "none.jsonl")


def test_pairing_by_order_and_by_name(tmp_path):
    for n in ("b.png", "a.png", "a_depth.png", "notes.txt"):
        (tmp_path / n).write_bytes(b"x")
    imgs = list_images(tmp_path)
    assert [p.name for p in imgs] == ["a.png", "b.png"]
    poses = [Transform.identity(BASE, TCP), Transform.from_rotvec([0, 0, 0], [0.1, 0, 0], BASE, TCP)]
    files, got = pair_images_and_poses(imgs, poses, ["b.png", "a.png"])
    assert [f.name for f in files] == ["b.png", "a.png"] and got == poses
    with pytest.raises(CalibrationError, match="2 images but 3 poses"):
        pair_images_and_poses(imgs, poses + poses[:1], [None] * 3)
    with pytest.raises(CalibrationError, match="not in the folder"):
        pair_images_and_poses(imgs, poses, ["a.png", "c.png"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationError, match="no images"):
        list_images(tmp_path / "empty")
    with pytest.raises(CalibrationError, match="image folder .* does not exist"):
        list_images(tmp_path / "missing")


def test_rig_round_trip_through_core_yaml(tmp_path):
    rig = CameraRig(INTR, X, depth_scale=1e-4, name="d405")
    rig.save_yaml(tmp_path / "rig.yaml")
    assert load_rig(tmp_path / "rig.yaml") == rig


def _rig_dict(**over):
    d = CameraRig(INTR, X).to_dict()
    d.update(over)
    return d


@pytest.mark.parametrize(
    "d, match",
    [
        (_rig_dict(tcp_from_camera=None), "missing field 'tcp_from_camera'.*graspseg-calibrate hand-eye"),
        ({k: v for k, v in _rig_dict().items() if k != "intrinsics"}, r"missing field\(s\) \['intrinsics'\]"),
        (_rig_dict(units={"length": "mm"}), "units.length is 'mm'; rig files are in metres"),
        (_rig_dict(tcp_from_camera={"xyz_m": [32.0, -61.0, 45.0], "quat_xyzw": [0, 0, 0, 1]}),
         "millimetres\\?.*as millimetres it would be \\[0.032, -0.061, 0.045\\] m"),
        (_rig_dict(intrinsics={**INTR.to_dict(), "fx": 0.0019, "fy": 0.0019}), "fx = 0.0019 px is implausible for a 640 px image: it gives a 180.0 deg"),
        (_rig_dict(depth_scale=-1), "depth_scale must be a positive number"),
    ],
)
def test_bad_rig_files(tmp_path, d, match):
    p = tmp_path / "rig.yaml"
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(CalibrationError, match=match):
        load_rig(p)


def test_rig_file_not_yaml_or_missing(tmp_path):
    (tmp_path / "r.yaml").write_text("a: [1, 2\n")
    with pytest.raises(CalibrationError, match="not valid YAML"):
        load_rig(tmp_path / "r.yaml")
    with pytest.raises(CalibrationError, match="does not exist"):
        load_rig(tmp_path / "missing.yaml")


def test_easy_handeye2_round_trip(tmp_path):
    write_easy_handeye2(tmp_path / "x.calib", X, robot_effector_frame="panda_hand")
    d = yaml.safe_load((tmp_path / "x.calib").read_text())
    assert d["parameters"]["calibration_type"] == "eye_in_hand"
    assert d["parameters"]["robot_effector_frame"] == "panda_hand"
    assert set(d["transform"]["rotation"]) == {"x", "y", "z", "w"}
    assert read_easy_handeye2(tmp_path / "x.calib") == X


def test_easy_handeye_ros1_form():
    xyz, q = X.as_xyz_quat_xyzw()
    d = {"eye_on_hand": True, "transformation": dict(zip(["x", "y", "z", "qx", "qy", "qz", "qw"], [*xyz, *q], strict=True))}
    assert from_easy_handeye2(d) == X


@pytest.mark.parametrize(
    "d, match",
    [
        ({**to_easy_handeye2(X), "parameters": {"calibration_type": "eye_on_base"}}, "eye-on-base"),
        ({"parameters": {"calibration_type": "eye_in_hand"}}, "missing 'transform'"),
        ({"transform": {"translation": {"x": 0, "y": 0}, "rotation": {"x": 0, "y": 0, "z": 0, "w": 1}}},
         "lacks field 'z'"),
        ({"transform": {"translation": {"x": 32, "y": 0, "z": 0}, "rotation": {"x": 0, "y": 0, "z": 0, "w": 1}}},
         "millimetres given"),
    ],
)
def test_easy_handeye2_errors(d, match):
    with pytest.raises(CalibrationError, match=match):
        from_easy_handeye2(d)


def test_static_transform_publisher_both_forms():
    for ros2 in (True, False):
        line = static_transform_publisher_line(X, parent_frame="tool0", child_frame="cam", ros2=ros2)
        t, parent, child = parse_static_transform_publisher(line)
        assert (parent, child) == ("tool0", "cam")
        dt, dr = t.distance_to(X)
        assert dt < 1e-6 and dr < 1e-5
    xyz, q = X.as_xyz_quat_xyzw()
    assert static_transform_publisher_line(X, ros2=False).split()[1:8] == [f"{v:.6f}" for v in (*xyz, *q)]


@pytest.mark.parametrize(
    "line, match",
    [
        ("static_transform_publisher 0 0 0 0 0 0 tool0 cam", "has 6 numbers"),
        ("static_transform_publisher 0 0 tool0 cam", "cannot read static_transform_publisher line"),
        ("ros2 run tf2_ros static_transform_publisher --x 0 --y 0 --z 0 --qx 0 --qy 0 --qz 0 --qw 1 --frame-id a",
         "lacks --child-frame-id"),
        ("static_transform_publisher 0 0 0 0 0 0 2 tool0 cam", "norm"),
    ],
)
def test_static_transform_publisher_errors(line, match):
    with pytest.raises(CalibrationError, match=match):
        parse_static_transform_publisher(line)
