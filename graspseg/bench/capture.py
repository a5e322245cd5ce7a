"""``graspseg bench capture``: the RealSense capture layer's cost, frame loss in playback, recording rate.

Runs on a synthetic camera (``rs.software_device``, :class:`~graspseg.capture.realsense_synthetic.SoftwareCamera`),
so it needs pyrealsense2 but no hardware. Three measurements:

``overhead``
    Per frame, :meth:`RealSenseSource.read` (copy out of the SDK pool, metric depth, ``RGBDFrame``, timestamps)
    minus raw pyrealsense2 (``syncer.wait_for_frames`` + ``align.process`` + zero-copy numpy views), at 848x480
    and 1280x720; both passes alternate so machine load hits them alike. Target <= 2 ms.
``playback loss``
    A ``--minutes``-equivalent 30 fps recording (``.db3``, frames numbered) played back not in real time:
    frames recorded vs delivered (the first frames of a playback are released unpaired by the SDK's syncer
    and reported apart). Target 0 lost.
``recording``
    Sustained frames per second of the episode writer (PNG frame folders, fsynced index) and of the SDK's own
    ``.db3`` recorder at 848x480 with textured content. Target 30 fps.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
#: The SDK recorder has written everything once its file did not grow for this long, seconds.
QUIET_S = 1.0


def _summary(v: list[float]) -> dict:
    a = np.asarray(v, np.float64)
    return {"median": round(float(np.median(a)), 4), "min": round(float(a.min()), 4),
            "max": round(float(a.max()), 4), "n": int(a.size)}


def _content(w: int, h: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured colour image and a depth image (metres) of a synthetic tabletop at ``w`` x ``h``."""
    from ..sim.synthetic import make_scene

    s = make_scene("clutter", seed=seed, width=w, height=h)
    return np.array(s.frame.color), np.array(s.frame.depth_m)


def _camera(w: int, h: int, fps: int = 30):
    from ..capture.realsense_synthetic import SoftwareCamera
    from ..sim.synthetic import d435_intrinsics

    return SoftwareCamera(d435_intrinsics(w, h), depth_scale=1e-3, fps=fps)


def _raw_pass(cam, color, raw, n: int, start: int) -> list[float]:
    """Per-frame ms of raw pyrealsense2: syncer wait + align + zero-copy views."""
    rs = cam.rs
    sync = rs.syncer(2)
    sensors = []
    for sensor in cam.device.query_sensors():
        sensor.open(sensor.get_stream_profiles()[0])
        sensor.start(sync)
        sensors.append(sensor)
    align = rs.align(rs.stream.color)
    out = []
    try:
        cam.push(color, raw, frame_number=start)  # the syncer releases a stream's first frame unpaired
        for k in range(1, n):
            cam.push(color, raw, frame_number=start + k)
            t0 = time.perf_counter()
            try:
                fs = sync.wait_for_frames(1000)
            except RuntimeError:
                continue
            if not (fs.get_depth_frame() and fs.get_color_frame()):
                continue
            fs = align.process(fs)
            np.asanyarray(fs.get_depth_frame().get_data())
            np.asanyarray(fs.get_color_frame().get_data())
            out.append((time.perf_counter() - t0) * 1e3)
    finally:
        for s in sensors:
            s.stop()
            s.close()
    return out


def _ours_pass(cam, color, raw, n: int, start: int) -> list[float]:
    from ..capture.realsense import RealSenseConfig, RealSenseSource

    ci = cam.intrinsics
    cfg = RealSenseConfig(color_width=ci.width, color_height=ci.height, depth_width=ci.width, depth_height=ci.height,
                          reconnect_attempts=0)
    out = []
    with RealSenseSource(cfg, device=cam.device) as src:
        cam.push(color, raw, frame_number=start)  # the syncer releases a stream's first frame unpaired
        for k in range(1, n):
            cam.push(color, raw, frame_number=start + k)
            t0 = time.perf_counter()
            src.read(timeout_s=1.0)
            out.append((time.perf_counter() - t0) * 1e3)
    return out[1:]


