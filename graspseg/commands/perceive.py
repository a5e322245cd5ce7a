"""``graspseg perceive``, ``graspseg cloud`` and ``graspseg demo``: the main job on one frame."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..capture.images import write_png
from ..core.camera import check_rig_matches_frame
from ..core.errors import ConfigError, InputError
from ..core.io import atomic_write_json, output_set, read_json
from ..segment import POLICIES
from .common import add_frame_args, add_prompt_args, build_prompt, load_frame
from .segment import add_model_args, backend_options, labeller_overrides

SAMPLE_FRAME = Path(__file__).resolve().parents[1] / "data" / "sample_frame"
#: The bundled frame's prompt: a click on the red mug's body.
SAMPLE_POINT = "352,280"
DEMO_OUT = Path("graspseg-demo")
#: ``graspseg perceive`` exit code when it ran but accepted no grasp (reasons on stderr; outputs written).
EXIT_NO_GRASP = 3


def _add_pipeline_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="pipeline YAML (see configs/default.yaml); --section.field=value flags override it")
    p.add_argument("--backend", help="segmenter backend (default from the config: rgbd)")
    p.add_argument("--granularity", choices=POLICIES, help="candidate to use (default from the config: whole)")
    p.add_argument("--rig", type=Path, help="camera rig YAML (intrinsics, tcp_from_camera, depth scale) from graspseg-calibrate")
    p.add_argument("--tcp-pose", type=Path, help="JSON with the robot's base_from_tcp at capture: {'matrix': 4x4} or {'xyz_m', 'quat_xyzw'}")
    p.add_argument("--gripper", help="shipped gripper name (franka_hand, robotiq_2f85, generic) or a gripper YAML path")
    p.add_argument("--boundary-error-px", type=float, help="expected mask boundary error in px (default: the segmenter's own estimate)")
    add_model_args(p)


def register(subparsers) -> None:
    p = subparsers.add_parser("perceive", help="segment, build the cloud, estimate shape and plan grasps with margins")
    add_frame_args(p)
    add_prompt_args(p)
    _add_pipeline_args(p)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--compact", action="store_true",
                   help="result.json for planners: the best accepted grasps only (--top-k), no per-candidate pixel data")
    p.add_argument("--top-k", type=_positive_int, help="grasps listed in result.json (default: 100, or 5 with --compact)")
    p.set_defaults(func=run_perceive)

    p = subparsers.add_parser("cloud", help="the prompted object's point cloud (PLY) and boundary-band statistics")
    add_frame_args(p)
    add_prompt_args(p)
    _add_pipeline_args(p)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=run_cloud)

    p = subparsers.add_parser("demo", help="run perceive on the bundled sample frame and write all outputs")
    p.add_argument("--out", type=Path, default=DEMO_OUT, help=f"output folder (default ./{DEMO_OUT})")
    p.set_defaults(func=run_demo)


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {n}")
    return n


def build_pipeline(args: argparse.Namespace, frame=None):
    """A Pipeline from ``--config``, the flags and ``--section.field=value`` overrides."""
    from ..core.camera import CameraRig
    from ..pipeline import Pipeline, PipelineConfig

    cfg = PipelineConfig.from_yaml(args.config) if getattr(args, "config", None) else PipelineConfig()
    overrides = dict(getattr(args, "overrides", {}) or {})
    for flag, key in (("backend", "segment.backend"), ("granularity", "segment.granularity"),
                      ("gripper", "gripper"), ("boundary_error_px", "boundary_error_px")):
        if getattr(args, flag, None) is not None:
            overrides[key] = getattr(args, flag)
    model_options = backend_options(args, overrides.get("segment.backend", cfg.segment.backend))
    if model_options:
        overrides["segment.options"] = {**cfg.segment.options, **model_options}
    overrides |= labeller_overrides(args, cfg)
    if overrides:
        cfg = cfg.with_overrides(overrides)
    rig = CameraRig.load_yaml(args.rig) if getattr(args, "rig", None) else None
    if rig is not None and frame is not None and rig.intrinsics.size != (frame.width, frame.height):
        raise ConfigError(
            f"rig {args.rig} is for {rig.intrinsics.width}x{rig.intrinsics.height} images but the frame is "
            f"{frame.width}x{frame.height}; calibrate at the streaming resolution"
        )
    return Pipeline(cfg, rig=rig)


def _load_with_pose(args: argparse.Namespace):
    from ..core.transform import BASE, TCP, Transform

    frame = load_frame(args)
    if getattr(args, "tcp_pose", None):
        d = read_json(args.tcp_pose, "--tcp-pose file", InputError)
        d = d.get("base_from_tcp", d) if isinstance(d, dict) else d
        if isinstance(d, list):
            d = {"matrix": d}
        frame = frame.with_pose(Transform.from_dict(d, to_frame=BASE, from_frame=TCP))
    return frame


def write_perception_outputs(result, out: Path, *, compact: bool = False, top_k: int | None = None) -> dict:
    """``result.json``, ``mask.png``, ``overlay.png`` (mask, band, grasps) and ``cloud.png`` (3D view).

    Written as one set (:func:`~graspseg.core.io.output_set`): ``out`` holds the old or the new complete set.
    """
    from ..viz.cloud3d import render_cloud_with_grasps
    from ..viz.overlay import (
        band_overlay,
        blend_mask,
        draw_contour,
        draw_grasps,
        draw_label,
        draw_prompt,
        wrap_text,
    )

    frame = result.frame
    img = blend_mask((frame.color * 0.8).astype("uint8"), result.mask, (60, 140, 255), 0.35)
    img = band_overlay(img, result.cloud.band)
    draw_contour(img, result.mask, (60, 140, 255), 1)
    img = draw_grasps(img, result.grasps, frame.intrinsics, result.gripper)
    draw_prompt(img, result.prompt)
    n_acc = int(result.grasps.accepted.sum()) if len(result.grasps) else 0
    draw_label(img, f"{n_acc}/{result.grasps.n_candidates} candidates accepted at {result.boundary_error_px:.1f} px "
               f"boundary error ({len(result.grasps)} best listed)", (8, 20))
    draw_label(img, "band: blue = background leak, yellow = unknown", (8, 38), (200, 200, 200), 0.45)
    if n_acc == 0 and getattr(result.grasps, "suggestion", ""):
        for j, line in enumerate(wrap_text(result.grasps.suggestion, img.shape[1] - 16)[:4]):
            draw_label(img, line, (8, 56 + 16 * j), (255, 120, 120), 0.45)
    cloud_img = render_cloud_with_grasps(result)
    doc = result.to_dict(compact=compact, top_k=top_k)
    with output_set(out) as tmp:
        write_png(tmp / "mask.png", result.mask)
        write_png(tmp / "overlay.png", img)
        write_png(tmp / "cloud.png", cloud_img)
        atomic_write_json(tmp / "result.json", doc, inline_numbers=True)
    return doc


def _summary(doc: dict, out: Path) -> dict:
    g = doc["grasps"]
    accepted = [x for x in g.get("grasps", []) if x.get("accepted")]
    return {
        "out": str(out),
        "accepted_grasps": len(accepted),
        "candidates": g["n_candidates"],  # every candidate evaluated, as in result.json
        "listed": len(g.get("grasps", [])),  # the best of them, kept in result.json's list
        "best": accepted[0] if accepted else None,
        "rejected_counts": g.get("rejected_counts"),
        "suggestion": g.get("suggestion") or None,
        "timings_ms": doc["timings_ms"],
    }


def run_perceive(args: argparse.Namespace) -> int:
    """Exit 0 with at least one accepted grasp, :data:`EXIT_NO_GRASP` (3) when none was accepted."""
    frame = _load_with_pose(args)
    prompt = build_prompt(args, (frame.height, frame.width))
    pipeline = build_pipeline(args, frame)
    result = pipeline.perceive(frame, prompt)
    doc = write_perception_outputs(result, args.out, compact=getattr(args, "compact", False),
                                   top_k=getattr(args, "top_k", None))
    summary = _summary(doc, args.out)
    print(json.dumps(summary, indent=2))
    if summary["accepted_grasps"] == 0:
        counts = ", ".join(f"{k} {v}" for k, v in sorted((summary["rejected_counts"] or {}).items(),
                                                          key=lambda kv: -kv[1])) or "no candidates"
        print(f"graspseg perceive: no grasp accepted: {summary['suggestion'] or 'see result.json'} "
              f"(rejected: {counts}); outputs in {args.out}", file=sys.stderr)
        return EXIT_NO_GRASP
    return 0


def run_cloud(args: argparse.Namespace) -> int:
    from ..cloud import build_object_cloud, write_ply

    frame = _load_with_pose(args)
    prompt = build_prompt(args, (frame.height, frame.width))
    pipeline = build_pipeline(args, frame)
    check_rig_matches_frame(pipeline.rig, frame)
    pipeline.set_frame(frame)
    mask_set = pipeline.segmenter.predict(prompt)
    mask = mask_set.masks[mask_set.select(pipeline.config.segment.granularity)]
    tcp_from_camera = pipeline.rig.tcp_from_camera if pipeline.rig else None
    cloud = build_object_cloud(frame, mask, pipeline.config.cloud, tcp_from_camera=tcp_from_camera)
    plane = cloud.plane
    doc = {
        "schema_version": 1,
        "units": {"length": "m"},
        "frame": "camera_color_optical",
        "num_points": len(cloud),
        "band": cloud.stats,
        "support_plane": None if plane is None else plane.to_dict(),
        "files": ["object_camera.ply"] + (["object_base.ply"] if cloud.points_in_base is not None else []),
    }
    with output_set(args.out) as tmp:
        write_ply(tmp / "object_camera.ply", cloud.points_in_camera, cloud.colors)
        if cloud.points_in_base is not None:
            write_ply(tmp / "object_base.ply", cloud.points_in_base, cloud.colors)
        write_png(tmp / "mask.png", mask)
        atomic_write_json(tmp / "cloud.json", doc)
    print(json.dumps(doc, indent=2))
    return 0


def run_demo(args: argparse.Namespace) -> int:
    ns = argparse.Namespace(frame=SAMPLE_FRAME, color=None, depth=None, depth_scale=None, intrinsics=None,
                            point=[SAMPLE_POINT], box=None, mask_prompt=None, text=None, config=None, backend=None,
                            granularity=None, rig=None, tcp_pose=None, gripper=None, boundary_error_px=None,
                            out=args.out, overrides={}, compact=False, top_k=None, labeller=None)
    print(f"graspseg demo: perceive on the bundled frame {SAMPLE_FRAME.name} (a mug on a table), click at {SAMPLE_POINT}",
          file=sys.stderr)
    rc = run_perceive(ns)
    out = args.out.resolve()
    print(f"graspseg demo: wrote {out}/overlay.png (mask, boundary band, grasps labelled by margin), {out}/cloud.png "
          f"(3D view), {out}/result.json", file=sys.stderr)
    return rc
