"""The frame-folder layout: ``color.png``, ``depth.png``, ``camera.json``, optional ``masks/`` + ``objects.json``.

See ``shared/data/README.md``. Depth PNGs are 16-bit raw units; metres = raw × ``depth_scale``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.camera import CameraIntrinsics, check_depth_scale
from ..core.errors import ConfigError, InputError, UnitsError
from ..core.frame import RGBDFrame
from ..core.io import atomic_write_json
from ..core.transform import BASE, TCP, Transform
from ..core.validate import as_number, read_data_file
from .images import read_color, read_depth_raw, read_mask, write_png

#: Farthest depth reading accepted from a file, metres (beyond any RGB-D camera's range).
MAX_DEPTH_M = 100.0
#: A depth image whose farthest reading is closer than this (metres) was decoded with the wrong scale.
MIN_MAX_DEPTH_M = 0.01


@dataclass(frozen=True)
class GroundTruthObject:
    """One annotated object of a frame folder."""

    id: int
    name: str
    mask: np.ndarray  # (H, W) bool
    camera_from_object: Transform | None = None


def _read_json(path: Path, what: str) -> dict | list:
    if not path.exists():
        raise InputError(f"{what} {path} does not exist")
    return read_data_file(path, what, kind="json")


def load_frame_folder(folder: str | Path) -> RGBDFrame:
    """Read one frame folder into an :class:`RGBDFrame` (depth in metres)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"frame folder {folder} does not exist or is not a directory")
    cam_path = folder / "camera.json"
    cam = _read_json(cam_path, "camera file")
    if not isinstance(cam, dict):
        raise ConfigError(f"{cam_path}: expected a JSON object with width, height, fx, fy, cx, cy and depth_scale, "
                          f"got {type(cam).__name__}")
    intr = CameraIntrinsics.from_dict(cam, source=str(cam_path))
    if "depth_scale" not in cam:
        raise ConfigError(f"{cam_path}: missing 'depth_scale' (metres per raw depth unit, e.g. 0.001)")
    depth_scale = check_depth_scale(cam["depth_scale"], field=f"{cam_path}: depth_scale")
    timestamp_s = as_number(cam.get("timestamp_s", 0.0), field="timestamp_s", unit="seconds", source=str(cam_path))
    depth_path = folder / "depth.png"
    if not depth_path.exists() and (folder / "depth.npy").exists():
        depth_path = folder / "depth.npy"
    pose = None
    if cam.get("base_from_tcp") is not None:
        pose = Transform.from_dict(cam["base_from_tcp"], to_frame=BASE, from_frame=TCP,
                                   source=f"{cam_path}: base_from_tcp")
    return frame_from_files(
        folder / "color.png",
        depth_path,
        depth_scale=depth_scale,
        intrinsics=intr,
        frame_id=folder.name,
        timestamp_s=timestamp_s,
        base_from_tcp=pose,
        meta={"source": str(cam.get("source", folder)), "folder": str(folder),
              "depth_scale": _device_depth_scale(cam, depth_scale, cam_path)},
    )


def _device_depth_scale(cam: dict, depth_scale: float, cam_path: Path) -> float | None:
    """The camera's own depth scale: ``device_depth_scale`` when the folder was re-encoded, else ``depth_scale``.

    A folder written by :func:`save_frame_folder` stores depth at its own encoding scale
    (``depth_scale_is_encoding: true``); the device's scale is then only known when it was recorded.
    """
    if "device_depth_scale" in cam:
        return check_depth_scale(cam["device_depth_scale"], field=f"{cam_path}: device_depth_scale")
    if cam.get("depth_scale_is_encoding") is True:
        return None
    return depth_scale


