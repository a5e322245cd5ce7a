"""One model, one worker thread, a bounded queue in front of it.

Every call that touches the model (``plan``, ``set_rig``) is a job: it waits in a FIFO queue of at most
``max_queue`` jobs and runs on the one worker thread, in order of arrival. A job offered to a full queue is
refused at once with :class:`QueueFullError` (the server answers 503 with ``Retry-After``), so nothing is
dropped silently: every admitted job gets its result or its exception, and jobs still waiting when the
worker closes get :class:`ServiceClosedError`.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

from .errors import QueueFullError, ServiceClosedError

log = logging.getLogger(__name__)


class ModelWorker:
    """Runs jobs one at a time on a worker thread, started on the first job.

    Parameters
    ----------
    max_queue : int
        Jobs allowed to wait while one runs (>= 1).
    """

    def __init__(self, max_queue: int) -> None:
        self.max_queue = int(max_queue)
        self._queue: queue.Queue = queue.Queue(maxsize=self.max_queue)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._busy = False
        self._durations_s: deque[float] = deque(maxlen=64)
        self.completed = 0

    # --- state ----------------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Jobs waiting (not counting the one running)."""
        return self._queue.qsize()

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def closed(self) -> bool:
        return self._closed

    def retry_after_s(self) -> int:
        """Seconds until a place is likely free: the median job time × the jobs ahead, at least 1."""
        typical = float(np.median(self._durations_s)) if self._durations_s else 0.1
        return max(1, math.ceil(typical * (self.depth + 1)))

    # --- jobs ----------------------------------------------------------------------------------------
    def check_capacity(self) -> None:
        """Raise now when a job would be refused (before the caller spends time decoding a request)."""
        if self._closed:
            raise ServiceClosedError("the server is shutting down; send the request to the restarted server")
        if self._queue.full():
            raise self._full()

    def _full(self) -> QueueFullError:
        wait = self.retry_after_s()
        return QueueFullError(
            f"the model's queue is full ({self.max_queue} requests waiting, one running); retry in {wait} s, "
            f"send fewer requests at once, or start the server with a longer --max-queue", wait)

    def submit(self, fn: Callable[[], object]) -> Future:
        """Queue ``fn``; its :class:`~concurrent.futures.Future` holds the return value or the exception."""
        fut: Future = Future()
        with self._lock:
            if self._closed:
                raise ServiceClosedError("the server is shutting down; send the request to the restarted server")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="graspseg-model", daemon=True)
                self._thread.start()
            try:
                self._queue.put_nowait((fn, fut))
            except queue.Full:
                raise self._full() from None
        return fut

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, fut = item
            if not fut.set_running_or_notify_cancel():  # the caller gave up while it waited
                continue
            self._busy = True
            t0 = time.perf_counter()
            try:
                fut.set_result(fn())
            except BaseException as e:  # handed to the caller, which answers with it
                fut.set_exception(e)
            finally:
                self._durations_s.append(time.perf_counter() - t0)
                self._busy = False
                self.completed += 1

    def close(self, timeout_s: float = 10.0) -> None:
        """Refuse new jobs, fail those still waiting with :class:`ServiceClosedError`, let the running one end."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None and item[1].set_running_or_notify_cancel():
                item[1].set_exception(ServiceClosedError("the server shut down before this request reached the model; "
                                                         "send it again to the restarted server"))
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("the model's worker thread is still running a request after %.0f s", timeout_s)
