"""PLY writing without open3d, and conversion to/from open3d point clouds."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from graspseg.cloud import build_object_cloud, from_open3d, read_ply, to_open3d, write_ply
from graspseg.core import InputError, MissingDependencyError, ShapeError


@pytest.fixture
def small_cloud():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(50, 3)).astype(np.float32)
    cols = rng.integers(0, 256, (50, 3)).astype(np.uint8)
    labels = rng.integers(1, 4, 50).astype(np.uint8)
    return pts, cols, labels


@pytest.mark.parametrize("binary", [True, False])
def test_ply_round_trip(tmp_path, small_cloud, binary):
    pts, cols, labels = small_cloud
    path = write_ply(
        tmp_path / "c.ply",
        pts,
        cols,
        properties={"label": labels},
        binary=binary,
        comments=("frame camera_color_optical", "units m"),
    )
    head = path.read_bytes()[:300].decode("ascii", errors="replace")
    assert "comment frame camera_color_optical" in head and "property uchar label" in head
    back = read_ply(path)
    np.testing.assert_allclose(back["points"], pts, rtol=1e-6)
    np.testing.assert_array_equal(back["colors"], cols)
    np.testing.assert_array_equal(back["label"], labels)


def test_ply_points_only_and_empty(tmp_path):
    write_ply(tmp_path / "e.ply", np.zeros((0, 3)))
    assert read_ply(tmp_path / "e.ply")["points"].shape == (0, 3)
    write_ply(tmp_path / "p.ply", np.ones((3, 3)), colors=np.full((3, 3), 0.5))
    back = read_ply(tmp_path / "p.ply")
    np.testing.assert_array_equal(back["colors"], np.full((3, 3), 128))


def test_ply_of_object_cloud(tmp_path, make_box_frame, mask_of_box):
    cloud = build_object_cloud(make_box_frame(), mask_of_box)
    write_ply(tmp_path / "o.ply", cloud, cloud.colors)
    assert read_ply(tmp_path / "o.ply")["points"].shape == (len(cloud), 3)


def test_ply_errors(tmp_path, small_cloud):
    pts, cols, _ = small_cloud
    with pytest.raises(ShapeError, match=r"points must be an \(N, 3\) array"):
        write_ply(tmp_path / "x.ply", pts[:, :2])
    with pytest.raises(ShapeError, match=r"colors must be \(50, 3\) RGB"):
        write_ply(tmp_path / "x.ply", pts, cols[:10])
    with pytest.raises(ShapeError, match="property 'label' must have one value per point"):
        write_ply(tmp_path / "x.ply", pts, properties={"label": np.zeros(3)})
    with pytest.raises(InputError, match="does not exist"):
        read_ply(tmp_path / "missing.ply")
    (tmp_path / "bad.ply").write_bytes(b"not a ply")
    with pytest.raises(InputError, match="is not a PLY file"):
        read_ply(tmp_path / "bad.ply")


def test_open3d_round_trip_and_reads_our_ply(tmp_path, small_cloud, make_box_frame, mask_of_box):
    o3d = pytest.importorskip("open3d")
    pts, cols, _ = small_cloud
    pcd = to_open3d(pts, cols)
    assert isinstance(pcd, o3d.geometry.PointCloud) and pcd.has_colors()
    back_pts, back_cols = from_open3d(pcd)
    np.testing.assert_allclose(back_pts, pts, rtol=1e-6)
    np.testing.assert_array_equal(back_cols, cols)
    # an ObjectCloud converts with its colours
    cloud = build_object_cloud(make_box_frame(), mask_of_box)
    p2, c2 = from_open3d(to_open3d(cloud))
    np.testing.assert_allclose(p2, cloud.points_in_camera, rtol=1e-6)
    np.testing.assert_array_equal(c2, cloud.colors)
    # no colours
    assert from_open3d(to_open3d(pts))[1] is None
    # open3d reads the PLY written without it
    write_ply(tmp_path / "c.ply", pts, cols)
    read = o3d.io.read_point_cloud(str(tmp_path / "c.ply"))
    np.testing.assert_allclose(np.asarray(read.points), pts, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(read.colors) * 255, cols, atol=0.5)


def test_interop_errors(small_cloud):
    pytest.importorskip("open3d")
    pts, cols, _ = small_cloud
    with pytest.raises(ShapeError, match=r"colors must be \(50, 3\)"):
        to_open3d(pts, cols[:3])
    with pytest.raises(ShapeError, match=r"points must be an \(N, 3\) array"):
        to_open3d(pts[:, :2])
    with pytest.raises(ShapeError, match="expected an open3d.geometry.PointCloud"):
        from_open3d(pts)


def test_missing_open3d_names_the_extra(monkeypatch, small_cloud):
    monkeypatch.setitem(sys.modules, "open3d", None)  # makes `import open3d` raise ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'graspseg\[open3d\]'") as info:
        to_open3d(small_cloud[0])
    assert info.value.package == "open3d" and info.value.extra == "open3d"
