"""``graspseg bench analyze``: throughput of the offline analysis and tracking quality on synthetic episodes.

Synthetic 640×480 occlusion episodes (:mod:`graspseg.sim.episodes`: a pushed box hidden for a few frames by a
passing plate, exact masks) are generated once into ``--data`` (reused when present), then analysed with
the ``rgbd`` backend by each executor with 1 and 2 workers.

Figures:

* ``frames_per_s_per_worker``: frames / wall time / workers, end to end (process or Ray start-up, reading,
  tracking, the pipeline, writing the reports) — target >= 20 per core;
* ``compute_frames_per_s``: frames / summed per-frame time (read + track + pipeline) of one worker, i.e. what
  one core sustains once running;
* ``cpu_frames_per_s`` (local executor): frames / CPU seconds spent by this process and its workers — what
  one core gives, little affected by other programs sharing the machine;
* ``speedup_1_to_2``: wall time with 1 worker over wall time with 2 (target >= 1.8 on 2 idle cores);
* tracking: mean IoU over each episode (target >= 0.85) and the largest loss / re-acquisition detection
  delay (target <= 3 frames);
* ``results_identical``: every executor and worker count produced the same tables (timings aside).

On a shared machine the speed figures are pessimistic: the machine's load is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
TARGET_FPS_PER_CORE = 20.0
TARGET_SPEEDUP = 1.8
TARGET_MEAN_IOU = 0.85
TARGET_DELAY_FRAMES = 3


def register(bench_subparsers) -> None:
    p = bench_subparsers.add_parser("analyze", help="offline analysis: frames/s per worker, 1->2 worker speed-up "
                                    "(local, Ray), tracking IoU and loss detection on synthetic episodes",
                                    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=4, help="synthetic episodes (default 4)")
    p.add_argument("--frames", type=int, default=40, help="frames per episode (default 40)")
    p.add_argument("--size", default="640x480", help="image size WxH (default 640x480)")
    p.add_argument("--data", type=Path, help="folder for the generated episodes (reused when present; default: a "
                   "temporary folder)")
    p.add_argument("--executors", default="local,ray", help="comma-separated: local, ray (default both)")
    p.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    p.add_argument("--repeats", type=int, default=1, help="timed runs per configuration; median and min reported")
    p.add_argument("--every", type=int, default=1, help="run the pipeline on every N-th frame (tracking runs on all; "
                   "default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def _episodes(data: Path, n: int, frames: int, width: int, height: int, seed: int, say) -> list[Path]:
    from ..sim.episodes import EpisodeSpec, write_occlusion_episode

    spec_key = {"frames": frames, "width": width, "height": height, "seed": seed}
    marker = data / "bench_spec.json"
    if marker.is_file() and json.loads(marker.read_text()) == {**spec_key, "episodes": n}:
        return sorted(p for p in data.iterdir() if p.is_dir() and p.name.startswith("ep_"))
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    out = []
    for k in range(n):
        t = time.perf_counter()
        write_occlusion_episode(data / f"ep_{k:03d}", EpisodeSpec(frames=frames, width=width, height=height,
                                                                   seed=seed + k))
        say(f"generated episode {k + 1}/{n} ({time.perf_counter() - t:.1f} s)")
        out.append(data / f"ep_{k:03d}")
    marker.write_text(json.dumps({**spec_key, "episodes": n}))
    return out


def _warm_worker() -> None:
    """Import what an episode task imports, and hold the CPU a moment so each call lands on its own worker."""
    import matplotlib.figure  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import graspseg.analysis.report  # noqa: F401
    import graspseg.analysis.runner  # noqa: F401

    time.sleep(1.0)


def _cpu_s() -> float:
    """CPU seconds used so far by this process and its finished children (user + system)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _tables_equal(a: Path, b: Path) -> bool:
    from ..analysis.table import same_results

    return all(not same_results(a / ep / "results.parquet", b / ep / "results.parquet")
               for ep in sorted(p.name for p in a.iterdir() if p.is_dir()))


