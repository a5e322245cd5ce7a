"""The ``graspseg bench quality`` benchmark on the frame shipped in the package (no synthetic scenes)."""

import argparse
import json

import pytest

from graspseg.bench import quality
from graspseg.core.errors import InputError


def _args(tmp_path, data, **kw):
    ns = dict(data=str(data), no_real=False, synthetic=0, layouts=["side_by_side"], objects=3, noise="on",
              backend="rgbd", granularity="whole", tolerance_px=2.0, repeat=1, no_baselines=True,
              overlays=str(tmp_path / "ov"), quiet=True)
    ns.update(kw)
    return argparse.Namespace(**ns)


def test_quality_report_on_the_sample_frame(tmp_path, sample_frame_dir):
    # a folder holding the one shipped frame folder
    data = tmp_path / "frames"
    data.mkdir()
    (data / "sample").symlink_to(sample_frame_dir, target_is_directory=True)
    report = quality.run_quality(_args(tmp_path, data))
    assert report["schema_version"] == quality.SCHEMA_VERSION and report["units"]["time"] == "ms"
    frames = report["real"]["frames"]
    assert len(frames) == 1 and frames[0]["objects"][0]["object"] == "red_mug"
    row = frames[0]["objects"][0]
    assert row["iou"] > 0.93 and row["boundary_f"] > 0.9 and 0 < row["boundary_iou"] <= 1
    assert report["real"]["mean_iou"] == row["iou"]
    assert report["timing_ms"]["set_frame_median"] > 0 and report["timing_ms"]["predict_median"] > 0
    assert report["met"]["real_mean_iou"] is True
    assert report["synthetic"]["mean_iou"] is None
    assert (tmp_path / "ov" / "sample_red_mug.png").is_file()
    json.dumps(report)  # serialisable


def test_quality_bad_arguments(tmp_path, capsys):
    with pytest.raises(InputError, match="--repeat must be >= 1"):
        quality.run(_args(tmp_path, tmp_path, repeat=0))
    with pytest.raises(InputError, match="--synthetic must be >= 0"):
        quality.run(_args(tmp_path, tmp_path, synthetic=-1))
    with pytest.raises(InputError, match="is not a directory"):
        quality.run_quality(_args(tmp_path, tmp_path / "missing"))
