"""``graspseg bench latency``: report structure, fallbacks and the command line (timings are not asserted)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graspseg.bench.latency import STAGE_FACTORIES, Stage, run_latency
from graspseg.core import PromptError


def test_report_with_missing_segmenter_falls_back_and_lists_targets(flat_frame):
    rep = run_latency(flat_frame, (320, 240), backend="no_such_backend", repeat=2, warmup=0)
    assert rep["schema_version"] == 1 and rep["units"] == {"time": "ms"}
    assert any("no_such_backend" in n and "skipped" in n for n in rep["notes"])
    assert "segment.set_frame" not in rep["stages"]
    assert set(rep["stages"]) == {"cloud.backproject", "cloud.plane", "cloud.band", "cloud.build", "shape", "grasp"}
    for s in rep["stages"].values():
        assert s["n"] == 2 and 0 <= s["min_ms"] <= s["median_ms"] <= s["max_ms"]
    # no ground truth here: the mask comes from the classic recipe (or the cloud stages could not run)
    assert rep["mask_source"] in ("open3d.classic_recipe",)
    assert rep["mask_area_px"] == pytest.approx(6400, rel=0.05)
    names = [t["name"] for t in rep["targets"]]
    assert "cloud.backproject (masked)" in names and "path.segment+cloud / open3d.classic_recipe" in names
    path_target = rep["targets"][names.index("path.segment+cloud / open3d.classic_recipe")]
    assert path_target["value"] is None and path_target["met"] is None
    bp_ratio = rep["targets"][names.index("cloud.backproject / open3d.create_from_rgbd_image")]
    assert bp_ratio["value"] is not None and bp_ratio["value"] > 0
    json.dumps(rep)  # JSON-ready


def test_totals_sum_the_path_stages(flat_frame, monkeypatch):
    calls = []

    def fake_stages(args, ctx):
        def a(c):
            calls.append("a")

        return [Stage("segment.fake", a), Stage("cloud.diagnostic", lambda c: None, in_path=False)]

    monkeypatch.setattr("graspseg.bench.latency.STAGE_FACTORIES", [fake_stages] + STAGE_FACTORIES[1:])
    rep = run_latency(
        flat_frame, (320, 240), backend="no_such_backend", repeat=3, warmup=1, with_baselines=False
    )
    assert calls == ["a"] * 4  # warm-up + 3 repeats
    assert "segment.fake" in rep["stages"] and "cloud.diagnostic" in rep["stages"]
    seg_cloud = rep["totals"]["path.segment+cloud"]["median_ms"]
    cloud_total = rep["totals"]["cloud.total"]["median_ms"]
    assert seg_cloud >= cloud_total > 0
    assert rep["baselines"] == {}


def test_bad_repeat_and_point(flat_frame):
    with pytest.raises(PromptError, match="--repeat must be >= 1"):
        run_latency(flat_frame, (320, 240), repeat=0)
    with pytest.raises(PromptError, match="outside the 640x480 image"):
        run_latency(flat_frame, (900, 240), repeat=1)


def test_command_line_on_a_real_frame(real_dir, capsys):
    from graspseg.cli import main

    rc = main(
        [
            "bench",
            "latency",
            "--frame",
            str(real_dir / "red_mug"),
            "--point",
            "330,260",
            "--repeat",
            "1",
            "--warmup",
            "0",
            "--quiet",
        ]
    )
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["frame"] == "red_mug" and rep["image_size_wh"] == [640, 480]
    assert rep["num_object_points"] > 5000
    assert np.isfinite(rep["totals"]["cloud.total"]["median_ms"])
