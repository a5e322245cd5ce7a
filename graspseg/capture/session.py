"""Record a live session to the native episode layout from a background thread, without slowing capture.

:class:`SessionRecorder` takes frames through a bounded queue (a full queue drops the frame and counts it,
never blocks the camera) and appends them with :class:`~graspseg.capture.episode.EpisodeWriter` — each frame
folder renamed into place before its fsynced index line, so a crash loses at most the frame in flight. Per
frame the index's ``extra`` holds what the camera said (device timestamp and clock domain, host arrival time,
colour and depth frame numbers, serial, how the pose was obtained); the prompt in force is stored on the first
frame it applies to.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..core.camera import CameraRig
from ..core.errors import ConfigError
from ..core.frame import RGBDFrame
from .episode import EpisodeWriter

log = logging.getLogger(__name__)

#: ``frame.meta`` keys copied into the index line's ``extra``.
EXTRA_KEYS = ("device_timestamp_ms", "timestamp_domain", "host_timestamp_s", "color_frame_number",
              "depth_frame_number", "serial", "depth_scale", "pose_source", "pose_time_offset_s", "pose_note")

_STOP = object()


class SessionRecorder:
    """Append frames to an episode from background threads.

    ``workers`` threads write frame folders at once (:meth:`EpisodeWriter.stage`: PNG encoding releases the GIL,
    and each file is fsynced, so the disk's latency overlaps), one thread commits them in capture order
    (:meth:`EpisodeWriter.commit`). At 848x480 on a shared 2-core machine 1 worker sustained ~20 fps, 2 ~32 fps,
    4 ~34 fps (``graspseg bench capture``).

    Parameters
    ----------
    folder : path
        The episode folder (must not exist or be empty).
    queue_frames : int
        Frames that may wait for the disk; more are dropped and counted in :attr:`dropped`.
    workers : int
        Threads writing frame folders at once (1..8).
    depth_scale : float
        Metres per unit of the stored 16-bit depth PNGs (default: each frame's device scale, else 1e-4).
    rig, meta
        Stored in ``episode.json``.
    """

    def __init__(self, folder: str | Path, *, queue_frames: int = 64, workers: int = 4,
                 depth_scale: float | None = None, rig: CameraRig | None = None, meta: dict | None = None) -> None:
        if not isinstance(queue_frames, int) or queue_frames < 1:
            raise ConfigError(f"queue_frames must be a positive integer, got {queue_frames!r}")
        if not isinstance(workers, int) or not 1 <= workers <= 8:
            raise ConfigError(f"workers must be an integer in 1..8, got {workers!r}")
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self.folder = Path(folder)
        self._depth_scale = depth_scale
        self._rig, self._meta = rig, meta
        self._writer: EpisodeWriter | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=queue_frames)
        self._thread: threading.Thread | None = None
        self._prompt_written: dict | None = None
        self.written = 0
        self.dropped = 0
        self.write_s: list[float] = []
        self.error: BaseException | None = None

    def start(self) -> SessionRecorder:
        if self._thread is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="graspseg-recorder-encode")
            self._thread = threading.Thread(target=self._run, name="graspseg-recorder", daemon=True)
            self._thread.start()
        return self

    def __enter__(self) -> SessionRecorder:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def submit(self, frame: RGBDFrame, *, prompt: dict | None = None) -> bool:
        """Queue ``frame`` (with the prompt in force, as ``Prompt.to_dict()``); False when it was dropped.

        Call from one thread (the capture thread)."""
        if self.error is not None:
            return False
        if self._thread is None:
            self.start()
        if self._queue.full():
            self.dropped += 1
            return False
        try:
            if self._writer is None:
                self._writer = self._open_writer(frame)
            staged = self._pool.submit(self._writer.stage, frame)
        except Exception as e:  # the folder cannot be created: stop recording, report it
            log.error("recording to %s stopped: %s", self.folder, e)
            self.error = e
            return False
        self._queue.put_nowait((staged, frame, prompt))
        return True

    def _open_writer(self, frame: RGBDFrame) -> EpisodeWriter:
        scale = self._depth_scale or float(frame.meta.get("depth_scale") or 1e-4)
        meta = {"source": "live", "serial": frame.meta.get("serial")} | dict(self._meta or {})
        return EpisodeWriter(self.folder, depth_scale=scale, rig=self._rig, meta=meta)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self.error is not None:
                continue
            staged, frame, prompt = item
            try:
                t0 = time.perf_counter()
                tmp = staged.result()
                new_prompt = prompt if prompt != self._prompt_written else None
                extra = {k: frame.meta[k] for k in EXTRA_KEYS if k in frame.meta}
                self._writer.commit(tmp, frame, prompt=new_prompt, extra=extra)
                self._prompt_written = prompt
                self.written += 1
                self.write_s.append(time.perf_counter() - t0)
                if len(self.write_s) > 10000:
                    del self.write_s[:5000]
            except Exception as e:  # a full disk etc.: stop writing, keep what was written, report it
                log.error("recording to %s stopped: %s", self.folder, e)
                self.error = e

    def close(self) -> dict:
        """Write what is queued, close the episode, and return the counts."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._writer is not None:
            self._writer.close()
        return self.summary()

    def summary(self) -> dict:
        return {"folder": str(self.folder), "written": self.written, "dropped": self.dropped,
                "error": None if self.error is None else str(self.error)}


__all__ = ["EXTRA_KEYS", "SessionRecorder"]
