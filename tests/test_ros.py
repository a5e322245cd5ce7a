"""ROS 2 / MoveIt message shapes (graspseg.ros): hand-checked poses and postures, rosbags CDR round trips,
the plugin end to end on a synthetic scene, and the planner-loop example."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from graspseg import ros
from graspseg.core import BASE, CAMERA, TCP, Transform
from graspseg.core.errors import (
    ConfigError,
    FrameMismatchError,
    InputError,
    MissingDependencyError,
    ShapeError,
    UnitsError,
)
from graspseg.core.transform import GRASP
from graspseg.grasp.gripper import GripperModel, load_gripper
from graspseg.plugin import GraspPlanningPlugin, GraspResponse, PlannedGrasp, grasp_from_tcp
from graspseg.segment import Prompt

REPO = Path(__file__).resolve().parents[1]
S = math.sqrt(0.5)
#: grasp approach straight down in a z-up base, closing along base x: columns x = (1,0,0), y = (0,-1,0), z = (0,0,-1)
DOWN = np.diag([1.0, -1.0, -1.0])


def planned(frame=BASE, gripper="franka_hand", *, opening=0.06, width=0.05, approach_m=0.08, rot=DOWN,
            pos=(0.4, 0.0, 0.1), score=0.9) -> PlannedGrasp:
    """A PlannedGrasp built the way the plugin builds one."""
    g = load_gripper(gripper)
    grasp = Transform.from_rt(rot, pos, frame, GRASP)
    back = Transform.from_rt(np.eye(3), [0.0, 0.0, -approach_m], GRASP, GRASP)
    gft = grasp_from_tcp(g)
    return PlannedGrasp(grasp_pose=grasp, tcp_target=grasp @ gft, pregrasp_tcp=grasp @ back @ gft, opening_m=opening,
                        width_m=width, margins={}, worst_case_margin_mm=3.0, score=score)


def xyz(d):
    return [d["x"], d["y"], d["z"]]


def xyzw(d):
    return [d["x"], d["y"], d["z"], d["w"]]


# ================================================================================================
# time, PoseStamped, TransformStamped, PoseArray
# ================================================================================================
def test_time_msg_splits_seconds():
    assert ros.time_msg(0.0) == {"sec": 0, "nanosec": 0}
    assert ros.time_msg(1.5) == {"sec": 1, "nanosec": 500_000_000}
    assert ros.time_msg(1.9999999999) == {"sec": 2, "nanosec": 0}  # rounding carries into the seconds
    assert ros.time_msg(1_700_000_000.25) == {"sec": 1_700_000_000, "nanosec": 250_000_000}


@pytest.mark.parametrize(("stamp", "match"), [
    (-1.0, "negative"),
    (1.7e12, "milliseconds or nanoseconds"),
    (float("nan"), "finite"),
    (True, "must be a number of seconds"),
    ("1.0", "must be a number of seconds"),
])
def test_time_msg_refuses(stamp, match):
    with pytest.raises(UnitsError, match=match):
        ros.time_msg(stamp)


def test_pose_stamped_identity():
    msg = ros.pose_stamped(Transform.identity(BASE, TCP))
    assert msg == {"header": {"stamp": {"sec": 0, "nanosec": 0}, "frame_id": "base"},
                   "pose": {"position": {"x": 0.0, "y": 0.0, "z": 0.0},
                            "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0}}}


@pytest.mark.parametrize(("rot", "quat"), [
    (Rotation.from_euler("z", 90, degrees=True).as_matrix(), [0.0, 0.0, S, S]),
    (np.diag([1.0, -1.0, -1.0]), [1.0, 0.0, 0.0, 0.0]),                      # 180 deg about x
    (np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), [0.5, 0.5, 0.5, 0.5]),  # 120 deg about (1,1,1)
    (Rotation.from_euler("z", -90, degrees=True).as_matrix(), [0.0, 0.0, -S, S]),
])
def test_pose_stamped_known_rotations(rot, quat):
    msg = ros.pose_stamped(Transform.from_rt(rot, [0.1, -0.2, 0.3], CAMERA, GRASP), stamp_s=2.25)
    assert msg["header"] == {"stamp": {"sec": 2, "nanosec": 250_000_000}, "frame_id": CAMERA}
    assert xyz(msg["pose"]["position"]) == pytest.approx([0.1, -0.2, 0.3])
    assert xyzw(msg["pose"]["orientation"]) == pytest.approx(quat, abs=1e-12)


def test_quaternions_have_nonnegative_w_and_reproduce_the_rotation():
    rng = np.random.default_rng(0)
    for r in Rotation.random(50, random_state=rng):
        q = xyzw(ros.pose_stamped(Transform.from_rt(r.as_matrix(), [0, 0, 0], BASE, TCP))["pose"]["orientation"])
        assert q[3] >= 0 and np.linalg.norm(q) == pytest.approx(1.0)
        np.testing.assert_allclose(Rotation.from_quat(q).as_matrix(), r.as_matrix(), atol=1e-12)


def test_pose_stamped_frames_and_their_errors():
    t = Transform.identity(BASE, TCP)
    assert ros.pose_stamped(t, child_frame=TCP)["header"]["frame_id"] == BASE
    assert ros.pose_stamped(t, frame_ids={BASE: "panda_link0"})["header"]["frame_id"] == "panda_link0"
    with pytest.raises(FrameMismatchError, match="asked for the pose of 'grasp' but got base_from_tcp"):
        ros.pose_stamped(t, child_frame=GRASP)
    with pytest.raises(InputError, match="starts with '/'; tf2 refuses"):
        ros.pose_stamped(t, frame_ids={BASE: "/world"})
    with pytest.raises(InputError, match="a ROS frame id must be a non-empty string"):
        ros.pose_stamped(Transform.identity("", TCP))
    with pytest.raises(ConfigError, match="frame_ids must map graspseg frame names"):
        ros.pose_stamped(t, frame_ids=[("base", "world")])
    with pytest.raises(ConfigError, match="must map a frame name to a non-empty tf frame name"):
        ros.pose_stamped(t, frame_ids={BASE: ""})
    with pytest.raises(InputError, match="must be a graspseg Transform, got ndarray"):
        ros.pose_stamped(np.eye(4))


def test_transform_stamped_follows_tf2():
    rot = Rotation.from_euler("z", 90, degrees=True).as_matrix()
    t = Transform.from_rt(rot, [0.0, 0.06, 0.02], TCP, CAMERA)
    msg = ros.transform_stamped(t, 3.0, frame_ids={TCP: "panda_hand_tcp"})
    assert msg["header"] == {"stamp": {"sec": 3, "nanosec": 0}, "frame_id": "panda_hand_tcp"}  # parent = to_frame
    assert msg["child_frame_id"] == CAMERA  # child = from_frame
    assert xyz(msg["transform"]["translation"]) == pytest.approx([0.0, 0.06, 0.02])
    assert xyzw(msg["transform"]["rotation"]) == pytest.approx([0.0, 0.0, S, S])
    back = ros.transform_from_ros(msg, frame_ids={TCP: "panda_hand_tcp"})
    assert back == t and (back.to_frame, back.from_frame) == (TCP, CAMERA)
    with pytest.raises(FrameMismatchError, match="maps frame 'tcp' to itself"):
        ros.transform_stamped(Transform.identity(TCP, TCP))


def test_transform_from_ros_errors():
    msg = ros.transform_stamped(Transform.identity(BASE, TCP))
    del msg["child_frame_id"]
    with pytest.raises(InputError, match="has no field 'child_frame_id'"):
        ros.transform_from_ros(msg)
    msg = ros.transform_stamped(Transform.identity(BASE, TCP))
    msg["transform"]["rotation"]["w"] = 2.0
    with pytest.raises(UnitsError, match="norm"):
        ros.transform_from_ros(msg)


def test_pose_array():
    a = Transform.from_rt(np.eye(3), [0.1, 0, 0], BASE, GRASP)
    b = Transform.from_rt(DOWN, [0.2, 0, 0], BASE, GRASP)
    msg = ros.pose_array([a, b], 1.0)
    assert msg["header"]["frame_id"] == BASE and len(msg["poses"]) == 2
    assert xyzw(msg["poses"][1]["orientation"]) == pytest.approx([1, 0, 0, 0])
    assert ros.pose_array([], frame_id=CAMERA)["poses"] == []
    with pytest.raises(FrameMismatchError, match="a PoseArray has one frame"):
        ros.pose_array([a, Transform.identity(CAMERA, GRASP)])
    with pytest.raises(FrameMismatchError, match="a PoseArray has one frame"):
        ros.pose_array([a], frame_id=CAMERA)
    with pytest.raises(InputError, match="needs frame_id"):
        ros.pose_array([])


# ================================================================================================
# moveit_msgs/Grasp
# ================================================================================================
@pytest.mark.parametrize(("gripper", "opening", "width", "names", "pre", "closed"), [
    # Franka Hand: each finger joint is half the opening
    ("franka_hand", 0.06, 0.05, ["panda_finger_joint1", "panda_finger_joint2"], [0.03, 0.03], [0.0225, 0.0225]),
    ("franka_hand", 0.08, 0.002, ["panda_finger_joint1", "panda_finger_joint2"], [0.04, 0.04], [0.0, 0.0]),
    # Robotiq 2F-85: 0.8 rad closed ... 0 open over the 0.085 m stroke
    ("robotiq_2f85", 0.085, 0.03, ["finger_joint"], [0.0], [0.8 * (1 - 0.025 / 0.085)]),
    ("robotiq_2f85", 0.0425, 0.05, ["finger_joint"], [0.4], [0.4]),  # closing never opens past the pre-grasp
    # generic: one prismatic joint = the opening, closed no further than its 5 mm minimum
    ("generic", 0.06, 0.05, ["gripper_finger_joint"], [0.06], [0.045]),
    ("generic", 0.02, 0.006, ["gripper_finger_joint"], [0.02], [0.005]),
])
def test_postures_from_the_opening(gripper, opening, width, names, pre, closed):
    msg = ros.moveit_grasp(planned(gripper=gripper, opening=opening, width=width), gripper, grasp_id="g")
    for key, want in (("pre_grasp_posture", pre), ("grasp_posture", closed)):
        traj = msg[key]
        assert traj["joint_names"] == names
        assert len(traj["points"]) == 1
        assert traj["points"][0]["positions"] == pytest.approx(want, abs=1e-12)
        assert traj["points"][0]["time_from_start"] == {"sec": 0, "nanosec": 500_000_000}


def test_grasp_pose_is_the_tcp_target():
    p = planned(gripper="franka_hand", pos=(0.4, 0.0, 0.1))
    msg = ros.moveit_grasp(p, "franka_hand", grasp_id="g0", stamp_s=7.5, frame_ids={BASE: "panda_link0"})
    assert msg["id"] == "g0" and msg["grasp_quality"] == 0.9
    pose = msg["grasp_pose"]
    assert pose["header"] == {"stamp": {"sec": 7, "nanosec": 500_000_000}, "frame_id": "panda_link0"}
    # panda_hand_tcp sits 8.6 mm behind the fingertips (above them, the approach pointing down) ...
    assert xyz(pose["pose"]["position"]) == pytest.approx([0.4, 0.0, 0.1086])
    # ... and closes along its y axis: TCP x = base y, TCP y = base x, TCP z = -base z: 180 deg about (1,1,0)/sqrt2
    assert xyzw(pose["pose"]["orientation"]) == pytest.approx([S, S, 0.0, 0.0], abs=1e-12)
    assert msg["max_contact_force"] == 0.0 and msg["allowed_touch_objects"] == []


def test_eef_link_pose_instead_of_the_tcp():
    p = planned(gripper="franka_hand", pos=(0.4, 0.0, 0.1))
    tcp_from_link8 = Transform.from_rt(Rotation.from_euler("z", 45, degrees=True).as_matrix(),
                                       [0.0, 0.0, -0.1034], TCP, "panda_link8")
    msg = ros.moveit_grasp(p, "franka_hand", grasp_id="g", tcp_from_eef_link=tcp_from_link8)
    assert xyz(msg["grasp_pose"]["pose"]["position"]) == pytest.approx([0.4, 0.0, 0.1086 + 0.1034])
    with pytest.raises(FrameMismatchError, match="tcp_from_eef_link must be tcp_from_<link>"):
        ros.moveit_grasp(p, "franka_hand", grasp_id="g", tcp_from_eef_link=tcp_from_link8.inverse())


def test_approach_and_retreat_in_base():
    msg = ros.moveit_grasp(planned(BASE, approach_m=0.08), "franka_hand", grasp_id="g", stamp_s=1.0)
    app = msg["pre_grasp_approach"]
    assert app["direction"]["header"]["frame_id"] == BASE
    assert xyz(app["direction"]["vector"]) == pytest.approx([0.0, 0.0, -1.0])  # grasp +z, down onto the object
    assert app["desired_distance"] == pytest.approx(0.08) and app["min_distance"] == pytest.approx(0.04)
    ret = msg["post_grasp_retreat"]
    assert ret["direction"]["header"]["frame_id"] == BASE
    assert xyz(ret["direction"]["vector"]) == pytest.approx([0.0, 0.0, 1.0])  # up, against gravity
    assert ret["desired_distance"] == pytest.approx(0.10) and ret["min_distance"] == pytest.approx(0.05)
    place = msg["post_place_retreat"]
    assert xyz(place["direction"]["vector"]) == pytest.approx([0.0, 0.0, 1.0])  # back along -approach
    # a tilted approach: the lift is still straight up; a custom gravity direction is honoured
    tilted = Rotation.from_euler("x", 150, degrees=True).as_matrix()
    msg = ros.moveit_grasp(planned(BASE, rot=tilted, approach_m=0.05), "generic", grasp_id="g",
                           approach_min_m=0.03, retreat_distance_m=0.2, retreat_min_m=0.2,
                           gravity_in_base=(0.0, -9.81, 0.0))
    assert xyz(msg["pre_grasp_approach"]["direction"]["vector"]) == pytest.approx(tilted[:, 2].tolist())
    assert msg["pre_grasp_approach"]["desired_distance"] == pytest.approx(0.05)
    assert msg["pre_grasp_approach"]["min_distance"] == pytest.approx(0.03)
    assert xyz(msg["post_grasp_retreat"]["direction"]["vector"]) == pytest.approx([0.0, 1.0, 0.0])
    assert msg["post_grasp_retreat"]["min_distance"] == pytest.approx(0.2)


def test_retreat_in_the_camera_frame_backs_out_along_the_approach():
    rot = Rotation.from_euler("x", 20, degrees=True).as_matrix()  # approach roughly along the optical axis
    msg = ros.moveit_grasp(planned(CAMERA, rot=rot, pos=(0.0, 0.0, 0.5)), "robotiq_2f85", grasp_id="g",
                           frame_ids={CAMERA: "camera_color_optical_frame"})
    for key in ("pre_grasp_approach", "post_grasp_retreat"):
        assert msg[key]["direction"]["header"]["frame_id"] == "camera_color_optical_frame"
    assert xyz(msg["pre_grasp_approach"]["direction"]["vector"]) == pytest.approx(rot[:, 2].tolist())
    assert xyz(msg["post_grasp_retreat"]["direction"]["vector"]) == pytest.approx((-rot[:, 2]).tolist())
    assert msg["grasp_pose"]["header"]["frame_id"] == "camera_color_optical_frame"


def test_joint_names_and_custom_mappings():
    msg = ros.moveit_grasp(planned(), "franka_hand", grasp_id="g",
                           joint_names=["fr3_finger_joint1", "fr3_finger_joint2"])
    assert msg["grasp_posture"]["joint_names"] == ["fr3_finger_joint1", "fr3_finger_joint2"]
    with pytest.raises(ConfigError, match=r"must name 2 joint\(s\)"):
        ros.moveit_grasp(planned(), "franka_hand", grasp_id="g", joint_names=["fr3_finger_joint1"])
    mine = GripperModel(name="my_gripper", **{k: v for k, v in load_gripper("generic").to_dict().items()
                                              if k not in ("name", "units")})
    with pytest.raises(ConfigError, match="no finger-joint mapping for gripper 'my_gripper'"):
        ros.moveit_grasp(planned(gripper="generic"), mine, grasp_id="g")
    joints = ros.FingerJoints(("left", "right"), (0.0, 0.0), (0.5, -0.5))
    msg = ros.moveit_grasp(planned(gripper="generic", opening=0.04, width=0.03), mine, grasp_id="g",
                           finger_joints=joints, squeeze_m=0.0)
    assert msg["pre_grasp_posture"]["points"][0]["positions"] == pytest.approx([0.02, -0.02])
    assert msg["grasp_posture"]["points"][0]["positions"] == pytest.approx([0.015, -0.015])
    with pytest.raises(ConfigError, match="must be a graspseg.ros.FingerJoints"):
        ros.moveit_grasp(planned(), "franka_hand", grasp_id="g", finger_joints={"names": ["a"]})
    with pytest.raises(ConfigError, match="give one of each per joint"):
        ros.FingerJoints(("a", "b"), (0.0,), (1.0, 1.0))
    with pytest.raises(ConfigError, match="finger joint names must be non-empty strings"):
        ros.FingerJoints((), (), ())
    with pytest.raises(UnitsError, match="per_m must be a number"):
        ros.FingerJoints(("a",), (0.0,), ("fast",))


def test_moveit_grasp_errors():
    p = planned()
    with pytest.raises(InputError, match="grasp_id must be a non-empty string"):
        ros.moveit_grasp(p, "franka_hand", grasp_id="")
    with pytest.raises(InputError, match="gripper must be a GripperModel or a shipped gripper name"):
        ros.moveit_grasp(p, 3, grasp_id="g")
    with pytest.raises(ConfigError, match="unknown gripper"):
        ros.moveit_grasp(p, "no_such_hand", grasp_id="g")
    no_target = PlannedGrasp(p.grasp_pose, None, p.pregrasp_tcp, 0.06, 0.05, {}, 3.0, 0.9)
    with pytest.raises(InputError, match=r"planned.tcp_target must be a graspseg Transform"):
        ros.moveit_grasp(no_target, "franka_hand", grasp_id="g")
    mixed = PlannedGrasp(p.grasp_pose, Transform.identity(CAMERA, TCP), p.pregrasp_tcp, 0.06, 0.05, {}, 3.0, 0.9)
    with pytest.raises(FrameMismatchError, match="planned grasp poses must be base_from_grasp"):
        ros.moveit_grasp(mixed, "franka_hand", grasp_id="g")
    ahead = PlannedGrasp(p.grasp_pose, p.tcp_target, p.tcp_target @ Transform.from_rt(np.eye(3), [0.0, 0.0, 0.05],
                                                                                       TCP, TCP), 0.06, 0.05, {}, 3.0, 0.9)
    with pytest.raises(InputError, match="pregrasp_tcp is not behind tcp_target along the approach"):
        ros.moveit_grasp(ahead, "franka_hand", grasp_id="g")
    with pytest.raises(UnitsError, match="outside the stroke of 'franka_hand'"):
        ros.moveit_grasp(planned(opening=0.085), "franka_hand", grasp_id="g")
    with pytest.raises(UnitsError, match="approach_min_m = 0.09 m exceeds its desired distance"):
        ros.moveit_grasp(p, "franka_hand", grasp_id="g", approach_min_m=0.09)
    with pytest.raises(UnitsError, match="retreat_min_m = 0.2 m exceeds"):
        ros.moveit_grasp(p, "franka_hand", grasp_id="g", retreat_min_m=0.2)
    with pytest.raises(UnitsError, match=r"retreat_distance_m = 100.0 m is outside \[0, 2.0\] m"):
        ros.moveit_grasp(p, "franka_hand", grasp_id="g", retreat_distance_m=100)
    with pytest.raises(UnitsError, match=r"squeeze_m = 5.0 m is outside \[0, 0.05\]"):
        ros.moveit_grasp(p, "franka_hand", grasp_id="g", squeeze_m=5)
    with pytest.raises(UnitsError, match="max_contact_force_n must be a number of newtons"):
        ros.moveit_grasp(p, "franka_hand", grasp_id="g", max_contact_force_n=None)
    with pytest.raises(UnitsError, match=r"posture_time_s = -1.0 s is outside \[0, 3600\]"):
        ros.moveit_grasp(p, "franka_hand", grasp_id="g", posture_time_s=-1)
    with pytest.raises(InputError, match="allowed_touch_objects must be collision-object ids"):
        ros.moveit_grasp(p, "franka_hand", grasp_id="g", allowed_touch_objects=[1])
    assert ros.moveit_grasp(p, "franka_hand", grasp_id="g", allowed_touch_objects="mug")["allowed_touch_objects"] == [
        "mug"]
    with pytest.raises(UnitsError, match="gravity_in_base is the zero vector"):
        ros.moveit_grasp(p, "franka_hand", grasp_id="g", gravity_in_base=(0, 0, 0))
    with pytest.raises(ShapeError, match="gravity_in_base must be 3 finite numbers"):
        ros.moveit_grasp(p, "franka_hand", grasp_id="g", gravity_in_base=(0, -1))
    with pytest.raises(ShapeError, match="gravity_in_base must be 3 numbers"):
        ros.moveit_grasp(p, "franka_hand", grasp_id="g", gravity_in_base=("up", None, {}))


def test_response_to_ros_no_grasp_and_frame_check():
    empty = GraspResponse("no_grasp", CAMERA, (), {"too_wide": 12}, "object wider than the stroke")
    out = ros.response_to_ros(empty, "franka_hand", 1.0, frame_ids={CAMERA: "camera_color_optical_frame"})
    assert out["status"] == "no_grasp" and out["grasps"] == [] and out["grasp_poses"] == []
    assert out["pose_array"] == {"header": {"stamp": {"sec": 1, "nanosec": 0}, "frame_id": "camera_color_optical_frame"},
                                 "poses": []}
    assert out["rejected_counts"] == {"too_wide": 12} and out["suggestion"] == "object wider than the stroke"
    wrong = GraspResponse("ok", CAMERA, (planned(BASE),))
    with pytest.raises(FrameMismatchError, match="response.frame is 'camera_color_optical' but grasp 0 is base_from_grasp"):
        ros.response_to_ros(wrong, "franka_hand")


# ================================================================================================
# sensor_msgs -> RGBDFrame
# ================================================================================================
def camera_info(w=8, h=6, *, d=(0.0,) * 5, model="plumb_bob", k=None, binning=0):
    k = [100.0, 0.0, w / 2, 0.0, 100.0, h / 2, 0.0, 0.0, 1.0] if k is None else k
    return {"header": {"stamp": {"sec": 0, "nanosec": 0}, "frame_id": "camera_color_optical_frame"},
            "height": h, "width": w, "distortion_model": model, "d": list(d), "k": k,
            "r": [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], "p": [100.0, 0, w / 2, 0, 0, 100.0, h / 2, 0, 0, 0, 1.0, 0],
            "binning_x": binning, "binning_y": 0,
            "roi": {"x_offset": 0, "y_offset": 0, "height": 0, "width": 0, "do_rectify": False}}


def image(arr, encoding, *, pad=0, stamp=(5, 500_000_000), bigendian=False):
    a = np.ascontiguousarray(arr)
    h, w = a.shape[:2]
    if bigendian:
        a = a.astype(a.dtype.newbyteorder(">"))
    rows = a.reshape(h, -1).view(np.uint8)
    rows = np.concatenate([rows, np.zeros((h, pad), np.uint8)], axis=1)
    return {"header": {"stamp": {"sec": stamp[0], "nanosec": stamp[1]}, "frame_id": "camera_color_optical_frame"},
            "height": h, "width": w, "encoding": encoding, "is_bigendian": int(bigendian), "step": rows.shape[1],
            "data": rows.reshape(-1).tolist()}


def test_intrinsics_from_camera_info():
    intr = ros.intrinsics_from_camera_info(camera_info(640, 480, k=[615.0, 0, 320.5, 0, 616.0, 240.5, 0, 0, 1.0],
                                                       d=(0.1, -0.2, 0.001, 0.002, 0.03)))
    assert (intr.width, intr.height, intr.fx, intr.fy, intr.cx, intr.cy) == (640, 480, 615.0, 616.0, 320.5, 240.5)
    assert intr.distortion == pytest.approx((0.1, -0.2, 0.001, 0.002, 0.03))
    ros.intrinsics_from_camera_info(camera_info(d=(0.1, 0, 0, 0, 0, 0, 0, 0), model="rational_polynomial"))
    ros.intrinsics_from_camera_info(camera_info(d=(), model=""))
    with pytest.raises(ConfigError, match=r"has k4\.\.k6"):
        ros.intrinsics_from_camera_info(camera_info(d=(0.1, 0, 0, 0, 0, 0.2, 0, 0), model="rational_polynomial"))
    with pytest.raises(ConfigError, match="distortion model 'equidistant' is not supported"):
        ros.intrinsics_from_camera_info(camera_info(d=(0.1, 0, 0, 0), model="equidistant"))
    with pytest.raises(ShapeError, match="CameraInfo.k must be 9 numbers"):
        ros.intrinsics_from_camera_info(camera_info(k=[1.0] * 8))
    with pytest.raises(ConfigError, match="binning_x = 2"):
        ros.intrinsics_from_camera_info(camera_info(binning=2))


def test_frame_from_ros_decodes_colour_and_depth():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    raw = rng.integers(0, 5000, (6, 8), dtype=np.uint16)
    info = camera_info()
    # bgr8 with row padding, 16UC1 little-endian
    f = ros.frame_from_ros(image(rgb[:, :, ::-1], "bgr8", pad=3), image(raw, "16UC1"), info, depth_scale_m=1e-4)
    np.testing.assert_array_equal(f.color, rgb)
    np.testing.assert_allclose(f.depth_m, raw.astype(np.float32) * np.float32(1e-4))
    assert f.depth_m.dtype == np.float32 and f.timestamp_s == pytest.approx(5.5)
    # rgba8 + big-endian 16UC1
    rgba = np.concatenate([rgb, np.full((6, 8, 1), 255, np.uint8)], axis=2)
    f = ros.frame_from_ros(image(rgba, "rgba8"), image(raw, "16UC1", bigendian=True), info, depth_scale_m=1e-3)
    np.testing.assert_array_equal(f.color, rgb)
    np.testing.assert_allclose(f.depth_m, raw * np.float32(1e-3), rtol=1e-6)
    # 32FC1 metres, NaN = no reading; mono8 colour
    depth = rng.uniform(0.2, 1.0, (6, 8)).astype(np.float32)
    depth[0, 0] = np.nan
    depth[1, 1] = -1.0
    f = ros.frame_from_ros(image(rgb[:, :, 0], "mono8"), image(depth, "32FC1"), info,
                           base_from_tcp=Transform.identity(BASE, TCP))
    assert f.depth_m[0, 0] == 0.0 and f.depth_m[1, 1] == 0.0 and f.depth_m[2, 2] == depth[2, 2]
    assert (f.color[:, :, 0] == rgb[:, :, 0]).all() and (f.color[:, :, 2] == rgb[:, :, 0]).all()
    assert f.base_from_tcp == Transform.identity(BASE, TCP)


def test_frame_from_ros_errors():
    rgb = np.zeros((6, 8, 3), np.uint8)
    raw = np.ones((6, 8), np.uint16)
    info = camera_info()
    with pytest.raises(ConfigError, match="give depth_scale_m"):
        ros.frame_from_ros(image(rgb, "rgb8"), image(raw, "16UC1"), info)
    with pytest.raises(UnitsError, match="is not metres per depth unit"):
        ros.frame_from_ros(image(rgb, "rgb8"), image(raw, "16UC1"), info, depth_scale_m=1.0)
    with pytest.raises(ShapeError, match="differ; subscribe to the depth aligned to colour"):
        ros.frame_from_ros(image(rgb, "rgb8"), image(np.ones((3, 4), np.uint16), "16UC1"), info, depth_scale_m=1e-3)
    with pytest.raises(ConfigError, match="encoding 'yuv422' is not supported"):
        ros.frame_from_ros({**image(rgb, "rgb8"), "encoding": "yuv422"}, image(raw, "16UC1"), info)
    with pytest.raises(ConfigError, match="depth image encoding 'rgb8' is not depth"):
        ros.frame_from_ros(image(rgb, "rgb8"), image(rgb, "rgb8"), info)
    short = image(rgb, "rgb8")
    short["data"] = short["data"][:-5]
    with pytest.raises(ShapeError, match="do not hold 6 rows"):
        ros.frame_from_ros(short, image(raw, "16UC1"), info, depth_scale_m=1e-3)


# ================================================================================================
# rosbags: type store, message objects, CDR round trips
# ================================================================================================
needs_rosbags = pytest.mark.skipif(importlib.util.find_spec("rosbags") is None,
                                   reason="rosbags not installed (pip install 'graspseg[bags]')")


@pytest.fixture(scope="module")
def store():
    if importlib.util.find_spec("rosbags") is None:
        pytest.skip("rosbags not installed (pip install 'graspseg[bags]')")
    return ros.moveit_typestore()


def test_moveit_definitions_match_moveit_msgs(store):
    # field names and types as published in moveit_msgs (ROS 2 humble / jazzy / ros2 branches)
    want = {
        "moveit_msgs/msg/Grasp": [
            ("id", "string"), ("pre_grasp_posture", "trajectory_msgs/msg/JointTrajectory"),
            ("grasp_posture", "trajectory_msgs/msg/JointTrajectory"), ("grasp_pose", "geometry_msgs/msg/PoseStamped"),
            ("grasp_quality", "float64"), ("pre_grasp_approach", "moveit_msgs/msg/GripperTranslation"),
            ("post_grasp_retreat", "moveit_msgs/msg/GripperTranslation"),
            ("post_place_retreat", "moveit_msgs/msg/GripperTranslation"), ("max_contact_force", "float32"),
            ("allowed_touch_objects", "string[]")],
        "moveit_msgs/msg/GripperTranslation": [
            ("direction", "geometry_msgs/msg/Vector3Stamped"), ("desired_distance", "float32"),
            ("min_distance", "float32")],
    }

    def typename(desc):
        kind, detail = desc
        if kind == 1:
            return detail[0] if isinstance(detail, tuple) else detail
        if kind == 2:
            return detail
        return typename(detail[0]) + "[]"

    for name, fields in want.items():
        assert [(f, typename(d)) for f, d in store.fielddefs[name][1]] == fields
    assert "trajectory_msgs/msg/JointTrajectory" in store.types  # stock in the ROS 2 store
    jazzy = ros.moveit_typestore("jazzy")
    assert "moveit_msgs/msg/Grasp" in jazzy.types
    with pytest.raises(ConfigError, match="unknown ROS 2 distribution 'noetic'"):
        ros.moveit_typestore("noetic")


def roundtrip(store, d, msgtype):
    obj = ros.to_rosbags(d, msgtype, store)
    raw = store.serialize_cdr(obj, obj.__msgtype__)
    return store.deserialize_cdr(bytes(raw), obj.__msgtype__)


def test_pose_and_transform_cdr_roundtrip(store):
    t = Transform.from_rt(Rotation.from_euler("xyz", [10, -20, 30], degrees=True).as_matrix(), [0.5, -0.1, 0.7],
                          BASE, TCP)
    ps = ros.pose_stamped(t, 12.345, frame_ids={BASE: "panda_link0"})
    back = roundtrip(store, ps, "geometry_msgs/msg/PoseStamped")
    assert back.header.frame_id == "panda_link0" and back.header.stamp.sec == 12
    assert back.header.stamp.nanosec == 345_000_000
    assert [back.pose.position.x, back.pose.position.y, back.pose.position.z] == pytest.approx([0.5, -0.1, 0.7])
    assert ros.from_rosbags(back) == ps  # float64 fields: exact
    ts = ros.transform_stamped(t, 1.0)
    back = roundtrip(store, ts, "geometry_msgs/TransformStamped")  # short type name
    assert back.child_frame_id == TCP and ros.from_rosbags(back) == ts
    assert ros.transform_from_ros(back) == t  # reads rosbags objects as well as dicts
    arr = ros.pose_array([t.inverse().inverse()], 0.5)
    assert ros.from_rosbags(roundtrip(store, arr, "geometry_msgs/msg/PoseArray")) == arr


def assert_same(a, b, path="msg"):
    """Equal up to float32 rounding."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-6, abs=1e-7), path
    else:
        assert a == b, path


