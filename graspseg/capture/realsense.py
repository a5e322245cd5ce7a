"""Intel RealSense: a live camera, its SDK recordings (``.db3``, legacy ``.bag``), and the devices present.

:class:`RealSenseSource` opens the depth and colour sensors at the configured modes, starts them into one
``rs.syncer``, applies the post-filters (threshold, decimation, spatial, temporal, hole filling) and aligns
depth to colour (or colour to depth), and yields :class:`~graspseg.core.frame.RGBDFrame` s whose images are
*copied out* of librealsense's frame pool (it stalls after ~16 held frames). Each frame carries the device's
own intrinsics (of the image it is registered to) and depth scale, and in ``meta``:

``device_timestamp_ms``, ``timestamp_domain``
    The camera's timestamp and its clock (``global_time``: the device clock mapped to the host's;
    ``hardware_clock``: the device's own; ``system_time``: host time of arrival).
``host_timestamp_s``
    ``time.time()`` when the frame was handed to graspseg.
``color_frame_number``, ``depth_frame_number``, ``serial``, ``depth_scale``.

``frame.timestamp_s`` is the device timestamp in seconds when it is on the host clock (``global_time``,
``system_time``) or when reading a recording, else the host arrival time, so that robot poses (host clock)
can be matched to it (:mod:`graspseg.capture.poses`).

Faults: a frame that does not come within ``frame_timeout_s`` triggers reconnection (sensors closed, the
device looked up again after a backoff that doubles up to ``reconnect_backoff_max_s``, optionally a hardware
reset with the wait it needs); when every attempt fails the source raises :class:`CaptureTimeoutError` or
:class:`DeviceNotConnectedError` naming what to check. librealsense reports every problem as a bare
``RuntimeError``; :func:`map_realsense_error` turns them into graspseg errors.

Recordings: :class:`RealSenseRecording` (:func:`open_realsense_recording`) plays a ``.db3`` (or a legacy
``.bag``, converted first) back as a frame source, not in real time, every recorded frame pair exactly once, from
the recording's own index (:mod:`.realsense_file`); :class:`RealSenseEpisode` is the same recording as an episode
for ``graspseg analyze``. :func:`is_realsense_recording` (from :mod:`.realsense_file`, no SDK needed) tells a
RealSense SDK recording from other ROS 2 bags.
"""

from __future__ import annotations

import atexit
import logging
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..core.camera import CameraIntrinsics, CameraRig, check_depth_scale
from ..core.config import from_dict
from ..core.errors import (
    CaptureTimeoutError,
    ConfigError,
    DeviceNotConnectedError,
    GraspsegError,
    InputError,
    MissingDependencyError,
)
from ..core.frame import RGBDFrame
from .poses import PoseProvider, attach_pose
from .realsense_file import RecordedFrame, intact, is_realsense_recording, read_index, salvage_recording
from .sources import pair_nearest

log = logging.getLogger(__name__)

#: What to check when a camera is missing or silent; appended to the errors.
CHECK_HARDWARE = ("check that the camera is on a USB 3 port (graspseg devices shows the USB type), the cable "
                  "(a USB 3 cable, no passive extension), and that no other process (realsense-viewer, a ROS "
                  "node, another graspseg) holds the camera")

VISUAL_PRESETS = ("custom", "default", "hand", "high_accuracy", "high_density", "medium_density",
                  "remove_ir_pattern", "edge_enhancement")


def import_pyrealsense2(purpose: str = "RealSense cameras"):
    """``pyrealsense2``, or :class:`MissingDependencyError` naming the ``realsense`` extra."""
    try:
        import pyrealsense2 as rs
    except ImportError:
        raise MissingDependencyError("pyrealsense2", "realsense", purpose) from None
    return rs


# --------------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DepthFilters:
    """librealsense post-filters, applied to depth in the recommended order (decimation, threshold,
    disparity domain: spatial, temporal; back to depth; hole filling) before alignment.

    Attributes
    ----------
    threshold_min_m, threshold_max_m : float or None
        Depth outside [min, max] metres becomes 0 (no reading); None = that side open; both None = off.
    decimation : int
        Downsampling factor of the depth image, pixels (1 = off; 2..8). Intrinsics are rescaled by the SDK.
    spatial : bool
        Edge-preserving spatial smoothing; ``spatial_alpha`` (0.25..1, smaller = more smoothing),
        ``spatial_delta`` (disparity steps of an edge), ``spatial_iterations`` (1..5).
    temporal : bool
        Temporal smoothing over frames; ``temporal_alpha`` (0..1, weight of the new frame),
        ``temporal_delta`` (disparity steps).
    hole_filling : int or None
        None = off; 0 fill from the left, 1 farthest of the neighbours, 2 nearest of the neighbours.
    """

    threshold_min_m: float | None = None
    threshold_max_m: float | None = None
    decimation: int = 1
    spatial: bool = False
    spatial_alpha: float = 0.5
    spatial_delta: float = 20.0
    spatial_iterations: int = 2
    temporal: bool = False
    temporal_alpha: float = 0.4
    temporal_delta: float = 20.0
    hole_filling: int | None = None

    def __post_init__(self) -> None:
        lo, hi = self.threshold_min_m, self.threshold_max_m
        for name, v in (("threshold_min_m", lo), ("threshold_max_m", hi)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 65):
                raise ConfigError(f"filters.{name} is {v!r}; expected metres in [0, 65] or null (off)")
        if lo is not None and hi is not None and lo >= hi:
            raise ConfigError(f"filters.threshold_min_m ({lo} m) must be below threshold_max_m ({hi} m)")
        if isinstance(self.decimation, bool) or not isinstance(self.decimation, int) or not 1 <= self.decimation <= 8:
            raise ConfigError(f"filters.decimation is {self.decimation!r}; expected an integer factor 1..8 (1 = off)")
        if not 0.25 <= self.spatial_alpha <= 1 or not 0 <= self.temporal_alpha <= 1:
            raise ConfigError(f"filters.spatial_alpha ({self.spatial_alpha}) must be in [0.25, 1] and "
                              f"temporal_alpha ({self.temporal_alpha}) in [0, 1]")
        if not 1 <= self.spatial_iterations <= 5:
            raise ConfigError(f"filters.spatial_iterations is {self.spatial_iterations}; expected 1..5")
        if self.hole_filling not in (None, 0, 1, 2):
            raise ConfigError(f"filters.hole_filling is {self.hole_filling!r}; expected null (off), 0 (from left), "
                              "1 (farthest around) or 2 (nearest around)")

    @property
    def any(self) -> bool:
        return (self.threshold_min_m is not None or self.threshold_max_m is not None or self.decimation > 1
                or self.spatial or self.temporal or self.hole_filling is not None)


