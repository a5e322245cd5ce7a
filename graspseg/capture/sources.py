"""Episode sources: one entry point, :func:`open_episode`, for every kind of recording.

A *kind* knows how to recognise a path (``detect``), which episodes it holds (``episodes``: one, or several
in a data set) and how to open one (``opener``, a lazy ``"module:function"``). Kinds are tried in
``priority`` order:

========== ===================================================================== ==============
kind       what                                                                  extra
========== ===================================================================== ==============
native     a graspseg episode folder (``episode.json`` + ``index.jsonl``)        —
realsense  a RealSense SDK recording file (``.db3`` / legacy ``.bag`` with       realsense
           ``/device_0`` topics)
rosbag     ROS 1 ``.bag``, ROS 2 ``.db3`` / ``.mcap`` (file or rosbag2 folder)       bags
lerobot    a LeRobot-style data set folder (``meta/info.json``) carrying depth    —
========== ===================================================================== ==============

Adding a reader is one :func:`register_kind` call (or an entry point in the ``graspseg.episode_sources``
group naming a :class:`SourceKind`). Every source satisfies :class:`EpisodeSource`: frames by position,
the prompt and free fields recorded with each frame, ground truth where the recording has it, the rig, and
``problems`` (what was skipped or where the recording broke, one sentence each). A source that holds resources
(a RealSense playback) also has ``close()``; the analysis calls it when the episode is done.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..core.camera import CameraIntrinsics, CameraRig
from ..core.errors import ConfigError, InputError
from ..core.frame import RGBDFrame
from .episode import Episode, is_episode
from .frame_folder import GroundTruthObject
from .realsense_file import is_realsense_recording

log = logging.getLogger(__name__)

#: File suffixes of ROS recordings.
BAG_SUFFIXES = (".bag", ".db3", ".mcap")


@dataclass(frozen=True)
class SourceOptions:
    """How to read recordings that need choices (bags, data sets); native episodes ignore them.

    Attributes
    ----------
    color_topic, depth_topic, info_topic : str or None
        Bag topics (``sensor_msgs/Image`` or ``CompressedImage`` colour and depth registered to colour, the
        colour ``CameraInfo``); None picks them from the topic names and types.
    base_frame, tcp_frame : str
        tf frame names of the robot base and the TCP, for ``base_from_tcp`` from ``/tf``.
    sync_tolerance_s : float
        Depth and pose are paired with a colour image when their stamps are at most this far apart, seconds.
    depth_scale : float or None
        Metres per unit of 16-bit depth; None = 1e-3 for bags (REP 118: millimetres) and data sets.
    intrinsics : path or None
        Intrinsics JSON for data sets that carry none.
    color_key, depth_key : str or None
        Feature names of a LeRobot-style data set; None picks them.
    """

    color_topic: str | None = None
    depth_topic: str | None = None
    info_topic: str | None = None
    base_frame: str = "base"
    tcp_frame: str = "tcp"
    sync_tolerance_s: float = 0.02
    depth_scale: float | None = None
    intrinsics: str | None = None
    color_key: str | None = None
    depth_key: str | None = None

    def __post_init__(self) -> None:
        t = self.sync_tolerance_s
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 < t <= 5:
            raise ConfigError(f"sync_tolerance_s must be in (0, 5] seconds, got {t!r}")
        if self.depth_scale is not None and not 1e-6 <= float(self.depth_scale) <= 0.01:
            raise ConfigError(f"depth_scale must be metres per depth unit in [1e-6, 0.01] (1e-3 for millimetres), "
                              f"got {self.depth_scale!r}")


@dataclass(frozen=True)
class EpisodeRef:
    """One episode: the recording's path, the kind that reads it, and its key inside a multi-episode data set."""

    path: Path
    kind: str
    key: str | None = None

    @property
    def name(self) -> str:
        stem = self.path.name[: -len(self.path.suffix)] if self.path.suffix in BAG_SUFFIXES else self.path.name
        return stem if self.key is None else f"{stem}__{self.key}"

    def to_dict(self) -> dict:
        return {"path": str(self.path), "kind": self.kind, "key": self.key, "name": self.name}


@runtime_checkable
class EpisodeSource(Protocol):
    """What the analysis reads from any recording.

    Attributes
    ----------
    ref : EpisodeRef
    rig : CameraRig or None
        Intrinsics, ``tcp_from_camera`` and depth scale when the recording has them.
    meta : dict
        Recording-level fields (device, robot, topics used...).
    problems : list of str
        What was skipped, and where the recording broke, one sentence each.
    sync : dict
        Time-synchronisation report (pairs made, dropped beyond the tolerance, offsets); empty when the
        streams come paired.
    """

    ref: EpisodeRef
    rig: CameraRig | None
    meta: dict
    problems: list[str]
    sync: dict

    def __len__(self) -> int: ...

    def frame(self, i: int) -> RGBDFrame: ...

    def prompt(self, i: int) -> dict | None: ...

    def extra(self, i: int) -> dict: ...

    def ground_truth(self, i: int) -> list[GroundTruthObject]: ...


