"""A real-time perception loop: the newest frame in, the freshest honest result out, never waiting on the camera.

:class:`PerceptionLoop` runs source → segment/track → cloud → shape → grasps on background threads and keeps
only the newest result; a controller polls :meth:`PerceptionLoop.latest` at its own rate (1–10 Hz) and gets
that result with its age, its frame, and the age of the *keyframe* whose encoding its mask comes from.

Threads (all joined by :meth:`PerceptionLoop.stop`; every hand-over is a one-slot mailbox that keeps the
newest item, so frames are dropped and counted, never piled up):

``capture``
    reads the source (a :class:`~graspseg.capture.realsense.RealSenseSource`, a recording, any iterable of
    frames), hands each frame to the tracker and, when recording, to the :class:`SessionRecorder`.
``keyframe``
    encodes a keyframe with the pipeline's segmenter (the heavy model) and the prompt.
``track``
    takes the newest frame and finds the object's mask on it: with a segmenter that keeps up
    (encode + decode within ``encode_budget_s``) every frame is encoded (the tracker re-prompts the pipeline's
    own segmenter from the previous mask); otherwise the mask is *propagated* by a light tracker (``rgbd``
    re-prompting, SAM 2 video) from the last keyframe, and keyframes are encoded in the background on a
    period, on wrist motion (``base_from_tcp``) or when tracking quality falls. A keyframe that disagrees with
    the propagated mask on its own frame re-anchors the tracker (and catches it up over the frames since).
``downstream``
    cloud, shape and grasps (:meth:`graspseg.pipeline.Pipeline.perceive_masks`), then publishes.

When tracking is lost the result says so (``status == "lost"``, no grasps) and ``on_lost`` is called to ask for
a new prompt (:meth:`PerceptionLoop.set_prompt`); a result older than the ``max_age_s`` a caller passes to
:meth:`latest` is never returned. A result is re-expressed for the robot's motion since its capture
(``camera_now_from_camera``) with the uncertainty that age adds (``added_uncertainty_m``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from .capture.realsense import EndOfRecording
from .capture.session import SessionRecorder
from .core.config import from_dict
from .core.errors import ConfigError, InputError, PromptError, SegmentationError
from .core.frame import RGBDFrame
from .core.transform import CAMERA, Transform
from .pipeline import PerceptionResult, Pipeline
from .segment import MaskSet, Prompt
from .segment.tracking import RepromptTracker, Tracker, TrackStep, create_tracker, interior_pixel, mask_iou

log = logging.getLogger(__name__)

SCHEDULES = ("auto", "every_frame", "keyframes")


@dataclass(frozen=True)
class LoopConfig:
    """Scheduling of the perception loop.

    Attributes
    ----------
    schedule : {"auto", "every_frame", "keyframes"}
        ``auto`` encodes every frame when the first keyframe's encode + decode took at most
        ``encode_budget_s``, else keyframes + propagation.
    encode_budget_s : float
        Seconds an encode may take for ``auto`` to encode every frame.
    tracker, tracker_options
        The propagating tracker of the keyframe schedule (a :data:`~graspseg.segment.tracking.TRACKERS` name).
    keyframe_period_s : float
        A new keyframe at least this often, seconds.
    keyframe_motion_m, keyframe_motion_rad : float
        A new keyframe when the wrist moved this far (metres / radians) since the last one.
    keyframe_min_score, keyframe_min_iou_previous : float
        A new keyframe when the tracker's score or its IoU with the previous mask falls below these.
    verify_iou : float
        A keyframe whose mask overlaps the propagated mask of its frame less than this re-anchors the tracker.
    catchup_frames : int
        After (re-)anchoring on a keyframe, the tracker is stepped over at most this many of the frames seen
        since, the newest included.
    history_frames : int
        Recent frames (and propagated masks) kept for verification and catch-up.
    object_speed_mps : float
        Assumed bound on the object's own speed, metres per second: age × this is the position uncertainty a
        result's age adds.
    time_sync_uncertainty_s : float
        Camera-robot clock uncertainty, seconds: wrist speed × this adds to the uncertainty.
    max_consecutive_errors : int
        Stop (with the last error) after this many frames in a row fail.
    idle_stop_s : float or None
        Stop when nobody called :meth:`PerceptionLoop.latest` for this long (a planner that went away); None = never.
    """

    schedule: str = "auto"
    encode_budget_s: float = 0.15
    tracker: str = "rgbd"
    tracker_options: dict = field(default_factory=dict)
    keyframe_period_s: float = 1.0
    keyframe_motion_m: float = 0.03
    keyframe_motion_rad: float = 0.15
    keyframe_min_score: float = 0.2
    keyframe_min_iou_previous: float = 0.5
    verify_iou: float = 0.75
    catchup_frames: int = 4
    history_frames: int = 32
    object_speed_mps: float = 0.05
    time_sync_uncertainty_s: float = 0.005
    max_consecutive_errors: int = 10
    idle_stop_s: float | None = None

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"loop.schedule is {self.schedule!r}; expected one of {SCHEDULES}")
        for name in ("encode_budget_s", "keyframe_period_s", "keyframe_motion_m", "keyframe_motion_rad"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"loop.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("keyframe_min_score", "keyframe_min_iou_previous", "verify_iou"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"loop.{name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.catchup_frames < 0 or self.history_frames < 2 or self.max_consecutive_errors < 1:
            raise ConfigError(f"loop.catchup_frames ({self.catchup_frames}) must be >= 0, history_frames "
                              f"({self.history_frames}) >= 2 and max_consecutive_errors ({self.max_consecutive_errors}) >= 1")
        if self.object_speed_mps < 0 or self.time_sync_uncertainty_s < 0:
            raise ConfigError("loop.object_speed_mps and loop.time_sync_uncertainty_s must be >= 0")
        if self.idle_stop_s is not None and not self.idle_stop_s > 0:
            raise ConfigError(f"loop.idle_stop_s must be > 0 seconds or null, got {self.idle_stop_s!r}")

    @classmethod
    def from_dict(cls, data: dict) -> LoopConfig:
        return from_dict(cls, data)


@dataclass(frozen=True, eq=False)
class LiveResult:
    """One published result of the loop.

    Attributes
    ----------
    sequence : int
        Publication number, from 0.
    frame : RGBDFrame
        The frame the result is for.
    status : {"ok", "lost"}
        ``lost``: the tracker could not find the object (``reason`` says why); ``result`` is None.
    result : PerceptionResult or None
    source : {"keyframe", "propagated"}
        Whether this frame's mask was encoded by the segmenter, or propagated by the tracker from a keyframe.
    keyframe_frame_id : str
        The frame whose encoding the mask comes from.
    track_score : float
        The tracker's quality for this frame, [0, 1].
    latency_s : float
        Capture (arrival on the host) to publication, seconds.
    age_s, keyframe_age_s : float
        Seconds since this frame / the keyframe arrived, at the :meth:`PerceptionLoop.latest` call.
    camera_now_from_camera : Transform or None
        The wrist camera's motion since capture (``camera_color_optical`` now ← at capture), when the robot pose
        then and now and the rig's ``tcp_from_camera`` are known; a static object seen at capture is at
        ``camera_now_from_camera @ p`` now.
    motion_since_capture_m, motion_since_capture_rad : float or None
        That motion's translation and rotation.
    added_uncertainty_m : float
        Position uncertainty the age adds: ``object_speed_mps × age_s + wrist speed × time_sync_uncertainty_s``.
    notes : tuple of str
    prompt_version : int
        0 for the first prompt, +1 for each :meth:`PerceptionLoop.set_prompt`.
    """

    sequence: int
    frame: RGBDFrame
    status: str
    result: PerceptionResult | None
    source: str
    keyframe_frame_id: str
    track_score: float
    latency_s: float
    captured_monotonic_s: float
    keyframe_captured_monotonic_s: float
    reason: str = ""
    age_s: float = 0.0
    keyframe_age_s: float = 0.0
    camera_now_from_camera: Transform | None = None
    motion_since_capture_m: float | None = None
    motion_since_capture_rad: float | None = None
    added_uncertainty_m: float = 0.0
    notes: tuple[str, ...] = ()
    prompt_version: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def mask(self) -> np.ndarray | None:
        return None if self.result is None else self.result.mask

    def to_dict(self, *, compact: bool = True) -> dict:
        """JSON form: the timing fields, and the result's ``to_dict(compact=...)`` when there is one."""
        d = {"sequence": self.sequence, "frame_id": self.frame.frame_id, "status": self.status, "reason": self.reason,
             "source": self.source, "keyframe_frame_id": self.keyframe_frame_id, "track_score": self.track_score,
             "latency_s": self.latency_s, "age_s": self.age_s, "keyframe_age_s": self.keyframe_age_s,
             "added_uncertainty_m": self.added_uncertainty_m,
             "camera_now_from_camera": None if self.camera_now_from_camera is None else self.camera_now_from_camera.to_dict(),
             "motion_since_capture_m": self.motion_since_capture_m,
             "motion_since_capture_rad": self.motion_since_capture_rad, "notes": list(self.notes)}
        if self.result is not None:
            d["result"] = self.result.to_dict(compact=compact)
        return d