def run(args: argparse.Namespace) -> int:
    from ..analysis import AnalysisConfig, run_analysis
    from ..capture.sources import list_episodes
    from ..core.errors import ConfigError

    def say(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    try:
        width, height = (int(x) for x in args.size.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size must be WxH such as 640x480, got {args.size!r}") from None
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    bad = [e for e in executors if e not in ("local", "ray")]
    if bad or not executors:
        raise ConfigError(f"--executors takes local and/or ray, got {args.executors!r}")
    try:
        worker_counts = sorted({int(w) for w in args.workers.split(",")})
    except ValueError:
        raise ConfigError(f"--workers takes comma-separated integers such as 1,2, got {args.workers!r}") from None
    if not worker_counts or worker_counts[0] < 1 or args.episodes < 1 or args.frames < 2 or args.repeats < 1:
        raise ConfigError("--workers >= 1, --episodes >= 1, --frames >= 2 and --repeats >= 1 are needed")

    tmp_root = Path(tempfile.mkdtemp(prefix="graspseg-bench-analyze-"))
    data = args.data or tmp_root / "episodes"
    try:
        paths = _episodes(data, args.episodes, args.frames, width, height, args.seed, say)
        refs = list_episodes(paths)
        cfg = AnalysisConfig(every=args.every)
        load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        runs: dict[str, dict] = {}
        outputs: dict[str, Path] = {}
        ray_started = False
        for ex in executors:
            if ex == "ray":
                import ray

                if not ray.is_initialized():  # one local cluster for every Ray run: its start-up is not timed
                    ray.init(num_cpus=max(worker_counts), include_dashboard=False, log_to_driver=False,
                             configure_logging=False,
                             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}})
                    ray_started = True
                    # nor is the start of its worker processes (a local pool forks from this warm process)
                    warm = ray.remote(num_cpus=1)(_warm_worker)
                    ray.get([warm.remote() for _ in range(max(worker_counts))])
            for w in worker_counts:
                walls, compute, cpu = [], [], []
                for r in range(args.repeats):
                    out = tmp_root / f"{ex}-{w}-{r}"
                    say(f"{ex} executor, {w} worker(s), run {r + 1}/{args.repeats} ...")
                    c0 = _cpu_s()
                    t = time.perf_counter()
                    summary = run_analysis(refs, out, cfg, workers=w, executor=ex)
                    walls.append(time.perf_counter() - t)
                    cpu.append(_cpu_s() - c0)
                    if summary["errors"]:
                        raise ConfigError(f"bench run failed: {[e for e in summary['per_episode'] if e['status'] != 'ok']}")
                    per_frame_ms = []
                    stage_ms: dict[str, list[float]] = {}
                    for e in summary["per_episode"]:
                        s = json.loads((out / e["folder"] / "summary.json").read_text())
                        t_ms = s["timing"]
                        per_frame_ms.append(sum(t_ms[c]["mean"] * t_ms[c]["n"] for c in
                                                ("t_read_ms", "t_track_ms", "t_perceive_ms")))
                        for c in ("t_read_ms", "t_track_ms", "t_perceive_ms"):
                            stage_ms.setdefault(c, []).append(t_ms[c]["median"])
                    compute.append(summary["frames"] / (sum(per_frame_ms) / 1e3))
                    outputs[f"{ex}-{w}-{r}"] = out
                frames = summary["frames"]
                runs[f"{ex}-{w}"] = {
                    "executor": ex, "workers": w, "frames": frames,
                    "wall_s": {"median": round(float(np.median(walls)), 2), "min": round(min(walls), 2)},
                    "frames_per_s_per_worker": {"median": round(frames / float(np.median(walls)) / w, 2),
                                                "best": round(frames / min(walls) / w, 2)},
                    "compute_frames_per_s": {"median": round(float(np.median(compute)), 2),
                                             "best": round(max(compute), 2)},
                    "per_frame_median_ms": {c[2:-3]: round(float(np.median(v)), 1) for c, v in stage_ms.items()},
                }
                if ex == "local":  # Ray's workers are not this process's children: their CPU time is not seen
                    runs[f"{ex}-{w}"]["cpu_frames_per_s"] = {"median": round(frames / float(np.median(cpu)), 2),
                                                             "best": round(frames / min(cpu), 2)}
                say(f"  {frames} frames in {np.median(walls):.1f} s: {runs[f'{ex}-{w}']['frames_per_s_per_worker']['median']}"
                    f" frames/s per worker")
        if ray_started:
            import ray

            ray.shutdown()
        load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        speedups = {}
        for ex in executors:
            if 1 in worker_counts and 2 in worker_counts:
                a, b = runs[f"{ex}-1"]["wall_s"], runs[f"{ex}-2"]["wall_s"]
                speedups[ex] = {"median": round(a["median"] / b["median"], 3), "best": round(a["min"] / b["min"], 3)}
        first = next(iter(outputs.values()))
        identical = all(_tables_equal(first, o) for o in outputs.values())
        ious, delays, per_ep = [], [], []
        for e in sorted(p for p in first.iterdir() if p.is_dir()):
            s = json.loads((e / "summary.json").read_text())
            gt = s["ground_truth"]
            ev = gt["events"]
            ious.append(gt["mean_iou"])
            if ev.get("max_abs_delay_frames") is not None:
                delays.append(ev["max_abs_delay_frames"])
            per_ep.append({"episode": e.name, "mean_iou": gt["mean_iou"], "mean_iou_visible": gt["mean_iou_visible"],
                           "loss": ev.get("loss"), "reacquire": ev.get("reacquire"), "missed": ev.get("missed"),
                           "spurious": ev.get("spurious")})
        missed = sum(p["missed"] or 0 for p in per_ep)
        fps1 = {ex: runs[f"{ex}-1"]["frames_per_s_per_worker"]["median"] for ex in executors if f"{ex}-1" in runs}
        verdicts = {
            "frames_per_s_per_worker>=20": {ex: ("met" if v >= TARGET_FPS_PER_CORE else "short") for ex, v in fps1.items()},
            "speedup_1_to_2>=1.8": {ex: ("met" if v["median"] >= TARGET_SPEEDUP else "short") for ex, v in speedups.items()},
            "mean_iou>=0.85": "met" if ious and min(ious) >= TARGET_MEAN_IOU else "short",
            "events_within_3_frames": "met" if delays and max(delays) <= TARGET_DELAY_FRAMES and not missed else "short",
        }
        report = {
            "schema_version": SCHEMA_VERSION, "bench": "analyze", "backend": "rgbd", "tracker": cfg.tracker,
            "every": cfg.every,
            "episodes": len(refs), "frames_per_episode": args.frames, "size": f"{width}x{height}",
            "runs": runs, "speedup_1_to_2": speedups, "results_identical": identical,
            "tracking": {"mean_iou": {"min": min(ious), "mean": round(float(np.mean(ious)), 4)},
                         "max_event_delay_frames": max(delays) if delays else None, "missed_events": missed,
                         "per_episode": per_ep},
            "targets": {"frames_per_s_per_worker": TARGET_FPS_PER_CORE, "speedup_1_to_2": TARGET_SPEEDUP,
                        "mean_iou": TARGET_MEAN_IOU, "event_delay_frames": TARGET_DELAY_FRAMES},
            "verdicts": verdicts,
            "machine": {"cpu_count": os.cpu_count(), "loadavg_1m_before": round(load_before, 2) if load_before else None,
                        "loadavg_1m_after": round(load_after, 2) if load_after else None},
            "note": "speed figures on a shared machine are pessimistic; the speed-up needs 2 idle cores",
        }
        print(json.dumps(report, indent=2))
        return 0
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
