"""LeRobot-style data sets with depth, read as episodes."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

from graspseg.capture.sources import SourceOptions, list_episodes, open_episode  # noqa: E402
from graspseg.core import ConfigError, InputError  # noqa: E402

H, W = 48, 64


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def write_dataset(root, *, depth_dtype="image", intrinsics=True):
    rng = np.random.default_rng(0)
    features = {
        "observation.images.wrist": {"dtype": "image", "shape": [H, W, 3],
                                     "info": {"fx": 60.0, "fy": 60.0, "cx": 32.0, "cy": 24.0} if intrinsics else {}},
        "observation.images.wrist_depth": {"dtype": depth_dtype, "shape": [H, W, 1], "info": {"depth_scale": 1e-4}},
        "observation.state": {"dtype": "float32", "shape": [7]},
    }
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps({"codebase_version": "v2.1", "fps": 10, "features": features}))
    images = {}
    for ep in range(2):
        rows = {"observation.images.wrist": [], "observation.images.wrist_depth": [], "timestamp": [],
                "frame_index": [], "episode_index": []}
        for k in [2, 0, 1]:  # stored out of order: frames are sorted by frame_index
            color = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
            depth = np.full((H, W), 5000 + 100 * k + ep, np.uint16)
            images[(ep, k)] = (color, depth)
            rows["observation.images.wrist"].append({"bytes": _png(color[:, :, ::-1]), "path": None})
            rows["observation.images.wrist_depth"].append({"bytes": _png(depth), "path": None})
            rows["timestamp"].append(k / 10)
            rows["frame_index"].append(k)
            rows["episode_index"].append(ep)
        out = root / "data" / "chunk-000" / f"episode_{ep:06d}.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(rows), out)
    return images


def test_lerobot_dataset_episodes(tmp_path):
    images = write_dataset(tmp_path / "ds")
    refs = list_episodes([tmp_path])
    assert [(r.kind, r.key, r.name) for r in refs] == [("lerobot", "0", "ds__0"), ("lerobot", "1", "ds__1")]
    ep = open_episode(refs[1])
    assert len(ep) == 3 and ep.rig.intrinsics.fx == 60.0 and ep.prompt(0) is None
    for k in range(3):
        f = ep.frame(k)
        color, depth = images[(1, k)]
        np.testing.assert_array_equal(f.color, color)
        np.testing.assert_allclose(f.depth_m, depth * 1e-4, rtol=1e-6)
        assert f.timestamp_s == pytest.approx(k / 10)


def test_lerobot_bad_input(tmp_path):
    write_dataset(tmp_path / "video", depth_dtype="video")
    (ref,) = list_episodes([tmp_path / "video"])[:1]
    with pytest.raises(ConfigError, match="wrist_depth is stored as 'video'; graspseg reads image features"):
        open_episode(ref)
    write_dataset(tmp_path / "noint", intrinsics=False)
    ref = list_episodes([tmp_path / "noint"])[0]
    with pytest.raises(ConfigError, match="no camera intrinsics; give --intrinsics FILE.json"):
        open_episode(ref)
    with pytest.raises(InputError, match=r"no depth image feature .* image features: observation.images.wrist \(image\)"):
        open_episode(ref, SourceOptions(depth_key="observation.images.nope"))