def test_moveit_grasp_cdr_roundtrip(store):
    g = ros.moveit_grasp(planned(gripper="robotiq_2f85", opening=0.07, width=0.05), "robotiq_2f85", grasp_id="mug_0",
                         stamp_s=3.0, max_contact_force_n=40.0, allowed_touch_objects=["mug", "table"])
    back = roundtrip(store, g, "moveit_msgs/msg/Grasp")
    assert back.id == "mug_0" and back.allowed_touch_objects == ["mug", "table"]
    assert back.grasp_posture.joint_names == ["finger_joint"]
    assert back.grasp_posture.points[0].positions.tolist() == pytest.approx([0.8 * (1 - 0.045 / 0.085)])
    assert back.pre_grasp_approach.desired_distance == pytest.approx(0.08)  # float32
    assert back.max_contact_force == pytest.approx(40.0)
    assert_same(g, ros.from_rosbags(back))


def test_default_store_and_camera_info_image_objects(store):
    info = ros.to_rosbags(camera_info(), "sensor_msgs/msg/CameraInfo")  # default store: Humble + MoveIt
    assert info.k.dtype == np.float64 and info.k.shape == (9,)
    img = ros.to_rosbags(image(np.full((6, 8, 3), 7, np.uint8), "rgb8"), "sensor_msgs/msg/Image", store)
    depth = ros.to_rosbags(image(np.full((6, 8), 1000, np.uint16), "16UC1"), "sensor_msgs/msg/Image", store)
    assert img.data.dtype == np.uint8
    f = ros.frame_from_ros(img, depth, info, depth_scale_m=1e-3)  # rosbags objects, read by attribute
    assert (f.color == 7).all() and np.allclose(f.depth_m, 1.0)


