"""A generated sweep of bad input over every ``graspseg`` sub-command, run in-process.

Each case must end with exit code 2 and exactly one line on stderr that matches the expected reason — never a
traceback (an uncaught exception fails the test), never the CLI's "internal error" fallback, never exit 0
(a silent acceptance). The cases are the cross product of every sub-command that reads the input in question
with the bad variants of that input, so a new command or a new loader path is swept by adding one row.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from graspseg.cli import main

POINT = "352,280"


@pytest.fixture(scope="module")
def files(tmp_path_factory, sample_frame_dir):
    """A scratch folder holding the bad inputs the cases refer to by name."""
    d = tmp_path_factory.mktemp("sweep")
    (d / "a_file").write_text("not a folder\n")
    (d / "binary.bin").write_bytes(bytes(range(256)) * 8)
    (d / "bad.yaml").write_text("segment: [unclosed\n")
    (d / "bad.json").write_text("{not json")
    (d / "list.yaml").write_text("- 1\n- 2\n")
    (d / "unknown_key.yaml").write_text("segmnt:\n  backend: rgbd\n")
    (d / "a_dir").mkdir()
    (d / "empty_dir").mkdir()
    (d / "tcp_nonrigid.json").write_text(json.dumps({"matrix": (np.eye(4) * 2).tolist()}))
    (d / "tcp_cm.json").write_text(json.dumps({"xyz_m": [40.0, 10.0, 55.0], "quat_xyzw": [0, 0, 0, 1]}))
    (d / "tcp_quat3.json").write_text(json.dumps({"xyz_m": [0.4, 0.1, 0.5], "quat_xyzw": [0, 0, 1]}))
    (d / "tcp_string.json").write_text(json.dumps({"matrix": "eye(4)"}))
    (d / "rig_mm.yaml").write_text(
        "intrinsics: {width: 640, height: 480, fx: 616.4, fy: 616.2, cx: 310.3, cy: 236.6}\n"
        "depth_scale: 0.0001\ntcp_from_camera: {xyz_m: [0.0, 32.5, 45.0], quat_xyzw: [0, 0, 0, 1]}\n")
    (d / "gripper_mm.yaml").write_text("name: mm_gripper\nmax_width_m: 80\nfinger_depth_m: 0.045\n")
    # frame folders with one thing wrong each
    for name, change in {
        "no_color": lambda f: (f / "color.png").unlink(),
        "no_depth": lambda f: (f / "depth.png").unlink(),
        "no_camera": lambda f: (f / "camera.json").unlink(),
        "camera_garbage": lambda f: (f / "camera.json").write_text("{oops"),
        "camera_binary": lambda f: (f / "camera.json").write_bytes(bytes(range(256))),
        "camera_null_scale": lambda f: _edit_camera(f, depth_scale=None),
        "camera_zero_scale": lambda f: _edit_camera(f, depth_scale=0),
        "camera_tiny_fx": lambda f: _edit_camera(f, fx=1.93, fy=1.93),
        "camera_string_fx": lambda f: _edit_camera(f, fx="616"),
        "camera_wrong_size": lambda f: _edit_camera(f, width=1280, height=720),
        "color_binary": lambda f: (f / "color.png").write_bytes(b"\x89PNG garbage"),
        "depth_binary": lambda f: (f / "depth.png").write_bytes(b"garbage"),
        "color_is_dir": lambda f: ((f / "color.png").unlink(), (f / "color.png").mkdir()),
    }.items():
        f = d / name
        shutil.copytree(sample_frame_dir, f)
        change(f)
    return d


def _edit_camera(folder: Path, **changes) -> None:
    doc = json.loads((folder / "camera.json").read_text())
    doc.update(changes)
    (folder / "camera.json").write_text(json.dumps(doc))


# --- the bad variants, each: (id, argv fragment, expected message regex); "{d}" = the scratch folder --------

FRAME_CASES = [
    ("frame_missing", ["--frame", "{d}/nowhere"], r"nowhere|does not exist|not found|no such"),
    ("frame_is_file", ["--frame", "{d}/a_file"], r"a_file"),
    ("frame_empty_dir", ["--frame", "{d}/empty_dir"], r"color|camera|missing|no "),
    ("frame_no_color", ["--frame", "{d}/no_color"], r"color"),
    ("frame_no_depth", ["--frame", "{d}/no_depth"], r"depth"),
    ("frame_no_camera", ["--frame", "{d}/no_camera"], r"camera"),
    ("camera_garbage", ["--frame", "{d}/camera_garbage"], r"camera\.json|JSON"),
    ("camera_binary", ["--frame", "{d}/camera_binary"], r"camera\.json|binary|JSON|text"),
    ("camera_null_scale", ["--frame", "{d}/camera_null_scale"], r"depth_scale"),
    ("camera_zero_scale", ["--frame", "{d}/camera_zero_scale"], r"depth_scale"),
    ("camera_tiny_fx", ["--frame", "{d}/camera_tiny_fx"], r"fx|focal|field of view"),
    ("camera_string_fx", ["--frame", "{d}/camera_string_fx"], r"fx"),
    ("camera_wrong_size", ["--frame", "{d}/camera_wrong_size"], r"1280|640|size"),
    ("color_binary", ["--frame", "{d}/color_binary"], r"color"),
    ("depth_binary", ["--frame", "{d}/depth_binary"], r"depth"),
    ("color_is_dir", ["--frame", "{d}/color_is_dir"], r"color"),
    ("frame_and_plain", ["--frame", "{sample}", "--depth-scale", "0.001"], r"either --frame"),
    ("plain_missing", ["--color", "{sample}/color.png"], r"missing --depth"),
    ("plain_scale_zero", ["--color", "{sample}/color.png", "--depth", "{sample}/depth.png", "--depth-scale", "0",
                          "--intrinsics", "{sample}/camera.json"], r"depth.scale"),
    ("plain_scale_negative", ["--color", "{sample}/color.png", "--depth", "{sample}/depth.png", "--depth-scale",
                              "-0.001", "--intrinsics", "{sample}/camera.json"], r"depth.scale"),
    ("plain_intrinsics_dir", ["--color", "{sample}/color.png", "--depth", "{sample}/depth.png", "--depth-scale",
                              "0.0001", "--intrinsics", "{d}/a_dir"], r"a_dir|folder|directory"),
    ("plain_intrinsics_binary", ["--color", "{sample}/color.png", "--depth", "{sample}/depth.png", "--depth-scale",
                                 "0.0001", "--intrinsics", "{d}/binary.bin"], r"binary\.bin|intrinsics"),
    ("plain_depth_dir", ["--color", "{sample}/color.png", "--depth", "{d}/a_dir", "--depth-scale", "0.0001",
                         "--intrinsics", "{sample}/camera.json"], r"a_dir|depth"),
    ("too_many_pixels", ["--frame", "{sample}", "--limits.max_frame_pixels=1000"], r"max_frame_pixels"),
]

PROMPT_CASES = [
    ("point_outside", ["--point", "5000,10"], r"5000|outside|image"),
    ("point_negative", ["--point=-3,10"], r"-3|outside|image"),
    ("point_words", ["--point", "a,b"], r"comma-separated numbers"),
    ("point_one_value", ["--point", "352"], r"2 or 3 numbers"),
    ("point_label_2", ["--point", "352,280,2"], r"label must be 1"),
    ("point_nan", ["--point", "nan,280"], r"nan|finite|outside|number"),
    ("box_three", ["--box", "1,2,3"], r"4 numbers"),
    ("box_inverted", ["--box", "400,300,100,100"], r"box|x0|inverted|order"),
    ("box_outside", ["--box", "7000,7000,9000,9000"], r"entirely outside"),
    ("mask_missing", ["--mask", "{d}/nowhere.png"], r"nowhere\.png"),
    ("mask_binary", ["--mask", "{d}/binary.bin"], r"binary\.bin|mask|image"),
    ("mask_dir", ["--mask", "{d}/a_dir"], r"a_dir|folder|directory|mask"),
    ("mask_wrong_size", ["--mask", "{d}/small_mask.png"], r"mask|size|shape"),
]

PIPELINE_CASES = [  # perceive and cloud only
    ("config_missing", ["--config", "{d}/nowhere.yaml"], r"nowhere\.yaml"),
    ("config_dir", ["--config", "{d}/a_dir"], r"a_dir|folder|directory"),
    ("config_binary", ["--config", "{d}/binary.bin"], r"binary\.bin|binary|YAML|text"),
    ("config_bad_yaml", ["--config", "{d}/bad.yaml"], r"bad\.yaml|YAML"),
    ("config_list", ["--config", "{d}/list.yaml"], r"list\.yaml|mapping|section"),
    ("config_unknown_key", ["--config", "{d}/unknown_key.yaml"], r"segmnt"),
    ("rig_missing", ["--rig", "{d}/nowhere.yaml"], r"nowhere\.yaml"),
    ("rig_dir", ["--rig", "{d}/a_dir"], r"a_dir|folder|directory"),
    ("rig_binary", ["--rig", "{d}/binary.bin"], r"binary\.bin|binary|YAML|text"),
    ("rig_mm", ["--rig", "{d}/rig_mm.yaml"], r"millimetres"),
    ("tcp_missing", ["--tcp-pose", "{d}/nowhere.json"], r"nowhere\.json"),
    ("tcp_dir", ["--tcp-pose", "{d}/a_dir"], r"a_dir|folder|directory"),
    ("tcp_binary", ["--tcp-pose", "{d}/binary.bin"], r"binary\.bin|binary|JSON|text"),
    ("tcp_bad_json", ["--tcp-pose", "{d}/bad.json"], r"bad\.json|JSON"),
    ("tcp_nonrigid", ["--tcp-pose", "{d}/tcp_nonrigid.json"], r"rigid|rotation|orthonormal|last row"),
    ("tcp_cm", ["--tcp-pose", "{d}/tcp_cm.json"], r"millimetres|centimetres|too long|m\b"),
    ("tcp_quat3", ["--tcp-pose", "{d}/tcp_quat3.json"], r"quat_xyzw"),
    ("tcp_string", ["--tcp-pose", "{d}/tcp_string.json"], r"matrix"),
    ("gripper_unknown", ["--gripper", "no_such_gripper"], r"no_such_gripper"),
    ("gripper_dir", ["--gripper", "{d}/a_dir"], r"a_dir|gripper"),
    ("gripper_binary", ["--gripper", "{d}/binary.bin"], r"binary\.bin|gripper|YAML"),
    ("gripper_mm", ["--gripper", "{d}/gripper_mm.yaml"], r"max_width_m|millimetres|stroke|80"),
    ("k_negative", ["--boundary-error-px", "-1"], r"boundary_error_px|boundary error"),
    ("k_nan", ["--boundary-error-px", "nan"], r"boundary_error_px|boundary error|finite"),
    ("override_unknown_section", ["--grsp.clearance_m=0.005"], r"grsp"),
    ("override_unknown_field", ["--grasp.clearence_m=0.005"], r"clearence_m"),
    ("override_bad_type", ["--grasp.clearance_m=wide"], r"clearance_m"),
    ("override_bad_granularity", ["--segment.granularity=biggest"], r"granularity"),
    ("backend_unknown", ["--backend", "nosuch"], r"nosuch"),
    ("backend_sam2_no_model", ["--backend", "sam2"], r"--model"),
    ("model_with_rgbd", ["--model", "{d}/a_dir"], r"rgbd.*checkpoint|no checkpoint"),
]

SEGMENT_CASES = [  # segment / segment-all specific
    ("backend_unknown", ["--backend", "nosuch"], r"nosuch"),
    ("backend_sam2_no_model", ["--backend", "sam2"], r"--model"),
    ("backend_grounded_no_detector", ["--backend", "grounded"], r"--detector|--model"),
    ("model_with_rgbd", ["--model", "{d}/a_dir"], r"no checkpoint"),
    ("model_empty_dir", ["--backend", "sam", "--model", "{d}/empty_dir"], r"empty_dir|config\.json|checkpoint"),
    ("override_unknown_option", ["--segment.options.no_such_option=3"], r"no_such_option"),
    ("override_foreign_section", ["--grasp.clearance_m=0.005"], r"only segment\.\* and limits\.\* overrides"),
    ("override_bad_granularity", ["--segment.granularity=biggest"], r"granularity"),
    ("config_dir", ["--config", "{d}/a_dir"], r"a_dir|folder|directory"),
    ("config_bad_yaml", ["--config", "{d}/bad.yaml"], r"bad\.yaml|YAML"),
]

OUT_CASES = [
    ("out_is_file", ["--out", "{d}/a_file"], r"exists and is not a folder"),
    ("out_under_file", ["--out", "{d}/a_file/sub"], r"which is a file"),
]

BENCH_CASES = [
    ("latency_repeat0", ["bench", "latency", "--frame", "{sample}", "--point", POINT, "--repeat", "0"], r"--repeat"),
    ("latency_point_words", ["bench", "latency", "--frame", "{sample}", "--point", "x,y"], r"--point"),
    ("latency_point_outside", ["bench", "latency", "--frame", "{sample}", "--point", "9999,1",
                               "--no-baselines", "--repeat", "1"], r"9999|outside|image"),
    ("latency_frame_missing", ["bench", "latency", "--frame", "{d}/nowhere", "--point", POINT], r"nowhere"),
    ("latency_backend_unknown", ["bench", "latency", "--frame", "{sample}", "--point", POINT, "--backend", "nosuch"],
     r"nosuch"),
    ("latency_warmup_negative", ["bench", "latency", "--frame", "{sample}", "--point", POINT, "--warmup", "-1"],
     r"--warmup"),
    ("quality_repeat0", ["bench", "quality", "--repeat", "0"], r"--repeat"),
    ("quality_synthetic_negative", ["bench", "quality", "--synthetic", "-1", "--no-real"], r"--synthetic"),
    ("quality_data_missing", ["bench", "quality", "--data", "{d}/nowhere", "--synthetic", "0"], r"nowhere"),
    ("quality_data_file", ["bench", "quality", "--data", "{d}/a_file", "--synthetic", "0"], r"a_file"),
    ("quality_tolerance_negative", ["bench", "quality", "--tolerance-px", "-2", "--no-real", "--synthetic", "1"],
     r"tolerance"),
    ("quality_scene_unknown", ["bench", "quality", "--scenes", "nosuch", "--no-real", "--synthetic", "1"],
     r"--scenes: unknown \['nosuch'\]"),
    ("quality_viewpoint_unknown", ["bench", "quality", "--viewpoints", "top", "--no-real", "--synthetic", "1"],
     r"--viewpoints: unknown \['top'\]"),
    ("quality_sensor_unknown", ["bench", "quality", "--sensors", "kinect", "--no-real", "--synthetic", "1"],
     r"--sensors: unknown \['kinect'\]"),
    ("quality_resolution_unknown", ["bench", "quality", "--resolutions", "1x1", "--no-real", "--synthetic", "1"],
     r"--resolutions: unknown"),
    ("quality_backend_unknown", ["bench", "quality", "--backend", "nosuch", "--no-real", "--synthetic", "1"],
     r"nosuch"),
    ("sim_trials0", ["bench", "sim", "--trials", "0", "--out", "{tmp}/sim"], r"--trials"),
    ("sim_mask_unknown", ["bench", "sim", "--mask", "best", "--trials", "1", "--out", "{tmp}/sim"], r"--mask|best"),
    ("sim_noisy_k", ["bench", "sim", "--mask", "noisy:x", "--trials", "1", "--out", "{tmp}/sim"], r"noisy"),
    ("sim_objects_missing", ["bench", "sim", "--objects", "{d}/nowhere", "--trials", "1", "--out", "{tmp}/sim"],
     r"nowhere|objects"),
    ("sim_known_pred", ["bench", "sim", "--margins", "known", "--trials", "1", "--out", "{tmp}/sim"], r"known"),
    ("sim_n_objects0", ["bench", "sim", "--layout", "packed", "--n-objects", "0", "--trials", "1",
                        "--out", "{tmp}/sim"], r"n.objects"),
    ("sim_gripper_unknown", ["bench", "sim", "--gripper", "nosuch", "--trials", "1", "--out", "{tmp}/sim"],
     r"nosuch"),
    ("sim_out_file", ["bench", "sim", "--trials", "1", "--out", "{d}/a_file"], r"exists and is not a folder"),
    ("sam_latency_size", ["bench", "sam-latency", "--size", "big"], r"--size"),
    ("sam_latency_size_zero", ["bench", "sam-latency", "--size", "0x480"], r"size"),
    ("sam_latency_repeat0", ["bench", "sam-latency", "--repeat", "0"], r"--repeat"),
    ("sam_latency_prompts0", ["bench", "sam-latency", "--prompts", "0"], r"--prompts"),
    ("sam_latency_dtype", ["bench", "sam-latency", "--dtype", "fp7"], r"dtype|fp7"),
    ("sam_latency_device", ["bench", "sam-latency", "--device", "tpu9"], r"device|tpu9"),
    ("sam_latency_model_missing", ["bench", "sam-latency", "--model", "{d}/nowhere"], r"nowhere"),
]


def _prompted(cmd: str) -> list[str]:
    return [cmd, "--point", POINT]


def _cases():
    """Every (command argv prefix, bad fragment) pair the sweep runs."""
    cases = []
    prompted = ("perceive", "cloud", "segment")
    for cmd in prompted:
        for cid, frag, rx in FRAME_CASES:
            cases.append(pytest.param(["{cmd}", "--point", POINT, *frag, "--out", "{tmp}/out"], rx,
                                      {"cmd": cmd}, id=f"{cmd}-{cid}"))
        for cid, frag, rx in PROMPT_CASES:
            cases.append(pytest.param([cmd, "--frame", "{sample}", *frag, "--out", "{tmp}/out"], rx, {"cmd": cmd},
                                      id=f"{cmd}-{cid}"))
        cases.append(pytest.param([cmd, "--frame", "{sample}", "--out", "{tmp}/out"], r"no prompt", {"cmd": cmd},
                                  id=f"{cmd}-no_prompt"))
        for cid, frag, rx in OUT_CASES:
            cases.append(pytest.param([*_prompted(cmd), "--frame", "{sample}", *frag], rx, {"cmd": cmd},
                                      id=f"{cmd}-{cid}"))
    for cmd in ("perceive", "cloud"):
        for cid, frag, rx in PIPELINE_CASES:
            cases.append(pytest.param([*_prompted(cmd), "--frame", "{sample}", *frag, "--out", "{tmp}/out"], rx,
                                      {"cmd": cmd}, id=f"{cmd}-{cid}"))
    for cid, frag, rx in SEGMENT_CASES:
        cases.append(pytest.param([*_prompted("segment"), "--frame", "{sample}", *frag, "--out", "{tmp}/out"], rx,
                                  {"cmd": "segment"}, id=f"segment-{cid}"))
        if "granularity" not in cid:
            cases.append(pytest.param(["segment-all", "--frame", "{sample}", *frag, "--out", "{tmp}/out"], rx,
                                      {"cmd": "segment-all"}, id=f"segment-all-{cid}"))
    for cid, frag, rx in FRAME_CASES:
        if not cid.startswith("plain_missing"):
            cases.append(pytest.param(["segment-all", *frag, "--out", "{tmp}/out"], rx, {"cmd": "segment-all"},
                                      id=f"segment-all-{cid}"))
    for cid, frag, rx in OUT_CASES:
        cases.append(pytest.param(["segment-all", "--frame", "{sample}", *frag], rx, {"cmd": "segment-all"},
                                  id=f"segment-all-{cid}"))
        cases.append(pytest.param(["demo", *frag], rx, {"cmd": "demo"}, id=f"demo-{cid}"))
    for cid, argv, rx in BENCH_CASES:
        cases.append(pytest.param(argv, rx, {"cmd": "bench"}, id=f"bench-{cid}"))
    return cases


CASES = _cases()


def test_sweep_is_large_enough():
    assert len(CASES) >= 150, len(CASES)


@pytest.mark.parametrize(("argv", "pattern", "ctx"), CASES)
def test_bad_input_is_refused_with_one_line(argv, pattern, ctx, files, sample_frame_dir, tmp_path, capsys):
    from graspseg.capture.images import write_png

    if not (files / "small_mask.png").exists():
        write_png(files / "small_mask.png", np.ones((10, 10), bool))
    subs = {"{d}": str(files), "{sample}": str(sample_frame_dir), "{tmp}": str(tmp_path), "{cmd}": ctx["cmd"]}
    args = []
    for a in argv:
        for k, v in subs.items():
            a = a.replace(k, v)
        args.append(a)
    capsys.readouterr()
    try:
        rc = main(args)
    except SystemExit as e:  # argparse's usage errors: exit 2 with a usage line and the reason
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2, f"exit {rc} (silent acceptance?) for {args}; stderr: {err[-500:]}"
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("usage:", "       ", "WARNING", "INFO"))]
    assert len(lines) == 1, f"want one line, got {lines}"
    assert "internal error" not in lines[0], lines[0]
    assert "Traceback" not in err
    import re

    assert re.search(pattern, lines[0], re.IGNORECASE), f"{lines[0]!r} does not match {pattern!r}"
    # nothing half-written: a refused command leaves no output folder and no temporary beside it
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir())
    assert not [p for p in tmp_path.iterdir() if "graspseg-tmp" in p.name]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere: permissions cannot refuse it")
def test_unwritable_out_is_refused(sample_frame_dir, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    rc = main(["segment", "--frame", str(sample_frame_dir), "--point", POINT, "--out", str(ro / "x")])
    assert rc == 2
    assert "no permission" in capsys.readouterr().err
