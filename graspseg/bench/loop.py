"""``graspseg bench loop``: the live perception loop on a synthetic 30 fps camera with a moving object.

A :class:`~graspseg.capture.realsense_synthetic.SoftwareCamera` streams one period of
:func:`~graspseg.sim.moving.moving_object_sequence` (640x480, an object sliding back and forth at up to
0.13 m/s, exact masks) in real time through :class:`~graspseg.capture.realsense.RealSenseSource` into a
:class:`~graspseg.loop.PerceptionLoop`; a poller calls ``latest()`` at 100 Hz like a controller would and scores
each new result's mask against the ground truth of its frame (by frame number).

Two runs:

``rgbd``
    the embedded segmenter, ``auto`` schedule (it keeps up: every frame encoded). Targets: >= 15 results/s,
    capture-to-result latency p95 <= 100 ms (arrival on the host to publication).
``slow_encoder``
    the same segmenter behind an artificial 500 ms encoder (a sleep before each ``set_frame``), keyframe
    schedule, masks propagated by the ``rgbd`` tracker in between. Targets: >= 10 results/s from propagation,
    each with its keyframe age; mask IoU >= 0.85 against ground truth.

Rates and latencies depend on the machine's load; each run also reports the median *CPU* milliseconds of one
frame's work per stage (the stage thread's own CPU time) and the process's CPU per result, which say what an
idle machine would sustain.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

import numpy as np

SCHEMA_VERSION = 1


class DelayedEncoder:
    """A segmenter whose ``set_frame`` (the image encoding) takes ``delay_s`` longer: a stand-in for a heavy model."""

    def __init__(self, inner, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = float(delay_s)
        self.name = f"{getattr(inner, 'name', 'segmenter')}+{self.delay_s * 1e3:.0f}ms"

    def set_frame(self, frame) -> None:
        time.sleep(self.delay_s)
        self.inner.set_frame(frame)

    def predict(self, prompt):
        return self.inner.predict(prompt)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _stats(v) -> dict | None:
    a = np.asarray(v, np.float64)
    if not a.size:
        return None
    return {"median": round(float(np.median(a)), 4), "min": round(float(a.min()), 4),
            "p5": round(float(np.percentile(a, 5)), 4), "p95": round(float(np.percentile(a, 95)), 4),
            "max": round(float(a.max()), 4), "n": int(a.size)}


def run_one(seq, *, seconds: float, delay_s: float, schedule: str, warmup_s: float = 2.0) -> dict:
    """Stream ``seq`` for ``warmup_s + seconds`` and score the loop's results over the last ``seconds``."""
    from ..capture.realsense import RealSenseConfig, RealSenseSource
    from ..capture.realsense_synthetic import SoftwareCamera
    from ..loop import LoopConfig, PerceptionLoop
    from ..pipeline import Pipeline
    from ..segment import Prompt, create_segmenter
    from ..segment.tracking import mask_iou

    intr = seq.intrinsics
    cam = SoftwareCamera(intr, depth_scale=1e-4, fps=30, depth_to_color_translation_m=(0.0, 0.0, 0.0))
    seg = create_segmenter("rgbd")
    pipe = Pipeline(segmenter=DelayedEncoder(seg, delay_s) if delay_s > 0 else seg)
    cfg = RealSenseConfig(color_width=intr.width, color_height=intr.height, depth_width=intr.width,
                          depth_height=intr.height, frame_timeout_s=2.0)
    source = RealSenseSource(cfg, device=cam.device)
    loop = PerceptionLoop(source, Prompt.from_point(*seq.prompt_point(0)), pipeline=pipe,
                          config=LoopConfig(schedule=schedule))
    ious, kf_age, sources, lat, stamps = [], [], [], [], []
    last = -1
    cpu0 = None
    with loop:
        cam.play(seq.frame_at)
        t_start = time.monotonic()
        t_measure = t_start + warmup_s
        try:
            while time.monotonic() < t_measure + seconds:
                if cpu0 is None and time.monotonic() >= t_measure:
                    cpu0, wall0 = time.process_time(), time.monotonic()
                r = loop.latest()
                if r is not None and r.sequence != last:
                    last = r.sequence
                    now = time.monotonic()
                    if now >= t_measure and r.ok:
                        n = int(r.frame.meta["color_frame_number"])
                        ious.append(mask_iou(r.mask, seq.mask_at(n)))
                        kf_age.append(r.keyframe_age_s)
                        sources.append(r.source)
                        lat.append(r.latency_s)
                        stamps.append(now)
                time.sleep(0.01)
            cpu_s = time.process_time() - cpu0 if cpu0 is not None else None
            wall_s = time.monotonic() - wall0 if cpu0 is not None else None
        finally:
            loop.stop()
            cam.stop()
    status = loop.status()
    window = (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
    rate = (len(stamps) - 1) / window if window > 0 else 0.0
    propagated = sum(s == "propagated" for s in sources)
    prop_rate = rate * propagated / len(sources) if sources else 0.0
    return {"encoder_delay_ms": delay_s * 1e3, "schedule": schedule, "mode": status["mode"],
            "results": len(stamps), "results_per_s": round(rate, 2), "propagated_results": propagated,
            "propagated_per_s": round(prop_rate, 2), "latency_ms": _stats(np.asarray(lat) * 1e3),
            "keyframe_age_s": _stats(kf_age), "mask_iou": _stats(ious),
            "loop": {k: status[k] for k in ("frames", "keyframes", "verified", "reanchored", "lost", "errors",
                                            "dropped_before_tracking", "dropped_before_downstream", "encode_ms",
                                            "stage_ms")},
            "process_cpu": None if not cpu_s else {
                "cores_busy": round(cpu_s / wall_s, 2),
                "cpu_ms_per_result": round(cpu_s / len(stamps) * 1e3, 1) if stamps else None,
                "note": "this process (camera thread, capture, loop, poller) over the measured window"},
            "source": status.get("source")}


def run_loop_bench(*, seconds: float = 15.0, seed: int = 0) -> dict:
    from ..capture.realsense import import_pyrealsense2
    from ..sim.moving import moving_object_sequence

    import_pyrealsense2("graspseg bench loop")
    t0 = time.perf_counter()
    seq = moving_object_sequence(seed=seed, width=640, height=480, fps=30.0)
    render_s = time.perf_counter() - t0
    runs = {"rgbd": run_one(seq, seconds=seconds, delay_s=0.0, schedule="auto"),
            "slow_encoder": run_one(seq, seconds=seconds, delay_s=0.5, schedule="keyframes")}
    a, b = runs["rgbd"], runs["slow_encoder"]
    p95 = a["latency_ms"]["p95"] if a["latency_ms"] else None
    iou = b["mask_iou"]
    targets = [
        {"name": "rgbd results per second (640x480, 30 fps camera)", "value": a["results_per_s"], "limit": 15,
         "unit": "results/s (>=)", "met": a["results_per_s"] >= 15},
        {"name": "rgbd capture-to-result latency p95", "value": p95, "limit": 100, "unit": "ms",
         "met": p95 is not None and p95 <= 100},
        {"name": "500 ms encoder: results per second from propagation", "value": b["propagated_per_s"],
         "limit": 10, "unit": "results/s (>=)", "met": b["propagated_per_s"] >= 10},
        {"name": "500 ms encoder: every result has its keyframe age", "value": b["keyframe_age_s"],
         "limit": "present", "unit": "s", "met": b["keyframe_age_s"] is not None},
        {"name": "500 ms encoder: mask IoU vs ground truth (median; p5 and min in the run)",
         "value": None if iou is None else iou["median"], "limit": 0.85, "unit": "IoU (>=)",
         "met": iou is not None and iou["median"] >= 0.85},
    ]
    return {"schema_version": SCHEMA_VERSION, "benchmark": "loop", "units": {"time": "ms unless _s", "rate": "1/s"},
            "sequence": {"size_wh": [640, 480], "fps": 30, "frames_per_period": len(seq),
                         "peak_speed_mps": round(seq.peak_speed_mps, 3), "render_s": round(render_s, 1)},
            "seconds_measured": seconds, "runs": runs, "targets": targets,
            "machine": {"cpu_count": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2),
                        "threads_after": threading.active_count()}}


