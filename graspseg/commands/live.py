"""``graspseg live``: perceive continuously from a camera (or a recording, or a synthetic camera), print rate and
latency, optionally record the session and show it in rerun."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..core.errors import ConfigError, PromptError

#: Override prefixes that configure the camera and the loop rather than the pipeline.
CAMERA_PREFIX, LOOP_PREFIX = "camera.", "loop."


def add_source_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("source (--camera.<field>=value sets any RealSenseConfig field)")
    g.add_argument("--source", default="realsense",
                   help="'realsense' (a connected camera), 'synthetic' (a moving object on a software camera: no "
                        "hardware), or a RealSense recording FILE.db3 / FILE.bag (default realsense)")
    g.add_argument("--serial", help="camera serial number (default: the only camera connected)")
    g.add_argument("--size", default="640x480", metavar="WxH", help="colour stream size (default 640x480)")
    g.add_argument("--depth-size", metavar="WxH", help="depth stream size (default: the colour size)")
    g.add_argument("--fps", type=int, default=30, help="stream rate (default 30)")
    g.add_argument("--preset", help="D4xx visual preset (high_accuracy, high_density, default...)")


def _size(text: str, flag: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"{flag} {text!r} must look like 640x480 (width x height in pixels)") from None
    if w <= 0 or h <= 0:
        raise ConfigError(f"{flag} {text!r}: width and height must be positive pixels")
    return w, h


def split_overrides(overrides: dict) -> tuple[dict, dict, dict]:
    """(camera, loop, pipeline) overrides from the ``--section.field=value`` flags."""
    cam = {k[len(CAMERA_PREFIX):]: v for k, v in overrides.items() if k.startswith(CAMERA_PREFIX)}
    loop = {k[len(LOOP_PREFIX):]: v for k, v in overrides.items() if k.startswith(LOOP_PREFIX)}
    rest = {k: v for k, v in overrides.items() if not k.startswith((CAMERA_PREFIX, LOOP_PREFIX))}
    return cam, loop, rest


def camera_config(args: argparse.Namespace, overrides: dict):
    from ..capture.realsense import RealSenseConfig

    w, h = _size(args.size, "--size")
    dw, dh = _size(args.depth_size, "--depth-size") if args.depth_size else (w, h)
    cfg = RealSenseConfig(serial=args.serial, color_width=w, color_height=h, color_fps=args.fps, depth_width=dw,
                          depth_height=dh, depth_fps=args.fps, visual_preset=args.preset)
    return cfg if not overrides else RealSenseConfig.from_dict({**_plain(cfg), **_nest(overrides)})


def _plain(cfg) -> dict:
    from ..core.config import to_dict

    return to_dict(cfg)


def _nest(flat: dict) -> dict:
    out: dict = {}
    for k, v in flat.items():
        node = out
        *head, last = k.split(".")
        for p in head:
            node = node.setdefault(p, {})
        node[last] = v
    return out


@dataclass
class OpenedSource:
    source: object
    default_prompt: object = None
    camera: object = None  # the synthetic camera, stopped by close()
    kind: str = "realsense"

    def close(self) -> None:
        if self.camera is not None:
            self.camera.stop()


def open_source(args: argparse.Namespace, camera_overrides: dict, *, record_db3: Path | None = None,
                pose=None) -> OpenedSource:
    """The frame source named by ``--source`` (not yet opened)."""
    from ..capture.realsense import RealSenseRecording, RealSenseSource

    cfg = camera_config(args, camera_overrides)
    if args.source == "realsense":
        return OpenedSource(RealSenseSource(cfg, record_db3=record_db3, pose=pose))
    if args.source == "synthetic":
        from ..capture.realsense_synthetic import SoftwareCamera
        from ..segment import Prompt
        from ..sim.moving import moving_object_sequence

        if not args.quiet:
            print("graspseg: rendering the synthetic moving-object sequence...", file=sys.stderr)
        seq = moving_object_sequence(width=cfg.color_width, height=cfg.color_height, fps=float(cfg.color_fps))
        cam = SoftwareCamera(seq.intrinsics, depth_scale=1e-4, fps=cfg.color_fps,
                             depth_to_color_translation_m=(0.0, 0.0, 0.0))
        cfg = replace(cfg, color_width=seq.intrinsics.width, color_height=seq.intrinsics.height,
                      depth_width=seq.intrinsics.width, depth_height=seq.intrinsics.height, serial=None)
        src = RealSenseSource(cfg, device=cam.device, record_db3=record_db3, pose=pose)
        cam.play(seq.frame_at)
        return OpenedSource(src, Prompt.from_point(*seq.prompt_point(0)), cam, "synthetic")
    path = Path(args.source)
    if path.suffix in (".db3", ".bag"):
        if record_db3 is not None:
            raise ConfigError("--db3 records a live camera; a recording is already a recording")
        return OpenedSource(RealSenseRecording(path, pose=pose), kind="recording")
    raise ConfigError(f"--source {args.source!r}: expected 'realsense', 'synthetic' or a RealSense recording "
                      "FILE.db3 / FILE.bag")


def parse_prompts(items: list[str]):
    """A Prompt from ``--prompt point:U,V`` / ``box:X0,Y0,X1,Y1`` / ``text:PHRASE`` (repeatable), or None."""
    from ..segment import Prompt

    if not items:
        return None
    points, labels, box, text = [], [], None, None
    for item in items:
        kind, sep, value = item.partition(":")
        if not sep:
            raise PromptError(f"--prompt {item!r} must look like point:U,V, box:X0,Y0,X1,Y1 or text:PHRASE")
        if kind in ("point", "neg"):
            try:
                u, v = (float(x) for x in value.split(","))
            except ValueError:
                raise PromptError(f"--prompt {item!r}: a point is two numbers U,V in pixels (u=column, v=row)") from None
            points.append([u, v])
            labels.append(1 if kind == "point" else 0)
        elif kind == "box":
            try:
                box = [float(x) for x in value.split(",")]
            except ValueError:
                box = []
            if len(box) != 4:
                raise PromptError(f"--prompt {item!r}: a box is four numbers X0,Y0,X1,Y1 in pixels")
        elif kind == "text":
            text = value
        else:
            raise PromptError(f"--prompt {item!r}: unknown kind {kind!r}; use point:, neg:, box: or text:")
    if points:
        return Prompt(points_uv=points, point_labels=labels, box_xyxy=box, text=text)
    return Prompt(box_xyxy=box, text=text)


def register(subparsers) -> None:
    from .segment import add_model_args

    p = subparsers.add_parser("live", help="perceive continuously from a RealSense camera (or a recording), "
                                           "print rate and latency, record and view the session")
    add_source_args(p)
    p.add_argument("--prompt", action="append", default=[], metavar="KIND:VALUE",
                   help="point:U,V (repeatable; neg:U,V for a negative click), box:X0,Y0,X1,Y1 or text:PHRASE "
                        "(text-capable backends)")
    p.add_argument("--record", type=Path, metavar="DIR", help="record the session to this episode folder")
    p.add_argument("--db3", type=Path, help="also record the SDK's own .db3 of the raw streams")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C or the "
                                                   "recording ends)")
    p.add_argument("--viewer", help="'rerun' (live viewer) or FILE.rrd (save a rerun recording)")
    p.add_argument("--config", type=Path, help="pipeline YAML; --section.field=value flags override it "
                                               "(--loop.* the loop, --camera.* the camera)")
    p.add_argument("--backend", help="segmenter backend (default rgbd); a slow one is run on keyframes")
    p.add_argument("--gripper", help="shipped gripper name (franka_hand, robotiq_2f85, generic) or a gripper YAML path")
    p.add_argument("--rig", type=Path, help="camera rig YAML (tcp_from_camera) from graspseg-calibrate")
    add_model_args(p)
    p.add_argument("--out", type=Path, help="write the last result (result.json, overlay.png) here at the end")
    p.set_defaults(func=run)


def _status_line(st: dict) -> str:
    lat = st["latency_ms"]
    return (f"{st['results_per_s']:.1f} results/s, latency p50 {lat['p50']} ms p95 {lat['p95']} ms, mode {st['mode']}, "
            f"frames {st['frames']} (dropped {st['dropped_before_tracking']}), keyframes {st['keyframes']}, "
            f"lost {st['lost']}")


def run(args: argparse.Namespace) -> int:
    from ..capture.session import SessionRecorder
    from ..loop import LoopConfig, PerceptionLoop
    from .perceive import build_pipeline, write_perception_outputs

    cam_o, loop_o, rest = split_overrides(getattr(args, "overrides", {}) or {})
    if args.duration is not None and args.duration <= 0:
        raise ConfigError(f"--duration must be > 0 seconds, got {args.duration}")
    ns = argparse.Namespace(**{**vars(args), "overrides": rest, "granularity": None, "boundary_error_px": None})
    pipeline = build_pipeline(ns)
    loop_cfg = LoopConfig.from_dict(_nest(loop_o)) if loop_o else LoopConfig()
    prompt = parse_prompts(args.prompt)
    opened = open_source(args, cam_o, record_db3=args.db3)
    viewer = None
    try:
        prompt = prompt or opened.default_prompt
        if prompt is None:
            raise PromptError("no prompt: give --prompt point:U,V (pixels of the object on the colour image), "
                              "box:X0,Y0,X1,Y1 or text:PHRASE")
        if args.viewer:
            from ..viz.rerun_view import RerunViewer

            viewer = RerunViewer(args.viewer)
        recorder = SessionRecorder(args.record, rig=pipeline.rig, meta={"source": opened.kind}) if args.record else None

        def on_lost(live):
            if not args.quiet:
                print(f"graspseg live: object lost on frame {live.frame.frame_id} ({live.reason}); restart with a "
                      "new --prompt", file=sys.stderr)

        loop = PerceptionLoop(opened.source, prompt, pipeline=pipeline, config=loop_cfg, recorder=recorder,
                              on_lost=on_lost)
        last_ok, last_seq = None, -1
        t0 = time.monotonic()
        next_print = t0 + 1.0
        try:
            with loop:
                while loop.running and (args.duration is None or time.monotonic() - t0 < args.duration):
                    r = loop.latest()
                    if r is not None and r.sequence != last_seq:
                        last_seq = r.sequence
                        if r.ok:
                            last_ok = r
                        if viewer is not None:
                            viewer.log(r)
                    if not args.quiet and time.monotonic() >= next_print:
                        print("graspseg live: " + _status_line(loop.status()), file=sys.stderr)
                        next_print += 1.0
                    time.sleep(0.005)
        except KeyboardInterrupt:
            pass
        status = loop.status()
        if loop.error is not None:
            raise loop.error
    finally:
        opened.close()
        if viewer is not None:
            viewer.close()
    summary = {"status": status, "prompt": prompt.describe(), "source": args.source,
               "viewer": None if viewer is None else {"target": viewer.target, "results_logged": viewer.logged},
               "last_result": None if last_ok is None else last_ok.to_dict(compact=True)}
    if args.out is not None and last_ok is not None:
        write_perception_outputs(last_ok.result, args.out, compact=True)
        summary["out"] = str(args.out)
    print(json.dumps(summary, indent=2, default=str))
    if not args.quiet:
        print(f"graspseg live: {_status_line(status)}; stopped: {status['stopped_reason']}", file=sys.stderr)
    return 0
