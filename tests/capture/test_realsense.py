"""RealSenseSource and RealSense recordings end to end on rs.software_device (no camera)."""

from __future__ import annotations

import re
import sqlite3
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("pyrealsense2")

from graspseg.capture.realsense import (  # noqa: E402
    DepthFilters,
    EndOfRecording,
    RealSenseConfig,
    RealSenseRecording,
    RealSenseSource,
    describe_device,
    is_realsense_recording,
    list_devices,
    map_realsense_error,
    open_realsense_recording,
)
from graspseg.capture.realsense_synthetic import EPOCH_START_MS, SoftwareCamera  # noqa: E402
from graspseg.core import CameraIntrinsics  # noqa: E402
from graspseg.core.errors import (  # noqa: E402
    CaptureTimeoutError,
    ConfigError,
    DeviceNotConnectedError,
    InputError,
)

W, H = 160, 120
INTR = CameraIntrinsics(W, H, 150.0, 151.0, 79.5, 59.5)


def _cfg(**kw) -> RealSenseConfig:
    base = dict(color_width=W, color_height=H, depth_width=W, depth_height=H, frame_timeout_s=0.5,
                reconnect_attempts=0)
    return RealSenseConfig(**(base | kw))


def _images(n: int, depth_raw: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    """Colour with the frame number in pixel (0, 0) and a depth ramp in raw units."""
    color = np.zeros((H, W, 3), np.uint8)
    color[..., 1] = np.arange(W, dtype=np.uint8)[None, :]
    color[0, 0] = (n % 256, n // 256, 7)
    depth = np.full((H, W), depth_raw, np.uint16) + np.arange(H, dtype=np.uint16)[:, None]
    return color, depth


def _stream(cam: SoftwareCamera, src: RealSenseSource, n: int, start: int = 0, **kw):
    cam.push(*_images(start), frame_number=start)  # the syncer releases a stream's first frame unpaired
    frames = []
    for k in range(start + 1, start + 1 + n):
        cam.push(*_images(k, **kw), frame_number=k)
        frames.append(src.read())
    return frames


def test_frames_carry_device_intrinsics_depth_scale_timestamps_and_are_copied_out(no_thread_leak):
    cam = SoftwareCamera(INTR, depth_scale=1e-4, depth_to_color_translation_m=(0.0, 0.0, 0.0))
    with RealSenseSource(_cfg(), device=cam.device) as src:
        frames = _stream(cam, src, 24)  # more than librealsense's ~16-frame pool, all held at once
    assert src.depth_scale == pytest.approx(1e-4)
    for f in frames:
        n = int(f.meta["color_frame_number"])
        color, depth = _images(n)
        assert f.frame_id == f"{n:06d}" and f.meta["depth_frame_number"] == n
        np.testing.assert_array_equal(f.color, color)  # each held frame kept its own pixels
        valid = f.depth_m > 0  # rs.align leaves a few rounding holes even between identical cameras
        assert valid.mean() > 0.95
        np.testing.assert_allclose(f.depth_m[valid], (depth * 1e-4)[valid], rtol=1e-6)
        assert f.intrinsics == INTR
        assert f.meta["device_timestamp_ms"] == pytest.approx(EPOCH_START_MS + n * 1000 / 30)
        assert f.timestamp_s == pytest.approx(f.meta["device_timestamp_ms"] / 1000)  # global_time: host clock
        assert f.meta["timestamp_domain"] == "global_time" and f.meta["serial"] == cam.serial
        assert abs(f.meta["host_timestamp_s"] - time.time()) < 60
    numbers = [int(f.meta["color_frame_number"]) for f in frames]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers) >= 20
    assert src.stats["frames"] == 24 and src.stats["skipped_frame_numbers"] == 0
    info = describe_device(cam.device, modes=True)
    assert info["serial"] == cam.serial and info["usb_type"] == "3.2"
    assert {"stream": "depth", "format": "z16", "width": W, "height": H, "fps": 30} in [
        {k: m[k] for k in ("stream", "format", "width", "height", "fps")} for m in info["modes"]]


def test_depth_is_aligned_to_colour_or_colour_to_depth(no_thread_leak):
    depth_intr = CameraIntrinsics(W, H, 120.0, 120.0, 80.0, 60.0)
    cam = SoftwareCamera(INTR, depth_intrinsics=depth_intr, depth_scale=1e-3,
                         depth_to_color_translation_m=(0.015, 0.0, 0.0))
    with RealSenseSource(_cfg(), device=cam.device) as src:
        f = _stream(cam, src, 2, depth_raw=500)[-1]
    assert f.intrinsics == INTR  # registered to the colour camera
    inner = f.depth_m[20:100, 30:130]
    assert (inner > 0).mean() > 0.95
    np.testing.assert_allclose(np.median(inner[inner > 0]), 0.5 + 0.06, atol=0.03)  # the ramp, seen by colour
    with RealSenseSource(_cfg(align_depth_to_color=False), device=cam.device) as src:
        g = _stream(cam, src, 2, start=10, depth_raw=500)[-1]
    assert g.intrinsics == depth_intr  # registered to the depth camera
    np.testing.assert_allclose(g.depth_m[:, 5], (500 + np.arange(H)) * 1e-3, rtol=1e-5)


def test_post_filters_threshold_and_decimation(no_thread_leak):
    cam = SoftwareCamera(INTR, depth_scale=1e-3, depth_to_color_translation_m=(0.0, 0.0, 0.0))
    filters = DepthFilters(threshold_min_m=0.2, threshold_max_m=0.55)
    with RealSenseSource(_cfg(filters=filters), device=cam.device) as src:
        f = _stream(cam, src, 2, depth_raw=500)[-1]
    rows = 500 + np.arange(H)
    assert (f.depth_m[rows <= 550] > 0).mean() > 0.9 and (f.depth_m[rows > 552] == 0).all()
    cfg = _cfg(filters=DepthFilters(decimation=2), align_depth_to_color=False)
    with RealSenseSource(cfg, device=cam.device) as src:
        g = _stream(cam, src, 2, start=10)[-1]
    assert (g.width, g.height) == (W // 2, H // 2)  # the SDK rescales the intrinsics with the image
    assert g.intrinsics.fx == pytest.approx(INTR.fx / 2, rel=0.02)


def test_a_mode_the_camera_lacks_lists_the_modes_it_has():
    cam = SoftwareCamera(INTR)
    with pytest.raises(ConfigError, match=r"no color mode 1280x720@30; it offers: 160x120@30 rgb8"):
        RealSenseSource(_cfg(color_width=1280, color_height=720), device=cam.device).open()
    with pytest.raises(ConfigError, match="visual_preset"):
        RealSenseConfig(visual_preset="fast")
    with pytest.raises(ConfigError, match="decimation"):
        DepthFilters(decimation=0)
    with pytest.raises(ConfigError, match="threshold_min_m"):
        DepthFilters(threshold_min_m=2.0, threshold_max_m=1.0)


def test_no_camera_is_a_typed_error_naming_what_to_check():
    if list_devices():
        pytest.skip("a RealSense camera is connected")
    with pytest.raises(DeviceNotConnectedError, match="no RealSense camera found.*USB 3 port.*no other process"):
        RealSenseSource(RealSenseConfig()).open()


def test_a_camera_that_stops_delivering_is_reconnected_and_comes_back(no_thread_leak):
    cam = SoftwareCamera(INTR)
    cfg = _cfg(frame_timeout_s=0.3, reconnect_attempts=3, reconnect_backoff_s=0.05)
    with RealSenseSource(cfg, device=cam.device) as src:
        _stream(cam, src, 2)
        # the camera goes silent; frames come back while the source is reconnecting
        resume = threading.Timer(0.5, lambda: [cam.push(*_images(k), frame_number=k) or time.sleep(0.02)
                                               for k in range(50, 60)])
        resume.start()
        f = src.read()
        resume.join()
    assert int(f.meta["color_frame_number"]) >= 50
    assert src.stats["timeouts"] >= 1 and src.stats["reconnects"] >= 1


def test_a_silent_camera_raises_capture_timeout_after_the_reconnections():
    cam = SoftwareCamera(INTR)
    cfg = _cfg(frame_timeout_s=0.15, reconnect_attempts=2, reconnect_backoff_s=0.01)
    with RealSenseSource(cfg, device=cam.device) as src:
        t0 = time.monotonic()
        with pytest.raises(CaptureTimeoutError, match=r"within 0.15 s after 2 reconnection\(s\).*USB 3 port"):
            src.read()
    assert time.monotonic() - t0 < 3 and src.stats["reconnects"] == 2


def test_an_unplugged_camera_raises_device_not_connected():
    cam = SoftwareCamera(INTR)
    calls = []

    def factory():
        calls.append(1)
        return cam.device if len(calls) == 1 else None  # gone after the first connection

    cfg = _cfg(frame_timeout_s=0.1, reconnect_attempts=2, reconnect_backoff_s=0.01)
    with RealSenseSource(cfg, device=factory) as src:
        with pytest.raises(DeviceNotConnectedError, match=r"factory returned no device.*gave up after 2"):
            src.read()
    assert len(calls) == 3


def test_interrupt_ends_a_waiting_read_at_once(no_thread_leak):
    cam = SoftwareCamera(INTR)
    src = RealSenseSource(_cfg(frame_timeout_s=5.0, reconnect_attempts=3), device=cam.device).open()
    threading.Timer(0.2, src.interrupt).start()
    t0 = time.monotonic()
    with pytest.raises(EndOfRecording):
        src.read()
    assert time.monotonic() - t0 < 1.5
    src.close()


@pytest.mark.parametrize("message, kind", [
    ("Frame didn't arrive within 5000", CaptureTimeoutError),
    ("No device connected", DeviceNotConnectedError),
    ("failed to set power state", DeviceNotConnectedError),
    ("Device or resource busy", DeviceNotConnectedError),
    ("Couldn't resolve requests", ConfigError),
    ("something else entirely", DeviceNotConnectedError),
])
def test_bare_runtime_errors_are_mapped(message, kind):
    err = map_realsense_error(RuntimeError(message), "opening the camera")
    assert isinstance(err, kind) and message in str(err) and "opening the camera" in str(err)


# --------------------------------------------------------------------------------------------------
# recordings
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "session.db3"
    cam = SoftwareCamera(INTR, depth_scale=1e-4, depth_to_color_translation_m=(0.0, 0.0, 0.0))
    with RealSenseSource(_cfg(), device=cam.device, record_db3=path) as src:
        live = _stream(cam, src, 30)
    return path, live


def test_a_db3_recording_plays_back_every_recorded_frame_exactly(recording, no_thread_leak):
    path, live = recording
    assert is_realsense_recording(path)
    with open_realsense_recording(path) as rec:
        assert len(rec) == 31  # the recorder kept frame 0 too (the live syncer released it unpaired)
        back = list(rec)
        with pytest.raises(EndOfRecording):
            rec.read()
    assert [int(f.meta["color_frame_number"]) for f in back] == list(range(31))  # all, in order, once
    assert rec.sync["frames"] == 31 and rec.sync["dropped_no_depth_within_tolerance"] == 0 and rec.problems == []
    by_number = {int(f.meta["color_frame_number"]): f for f in back}
    for f in live:
        g = by_number[int(f.meta["color_frame_number"])]
        np.testing.assert_array_equal(g.color, f.color)
        np.testing.assert_array_equal(g.depth_m, f.depth_m)
        assert g.intrinsics == f.intrinsics and g.meta["depth_scale"] == pytest.approx(1e-4)
        assert g.meta["device_timestamp_ms"] == pytest.approx(f.meta["device_timestamp_ms"])
        assert g.timestamp_s == pytest.approx(f.timestamp_s)
    assert rec.intrinsics == INTR and rec.recorded_depth_scale == pytest.approx(1e-4)


def test_recording_seek_is_exact_forward_and_backward(recording, no_thread_leak):
    path, _ = recording
    with RealSenseRecording(path) as rec:
        first = [rec.read() for _ in range(6)]
        rec.seek(2)  # backward: the playback restarts
        again = rec.read()
        rec.seek(20)  # forward: frames are skipped
        later = rec.read()
        assert rec.position == 21
        with pytest.raises(InputError, match="outside the recording's 31 frames"):
            rec.seek(32)
    np.testing.assert_array_equal(again.color, first[2].color)
    np.testing.assert_array_equal(again.depth_m, first[2].depth_m)
    assert int(later.meta["color_frame_number"]) == 20 and later.color[0, 0, 0] == 20


def test_a_truncated_recording_is_read_up_to_its_break(recording, tmp_path, no_thread_leak):
    path, _ = recording
    data = path.read_bytes()
    cut = tmp_path / "cut.db3"
    cut.write_bytes(data[: len(data) * 2 // 3])
    assert is_realsense_recording(cut)  # still recognised
    with RealSenseRecording(cut) as rec:
        n = len(rec)
        frames = list(rec)
    assert 3 <= n < 31 and len(frames) == n
    assert [int(f.meta["color_frame_number"]) for f in frames] == list(range(n))
    assert re.search(r"cut.db3 is cut short: \d+ of the \d+ bytes its header declares; it is read up to its break: "
                     rf"{n} colour frames, the last #{n - 1} at [\d.]+ s into the recording", rec.problems[0])
    assert not cut.with_name("cut.db3-journal").exists()  # the salvage copy is temporary
    (tmp_path / "head.db3").write_bytes(data[:4096])
    with pytest.raises(InputError, match=r"head.db3 is cut short: 4096 of the \d+ bytes .* topic list is lost"):
        RealSenseRecording(tmp_path / "head.db3")
    (tmp_path / "start.db3").write_bytes(data[:12288])
    with pytest.raises(InputError, match=r"start.db3: no complete colour frame in the recording \(start.db3 is cut "):
        RealSenseRecording(tmp_path / "start.db3")


def test_bad_recordings_are_refused_with_the_reason(recording, tmp_path):
    path, _ = recording
    with pytest.raises(InputError, match="does not exist"):
        RealSenseRecording(tmp_path / "none.db3")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match=r"expected a \.db3"):
        RealSenseRecording(tmp_path / "notes.txt")
    with sqlite3.connect(tmp_path / "other.db3") as con:  # another tool's ROS 2 bag
        con.execute("CREATE TABLE topics (id INTEGER, name TEXT)")
        con.execute("INSERT INTO topics VALUES (1, '/camera/color/image_raw')")
    assert not is_realsense_recording(tmp_path / "other.db3")
    with pytest.raises(InputError, match="not a RealSense SDK recording"):
        RealSenseRecording(tmp_path / "other.db3")
    (tmp_path / "junk.bag").write_bytes(b"not a bag at all")
    assert not is_realsense_recording(tmp_path / "junk.bag")
    with pytest.raises(InputError, match="legacy recording"):
        RealSenseRecording(tmp_path / "junk.bag")
    with pytest.raises(ConfigError, match=r"sync_tolerance_s must be in \(0, 5\]"):
        RealSenseRecording(path, sync_tolerance_s=0)


def test_colour_and_depth_out_of_sync_are_refused(recording, tmp_path):
    path, _ = recording
    shifted = tmp_path / "shifted.db3"
    shifted.write_bytes(path.read_bytes())
    with sqlite3.connect(shifted) as con:  # every depth frame stamped 500 s later (same text length)
        for mid, blob in con.execute("SELECT m.id, m.data FROM messages m JOIN topics t ON m.topic_id = t.id "
                                     "WHERE t.name LIKE '%Depth_0/image/metadata'").fetchall():
            con.execute("UPDATE messages SET data = ? WHERE id = ?",
                        (blob.replace(b"timestamp=17000000", b"timestamp=17000005"), mid))
    with pytest.raises(InputError, match=r"colour and depth are not synchronised: the nearest depth frame is "
                                         r"4\d{5}\.\d ms away \(median\), beyond the 20 ms tolerance"):
        RealSenseRecording(shifted)


def test_reading_recordings_without_pyrealsense2_names_the_extra(recording, monkeypatch):
    from graspseg.capture.sources import list_episodes, open_episode
    from graspseg.core.errors import MissingDependencyError

    path, _ = recording
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)
    (ref,) = list_episodes([path])  # recognised without the SDK
    assert ref.kind == "realsense"
    with pytest.raises(MissingDependencyError, match=r"'pyrealsense2' is not installed \(needed for reading "
                                                      r"RealSense recordings\).*graspseg\[realsense\]"):
        open_episode(ref)


def test_a_recording_without_colour_is_refused(tmp_path):
    import pyrealsense2 as rs

    dev = rs.software_device()
    sensor = dev.add_sensor("Stereo Module")
    vs = rs.video_stream()
    vs.type, vs.index, vs.uid, vs.fmt, vs.bpp, vs.fps, vs.width, vs.height = (rs.stream.depth, 0, 0, rs.format.z16,
                                                                              2, 30, W, H)
    i = rs.intrinsics()
    i.width, i.height, i.fx, i.fy, i.ppx, i.ppy = W, H, 150.0, 150.0, 80.0, 60.0
    vs.intrinsics = i
    profile = sensor.add_video_stream(vs, True).as_video_stream_profile()
    sensor.add_read_only_option(rs.option.depth_units, 1e-3)
    path = tmp_path / "depth_only.db3"
    rec = rs.recorder(str(path), dev)
    s = rec.query_sensors()[0]
    s.open(s.get_stream_profiles()[0])
    s.start(lambda f: None)
    for k in range(3):
        f = rs.software_video_frame()
        f.pixels = np.full((H, W), 500, np.uint16)
        f.bpp, f.stride, f.timestamp, f.frame_number, f.profile = 2, 2 * W, EPOCH_START_MS + 33 * k, k, profile
        f.domain = rs.timestamp_domain.global_time
        sensor.on_video_frame(f)
    s.stop()
    s.close()
    del s, rec
    with pytest.raises(InputError, match="no colour stream.*needs both depth and colour"):
        RealSenseRecording(path)
