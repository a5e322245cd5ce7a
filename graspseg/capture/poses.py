"""The robot's TCP pose at a frame's capture time: from a callable, or interpolated in a timestamped stream.

A frame from a wrist camera is only useful in the base frame with ``base_from_tcp`` *at the instant it was
exposed*; a pose read a few tens of milliseconds later is off by the wrist's motion meanwhile (5 mm at
0.25 m/s after 20 ms). :class:`PoseStream` keeps the controller's recent ``(time, base_from_tcp)`` samples
and interpolates (linear in position, slerp in rotation) at the frame's timestamp plus a known clock offset;
:func:`attach_pose` writes the pose into the frame and says in ``frame.meta`` which source, offset and gap
were used.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Callable

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from ..core.errors import ConfigError, InputError
from ..core.frame import RGBDFrame
from ..core.transform import BASE, TCP, Transform


class PoseStream:
    """A bounded buffer of timestamped ``base_from_tcp`` samples with interpolation.

    Parameters
    ----------
    time_offset_s : float
        Added to a frame's timestamp to get the robot clock's time (robot time = camera time + offset).
    max_gap_s : float
        The largest gap between the two samples bracketing a query; wider gaps give no pose.
    max_extrapolation_s : float
        How far past the newest (or before the oldest) sample a query may be and still take that sample.
    capacity : int
        Samples kept (the oldest are dropped).
    """

    def __init__(self, *, time_offset_s: float = 0.0, max_gap_s: float = 0.1, max_extrapolation_s: float = 0.02,
                 capacity: int = 1000) -> None:
        if capacity < 2 or max_gap_s <= 0 or max_extrapolation_s < 0:
            raise ConfigError(f"PoseStream needs capacity >= 2 (got {capacity}), max_gap_s > 0 (got {max_gap_s}) "
                              f"and max_extrapolation_s >= 0 (got {max_extrapolation_s})")
        self.time_offset_s = float(time_offset_s)
        self.max_gap_s = float(max_gap_s)
        self.max_extrapolation_s = float(max_extrapolation_s)
        self._t: deque[float] = deque(maxlen=capacity)
        self._pose: deque[np.ndarray] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def add(self, time_s: float, base_from_tcp: Transform) -> None:
        """Append a sample (robot clock, seconds); samples must come in time order."""
        if not isinstance(base_from_tcp, Transform) or (base_from_tcp.to_frame, base_from_tcp.from_frame) != (BASE, TCP):
            raise ConfigError(f"a pose sample must be a base_from_tcp Transform, got {base_from_tcp!r}")
        t = float(time_s)
        with self._lock:
            if self._t and t <= self._t[-1]:
                raise InputError(f"pose sample at {t:.6f} s is not after the previous one ({self._t[-1]:.6f} s); "
                                 "add samples in time order")
            self._t.append(t)
            self._pose.append(base_from_tcp.matrix)

    def __len__(self) -> int:
        return len(self._t)

    def at(self, camera_time_s: float) -> tuple[Transform | None, str]:
        """``(base_from_tcp, why)`` at a camera timestamp; ``(None, reason)`` when it cannot be known."""
        t = float(camera_time_s) + self.time_offset_s
        with self._lock:
            ts = list(self._t)
            poses = list(self._pose)
        if not ts:
            return None, "no pose sample received yet"
        if t <= ts[0] or t >= ts[-1]:
            edge = 0 if t <= ts[0] else -1
            off = abs(t - ts[edge])
            if off <= self.max_extrapolation_s:
                return Transform(poses[edge], BASE, TCP), f"nearest sample, {off * 1e3:.1f} ms away"
            side = "before the oldest" if edge == 0 else "after the newest"
            return None, f"frame time is {off * 1e3:.1f} ms {side} pose sample (limit {self.max_extrapolation_s * 1e3:.0f} ms)"
        k = bisect.bisect_right(ts, t)
        t0, t1 = ts[k - 1], ts[k]
        if t1 - t0 > self.max_gap_s:
            return None, f"pose samples around the frame are {(t1 - t0) * 1e3:.0f} ms apart (limit {self.max_gap_s * 1e3:.0f} ms)"
        a = (t - t0) / (t1 - t0)
        m0, m1 = poses[k - 1], poses[k]
        rot = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([m0[:3, :3], m1[:3, :3]])))([a]).as_matrix()[0]
        m = np.eye(4)
        m[:3, :3] = rot
        m[:3, 3] = (1 - a) * m0[:3, 3] + a * m1[:3, 3]
        return Transform(m, BASE, TCP), f"interpolated between samples {(t1 - t0) * 1e3:.1f} ms apart"


PoseProvider = Callable[[], Transform] | PoseStream


def attach_pose(frame: RGBDFrame, pose: PoseProvider | None) -> RGBDFrame:
    """``frame`` with ``base_from_tcp`` from ``pose`` (a callable called now, or a :class:`PoseStream`).

    ``frame.meta`` gains ``pose_source`` (``"callable"``/``"stream"``), ``pose_time_offset_s`` (the offset used,
    stream only) and ``pose_note`` (how it was obtained, or why there is none).
    """
    if pose is None:
        return frame
    meta = dict(frame.meta)
    if isinstance(pose, PoseStream):
        t, note = pose.at(frame.timestamp_s)
        meta.update(pose_source="stream", pose_time_offset_s=pose.time_offset_s, pose_note=note)
    elif callable(pose):
        t = pose()
        if t is not None and (not isinstance(t, Transform) or (t.to_frame, t.from_frame) != (BASE, TCP)):
            raise ConfigError(f"the pose callable returned {t!r}; it must return a base_from_tcp Transform or None")
        meta.update(pose_source="callable", pose_note="read when the frame arrived" if t is not None else
                    "the callable returned None")
    else:
        raise ConfigError(f"pose must be a callable returning base_from_tcp or a PoseStream, got {type(pose).__name__}")
    return RGBDFrame(frame.color, frame.depth_m, frame.intrinsics, frame.timestamp_s, t, frame.frame_id, meta)


__all__ = ["PoseProvider", "PoseStream", "attach_pose"]
