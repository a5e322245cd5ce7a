"""Fine-tuning SAM on a tiny randomly initialised config of the real transformers class (graspseg finetune).

A functional check, not a quality result: coloured discs and squares on a textured background, 64 px
images, a ~100 k-parameter SAM, a few dozen optimiser steps.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from graspseg.cli import main  # noqa: E402
from graspseg.core import CameraIntrinsics, RGBDFrame  # noqa: E402
from graspseg.core.errors import ConfigError, InputError, MissingDependencyError  # noqa: E402
from graspseg.eval import Instance, Sample  # noqa: E402
from graspseg.eval.finetune import (  # noqa: E402
    FinetuneConfig,
    _instances,
    _read_images,
    _target_low_res,
    check_base_checkpoint,
    finetune,
    jitter_box,
    mask_box_xyxy,
    split_by_image,
    validation_miou,
)
from graspseg.segment import Prompt, create_segmenter  # noqa: E402
from graspseg.segment.backends import hf_testing as hf_tiny  # noqa: E402
from graspseg.segment.backends.sam import (  # noqa: E402
    BOUNDARY_CALIBRATION_FILE,
    InputGeometry,
    calibrated_error_px,
    read_boundary_calibration,
)
from graspseg.segment.uncertainty import boundary_error_details  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread (on a shared 2-core machine two threads contend: 30x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def synthetic_samples(n: int, seed: int = 0) -> list[Sample]:
    """``n`` images (64x64, every third 64x48) with 1-2 non-overlapping bright discs or squares each."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = (48, 64) if i % 3 == 2 else (64, 64)
        yy, xx = np.mgrid[:h, :w]
        color = rng.integers(30, 80, (h, w, 3), dtype=np.uint8)
        depth = np.full((h, w), 0.6, np.float32)
        masks: list[np.ndarray] = []
        for _ in range(int(rng.integers(1, 3))):
            for _ in range(20):
                r = rng.uniform(6, 12)
                cx, cy = rng.uniform(r + 1, w - r - 1), rng.uniform(r + 1, h - r - 1)
                if rng.random() < 0.5:
                    m = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
                else:
                    m = (np.abs(xx - cx) <= r) & (np.abs(yy - cy) <= r * rng.uniform(0.6, 1.0))
                if not any((m & o).any() for o in masks):
                    break
            masks.append(m)
            color[m] = rng.integers(150, 255, 3)
            depth[m] = 0.5
        k = CameraIntrinsics(w, h, 60.0, 60.0, w / 2, h / 2)
        insts = tuple(Instance(m, "disc_or_square", j + 1) for j, m in enumerate(masks))
        out.append(Sample(RGBDFrame(color, depth, k, frame_id=f"img{i:03d}"), insts, f"img{i:03d}", "synthetic"))
    return out


def tiny_config(**kw) -> FinetuneConfig:
    return FinetuneConfig(**{"epochs": 2, "lr": 3e-3, "batch_size": 8, "patience": 0, "device": "cpu",
                             "eval_clicks": 3, **kw})


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    # transformers initialises SamVisionConfig with initializer_range=1e-10, so the tiny random encoder's
    # embeddings are ~1e-21 and carry no image; 0.02 gives a random but informative encoder (a pretrained
    # SAM's embeddings are informative too).
    config = hf_tiny.sam_config()
    config.vision_config.initializer_range = 0.02
    return hf_tiny.save_checkpoint("SamModel", config, tmp_path_factory.mktemp("base") / "sam")


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    return synthetic_samples(24)


@pytest.fixture(scope="module")
def run(base, samples, tmp_path_factory):
    out = tmp_path_factory.mktemp("tuned") / "ckpt"
    result = finetune(samples, base, out, tiny_config(epochs=8, patience=8), data="synthetic")
    return result


