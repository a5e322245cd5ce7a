import json
import shutil

import numpy as np
import pytest

from graspseg.capture import frame_from_files, load_frame_folder, load_ground_truth, save_frame_folder
from graspseg.capture.frame_folder import GroundTruthObject
from graspseg.capture.images import read_color
from graspseg.core import ConfigError, InputError, UnitsError


def test_load_real_frame_folder(real_dir):
    f = load_frame_folder(real_dir / "red_mug")
    assert (f.width, f.height) == (640, 480)
    assert f.intrinsics.fx == pytest.approx(616.365, abs=1e-3)
    valid = f.depth_m[f.depth_m > 0]
    assert 0.3 < np.median(valid) < 0.7  # 1e-4 m units applied
    gt = load_ground_truth(real_dir / "red_mug", (480, 640))
    assert gt[0].name == "red_mug" and gt[0].mask.sum() > 5000


def test_save_and_reload_round_trip(tmp_path, flat_frame):
    obj = GroundTruthObject(1, "box", flat_frame.depth_m < 0.45)
    save_frame_folder(flat_frame, tmp_path / "f", objects=[obj])
    back = load_frame_folder(tmp_path / "f")
    np.testing.assert_allclose(back.depth_m, flat_frame.depth_m, atol=1e-4)
    np.testing.assert_array_equal(back.color, flat_frame.color)
    assert back.intrinsics == flat_frame.intrinsics
    assert np.array_equal(load_ground_truth(tmp_path / "f")[0].mask, obj.mask)


def test_plain_files_with_npy_depth(tmp_path, sample_frame_dir):
    depth = np.full((480, 640), 0.5, np.float32)
    np.save(tmp_path / "d.npy", depth)
    cam = json.loads((sample_frame_dir / "camera.json").read_text())
    (tmp_path / "intr.json").write_text(json.dumps(cam))
    f = frame_from_files(sample_frame_dir / "color.png", tmp_path / "d.npy", depth_scale=1.0, intrinsics=tmp_path / "intr.json")
    assert f.depth_m[0, 0] == pytest.approx(0.5)


def test_bad_inputs(tmp_path, sample_frame_dir):
    with pytest.raises(InputError, match="does not exist or is not a directory"):
        load_frame_folder(tmp_path / "missing")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(InputError, match="not a readable PNG"):
        read_color(bad)
    folder = tmp_path / "f"
    shutil.copytree(sample_frame_dir, folder)
    cam = json.loads((folder / "camera.json").read_text())
    cam["depth_scale"] = 0
    (folder / "camera.json").write_text(json.dumps(cam))
    with pytest.raises(UnitsError, match="depth_scale must be a positive"):
        load_frame_folder(folder)
    del cam["depth_scale"]
    (folder / "camera.json").write_text(json.dumps(cam))
    with pytest.raises(ConfigError, match="missing 'depth_scale'"):
        load_frame_folder(folder)
    cam["depth_scale"] = 1e-4
    cam["width"] = 320
    (folder / "camera.json").write_text(json.dumps(cam))
    with pytest.raises(Exception, match="intrinsics are for 320x480"):
        load_frame_folder(folder)
    small = np.zeros((10, 10), np.uint16)
    import cv2

    cv2.imwrite(str(tmp_path / "small.png"), small)
    with pytest.raises(InputError, match="is 640x480 but depth .* is 10x10"):
        frame_from_files(folder / "color.png", tmp_path / "small.png", depth_scale=1e-4,
                         intrinsics=sample_frame_dir / "camera.json")
