"""``graspseg analyze EPISODE_OR_DIR... --out DIR``: offline analysis of recorded episodes.

Each episode (a graspseg episode folder, a RealSense SDK recording ``.db3`` / legacy ``.bag``, a ROS 1 ``.bag``,
a ROS 2 ``.db3`` / ``.mcap``, a LeRobot-style data set; folders are searched for them) is tracked from its prompt
and analysed frame by frame; per episode a Parquet table, a summary JSON, an HTML report (and with ``--rrd`` a
rerun recording) go to ``DIR/<episode>/`` and the run's summary to ``DIR/analysis.json``, which is also printed
on stdout. Progress (episodes and frames) goes to stderr.

Exit codes: 0 every episode analysed; 3 the run finished but some episodes failed (each one's reason is
in the JSON); 2 the command itself was refused (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_SOME_FAILED = 3


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def register(subparsers) -> None:
    p = subparsers.add_parser("analyze", help="offline analysis of recorded episodes (native, RealSense, ROS bags, "
                              "LeRobot): tracking, per-frame grasps, flagged frames, Parquet + HTML reports")
    p.add_argument("episodes", nargs="+", type=Path, metavar="EPISODE_OR_DIR",
                   help="episode folders, RealSense or ROS .bag/.db3/.mcap files, data sets, or folders holding them")
    p.add_argument("--out", type=Path, required=True, help="output folder (one sub-folder per episode)")
    p.add_argument("--workers", type=_positive_int, default=1, help="episodes analysed at once (default 1)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local processes (default) or a Ray cluster (pip install 'graspseg[ray]')")
    p.add_argument("--ray-address", help="address of a running Ray cluster (default: start a local one)")
    p.add_argument("--resume", action="store_true", help="skip episodes already analysed with the same inputs")
    p.add_argument("--rrd", action="store_true", help="also write <episode>/episode.rrd: every frame with its "
                   "tracked mask, flags and grasps for the rerun viewer (pip install 'graspseg[viz]')")
    g = p.add_argument_group("target and tracking")
    g.add_argument("--point", action="append", default=[], metavar="U,V[,1|0]",
                   help="click on the target on the prompted frame (default: the prompt recorded with the episode)")
    g.add_argument("--box", metavar="X0,Y0,X1,Y1", help="box around the target on the prompted frame")
    g.add_argument("--prompt-frame", type=int, metavar="K", help="frame the prompt applies to (default: the first "
                   "frame with a recorded prompt, else 0)")
    g.add_argument("--tracker", default="rgbd", help="tracker: rgbd (default) or sam2 (with --tracker-model)")
    g.add_argument("--tracker-model", help="video checkpoint folder for --tracker sam2")
    g.add_argument("--every", type=_positive_int, default=1, metavar="N", help="run the pipeline on every N-th frame")
    g.add_argument("--min-track-score", type=float, default=0.05, help="tracked masks scoring lower count as lost")
    g.add_argument("--jump-factor", type=float, default=2.0,
                   help="flag frames whose pose/width jumps beyond this many boundary-error bounds (default 2)")
    g.add_argument("--overlays", type=int, default=8, help="overlay pictures of flagged frames in each report")
    g.add_argument("--config", type=Path, help="pipeline YAML; --section.field=value flags override it")
    g = p.add_argument_group("recordings (bags and data sets)")
    g.add_argument("--color-topic", help="colour Image/CompressedImage topic (default: picked from the names)")
    g.add_argument("--depth-topic", help="depth topic registered to colour (default: the one with 'depth' in its name)")
    g.add_argument("--info-topic", help="colour CameraInfo topic (default: beside the colour topic)")
    g.add_argument("--base-frame", default="base", help="tf frame of the robot base (default base)")
    g.add_argument("--tcp-frame", default="tcp", help="tf frame of the TCP (default tcp)")
    g.add_argument("--sync-tolerance-ms", type=float, default=20.0,
                   help="largest colour/depth/pose stamp difference paired (default 20 ms)")
    g.add_argument("--depth-scale", type=float, help="metres per 16-bit depth unit (default 0.001)")
    g.add_argument("--intrinsics", help="intrinsics JSON for data sets without them")
    g.add_argument("--color-key", help="colour image feature of a LeRobot-style data set")
    g.add_argument("--depth-key", help="depth image feature of a LeRobot-style data set")
    p.set_defaults(func=run_analyze)


def config_from_args(args: argparse.Namespace):
    """The :class:`~graspseg.analysis.AnalysisConfig` the flags describe."""
    from ..analysis import AnalysisConfig
    from ..capture.sources import SourceOptions
    from ..core.errors import InputError
    from ..pipeline import PipelineConfig
    from .common import _floats

    prompt = None
    if args.point or args.box:
        pts, labels = [], []
        for text in args.point:
            vals = _floats(text, (2, 3), "--point")
            pts.append(vals[:2])
            labels.append(int(vals[2]) if len(vals) == 3 else 1)
        prompt = {"points_uv": pts, "point_labels": labels}
        if args.box:
            prompt["box_xyxy"] = _floats(args.box, (4,), "--box")
    pcfg = PipelineConfig.from_yaml(args.config) if args.config else PipelineConfig()
    if getattr(args, "overrides", None):
        pcfg = pcfg.with_overrides(args.overrides)
    tracker_options = {}
    if args.tracker == "sam2":
        if not args.tracker_model:
            raise InputError("--tracker sam2 needs --tracker-model DIR (a SAM 2 video checkpoint folder)")
        tracker_options["model"] = args.tracker_model
    elif args.tracker_model:
        raise InputError("--tracker-model is for --tracker sam2")
    source = SourceOptions(color_topic=args.color_topic, depth_topic=args.depth_topic, info_topic=args.info_topic,
                           base_frame=args.base_frame, tcp_frame=args.tcp_frame,
                           sync_tolerance_s=args.sync_tolerance_ms / 1e3, depth_scale=args.depth_scale,
                           intrinsics=args.intrinsics, color_key=args.color_key, depth_key=args.depth_key)
    return AnalysisConfig(tracker=args.tracker, tracker_options=tracker_options, every=args.every, prompt=prompt,
                          prompt_frame=args.prompt_frame, min_track_score=args.min_track_score,
                          jump_factor=args.jump_factor, overlays=args.overlays,
                          pipeline_config=pcfg.to_dict() if (args.config or getattr(args, "overrides", None)) else {},
                          source=source, rrd=bool(getattr(args, "rrd", False)))


class _ProgressLine:
    """``episodes d/n, frames f/F`` on stderr (rewritten in place on a terminal, a line per episode otherwise)."""

    def __init__(self, episodes: int) -> None:
        self.episodes, self.done = episodes, 0
        self.frames: dict[str, tuple[int, int]] = {}
        self.tty = sys.stderr.isatty()

    def __call__(self, kind: str, payload: dict) -> None:
        if kind == "frames":
            self.frames[payload["episode"]] = (payload["done"], payload["total"])
            if self.tty:
                self._print(end="\r")
            return
        self.done += 1
        name = payload["episode"]["name"]
        status = payload["status"] if payload["status"] == "ok" else f"error: {payload.get('error', '')[:240]}"
        if self.tty:
            print(" " * 100, end="\r", file=sys.stderr)
        print(f"[{self.done}/{self.episodes}] {name}: {status}", file=sys.stderr, flush=True)

    def _print(self, end: str) -> None:
        f = sum(d for d, _ in self.frames.values())
        t = sum(n for _, n in self.frames.values())
        print(f"episodes {self.done}/{self.episodes}, frames {f}/{t} of the episodes started", end=end,
              file=sys.stderr, flush=True)


def run_analyze(args: argparse.Namespace) -> int:
    from ..analysis import run_analysis
    from ..capture.sources import list_episodes

    cfg = config_from_args(args)
    refs = list_episodes(args.episodes)
    quiet = getattr(args, "quiet", False)
    if not quiet:
        print(f"analysing {len(refs)} episode(s) with {args.workers} {args.executor} worker(s) into {args.out}",
              file=sys.stderr)
    run = run_analysis(refs, args.out, cfg, workers=args.workers, executor=args.executor,
                       ray_address=args.ray_address, resume=args.resume,
                       progress=None if quiet else _ProgressLine(len(refs)))
    report = {"command": "analyze", "out": str(args.out), **{k: v for k, v in run.items() if k != "config"}}
    print(json.dumps(report, indent=2))
    return EXIT_SOME_FAILED if run["errors"] else 0
