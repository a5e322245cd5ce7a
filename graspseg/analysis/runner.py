"""Run the analysis over many episodes: one task per episode, on local processes or a Ray cluster.

Output layout::

    OUT/
      analysis.json            # the run: every episode's status and headline numbers (rewritten as they finish)
      <episode>/               # one folder per episode, swapped into place whole when it is complete
        summary.json           # status "ok" (numbers, events, problems) or "error" (what went wrong)
        results.parquet        # one row per frame (graspseg.analysis.table.COLUMNS)
        report.html            # self-contained report
        timeline.png, overlays/frame_NNNNNN.png
        episode.rrd            # with rrd=True (--rrd): every frame, tracked mask, flags, grasps for the rerun viewer

Crash safety and ``resume``: an episode folder appears only complete (:func:`graspseg.core.io.output_set`);
a killed run leaves the finished episodes in place, and ``resume=True`` skips every episode whose
``summary.json`` has the same fingerprint (the recording's size and modification time, and the config).

Every executor runs the same :func:`run_episode` on the same inputs, so the results are the same whichever
ran them (only timings differ).
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue as queue_mod
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from ..capture.sources import EpisodeRef, open_episode
from ..core.errors import ConfigError, GraspsegError, MissingDependencyError
from ..core.io import atomic_write_json, output_set, read_json
from .config import ANALYSIS_SCHEMA_VERSION, AnalysisConfig

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")
#: A progress callback: ``(kind, payload)`` with kind ``"frames"`` (payload: episode, done, total) or
#: ``"episode"`` (payload: the episode's summary).
Progress = Callable[[str, dict], None]


def source_fingerprint(ref: EpisodeRef) -> str:
    """Size and modification time of the recording's files (top level of a folder)."""
    p = Path(ref.path)
    files = [p] if p.is_file() else sorted(x for x in p.iterdir() if x.is_file()) if p.is_dir() else []
    h = hashlib.sha256(f"{ref.kind}:{ref.key}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def episode_folders(refs: Sequence[EpisodeRef]) -> list[str]:
    """One folder name per episode: its name made file-safe, made unique with a short hash of its path."""
    names = [re.sub(r"[^A-Za-z0-9._-]+", "_", r.name).strip("._") or "episode" for r in refs]
    out = []
    for r, n in zip(refs, names, strict=True):
        if names.count(n) > 1:
            n = f"{n}-{hashlib.sha256(str(Path(r.path).resolve()).encode()).hexdigest()[:6]}"
        out.append(n)
    return out


def _limit_threads() -> None:
    """One core per episode task: OpenCV (and BLAS where threadpoolctl is present) single-threaded."""
    import cv2

    cv2.setNumThreads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass


def _error_summary(ref: EpisodeRef, e: BaseException, fingerprint: dict, problems: list[str]) -> dict:
    kind = "internal error " if not isinstance(e, GraspsegError | OSError) else ""
    return {"schema": "graspseg.analysis.episode", "schema_version": ANALYSIS_SCHEMA_VERSION, "status": "error",
            "episode": ref.to_dict(), "error": f"{kind}{type(e).__name__}: {' '.join(str(e).split())}",
            "problems": problems, "fingerprint": fingerprint}


def run_episode(ref: EpisodeRef, out_dir: str | Path, cfg: AnalysisConfig,
                progress: Callable[[int, int], None] | None = None) -> dict:
    """Analyse one episode and write its folder (atomically); returns its summary.

    Never raises for a bad episode: the error goes into the summary (``status: "error"``) so that the
    other episodes are still analysed.
    """
    from .episode import analyze_source
    from .report import overlay_image, plot_timeline, render_html
    from .table import write_table

    fingerprint = {"config": cfg.fingerprint(), "source": source_fingerprint(ref)}
    problems: list[str] = []
    source = None
    try:
        source = open_episode(ref, cfg.source)
        problems = source.problems
        with output_set(out_dir, "episode output") as tmp:
            rrd = None
            if cfg.rrd:
                from .report import RrdEpisodeLog

                rrd = RrdEpisodeLog(tmp / "episode.rrd", ref.name)
            try:
                analysis = analyze_source(source, cfg, progress=progress, on_frame=rrd)
            finally:
                if rrd is not None:
                    rrd.close()
            summary = analysis.summary | {"fingerprint": fingerprint}
            rows_by_frame = {r["frame"]: r for r in analysis.rows}
            overlays = {k: overlay_image(k, c, m, res, rows_by_frame.get(k))
                        for k, (c, m, res) in analysis.keep.items()}
            write_table(analysis.rows, tmp / "results.parquet")
            timeline = plot_timeline(analysis.rows) if analysis.rows else None
            if timeline is not None:
                (tmp / "timeline.png").write_bytes(timeline)
            from ..capture.images import write_png

            for k, img in overlays.items():
                write_png(tmp / "overlays" / f"frame_{k:06d}.png", img)
            (tmp / "report.html").write_text(render_html(summary, analysis.rows, overlays, timeline), encoding="utf-8")
            atomic_write_json(tmp / "summary.json", summary)
        return summary
    except Exception as e:  # noqa: BLE001 - one bad episode must not stop the others; the summary names it
        log.info("episode %s failed: %s", ref.name, e)
        summary = _error_summary(ref, e, fingerprint, list(problems))
        with output_set(out_dir, "episode output") as tmp:
            atomic_write_json(tmp / "summary.json", summary)
        return summary
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            try:
                close()
            except Exception as e:  # noqa: BLE001 - the outputs are written; a failing close is only logged
                log.warning("closing episode %s: %s", ref.name, e)


def _finished(out_dir: Path, ref: EpisodeRef, cfg: AnalysisConfig) -> dict | None:
    path = out_dir / "summary.json"
    if not path.is_file():
        return None
    try:
        s = read_json(path, "episode summary")
    except GraspsegError:
        return None
    want = {"config": cfg.fingerprint(), "source": source_fingerprint(ref)}
    return s if isinstance(s, dict) and s.get("fingerprint") == want and s.get("status") in ("ok", "error") else None


def _headline(summary: dict, folder: str) -> dict:
    h = {"episode": summary["episode"]["name"], "folder": folder, "status": summary["status"]}
    if summary["status"] == "ok":
        h.update({"frames": summary["frames"], "lost_frames": summary["tracking"]["lost_frames"],
                  "flagged_frames": summary["flagged_frames"],
                  "frames_with_accepted_grasp": summary["grasps"]["frames_with_accepted"],
                  "problems": len(summary["problems"])})
        gt = summary.get("ground_truth")
        if gt:
            h["mean_iou"] = gt["mean_iou"]
            h["max_event_delay_frames"] = (gt.get("events") or {}).get("max_abs_delay_frames")
    else:
        h["error"] = summary["error"]
    return h


# --------------------------------------------------------------------------------------------------
# executors: each runs run_episode(ref, folder, cfg) for every job and reports progress
# --------------------------------------------------------------------------------------------------
def _task(ref: EpisodeRef, out_dir: str, cfg: AnalysisConfig, q=None) -> dict:
    """The per-episode task every executor runs (top level, so processes and Ray can import it)."""
    _limit_threads()
    name = ref.name

    def progress(done: int, total: int) -> None:
        if q is not None and (done == total or done % 5 == 0):
            try:
                q.put(("frames", {"episode": name, "done": done, "total": total}))
            except Exception:  # noqa: BLE001 - progress is best effort
                pass

    return run_episode(ref, out_dir, cfg, progress)


def _drain(q, progress: Progress | None) -> None:
    if q is None:
        return
    while True:
        try:
            kind, payload = q.get_nowait() if hasattr(q, "get_nowait") else q.get(block=False)
        except (queue_mod.Empty, Exception):  # noqa: BLE001 - ray's queue raises its own Empty
            return
        if progress is not None:
            progress(kind, payload)


def _run_local(jobs, cfg, workers: int, progress: Progress | None, on_done) -> None:
    if workers == 1:
        import cv2

        threads = cv2.getNumThreads()
        try:
            for ref, folder in jobs:
                def frames(done, total, _name=ref.name):
                    if progress is not None:
                        progress("frames", {"episode": _name, "done": done, "total": total})
                _limit_threads()
                on_done(run_episode(ref, folder, cfg, frames), folder)
        finally:
            cv2.setNumThreads(threads)
        return
    import multiprocessing as mp

    # fork where the platform has it: workers start in milliseconds with graspseg already imported, and
    # scripts need no ``if __name__ == "__main__"`` guard; spawn elsewhere
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        q = manager.Queue()
        futures = {pool.submit(_task, ref, str(folder), cfg, q): folder for ref, folder in jobs}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(q, progress)
            for f in done:
                on_done(f.result(), futures[f])
        _drain(q, progress)


def _ray():
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "ray", "the Ray executor (--executor ray)") from None
    return ray