@dataclass(frozen=True)
class RealSenseConfig:
    """How to open a RealSense camera (a YAML section or ``--camera.<field>`` flags).

    Attributes
    ----------
    serial : str or None
        The camera's serial number; None = the only camera connected.
    color_width, color_height, color_fps, depth_width, depth_height, depth_fps : int
        Stream modes, pixels and frames per second. D435: 640x480, 848x480, 1280x720 at 6/15/30 fps (90 for
        depth at 848x480); D405: depth and colour from one sensor at the same modes.
    align_depth_to_color : bool
        Register depth to the colour image (the frame's intrinsics are the colour camera's); False registers
        colour to depth instead (the depth camera's intrinsics).
    visual_preset : str or None
        A D4xx depth preset (``high_accuracy``, ``high_density``, ``default``...); None = leave as is.
    emitter : bool or None
        Infrared projector on/off; None = leave as is.
    filters : DepthFilters
    frame_timeout_s : float
        Wait for one frame before counting a timeout, seconds.
    reconnect_attempts : int
        Reconnections tried after a timeout before giving up (0 = raise at the first timeout).
    reconnect_backoff_s, reconnect_backoff_max_s : float
        The first wait before reconnecting, seconds; it doubles each attempt up to the maximum.
    hardware_reset : bool
        Reset the camera when reconnecting (clears a wedged USB state); waits up to ``reset_wait_s`` for it to
        come back (opening it sooner crashes some firmware).
    queue_frames : int
        Framesets the syncer may hold (1..16); older ones are dropped, never piled up.
    """

    serial: str | None = None
    color_width: int = 640
    color_height: int = 480
    color_fps: int = 30
    depth_width: int = 640
    depth_height: int = 480
    depth_fps: int = 30
    align_depth_to_color: bool = True
    visual_preset: str | None = None
    emitter: bool | None = None
    filters: DepthFilters = field(default_factory=DepthFilters)
    frame_timeout_s: float = 1.0
    reconnect_attempts: int = 3
    reconnect_backoff_s: float = 0.5
    reconnect_backoff_max_s: float = 8.0
    hardware_reset: bool = False
    reset_wait_s: float = 5.0
    queue_frames: int = 2

    def __post_init__(self) -> None:
        for name in ("color_width", "color_height", "color_fps", "depth_width", "depth_height", "depth_fps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ConfigError(f"camera.{name} is {v!r}; expected a positive integer "
                                  f"({'pixels' if 'fps' not in name else 'frames per second'})")
        if self.visual_preset is not None and self.visual_preset not in VISUAL_PRESETS:
            raise ConfigError(f"camera.visual_preset is {self.visual_preset!r}; expected one of {VISUAL_PRESETS} "
                              "or null")
        if not self.frame_timeout_s > 0 or not self.reset_wait_s >= 0:
            raise ConfigError(f"camera.frame_timeout_s ({self.frame_timeout_s}) must be > 0 s and reset_wait_s "
                              f"({self.reset_wait_s}) >= 0 s")
        if not isinstance(self.reconnect_attempts, int) or self.reconnect_attempts < 0:
            raise ConfigError(f"camera.reconnect_attempts is {self.reconnect_attempts!r}; expected an integer >= 0")
        if not 0 <= self.reconnect_backoff_s <= self.reconnect_backoff_max_s:
            raise ConfigError(f"camera.reconnect_backoff_s ({self.reconnect_backoff_s}) must be in "
                              f"[0, reconnect_backoff_max_s = {self.reconnect_backoff_max_s}] seconds")
        if not isinstance(self.queue_frames, int) or not 1 <= self.queue_frames <= 16:
            raise ConfigError(f"camera.queue_frames is {self.queue_frames!r}; expected 1..16 (librealsense's pool "
                              "holds about 16 frames)")
        if isinstance(self.filters, dict):
            object.__setattr__(self, "filters", from_dict(DepthFilters, self.filters))

    @classmethod
    def from_dict(cls, data: dict) -> RealSenseConfig:
        return from_dict(cls, data)


# --------------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------------
def map_realsense_error(e: BaseException, doing: str, *, timeout_s: float | None = None) -> GraspsegError:
    """A graspseg error for librealsense's bare ``RuntimeError`` ``e`` raised while ``doing``."""
    if isinstance(e, GraspsegError):
        return e
    msg = str(e).strip() or type(e).__name__
    low = msg.lower()
    if "didn't arrive" in low or "did not arrive" in low or "timeout" in low:
        wait = f" within {timeout_s:g} s" if timeout_s is not None else ""
        return CaptureTimeoutError(f"{doing}: no frame arrived{wait} ({msg}); {CHECK_HARDWARE}")
    if ("no device" in low or "disconnected" in low or "not connected" in low or "power state" in low
            or "busy" in low or "no such device" in low or "failed to open" in low):
        return DeviceNotConnectedError(f"{doing}: the camera is not available ({msg}); {CHECK_HARDWARE}")
    if "resolve" in low or "not supported" in low or "invalid" in low or "out of range" in low:
        return ConfigError(f"{doing}: the camera refused the request ({msg}); list its modes with graspseg devices")
    return DeviceNotConnectedError(f"{doing}: librealsense error: {msg}; {CHECK_HARDWARE}")


# --------------------------------------------------------------------------------------------------
# devices
# --------------------------------------------------------------------------------------------------
def _info(rs, dev, key: str) -> str | None:
    info = getattr(rs.camera_info, key)
    try:
        return dev.get_info(info) if dev.supports(info) else None
    except RuntimeError:
        return None


def _stream_modes(rs, dev) -> list[dict]:
    modes = []
    for sensor in dev.query_sensors():
        for p in sensor.get_stream_profiles():
            if not p.is_video_stream_profile():
                continue
            v = p.as_video_stream_profile()
            modes.append({"sensor": sensor.get_info(rs.camera_info.name) if sensor.supports(rs.camera_info.name) else "",
                          "stream": p.stream_name().lower() if p.stream_name() else str(p.stream_type()).split(".")[-1],
                          "format": str(p.format()).split(".")[-1], "width": v.width(), "height": v.height(),
                          "fps": p.fps()})
    return modes


def describe_device(dev, *, modes: bool = False) -> dict:
    """Name, serial, firmware, USB type (and stream modes) of an ``rs.device``."""
    rs = import_pyrealsense2()
    d = {"name": _info(rs, dev, "name"), "serial": _info(rs, dev, "serial_number"),
         "firmware": _info(rs, dev, "firmware_version"), "usb_type": _info(rs, dev, "usb_type_descriptor"),
         "product_line": _info(rs, dev, "product_line"), "physical_port": _info(rs, dev, "physical_port")}
    if d["usb_type"] is not None and d["usb_type"].startswith("2"):
        d["warning"] = "on USB 2: only low resolutions and rates are available; use a USB 3 port and cable"
    if modes:
        d["modes"] = _stream_modes(rs, dev)
    return d


