"""``graspseg bench service``: what the HTTP service adds to ``perceive``, and whether it loses requests.

Starts the real server (uvicorn in a thread, loopback, a free port) around one
:class:`~graspseg.plugin.GraspPerception` in this process and

1. times the in-process ``plan`` on the 640x480 sample frame and the HTTP round trip of
   :meth:`PerceptionClient.perceive` (PNG multipart, and the raw-arrays form) back to back in each repeat, so
   machine load hits them alike. The overhead is reported three ways: the median of the per-repeat
   differences (``paired``, the target; robust to load that drifts between repeats), the difference of the
   medians, and the difference of the minima (what a quiet machine approaches). Every call gets a *new* frame
   (fresh arrays), as every HTTP request does, so the segmenter's per-frame encoding runs in both;
2. times the same round trips against a stand-in model that returns the precomputed answer at once
   (``isolated``): everything the service adds — encoding, transfer, parsing, decoding, queueing,
   serialisation — without the model's own time and its noise;
3. sends ``--requests`` requests from ``--clients`` concurrent clients: answered, errors, lost
   (sent − answered), answers that differ from the single-threaded one, and throughput.

Client and server share this process (and its GIL), so the overhead is pessimistic against a planner
in another process.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ..core.errors import ConfigError, GraspsegError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
SAMPLE_FRAME = Path(__file__).resolve().parents[1] / "data" / "sample_frame"
SAMPLE_POINT = (352.0, 280.0)
#: Target: what the HTTP round trip may add to the in-process call (difference of medians).
OVERHEAD_TARGET_MS = 15.0
#: Fewer timed repeats than this never say "met": one disturbed repeat would decide it.
MIN_REPEATS_FOR_VERDICT = 10
#: Fewer concurrent requests than this never say "met" for errors / lost.
MIN_REQUESTS_FOR_VERDICT = 50


def _stats(values_ms: list[float]) -> dict:
    a = np.asarray(values_ms, np.float64)
    return {"median_ms": round(float(np.median(a)), 3), "p90_ms": round(float(np.percentile(a, 90)), 3),
            "min_ms": round(float(a.min()), 3), "max_ms": round(float(a.max()), 3), "n": int(a.size)}


def _fresh(frame):
    """The same frame with new arrays: the segmenter cannot reuse its encoding (as for an HTTP request)."""
    from ..core.frame import RGBDFrame

    return RGBDFrame(frame.color.copy(), frame.depth_m.copy(), frame.intrinsics, frame.timestamp_s,
                     frame.base_from_tcp, frame.frame_id, dict(frame.meta))


def _signature(response: dict, result: dict) -> tuple:
    """What must be equal between two answers for one frame: status, mask area, grasp poses and scores."""
    grasps = tuple((round(g["score"], 9), tuple(np.round(np.asarray(g["grasp"]["matrix"]), 9).ravel()))
                   for g in response["grasps"])
    return response["status"], result["segmentation"]["mask_area_px"], grasps


def _overhead(http_ms: list[float], local_ms: list[float]) -> dict:
    """What the HTTP round trip adds to the in-process call, from back-to-back pairs (ms)."""
    h, loc = np.asarray(http_ms, np.float64), np.asarray(local_ms, np.float64)
    return {"paired_median_ms": round(float(np.median(h - loc)), 3),
            "median_difference_ms": round(float(np.median(h) - np.median(loc)), 3),
            "min_difference_ms": round(float(h.min() - loc.min()), 3)}


class _Answering:
    """A stand-in model that returns one precomputed answer at once (the service's own cost, isolated)."""

    def __init__(self, perception, answer) -> None:
        self._perception, self._answer = perception, answer

    def plan(self, *args, **kwargs):
        return self._answer

    def __getattr__(self, name: str):
        return getattr(self._perception, name)


def _isolated_round_trips(perception, answer, frame, prompt, repeat: int, warmup: int, max_queue: int) -> dict:
    """Round trips (ms) against :class:`_Answering`: PNG and raw-array uploads, and ``GET /health``."""
    from ..service import PerceptionClient
    from ..service.server import ServerThread

    times: dict[str, list[float]] = {"png": [], "arrays": [], "health": []}
    with ServerThread(_Answering(perception, answer), max_queue=max_queue) as server:
        client = PerceptionClient(server.url, timeout_s=60.0)
        calls = {"png": lambda: client.perceive(frame, prompt, encoding="png"),
                 "arrays": lambda: client.perceive(frame, prompt, encoding="arrays"), "health": client.health}
        for i in range(warmup + repeat):
            for name, call in calls.items():
                t0 = time.perf_counter()
                call()
                if i >= warmup:
                    times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: _stats(v) for name, v in times.items()}


