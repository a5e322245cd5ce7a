"""The command line as a user runs it: outputs written, exit codes, one-line reasons on bad input."""

import json
import re
import shutil

import numpy as np
import pytest

from graspseg.capture.images import read_mask
from graspseg.cli import main
from graspseg.schemas import validate

MUG_POINT = "352,280"


@pytest.fixture(scope="module")
def segment_out(tmp_path_factory, sample_frame_dir):
    out = tmp_path_factory.mktemp("seg")
    rc = main(["segment", "--frame", str(sample_frame_dir), "--point", MUG_POINT, "--granularity", "whole",
               "--out", str(out)])
    assert rc == 0
    return out


def test_segment_writes_masks_overlay_and_json(segment_out, sample_frame_dir):
    doc = json.loads((segment_out / "segment.json").read_text())
    assert doc["schema_version"] == 1 and doc["backend"] == "rgbd"
    assert doc["prompt"]["points_uv"] == [[352.0, 280.0]]
    assert len(doc["candidates"]) == 3
    assert {c["granularity"] for c in doc["candidates"]} == {"part", "whole", "group"}
    sel = doc["candidates"][doc["selected_index"]]
    assert sel["granularity"] == "whole"
    mask = read_mask(segment_out / "mask.png")
    assert mask.sum() == sel["area_px"]
    assert mask[280, 352]  # the clicked pixel is inside
    for c in doc["candidates"]:
        assert (segment_out / c["mask"]).is_file()
    gt = read_mask(sample_frame_dir / "masks" / "1_red_mug.png")
    iou = (mask & gt).sum() / (mask | gt).sum()
    assert iou > 0.85
    assert set(doc["timings_ms"]) >= {"set_frame", "predict"}
    assert (segment_out / "overlay.png").stat().st_size > 10_000