@dataclass(frozen=True)
class SourceKind:
    """A kind of recording: how to recognise it, list its episodes and open one.

    Attributes
    ----------
    name : str
    detect : callable (Path) -> bool
        Cheap check that a path is of this kind.
    opener : str or callable
        ``(EpisodeRef, SourceOptions) -> EpisodeSource``, or ``"module:function"`` imported on first use.
    episodes : callable (Path) -> list of keys, optional
        Keys of the episodes a data set holds (None: the path is one episode).
    priority : int
        Lower is tried first (a RealSense ``.db3`` is also a rosbag2 file).
    extra : str or None
        pip extra its reader needs.
    description : str
    """

    name: str
    detect: Callable[[Path], bool]
    opener: str | Callable
    episodes: Callable[[Path], list[str]] | None = None
    priority: int = 50
    extra: str | None = None
    description: str = ""

    def open(self, ref: EpisodeRef, options: SourceOptions) -> EpisodeSource:
        fn = self.opener
        if isinstance(fn, str):
            module, _, attr = fn.partition(":")
            fn = getattr(importlib.import_module(module), attr)
        return fn(ref, options)


_KINDS: dict[str, SourceKind] = {}


def register_kind(kind: SourceKind, *, replace: bool = False) -> None:
    """Add a kind of recording (``replace=True`` swaps an existing one, e.g. a RealSense reader)."""
    if not isinstance(kind, SourceKind):
        raise ConfigError(f"register_kind takes a SourceKind, got {type(kind).__name__}")
    if kind.name in _KINDS and not replace:
        raise ConfigError(f"episode source kind {kind.name!r} is already registered; pass replace=True")
    _KINDS[kind.name] = kind


def unregister_kind(name: str) -> None:
    """Remove a kind (no error when it is not registered)."""
    _KINDS.pop(name, None)


def _load_entry_points() -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group="graspseg.episode_sources"):
        if ep.name not in _KINDS:
            try:
                register_kind(ep.load())
            except Exception as e:  # noqa: BLE001 - a broken plugin must not hide the built-in kinds
                log.warning("episode source plugin %s could not be loaded: %s", ep.value, e)


def source_kinds() -> list[SourceKind]:
    """Registered kinds in the order they are tried."""
    _load_entry_points()
    return sorted(_KINDS.values(), key=lambda k: (k.priority, k.name))


def get_kind(name: str) -> SourceKind:
    kinds = {k.name: k for k in source_kinds()}
    if name not in kinds:
        raise ConfigError(f"no episode source kind {name!r}; known kinds: {', '.join(kinds)}")
    return kinds[name]


def detect_kind(path: str | Path) -> SourceKind | None:
    """The first kind that recognises ``path``, or None."""
    p = Path(path)
    for kind in source_kinds():
        try:
            if kind.detect(p):
                return kind
        except (OSError, ValueError) as e:  # an unreadable candidate: not this kind
            log.debug("%s: %s detection failed: %s", p, kind.name, e)
    return None


def list_episodes(paths: Iterable[str | Path], *, max_depth: int = 3) -> list[EpisodeRef]:
    """Every episode under ``paths``: recordings themselves, or folders searched ``max_depth`` levels down.

    Raises
    ------
    InputError
        A path that does not exist, or holds no recording of a known kind.
    """
    refs: list[EpisodeRef] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputError(f"{p} does not exist; give episode folders, bag files or folders that hold them")
        found = _find(p, max_depth)
        if not found:
            names = ", ".join(k.name for k in source_kinds())
            raise InputError(f"{p} holds no recording graspseg reads (kinds: {names}; e.g. a folder with "
                             f"episode.json, a .bag/.db3/.mcap file, a data set with meta/info.json)")
        refs.extend(found)
    seen: set[tuple] = set()
    unique = []
    for r in refs:
        k = (r.path.resolve(), r.key)
        if k not in seen:
            seen.add(k)
            unique.append(r)
    return unique


def _find(p: Path, depth: int) -> list[EpisodeRef]:
    kind = detect_kind(p)
    if kind is not None:
        keys = kind.episodes(p) if kind.episodes is not None else [None]
        return [EpisodeRef(p, kind.name, k) for k in keys]
    if not p.is_dir() or depth <= 0:
        return []
    out: list[EpisodeRef] = []
    for child in sorted(p.iterdir()):
        if not child.name.startswith("."):
            out.extend(_find(child, depth - 1))
    return out