def list_devices(*, modes: bool = False, context=None) -> list[dict]:
    """Every RealSense camera connected: :func:`describe_device` of each."""
    rs = import_pyrealsense2("listing RealSense cameras")
    ctx = context or rs.context()
    try:
        devs = list(ctx.query_devices())
    except RuntimeError as e:
        raise map_realsense_error(e, "listing RealSense cameras") from None
    return [describe_device(d, modes=modes) for d in devs]


# --------------------------------------------------------------------------------------------------
# the source
# --------------------------------------------------------------------------------------------------
class EndOfRecording(GraspsegError, StopIteration):
    """A recording played back to its end, or capture interrupted (not an error: iteration stops)."""


def _mode_text(modes: list[dict], stream: str) -> str:
    keep = sorted({(m["width"], m["height"], m["fps"], m["format"]) for m in modes if m["stream"].startswith(stream)})
    return ", ".join(f"{w}x{h}@{f} {fmt}" for w, h, f, fmt in keep) or "none"


class RealSenseSource:
    """Frames from a RealSense camera (or an ``rs`` device given: a recording's playback, a software device).

    Use as a context manager, iterate for frames (or call :meth:`read`)::

        with RealSenseSource(RealSenseConfig(serial="123622270123"), pose=robot.base_from_tcp) as cam:
            for frame in cam:
                ...

    Parameters
    ----------
    config : RealSenseConfig
    device : rs.device or callable returning one, optional
        Use this device instead of looking the camera up by serial (a callable is called again to reconnect).
    pose : callable or PoseStream, optional
        Attaches ``base_from_tcp`` to each frame (:func:`graspseg.capture.poses.attach_pose`).
    record_db3 : path, optional
        Also record the SDK's own ``.db3`` (ROS 2 bag) of the raw streams.
    playback : bool
        The device is a recording: no reconnects, its end stops iteration (:class:`EndOfRecording`).
    """

    def __init__(self, config: RealSenseConfig | None = None, *, device=None, pose: PoseProvider | None = None,
                 record_db3: str | Path | None = None, playback: bool = False, context=None) -> None:
        self.config = config or RealSenseConfig()
        if not isinstance(self.config, RealSenseConfig):
            raise ConfigError(f"config must be a RealSenseConfig, got {type(self.config).__name__}")
        self._rs = import_pyrealsense2()
        self._device_arg = device
        self._context = context
        self.pose = pose
        self.record_db3 = None if record_db3 is None else Path(record_db3)
        if self.record_db3 is not None and self.record_db3.suffix != ".db3":
            raise ConfigError(f"record_db3 is {self.record_db3}; librealsense 2.59 records ROS 2 .db3 files only "
                              "(name it *.db3)")
        self.playback = bool(playback)
        self._sensors: list = []
        self._syncer = None
        self._device = None
        self._recorder = None
        self._filters: list = []
        self._align = None
        self._lock = threading.RLock()
        self._interrupt = threading.Event()
        self._open = False
        self._connections = 0
        self.depth_scale: float | None = None
        self.device_info: dict = {}
        self.stats = {"frames": 0, "timeouts": 0, "reconnects": 0, "incomplete_framesets": 0,
                      "skipped_frame_numbers": 0}
        self._last_number: int | None = None

    # --- connection -------------------------------------------------------------------------------
    def _find_device(self):
        rs = self._rs
        if self._device_arg is not None:
            dev = self._device_arg() if callable(self._device_arg) and not isinstance(self._device_arg, rs.device) \
                else self._device_arg
            if dev is None:
                raise DeviceNotConnectedError(f"the camera factory returned no device; {CHECK_HARDWARE}")
            return dev
        ctx = self._context or rs.context()
        try:
            devs = list(ctx.query_devices())
        except RuntimeError as e:
            raise map_realsense_error(e, "looking for RealSense cameras") from None
        serials = [_info(rs, d, "serial_number") for d in devs]
        want = self.config.serial
        if not devs:
            raise DeviceNotConnectedError(f"no RealSense camera found; {CHECK_HARDWARE}")
        if want is None:
            if len(devs) > 1:
                raise ConfigError(f"{len(devs)} RealSense cameras are connected ({', '.join(map(str, serials))}); "
                                  "choose one with camera.serial (--serial)")
            return devs[0]
        if want not in serials:
            raise DeviceNotConnectedError(f"RealSense camera {want} not found (connected: "
                                          f"{', '.join(map(str, serials))}); {CHECK_HARDWARE}")
        return devs[serials.index(want)]

    def _reset_device(self, dev) -> None:
        """Hardware reset, then wait (up to ``reset_wait_s``) for the camera to leave and come back."""
        rs = self._rs
        serial = _info(rs, dev, "serial_number")
        log.warning("resetting RealSense %s and waiting up to %.1f s for it to come back", serial,
                    self.config.reset_wait_s)
        try:
            dev.hardware_reset()
        except RuntimeError as e:
            log.warning("hardware reset of %s failed: %s", serial, e)
            return
        if self._device_arg is not None:
            time.sleep(min(self.config.reset_wait_s, 0.1))
            return
        deadline = time.monotonic() + self.config.reset_wait_s
        gone = False
        ctx = self._context or rs.context()
        while time.monotonic() < deadline:
            present = serial in [_info(rs, d, "serial_number") for d in ctx.query_devices()]
            gone = gone or not present
            if gone and present:
                time.sleep(0.5)  # enumerated is not yet ready: opening at once crashes some firmware
                return
            time.sleep(0.1)

    def _select_profiles(self, dev) -> dict:
        """{sensor index: [profiles]} for the depth and colour modes asked for."""
        rs = self._rs
        cfg = self.config
        want = {"depth": (rs.stream.depth, rs.format.z16, cfg.depth_width, cfg.depth_height, cfg.depth_fps),
                "color": (rs.stream.color, None, cfg.color_width, cfg.color_height, cfg.color_fps)}
        chosen: dict[int, list] = {}
        sensors = list(dev.query_sensors())
        for key, (stream, fmt, w, h, fps) in want.items():
            found = None
            for si, sensor in enumerate(sensors):
                for p in sensor.get_stream_profiles():
                    if p.stream_type() != stream or not p.is_video_stream_profile() or p.fps() != fps:
                        continue
                    if fmt is not None and p.format() != fmt:
                        continue
                    if fmt is None and p.format() not in (rs.format.rgb8, rs.format.bgr8):
                        continue
                    v = p.as_video_stream_profile()
                    if (v.width(), v.height()) == (w, h):
                        if found is None or p.format() == rs.format.rgb8:
                            found = (si, p)
                if found is not None:
                    break
            if found is None:
                if self.playback:
                    present = sorted({m["stream"] for m in _stream_modes(rs, dev)})
                    raise InputError(f"the recording has no {key} stream at {w}x{h}@{fps} (streams: "
                                     f"{', '.join(present) or 'none'}; {key} modes: {_mode_text(_stream_modes(rs, dev), key)}); "
                                     f"a recording needs both depth and colour")
                raise ConfigError(f"the camera has no {key} mode {w}x{h}@{fps}; it offers: "
                                  f"{_mode_text(_stream_modes(rs, dev), key)}")
            chosen.setdefault(found[0], []).append(found[1])
        return {si: (sensors[si], profiles) for si, profiles in chosen.items()}

    def _depth_units(self, sensor) -> float:
        rs = self._rs
        try:
            if sensor.supports(rs.option.depth_units):
                return float(sensor.get_option(rs.option.depth_units))
            if sensor.is_depth_sensor():
                return float(sensor.as_depth_sensor().get_depth_scale())
        except RuntimeError as e:
            raise map_realsense_error(e, "reading the depth scale") from None
        raise ConfigError("the camera reports no depth scale (depth_units option); it cannot give metric depth")

    def _set_options(self, sensor) -> None:
        rs, cfg = self._rs, self.config
        try:
            if cfg.visual_preset is not None and sensor.supports(rs.option.visual_preset):
                sensor.set_option(rs.option.visual_preset, float(getattr(rs.rs400_visual_preset, cfg.visual_preset)))
            if cfg.emitter is not None and sensor.supports(rs.option.emitter_enabled):
                sensor.set_option(rs.option.emitter_enabled, 1.0 if cfg.emitter else 0.0)
            if not self.playback and sensor.supports(rs.option.global_time_enabled) \
                    and not sensor.is_option_read_only(rs.option.global_time_enabled):
                sensor.set_option(rs.option.global_time_enabled, 1.0)
        except RuntimeError as e:
            raise map_realsense_error(e, "setting camera options") from None

    def _make_filters(self) -> list:
        rs, f = self._rs, self.config.filters
        out = []
        if f.decimation > 1:
            d = rs.decimation_filter()
            d.set_option(rs.option.filter_magnitude, float(f.decimation))
            out.append(d)
        if f.threshold_min_m is not None or f.threshold_max_m is not None:
            t = rs.threshold_filter()
            t.set_option(rs.option.min_distance, float(f.threshold_min_m or 0.0))
            t.set_option(rs.option.max_distance, float(f.threshold_max_m if f.threshold_max_m is not None else 65.0))
            out.append(t)
        if f.spatial or f.temporal:
            out.append(rs.disparity_transform(True))
            if f.spatial:
                s = rs.spatial_filter()
                s.set_option(rs.option.filter_smooth_alpha, float(f.spatial_alpha))
                s.set_option(rs.option.filter_smooth_delta, float(f.spatial_delta))
                s.set_option(rs.option.filter_magnitude, float(f.spatial_iterations))
                out.append(s)
            if f.temporal:
                t = rs.temporal_filter()
                t.set_option(rs.option.filter_smooth_alpha, float(f.temporal_alpha))
                t.set_option(rs.option.filter_smooth_delta, float(f.temporal_delta))
                out.append(t)
            out.append(rs.disparity_transform(False))
        if f.hole_filling is not None:
            h = rs.hole_filling_filter()
            h.set_option(rs.option.holes_fill, float(f.hole_filling))
            out.append(h)
        return out

    def _make_sink(self):
        """Where the sensors deliver frames: an ``rs.syncer`` pairing depth and colour by timestamp."""
        return self._rs.syncer(self.config.queue_frames)

    def _connect(self) -> None:
        rs = self._rs
        dev = self._find_device()
        if self.config.hardware_reset and self._connections > 0:
            self._reset_device(dev)
            dev = self._find_device()
        self.device_info = describe_device(dev)
        if self.record_db3 is not None:
            path = self.record_db3
            if self._connections > 0:  # one file per connection: the recorder cannot append
                path = path.with_name(f"{path.stem}.part{self._connections}{path.suffix}")
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._recorder = rs.recorder(str(path), dev)  # before opening the sensors
            except RuntimeError as e:
                raise map_realsense_error(e, f"starting the recording {path}") from None
            dev = self._recorder
            self.recording_files = [*getattr(self, "recording_files", []), str(path)]
        if self.playback:
            pb = dev.as_playback()
            pb.set_real_time(False)
            self._playback = pb
        chosen = self._select_profiles(dev)
        depth_sensor = next(s for s, ps in chosen.values() if any(p.stream_type() == rs.stream.depth for p in ps))
        self.depth_scale = check_depth_scale(self._depth_units(depth_sensor))
        self._syncer = self._make_sink()
        started = []
        try:
            for sensor, profiles in chosen.values():
                self._set_options(sensor)
                sensor.open(profiles if len(profiles) > 1 else profiles[0])
                started.append(sensor)
                sensor.start(self._syncer)  # an rs.syncer, or a recording's own callback
        except RuntimeError as e:
            self._sensors = started
            self._stop_sensors()
            raise map_realsense_error(e, "starting the camera streams") from None
        self._sensors = started
        self._device = dev
        self._filters = self._make_filters()
        self._align = rs.align(rs.stream.color if self.config.align_depth_to_color else rs.stream.depth)
        self._connections += 1
        self._last_number = None

    def _stop_sensors(self) -> None:
        if self._recorder is not None and self._sensors:
            # the SDK recorder writes from a queue: stopping the sensors at once drops what it has not written
            wait_until_written(Path(self.recording_files[-1]), quiet_s=0.3, limit_s=10.0)
        for s in self._sensors:
            for step in (s.stop, s.close):
                try:
                    step()
                except RuntimeError as e:  # already stopped or unplugged: nothing left to release
                    log.debug("releasing a sensor: %s", e)
        self._sensors = []
        self._syncer = None
        self._recorder = None
        self._device = None

    def interrupt(self) -> None:
        """Make a :meth:`read` in progress (in another thread) give up at once with :class:`EndOfRecording`
        — e.g. to stop a capture thread without waiting for timeouts and reconnection backoff. Cleared by
        :meth:`open`."""
        self._interrupt.set()

    def open(self) -> RealSenseSource:
        with self._lock:
            self._interrupt.clear()
            if not self._open:
                self._connect()
                self._open = True
        return self

    def close(self) -> None:
        """Stop and release the sensors (and finish the ``.db3`` recording)."""
        with self._lock:
            self._stop_sensors()
            self._playback = None
            self._open = False

    def __enter__(self) -> RealSenseSource:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- frames -----------------------------------------------------------------------------------
    def _ended(self) -> bool:
        pb = getattr(self, "_playback", None)
        return pb is not None and pb.current_status() == self._rs.playback_status.stopped

    def _wait_frameset(self, timeout_s: float):
        """The next frameset with both depth and colour, or :class:`CaptureTimeoutError`."""
        rs = self._rs
        deadline = time.monotonic() + timeout_s
        while True:
            if self._interrupt.is_set():
                raise EndOfRecording("capture interrupted")
            left = deadline - time.monotonic()
            if left <= 0:
                raise CaptureTimeoutError(f"no frame from the camera within {timeout_s:g} s; {CHECK_HARDWARE}")
            # poll in slices: the end of a recording shows in the playback status, not as an error, and an
            # interrupt must be seen soon
            left = min(left, 0.1)
            try:
                fs = self._syncer.wait_for_frames(max(1, int(left * 1000)))
            except RuntimeError as e:
                if self.playback and self._ended():
                    raise EndOfRecording("end of the recording") from None
                err = map_realsense_error(e, "waiting for a frame", timeout_s=timeout_s)
                if isinstance(err, CaptureTimeoutError):
                    continue
                raise err from None
            fs = fs.as_frameset()
            if fs.first_or_default(rs.stream.depth) and fs.first_or_default(rs.stream.color):
                return fs
            self.stats["incomplete_framesets"] += 1

    def _to_frame(self, fs, arrival_s: float) -> RGBDFrame:
        rs = self._rs
        raw_color = fs.get_color_frame()
        color_number = raw_color.get_frame_number()
        depth_number = fs.get_depth_frame().get_frame_number()
        for f in self._filters:
            fs = f.process(fs).as_frameset()
        fs = self._align.process(fs)
        depth = fs.get_depth_frame()
        color = fs.get_color_frame()
        if not depth or not color:
            raise CaptureTimeoutError("alignment returned an incomplete frameset (depth or colour missing); "
                                      f"{CHECK_HARDWARE}")
        ref = color if self.config.align_depth_to_color else depth
        ri = ref.profile.as_video_stream_profile().get_intrinsics()
        intr = self._intrinsics_cache(ri)
        c = np.array(np.asanyarray(color.get_data()), copy=True)  # copied out of the SDK's frame pool
        if color.profile.format() == rs.format.bgr8:
            c = np.ascontiguousarray(c[:, :, ::-1])
        # metres in one pass over the SDK's buffer (this is the copy out of its pool)
        depth_m = np.multiply(np.asanyarray(depth.get_data()), np.float32(self.depth_scale), dtype=np.float32)
        stamp_ms = raw_color.get_timestamp()
        domain = raw_color.get_frame_timestamp_domain()
        on_host_clock = domain in (rs.timestamp_domain.global_time, rs.timestamp_domain.system_time)
        timestamp_s = stamp_ms / 1000.0 if (on_host_clock or self.playback) else arrival_s
        meta = {"device_timestamp_ms": float(stamp_ms), "timestamp_domain": str(domain).split(".")[-1],
                "host_timestamp_s": arrival_s, "color_frame_number": int(color_number),
                "depth_frame_number": int(depth_number), "serial": self.device_info.get("serial"),
                "distortion_model": str(ri.model).split(".")[-1], "depth_scale": self.depth_scale}
        frame = RGBDFrame(c, depth_m, intr, timestamp_s, None, f"{int(color_number):06d}", meta)
        if self._last_number is not None and color_number > self._last_number + 1:
            self.stats["skipped_frame_numbers"] += int(color_number - self._last_number - 1)
        self._last_number = color_number
        return attach_pose(frame, self.pose)

    def _intrinsics_cache(self, ri) -> CameraIntrinsics:
        key = (ri.width, ri.height, ri.fx, ri.fy, ri.ppx, ri.ppy, tuple(ri.coeffs))
        if getattr(self, "_intr_key", None) != key:
            self._intr_key = key
            coeffs = (list(ri.coeffs) + [0.0] * 5)[:5]
            self._intr = CameraIntrinsics(ri.width, ri.height, ri.fx, ri.fy, ri.ppx, ri.ppy, tuple(coeffs))
        return self._intr

    def read(self, timeout_s: float | None = None) -> RGBDFrame:
        """The next frame (copied out of librealsense's pool).

        Waits ``timeout_s`` (default ``frame_timeout_s``); on a timeout reconnects with backoff up to
        ``reconnect_attempts`` times.

        Raises
        ------
        CaptureTimeoutError
            No frame after every reconnection; the message says how many and what to check.
        DeviceNotConnectedError
            The camera could not be found or opened again.
        EndOfRecording
            A recording reached its end (a ``StopIteration``: iteration stops).
        """
        timeout = self.config.frame_timeout_s if timeout_s is None else float(timeout_s)
        with self._lock:
            if not self._open:
                self.open()
            attempts = 0 if self.playback else self.config.reconnect_attempts
            last: GraspsegError | None = None
            for attempt in range(attempts + 1):
                if attempt:
                    try:
                        self._reconnect(attempt)
                    except (DeviceNotConnectedError, CaptureTimeoutError) as e:
                        last = e
                        continue
                try:
                    fs = self._wait_frameset(timeout)
                except CaptureTimeoutError as e:
                    self.stats["timeouts"] += 1
                    last = e
                    log.warning("RealSense: no frame within %.2f s (attempt %d of %d)", timeout, attempt + 1,
                                attempts + 1)
                    continue
                arrival = time.time()
                frame = self._to_frame(fs, arrival)
                self.stats["frames"] += 1
                return frame
            if isinstance(last, DeviceNotConnectedError):
                raise DeviceNotConnectedError(f"{last} (gave up after {attempts} reconnection(s))")
            raise CaptureTimeoutError(f"no frame from the camera within {timeout:g} s after {attempts} "
                                      f"reconnection(s); {CHECK_HARDWARE}")

    def _reconnect(self, attempt: int) -> None:
        cfg = self.config
        wait = min(cfg.reconnect_backoff_s * 2 ** (attempt - 1), cfg.reconnect_backoff_max_s)
        log.warning("RealSense: reconnecting in %.2f s (attempt %d of %d)", wait, attempt, cfg.reconnect_attempts)
        self._stop_sensors()
        if self._interrupt.wait(wait):
            raise EndOfRecording("capture interrupted")
        self.stats["reconnects"] += 1
        self._connect()

    def __iter__(self) -> Iterator[RGBDFrame]:
        self.open()
        while True:
            try:
                yield self.read()
            except EndOfRecording:
                return

    @property
    def is_open(self) -> bool:
        return self._open