def test_segment_all(tmp_path, sample_frame_dir):
    assert main(["segment-all", "--frame", str(sample_frame_dir), "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "segment_all.json").read_text())
    assert len(doc["objects"]) >= 1
    masks = [read_mask(tmp_path / o["mask"]) for o in doc["objects"]]
    assert any(m[280, 352] for m in masks)  # the mug is one of the objects
    # the table is reported as support, not as an object; support, background and objects do not overlap
    support = read_mask(tmp_path / doc["support"]["mask"])
    background = read_mask(tmp_path / doc["background"]["mask"])
    assert doc["support"]["area_px"] == support.sum() > 0.3 * support.size
    assert not support[280, 352]
    for m in masks:
        assert not (m & support).any() and not (m & background).any()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--point", "700,20"], r"point \(700, 20\) is outside the 640x480 image"),
        (["--box", "100,100,90,200"], "box .* is empty"),
        (["--text", "red mug"], "backend 'rgbd' does not accept text prompts"),
        ([], "no prompt"),
        (["--point", "10,10,5"], "label must be 1"),
        (["--point", "10,10", "--backend", "nope"], "no segmenter named 'nope'; available: .*rgbd"),
    ],
)
def test_bad_prompts_exit_2_with_one_line(capsys, tmp_path, sample_frame_dir, extra, message):
    rc = main(["segment", "--frame", str(sample_frame_dir), "--out", str(tmp_path), *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1
    assert re.search(message, err), err


def test_bad_frame_files_exit_2(capsys, tmp_path, sample_frame_dir):
    bad = tmp_path / "frame"
    shutil.copytree(sample_frame_dir, bad)
    (bad / "color.png").write_bytes(b"garbage")
    assert main(["segment", "--frame", str(bad), "--point", MUG_POINT, "--out", str(tmp_path / "o")]) == 2
    assert "not a readable PNG" in capsys.readouterr().err
    assert main(["segment", "--color", str(sample_frame_dir / "color.png"), "--depth", str(sample_frame_dir / "depth.png"),
                 "--depth-scale", "0", "--intrinsics", str(sample_frame_dir / "camera.json"), "--point", MUG_POINT,
                 "--out", str(tmp_path / "o")]) == 2
    assert "depth scale must be a positive" in capsys.readouterr().err


def test_all_zero_depth_in_prompt_region(capsys, tmp_path, sample_frame_dir):
    import cv2

    frame = tmp_path / "frame"
    shutil.copytree(sample_frame_dir, frame)
    depth = cv2.imread(str(frame / "depth.png"), cv2.IMREAD_ANYDEPTH)
    depth[:, :] = 0
    cv2.imwrite(str(frame / "depth.png"), depth)
    rc = main(["segment", "--frame", str(frame), "--point", MUG_POINT, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "depth" in err, err


@pytest.fixture(scope="module")
def perceive_out(tmp_path_factory, sample_frame_dir):
    out = tmp_path_factory.mktemp("perceive")
    assert main(["perceive", "--frame", str(sample_frame_dir), "--point", MUG_POINT, "--out", str(out)]) == 0
    return out


def test_perceive_outputs(perceive_out):
    doc = json.loads((perceive_out / "result.json").read_text())
    validate(doc, "perception_result")
    assert doc["schema"] == "graspseg.perception_result" and doc["schema_version"] == 2
    assert doc["units"]["length"] == "m" and "grasp" in doc["frames"]
    assert doc["boundary_error"]["px"] > 0
    g = doc["grasps"]
    assert "rejected_counts" in g
    n_acc = sum(x["accepted"] for x in g["grasps"])
    assert n_acc > 0 or g["suggestion"], "an empty result must explain itself"
    for name in ("overlay.png", "cloud.png"):
        assert (perceive_out / name).stat().st_size > 5_000
    assert read_mask(perceive_out / "mask.png").sum() == doc["segmentation"]["mask_area_px"]
    assert set(doc["timings_ms"]) >= {"segment.predict", "cloud", "shape", "grasp", "total"}


def test_perceive_with_rig_and_pose_gives_base_frame(tmp_path, sample_frame_dir):
    from graspseg.capture import load_frame_folder
    from graspseg.core import CAMERA, TCP, CameraRig, Transform

    frame = load_frame_folder(sample_frame_dir)
    rig = CameraRig(frame.intrinsics, Transform.from_rt(np.eye(3), [0.0, 0.05, 0.0], TCP, CAMERA), depth_scale=1e-4)
    rig.save_yaml(tmp_path / "rig.yaml")
    (tmp_path / "pose.json").write_text(json.dumps({"xyz_m": [0.4, 0.0, 0.6], "quat_xyzw": [1, 0, 0, 0]}))
    out = tmp_path / "o"
    rc = main(["perceive", "--frame", str(sample_frame_dir), "--point", MUG_POINT, "--rig", str(tmp_path / "rig.yaml"),
               "--tcp-pose", str(tmp_path / "pose.json"), "--boundary-error-px", "2", "--out", str(out)])
    assert rc == 0
    doc = json.loads((out / "result.json").read_text())
    assert doc["cloud"]["base_from_camera"]["to_frame"] == "base"
    assert doc["boundary_error"] == {"px": 2.0, "source": "config"}


def test_perceive_bad_pose_and_gripper(capsys, tmp_path, sample_frame_dir):
    scaled = np.eye(4)
    scaled[:3, :3] *= 1.1  # a similarity, not a rigid motion
    (tmp_path / "pose.json").write_text(json.dumps({"matrix": scaled.tolist()}))
    rc = main(["perceive", "--frame", str(sample_frame_dir), "--point", MUG_POINT, "--tcp-pose",
               str(tmp_path / "pose.json"), "--out", str(tmp_path / "o")])
    assert rc == 2 and "not a rigid transform" in capsys.readouterr().err
    (tmp_path / "g.yaml").write_text("name: bad\nmin_opening_m: 0.08\nmax_opening_m: 0.01\nfinger_width_m: 0.02\n"
                                     "finger_depth_m: 0.04\nfinger_thickness_m: 0.01\npalm_width_m: 0.1\n"
                                     "palm_depth_m: 0.05\npalm_height_m: 0.05\n")
    rc = main(["perceive", "--frame", str(sample_frame_dir), "--point", MUG_POINT, "--gripper", str(tmp_path / "g.yaml"),
               "--out", str(tmp_path / "o")])
    assert rc == 2 and "stroke is inverted" in capsys.readouterr().err


def test_config_override_flags(capsys, tmp_path, sample_frame_dir):
    rc = main(["perceive", "--frame", str(sample_frame_dir), "--point", MUG_POINT, "--out", str(tmp_path / "o"),
               "--grasp.nope=1"])
    assert rc == 2 and "unknown option 'nope'" in capsys.readouterr().err


def test_perceive_counts_agree_between_terminal_and_result_json(tmp_path, sample_frame_dir, capsys):
    out = tmp_path / "p"
    assert main(["perceive", "--frame", str(sample_frame_dir), "--point", MUG_POINT, "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    g = json.loads((out / "result.json").read_text())["grasps"]
    assert summary["candidates"] == g["n_candidates"]
    assert summary["listed"] == len(g["grasps"]) <= g["n_candidates"]
    # every evaluated candidate is either accepted or counted under one rejection reason
    assert sum(g["rejected_counts"].values()) + g["n_accepted"] == g["n_candidates"]
    assert summary["accepted_grasps"] == sum(x["accepted"] for x in g["grasps"])


def test_perceive_exits_3_with_the_reasons_when_no_grasp_is_accepted(tmp_path, sample_frame_dir, capsys):
    out = tmp_path / "none"
    # a 40 px boundary error leaves no grasp on the mug with any margin
    rc = main(["perceive", "--frame", str(sample_frame_dir), "--point", MUG_POINT, "--boundary-error-px", "40",
               "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 3, captured.err
    summary = json.loads(captured.out)
    assert summary["accepted_grasps"] == 0 and summary["best"] is None
    assert "no grasp accepted" in captured.err and "rejected:" in captured.err
    top_reason = max(summary["rejected_counts"], key=summary["rejected_counts"].get)
    assert top_reason in captured.err
    doc = json.loads((out / "result.json").read_text())  # the outputs are still written
    validate(doc, "perception_result")
    assert doc["grasps"]["n_accepted"] == 0 and doc["grasps"]["suggestion"]


def test_compact_result_lists_the_best_accepted_grasps_only(tmp_path, sample_frame_dir, capsys):
    out = tmp_path / "c"
    assert main(["perceive", "--frame", str(sample_frame_dir), "--point", MUG_POINT, "--compact", "--top-k", "1",
                 "--out", str(out)]) == 0
    text = (out / "result.json").read_text()
    doc = json.loads(text)
    validate(doc, "perception_result")
    g = doc["grasps"]
    assert g["compact"] is True and g["n_listed"] == len(g["grasps"]) == 1 and g["grasps"][0]["accepted"]
    assert "contacts_uv" not in g["grasps"][0] and not any(k.endswith("_px") for k in g["grasps"][0]["margins"])
    assert g["n_candidates"] > g["n_accepted"] >= 1  # the counts still describe every candidate
    assert len(text) < 20_000, len(text)
    with pytest.raises(SystemExit) as exc:  # argparse refuses it before anything runs
        main(["perceive", "--frame", str(sample_frame_dir), "--point", MUG_POINT, "--top-k", "0", "--out", str(out)])
    assert exc.value.code == 2 and "expected a positive integer, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["segment", "--frame", "{frame}", "--point", MUG_POINT, "--out", "{out}"],
    ["segment-all", "--frame", "{frame}", "--out", "{out}"],
    ["cloud", "--frame", "{frame}", "--point", MUG_POINT, "--out", "{out}"],
    ["perceive", "--frame", "{frame}", "--point", MUG_POINT, "--out", "{out}"],
    ["demo", "--out", "{out}"],
    ["eval", "export", "--data", "{frame}", "--out", "{out}"],
    ["bench", "quality", "--data", "{frames}", "--synthetic", "0", "--repeat", "1", "--no-baselines", "--quiet"],
])
def test_every_command_prints_one_json_object_on_stdout(argv, tmp_path, sample_frame_dir, capsys):
    frames = tmp_path / "frames"  # a folder of frame folders holding the shipped one
    frames.mkdir()
    (frames / "sample").symlink_to(sample_frame_dir, target_is_directory=True)
    argv = [a.format(frame=sample_frame_dir, frames=frames, out=tmp_path / "o") for a in argv]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)  # the whole of stdout is one JSON document
    assert isinstance(doc, dict) and doc


def test_result_json_keeps_each_number_list_on_one_line(perceive_out):
    from graspseg.core.io import to_json

    text = (perceive_out / "result.json").read_text()
    doc = json.loads(text)
    assert text == to_json(doc, inline_numbers=True) + "\n"
    assert len(text) < 0.8 * len(json.dumps(doc, indent=2))  # a 4x4 matrix is 6 lines, not 26
    g = doc["grasps"]["grasps"][0]
    assert f'"approach_in_camera": {json.dumps(g["approach_in_camera"])},' in text
    tricky = {"note": "[ 1, 2 ]", "rows": [[1, 2.5], [None, True]], "mixed": [1, "a"], "empty": [], "nested": {}}
    assert json.loads(to_json(tricky, inline_numbers=True)) == tricky  # strings are never touched
