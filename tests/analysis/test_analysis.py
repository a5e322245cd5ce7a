"""Offline analysis on generated episodes: tracking through occlusion, outputs, executors, resume, bad input."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pybullet")
pytest.importorskip("pyarrow")

from graspseg.analysis import (  # noqa: E402
    COLUMNS,
    AnalysisConfig,
    analyze_source,
    read_table,
    run_analysis,
)
from graspseg.analysis.table import same_results  # noqa: E402
from graspseg.capture.episode import EpisodeWriter  # noqa: E402
from graspseg.capture.sources import list_episodes, open_episode  # noqa: E402
from graspseg.cli import main  # noqa: E402
from graspseg.core import BackendNotFoundError, ConfigError, RGBDFrame  # noqa: E402
from graspseg.sim.episodes import EpisodeSpec, write_occlusion_episode  # noqa: E402

SPEC = EpisodeSpec(frames=14, width=320, height=240, seed=0)


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    """Two synthetic occlusion episodes (320x240, 14 frames) and their ground-truth events."""
    root = tmp_path_factory.mktemp("episodes")
    truth = [write_occlusion_episode(root / f"ep_{k}", EpisodeSpec(**{**SPEC.__dict__, "seed": k})) for k in range(2)]
    return root, truth


def test_generated_episodes_hide_the_target_for_a_while(episodes):
    root, truth = episodes
    for t in truth:
        assert t["loss_frame"] is not None and t["reacquire_frame"] is not None
        assert 2 <= len(t["hidden_frames"]) <= 6  # hidden in the middle, visible at both ends
    ep = open_episode(root / "ep_0")
    assert len(ep) == 14 and ep.rig.tcp_from_camera is not None and ep.prompt(0)["points_uv"]
    vis = [ep.extra(i)["visible_fraction"] for i in range(len(ep))]
    assert vis[0] == 1.0 and min(vis) == 0.0 and vis[-1] > 0.5
    gt = ep.ground_truth(truth[0]["hidden_frames"][0])
    assert gt[0].name == "target" and gt[0].mask.sum() < 0.1 * ep.ground_truth(0)[0].mask.sum()


def test_tracking_through_occlusion_meets_the_targets(episodes):
    root, truth = episodes
    for k, t in enumerate(truth):
        a = analyze_source(open_episode(root / f"ep_{k}"))
        gt = a.summary["ground_truth"]
        assert gt["mean_iou"] >= 0.85, gt
        ev = gt["events"]
        assert ev["missed"] == 0 and ev["spurious"] == 0
        assert ev["loss"][0]["true_frame"] == t["loss_frame"] and ev["reacquire"][0]["true_frame"] == t["reacquire_frame"]
        assert ev["max_abs_delay_frames"] <= 3
        rows = a.rows
        assert all(not r["tracked"] for r in rows if r["gt_area_px"] == 0)  # wholly hidden: never a mask
        assert all(r["flagged"] and "lost" in r["flags"] for r in rows if not r["tracked"])
        assert all(np.isnan(r["center_x_m"]) for r in rows if not r["tracked"])
        # the pushed box moves along base +x at the episode's speed (3 mm per frame) on the steady frames
        steady = [r for r in rows if r["analysed"] and r["gt_visible_fraction"] == 1.0 and "jump" not in r["flags"]]
        assert len(steady) >= 3 and steady[0]["pose_frame"] == "base"
        x = np.array([r["center_x_m"] for r in steady])
        f = np.array([r["frame"] for r in steady])
        slope = np.polyfit(f, x, 1)[0]
        assert slope == pytest.approx(SPEC.push_m_per_frame, abs=1e-3)


def test_outputs_table_summary_report(episodes, tmp_path):
    root, _ = episodes
    run = run_analysis(list_episodes([root / "ep_0"]), tmp_path / "out", AnalysisConfig(overlays=3))
    assert run["complete"] and run["ok"] == 1 and run["frames"] == 14
    d = tmp_path / "out" / "ep_0"
    table = read_table(d / "results.parquet")
    assert table.column_names == list(COLUMNS) and table.num_rows == 14
    assert table.schema.field("center_x_m").metadata[b"unit"] == b"m"
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["flagged_frames"] == sum(table.column("flagged").to_pylist())
    assert summary["fingerprint"]["config"] == AnalysisConfig(overlays=3).fingerprint()
    html = (d / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 1 + len(list((d / "overlays").glob("*.png")))
    assert not re.search(r"(src|href)=['\"](http|/|\.\.)", html)  # self-contained
    assert "Target lost on" in html and "Re-acquired at frame" in html and "mean IoU" in html
    assert 2 <= len(list((d / "overlays").glob("*.png"))) <= 3
    assert json.loads((tmp_path / "out" / "analysis.json").read_text())["per_episode"][0]["status"] == "ok"


@pytest.mark.timeout(300)
def test_executors_give_identical_results(episodes, tmp_path):
    pytest.importorskip("ray")
    root, _ = episodes
    refs = list_episodes([root])
    cfg = AnalysisConfig(every=2, overlays=1)
    one = run_analysis(refs, tmp_path / "one", cfg, workers=1)
    two = run_analysis(refs, tmp_path / "two", cfg, workers=2)
    ray_run = run_analysis(refs, tmp_path / "ray", cfg, workers=2, executor="ray")
    assert one["ok"] == two["ok"] == ray_run["ok"] == 2
    for name in ("ep_0", "ep_1"):
        for other in ("two", "ray"):
            assert same_results(tmp_path / "one" / name / "results.parquet",
                                tmp_path / other / name / "results.parquet") == []
            a = json.loads((tmp_path / "one" / name / "summary.json").read_text())
            b = json.loads((tmp_path / other / name / "summary.json").read_text())
            a.pop("timing"), b.pop("timing")
            assert a == b
    rows = read_table(tmp_path / "one" / "ep_0" / "results.parquet").to_pydict()
    assert [f for f, a in zip(rows["frame"], rows["analysed"], strict=True) if a] == \
        [f for f, t in zip(rows["frame"], rows["tracked"], strict=True) if t and f % 2 == 0]


def test_resume_skips_finished_episodes(episodes, tmp_path):
    root, _ = episodes
    refs = list_episodes([root])
    cfg = AnalysisConfig(every=7, overlays=0)
    run_analysis(refs, tmp_path / "out", cfg)
    kept = tmp_path / "out" / "ep_0" / "summary.json"
    before = kept.stat().st_mtime_ns
    # a run killed while writing ep_1: its folder never appeared, a temporary set is left behind
    import shutil

    shutil.rmtree(tmp_path / "out" / "ep_1")
    (tmp_path / "out" / ".ep_1.graspseg-tmp-999999-x").mkdir()
    run = run_analysis(refs, tmp_path / "out", cfg, resume=True)
    assert run["resumed"] == 1 and run["ok"] == 2 and kept.stat().st_mtime_ns == before
    assert (tmp_path / "out" / "ep_1" / "results.parquet").is_file()
    assert not (tmp_path / "out" / ".ep_1.graspseg-tmp-999999-x").exists()
    run = run_analysis(refs, tmp_path / "out", AnalysisConfig(every=3, overlays=0), resume=True)
    assert run["resumed"] == 0  # another config: analysed again


def test_bad_episodes_are_reported_and_the_others_analysed(episodes, tmp_path, flat_frame):
    root, _ = episodes
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.bag").write_bytes(b"#ROSBAG V2.0\n" + os.urandom(300))
    with EpisodeWriter(bad / "no_prompt") as rec:
        rec.append(flat_frame)
    with EpisodeWriter(bad / "never_found") as rec:  # the click lands where the camera has no depth
        depth = flat_frame.depth_m.copy()
        depth[:, :200] = 0
        rec.append(RGBDFrame(flat_frame.color, depth, flat_frame.intrinsics), prompt={"points_uv": [[50, 50]]})
    refs = list_episodes([root / "ep_0", bad])
    run = run_analysis(refs, tmp_path / "out", AnalysisConfig(every=5, overlays=0))
    status = {e["episode"]: e for e in run["per_episode"]}
    assert status["ep_0"]["status"] == "ok" and run["errors"] == 3
    assert "cannot be read as a ROS bag" in status["broken"]["error"]
    assert "no prompt recorded with the episode; give the target with --point" in status["no_prompt"]["error"]
    assert "the target was not found on the prompted frame 0" in status["never_found"]["error"]
    s = json.loads((tmp_path / "out" / "broken" / "summary.json").read_text())
    assert s["status"] == "error" and s["episode"]["kind"] == "rosbag"


def test_config_errors():
    with pytest.raises(ConfigError, match="every must be an integer >= 1"):
        AnalysisConfig(every=0)
    with pytest.raises(ConfigError, match="jump_factor must be > 0"):
        AnalysisConfig(jump_factor=0)
    with pytest.raises(ConfigError, match="executor must be one of"):
        run_analysis(["x"], "/tmp/never", executor="spark")
    with pytest.raises(ConfigError, match="--ray-address needs --executor ray"):
        run_analysis(["x"], "/tmp/never", ray_address="auto")
    with pytest.raises(BackendNotFoundError, match="no tracker named 'kalman'; available: rgbd"):
        run_analysis(["x"], "/tmp/never", AnalysisConfig(tracker="kalman"))


def test_cli_analyze(episodes, tmp_path, capsys):
    root, _ = episodes
    bag = tmp_path / "in" / "rec"
    from graspseg.capture.rosbag import write_bag

    ep = open_episode(root / "ep_1")
    write_bag([ep.frame(i) for i in range(6)], bag, storage="mcap", tcp_from_camera=ep.rig.tcp_from_camera)
    u, v = ep.prompt(0)["points_uv"][0]
    code = main(["--quiet", "analyze", str(bag), "--out", str(tmp_path / "out"), "--point", f"{u},{v}",
                 "--every", "2"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["command"] == "analyze" and out["ok"] == 1 and out["frames"] == 6
    s = json.loads((tmp_path / "out" / "rec" / "summary.json").read_text())
    assert s["pose_frame"] == "base" and s["sync"]["frames"] == 6
    code = main(["--quiet", "analyze", str(bag), str(root / "nothing_here"), "--out", str(tmp_path / "o2")])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    code = main(["--quiet", "analyze", str(bag), "--out", str(tmp_path / "o3")])  # no prompt for a bag
    assert code == 3 and json.loads(capsys.readouterr().out)["errors"] == 1


def test_realsense_recordings_and_rrd_through_analyze(episodes, tmp_path, capsys):
    """An SDK .db3 of a rendered episode (and a copy cut short) analysed like the episode itself, with --rrd."""
    pytest.importorskip("pyrealsense2")
    rerun = pytest.importorskip("rerun")
    from collections import Counter

    from graspseg.capture.realsense_synthetic import EPOCH_START_MS, write_recording

    root, truth = episodes
    ep = open_episode(root / "ep_0")
    rec = write_recording([ep.frame(i) for i in range(len(ep))], tmp_path / "in" / "rs.db3")
    data = rec.read_bytes()
    (tmp_path / "in" / "cut.db3").write_bytes(data[: len(data) * 3 // 5])
    u, v = ep.prompt(0)["points_uv"][0]
    out = tmp_path / "out"
    code = main(["--quiet", "analyze", str(tmp_path / "in"), str(root / "ep_0"), "--out", str(out), "--point",
                 f"{u},{v}", "--rrd", "--workers", "2"])
    run = json.loads(capsys.readouterr().out)
    assert code == 0 and run["ok"] == 3, run["per_episode"]
    table = {name: read_table(out / name / "results.parquet").to_pydict() for name in ("rs", "cut", "ep_0")}
    rs, cut, native = table["rs"], table["cut"], table["ep_0"]
    # the same frames, tracked the same way (depth differs only by the SDK's alignment and 0.1 mm units)
    assert len(rs["frame"]) == len(ep) and rs["tracked"] == native["tracked"] and not all(rs["tracked"])
    assert rs["track_event"] == native["track_event"]
    assert np.allclose(rs["mask_area_px"], native["mask_area_px"], rtol=0.02, atol=5)
    assert rs["frame_id"] == [f"{k:06d}" for k in range(len(ep))]  # the camera's frame numbers
    assert np.allclose(rs["timestamp_s"], [(EPOCH_START_MS + k * 1000 / 30) / 1e3 for k in range(len(ep))])
    summary = json.loads((out / "rs" / "summary.json").read_text())
    assert summary["episode"]["kind"] == "realsense" and summary["problems"] == []
    assert summary["sync"]["frames"] == len(ep) and summary["pose_frame"] == "camera_color_optical"
    # the recording cut short: analysed up to its break, which the summary names
    n = len(cut["frame"])
    assert 2 <= n < len(ep)
    assert cut["tracked"] == rs["tracked"][:n] and cut["mask_area_px"] == rs["mask_area_px"][:n]
    problems = json.loads((out / "cut" / "summary.json").read_text())["problems"]
    assert re.search(rf"cut.db3 is cut short: \d+ of the {len(data)} bytes .* read up to its break: {n} colour "
                     rf"frames, the last #{n - 1}", problems[0])
    # the .rrd: rerun reads it back, every frame is in it with its status line
    for name in ("rs", "cut"):
        rrd = out / name / "episode.rrd"
        rows: Counter = Counter()
        for chunk in rerun.chunk.RrdReader(rrd).store().stream():
            rows[chunk.entity_path] += chunk.num_rows
        frames = len(table[name]["frame"])
        assert rows["/camera/image"] == rows["/status"] == rows["/metrics/track_score"] == frames
        assert rows["/camera/image/mask"] == rows["/camera/grasps"] == frames
        assert rows["/metrics/best_worst_margin_mm"] == int(np.isfinite(table[name]["best_worst_margin_mm"]).sum())
    import subprocess
    import sys

    cli = Path(sys.executable).with_name("rerun")
    if cli.is_file():
        done = subprocess.run([str(cli), "rrd", "verify", str(out / "rs" / "episode.rrd")], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr


def test_rrd_output_needs_the_viz_extra(episodes, tmp_path, monkeypatch):
    import sys

    from graspseg.core.errors import MissingDependencyError

    root, _ = episodes
    monkeypatch.setitem(sys.modules, "rerun", None)
    with pytest.raises(MissingDependencyError, match=r"'rerun-sdk' is not installed \(needed for episode .rrd "
                                                      r"recordings \(--rrd\)\).*graspseg\[viz\]"):
        run_analysis(list_episodes([root / "ep_0"]), tmp_path / "out", AnalysisConfig(rrd=True))
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="rrd must be true or false"):
        AnalysisConfig(rrd="yes")


def test_every_column_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "analysis.md").read_text()
    missing = [c for c in COLUMNS if f"| `{c}` |" not in doc]
    assert missing == []


def test_sam2_video_tracker_drives_the_analysis(episodes, tmp_path):
    """The SAM 2 path (tiny random weights: the masks mean nothing, the plumbing is what is checked)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from graspseg.segment.backends import hf_testing

    ckpt = hf_testing.save_checkpoint("Sam2VideoModel", hf_testing.sam2_video_config(), tmp_path / "sam2v")
    root, _ = episodes
    cfg = AnalysisConfig(tracker="sam2", tracker_options={"model": str(ckpt), "device": "cpu",
                                                          "presence_threshold": 0.0, "mask_threshold": -1e6},
                         every=20)

    class FirstFrames:  # the episode's first 2 frames (any object with the EpisodeSource members will do)
        def __init__(self, src):
            self.src = src
            self.ref, self.rig, self.meta, self.problems, self.sync = src.ref, src.rig, src.meta, src.problems, {}

        def __len__(self):
            return 2

        def __getattr__(self, name):  # frame, prompt, extra, ground_truth
            return getattr(self.src, name)

    a = analyze_source(FirstFrames(open_episode(root / "ep_0")), cfg)
    assert len(a.rows) == 2 and a.summary["tracker"] == "sam2"
    assert a.rows[0]["tracked"] and (a.rows[0]["analysed"] or a.rows[0]["error"])  # the pipeline ran on frame 0
    assert not any(r["analysed"] for r in a.rows[1:])
    assert all(r["track_score"] >= 0 for r in a.rows)