# --------------------------------------------------------------------------------------------------
# recordings
# --------------------------------------------------------------------------------------------------
def wait_until_written(path: Path, *, quiet_s: float = 1.0, limit_s: float = 120.0) -> bool:
    """Wait until the SDK recorder's file ``path`` stopped growing for ``quiet_s`` seconds (it writes from a queue;
    stopping its sensors sooner drops the frames still queued). False when ``limit_s`` passed first."""
    t_end = time.monotonic() + limit_s
    last, since = -1, time.monotonic()
    while time.monotonic() < t_end:
        size = path.stat().st_size if path.exists() else 0
        if size != last:
            last, since = size, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return True
        time.sleep(0.05)
    return False


#: Pairs of a recording whose frames the reader holds ahead of the one it is waiting for (librealsense's pool
#: holds about 16 frames per stream).
LOOKAHEAD_PAIRS = 3

#: Recordings playing now: closed at interpreter exit, so that no librealsense thread is left waiting in a
#: Python callback while the interpreter shuts down (that aborts the process).
_PLAYING: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_playing() -> None:
    for rec in list(_PLAYING):
        try:
            rec.close()
        except Exception as e:  # noqa: BLE001 - exiting anyway
            log.debug("closing %s at exit: %s", getattr(rec, "path", rec), e)