def held_out_miou(result, samples, seg) -> float:
    """The held-out 1-click mIoU (top-scored) of ``seg``, re-encoding every image through the backend."""
    names = set(result.report["dataset"]["validation"]["names"])
    images = _read_images(samples, 16)
    items = [it for it in _instances(images) if images[it[0]].name in names]

    def embed(i):
        seg.set_frame(samples[i].frame)
        return seg.image_embeddings

    return validation_miou(seg, samples, images, items, embed)["miou_1click_top"]


# --------------------------------------------------------------------------------------------------
# Training works and the result is a normal checkpoint
# --------------------------------------------------------------------------------------------------
def test_loss_goes_down_and_validation_iou_goes_up(run):
    curve = run.report["training"]["curve"]
    assert [c["epoch"] for c in curve] == list(range(9))
    losses = [c["train_loss"] for c in curve[1:]]
    assert np.mean(losses[-3:]) < 0.8 * losses[0]
    before, after = run.before["mean_iou_1click_top"], run.after["mean_iou_1click_top"]
    assert after > before + 0.25, (before, after)
    assert run.after["mean_boundary_f_davis"] > run.before["mean_boundary_f_davis"] + 0.2
    bound = run.report["evaluation"]["boundary_error"]
    assert bound["after"]["distribution_all"]["abs_median_px"] < bound["before"]["distribution_all"]["abs_median_px"]
    assert run.report["training"]["best_epoch"] > 0
    # the per-epoch validation is the evaluation's top-scored 1-click mIoU (one protocol, one click)
    assert curve[0]["val_miou_1click"] == pytest.approx(before, abs=1e-4)
    assert curve[run.report["training"]["best_epoch"]]["val_miou_1click"] == pytest.approx(after, abs=1e-4)
    assert len(run.step_losses) == run.report["training"]["steps"] == 8 * math.ceil(
        run.report["dataset"]["train"]["instances"] / 8)


def test_saved_checkpoint_loads_through_the_sam_backend_and_reproduces_the_report(run, samples):
    out = run.out_dir
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "finetune_report.json",
                 BOUNDARY_CALIBRATION_FILE):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.bin"))
    seg = create_segmenter("sam", model=out, device="cpu")
    frame = samples[0].frame
    seg.set_frame(frame)
    ms = seg.predict(Prompt.from_point(32, 32))
    assert ms.masks.shape == (3, frame.height, frame.width)

    assert held_out_miou(run, samples, seg) == pytest.approx(run.after["mean_iou_1click_top"], abs=1e-4)


def test_report_has_before_after_table_split_and_curve(run, samples):
    doc = json.loads((run.out_dir / "finetune_report.json").read_text())
    assert doc["schema_version"] == 1 and doc["units"]["distance"] == "px"
    table = doc["evaluation"]["table"]
    for side in ("before", "after"):
        row = table[side]
        assert set(row) == {"miou_1click_top", "miou_1click_best_of_3", "miou_1click_whole", "miou_box",
                            "boundary_f_davis", "boundary_f_2px", "boundary_iou", "noc85", "noc90", "failures90",
                            "boundary_error_median_px", "boundary_error_p90_px"}
        assert 0 <= row["miou_1click_top"] <= row["miou_1click_best_of_3"] <= 1
        assert 0 <= row["miou_1click_whole"] <= row["miou_1click_best_of_3"] and 0 <= row["miou_box"] <= 1
        assert 1 <= row["noc85"] <= row["noc90"] <= 3
    # the untrained base finds no object at IoU >= 0.5 with one click: it has no boundary error to speak of
    assert table["before"]["boundary_error_p90_px"] is None
    assert 0 <= table["after"]["boundary_error_median_px"] <= table["after"]["boundary_error_p90_px"]
    assert table["change"]["miou_1click_top"] == pytest.approx(
        table["after"]["miou_1click_top"] - table["before"]["miou_1click_top"])
    ds = doc["dataset"]
    assert ds["train"]["images"] + ds["validation"]["images"] == ds["images_with_instances"] == 24
    assert ds["validation"]["images"] == round(24 * 0.2)
    assert doc["embeddings"]["cached"] is True and doc["embeddings"]["computed"] == 24
    assert doc["trained"]["modules"] == ["mask_decoder", "prompt_encoder"]
    assert 0 < doc["trained"]["parameters"] < doc["trained"]["model_parameters"]
    assert len(doc["evaluation"]["per_object"]["after"]) == doc["evaluation"]["after"]["objects"] == \
        ds["validation"]["instances"]


