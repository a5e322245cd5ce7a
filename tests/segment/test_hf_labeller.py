"""CLIP / SigLIP / SigLIP 2 mask labelling on tiny random checkpoints of the real transformers classes."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from graspseg.capture.frame_folder import save_frame_folder  # noqa: E402
from graspseg.cli import main  # noqa: E402
from graspseg.core.errors import ConfigError, MaskError, MissingDependencyError, PromptError  # noqa: E402
from graspseg.schemas import validate  # noqa: E402
from graspseg.segment import LABELLERS, Prompt, create_labeller, create_segmenter  # noqa: E402
from graspseg.segment.backends import hf_testing  # noqa: E402
from graspseg.segment.labelling import CropOptions, LabelledSegmenter, mask_crop  # noqa: E402

KINDS = [k if k != "siglip" else pytest.param(k, marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("sentencepiece") is None, reason="SigLIP's tokenizer needs sentencepiece"))
    for k in hf_testing.LABELLER_KINDS]
PROCESSORS = {"clip": ("CLIPProcessor", "CLIPImageProcessorPil", True),
              "siglip": ("SiglipProcessor", "SiglipImageProcessorPil", "max_length"),
              "siglip2": ("Siglip2Processor", "Siglip2ImageProcessorPil", "max_length")}


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("labellers")
    out = {}
    for k in hf_testing.LABELLER_KINDS:
        if k == "siglip" and __import__("importlib").util.find_spec("sentencepiece") is None:
            continue
        out[k] = hf_testing.save_labeller_checkpoint(k, root / k)
    return out


@pytest.fixture(scope="module")
def scene():
    frame = hf_testing.objects_frame()
    masks = np.zeros((3, frame.height, frame.width), bool)
    for i, ((y0, y1), (x0, x1), _) in enumerate(hf_testing.OBJECTS):
        masks[i, y0:y1, x0:x1] = True
    return frame, masks


@pytest.mark.parametrize("kind", KINDS)
def test_labeller_equals_the_model_called_through_its_processor(ckpts, scene, kind):
    """Pixels, tokens, embeddings and logits as transformers' own processor and model make them."""
    import torch
    import transformers as t

    frame, masks = scene
    lab = create_labeller(model=ckpts[kind], device="cpu", background="none")
    assert lab.model_type == kind and lab.scoring == ("softmax" if kind == "clip" else "sigmoid")
    proc_name, image_proc, padding = PROCESSORS[kind]
    processor = getattr(t, proc_name)(image_processor=getattr(t, image_proc).from_pretrained(ckpts[kind]),
                                      tokenizer=lab.tokenizer)
    crops = [mask_crop(frame.color, m, CropOptions(background="none"), fill=lab.fill)[0] for m in masks]
    phrases = ["red box", "blue mug"]
    texts = [f"a photo of a {p}." for p in phrases]
    extra = {"max_num_patches": lab.max_num_patches, "patch_size": lab.patch_size} if kind == "siglip2" else {}
    inputs = processor(text=texts, images=crops, padding=padding, max_length=lab.max_text_tokens, truncation=True,
                       return_tensors="pt", **extra)  # Siglip2Processor defaults to 256 patches of 16 px otherwise
    ours = lab.pixel_inputs(lab.crops(frame.color, masks)[0])
    for key, value in ours.items():
        np.testing.assert_allclose(value.float().numpy(), inputs[key].float().numpy(), atol=1e-5, err_msg=key)
    with torch.no_grad():
        ref = lab.model(**inputs).logits_per_image.numpy()
    logits = lab.logits(lab.embed_masks(frame.color, masks), lab.embed_phrases(phrases))
    np.testing.assert_allclose(logits, ref, atol=1e-4)
    labels = lab.label(frame.color, masks, phrases)
    assert labels.phrases == tuple(phrases) and labels.logits.shape == (3, 2)
    np.testing.assert_allclose(labels.logits, ref, atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_batching_equals_one_by_one(ckpts, scene, kind):
    frame, masks = scene
    lab = create_labeller(model=ckpts[kind], device="cpu", batch_size=2)
    batched = lab.embed_masks(frame.color, masks)
    single = np.concatenate([lab.embed_masks(frame.color, m[None]) for m in masks])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert lab.timings["masks"] == 1 and lab.timings["embed"] > 0


def test_text_embeddings_are_cached(ckpts, monkeypatch):
    lab = create_labeller(model=ckpts["clip"], device="cpu", text_cache_size=2)
    calls = []
    real = lab.model.get_text_features
    monkeypatch.setattr(lab.model, "get_text_features", lambda **kw: calls.append(len(kw["input_ids"])) or real(**kw))
    first = lab.embed_phrases(["red box", "blue mug"])
    again = lab.embed_phrases(["blue mug", "red box"])
    np.testing.assert_array_equal(first[::-1], again)
    assert calls == [2]
    lab.embed_phrases(["bowl", "red box"])  # one new phrase: one text forward pass for it alone
    assert calls == [2, 1] and len(lab._text_cache) == 2


def test_int8_quantisation_keeps_the_embeddings(ckpts, scene):
    frame, masks = scene
    fp32 = create_labeller(model=ckpts["clip"], device="cpu").embed_masks(frame.color, masks)
    int8 = create_labeller(model=ckpts["clip"], device="cpu", quantize="int8").embed_masks(frame.color, masks)
    assert (np.sum(fp32 * int8, axis=1) > 0.99).all()


def test_bad_inputs_and_checkpoints_are_named(ckpts, scene, tmp_path, monkeypatch):
    import shutil

    frame, masks = scene
    lab = create_labeller(model=ckpts["clip"], device="cpu")
    with pytest.raises(PromptError, match="no phrases given"):
        lab.label(frame.color, masks, "  ,")
    with pytest.raises(PromptError, match="phrases must be non-empty strings"):
        lab.embed_phrases([""])
    with pytest.raises(MaskError, match="mask 2 is empty"):
        lab.embed_masks(frame.color, np.concatenate([masks[:2], np.zeros_like(masks[:1])]))
    broken = tmp_path / "no_tokenizer"
    shutil.copytree(ckpts["clip"], broken)
    for f in ("tokenizer.json", "vocab.json", "merges.txt"):
        (broken / f).unlink(missing_ok=True)
    with pytest.raises(ConfigError, match="has no tokenizer files .*download the whole repository"):
        create_labeller(model=broken)
    sam = hf_testing.save_checkpoint("SamModel", hf_testing.sam_config(), tmp_path / "sam")
    with pytest.raises(ConfigError, match="is a 'sam' model but backend 'labeller' runs clip, siglip, siglip2"):
        create_labeller(model=sam)
    with pytest.raises(ConfigError, match="template is 'a photo'; it must contain"):
        create_labeller(model=ckpts["clip"], template="a photo")
    with pytest.raises(ConfigError, match="quantize='int8' runs on the CPU in fp32 only"):
        create_labeller(model=ckpts["clip"], device="cpu", dtype="bf16", quantize="int8")
    with pytest.raises(ConfigError, match="crop background is 'gray'"):
        create_labeller(model=ckpts["clip"], background="gray")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    with pytest.raises(ConfigError, match="not in the Hugging Face cache and downloading is off \\(HF_HUB_OFFLINE"):
        create_labeller(model="openai/clip-vit-base-patch32", allow_download=True)


def test_missing_sentencepiece_names_the_extra(ckpts, monkeypatch):
    import transformers

    def no_spm(*a, **k):
        raise ImportError("SiglipTokenizer requires the SentencePiece library but it was not found")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", no_spm)
    with pytest.raises(MissingDependencyError, match="'sentencepiece' is not installed .*graspseg\\[labels\\]"):
        create_labeller(model=ckpts["clip"])
    assert "clip" in LABELLERS.names()


def test_text_prompt_on_rgbd_through_a_real_labeller(ckpts):
    seg = create_segmenter("rgbd", labeller={"model": str(ckpts["siglip2"]), "device": "cpu", "min_margin": 0.5})
    assert isinstance(seg, LabelledSegmenter) and seg.min_margin == 0.5
    frame = hf_testing.objects_frame()
    seg.set_frame(frame)
    ms = seg.predict(Prompt(text="red mug"))
    instances = seg.segment_all()
    lab = seg.labeller
    logits = lab.logits(lab.embed_masks(frame.color, instances.masks), lab.embed_phrases(["red mug"]))[:, 0]
    match = ms.details["text_match"]
    assert match["best_index"] == int(np.argmax(logits))
    assert match["margin"] == pytest.approx(float(np.sort(logits)[-1] - np.sort(logits)[-2]), abs=1e-3)
    assert match["phrase_probability"] == pytest.approx(1 / (1 + np.exp(-logits.max())), abs=1e-5)  # SigLIP: sigmoid
    chosen = instances.masks[match["best_index"]]
    assert any((m & chosen).sum() / (m | chosen).sum() >= 0.5 for m in ms.masks)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def frame_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("labelled_frame") / "frame"
    save_frame_folder(hf_testing.objects_frame(), d)
    return d


def test_label_command_writes_overlay_crops_and_json(ckpts, frame_dir, tmp_path, capsys):
    from graspseg.capture.images import read_color, read_mask

    out = tmp_path / "label"
    rc = main(["label", "--frame", str(frame_dir), "--phrases", "red box, blue box,mug", "--checkpoint",
               str(ckpts["clip"]), "--device", "cpu", "--background", "mask", "--out", str(out)])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    doc = json.loads((out / "labels.json").read_text())
    assert doc["phrases"] == ["red box", "blue box", "mug"] and doc["labeller"]["crop"]["background"] == "mask"
    assert len(doc["objects"]) == len(summary["objects"]) == 3
    seg = create_segmenter("rgbd", labeller={"model": str(ckpts["clip"]), "device": "cpu", "background": "mask"})
    instances, labels = seg.label("red box, blue box,mug", frame=__import__("graspseg.capture", fromlist=["x"])
                                  .load_frame_folder(frame_dir))
    for k, obj in enumerate(doc["objects"]):
        np.testing.assert_array_equal(read_mask(out / obj["mask"]), instances.masks[k])
        assert obj["label"] == labels.labels[k] and obj["probability"] == pytest.approx(labels.probabilities[k].max())
    assert read_color(out / "overlay.png").shape == (120, 160, 3)
    assert read_color(out / "crops.png").shape[0] >= 112


def test_label_command_errors(ckpts, frame_dir, tmp_path, capsys):
    assert main(["label", "--frame", str(frame_dir), "--phrases", "mug", "--out", str(tmp_path / "a")]) == 2
    assert "no labeller checkpoint: pass --checkpoint DIR" in capsys.readouterr().err
    assert main(["label", "--frame", str(frame_dir), "--phrases", " , ", "--checkpoint", str(ckpts["clip"]),
                 "--out", str(tmp_path / "b")]) == 2
    assert "no phrases given" in capsys.readouterr().err


def test_segment_and_perceive_take_text_on_rgbd_with_a_labeller(ckpts, frame_dir, tmp_path, capsys):
    out = tmp_path / "seg"
    rc = main(["segment", "--frame", str(frame_dir), "--text", "blue box", "--labeller", str(ckpts["clip"]),
               "--granularity", "whole", "--out", str(out)])
    assert rc == 0
    doc = json.loads((out / "segment.json").read_text())
    assert doc["backend"] == "rgbd" and doc["text_match"]["phrase"] == "blue box"
    assert json.loads(capsys.readouterr().out)["text_match"] == doc["text_match"]
    out = tmp_path / "perceive"
    rc = main(["perceive", "--frame", str(frame_dir), "--text", "blue box", "--labeller", str(ckpts["clip"]),
               "--out", str(out)])
    assert rc in (0, 3)  # 3: ran and wrote everything, but no grasp passed on this tiny frame
    result = json.loads((out / "result.json").read_text())
    validate(result)
    assert result["prompt"] == {"text": "blue box"} and result["segmentation"]["text_match"] == doc["text_match"]
    ambiguous = doc["text_match"]["ambiguous"]
    assert any("is ambiguous" in n for n in result["notes"]) == ambiguous


def test_bench_times_labelling_per_mask(ckpts, frame_dir, capsys):
    rc = main(["bench", "latency", "--frame", str(frame_dir), "--labeller", str(ckpts["clip"]), "--labeller-repeat",
               "1", "--warmup", "0", "--quiet"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    entry = rep["labelling"]["labellers"][str(ckpts["clip"])]
    assert entry["masks"] == 3 and entry["model_type"] == "clip" and entry["per_mask_batched"]["n"] == 1
    assert entry["per_mask_batched"]["median_ms"] > 0 and entry["text_per_phrase_uncached"]["median_ms"] > 0
    assert entry["idle_estimate_per_mask_ms"] == pytest.approx(
        entry["cpu_per_mask_one_thread"]["min_ms"] / entry["torch_threads"], abs=1e-3)
    target = rep["targets"][-1]
    assert target["name"] == f"label per mask, batched [{ckpts['clip']}]" and target["limit"] == 30.0
    assert main(["bench", "latency", "--frame", str(frame_dir), "--labeller", "clip-b16"]) == 2
    assert "--labeller 'clip-b16' is neither a named config" in capsys.readouterr().err
    assert main(["bench", "latency", "--frame", str(frame_dir)]) == 2
    assert "give --point U,V" in capsys.readouterr().err
