"""RealSense SDK recordings as files: recognise them, index their frames, salvage a truncated one.

Standard library only (``sqlite3``): no pyrealsense2, so that episode discovery works without the ``realsense``
extra. librealsense 2.59 records a ROS 2 bag in a single SQLite file (``.db3``, tables ``topics`` and
``messages``). Per stream, under ``/device_0/sensor_<s>/<Stream>_<i>/``:

``image/data`` (``/compressed``, ``/compressedDepth``)
    The pixels, one message per frame.
``image/metadata``
    A ``std_msgs/String`` per frame, ``"Frame number=N;timestamp_domain=Global Time;timestamp=MS;..."``, at the
    same bag time as its pixels.
``camera_info``, ``info``
    ``"width=..;height=..;fx=..;ppx=..;fy=..;ppy=..;model=..;coeffs=.."`` and ``"encoding=Z16;fps=30"``.

``/device_0/info`` names the camera; ``/device_0/sensor_<s>/option/Depth_Units/value`` is the depth scale.
Older SDKs recorded ROS 1 ``.bag`` files with the same ``/device_0`` topics (converted to ``.db3`` before
playback by :class:`~graspseg.capture.realsense.RealSenseRecording`).

A ``.db3`` whose copy was cut short is refused by SQLite as a whole ("database disk image is malformed"), so
librealsense cannot open it; :func:`salvage_recording` copies the messages readable before the break into a new
file that it can play.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import struct
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InputError

log = logging.getLogger(__name__)

_STREAM_TOPIC = re.compile(r"^/device_(\d+)/sensor_(\d+)/([A-Za-z]+)_(\d+)/")
_ROS1_MAGIC = b"#ROSBAG V2.0\n"


def _connect(path: Path) -> sqlite3.Connection:
    """Read-only SQLite connection that also reads a file cut short (up to where it breaks).

    SQLite refuses a file shorter than the size its header declares unless ``writable_schema`` is on; on a
    read-only connection that pragma writes nothing.
    """
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    con.execute("PRAGMA writable_schema=ON")
    return con


def _topic_names(path: Path) -> list[str]:
    with _connect(path) as con:
        return [r[0] for r in con.execute("SELECT name FROM topics")]


def _ros1_has_device_topics(path: Path) -> bool:
    """A ROS 1 bag with ``/device_0`` connections: its connection records (at the start of uncompressed data and,
    uncompressed, in the index at the end) name the topics."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
        if not head.startswith(_ROS1_MAGIC):
            return False
        if b"topic=/device_0/" in head:
            return True
        # the bag header record: header length, fields (length, "name=value"), data length; index_pos is 8 bytes
        k = head.find(b"index_pos=")
        if k < 0:
            return False
        index_pos = struct.unpack("<Q", head[k + 10:k + 18])[0]
        if not 0 < index_pos < path.stat().st_size:
            return False
        f.seek(index_pos)
        return b"topic=/device_0/" in f.read(1 << 20)


def is_realsense_recording(path: str | Path) -> bool:
    """True for a RealSense SDK recording: a ``.db3`` (or legacy ``.bag``) file whose topics are ``/device_0/...``.

    Other ROS bags (``realsense2_camera``'s ``/camera/...`` topics included) are not. A ``.db3`` cut short is
    still recognised.
    """
    p = Path(path)
    if not p.is_file():
        return False
    try:
        if p.suffix == ".db3":
            return any(n.startswith("/device_0/") for n in _topic_names(p))
        if p.suffix == ".bag":
            return _ros1_has_device_topics(p)
    except (sqlite3.Error, OSError, struct.error) as e:
        log.debug("%s: not a RealSense recording: %s", p, e)
    return False


