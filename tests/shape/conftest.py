"""Synthetic object clouds with exact ground truth, ray-cast analytically (no renderer, no randomness unless seeded).

A table is the plane z = 0 of the base frame; one primitive (box, upright or lying cylinder, sphere) stands on
it; a pinhole camera looks at it. Depth is exact (optionally with seeded Gaussian noise ``a + b z²``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from graspseg.cloud.types import BandLabel, ObjectCloud, SupportPlane
from graspseg.core import BASE, CAMERA, OBJECT, CameraIntrinsics, Transform

INTR = CameraIntrinsics(640, 480, 615.0, 615.0, 319.5, 239.5)


def look_at(cam_pos, target) -> Transform:
    """``base_from_camera`` for an optical camera at ``cam_pos`` looking at ``target`` (base frame, metres)."""
    cam_pos, target = np.asarray(cam_pos, float), np.asarray(target, float)
    z = target - cam_pos
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    if np.linalg.norm(x) < 1e-6:
        x = np.array([1.0, 0.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return Transform.from_rt(np.stack([x, y, z], axis=1), cam_pos, BASE, CAMERA)


@dataclass
class Truth:
    kind: str
    dims: tuple  # box (lx, ly, lz); cylinder (radius, length); sphere (radius,)
    base_from_object: Transform
    camera_from_object: Transform
    intrinsics: CameraIntrinsics

    @property
    def height_m(self) -> float:
        if self.kind == "box":
            return self.dims[2]
        if self.kind == "cylinder":
            return self.dims[1]
        if self.kind == "lying_cylinder":
            return 2 * self.dims[0]
        return 2 * self.dims[0]


def _ray_hits(kind, dims, obj_from_base: Transform, origin, dirs):
    """Ray parameter t (inf where missed) for rays origin + t·dirs (base frame)."""
    o = obj_from_base.apply(origin[None])[0]
    d = obj_from_base.apply_vectors(dirs)
    t = np.full(len(d), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "box":
            half = np.asarray(dims) / 2
            t1, t2 = (-half - o) / d, (half - o) / d
            tmin = np.nanmax(np.minimum(t1, t2), axis=1)
            tmax = np.nanmin(np.maximum(t1, t2), axis=1)
            hit = (tmax >= tmin) & (tmin > 0)
            t[hit] = tmin[hit]
        elif kind in ("cylinder", "lying_cylinder"):
            r, hl = dims[0], dims[1] / 2
            if kind == "lying_cylinder":  # axis along object x
                perm = [1, 2, 0]
                o, d = o[perm], d[:, perm]
            a = d[:, 0] ** 2 + d[:, 1] ** 2
            b = 2 * (o[0] * d[:, 0] + o[1] * d[:, 1])
            c = o[0] ** 2 + o[1] ** 2 - r * r
            disc = b * b - 4 * a * c
            ts = (-b - np.sqrt(disc)) / (2 * a)
            zs = o[2] + ts * d[:, 2]
            ok = (disc >= 0) & (ts > 0) & (np.abs(zs) <= hl)
            t = np.where(ok, ts, t)
            for zc in (-hl, hl):
                tc = (zc - o[2]) / d[:, 2]
                pc = o[:2] + tc[:, None] * d[:, :2]
                okc = (tc > 0) & ((pc**2).sum(axis=1) <= r * r)
                t = np.where(okc & (tc < t), tc, t)
        elif kind == "sphere":
            r = dims[0]
            b = 2 * d @ o
            a = (d * d).sum(axis=1)
            c = o @ o - r * r
            disc = b * b - 4 * a * c
            ts = (-b - np.sqrt(disc)) / (2 * a)
            ok = (disc >= 0) & (ts > 0)
            t[ok] = ts[ok]
    return t


@lru_cache(maxsize=64)
def make_synthetic_cloud(kind="box", dims=(0.12, 0.07, 0.05), xy=(0.0, 0.0), yaw_rad=0.3,
                         cam_pos=(0.05, -0.32, 0.38), noise=(0.0, 0.0), seed=0, with_plane=True,
                         plane_tilt_rad=0.0, intrinsics=INTR, with_base=True):
    """Render one object on a table and return ``(ObjectCloud, Truth, depth_m, mask)`` (cached: do not mutate).

    ``dims``: box (lx, ly, lz); cylinder/lying_cylinder (radius, length); sphere (radius,).
    """
    if kind == "box":
        z = dims[2] / 2
    elif kind == "cylinder":
        z = dims[1] / 2
    else:
        z = dims[0]
    rot = Rotation.from_euler("z", yaw_rad).as_matrix()
    base_from_object = Transform.from_rt(rot, [xy[0], xy[1], z], BASE, OBJECT)
    base_from_camera = look_at(cam_pos, [xy[0], xy[1], z])
    if plane_tilt_rad:
        # Tilt the whole world (table + object) about the base x axis: the plane is no longer horizontal.
        tilt = Transform.from_rt(Rotation.from_euler("x", plane_tilt_rad).as_matrix(), [0, 0, 0], BASE, BASE)
        base_from_object = tilt @ base_from_object
        base_from_camera = tilt @ base_from_camera
    h, w = intrinsics.height, intrinsics.width
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    uv = np.stack([u.ravel(), v.ravel()], axis=1)
    rays_cam = intrinsics.pixel_rays(uv)  # z = 1: t is the camera depth
    origin = base_from_camera.translation
    dirs = base_from_camera.apply_vectors(rays_cam)
    t_obj = _ray_hits(kind, dims, base_from_object.inverse(), origin, dirs)
    plane_base_n = np.array([0.0, 0.0, 1.0])
    plane_base_off = 0.0
    if plane_tilt_rad:
        tilt_r = Rotation.from_euler("x", plane_tilt_rad).as_matrix()
        plane_base_n = tilt_r @ plane_base_n
    with np.errstate(divide="ignore", invalid="ignore"):
        t_tab = -(origin @ plane_base_n + plane_base_off) / (dirs @ plane_base_n)
    t_tab = np.where(t_tab > 0, t_tab, np.inf)
    depth = np.minimum(t_obj, t_tab)
    depth = np.where(np.isfinite(depth) & (depth < 3.0), depth, 0.0)
    if noise[0] or noise[1]:
        rng = np.random.default_rng(seed)
        sigma = noise[0] + noise[1] * depth**2
        depth = np.where(depth > 0, depth + rng.normal(size=depth.shape) * sigma, 0.0)
    obj = (t_obj <= t_tab) & np.isfinite(t_obj)
    depth_img = depth.reshape(h, w).astype(np.float32)
    mask = obj.reshape(h, w)
    pts = intrinsics.unproject(uv[obj], depth[obj]).astype(np.float32)
    n = len(pts)
    camera_from_base = base_from_camera.inverse()
    plane = None
    if with_plane:
        plane = SupportPlane(plane_base_n, plane_base_off, 0.9, 0.0005, 0.004, BASE).transformed(camera_from_base)
    valid = depth > 0
    scene = intrinsics.unproject(uv[valid][::16], depth[valid][::16]).astype(np.float32)
    cloud = ObjectCloud(
        points_in_camera=pts,
        pixels_uv=uv[obj].astype(np.int32),
        colors=np.full((n, 3), 128, np.uint8),
        labels=np.full(n, BandLabel.OBJECT, np.uint8),
        mask=mask,
        band=np.where(mask, BandLabel.OBJECT, BandLabel.OUTSIDE).astype(np.uint8),
        scene_points_in_camera=scene,
        plane=plane,
        base_from_camera=base_from_camera if with_base else None,
    )
    truth = Truth(kind, tuple(dims), base_from_object, camera_from_base @ base_from_object, intrinsics)
    return cloud, truth, depth_img, mask


def with_points(cloud: ObjectCloud, points, labels=None, **changes) -> ObjectCloud:
    """A copy of ``cloud`` with other points (pixels, colours, labels resized to match)."""
    pts = np.asarray(points, np.float32).reshape(-1, 3)
    n = len(pts)
    uv = np.zeros((n, 2), np.int32)
    if n:
        pts = np.nan_to_num(pts, nan=1.0)
        uv[:, 0] = np.clip(np.round(pts[:, 0] / np.maximum(pts[:, 2], 1e-6) * 615 + 319.5), 0, 639)
        uv[:, 1] = np.clip(np.round(pts[:, 1] / np.maximum(pts[:, 2], 1e-6) * 615 + 239.5), 0, 479)
    kw = dict(points_in_camera=np.asarray(points, np.float32).reshape(-1, 3), pixels_uv=uv, colors=np.zeros((n, 3), np.uint8),
              labels=np.full(n, BandLabel.OBJECT, np.uint8) if labels is None else np.asarray(labels, np.uint8),
              mask=cloud.mask, band=cloud.band, scene_points_in_camera=cloud.scene_points_in_camera,
              plane=cloud.plane, base_from_camera=cloud.base_from_camera)
    kw.update(changes)
    return ObjectCloud(**kw)


@pytest.fixture
def synth():
    return make_synthetic_cloud


@pytest.fixture
def replace_points():
    return with_points
