"""``graspseg record``: record a RealSense session to the native episode layout (and optionally the SDK's .db3)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..core.errors import ConfigError
from .live import add_source_args, open_source, split_overrides


def register(subparsers) -> None:
    p = subparsers.add_parser("record", help="record a RealSense session to an episode folder (frame folders + "
                                             "an index with timestamps) and optionally the SDK's .db3")
    add_source_args(p)
    p.add_argument("--out", type=Path, required=True, help="episode folder to create")
    p.add_argument("--duration", type=float, required=True, help="seconds to record")
    p.add_argument("--db3", type=Path, help="also record the SDK's own .db3 of the raw streams")
    p.add_argument("--queue", type=int, default=64, help="frames that may wait for the disk before frames are "
                                                         "dropped (counted) (default 64)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..capture.realsense import EndOfRecording
    from ..capture.session import SessionRecorder

    if args.duration <= 0:
        raise ConfigError(f"--duration must be > 0 seconds, got {args.duration}")
    cam_o, _, rest = split_overrides(getattr(args, "overrides", {}) or {})
    if rest:
        raise ConfigError(f"graspseg record takes --camera.<field>=value overrides only, got {sorted(rest)}")
    opened = open_source(args, cam_o, record_db3=args.db3)
    recorder = SessionRecorder(args.out, queue_frames=args.queue, meta={"source": opened.kind})
    frames = 0
    reason = "duration reached"
    t0 = time.monotonic()
    try:
        with opened.source as src, recorder:
            next_print = t0 + 1.0
            while time.monotonic() - t0 < args.duration:
                try:
                    frame = src.read()
                except EndOfRecording:
                    reason = "the source ended"
                    break
                recorder.submit(frame)
                frames += 1
                if not args.quiet and time.monotonic() >= next_print:
                    print(f"graspseg record: {frames} frames, {recorder.written} written, {recorder.dropped} dropped",
                          file=sys.stderr)
                    next_print += 1.0
            stats = dict(getattr(src, "stats", {}))
    except KeyboardInterrupt:
        reason = "interrupted"
        stats = {}
    finally:
        opened.close()
    elapsed = time.monotonic() - t0
    summary = recorder.summary() | {"frames_read": frames, "seconds": round(elapsed, 2),
                                    "fps_read": round(frames / elapsed, 2) if elapsed else None,
                                    "stopped": reason, "source": args.source, "source_stats": stats,
                                    "db3": None if args.db3 is None else str(args.db3)}
    if recorder.error is not None:
        raise recorder.error
    print(json.dumps(summary, indent=2))
    if not args.quiet:
        print(f"graspseg record: {recorder.written} frames written to {args.out} ({recorder.dropped} dropped)",
              file=sys.stderr)
    return 0
