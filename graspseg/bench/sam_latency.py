"""``graspseg bench sam-latency``: SAM-family encoder and per-prompt decoder times, and our overhead.

Builds the model from its default-size config with random weights (timing does not depend on the
weights), or loads ``--model DIR``, saves/loads it through the normal loader, then times:

* ``encoder_raw_ms``: ``model.get_image_embeddings(pixels)`` alone;
* ``set_frame_ms``: our ``set_frame`` (preprocessing + encoder);
* ``decoder_raw_ms``: one decoder call on the cached embedding (``model(image_embeddings=..., input_points=...)``);
* ``decoder_raw_post_ms``: the same plus transformers-style mask upsampling to the frame;
* ``predict_ms``: our ``predict`` (prompt mapping, decoder, upsampling, candidate ordering, stability, MaskSet);
* ``predict_batch_ms_per_prompt``: ``predict_batch`` of ``--prompts`` point prompts, per prompt.

Medians over ``--repeat`` runs (decoder timings over 5× as many). Prints JSON to stdout.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CONFIGS = {"sam": ("SamConfig", "SamModel"), "sam-hq": ("SamHQConfig", "SamHQModel"),
           "sam2": ("Sam2Config", "Sam2Model"), "edgetam": ("EdgeTamConfig", "EdgeTamModel")}
BACKEND = {"sam": "sam", "sam-hq": "sam", "sam2": "sam2", "edgetam": "edgetam"}


def register(bench_subparsers) -> None:
    p = bench_subparsers.add_parser("sam-latency", help="SAM-family encoder/decoder latency and wrapper overhead")
    p.add_argument("--backend", choices=sorted(CONFIGS), default="sam2")
    p.add_argument("--model", default=None, help="checkpoint dir; default: the default-size config, random weights")
    p.add_argument("--config", choices=("default", "tiny"), default="default")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--prompts", type=int, default=8, help="prompts in the batched call")
    p.add_argument("--size", default="640x480", help="frame WxH")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="fp32")
    p.set_defaults(func=run)


def _median_ms(fn, n: int, sync) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _parse_size(text: str) -> tuple[int, int]:
    """``WxH`` → (width, height) in pixels; anything else is a :class:`ConfigError` naming ``--size``."""
    from ..core.errors import ConfigError

    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size {text!r} must be WIDTHxHEIGHT in pixels, e.g. 640x480") from None
    if w < 1 or h < 1:
        raise ConfigError(f"--size {text!r} must be positive pixels, e.g. 640x480")
    return w, h


def _check_args(args) -> tuple[int, int]:
    from ..core.errors import ConfigError

    for flag in ("repeat", "prompts"):
        if getattr(args, flag) < 1:
            raise ConfigError(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    if args.dtype not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"--dtype {args.dtype!r} is unknown; use one of fp32, bf16, fp16")
    if args.device != "auto" and not re.fullmatch(r"cpu|mps|cuda(:\d+)?", args.device):
        raise ConfigError(f"--device {args.device!r} is unknown; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    if args.model is not None and not Path(args.model).is_dir():
        raise ConfigError(f"--model {args.model} is not a checkpoint folder; give a local directory with config.json")
    return _parse_size(args.size)


def run(args) -> int:
    w, h = _check_args(args)
    import torch
    import torch.nn.functional as F
    import transformers

    from ..core.camera import CameraIntrinsics
    from ..core.frame import RGBDFrame
    from ..segment import SEGMENTERS, create_segmenter
    from ..segment.backends import hf_testing
    from ..segment.types import Prompt

    SEGMENTERS.get(BACKEND[args.backend])  # a missing dependency (EdgeTAM: timm, torchvision) fails here, named
    rng = np.random.default_rng(0)
    k = CameraIntrinsics(width=w, height=h, fx=600.0, fy=600.0, cx=w / 2, cy=h / 2)
    frames = [RGBDFrame(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), np.full((h, w), 0.5, np.float32), k)
              for _ in range(args.repeat + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            if args.config == "tiny":
                cfg = {"sam": hf_testing.sam_config, "sam-hq": lambda: hf_testing.sam_config(hq=True),
                       "sam2": hf_testing.sam2_config}[args.backend]()
            else:
                cfg = getattr(transformers, CONFIGS[args.backend][0])()
            model_dir = hf_testing.save_checkpoint(CONFIGS[args.backend][1], cfg, Path(tmp) / "ckpt")
        seg = create_segmenter(BACKEND[args.backend], model=model_dir, device=args.device, dtype=args.dtype)
        model = seg.model
        dev = seg.device
        sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
        n_params = sum(p.numel() for p in model.parameters())
        print(f"{args.backend}: {n_params / 1e6:.1f} M parameters on {dev}, frame {w}x{h}", file=sys.stderr)

        pixels, _ = seg.preprocess(frames[0].color)
        with torch.inference_mode():
            model.get_image_embeddings(pixels)  # warm-up
        enc_raw = _median_ms(lambda: torch.inference_mode()(model.get_image_embeddings)(pixels), args.repeat, sync)
        it = iter(frames[1:])
        set_frame = _median_ms(lambda: seg.set_frame(next(it)), args.repeat, sync)

        prompt = Prompt.from_point(w * 0.4, h * 0.5)
        inputs = seg.model_inputs([prompt])
        geom = seg.geometry

        def raw_decode():
            return seg.decode(**inputs, multimask_output=True)

        def raw_post():
            out = raw_decode()
            low = out.pred_masks[0].float()
            if seg.family.letterbox:
                rh, rw = geom.resized_hw
                x = F.interpolate(low, (seg.input_size, seg.input_size), mode="bilinear", align_corners=False)
                x = F.interpolate(x[..., :rh, :rw], (h, w), mode="bilinear", align_corners=False)
            else:
                x = F.interpolate(low, (h, w), mode="bilinear", align_corners=False)
            return (x > 0).cpu().numpy(), out.iou_scores.cpu().numpy()

        n_dec = max(3, 5 * args.repeat)
        raw_decode()
        seg.predict(prompt)  # warm-up
        dec_raw = _median_ms(raw_decode, n_dec, sync)
        dec_post = _median_ms(raw_post, n_dec, sync)
        pred = _median_ms(lambda: seg.predict(prompt), n_dec, sync)
        prompts = [Prompt.from_point(float(u), float(v)) for u, v in
                   zip(np.linspace(5, w - 5, args.prompts), np.linspace(5, h - 5, args.prompts), strict=True)]
        batch = _median_ms(lambda: seg.predict_batch(prompts), max(2, args.repeat), sync) / args.prompts
    result = {
        "schema_version": 1, "units": "milliseconds (median)", "backend": args.backend,
        "model": str(args.model or f"{args.config} config, random weights"), "params_m": round(n_params / 1e6, 2),
        "device": str(dev), "dtype": str(seg.dtype).replace("torch.", ""), "frame_wh": [w, h], "repeat": args.repeat,
        "encoder_raw_ms": round(enc_raw, 2), "set_frame_ms": round(set_frame, 2),
        "set_frame_overhead_pct": round(100 * (set_frame - enc_raw) / enc_raw, 2),
        "decoder_raw_ms": round(dec_raw, 2), "decoder_raw_post_ms": round(dec_post, 2), "predict_ms": round(pred, 2),
        "predict_overhead_vs_raw_post_pct": round(100 * (pred - dec_post) / dec_post, 2),
        "predict_overhead_vs_decoder_only_pct": round(100 * (pred - dec_raw) / dec_raw, 2),
        "predict_batch_ms_per_prompt": round(batch, 2), "batch_prompts": args.prompts,
    }
    print(json.dumps(result, indent=2))
    return 0
