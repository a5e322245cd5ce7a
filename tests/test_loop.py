"""PerceptionLoop on a synthetic moving object whose masks are known: schedules, staleness, faults, threads."""

from __future__ import annotations

import time

import numpy as np
import pytest

from graspseg.bench.loop import DelayedEncoder
from graspseg.capture.realsense import EndOfRecording
from graspseg.core import CameraRig, RGBDFrame, Transform
from graspseg.core.errors import CaptureTimeoutError, ConfigError, PromptError, ShapeError
from graspseg.loop import LoopConfig, PerceptionLoop
from graspseg.pipeline import Pipeline
from graspseg.segment import Prompt, create_segmenter
from graspseg.segment.tracking import mask_iou
from graspseg.sim.moving import moving_object_sequence


@pytest.fixture(scope="module")
def seq():
    return moving_object_sequence(width=320, height=240, fps=30.0, period_s=1.0, amplitude_m=0.03)


@pytest.fixture(autouse=True)
def _every_test_joins_its_threads(no_thread_leak):
    yield


class Paced:
    """``read()`` gives frame k of the sequence at ``fps``; ends after ``n`` frames; ``edit(k, frame)`` may change it."""

    def __init__(self, seq, *, fps=30.0, n=None, edit=None, pose=None):
        self.seq, self.fps, self.n, self.edit, self.pose = seq, fps, n, edit, pose
        self.k = 0
        self.t0 = None

    def read(self):
        if self.t0 is None:
            self.t0 = time.perf_counter()
        if self.n is not None and self.k >= self.n:
            raise EndOfRecording("end of the test sequence")
        wait = self.t0 + self.k / self.fps - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        c, d = self.seq.frame_at(self.k)
        f = RGBDFrame(c, d, self.seq.intrinsics, self.k / self.fps, self.pose, f"{self.k:06d}")
        if self.edit is not None:
            f = self.edit(self.k, f)
        self.k += 1
        return f


def _collect(loop, seconds, *, until=None):
    """New results seen by a poller at 100 Hz for ``seconds`` (or until ``until(results)``)."""
    out, last = [], -1
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds and loop.running:
        r = loop.latest()
        if r is not None and r.sequence != last:
            last = r.sequence
            out.append(r)
            if until is not None and until(out):
                break
        time.sleep(0.01)
    return out


def _prompt(seq):
    return Prompt.from_point(*seq.prompt_point(0))


def _iou(seq, r):
    return mask_iou(r.mask, seq.mask_at(int(r.frame.frame_id)))


def test_every_frame_schedule_follows_the_moving_object(seq):
    with PerceptionLoop(Paced(seq), _prompt(seq), config=LoopConfig(schedule="every_frame")) as loop:
        results = _collect(loop, 4.0, until=lambda rs: sum(r.ok for r in rs) >= 8)
    ok = [r for r in results if r.ok]
    assert len(ok) >= 8, loop.status()
    assert np.median([_iou(seq, r) for r in ok]) >= 0.85
    for r in ok:
        assert r.source == "keyframe" and r.keyframe_frame_id == r.frame.frame_id
        assert r.keyframe_age_s == pytest.approx(r.age_s) and r.latency_s > 0
        assert len(r.result.grasps) > 0 and r.result.cloud.points_in_camera.shape[1] == 3
    st = loop.status()
    assert st["mode"] == "every_frame" and st["running"] is False and st["stopped_reason"] == "stopped by the caller"
    assert st["latency_ms"]["p95"] is not None and st["results_per_s"] > 0


def test_slow_encoder_keyframes_with_propagation_in_between(seq):
    pipe = Pipeline(segmenter=DelayedEncoder(create_segmenter("rgbd"), 0.4))
    cfg = LoopConfig(keyframe_period_s=0.6)  # auto: a 400 ms encode is over the budget -> keyframes
    with PerceptionLoop(Paced(seq), _prompt(seq), pipeline=pipe, config=cfg) as loop:
        results = _collect(loop, 8.0, until=lambda rs: sum(r.source == "propagated" and r.ok for r in rs) >= 6
                           and loop.stats["keyframes"] >= 3)
    st = loop.status()
    assert st["mode"] == "keyframes" and st["keyframes"] >= 3 and st["verified"] + st["reanchored"] >= 1
    prop = [r for r in results if r.ok and r.source == "propagated"]
    assert len(prop) >= 6, st
    for r in prop:
        assert r.keyframe_frame_id != r.frame.frame_id and r.keyframe_age_s > r.age_s
        assert r.result.backend and r.result.boundary_error_px > 0  # the keyframe's boundary error carried over
    assert np.median([_iou(seq, r) for r in prop]) >= 0.85


