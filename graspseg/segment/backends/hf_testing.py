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


#: The objects of :func:`objects_frame`: (row slice, column slice, RGB).
OBJECTS = (((30, 70), (15, 55), (210, 30, 30)), ((40, 90), (70, 100), (30, 40, 210)), ((35, 75), (115, 150), (200, 40, 40)))


def objects_frame(height: int = 120, width: int = 160, seed: int = 0) -> RGBDFrame:
    """A small frame of three boxes 5 cm tall on a table at 0.5 m: red, blue, red (left to right), see :data:`OBJECTS`."""
    rng = np.random.default_rng(seed)
    color = rng.integers(90, 130, (height, width, 3), dtype=np.uint8)
    depth = np.full((height, width), 0.5, np.float32)
    for (y0, y1), (x0, x1), rgb in OBJECTS:
        color[y0:y1, x0:x1] = rgb
        depth[y0:y1, x0:x1] = 0.45
    k = CameraIntrinsics(width=width, height=height, fx=150.0, fy=150.0, cx=width / 2 - 0.5, cy=height / 2 - 0.5)
    return RGBDFrame(color, depth, k)


# --------------------------------------------------------------------------------------------------
# Text: tiny tokenizers, detectors and SAM 3
# --------------------------------------------------------------------------------------------------
#: The words the tiny tokenizers know (anything else becomes letters, or unknown for BERT).
TEXT_WORDS: tuple[str, ...] = ("red", "mug", "box", "blue", "bowl", "the", "a")


def clip_tokenizer():
    """A CLIP byte-level BPE tokenizer over letters plus :data:`TEXT_WORDS` (OWLv2, SAM 3).

    Pad ``!`` has id 0 (OWLv2 treats a query whose first id is 0 as padding), start/end of text come last.
    """
    import transformers as t

    vocab = {"!": 0}
    for c in "abcdefghijklmnopqrstuvwxyz.":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    merges = []
    for word in TEXT_WORDS:
        for i in range(1, len(word)):
            a, b = word[:i], word[i] + ("</w>" if i == len(word) - 1 else "")
            if (a, b) not in merges:
                merges.append((a, b))
            vocab.setdefault(a + b, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return t.CLIPTokenizer(vocab=vocab, merges=merges, pad_token="!")


def bert_tokenizer():
    """A WordPiece (BERT) tokenizer over :data:`TEXT_WORDS` and ``.`` (Grounding DINO)."""
    import transformers as t

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *TEXT_WORDS]
    return t.BertTokenizer(vocab={w: i for i, w in enumerate(words)})


def _clip_text(tok, **extra) -> dict:
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id  # SigLIP's tokenizer has no BOS
    return dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                bos_token_id=bos, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **extra)


def owlv2_config(tok):
    """A tiny OWLv2 (64-pixel input, 16 patches) for the vocabulary of ``tok``."""
    import transformers as t

    return t.Owlv2Config(
        text_config=_clip_text(tok, max_position_embeddings=16),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=64, patch_size=16),
        projection_dim=32)


def grounding_dino_config(tok):
    """A tiny Grounding DINO (Swin backbone, 1-layer BERT, 10 queries) for the vocabulary of ``tok``."""
    import transformers as t

    swin = t.SwinConfig(image_size=64, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                        window_size=4, out_features=["stage2", "stage3", "stage4"])
    bert = t.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32)
    # Two decoder layers at least: transformers ties the later box heads to the first.
    return t.GroundingDinoConfig(backbone_config=swin, text_config=bert, num_queries=10, encoder_layers=1,
                                 decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32, encoder_attention_heads=2,
                                 decoder_attention_heads=2, d_model=32, max_text_len=16, encoder_n_points=2,
                                 decoder_n_points=2)


def sam3_config(tok):
    """A tiny SAM 3 detector (112-pixel input, 8 queries) for the vocabulary of ``tok``."""
    import transformers as t

    vit = dict(model_type="sam3_vit_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=2, image_size=112, patch_size=14, window_size=4, global_attn_indexes=[1],
               pretrain_image_size=112)
    vision = dict(backbone_config=vit, fpn_hidden_size=32, backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]])
    small = dict(hidden_size=32, num_layers=1, num_attention_heads=2, intermediate_size=64)
    return t.Sam3Config(vision_config=vision,
                        text_config=dict(_clip_text(tok, projection_dim=32, max_position_embeddings=32),
                                         model_type="clip_text_model"),
                        geometry_encoder_config=small, detr_encoder_config=small,
                        detr_decoder_config=dict(small, num_queries=8),
                        mask_decoder_config=dict(hidden_size=32, num_attention_heads=2))


