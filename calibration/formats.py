"""Files: robot poses (JSON lines), image folders, the rig YAML, easy_handeye2 ``.calib`` and
``static_transform_publisher`` lines.

Quaternions in every file here are in ``quat_xyzw`` order (x, y, z, w), as ROS and scipy use.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np

from graspseg.core.camera import CameraRig
from graspseg.core.errors import CalibrationError, GraspsegError, UnitsError
from graspseg.core.io import atomic_write_text
from graspseg.core.transform import CAMERA, TCP, Transform
from graspseg.core.validate import MAX_TCP_FROM_CAMERA_M, as_float_array, check_translation_plausible

from .handeye import as_base_from_tcp

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_DEPTH_TAGS = ("_depth",)


# --- robot poses --------------------------------------------------------------------------------------
def parse_pose_record(rec: dict, *, where: str = "pose") -> Transform:
    """One pose record: ``{"base_from_tcp": 4x4}`` or ``{"xyz_m"|"xyz": [3], "quat_xyzw": [4]}`` (metres)."""
    if not isinstance(rec, dict):
        raise CalibrationError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    if "quat_wxyz" in rec:
        raise CalibrationError(
            f"{where}: got 'quat_wxyz'; this reader wants 'quat_xyzw' (x, y, z, w) — reorder the quaternion"
        )
    if str(rec.get("units", "m")).lower() not in ("m", "metre", "meter", "metres", "meters"):
        raise CalibrationError(f"{where}: units {rec['units']!r} given; poses must be in metres ('units': 'm')")
    if "base_from_tcp" in rec:
        m = rec["base_from_tcp"]
        if isinstance(m, dict):
            rec = m
        else:
            arr = _numbers(m, (None,) if not (isinstance(m, list) and m and isinstance(m[0], list)) else (None, None),
                           "base_from_tcp", "metres (4x4 row-major)", where)
            if arr.shape not in ((4, 4), (16,)):
                raise CalibrationError(f"{where}: base_from_tcp has shape {arr.shape}; expected 4x4 (row-major)")
            return _checked(arr.reshape(4, 4), where)
    xyz = rec.get("xyz_m", rec.get("xyz"))
    q = rec.get("quat_xyzw")
    if xyz is None or q is None:
        raise CalibrationError(
            f"{where}: needs 'base_from_tcp' (4x4, metres) or 'xyz_m' + 'quat_xyzw'; got keys {sorted(rec)}"
        )
    q = _numbers(q, (None,), "quat_xyzw", "a unit quaternion (x, y, z, w)", where)
    xyz = _numbers(xyz, (None,), "xyz_m", "metres", where)
    if q.size != 4 or xyz.size != 3:
        raise CalibrationError(f"{where}: xyz needs 3 numbers and quat_xyzw 4, got {xyz.size} and {q.size}")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > 1e-3:
        raise CalibrationError(
            f"{where}: quat_xyzw {q.tolist()} has norm {norm:.4f}; poses must be rigid (a unit quaternion)"
        )
    m = np.eye(4)
    from scipy.spatial.transform import Rotation

    m[:3, :3] = Rotation.from_quat(q).as_matrix()
    m[:3, 3] = xyz
    return _checked(m, where)


def _numbers(value, shape, field: str, unit: str, where: str) -> np.ndarray:
    try:
        return as_float_array(value, shape, field=field, unit=unit, source=where)
    except GraspsegError as e:
        raise CalibrationError(str(e)) from None


def _checked(m: np.ndarray, where: str) -> Transform:
    try:
        return as_base_from_tcp(m)
    except CalibrationError as e:
        raise CalibrationError(f"{where}: {e}") from None


def read_poses_jsonl(path: str | Path) -> tuple[list[Transform], list[str | None]]:
    """Read robot poses, one JSON object per line (blank lines and ``#`` comments ignored).

    Returns the ``base_from_tcp`` transforms and each line's optional ``"image"`` name.
    """
    path = Path(path)
    poses, images = [], []
    for lineno, line in enumerate(read_text(path, "poses file").splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        try:
            rec = json.loads(s)
        except json.JSONDecodeError as e:
            raise CalibrationError(f"{path}:{lineno}: not valid JSON ({e.msg}); write one JSON object per line") from None
        poses.append(parse_pose_record(rec, where=f"{path}:{lineno}"))
        images.append(rec.get("image") if isinstance(rec, dict) else None)
    if not poses:
        raise CalibrationError(f"poses file {path} holds no poses")
    return poses, images


def read_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of ``path``; a missing, unreadable, directory or binary file is a CalibrationError."""
    path = Path(path)
    if not path.exists():
        raise CalibrationError(f"{what} {path} does not exist")
    if path.is_dir():
        raise CalibrationError(f"{what} {path} is a directory; give the path of a file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CalibrationError(f"{what} {path} is not a text file (binary or not UTF-8)") from None
    except OSError as e:
        raise CalibrationError(f"cannot read {what} {path}: {e.strerror or e}; check its permissions") from None


def _read_yaml(path: str | Path, what: str):
    import yaml

    text = read_text(path, what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CalibrationError(f"{what} {path} is not valid YAML: {' '.join(str(e).split())}") from None
    except RecursionError:
        raise CalibrationError(f"{what} {path} is nested too deeply to be a YAML file") from None


def write_poses_jsonl(path: str | Path, poses, images=None) -> Path:
    """Write ``base_from_tcp`` poses as JSON lines (``xyz_m``, ``quat_xyzw``, ``base_from_tcp``)."""
    lines = []
    for k, t in enumerate(poses):
        xyz, q = t.as_xyz_quat_xyzw()
        rec = {"xyz_m": xyz.tolist(), "quat_xyzw": q.tolist(), "base_from_tcp": t.matrix.tolist()}
        if images is not None:
            rec["image"] = images[k]
        lines.append(json.dumps(rec))
    return atomic_write_text(path, "\n".join(lines) + "\n")


def list_images(directory: str | Path) -> list[Path]:
    """Colour images in ``directory`` sorted by name (files ending ``_depth.*`` are depth, not colour)."""
    d = Path(directory)
    if not d.is_dir():
        raise CalibrationError(f"image folder {d} does not exist")
    files = sorted(
        p for p in d.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not any(p.stem.endswith(t) for t in _DEPTH_TAGS)
    )
    if not files:
        raise CalibrationError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {d}")
    return files


def depth_path_for(image: Path) -> Path | None:
    """The depth file that belongs to a colour image: ``<stem>_depth.npy`` (metres) or ``<stem>_depth.png``."""
    for suffix in (".npy", ".png"):
        p = image.with_name(image.stem + "_depth" + suffix)
        if p.is_file():
            return p
    return None


def pair_images_and_poses(images: list[Path], poses: list[Transform], pose_images: list[str | None]):
    """Pair images with poses: by the poses' ``image`` names when all lines have one, else by order."""
    if all(n is not None for n in pose_images):
        by_name = {p.name: p for p in images}
        missing = [n for n in pose_images if n not in by_name]
        if missing:
            raise CalibrationError(
                f"poses name images that are not in the folder: {missing[:5]}{' ...' if len(missing) > 5 else ''}"
            )
        return [by_name[n] for n in pose_images], poses
    if len(images) != len(poses):
        raise CalibrationError(
            f"{len(images)} images but {len(poses)} poses; give exactly one pose line per image in name order, "
            "or add an \"image\": \"<file name>\" field to every pose line"
        )
    return images, poses


# --- the rig file ------------------------------------------------------------------------------------
def rig_from_dict(d, *, source: str = "rig", need_hand_eye: bool = True) -> CameraRig:
    """Read a rig mapping with calibration-grade checks (units, missing fields) as CalibrationError."""
    if not isinstance(d, dict):
        raise CalibrationError(f"{source}: a rig file must be a mapping, got {type(d).__name__}")
    if need_hand_eye and d.get("tcp_from_camera") is None:
        raise CalibrationError(
            f"{source}: missing field 'tcp_from_camera'; the rig has no hand-eye calibration yet — run "
            "'graspseg-calibrate hand-eye --images DIR --poses poses.jsonl --rig-out rig.yaml'"
        )
    units = d.get("units", {})
    if isinstance(units, dict) and str(units.get("length", "m")).lower() not in ("m", "metre", "meter"):
        raise CalibrationError(
            f"{source}: units.length is {units.get('length')!r}; rig files are in metres — convert the "
            "translation (mm / 1000) and set units.length: m"
        )
    try:
        rig = CameraRig.from_dict(d, source=source)
    except GraspsegError as e:
        raise CalibrationError(
            f"{e}; see docs/calibration.md for the rig format (metres, pixels, quat_xyzw)"
        ) from None
    from .intrinsics import _check_pixels

    _check_pixels(rig.intrinsics, f"{source}: intrinsics")
    return rig


def load_rig(path: str | Path, *, need_hand_eye: bool = True) -> CameraRig:
    """Load a :class:`CameraRig` YAML with the checks of :func:`rig_from_dict`."""
    d = _read_yaml(path, "rig file")
    return rig_from_dict(d, source=str(path), need_hand_eye=need_hand_eye)


# --- easy_handeye2 and ROS ---------------------------------------------------------------------------
def to_easy_handeye2(
    tcp_from_camera: Transform,
    *,
    name: str = "graspseg_eye_in_hand",
    robot_base_frame: str = "base_link",
    robot_effector_frame: str = "tool0",
    tracking_base_frame: str = "camera_color_optical_frame",
    tracking_marker_frame: str = "board",
) -> dict:
    """easy_handeye2 ``.calib`` mapping of an eye-in-hand result (transform = effector <- camera, quat_xyzw)."""
    xyz, q = tcp_from_camera.as_xyz_quat_xyzw()
    return {
        "parameters": {
            "name": name,
            "calibration_type": "eye_in_hand",
            "robot_base_frame": robot_base_frame,
            "robot_effector_frame": robot_effector_frame,
            "tracking_base_frame": tracking_base_frame,
            "tracking_marker_frame": tracking_marker_frame,
            "freehand_robot_movement": False,
        },
        "transform": {
            "translation": {"x": float(xyz[0]), "y": float(xyz[1]), "z": float(xyz[2])},
            "rotation": {"x": float(q[0]), "y": float(q[1]), "z": float(q[2]), "w": float(q[3])},
        },
    }


def write_easy_handeye2(path: str | Path, tcp_from_camera: Transform, **frames) -> Path:
    import yaml

    return atomic_write_text(path, yaml.safe_dump(to_easy_handeye2(tcp_from_camera, **frames), sort_keys=False))


def from_easy_handeye2(d, *, source: str = ".calib") -> Transform:
    """``tcp_from_camera`` from an easy_handeye2 (or easy_handeye ROS 1) eye-in-hand calibration mapping."""
    if not isinstance(d, dict):
        raise CalibrationError(f"{source}: expected a mapping, got {type(d).__name__}")
    params = d.get("parameters", d)
    kind = params.get("calibration_type")
    eye_on_hand = params.get("eye_on_hand")
    if kind == "eye_on_base" or eye_on_hand is False:
        raise CalibrationError(
            f"{source}: this is an eye-on-base calibration (base <- camera); graspseg needs eye-in-hand "
            "(tcp <- camera) for a wrist camera"
        )
    tr = d.get("transform", d.get("transformation"))
    if not isinstance(tr, dict):
        raise CalibrationError(f"{source}: missing 'transform' with translation {{x,y,z}} and rotation {{x,y,z,w}}")
    try:
        if "translation" in tr:
            t, r = tr["translation"], tr["rotation"]
            xyz, q = [t["x"], t["y"], t["z"]], [r["x"], r["y"], r["z"], r["w"]]
        else:  # easy_handeye (ROS 1): {x, y, z, qx, qy, qz, qw}
            xyz, q = [tr["x"], tr["y"], tr["z"]], [tr["qx"], tr["qy"], tr["qz"], tr["qw"]]
    except (KeyError, TypeError) as e:
        raise CalibrationError(
            f"{source}: transform lacks field {e}; expected translation {{x,y,z}} (m) and rotation {{x,y,z,w}}"
        ) from None
    try:
        t = Transform.from_xyz_quat_xyzw(xyz, q, TCP, CAMERA)
    except GraspsegError as e:
        raise CalibrationError(f"{source}: {e}") from None
    try:
        check_translation_plausible(t.translation, MAX_TCP_FROM_CAMERA_M, name=t.name, source=source,
                                    override="convert the file to metres (easy_handeye2 files are in metres)")
    except UnitsError as e:
        raise CalibrationError(f"{e} (millimetres given?)") from None
    return t


def read_easy_handeye2(path: str | Path) -> Transform:
    d = _read_yaml(path, "calibration file")
    return from_easy_handeye2(d, source=str(path))


def static_transform_publisher_line(
    tcp_from_camera: Transform, *, parent_frame: str = "tool0", child_frame: str = "camera_color_optical_frame",
    ros2: bool = True,
) -> str:
    """A ROS ``static_transform_publisher`` command: ``x y z qx qy qz qw parent child`` (quat_xyzw order).

    ``ros2=True`` gives ``ros2 run tf2_ros static_transform_publisher --x .. --qw .. --frame-id parent
    --child-frame-id child``; ``ros2=False`` the positional form that ROS 1 and MoveIt launch files use.
    """
    xyz, q = tcp_from_camera.as_xyz_quat_xyzw()
    v = [f"{x:.6f}" for x in (*xyz, *q)]
    if ros2:
        names = ("x", "y", "z", "qx", "qy", "qz", "qw")
        args = " ".join(f"--{n} {x}" for n, x in zip(names, v, strict=True))
        return f"ros2 run tf2_ros static_transform_publisher {args} --frame-id {parent_frame} --child-frame-id {child_frame}"
    return f"static_transform_publisher {' '.join(v)} {parent_frame} {child_frame}"


def parse_static_transform_publisher(line: str) -> tuple[Transform, str, str]:
    """Parse either form written by :func:`static_transform_publisher_line` (quat_xyzw only).

    Returns ``tcp_from_camera`` and the parent and child frame names as written.
    """
    toks = line.split()
    if "--x" in toks or "--frame-id" in toks:
        opts = dict(re.findall(r"--([\w-]+)\s+(\S+)", line))
        if any(k in opts for k in ("roll", "pitch", "yaw")):
            raise CalibrationError("static transform with roll/pitch/yaw: give the quaternion form (--qx --qy --qz --qw)")
        try:
            vals = [float(opts[k]) for k in ("x", "y", "z", "qx", "qy", "qz", "qw")]
            parent, child = opts["frame-id"], opts["child-frame-id"]
        except KeyError as e:
            raise CalibrationError(f"static_transform_publisher line lacks --{e.args[0]}") from None
    else:
        nums = []
        rest = []
        for tok in toks:
            try:
                nums.append(float(tok))
            except ValueError:
                if nums:
                    rest.append(tok)
        if len(nums) == 6:
            raise CalibrationError(
                "static_transform_publisher line has 6 numbers (x y z yaw pitch roll); give the 7-number quaternion "
                "form x y z qx qy qz qw"
            )
        if len(nums) not in (7, 8) or len(rest) < 2:
            raise CalibrationError(
                f"cannot read static_transform_publisher line {line!r}; expected 'x y z qx qy qz qw parent child'"
            )
        vals, (parent, child) = nums[:7], rest[:2]
    try:
        t = Transform.from_xyz_quat_xyzw(vals[:3], vals[3:], TCP, CAMERA)
    except GraspsegError as e:
        raise CalibrationError(f"static_transform_publisher line: {e}") from None
    return t, parent, child
