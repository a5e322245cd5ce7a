"""Grasp-set exporters and converters to the conventions of other grasp stacks.

graspseg's grasp frame: origin at the fingertip centre, +z approach, +x closing, +y = z × x
(``docs/grasp_frame.md``). Conversions (``R`` = our rotation, columns x, y, z; ``a`` = our z axis):

- **graspnetAPI** (``GraspGroup`` rows of 17 floats ``[score, width, height, depth, R_gn (9, row-major),
  t (3), object_id]``): approach = R_gn's x axis, closing = its y axis, so ``R_gn = R[:, [2, 0, 1]]``;
  ``t`` is the grasp point ``depth`` behind the fingertips: ``t = origin - depth * a``. ``width`` is the
  finger OPENING (graspnetAPI puts the inner finger faces at ±width/2), i.e. our ``opening_m``.
- **Contact-GraspNet** (``pred_grasps_cam`` 4×4, ``scores``, ``contact_pts``, ``gripper_openings``) and
  **M2T2** (``grasps``, ``grasp_confidence``, ``grasp_contacts``): same axes as ours (x = baseline from the
  contact towards the other finger, y = z × x, z = approach); both decode a grasp from a contact ``c``, the
  baseline ``x``, the approach ``z`` and the width ``w`` as ``t = c + w/2·x − 0.1034·z`` (Contact-GraspNet's
  and M2T2's ``build_6d_grasp``): the pose is the Panda hand frame, 0.1034 m behind the TCP (the pads' centre).
  We export the planned pose itself — the hand frame ``0.1034 + tcp_offset_m`` behind our fingertip origin, the
  pose the collision and table checks passed — and as ``c`` the −x contact on the pad baseline through the TCP,
  so the decoding rule holds exactly and a robot commanding the pose executes the checked grasp.
- **plain JSON**: 4×4 matrices in a named frame, width, score and margins.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import ConfigError, ShapeError
from ..core.io import atomic_write_json, read_json
from ..core.transform import BASE, CAMERA, GRASP
from .types import SCHEMA_VERSION, GraspSet

#: Contact-GraspNet's and M2T2's distance from the Panda hand frame to the finger baseline, metres.
CONTACT_GRASPNET_DEPTH_M = 0.1034
#: graspnetAPI's default gripper height (finger extent along its z axis), metres.
GRASPNET_HEIGHT_M = 0.02

_GN_FROM_OURS = [2, 0, 1]  # R_gn columns = our (z, x, y)
_OURS_FROM_GN = [1, 2, 0]  # our columns (x, y, z) = R_gn's (y, z, x)


def _poses(grasps: GraspSet, frame: str) -> np.ndarray:
    if frame == CAMERA:
        return grasps.camera_from_grasp
    if frame == BASE:
        if grasps.base_from_grasp is None:
            raise ShapeError("no base_from_grasp in this GraspSet: the frame had no robot pose or the rig no "
                             "tcp_from_camera; export in 'camera_color_optical' instead")
        return grasps.base_from_grasp
    raise ConfigError(f"export frame must be '{CAMERA}' or '{BASE}', got {frame!r}")


def grasp_depth_m(grasps: GraspSet) -> np.ndarray:
    """(N,) distance from the contact midpoint back to the fingertips along the approach, metres (>= 0)."""
    mid = grasps.contacts_in_camera.mean(axis=1)
    origin = grasps.camera_from_grasp[:, :3, 3]
    return np.maximum(0.0, -np.einsum("ni,ni->n", mid - origin, grasps.approach))


# --- graspnetAPI ---------------------------------------------------------------------------------
def to_graspnet_array(grasps: GraspSet, *, frame: str = CAMERA, depth_m: float | np.ndarray | None = None,
                      height_m: float = GRASPNET_HEIGHT_M, object_id: int = -1) -> np.ndarray:
    """graspnetAPI ``GraspGroup`` array, (N, 17) float64.

    Parameters
    ----------
    depth_m : float or (N,) or None
        graspnetAPI ``depth`` (how far the fingertips reach past the grasp point); None = from the
        contacts (:func:`grasp_depth_m`).
    """
    poses = _poses(grasps, frame)
    n = len(grasps)
    depth = grasp_depth_m(grasps) if depth_m is None else np.broadcast_to(np.asarray(depth_m, float), (n,))
    r = poses[:, :3, :3]
    a = r[:, :, 2]
    out = np.zeros((n, 17))
    out[:, 0] = grasps.score
    out[:, 1] = grasps.opening_m  # graspnetAPI's width is the finger opening, not the object width
    out[:, 2] = height_m
    out[:, 3] = depth
    out[:, 4:13] = r[:, :, _GN_FROM_OURS].reshape(n, 9)
    out[:, 13:16] = poses[:, :3, 3] - depth[:, None] * a
    out[:, 16] = object_id
    return out


def from_graspnet_array(array: np.ndarray) -> dict:
    """Our 4×4 poses (same frame as the rows) and widths from graspnetAPI (N, 17) rows.

    Returns
    -------
    dict with ``poses`` (N, 4, 4) (origin at the fingertip centre, +z approach, +x closing),
    ``opening_m`` (N,) (graspnetAPI's ``width``: the finger opening), ``score`` (N,), ``depth_m`` (N,),
    ``object_id`` (N,) int.
    """
    arr = np.asarray(array, np.float64)
    if arr.ndim == 1 and arr.size == 17:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 17:
        raise ShapeError(f"graspnetAPI grasp arrays are (N, 17), got {arr.shape}")
    n = len(arr)
    r_gn = arr[:, 4:13].reshape(n, 3, 3)
    depth = arr[:, 3]
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, :3, :3] = r_gn[:, :, _OURS_FROM_GN]
    poses[:, :3, 3] = arr[:, 13:16] + depth[:, None] * r_gn[:, :, 0]
    return {"poses": poses, "opening_m": arr[:, 1].copy(), "score": arr[:, 0].copy(), "depth_m": depth.copy(),
            "object_id": arr[:, 16].astype(int)}


# --- Contact-GraspNet / M2T2 ---------------------------------------------------------------------
def _tcp_offset(grasps: GraspSet, tcp_offset_m: float | None) -> float:
    """The TCP-to-fingertip distance of the grasp set's gripper (or the one given), metres."""
    if tcp_offset_m is not None:
        return float(tcp_offset_m)
    from .gripper import load_gripper

    try:
        return float(load_gripper(grasps.gripper).tcp_offset_m)
    except ConfigError:
        raise ConfigError(f"the grasp set's gripper {grasps.gripper!r} is not a known model, so its TCP is unknown; "
                          "pass tcp_offset_m (the distance from the TCP the format's 0.1034 m refers to, the pads' "
                          "centre, to our fingertip origin, metres)") from None


def _hand_frame_grasps(grasps: GraspSet, frame: str, gripper_depth_m: float, tcp_offset_m: float | None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The planned hand poses (N, 4, 4) and the baseline contacts (N, 3) in ``frame``, such that
    ``pose_t = contact + w/2·x − gripper_depth·z`` holds exactly.

    The hand frame is ``gripper_depth_m`` behind the TCP, and the TCP ``tcp_offset_m`` behind our fingertip
    origin: ``pose_t = o − (gripper_depth + tcp_offset)·z``. The contact is where the pad baseline through the
    TCP meets the −x finger's contact line: ``c = TCP − w/2·x`` (our contact at −x moved along the finger onto
    the baseline; the origin is centred between the contacts).
    """
    poses = _poses(grasps, frame).copy()
    x, z = poses[:, :3, 0], poses[:, :3, 2]
    back = float(gripper_depth_m) + _tcp_offset(grasps, tcp_offset_m)
    poses[:, :3, 3] = poses[:, :3, 3] - back * z
    contacts = poses[:, :3, 3] + float(gripper_depth_m) * z - 0.5 * grasps.width_m[:, None] * x
    return poses, contacts


def to_contact_graspnet(grasps: GraspSet, *, frame: str = CAMERA, gripper_depth_m: float = CONTACT_GRASPNET_DEPTH_M,
                        tcp_offset_m: float | None = None) -> dict:
    """Contact-GraspNet's output dict, poses in ``frame``.

    ``pred_grasps_cam`` (N, 4, 4): the planned hand poses (the Panda hand frame, ``gripper_depth_m`` behind the
    TCP; the TCP is ``tcp_offset_m`` behind our fingertip origin, default: the grasp set's gripper model, 8.6 mm
    on the Franka Hand), i.e. exactly the pose the collision and table checks passed; ``contact_pts`` (N, 3):
    the −x contact on the pad baseline through the TCP, so that Contact-GraspNet's decoding
    ``t = c + w/2·x − 0.1034·z`` gives back ``pred_grasps_cam``; ``scores`` (N,); ``gripper_openings`` (N,): the
    measured width between the contacts (its predicted grasp width)."""
    poses, contacts = _hand_frame_grasps(grasps, frame, gripper_depth_m, tcp_offset_m)
    return {"pred_grasps_cam": poses, "scores": grasps.score.copy(), "contact_pts": contacts,
            "gripper_openings": grasps.width_m.copy()}


def to_m2t2(grasps: GraspSet, *, frame: str = BASE, gripper_depth_m: float = CONTACT_GRASPNET_DEPTH_M,
            tcp_offset_m: float | None = None) -> dict:
    """M2T2's grasp outputs: ``grasps`` (N, 4, 4), ``grasp_confidence`` (N,), ``grasp_contacts`` (N, 3).

    M2T2 works in a world frame (our ``base``, the default); pass ``frame="camera_color_optical"`` for camera
    poses. Same hand poses and decoding rule as :func:`to_contact_graspnet` (``t = c + w/2·x − 0.1034·z``).
    """
    poses, contacts = _hand_frame_grasps(grasps, frame, gripper_depth_m, tcp_offset_m)
    return {"grasps": poses, "grasp_confidence": grasps.score.copy(), "grasp_contacts": contacts}


def from_contact_graspnet(pred_grasps_cam: np.ndarray, gripper_openings: np.ndarray | None = None, *,
                          gripper_depth_m: float = CONTACT_GRASPNET_DEPTH_M, tcp_offset_m: float | None = None) -> dict:
    """Our poses from Contact-GraspNet / M2T2 4×4 hand-frame poses: the origin moved ``gripper_depth_m`` (to the
    TCP) plus ``tcp_offset_m`` (to the fingertips; default the Franka Hand's, as both predict Panda grasps) along
    the approach, axes unchanged."""
    if tcp_offset_m is None:
        from .gripper import load_gripper

        tcp_offset_m = load_gripper("franka_hand").tcp_offset_m
    p = np.asarray(pred_grasps_cam, np.float64).reshape(-1, 4, 4).copy()
    p[:, :3, 3] = p[:, :3, 3] + (float(gripper_depth_m) + float(tcp_offset_m)) * p[:, :3, 2]
    out = {"poses": p}
    if gripper_openings is not None:
        out["width_m"] = np.asarray(gripper_openings, np.float64).reshape(-1)
    return out


# --- plain JSON ------------------------------------------------------------------------------------
def to_plain_dict(grasps: GraspSet, *, frame: str = CAMERA) -> dict:
    """4×4 pose + width per grasp, with ``schema_version``, ``units`` and frame names."""
    poses = _poses(grasps, frame)
    return {
        "schema_version": SCHEMA_VERSION,
        "units": {"length": "m", "margins": "mm"},
        "frame": frame,
        "child_frame": GRASP,
        "grasp_frame": "origin at the fingertip centre, +z approach, +x closing, +y = z x x",
        "gripper": grasps.gripper,
        "boundary_error_px": grasps.boundary_error_px,
        "grasps": [
            {"pose": poses[i].tolist(), "width_m": float(grasps.width_m[i]), "score": float(grasps.score[i]),
             "accepted": bool(grasps.accepted[i]), "rejected_because": str(grasps.rejected_because[i]),
             "worst_case_margin_mm": float(grasps.worst_case_margin_mm[i])}
            for i in range(len(grasps))
        ],
    }


def write_plain_json(path: str | Path, grasps: GraspSet, *, frame: str = CAMERA) -> Path:
    """Write :func:`to_plain_dict` atomically."""
    return atomic_write_json(path, to_plain_dict(grasps, frame=frame))


def read_plain_json(path: str | Path) -> dict:
    """Read a file written by :func:`write_plain_json`: ``poses`` (N, 4, 4), ``width_m``, ``score``, ``frame``."""
    path = Path(path)
    d = read_json(path, "grasp file")
    if d.get("schema_version") != SCHEMA_VERSION:
        raise ConfigError(f"grasp file {path}: schema_version {d.get('schema_version')!r} is not {SCHEMA_VERSION}")
    g = d.get("grasps", [])
    return {
        "frame": d.get("frame"),
        "poses": np.asarray([x["pose"] for x in g], np.float64).reshape(-1, 4, 4),
        "width_m": np.asarray([x["width_m"] for x in g], np.float64),
        "score": np.asarray([x["score"] for x in g], np.float64),
        "accepted": np.asarray([x["accepted"] for x in g], bool),
    }
