import json

import numpy as np
import pytest

from graspseg.capture.episode import Episode, EpisodeWriter, is_episode
from graspseg.capture.frame_folder import GroundTruthObject
from graspseg.core import CameraRig, ConfigError, InputError, RGBDFrame, Transform
from graspseg.segment import Prompt


def _frames(flat_frame, n):
    for k in range(n):
        pose = Transform.from_xyz_quat_xyzw([0.4 + 0.01 * k, 0.0, 0.5], [1, 0, 0, 0], "base", "tcp")
        depth = flat_frame.depth_m.copy()
        depth[0, 0] = 0.5 + 0.001 * k  # frames differ
        yield RGBDFrame(flat_frame.color, depth, flat_frame.intrinsics, 1.7e9 + k / 30, pose, f"f{k}")


def test_round_trip_frames_poses_prompts_ground_truth(tmp_path, flat_frame, intrinsics):
    rig = CameraRig(intrinsics, depth_scale=1e-4, name="d405")
    prompt = Prompt.from_point(320, 240)
    with EpisodeWriter(tmp_path / "ep", rig=rig, meta={"robot": "fr3"}) as rec:
        for k, f in enumerate(_frames(flat_frame, 3)):
            gt = [GroundTruthObject(1, "box", f.depth_m < 0.45)]
            rec.append(f, prompt=prompt.to_dict() if k == 0 else None, objects=gt, extra={"frame_number": 100 + k})
    assert is_episode(tmp_path / "ep") and not is_episode(tmp_path)
    ep = Episode(tmp_path / "ep")
    assert ep.closed and ep.problems == [] and len(ep) == 3
    assert ep.meta == {"robot": "fr3"} and ep.rig.name == "d405"
    originals = list(_frames(flat_frame, 3))
    for k, back in enumerate(ep):
        np.testing.assert_allclose(back.depth_m, originals[k].depth_m, atol=1e-4)
        np.testing.assert_array_equal(back.color, originals[k].color)
        assert back.timestamp_s == pytest.approx(originals[k].timestamp_s)
        np.testing.assert_allclose(back.base_from_tcp.matrix, originals[k].base_from_tcp.matrix)
        assert back.frame_id == f"f{k}" and back.meta["frame_number"] == 100 + k
    assert Prompt.from_dict(ep.records[0].prompt).points_uv.tolist() == [[320.0, 240.0]]
    assert ep.records[1].prompt is None
    assert ep.ground_truth(2)[0].mask.sum() == (flat_frame.depth_m < 0.45).sum()


def test_a_crash_loses_at_most_the_frame_in_flight(tmp_path, flat_frame):
    rec = EpisodeWriter(tmp_path / "ep")
    for f in _frames(flat_frame, 2):
        rec.append(f)
    # the kill: no close(), a half-written index line and an orphan temporary frame folder
    with open(tmp_path / "ep" / "index.jsonl", "a") as fh:
        fh.write('{"index": 2, "folder": "frames/00')
    (tmp_path / "ep" / "frames" / ".tmp-000002").mkdir()
    ep = Episode(tmp_path / "ep")
    assert len(ep) == 2 and not ep.closed
    assert any("torn last line" in p for p in ep.problems)
    assert any("not closed" in p for p in ep.problems)
    assert [f.frame_id for f in ep] == ["f0", "f1"]


def test_missing_frame_folder_is_skipped_and_named(tmp_path, flat_frame):
    with EpisodeWriter(tmp_path / "ep") as rec:
        for f in _frames(flat_frame, 2):
            rec.append(f)
    (tmp_path / "ep" / "frames" / "000000" / "camera.json").unlink()
    ep = Episode(tmp_path / "ep")
    assert len(ep) == 1 and "frames/000000 is missing or incomplete" in ep.problems[0]


def test_bad_input(tmp_path, flat_frame):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(InputError, match="is not empty; choose a new folder"):
        EpisodeWriter(tmp_path / "full")
    with pytest.raises(InputError, match="does not exist"):
        Episode(tmp_path / "nope")
    with pytest.raises(InputError, match="not a graspseg episode: it has no episode.json"):
        Episode(tmp_path / "full")
    (tmp_path / "full" / "episode.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ConfigError, match="not a graspseg episode"):
        Episode(tmp_path / "full")
    rec = EpisodeWriter(tmp_path / "ep")
    with pytest.raises(ConfigError, match="takes an RGBDFrame"):
        rec.append("frame.png")
    with pytest.raises(ConfigError, match="prompt must be a JSON mapping"):
        rec.append(flat_frame, prompt=Prompt.from_point(1, 1))
    rec.close()
    with pytest.raises(InputError, match="is closed"):
        rec.append(flat_frame)
    (tmp_path / "ep" / "index.jsonl").write_text('{"index": -1, "folder": "/etc", "timestamp_s": 0}\n')
    ep = Episode(tmp_path / "ep")
    assert len(ep) == 0 and "index is -1" in ep.problems[0]


def test_prompt_json_round_trip_and_errors():
    p = Prompt(points_uv=[[1, 2], [3, 4]], point_labels=[1, 0], box_xyxy=[0, 0, 10, 10], text="mug")
    back = Prompt.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back.points_uv.tolist() == p.points_uv.tolist() and back.point_labels.tolist() == [1, 0]
    assert back.box_xyxy.tolist() == [0, 0, 10, 10] and back.text == "mug"
    with pytest.raises(InputError, match="unknown prompt field"):
        Prompt.from_dict({"point": [1, 2]})
    with pytest.raises(InputError, match="list of \\[u, v\\] pixel pairs"):
        Prompt.from_dict({"points_uv": [[1, 2, 3]]})
    with pytest.raises(InputError, match="text must be a string"):
        Prompt.from_dict({"text": 5})
