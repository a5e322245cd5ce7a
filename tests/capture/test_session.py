"""Recording a live session: frames, device timestamps and prompts land in the episode; a slow disk drops
frames (counted) instead of blocking the camera."""

from __future__ import annotations

import threading
import time

import numpy as np

from graspseg.capture.episode import Episode, EpisodeWriter
from graspseg.capture.session import SessionRecorder
from graspseg.core import RGBDFrame
from graspseg.segment import Prompt


def _frame(flat_frame, k: int) -> RGBDFrame:
    depth = flat_frame.depth_m.copy()
    depth[0, 0] = 0.5 + 0.001 * k
    meta = {"device_timestamp_ms": 1.7e12 + 33.3 * k, "color_frame_number": 100 + k, "depth_frame_number": 200 + k,
            "timestamp_domain": "global_time", "depth_scale": 1e-4, "not_recorded": "x"}
    return RGBDFrame(flat_frame.color, depth, flat_frame.intrinsics, 1.7e9 + k / 30, None, f"{k:06d}", meta)


def test_frames_prompts_and_device_fields_are_recorded(tmp_path, flat_frame):
    a, b = Prompt.from_point(320, 240).to_dict(), Prompt.from_box(10, 10, 50, 50).to_dict()
    with SessionRecorder(tmp_path / "ep", meta={"robot": "fr3"}) as rec:
        for k in range(4):
            assert rec.submit(_frame(flat_frame, k), prompt=a if k < 2 else b)
    assert rec.summary() == {"folder": str(tmp_path / "ep"), "written": 4, "dropped": 0, "error": None}
    ep = Episode(tmp_path / "ep")
    assert ep.closed and len(ep) == 4 and ep.meta["robot"] == "fr3"
    assert [r.prompt for r in ep.records] == [a, None, b, None]  # stored where it comes into force
    assert ep.records[3].extra == {"device_timestamp_ms": 1.7e12 + 33.3 * 3, "color_frame_number": 103,
                                   "depth_frame_number": 203, "timestamp_domain": "global_time", "depth_scale": 1e-4}
    back = ep.frame(2)
    np.testing.assert_allclose(back.depth_m, _frame(flat_frame, 2).depth_m, atol=1e-4)
    assert back.meta["color_frame_number"] == 102


def test_a_slow_disk_drops_frames_and_counts_them(tmp_path, flat_frame, monkeypatch):
    real = EpisodeWriter.commit
    gate = threading.Event()

    def slow(self, *a, **kw):
        gate.wait(2.0)
        return real(self, *a, **kw)

    monkeypatch.setattr(EpisodeWriter, "commit", slow)
    rec = SessionRecorder(tmp_path / "ep", queue_frames=2).start()
    t0 = time.monotonic()
    accepted = [rec.submit(_frame(flat_frame, k)) for k in range(10)]
    assert time.monotonic() - t0 < 0.5  # never blocks the caller
    gate.set()
    summary = rec.close()
    assert summary["written"] + summary["dropped"] == 10 and summary["dropped"] >= 7
    assert summary["written"] == sum(accepted) and len(Episode(tmp_path / "ep")) == summary["written"]


def test_frames_encoded_in_parallel_are_committed_in_capture_order(tmp_path, flat_frame):
    with SessionRecorder(tmp_path / "ep", workers=3) as rec:
        for k in range(9):
            rec.submit(_frame(flat_frame, k))
    ep = Episode(tmp_path / "ep")
    assert [r.frame_id for r in ep.records] == [f"{k:06d}" for k in range(9)]
    assert [r.extra["color_frame_number"] for r in ep.records] == list(range(100, 109))
    assert not any(p.name.startswith(".tmp-") for p in (tmp_path / "ep" / "frames").iterdir())
