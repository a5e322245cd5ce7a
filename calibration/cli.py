"""``graspseg-calibrate``: boards, intrinsics, eye-in-hand calibration, checks and the benchmark.

Sub-commands::

    graspseg-calibrate board --out board.pdf                 # PDF (exact size) + PNG (at --dpi) + board.json
    graspseg-calibrate intrinsics --images DIR --out intr.json [--check factory.yaml]
    graspseg-calibrate hand-eye --images DIR --poses poses.jsonl --rig-out rig.yaml --intrinsics cam.yaml
    graspseg-calibrate check --rig rig.yaml --images DIR --poses poses.jsonl [--plots DIR]
    graspseg-calibrate export --rig rig.yaml [--calib out.calib]   # easy_handeye2 + static_transform_publisher
    graspseg-calibrate import --calib in.calib --intrinsics cam.yaml --rig-out rig.yaml
    graspseg-calibrate bench [--trials 30]

Every command prints one JSON object on stdout (its result: the rig written, the transform, the quality
figures, the verdict); progress and the human-readable summary go to stderr. Errors are printed as one line
on stderr with exit code 2; ``check`` exits 1 when its verdict is SUSPECT.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from graspseg.core.errors import CalibrationError, GraspsegError


class UsageError(GraspsegError, ValueError):
    """A command-line flag has a value the command cannot use (reported like any other error, exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of printing the usage and exiting."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _number(kind, *, low=None, high=None, low_open=False, unit=""):
    """An argparse ``type`` for a finite number within ``[low, high]`` (``low_open``: ``> low``)."""

    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if kind is float and not np.isfinite(v):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        too_low = low is not None and (v <= low if low_open else v < low)
        if too_low or (high is not None and v > high):
            lo = "" if low is None else (f"> {low:g}{unit}" if low_open else f">= {low:g}{unit}")
            hi = "" if high is None else f"<= {high:g}{unit}"
            raise argparse.ArgumentTypeError(f"{text}{unit} is out of range; expected {' and '.join(x for x in (lo, hi) if x)}")
        return v

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


_POSITIVE = _number(float, low=0.0, low_open=True)
_DEPTH_SCALE = _number(float, low=0.0, low_open=True, high=1.0, unit=" m per unit")


def _board_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("board")
    g.add_argument("--board", type=Path, help="board JSON written by 'graspseg-calibrate board' (overrides the flags)")
    g.add_argument("--squares-x", type=_number(int, low=3, high=100), default=7)
    g.add_argument("--squares-y", type=_number(int, low=3, high=100), default=5)
    g.add_argument("--square-mm", type=_number(float, low=2.0, high=500.0, unit=" mm"), default=40.0,
                   help="measured side of one square on the print, mm")
    g.add_argument("--marker-mm", type=_number(float, low=0.0, low_open=True, high=500.0, unit=" mm"), default=30.0)
    g.add_argument("--dictionary", default="DICT_5X5_100")


def _gate_args(p: argparse.ArgumentParser, *, rms: float, spread: float | None) -> None:
    g = p.add_argument_group("quality gate")
    g.add_argument("--max-rms-px", type=_POSITIVE, default=rms,
                   help=f"largest acceptable reprojection RMS, px (default {rms})")
    if spread is not None:
        g.add_argument("--max-spread-mm", type=_POSITIVE, default=spread,
                       help=f"largest acceptable spread of the board position in base, mm (default {spread})")


def _board(args):
    from .board import CharucoBoardSpec

    if getattr(args, "board", None):
        from graspseg.core.validate import read_data_file

        d = read_data_file(args.board, "board file", kind="json", error=CalibrationError)
        if isinstance(d, dict):
            d = d.get("board", d)
        return CharucoBoardSpec.from_dict(d)
    return CharucoBoardSpec(args.squares_x, args.squares_y, args.square_mm / 1000.0, args.marker_mm / 1000.0, args.dictionary)


def _intrinsics(args, rig=None):
    from .intrinsics import intrinsics_from_realsense, load_intrinsics

    if getattr(args, "intrinsics", None):
        return load_intrinsics(args.intrinsics)
    if rig is not None:
        return rig.intrinsics
    if getattr(args, "realsense", False):
        return intrinsics_from_realsense()
    raise CalibrationError(
        "no intrinsics given: pass --intrinsics (JSON, ROS CameraInfo YAML or rig YAML), --rig rig.yaml or --realsense"
    )


def _detect_folder(images_dir, board, quiet=False):
    from graspseg.capture.images import read_color

    from .board import detect_board
    from .formats import list_images

    files = list_images(images_dir)
    dets, shapes = [], []
    for k, f in enumerate(files):
        img = read_color(f)
        shapes.append((img.shape[1], img.shape[0]))
        dets.append(detect_board(img, board))
        if not quiet:
            print(f"[{k + 1}/{len(files)}] {f.name}: {len(dets[-1])} corners", file=sys.stderr)
    return files, dets, shapes


def _check_sizes(shapes, intr, files):
    for (w, h), f in zip(shapes, files, strict=True):
        if (w, h) != intr.size:
            raise CalibrationError(
                f"image {f.name} is {w}x{h} but the intrinsics are for {intr.width}x{intr.height}; use intrinsics of "
                "the same resolution as the images"
            )


def _load_depths(files, depth_scale):
    from graspseg.capture.images import read_depth_raw

    from .formats import depth_path_for

    out = []
    for f in files:
        p = depth_path_for(f)
        if p is None:
            out.append(None)
            continue
        raw = read_depth_raw(p)
        out.append(raw.astype(np.float32) * depth_scale if raw.dtype == np.uint16 else raw.astype(np.float32))
    return out


def _paired(args, board):
    from .formats import pair_images_and_poses, read_poses_jsonl

    poses, pose_images = read_poses_jsonl(args.poses)
    files, dets, shapes = _detect_folder(args.images, board, args.quiet)
    by_file = {f: (d, s) for f, d, s in zip(files, dets, shapes, strict=True)}
    files, poses = pair_images_and_poses(files, poses, pose_images)
    return files, poses, [by_file[f][0] for f in files], [by_file[f][1] for f in files]


# --- commands --------------------------------------------------------------------------------------
def cmd_board(args) -> int:
    from graspseg.core.io import atomic_write_json

    board = _board(args)
    out = Path(args.out)
    if out.is_dir():
        raise CalibrationError(f"--out {out} is a directory; give a file name ending in .pdf or .png")
    written = []
    if out.suffix.lower() == ".pdf":
        written.append(board.write_pdf(out, dpi=max(args.dpi, 600), margin_m=args.margin_mm / 1000))
        written.append(board.write_png(out.with_suffix(".png"), dpi=args.dpi, margin_m=args.margin_mm / 1000))
    elif out.suffix.lower() == ".png":
        written.append(board.write_png(out, dpi=args.dpi, margin_m=args.margin_mm / 1000))
    else:
        raise CalibrationError(f"--out must end in .pdf or .png, got {out.name}")
    spec = out.with_suffix(".json")
    atomic_write_json(spec, {"schema_version": 1, "units": {"length": "m"}, "board": board.to_dict()})
    written.append(spec)
    w, h = board.size_m
    print(json.dumps({
        "written": [str(p) for p in written],
        "board": board.to_dict(),
        "printed_size_mm": [round((w + 2 * args.margin_mm / 1000) * 1000, 2), round((h + 2 * args.margin_mm / 1000) * 1000, 2)],
        "note": "print at 100% (no 'fit to page'), then measure one square and pass it as --square-mm",
    }, indent=2))
    return 0


def cmd_intrinsics(args) -> int:
    from graspseg.core.io import atomic_write_json

    from .intrinsics import calibrate_intrinsics, check_intrinsics, load_intrinsics

    board = _board(args)
    files, dets, shapes = _detect_folder(args.images, board, args.quiet)
    names = [f.name for f in files]
    if len(set(shapes)) != 1:
        raise CalibrationError(f"images have different sizes {sorted(set(shapes))}; calibrate one resolution at a time")
    if args.check:
        intr = load_intrinsics(args.check)
        _check_sizes(shapes, intr, files)
        res = check_intrinsics(intr, dets, board, names=names, max_rms_px=args.max_rms_px)
        d = res.to_dict()
        print(json.dumps(d, indent=2))
        if args.out:
            atomic_write_json(args.out, d)
        return 0 if res.ok else 1
    res = calibrate_intrinsics(dets, board, shapes[0], names=names, distortion=args.distortion)
    d = res.to_dict()
    _gate_intrinsics(res, args.max_rms_px, args.max_focal_std)
    if args.out:
        atomic_write_json(args.out, {**d, **res.intrinsics.to_dict()})
    print(json.dumps(d, indent=2))
    return 0


def _worst(names, values, unit: str, k: int = 5) -> str:
    order = np.argsort(-np.asarray(values, float))[:k]
    return ", ".join(f"{names[i]} {float(values[i]):.2f} {unit}" for i in order)


def _gate_intrinsics(res, max_rms_px: float, max_focal_std: float = 0.01) -> None:
    """Refuse an intrinsics calibration above the RMS limit (naming the bad views) or with an unconstrained focal length."""
    std = np.asarray(res.std_fx_fy_cx_cy_px, float)
    intr = res.intrinsics
    rel = max(std[0] / intr.fx, std[1] / intr.fy) if std.size >= 2 and np.all(np.isfinite(std[:2])) else np.inf
    if rel > max_focal_std:
        raise CalibrationError(
            f"intrinsics calibration refused: the focal length is poorly constrained (std fx {std[0]:.2f} px, fy "
            f"{std[1]:.2f} px = {rel:.2%} > --max-focal-std {max_focal_std:g}); nothing written — add views with the board "
            "tilted 20-40 deg in different directions and at different distances"
        )
    per = np.asarray(res.per_view_rms_px, float)
    bad = [n for n, r in zip(res.names, per, strict=True) if r > max_rms_px]
    if res.rms_px > max_rms_px or bad:
        raise CalibrationError(
            f"intrinsics calibration refused: reprojection RMS {res.rms_px:.3f} px (limit --max-rms-px {max_rms_px:g}); "
            f"views above the limit: {bad or 'none'}; worst views: {_worst(res.names, per, 'px')}; nothing written — "
            "remove or retake those views (blur, wrong board flags --square-mm/--squares-x/--squares-y?) and run again"
        )


def _gate_hand_eye(res, max_rms_px: float, max_spread_mm: float, consensus=None) -> None:
    """Refuse a hand-eye result above the RMS / board-spread limits, naming outlier and worst views.

    ``consensus()`` (called only on refusal) returns :func:`calibration.handeye.consensus_outliers`.
    """
    s = res.summary()
    problems = []
    if s["rms_px"] > max_rms_px:
        problems.append(f"reprojection RMS through the chain {s['rms_px']:.3f} px > --max-rms-px {max_rms_px:g}")
    if s["board_spread_mm"] > max_spread_mm:
        problems.append(f"board position spread in base {s['board_spread_mm']:.2f} mm > --max-spread-mm {max_spread_mm:g}")
    if problems:
        found = consensus() if consensus is not None else None
        if found is not None and found[2] <= max_rms_px:
            bad, good, rms = found
            outliers = (f"{bad} disagree with the other {len(good)} views (which agree to {rms:.2f} px) — their "
                        "pose lines probably belong to other images: fix the pairing or remove them")
        else:
            outliers = str(res.outliers) if res.outliers else "none stand out (all views disagree)"
        raise CalibrationError(
            "hand-eye calibration refused, no rig written: " + "; ".join(problems)
            + f"; outlier views: {outliers}; worst views: "
            + _worst(res.names, res.residual_rms_px, "px")
            + " — check that every pose line belongs to its image (order or 'image' names), that --square-mm is the "
            "measured square size, and that poses are in metres; --drop-outliers drops single bad views"
        )


def cmd_hand_eye(args) -> int:
    from graspseg.core.camera import CameraRig
    from graspseg.core.io import atomic_write_json

    from .formats import load_rig, static_transform_publisher_line, write_easy_handeye2
    from .handeye import consensus_outliers, solve_eye_in_hand
    from .plots import write_hand_eye_plots

    board = _board(args)
    rig_in = load_rig(args.rig, need_hand_eye=False) if args.rig else None
    intr = _intrinsics(args, rig_in)
    files, poses, dets, shapes = _paired(args, board)
    _check_sizes(shapes, intr, files)
    noise = (None, None) if args.robot_exact else (args.robot_noise_deg, args.robot_noise_mm)
    res = solve_eye_in_hand(
        poses, dets, board, intr, names=[f.name for f in files], robot_noise_deg=noise[0], robot_noise_mm=noise[1],
        drop_outliers=args.drop_outliers, allow_degenerate=args.allow_degenerate,
    )
    report = res.to_dict()
    if args.report:
        atomic_write_json(args.report, report)  # written before the gate: the diagnosis of a refused calibration
    names = [f.name for f in files]
    _gate_hand_eye(res, args.max_rms_px, args.max_spread_mm, consensus=lambda: consensus_outliers(
        poses, dets, board, intr, names, inlier_px=max(2.5 * args.max_rms_px, 3.0)))
    if args.depth_scale is not None:
        depth_scale = args.depth_scale
    else:
        depth_scale = rig_in.depth_scale if rig_in is not None else 1e-3
    rig = CameraRig(
        intr, res.tcp_from_camera, depth_scale,
        rig_in.depth_range_m if rig_in is not None else CameraRig.depth_range_m,
        rig_in.name if rig_in is not None else "camera",
        {**(rig_in.extra if rig_in is not None else {}), "hand_eye": res.summary()},
        allow_implausible=args.allow_implausible or (rig_in is not None and rig_in.allow_implausible),
    )
    rig.save_yaml(args.rig_out)
    report["rig"] = str(args.rig_out)
    report["static_transform_publisher_quat_xyzw"] = static_transform_publisher_line(
        res.tcp_from_camera, parent_frame=args.parent_frame, child_frame=args.child_frame
    )
    if args.calib_out:
        write_easy_handeye2(args.calib_out, res.tcp_from_camera, robot_effector_frame=args.parent_frame,
                            tracking_base_frame=args.child_frame)
    if args.plots:
        report["plots"] = [str(p) for p in write_hand_eye_plots(res, args.plots)]
    if args.report:
        atomic_write_json(args.report, report)
    _print_hand_eye(res, report)
    return 0


def _print_hand_eye(res, report) -> None:
    """The summary lines on stderr and one JSON object on stdout (the rig, the transform, the quality)."""
    xyz, q = res.tcp_from_camera.as_xyz_quat_xyzw()
    s = res.summary()
    lines = [
        f"tcp_from_camera xyz_m = {np.round(xyz, 5).tolist()}  quat_xyzw = {np.round(q, 6).tolist()}",
        f"poses used {s['n_poses']}, reprojection RMS {s['rms_px']:.3f} px, board spread {s['board_spread_mm']:.2f} mm, "
        f"rotation span {s['rotation_span_deg']:.1f} deg (axes {s['axis_spans_deg']})",
    ]
    if res.skipped:
        lines.append("skipped: " + "; ".join(f"{n}: {r}" for n, r in res.skipped))
    if res.outliers:
        lines.append(f"outlier poses: {res.outliers} (re-run with --drop-outliers to drop them)")
    if res.dropped:
        lines.append(f"dropped poses: {res.dropped}")
    warnings = [w for w in res.warnings if w.startswith("WARNING")]
    lines.extend(warnings)
    if "static_transform_publisher_quat_xyzw" in report:
        lines.append(report["static_transform_publisher_quat_xyzw"])
    print("\n".join(lines), file=sys.stderr)
    _print_json({"rig": report.get("rig"), "tcp_from_camera": res.tcp_from_camera.to_dict(), "summary": s,
                 "warnings": warnings, "plots": report.get("plots", []),
                 "static_transform_publisher_quat_xyzw": report.get("static_transform_publisher_quat_xyzw")})


def _print_json(doc: dict) -> None:
    """Every command's result: one JSON object on stdout (human-readable lines go to stderr)."""
    print(json.dumps({"schema_version": 1, "units": {"length": "m", "residual": "px", "deviation": "mm"}, **doc},
                     indent=2))


def cmd_check(args) -> int:
    from graspseg.core.io import atomic_write_json

    from .board import board_pose
    from .depth_check import depth_check
    from .formats import load_rig
    from .handeye import evaluate_hand_eye
    from .plots import write_hand_eye_plots

    board = _board(args)
    rig = load_rig(args.rig, need_hand_eye=True)
    intr = rig.intrinsics
    files, poses, dets, shapes = _paired(args, board)
    _check_sizes(shapes, intr, files)
    res = evaluate_hand_eye(poses, dets, board, intr, rig.tcp_from_camera, names=[f.name for f in files],
                            min_views=args.min_views)
    report = {"hand_eye": res.to_dict()}
    depths = _load_depths(files, rig.depth_scale)
    if any(d is not None for d in depths):
        cam_board = []
        for d in dets:
            try:
                cam_board.append(board_pose(d, board, intr).camera_from_board)
            except CalibrationError:
                cam_board.append(None)
        try:
            report["depth_check"] = depth_check(depths, cam_board, board, intr, names=[f.name for f in files]).to_dict()
        except CalibrationError as e:
            report["depth_check"] = {"error": str(e)}
    plots_dir = Path(args.plots) if args.plots else Path(args.rig).with_name("calibration_check")
    report["plots"] = [str(p) for p in write_hand_eye_plots(res, plots_dir)]
    if args.report:
        atomic_write_json(args.report, report)
    s = res.summary()
    verdict_ok = s["rms_px"] <= args.max_rms_px and s["board_spread_mm"] <= args.max_spread_mm
    verdict = "OK" if verdict_ok else "SUSPECT"
    lines = [f"{verdict}: {s['n_poses']} poses, reprojection RMS through the rig {s['rms_px']:.3f} px "
             f"(limit {args.max_rms_px}), board spread in base {s['board_spread_mm']:.2f} mm (limit {args.max_spread_mm})"]
    per = sorted(zip(res.residual_rms_px, res.names, res.board_deviation_mm, strict=True), reverse=True)[:5]
    lines.append("worst poses: " + ", ".join(f"{n} {r:.2f} px / {d:.1f} mm" for r, n, d in per))
    if res.skipped:
        lines.append("skipped: " + "; ".join(f"{n}: {r}" for n, r in res.skipped))
    if "depth_check" in report:
        dc = report["depth_check"]
        if "error" in dc:
            lines.append(f"depth check: {dc['error']}")
        else:
            lines.append(
                f"depth check: scale error {dc['scale_error_percent']:+.2f} %, bias {dc['bias_m'] * 1000:+.1f} mm; "
                + ", ".join(f"{v['distance_m']:.2f} m: {v['error_mm']:+.1f} mm" for v in dc["per_view"])
            )
    lines.append("plots: " + ", ".join(report["plots"]))
    print("\n".join(lines), file=sys.stderr)
    _print_json({"verdict": verdict, "limits": {"max_rms_px": args.max_rms_px, "max_spread_mm": args.max_spread_mm},
                 "summary": s, "worst_poses": [{"name": n, "rms_px": float(r), "board_deviation_mm": float(d)}
                                               for r, n, d in per],
                 "depth_check": report.get("depth_check"), "plots": report["plots"]})
    return 0 if verdict_ok else 1


def cmd_export(args) -> int:
    from .formats import load_rig, static_transform_publisher_line, write_easy_handeye2

    rig = load_rig(args.rig, need_hand_eye=True)
    if args.calib:
        write_easy_handeye2(args.calib, rig.tcp_from_camera, robot_effector_frame=args.parent_frame,
                            tracking_base_frame=args.child_frame)
        print(f"wrote {args.calib}", file=sys.stderr)
    ros2 = static_transform_publisher_line(rig.tcp_from_camera, parent_frame=args.parent_frame,
                                           child_frame=args.child_frame)
    ros1 = static_transform_publisher_line(rig.tcp_from_camera, parent_frame=args.parent_frame,
                                           child_frame=args.child_frame, ros2=False)
    print("# quaternion order: quat_xyzw (x y z qx qy qz qw parent child)\n" + ros2 + "\n" + ros1, file=sys.stderr)
    _print_json({"tcp_from_camera": rig.tcp_from_camera.to_dict(), "quat_order": "xyzw",
                 "static_transform_publisher": {"ros2": ros2, "ros1": ros1},
                 "calib": str(args.calib) if args.calib else None})
    return 0


def cmd_import(args) -> int:
    from graspseg.core.camera import CameraRig

    from .formats import parse_static_transform_publisher, read_easy_handeye2

    if bool(args.calib) == bool(args.static):
        raise CalibrationError("give exactly one of --calib FILE or --static 'x y z qx qy qz qw parent child'")
    t = read_easy_handeye2(args.calib) if args.calib else parse_static_transform_publisher(args.static)[0]
    intr = _intrinsics(args)
    depth_scale = args.depth_scale if args.depth_scale is not None else 1e-3
    rig = CameraRig(intr, t, depth_scale=depth_scale, name=args.name, allow_implausible=args.allow_implausible)
    rig.save_yaml(args.rig_out)
    print(f"wrote {args.rig_out}: {t}", file=sys.stderr)
    _print_json({"rig": str(args.rig_out), "tcp_from_camera": t.to_dict(), "depth_scale": depth_scale})
    return 0


def cmd_bench(args) -> int:
    from .bench import run_bench

    if not args.verbose:  # per-trial warnings (e.g. weak random poses) would drown the JSON
        logging.getLogger("calibration").setLevel(logging.ERROR)
    print(json.dumps(run_bench(args.trials, args.poses, args.seed), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="graspseg-calibrate", description=__doc__.split("\n")[0])
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("board", help="write a printable ChArUco board (PDF at exact size, PNG at --dpi, JSON)")
    _board_args(b)
    b.add_argument("--out", required=True, type=Path, help="board.pdf or board.png")
    b.add_argument("--dpi", type=_number(float, low=50.0, high=2400.0, unit=" dpi"), default=300.0)
    b.add_argument("--margin-mm", type=_number(float, low=0.0, high=100.0, unit=" mm"), default=10.0)
    b.set_defaults(func=cmd_board)

    i = sub.add_parser("intrinsics", help="calibrate intrinsics from board images, or --check given intrinsics")
    _board_args(i)
    i.add_argument("--images", required=True, type=Path)
    i.add_argument("--out", type=Path, help="write the result JSON here")
    i.add_argument("--check", type=Path, help="intrinsics to check (JSON, ROS CameraInfo YAML or rig YAML)")
    i.add_argument("--distortion", default="k1k2p1p2", choices=["none", "k1k2", "k1k2p1p2", "full"])
    _gate_args(i, rms=1.0, spread=None)
    i.add_argument("--max-focal-std", type=_POSITIVE, default=0.01,
                   help="largest acceptable standard deviation of fx/fy as a fraction of the focal length (default 0.01)")
    i.set_defaults(func=cmd_intrinsics)

    h = sub.add_parser("hand-eye", help="eye-in-hand calibration from images + robot poses; writes the rig YAML")
    _board_args(h)
    h.add_argument("--images", required=True, type=Path)
    h.add_argument("--poses", required=True, type=Path, help="one JSON per line: base_from_tcp 4x4, or xyz_m + quat_xyzw")
    h.add_argument("--rig-out", required=True, type=Path)
    h.add_argument("--intrinsics", type=Path, help="JSON, ROS CameraInfo YAML or rig YAML")
    h.add_argument("--rig", type=Path, help="existing rig YAML to take intrinsics/depth scale from")
    h.add_argument("--realsense", action="store_true", help="read factory intrinsics from a connected RealSense")
    h.add_argument("--depth-scale", type=_DEPTH_SCALE,
                   help="metres per raw depth unit for the rig (default: from --rig or 0.001)")
    h.add_argument("--robot-noise-deg", type=_POSITIVE, default=0.02, help="per-axis robot rotation noise, deg")
    h.add_argument("--robot-noise-mm", type=_POSITIVE, default=0.2, help="per-axis robot translation noise, mm")
    _gate_args(h, rms=2.0, spread=5.0)
    h.add_argument("--allow-implausible", action="store_true",
                   help="write a tcp_from_camera longer than 0.5 m (a camera far from the tool) without refusing")
    h.add_argument("--robot-exact", action="store_true", help="treat robot poses as exact")
    h.add_argument("--drop-outliers", action="store_true")
    h.add_argument("--allow-degenerate", action="store_true", help="warn instead of refusing too-similar poses")
    h.add_argument("--report", type=Path, help="write the full JSON report here")
    h.add_argument("--plots", type=Path, help="write residual plots (PNG) into this folder")
    h.add_argument("--calib-out", type=Path, help="also write an easy_handeye2 .calib YAML")
    h.add_argument("--parent-frame", default="tool0", help="robot frame name of the tcp (for ROS exports)")
    h.add_argument("--child-frame", default="camera_color_optical_frame")
    h.set_defaults(func=cmd_hand_eye)

    c = sub.add_parser("check", help="check a rig against new images + poses (report + PNG plots)")
    _board_args(c)
    c.add_argument("--rig", required=True, type=Path)
    c.add_argument("--images", required=True, type=Path)
    c.add_argument("--poses", required=True, type=Path)
    c.add_argument("--plots", type=Path, help="plot folder (default: calibration_check/ beside the rig)")
    c.add_argument("--report", type=Path)
    _gate_args(c, rms=1.5, spread=2.0)
    c.add_argument("--min-views", type=_number(int, low=3, high=10000), default=5,
                   help="usable views needed for a verdict (default 5; two views always agree with any rig)")
    c.set_defaults(func=cmd_check)

    e = sub.add_parser("export", help="print static_transform_publisher lines; write an easy_handeye2 .calib")
    e.add_argument("--rig", required=True, type=Path)
    e.add_argument("--calib", type=Path)
    e.add_argument("--parent-frame", default="tool0")
    e.add_argument("--child-frame", default="camera_color_optical_frame")
    e.set_defaults(func=cmd_export)

    m = sub.add_parser("import", help="make a rig YAML from an easy_handeye2 .calib or a static_transform_publisher line")
    m.add_argument("--calib", type=Path)
    m.add_argument("--static", help="'x y z qx qy qz qw parent child' (quat_xyzw)")
    m.add_argument("--intrinsics", type=Path)
    m.add_argument("--realsense", action="store_true")
    m.add_argument("--depth-scale", type=_DEPTH_SCALE, help="metres per raw depth unit (default 0.001)")
    m.add_argument("--name", default="camera")
    m.add_argument("--allow-implausible", action="store_true",
                   help="accept a tcp_from_camera longer than 0.5 m (otherwise refused as likely millimetres)")
    m.add_argument("--rig-out", required=True, type=Path)
    m.set_defaults(func=cmd_import)

    k = sub.add_parser("bench", help="synthetic benchmark (JSON): hand-eye errors and the depth check")
    k.add_argument("--trials", type=_number(int, low=1, high=10000), default=30)
    k.add_argument("--poses", type=_number(int, low=5, high=1000), default=20)
    k.add_argument("--seed", type=_number(int, low=0), default=0)
    k.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; every error is one line on stderr and exit code 2 (``--debug``: traceback)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
    except UsageError as e:
        print(f"graspseg-calibrate: error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except (GraspsegError, OSError) as e:
        if debug:
            raise
        if isinstance(e, OSError) and not isinstance(e, GraspsegError):
            where = f" {e.filename}" if getattr(e, "filename", None) else ""
            msg = f"cannot access{where}: {e.strerror or e}; check the path and its permissions"
        else:
            msg = str(e)
        print(f"graspseg-calibrate {args.command}: {' '.join(msg.split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
