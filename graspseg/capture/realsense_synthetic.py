"""A RealSense camera without hardware: ``rs.software_device`` fed with frames you give it.

:class:`SoftwareCamera` registers a depth sensor (z16) and a colour sensor (rgb8) with intrinsics, a depth
scale and the depth→colour extrinsics, exactly as a D4xx reports them, so :class:`~.realsense.RealSenseSource`
(and ``rs.recorder`` / ``rs.align`` / the post-filters) run on it unchanged. Frames carry epoch-millisecond
timestamps in the ``global_time`` domain (small timestamps make librealsense pair frames twice) and the frame
numbers you give.

Push frames yourself (:meth:`SoftwareCamera.push`) or let :meth:`SoftwareCamera.play` push a sequence at a
frame rate from a background thread (a camera streaming at 30 fps); :meth:`SoftwareCamera.pause` stops
delivering (a cable pulled), :meth:`SoftwareCamera.resume` starts again. :func:`write_recording` turns any
frames (a rendered or recorded episode) into the SDK's own ``.db3`` recording.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..core.camera import CameraIntrinsics
from ..core.errors import ConfigError, ShapeError
from .realsense import import_pyrealsense2

log = logging.getLogger(__name__)

#: Epoch milliseconds of the first synthetic frame when the caller gives no start time.
EPOCH_START_MS = 1.7e12


def _rs_intrinsics(rs, intr: CameraIntrinsics):
    i = rs.intrinsics()
    i.width, i.height = intr.width, intr.height
    i.fx, i.fy, i.ppx, i.ppy = intr.fx, intr.fy, intr.cx, intr.cy
    i.model = rs.distortion.brown_conrady
    i.coeffs = list(intr.distortion)
    return i


class SoftwareCamera:
    """A synthetic D4xx-like camera on ``rs.software_device``.

    Parameters
    ----------
    intrinsics : CameraIntrinsics
        Of the colour camera; the depth sensor gets ``depth_intrinsics`` (default: the same).
    depth_scale : float
        Metres per raw z16 unit (D435 1e-3, D405 1e-4).
    fps : int
        The streams' nominal rate.
    serial, name, firmware : str
        What ``camera_info`` reports.
    depth_from_color_m : (3,) float
        Translation of the depth→colour extrinsics, metres (rotation identity, as on a D435 to within 0.1°).
    """

    def __init__(self, intrinsics: CameraIntrinsics, *, depth_intrinsics: CameraIntrinsics | None = None,
                 depth_scale: float = 1e-3, fps: int = 30, serial: str = "000000000001",
                 name: str = "Intel RealSense D435 (synthetic)", firmware: str = "5.16.0.1",
                 depth_to_color_translation_m: Sequence[float] = (0.015, 0.0, 0.0)) -> None:
        rs = import_pyrealsense2("a synthetic RealSense camera")
        self.rs = rs
        self.intrinsics = intrinsics
        self.depth_intrinsics = depth_intrinsics or intrinsics
        self.depth_scale = float(depth_scale)
        self.fps = int(fps)
        self.serial = serial
        dev = rs.software_device()
        dev.register_info(rs.camera_info.name, name)
        dev.register_info(rs.camera_info.serial_number, serial)
        dev.register_info(rs.camera_info.firmware_version, firmware)
        dev.register_info(rs.camera_info.usb_type_descriptor, "3.2")
        dev.register_info(rs.camera_info.product_line, "D400")
        self._depth_sensor = dev.add_sensor("Stereo Module")
        self._color_sensor = dev.add_sensor("RGB Camera")
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid, vs.fmt, vs.bpp, vs.fps = rs.stream.depth, 0, 0, rs.format.z16, 2, self.fps
        vs.width, vs.height = self.depth_intrinsics.width, self.depth_intrinsics.height
        vs.intrinsics = _rs_intrinsics(rs, self.depth_intrinsics)
        self._depth_profile = self._depth_sensor.add_video_stream(vs, True).as_video_stream_profile()
        self._depth_sensor.add_read_only_option(rs.option.depth_units, self.depth_scale)
        cs = rs.video_stream()
        cs.type, cs.index, cs.uid, cs.fmt, cs.bpp, cs.fps = rs.stream.color, 0, 1, rs.format.rgb8, 3, self.fps
        cs.width, cs.height = intrinsics.width, intrinsics.height
        cs.intrinsics = _rs_intrinsics(rs, intrinsics)
        self._color_profile = self._color_sensor.add_video_stream(cs, True).as_video_stream_profile()
        ext = rs.extrinsics()
        ext.rotation = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]  # column-major
        ext.translation = [float(x) for x in depth_to_color_translation_m]
        self._depth_profile.register_extrinsics_to(self._color_profile, ext)
        dev.create_matcher(rs.matchers.default)
        self.device = dev
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._paused = threading.Event()
        self.pushed = 0
        self._next_number = 0

    # --- pushing frames ---------------------------------------------------------------------------
    def push(self, color: np.ndarray, depth_raw: np.ndarray, *, frame_number: int | None = None,
             timestamp_ms: float | None = None) -> int:
        """Deliver one colour + depth pair; returns the frame number used.

        ``color`` (H, W, 3) uint8 RGB at the colour size, ``depth_raw`` (h, w) uint16 at the depth size (raw
        units of ``depth_scale``). The timestamp defaults to ``EPOCH_START_MS + n * 1000 / fps``.
        """
        rs = self.rs
        color = np.ascontiguousarray(color, dtype=np.uint8)
        depth_raw = np.ascontiguousarray(depth_raw, dtype=np.uint16)
        if color.shape != (self.intrinsics.height, self.intrinsics.width, 3):
            raise ShapeError(f"colour is {color.shape}; this camera streams "
                             f"({self.intrinsics.height}, {self.intrinsics.width}, 3) RGB")
        if depth_raw.shape != (self.depth_intrinsics.height, self.depth_intrinsics.width):
            raise ShapeError(f"depth is {depth_raw.shape}; this camera streams "
                             f"({self.depth_intrinsics.height}, {self.depth_intrinsics.width}) uint16")
        with self._lock:
            n = self._next_number if frame_number is None else int(frame_number)
            self._next_number = n + 1
            t = EPOCH_START_MS + n * 1000.0 / self.fps if timestamp_ms is None else float(timestamp_ms)
            for sensor, profile, pixels, bpp in ((self._depth_sensor, self._depth_profile, depth_raw, 2),
                                                 (self._color_sensor, self._color_profile, color, 3)):
                f = rs.software_video_frame()
                f.pixels = pixels
                f.bpp = bpp
                f.stride = bpp * pixels.shape[1]
                f.timestamp = t
                f.domain = rs.timestamp_domain.global_time
                f.frame_number = n
                f.profile = profile
                if bpp == 2:
                    f.depth_units = self.depth_scale
                sensor.on_video_frame(f)
            self.pushed += 1
        return n

    def push_metres(self, color: np.ndarray, depth_m: np.ndarray, **kw) -> int:
        """:meth:`push` with depth in metres (rounded to the camera's depth scale, clipped to 16 bits)."""
        raw = np.clip(np.round(np.asarray(depth_m, np.float64) / self.depth_scale), 0, 65535).astype(np.uint16)
        return self.push(color, raw, **kw)

    # --- streaming from a background thread --------------------------------------------------------
    def play(self, frame_at: Callable[[int], tuple[np.ndarray, np.ndarray]], *, count: int | None = None,
             fps: float | None = None) -> None:
        """Push ``frame_at(n) -> (color, depth_m)`` for n = 0, 1, ... at ``fps`` from a background thread.

        Frame numbers and timestamps follow n. Runs until :meth:`stop` (or ``count`` frames). The thread
        keeps real time: a frame that is late is pushed at once, never twice.
        """
        if self._thread is not None:
            raise ConfigError("this SoftwareCamera is already playing; call stop() first")
        rate = float(fps or self.fps)
        if rate <= 0:
            raise ConfigError(f"fps must be > 0, got {rate}")
        self._stop.clear()

        def run() -> None:
            t0 = time.perf_counter()
            n = 0
            while not self._stop.is_set() and (count is None or n < count):
                wait = t0 + n / rate - time.perf_counter()
                if wait > 0 and self._stop.wait(wait):
                    break
                if self._paused.is_set():
                    n += 1
                    continue
                color, depth_m = frame_at(n)
                self.push_metres(color, depth_m, frame_number=n)
                n += 1

        self._thread = threading.Thread(target=run, name="graspseg-software-camera", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        """Stop delivering frames (as if the cable were pulled); :meth:`resume` delivers again."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def stop(self) -> None:
        """Stop :meth:`play`'s thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> SoftwareCamera:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def write_recording(frames, path: str | Path, *, depth_scale: float = 1e-4, fps: int = 30,
                    serial: str = "000000000001") -> Path:
    """Record ``frames`` (:class:`~graspseg.core.frame.RGBDFrame` s of one size, depth registered to colour) as a
    RealSense SDK ``.db3`` through a :class:`SoftwareCamera` and ``rs.recorder``, as a D4xx session would be.

    Frame ``k`` gets frame number ``k`` and device timestamp ``EPOCH_START_MS + k * 1000 / fps`` ms; depth is
    rounded to ``depth_scale`` metres (0.1 mm by default, as a D405). Returns ``path``.
    """
    from .realsense import RealSenseConfig, RealSenseSource

    frames = list(frames)
    if not frames:
        raise ConfigError("write_recording needs at least one frame")
    path = Path(path)
    if path.suffix != ".db3":
        raise ConfigError(f"{path}: librealsense 2.59 records .db3 files only")
    intr = frames[0].intrinsics
    cam = SoftwareCamera(intr, depth_scale=depth_scale, fps=fps, serial=serial,
                         depth_to_color_translation_m=(0.0, 0.0, 0.0))
    cfg = RealSenseConfig(color_width=intr.width, color_height=intr.height, color_fps=fps, depth_width=intr.width,
                          depth_height=intr.height, depth_fps=fps, frame_timeout_s=2.0, reconnect_attempts=0)
    with RealSenseSource(cfg, device=cam.device, record_db3=path):
        for k, f in enumerate(frames):
            if f.intrinsics.size != intr.size:
                raise ShapeError(f"frame {k} is {f.intrinsics.width}x{f.intrinsics.height}; the recording is "
                                 f"{intr.width}x{intr.height}")
            cam.push_metres(f.color, f.depth_m, frame_number=k)
    return path


__all__ = ["EPOCH_START_MS", "SoftwareCamera", "write_recording"]
