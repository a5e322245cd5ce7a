"""Randomly initialised checkpoints of the real transformers SAM-family classes, for tests and benchmarks.

Tiny configs (a few hundred thousand parameters, 128-pixel input) exercise the real code paths in
milliseconds; ``save_checkpoint`` writes them exactly like a downloaded checkpoint (``config.json``,
``model.safetensors``, ``preprocessor_config.json``) so they load through the normal loader.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...core.camera import CameraIntrinsics
from ...core.frame import RGBDFrame

IMAGE_SIZE = 128
_PROMPT = dict(hidden_size=32, image_size=IMAGE_SIZE, patch_size=16, mask_input_channels=4)
_DECODER = dict(hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=2, iou_head_hidden_dim=32)
_HIERA = dict(model_type="sam2_hiera_det_model", hidden_size=16, num_attention_heads=1, image_size=[IMAGE_SIZE] * 2,
              blocks_per_stage=[1, 1, 2, 1], embed_dim_per_stage=[16, 32, 64, 128],
              num_attention_heads_per_stage=[1, 1, 1, 1], window_size_per_stage=[4, 4, 4, 4],
              global_attention_blocks=[3], window_positional_embedding_background_size=[4, 4])
_SAM2_VISION = dict(backbone_config=_HIERA, backbone_channel_list=[128, 64, 32, 16],
                    backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]], fpn_hidden_size=32)


def sam_config(hq: bool = False):
    import transformers as t

    vision = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_dim=64, image_size=IMAGE_SIZE,
                  patch_size=16, output_channels=32, global_attn_indexes=[1], window_size=4, num_pos_feats=16)
    if hq:
        return t.SamHQConfig(vision_config=vision, prompt_encoder_config=_PROMPT,
                             mask_decoder_config=dict(_DECODER, vit_dim=32))
    return t.SamConfig(vision_config=vision, prompt_encoder_config=_PROMPT, mask_decoder_config=_DECODER)


def sam2_config():
    import transformers as t

    return t.Sam2Config(vision_config=_SAM2_VISION, prompt_encoder_config=_PROMPT, mask_decoder_config=_DECODER)


def sam2_video_config():
    """A tiny SAM 2 video model: 64-channel memories (fixed in transformers) under a 128-wide decoder."""
    import transformers as t

    vision = dict(_SAM2_VISION, fpn_hidden_size=128)
    prompt = dict(_PROMPT, hidden_size=128)
    decoder = dict(_DECODER, hidden_size=128, iou_head_hidden_dim=64)
    return t.Sam2VideoConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder,
                             image_size=IMAGE_SIZE, memory_attention_hidden_size=128, memory_encoder_hidden_size=128,
                             memory_encoder_output_channels=64, memory_attention_num_layers=1,
                             memory_attention_feed_forward_hidden_size=64, mask_downsampler_embed_dim=128,
                             memory_fuser_embed_dim=128, memory_fuser_intermediate_dim=64,
                             memory_attention_rope_feat_sizes=[8, 8])


def save_checkpoint(model_cls_name: str, config, path: Path, seed: int = 0) -> Path:
    """Build ``model_cls_name`` from ``config`` with seeded random weights and save it as safetensors."""
    import torch
    import transformers as t

    torch.manual_seed(seed)
    model = getattr(t, model_cls_name)(config).eval()
    model.save_pretrained(path, safe_serialization=True)
    (Path(path) / "preprocessor_config.json").write_text(json.dumps({
        "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225], "rescale_factor": 1 / 255}))
    return Path(path)


def synthetic_frame(height: int = 72, width: int = 96, seed: int = 0) -> RGBDFrame:
    """A small frame: a bright square on a darker textured background, a box 0.1 m in front of a table."""
    rng = np.random.default_rng(seed)
    color = rng.integers(20, 90, (height, width, 3), dtype=np.uint8)
    depth = np.full((height, width), 0.6, np.float32)
    color[20:50, 30:70] = (200, 40, 40)
    depth[20:50, 30:70] = 0.5
    k = CameraIntrinsics(width=width, height=height, fx=80.0, fy=80.0, cx=width / 2, cy=height / 2)
    return RGBDFrame(color, depth, k)