def test_measured_boundary_error_is_written_and_drives_the_segmenters_estimate(run):
    calib = json.loads((run.out_dir / BOUNDARY_CALIBRATION_FILE).read_text())
    after = run.report["evaluation"]["boundary_error"]["after"]
    p90 = after["boundary_error_px"]
    # the measurement `graspseg eval boundary-error` makes (p90 of |rim offset| of the 1-click masks)
    assert calib["p90_px"] == p90 == after["distribution"]["abs_p90_px"] and calib["statistic"] == "abs_p90_px"
    assert calib["reference_long_side_px"] == 64 and calib["distribution"] == after["distribution"]
    assert calib["median_px"] <= calib["p90_px"]
    seg = create_segmenter("sam", model=run.out_dir, device="cpu")
    frame = hf_tiny.synthetic_frame(72, 96)  # a larger frame: the error in pixels scales with it
    seg.set_frame(frame)
    ms = seg.predict(Prompt.from_point(50, 35))
    want = p90 * 96 / 64
    assert ms.details["calibrated_boundary_error_px"] == pytest.approx(want)
    det = boundary_error_details(ms)
    assert det["source"] == "calibrated"
    assert det["boundary_error_px"] == pytest.approx(min(max(want, 1.0), 20.0))
    assert det["calibrated_px"] == pytest.approx(want)


def test_the_pipeline_margins_use_the_measured_error(run):
    from graspseg.pipeline import Pipeline, PipelineConfig

    cfg = PipelineConfig.from_dict({"segment": {"backend": "sam",
                                                "options": {"model": str(run.out_dir), "device": "cpu"}}})
    frame = hf_tiny.synthetic_frame(72, 96)
    box = np.zeros((72, 96), bool)
    box[20:50, 30:70] = True  # the frame's box, so the cloud and grasps do not depend on the tiny model's mask
    res = Pipeline(cfg).perceive(frame, Prompt.from_point(50, 35), mask_override=box)
    assert res.boundary_error_source == "segmenter (calibrated)"
    want = run.report["boundary_error_written"]["p90_px"] * 96 / 64
    assert res.boundary_error_px == pytest.approx(min(max(want, 1.0), 20.0))


def test_a_base_without_measurement_keeps_the_soft_mask_estimate(base):
    seg = create_segmenter("sam", model=base, device="cpu")
    assert seg.boundary_calibration is None
    seg.set_frame(hf_tiny.synthetic_frame())
    ms = seg.predict(Prompt.from_point(50, 35))
    assert "calibrated_boundary_error_px" not in ms.details
    assert boundary_error_details(ms)["source"] in ("band", "disagreement", "floor")


def test_calibration_file_scaling_and_bad_files(tmp_path):
    assert read_boundary_calibration(tmp_path) is None
    (tmp_path / BOUNDARY_CALIBRATION_FILE).write_text(json.dumps({"p90_px": 3.0, "reference_long_side_px": 640}))
    cal = read_boundary_calibration(tmp_path)
    assert calibrated_error_px(cal, 720, 1280) == pytest.approx(6.0)
    (tmp_path / BOUNDARY_CALIBRATION_FILE).write_text(json.dumps({"p90": 3.0}))
    with pytest.raises(ConfigError, match="needs numbers p90_px and reference_long_side_px"):
        read_boundary_calibration(tmp_path)
    (tmp_path / BOUNDARY_CALIBRATION_FILE).write_text(json.dumps({"p90_px": -1, "reference_long_side_px": 640}))
    with pytest.raises(ConfigError, match=r"p90_px=-1.0 must be >= 0"):
        read_boundary_calibration(tmp_path)