def open_episode(ref: EpisodeRef | str | Path, options: SourceOptions | None = None) -> EpisodeSource:
    """Open one episode (an :class:`EpisodeRef`, or a path holding exactly one episode)."""
    options = options or SourceOptions()
    if not isinstance(ref, EpisodeRef):
        refs = list_episodes([ref])
        if len(refs) != 1:
            raise InputError(f"{ref} holds {len(refs)} episodes; open them one by one (list_episodes)")
        ref = refs[0]
    return get_kind(ref.kind).open(ref, options)


# --------------------------------------------------------------------------------------------------
# native episodes
# --------------------------------------------------------------------------------------------------
class NativeEpisodeSource(Episode):
    """A native episode (:class:`~graspseg.capture.episode.Episode`) as an :class:`EpisodeSource`.

    Frames that share intrinsics share one :class:`CameraIntrinsics` object, so per-intrinsics caches
    (pixel rays) are computed once per episode.
    """

    def __init__(self, ref: EpisodeRef, options: SourceOptions | None = None) -> None:
        super().__init__(ref.path)
        self.ref = ref
        self.sync: dict = {}
        self._intrinsics: CameraIntrinsics | None = None

    def frame(self, i: int) -> RGBDFrame:
        f = super().frame(i)
        return share_intrinsics(self, f)

    def prompt(self, i: int) -> dict | None:
        return self.records[i].prompt

    def extra(self, i: int) -> dict:
        return dict(self.records[i].extra)


def share_intrinsics(source, frame: RGBDFrame) -> RGBDFrame:
    """``frame`` with the source's first equal :class:`CameraIntrinsics` object (keeps cached rays)."""
    known = getattr(source, "_intrinsics", None)
    if known is not None and known == frame.intrinsics:
        return replace(frame, intrinsics=known) if frame.intrinsics is not known else frame
    source._intrinsics = frame.intrinsics
    return frame


def pair_nearest(query_s, stamps_s) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``query_s`` the index of the nearest of ``stamps_s`` and the signed offset to it.

    Parameters
    ----------
    query_s : (N,) float
        Stamps to pair (e.g. colour images), seconds.
    stamps_s : (M,) float, M >= 1
        Candidate stamps (depth images, poses), seconds, any order.

    Returns
    -------
    index : (N,) int
        Position in ``stamps_s`` of the nearest stamp (the earlier one on a tie).
    offset_s : (N,) float
        ``stamps_s[index] - query_s``; compare its magnitude with a tolerance.
    """
    q = np.asarray(query_s, np.float64)
    s = np.asarray(stamps_s, np.float64)
    order = np.argsort(s, kind="stable")
    ss = s[order]
    k = np.searchsorted(ss, q)
    lo, hi = np.clip(k - 1, 0, len(ss) - 1), np.clip(k, 0, len(ss) - 1)
    pick = np.where(np.abs(ss[hi] - q) < np.abs(ss[lo] - q), hi, lo)
    return order[pick], ss[pick] - q


# --------------------------------------------------------------------------------------------------
# detection helpers
# --------------------------------------------------------------------------------------------------
def _is_bag(p: Path) -> bool:
    return (p.is_file() and p.suffix in BAG_SUFFIXES) or (p.is_dir() and (p / "metadata.yaml").is_file())


def _is_lerobot(p: Path) -> bool:
    return p.is_dir() and (p / "meta" / "info.json").is_file()


register_kind(SourceKind("native", is_episode, NativeEpisodeSource, priority=10,
                         description="graspseg episode folder (episode.json + index.jsonl)"))
register_kind(SourceKind("realsense", is_realsense_recording, "graspseg.capture.realsense:RealSenseEpisode",
                         priority=20, extra="realsense",
                         description="RealSense SDK recording (.db3 / legacy .bag file with /device_0 topics)"))
register_kind(SourceKind("rosbag", _is_bag, "graspseg.capture.rosbag:RosbagEpisode", priority=30, extra="bags",
                         description="ROS 1 .bag, ROS 2 .db3 / .mcap (sensor_msgs Image / CompressedImage, "
                                     "CameraInfo, /tf)"))
register_kind(SourceKind("lerobot", _is_lerobot, "graspseg.capture.lerobot:LeRobotEpisode", priority=40,
                         episodes=lambda p: importlib.import_module("graspseg.capture.lerobot").episode_keys(p),
                         description="LeRobot-style data set (meta/info.json) with a depth image feature"))


__all__ = [
    "BAG_SUFFIXES", "EpisodeRef", "EpisodeSource", "NativeEpisodeSource", "SourceKind", "SourceOptions",
    "detect_kind", "get_kind", "list_episodes", "open_episode", "pair_nearest", "register_kind",
    "share_intrinsics",
    "source_kinds", "unregister_kind",
]
