"""SAM-family backends on tiny randomly initialised checkpoints of the real transformers classes."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from graspseg.core.errors import ConfigError, DeviceNotConnectedError, PromptError, SegmentationError  # noqa: E402
from graspseg.segment import create_segmenter  # noqa: E402
from graspseg.segment.backends import hf_testing as hf_tiny  # noqa: E402
from graspseg.segment.backends.automask import box_nms, mask_boxes, point_grid  # noqa: E402
from graspseg.segment.backends.hf_loading import resolve_device, resolve_dtype  # noqa: E402
from graspseg.segment.backends.sam import InputGeometry, stability_scores  # noqa: E402
from graspseg.segment.types import Prompt  # noqa: E402


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {
        "sam": hf_tiny.save_checkpoint("SamModel", hf_tiny.sam_config(), root / "sam"),
        "sam_hq": hf_tiny.save_checkpoint("SamHQModel", hf_tiny.sam_config(hq=True), root / "sam_hq"),
        "sam2": hf_tiny.save_checkpoint("Sam2Model", hf_tiny.sam2_config(), root / "sam2"),
    }


@pytest.fixture(scope="module")
def frame():
    return hf_tiny.synthetic_frame()


@pytest.fixture(scope="module")
def sam(ckpts):
    return create_segmenter("sam", model=ckpts["sam"], device="cpu")


@pytest.fixture(scope="module")
def sam2(ckpts):
    return create_segmenter("sam2", model=ckpts["sam2"], device="cpu")


# --- coordinate mapping and preprocessing against transformers' own processors ----------------------------
def test_sam_points_and_boxes_map_like_sam_processor(frame):
    proc = transformers.SamProcessor(transformers.SamImageProcessorPil())
    pts = np.array([[50.0, 30.0], [10.0, 5.0], [95.0, 71.0]])
    box = np.array([30.0, 20.0, 70.0, 50.0])
    ref = proc(images=frame.color, input_points=[[pts.tolist()]], input_labels=[[[1, 0, 1]]],
               input_boxes=[[box.tolist()]], return_tensors="pt")
    geom = InputGeometry(frame.height, frame.width, 1024, letterbox=True)
    assert geom.resized_hw == tuple(ref["reshaped_input_sizes"][0].tolist())
    np.testing.assert_allclose(geom.to_input_uv(pts), ref["input_points"][0, 0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(geom.to_input_box(box), ref["input_boxes"][0, 0].numpy(), rtol=1e-6)


def test_sam2_points_and_boxes_map_like_sam2_processor(frame):
    proc = transformers.Sam2Processor.__new__(transformers.Sam2Processor)  # its image processor needs torchvision
    proc.target_size, proc.point_pad_value = 1024, -10
    pts = np.array([[50.0, 30.0], [10.0, 5.0]])
    box = np.array([30.0, 20.0, 70.0, 50.0])
    ref = proc(input_points=[[pts.tolist()]], input_labels=[[[1, 0]]], input_boxes=[[box.tolist()]],
               original_sizes=[[frame.height, frame.width]], return_tensors="pt")
    geom = InputGeometry(frame.height, frame.width, 1024, letterbox=False)
    np.testing.assert_allclose(geom.to_input_uv(pts), ref["input_points"][0, 0].numpy(), rtol=1e-5)
    np.testing.assert_allclose(geom.to_input_box(box), ref["input_boxes"][0, 0].numpy(), rtol=1e-5)


def test_sam_pixels_match_sam_processor_within_one_grey_level(ckpts, frame):
    seg = create_segmenter("sam", model=ckpts["sam"], device="cpu")
    seg.input_size = 1024  # compare at SAM's real input size
    proc = transformers.SamImageProcessorPil()
    ref = proc(frame.color, return_tensors="pt")["pixel_values"]
    ours, _ = seg.preprocess(frame.color)
    one_level = (1 / 255) / min(seg.norm.std)
    assert ours.shape == ref.shape
    assert float((ours - ref).abs().max()) <= one_level * 1.01
    assert float((ours - ref).abs().mean()) < 0.25 * one_level  # rounding differences only


# --- wrapper vs the model called directly -----------------------------------------------------------------
def test_sam_predict_equals_direct_model_call(sam, frame):
    sam.set_frame(frame)
    prompt = Prompt(points_uv=[[50, 30], [10, 60]], point_labels=[1, 0])
    ms = sam.predict(prompt)
    geom = sam.geometry
    with torch.no_grad():
        pixels, _ = sam.preprocess(frame.color)
        out = sam.model(pixel_values=pixels, input_points=torch.tensor(geom.to_input_uv(prompt.points_uv))[None, None],
                        input_labels=torch.tensor([[[1, 0]]]))
    proc = transformers.SamImageProcessorPil(pad_size={"height": hf_tiny.IMAGE_SIZE, "width": hf_tiny.IMAGE_SIZE})
    ref = proc.post_process_masks(out.pred_masks, [[frame.height, frame.width]], [list(geom.resized_hw)],
                                  binarize=False)[0][0].numpy()  # (3, H, W)
    order = ms.details["multimask_index"]
    np.testing.assert_allclose(ms.logits, ref[order], atol=1e-4)
    np.testing.assert_allclose(ms.details["predicted_iou"], out.iou_scores[0, 0].numpy()[order], atol=1e-6)
    assert np.array_equal(ms.masks, ref[order] > 0)
    assert np.all(np.diff(ms.areas) >= 0) and ms.granularity == ("part", "whole", "group")


def test_sam2_predict_equals_direct_model_call(sam2, frame):
    sam2.set_frame(frame)
    prompt = Prompt(points_uv=[[40, 30]], box_xyxy=[30, 20, 70, 50])
    ms = sam2.predict(prompt)
    geom = sam2.geometry
    with torch.no_grad():
        pixels, _ = sam2.preprocess(frame.color)
        out = sam2.model(pixel_values=pixels, input_points=torch.tensor(geom.to_input_uv(prompt.points_uv))[None, None],
                         input_labels=torch.tensor([[[1]]]), input_boxes=torch.tensor(geom.to_input_box(prompt.box_xyxy))[None, None])
    ref = torch.nn.functional.interpolate(out.pred_masks[0], (frame.height, frame.width), mode="bilinear",
                                          align_corners=False)[0].numpy()
    order = ms.details["multimask_index"]
    np.testing.assert_allclose(ms.logits, ref[order], atol=1e-4)
    np.testing.assert_allclose(ms.scores, np.clip(out.iou_scores[0, 0].numpy()[order], 0, 1), atol=1e-6)
    assert 0.0 <= ms.details["object_score"][0] <= 1.0


def test_sam_hq_and_sam2_video_checkpoints_load(ckpts, frame, tmp_path):
    hq = create_segmenter("sam", model=ckpts["sam_hq"], device="cpu")
    hq.set_frame(frame)
    ms = hq.predict(Prompt.from_box(30, 20, 70, 50))
    assert hq.model_type == "sam_hq" and ms.masks.shape == (3, frame.height, frame.width)
    video = hf_tiny.save_checkpoint("Sam2VideoModel", hf_tiny.sam2_video_config(), tmp_path / "v")
    seg = create_segmenter("sam2", model=video, device="cpu")
    seg.set_frame(frame)
    assert seg.model_type == "sam2_video" and len(seg.predict(Prompt.from_point(50, 30))) == 3


# --- embedding reuse, batching, mask feedback -------------------------------------------------------------
def test_encoder_runs_once_per_frame(ckpts, frame, monkeypatch):
    seg = create_segmenter("sam2", model=ckpts["sam2"], device="cpu")
    calls = []
    real = seg.model.get_image_embeddings
    monkeypatch.setattr(seg.model, "get_image_embeddings", lambda px, **kw: calls.append(1) or real(px, **kw))
    seg.set_frame(frame)
    for u in (20, 40, 60):
        seg.predict(Prompt.from_point(u, 30))
    seg.predict_batch([Prompt.from_point(10, 10), Prompt.from_box(5, 5, 40, 40)])
    seg.set_frame(frame)  # same frame object: cached
    assert len(calls) == 1
    seg.set_frame(hf_tiny.synthetic_frame(seed=1))
    assert len(calls) == 2


def test_batched_prompts_equal_single_calls(sam2, frame):
    sam2.set_frame(frame)
    prompts = [Prompt.from_point(50, 30), Prompt.from_point(10, 60), Prompt.from_box(30, 20, 70, 50),
               Prompt(points_uv=[[50, 30], [5, 5]], point_labels=[1, 0]), Prompt(mask=frame.depth_m < 0.55)]
    batched = sam2.predict_batch(prompts)
    for p, b in zip(prompts, batched, strict=True):
        single = sam2.predict(p)
        np.testing.assert_allclose(b.logits, single.logits, atol=1e-4)
        np.testing.assert_allclose(b.scores, single.scores, atol=1e-5)
        assert b.prompt is p


def test_returned_mask_fed_back_uses_its_own_low_res_logits(sam, frame, monkeypatch):
    sam.set_frame(frame)
    first = sam.predict(Prompt.from_point(50, 30))
    seen = {}
    real = sam.decode
    monkeypatch.setattr(sam, "decode", lambda **kw: seen.update(kw) or real(**kw))
    sam.predict(Prompt(points_uv=[[50, 30], [5, 5]], point_labels=[1, 0], mask=first.masks[2]))
    np.testing.assert_array_equal(seen["input_masks"][0, 0].numpy(), first.details["low_res_logits"][2])
    # A foreign mask becomes ±mask_prompt_logit in the letterboxed low-res frame (padding = outside).
    sam.predict(Prompt(mask=frame.depth_m < 0.55))
    m = seen["input_masks"][0, 0].numpy()
    assert m.max() <= sam.mask_prompt_logit + 1e-4 and m.min() >= -sam.mask_prompt_logit - 1e-4
    rh, rw = sam.geometry.resized_hw
    lh = round(rh * sam.mask_input_size / sam.input_size)
    assert np.all(m[lh:] == -sam.mask_prompt_logit) and m[:lh].max() > 0


def test_multimask_auto_gives_one_mask_for_unambiguous_prompts(ckpts, frame):
    seg = create_segmenter("sam", model=ckpts["sam"], device="cpu", multimask="auto")
    seg.set_frame(frame)
    assert len(seg.predict(Prompt.from_point(50, 30))) == 3
    two = seg.predict(Prompt(points_uv=[[50, 30], [40, 25]]))
    assert len(two) == 1 and two.granularity == ("whole",)


def test_stability_score_counts_logits_in_the_shift_band():
    logits = np.array([[[-2.0, -0.5, 0.5, 2.0]]])  # > +1: 1 px, > -1: 3 px
    np.testing.assert_allclose(stability_scores(logits), [1 / 3])
    np.testing.assert_allclose(stability_scores(torch.tensor(logits)).numpy(), [1 / 3])
    assert stability_scores(np.full((1, 2, 2), -5.0))[0] == 1.0


# --- segment everything -----------------------------------------------------------------------------------
def test_box_nms_drops_overlaps_and_keeps_best():
    boxes = np.array([[0, 0, 9, 9], [1, 1, 10, 10], [20, 20, 29, 29], [0, 0, 9, 8]])
    scores = np.array([0.5, 0.9, 0.7, 0.4])
    kept = box_nms(boxes, scores, 0.5)
    assert kept.tolist() == [1, 2]
    masks = np.zeros((2, 8, 8), bool)
    masks[0, 2:5, 3:7] = True
    assert mask_boxes(masks).tolist() == [[3, 2, 6, 4], [0, 0, 0, 0]]
    assert point_grid(96, 72, 4).shape == (16, 2)


def test_segment_all_filters_and_suppresses(sam2, frame):
    everything = sam2.segment_all(frame, points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                                  min_area_frac=0.0, box_nms_thresh=0.5)
    assert 0 < len(everything) <= 48 and everything.masks.shape[1:] == (frame.height, frame.width)
    from graspseg.segment.backends.automask import box_iou_matrix
    iou = box_iou_matrix(everything.details["box_xyxy"])
    np.fill_diagonal(iou, 0)
    assert iou.max() <= 0.5 + 1e-9
    assert np.all(np.diff(everything.scores) <= 1e-6)  # best first
    none = sam2.segment_all(points_per_side=4, pred_iou_thresh=1.01)
    assert len(none) == 0 and none.masks.shape == (0, frame.height, frame.width)


# --- bad inputs -------------------------------------------------------------------------------------------
def test_missing_and_partial_checkpoints_are_refused(ckpts, tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        create_segmenter("sam", model=tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no config.json"):
        create_segmenter("sam", model=empty)
    cfg_only = tmp_path / "cfg_only"
    cfg_only.mkdir()
    (cfg_only / "config.json").write_text((ckpts["sam"] / "config.json").read_text())
    with pytest.raises(ConfigError, match="no model.safetensors"):
        create_segmenter("sam", model=cfg_only)
    (cfg_only / "pytorch_model.bin").write_bytes(b"not unpickled")
    with pytest.raises(ConfigError, match="never unpickles"):
        create_segmenter("sam", model=cfg_only)
    from safetensors.torch import load_file, save_file
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text((ckpts["sam"] / "config.json").read_text())
    state = load_file(ckpts["sam"] / "model.safetensors")
    save_file({k: v for k, v in state.items() if "mask_decoder" not in k}, partial / "model.safetensors",
              metadata={"format": "pt"})
    with pytest.raises(ConfigError, match="partial"):
        create_segmenter("sam", model=partial)


def test_config_of_another_model_type_names_the_right_backend(ckpts, tmp_path):
    with pytest.raises(ConfigError, match="'sam2' model but backend 'sam'.*use backend 'sam2'"):
        create_segmenter("sam", model=ckpts["sam2"])
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (other / "model.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError, match="'bert' model but backend 'sam2'"):
        create_segmenter("sam2", model=other)


def test_repo_id_not_in_cache_is_not_downloaded(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ConfigError, match="not in the Hugging Face cache.*HF_HUB_OFFLINE.*hf download facebook/sam2.1-hiera-tiny"):
        create_segmenter("sam2", model="facebook/sam2.1-hiera-tiny", allow_download=True)


def test_text_prompt_and_bad_prompts_are_refused(sam, frame):
    sam.set_frame(frame)
    with pytest.raises(PromptError, match="backend 'sam' does not accept text prompts.*'grounded'"):
        sam.predict(Prompt(text="red mug"))
    with pytest.raises(PromptError, match="outside the 96x72 image"):
        sam.predict(Prompt.from_point(200, 10))
    with pytest.raises(PromptError, match="takes a graspseg Prompt"):
        sam.predict({"points": [[1, 2]]})


def test_predict_before_set_frame(ckpts):
    seg = create_segmenter("sam", model=ckpts["sam"], device="cpu")
    with pytest.raises(SegmentationError, match="call set_frame"):
        seg.predict(Prompt.from_point(1, 1))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on machines without CUDA")
def test_cuda_without_gpu_and_bad_dtype(ckpts):
    with pytest.raises(DeviceNotConnectedError, match="no CUDA GPU.*device='cpu'"):
        create_segmenter("sam", model=ckpts["sam"], device="cuda")
    with pytest.raises(ConfigError, match="'fp16' is not supported on the CPU"):
        resolve_dtype("fp16", resolve_device("cpu"))
    with pytest.raises(ConfigError, match="unknown dtype 'int8'"):
        resolve_dtype("int8", resolve_device("cpu"))
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    with pytest.raises(ConfigError, match="multimask must be"):
        create_segmenter("sam", model=ckpts["sam"], device="cpu", multimask="sometimes")
    assert resolve_device("auto").type in ("cpu", "mps")


def test_bf16_runs_on_cpu(ckpts, frame):
    seg = create_segmenter("sam2", model=ckpts["sam2"], device="cpu", dtype="bf16")
    seg.set_frame(frame)
    ms = seg.predict(Prompt.from_point(50, 30))
    assert seg.model.dtype == torch.bfloat16 and ms.logits.dtype == np.float32 and len(ms) == 3


def test_the_plugin_s_perceive_many_runs_the_image_encoder_once(sam, monkeypatch):
    """Counted at the model (``get_image_embeddings``): one encoding per frame, however many prompts."""
    from graspseg.core import BASE, TCP, Transform
    from graspseg.plugin import GraspPerception

    frame = hf_tiny.synthetic_frame(seed=2)  # images the module's segmenter has not seen
    calls = []
    real = sam.model.get_image_embeddings
    monkeypatch.setattr(sam.model, "get_image_embeddings", lambda px, **kw: calls.append(1) or real(px, **kw))
    perception = GraspPerception(segmenter=sam)
    box = np.zeros((frame.height, frame.width), bool)
    box[20:50, 30:70] = True  # random weights segment nothing useful: this mask drives the later stages
    prompts = [Prompt.from_point(50, 35), Prompt.from_point(40, 30), Prompt.from_box(30, 20, 70, 50)]
    results = perception.perceive_many(frame, prompts, mask_override=box)
    assert len(calls) == 1 and [len(r.mask_set) > 0 for r in results] == [True] * 3
    pose = Transform.from_xyz_quat_xyzw([0.5, 0.0, 0.6], [1.0, 0.0, 0.0, 0.0], BASE, TCP)
    perception.perceive(frame, prompts[0], mask_override=box, base_from_tcp=pose)  # the same images
    assert len(calls) == 1
    perception.perceive(hf_tiny.synthetic_frame(seed=1), prompts[0], mask_override=box)  # new images
    assert len(calls) == 2