@dataclass
class _Item:
    frame: RGBDFrame
    arrived: float  # time.monotonic() when the capture thread got it
    seq: int


@dataclass
class _Keyframe:
    item: _Item
    mask_set: MaskSet
    selected: int
    prompt: Prompt
    encode_s: float
    prompt_version: int
    boundary_error_px: float | None = None


class _Mailbox:
    """A one-slot hand-over that keeps the newest item; a replaced item is counted as dropped."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._item = None
        self.dropped = 0

    def put(self, item) -> None:
        with self._cv:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cv.notify_all()

    def get(self, timeout_s: float):
        with self._cv:
            if self._item is None:
                self._cv.wait(timeout_s)
            item, self._item = self._item, None
            return item

    def busy(self) -> bool:
        with self._cv:
            return self._item is not None


def _interior_prompt(mask: np.ndarray) -> Prompt:
    """A click at the mask's most interior pixel plus its bounding box."""
    u, v = interior_pixel(mask)
    rows, cols = np.nonzero(mask)
    box = [float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1)]
    return Prompt(points_uv=[[float(u), float(v)]], point_labels=[1], box_xyxy=box)


class PerceptionLoop:
    """Perceive continuously in the background; :meth:`latest` gives the freshest result (see the module docstring).

    Parameters
    ----------
    source : frame source
        An object with ``read()`` (a :class:`~graspseg.capture.realsense.RealSenseSource`) or any iterable of
        :class:`RGBDFrame`; opened and closed by the loop when it is a context manager.
    prompt : Prompt
        What to follow; checked against the first frame's size.
    pipeline : Pipeline, optional
        Its segmenter encodes keyframes; its config plans grasps (default ``Pipeline()``, the ``rgbd`` backend).
        The loop drives the segmenter directly while it runs: do not share this Pipeline with other callers.
    config : LoopConfig, optional
    tracker : Tracker, optional
        The propagating tracker of the keyframe schedule (default from ``config.tracker``).
    recorder : SessionRecorder, optional
        Every captured frame (with the prompt in force) is submitted to it; closed by :meth:`stop`.
    on_lost : callable, optional
        ``on_lost(live_result) -> Prompt | None``, called (on the tracking thread: keep it short) when the
        object is lost; a returned prompt is used at once (as :meth:`set_prompt`).
    pose_now : callable, optional
        ``() -> base_from_tcp`` now; lets :meth:`latest` re-express results for the robot's motion.

    Use as a context manager (``with PerceptionLoop(...) as loop:``) or :meth:`start` / :meth:`stop`.
    """

    def __init__(self, source, prompt: Prompt, *, pipeline: Pipeline | None = None, config: LoopConfig | None = None,
                 tracker: Tracker | None = None, recorder: SessionRecorder | None = None,
                 on_lost: Callable[[LiveResult], Prompt | None] | None = None,
                 pose_now: Callable[[], Transform | None] | None = None) -> None:
        if not isinstance(prompt, Prompt):
            raise PromptError(f"prompt must be a graspseg Prompt (Prompt.from_point(u, v), ...), got "
                              f"{type(prompt).__name__}")
        if not (hasattr(source, "read") or isinstance(source, Iterable)):
            raise InputError(f"source must have read() or be an iterable of RGBDFrame, got {type(source).__name__}")
        self.source = source
        self.pipeline = pipeline or Pipeline()
        self.config = config or LoopConfig()
        if not isinstance(self.config, LoopConfig):
            raise ConfigError(f"config must be a LoopConfig, got {type(self.config).__name__}")
        self._light_tracker = tracker
        self.recorder = recorder
        self.on_lost = on_lost
        self.pose_now = pose_now
        self._prompt = prompt
        self._prompt_version = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._frames = _Mailbox()
        self._down = _Mailbox()
        self._kf_requests = _Mailbox()
        self._kf_results = _Mailbox()
        self._kf_busy = threading.Event()
        self._latest: LiveResult | None = None
        self._published = 0
        self._last_latest_call = time.monotonic()
        self.error: BaseException | None = None
        self.stopped_reason: str | None = None
        self.mode: str | None = None if self.config.schedule == "auto" else self.config.schedule
        self._entered = False
        self._frame_size: tuple[int, int] | None = None
        self.stats = {"frames": 0, "results": 0, "lost": 0, "keyframes": 0, "propagated": 0, "errors": 0,
                      "waiting_for_keyframe": 0, "reanchored": 0, "verified": 0}
        self._latencies: deque[float] = deque(maxlen=5000)
        self._publish_times: deque[float] = deque(maxlen=5000)
        self._encode_s: deque[float] = deque(maxlen=100)
        #: per stage: recent (wall s, this thread's CPU s) of one frame's work
        self._stage_s: dict[str, deque] = {k: deque(maxlen=500) for k in ("capture", "track", "downstream")}

    # --- control ----------------------------------------------------------------------------------
    def start(self) -> PerceptionLoop:
        if self._threads:
            return self
        if self._stop.is_set():
            raise ConfigError("this PerceptionLoop has been stopped; create a new one to perceive again")
        if hasattr(self.source, "__enter__") and hasattr(self.source, "read"):
            self.source.__enter__()
            self._entered = True
        if self.recorder is not None:
            self.recorder.start()
        for name, target in (("capture", self._capture), ("keyframe", self._keyframe_worker),
                             ("track", self._track_worker), ("downstream", self._downstream_worker)):
            t = threading.Thread(target=self._guard(target, name), name=f"graspseg-loop-{name}", daemon=True)
            self._threads.append(t)
        for t in self._threads:
            t.start()
        return self

    def _guard(self, fn, name):
        def run() -> None:
            try:
                fn()
            except BaseException as e:  # any escape stops the loop with the error kept for latest()
                self._fail(e, f"{name} thread: {e}")
        return run

    def _fail(self, error: BaseException, reason: str) -> None:
        if self.error is None and self.stopped_reason is None:
            log.error("perception loop stopped: %s", reason)
            self.error = error
            self.stopped_reason = reason
        self._stop.set()

    def _finish(self, reason: str) -> None:
        if self.stopped_reason is None:
            log.info("perception loop stopped: %s", reason)
            self.stopped_reason = reason
        self._stop.set()

    def stop(self) -> dict:
        """Stop every thread, close the source and the recorder; returns :meth:`status`."""
        self._finish("stopped by the caller")
        if hasattr(self.source, "interrupt"):  # a capture thread waiting for a frame returns at once
            self.source.interrupt()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join()
        self._threads = []
        if self._entered:
            self._entered = False
            self.source.__exit__(None, None, None)
        if self.recorder is not None:
            self.recorder.close()
        return self.status()

    def __enter__(self) -> PerceptionLoop:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return bool(self._threads) and not self._stop.is_set()

    def set_prompt(self, prompt: Prompt) -> None:
        """Follow a new prompt from the next keyframe on (the track is restarted)."""
        if not isinstance(prompt, Prompt):
            raise PromptError(f"prompt must be a graspseg Prompt, got {type(prompt).__name__}")
        if self._frame_size is not None:
            prompt.validate_for(*self._frame_size)
        with self._lock:
            self._prompt = prompt
            self._prompt_version += 1
            self._latest = None  # a result for the previous prompt is not an answer to this one

    # --- results ----------------------------------------------------------------------------------
    def latest(self, max_age_s: float | None = None, *, base_from_tcp_now: Transform | None = None) -> LiveResult | None:
        """The newest result, or None when there is none younger than ``max_age_s`` seconds.

        ``base_from_tcp_now`` (or the loop's ``pose_now``) re-expresses it for the robot's motion since capture.

        Raises
        ------
        GraspsegError
            The error that stopped the loop (the camera gone, a bad prompt, repeated failures).
        """
        now = time.monotonic()
        self._last_latest_call = now
        if self.error is not None:
            raise self.error
        r = self._latest
        if r is None:
            return None
        age = now - r.captured_monotonic_s
        if max_age_s is not None and age > max_age_s:
            return None
        pose_now = base_from_tcp_now if base_from_tcp_now is not None else (self.pose_now() if self.pose_now else None)
        extra: dict = {}
        notes = list(r.notes)
        wrist_speed = 0.0
        rig = self.pipeline.rig
        if pose_now is not None and r.frame.base_from_tcp is not None and rig is not None:
            base_from_cam_then = r.frame.base_from_tcp @ rig.tcp_from_camera
            base_from_cam_now = pose_now @ rig.tcp_from_camera
            motion = base_from_cam_now.inverse() @ base_from_cam_then
            dist_m, ang_rad = base_from_cam_then.distance_to(base_from_cam_now)
            extra = {"camera_now_from_camera": Transform(motion.matrix, CAMERA, CAMERA),
                     "motion_since_capture_m": float(dist_m), "motion_since_capture_rad": float(ang_rad)}
            wrist_speed = dist_m / age if age > 1e-3 else 0.0
        elif pose_now is not None:
            notes.append("robot pose at capture or the rig's tcp_from_camera unknown: not re-expressed")
        added = self.config.object_speed_mps * age + wrist_speed * self.config.time_sync_uncertainty_s
        return replace(r, age_s=age, keyframe_age_s=now - r.keyframe_captured_monotonic_s,
                       added_uncertainty_m=float(added), notes=tuple(notes), **extra)

    def status(self) -> dict:
        """Counts, rates and latency percentiles so far."""
        lat = np.asarray(self._latencies, np.float64)
        pub = np.asarray(self._publish_times, np.float64)
        rate = float((len(pub) - 1) / (pub[-1] - pub[0])) if len(pub) > 1 and pub[-1] > pub[0] else 0.0
        d = dict(self.stats)
        d.update(mode=self.mode, running=self.running, stopped_reason=self.stopped_reason,
                 error=None if self.error is None else str(self.error),
                 dropped_before_tracking=self._frames.dropped, dropped_before_downstream=self._down.dropped,
                 results_per_s=round(rate, 3),
                 latency_ms={"p50": round(float(np.percentile(lat, 50)) * 1e3, 2) if lat.size else None,
                             "p95": round(float(np.percentile(lat, 95)) * 1e3, 2) if lat.size else None},
                 encode_ms=round(float(np.median(self._encode_s)) * 1e3, 1) if self._encode_s else None,
                 stage_ms=self._stage_summary())
        if self.recorder is not None:
            d["recording"] = self.recorder.summary()
        if hasattr(self.source, "stats"):
            d["source"] = dict(self.source.stats)
        return d

    def _stage_summary(self) -> dict:
        """Median wall and CPU milliseconds of one frame's work per stage (CPU time is the stage thread's own:
        what the stage would take on an idle core)."""
        out = {}
        for name, q in self._stage_s.items():
            a = np.asarray(list(q), np.float64).reshape(-1, 2)
            out[name] = None if not len(a) else {"wall_p50": round(float(np.median(a[:, 0])) * 1e3, 2),
                                                  "cpu_p50": round(float(np.median(a[:, 1])) * 1e3, 2), "n": len(a)}
        return out

    def _timed(self, stage: str, t_wall: float, t_cpu: float) -> None:
        self._stage_s[stage].append((time.perf_counter() - t_wall, time.thread_time() - t_cpu))

    def latencies_s(self) -> np.ndarray:
        return np.asarray(self._latencies, np.float64)

    # --- threads ----------------------------------------------------------------------------------
    def _capture(self) -> None:
        reader = self.source.read if hasattr(self.source, "read") else iter(self.source).__next__
        seq = 0
        while not self._stop.is_set():
            t_wall, t_cpu = time.perf_counter(), time.thread_time()  # wall includes waiting for the camera
            try:
                frame = reader()
            except (EndOfRecording, StopIteration):
                self._finish(f"the source ended after {seq} frames")
                return
            if not isinstance(frame, RGBDFrame):
                raise InputError(f"the source gave a {type(frame).__name__}, not an RGBDFrame")
            self._frames.put(_Item(frame, time.monotonic(), seq))
            self.stats["frames"] += 1
            if self.recorder is not None:
                with self._lock:
                    prompt = self._prompt
                self.recorder.submit(frame, prompt=prompt.to_dict())
            self._timed("capture", t_wall, t_cpu)
            seq += 1
            idle = self.config.idle_stop_s
            if idle is not None and time.monotonic() - self._last_latest_call > idle:
                self._finish(f"nobody called latest() for {idle:g} s (the planner stopped asking): stopped "
                             "to free the camera and the CPU")
                return

    def _segment_keyframe(self, item: _Item, prompt: Prompt, follow: np.ndarray | None) -> tuple[MaskSet, int]:
        seg = self.pipeline.segmenter
        seg.set_frame(item.frame)
        ms = seg.predict(prompt)
        if follow is not None:  # a re-keyframe: the candidate that agrees with the track
            k = int(np.argmax([mask_iou(m, follow) for m in ms.masks]))
        else:
            k = ms.select(self.pipeline.config.segment.granularity)
        return ms, k

    def _keyframe_worker(self) -> None:
        failures = 0
        while not self._stop.is_set():
            req = self._kf_requests.get(0.05)
            if req is None:
                continue
            item, prompt, version, follow = req
            t0 = time.perf_counter()
            try:
                ms, k = self._segment_keyframe(item, prompt, follow)
                failures = 0
            except (SegmentationError, PromptError) as e:  # nothing under the prompt on this frame: say so
                self.stats["lost"] += 1
                self._publish(LiveResult(0, item.frame, "lost", None, "keyframe", item.frame.frame_id, 0.0, 0.0,
                                         item.arrived, item.arrived, f"no object under the prompt on this frame: {e}",
                                         prompt_version=version))
                self._kf_busy.clear()
                continue
            except Exception as e:  # a failing model (any library's error): counted, the next keyframe tries again
                failures += 1
                self.stats["errors"] += 1
                log.warning("keyframe on frame %s failed: %s", item.frame.frame_id, e)
                self._kf_busy.clear()
                if failures >= self.config.max_consecutive_errors:
                    self._fail(e, f"{failures} keyframes in a row failed; last: {e}")
                    return
                continue
            dt = time.perf_counter() - t0
            self._encode_s.append(dt)
            self.stats["keyframes"] += 1
            self._kf_results.put(_Keyframe(item, ms, k, prompt, dt, version))
            self._kf_busy.clear()

    def _request_keyframe(self, item: _Item, prompt: Prompt, version: int, follow: np.ndarray | None) -> None:
        if self._kf_busy.is_set():
            return
        self._kf_busy.set()
        self._kf_requests.put((item, prompt, version, follow))

    def _new_tracker(self) -> Tracker:
        if self.mode == "every_frame":
            return RepromptTracker(self.pipeline.segmenter, **self.config.tracker_options)
        if self._light_tracker is not None:
            return self._light_tracker
        return create_tracker(self.config.tracker, **self.config.tracker_options)

    def _track_worker(self) -> None:
        cfg = self.config
        tracker: Tracker | None = None
        anchored = False
        anchor_version = -1
        keyframe: _Keyframe | None = None
        last_kf_request = -np.inf
        history: deque[tuple[_Item, np.ndarray | None]] = deque(maxlen=cfg.history_frames)
        lost_reported = False
        consecutive_errors = 0
        checked_prompt = False
        while not self._stop.is_set():
            item = self._frames.get(0.05)
            if item is None:
                continue
            with self._lock:
                prompt, version = self._prompt, self._prompt_version
            if not checked_prompt:
                try:
                    prompt.validate_for(item.frame.width, item.frame.height)
                except PromptError as e:
                    self._fail(e, f"the prompt does not fit the {item.frame.width}x{item.frame.height} frames: {e}")
                    return
                checked_prompt = True
                self._frame_size = (item.frame.width, item.frame.height)
            if version != anchor_version and anchored:
                anchored, keyframe = False, None
                history.clear()
            # a keyframe finished?
            kf = self._kf_results.get(0.0)
            if kf is not None and kf.prompt_version == version:
                if self._auto_mode(kf.encode_s) or tracker is None:
                    tracker, anchored = self._new_tracker(), False
                tracker, anchored, keyframe = self._apply_keyframe(tracker, kf, anchored, history, item)
                anchor_version = version
                lost_reported = False
            if not anchored:
                self.stats["waiting_for_keyframe"] += 1
                history.append((item, None))
                self._request_keyframe(item, prompt, version, None)
                continue
            t_wall, t_cpu = time.perf_counter(), time.thread_time()
            try:
                step = tracker.step(item.frame)
                consecutive_errors = 0
            except SegmentationError as e:  # no mask where the object was: it is lost, not a fault
                step = TrackStep(-1, np.zeros(item.frame.depth_m.shape, bool), 0.0, True,
                                 f"the segmenter found no object where it was: {e}", 0.0, item.frame.timestamp_s)
            except Exception as e:  # a tracker or segmenter failing on this frame (any library's error)
                consecutive_errors += 1
                self.stats["errors"] += 1
                log.warning("tracking frame %s failed: %s: %s", item.frame.frame_id, type(e).__name__, e)
                if consecutive_errors >= cfg.max_consecutive_errors:
                    self._fail(e, f"{consecutive_errors} frames in a row failed; last: {e}")
                    return
                continue
            history.append((item, None if step.lost else step.mask))
            every = self.mode == "every_frame"
            if step.lost:
                self.stats["lost"] += 1
                live = LiveResult(self._published, item.frame, "lost", None, "keyframe" if every else "propagated",
                                  keyframe.item.frame.frame_id, float(step.score), 0.0, item.arrived,
                                  keyframe.item.arrived, step.reason, prompt_version=version)
                self._publish(live)
                if not lost_reported and self.on_lost is not None:
                    new = self.on_lost(live)
                    if new is not None:
                        self.set_prompt(new)
                lost_reported = True
                continue
            lost_reported = False
            if every:
                ms, k = step.details["mask_set"], int(step.details["candidate"])
                kf_item, source, k_px = item, "keyframe", None
            else:
                ms = MaskSet(step.mask[None], [max(step.score, 0.0)], ("whole",), backend=f"tracker:{tracker.name}")
                k, kf_item, source = 0, keyframe.item, "propagated"
                k_px = keyframe.boundary_error_px
                self.stats["propagated"] += 1
                due = (item.arrived - last_kf_request >= cfg.keyframe_period_s
                       or step.score < cfg.keyframe_min_score or step.iou_previous < cfg.keyframe_min_iou_previous
                       or self._moved(keyframe.item.frame, item.frame))
                if due and not self._kf_busy.is_set():
                    last_kf_request = item.arrived
                    self._request_keyframe(item, _interior_prompt(step.mask), version, step.mask)
            plane = self.pipeline.segmenter_plane() if every else None
            self._timed("track", t_wall, t_cpu)
            self._down.put((item, kf_item, prompt, ms, k, k_px, source, float(step.score), plane, version))

    def _auto_mode(self, encode_s: float) -> bool:
        """Choose (``auto``) between encoding every frame and keyframes; True when the mode changed.

        Decided on the first keyframe; a keyframe schedule turns to encoding every frame once the median of
        the last three encodes fits the budget (the first encode of a model is often slow).
        """
        if self.config.schedule != "auto":
            return False
        budget = self.config.encode_budget_s
        if self.mode is None:
            self.mode = "every_frame" if encode_s <= budget else "keyframes"
        elif self.mode == "keyframes" and len(self._encode_s) >= 3 and float(np.median(list(self._encode_s)[-3:])) <= budget:
            self.mode = "every_frame"
        else:
            return False
        log.info("perception loop: encode %.0f ms (budget %.0f ms) -> %s", encode_s * 1e3, budget * 1e3, self.mode)
        return True

    def _moved(self, then: RGBDFrame, now: RGBDFrame) -> bool:
        if then.base_from_tcp is None or now.base_from_tcp is None:
            return False
        d, a = then.base_from_tcp.distance_to(now.base_from_tcp)
        return d > self.config.keyframe_motion_m or a > self.config.keyframe_motion_rad

    def _apply_keyframe(self, tracker: Tracker, kf: _Keyframe, anchored: bool,
                        history: deque, current: _Item) -> tuple[Tracker, bool, _Keyframe]:
        """Verify the track against a keyframe, or (re-)anchor the tracker on it and catch up."""
        from .segment.uncertainty import boundary_error_details

        kf.boundary_error_px = float(boundary_error_details(kf.mask_set, kf.selected)["boundary_error_px"])
        kf_mask = kf.mask_set.masks[kf.selected]
        if anchored:
            tracked = next((m for it, m in history if it.seq == kf.item.seq), None)
            if tracked is not None and mask_iou(tracked, kf_mask) >= self.config.verify_iou:
                self.stats["verified"] += 1
                return tracker, True, kf
            self.stats["reanchored"] += 1
        if isinstance(tracker, RepromptTracker):
            tracker.anchor(kf.item.frame, kf_mask)
        else:
            tracker.start(kf.item.frame, Prompt(mask=kf_mask))
        later = [it for it, _ in history if it.seq > kf.item.seq and it.seq != current.seq]
        n = self.config.catchup_frames
        if n and later:  # the object moved while the keyframe was encoded: follow it over some frames since
            idx = np.unique(np.linspace(0, len(later) - 1, min(n, len(later))).round().astype(int))
            for it in [later[i] for i in idx]:
                try:
                    if tracker.step(it.frame).lost:
                        break
                except Exception as e:  # the current frame's step will say whether the object is lost
                    log.warning("catching up on frame %s failed: %s: %s", it.frame.frame_id, type(e).__name__, e)
                    break
        history.clear()
        return tracker, True, kf

    def _downstream_worker(self) -> None:
        consecutive_errors = 0
        while not self._stop.is_set():
            job = self._down.get(0.05)
            if job is None:
                continue
            item, kf_item, prompt, ms, k, k_px, source, score, plane, version = job
            t_wall, t_cpu = time.perf_counter(), time.thread_time()
            try:
                result = self.pipeline.perceive_masks(item.frame, prompt, ms, k, boundary_error_px=k_px,
                                                      initial_plane=plane)
                consecutive_errors = 0
            except Exception as e:  # a degenerate mask, a numerical failure on this frame
                consecutive_errors += 1
                self.stats["errors"] += 1
                log.warning("cloud/shape/grasp on frame %s failed: %s: %s", item.frame.frame_id, type(e).__name__, e)
                if consecutive_errors >= self.config.max_consecutive_errors:
                    self._fail(e, f"{consecutive_errors} frames in a row failed downstream; last: {e}")
                    return
                continue
            self._timed("downstream", t_wall, t_cpu)
            self._publish(LiveResult(self._published, item.frame, "ok", result, source, kf_item.frame.frame_id,
                                     score, 0.0, item.arrived, kf_item.arrived, prompt_version=version))

    def _publish(self, live: LiveResult) -> None:
        with self._lock:
            if live.prompt_version != self._prompt_version:
                return  # computed for a prompt that has been replaced since
            now = time.monotonic()
            live = replace(live, sequence=self._published, latency_s=now - live.captured_monotonic_s)
            self._latest = live
            self._published += 1
        if live.status == "ok":
            self.stats["results"] += 1
            self._latencies.append(live.latency_s)
            self._publish_times.append(now)


__all__ = ["LiveResult", "LoopConfig", "PerceptionLoop", "SCHEDULES"]