class RealSenseRecording(RealSenseSource):
    """A RealSense SDK recording (``.db3``; a legacy ``.bag`` is converted to ``.db3`` first) as a frame source.

    Delivers every recorded colour frame that has a depth frame within ``sync_tolerance_s`` (device timestamps),
    in recording order, exactly once — the same frames on every playback. The frame list comes from the
    recording's own index (:func:`~.realsense_file.read_index`: frame numbers and device timestamps, no image
    decoded), so ``len(rec)`` is exact before playback starts and :attr:`pairs` / :attr:`sync` say what was
    paired. Playback is not in real time (nothing is dropped however slow the reader) and sequential: sensor
    callbacks hand each recorded frame to the reader, which pairs colour and depth as the index says (not with
    librealsense's syncer, which releases the first frames of a playback unpaired). :meth:`seek` forward skips
    frames; backward restarts the playback. Stream modes are the recording's unless ``config`` names them.

    A ``.db3`` cut short (a copy interrupted, a full disk) is salvaged up to its break into a temporary file
    (:func:`~.realsense_file.salvage_recording`) and read from there; :attr:`problems` says where it broke.

    Raises
    ------
    InputError
        The file is missing, not a RealSense recording, unreadable, lacks depth or colour, holds no complete frame
        pair, or its colour and depth are not synchronised within the tolerance.
    """

    def __init__(self, path: str | Path, config: RealSenseConfig | None = None, *, pose: PoseProvider | None = None,
                 frame_timeout_s: float = 2.0, sync_tolerance_s: float = 0.02) -> None:
        rs = import_pyrealsense2("reading RealSense recordings")
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"RealSense recording {self.path} does not exist")
        if self.path.suffix not in (".db3", ".bag"):
            raise InputError(f"{self.path} is not a RealSense recording: expected a .db3 (or legacy .bag) file")
        if not 0 < sync_tolerance_s <= 5:
            raise ConfigError(f"sync_tolerance_s must be in (0, 5] seconds, got {sync_tolerance_s!r}")
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.problems: list[str] = []
        ctx = rs.context()
        try:
            self._salvaged = None
            file = self._playable_file(ctx)
            self.index = read_index(file)
            if self._salvaged is not None:
                self.problems.append(self._break_sentence())
                log.warning("%s", self.problems[-1])
            self._plan(float(sync_tolerance_s))
            try:
                dev = ctx.load_device(str(file))
            except RuntimeError as e:
                raise InputError(f"cannot read RealSense recording {self.path} ({e}); it may be truncated or "
                                 "corrupt — record it again") from None
            base = config or self._config_from_recording(rs, dev)
        except BaseException:
            self._cleanup_tmp()
            raise
        self.file = file
        loaded = [dev]

        def device():  # the first connection plays the device loaded above; a restart loads the file again
            if loaded:
                return loaded.pop()
            ctx.unload_device(str(file))
            return ctx.load_device(str(file))

        super().__init__(replace(base, frame_timeout_s=frame_timeout_s, reconnect_attempts=0), device=device,
                         pose=pose, playback=True, context=ctx)
        self._cv = threading.Condition()
        self._buffer: dict[RecordedFrame, object] = {}
        self._next = 0
        self._stopping = False
        self._resuming = False
        self._combiner = None
        self._combined = None
        self._pending: list = []
        self._callback_errors: list[str] = []
        self._last_arrival = 0.0
        try:
            self.intrinsics, self.recorded_depth_scale = self._recorded_camera(dev)
        except BaseException:
            self._cleanup_tmp()
            raise

    def _recorded_camera(self, dev) -> tuple[CameraIntrinsics, float]:
        """Intrinsics of the image frames are registered to (colour when depth is aligned to it) and the depth
        scale, as the recording states them."""
        rs, cfg = self._rs, self.config
        want = ((rs.stream.color, cfg.color_width, cfg.color_height) if cfg.align_depth_to_color
                else (rs.stream.depth, cfg.depth_width, cfg.depth_height))
        intr, scale = None, None
        for sensor in dev.query_sensors():
            for prof in sensor.get_stream_profiles():
                if prof.stream_type() == rs.stream.depth and scale is None:
                    scale = check_depth_scale(self._depth_units(sensor))
                v = prof.as_video_stream_profile() if prof.is_video_stream_profile() else None
                if intr is None and v is not None and (prof.stream_type(), v.width(), v.height()) == want:
                    intr = self._intrinsics_cache(v.get_intrinsics())
        if intr is None or scale is None:
            raise InputError(f"{self.path}: the recording states no {'intrinsics' if intr is None else 'depth scale'} "
                             "for its streams; record it again with the RealSense SDK")
        return intr, scale

    # --- the file and its frame list ----------------------------------------------------------------
    def _playable_file(self, ctx) -> Path:
        """The ``.db3`` to play: the file itself, or a temporary conversion (legacy ``.bag``) or salvage (cut short)."""
        if self.path.suffix == ".bag":
            self._tmp = tempfile.TemporaryDirectory(prefix="graspseg-bag-")
            file = Path(self._tmp.name) / (self.path.stem + ".db3")
            try:
                ctx.convert_bag_to_db3(str(self.path), str(file))
            except RuntimeError as e:
                raise InputError(f"cannot convert the legacy recording {self.path} to .db3 ({e}); is it a complete "
                                 "RealSense .bag?") from None
            return file
        damage = intact(self.path)
        if not is_realsense_recording(self.path):
            if damage is not None and damage.startswith(("cut short", "damaged")):
                raise InputError(f"{self.path} is {damage}, and its topic list is lost with it: nothing is readable; "
                                 "record it again")
            raise InputError(f"{self.path} is not a RealSense SDK recording (no /device_0 topics; another tool's "
                             "ROS 2 bag? read those with graspseg's bag readers)")
        if damage is None:
            return self.path
        self._tmp = tempfile.TemporaryDirectory(prefix="graspseg-salvage-")
        file = Path(self._tmp.name) / self.path.name
        self._salvaged = (damage, salvage_recording(self.path, file))
        return file

    def _break_sentence(self) -> str:
        damage, kept = self._salvaged
        last = self.index.color[-1] if self.index.color else None
        where = (f"{len(self.index.color)} colour frames, the last #{last.frame_number} at "
                 f"{last.bag_time_ns / 1e9:.3f} s into the recording" if last else "no complete colour frame")
        return (f"{self.path.name} is {damage}; it is read up to its break: {where} ({kept.messages} messages, "
                f"then {kept.reason})")

    def _plan(self, tolerance_s: float) -> None:
        """:attr:`pairs` (colour, depth, depth − colour offset in s) and :attr:`sync` from the index."""
        idx = self.index
        if not idx.color or not idx.depth:
            missing = "colour" if not idx.color else "depth"
            raise InputError(f"{self.path}: no complete {missing} frame in the recording"
                             + (f" ({self.problems[-1]})" if self.problems else ""))
        color_s = [f.timestamp_ms / 1e3 for f in idx.color]
        nearest, offsets = pair_nearest(color_s, [f.timestamp_ms / 1e3 for f in idx.depth])
        self.pairs = [(c, idx.depth[int(j)], float(off)) for c, j, off in zip(idx.color, nearest, offsets, strict=True)
                      if abs(off) <= tolerance_s]
        dropped = len(idx.color) - len(self.pairs)
        self.sync = {"tolerance_s": tolerance_s, "color_images": len(idx.color), "depth_images": len(idx.depth),
                     "frames": len(self.pairs), "dropped_no_depth_within_tolerance": dropped,
                     "depth_offset_s": {"median": round(float(np.median(np.abs(offsets))), 6),
                                        "max": round(float(np.max(np.abs(offsets))), 6)}}
        if not self.pairs:
            raise InputError(f"{self.path}: colour and depth are not synchronised: the nearest depth frame is "
                             f"{np.median(np.abs(offsets)) * 1e3:.1f} ms away (median), beyond the "
                             f"{tolerance_s * 1e3:.0f} ms tolerance; raise the tolerance (--sync-tolerance-ms)")
        if dropped:
            self.problems.append(f"{dropped} of {len(idx.color)} colour frames have no depth frame within "
                                 f"{tolerance_s * 1e3:.0f} ms and were dropped")
        uses: dict[RecordedFrame, list[int]] = {}
        for k, (c, d, _) in enumerate(self.pairs):
            uses.setdefault(c, []).append(k)
            uses.setdefault(d, []).append(k)
        self._uses = uses
        self._by_number: dict[tuple[str, int], list[RecordedFrame]] = {}
        for stream, frames in (("color", idx.color), ("depth", idx.depth)):
            for f in frames:
                if f in uses:
                    self._by_number.setdefault((stream, f.frame_number), []).append(f)

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def position(self) -> int:
        """Index in :attr:`pairs` of the frame the next :meth:`read` returns."""
        return self._next

    # --- playback -------------------------------------------------------------------------------------
    def _make_sink(self):
        return self._on_frame

    def _on_frame(self, f) -> None:
        """Sensor callback (librealsense's thread): keep a frame the reader will need; wait while it is too far
        ahead (the playback, not in real time, waits with it)."""
        try:
            stream = "depth" if f.profile.stream_type() == self._rs.stream.depth else "color"
            ts = f.get_timestamp()
            known = [r for r in self._by_number.get((stream, f.get_frame_number()), ())
                     if abs(r.timestamp_ms - ts) < 0.5]
            if not known:
                return
            rec, uses = known[0], self._uses[known[0]]
            with self._cv:
                self._last_arrival = time.monotonic()
                while not self._stopping:
                    ahead = [k for k in uses if k >= self._next]
                    if not ahead:
                        return  # a frame of a pair already read (or skipped by seek)
                    if ahead[0] < self._next + LOOKAHEAD_PAIRS or self._resuming:
                        f.keep()
                        self._buffer[rec] = f
                        self._cv.notify_all()
                        return
                    self._cv.wait(0.05)
        except Exception as e:  # noqa: BLE001 - an exception must not escape into librealsense's thread
            self._callback_errors.append(f"{type(e).__name__}: {e}")

    def _find_device(self):
        dev = super()._find_device()
        # start paused: the sensors start one after the other, and a playback running meanwhile hands the
        # first frames of a stream whose sensor has not started yet to nobody
        dev.as_playback().pause()
        return dev

    def _connect(self) -> None:
        super()._connect()
        _PLAYING.add(self)
        # resume() waits for the playback's reader thread, which waits for the callbacks: they must not wait
        # for the reader meanwhile (the frames delivered during the call are all kept)
        with self._cv:
            self._resuming = True
        try:
            self._playback.resume()
        finally:
            with self._cv:
                self._resuming = False
                self._cv.notify_all()
        rs = self._rs

        def combine(frame, source) -> None:
            source.frame_ready(source.allocate_composite_frame(self._pending))

        self._combined = rs.frame_queue(2)
        self._combiner = rs.processing_block(combine)
        self._combiner.start(self._combined)

    def _stop_sensors(self) -> None:
        cv = getattr(self, "_cv", None)
        if cv is None:  # a failed first connection, before the reader's state exists
            super()._stop_sensors()
            return
        with cv:
            self._stopping = True
            cv.notify_all()
        super()._stop_sensors()
        with cv:
            self._buffer.clear()
            self._stopping = False
        self._pending = []
        self._combiner = None
        self._combined = None

    def _wait_frameset(self, timeout_s: float):
        """The composite (depth, colour) frameset of pair :attr:`position`."""
        if self._next >= len(self.pairs):
            raise EndOfRecording("end of the recording")
        c, d, _ = self.pairs[self._next]
        deadline = time.monotonic() + timeout_s
        with self._cv:
            while c not in self._buffer or d not in self._buffer:
                if self._interrupt.is_set():
                    raise EndOfRecording("capture interrupted")
                if self._callback_errors:
                    raise InputError(f"{self.path}: reading the playback failed ({self._callback_errors[0]})")
                now = time.monotonic()
                if self._ended() and now - self._last_arrival > 2.0:  # played to the end, nothing more coming
                    raise InputError(
                        f"{self.path}: frame {self._next} (colour #{c.frame_number}, depth #{d.frame_number}, "
                        f"{c.bag_time_ns / 1e9:.3f} s into the recording) is in the recording's index but playback "
                        "did not deliver it; the file is damaged from there on")
                if now > deadline:
                    raise CaptureTimeoutError(f"{self.path}: playback delivered no frame within {timeout_s:g} s "
                                              f"(waiting for frame {self._next}, colour #{c.frame_number})")
                self._cv.wait(0.05)
            self._pending = [self._buffer[d], self._buffer[c]]
            self._next += 1
            self._evict()
        self._combiner.invoke(self._pending[0])
        fs = self._combined.wait_for_frame(int(timeout_s * 1000))
        self._pending = []
        return fs.as_frameset()

    def _evict(self) -> None:
        """Release buffered frames no pair from :attr:`position` on needs (call with ``_cv`` held)."""
        for rec in [r for r in self._buffer if self._uses[r][-1] < self._next]:
            del self._buffer[rec]
        self._cv.notify_all()

    def seek(self, i: int) -> None:
        """Make the next :meth:`read` return pair ``i``: forward skips frames, backward restarts the playback."""
        if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i <= len(self.pairs):
            raise InputError(f"frame {i!r} is outside the recording's {len(self.pairs)} frames")
        i = int(i)
        with self._lock:
            if i < self._next and self._open:
                self._stop_sensors()
                self._next = i
                self._connect()
            else:
                with self._cv:
                    self._next = i
                    self._evict()
            self._last_number = None

    @staticmethod
    def _config_from_recording(rs, dev) -> RealSenseConfig:
        modes = _stream_modes(rs, dev)
        depth = [m for m in modes if m["stream"].startswith("depth")]
        color = [m for m in modes if m["stream"].startswith("color")]
        if not depth or not color:
            present = sorted({m["stream"] for m in modes})
            missing = "depth" if not depth else "colour"
            raise InputError(f"the recording has no {missing} stream (streams: {', '.join(present) or 'none'}); "
                             "graspseg needs both depth and colour")
        d, c = depth[0], color[0]
        return RealSenseConfig(color_width=c["width"], color_height=c["height"], color_fps=c["fps"],
                               depth_width=d["width"], depth_height=d["height"], depth_fps=d["fps"])

    def _cleanup_tmp(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def close(self) -> None:
        super().close()
        _PLAYING.discard(self)
        self._cleanup_tmp()


class RealSenseEpisode:
    """A RealSense SDK recording (``.db3``, legacy ``.bag``) as an episode
    (:class:`~graspseg.capture.sources.EpisodeSource`) for ``graspseg analyze``.

    Frame ``i`` is pair ``i`` of :class:`RealSenseRecording` (colour with the depth nearest in device time,
    within ``SourceOptions.sync_tolerance_s``), depth aligned to colour. Reading frames in order streams from
    one playback; reading an earlier frame restarts it (:meth:`RealSenseRecording.seek`), a later one skips
    ahead. The SDK records no prompt, robot pose or ground truth: give the target with ``--point``/``--box``.

    ``extra(i)``: ``color_frame_number``, ``depth_frame_number``, ``device_timestamp_ms`` and
    ``depth_device_timestamp_ms`` (the camera's clock, ``timestamp_domain``), ``recording_time_s`` (seconds
    since the recording started) and ``depth_offset_s`` (depth − colour device time).
    """

    def __init__(self, ref, options=None) -> None:
        from .sources import SourceOptions

        options = options or SourceOptions()
        self.ref = ref
        self.recording = RealSenseRecording(ref.path, frame_timeout_s=10.0,
                                            sync_tolerance_s=options.sync_tolerance_s)
        rec = self.recording
        self.problems: list[str] = list(rec.problems)
        self.sync: dict = dict(rec.sync)
        if options.depth_scale is not None and abs(options.depth_scale - rec.recorded_depth_scale) > 1e-9:
            self.problems.append(f"--depth-scale {options.depth_scale:g} ignored: the recording states "
                                 f"{rec.recorded_depth_scale:g} m per unit")
        self.rig = CameraRig(rec.intrinsics, None, depth_scale=rec.recorded_depth_scale,
                             name=Path(ref.path).name, allow_implausible=True)
        idx = rec.index
        self.meta = {"recording": str(ref.path), "device": idx.device,
                     "streams": {k: {f: v for f, v in st.items() if f in ("topic", "encoding", "fps", "width",
                                                                            "height")}
                                 for k, st in idx.streams.items()},
                     "depth_scale": rec.recorded_depth_scale,
                     "aligned_to": "color" if rec.config.align_depth_to_color else "depth"}
        self._intrinsics: CameraIntrinsics | None = None

    def __len__(self) -> int:
        return len(self.recording)

    def frame(self, i: int) -> RGBDFrame:
        from .sources import share_intrinsics

        rec = self.recording
        if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i < len(rec):
            raise IndexError(f"frame {i!r} is outside the recording's {len(rec)} frames")
        if rec.position != i:
            rec.seek(int(i))
        try:
            frame = rec.read()
        except EndOfRecording:
            raise InputError(f"{self.ref.path}: playback ended before frame {i}") from None
        return share_intrinsics(self, frame)

    def prompt(self, i: int) -> dict | None:
        return None

    def extra(self, i: int) -> dict:
        c, d, offset = self.recording.pairs[i]
        return {"color_frame_number": c.frame_number, "depth_frame_number": d.frame_number,
                "device_timestamp_ms": c.timestamp_ms, "depth_device_timestamp_ms": d.timestamp_ms,
                "timestamp_domain": c.domain, "recording_time_s": c.bag_time_ns / 1e9, "depth_offset_s": offset}

    def ground_truth(self, i: int) -> list:
        return []

    def close(self) -> None:
        """Stop the playback and remove temporary files (a converted or salvaged copy)."""
        self.recording.close()

    def __enter__(self) -> RealSenseEpisode:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_realsense_recording(path: str | Path, config: RealSenseConfig | None = None, **kw) -> RealSenseRecording:
    """A RealSense ``.db3``/``.bag`` recording as an iterable frame source (see :class:`RealSenseRecording`).

    >>> with open_realsense_recording("session.db3") as rec:     # doctest: +SKIP
    ...     for frame in rec:
    ...         print(frame.frame_id, frame.meta["device_timestamp_ms"])
    """
    return RealSenseRecording(path, config, **kw)


DeviceFactory = Callable[[], object]

__all__ = [
    "CHECK_HARDWARE", "DepthFilters", "EndOfRecording", "RealSenseConfig", "RealSenseEpisode", "RealSenseRecording",
    "RealSenseSource",
    "describe_device", "import_pyrealsense2", "is_realsense_recording", "list_devices", "map_realsense_error",
    "open_realsense_recording",
]
