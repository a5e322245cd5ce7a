"""No false refusals: every shared real frame, and the bundled sample, loads with the new checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from graspseg.capture import load_frame_folder, load_ground_truth
from graspseg.core import CameraIntrinsics, CameraRig, ConfigError, Transform
from graspseg.core.camera import check_rig_matches_frame
from graspseg.core.transform import CAMERA, TCP
from tests.conftest import REPO, SAMPLE_DIR

SHARED = REPO.parent / "shared" / "data" / "real"
FOLDERS = sorted(p.parent for p in SHARED.glob("*/*/camera.json")) + [SAMPLE_DIR]


def test_the_shared_data_set_is_there():
    assert len(FOLDERS) >= 26 or not SHARED.is_dir()


@pytest.mark.parametrize("folder", FOLDERS, ids=[f"{p.parent.name}/{p.name}" for p in FOLDERS])
def test_real_frame_folders_load_and_match_their_own_rig(folder: Path):
    frame = load_frame_folder(folder)
    cam = json.loads((folder / "camera.json").read_text())
    assert frame.meta["depth_scale"] == cam["depth_scale"]
    assert 0.05 < float(np.median(frame.depth_m[frame.depth_m > 0])) < 5.0
    assert frame.intrinsics == CameraIntrinsics.from_dict(cam)
    rig = CameraRig(frame.intrinsics, Transform.from_xyz_quat_xyzw([0, 0.06, 0.03], [0, 0, 0, 1], TCP, CAMERA),
                    depth_scale=cam["depth_scale"])
    check_rig_matches_frame(rig, frame)
    for obj in load_ground_truth(folder, (frame.height, frame.width)):
        assert obj.mask.shape == (frame.height, frame.width) and obj.mask.any()


def test_camera_json_overrides_load(tmp_path):
    import shutil

    d = tmp_path / "f"
    shutil.copytree(SAMPLE_DIR, d)
    cam = json.loads((d / "camera.json").read_text())
    cam["base_from_tcp"] = {"xyz_m": [3.5, 0, 0.4], "quat_xyzw": [0, 0, 0, 1], "max_translation_m": 4.0}
    cam["timestamp_s"] = 12
    (d / "camera.json").write_text(json.dumps(cam))
    frame = load_frame_folder(d)
    assert frame.base_from_tcp.translation[0] == 3.5 and frame.timestamp_s == 12.0


def test_a_re_encoded_folder_keeps_the_device_depth_scale(tmp_path):
    from graspseg.capture import save_frame_folder

    frame = load_frame_folder(SAMPLE_DIR)  # decoded at 0.0001 m per unit (a D405)
    save_frame_folder(frame, tmp_path / "copy", depth_scale=1e-3)
    again = load_frame_folder(tmp_path / "copy")
    assert again.meta["depth_scale"] == 1e-4
    rig = CameraRig(frame.intrinsics, None, depth_scale=1e-4)
    check_rig_matches_frame(rig, again)
    with pytest.raises(ConfigError, match="has depth_scale 0.001 m per unit but the frame 'copy' was decoded"):
        check_rig_matches_frame(CameraRig(frame.intrinsics, None, depth_scale=1e-3), again)


def test_a_folder_of_unknown_device_scale_skips_the_scale_check(tmp_path):
    from graspseg.capture import save_frame_folder

    frame = load_frame_folder(SAMPLE_DIR)
    anonymous = type(frame)(frame.color, frame.depth_m, frame.intrinsics, frame_id="sim")
    save_frame_folder(anonymous, tmp_path / "sim", depth_scale=1e-4)
    again = load_frame_folder(tmp_path / "sim")
    assert "depth_scale" not in again.meta
    check_rig_matches_frame(CameraRig(frame.intrinsics, None, depth_scale=1e-3), again)