def declared_size(path: str | Path) -> int | None:
    """Bytes a ``.db3``'s SQLite header says the file holds (None when the header cannot tell)."""
    with open(path, "rb") as f:
        head = f.read(100)
    if len(head) < 100 or not head.startswith(b"SQLite format 3\x00"):
        return None
    page_size = struct.unpack(">H", head[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    pages, change, valid_for = struct.unpack(">I", head[28:32])[0], head[24:28], head[92:96]
    return page_size * pages if pages and change == valid_for else None


def intact(path: str | Path) -> str | None:
    """None when the ``.db3`` reads as a whole; else why not (one phrase)."""
    p = Path(path)
    size, want = p.stat().st_size, declared_size(p)
    if want is None:
        return "not an SQLite file (or its header is damaged)"
    if size < want:
        return f"cut short: {size} of the {want} bytes its header declares"
    try:
        with sqlite3.connect(f"file:{p}?mode=ro", uri=True) as con:
            con.execute("SELECT count(*) FROM topics").fetchone()
    except sqlite3.Error as e:
        return f"damaged ({e})"
    return None


@dataclass(frozen=True)
class Salvage:
    """What :func:`salvage_recording` kept: messages copied, the bag time of the last one, seconds since the
    recording's start, and why reading stopped."""

    messages: int
    last_time_s: float
    reason: str


def salvage_recording(src: str | Path, dst: str | Path) -> Salvage:
    """Copy the topics and every message of ``src`` readable before its break into a new ``.db3`` at ``dst``.

    Messages are copied in the order they were written (row id), so what is kept is the recording up to the
    break. ``dst`` must not exist.

    Raises
    ------
    InputError
        ``src`` is not readable as SQLite at all (its header or schema is gone).
    """
    src, dst = Path(src), Path(dst)
    try:
        s = _connect(src)
        schema = [r[0] for r in s.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")]
        topics = s.execute("SELECT * FROM topics").fetchall()
    except sqlite3.Error as e:
        raise InputError(f"{src} cannot be read at all ({e}); the start of the file is damaged — record it "
                         "again") from None
    d = sqlite3.connect(dst)
    n, last_ns, reason = 0, 0, "the end of the file"
    try:
        for sql in schema:
            d.execute(sql)
        cols = ",".join("?" * len(topics[0])) if topics else ""
        if topics:
            d.executemany(f"INSERT INTO topics VALUES ({cols})", topics)
        batch: list = []
        cur = None
        while True:
            try:
                cur = cur or s.execute("SELECT id, topic_id, timestamp, data FROM messages ORDER BY id")
                row = cur.fetchone()
            except sqlite3.Error as e:
                reason = str(e)
                row = None
            if row is not None and any(v is None for v in row):  # a row whose page was cut mid-way
                reason = "a damaged message (fields missing)"
                row = None
            if row is None or len(batch) == 64:
                d.executemany("INSERT INTO messages (id, topic_id, timestamp, data) VALUES (?, ?, ?, ?)", batch)
                n += len(batch)
                last_ns = max([last_ns, *(r[2] for r in batch)])
                batch = []
            if row is None:
                break
            batch.append(row)
        d.commit()
    finally:
        d.close()
        s.close()
    return Salvage(n, last_ns / 1e9, reason)


# --------------------------------------------------------------------------------------------------
# the per-frame index
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordedFrame:
    """One recorded frame of one stream, as the recording's metadata message gives it.

    Attributes
    ----------
    frame_number : int
        The camera's frame counter.
    timestamp_ms : float
        Device timestamp, milliseconds, in ``domain`` (``Global Time``: the device clock mapped to the host's).
    bag_time_ns : int
        When the recorder wrote it, nanoseconds since the recording started.
    """

    frame_number: int
    timestamp_ms: float
    domain: str
    bag_time_ns: int


def _fields(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _cdr_string(blob: bytes) -> str:
    """The text of a CDR-serialised ``std_msgs/String`` (4-byte encapsulation, uint32 length, bytes + NUL)."""
    if len(blob) < 8:
        return ""
    (n,) = struct.unpack("<I", blob[4:8]) if blob[1] == 1 else struct.unpack(">I", blob[4:8])
    return blob[8:8 + n].split(b"\x00", 1)[0].decode("utf-8", "replace")


@dataclass(frozen=True)
class RecordingIndex:
    """What a RealSense ``.db3`` holds, read from its messages without decoding any image.

    Attributes
    ----------
    color, depth : tuple of RecordedFrame
        The frames of the first colour and depth streams whose pixels and metadata were both recorded, in
        recording order.
    streams : dict
        ``{"color"|"depth": {"topic", "encoding", "fps", "width", "height", "fx", "fy", "ppx", "ppy", "model",
        "coeffs"}}`` (what the recording says; values as text).
    device : dict
        ``/device_0/info`` fields (``Name``, ``Serial Number``, ``Firmware Version``...).
    depth_units : float or None
        Metres per raw depth unit.
    incomplete : dict
        Per stream, metadata messages without pixels or pixels without metadata (skipped).
    """

    path: Path
    color: tuple[RecordedFrame, ...]
    depth: tuple[RecordedFrame, ...]
    streams: dict
    device: dict
    depth_units: float | None
    incomplete: dict


def read_index(path: str | Path) -> RecordingIndex:
    """The :class:`RecordingIndex` of a RealSense ``.db3`` (reads only the small messages and the row headers).

    Raises
    ------
    InputError
        Not readable as a RealSense recording, or it lacks a depth or a colour stream.
    """
    p = Path(path)
    try:
        con = _connect(p)
        topics = dict(con.execute("SELECT id, name FROM topics"))
    except sqlite3.Error as e:
        raise InputError(f"{p} is not a readable RealSense recording ({e})") from None
    streams: dict[str, dict] = {}
    for name in sorted(topics.values()):
        m = _STREAM_TOPIC.match(name)
        if m and m.group(3).lower() in ("color", "depth"):
            kind = m.group(3).lower()
            prefix = m.group(0)
            if kind not in streams or streams[kind]["topic"] == prefix:
                streams.setdefault(kind, {"topic": prefix})
    present = sorted({_STREAM_TOPIC.match(n).group(3) for n in topics.values() if _STREAM_TOPIC.match(n)})
    for kind, label in (("depth", "depth"), ("color", "colour")):
        if kind not in streams:
            raise InputError(f"{p}: the recording has no {label} stream (streams: {', '.join(present) or 'none'}); "
                             "graspseg needs both depth and colour")
    small = {tid: name for tid, name in topics.items()
             if name.endswith(("/info", "/camera_info", "/image/metadata", "Depth_Units/value"))
             and not name.endswith("image/camera_info")}
    data_topics = {tid: name for tid, name in topics.items() if "/image/data" in name}
    device: dict = {}
    depth_units = None
    meta: dict[str, dict[int, str]] = {"color": {}, "depth": {}}
    pixels: dict[str, set[int]] = {"color": set(), "depth": set()}
    kind_of = {s["topic"]: k for k, s in streams.items()}

    def stream_of(name: str) -> str | None:
        m = _STREAM_TOPIC.match(name)
        return kind_of.get(m.group(0)) if m else None

    try:
        marks = ",".join("?" * len(small))
        for tid, t_ns, blob in con.execute(f"SELECT topic_id, timestamp, data FROM messages WHERE topic_id IN "
                                           f"({marks}) ORDER BY id", list(small)):
            name, text = small[tid], _cdr_string(blob)
            kind = stream_of(name)
            if name == "/device_0/info":
                device = _fields(text)
            elif name.endswith("Depth_Units/value"):
                try:
                    depth_units = float(text)
                except ValueError:
                    log.debug("%s: depth units %r", p, text)
            elif kind is None:
                continue
            elif name.endswith("/image/metadata"):
                meta[kind][int(t_ns)] = text
            else:  # the stream's info / camera_info
                streams[kind].update(_fields(text))
        marks = ",".join("?" * len(data_topics))
        for tid, t_ns in con.execute(f"SELECT topic_id, timestamp FROM messages WHERE topic_id IN ({marks})",
                                     list(data_topics)):
            kind = stream_of(data_topics[tid])
            if kind is not None:
                pixels[kind].add(int(t_ns))
    except sqlite3.Error as e:
        raise InputError(f"{p}: the recording's messages cannot be read ({e}); salvage it first "
                         "(graspseg.capture.realsense_file.salvage_recording)") from None
    finally:
        con.close()
    frames: dict[str, tuple[RecordedFrame, ...]] = {}
    incomplete: dict[str, int] = {}
    for kind in ("color", "depth"):
        out = []
        for t_ns, text in sorted(meta[kind].items()):
            f = _fields(text)
            if t_ns not in pixels[kind] or "Frame number" not in f or "timestamp" not in f:
                continue
            out.append(RecordedFrame(int(f["Frame number"]), float(f["timestamp"]), f.get("timestamp_domain", ""),
                                     t_ns))
        frames[kind] = tuple(out)
        incomplete[kind] = len(meta[kind]) + len(pixels[kind]) - 2 * len(out)
    if depth_units is None:
        for text in meta["depth"].values():
            if "depth_units" in (f := _fields(text)):
                depth_units = float(f["depth_units"])
                break
    return RecordingIndex(p, frames["color"], frames["depth"], streams, device, depth_units, incomplete)


__all__ = ["RecordedFrame", "RecordingIndex", "Salvage", "declared_size", "intact", "is_realsense_recording",
           "read_index", "salvage_recording"]