def _run_ray(jobs, cfg, workers: int, address: str | None, progress: Progress | None, on_done) -> None:
    ray = _ray()
    started = False
    if not ray.is_initialized():
        import sys

        if address:  # a cluster: its workers import the graspseg installed there
            kw = {"address": address}
        else:  # a local cluster: its workers import this process's graspseg
            kw = {"num_cpus": workers, "include_dashboard": False,
                  "runtime_env": {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}}}
        ray.init(**kw, log_to_driver=False, logging_level=logging.WARNING, configure_logging=False)
        started = True
    try:
        from ray.util.queue import Queue

        q = Queue(actor_options={"num_cpus": 0})  # the progress queue must not hold a CPU the tasks need
        remote = ray.remote(num_cpus=1)(_task)
        waiting = list(jobs)
        refs: dict = {}
        pending: list = []
        while waiting or pending:
            while waiting and len(pending) < workers:  # at most `workers` episodes at once, whatever the cluster
                ref, folder = waiting.pop(0)
                r = remote.remote(ref, str(folder), cfg, q)
                refs[r] = folder
                pending.append(r)
            done, pending = ray.wait(pending, num_returns=1, timeout=0.2)
            _drain(q, progress)
            for r in done:
                on_done(ray.get(r), refs[r])
        _drain(q, progress)
    finally:
        if started:
            ray.shutdown()