def _table(report: dict) -> str:
    lines = ["loop benchmark (synthetic 640x480 camera at 30 fps, moving object)"]
    for t in report["targets"]:
        val = t["value"] if not isinstance(t["value"], dict) else f"median {t['value']['median']}"
        lines.append(f"  {t['name']:<68} {val!s:>10} vs {t['limit']} {t['unit']}: {'met' if t['met'] else 'NOT met'}")
    for name, r in report["runs"].items():
        lat = r["latency_ms"] or {}
        lines.append(f"  {name}: mode {r['mode']}, {r['results_per_s']} results/s, latency p50 {lat.get('median')} "
                     f"p95 {lat.get('p95')} ms, IoU {r['mask_iou']}")
        stages = {k: v for k, v in (r["loop"].get("stage_ms") or {}).items() if v}
        lines.append("    per frame, wall/CPU ms: " + ", ".join(f"{k} {v['wall_p50']}/{v['cpu_p50']}"
                                                           for k, v in stages.items())
                     + (f"; process {r['process_cpu']['cores_busy']} cores busy" if r.get("process_cpu") else ""))
    lines.append(f"  load average (1 min): {report['machine']['loadavg_1m']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..core.errors import ConfigError

    if args.seconds <= 0:
        raise ConfigError(f"--seconds must be > 0, got {args.seconds}")
    report = run_loop_bench(seconds=args.seconds, seed=args.seed)
    print(json.dumps(report, indent=2))
    if not args.quiet:
        print(_table(report), file=sys.stderr)
    return 0


def register(bench_subparsers) -> None:
    p = bench_subparsers.add_parser("loop", help="live loop rate, latency, keyframe ages and mask IoU on a synthetic "
                                                 "moving-object camera (no hardware)")
    p.add_argument("--seconds", type=float, default=15.0, help="measured seconds per run (default 15)")
    p.add_argument("--seed", type=int, default=0, help="scene seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no human-readable table on stderr")
    p.set_defaults(func=run)
