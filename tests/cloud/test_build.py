"""build_object_cloud: points, colours, labels, scene points, base frame, and the typed errors."""

from __future__ import annotations

import numpy as np
import pytest

from graspseg.cloud import BandLabel, CloudConfig, ObjectCloud, build_object_cloud
from graspseg.core import (
    BASE,
    CAMERA,
    TCP,
    CameraRig,
    ConfigError,
    FrameMismatchError,
    InputError,
    RGBDFrame,
    Transform,
)
from graspseg.core.errors import MaskError
from graspseg.core.geometry import backproject


def test_cloud_matches_masked_backprojection(make_box_frame, mask_of_box):
    frame = make_box_frame()
    cloud = build_object_cloud(frame, mask_of_box)
    assert isinstance(cloud, ObjectCloud)
    pts, uv = backproject(frame.depth_m, frame.intrinsics, mask_of_box)
    np.testing.assert_array_equal(cloud.pixels_uv, uv)
    np.testing.assert_allclose(cloud.points_in_camera, pts)
    assert cloud.points_in_camera.dtype == np.float32 and cloud.pixels_uv.dtype == np.int32
    np.testing.assert_array_equal(cloud.colors, np.tile([200, 30, 30], (len(cloud), 1)))
    # a fronto-parallel box: every point is a contact candidate
    assert cloud.contact_eligible.all()
    assert set(np.unique(cloud.labels)) == {BandLabel.OBJECT}
    # box width: 80 px at 0.44 m with f = 615 px
    width = np.ptp(cloud.points_in_camera[:, 0])
    assert width == pytest.approx(79 * 0.44 / 615.0, rel=1e-4)
    assert cloud.plane is not None and cloud.plane.offset == pytest.approx(0.5, abs=1e-4)
    assert cloud.base_from_camera is None and cloud.points_in_base is None


def test_scene_points_are_subsampled_cleaned_depth(make_box_frame, mask_of_box):
    frame = make_box_frame()
    cloud = build_object_cloud(frame, mask_of_box, CloudConfig(scene_stride_px=4))
    assert cloud.scene_points_in_camera.shape == (120 * 160, 3)
    z = cloud.scene_points_in_camera[:, 2]
    np.testing.assert_allclose(np.unique(z), [0.44, 0.5], atol=1e-6)
    cloud8 = build_object_cloud(frame, mask_of_box, CloudConfig(scene_stride_px=8))
    assert len(cloud8.scene_points_in_camera) == 60 * 80
    assert cloud.stats["num_scene_points"] == 120 * 160


def test_flying_pixels_in_the_mask_are_removed(make_box_frame, mask_of_box):
    frame = make_box_frame()
    depth = frame.depth_m.copy()
    depth[200:280, 360] = 0.47  # mixed-depth pixels next to the box edge
    mask = mask_of_box.copy()
    mask[200:280, 360] = True
    cloud = build_object_cloud(RGBDFrame(frame.color, depth, frame.intrinsics), mask)
    assert cloud.stats["mask_flying_px"] == 80
    assert not np.any(np.isclose(cloud.points_in_camera[:, 2], 0.47))
    assert len(cloud) == int(mask_of_box.sum())


def test_clouds_in_base_frame_with_pose_and_rig(make_box_frame, mask_of_box):
    base_from_tcp = Transform.from_rt(np.eye(3), [0.3, 0.0, 0.6], BASE, TCP)
    # camera 0.1 m ahead of the TCP, looking down: camera z = -base z
    tcp_from_camera = Transform.from_rt(np.diag([1.0, -1.0, -1.0]), [0.0, 0.0, 0.1], TCP, CAMERA)
    frame = make_box_frame(base_from_tcp=base_from_tcp)
    cloud = build_object_cloud(frame, mask_of_box, tcp_from_camera=tcp_from_camera)
    assert (
        cloud.base_from_camera is not None and cloud.base_from_camera.name == "base_from_camera_color_optical"
    )
    pb = cloud.points_in_base
    # camera at z = 0.7 m in base; the box top 0.44 m below it, the table 0.5 m below
    np.testing.assert_allclose(pb[:, 2], 0.7 - 0.44, atol=1e-6)
    assert cloud.plane_in_base is not None
    np.testing.assert_allclose(cloud.plane_in_base.normal, [0, 0, 1], atol=1e-6)
    assert cloud.plane_in_base.offset == pytest.approx(-0.2, abs=1e-4)  # table at z = 0.2 m
    # a CameraRig works as well
    rig = CameraRig(frame.intrinsics, tcp_from_camera=tcp_from_camera)
    np.testing.assert_allclose(build_object_cloud(frame, mask_of_box, tcp_from_camera=rig).points_in_base, pb)
    # no TCP pose in the frame: camera frame only
    assert (
        build_object_cloud(make_box_frame(), mask_of_box, tcp_from_camera=tcp_from_camera).points_in_base
        is None
    )