def test_to_rosbags_errors(store):
    ps = ros.pose_stamped(Transform.identity(BASE, TCP))
    with pytest.raises(ConfigError, match="the type store has no message 'moveit_msgs/msg/Place'"):
        ros.to_rosbags({}, "moveit_msgs/msg/Place", store)
    with pytest.raises(ConfigError, match="message type must be 'package/msg/Type'"):
        ros.to_rosbags(ps, "PoseStamped", store)
    with pytest.raises(InputError, match=r"PoseStamped \(geometry_msgs/msg/PoseStamped\): missing field\(s\) \['pose'\]"):
        ros.to_rosbags({"header": ps["header"]}, "geometry_msgs/msg/PoseStamped", store)
    with pytest.raises(InputError, match=r"unknown field\(s\) \['child_frame_id'\]"):
        ros.to_rosbags({**ps, "child_frame_id": "tcp"}, "geometry_msgs/msg/PoseStamped", store)
    bad = json.loads(json.dumps(ps))
    bad["pose"]["position"]["x"] = "0.1"
    with pytest.raises(InputError, match=r"PoseStamped.pose.position.x must be a number \(float64\)"):
        ros.to_rosbags(bad, "geometry_msgs/msg/PoseStamped", store)
    bad = json.loads(json.dumps(ps))
    bad["header"]["frame_id"] = 3
    with pytest.raises(InputError, match="header.frame_id must be a string"):
        ros.to_rosbags(bad, "geometry_msgs/msg/PoseStamped", store)
    bad["header"] = "base"
    with pytest.raises(InputError, match="header must be a mapping of the fields of std_msgs/msg/Header"):
        ros.to_rosbags(bad, "geometry_msgs/msg/PoseStamped", store)
    bad = json.loads(json.dumps(ps))
    bad["header"]["stamp"]["nanosec"] = -1
    with pytest.raises(InputError, match=r"nanosec = -1 does not fit uint32"):
        ros.to_rosbags(bad, "geometry_msgs/msg/PoseStamped", store)
    bad["header"]["stamp"]["nanosec"] = 0.5
    with pytest.raises(InputError, match=r"nanosec must be a whole number \(uint32\)"):
        ros.to_rosbags(bad, "geometry_msgs/msg/PoseStamped", store)
    with pytest.raises(ShapeError, match="CameraInfo.k must have exactly 9 elements, got 8"):
        ros.to_rosbags(camera_info(k=[1.0] * 8), "sensor_msgs/msg/CameraInfo", store)
    with pytest.raises(InputError, match="CameraInfo.d must be a list, got str"):
        ros.to_rosbags({**camera_info(), "d": "none"}, "sensor_msgs/msg/CameraInfo", store)
    roi = camera_info()
    roi["roi"]["do_rectify"] = 1
    with pytest.raises(InputError, match="do_rectify must be true or false"):
        ros.to_rosbags(roi, "sensor_msgs/msg/CameraInfo", store)
    from rosbags.typesys import get_types_from_msg

    store.register(get_types_from_msg("float32[<=2] g\n", "graspseg_test_msgs/msg/Bounded"))
    with pytest.raises(ShapeError, match="holds at most 2 elements, got 3"):
        ros.to_rosbags({"g": [1.0, 2.0, 3.0]}, "graspseg_test_msgs/msg/Bounded", store)


