"""ROS bags as episodes: ROS 1 ``.bag``, ROS 2 ``.db3`` and ``.mcap`` (a file or a rosbag2 folder), no ROS needed.

Read with ``rosbags`` (extra ``bags``). An episode is the sequence of colour images; each is paired with
the depth image (registered to colour) and the robot pose nearest in time:

* colour: ``sensor_msgs/Image`` (``rgb8``, ``bgr8``, ``rgba8``, ``bgra8``, ``mono8``) or
  ``sensor_msgs/CompressedImage`` (JPEG, PNG);
* depth: ``Image`` (``16UC1`` × ``depth_scale``, default 1e-3 m as REP 118; ``32FC1`` metres) or
  ``CompressedImage`` (``png`` of a 16UC1 image, or image_transport's ``compressedDepth``);
* intrinsics: the colour ``CameraInfo``;
* pose: ``base_from_tcp`` composed from ``/tf`` and ``/tf_static`` along the tree between
  :attr:`SourceOptions.base_frame` and :attr:`SourceOptions.tcp_frame`, each moving edge taken at the
  sample nearest the colour stamp; ``tcp_from_camera`` from ``/tf_static`` when the tree links the TCP
  to the ``CameraInfo``'s frame.

Time synchronisation uses header stamps: a colour image without a depth image within
``sync_tolerance_s`` is dropped (counted in :attr:`RosbagEpisode.sync`); a pose beyond it leaves the
frame's ``base_from_tcp`` unset. A recording that breaks part-way (truncated, corrupt) keeps the frames
read before the break, and :attr:`problems` says where it broke.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..core.camera import CameraRig
from ..core.errors import ConfigError, InputError, MissingDependencyError, ShapeError
from ..core.frame import RGBDFrame
from ..core.transform import BASE, CAMERA, TCP, Transform
from .sources import EpisodeRef, SourceOptions, pair_nearest, share_intrinsics

log = logging.getLogger(__name__)

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
IMAGE_TYPES = (IMAGE, COMPRESSED)
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")


def _anyreader():
    try:
        from rosbags.highlevel import AnyReader
    except ImportError:
        raise MissingDependencyError("rosbags", "bags", "reading ROS bags") from None
    return AnyReader


def _msgtype(t: str) -> str:
    """``pkg/msg/Type`` (ROS 1 bags say ``pkg/Type``)."""
    parts = t.split("/")
    return f"{parts[0]}/msg/{parts[-1]}" if len(parts) == 2 else t


def _stamp_s(msg) -> float:
    st = msg.header.stamp
    sec = getattr(st, "sec", None)
    if sec is None:  # ROS 1 time
        return float(st.secs) + 1e-9 * float(st.nsecs)
    return float(sec) + 1e-9 * float(st.nanosec)


def decode_image(msg, msgtype: str, what: str) -> tuple[np.ndarray, str]:
    """(H, W, C) array and encoding of an ``Image`` or ``CompressedImage`` message (colour as RGB).

    Encodings returned: ``rgb8`` (3 channels), ``16UC1`` or ``32FC1`` (1 channel).
    """
    if msgtype == IMAGE:
        from ..ros import _image_array  # the sensor_msgs/Image decoder graspseg.ros ships

        arr, enc = _image_array(msg, what)
        if enc.startswith("bgr"):
            return np.ascontiguousarray(arr[:, :, 2::-1]), "rgb8"
        if enc in ("rgb8", "rgba8"):
            return np.ascontiguousarray(arr[:, :, :3]), "rgb8"
        if enc == "mono8":
            return np.repeat(arr, 3, axis=2), "rgb8"
        return arr, "16UC1" if enc == "mono16" else enc
    fmt = str(msg.format)
    data = np.asarray(msg.data, np.uint8).reshape(-1)
    if "compresseddepth" in fmt.lower():
        # image_transport compressedDepth: a 12-byte header (format, depthQuantA, depthQuantB), then a PNG
        start = data.tobytes().find(b"\x89PNG")
        if start < 0:
            raise InputError(f"{what}: compressedDepth data without a PNG image (format {fmt!r})")
        raw = cv2.imdecode(data[start:], cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise InputError(f"{what}: compressedDepth PNG could not be decoded")
        if fmt.startswith("32FC1"):
            quant_a, quant_b = np.frombuffer(data[4:12].tobytes(), "<f4")
            inv = raw.astype(np.float32)
            depth = np.where(inv > 0, quant_a / np.maximum(inv - quant_b, 1e-6), 0).astype(np.float32)
            return depth[:, :, None], "32FC1"
        return raw.astype(np.uint16)[:, :, None], "16UC1"
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{what}: the {fmt!r} image could not be decoded")
    if img.dtype == np.uint16 and img.ndim == 2:
        return img[:, :, None], "16UC1"
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2), "rgb8"
    if fmt.split(";")[0].strip().startswith("rgb") and "bgr" not in fmt:  # stored as rgb: cv2 swapped it
        return np.ascontiguousarray(img[:, :, :3]), "rgb8"
    return np.ascontiguousarray(img[:, :, 2::-1] if img.shape[2] >= 3 else img), "rgb8"


@dataclass(frozen=True)
class _Pair:
    color_t: int  # bag log time of the colour message, ns
    depth_t: int
    stamp_s: float
    depth_offset_s: float


class TfBuffer:
    """Transforms from ``/tf`` (timed) and ``/tf_static``, looked up along the tree at a stamp.

    Edges are stored parent → child as ``parent_from_child`` 4×4 matrices.
    """

    def __init__(self) -> None:
        self.static: dict[tuple[str, str], np.ndarray] = {}
        self.timed: dict[tuple[str, str], tuple[list[float], list[np.ndarray]]] = defaultdict(lambda: ([], []))

    def add(self, msg, *, static: bool) -> None:
        for t in msg.transforms:
            parent, child = t.header.frame_id.lstrip("/"), t.child_frame_id.lstrip("/")
            tr, q = t.transform.translation, t.transform.rotation
            m = Transform.from_xyz_quat_xyzw([tr.x, tr.y, tr.z], [q.x, q.y, q.z, q.w], parent, child).matrix
            if static:
                self.static[(parent, child)] = m
            else:
                stamps, mats = self.timed[(parent, child)]
                stamps.append(_stamp_s(t))
                mats.append(m)

    @property
    def frames(self) -> list[str]:
        return sorted({f for e in list(self.static) + list(self.timed) for f in e})

    def lookup(self, target: str, source: str, stamp_s: float, tolerance_s: float) -> tuple[np.ndarray | None, float]:
        """``target_from_source`` (4×4) at ``stamp_s`` and the largest time offset used; None when the frames
        are not linked or a moving edge has no sample within ``tolerance_s``."""
        edges: dict[str, list[tuple[str, tuple[str, str], bool]]] = defaultdict(list)
        for key in list(self.static) + list(self.timed):
            parent, child = key
            edges[parent].append((child, key, False))  # walking parent -> child uses parent_from_child
            edges[child].append((parent, key, True))
        prev: dict[str, tuple[str, tuple[str, str], bool] | None] = {target: None}
        queue = deque([target])
        while queue and source not in prev:
            f = queue.popleft()
            for nxt, key, inverse in edges[f]:
                if nxt not in prev:
                    prev[nxt] = (f, key, inverse)
                    queue.append(nxt)
        if source not in prev:
            return None, 0.0
        m = np.eye(4)
        worst = 0.0
        f = source
        chain = []
        while prev[f] is not None:
            parent_f, key, inverse = prev[f]
            chain.append((key, inverse))
            f = parent_f
        for key, inverse in reversed(chain):
            if key in self.static:
                e = self.static[key]
            else:
                stamps, mats = self.timed[key]
                k = int(np.argmin(np.abs(np.asarray(stamps) - stamp_s)))
                dt = abs(stamps[k] - stamp_s)
                if dt > tolerance_s:
                    return None, dt
                worst = max(worst, dt)
                e = mats[k]
            m = m @ (np.linalg.inv(e) if inverse else e)
        return m, worst


class RosbagEpisode:
    """A ROS bag as an :class:`~graspseg.capture.sources.EpisodeSource` (see the module docstring).

    Parameters
    ----------
    ref : EpisodeRef
        The bag (``.bag``, ``.db3``, ``.mcap`` file or rosbag2 folder).
    options : SourceOptions
        Topic selection, tf frame names, synchronisation tolerance, depth scale.

    Raises
    ------
    InputError
        No colour, depth or CameraInfo topic (the message lists the bag's topics); no depth image within
        the tolerance of any colour image; a bag that cannot be opened at all.
    """

    def __init__(self, ref: EpisodeRef, options: SourceOptions | None = None) -> None:
        self.ref = ref
        self.options = options or SourceOptions()
        self.problems: list[str] = []
        self.meta: dict = {}
        self._intrinsics = None
        AnyReader = _anyreader()
        path = Path(ref.path)
        try:
            self._reader = AnyReader([path])
            self._reader.open()
        except Exception as e:  # noqa: BLE001 - rosbags raises several unrelated types for a bad file
            scan = Ros1Scan(path) if path.suffix == ".bag" and path.is_file() else None
            if scan is None or not scan.connections:
                raise InputError(f"{path} cannot be read as a ROS bag: {_reason(e)}") from None
            self._reader = scan  # a ROS 1 bag cut off before its index: read record by record
            where = (f"the data breaks at byte {scan.broke[0]} of {scan.size} ({scan.broke[1]})" if scan.broke
                     else "its data is complete")
            self.problems.append(f"{path.name}: ROS 1 bag without a readable index (cut off while recording?), read "
                                 f"record by record: {len(scan.entries)} messages, {where}; 'rosbag reindex' "
                                 "restores the index")
        self.topics = {c.topic: _msgtype(c.msgtype) for c in self._reader.connections}
        self.color_topic, self.depth_topic, self.info_topic = self._choose_topics()
        self.meta = {"bag": str(path), "color_topic": self.color_topic, "depth_topic": self.depth_topic,
                     "info_topic": self.info_topic, "topics": self.topics}
        self._scan()

    # --- topics ------------------------------------------------------------------------------------
    def _topic_list(self) -> str:
        return ", ".join(f"{t} ({m.split('/')[-1]})" for t, m in sorted(self.topics.items())) or "none"

    def _choose_topics(self) -> tuple[str, str, str]:
        o = self.options
        images = [t for t, m in self.topics.items() if m in IMAGE_TYPES]
        for flag, t in (("--color-topic", o.color_topic), ("--depth-topic", o.depth_topic)):
            if t is not None and self.topics.get(t) not in IMAGE_TYPES:
                raise InputError(f"{self.ref.path}: {flag} {t} is not an Image or CompressedImage topic of this "
                                 f"bag; its topics: {self._topic_list()}")
        depth = o.depth_topic or _pick([t for t in images if "depth" in t.lower()], ("aligned", "image_raw", "image"))
        if depth is None:
            raise InputError(f"{self.ref.path} has no depth image topic (an Image/CompressedImage topic with 'depth' "
                             f"in its name); its topics: {self._topic_list()}; name one with --depth-topic")
        color = o.color_topic or _pick([t for t in images if "depth" not in t.lower()],
                                       ("color", "rgb", "image_raw", "image"))
        if color is None:
            raise InputError(f"{self.ref.path} has no colour image topic; its topics: {self._topic_list()}; name "
                             "one with --color-topic")
        infos = [t for t, m in self.topics.items() if m == CAMERA_INFO]
        if o.info_topic is not None:
            if o.info_topic not in infos:
                raise InputError(f"{self.ref.path}: --info-topic {o.info_topic} is not a CameraInfo topic of this "
                                 f"bag; its topics: {self._topic_list()}")
            info = o.info_topic
        else:
            ns = color.rsplit("/", 1)[0]
            if color.endswith("/compressed"):
                ns = color.rsplit("/", 2)[0]
            same_ns = [t for t in infos if t.rsplit("/", 1)[0] == ns]
            info = same_ns[0] if same_ns else (infos[0] if len(infos) == 1 else None)
            if info is None:
                raise InputError(f"{self.ref.path} has no CameraInfo for {color}"
                                 f"{' (several: ' + ', '.join(infos) + ')' if infos else ''}; its topics: "
                                 f"{self._topic_list()}; name it with --info-topic")
        return color, depth, info

    def _conns(self, *topics: str):
        return [c for c in self._reader.connections if c.topic in topics]

    # --- scan: stamps, intrinsics, tf ---------------------------------------------------------------
    def _scan(self) -> None:
        color_stamps: list[tuple[int, float]] = []  # (log time ns, header stamp s)
        depth_stamps: list[tuple[int, float]] = []
        info_msg = None
        self.tf = TfBuffer()
        tf_topics = [t for t, m in self.topics.items() if m == TF_MESSAGE]
        conns = self._conns(self.color_topic, self.depth_topic, self.info_topic, *tf_topics)
        count = 0
        try:
            for conn, t_ns, raw in self._reader.messages(connections=conns):
                count += 1
                msg = self._reader.deserialize(raw, conn.msgtype)
                if conn.topic == self.color_topic:
                    color_stamps.append((t_ns, _stamp_s(msg)))
                elif conn.topic == self.depth_topic:
                    depth_stamps.append((t_ns, _stamp_s(msg)))
                elif conn.topic == self.info_topic:
                    info_msg = info_msg or msg
                else:
                    self.tf.add(msg, static=conn.topic.endswith("tf_static"))
        except Exception as e:  # noqa: BLE001 - truncated / corrupt: keep what was read
            where = (f"after {count} messages ({len(color_stamps)} colour images, "
                     f"{(color_stamps[-1][1] - color_stamps[0][1]):.2f} s into the recording)"
                     if color_stamps else f"after {count} messages, before any colour image")
            self.problems.append(f"{self.ref.path.name}: the recording breaks {where}: {_reason(e)}; analysing "
                                 "what was read before the break")
            # the last colour image may be the one that broke: keep only pairs whose messages were read
        if not color_stamps:
            raise InputError(f"{self.ref.path}: no colour image could be read from {self.color_topic}"
                             + (f" ({self.problems[-1]})" if self.problems else ""))
        if info_msg is None:
            raise InputError(f"{self.ref.path}: no CameraInfo message on {self.info_topic}; its topics: "
                             f"{self._topic_list()}")
        from ..ros import intrinsics_from_camera_info

        if hasattr(info_msg, "K"):  # ROS 1 spells the matrices in capitals
            info_msg = {"k": info_msg.K, "d": info_msg.D, "width": info_msg.width, "height": info_msg.height,
                        "distortion_model": info_msg.distortion_model, "binning_x": info_msg.binning_x,
                        "binning_y": info_msg.binning_y, "header": info_msg.header}
        intr = intrinsics_from_camera_info(info_msg)
        scale = self.options.depth_scale or 1e-3
        header = info_msg["header"] if isinstance(info_msg, dict) else info_msg.header
        cam_frame = str(header.frame_id).lstrip("/")
        static = TfBuffer()
        static.static = self.tf.static
        m, _ = static.lookup(self.options.tcp_frame, cam_frame, 0.0, 0.0) if cam_frame else (None, 0.0)
        tcp_from_camera = None if m is None else Transform(m, TCP, CAMERA)
        self.rig = CameraRig(intr, tcp_from_camera, depth_scale=scale, name=Path(self.ref.path).name,
                             allow_implausible=True)
        self._pair(color_stamps, depth_stamps)

    def _pair(self, color: list[tuple[int, float]], depth: list[tuple[int, float]]) -> None:
        tol = self.options.sync_tolerance_s
        if not depth:
            raise InputError(f"{self.ref.path}: no depth image could be read from {self.depth_topic}")
        nearest, offs = pair_nearest([s for _, s in color], [s for _, s in depth])
        pairs = [_Pair(t_ns, depth[int(j)][0], s, float(off))
                 for (t_ns, s), j, off in zip(color, nearest, offs, strict=True) if abs(off) <= tol]
        offsets_a = np.abs(offs)
        self.sync = {
            "tolerance_s": tol, "color_images": len(color), "depth_images": len(depth), "frames": len(pairs),
            "dropped_no_depth_within_tolerance": len(color) - len(pairs),
            "depth_offset_s": {"median": round(float(np.median(offsets_a)), 6), "max": round(float(offsets_a.max()), 6)},
        }
        if not pairs:
            raise InputError(
                f"{self.ref.path}: colour ({self.color_topic}) and depth ({self.depth_topic}) are not synchronised: "
                f"the nearest depth image is {np.median(offsets_a) * 1e3:.1f} ms away (median), beyond the "
                f"{tol * 1e3:.0f} ms tolerance; raise --sync-tolerance-ms if the streams are offset by design")
        if len(pairs) < len(color):
            self.problems.append(f"{len(color) - len(pairs)} of {len(color)} colour images have no depth image within "
                                 f"{tol * 1e3:.0f} ms and were dropped")
        self._pairs = pairs
        # poses
        self._poses: list[Transform | None] = []
        pose_offsets, missing = [], 0
        o = self.options
        for p in pairs:
            m, dt = self.tf.lookup(o.base_frame, o.tcp_frame, p.stamp_s, tol) if (self.tf.static or self.tf.timed) \
                else (None, 0.0)
            if m is None:
                missing += 1
                self._poses.append(None)
            else:
                pose_offsets.append(dt)
                self._poses.append(Transform(m, BASE, TCP))
        self.sync["poses"] = len(pairs) - missing
        if pose_offsets:
            self.sync["pose_offset_s"] = {"median": round(float(np.median(pose_offsets)), 6),
                                          "max": round(float(np.max(pose_offsets)), 6)}
        if (self.tf.static or self.tf.timed) and missing:
            linked = self.tf.lookup(o.base_frame, o.tcp_frame, 0.0, float("inf"))[0] is not None
            why = (f"no /tf sample within {tol * 1e3:.0f} ms" if linked else
                   f"/tf does not link {o.base_frame!r} and {o.tcp_frame!r} (frames: {', '.join(self.tf.frames)}; set "
                   "--base-frame/--tcp-frame)")
            self.problems.append(f"{missing} of {len(pairs)} frames have no base_from_tcp: {why}")

    # --- EpisodeSource --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._pairs)

    def _read_one(self, topic: str, t_ns: int):
        for conn, _, raw in self._reader.messages(connections=self._conns(topic), start=t_ns, stop=t_ns + 1):
            return self._reader.deserialize(raw, conn.msgtype), _msgtype(conn.msgtype)
        raise InputError(f"{self.ref.path}: message of {topic} at {t_ns} ns vanished while reading")

    def frame(self, i: int) -> RGBDFrame:
        p = self._pairs[i]
        cmsg, ctype = self._read_one(self.color_topic, p.color_t)
        dmsg, dtype = self._read_one(self.depth_topic, p.depth_t)
        color, _ = decode_image(cmsg, ctype, f"colour image {i}")
        depth, denc = decode_image(dmsg, dtype, f"depth image {i}")
        if denc not in DEPTH_ENCODINGS:
            raise ConfigError(f"{self.depth_topic} carries {denc!r} images, not depth (16UC1 or 32FC1)")
        intr = self.rig.intrinsics
        if color.shape[:2] != (intr.height, intr.width) or depth.shape[:2] != color.shape[:2]:
            raise ShapeError(f"{self.ref.path} frame {i}: colour {color.shape[1]}x{color.shape[0]}, depth "
                             f"{depth.shape[1]}x{depth.shape[0]} and CameraInfo {intr.width}x{intr.height} differ; "
                             "record depth aligned to colour (align_depth) and the colour camera_info")
        if denc == "32FC1":
            depth_m = np.nan_to_num(depth[:, :, 0].astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
            depth_m[depth_m < 0] = 0
        else:
            depth_m = depth[:, :, 0].astype(np.float32) * np.float32(self.rig.depth_scale)
        f = RGBDFrame(color, depth_m, intr, p.stamp_s, self._poses[i], f"{i:06d}",
                      {"source": str(self.ref.path), "depth_offset_s": p.depth_offset_s})
        return share_intrinsics(self, f)

    def prompt(self, i: int) -> dict | None:
        return None

    def extra(self, i: int) -> dict:
        return {"depth_offset_s": self._pairs[i].depth_offset_s}

    def ground_truth(self, i: int) -> list:
        return []

    def close(self) -> None:
        if getattr(self._reader, "stack", None):
            self._reader.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


@dataclass(frozen=True)
class _Conn:
    id: int
    topic: str
    msgtype: str
    msgdef: str


class Ros1Scan:
    """A ROS 1 bag read record by record from the start, for bags whose index is missing or damaged (a
    recording killed before it wrote the index, a file cut off). Reads up to the first incomplete or
    unreadable record; :attr:`broke` is then ``(byte offset, reason)``.

    Offers what :class:`RosbagEpisode` uses of rosbags' ``AnyReader``: ``connections``, ``messages`` and
    ``deserialize``.
    """

    MAGIC = b"#ROSBAG V2.0\n"

    def __init__(self, path: str | Path) -> None:
        from rosbags.rosbag1.reader import Header, RecordType, decompressors, read_bytes, read_uint32

        self._rt, self._header, self._read_bytes, self._read_uint32 = RecordType, Header, read_bytes, read_uint32
        self.path = Path(path)
        self.size = self.path.stat().st_size
        self.entries: list[tuple[int, int, int, int]] = []  # (time ns, conn id, chunk record position, offset)
        self._chunks: dict[int, tuple[int, int, object]] = {}  # record position -> (data pos, size, decompressor)
        conns: dict[int, _Conn] = {}
        self.broke: tuple[int, str] | None = None
        with open(self.path, "rb") as f:
            if f.read(len(self.MAGIC)) != self.MAGIC:
                raise InputError(f"{self.path} is not a ROS 1 bag (no '#ROSBAG V2.0' line)")
            while True:
                pos = f.tell()
                if pos >= self.size:
                    break
                try:
                    header = Header.read(f)
                    op = header.get_uint8("op")
                    if op == RecordType.CONNECTION:
                        c = self._connection(header, Header.read(f))
                        conns.setdefault(c.id, c)
                        continue
                    size = read_uint32(f)
                    data_pos = f.tell()
                    if op == RecordType.CHUNK:
                        unpack = decompressors[header.get_string("compression")]
                        raw = unpack(read_bytes(f, size))
                        self._chunks[pos] = (data_pos, size, unpack)
                        self._scan_chunk(raw, pos, conns)
                    else:
                        read_bytes(f, size)  # bag header, index data, chunk info: skipped
                except Exception as e:  # noqa: BLE001 - a cut-off or damaged record ends the readable part
                    self.broke = (pos, " ".join(str(e).split()) or type(e).__name__)
                    break
        self.entries.sort()
        self.connections = list(conns.values())
        self._cache: tuple[int, bytes] | None = None
        from rosbags.typesys import Stores, get_types_from_msg, get_typestore

        self.typestore = get_typestore(Stores.EMPTY)
        for c in self.connections:
            self.typestore.register(get_types_from_msg(c.msgdef, c.msgtype))

    def _connection(self, header, data) -> _Conn:
        return _Conn(header.get_uint32("conn"), header.get_string("topic"), _msgtype(data.get_string("type")),
                     data.get_string("message_definition"))

    def _scan_chunk(self, raw: bytes, chunk_pos: int, conns: dict) -> None:
        import io

        b = io.BytesIO(raw)
        while b.tell() < len(raw):
            offset = b.tell()
            header = self._header.read(b)
            op = header.get_uint8("op")
            if op == self._rt.CONNECTION:
                c = self._connection(header, self._header.read(b))
                conns.setdefault(c.id, c)
                continue
            size = self._read_uint32(b)
            if op == self._rt.MSGDATA:
                self.entries.append((header.get_time("time"), header.get_uint32("conn"), chunk_pos, offset))
            b.seek(size, 1)

    def messages(self, connections=(), start: int | None = None, stop: int | None = None):
        import io

        wanted = {c.id: c for c in (connections or self.connections)}
        for t_ns, cid, chunk_pos, offset in self.entries:
            if cid not in wanted or (start is not None and t_ns < start) or (stop is not None and t_ns >= stop):
                continue
            if self._cache is None or self._cache[0] != chunk_pos:
                data_pos, size, unpack = self._chunks[chunk_pos]
                with open(self.path, "rb") as f:
                    f.seek(data_pos)
                    self._cache = (chunk_pos, unpack(f.read(size)))
            b = io.BytesIO(self._cache[1])
            b.seek(offset)
            self._header.read(b)
            yield wanted[cid], t_ns, self._read_bytes(b, self._read_uint32(b))

    def deserialize(self, raw: bytes, msgtype: str):
        return self.typestore.deserialize_ros1(raw, msgtype)


def _pick(candidates: list[str], preferred: tuple[str, ...]) -> str | None:
    if not candidates:
        return None
    for word in preferred:
        hits = sorted(t for t in candidates if word in t.lower())
        if hits:
            return min(hits, key=len)
    return sorted(candidates, key=len)[0]


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    hints = {"not indexed": "a ROS 1 bag whose recording was cut off: 'rosbag reindex' restores its index",
             "index looks damaged": "a ROS 1 bag cut off or damaged: 'rosbag reindex' restores its index",
             "end magic": "an MCAP file cut off before its summary: 'mcap recover' rebuilds it",
             "malformed": "a damaged SQLite file: 'sqlite3 FILE .recover' salvages its rows"}
    for key, hint in hints.items():
        if key in text:
            return f"{text} ({hint})"
    return text


# --------------------------------------------------------------------------------------------------
# writing: an episode as a bag (test data, exchange with ROS tools)
# --------------------------------------------------------------------------------------------------
def write_bag(frames, path: str | Path, *, storage: str = "db3", compressed: bool = False,
              camera_frame: str = "camera_color_optical_frame", base_frame: str = "base", tcp_frame: str = "tcp",
              tcp_from_camera: Transform | None = None, depth_scale: float = 1e-3,
              depth_delay_s: float = 0.0, tf_stamp_offset_s: float = 0.0) -> Path:
    """Write RGB-D frames as a bag: colour, depth (registered), CameraInfo, ``/tf`` and ``/tf_static``.

    Parameters
    ----------
    frames : iterable of RGBDFrame
    path : path
        ``.bag`` for ``storage="ros1"``; a rosbag2 folder for ``"db3"`` / ``"mcap"``.
    storage : {"ros1", "db3", "mcap"}
    compressed : bool
        Colour as ``CompressedImage`` JPEG and depth as ``compressedDepth`` PNG (topics ``.../compressed``,
        ``.../compressedDepth``) instead of raw ``Image``.
    depth_scale : float
        Metres per unit of the 16UC1 depth written.
    depth_delay_s, tf_stamp_offset_s : float
        Offsets added to the depth and tf stamps (to test synchronisation).
    """
    try:
        from rosbags.rosbag1 import Writer as Writer1
        from rosbags.rosbag2 import StoragePlugin
        from rosbags.rosbag2 import Writer as Writer2
        from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    except ImportError:
        raise MissingDependencyError("rosbags", "bags", "writing ROS bags") from None
    if storage not in ("ros1", "db3", "mcap"):
        raise ConfigError(f"storage must be 'ros1', 'db3' or 'mcap', got {storage!r}")
    ros1 = storage == "ros1"
    ts = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_HUMBLE)
    if "tf2_msgs/msg/TFMessage" not in ts.types:  # the ROS 1 store lacks it
        ts.register(get_types_from_msg("geometry_msgs/TransformStamped[] transforms", "tf2_msgs/msg/TFMessage"))
    T = ts.types
    m = {k: T[f"{pkg}/msg/{k}"] for pkg, k in (("sensor_msgs", "Image"), ("sensor_msgs", "CompressedImage"),
                                                ("sensor_msgs", "CameraInfo"), ("std_msgs", "Header"),
                                                ("geometry_msgs", "TransformStamped"), ("geometry_msgs", "Transform"),
                                                ("geometry_msgs", "Vector3"), ("geometry_msgs", "Quaternion"),
                                                ("tf2_msgs", "TFMessage"), ("sensor_msgs", "RegionOfInterest"))}
    Time = T["builtin_interfaces/msg/Time"]

    def stamp(s: float):
        sec = int(np.floor(s))
        nsec = int(round((s - sec) * 1e9))
        if nsec >= 1_000_000_000:
            sec, nsec = sec + 1, nsec - 1_000_000_000
        return Time(sec=sec, nanosec=nsec)

    def header(s: float, frame_id: str, seq: int):
        return m["Header"](seq=seq, stamp=stamp(s), frame_id=frame_id) if ros1 else \
            m["Header"](stamp=stamp(s), frame_id=frame_id)

    def tfs(t: Transform, s: float, parent: str, child: str, seq: int):
        xyz, q = t.as_xyz_quat_xyzw()
        return m["TransformStamped"](header=header(s, parent, seq), child_frame_id=child, transform=m["Transform"](
            translation=m["Vector3"](x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2])),
            rotation=m["Quaternion"](x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3]))))

    path = Path(path)
    color_topic = "/camera/color/image_raw" + ("/compressed" if compressed else "")
    depth_topic = "/camera/aligned_depth_to_color/image_raw" + ("/compressedDepth" if compressed else "")
    img_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    if ros1:
        writer = Writer1(path)
    else:
        writer = Writer2(path, version=9, storage_plugin=StoragePlugin.MCAP if storage == "mcap" else
                         StoragePlugin.SQLITE3)
    serialize = ts.serialize_ros1 if ros1 else ts.serialize_cdr

    def add(topic, msgtype):
        return writer.add_connection(topic, msgtype if not ros1 else msgtype, typestore=ts)

    with writer:
        c_color, c_depth = add(color_topic, img_type), add(depth_topic, img_type)
        c_info = add("/camera/color/camera_info", "sensor_msgs/msg/CameraInfo")
        c_tf, c_static = add("/tf", "tf2_msgs/msg/TFMessage"), add("/tf_static", "tf2_msgs/msg/TFMessage")
        static_written = False
        for seq, f in enumerate(frames):
            s = float(f.timestamp_s)
            t_ns = int(round(s * 1e9))
            k = f.intrinsics
            if not static_written and tcp_from_camera is not None:
                msg = m["TFMessage"](transforms=[tfs(tcp_from_camera, s, tcp_frame, camera_frame, 0)])
                writer.write(c_static, t_ns, serialize(msg, "tf2_msgs/msg/TFMessage"))
                static_written = True
            if f.base_from_tcp is not None:
                msg = m["TFMessage"](transforms=[tfs(f.base_from_tcp, s + tf_stamp_offset_s, base_frame, tcp_frame, seq)])
                writer.write(c_tf, t_ns, serialize(msg, "tf2_msgs/msg/TFMessage"))
            info_kw = dict(header=header(s, camera_frame, seq), height=k.height, width=k.width,
                           distortion_model="plumb_bob", binning_x=0, binning_y=0,
                           roi=m["RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            kk = [k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0]
            rr = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0]
            pp = [k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
            d = np.asarray(k.distortion, np.float64)
            info = m["CameraInfo"](**info_kw, **({"D": d, "K": np.array(kk), "R": np.array(rr), "P": np.array(pp)}
                                                  if ros1 else {"d": d, "k": np.array(kk), "r": np.array(rr),
                                                                "p": np.array(pp)}))
            writer.write(c_info, t_ns, serialize(info, "sensor_msgs/msg/CameraInfo"))
            raw_depth = np.round(f.depth_m / depth_scale).astype(np.uint16)
            ds = s + depth_delay_s
            if compressed:
                ok, jpg = cv2.imencode(".jpg", np.ascontiguousarray(f.color[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
                ok2, png = cv2.imencode(".png", raw_depth)
                if not (ok and ok2):
                    raise InputError("OpenCV could not encode a frame for the bag")
                cmsg = m["CompressedImage"](header=header(s, camera_frame, seq), format="rgb8; jpeg compressed bgr8",
                                            data=np.frombuffer(jpg.tobytes(), np.uint8))
                cfg = np.array([0], "<i4").tobytes() + np.array([0.0, 0.0], "<f4").tobytes()
                dmsg = m["CompressedImage"](header=header(ds, camera_frame, seq), format="16UC1; compressedDepth png",
                                            data=np.frombuffer(cfg + png.tobytes(), np.uint8))
            else:
                cmsg = m["Image"](header=header(s, camera_frame, seq), height=k.height, width=k.width, encoding="rgb8",
                                  is_bigendian=0, step=3 * k.width, data=np.ascontiguousarray(f.color).reshape(-1))
                dmsg = m["Image"](header=header(ds, camera_frame, seq), height=k.height, width=k.width,
                                  encoding="16UC1", is_bigendian=0, step=2 * k.width,
                                  data=raw_depth.astype("<u2").view(np.uint8).reshape(-1))
            writer.write(c_color, t_ns, serialize(cmsg, img_type))
            writer.write(c_depth, int(round(ds * 1e9)), serialize(dmsg, img_type))
    return path


__all__ = ["Ros1Scan", "RosbagEpisode", "TfBuffer", "decode_image", "write_bag"]