def run_service_bench(*, repeat: int = 30, warmup: int = 2, clients: int = 4, requests: int = 200,
                      frame_folder: Path = SAMPLE_FRAME, point_uv=SAMPLE_POINT, perception=None) -> dict:
    """Run the three phases; returns the JSON-ready report."""
    from ..capture import load_frame_folder
    from ..plugin import GraspPerception
    from ..segment import Prompt
    from ..service import PerceptionClient, ServiceError
    from ..service.server import DEFAULT_MAX_QUEUE, ServerThread

    for name, value, low in (("--repeat", repeat, 1), ("--warmup", warmup, 0), ("--clients", clients, 1),
                             ("--requests", requests, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    frame = load_frame_folder(frame_folder)
    prompt = Prompt.from_point(*point_uv)
    perception = perception or GraspPerception.from_config()
    notes: list[str] = []
    max_queue = max(DEFAULT_MAX_QUEUE, clients)
    reference = perception.plan(_fresh(frame), prompt)
    want = _signature(reference.to_dict(), reference.result.to_dict(compact=True))
    isolated = _isolated_round_trips(perception, reference, frame, prompt, repeat, warmup, max_queue)
    with ServerThread(perception, max_queue=max_queue) as server:
        client = PerceptionClient(server.url, timeout_s=60.0)
        times: dict[str, list[float]] = {"in_process": [], "http_png": [], "http_arrays": []}
        mismatched_single = 0
        for i in range(warmup + repeat):
            per = {}
            f = _fresh(frame)
            t0 = time.perf_counter()
            perception.plan(f, prompt)
            per["in_process"] = (time.perf_counter() - t0) * 1e3
            for enc in ("png", "arrays"):
                t0 = time.perf_counter()
                doc = client.perceive(frame, prompt, encoding=enc)
                per[f"http_{enc}"] = (time.perf_counter() - t0) * 1e3
                mismatched_single += _signature(doc["response"], doc["result"]) != want
            if i >= warmup:
                for k, v in per.items():
                    times[k].append(v)
        latency = {k: _stats(v) for k, v in times.items()}
        overhead = {enc: _overhead(times[f"http_{enc}"], times["in_process"]) for enc in ("png", "arrays")}

        # --- concurrent clients ----------------------------------------------------------------------
        counter = {"next": 0, "sent": 0, "answered": 0, "ok": 0, "mismatched": 0}
        errors: dict[str, int] = {}
        lat_ms: list[float] = []
        lock = threading.Lock()

        def worker() -> None:
            c = PerceptionClient(server.url, timeout_s=120.0)
            while True:
                with lock:
                    if counter["next"] >= requests:
                        return
                    counter["next"] += 1
                    counter["sent"] += 1
                t0 = time.perf_counter()
                try:
                    doc = c.perceive(frame, prompt)
                    same = _signature(doc["response"], doc["result"]) == want
                    with lock:
                        counter["answered"] += 1
                        counter["ok"] += 1
                        counter["mismatched"] += not same
                        lat_ms.append((time.perf_counter() - t0) * 1e3)
                except ServiceError as e:
                    with lock:
                        counter["answered"] += e.status is not None  # an error answer is an answer
                        key = f"{e.status or 'no answer'} {e.error or type(e).__name__}"
                        errors[key] = errors.get(key, 0) + 1

        threads = [threading.Thread(target=worker, name=f"bench-client-{k}") for k in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall_s = time.perf_counter() - t0
        health = client.health()
    n_errors = sum(errors.values())
    lost = counter["sent"] - counter["answered"]
    concurrent = {
        "clients": clients, "requests": requests, "max_queue": max_queue, "sent": counter["sent"],
        "answered": counter["answered"], "ok": counter["ok"], "errors": n_errors, "errors_by_kind": errors,
        "lost": lost, "mismatched": counter["mismatched"], "wall_s": round(wall_s, 3),
        "throughput_per_s": round(counter["answered"] / wall_s, 3) if wall_s > 0 else None,
        "latency": _stats(lat_ms) if lat_ms else None,
        "model_rate_per_s": round(1e3 / latency["in_process"]["median_ms"], 3),
    }

    targets = []

    def target(name: str, value: float, limit: float, unit: str, enough: bool, note: str) -> None:
        entry = {"name": name, "value": value, "limit": limit, "unit": unit,
                 "met": bool(value <= limit) if enough else None}
        if not enough:
            entry["note"] = note
        targets.append(entry)

    few_repeats = f"{repeat} repeats: at least {MIN_REPEATS_FOR_VERDICT} are needed for a verdict"
    few_requests = f"{requests} requests: at least {MIN_REQUESTS_FOR_VERDICT} are needed for a verdict"
    target("overhead_ms (HTTP png round trip - in-process plan, median of paired differences)",
           overhead["png"]["paired_median_ms"], OVERHEAD_TARGET_MS, "ms", repeat >= MIN_REPEATS_FOR_VERDICT,
           few_repeats)
    target("lost requests (sent - answered, concurrent clients)", lost, 0, "requests",
           requests >= MIN_REQUESTS_FOR_VERDICT, few_requests)
    target("error answers (concurrent clients)", n_errors, 0, "requests", requests >= MIN_REQUESTS_FOR_VERDICT,
           few_requests)
    target("answers differing from the single-threaded one", counter["mismatched"] + mismatched_single, 0,
           "requests", requests >= MIN_REQUESTS_FOR_VERDICT, few_requests)
    verdicts = [t["met"] for t in targets]
    met = None if any(v is None for v in verdicts) else all(verdicts)
    if met is None:
        notes.append("no overall verdict: some targets had too few samples")
    return {
        "schema_version": SCHEMA_VERSION,
        "benchmark": "service",
        "units": {"time": "ms", "throughput": "requests per second"},
        "frame": frame.frame_id,
        "image_size_wh": [frame.width, frame.height],
        "point_uv": [float(x) for x in point_uv],
        "backend": health["backend"],
        "repeat": repeat,
        "warmup": warmup,
        "latency": latency,
        "overhead_ms": overhead,
        "isolated_ms": isolated,
        "concurrent": concurrent,
        "targets": targets,
        "met": met,
        "machine": {"cpu_count": os.cpu_count(),
                    "loadavg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None},
        "notes": notes + ["client and server share one process (and its GIL): the overhead is pessimistic"],
    }


def _table(report: dict) -> str:
    lines = [f"service on {report['frame']} ({report['image_size_wh'][0]}x{report['image_size_wh'][1]}), "
             f"{report['repeat']} repeats", f"{'call':<16}{'median':>9}{'p90':>9}{'min':>9}  ms"]
    for name, s in report["latency"].items():
        lines.append(f"{name:<16}{s['median_ms']:>9.2f}{s['p90_ms']:>9.2f}{s['min_ms']:>9.2f}")
    for name, s in report["isolated_ms"].items():
        lines.append(f"{'isolated ' + name:<16}{s['median_ms']:>9.2f}{s['p90_ms']:>9.2f}{s['min_ms']:>9.2f}"
                     "   (stand-in model: the service's own cost)")
    for enc, o in report["overhead_ms"].items():
        lines.append(f"overhead {enc}: paired median {o['paired_median_ms']:.2f}, difference of medians "
                     f"{o['median_difference_ms']:.2f}, of minima {o['min_difference_ms']:.2f} ms")
    c = report["concurrent"]
    lines.append(f"concurrent: {c['sent']} sent by {c['clients']} clients, {c['answered']} answered, {c['errors']} "
                 f"errors, {c['lost']} lost, {c['mismatched']} differing, {c['throughput_per_s']} per s")
    for t in report["targets"]:
        ok = {True: "met", False: "NOT met", None: "no verdict"}[t["met"]]
        lines.append(f"  {t['name']:<64} {t['value']:>9} <= {t['limit']} {t['unit']}: {ok}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from .latency import _parse_point

    try:
        report = run_service_bench(repeat=args.repeat, warmup=args.warmup, clients=args.clients,
                                   requests=args.requests, frame_folder=args.frame,
                                   point_uv=_parse_point(args.point))
    except ImportError as e:
        from ..core.errors import MissingDependencyError

        if isinstance(e, GraspsegError):
            raise
        raise MissingDependencyError(getattr(e, "name", None) or "fastapi", "service", "graspseg bench service") from e
    print(json.dumps(report, indent=2))
    if not args.quiet:
        print(_table(report), file=sys.stderr)
    return 0


def register(bench_subparsers) -> None:
    p = bench_subparsers.add_parser(
        "service", help="HTTP service overhead over in-process perceive (median, p90) and concurrent clients")
    p.add_argument("--repeat", type=int, default=30, help="timed repeats of each call (default 30)")
    p.add_argument("--warmup", type=int, default=2, help="untimed repeats first (default 2)")
    p.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    p.add_argument("--requests", type=int, default=200, help="requests sent by the concurrent clients (default 200)")
    p.add_argument("--frame", type=Path, default=SAMPLE_FRAME, help="frame folder (default: the bundled sample)")
    p.add_argument("--point", default="352,280", metavar="U,V",
                   help="click on the object, pixels (default 352,280: the sample's mug)")
    p.add_argument("--quiet", action="store_true", help="no human-readable table on stderr")
    p.set_defaults(func=run)
