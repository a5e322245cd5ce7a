"""LeRobot-style data sets that carry depth, read as episodes (pyarrow, no lerobot install needed).

Layout (LeRobot v2.x / v3.0)::

    DATASET/
      meta/info.json       # {"codebase_version", "fps", "features": {name: {"dtype", "shape", "info"?}}, "data_path"?}
      data/chunk-000/...   # Parquet: one row per frame with "episode_index", "frame_index", "timestamp" and
                           #   image features as {"bytes": PNG/JPEG, "path": ...}

Colour and depth must be ``image`` features (stored in the Parquet files; depth as 16-bit PNG). Colour
stored as ``video`` is refused with a message (depth cannot be a lossy video). The data set has no
standard place for intrinsics: they come from :attr:`SourceOptions.intrinsics` (a JSON file) or from the
colour feature's ``info`` (``fx``, ``fy``, ``cx``, ``cy``); the depth scale from the depth feature's
``info.depth_scale``, :attr:`SourceOptions.depth_scale`, or 1e-3 (millimetres).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from ..core.camera import CameraIntrinsics, CameraRig
from ..core.errors import ConfigError, InputError, MissingDependencyError
from ..core.frame import RGBDFrame
from .sources import EpisodeRef, SourceOptions, share_intrinsics


def _pq():
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError("pyarrow", "analysis", "reading LeRobot-style data sets") from None
    return pq


def _info(root: Path) -> dict:
    path = root / "meta" / "info.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{path} cannot be read as JSON: {e}") from None
    if not isinstance(info, dict) or not isinstance(info.get("features"), dict):
        raise ConfigError(f"{path}: expected a JSON object with 'features' (a LeRobot data set's meta/info.json)")
    return info


def _data_files(root: Path) -> list[Path]:
    files = sorted((root / "data").rglob("*.parquet"))
    if not files:
        raise InputError(f"{root}: no Parquet files under data/; not a LeRobot-style data set with frames")
    return files


def episode_keys(root: Path) -> list[str]:
    """Episode indices of the data set, as strings, in order."""
    pq = _pq()
    keys: set[int] = set()
    for f in _data_files(Path(root)):
        col = pq.read_table(f, columns=["episode_index"]).column(0).to_pylist()
        keys.update(int(k) for k in col)
    return [str(k) for k in sorted(keys)]


def _pick_features(info: dict, options: SourceOptions, where: Path) -> tuple[str, str]:
    feats = info["features"]
    images = {k: v for k, v in feats.items() if isinstance(v, dict) and v.get("dtype") in ("image", "video")}
    listing = ", ".join(f"{k} ({v.get('dtype')})" for k, v in images.items()) or "none"
    depth = options.depth_key or next((k for k in sorted(images) if "depth" in k.lower()), None)
    if depth is None or depth not in images:
        raise InputError(f"{where}: no depth image feature (a feature with 'depth' in its name); image features: "
                         f"{listing}; name one with --depth-key")
    color = options.color_key or next((k for k in sorted(images) if "depth" not in k.lower()), None)
    if color is None or color not in images:
        raise InputError(f"{where}: no colour image feature; image features: {listing}; name one with --color-key")
    for key in (color, depth):
        if images[key].get("dtype") != "image":
            raise ConfigError(f"{where}: feature {key} is stored as {images[key].get('dtype')!r}; graspseg reads image "
                              "features stored in the Parquet files (depth must be lossless 16-bit PNG)")
    return color, depth


def _decode(cell, what: str) -> np.ndarray:
    data = cell.get("bytes") if isinstance(cell, dict) else cell
    if not data:
        raise InputError(f"{what}: no image bytes")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{what}: the image could not be decoded")
    return img


class LeRobotEpisode:
    """One episode of a LeRobot-style data set as an :class:`~graspseg.capture.sources.EpisodeSource`."""

    def __init__(self, ref: EpisodeRef, options: SourceOptions | None = None) -> None:
        options = options or SourceOptions()
        self.ref = ref
        self.problems: list[str] = []
        self.sync: dict = {}
        self._intrinsics = None
        root = Path(ref.path)
        info = _info(root)
        self.color_key, self.depth_key = _pick_features(info, options, root)
        cinfo = info["features"][self.color_key].get("info") or {}
        dinfo = info["features"][self.depth_key].get("info") or {}
        if options.intrinsics is not None:
            intr = CameraIntrinsics.from_json(options.intrinsics)
        elif all(k in cinfo for k in ("fx", "fy", "cx", "cy")):
            h, w = info["features"][self.color_key]["shape"][:2]
            intr = CameraIntrinsics(int(w), int(h), cinfo["fx"], cinfo["fy"], cinfo["cx"], cinfo["cy"])
        else:
            raise ConfigError(f"{root}: the data set has no camera intrinsics; give --intrinsics FILE.json (width, "
                              f"height, fx, fy, cx, cy) or add fx, fy, cx, cy to features.{self.color_key}.info")
        scale = float(dinfo.get("depth_scale") or options.depth_scale or 1e-3)
        self.rig = CameraRig(intr, None, depth_scale=scale, name=root.name, allow_implausible=True)
        self.meta = {"dataset": str(root), "episode_index": int(ref.key), "color_key": self.color_key,
                     "depth_key": self.depth_key, "fps": info.get("fps")}
        pq = _pq()
        import pyarrow.compute as pc

        tables = []
        for f in _data_files(root):
            t = pq.read_table(f)
            tables.append(t.filter(pc.equal(t.column("episode_index"), int(ref.key))))
        import pyarrow as pa

        table = pa.concat_tables([t for t in tables if t.num_rows])
        if "frame_index" in table.column_names:
            table = table.sort_by("frame_index")
        self._table = table
        self._stamps = (table.column("timestamp").to_pylist() if "timestamp" in table.column_names
                        else [k / float(info.get("fps") or 30) for k in range(table.num_rows)])

    def __len__(self) -> int:
        return self._table.num_rows

    def frame(self, i: int) -> RGBDFrame:
        row = self._table.slice(i, 1)
        color = _decode(row.column(self.color_key)[0].as_py(), f"{self.ref.name} frame {i} colour")
        depth = _decode(row.column(self.depth_key)[0].as_py(), f"{self.ref.name} frame {i} depth")
        if color.ndim == 2:
            color = np.repeat(color[:, :, None], 3, axis=2)
        color = np.ascontiguousarray(color[:, :, 2::-1])  # OpenCV decodes BGR
        if depth.ndim != 2 or depth.dtype != np.uint16:
            raise ConfigError(f"{self.ref.name} frame {i}: depth must be a single-channel 16-bit image, got "
                              f"{depth.dtype} with shape {depth.shape}")
        intr = self.rig.intrinsics
        if color.shape[:2] != (intr.height, intr.width) or depth.shape != color.shape[:2]:
            raise InputError(f"{self.ref.name} frame {i}: colour {color.shape[1]}x{color.shape[0]}, depth "
                             f"{depth.shape[1]}x{depth.shape[0]} and intrinsics {intr.width}x{intr.height} differ; "
                             "depth must be registered to colour")
        f = RGBDFrame(color, depth.astype(np.float32) * np.float32(self.rig.depth_scale), intr,
                      float(self._stamps[i]), None, f"{i:06d}", {"source": str(self.ref.path)})
        return share_intrinsics(self, f)

    def prompt(self, i: int) -> dict | None:
        return None

    def extra(self, i: int) -> dict:
        return {}

    def ground_truth(self, i: int) -> list:
        return []


__all__ = ["LeRobotEpisode", "episode_keys"]