def frame_from_files(
    color_path: str | Path,
    depth_path: str | Path,
    *,
    depth_scale: float,
    intrinsics: CameraIntrinsics | str | Path,
    frame_id: str = "",
    timestamp_s: float = 0.0,
    base_from_tcp: Transform | None = None,
    meta: dict | None = None,
) -> RGBDFrame:
    """Build a frame from a colour PNG, a depth PNG (raw units) or NPY, a depth scale and intrinsics.

    A ``.npy`` depth is multiplied by ``depth_scale`` like a PNG; pass 1 for an array already in metres.
    """
    depth_scale = check_depth_scale(depth_scale)
    if not isinstance(intrinsics, CameraIntrinsics):
        intrinsics = CameraIntrinsics.from_json(intrinsics)
    color = read_color(color_path)
    raw = read_depth_raw(depth_path)
    if raw.ndim == 3 and raw.shape[2] == 1:
        raw = raw[:, :, 0]
    if raw.ndim != 2:
        raise InputError(f"depth {depth_path} must be a single-channel (H, W) image, got shape {raw.shape}")
    if np.issubdtype(raw.dtype, np.floating):
        bad = ~np.isfinite(raw)
        if bad.any():
            raise UnitsError(
                f"depth {depth_path} has {int(bad.sum())} NaN/inf values; encode missing readings as 0 "
                "(np.nan_to_num(depth, nan=0, posinf=0, neginf=0))"
            )
    if (raw < 0).any():
        raise UnitsError(
            f"depth {depth_path} has {int((raw < 0).sum())} negative values (min {float(raw.min()):g}); depth is a "
            "distance along the optical axis, >= 0, with 0 meaning no reading"
        )
    depth_m = raw.astype(np.float32) * np.float32(depth_scale)
    if depth_m.shape != color.shape[:2]:
        raise InputError(
            f"colour {color_path} is {color.shape[1]}x{color.shape[0]} but depth {depth_path} is "
            f"{depth_m.shape[1]}x{depth_m.shape[0]}; register depth to colour so both match"
        )
    valid = depth_m[depth_m > 0]
    if valid.size and float(valid.max()) > MAX_DEPTH_M:
        raise UnitsError(
            f"depth {depth_path} reaches {float(valid.max()):.1f} m at depth_scale {depth_scale:g} m per unit, beyond "
            f"the {MAX_DEPTH_M:g} m any RGB-D camera measures; the depth scale is too large for this file "
            "(millimetres stored and depth_scale 1 given? use 0.001)"
        )
    if valid.size and float(valid.max()) < MIN_MAX_DEPTH_M:
        raise UnitsError(
            f"depth {depth_path} reaches only {float(valid.max()) * 1000:.3f} mm at depth_scale {depth_scale:g} m per "
            f"unit; nothing is that close to a camera — depth already in metres needs depth_scale 1"
        )
    meta = {"depth_scale": depth_scale, **(meta or {})}
    if meta["depth_scale"] is None:
        del meta["depth_scale"]
    return RGBDFrame(color, depth_m, intrinsics, timestamp_s, base_from_tcp, frame_id or Path(color_path).parent.name, meta)


def load_ground_truth(folder: str | Path, shape: tuple[int, int] | None = None) -> list[GroundTruthObject]:
    """Ground-truth objects of a frame folder (empty list when it has none)."""
    folder = Path(folder)
    objs_path = folder / "objects.json"
    if not objs_path.exists():
        return [
            GroundTruthObject(int(p.stem.split("_", 1)[0]) if p.stem.split("_", 1)[0].isdigit() else i + 1,
                              p.stem.split("_", 1)[-1], read_mask(p, shape))
            for i, p in enumerate(sorted((folder / "masks").glob("*.png")))
        ]
    entries = _read_json(objs_path, "objects file")
    if not isinstance(entries, list):
        raise ConfigError(f"{objs_path}: expected a JSON list of objects, got {type(entries).__name__}")
    out = []
    for k, o in enumerate(entries):
        where = f"{objs_path}[{k}]"
        if not isinstance(o, dict) or any(f not in o for f in ("id", "name", "mask")):
            raise ConfigError(f"{where}: each object needs 'id' (int), 'name' and 'mask' (PNG path), got {str(o)[:80]}")
        if isinstance(o["id"], bool) or not isinstance(o["id"], int):
            raise ConfigError(f"{where}: id is {o['id']!r}; expected an integer")
        if not isinstance(o["mask"], str):
            raise ConfigError(f"{where}: mask is {o['mask']!r}; expected a PNG path relative to the folder")
        pose = None
        if o.get("camera_from_object") is not None:
            pose = Transform.from_dict({"matrix": o["camera_from_object"]}, to_frame="camera_color_optical",
                                       from_frame="object", source=f"{where}: camera_from_object")
        out.append(GroundTruthObject(o["id"], str(o["name"]), read_mask(folder / o["mask"], shape), pose))
    return out


def save_frame_folder(
    frame: RGBDFrame,
    folder: str | Path,
    *,
    depth_scale: float = 1e-4,
    objects: list[GroundTruthObject] | None = None,
    extra: dict | None = None,
) -> Path:
    """Write ``frame`` in the frame-folder layout (each file written atomically; camera.json last)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    check_depth_scale(depth_scale)
    raw = np.round(frame.depth_m / depth_scale)
    if raw.max(initial=0) > 65535:
        raise InputError(
            f"depth up to {frame.depth_m.max():.2f} m does not fit 16 bits at depth_scale {depth_scale}; use a larger scale"
        )
    write_png(folder / "color.png", frame.color)
    write_png(folder / "depth.png", raw.astype(np.uint16))
    if objects:
        entries = []
        for o in objects:
            rel = f"masks/{o.id}_{o.name}.png"
            write_png(folder / rel, o.mask)
            e = {"id": o.id, "name": o.name, "mask": rel}
            if o.camera_from_object is not None:
                e["camera_from_object"] = o.camera_from_object.matrix.tolist()
            entries.append(e)
        atomic_write_json(folder / "objects.json", entries)
    cam = frame.intrinsics.to_dict() | {"depth_scale": depth_scale, "depth_scale_is_encoding": True,
                                        "timestamp_s": frame.timestamp_s}
    if frame.meta.get("depth_scale") is not None:
        cam["device_depth_scale"] = float(frame.meta["depth_scale"])
    if frame.base_from_tcp is not None:
        cam["base_from_tcp"] = frame.base_from_tcp.to_dict()
    cam.update(extra or {})
    atomic_write_json(folder / "camera.json", cam)
    return folder