def measure_overhead(sizes: list[tuple[int, int]], frames: int, repeats: int) -> dict:
    res = {}
    for w, h in sizes:
        cam = _camera(w, h)
        color, depth = _content(w, h)
        raw = np.round(depth / cam.depth_scale).astype(np.uint16)
        raw_ms, ours_ms = [], []
        start = 0
        for _ in range(repeats):
            r = _raw_pass(cam, color, raw, frames, start)
            start += frames
            o = _ours_pass(cam, color, raw, frames, start)
            start += frames
            raw_ms.append(float(np.median(r[1:])))
            ours_ms.append(float(np.median(o)))
        over = np.asarray(ours_ms) - np.asarray(raw_ms)
        res[f"{w}x{h}"] = {"raw_pyrealsense2_ms": _summary(raw_ms), "graspseg_read_ms": _summary(ours_ms),
                           "overhead_ms": _summary(over.tolist())}
    return res


def _record_numbered(cam, path: Path, n: int, content: list | None = None,
                     fps: float | None = None) -> tuple[float, float]:
    """Record ``n`` frames numbered 0..n-1 (the number also in the first pixels) with the SDK's recorder on the
    software camera, pushed at ``fps`` (None: as fast as they go), cycling through ``content``
    ``[(color, raw depth), ...]`` (default one flat frame); returns (seconds pushing, seconds until the file
    stopped growing)."""
    from ..capture.realsense import wait_until_written

    rs = cam.rs
    w, h = cam.intrinsics.width, cam.intrinsics.height
    content = content or [(np.full((h, w, 3), 90, np.uint8), np.full((h, w), 600, np.uint16))]
    content = [(c.copy(), d) for c, d in content]
    t0 = time.perf_counter()
    rec = rs.recorder(str(path), cam.device)  # before the sensors are opened
    sensors = list(rec.query_sensors())
    for sensor in sensors:
        sensor.open(sensor.get_stream_profiles()[0])
        sensor.start(lambda f: None)
    try:
        for k in range(n):
            if fps is not None:
                wait = t0 + k / fps - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            color, raw = content[k % len(content)]
            color[0, :8] = np.frombuffer(int(k).to_bytes(8, "little"), np.uint8)[:, None]
            cam.push(color, raw, frame_number=k)
        push_s = time.perf_counter() - t0
        wait_until_written(path, quiet_s=QUIET_S)  # stopping the sensors drops what the writer has not written
        written_s = time.perf_counter() - t0 - QUIET_S
    finally:
        for sensor in sensors:
            sensor.stop()
            sensor.close()
        del sensors, rec  # the recorder writes the file out when released
    return push_s, written_s


def _count_recorded(path: Path) -> tuple[list[int], int]:
    """Frame numbers played back from a recording, and how many carry their number in their pixels."""
    from ..capture.realsense import RealSenseRecording

    numbers, pixel_ok = [], 0
    with RealSenseRecording(path) as rec:
        for f in rec:
            num = int(f.meta["color_frame_number"])
            numbers.append(num)
            pixel_ok += int(int.from_bytes(bytes(f.color[0, :8, 0]), "little") == num)
    return numbers, pixel_ok


def measure_playback_loss(minutes: float, w: int, h: int, folder: Path) -> dict:
    """Record ``minutes`` x 60 x 30 numbered frames to a .db3 and play it back not in real time through
    :class:`RealSenseRecording` (alignment, copies, metric depth: what a user's reader does)."""
    n = int(round(minutes * 60 * 30))
    cam = _camera(w, h)
    path = folder / "loss.db3"
    _, record_s = _record_numbered(cam, path, n, fps=60.0)  # twice real time: the writer keeps up
    t0 = time.perf_counter()
    numbers, pixel_ok = _count_recorded(path)
    play_s = time.perf_counter() - t0
    got = sorted(set(numbers))
    first = got[0] if got else None
    missing_after_first = sorted(set(range(first, n)) - set(got)) if got else list(range(n))
    return {"frames_recorded": n, "size_wh": [w, h], "equivalent_minutes_at_30fps": minutes,
            "frames_delivered": len(numbers), "duplicates": len(numbers) - len(got),
            "unpaired_at_start": first, "lost_after_first_frame": len(missing_after_first),
            "lost_examples": missing_after_first[:10], "pixels_match_frame_number": pixel_ok,
            "record_s": round(record_s, 1), "playback_s": round(play_s, 1),
            "playback_fps": round(len(numbers) / play_s, 1) if play_s else None,
            "file_mb": round(path.stat().st_size / 1e6, 1)}


