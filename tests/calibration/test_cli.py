from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import yaml
from PIL import Image

from calibration.cli import main
from calibration.formats import load_rig, write_poses_jsonl
from graspseg.core.transform import CAMERA, Transform


def test_board_command_writes_pdf_png_and_spec(tmp_path, capsys):
    assert main(["board", "--out", str(tmp_path / "board.pdf"), "--square-mm", "30", "--marker-mm", "22",
                 "--squares-x", "6", "--squares-y", "4", "--dpi", "200"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["printed_size_mm"] == [200.0, 140.0]
    with Image.open(tmp_path / "board.png") as im:
        assert im.size[0] / im.info["dpi"][0] * 25.4 == pytest.approx(200.0, abs=0.15)
    box = re.search(rb"/MediaBox\s*\[\s*[\d.]+\s+[\d.]+\s+([\d.]+)\s+([\d.]+)", (tmp_path / "board.pdf").read_bytes())
    assert float(box.group(1)) / 72 * 25.4 == pytest.approx(200.0, abs=0.1)
    spec = json.loads((tmp_path / "board.json").read_text())
    assert spec["board"]["square_length_m"] == pytest.approx(0.03) and spec["schema_version"] == 1


def test_board_command_rejects_other_suffix(tmp_path, capsys):
    assert main(["board", "--out", str(tmp_path / "board.svg")]) == 2
    assert "--out must end in .pdf or .png" in capsys.readouterr().err


def test_hand_eye_check_export_import(rendered_dir, tmp_path, capsys):
    folder, ds = rendered_dir
    rig_path = tmp_path / "rig.yaml"
    rc = main(["--quiet", "hand-eye", "--images", str(folder), "--poses", str(folder / "poses.jsonl"),
               "--intrinsics", str(folder / "intrinsics.json"), "--rig-out", str(rig_path), "--depth-scale", "0.0001",
               "--report", str(tmp_path / "report.json"), "--plots", str(tmp_path / "plots"),
               "--calib-out", str(tmp_path / "x.calib")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "tcp_from_camera xyz_m" in captured.err and "static_transform_publisher" in captured.err
    result = json.loads(captured.out)  # one JSON object on stdout
    assert result["rig"] == str(rig_path) and result["tcp_from_camera"]["from_frame"] == "camera_color_optical"
    assert result["summary"]["n_poses"] == 10 and result["static_transform_publisher_quat_xyzw"].startswith("ros2 run")
    rig = load_rig(rig_path)
    dt, dr = rig.tcp_from_camera.distance_to(ds.tcp_from_camera)
    assert dt < 0.0015 and np.degrees(dr) < 0.2
    assert rig.depth_scale == 1e-4 and rig.intrinsics == ds.intrinsics
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["per_pose"]) == 10 and report["units"]["length"] == "m"
    assert (tmp_path / "plots" / "residuals_per_pose.png").is_file()

    rc = main(["--quiet", "check", "--rig", str(rig_path), "--images", str(folder), "--poses",
               str(folder / "poses.jsonl"), "--plots", str(tmp_path / "check"), "--report", str(tmp_path / "c.json")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.err.startswith("OK:") and "depth check: scale error +2.0" in captured.err
    verdict = json.loads(captured.out)
    assert verdict["verdict"] == "OK" and len(verdict["worst_poses"]) == 5
    assert verdict["depth_check"]["scale_error"] == pytest.approx(0.02, abs=0.003)
    c = json.loads((tmp_path / "c.json").read_text())
    assert c["depth_check"]["scale_error"] == pytest.approx(0.02, abs=0.003)
    for name in ("residuals_per_pose.png", "board_positions_in_base.png"):
        assert (tmp_path / "check" / name).stat().st_size > 1000

    assert main(["export", "--rig", str(rig_path), "--calib", str(tmp_path / "e.calib")]) == 0
    captured = capsys.readouterr()
    assert "quat_xyzw" in captured.err and "static_transform_publisher" in captured.err
    exported = json.loads(captured.out)
    assert exported["calib"] == str(tmp_path / "e.calib") and exported["quat_order"] == "xyzw"
    line = exported["static_transform_publisher"]["ros1"]
    assert line.startswith("static_transform_publisher")
    assert main(["import", "--static", line, "--intrinsics", str(folder / "intrinsics.json"),
                 "--rig-out", str(tmp_path / "from_static.yaml")]) == 0
    assert main(["import", "--calib", str(tmp_path / "e.calib"), "--intrinsics", str(folder / "intrinsics.json"),
                 "--rig-out", str(tmp_path / "from_calib.yaml")]) == 0
    for p in ("from_static.yaml", "from_calib.yaml"):
        dt, dr = load_rig(tmp_path / p).tcp_from_camera.distance_to(rig.tcp_from_camera)
        assert dt < 1e-5 and dr < 1e-5


def test_check_flags_a_wrong_rig(rendered_dir, tmp_path, capsys):
    folder, ds = rendered_dir
    wrong = ds.tcp_from_camera @ Transform.from_rotvec([0, 0.02, 0], [0.01, 0, 0], CAMERA, CAMERA)
    from graspseg.core.camera import CameraRig

    CameraRig(ds.intrinsics, wrong).save_yaml(tmp_path / "wrong.yaml")
    rc = main(["--quiet", "check", "--rig", str(tmp_path / "wrong.yaml"), "--images", str(folder),
               "--poses", str(folder / "poses.jsonl"), "--plots", str(tmp_path / "p")])
    assert rc == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("SUSPECT:") and json.loads(captured.out)["verdict"] == "SUSPECT"


def test_hand_eye_count_mismatch_and_missing_intrinsics(rendered_dir, tmp_path, capsys):
    folder, ds = rendered_dir
    write_poses_jsonl(tmp_path / "short.jsonl", ds.base_from_tcp[:7])
    rc = main(["--quiet", "hand-eye", "--images", str(folder), "--poses", str(tmp_path / "short.jsonl"),
               "--intrinsics", str(folder / "intrinsics.json"), "--rig-out", str(tmp_path / "r.yaml")])
    assert rc == 2
    assert "10 images but 7 poses" in capsys.readouterr().err
    rc = main(["--quiet", "hand-eye", "--images", str(folder), "--poses", str(folder / "poses.jsonl"),
               "--rig-out", str(tmp_path / "r.yaml")])
    assert rc == 2
    assert "no intrinsics given" in capsys.readouterr().err


def test_hand_eye_skips_and_names_blank_images(rendered_dir, tmp_path, capsys):
    folder, ds = rendered_dir
    work = tmp_path / "views"
    shutil.copytree(folder, work)
    Image.fromarray(np.full((480, 640, 3), 100, np.uint8)).save(work / "view_03.png")
    rc = main(["--quiet", "hand-eye", "--images", str(work), "--poses", str(work / "poses.jsonl"),
               "--intrinsics", str(work / "intrinsics.json"), "--rig-out", str(tmp_path / "r.yaml")])
    captured = capsys.readouterr()
    assert rc == 0
    assert "skipped: view_03.png: no board detected" in captured.err
    assert "view_03.png: no board detected" in json.loads(captured.out)["summary"]["skipped"][0]
    assert yaml.safe_load((tmp_path / "r.yaml").read_text())["extra"]["hand_eye"]["n_poses"] == 9


def test_check_refuses_rig_without_hand_eye(rendered_dir, tmp_path, capsys):
    folder, ds = rendered_dir
    from graspseg.core.camera import CameraRig

    CameraRig(ds.intrinsics).save_yaml(tmp_path / "nohe.yaml")
    rc = main(["check", "--rig", str(tmp_path / "nohe.yaml"), "--images", str(folder), "--poses",
               str(folder / "poses.jsonl")])
    assert rc == 2
    assert "missing field 'tcp_from_camera'" in capsys.readouterr().err


def test_intrinsics_command_checks_given_intrinsics(rendered_dir, tmp_path, capsys):
    folder, ds = rendered_dir
    rc = main(["--quiet", "intrinsics", "--images", str(folder), "--check", str(folder / "intrinsics.json"),
               "--out", str(tmp_path / "check.json")])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["ok"] and out["median_rms_px"] < 0.5
    assert len(out["per_view"]) == 10


def test_bench_command_small(capsys, monkeypatch):
    import calibration.bench as bench

    monkeypatch.setattr(bench, "run_depth_bench", lambda trials, seed: {"stub_for_speed": True})
    assert main(["bench", "--trials", "2", "--poses", "8"]) == 0
    out = json.loads(capsys.readouterr().out)
    methods = out["hand_eye"]["methods"]
    assert "park_martin closed form (ours, all pairs)" in methods
    assert all(np.isfinite(v["median_translation_mm"]) for v in methods.values())
    assert out["hand_eye"]["setup"]["trials"] == 2


@pytest.mark.slow
def test_bench_meets_targets_on_ten_trials():
    from calibration.bench import run_depth_bench, run_hand_eye_bench

    he = run_hand_eye_bench(trials=10, n_poses=20, seed=0)
    assert all(he["targets"].values()), he["methods"]
    ours = he["methods"]["ours: park_martin + joint refinement (robot noise modelled)"]
    assert ours["median_translation_mm"] < he["methods"]["park_martin closed form (ours, all pairs)"]["median_translation_mm"]
    dc = run_depth_bench(trials=10)
    assert all(dc["targets"].values()), dc


def test_intrinsics_command_calibrates_from_rendered_views(rendered_dir, tmp_path, capsys):
    folder, ds = rendered_dir
    rc = main(["--quiet", "intrinsics", "--images", str(folder), "--distortion", "none",
               "--out", str(tmp_path / "intr.json")])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and len(out["per_view"]) == 10
    got = json.loads((tmp_path / "intr.json").read_text())
    assert abs(got["fx"] - ds.intrinsics.fx) / ds.intrinsics.fx < 0.01
    assert abs(got["cx"] - ds.intrinsics.cx) < 5 and abs(got["cy"] - ds.intrinsics.cy) < 5
