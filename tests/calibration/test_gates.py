"""Quality gates of graspseg-calibrate: what a refusal leaves behind, and that good data still passes."""

from __future__ import annotations

import json

import pytest

from calibration.cli import main
from calibration.formats import load_rig
from graspseg.core.errors import UnitsError
from tests.sweep_cases import Context


@pytest.fixture(scope="module")
def calib(tmp_path_factory):
    return Context(tmp_path_factory.mktemp("gates")).calib


def _hand_eye(calib, tmp_path, poses, *extra):
    return main(["--quiet", "hand-eye", "--images", str(calib), "--poses", str(calib / poses), "--intrinsics",
                 str(calib / "intrinsics.json"), "--rig-out", str(tmp_path / "rig.yaml"),
                 "--report", str(tmp_path / "report.json"), *extra])


def test_refused_hand_eye_writes_the_report_but_no_rig(calib, tmp_path, capsys):
    assert _hand_eye(calib, tmp_path, "shuffled.jsonl", "--calib-out", str(tmp_path / "x.calib")) == 2
    err = capsys.readouterr().err
    assert "no rig written" in err and "worst views: view_" in err
    assert not (tmp_path / "rig.yaml").exists() and not (tmp_path / "x.calib").exists()
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"]["rms_px"] > 2.0 and len(report["per_pose"]) == 10


def test_good_hand_eye_passes_the_gate_and_keeps_the_depth_scale(calib, tmp_path, capsys):
    assert _hand_eye(calib, tmp_path, "poses.jsonl", "--depth-scale", "0.0001") == 0
    rig = load_rig(tmp_path / "rig.yaml")
    assert rig.depth_scale == 1e-4 and rig.extra["hand_eye"]["rms_px"] < 1.0
    assert json.loads((tmp_path / "report.json").read_text())["rig"] == str(tmp_path / "rig.yaml")


def test_loose_gate_is_configurable(calib, tmp_path):
    assert _hand_eye(calib, tmp_path, "shuffled.jsonl", "--max-rms-px", "1000", "--max-spread-mm", "1e6",
                     "--allow-implausible") == 0
    assert load_rig(tmp_path / "rig.yaml").allow_implausible


def test_import_in_millimetres_needs_the_explicit_override(calib, tmp_path, capsys):
    args = ["import", "--static", "0 32.5 45 0 0 0 1 tool0 cam", "--intrinsics", str(calib / "intrinsics.json"),
            "--rig-out", str(tmp_path / "rig.yaml")]
    assert main(args) == 2 and not (tmp_path / "rig.yaml").exists()
    assert "millimetres?" in capsys.readouterr().err
    assert main([*args, "--allow-implausible"]) == 0
    assert load_rig(tmp_path / "rig.yaml").tcp_from_camera.translation[2] == 45.0


def test_check_with_enough_views_still_gives_a_verdict(calib, tmp_path, capsys):
    rc = main(["--quiet", "check", "--rig", str(calib / "rig.yaml"), "--images", str(calib), "--poses",
               str(calib / "poses.jsonl"), "--plots", str(tmp_path / "plots")])
    captured = capsys.readouterr()
    assert rc == 0 and captured.err.startswith("OK: 10 poses") and json.loads(captured.out)["verdict"] == "OK"


def test_intrinsics_calibration_passes_the_default_gate(calib, tmp_path):
    assert main(["--quiet", "intrinsics", "--images", str(calib), "--out", str(tmp_path / "i.json"),
                 "--distortion", "none"]) == 0
    assert json.loads((tmp_path / "i.json").read_text())["rms_px"] < 1.0


def test_debug_shows_the_traceback(calib, tmp_path):
    with pytest.raises(UnitsError, match="millimetres"):
        main(["--debug", "import", "--static", "0 32.5 45 0 0 0 1 tool0 cam", "--intrinsics",
              str(calib / "intrinsics.json"), "--rig-out", str(tmp_path / "rig.yaml")])


@pytest.mark.parametrize("swap", [(1, 8), (0, 11), (3, 4)])
def test_consensus_names_exactly_the_swapped_views(dataset, swap):
    from calibration.handeye import consensus_outliers

    poses = list(dataset.base_from_tcp)
    i, j = swap
    poses[i], poses[j] = poses[j], poses[i]
    names = [f"view_{k:02d}" for k in range(len(poses))]
    bad, good, rms = consensus_outliers(poses, dataset.detections, dataset.board, dataset.intrinsics, names)
    assert sorted(bad) == [names[i], names[j]] and len(good) == len(poses) - 2 and rms < 1.0


def test_consensus_finds_nothing_in_clean_views(dataset):
    from calibration.handeye import consensus_outliers

    names = [f"view_{k:02d}" for k in range(len(dataset.base_from_tcp))]
    assert consensus_outliers(dataset.base_from_tcp, dataset.detections, dataset.board, dataset.intrinsics,
                              names) is None


@pytest.mark.parametrize("flags", [["--max-rms-px", "0.01"], ["--max-focal-std", "0.0001"]])
def test_refused_intrinsics_write_nothing(calib, tmp_path, capsys, flags):
    assert main(["--quiet", "intrinsics", "--images", str(calib), "--out", str(tmp_path / "i.json"), *flags]) == 2
    assert "nothing written" in capsys.readouterr().err and not (tmp_path / "i.json").exists()