def measure_recording(w: int, h: int, frames: int, folder: Path) -> dict:
    from ..capture.episode import EpisodeWriter
    from ..capture.session import SessionRecorder
    from ..core.frame import RGBDFrame
    from ..sim.synthetic import d435_intrinsics

    color, depth = _content(w, h, seed=1)
    rng = np.random.default_rng(0)
    intr = d435_intrinsics(w, h)
    frames_list = []
    for k in range(8):  # a few distinct frames (sensor noise) so PNG compression is not flattered
        c = np.clip(color.astype(np.int16) + rng.normal(0, 2, color.shape).round().astype(np.int16), 0, 255).astype(np.uint8)
        d = np.where(depth > 0, depth + rng.normal(0, 0.001, depth.shape), 0).astype(np.float32)
        frames_list.append(RGBDFrame(c, d, intr, timestamp_s=k / 30, frame_id=str(k), meta={"depth_scale": 1e-3}))
    per = []
    with EpisodeWriter(folder / "episode", depth_scale=1e-3) as rec:  # one frame at a time, one thread
        for k in range(frames):
            t0 = time.perf_counter()
            rec.append(frames_list[k % len(frames_list)], extra={"color_frame_number": k})
            per.append(time.perf_counter() - t0)
    ms = np.asarray(per) * 1e3
    rates = {}
    for workers in (1, 2, 4):  # the session recorder: frames written by `workers` threads, committed in order
        rec = SessionRecorder(folder / f"session{workers}", queue_frames=frames, workers=workers, depth_scale=1e-3)
        t0 = time.perf_counter()
        with rec:
            for k in range(frames):
                rec.submit(frames_list[k % len(frames_list)])
        rates[workers] = (rec.written / (time.perf_counter() - t0), rec.dropped)
    episode = {"append_ms": _summary(ms.tolist()),
               "session_recorder_fps": {f"{w}_workers": round(r, 1) for w, (r, _) in rates.items()},
               "dropped": {f"{w}_workers": d for w, (_, d) in rates.items()},
               "sustained_fps": round(max(r for r, _ in rates.values()), 1),
               "mb_per_frame": round(sum(f.stat().st_size for f in (folder / "episode").rglob("*") if f.is_file())
                                     / 1e6 / frames, 2)}
    cam = _camera(w, h)
    content = [(f.color, np.round(f.depth_m / 1e-3).astype(np.uint16)) for f in frames_list]
    n_db3 = max(frames, 150)

    def lost_in(path: Path) -> int:
        numbers, _ = _count_recorded(path)
        first = min(numbers) if numbers else 0
        return len(set(range(first, n_db3)) - set(numbers))

    _record_numbered(cam, folder / "rate30.db3", n_db3, content, fps=30.0)
    _, written_s = _record_numbered(cam, folder / "burst.db3", n_db3, content)
    db3 = {"frames": n_db3, "lost_at_30fps": lost_in(folder / "rate30.db3"),
           "burst_written_fps": round(n_db3 / written_s, 1), "burst_lost": lost_in(folder / "burst.db3"),
           "mb_per_frame": round((folder / "rate30.db3").stat().st_size / 1e6 / n_db3, 2),
           "note": "textured frames through the SDK recorder, paced at 30 fps, then as fast as they go (written fps: "
                   "frames / time until the file stopped growing)"}
    db3["sustained_fps"] = db3["burst_written_fps"] if db3["burst_lost"] == 0 else None
    return {"size_wh": [w, h], "episode": episode, "sdk_db3": db3}