def test_a_result_older_than_max_age_is_never_returned(seq):
    loop = PerceptionLoop(Paced(seq), _prompt(seq), config=LoopConfig(schedule="every_frame")).start()
    _collect(loop, 4.0, until=lambda rs: any(r.ok for r in rs))
    loop.stop()
    time.sleep(0.2)
    assert loop.latest(max_age_s=0.1) is None  # the camera stopped: nothing fresh, nothing passed off as fresh
    r = loop.latest()
    assert r is not None and r.age_s > 0.2
    assert r.added_uncertainty_m == pytest.approx(loop.config.object_speed_mps * r.age_s)


def test_results_are_re_expressed_for_the_wrist_motion_since_capture(seq):
    pose = Transform.from_xyz_quat_xyzw([0.4, 0.0, 0.5], [1, 0, 0, 0], "base", "tcp")
    rig = CameraRig(seq.intrinsics, Transform.identity("tcp", "camera_color_optical"), depth_scale=1e-4)
    pipe = Pipeline(rig=rig)
    with PerceptionLoop(Paced(seq, pose=pose), _prompt(seq), pipeline=pipe,
                        config=LoopConfig(schedule="every_frame")) as loop:
        _collect(loop, 4.0, until=lambda rs: any(r.ok for r in rs))
        moved = Transform.from_xyz_quat_xyzw([0.42, 0.0, 0.5], [1, 0, 0, 0], "base", "tcp")
        r = loop.latest(base_from_tcp_now=moved)
    assert r.motion_since_capture_m == pytest.approx(0.02) and r.motion_since_capture_rad == pytest.approx(0.0)
    assert np.linalg.norm(r.camera_now_from_camera.translation) == pytest.approx(0.02)
    assert r.camera_now_from_camera.to_frame == r.camera_now_from_camera.from_frame == "camera_color_optical"
    assert r.result.grasps.base_from_grasp is not None  # grasps in the base frame as well
    assert r.added_uncertainty_m > loop.config.object_speed_mps * r.age_s  # the wrist moved: the sync error adds


def test_a_lost_object_is_reported_and_a_new_prompt_is_asked_for(seq):
    def covered(k, f):  # frames 12..39: the lens is covered (no depth, dark)
        if 12 <= k < 40:
            return RGBDFrame(np.zeros_like(f.color), np.zeros_like(f.depth_m), f.intrinsics, f.timestamp_s,
                             None, f.frame_id)
        return f

    asked = []

    def on_lost(live):
        asked.append(live)
        return Prompt.from_point(*seq.prompt_point(45))  # the operator clicks the object again

    with PerceptionLoop(Paced(seq, edit=covered), _prompt(seq), config=LoopConfig(schedule="every_frame"),
                        on_lost=on_lost) as loop:
        results = _collect(loop, 10.0, until=lambda rs: any(r.ok and int(r.frame.frame_id) >= 45 for r in rs))
    lost = [r for r in results if r.status == "lost"]
    assert lost and all(r.result is None and r.reason for r in lost)
    assert len(asked) >= 1 and asked[0].status == "lost"
    after = [r for r in results if r.ok and int(r.frame.frame_id) >= 45]
    assert after and _iou(seq, after[0]) >= 0.8 and after[0].sequence > lost[0].sequence


def test_a_segmenter_raising_on_one_frame_does_not_stop_the_loop(seq):
    class FailsOnce:
        name = "fails-once"

        def __init__(self):
            self.inner, self.calls = create_segmenter("rgbd"), 0

        def set_frame(self, frame):
            self.calls += 1
            if self.calls == 4:
                raise ShapeError("synthetic failure on one frame")
            if self.calls == 7:
                raise RuntimeError("a third-party model failing on one frame")
            self.inner.set_frame(frame)

        def predict(self, prompt):
            return self.inner.predict(prompt)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    with PerceptionLoop(Paced(seq), _prompt(seq), pipeline=Pipeline(segmenter=FailsOnce()),
                        config=LoopConfig(schedule="every_frame")) as loop:
        _collect(loop, 5.0, until=lambda rs: sum(r.ok for r in rs) >= 6)
    st = loop.status()
    assert st["errors"] == 2 and st["results"] >= 6 and loop.error is None
    with pytest.raises(ConfigError, match="has been stopped"):
        loop.start()


def test_the_source_ending_stops_the_loop_with_the_reason(seq):
    loop = PerceptionLoop(Paced(seq, n=15), _prompt(seq), config=LoopConfig(schedule="every_frame")).start()
    deadline = time.monotonic() + 5
    while loop.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert loop.stopped_reason == "the source ended after 15 frames"
    loop.stop()
    assert loop.status()["frames"] == 15


def test_a_failing_source_is_raised_by_latest(seq):
    class Stalls(Paced):
        def read(self):
            if self.k == 5:
                raise CaptureTimeoutError("no frame from the camera within 1 s; check the USB 3 cable")
            return super().read()

    loop = PerceptionLoop(Stalls(seq), _prompt(seq)).start()
    deadline = time.monotonic() + 5
    while loop.running and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(CaptureTimeoutError, match="USB 3 cable"):
        loop.latest()
    assert "USB 3 cable" in loop.stop()["error"]


