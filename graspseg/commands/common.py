"""Argument helpers shared by the sub-commands: frame sources, prompts, output folders."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..core.errors import InputError, PromptError
from ..core.frame import RGBDFrame


def add_frame_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("frame source (a frame folder, or plain files)")
    g.add_argument("--frame", type=Path, help="frame folder (color.png, depth.png, camera.json)")
    g.add_argument("--color", type=Path, help="colour PNG (with --depth, --depth-scale, --intrinsics)")
    g.add_argument("--depth", type=Path, help="depth PNG (16-bit raw) or NPY")
    g.add_argument("--depth-scale", type=float, help="metres per raw depth unit (D405 0.0001, D435 0.001; 1 for NPY in metres)")
    g.add_argument("--intrinsics", type=Path, help="intrinsics JSON (width, height, fx, fy, cx, cy)")


def load_frame(args: argparse.Namespace) -> RGBDFrame:
    """The frame named by ``--frame`` or by ``--color/--depth/--depth-scale/--intrinsics``."""
    from ..capture import frame_from_files, load_frame_folder

    plain = [args.color, args.depth, args.depth_scale, args.intrinsics]
    if args.frame is not None:
        if any(x is not None for x in plain):
            raise InputError("give either --frame DIR or --color/--depth/--depth-scale/--intrinsics, not both")
        _check_frame_size(args, Path(args.frame) / "color.png")
        return load_frame_folder(args.frame)
    if all(x is not None for x in plain):
        _check_frame_size(args, args.color)
        return frame_from_files(args.color, args.depth, depth_scale=args.depth_scale, intrinsics=args.intrinsics)
    missing = [n for n, x in zip(("--color", "--depth", "--depth-scale", "--intrinsics"), plain, strict=True) if x is None]
    raise InputError(f"no frame given: use --frame DIR, or plain files (missing {' '.join(missing)})")


def _check_frame_size(args: argparse.Namespace, color_path: Path) -> None:
    """Refuse a frame above ``limits.max_frame_pixels`` from its PNG header, before decoding anything."""
    from PIL import Image

    from ..pipeline import LimitsConfig

    overrides = getattr(args, "overrides", {}) or {}
    limits = LimitsConfig(overrides.get("limits.max_frame_pixels", LimitsConfig.max_frame_pixels))
    try:
        with Image.open(color_path) as im:
            width, height = im.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return  # not readable as an image: the loader names the problem
    limits.check_size(width, height)


def _floats(text: str, n: tuple[int, ...], what: str) -> list[float]:
    try:
        vals = [float(x) for x in text.replace(" ", "").split(",")]
    except ValueError:
        raise PromptError(f"{what} {text!r} must be comma-separated numbers") from None
    if len(vals) not in n:
        raise PromptError(f"{what} {text!r} must have {' or '.join(map(str, n))} numbers")
    return vals


def add_prompt_args(parser: argparse.ArgumentParser, *, require: bool = True) -> None:
    g = parser.add_argument_group("prompt")
    g.add_argument("--point", action="append", default=[], metavar="U,V[,1|0]",
                   help="click in pixels (u=column, v=row); third value 1 = on the object (default), 0 = not on it")
    g.add_argument("--box", metavar="X0,Y0,X1,Y1", help="box in pixels")
    g.add_argument("--mask", dest="mask_prompt", type=Path, metavar="PNG", help="coarse mask PNG (non-zero = object)")
    g.add_argument("--text", help="phrase such as 'red mug' (text-capable backends only)")


def build_prompt(args: argparse.Namespace, shape_hw: tuple[int, int]):
    """A :class:`~graspseg.segment.Prompt` from the prompt flags."""
    from ..capture.images import read_mask
    from ..segment import Prompt

    pts, labels = [], []
    for p in args.point:
        vals = _floats(p, (2, 3), "--point")
        if len(vals) == 3 and vals[2] not in (0.0, 1.0):
            raise PromptError(f"--point {p!r}: the label must be 1 (on the object) or 0 (not on it)")
        pts.append(vals[:2])
        labels.append(int(vals[2]) if len(vals) == 3 else 1)
    box = _floats(args.box, (4,), "--box") if args.box else None
    mask = read_mask(args.mask_prompt, shape_hw) if args.mask_prompt else None
    if not pts and box is None and mask is None and not args.text:
        raise PromptError("no prompt: give --point U,V, --box X0,Y0,X1,Y1, --mask PNG or --text PHRASE")
    return Prompt(points_uv=np.array(pts).reshape(-1, 2), point_labels=labels, box_xyxy=box, mask=mask, text=args.text)


class Stopwatch:
    """Collects named wall-clock durations in milliseconds."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    def __call__(self, name: str):
        watch = self

        class _Span:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                watch.ms[name] = watch.ms.get(name, 0.0) + (time.perf_counter() - self.t0) * 1e3

        return _Span()
