"""ROS bags as episodes: ROS 1 .bag, ROS 2 .db3 and .mcap written with rosbags, read back, synchronised."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("rosbags")

from graspseg.capture.rosbag import write_bag  # noqa: E402
from graspseg.capture.sources import (  # noqa: E402
    EpisodeRef,
    SourceKind,
    SourceOptions,
    list_episodes,
    open_episode,
    register_kind,
    unregister_kind,
)
from graspseg.core import ConfigError, InputError, RGBDFrame, Transform  # noqa: E402

TCP_FROM_CAMERA = Transform.from_xyz_quat_xyzw([0.0, -0.06, -0.1], [0, 0, 0, 1], "tcp", "camera_color_optical")


def _frames(flat_frame, n=4):
    out = []
    ramp = np.linspace(0, 60, flat_frame.width).astype(np.uint8)[None, :, None]
    for k in range(n):
        color = flat_frame.color + ramp + np.uint8(k)  # smooth, with a red box: a channel swap would show
        depth = flat_frame.depth_m.copy()
        depth[240, 10 + k] = 0.3
        pose = Transform.from_xyz_quat_xyzw([0.4 + 0.01 * k, 0.0, 0.5], [1, 0, 0, 0], "base", "tcp")
        out.append(RGBDFrame(color, depth, flat_frame.intrinsics, 1.7e9 + k / 30, pose, f"f{k}"))
    return out


@pytest.mark.parametrize("storage,compressed", [("ros1", False), ("db3", True), ("mcap", False), ("mcap", True)])
def test_bags_round_trip_frames_poses_and_intrinsics(tmp_path, flat_frame, storage, compressed):
    frames = _frames(flat_frame)
    path = write_bag(frames, tmp_path / ("rec.bag" if storage == "ros1" else "rec"), storage=storage,
                     compressed=compressed, tcp_from_camera=TCP_FROM_CAMERA)
    assert path.exists()
    (ref,) = list_episodes([tmp_path])
    assert ref.kind == "rosbag" and ref.name == "rec"
    ep = open_episode(ref)
    assert len(ep) == 4 and ep.problems == []
    assert ep.sync["frames"] == 4 and ep.sync["poses"] == 4 and ep.sync["depth_offset_s"]["max"] < 1e-6
    assert ep.meta["depth_topic"].startswith("/camera/aligned_depth_to_color")
    np.testing.assert_allclose(ep.rig.tcp_from_camera.matrix, TCP_FROM_CAMERA.matrix, atol=1e-9)
    assert ep.rig.intrinsics == flat_frame.intrinsics
    for k, f in enumerate(frames):
        back = ep.frame(k)
        np.testing.assert_allclose(back.depth_m, f.depth_m, atol=5e-4)  # millimetre depth units
        if compressed:  # JPEG
            assert np.abs(back.color.astype(int) - f.color).mean() < 3
        else:
            np.testing.assert_array_equal(back.color, f.color)
        np.testing.assert_allclose(back.base_from_tcp.matrix, f.base_from_tcp.matrix, atol=1e-9)
        assert back.timestamp_s == pytest.approx(f.timestamp_s, abs=1e-6)
    assert ep.frame(1).intrinsics is ep.frame(2).intrinsics  # shared: pixel rays are computed once


def test_time_synchronisation_within_and_beyond_tolerance(tmp_path, flat_frame):
    frames = [replace(f, timestamp_s=1.7e9 + k) for k, f in enumerate(_frames(flat_frame, 3))]  # 1 s apart
    write_bag(frames, tmp_path / "late", storage="db3", depth_delay_s=0.05, tf_stamp_offset_s=0.03)
    ref = EpisodeRef(tmp_path / "late", "rosbag")
    with pytest.raises(InputError, match=r"not synchronised: the nearest depth image is 50.0 ms away .* 20 ms "
                                         "tolerance; raise --sync-tolerance-ms"):
        open_episode(ref)
    ep = open_episode(ref, SourceOptions(sync_tolerance_s=0.06))
    assert len(ep) == 3 and ep.sync["depth_offset_s"]["median"] == pytest.approx(0.05, abs=1e-6)
    assert ep.sync["pose_offset_s"]["max"] == pytest.approx(0.03, abs=1e-6)
    # the pose alone beyond the tolerance: frames kept without base_from_tcp, and said so
    write_bag(frames, tmp_path / "tf_late", storage="mcap", tf_stamp_offset_s=0.5)
    ep = open_episode(EpisodeRef(tmp_path / "tf_late", "rosbag"))
    assert len(ep) == 3 and ep.frame(0).base_from_tcp is None
    assert "3 of 3 frames have no base_from_tcp: no /tf sample within 20 ms" in ep.problems[0]


def test_wrong_tf_frames_and_topics_are_named(tmp_path, flat_frame):
    write_bag(_frames(flat_frame, 2), tmp_path / "b", storage="db3", base_frame="panda_link0", tcp_frame="panda_hand")
    ref = EpisodeRef(tmp_path / "b", "rosbag")
    ep = open_episode(ref)
    assert "/tf does not link 'base' and 'tcp' (frames: panda_hand, panda_link0; set --base-frame/--tcp-frame)" \
        in ep.problems[0]
    ep = open_episode(ref, SourceOptions(base_frame="panda_link0", tcp_frame="panda_hand"))
    assert ep.problems == [] and ep.frame(1).base_from_tcp is not None
    with pytest.raises(InputError, match=r"--depth-topic /nope is not an Image .* its topics: /camera/aligned"):
        open_episode(ref, SourceOptions(depth_topic="/nope"))
    with pytest.raises(InputError, match="--info-topic /camera/x is not a CameraInfo topic"):
        open_episode(ref, SourceOptions(info_topic="/camera/x"))


def _bag_with(tmp_path, topics: dict[str, str]):
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    path = tmp_path / "custom"
    with Writer(path, version=9) as w:
        for topic, msgtype in topics.items():
            w.add_connection(topic, msgtype, typestore=ts)
    return path


def test_missing_depth_or_info_lists_the_topics(tmp_path):
    p = _bag_with(tmp_path, {"/camera/color/image_raw": "sensor_msgs/msg/Image",
                             "/camera/color/camera_info": "sensor_msgs/msg/CameraInfo"})
    with pytest.raises(InputError, match=r"has no depth image topic .* its topics: /camera/color/camera_info "
                                         r"\(CameraInfo\), /camera/color/image_raw \(Image\); name one with --depth-topic"):
        open_episode(EpisodeRef(p, "rosbag"))
    q = _bag_with(tmp_path / "q", {"/cam/color/image_raw": "sensor_msgs/msg/Image",
                                   "/cam/depth/image_raw": "sensor_msgs/msg/Image"})
    with pytest.raises(InputError, match="has no CameraInfo for /cam/color/image_raw; its topics"):
        open_episode(EpisodeRef(q, "rosbag"))


def test_realsense_topic_names_in_other_bags(tmp_path):
    p = _bag_with(tmp_path, {"/device_0/sensor_1/Color_0/image/data": "sensor_msgs/msg/Image"})
    (ref,) = list_episodes([p])
    assert ref.kind == "rosbag"  # a rosbag2 folder: the RealSense SDK writes single .db3 files
    (ref,) = list_episodes([next(p.glob("*.db3"))])
    assert ref.kind == "realsense"  # the file alone has the SDK's topic names, not its content
    pytest.importorskip("pyrealsense2")
    with pytest.raises(InputError, match=r"the recording has no depth stream \(streams: Color\); graspseg needs both"):
        open_episode(ref)


def test_damaged_bags(tmp_path, flat_frame):
    frames = _frames(flat_frame, 4)
    src = write_bag(frames, tmp_path / "ok.bag", storage="ros1")
    # a ROS 1 recording cut off: no index; the records before the cut are read
    cut = tmp_path / "cut.bag"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size * 2 // 3])
    ep = open_episode(EpisodeRef(cut, "rosbag"))
    assert 1 <= len(ep) < 4
    assert re.search(r"cut.bag: ROS 1 bag without a readable index .* read record by record: \d+ messages, the data "
                     r"breaks at byte \d+ of \d+ .*'rosbag reindex' restores the index", ep.problems[0])
    np.testing.assert_allclose(ep.frame(len(ep) - 1).depth_m, frames[len(ep) - 1].depth_m, atol=5e-4)
    junk = tmp_path / "junk.bag"
    junk.write_bytes(src.read_bytes()[:13] + bytes(range(256)) * 4)
    with pytest.raises(InputError, match="junk.bag cannot be read as a ROS bag"):
        open_episode(EpisodeRef(junk, "rosbag"))
    mcap = write_bag(frames, tmp_path / "m", storage="mcap") / "m.mcap"
    mcap.write_bytes(mcap.read_bytes()[:-100])
    with pytest.raises(InputError, match="m.mcap cannot be read as a ROS bag: .*'mcap recover' rebuilds it"):
        open_episode(EpisodeRef(mcap, "rosbag"))
    # a database damaged part-way: the frames before the damage are read and the break is reported
    write_bag(frames * 3, tmp_path / "db", storage="db3")
    db = tmp_path / "db" / "db.db3"
    data = bytearray(db.read_bytes())
    k = len(data) * 6 // 10
    data[k:k + 5000] = b"\xff" * 5000
    db.write_bytes(bytes(data))
    ep = open_episode(EpisodeRef(db, "rosbag"))
    assert 0 < len(ep) < 12 and "the recording breaks after" in ep.problems[0]
    assert "analysing what was read before the break" in ep.problems[0]
    ep.frame(len(ep) - 1)


def test_a_new_kind_is_one_registration(tmp_path, flat_frame):
    (tmp_path / "x.fake").write_text("")

    class Fake:
        def __init__(self, ref, options):
            self.ref, self.rig, self.meta, self.problems, self.sync = ref, None, {}, [], {}

        def __len__(self):
            return 1

    register_kind(SourceKind("fake", lambda p: p.suffix == ".fake", Fake, priority=5))
    try:
        (ref,) = list_episodes([tmp_path])
        assert ref.kind == "fake" and isinstance(open_episode(ref), Fake)
        with pytest.raises(ConfigError, match="already registered"):
            register_kind(SourceKind("fake", lambda p: False, Fake))
    finally:
        unregister_kind("fake")
    with pytest.raises(InputError, match="holds no recording graspseg reads"):
        list_episodes([tmp_path])
    with pytest.raises(InputError, match="does not exist"):
        list_episodes([tmp_path / "nope"])