def run_capture_bench(*, frames: int = 60, repeats: int = 3, minutes: float = 10.0, loss_size=(848, 480),
                      record_frames: int = 90) -> dict:
    from ..capture.realsense import import_pyrealsense2

    import_pyrealsense2("graspseg bench capture")
    with tempfile.TemporaryDirectory(prefix="graspseg-bench-capture-") as tmp:
        tmp = Path(tmp)
        overhead = measure_overhead([(848, 480), (1280, 720)], frames, repeats)
        loss = measure_playback_loss(minutes, *loss_size, tmp)
        recording = measure_recording(848, 480, record_frames, tmp)
    targets = []
    for size, r in overhead.items():
        v = r["overhead_ms"]
        targets.append({"name": f"capture overhead over raw pyrealsense2 at {size}", "value": v["median"],
                        "value_from_min": v["min"], "limit": 2.0, "unit": "ms/frame", "met": v["median"] <= 2.0})
    targets.append({"name": f"frames lost over a {minutes:g}-minute-equivalent non-real-time playback",
                    "value": loss["lost_after_first_frame"], "limit": 0, "unit": "frames",
                    "met": loss["lost_after_first_frame"] == 0,
                    "note": f"{loss['unpaired_at_start']} frame(s) at the very start released unpaired by the syncer"})
    fps = recording["episode"]["sustained_fps"]
    targets.append({"name": "episode recording at 848x480 (session recorder)", "value": fps, "limit": 30,
                    "unit": "fps (>=)", "met": fps >= 30,
                    "note": f"by encoding threads: {recording['episode']['session_recorder_fps']}"})
    db3 = recording["sdk_db3"]
    targets.append({"name": "SDK .db3 recording at 848x480, 30 fps: frames lost", "value": db3["lost_at_30fps"],
                    "limit": 0, "unit": "frames", "met": db3["lost_at_30fps"] == 0,
                    "note": f"a burst was written at {db3['burst_written_fps']} fps with {db3['burst_lost']} lost"})
    return {"schema_version": SCHEMA_VERSION, "benchmark": "capture", "units": {"time": "ms", "rate": "fps"},
            "overhead": overhead, "playback_loss": loss, "recording": recording, "targets": targets,
            "machine": {"cpu_count": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2)}}


def _table(report: dict) -> str:
    lines = ["capture benchmark (synthetic camera on rs.software_device)"]
    for t in report["targets"]:
        ok = "met" if t["met"] else "NOT met"
        best = f" (from min: {t['value_from_min']})" if "value_from_min" in t else ""
        lines.append(f"  {t['name']:<66} {t['value']!s:>8} vs {t['limit']} {t['unit']}: {ok}{best}")
    lines.append(f"  load average (1 min): {report['machine']['loadavg_1m']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..core.errors import ConfigError

    if args.frames < 5 or args.repeats < 1 or args.minutes <= 0:
        raise ConfigError(f"--frames must be >= 5, --repeats >= 1 and --minutes > 0, got {args.frames}, "
                          f"{args.repeats}, {args.minutes}")
    report = run_capture_bench(frames=args.frames, repeats=args.repeats, minutes=args.minutes,
                               record_frames=args.record_frames)
    print(json.dumps(report, indent=2))
    if not args.quiet:
        print(_table(report), file=sys.stderr)
    return 0


def register(bench_subparsers) -> None:
    p = bench_subparsers.add_parser("capture", help="RealSense capture overhead, playback frame loss, recording rate "
                                                    "(synthetic camera, no hardware)")
    p.add_argument("--frames", type=int, default=60, help="frames per overhead pass (default 60)")
    p.add_argument("--repeats", type=int, default=3, help="alternating raw/graspseg passes (default 3)")
    p.add_argument("--minutes", type=float, default=10.0,
                   help="length of the playback-loss recording in minutes at 30 fps (default 10)")
    p.add_argument("--record-frames", type=int, default=90, help="frames written in the recording test (default 90)")
    p.add_argument("--quiet", action="store_true", help="no human-readable table on stderr")
    p.set_defaults(func=run)