def test_wrong_transform_frames_are_rejected(make_box_frame, mask_of_box):
    frame = make_box_frame()
    wrong = Transform.identity(BASE, CAMERA)
    with pytest.raises(FrameMismatchError, match="tcp_from_camera must map 'camera_color_optical' to 'tcp'"):
        build_object_cloud(frame, mask_of_box, tcp_from_camera=wrong)
    with pytest.raises(ConfigError, match="tcp_from_camera must be a Transform"):
        build_object_cloud(frame, mask_of_box, tcp_from_camera=np.eye(4))


def test_empty_mask(make_box_frame):
    with pytest.raises(MaskError, match="mask is empty .* check the segmentation result or the prompt"):
        build_object_cloud(make_box_frame(), np.zeros((480, 640), bool))


def test_one_pixel_mask(make_box_frame):
    m = np.zeros((480, 640), bool)
    m[240, 320] = True
    with pytest.raises(
        MaskError, match=r"mask has only 1 pixel, at least 10 needed .* lower cloud.min_mask_px"
    ):
        build_object_cloud(make_box_frame(), m)
    # allowed when configured, and then gives one point
    cloud = build_object_cloud(make_box_frame(), m, CloudConfig(min_mask_px=1, min_points=1))
    assert len(cloud) == 1


def test_mask_of_wrong_size(make_box_frame):
    with pytest.raises(MaskError, match="mask is 320x240 but the frame is 640x480"):
        build_object_cloud(make_box_frame(), np.ones((240, 320), bool))


def test_mask_without_depth(make_box_frame, mask_of_box):
    frame = make_box_frame()
    depth = np.where(mask_of_box, np.float32(0), frame.depth_m)
    holey = RGBDFrame(frame.color, depth, frame.intrinsics)
    with pytest.raises(MaskError, match="none of its 6400 pixels has a depth reading; move the camera"):
        build_object_cloud(holey, mask_of_box)
    # a MaskError is an InputError and a ValueError
    with pytest.raises(InputError):
        build_object_cloud(holey, mask_of_box)
    with pytest.raises(ValueError):
        build_object_cloud(holey, mask_of_box)


def test_mask_depth_out_of_range(make_box_frame, mask_of_box):
    with pytest.raises(
        MaskError, match=r"all 6400 readings \(0.440-0.440 m\) lie outside the depth range 0.07-0.4 m"
    ):
        build_object_cloud(make_box_frame(), mask_of_box, CloudConfig(depth_range_m=(0.07, 0.4)))


def test_mask_depth_all_flying(make_box_frame):
    frame = make_box_frame()
    rng = np.random.default_rng(0)
    depth = frame.depth_m.copy()
    depth[100:110, 100:110] = rng.uniform(0.3, 0.9, (10, 10))  # speckle: no two neighbours agree
    m = np.zeros((480, 640), bool)
    m[101:109, 101:109] = True
    with pytest.raises(MaskError, match="removed as flying pixels .* lower cloud.flying_min_neighbors"):
        build_object_cloud(RGBDFrame(frame.color, depth, frame.intrinsics), m)


def test_no_plane_visible_gives_cloud_without_plane(make_box_frame, mask_of_box):
    frame = make_box_frame()
    depth = np.where(mask_of_box, frame.depth_m, np.float32(0))  # only the box has depth
    cloud = build_object_cloud(RGBDFrame(frame.color, depth, frame.intrinsics), mask_of_box)
    assert cloud.plane is None and cloud.stats["plane_found"] is False
    assert len(cloud) == mask_of_box.sum()


def test_cloud_is_read_only_and_input_untouched(make_box_frame, mask_of_box):
    frame = make_box_frame()
    mask = mask_of_box.copy()
    cloud = build_object_cloud(frame, mask)
    np.testing.assert_array_equal(mask, mask_of_box)
    with pytest.raises(ValueError):
        cloud.points_in_camera[0, 0] = 1.0
    with pytest.raises(ValueError):
        cloud.band[0, 0] = 3
