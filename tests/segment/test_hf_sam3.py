"""The ``sam3`` backend: SAM 3 text segmentation on a tiny random checkpoint of the real transformers class."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from graspseg.core.errors import ConfigError, MissingDependencyError, PromptError, SegmentationError  # noqa: E402
from graspseg.segment import SEGMENTERS, TEXT_BACKENDS, create_segmenter  # noqa: E402
from graspseg.segment.backends import hf_testing  # noqa: E402
from graspseg.segment.types import Prompt  # noqa: E402

pytestmark = pytest.mark.skipif(not hasattr(transformers, "Sam3Model"), reason="this transformers has no Sam3Model")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return hf_testing.save_text_checkpoint("sam3", tmp_path_factory.mktemp("sam3") / "sam3")


@pytest.fixture(scope="module")
def seg(ckpt):
    return create_segmenter("sam3", model=ckpt, device="cpu", score_threshold=0.2)


def _reference(ckpt, pixels, text, threshold, size_hw):
    """Sam3Model called directly, post-processed as Sam3ImageProcessor.post_process_instance_segmentation."""
    model = transformers.Sam3Model.from_pretrained(str(ckpt), local_files_only=True).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(ckpt), local_files_only=True)
    enc = tok([text], return_tensors="pt", padding="max_length", max_length=32)
    with torch.inference_mode():
        out = model(pixel_values=pixels, input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
    scores = out.pred_logits.sigmoid()[0] * out.presence_logits.sigmoid()[0]
    keep = scores > threshold
    masks = torch.nn.functional.interpolate(out.pred_masks.sigmoid()[0][keep][None], size=size_hw,
                                            mode="bilinear", align_corners=False)[0] > 0.5
    boxes = out.pred_boxes[0][keep] * torch.tensor([size_hw[1], size_hw[0]] * 2)
    order = torch.argsort(-scores[keep], stable=True)
    return scores[keep][order].numpy(), masks[order].numpy(), boxes[order].numpy()


def test_registered_as_text_backend(seg):
    assert "sam3" in SEGMENTERS.names() and "sam3" in SEGMENTERS.available()
    assert TEXT_BACKENDS["sam3"] == "sam" and seg.accepts_text
    sam = create_segmenter("rgbd")
    sam.set_frame(hf_testing.synthetic_frame())
    with pytest.raises(PromptError, match="does not accept text.*'sam3'"):
        sam.predict(Prompt(text="red mug"))


def test_pixels_match_a_pil_bilinear_resize(seg):
    from PIL import Image

    frame = hf_testing.synthetic_frame()
    pixels, geom = seg.preprocess(frame.color)
    assert pixels.shape == (1, 3, 112, 112) and geom.scale_uv == pytest.approx((112 / 96, 112 / 72))
    ref = np.asarray(Image.fromarray(frame.color).resize((112, 112), Image.BILINEAR), np.float32) / 255.0
    ref = (ref - 0.5) / 0.5
    # torch's antialiased bilinear and PIL's agree to about one grey level.
    assert np.abs(pixels[0].permute(1, 2, 0).numpy() - ref).max() < 2.5 / 255 / 0.5


def test_wrapper_equals_the_model_called_directly(seg, ckpt):
    frame = hf_testing.synthetic_frame()
    seg.set_frame(frame)
    ms = seg.predict(Prompt(text="red mug"))
    pixels, _ = seg.preprocess(frame.color)
    scores, masks, boxes = _reference(ckpt, pixels, "red mug", 0.2, (frame.height, frame.width))
    assert 0 < len(ms) == len(scores) and ms.granularity == ("whole",) * len(ms)
    np.testing.assert_allclose(ms.scores, scores, rtol=1e-5)
    assert np.all(np.diff(ms.scores) <= 0)
    np.testing.assert_array_equal(ms.masks, masks)
    np.testing.assert_allclose(ms.details["box_xyxy"], boxes, atol=1e-3)
    # Soft logits: > 0 exactly inside, and the stability score comes from them.
    np.testing.assert_array_equal(ms.logits > 0, ms.masks)
    assert ms.details["stability"].shape == (len(ms),) and np.all((ms.details["stability"] >= 0) & (ms.details["stability"] <= 1))
    assert ms.backend == "sam3" and ms.prompt.text == "red mug"


def test_encoder_runs_once_per_frame(ckpt):
    seg = create_segmenter("sam3", model=ckpt, device="cpu", score_threshold=0.0, max_instances=3)
    frame = hf_testing.synthetic_frame()
    seg.set_frame(frame)
    seg.set_frame(frame)
    a = seg.predict(Prompt(text="red mug"))
    b = seg.predict(Prompt(text="blue bowl"))
    assert seg.encoder_calls == 1 and len(a) == len(b) == 3
    assert not np.array_equal(a.scores, b.scores)  # the phrase changes the answer
    seg.set_frame(hf_testing.synthetic_frame(seed=1))
    assert seg.encoder_calls == 2
    assert set(seg.timings) >= {"encode", "decode", "predict"}


def test_sam3_video_checkpoint_runs_its_detector(tmp_path):
    # facebook/sam3 is a sam3_video checkpoint: detector + tracker; the sam3 backend loads the detector part.
    path = hf_testing.save_text_checkpoint("sam3_video", tmp_path / "sam3_video")
    seg = create_segmenter("sam3", model=path, device="cpu", score_threshold=0.0, max_instances=2)
    assert seg.model_type == "sam3_video"
    full = transformers.Sam3VideoModel.from_pretrained(str(path), local_files_only=True)
    reference = full.detector_model.state_dict()
    ours = seg.model.state_dict()
    assert set(ours) == set(reference) and all(torch.equal(ours[k], reference[k]) for k in ours)
    seg.set_frame(hf_testing.synthetic_frame())
    assert len(seg.predict(Prompt(text="red mug"))) == 2


def test_bad_prompts_and_options(seg, ckpt, tmp_path):
    fresh = create_segmenter("sam3", model=ckpt, device="cpu")
    with pytest.raises(SegmentationError, match="no frame set; call set_frame"):
        fresh.predict(Prompt(text="red mug"))
    frame = hf_testing.synthetic_frame()
    seg.set_frame(frame)
    with pytest.raises(PromptError, match="text only, got a points prompt.*backend 'sam2'"):
        seg.predict(Prompt.from_point(10, 10))
    with pytest.raises(PromptError, match="no segment-everything mode"):
        seg.segment_all(frame)
    strict = create_segmenter("sam3", model=ckpt, device="cpu", score_threshold=0.99)
    strict.set_frame(frame)
    with pytest.raises(SegmentationError, match="no 'red mug' found.*lower score_threshold"):
        strict.predict(Prompt(text="red mug"))
    with pytest.raises(ConfigError, match="mask_threshold is a probability"):
        create_segmenter("sam3", model=ckpt, device="cpu", mask_threshold=1.5)
    with pytest.raises(ConfigError, match="score_threshold is a probability"):
        create_segmenter("sam3", model=ckpt, device="cpu", score_threshold=1.0)
    with pytest.raises(ConfigError, match="max_instances must be >= 1"):
        create_segmenter("sam3", model=ckpt, device="cpu", max_instances=0)
    sam = hf_testing.save_checkpoint("SamModel", hf_testing.sam_config(), tmp_path / "sam")
    with pytest.raises(ConfigError, match="'sam' model but backend 'sam3' runs sam3, sam3_video; use backend 'sam'"):
        create_segmenter("sam3", model=sam, device="cpu")
    partial = tmp_path / "sam3_no_tokenizer"
    shutil.copytree(ckpt, partial)
    (partial / "tokenizer.json").unlink()
    with pytest.raises(ConfigError, match="no usable tokenizer files"):
        create_segmenter("sam3", model=partial, device="cpu")


def test_transformers_without_sam3(monkeypatch, ckpt):
    import sys

    current = sys.modules["transformers"]  # transformers swaps its lazy module object on first use
    monkeypatch.setattr(current, "Sam3Model", None)
    monkeypatch.setattr(current, "__version__", "4.50.0")
    with pytest.raises(ConfigError, match="transformers 4.50.0 has no Sam3Model; SAM 3 needs transformers >= 5.0"):
        create_segmenter("sam3", model=ckpt, device="cpu")


def test_edgetam_names_what_is_missing_and_why():
    import importlib.util

    if importlib.util.find_spec("timm") is not None and importlib.util.find_spec("torchvision") is not None:
        pytest.skip("timm and torchvision are installed here")
    from graspseg.segment.backends.sam import create_edgetam

    assert "edgetam" in SEGMENTERS.names() and "edgetam" not in SEGMENTERS.available()
    with pytest.raises(MissingDependencyError, match=r"needed for segmenter 'edgetam'.*graspseg\[edgetam\]"):
        create_segmenter("edgetam", model="unused")
    with pytest.raises(MissingDependencyError, match=r"timm model, and timm imports torchvision.*graspseg\[edgetam\]"):
        create_edgetam("unused")