def test_seeded_runs_are_identical_and_the_disk_cache_is_reused(base, tmp_path):
    data = synthetic_samples(10, seed=3)
    cache = tmp_path / "cache"
    a = finetune(data, base, tmp_path / "a", tiny_config(seed=5), embedding_cache=cache)
    files = sorted(cache.glob("*.safetensors"))
    assert len(files) == 10 and a.report["embeddings"]["computed"] == 10
    b = finetune(data, base, tmp_path / "b", tiny_config(seed=5), embedding_cache=cache)
    assert b.report["embeddings"]["reused_from_disk"] == 10 and b.report["embeddings"]["computed"] == 0
    assert a.step_losses == b.step_losses
    assert a.after["mean_iou_1click_top"] == b.after["mean_iou_1click_top"]
    c = finetune(data, base, tmp_path / "c", tiny_config(seed=6))
    assert c.report["dataset"]["validation"]["names"] != a.report["dataset"]["validation"]["names"] or \
        c.step_losses != a.step_losses


def test_early_stopping_keeps_the_best_weights(base, tmp_path):
    data = synthetic_samples(10, seed=1)
    r = finetune(data, base, tmp_path / "o", tiny_config(epochs=6, patience=1, lr=1e-7))  # lr too small to help
    tr = r.report["training"]
    assert tr["stopped_early"] and tr["epochs_run"] == 1 and tr["best_epoch"] == 0
    assert tr["kept"].startswith("base weights")
    assert r.after["mean_iou_1click_top"] == pytest.approx(r.before["mean_iou_1click_top"], abs=1e-6)


@pytest.mark.parametrize("cls, config, model_type, backend", [
    ("Sam2Model", hf_tiny.sam2_config, "sam2", "sam2"),
    ("SamHQModel", lambda: hf_tiny.sam_config(hq=True), "sam_hq", "sam"),
])
def test_sam2_and_sam_hq_checkpoints_take_the_same_path(tmp_path, cls, config, model_type, backend):
    base = hf_tiny.save_checkpoint(cls, config(), tmp_path / "base")
    data = synthetic_samples(6, seed=2)
    r = finetune(data, base, tmp_path / "out", tiny_config(epochs=1, max_clicks=2))
    assert r.report["model_type"] == model_type and r.report["backend"] == backend
    seg = create_segmenter(backend, model=tmp_path / "out", device="cpu")
    assert seg.model_type == model_type
    seg.set_frame(data[0].frame)
    assert seg.predict(Prompt.from_point(30, 30)).masks.shape == (3, 64, 64)
    # one epoch rarely finds an object at IoU >= 0.5: the measurement is written only when there is one
    assert (seg.boundary_calibration is None) == (r.report["boundary_error_written"] is None)


# --------------------------------------------------------------------------------------------------
# LoRA (peft, extra 'finetune')
# --------------------------------------------------------------------------------------------------
@pytest.mark.skipif(importlib.util.find_spec("peft") is not None, reason="peft is installed")
def test_lora_without_peft_names_the_extra(base, samples, tmp_path):
    with pytest.raises(MissingDependencyError, match=r"'peft' is not installed .*LoRA.*graspseg\[finetune\]"):
        finetune(samples, base, tmp_path / "o", tiny_config(lora_rank=4))