def run_analysis(refs: Sequence[EpisodeRef], out: str | Path, cfg: AnalysisConfig | None = None, *,
                 workers: int = 1, executor: str = "local", ray_address: str | None = None, resume: bool = False,
                 progress: Progress | None = None) -> dict:
    """Analyse ``refs`` into ``out`` (see the module docstring); returns the run summary (``analysis.json``).

    Parameters
    ----------
    refs : sequence of EpisodeRef
        From :func:`graspseg.capture.sources.list_episodes`.
    workers : int
        Episodes analysed at once (processes, or Ray CPUs of a local cluster).
    executor : {"local", "ray"}
    ray_address : str, optional
        An existing Ray cluster (``ray://host:10001`` or ``auto``); None starts a local one with ``workers`` CPUs.
    resume : bool
        Skip episodes already finished with the same recording and config.
    """
    cfg = cfg or AnalysisConfig()
    if executor not in EXECUTORS:
        raise ConfigError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1, got {workers!r}")
    if ray_address is not None and executor != "ray":
        raise ConfigError("--ray-address needs --executor ray")
    if not refs:
        raise ConfigError("no episodes to analyse")
    from ..pipeline import PipelineConfig
    from ..segment.tracking import TRACKERS

    TRACKERS.get(cfg.tracker)  # an unknown or uninstalled tracker is refused before any episode starts
    if cfg.rrd:
        from ..viz.rerun_view import import_rerun

        import_rerun("episode .rrd recordings (--rrd)")
    if cfg.pipeline_config:
        PipelineConfig.from_dict(cfg.pipeline_config)
    if executor == "ray":
        _ray()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    folders = episode_folders(refs)
    t0 = time.perf_counter()
    results: dict[str, dict] = {}
    skipped = []
    jobs = []
    for ref, name in zip(refs, folders, strict=True):
        done = _finished(out / name, ref, cfg) if resume else None
        if done is not None:
            results[name] = done
            skipped.append(name)
        else:
            jobs.append((ref, out / name))

    def write_run(final: bool) -> dict:
        episodes = [_headline(results[n], n) if n in results else {"episode": r.name, "folder": n, "status": "pending"}
                    for r, n in zip(refs, folders, strict=True)]
        ok = [e for e in episodes if e["status"] == "ok"]
        run = {"schema": "graspseg.analysis.run", "schema_version": ANALYSIS_SCHEMA_VERSION, "complete": final,
               "episodes": len(refs), "ok": len(ok), "errors": sum(e["status"] == "error" for e in episodes),
               "pending": sum(e["status"] == "pending" for e in episodes), "resumed": len(skipped),
               "frames": sum(e.get("frames", 0) for e in ok), "executor": executor, "workers": workers,
               "config": cfg.to_dict(), "per_episode": episodes,
               "timing": {"wall_s": round(time.perf_counter() - t0, 3)}}
        atomic_write_json(out / "analysis.json", run)
        return run

    def on_done(summary: dict, folder) -> None:
        results[Path(folder).name] = summary
        write_run(False)
        if progress is not None:
            progress("episode", summary)

    write_run(False)
    if jobs:
        if executor == "local":
            _run_local(jobs, cfg, workers, progress, on_done)
        else:
            _run_ray(jobs, cfg, workers, ray_address, progress, on_done)
    return write_run(True)


__all__ = ["EXECUTORS", "episode_folders", "run_analysis", "run_episode", "source_fingerprint"]