def test_a_prompt_outside_the_image_stops_the_loop_with_a_typed_error(seq):
    loop = PerceptionLoop(Paced(seq), Prompt.from_point(900, 50)).start()
    deadline = time.monotonic() + 5
    while loop.running and time.monotonic() < deadline:
        time.sleep(0.02)
    loop.stop()
    with pytest.raises(PromptError, match=r"point \(900, 50\) is outside the 320x240 image"):
        loop.latest()


def test_a_planner_that_stops_asking_stops_the_loop(seq):
    loop = PerceptionLoop(Paced(seq), _prompt(seq), config=LoopConfig(idle_stop_s=0.5)).start()
    deadline = time.monotonic() + 5
    while loop.running and time.monotonic() < deadline:
        time.sleep(0.05)
    loop.stop()
    assert "nobody called latest() for 0.5 s" in loop.stopped_reason and loop.error is None


def test_bad_loop_arguments_are_refused(seq):
    with pytest.raises(ConfigError, match="loop.schedule"):
        LoopConfig(schedule="sometimes")
    with pytest.raises(ConfigError, match="verify_iou"):
        LoopConfig(verify_iou=1.5)
    with pytest.raises(PromptError, match="graspseg Prompt"):
        PerceptionLoop(Paced(seq), (10, 10))
    with pytest.raises(ValueError, match="read\\(\\) or be an iterable"):
        PerceptionLoop(42, _prompt(seq))


def test_live_camera_to_loop_with_recording_end_to_end(seq, tmp_path):
    pytest.importorskip("pyrealsense2")
    from graspseg.capture.episode import Episode
    from graspseg.capture.realsense import RealSenseConfig, RealSenseSource
    from graspseg.capture.realsense_synthetic import SoftwareCamera
    from graspseg.capture.session import SessionRecorder

    intr = seq.intrinsics
    cam = SoftwareCamera(intr, depth_scale=1e-4, depth_to_color_translation_m=(0.0, 0.0, 0.0))
    cfg = RealSenseConfig(color_width=intr.width, color_height=intr.height, depth_width=intr.width,
                          depth_height=intr.height, frame_timeout_s=1.0)
    source = RealSenseSource(cfg, device=cam.device)
    recorder = SessionRecorder(tmp_path / "ep")
    loop = PerceptionLoop(source, _prompt(seq), config=LoopConfig(schedule="every_frame"), recorder=recorder)
    with loop:
        cam.play(seq.frame_at)
        try:
            results = _collect(loop, 6.0, until=lambda rs: sum(r.ok for r in rs) >= 4)
        finally:
            loop.stop()
            cam.stop()
    ok = [r for r in results if r.ok]
    assert len(ok) >= 4
    ious = [mask_iou(r.mask, seq.mask_at(int(r.frame.meta["color_frame_number"]))) for r in ok]
    assert np.median(ious) >= 0.85
    st = loop.status()
    assert st["source"]["frames"] == st["frames"] and st["recording"]["written"] > 0
    ep = Episode(tmp_path / "ep")
    assert ep.closed and len(ep) == st["recording"]["written"]
    assert ep.records[0].prompt == _prompt(seq).to_dict() and "color_frame_number" in ep.records[0].extra


@pytest.fixture(scope="module")
def sam2_tracker(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from graspseg.segment.backends import hf_testing
    from graspseg.segment.tracking import create_tracker

    ckpt = hf_testing.save_checkpoint("Sam2VideoModel", hf_testing.sam2_video_config(),
                                      tmp_path_factory.mktemp("sam2") / "sam2v")
    return create_tracker("sam2", model=ckpt, device="cpu", window=2, presence_threshold=0.0)


@pytest.mark.slow
def test_sam2_video_tracker_propagates_between_keyframes(seq, sam2_tracker):
    pipe = Pipeline(segmenter=DelayedEncoder(create_segmenter("rgbd"), 0.3))
    cfg = LoopConfig(schedule="keyframes", keyframe_period_s=0.3)
    with PerceptionLoop(Paced(seq), _prompt(seq), pipeline=pipe, config=cfg, tracker=sam2_tracker) as loop:
        results = _collect(loop, 12.0, until=lambda rs: sum(r.source == "propagated" for r in rs) >= 2
                           and loop.stats["verified"] + loop.stats["reanchored"] >= 1)
    prop = [r for r in results if r.source == "propagated"]
    assert len(prop) >= 2 and loop.stats["verified"] + loop.stats["reanchored"] >= 1, loop.status()
    for r in prop:  # random weights: the masks mean nothing, the mechanics do
        assert r.keyframe_age_s >= r.age_s and (r.result is None or r.result.mask_set.backend == "tracker:sam2")
    assert sam2_tracker.state_size()["frames"] <= 2 + 2  # the video state stays bounded