def test_lora_trains_the_encoder_and_is_merged_into_a_plain_checkpoint(base, tmp_path):
    pytest.importorskip("peft")
    from safetensors import safe_open

    data = synthetic_samples(8, seed=4)
    r = finetune(data, base, tmp_path / "o", tiny_config(lora_rank=2))
    assert r.report["trained"]["lora_parameters"] > 0 and r.report["trained"]["lora_merged_layers"] == 2
    assert r.report["embeddings"]["cached"] is False
    with safe_open(str(tmp_path / "o" / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert not [k for k in keys if "lora" in k or "base_layer" in k]
    seg = create_segmenter("sam", model=tmp_path / "o", device="cpu")
    assert held_out_miou(r, data, seg) == pytest.approx(r.after["mean_iou_1click_top"], abs=1e-4)


# --------------------------------------------------------------------------------------------------
# Bad input: typed errors that say what to do
# --------------------------------------------------------------------------------------------------
def test_base_checkpoint_errors(base, tmp_path):
    with pytest.raises(ConfigError, match="is not a directory"):
        check_base_checkpoint(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="has no config.json"):
        check_base_checkpoint(empty)
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((base / "config.json").read_text())
    with pytest.raises(ConfigError, match="no model.safetensors"):
        check_base_checkpoint(no_weights)
    (no_weights / "pytorch_model.bin").write_bytes(b"\x80\x02")
    with pytest.raises(ConfigError, match="only pickled weights"):
        check_base_checkpoint(no_weights)
    other = tmp_path / "owl"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "owlv2"}))
    (other / "model.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"'owlv2' model; graspseg finetune tunes SAM-family .*sam, sam_hq, sam2"):
        check_base_checkpoint(other)


def test_data_errors(base, samples, tmp_path):
    tiny = [Sample(s.frame, tuple(Instance(np.eye(64, dtype=bool)[:s.frame.height], "line", 1) for _ in range(1)),
                   s.name) for s in samples[:3]]  # 48-64 px: under min_instance_area_px=100
    with pytest.raises(InputError, match=r"no instances to train on: 3 image\(s\), none with an instance of >= 100"):
        finetune(tiny, base, tmp_path / "o", tiny_config(min_instance_area_px=100))
    with pytest.raises(InputError, match=r"1 usable image\(s\); a training and a validation split need at least 2"):
        finetune(samples[:1], base, tmp_path / "o", tiny_config())
    with pytest.raises(InputError, match="sample 1 is named 'img000', twice; fine-tuning needs unique sample names"):
        finetune([samples[0], samples[0]], base, tmp_path / "o", tiny_config())
    with pytest.raises(InputError, match="takes graspseg.eval Sample items .* got tuple at 0"):
        finetune([(samples[0].frame, samples[0].instances)], base, tmp_path / "o", tiny_config())
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("kw, match", [
    ({"val_fraction": 0.0}, r"val_fraction is 0.0; expected a fraction strictly between 0 and 1"),
    ({"val_fraction": 1.0}, r"val_fraction is 1.0; expected a fraction strictly between 0 and 1"),
    ({"val_fraction": 1.5}, r"strictly between 0 and 1"),
    ({"epochs": 0}, r"epochs is 0; expected an integer >= 1 \(flag --epochs\)"),
    ({"batch_size": 2.5}, r"batch_size is 2.5; expected an integer >= 1"),
    ({"lr": 0.0}, r"lr is 0.0; expected a number > 0"),
    ({"lora_rank": -1}, r"lora_rank is -1; expected an integer >= 0 \(flag --lora-rank\)"),
    ({"box_fraction": 1.5}, r"box_fraction is 1.5; expected a number >= 0 and <= 1"),
    ({"dice_weight": 0.0, "bce_weight": 0.0}, r"both 0"),
])
def test_config_errors(kw, match):
    with pytest.raises(ConfigError, match=match):
        FinetuneConfig(**kw)


# --------------------------------------------------------------------------------------------------
# Small parts
# --------------------------------------------------------------------------------------------------
def test_split_is_seeded_disjoint_and_by_image():
    tr, va = split_by_image(10, 0.2, seed=0)
    assert (tr, va) == split_by_image(10, 0.2, seed=0)
    assert len(va) == 2 and sorted(tr + va) == list(range(10))
    assert split_by_image(10, 0.2, seed=1) != (tr, va)
    assert split_by_image(2, 0.9, seed=0)[0]  # one image always left for training


def test_targets_live_in_the_models_mask_frame_without_letterbox_padding():
    mask = np.zeros((32, 64), bool)
    mask[:, :32] = True  # left half
    geom = InputGeometry(32, 64, 128, letterbox=True)  # resized to 64x128, padded below
    target, valid = _target_low_res(mask, geom, 32)
    assert valid[:16].all() and not valid[16:].any()
    assert target[:16, :16].min() == 1.0 and target[:16, 16:].max() == 0.0 and target[16:].max() == 0.0
    stretched, valid2 = _target_low_res(mask, InputGeometry(32, 64, 128, letterbox=False), 32)
    assert valid2.all() and stretched[:, :16].min() == 1.0


def test_box_jitter_stays_inside_the_image_and_non_empty():
    mask = np.zeros((20, 30), bool)
    mask[0:5, 25:30] = True
    box = mask_box_xyxy(mask)
    assert box.tolist() == [25, 0, 30, 5]
    rng = np.random.default_rng(0)
    for _ in range(200):
        b = jitter_box(box, 0.5, 30, 20, rng)
        assert 0 <= b[0] < b[2] <= 29 and 0 <= b[1] < b[3] <= 19
        Prompt(box_xyxy=b).validate_for(30, 20)


# --------------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def frame_folders(tmp_path_factory):
    from graspseg.capture.frame_folder import GroundTruthObject, save_frame_folder

    root = tmp_path_factory.mktemp("frames")
    for s in synthetic_samples(8, seed=7):
        objs = [GroundTruthObject(k + 1, f"obj{k}", inst.mask) for k, inst in enumerate(s.instances)]
        save_frame_folder(s.frame, root / s.name, objects=objs)
    return root


def test_cli_runs_end_to_end_and_reuses_cached_embeddings(frame_folders, base, tmp_path, capsys):
    out = tmp_path / "tuned"
    argv = ["finetune", "--data", str(frame_folders), "--base", str(base), "--out", str(out), "--epochs", "6", "--batch-size", "2",
            "--lr", "3e-3", "--device", "cpu", "--seed", "1", "--cache-embeddings"]
    assert main(argv) == 0
    cap = capsys.readouterr()
    summary = json.loads(cap.out)
    assert summary["dataset"]["images"] == 8 and summary["dataset"]["validation"]["images"] == 2
    assert set(summary["before"]) == set(summary["after"])
    assert summary["use_with"] == f"--backend sam --model {out}"
    assert "training  [" in cap.err and "1-click mIoU (top-scored)" in cap.err
    report = json.loads((out / "finetune_report.json").read_text())
    assert report["embeddings"]["on_disk"] == "embedding_cache" and report["embeddings"]["computed"] == 8
    assert len(list((out / "embedding_cache").glob("*.safetensors"))) == 8
    assert create_segmenter("sam", model=out, device="cpu").boundary_calibration is not None
    capsys.readouterr()
    assert main([*argv, "--quiet"]) == 0  # the same --out again: the cached embeddings are reused
    cap = capsys.readouterr()
    assert cap.err == ""
    assert json.loads((out / "finetune_report.json").read_text())["embeddings"]["reused_from_disk"] == 8


@pytest.mark.parametrize("extra, match", [
    (["--val-fraction", "1.5"], r"val_fraction is 1.5; expected a fraction strictly between 0 and 1"),
    (["--lora-rank", "-2"], r"lora_rank is -2"),
])
def test_cli_refuses_bad_settings(frame_folders, base, tmp_path, capsys, extra, match):
    rc = main(["finetune", "--data", str(frame_folders), "--base", str(base), "--out", str(tmp_path / "o"), *extra])
    assert rc == 2
    assert __import__("re").search(match, capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_cli_refuses_bad_data_and_base(frame_folders, base, tmp_path, capsys):
    (tmp_path / "nothing").mkdir()
    assert main(["finetune", "--data", str(tmp_path / "nothing"), "--base", str(base), "--out", str(tmp_path / "o")]) == 2
    assert "no frame folder (with camera.json)" in capsys.readouterr().err
    assert main(["finetune", "--data", str(frame_folders), "--base", str(base), "--out", str(base)]) == 2
    assert "is the base checkpoint" in capsys.readouterr().err
    assert main(["finetune", "--data", str(frame_folders), "--base", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "has no config.json" in capsys.readouterr().err
