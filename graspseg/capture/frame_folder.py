"""The frame-folder layout: ``color.png``, ``depth.png``, ``camera.json``, optional ``masks/`` + ``objects.json``.

See ``shared/data/README.md``. Depth PNGs are 16-bit raw units; metres = raw × ``depth_scale``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.camera import CameraIntrinsics, check_depth_scale
from ..core.errors import ConfigError, InputError
from ..core.frame import RGBDFrame
from ..core.io import atomic_write_json, read_json
from ..core.transform import BASE, TCP, Transform
from .images import read_color, read_depth_raw, read_mask, write_png


@dataclass(frozen=True)
class GroundTruthObject:
    """One annotated object of a frame folder."""

    id: int
    name: str
    mask: np.ndarray  # (H, W) bool
    camera_from_object: Transform | None = None


def _read_json(path: Path, what: str) -> dict | list:
    if not path.is_file():
        raise InputError(f"{what} {path} does not exist")
    return read_json(path, what)


def load_frame_folder(folder: str | Path) -> RGBDFrame:
    """Read one frame folder into an :class:`RGBDFrame` (depth in metres)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"frame folder {folder} does not exist or is not a directory")
    cam_path = folder / "camera.json"
    cam = _read_json(cam_path, "camera file")
    intr = CameraIntrinsics.from_dict(cam, source=str(cam_path))
    if "depth_scale" not in cam:
        raise ConfigError(f"{cam_path}: missing 'depth_scale' (metres per raw depth unit, e.g. 0.001)")
    depth_path = folder / "depth.png"
    if not depth_path.exists() and (folder / "depth.npy").exists():
        depth_path = folder / "depth.npy"
    pose = None
    if cam.get("base_from_tcp") is not None:
        pose = Transform.from_dict(cam["base_from_tcp"], to_frame=BASE, from_frame=TCP)
    return frame_from_files(
        folder / "color.png",
        depth_path,
        depth_scale=cam["depth_scale"],
        intrinsics=intr,
        frame_id=folder.name,
        timestamp_s=float(cam.get("timestamp_s", 0.0)),
        base_from_tcp=pose,
        meta={"source": cam.get("source", str(folder)), "folder": str(folder)},
    )


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
    if raw.ndim != 2:
        raise InputError(f"depth {depth_path} must be a single-channel (H, W) image, got shape {raw.shape}")
    depth_m = raw.astype(np.float32) * np.float32(depth_scale)
    if depth_m.shape != color.shape[:2]:
        raise InputError(
            f"colour {color_path} is {color.shape[1]}x{color.shape[0]} but depth {depth_path} is "
            f"{depth_m.shape[1]}x{depth_m.shape[0]}; register depth to colour so both match"
        )
    return RGBDFrame(color, depth_m, intrinsics, timestamp_s, base_from_tcp, frame_id or Path(color_path).parent.name, meta or {})


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
    out = []
    for o in _read_json(objs_path, "objects file"):
        pose = None
        if o.get("camera_from_object") is not None:
            pose = Transform(np.asarray(o["camera_from_object"], float), "camera_color_optical", "object")
        out.append(GroundTruthObject(int(o["id"]), str(o["name"]), read_mask(folder / o["mask"], shape), pose))
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
    cam = frame.intrinsics.to_dict() | {"depth_scale": depth_scale, "timestamp_s": frame.timestamp_s}
    if frame.base_from_tcp is not None:
        cam["base_from_tcp"] = frame.base_from_tcp.to_dict()
    cam.update(extra or {})
    atomic_write_json(folder / "camera.json", cam)
    return folder
