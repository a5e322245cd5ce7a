"""ROS 2 and MoveIt message shapes for graspseg's poses and grasps — no ROS installation needed.

Every converter returns a plain ``dict`` laid out exactly like the ROS 2 message it names (field names and
nesting of ``geometry_msgs/msg/PoseStamped``, ``geometry_msgs/msg/TransformStamped``,
``geometry_msgs/msg/PoseArray``, ``moveit_msgs/msg/Grasp``), with Python floats, ints, strings and lists.
Such a dict fills an ``rclpy`` message with ``rosidl_runtime_py.set_message_fields(msg, d)``, and becomes a
real rosbags message object (for CDR bytes or a bag) with :func:`to_rosbags`; :func:`moveit_typestore` is a
rosbags type store that knows the MoveIt messages. rosbags is optional (``pip install 'graspseg[bags]'``) and
imported only inside those two functions.

Frames (see ``docs/ros2.md`` and ``docs/grasp_frame.md``)
---------------------------------------------------------
A :class:`~graspseg.core.transform.Transform` ``<to>_from_<from>`` is the pose of frame ``from`` in frame
``to``: as a ``PoseStamped`` its ``header.frame_id`` is ``to``; as a ``TransformStamped`` (the tf2
convention) ``header.frame_id`` is the parent ``to`` and ``child_frame_id`` is ``from``. graspseg's canonical
names (``base``, ``tcp``, ``camera_color_optical`` — REP-103 optical: z forward, x right, y down —,
``grasp``) rarely match a robot's tf tree, so every converter takes ``frame_ids``, a mapping from graspseg
names to tf names, e.g. ``{"base": "panda_link0", "tcp": "panda_hand_tcp",
"camera_color_optical": "camera_color_optical_frame"}``; names it does not list pass through unchanged.

Units: metres, radians, seconds; quaternions are (x, y, z, w) with w >= 0.

Examples
--------
>>> import numpy as np
>>> from graspseg.core.transform import Transform
>>> t = Transform.from_rt(np.eye(3), [0.1, 0.0, 0.5], "base", "tcp")
>>> msg = pose_stamped(t, stamp_s=1.5, frame_ids={"base": "panda_link0"})
>>> msg["header"]
{'stamp': {'sec': 1, 'nanosec': 500000000}, 'frame_id': 'panda_link0'}
>>> msg["pose"]["orientation"]
{'x': 0.0, 'y': 0.0, 'z': 0.0, 'w': 1.0}
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .core.camera import CameraIntrinsics
from .core.errors import (
    ConfigError,
    FrameMismatchError,
    InputError,
    MissingDependencyError,
    ShapeError,
    UnitsError,
)
from .core.frame import RGBDFrame
from .core.transform import BASE, GRASP, TCP, Transform
from .grasp.gripper import GripperModel, load_gripper

if TYPE_CHECKING:  # the plugin composes every stage; the converters only read its result types
    from .plugin import GraspResponse, PlannedGrasp

__all__ = [
    "GRASP_MSG",
    "GRIPPER_TRANSLATION_MSG",
    "MOVEIT_MSG_DEFINITIONS",
    "FINGER_JOINTS",
    "FingerJoints",
    "time_msg",
    "pose_stamped",
    "transform_stamped",
    "pose_array",
    "transform_from_ros",
    "finger_joints_for",
    "moveit_grasp",
    "response_to_ros",
    "intrinsics_from_camera_info",
    "frame_from_ros",
    "moveit_typestore",
    "to_rosbags",
    "from_rosbags",
]

# --- MoveIt message definitions (field lists of moveit_msgs, ROS 2 branches humble / jazzy / ros2) ----------
#: ``moveit_msgs/msg/GripperTranslation``: a straight gripper motion (approach before, retreat after a grasp).
GRIPPER_TRANSLATION_MSG = """\
# the direction of the translation
geometry_msgs/Vector3Stamped direction
# the desired translation distance
float32 desired_distance
# the min distance that must be considered feasible before the grasp is even attempted
float32 min_distance
"""

#: ``moveit_msgs/msg/Grasp``: how an end-effector approaches, closes on and leaves an object.
GRASP_MSG = """\
# A name for this grasp
string id
# The internal posture of the hand for the pre-grasp (only positions are used)
trajectory_msgs/JointTrajectory pre_grasp_posture
# The internal posture of the hand for the grasp (positions and efforts are used)
trajectory_msgs/JointTrajectory grasp_posture
# The pose of the end-effector's parent link at the grasp
geometry_msgs/PoseStamped grasp_pose
# The estimated probability of success, or another measure of how good the grasp is
float64 grasp_quality
# The approach to take before picking the object
GripperTranslation pre_grasp_approach
# The retreat to take after the grasp (object attached)
GripperTranslation post_grasp_retreat
# The retreat to perform when releasing the object
GripperTranslation post_place_retreat
# the maximum contact force to use while grasping (<= 0 to disable)
float32 max_contact_force
# obstacles that may be touched, pushed or moved in the course of grasping
string[] allowed_touch_objects
"""

#: Registration order matters: Grasp refers to GripperTranslation.
MOVEIT_MSG_DEFINITIONS: dict[str, str] = {
    "moveit_msgs/msg/GripperTranslation": GRIPPER_TRANSLATION_MSG,
    "moveit_msgs/msg/Grasp": GRASP_MSG,
}

_STORES = {"humble": "ROS2_HUMBLE", "jazzy": "ROS2_JAZZY"}
_INT32_MAX = 2**31 - 1


# ================================================================================================
# Small pieces: numbers, time, frame names
# ================================================================================================
def _number(value: Any, name: str, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise UnitsError(f"{name} must be a number of {unit}, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise UnitsError(f"{name} is {v}; give a finite number of {unit}")
    return v


def _distance(value: Any, name: str, *, upper_m: float = 2.0) -> float:
    v = _number(value, name, "metres")
    if not 0.0 <= v <= upper_m:
        raise UnitsError(f"{name} = {v} m is outside [0, {upper_m}] m; distances are in metres (0.10 is 10 cm)")
    return v


def time_msg(stamp_s: float) -> dict:
    """``builtin_interfaces/msg/Time`` from seconds.

    Parameters
    ----------
    stamp_s : float
        Seconds since the epoch (or since the recording started), >= 0 and below 2**31.

    Returns
    -------
    dict
        ``{"sec": int, "nanosec": int}``, ``0 <= nanosec < 1e9``.

    Raises
    ------
    UnitsError
        Negative, not finite, or 2**31 s or more (a stamp in milliseconds or nanoseconds).
    """
    s = _number(stamp_s, "stamp_s", "seconds")
    if s < 0:
        raise UnitsError(f"stamp_s = {s} s is negative; ROS 2 time stamps are seconds >= 0")
    sec = math.floor(s)
    nanosec = round((s - sec) * 1e9)
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    if sec > _INT32_MAX:
        raise UnitsError(f"stamp_s = {s:g} s does not fit a ROS 2 stamp (int32 seconds); it looks like "
                         "milliseconds or nanoseconds — give seconds (e.g. time.time())")
    return {"sec": int(sec), "nanosec": int(nanosec)}


def _duration(seconds: float, name: str) -> dict:
    s = _number(seconds, name, "seconds")
    if not 0.0 <= s <= 3600.0:
        raise UnitsError(f"{name} = {s} s is outside [0, 3600] s")
    sec = math.floor(s)
    return {"sec": int(sec), "nanosec": int(round((s - sec) * 1e9))}


def _check_frame_ids(frame_ids: Mapping[str, str] | None) -> dict[str, str]:
    if frame_ids is None:
        return {}
    if not isinstance(frame_ids, Mapping):
        raise ConfigError(f"frame_ids must map graspseg frame names to tf frame names, e.g. "
                          f"{{'base': 'panda_link0'}}, got {type(frame_ids).__name__}")
    for k, v in frame_ids.items():
        if not isinstance(k, str) or not isinstance(v, str) or not v.strip():
            raise ConfigError(f"frame_ids entry {k!r}: {v!r} must map a frame name to a non-empty tf frame name")
    return dict(frame_ids)


def _ros_frame(name: str, frame_ids: Mapping[str, str], what: str) -> str:
    out = frame_ids.get(name, name)
    if not isinstance(out, str) or not out.strip():
        raise InputError(f"{what} frame name is {out!r}; a ROS frame id must be a non-empty string")
    if out.startswith("/"):
        raise InputError(f"{what} frame id {out!r} starts with '/'; tf2 refuses such ids in ROS 2 — use "
                         f"{out.lstrip('/')!r}")
    return out


def _header(frame_id: str, stamp_s: float) -> dict:
    return {"stamp": time_msg(stamp_s), "frame_id": frame_id}


def _check_transform(t: Any, what: str) -> Transform:
    if not isinstance(t, Transform):
        raise InputError(f"{what} must be a graspseg Transform, got {type(t).__name__}; build one with "
                         "Transform.from_rt(rotation, translation_m, to_frame, from_frame)")
    return t


def _xyz(v: np.ndarray) -> dict:
    return {"x": float(v[0]), "y": float(v[1]), "z": float(v[2])}


def _quat(t: Transform) -> dict:
    q = t.as_xyz_quat_xyzw()[1]
    q = q / np.linalg.norm(q)
    if q[3] < 0:  # q and -q are the same rotation; w >= 0 makes the message unique
        q = -q
    return {"x": float(q[0]), "y": float(q[1]), "z": float(q[2]), "w": float(q[3])}


def _pose(t: Transform) -> dict:
    return {"position": _xyz(t.translation), "orientation": _quat(t)}


# ================================================================================================
# geometry_msgs
# ================================================================================================
def pose_stamped(transform: Transform, stamp_s: float = 0.0, *, child_frame: str | None = None,
                 frame_ids: Mapping[str, str] | None = None) -> dict:
    """``geometry_msgs/msg/PoseStamped``: where ``transform.from_frame`` sits in ``transform.to_frame``.

    Parameters
    ----------
    transform : Transform
        ``<to>_from_<child>``, translation in metres.
    stamp_s : float
        ``header.stamp`` in seconds.
    child_frame : str, optional
        The frame whose pose this is meant to be (a PoseStamped does not carry it); when given,
        ``transform.from_frame`` must equal it.
    frame_ids : mapping, optional
        graspseg frame name → tf frame name for ``header.frame_id``.

    Returns
    -------
    dict
        ``{header: {stamp: {sec, nanosec}, frame_id}, pose: {position: {x, y, z}, orientation: {x, y, z, w}}}``
        with ``header.frame_id = transform.to_frame``.

    Raises
    ------
    FrameMismatchError
        ``transform.from_frame`` is not ``child_frame``.
    InputError
        Not a Transform; a frame id that is empty or starts with '/'.
    UnitsError
        A bad stamp (see :func:`time_msg`).
    """
    t = _check_transform(transform, "transform")
    if child_frame is not None and t.from_frame != child_frame:
        raise FrameMismatchError(f"pose_stamped was asked for the pose of {child_frame!r} but got {t.name} (the "
                                 f"pose of {t.from_frame!r}); pass {t.to_frame}_from_{child_frame}")
    fid = _check_frame_ids(frame_ids)
    return {"header": _header(_ros_frame(t.to_frame, fid, "header"), stamp_s), "pose": _pose(t)}


def transform_stamped(transform: Transform, stamp_s: float = 0.0, *,
                      frame_ids: Mapping[str, str] | None = None) -> dict:
    """``geometry_msgs/msg/TransformStamped`` in the tf2 convention.

    Parameters
    ----------
    transform : Transform
        ``<parent>_from_<child>``: maps points in the child frame to the parent frame; metres.
    stamp_s : float
        ``header.stamp`` in seconds.
    frame_ids : mapping, optional
        graspseg frame name → tf frame name.

    Returns
    -------
    dict
        ``{header: {stamp, frame_id = parent = to_frame}, child_frame_id = from_frame,
        transform: {translation: {x, y, z}, rotation: {x, y, z, w}}}``.

    Raises
    ------
    FrameMismatchError
        Parent and child are the same frame (tf2 refuses a self transform).
    InputError
        Not a Transform; a frame id that is empty or starts with '/'.
    """
    t = _check_transform(transform, "transform")
    fid = _check_frame_ids(frame_ids)
    parent = _ros_frame(t.to_frame, fid, "header")
    child = _ros_frame(t.from_frame, fid, "child")
    if parent == child:
        raise FrameMismatchError(f"{t.name} maps frame {parent!r} to itself; tf2 refuses a transform whose parent "
                                 "and child are the same frame — name the two frames (or map them with frame_ids)")
    return {"header": _header(parent, stamp_s), "child_frame_id": child,
            "transform": {"translation": _xyz(t.translation), "rotation": _quat(t)}}


def pose_array(transforms: Sequence[Transform], stamp_s: float = 0.0, *, frame_id: str | None = None,
               frame_ids: Mapping[str, str] | None = None) -> dict:
    """``geometry_msgs/msg/PoseArray`` of transforms that share one ``to_frame``.

    Parameters
    ----------
    transforms : sequence of Transform
        All ``<frame>_from_<something>`` with the same ``<frame>``; may be empty.
    frame_id : str, optional
        graspseg name of the common frame; needed when ``transforms`` is empty, checked otherwise.

    Raises
    ------
    FrameMismatchError
        The transforms are in different frames, or not in ``frame_id``.
    InputError
        Empty without ``frame_id``.
    """
    ts = [_check_transform(t, f"transforms[{i}]") for i, t in enumerate(transforms)]
    frames = sorted({t.to_frame for t in ts} | ({frame_id} if frame_id is not None else set()))
    if len(frames) > 1:
        raise FrameMismatchError(f"a PoseArray has one frame, but the poses are in {frames}; transform them into "
                                 "one frame first")
    if not frames:
        raise InputError("pose_array of no poses needs frame_id= (the frame the empty array is in)")
    fid = _check_frame_ids(frame_ids)
    return {"header": _header(_ros_frame(frames[0], fid, "header"), stamp_s), "poses": [_pose(t) for t in ts]}


def _get(msg: Any, key: str) -> Any:
    """A field of a dict, an rclpy message or a rosbags message."""
    try:
        return msg[key] if isinstance(msg, Mapping) else getattr(msg, key)
    except (KeyError, AttributeError):
        raise InputError(f"message {type(msg).__name__} has no field {key!r}") from None


def transform_from_ros(msg: Any, *, frame_ids: Mapping[str, str] | None = None) -> Transform:
    """A :class:`Transform` from a ``geometry_msgs/msg/TransformStamped`` (dict, rclpy or rosbags message).

    tf2's ``lookup_transform(target, source, t)`` returns ``<target>_from_<source>``: pass ``frame_ids`` (the
    same mapping as for the outgoing converters) to get graspseg's names back, e.g. ``base_from_tcp`` from
    ``lookup_transform("panda_link0", "panda_hand_tcp", t)`` with ``{"base": "panda_link0",
    "tcp": "panda_hand_tcp"}``.

    Raises
    ------
    InputError
        A missing field.
    UnitsError
        A quaternion that is not of unit norm (see :meth:`Transform.from_xyz_quat_xyzw`).
    """
    ros_to_ours = {v: k for k, v in _check_frame_ids(frame_ids).items()}
    header, tr = _get(msg, "header"), _get(msg, "transform")
    t, r = _get(tr, "translation"), _get(tr, "rotation")
    parent = str(_get(header, "frame_id"))
    child = str(_get(msg, "child_frame_id"))
    return Transform.from_xyz_quat_xyzw([_get(t, k) for k in "xyz"], [_get(r, k) for k in "xyzw"],
                                        ros_to_ours.get(parent, parent), ros_to_ours.get(child, child))


# ================================================================================================
# Finger joints
# ================================================================================================
@dataclass(frozen=True)
class FingerJoints:
    """How a gripper's finger joints follow the opening, linearly.

    ``position[j] = at_closed[j] + per_m[j] * opening_m`` (radians for a revolute joint, metres for a
    prismatic one), ``opening_m`` being the distance between the finger pads.

    Attributes
    ----------
    joint_names : tuple of str
        As in the gripper's URDF / MoveIt SRDF end-effector group.
    at_closed : tuple of float
        Joint positions at opening 0.
    per_m : tuple of float
        Change of each joint position per metre of opening.
    """

    joint_names: tuple[str, ...]
    at_closed: tuple[float, ...]
    per_m: tuple[float, ...]

    def __post_init__(self) -> None:
        names = tuple(self.joint_names)
        if not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise ConfigError(f"finger joint names must be non-empty strings, got {self.joint_names!r}")
        at = tuple(_number(v, "at_closed", "radians or metres") for v in self.at_closed)
        per = tuple(_number(v, "per_m", "joint units per metre") for v in self.per_m)
        if not len(at) == len(per) == len(names):
            raise ConfigError(f"finger joints {list(names)}: at_closed has {len(at)} and per_m {len(per)} values; "
                              f"give one of each per joint ({len(names)})")
        object.__setattr__(self, "joint_names", names)
        object.__setattr__(self, "at_closed", at)
        object.__setattr__(self, "per_m", per)

    def positions(self, opening_m: float) -> list[float]:
        """Joint positions for a pad-to-pad opening in metres."""
        o = float(opening_m)
        return [a + p * o for a, p in zip(self.at_closed, self.per_m, strict=True)]

    def with_names(self, joint_names: Sequence[str]) -> FingerJoints:
        """The same mapping under other joint names (e.g. ``fr3_finger_joint1`` for an FR3 hand)."""
        names = tuple(joint_names)
        if len(names) != len(self.joint_names):
            raise ConfigError(f"joint_names {list(names)} must name {len(self.joint_names)} joint(s) like "
                              f"{list(self.joint_names)}")
        return FingerJoints(names, self.at_closed, self.per_m)


#: Finger-joint mappings of the shipped grippers, keyed by gripper name.
#:
#: * ``franka_hand``: ``panda_finger_joint1`` and ``panda_finger_joint2`` (prismatic, metres) each move one
#:   finger by half the opening (0.04 m each when fully open at 0.08 m).
#: * ``robotiq_2f85``: ``finger_joint`` (revolute, the ROS-Industrial / Robotiq description) ≈ 0.8 rad closed,
#:   0 open, taken linear in the opening over the 0.085 m stroke (the real linkage is not quite linear).
#: * ``generic``: one prismatic ``gripper_finger_joint`` whose position is the opening.
FINGER_JOINTS: dict[str, FingerJoints] = {
    "franka_hand": FingerJoints(("panda_finger_joint1", "panda_finger_joint2"), (0.0, 0.0), (0.5, 0.5)),
    "robotiq_2f85": FingerJoints(("finger_joint",), (0.8,), (-0.8 / 0.085,)),
    "generic": FingerJoints(("gripper_finger_joint",), (0.0,), (1.0,)),
}


def _gripper(gripper: GripperModel | str) -> GripperModel:
    if isinstance(gripper, GripperModel):
        return gripper
    if isinstance(gripper, str):
        return load_gripper(gripper)
    raise InputError(f"gripper must be a GripperModel or a shipped gripper name, got {type(gripper).__name__}")


def finger_joints_for(gripper: GripperModel | str) -> FingerJoints:
    """The :data:`FINGER_JOINTS` entry of a gripper.

    Raises
    ------
    ConfigError
        The gripper has no entry (pass ``finger_joints=FingerJoints(...)`` to :func:`moveit_grasp`, or add
        one to :data:`FINGER_JOINTS`).
    """
    g = _gripper(gripper)
    if g.name not in FINGER_JOINTS:
        raise ConfigError(f"no finger-joint mapping for gripper {g.name!r}; known: {sorted(FINGER_JOINTS)}. Pass "
                          "finger_joints=FingerJoints(joint_names, at_closed, per_m) to moveit_grasp (see "
                          "graspseg.ros.FINGER_JOINTS)")
    return FINGER_JOINTS[g.name]


def _posture(joints: FingerJoints, opening_m: float, stamp_s: float, time_s: float) -> dict:
    """``trajectory_msgs/msg/JointTrajectory`` with one point: the fingers at ``opening_m``."""
    return {"header": _header("", stamp_s), "joint_names": list(joints.joint_names),
            "points": [{"positions": joints.positions(opening_m), "velocities": [], "accelerations": [],
                        "effort": [], "time_from_start": _duration(time_s, "posture_time_s")}]}


def _translation(direction: np.ndarray, frame_id: str, desired_m: float, min_m: float, stamp_s: float) -> dict:
    """``moveit_msgs/msg/GripperTranslation``."""
    return {"direction": {"header": _header(frame_id, stamp_s), "vector": _xyz(direction)},
            "desired_distance": float(desired_m), "min_distance": float(min_m)}


# ================================================================================================
# moveit_msgs/Grasp
# ================================================================================================
def _unit(v: Any, name: str) -> np.ndarray:
    try:
        a = np.asarray(v, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ShapeError(f"{name} must be 3 numbers, got {v!r}") from None
    if a.shape != (3,) or not np.all(np.isfinite(a)):
        raise ShapeError(f"{name} must be 3 finite numbers (a direction in the base frame), got {v!r}")
    n = float(np.linalg.norm(a))
    if n < 1e-9:
        raise UnitsError(f"{name} is the zero vector; give the direction of gravity in the base frame, e.g. "
                         "(0, 0, -1) for a REP-103 base (z up)")
    return a / n


def moveit_grasp(planned: PlannedGrasp, gripper: GripperModel | str, *, grasp_id: str, stamp_s: float = 0.0,
                 approach_min_m: float | None = None, retreat_distance_m: float = 0.10,
                 retreat_min_m: float | None = None, squeeze_m: float = 0.005, posture_time_s: float = 0.5,
                 max_contact_force_n: float = 0.0, allowed_touch_objects: Sequence[str] = (),
                 gravity_in_base: Sequence[float] = (0.0, 0.0, -1.0), tcp_from_eef_link: Transform | None = None,
                 finger_joints: FingerJoints | None = None, joint_names: Sequence[str] | None = None,
                 frame_ids: Mapping[str, str] | None = None) -> dict:
    """One planned grasp as a ``moveit_msgs/msg/Grasp``.

    Parameters
    ----------
    planned : PlannedGrasp
        From :meth:`graspseg.plugin.GraspPerception.plan`; its poses are all ``<frame>_from_*`` in one frame
        (``base`` or ``camera_color_optical``).
    gripper : GripperModel or str
        The gripper the grasp was planned for (its stroke and finger joints).
    grasp_id : str
        ``id`` of the message.
    stamp_s : float
        Every header's stamp, seconds (the capture time of the frame the grasp was planned on).
    approach_min_m : float, optional
        ``pre_grasp_approach.min_distance``; default half the approach distance.
    retreat_distance_m, retreat_min_m : float
        ``post_grasp_retreat`` desired and minimum lift, metres; the minimum defaults to half the desired.
    squeeze_m : float
        The grasp posture closes to ``width_m - squeeze_m`` (clipped to the stroke), so that the fingers
        press on the object instead of stopping just at it.
    posture_time_s : float
        ``time_from_start`` of the single posture point, seconds.
    max_contact_force_n : float
        ``max_contact_force`` in newtons; <= 0 disables it (MoveIt's convention).
    allowed_touch_objects : sequence of str
        Collision-object ids the hand may touch (usually the object being grasped).
    gravity_in_base : (3,) float
        Direction of gravity in the base frame (REP-103 ``base_link``: z up, so (0, 0, -1)); the
        post-grasp retreat lifts against it when the poses are in ``base``.
    tcp_from_eef_link : Transform, optional
        ``tcp_from_<link>``: where the link MoveIt moves (the end-effector's parent link in the SRDF) sits in
        the TCP frame (fixed, from the URDF). Without it ``grasp_pose`` is the TCP target itself, which is
        right when that link *is* the TCP (e.g. ``panda_hand_tcp``).
    finger_joints : FingerJoints, optional
        Overrides the :data:`FINGER_JOINTS` entry of ``gripper``.
    joint_names : sequence of str, optional
        Renames the finger joints (same count), e.g. ``["fr3_finger_joint1", "fr3_finger_joint2"]``.
    frame_ids : mapping, optional
        graspseg frame name → tf frame name for every header.

    Returns
    -------
    dict
        Shaped like ``moveit_msgs/msg/Grasp``:

        - ``pre_grasp_posture``: the fingers open to ``planned.opening_m``;
        - ``grasp_posture``: closed to ``planned.width_m - squeeze_m``;
        - ``grasp_pose``: ``PoseStamped`` of the **TCP target** (``<frame>_from_tcp``). MoveIt reads
          ``grasp_pose`` as the pose of the end-effector link it plans for (the end-effector's parent link);
          make that link the TCP or pass ``tcp_from_eef_link``;
        - ``grasp_quality``: ``planned.score``;
        - ``pre_grasp_approach``: direction = the approach axis (grasp +z) expressed in the poses' frame
          (``header.frame_id`` = that frame), ``desired_distance`` = the pre-grasp back-off (the distance
          from ``pregrasp_tcp`` to ``tcp_target``, which the collision check swept);
        - ``post_grasp_retreat``: ``-gravity_in_base`` in ``base`` when the poses are in ``base``, else
          ``-approach`` in the camera frame (which way is up is unknown there);
        - ``post_place_retreat``: back along ``-approach`` by the approach distance;
        - ``max_contact_force``, ``allowed_touch_objects``.

    Raises
    ------
    FrameMismatchError
        The planned poses are not ``<frame>_from_grasp`` / ``<frame>_from_tcp`` in one frame, or
        ``tcp_from_eef_link`` is not ``tcp_from_<link>``.
    InputError
        Empty ``grasp_id``; a pre-grasp pose that is not behind the target along the approach; touch-object
        ids that are not strings.
    UnitsError
        Distances outside [0, 2] m, a minimum above its desired distance, an opening outside the stroke.
    ConfigError
        No finger-joint mapping for the gripper (see :func:`finger_joints_for`).
    """
    g = _gripper(gripper)
    if not isinstance(grasp_id, str) or not grasp_id.strip():
        raise InputError(f"grasp_id must be a non-empty string (MoveIt reports grasps by it), got {grasp_id!r}")
    grasp_pose = _check_transform(getattr(planned, "grasp_pose", None), "planned.grasp_pose")
    target = _check_transform(getattr(planned, "tcp_target", None), "planned.tcp_target")
    pre = _check_transform(getattr(planned, "pregrasp_tcp", None), "planned.pregrasp_tcp")
    frame = grasp_pose.to_frame
    for t, child in ((grasp_pose, GRASP), (target, TCP), (pre, TCP)):
        if t.to_frame != frame or t.from_frame != child:
            raise FrameMismatchError(f"planned grasp poses must be {frame}_from_grasp, {frame}_from_tcp and "
                                     f"{frame}_from_tcp; got {grasp_pose.name}, {target.name}, {pre.name}")

    approach = grasp_pose.rotation[:, 2].copy()
    step = target.translation - pre.translation
    approach_m = float(step @ approach)
    if approach_m <= 0 or np.linalg.norm(step - approach_m * approach) > 1e-6 + 1e-6 * approach_m:
        raise InputError(f"pregrasp_tcp is not behind tcp_target along the approach (offset {step.round(4).tolist()} "
                         f"m, approach {approach.round(4).tolist()}); plan the grasp with graspseg.plugin")
    approach_m = _distance(approach_m, "approach distance")
    approach_min = 0.5 * approach_m if approach_min_m is None else _distance(approach_min_m, "approach_min_m")
    retreat_m = _distance(retreat_distance_m, "retreat_distance_m")
    retreat_min = 0.5 * retreat_m if retreat_min_m is None else _distance(retreat_min_m, "retreat_min_m")
    for lo, hi, what in ((approach_min, approach_m, "approach_min_m"), (retreat_min, retreat_m, "retreat_min_m")):
        if lo > hi + 1e-12:
            raise UnitsError(f"{what} = {lo} m exceeds its desired distance {hi} m; MoveIt needs "
                             "min_distance <= desired_distance")
    squeeze = _distance(squeeze_m, "squeeze_m", upper_m=0.05)
    force = _number(max_contact_force_n, "max_contact_force_n", "newtons")
    touch = list(allowed_touch_objects) if not isinstance(allowed_touch_objects, str) else [allowed_touch_objects]
    if not all(isinstance(x, str) and x for x in touch):
        raise InputError(f"allowed_touch_objects must be collision-object ids (strings), got {touch!r}")

    joints = finger_joints if finger_joints is not None else finger_joints_for(g)
    if not isinstance(joints, FingerJoints):
        raise ConfigError(f"finger_joints must be a graspseg.ros.FingerJoints, got {type(joints).__name__}")
    if joint_names is not None:
        joints = joints.with_names(joint_names)
    opening = _number(planned.opening_m, "planned.opening_m", "metres")
    width = _number(planned.width_m, "planned.width_m", "metres")
    tol = 1e-6
    if not g.min_opening_m - tol <= opening <= g.max_opening_m + tol:
        raise UnitsError(f"planned opening {opening:.4f} m is outside the stroke of {g.name!r} "
                         f"[{g.min_opening_m}, {g.max_opening_m}] m; was the grasp planned for another gripper?")
    opening = min(max(opening, g.min_opening_m), g.max_opening_m)
    closed = min(max(width - squeeze, g.min_opening_m), opening)

    fid = _check_frame_ids(frame_ids)
    pose_frame = _ros_frame(frame, fid, "grasp pose")
    if tcp_from_eef_link is not None:
        link = _check_transform(tcp_from_eef_link, "tcp_from_eef_link")
        if link.to_frame != TCP:
            raise FrameMismatchError(f"tcp_from_eef_link must be tcp_from_<link> (the link's pose in the TCP frame), "
                                     f"got {link.name}")
        eef_pose = target @ link
    else:
        eef_pose = target
    up = -_unit(gravity_in_base, "gravity_in_base") if frame == BASE else -approach
    return {
        "id": grasp_id,
        "pre_grasp_posture": _posture(joints, opening, stamp_s, posture_time_s),
        "grasp_posture": _posture(joints, closed, stamp_s, posture_time_s),
        "grasp_pose": pose_stamped(eef_pose, stamp_s, child_frame=eef_pose.from_frame, frame_ids=fid),
        "grasp_quality": float(planned.score),
        "pre_grasp_approach": _translation(approach, pose_frame, approach_m, approach_min, stamp_s),
        "post_grasp_retreat": _translation(up, pose_frame, retreat_m, retreat_min, stamp_s),
        "post_place_retreat": _translation(-approach, pose_frame, approach_m, approach_min, stamp_s),
        "max_contact_force": force,
        "allowed_touch_objects": touch,
    }


def response_to_ros(response: GraspResponse, gripper: GripperModel | str, stamp_s: float = 0.0, *,
                    id_prefix: str = "graspseg", frame_ids: Mapping[str, str] | None = None, **grasp_kw) -> dict:
    """A whole :class:`~graspseg.plugin.GraspResponse` as ROS-shaped dicts, best grasp first.

    Parameters
    ----------
    response : GraspResponse
    gripper : GripperModel or str
    stamp_s : float
        Every header's stamp, seconds.
    id_prefix : str
        Grasp ids are ``f"{id_prefix}_{rank}"``, rank 0 the best.
    frame_ids : mapping, optional
        graspseg frame name → tf frame name.
    **grasp_kw
        Passed to :func:`moveit_grasp` (``retreat_distance_m``, ``tcp_from_eef_link``, ...).

    Returns
    -------
    dict
        ``status``, ``frame_id`` (the response's frame as a tf name), ``grasps`` (``moveit_msgs/msg/Grasp``
        dicts), ``grasp_poses`` (``PoseStamped`` of each grasp frame — fingertip centre, +z approach,
        +x closing), ``pose_array`` (``PoseArray`` of the same poses), ``rejected_counts``, ``suggestion``.
        A ``"no_grasp"`` response gives empty lists, never None.

    Raises
    ------
    FrameMismatchError
        A grasp is not in ``response.frame``.
    """
    fid = _check_frame_ids(frame_ids)
    for i, p in enumerate(response.grasps):
        if p.grasp_pose.to_frame != response.frame:
            raise FrameMismatchError(f"response.frame is {response.frame!r} but grasp {i} is {p.grasp_pose.name}")
    grasps = [moveit_grasp(p, gripper, grasp_id=f"{id_prefix}_{i}", stamp_s=stamp_s, frame_ids=fid, **grasp_kw)
              for i, p in enumerate(response.grasps)]
    poses = [pose_stamped(p.grasp_pose, stamp_s, child_frame=GRASP, frame_ids=fid) for p in response.grasps]
    return {
        "status": response.status,
        "frame_id": _ros_frame(response.frame, fid, "response"),
        "grasps": grasps,
        "grasp_poses": poses,
        "pose_array": pose_array([p.grasp_pose for p in response.grasps], stamp_s, frame_id=response.frame,
                                 frame_ids=fid),
        "rejected_counts": dict(response.rejected_counts),
        "suggestion": response.suggestion,
    }


# ================================================================================================
# sensor_msgs → RGBDFrame
# ================================================================================================
def intrinsics_from_camera_info(msg: Any) -> CameraIntrinsics:
    """:class:`CameraIntrinsics` from a ``sensor_msgs/msg/CameraInfo`` (dict, rclpy or rosbags message).

    Reads ``width``, ``height``, ``k`` (row-major 3×3) and ``d``. ``plumb_bob`` and ``rational_polynomial``
    (whose k4–k6 must be 0) map to OpenCV's ``k1, k2, p1, p2, k3``; any other model must have no distortion.

    Raises
    ------
    ConfigError
        A distortion model graspseg cannot represent; binning or a region of interest (the image is then
        not the calibrated one).
    ShapeError
        ``k`` is not 9 numbers.
    """
    k = np.asarray(_get(msg, "k"), np.float64).reshape(-1)
    if k.size != 9:
        raise ShapeError(f"CameraInfo.k must be 9 numbers (row-major 3x3), got {k.size}")
    d = np.asarray(_get(msg, "d"), np.float64).reshape(-1)
    model = str(_get(msg, "distortion_model") or "")
    if model in ("plumb_bob", "rational_polynomial") or not np.any(d):
        if d.size > 5 and np.any(d[5:]):
            raise ConfigError(f"CameraInfo distortion {model!r} has k4..k6 = {d[5:].tolist()}; graspseg models "
                              "k1, k2, p1, p2, k3 only — rectify the image (image_proc) and use the rectified info")
        dist = tuple((d.tolist() + [0.0] * 5)[:5])
    else:
        raise ConfigError(f"CameraInfo distortion model {model!r} is not supported (use plumb_bob or a rectified "
                          "image)")
    for key in ("binning_x", "binning_y"):
        b = _get(msg, key) if (isinstance(msg, Mapping) and key in msg) or hasattr(msg, key) else 0
        if int(b) > 1:
            raise ConfigError(f"CameraInfo.{key} = {b}; scale the intrinsics for binned images before use")
    return CameraIntrinsics.from_K(k.reshape(3, 3), int(_get(msg, "width")), int(_get(msg, "height")), dist)


def _image_array(msg: Any, what: str) -> tuple[np.ndarray, str]:
    """(H, W, C) array of a ``sensor_msgs/msg/Image`` and its encoding."""
    enc = str(_get(msg, "encoding"))
    h, w, step = int(_get(msg, "height")), int(_get(msg, "width")), int(_get(msg, "step"))
    layouts = {"rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3), "rgba8": (np.uint8, 4), "bgra8": (np.uint8, 4),
               "mono8": (np.uint8, 1), "16UC1": (np.uint16, 1), "mono16": (np.uint16, 1), "32FC1": (np.float32, 1)}
    if enc not in layouts:
        raise ConfigError(f"{what} encoding {enc!r} is not supported; use one of {sorted(layouts)}")
    dtype, ch = layouts[enc]
    data = _get(msg, "data")
    buf = data if isinstance(data, np.ndarray) else np.frombuffer(bytes(data), np.uint8)
    buf = np.ascontiguousarray(buf, dtype=np.uint8).reshape(-1)
    row = w * ch * np.dtype(dtype).itemsize
    if step < row or buf.size < step * h:
        raise ShapeError(f"{what} {w}x{h} {enc}: step {step} and {buf.size} data bytes do not hold {h} rows of "
                         f"{row} bytes")
    rows = buf[: step * h].reshape(h, step)[:, :row]
    big = bool(_get(msg, "is_bigendian")) if (isinstance(msg, Mapping) and "is_bigendian" in msg) or hasattr(
        msg, "is_bigendian") else False
    arr = np.ascontiguousarray(rows).view(np.dtype(dtype).newbyteorder(">" if big else "<"))
    return arr.reshape(h, w, ch).astype(dtype), enc


def frame_from_ros(color_msg: Any, depth_msg: Any, camera_info_msg: Any, *, depth_scale_m: float | None = None,
                   base_from_tcp: Transform | None = None, frame_id: str = "") -> RGBDFrame:
    """An :class:`RGBDFrame` from a colour image, the depth image aligned to it, and the colour CameraInfo.

    Parameters
    ----------
    color_msg : sensor_msgs/msg/Image
        ``rgb8``, ``bgr8``, ``rgba8``, ``bgra8`` or ``mono8``.
    depth_msg : sensor_msgs/msg/Image
        Registered to the colour camera (realsense2_camera's ``aligned_depth_to_color/image_raw``), same
        size: ``16UC1`` raw units times ``depth_scale_m``, or ``32FC1`` metres (NaN = no reading).
    camera_info_msg : sensor_msgs/msg/CameraInfo
        Of the colour camera.
    depth_scale_m : float, optional
        Metres per raw 16-bit depth unit; required for ``16UC1``. realsense2_camera publishes the
        device's units: 1e-3 for a D435/D415/D455, 1e-4 for a D405 by default — take it from the
        rig file (``CameraRig.depth_scale``).
    base_from_tcp : Transform, optional
        The robot's TCP pose at the image's stamp.
    frame_id : str
        Identifier of the frame (e.g. the stamp).

    Raises
    ------
    ConfigError
        An unsupported encoding; ``16UC1`` depth without ``depth_scale_m``.
    ShapeError
        Images of different sizes, or not the size of the CameraInfo.
    """
    intr = intrinsics_from_camera_info(camera_info_msg)
    color, cenc = _image_array(color_msg, "colour image")
    depth, denc = _image_array(depth_msg, "depth image")
    if denc not in ("16UC1", "mono16", "32FC1"):
        raise ConfigError(f"depth image encoding {denc!r} is not depth; use 16UC1 (with depth_scale_m) or 32FC1")
    if color.shape[:2] != depth.shape[:2] or color.shape[:2] != (intr.height, intr.width):
        raise ShapeError(f"colour {color.shape[1]}x{color.shape[0]}, depth {depth.shape[1]}x{depth.shape[0]} and "
                         f"CameraInfo {intr.width}x{intr.height} differ; subscribe to the depth aligned to colour "
                         "(align_depth.enable: true) and the colour camera_info")
    if cenc.startswith("bgr"):
        color = color[:, :, 2::-1]
    elif cenc == "mono8":
        color = np.repeat(color, 3, axis=2)
    color = np.ascontiguousarray(color[:, :, :3])
    if denc == "32FC1":
        depth_m = np.nan_to_num(depth[:, :, 0], nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
        depth_m[depth_m < 0] = 0.0
    else:
        if depth_scale_m is None:
            raise ConfigError("16UC1 depth is in the camera's raw units; give depth_scale_m (metres per unit: 1e-3 "
                              "for a D435, 1e-4 for a D405 — CameraRig.depth_scale)")
        scale = _number(depth_scale_m, "depth_scale_m", "metres per unit")
        if not 1e-6 <= scale <= 0.01:
            raise UnitsError(f"depth_scale_m = {scale} is not metres per depth unit (want 1e-3 for a D435, "
                             "1e-4 for a D405)")
        depth_m = (depth[:, :, 0].astype(np.float32) * np.float32(scale)).astype(np.float32)
    stamp = _get(_get(color_msg, "header"), "stamp")
    t = float(_get(stamp, "sec")) + 1e-9 * float(_get(stamp, "nanosec"))
    return RGBDFrame(color, depth_m, intr, t, base_from_tcp, frame_id)


# ================================================================================================
# rosbags: message objects and CDR
# ================================================================================================
def _typesys():
    try:
        from rosbags import typesys
    except ImportError:
        raise MissingDependencyError("rosbags", "bags", "ROS 2 message objects, CDR and bags") from None
    return typesys


def moveit_typestore(distro: str = "humble"):
    """A rosbags ``Typestore`` of a ROS 2 distribution with the MoveIt grasp messages registered.

    The stock store already has ``geometry_msgs``, ``sensor_msgs``, ``std_msgs``, ``builtin_interfaces`` and
    ``trajectory_msgs``; this adds ``moveit_msgs/msg/GripperTranslation`` and ``moveit_msgs/msg/Grasp``
    from :data:`MOVEIT_MSG_DEFINITIONS`. Each call returns a new store.

    Parameters
    ----------
    distro : {"humble", "jazzy"}

    Raises
    ------
    MissingDependencyError
        rosbags is not installed (``pip install 'graspseg[bags]'``).
    ConfigError
        Another distribution name.
    """
    typesys = _typesys()
    if distro not in _STORES:
        raise ConfigError(f"unknown ROS 2 distribution {distro!r}; choose one of {sorted(_STORES)}")
    store = typesys.get_typestore(getattr(typesys.Stores, _STORES[distro]))
    for name, text in MOVEIT_MSG_DEFINITIONS.items():
        store.register(typesys.get_types_from_msg(text, name))
    return store


_DTYPES = {"bool": np.bool_, "byte": np.uint8, "char": np.uint8, "octet": np.uint8, "int8": np.int8,
           "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32,
           "int64": np.int64, "uint64": np.uint64, "float32": np.float32, "float64": np.float64}
_BASE, _NAME, _ARRAY, _SEQUENCE = 1, 2, 3, 4  # rosbags' Nodetype values


def _msgtype(name: str) -> str:
    if not isinstance(name, str) or name.count("/") not in (1, 2):
        raise ConfigError(f"message type must be 'package/msg/Type' (or 'package/Type'), got {name!r}")
    pkg, *_, typ = name.split("/")
    return f"{pkg}/msg/{typ}"


def _base_type(detail: Any) -> str:
    return detail[0] if isinstance(detail, tuple) else detail


def _scalar(typename: str, v: Any, path: str) -> Any:
    if typename in ("string", "wstring"):
        if not isinstance(v, str):
            raise InputError(f"{path} must be a string, got {type(v).__name__} {v!r}")
        return v
    if typename == "bool":
        if not isinstance(v, bool | np.bool_):
            raise InputError(f"{path} must be true or false, got {v!r}")
        return bool(v)
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
        raise InputError(f"{path} must be a number ({typename}), got {type(v).__name__} {v!r}")
    if typename.startswith("float"):
        return float(v)
    if float(v) != math.floor(float(v)):
        raise InputError(f"{path} must be a whole number ({typename}), got {v!r}")
    info = np.iinfo(_DTYPES[typename])
    if not info.min <= int(v) <= info.max:
        raise InputError(f"{path} = {v} does not fit {typename} [{info.min}, {info.max}]")
    return int(v)


def _field(store, desc: tuple, v: Any, path: str) -> Any:
    kind, detail = desc
    if kind == _BASE:
        return _scalar(_base_type(detail), v, path)
    if kind == _NAME:
        return _build(store, detail, v, path)
    sub, length = detail
    if isinstance(v, str | bytes | Mapping) or not isinstance(v, Sequence | np.ndarray):
        raise InputError(f"{path} must be a list, got {type(v).__name__}")
    if kind == _ARRAY and len(v) != length:
        raise ShapeError(f"{path} must have exactly {length} elements, got {len(v)}")
    if kind == _SEQUENCE and length and len(v) > length:
        raise ShapeError(f"{path} holds at most {length} elements, got {len(v)}")
    subkind, subdetail = sub
    if subkind == _BASE:
        t = _base_type(subdetail)
        if t in ("string", "wstring"):
            return [_scalar(t, x, f"{path}[{i}]") for i, x in enumerate(v)]
        return np.asarray([_scalar(t, x, f"{path}[{i}]") for i, x in enumerate(v)], dtype=_DTYPES[t])
    return [_field(store, sub, x, f"{path}[{i}]") for i, x in enumerate(v)]


def _build(store, name: str, value: Any, path: str) -> Any:
    if not isinstance(value, Mapping):
        raise InputError(f"{path} must be a mapping of the fields of {name}, got {type(value).__name__}")
    _, fields = store.fielddefs[name]
    names = [f for f, _ in fields]
    unknown = sorted(set(value) - set(names))
    missing = [f for f in names if f not in value]
    if unknown or missing:
        raise InputError(f"{path} ({name}): " + "; ".join(
            s for s in (f"unknown field(s) {unknown}" if unknown else "",
                        f"missing field(s) {missing}" if missing else "") if s) + f"; its fields are {names}")
    return store.types[name](**{f: _field(store, d, value[f], f"{path}.{f}") for f, d in fields})


def to_rosbags(msg_dict: Mapping, msgtype: str, typestore=None) -> Any:
    """A rosbags message object (nested) from a dict shaped like the message.

    Parameters
    ----------
    msg_dict : mapping
        Every field of ``msgtype`` (no more, no fewer), nested messages as mappings, arrays as lists.
    msgtype : str
        ``"geometry_msgs/msg/PoseStamped"`` (``"geometry_msgs/PoseStamped"`` also works).
    typestore : rosbags Typestore, optional
        Default :func:`moveit_typestore` (ROS 2 Humble + MoveIt). Serialise the result with
        ``typestore.serialize_cdr(msg, msgtype)``.

    Raises
    ------
    MissingDependencyError
        rosbags is not installed.
    ConfigError
        The store does not know ``msgtype``.
    InputError
        Missing or unknown fields, or a value of the wrong kind (the message names the field's path).
    ShapeError
        A fixed-size array of the wrong length.
    """
    _typesys()
    store = moveit_typestore() if typestore is None else typestore
    name = _msgtype(msgtype)
    if name not in store.fielddefs:
        raise ConfigError(f"the type store has no message {name!r}; use graspseg.ros.moveit_typestore() for the "
                          "MoveIt messages, or register the definition with store.register(get_types_from_msg(...))")
    return _build(store, name, msg_dict, name.rsplit("/", 1)[-1])


def from_rosbags(msg: Any) -> Any:
    """A rosbags (or any dataclass) message back to the plain-dict shape of this module."""
    if dataclasses.is_dataclass(msg) and not isinstance(msg, type):
        return {f.name: from_rosbags(getattr(msg, f.name)) for f in dataclasses.fields(msg)
                if not f.name.startswith("__")}
    if isinstance(msg, np.ndarray):
        return msg.tolist()
    if isinstance(msg, list | tuple):
        return [from_rosbags(x) for x in msg]
    if isinstance(msg, np.generic):
        return msg.item()
    return msg