def sam3_video_config(tok):
    """A tiny SAM 3 video model (what ``facebook/sam3`` publishes): the detector of :func:`sam3_config` plus a tracker."""
    import transformers as t

    det = sam3_config(tok)
    tracker = dict(vision_config=det.vision_config.to_dict(),
                   prompt_encoder_config=dict(_PROMPT, hidden_size=128, image_size=112, patch_size=14),
                   mask_decoder_config=dict(_DECODER, hidden_size=128, iou_head_hidden_dim=64),
                   memory_attention_hidden_size=128, memory_encoder_hidden_size=128, memory_encoder_output_channels=64,
                   memory_attention_num_layers=1, memory_attention_feed_forward_hidden_size=64,
                   mask_downsampler_embed_dim=128, memory_fuser_embed_dim=128, memory_fuser_intermediate_dim=64,
                   memory_attention_rope_feat_sizes=[8, 8])
    return t.Sam3VideoConfig(detector_config=det.to_dict(), tracker_config=tracker)


def save_text_checkpoint(kind: str, path: Path, seed: int = 0) -> Path:
    """A tiny ``owlv2``, ``grounding-dino``, ``mm-grounding-dino``, ``sam3`` or ``sam3_video`` checkpoint with its tokenizer and processor configs.

    Written by ``save_pretrained`` of the model and of transformers' own processor (tokenizer files and
    ``processor_config.json``), like a downloaded checkpoint.
    """
    import torch
    import transformers as t

    path = Path(path)
    torch.manual_seed(seed)
    if kind == "owlv2":
        tok = clip_tokenizer()
        model = t.Owlv2ForObjectDetection(owlv2_config(tok))
        with torch.no_grad():  # random heads saturate: keep boxes near the patch-grid prior, scores spread out
            for layer in (model.box_head.dense2, model.class_head.logit_scale, model.class_head.logit_shift):
                layer.weight.mul_(1e-3)
                layer.bias.mul_(0.05)
        processor = t.Owlv2Processor(image_processor=t.Owlv2ImageProcessorPil(size={"height": 64, "width": 64}),
                                     tokenizer=tok)
    elif kind in ("grounding-dino", "mm-grounding-dino"):
        tok = bert_tokenizer()
        config = grounding_dino_config(tok)
        if kind == "grounding-dino":
            model = t.GroundingDinoForObjectDetection(config)
        else:
            fields = {k: v for k, v in config.to_dict().items()
                      if k not in ("model_type", "transformers_version", "architectures")}
            model = t.MMGroundingDinoForObjectDetection(t.MMGroundingDinoConfig(**fields))
        processor = t.GroundingDinoProcessor(
            image_processor=t.GroundingDinoImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 96}),
            tokenizer=tok)
    elif kind in ("sam3", "sam3_video"):
        # transformers' SAM 3 image processor needs torchvision: save the tokenizer and the pixel settings.
        tok = clip_tokenizer()
        model = t.Sam3Model(sam3_config(tok)) if kind == "sam3" else t.Sam3VideoModel(sam3_video_config(tok))
        detector = model if kind == "sam3" else model.detector_model
        with torch.no_grad():  # "the phrase is present" (p ≈ 0.95), so query scores decide, as in a trained model
            detector.detr_decoder.presence_head.layer3.weight.mul_(1e-3)
            detector.detr_decoder.presence_head.layer3.bias.fill_(3.0)
        processor = tok
        (path / "preprocessor_config.json").parent.mkdir(parents=True, exist_ok=True)
        (path / "preprocessor_config.json").write_text(json.dumps({
            "image_processor_type": "Sam3ImageProcessor", "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
            "rescale_factor": 1 / 255, "size": {"height": 112, "width": 112}}))
    else:
        raise ValueError(f"unknown tiny text checkpoint kind {kind!r}; use owlv2, grounding-dino, mm-grounding-dino, "
                         "sam3 or sam3_video")
    model.eval().save_pretrained(path, safe_serialization=True)
    processor.save_pretrained(path)
    return path


# --------------------------------------------------------------------------------------------------
# Mask labellers: CLIP, SigLIP, SigLIP 2
# --------------------------------------------------------------------------------------------------
LABELLER_KINDS: tuple[str, ...] = ("clip", "siglip", "siglip2")
#: Words the tiny SigLIP tokenizers are trained on (with :data:`TEXT_WORDS`).
_LABEL_WORDS: tuple[str, ...] = (*TEXT_WORDS, "photo", "of", "green", "cup", "can")


