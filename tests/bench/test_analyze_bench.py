"""``graspseg bench analyze`` runs end to end on a tiny setting and reports every figure it promises."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pybullet")
pytest.importorskip("pyarrow")

from graspseg.cli import main  # noqa: E402


def test_bench_analyze_tiny(tmp_path, capsys):
    code = main(["bench", "analyze", "--episodes", "1", "--frames", "6", "--size", "320x240", "--executors", "local",
                 "--workers", "1,2", "--data", str(tmp_path / "data"), "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and set(out["runs"]) == {"local-1", "local-2"}
    assert out["results_identical"] is True and out["speedup_1_to_2"]["local"]["median"] > 0
    run = out["runs"]["local-1"]
    assert run["frames"] == 6 and run["frames_per_s_per_worker"]["median"] > 0
    assert set(run["per_frame_median_ms"]) == {"read", "track", "perceive"}
    assert set(out["verdicts"]) == {"frames_per_s_per_worker>=20", "speedup_1_to_2>=1.8", "mean_iou>=0.85",
                                    "events_within_3_frames"}
    assert out["machine"]["cpu_count"] >= 1
    assert (tmp_path / "data" / "bench_spec.json").is_file()  # episodes kept for the next run
    with pytest.raises(SystemExit):
        main(["bench", "analyze", "--bogus"])
    assert main(["bench", "analyze", "--executors", "spark", "--quiet"]) == 2
    assert "--executors takes local and/or ray" in capsys.readouterr().err
