"""Text prompts through a detector and a box-promptable SAM segmenter (tiny random checkpoint)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from graspseg.core.errors import ConfigError, PromptError, SegmentationError  # noqa: E402
from graspseg.segment import TEXT_BACKENDS, create_segmenter  # noqa: E402
from graspseg.segment.backends import hf_testing  # noqa: E402
from graspseg.segment.types import Prompt  # noqa: E402


class FixedDetector:
    def __init__(self, boxes, scores):
        self.boxes, self.scores, self.calls = np.asarray(boxes, float), np.asarray(scores, float), 0

    def detect(self, frame, text):
        self.calls += 1
        return (self.boxes, self.scores) if text == "red box" else (np.zeros((0, 4)), np.zeros(0))


@pytest.fixture(scope="module")
def sam(tmp_path_factory):
    ckpt = hf_testing.save_checkpoint("SamModel", hf_testing.sam_config(), tmp_path_factory.mktemp("g") / "sam")
    return create_segmenter("sam", model=ckpt, device="cpu")


def test_text_goes_through_boxes_to_the_segmenter(sam):
    frame = hf_testing.synthetic_frame()
    det = FixedDetector([[30, 20, 70, 50], [0, 0, 20, 20]], [0.9, 0.4])
    seg = create_segmenter("grounded", detector=det, segmenter=sam)
    assert seg.accepts_text and "grounded" in TEXT_BACKENDS
    seg.set_frame(frame)
    ms = seg.predict(Prompt(text="red box"))
    seg.predict(Prompt(text="red box"))
    assert det.calls == 1  # cached per phrase and frame
    assert len(ms) == 2 and ms.granularity == ("whole", "whole")
    direct = sam.predict(Prompt.from_box(30, 20, 70, 50.001))
    k = direct.select("whole")
    np.testing.assert_allclose(ms.logits[0], direct.logits[k], atol=1e-3)
    assert ms.scores[0] == pytest.approx(0.9 * direct.scores[k], rel=1e-4)
    point = seg.predict(Prompt.from_point(50, 30))  # non-text prompts go to the segmenter
    assert len(point) == 3


def test_text_not_found_and_bad_detector(sam):
    seg = create_segmenter("grounded", detector=FixedDetector([[1, 1, 5, 5]], [0.5]), segmenter=sam)
    with pytest.raises(SegmentationError, match="call set_frame"):
        seg.predict(Prompt(text="red box"))
    seg.set_frame(hf_testing.synthetic_frame())
    with pytest.raises(SegmentationError, match="no 'blue mug' found.*lower box_threshold"):
        seg.predict(Prompt(text="blue mug"))
    with pytest.raises(ConfigError, match="detect\\(frame, text\\)"):
        create_segmenter("grounded", detector=object(), segmenter=sam)


# --------------------------------------------------------------------------------------------------
# Real detectors: tiny OWLv2 / Grounding DINO checkpoints with their tokenizer and processor files
# --------------------------------------------------------------------------------------------------
DETECTOR_KINDS = ("owlv2", "grounding-dino", "mm-grounding-dino")
#: Box thresholds that keep some, not all, of each tiny random detector's boxes.
THRESHOLDS = {"owlv2": 0.5, "grounding-dino": 0.5, "mm-grounding-dino": 0.01}


@pytest.fixture(scope="module")
def text_checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("detectors")
    ckpts = {k: hf_testing.save_text_checkpoint(k, root / k) for k in DETECTOR_KINDS}
    ckpts["sam"] = hf_testing.save_checkpoint("SamModel", hf_testing.sam_config(), root / "sam")
    return ckpts


def _direct_detection(path, kind, frame, text, box_threshold, text_threshold=0.25):
    """transformers called directly: its processor, its model, its post-processing."""
    import torch
    import transformers as t

    processor = t.AutoProcessor.from_pretrained(str(path), local_files_only=True)
    cls = {"owlv2": t.Owlv2ForObjectDetection, "grounding-dino": t.GroundingDinoForObjectDetection,
           "mm-grounding-dino": t.MMGroundingDinoForObjectDetection}[kind]
    model = cls.from_pretrained(str(path), local_files_only=True).eval()
    if kind == "owlv2":
        inputs = processor(text=[[text]], images=frame.color, return_tensors="pt")
    else:
        inputs = processor(images=frame.color, text=text.lower() + ".", return_tensors="pt")
    with torch.inference_mode():
        out = model(**inputs)
    sizes = [(frame.height, frame.width)]
    if kind == "owlv2":
        res = processor.post_process_grounded_object_detection(out, threshold=box_threshold, target_sizes=sizes)[0]
    else:
        res = processor.post_process_grounded_object_detection(out, inputs["input_ids"], threshold=box_threshold,
                                                               text_threshold=text_threshold, target_sizes=sizes)[0]
    return res["boxes"].numpy(), res["scores"].numpy(), inputs["input_ids"][0].tolist(), processor.tokenizer


@pytest.mark.parametrize("kind", DETECTOR_KINDS)
def test_detector_equals_transformers_called_directly(text_checkpoints, kind):
    from graspseg.segment.backends.grounding import HFDetector

    frame = hf_testing.synthetic_frame()
    thr = THRESHOLDS[kind]
    det = HFDetector(text_checkpoints[kind], device="cpu", box_threshold=thr)
    assert det.model_type == kind
    boxes, scores = det.detect(frame, "red mug")
    ref_boxes, ref_scores, ids, tok = _direct_detection(text_checkpoints[kind], kind, frame, "red mug", thr)
    # The tiny tokenizer knows the words: the phrase is not tokenised to "unknown".
    assert tok.convert_tokens_to_ids("red</w>" if kind == "owlv2" else "red") in ids
    assert tok.unk_token_id not in ids[1:-1]  # between the start and end tokens
    order = np.argsort(-ref_scores, kind="stable")
    assert 0 < len(boxes) == len(ref_boxes)
    np.testing.assert_allclose(boxes, ref_boxes[order], atol=1e-4)
    np.testing.assert_allclose(scores, ref_scores[order], atol=1e-6)
    assert np.all(np.diff(scores) <= 0) and np.all(scores > thr)
    # A stricter threshold keeps a prefix of the same detections.
    det.box_threshold = float(scores[len(scores) // 2])
    fewer, _ = det.detect(frame, "red mug")
    assert len(fewer) < len(boxes)
    np.testing.assert_allclose(fewer, boxes[:len(fewer)], atol=1e-5)


@pytest.mark.parametrize("kind", DETECTOR_KINDS[:2])
def test_phrase_to_boxes_to_masks_with_tiny_sam(text_checkpoints, kind):
    from graspseg.segment.backends.grounding import HFDetector, boxes_inside

    frame = hf_testing.synthetic_frame()
    seg = create_segmenter("grounded", detector=text_checkpoints[kind], model=text_checkpoints["sam"], device="cpu",
                           detector_options={"box_threshold": 0.1}, max_instances=3)
    assert seg.segmenter.name == "sam"  # picked from the checkpoint's model_type
    seg.set_frame(frame)
    ms = seg.predict(Prompt(text="red mug"))
    assert isinstance(seg.detector, HFDetector) and seg.detector.box_threshold == 0.1
    boxes, det_scores = seg.detector.detect(frame, "red mug")  # equals transformers: see the test above
    keep = boxes_inside(boxes, frame.width, frame.height)
    boxes, det_scores = boxes[keep][:3], det_scores[keep][:3]
    assert len(ms) == len(boxes) > 0 and ms.granularity == ("whole",) * len(boxes)
    np.testing.assert_allclose(ms.details["box_xyxy"], boxes)
    np.testing.assert_allclose(ms.details["detection_score"], det_scores, rtol=1e-6)
    for i, b in enumerate(boxes):
        clipped = np.clip(b, 0, [frame.width - 1, frame.height - 1] * 2) + [0, 0, 1e-3, 1e-3]
        direct = seg.segmenter.predict(Prompt(box_xyxy=clipped))
        k = direct.select("whole")
        np.testing.assert_array_equal(ms.masks[i], direct.masks[k])
        assert ms.scores[i] == pytest.approx(det_scores[i] * direct.scores[k], rel=1e-5)


def test_detector_checkpoint_errors(text_checkpoints, tmp_path):
    import shutil

    from graspseg.segment.backends.grounding import HFDetector

    with pytest.raises(ConfigError, match="'sam' model but backend 'grounded' runs.*use backend 'sam'"):
        HFDetector(text_checkpoints["sam"], device="cpu")
    partial = tmp_path / "owl_no_tokenizer"
    shutil.copytree(text_checkpoints["owlv2"], partial)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (partial / f).unlink()
    with pytest.raises(ConfigError, match="no usable tokenizer/processor files.*download the whole"):
        HFDetector(partial, device="cpu")
    with pytest.raises(ConfigError, match="no segmenter given; pass model="):
        create_segmenter("grounded", detector=FixedDetector([[1, 1, 5, 5]], [0.5]))
    with pytest.raises(ConfigError, match="not a box-promptable segmenter"):
        create_segmenter("grounded", detector=FixedDetector([[1, 1, 5, 5]], [0.5]), model=text_checkpoints["owlv2"])
    with pytest.raises(ConfigError, match="either a segmenter instance or model=<checkpoint>, not both"):
        create_segmenter("grounded", detector=FixedDetector([[1, 1, 5, 5]], [0.5]), segmenter=object(),
                         model=text_checkpoints["sam"])
    corrupt = tmp_path / "owl_corrupt_tokenizer"
    shutil.copytree(text_checkpoints["owlv2"], corrupt)
    (corrupt / "tokenizer.json").write_text("{ not json")
    with pytest.raises(ConfigError, match="no usable tokenizer/processor files for Owlv2Processor"):
        HFDetector(corrupt, device="cpu")
    det = HFDetector(text_checkpoints["owlv2"], device="cpu")
    with pytest.raises(PromptError, match="text prompt is empty"):
        det.detect(hf_testing.synthetic_frame(), "  ")


def test_boxes_outside_the_frame_are_dropped(sam):
    frame = hf_testing.synthetic_frame()
    det = FixedDetector([[200, 10, 260, 40], [30, 20, 70, 50]], [0.9, 0.5])
    seg = create_segmenter("grounded", detector=det, segmenter=sam)
    seg.set_frame(frame)
    ms = seg.predict(Prompt(text="red box"))
    assert len(ms) == 1
    np.testing.assert_allclose(ms.details["box_xyxy"], [[30, 20, 70, 50]])
    seg = create_segmenter("grounded", detector=FixedDetector([[200, 10, 260, 40]], [0.9]), segmenter=sam)
    seg.set_frame(frame)
    with pytest.raises(SegmentationError, match="lies outside the 96x72 frame"):
        seg.predict(Prompt(text="red box"))


def test_older_checkpoint_layout_with_preprocessor_config(text_checkpoints, tmp_path):
    """Hub repositories often carry preprocessor_config.json and tokenizer files, no processor_config.json."""
    import shutil

    import transformers as t

    from graspseg.segment.backends.grounding import HFDetector

    frame = hf_testing.synthetic_frame()
    old = tmp_path / "owlv2_old_layout"
    shutil.copytree(text_checkpoints["owlv2"], old)
    processor = t.AutoProcessor.from_pretrained(str(old), local_files_only=True)
    (old / "processor_config.json").unlink()
    processor.image_processor.save_pretrained(old)
    assert (old / "preprocessor_config.json").is_file()
    a = HFDetector(text_checkpoints["owlv2"], device="cpu", box_threshold=0.0).detect(frame, "red mug")
    b = HFDetector(old, device="cpu", box_threshold=0.0).detect(frame, "red mug")
    np.testing.assert_allclose(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1])
