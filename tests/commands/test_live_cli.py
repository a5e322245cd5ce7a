"""graspseg devices / live / record as a user runs them, on the synthetic camera (no hardware)."""

from __future__ import annotations

import json
import threading

import pytest

pytest.importorskip("pyrealsense2")

from graspseg.capture.episode import Episode  # noqa: E402
from graspseg.capture.realsense import is_realsense_recording, list_devices  # noqa: E402
from graspseg.cli import main  # noqa: E402


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_devices_lists_cameras_as_json(capsys):
    assert main(["devices"]) == 0
    doc = _json(capsys)
    assert doc["count"] == len(doc["devices"]) == len(list_devices())


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    out = tmp_path_factory.mktemp("record")
    rc = main(["--quiet", "record", "--source", "synthetic", "--size", "320x240", "--duration", "1.5",
               "--out", str(out / "ep"), "--db3", str(out / "raw.db3")])
    assert rc == 0
    return out


def test_record_writes_an_episode_and_the_sdk_recording(recorded):
    ep = Episode(recorded / "ep")
    assert ep.closed and len(ep) >= 10 and ep.meta["source"] == "synthetic"
    rec = ep.records[0]
    assert {"device_timestamp_ms", "color_frame_number", "depth_frame_number", "host_timestamp_s"} <= set(rec.extra)
    f = ep.frame(len(ep) - 1)
    assert (f.width, f.height) == (320, 240) and f.depth_m.max() > 0.2
    assert is_realsense_recording(recorded / "raw.db3")


def test_live_on_the_synthetic_camera_records_views_and_writes_the_last_result(tmp_path, capsys):
    before = threading.active_count()
    rc = main(["--quiet", "live", "--source", "synthetic", "--size", "320x240", "--duration", "3",
               "--viewer", str(tmp_path / "live.rrd"), "--record", str(tmp_path / "ep"), "--out", str(tmp_path / "res"),
               "--loop.schedule=every_frame"])
    assert rc == 0
    doc = _json(capsys)
    st = doc["status"]
    assert st["results"] >= 3 and st["mode"] == "every_frame" and st["error"] is None
    assert st["recording"]["written"] >= 10 and len(Episode(tmp_path / "ep")) == st["recording"]["written"]
    assert doc["viewer"]["results_logged"] >= 3
    assert (tmp_path / "live.rrd").read_bytes()[:4] == b"RRF2"  # a rerun recording
    last = doc["last_result"]
    assert last["status"] == "ok" and last["result"]["segmentation"]["mask_area_px"] > 100
    assert (tmp_path / "res" / "overlay.png").is_file() and (tmp_path / "res" / "result.json").is_file()
    assert threading.active_count() <= before + 1  # the rerun SDK may keep one sink thread


def test_live_plays_a_recording_to_its_end(recorded, capsys):
    rc = main(["--quiet", "live", "--source", str(recorded / "raw.db3"), "--prompt", "point:160,120",
               "--loop.schedule=every_frame"])
    assert rc == 0
    st = _json(capsys)["status"]
    assert st["stopped_reason"].startswith("the source ended after") and st["frames"] >= 10


@pytest.mark.parametrize("argv, message", [
    (["live", "--source", "synthetic", "--prompt", "pt:1,2"], "unknown kind 'pt'"),
    (["live", "--source", "synthetic", "--prompt", "point:1"], "two numbers U,V"),
    (["live", "--source", "missing.db3", "--prompt", "point:1,2"], "missing.db3 does not exist"),
    (["live", "--source", "camera.mp4", "--prompt", "point:1,2"], "expected 'realsense', 'synthetic' or a RealSense"),
    (["live", "--source", "synthetic", "--size", "640"], "must look like 640x480"),
    (["live", "--source", "synthetic", "--duration", "-1"], "--duration must be > 0"),
    (["live", "--source", "synthetic", "--camera.fps_max=3"], "fps_max"),
    (["record", "--source", "synthetic", "--duration", "1", "--out", "x", "--segment.backend=sam"],
     "--camera.<field>=value overrides only"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_no_camera_is_one_line_naming_what_to_check(capsys):
    if list_devices():
        pytest.skip("a RealSense camera is connected")
    assert main(["live", "--prompt", "point:10,10", "--duration", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no RealSense camera found" in err[0] and "USB 3" in err[0]
