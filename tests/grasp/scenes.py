"""Synthetic scenes with exact ground truth for the grasp tests (analytic ray casting of graspseg.sim)."""

from __future__ import annotations

import math

import numpy as np

from graspseg.cloud import CloudConfig, build_object_cloud
from graspseg.cloud.types import BandLabel, ObjectCloud, SupportPlane
from graspseg.core import BASE, CAMERA, RGBDFrame, Transform
from graspseg.sim.synthetic import Box, Cylinder, PlacedPrimitive, d435_intrinsics, render


def look_at(target, distance: float, tilt_deg: float, azimuth_deg: float = 90.0) -> Transform:
    """camera_from_base for a camera ``distance`` from ``target``, optical axis ``tilt_deg`` from straight down."""
    t, a = math.radians(tilt_deg), math.radians(azimuth_deg)
    horiz = np.array([math.cos(a), math.sin(a), 0.0])
    z = math.sin(t) * horiz + math.cos(t) * np.array([0.0, 0.0, -1.0])
    pos = np.asarray(target, float) - distance * z
    x = np.cross(z, horiz if t > 1e-6 else np.array([0.0, 1.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return Transform.from_rt(np.stack([x, y, z], 1), pos, BASE, CAMERA).inverse()


class Scene:
    """A frame, the exact masks per object id, the table plane in the camera frame and the primitives."""

    def __init__(self, objects, *, tilt_deg=35.0, distance_m=0.45, azimuth_deg=90.0, target=(0.0, 0.0, 0.03)):
        self.intrinsics = d435_intrinsics()
        self.camera_from_base = look_at(target, distance_m, tilt_deg, azimuth_deg)
        self.primitives = objects
        r = render(self.intrinsics, self.camera_from_base, objects, seed=1, color_noise=0.0)
        depth = np.where(np.isfinite(r.depth), r.depth, 0.0).astype(np.float32)
        self.frame = RGBDFrame(r.color, depth, self.intrinsics, frame_id="grasp_test")
        self.ids = r.ids
        self.plane = SupportPlane(np.array([0.0, 0.0, 1.0]), 0.0, 1.0, 0.0, 0.0, BASE).transformed(self.camera_from_base)

    def mask(self, obj_id: int = 1) -> np.ndarray:
        return self.ids == obj_id

    def points(self, obj_id: int = 1) -> np.ndarray:
        """(N, 3) exact surface points of an object's visible pixels, camera frame, metres."""
        v, u = np.nonzero(self.mask(obj_id))
        z = self.frame.depth_m[v, u]
        rays = self.intrinsics.ray_image[v, u]
        return np.stack([rays[:, 0] * z, rays[:, 1] * z, z], 1)

    def cloud(self, mask=None, **kw) -> ObjectCloud:
        m = self.mask() if mask is None else mask
        return build_object_cloud(self.frame, m, CloudConfig(), plane=self.plane, **kw)


def box(size, xy=(0.0, 0.0), yaw_deg=0.0, obj_id=1, name="box") -> PlacedPrimitive:
    pose = Transform.from_rotvec([0, 0, math.radians(yaw_deg)], [xy[0], xy[1], size[2] / 2], BASE, "object")
    return PlacedPrimitive(obj_id, name, Box(tuple(size)), pose, (0.7, 0.2, 0.2))


def cylinder(radius, height, xy=(0.0, 0.0), obj_id=1, name="can") -> PlacedPrimitive:
    pose = Transform.from_rt(np.eye(3), [xy[0], xy[1], height / 2], BASE, "object")
    return PlacedPrimitive(obj_id, name, Cylinder(radius, height), pose, (0.2, 0.3, 0.7))


def naive_cloud(frame: RGBDFrame, mask: np.ndarray, plane: SupportPlane | None, stride: int = 4) -> ObjectCloud:
    """A cloud built without any depth check of the rim: every mask pixel with depth is a certain OBJECT point."""
    v, u = np.nonzero(mask & (frame.depth_m > 0))
    z = frame.depth_m[v, u].astype(np.float64)
    rays = frame.intrinsics.ray_image[v, u]
    pts = np.stack([rays[:, 0] * z, rays[:, 1] * z, z], 1).astype(np.float32)
    sv, su = np.nonzero(frame.depth_m[::stride, ::stride] > 0)
    sz = frame.depth_m[::stride, ::stride][sv, su].astype(np.float64)
    srays = frame.intrinsics.ray_image[sv * stride, su * stride]
    scene = np.stack([srays[:, 0] * sz, srays[:, 1] * sz, sz], 1).astype(np.float32)
    band = np.where(mask, BandLabel.OBJECT, BandLabel.OUTSIDE).astype(np.uint8)
    return ObjectCloud(pts, np.stack([u, v], 1).astype(np.int32), np.zeros((len(pts), 3), np.uint8),
                       np.full(len(pts), BandLabel.OBJECT, np.uint8), mask, band, scene, plane)


def leaky_frame(scene: Scene, mask: np.ndarray, r_px: int = 3, blend: float = 0.5):
    """The mask dilated by ``r_px`` and a frame whose false-rim pixels carry mixed depth.

    A stereo camera blends object and background depth at an edge; a mask that leaks over the edge
    takes those flying pixels in. Here every false-rim pixel gets ``(1 - blend) * z_object + blend * z_behind``,
    z_object being the depth of the nearest object pixel.
    """
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r_px + 1, 2 * r_px + 1))
    dil = cv2.dilate(mask.astype(np.uint8), k).astype(bool)
    rim = dil & ~mask
    depth = scene.frame.depth_m.copy()
    _, labels = cv2.distanceTransformWithLabels((~mask).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    # map each rim pixel to its nearest mask pixel
    mv, mu = np.nonzero(~(~mask))
    lab_of_mask = labels[mv, mu]
    lut = np.zeros(labels.max() + 1, int)
    lut[lab_of_mask] = np.arange(len(mv))
    rv, ru = np.nonzero(rim)
    near = lut[labels[rv, ru]]
    z_obj = depth[mv[near], mu[near]]
    z_bg = depth[rv, ru]
    depth[rv, ru] = np.where(z_bg > 0, (1 - blend) * z_obj + blend * z_bg, 0.0)
    frame = RGBDFrame(scene.frame.color, depth, scene.frame.intrinsics, frame_id="leaky")
    return frame, dil, rim