@needs_rosbags
def test_rosbags_is_optional(monkeypatch):
    out = subprocess.run([sys.executable, "-c", "import sys, graspseg.ros; print('rosbags' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # not imported at module level
    monkeypatch.setitem(sys.modules, "rosbags", None)
    with pytest.raises(MissingDependencyError, match=r"'rosbags' is not installed .*pip install 'graspseg\[bags\]'"):
        ros.moveit_typestore()
    with pytest.raises(MissingDependencyError, match=r"graspseg\[bags\]"):
        ros.to_rosbags({}, "geometry_msgs/msg/PoseStamped")
    with pytest.raises(ImportError):  # also an ImportError, for callers that catch that
        ros.moveit_typestore()


# ================================================================================================
# end to end: the plugin on a synthetic scene
# ================================================================================================
@pytest.fixture(scope="module")
def box_scene():
    from graspseg.sim import make_scene

    return make_scene("single", seed=2, kinds=("box",), tilt_deg=35.0, distance_m=0.45)


def click_on(scene) -> Prompt:
    v, u = np.nonzero(scene.objects[0].mask)
    return Prompt.from_point(float(np.median(u)), float(np.median(v)))


@pytest.mark.parametrize("gripper", ["franka_hand", "robotiq_2f85", "generic"])
def test_plugin_response_in_base_to_ros(box_scene, store, gripper):
    plugin = GraspPlanningPlugin(rig=box_scene.rig, gripper=gripper)
    response = plugin.plan(box_scene.frame, click_on(box_scene), max_grasps=3)
    assert response.status == "ok" and response.frame == BASE and response.grasps
    frame_ids = {BASE: "panda_link0", TCP: "panda_hand_tcp"}
    joints, g_model = ros.FINGER_JOINTS[gripper], plugin.gripper
    out = ros.response_to_ros(response, plugin.gripper, 4.0, frame_ids=frame_ids, allowed_touch_objects=["box"])
    assert out["status"] == "ok" and out["frame_id"] == "panda_link0"
    assert len(out["grasps"]) == len(out["grasp_poses"]) == len(out["pose_array"]["poses"]) == len(response.grasps)
    for i, (g, msg, pose) in enumerate(zip(response.grasps, out["grasps"], out["grasp_poses"], strict=True)):
        assert msg["id"] == f"graspseg_{i}" and msg["grasp_quality"] == pytest.approx(g.score)
        assert msg["grasp_pose"]["header"]["frame_id"] == "panda_link0"
        assert xyz(msg["grasp_pose"]["pose"]["position"]) == pytest.approx(g.tcp_target.translation.tolist())
        q = xyzw(msg["grasp_pose"]["pose"]["orientation"])
        np.testing.assert_allclose(Rotation.from_quat(q).as_matrix(), g.tcp_target.rotation, atol=1e-9)
        assert xyz(pose["pose"]["position"]) == pytest.approx(g.grasp_pose.translation.tolist())
        app = msg["pre_grasp_approach"]
        assert xyz(app["direction"]["vector"]) == pytest.approx(g.grasp_pose.rotation[:, 2].tolist())
        assert app["direction"]["vector"]["z"] < 1e-3  # from above or the side, never from under the table
        assert app["desired_distance"] == pytest.approx(response.approach_distance_m)
        assert xyz(msg["post_grasp_retreat"]["direction"]["vector"]) == pytest.approx([0.0, 0.0, 1.0])
        # the fingers open to the planned opening, then close 5 mm past the measured width (within the stroke)
        closed = min(max(g.width_m - 0.005, g_model.min_opening_m), g.opening_m)
        for key, opening in (("pre_grasp_posture", g.opening_m), ("grasp_posture", closed)):
            assert msg[key]["joint_names"] == list(joints.joint_names)
            assert msg[key]["points"][0]["positions"] == pytest.approx(joints.positions(opening), abs=1e-12)
        if gripper == "franka_hand":
            assert msg["pre_grasp_posture"]["points"][0]["positions"] == pytest.approx([g.opening_m / 2] * 2)
        assert msg["allowed_touch_objects"] == ["box"]
        back = roundtrip(store, msg, "moveit_msgs/msg/Grasp")  # CDR bytes and back, MoveIt's definitions
        assert back.pre_grasp_approach.desired_distance == pytest.approx(response.approach_distance_m, rel=1e-6)
        assert list(back.pre_grasp_posture.joint_names) == list(joints.joint_names)
        assert_same(msg, ros.from_rosbags(back))
    tf = ros.transform_stamped(response.grasps[0].grasp_pose, 4.0, frame_ids=frame_ids)
    assert (tf["header"]["frame_id"], tf["child_frame_id"]) == ("panda_link0", GRASP)


def test_plugin_response_in_camera_to_ros(box_scene):
    plugin = GraspPlanningPlugin(gripper="robotiq_2f85")  # no rig: no tcp_from_camera, poses in the camera frame
    response = plugin.plan(box_scene.frame, click_on(box_scene), max_grasps=2)
    assert response.status == "ok" and response.frame == CAMERA
    out = ros.response_to_ros(response, "robotiq_2f85", frame_ids={CAMERA: "camera_color_optical_frame"})
    for g, msg in zip(response.grasps, out["grasps"], strict=True):
        retreat = msg["post_grasp_retreat"]["direction"]
        assert retreat["header"]["frame_id"] == "camera_color_optical_frame"
        assert xyz(retreat["vector"]) == pytest.approx((-g.grasp_pose.rotation[:, 2]).tolist())
        assert msg["grasp_posture"]["joint_names"] == ["finger_joint"]


# ================================================================================================
# examples
# ================================================================================================
def run_planner_loop(*args):
    return subprocess.run([sys.executable, str(REPO / "examples" / "planner_loop.py"), *args], capture_output=True,
                          text=True, timeout=300, cwd=REPO)


def test_planner_loop_accepts_a_grasp_within_tolerance(tmp_path):
    out = run_planner_loop("--min-margin-mm", "0.5", "--out", str(tmp_path / "grasp.json"))
    assert out.returncode == 0, out.stderr
    assert "attempt 1" in out.stderr and "accepted grasp" in out.stderr and "re-prompting" not in out.stderr
    d = json.loads(out.stdout)
    assert d == json.loads((tmp_path / "grasp.json").read_text())
    assert d["attempt"] == 1 and d["frame"] == CAMERA and d["worst_case_margin_mm"] >= 0.5
    g = d["moveit_grasp"]
    assert set(g) == {"id", "pre_grasp_posture", "grasp_posture", "grasp_pose", "grasp_quality", "pre_grasp_approach",
                      "post_grasp_retreat", "post_place_retreat", "max_contact_force", "allowed_touch_objects"}
    assert g["grasp_pose"]["header"]["frame_id"] == CAMERA
    assert g["pre_grasp_posture"]["joint_names"] == ["panda_finger_joint1", "panda_finger_joint2"]


def test_planner_loop_reprompts_then_asks_to_move_the_camera():
    out = run_planner_loop("--min-margin-mm", "50", "--max-attempts", "3")
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""
    lines = [x for x in out.stderr.splitlines() if x.startswith("planner: attempt")]
    assert len(lines) == 3 and all("re-prompting" in x for x in lines)
    assert "granularity part" in lines[1] and "below the 50 mm the controller tolerates" in lines[0]
    assert "would move the camera" in out.stderr


@pytest.mark.parametrize("name", ["ros2_grasp_node.py", "ros2_grasp.launch.py", "planner_loop.py"])
def test_examples_compile(name):
    subprocess.run([sys.executable, "-m", "py_compile", str(REPO / "examples" / name)], check=True)


def test_node_prompt_parser():
    sys.path.insert(0, str(REPO / "examples"))
    try:
        import ros2_grasp_node as node  # rclpy is imported only inside main()
    finally:
        sys.path.remove(str(REPO / "examples"))
    p = node.parse_prompt("point:352,280;300,200")
    assert p.points_uv.tolist() == [[352, 280], [300, 200]]
    assert node.parse_prompt("box:10,20,110,220").box_xyxy.tolist() == [10, 20, 110, 220]
    with pytest.raises(ValueError, match="use 'point:U,V'"):
        node.parse_prompt("click:3")
