"""The native episode layout: a sequence of frame folders with an append-only index.

::

    EPISODE/
      episode.json          # {"format": "graspseg-episode", "schema_version": 1, "created_utc", "rig"?, "meta", "closed"}
      index.jsonl           # one JSON object per finished frame, appended in capture order
      frames/000000/        # a frame folder (color.png, depth.png, camera.json, optional masks/ + objects.json)
      frames/000001/
      ...

An index line is ``{"index", "frame_id", "folder", "timestamp_s", "base_from_tcp", "prompt", "extra"}``:
``folder`` is relative to the episode, ``timestamp_s`` the capture time in seconds, ``base_from_tcp`` the robot
pose at capture (``{"matrix": 4x4, "to_frame": "base", "from_frame": "tcp"}``) or null, ``prompt`` the prompt in
force from that frame on (``{"points_uv", "point_labels", "box_xyxy", "text"}``, see
:meth:`graspseg.segment.Prompt.from_dict`) or null, ``extra`` free per-frame fields (device timestamps, frame
numbers).

Crash safety: a frame is written into a hidden temporary folder, renamed into place, and only then appended to
the index (flushed and fsynced). A crash loses at most the frame in flight; a torn last index line is skipped
when reading and reported in :attr:`Episode.problems`. ``episode.json`` is rewritten (atomically) with
``"closed": true`` by :meth:`EpisodeWriter.close`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..core.camera import CameraRig
from ..core.errors import ConfigError, InputError
from ..core.frame import RGBDFrame
from ..core.io import atomic_write_json, read_json
from ..core.transform import BASE, TCP, Transform
from .frame_folder import GroundTruthObject, load_frame_folder, load_ground_truth, save_frame_folder

log = logging.getLogger(__name__)

EPISODE_FORMAT = "graspseg-episode"
EPISODE_SCHEMA_VERSION = 1
EPISODE_FILE = "episode.json"
INDEX_FILE = "index.jsonl"
FRAMES_DIR = "frames"


@dataclass(frozen=True)
class EpisodeRecord:
    """One index entry of an episode (what is known of a frame without reading its images).

    Attributes
    ----------
    index : int
        Position in capture order, from 0.
    frame_id : str
        The frame's identifier (its folder name unless the source gave one).
    folder : str
        Frame folder relative to the episode folder.
    timestamp_s : float
        Capture time, seconds.
    base_from_tcp : Transform or None
        Robot TCP pose at capture time.
    prompt : dict or None
        The prompt in force from this frame on, as a JSON mapping (``Prompt.from_dict`` turns it into a prompt).
    extra : dict
        Free per-frame fields (device timestamp, frame number, ...).
    """

    index: int
    frame_id: str
    folder: str
    timestamp_s: float
    base_from_tcp: Transform | None = None
    prompt: dict | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "index": self.index, "frame_id": self.frame_id, "folder": self.folder, "timestamp_s": self.timestamp_s,
            "base_from_tcp": None if self.base_from_tcp is None else self.base_from_tcp.to_dict(),
            "prompt": self.prompt, "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict, *, source: str) -> EpisodeRecord:
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(d).__name__}")
        missing = [k for k in ("index", "folder", "timestamp_s") if k not in d]
        if missing:
            raise ConfigError(f"{source}: missing field(s) {missing}; an index line has index, folder, timestamp_s")
        index, folder, stamp = d["index"], d["folder"], d["timestamp_s"]
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ConfigError(f"{source}: index is {index!r}; expected an integer >= 0")
        if not isinstance(folder, str) or not folder or Path(folder).is_absolute() or ".." in Path(folder).parts:
            raise ConfigError(f"{source}: folder is {folder!r}; expected a path inside the episode such as "
                              "'frames/000000'")
        if isinstance(stamp, bool) or not isinstance(stamp, (int, float)):
            raise ConfigError(f"{source}: timestamp_s is {stamp!r}; expected seconds as a number")
        prompt = d.get("prompt")
        if prompt is not None and not isinstance(prompt, dict):
            raise ConfigError(f"{source}: prompt is {type(prompt).__name__}; expected a JSON object or null")
        extra = d.get("extra") or {}
        if not isinstance(extra, dict):
            raise ConfigError(f"{source}: extra is {type(extra).__name__}; expected a JSON object")
        pose = d.get("base_from_tcp")
        pose_t = None if pose is None else Transform.from_dict(pose, to_frame=BASE, from_frame=TCP,
                                                               source=f"{source}: base_from_tcp")
        return cls(index, str(d.get("frame_id", Path(folder).name)), folder, float(stamp), pose_t, prompt, extra)


class EpisodeWriter:
    """Record frames into the native episode layout, crash-safely (see the module docstring).

    Use as a context manager::

        with EpisodeWriter("episodes/ep_0001", rig=rig, meta={"robot": "fr3"}) as rec:
            for frame in source:
                rec.append(frame, prompt={"points_uv": [[320, 240]]})

    Parameters
    ----------
    folder : path
        The episode folder; it must not exist or be empty (``overwrite=True`` replaces an existing episode).
    depth_scale : float
        Metres per raw unit of the stored 16-bit depth PNGs (1e-4 keeps 0.1 mm up to 6.5 m).
    rig : CameraRig, optional
        Stored in ``episode.json`` so readers know ``tcp_from_camera``.
    meta : dict, optional
        Free episode-level fields (robot, task, operator, source device).
    """

    def __init__(self, folder: str | Path, *, depth_scale: float = 1e-4, rig: CameraRig | None = None,
                 meta: dict | None = None, overwrite: bool = False) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"episode folder {self.folder} exists and is not a directory; choose another path")
        if self.folder.exists() and any(self.folder.iterdir()):
            if not overwrite:
                raise InputError(f"episode folder {self.folder} is not empty; choose a new folder or pass "
                                 "overwrite=True to replace it")
            shutil.rmtree(self.folder)
        if meta is not None and not isinstance(meta, dict):
            raise ConfigError(f"meta must be a dict, got {type(meta).__name__}")
        if rig is not None and not isinstance(rig, CameraRig):
            raise ConfigError(f"rig must be a CameraRig or None, got {type(rig).__name__}")
        self.depth_scale = depth_scale
        (self.folder / FRAMES_DIR).mkdir(parents=True, exist_ok=True)
        self._header = {
            "format": EPISODE_FORMAT, "schema_version": EPISODE_SCHEMA_VERSION,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "units": {"timestamp": "s", "length": "m"},
            "rig": None if rig is None else rig.to_dict(),
            "meta": dict(meta or {}), "closed": False, "frames": 0,
        }
        atomic_write_json(self.folder / EPISODE_FILE, self._header)
        self._index = open(self.folder / INDEX_FILE, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._count = 0
        self._closed = False

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def frames_written(self) -> int:
        return self._count

    def append(self, frame: RGBDFrame, *, prompt: dict | None = None, objects: list[GroundTruthObject] | None = None,
               extra: dict | None = None) -> EpisodeRecord:
        """Write one frame (folder first, then its index line) and return its record."""
        self._check(frame, prompt, extra)
        return self.commit(self.stage(frame, objects=objects), frame, prompt=prompt, extra=extra)

    def _check(self, frame, prompt, extra) -> None:
        if self._closed:
            raise InputError(f"episode {self.folder} is closed; open a new EpisodeWriter to record more")
        if not isinstance(frame, RGBDFrame):
            raise ConfigError(f"append() takes an RGBDFrame, got {type(frame).__name__}")
        if prompt is not None and not isinstance(prompt, dict):
            raise ConfigError(f"prompt must be a JSON mapping (Prompt.to_dict()) or None, got {type(prompt).__name__}")
        if extra is not None and not isinstance(extra, dict):
            raise ConfigError(f"extra must be a dict or None, got {type(extra).__name__}")

    def stage(self, frame: RGBDFrame, *, objects: list[GroundTruthObject] | None = None) -> Path:
        """Write ``frame``'s folder under a hidden temporary name and return it, for :meth:`commit`.

        Safe to call from several threads at once (the image encoding is the slow part of recording); a staged
        folder that is never committed is not part of the episode.
        """
        if self._closed:
            raise InputError(f"episode {self.folder} is closed; open a new EpisodeWriter to record more")
        tmp = self.folder / FRAMES_DIR / f".tmp-{uuid.uuid4().hex}"
        save_frame_folder(frame, tmp, depth_scale=self.depth_scale, objects=objects)
        return tmp

    def commit(self, staged: Path, frame: RGBDFrame, *, prompt: dict | None = None,
               extra: dict | None = None) -> EpisodeRecord:
        """Rename a :meth:`stage` d folder into place as the next frame, then append its index line (one thread
        commits, in capture order)."""
        self._check(frame, prompt, extra)
        name = f"{self._count:06d}"
        rel = f"{FRAMES_DIR}/{name}"
        os.replace(staged, self.folder / rel)
        record = EpisodeRecord(self._count, frame.frame_id or name, rel, frame.timestamp_s, frame.base_from_tcp,
                               prompt, dict(extra or {}))
        self._index.write(json.dumps(record.to_dict(), separators=(",", ":")) + "\n")
        self._index.flush()
        os.fsync(self._index.fileno())
        self._count += 1
        return record

    def close(self) -> None:
        """Mark the episode complete (``"closed": true`` and the frame count in ``episode.json``)."""
        if self._closed:
            return
        self._closed = True
        self._index.close()
        atomic_write_json(self.folder / EPISODE_FILE, self._header | {"closed": True, "frames": self._count})


class Episode:
    """A recorded episode in the native layout, read lazily.

    Attributes
    ----------
    folder : Path
    records : list of EpisodeRecord
        Index entries in capture order; frames without a readable entry are left out.
    rig : CameraRig or None
        The rig stored with the episode.
    meta : dict
        Episode-level fields given to the writer.
    closed : bool
        False when the recording stopped without :meth:`EpisodeWriter.close` (a crash or a kill).
    problems : list of str
        What was skipped while reading (a torn last index line, a missing frame folder), one sentence each.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"episode {self.folder} does not exist or is not a directory")
        header_path = self.folder / EPISODE_FILE
        if not header_path.exists():
            raise InputError(f"{self.folder} is not a graspseg episode: it has no {EPISODE_FILE} "
                             f"(a frame folder? read it with load_frame_folder)")
        header = read_json(header_path, "episode file", ConfigError)
        if not isinstance(header, dict) or header.get("format") != EPISODE_FORMAT:
            raise ConfigError(f"{header_path}: 'format' is not {EPISODE_FORMAT!r}; not a graspseg episode")
        if header.get("schema_version") != EPISODE_SCHEMA_VERSION:
            raise ConfigError(f"{header_path}: schema_version {header.get('schema_version')!r} is not supported "
                              f"(this graspseg reads {EPISODE_SCHEMA_VERSION})")
        self.meta: dict = header.get("meta") or {}
        self.closed: bool = bool(header.get("closed", False))
        self.rig: CameraRig | None = (None if header.get("rig") is None
                                      else CameraRig.from_dict(header["rig"], source=f"{header_path}: rig"))
        self.problems: list[str] = []
        if not self.closed:
            self.problems.append(f"{self.folder.name}: the recording was not closed (stopped by a crash or a kill); "
                                 "reading the frames it finished")
        self.records: list[EpisodeRecord] = self._read_index()

    def _read_index(self) -> list[EpisodeRecord]:
        path = self.folder / INDEX_FILE
        if not path.exists():
            raise InputError(f"episode {self.folder} has no {INDEX_FILE}; it was never recorded to")
        records: list[EpisodeRecord] = []
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        for k, line in enumerate(lines):
            if not line.strip():
                continue
            where = f"{path}:{k + 1}"
            try:
                rec = EpisodeRecord.from_dict(json.loads(line), source=where)
            except json.JSONDecodeError:
                last = all(not rest.strip() for rest in lines[k + 1:])
                self.problems.append(f"{where}: {'torn last line (the frame in flight at a crash)' if last else 'unreadable line'}; skipped")
                continue
            except (ConfigError, ValueError) as e:
                self.problems.append(f"{e}; skipped")
                continue
            if not (self.folder / rec.folder / "camera.json").exists():
                self.problems.append(f"{where}: frame folder {rec.folder} is missing or incomplete; skipped")
                continue
            records.append(rec)
        return records

    def __len__(self) -> int:
        return len(self.records)

    def frame(self, i: int) -> RGBDFrame:
        """Frame ``i`` (position in :attr:`records`) with the index's timestamp and pose."""
        rec = self.records[i]
        frame = load_frame_folder(self.folder / rec.folder)
        meta = frame.meta | {"episode": str(self.folder), "episode_index": rec.index, **rec.extra}
        return RGBDFrame(frame.color, frame.depth_m, frame.intrinsics, rec.timestamp_s, rec.base_from_tcp,
                         rec.frame_id, meta)

    def ground_truth(self, i: int) -> list[GroundTruthObject]:
        """Annotated objects of frame ``i`` (empty when it has none)."""
        return load_ground_truth(self.folder / self.records[i].folder)

    def __iter__(self) -> Iterator[RGBDFrame]:
        for i in range(len(self.records)):
            yield self.frame(i)


def is_episode(folder: str | Path) -> bool:
    """True when ``folder`` holds a native episode (an ``episode.json``)."""
    return (Path(folder) / EPISODE_FILE).is_file()


__all__ = ["EPISODE_SCHEMA_VERSION", "Episode", "EpisodeRecord", "EpisodeWriter", "is_episode"]