def siglip_tokenizer(path: Path):
    """A tiny SentencePiece ``SiglipTokenizer`` (as ``google/siglip-*`` ships), trained here; needs ``sentencepiece``."""
    import io

    import sentencepiece as spm
    import transformers as t

    sentences = [f"a photo of {a} {c} {o}." for a in ("a", "the") for c in ("red", "blue", "green")
                 for o in ("mug", "box", "bowl", "cup", "can")]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=buf, vocab_size=48,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2,
                                   hard_vocab_limit=False, character_coverage=1.0)
    Path(path).mkdir(parents=True, exist_ok=True)
    (Path(path) / "spiece.model").write_bytes(buf.getvalue())
    return t.SiglipTokenizer(str(Path(path) / "spiece.model"), model_max_length=16)


def siglip2_tokenizer():
    """A tiny Gemma-style byte-fallback BPE ``Siglip2Tokenizer`` (``tokenizer.json``, as ``google/siglip2-*`` ships)."""
    import transformers as t

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4}
    for c in "▁abcdefghijklmnopqrstuvwxyz.":
        vocab.setdefault(c, len(vocab))
    merges = []
    for word in _LABEL_WORDS:
        piece = "▁"
        for c in word:
            if (piece, c) not in merges:
                merges.append((piece, c))
            piece += c
            vocab.setdefault(piece, len(vocab))
    return t.Siglip2Tokenizer(vocab=vocab, merges=merges)


def labeller_config(kind: str, tok, size: str = "tiny"):
    """A ``clip``, ``siglip`` or ``siglip2`` config for tokenizer ``tok``.

    ``tiny``: 32-pixel crops, one layer per tower. ``base``: the image tower of CLIP ViT-B/32
    (``openai/clip-vit-base-patch32``), SigLIP base/16 at 224 (``google/siglip-base-patch16-224``) or
    SigLIP 2 base/16 NaFlex with 256 patches (``google/siglip2-base-patch16-naflex``), at full size; the text
    tower at full size but with ``tok``'s small vocabulary (timing per mask does not depend on it).
    """
    import transformers as t

    if size == "tiny":
        vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                      patch_size=8)
        text = _clip_text(tok, max_position_embeddings=16)
    elif size == "base":
        small = _clip_text(tok)
        vision, text = {}, {k: small[k] for k in ("vocab_size", "bos_token_id", "eos_token_id", "pad_token_id")}
    else:
        raise ValueError(f"unknown labeller config size {size!r}; use tiny or base")
    if kind == "clip":
        return t.CLIPConfig(text_config=text, vision_config=vision, **({"projection_dim": 16} if size == "tiny" else {}))
    if kind == "siglip":
        return t.SiglipConfig(text_config=text, vision_config=vision)
    if kind == "siglip2":
        vision = {k: v for k, v in vision.items() if k != "image_size"} | ({"num_patches": 16} if size == "tiny" else {})
        return t.Siglip2Config(text_config=text, vision_config=vision)
    raise ValueError(f"unknown labeller kind {kind!r}; use one of {LABELLER_KINDS}")


def save_labeller_checkpoint(kind: str, path: Path, seed: int = 0, size: str = "tiny") -> Path:
    """A ``clip``, ``siglip`` or ``siglip2`` checkpoint with random weights, its tokenizer and preprocessor config.

    Written like a downloaded one: ``config.json`` + ``model.safetensors`` by ``save_pretrained``, the
    tokenizer files by the tokenizer's ``save_pretrained``, ``preprocessor_config.json`` by transformers'
    own image processor (PIL backend). SigLIP's SentencePiece tokenizer needs ``sentencepiece``.
    """
    import torch
    import transformers as t

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = {"clip": clip_tokenizer, "siglip": lambda: siglip_tokenizer(path / "_spm"),
           "siglip2": siglip2_tokenizer}[kind]()
    config = labeller_config(kind, tok, size)
    torch.manual_seed(seed)
    model = {"clip": t.CLIPModel, "siglip": t.SiglipModel, "siglip2": t.Siglip2Model}[kind](config).eval()
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    side = config.vision_config.image_size if kind != "siglip2" else None
    if kind == "clip":
        proc = t.CLIPImageProcessorPil(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    elif kind == "siglip":
        proc = t.SiglipImageProcessorPil(size={"height": side, "width": side})
    else:  # NaFlex: more patch slots than the square uses, so padding is exercised
        p = config.vision_config.patch_size
        proc = t.Siglip2ImageProcessorPil(patch_size=p, max_num_patches=config.vision_config.num_patches + 4)
    proc.save_pretrained(path)
    if (path / "_spm").exists():
        import shutil

        shutil.rmtree(path / "_spm")
    return path
