"""Analytic RGB-D tabletop scenes with exact ground truth (numpy only, no physics engine).

A table plane and primitives (boxes, cylinders, spheres, mugs) are ray-cast analytically through a pinhole
camera placed like a wrist camera (looking down at a tilt), with a z-buffer. Every output is exact: depth, the
instance masks (visible and amodal), surface normals, the object poses and primitive dimensions. An optional
stereo-like :class:`DepthNoise` degrades the depth the way a D4xx camera does.

Frames
------
``base``
    The table frame: origin on the table surface, +z up (the table is the plane ``z = 0``).
``camera_color_optical``
    The camera (z forward, x right, y down).
``object``
    Per primitive, see each shape class: origin at the centre of the primitive's body, +z along its axis.

Example
-------
>>> scene = make_scene("clutter", seed=3)
>>> scene.frame.depth_m.shape
(480, 640)
>>> [o.name for o in scene.objects]  # doctest: +SKIP
['red_box', 'blue_mug', ...]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar

import numpy as np

from ..capture.frame_folder import GroundTruthObject
from ..cloud.types import SupportPlane
from ..core.camera import CameraIntrinsics, CameraRig
from ..core.errors import ConfigError, UnitsError
from ..core.frame import RGBDFrame
from ..core.transform import BASE, CAMERA, OBJECT, TCP, Transform

__all__ = [
    "LAYOUTS",
    "KINDS",
    "EXTRA_KINDS",
    "Box",
    "Cylinder",
    "Sphere",
    "Mug",
    "PlacedPrimitive",
    "DepthNoise",
    "Room",
    "SyntheticScene",
    "SENSORS",
    "d435_intrinsics",
    "sensor_frame",
    "sensor_noise",
    "default_tcp_from_camera",
    "make_scene",
    "render",
]

#: Layout names accepted by :func:`make_scene` (``packed`` is an alias of ``side_by_side``).
LAYOUTS: tuple[str, ...] = ("single", "side_by_side", "packed", "clutter")
#: Primitive kinds drawn by default.
KINDS: tuple[str, ...] = ("box", "cylinder", "sphere", "mug")
#: Kinds drawn only when asked for: books and boards (``flat_box``, 10–25 mm thick) and markers, tools and
#: flashlights (``thin_cylinder``, 8–15 mm radius, lying on their side except in ``side_by_side`` rows).
EXTRA_KINDS: tuple[str, ...] = ("flat_box", "thin_cylinder")

_EPS = 1e-9
_INF = np.inf


# ================================================================================================
# Ray / convex-solid intervals (object frame, rays o + t d with any non-zero d)
# ================================================================================================
def _slab(o: np.ndarray, d: np.ndarray, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    dd = np.where(np.abs(d) < 1e-12, 1e-12, d)
    inv = 1.0 / dd
    t1 = (lo - o) * inv
    t2 = (hi - o) * inv
    return np.minimum(t1, t2), np.maximum(t1, t2)


def _box_interval(o, d, half):
    """Entry/exit of rays through the axis-aligned box ``|p_i| <= half_i``; outward normals at both."""
    tmin, tmax = _slab(o, d, -half, half)
    ax0 = tmin.argmax(1)
    ax1 = tmax.argmin(1)
    r = np.arange(len(o))
    t0 = tmin[r, ax0]
    t1 = tmax[r, ax1]
    n0 = np.zeros_like(o)
    n1 = np.zeros_like(o)
    n0[r, ax0] = -np.sign(d[r, ax0])
    n1[r, ax1] = np.sign(d[r, ax1])
    hit = t0 <= t1
    return np.where(hit, t0, _INF), np.where(hit, t1, -_INF), n0, n1


def _cylinder_interval(o, d, radius, z0, z1):
    """Entry/exit through the solid cylinder ``x²+y² <= r², z0 <= z <= z1``; outward normals."""
    a = d[:, 0] ** 2 + d[:, 1] ** 2
    b = o[:, 0] * d[:, 0] + o[:, 1] * d[:, 1]
    c = o[:, 0] ** 2 + o[:, 1] ** 2 - radius**2
    parallel = a < 1e-18
    disc = b * b - a * c
    ok = np.where(parallel, c <= 0, disc >= 0)
    sq = np.sqrt(np.maximum(disc, 0.0))
    a_safe = np.where(parallel, 1.0, a)
    tc0 = np.where(parallel, -_INF, (-b - sq) / a_safe)
    tc1 = np.where(parallel, _INF, (-b + sq) / a_safe)
    tz0, tz1 = _slab(o[:, 2], d[:, 2], z0, z1)
    t0 = np.maximum(tc0, tz0)
    t1 = np.minimum(tc1, tz1)
    hit = ok & (t0 <= t1)
    side0 = tc0 >= tz0
    side1 = tc1 <= tz1
    n0 = np.zeros_like(o)
    n1 = np.zeros_like(o)
    t0f = np.where(np.isfinite(t0), t0, 0.0)
    t1f = np.where(np.isfinite(t1), t1, 0.0)
    for n, tt, side, sgn in ((n0, t0f, side0, -1.0), (n1, t1f, side1, 1.0)):
        px = o[:, 0] + tt * d[:, 0]
        py = o[:, 1] + tt * d[:, 1]
        n[:, 0] = np.where(side, px / radius, 0.0)
        n[:, 1] = np.where(side, py / radius, 0.0)
        n[:, 2] = np.where(side, 0.0, sgn * np.sign(d[:, 2]))
    return np.where(hit, t0, _INF), np.where(hit, t1, -_INF), n0, n1


def _sphere_interval(o, d, radius):
    a = np.einsum("ij,ij->i", d, d)
    b = np.einsum("ij,ij->i", o, d)
    c = np.einsum("ij,ij->i", o, o) - radius**2
    disc = b * b - a * c
    hit = disc >= 0
    sq = np.sqrt(np.maximum(disc, 0.0))
    t0 = (-b - sq) / a
    t1 = (-b + sq) / a
    n0 = (o + t0[:, None] * d) / radius
    n1 = (o + t1[:, None] * d) / radius
    return np.where(hit, t0, _INF), np.where(hit, t1, -_INF), n0, n1


def _first_hit(t0, n0, tmin=1e-7):
    t = np.where(t0 > tmin, t0, _INF)
    return t, n0


# --- signed distances (exact for the convex solids, a correct-sign bound for the mug's CSG) ----
def _sdf_box(p, half):
    q = np.abs(p) - half
    return np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(1), 0.0)


def _sdf_cylinder(p, radius, z0, z1):
    zc, hh = 0.5 * (z0 + z1), 0.5 * (z1 - z0)
    dx = np.hypot(p[:, 0], p[:, 1]) - radius
    dz = np.abs(p[:, 2] - zc) - hh
    return np.minimum(np.maximum(dx, dz), 0.0) + np.hypot(np.maximum(dx, 0.0), np.maximum(dz, 0.0))


def _circle_ring(radius: float, z: float, n: int = 64) -> np.ndarray:
    """A circumscribed n-gon of the circle (its convex hull contains the circle)."""
    ang = np.arange(n) * (2 * np.pi / n)
    r = radius / math.cos(math.pi / n)
    return np.stack([r * np.cos(ang), r * np.sin(ang), np.full(n, z)], axis=1)


# ================================================================================================
# Primitives
# ================================================================================================
@dataclass(frozen=True)
class Box:
    """A solid box centred on its object frame.

    Attributes
    ----------
    size_m : (3,) floats
        Full side lengths along object x, y, z, metres.
    """

    size_m: tuple[float, float, float]
    kind: ClassVar[str] = "box"

    def __post_init__(self) -> None:
        s = tuple(float(x) for x in self.size_m)
        if len(s) != 3 or min(s) <= 0:
            raise UnitsError(f"box size_m must be 3 positive lengths in metres, got {self.size_m!r}")
        object.__setattr__(self, "size_m", s)

    @property
    def half(self) -> np.ndarray:
        return 0.5 * np.asarray(self.size_m)

    def bounds_m(self) -> np.ndarray:
        """(2, 3) min/max corner of the object-frame bounding box, metres."""
        return np.stack([-self.half, self.half])

    @property
    def extents_m(self) -> np.ndarray:
        """(3,) full size of the object-frame bounding box, metres."""
        return np.asarray(self.size_m)

    def intersect(self, o, d):
        """First hit of rays (origins ``o`` (N, 3), directions ``d`` (N, 3), object frame).

        Returns ``t`` (N,) (``inf`` for a miss; the hit point is ``o + t d``) and outward unit normals (N, 3).
        """
        t0, _, n0, _ = _box_interval(o, d, self.half)
        return _first_hit(t0, n0)

    def sdf(self, p):
        """(N,) signed distance of (N, 3) object-frame points, metres (negative inside)."""
        return _sdf_box(p, self.half)

    def sample_surface(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, 3) points uniformly on the surface, object frame."""
        h = self.half
        areas = np.array([h[1] * h[2], h[0] * h[2], h[0] * h[1]] * 2)
        face = rng.choice(6, size=n, p=areas / areas.sum())
        p = rng.uniform(-1, 1, (n, 3)) * h
        ax = face % 3
        sign = np.where(face < 3, 1.0, -1.0)
        p[np.arange(n), ax] = sign * h[ax]
        return p

    def hull_parts(self) -> list[np.ndarray]:
        """Convex parts as point sets (object frame) whose hulls contain the solid; used for placement."""
        h = self.half
        c = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
        return [c * h]

    def label_region(self, p, n):
        """(N,) bool: surface points carrying a printed label (a band around the side faces)."""
        return (np.abs(n[:, 2]) < 0.5) & (np.abs(p[:, 2]) < 0.3 * self.half[2])


@dataclass(frozen=True)
class Cylinder:
    """A solid cylinder, axis along object z, centred on its object frame.

    Attributes
    ----------
    radius_m, height_m : float
        Metres.
    """

    radius_m: float
    height_m: float
    kind: ClassVar[str] = "cylinder"

    def __post_init__(self) -> None:
        if not (float(self.radius_m) > 0 and float(self.height_m) > 0):
            raise UnitsError(f"cylinder radius_m and height_m must be positive metres, got {self.radius_m}, {self.height_m}")
        object.__setattr__(self, "radius_m", float(self.radius_m))
        object.__setattr__(self, "height_m", float(self.height_m))

    def bounds_m(self) -> np.ndarray:
        r, hh = self.radius_m, 0.5 * self.height_m
        return np.array([[-r, -r, -hh], [r, r, hh]])

    @property
    def extents_m(self) -> np.ndarray:
        return np.array([2 * self.radius_m, 2 * self.radius_m, self.height_m])

    def intersect(self, o, d):
        hh = 0.5 * self.height_m
        t0, _, n0, _ = _cylinder_interval(o, d, self.radius_m, -hh, hh)
        return _first_hit(t0, n0)

    def sdf(self, p):
        hh = 0.5 * self.height_m
        return _sdf_cylinder(p, self.radius_m, -hh, hh)

    def sample_surface(self, n: int, rng: np.random.Generator) -> np.ndarray:
        r, h = self.radius_m, self.height_m
        side_area, cap_area = 2 * np.pi * r * h, np.pi * r * r
        kind = rng.choice(3, size=n, p=np.array([side_area, cap_area, cap_area]) / (side_area + 2 * cap_area))
        ang = rng.uniform(0, 2 * np.pi, n)
        rad = np.where(kind == 0, r, r * np.sqrt(rng.uniform(0, 1, n)))
        z = np.where(kind == 0, rng.uniform(-h / 2, h / 2, n), np.where(kind == 1, h / 2, -h / 2))
        return np.stack([rad * np.cos(ang), rad * np.sin(ang), z], axis=1)

    def hull_parts(self) -> list[np.ndarray]:
        hh = 0.5 * self.height_m
        return [np.vstack([_circle_ring(self.radius_m, -hh), _circle_ring(self.radius_m, hh)])]

    def label_region(self, p, n):
        return (np.abs(n[:, 2]) < 0.5) & (np.abs(p[:, 2]) < 0.3 * self.height_m)


@dataclass(frozen=True)
class Sphere:
    """A solid sphere centred on its object frame.

    Attributes
    ----------
    radius_m : float
        Metres.
    """

    radius_m: float
    kind: ClassVar[str] = "sphere"

    def __post_init__(self) -> None:
        if not float(self.radius_m) > 0:
            raise UnitsError(f"sphere radius_m must be positive metres, got {self.radius_m}")
        object.__setattr__(self, "radius_m", float(self.radius_m))

    def bounds_m(self) -> np.ndarray:
        r = self.radius_m
        return np.array([[-r, -r, -r], [r, r, r]])

    @property
    def extents_m(self) -> np.ndarray:
        return np.full(3, 2 * self.radius_m)

    def intersect(self, o, d):
        t0, _, n0, _ = _sphere_interval(o, d, self.radius_m)
        return _first_hit(t0, n0)

    def sdf(self, p):
        return np.linalg.norm(p, axis=1) - self.radius_m

    def sample_surface(self, n: int, rng: np.random.Generator) -> np.ndarray:
        v = rng.normal(size=(n, 3))
        return self.radius_m * v / np.linalg.norm(v, axis=1, keepdims=True)

    def hull_parts(self) -> list[np.ndarray]:
        r = self.radius_m
        return [np.vstack([_circle_ring(r, 0.0), [[0, 0, r], [0, 0, -r]]])]

    def label_region(self, p, n):
        return np.zeros(len(p), bool)


@dataclass(frozen=True)
class Mug:
    """A mug: a cylindrical shell with a closed bottom and a torus-section handle on the +x side.

    Object frame: origin at the body's centre (on the axis, mid-height), +z up through the opening,
    the handle in the xz plane on +x.

    Attributes
    ----------
    radius_m : float
        Outer radius of the body, metres.
    height_m : float
        Body height, metres.
    wall_m, bottom_m : float
        Wall and bottom thickness, metres.
    handle_radius_m : float
        Radius of the handle's centre line (the torus' major radius), metres.
    handle_thickness_m : float
        Radius of the handle's tube (the torus' minor radius), metres.
    """

    radius_m: float
    height_m: float
    wall_m: float = 0.005
    bottom_m: float = 0.008
    handle_radius_m: float = 0.024
    handle_thickness_m: float = 0.006
    kind: ClassVar[str] = "mug"

    def __post_init__(self) -> None:
        for name in ("radius_m", "height_m", "wall_m", "bottom_m", "handle_radius_m", "handle_thickness_m"):
            v = float(getattr(self, name))
            if not v > 0:
                raise UnitsError(f"mug {name} must be a positive length in metres, got {v}")
            object.__setattr__(self, name, v)
        if self.wall_m >= self.radius_m or self.bottom_m >= self.height_m:
            raise UnitsError(
                f"mug wall {self.wall_m} m / bottom {self.bottom_m} m must be thinner than its radius "
                f"{self.radius_m} m / height {self.height_m} m"
            )
        if self.handle_radius_m + self.handle_thickness_m > 0.5 * self.height_m:
            raise UnitsError(
                f"mug handle (radius {self.handle_radius_m} + thickness {self.handle_thickness_m} m) does not fit "
                f"the body height {self.height_m} m; make the handle smaller than half the height"
            )

    # handle geometry: torus centre just inside the wall so the loop joins it
    @property
    def handle_centre(self) -> np.ndarray:
        return np.array([self.radius_m - 0.004, 0.0, 0.0])

    @property
    def inner_radius_m(self) -> float:
        return self.radius_m - self.wall_m

    def bounds_m(self) -> np.ndarray:
        r, hh = self.radius_m, 0.5 * self.height_m
        xmax = self.handle_centre[0] + self.handle_radius_m + self.handle_thickness_m
        return np.array([[-r, -r, -hh], [xmax, r, hh]])

    @property
    def extents_m(self) -> np.ndarray:
        b = self.bounds_m()
        return b[1] - b[0]

    def _handle_box(self) -> tuple[np.ndarray, np.ndarray]:
        c, a, b = self.handle_centre, self.handle_radius_m, self.handle_thickness_m
        lo = np.array([self.radius_m - 0.003, -b, c[2] - a - b])
        hi = np.array([c[0] + a + b, b, c[2] + a + b])
        return lo, hi

    def _sdf_torus(self, p):
        q = p - self.handle_centre
        ring = np.hypot(q[:, 0], q[:, 2]) - self.handle_radius_m
        return np.hypot(ring, q[:, 1]) - self.handle_thickness_m

    def _sdf_handle(self, p):
        clip = (self.radius_m - 0.001) - np.hypot(p[:, 0], p[:, 1])
        return np.maximum(self._sdf_torus(p), clip)

    def _handle_normal(self, p):
        q = p - self.handle_centre
        rr = np.maximum(np.hypot(q[:, 0], q[:, 2]), 1e-12)
        ring = np.stack([q[:, 0] / rr, np.zeros(len(q)), q[:, 2] / rr], axis=1) * self.handle_radius_m
        n = q - ring
        return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)

    def _intersect_handle(self, o, d):
        n_rays = len(o)
        t_out = np.full(n_rays, _INF)
        n_out = np.zeros((n_rays, 3))
        lo, hi = self._handle_box()
        tmin, tmax = _slab(o, d, lo, hi)
        t0 = np.maximum(tmin.max(1), 0.0)
        t1 = tmax.min(1)
        idx = np.nonzero(t0 <= t1)[0]
        if not len(idx):
            return t_out, n_out
        dn = np.linalg.norm(d[idx], axis=1)
        du = d[idx] / dn[:, None]
        s = t0[idx] * dn
        s_end = t1[idx] * dn
        oo = o[idx]
        active = np.arange(len(idx))
        hit = np.zeros(len(idx), bool)
        for _ in range(160):
            if not len(active):
                break
            p = oo[active] + s[active, None] * du[active]
            dist = self._sdf_handle(p)
            conv = dist < 2e-6
            hit[active[conv]] = True
            s[active] += np.where(conv, 0.0, dist)
            keep = ~conv & (s[active] <= s_end[active] + 1e-6)
            active = active[keep]
        if len(active):  # grazing rays that ran out of steps: accept the ones already on the surface
            left = self._sdf_handle(oo[active] + s[active, None] * du[active])
            hit[active[left < 2e-5]] = True
        hit &= s <= s_end + 1e-6
        hi_idx = idx[hit]
        t_out[hi_idx] = s[hit] / dn[hit]
        n_out[hi_idx] = self._handle_normal(oo[hit] + s[hit, None] * du[hit])
        return t_out, n_out

    def intersect(self, o, d):
        hh = 0.5 * self.height_m
        ta0, ta1, na0, _ = _cylinder_interval(o, d, self.radius_m, -hh, hh)
        tb0, tb1, _, nb1 = _cylinder_interval(o, d, self.inner_radius_m, -hh + self.bottom_m, hh + 1.0)
        in_cavity = (tb0 <= ta0) & (ta0 <= tb1)
        t_outer = np.where(~in_cavity & np.isfinite(ta0), ta0, _INF)
        t_inner = np.where(in_cavity & np.isfinite(ta0) & (tb1 < ta1), tb1, _INF)
        t_body = np.minimum(t_outer, t_inner)
        n_body = np.where(in_cavity[:, None], -nb1, na0)
        t_body = np.where(t_body > 1e-7, t_body, _INF)
        t_h, n_h = self._intersect_handle(o, d)
        use_h = t_h < t_body
        return np.where(use_h, t_h, t_body), np.where(use_h[:, None], n_h, n_body)

    def sdf(self, p):
        hh = 0.5 * self.height_m
        outer = _sdf_cylinder(p, self.radius_m, -hh, hh)
        cavity = _sdf_cylinder(p, self.inner_radius_m, -hh + self.bottom_m, hh + 1.0)
        body = np.maximum(outer, -cavity)
        return np.minimum(body, self._sdf_handle(p))

    def sample_surface(self, n: int, rng: np.random.Generator) -> np.ndarray:
        r, ri, h, hh = self.radius_m, self.inner_radius_m, self.height_m, 0.5 * self.height_m
        a, b = self.handle_radius_m, self.handle_thickness_m
        areas = np.array([
            2 * np.pi * r * h,  # outer side
            2 * np.pi * ri * (h - self.bottom_m),  # inner side
            np.pi * (r * r - ri * ri),  # rim
            np.pi * ri * ri,  # inner bottom
            np.pi * r * r,  # outer bottom
            2 * np.pi * a * 2 * np.pi * b * 0.6,  # handle (visible part)
        ])
        part = rng.choice(6, size=n, p=areas / areas.sum())
        ang = rng.uniform(0, 2 * np.pi, n)
        u = rng.uniform(0, 1, n)
        pts = np.zeros((n, 3))
        rad = np.select(
            [part == 0, part == 1, part == 2, part == 3, part == 4],
            [np.full(n, r), np.full(n, ri), np.sqrt(ri * ri + u * (r * r - ri * ri)), ri * np.sqrt(u), r * np.sqrt(u)],
            0.0,
        )
        z = np.select(
            [part == 0, part == 1, part == 2, part == 3, part == 4],
            [-hh + u * h, -hh + self.bottom_m + u * (h - self.bottom_m), np.full(n, hh),
             np.full(n, -hh + self.bottom_m), np.full(n, -hh)],
            0.0,
        )
        pts[:, 0] = rad * np.cos(ang)
        pts[:, 1] = rad * np.sin(ang)
        pts[:, 2] = z
        hnd = part == 5
        if hnd.any():
            k = int(hnd.sum())
            for _ in range(20):  # rejection-sample the visible (outside-the-wall) part of the torus
                phi = rng.uniform(0, 2 * np.pi, 4 * k)
                psi = rng.uniform(0, 2 * np.pi, 4 * k)
                ring = np.stack([np.cos(phi), np.zeros(4 * k), np.sin(phi)], axis=1)
                tube = ring * np.cos(psi)[:, None] + np.array([0.0, 1.0, 0.0]) * np.sin(psi)[:, None]
                q = self.handle_centre + a * ring + b * tube
                q = q[np.hypot(q[:, 0], q[:, 1]) >= r]
                if len(q) >= k:
                    pts[hnd] = q[:k]
                    break
            else:  # pragma: no cover - the visible part is never that small
                pts = pts[~hnd]
        return pts

    def hull_parts(self) -> list[np.ndarray]:
        hh = 0.5 * self.height_m
        body = np.vstack([_circle_ring(self.radius_m, -hh), _circle_ring(self.radius_m, hh)])
        lo, hi = self._handle_box()
        c = np.array([[sx, sy, sz] for sx in (0, 1) for sy in (0, 1) for sz in (0, 1)], float)
        return [body, lo + c * (hi - lo)]

    def label_region(self, p, n):
        return np.zeros(len(p), bool)


Shape = Box | Cylinder | Sphere | Mug


@dataclass(frozen=True, eq=False)
class PlacedPrimitive:
    """One object of a synthetic scene: its primitive, pose and appearance.

    Attributes
    ----------
    id : int
        Instance id (≥ 1; 0 is the table in :attr:`SyntheticScene.instance_ids`).
    name : str
        Unique name such as ``"red_mug"``.
    shape : Box | Cylinder | Sphere | Mug
        The primitive with its dimensions (metres, object frame).
    base_from_object : Transform
        Pose on the table (``base`` ← ``object``).
    albedo_rgb : (3,) floats in [0, 1]
        Base colour.
    label_rgb : (3,) floats or None
        Colour of a printed label band on the side faces, when it has one.
    lying : bool
        True for a cylinder lying on its side (object z horizontal).
    """

    id: int
    name: str
    shape: Shape
    base_from_object: Transform
    albedo_rgb: tuple[float, float, float]
    label_rgb: tuple[float, float, float] | None = None
    lying: bool = False

    @property
    def kind(self) -> str:
        return self.shape.kind

    @property
    def yaw_rad(self) -> float:
        """Heading of the object x axis in the table plane (atan2 of its base-frame y, x), radians."""
        x = self.base_from_object.rotation[:, 0]
        return float(math.atan2(x[1], x[0]))

    def sdf_in_base(self, points_in_base: np.ndarray) -> np.ndarray:
        """(N,) signed distance (metres) of (N, 3) base-frame points to this object's surface."""
        return self.shape.sdf(self.base_from_object.inverse().apply(points_in_base))

    def surface_points_in_base(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(≈n, 3) points sampled on the surface, base frame."""
        return self.base_from_object.apply(self.shape.sample_surface(n, rng))


# ================================================================================================
# Depth noise
# ================================================================================================
@dataclass(frozen=True)
class DepthNoise:
    """A stereo (D4xx-like) depth-noise model, applied to exact rendered depth.

    Effects, in the order applied:

    1. **Flying pixels**: pixels within ``flying_width_px`` of a depth jump larger than ``edge_jump_m`` get, with
       probability ``flying_prob``, a depth drawn uniformly between the near and far side of the jump.
    2. **Depth noise**: stereo depth error grows with z²: ``sigma_z = z² · subpixel_px / (fx · baseline_m)``
       (about 1 mm at 0.5 m for the defaults and fx = 615 px), spatially correlated over ``correlation_px``
       (block matching averages a window).
    3. **Missing depth** (set to 0), in contiguous blobs (a smooth random field is thresholded):
       dark surfaces (colour luminance < ``dark_threshold``, probability ``dark_dropout``), steep surfaces (the
       angle between the viewing ray and the normal rises from ``steep_start_deg`` to ``steep_full_deg``,
       probability 0 → 1), specular highlights (specular intensity > ``specular_threshold``), the stereo shadow
       (background that the second imager, ``baseline_m`` to the right, cannot see: a band left of every
       foreground edge), a small ``random_dropout`` rate and readings outside ``range_m``.
    4. **Quantisation** to ``depth_unit_m`` (the D435's 1 mm raw unit).

    Attributes are plain floats; every random draw comes from the generator passed to :meth:`apply`.
    """

    baseline_m: float = 0.050
    subpixel_px: float = 0.08
    correlation_px: int = 3
    edge_jump_m: float = 0.01
    flying_prob: float = 0.5
    flying_width_px: int = 1
    dark_threshold: float = 0.10
    dark_dropout: float = 0.8
    steep_start_deg: float = 72.0
    steep_full_deg: float = 86.0
    specular_threshold: float = 0.45
    stereo_shadow: bool = True
    random_dropout: float = 0.002
    range_m: tuple[float, float] = (0.11, 3.0)
    depth_unit_m: float = 0.001

    def __post_init__(self) -> None:
        for name in ("baseline_m", "subpixel_px", "edge_jump_m", "depth_unit_m"):
            if not float(getattr(self, name)) >= 0:
                raise UnitsError(f"DepthNoise.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("flying_prob", "dark_dropout", "random_dropout", "dark_threshold"):
            v = float(getattr(self, name))
            if not 0.0 <= v <= 1.0:
                raise UnitsError(f"DepthNoise.{name} is a probability/fraction in [0, 1], got {v}")
        if not 0 <= self.steep_start_deg < self.steep_full_deg <= 90:
            raise UnitsError(
                f"DepthNoise needs 0 <= steep_start_deg < steep_full_deg <= 90, got {self.steep_start_deg}, {self.steep_full_deg}"
            )
        lo, hi = (float(x) for x in self.range_m)
        if not 0 <= lo < hi:
            raise UnitsError(f"DepthNoise.range_m must be (near, far) metres with near < far, got {self.range_m}")

    @classmethod
    def none(cls) -> DepthNoise:
        """A model that changes nothing except quantisation-free pass-through (every effect off)."""
        return cls(subpixel_px=0.0, flying_prob=0.0, dark_dropout=0.0, steep_start_deg=89.0, steep_full_deg=90.0,
                   specular_threshold=np.inf, stereo_shadow=False, random_dropout=0.0, range_m=(0.0, 100.0),
                   depth_unit_m=0.0)

    def apply(
        self,
        depth_m: np.ndarray,
        *,
        intrinsics: CameraIntrinsics,
        normals_in_camera: np.ndarray,
        luminance: np.ndarray,
        specular: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Degrade exact depth.

        Parameters
        ----------
        depth_m : (H, W) float
            Exact depth along z, metres; 0 or inf = nothing there.
        intrinsics : CameraIntrinsics
            Camera of the image (fx sets the disparity scale).
        normals_in_camera : (H, W, 3) float
            Unit surface normals, camera frame.
        luminance : (H, W) float in [0, 1]
            Brightness of the surface (rendered colour luminance).
        specular : (H, W) float ≥ 0
            Specular highlight intensity.
        rng : numpy Generator

        Returns
        -------
        (H, W) float32 depth in metres, 0 = no reading.
        """
        import cv2

        z = np.where(np.isfinite(depth_m) & (depth_m > 0), depth_m, 0.0).astype(np.float64)
        valid = z > 0
        h, w = z.shape
        # 1. flying pixels at depth jumps
        if self.flying_prob > 0 and self.edge_jump_m > 0:
            big = np.where(valid, z, 1e3).astype(np.float32)
            k = 2 * int(self.flying_width_px) + 1
            kernel = np.ones((k, k), np.uint8)
            z_far = cv2.dilate(big, kernel)
            z_near = cv2.erode(big, kernel)
            edge = valid & (z_far - z_near > self.edge_jump_m) & (z_far < 1e3)
            fly = edge & (rng.random((h, w), dtype=np.float32) < self.flying_prob)
            u = rng.random((h, w), dtype=np.float32)
            z = np.where(fly, z_near + u * (z_far - z_near), z)
        # 2. correlated stereo noise, sigma ~ z^2
        if self.subpixel_px > 0 and self.baseline_m > 0:
            white = rng.standard_normal((h, w), dtype=np.float32)
            c = max(int(self.correlation_px), 1)
            if c > 1:
                white = cv2.blur(white, (c, c)) * c
            sigma = z * z * (self.subpixel_px / (intrinsics.fx * self.baseline_m))
            z = z + sigma * white
        # 3. missing depth, in blobs: one smooth uniform field thresholded by the per-pixel probability
        field_ = cv2.GaussianBlur(rng.standard_normal((h, w), dtype=np.float32), (0, 0), 2.0)
        field_ = field_ / max(float(field_.std()), 1e-6)
        from scipy.special import ndtr

        u_blob = ndtr(field_)
        p_drop = np.zeros((h, w))
        p_drop = np.maximum(p_drop, np.where(luminance < self.dark_threshold, self.dark_dropout, 0.0))
        view = _rays_cam(intrinsics)[1]
        nrm = np.asarray(normals_in_camera).reshape(-1, 3)
        cos_inc = np.abs(_dot(view, nrm)).reshape(h, w)
        inc_deg = np.degrees(np.arccos(np.clip(cos_inc, 0, 1)))
        p_steep = np.clip((inc_deg - self.steep_start_deg) / (self.steep_full_deg - self.steep_start_deg), 0, 1)
        p_steep[~(np.abs(nrm).sum(1) > 0).reshape(h, w)] = 0.0
        p_drop = np.maximum(p_drop, p_steep)
        drop = u_blob < p_drop
        drop |= specular > self.specular_threshold
        drop |= rng.random((h, w), dtype=np.float32) < self.random_dropout
        if self.stereo_shadow and self.baseline_m > 0:
            drop |= _stereo_shadow(np.where(valid, depth_m, 0.0), intrinsics.fx * self.baseline_m)
        lo, hi = self.range_m
        drop |= (z < lo) | (z > hi)
        z = np.where(valid & ~drop, z, 0.0)
        if self.depth_unit_m > 0:
            z = np.round(z / self.depth_unit_m) * self.depth_unit_m
        return np.maximum(z, 0.0).astype(np.float32)


def _stereo_shadow(depth_m: np.ndarray, f_times_b: float, margin_px: float = 0.25) -> np.ndarray:
    """(H, W) bool: pixels hidden from a second imager ``baseline`` to the right (disparity occlusion).

    A pixel at column u with disparity d(u) is hidden when some pixel u' > u has d(u') ≥ d(u) + (u' − u), i.e.
    when g(u') = d(u') − u' exceeds g(u) somewhere to its right: a reverse running maximum per row.
    """
    valid = depth_m > 0
    disp = np.where(valid, f_times_b / np.maximum(depth_m, 1e-6), 0.0)
    g = disp - np.arange(depth_m.shape[1])[None, :]
    run = np.maximum.accumulate(g[:, ::-1], axis=1)[:, ::-1]  # max over u' >= u
    right = np.full_like(g, -np.inf)
    right[:, :-1] = run[:, 1:]  # max over u' > u
    return valid & (right >= g + margin_px)


# ================================================================================================
# Camera, colours, textures
# ================================================================================================
def d435_intrinsics(width: int = 640, height: int = 480) -> CameraIntrinsics:
    """Intrinsics of a D435-like colour camera: fx ≈ fy ≈ 615 px at 640×480.

    Other modes keep square pixels and the vertical field of view, as the camera's own do (848×480:
    f ≈ 615 px, 1280×720: f ≈ 923 px — a 16:9 mode sees wider, not stretched); the principal point keeps
    its offset from the image centre, scaled.
    """
    base = CameraIntrinsics(640, 480, 615.3, 615.6, 321.2, 240.9)
    if (width, height) == (640, 480):
        return base
    s = height / base.height
    return CameraIntrinsics(int(width), int(height), base.fx * s, base.fy * s,
                            (width - 1) / 2 + (base.cx - (base.width - 1) / 2) * s,
                            (height - 1) / 2 + (base.cy - (base.height - 1) / 2) * s)


def default_tcp_from_camera() -> Transform:
    """Where the synthetic wrist camera sits on the hand: 10 cm behind the fingertip centre and 6 cm above
    the fingers (camera −y), looking along the approach axis (camera z = tcp z)."""
    return Transform.from_rt(np.eye(3), [0.0, -0.06, -0.10], TCP, CAMERA)


_PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (0.72, 0.14, 0.12),
    "orange": (0.88, 0.45, 0.12),
    "yellow": (0.86, 0.74, 0.18),
    "green": (0.22, 0.52, 0.24),
    "teal": (0.12, 0.48, 0.50),
    "blue": (0.16, 0.30, 0.68),
    "purple": (0.44, 0.22, 0.55),
    "pink": (0.88, 0.52, 0.62),
    "white": (0.86, 0.86, 0.83),
    "grey": (0.46, 0.46, 0.48),
    "black": (0.07, 0.07, 0.08),
    "brown": (0.46, 0.29, 0.16),
    "cream": (0.90, 0.84, 0.68),
}
_TABLES: tuple[tuple[str, tuple[float, float, float]], ...] = (
    ("wood", (0.62, 0.46, 0.30)),
    ("laminate", (0.58, 0.58, 0.56)),
    ("white", (0.80, 0.80, 0.77)),
    ("dark", (0.24, 0.24, 0.26)),
)


class _ValueNoise:
    """Smooth 2-D value noise in [0, 1] from a seeded 256×256 lattice (bilinear)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.grid = rng.random((256, 256)).astype(np.float32)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        y = np.asarray(y, np.float32)
        x0 = np.floor(x)
        y0 = np.floor(y)
        fx = x - x0
        fy = y - y0
        fx = fx * fx * (3 - 2 * fx)
        fy = fy * fy * (3 - 2 * fy)
        i0 = x0.astype(np.int64) & 255
        j0 = y0.astype(np.int64) & 255
        i1 = (i0 + 1) & 255
        j1 = (j0 + 1) & 255
        g = self.grid
        a = g[j0, i0] * (1 - fx) + g[j0, i1] * fx
        b = g[j1, i0] * (1 - fx) + g[j1, i1] * fx
        return a * (1 - fy) + b * fy


def _table_factor(kind: str, x: np.ndarray, y: np.ndarray, noise: _ValueNoise) -> np.ndarray:
    """(N,) float32 brightness factor of the table texture at table points (x, y), metres."""
    n1 = noise(x * 40.0, y * 40.0)
    if kind == "wood":
        grain = 0.5 + 0.5 * np.sin(2 * np.pi * (x * 60.0 + 3.0 * n1))
        f = 0.80 + 0.18 * grain
    else:
        f = 0.92 + 0.10 * (n1 - 0.5)
    return f.astype(np.float32)


# ================================================================================================
# Rendering
# ================================================================================================
@lru_cache(maxsize=8)
def _rays_cam(intr: CameraIntrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Pixel rays with z = 1 (HW, 3) and their unit versions (HW, 3), float64, row-major pixels."""
    r = intr.ray_image.reshape(-1, 2).astype(np.float64)
    out = np.concatenate([r, np.ones((len(r), 1))], axis=1)
    unit = out / np.sqrt(np.einsum("ij,ij->i", out, out))[:, None]
    out.setflags(write=False)
    unit.setflags(write=False)
    return out, unit


def _rot(v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``v @ r.T`` for (N, 3) ``v`` without BLAS (threaded GEMM is slow and erratic on tall, thin arrays)."""
    return v[:, 0:1] * r[:, 0] + v[:, 1:2] * r[:, 1] + v[:, 2:3] * r[:, 2]


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[:, 0] * b[:, 0] + a[:, 1] * b[:, 1] + a[:, 2] * b[:, 2]


def _image_bbox(intr: CameraIntrinsics, points_in_camera: np.ndarray, margin: int = 2):
    """Pixel bounding box (u0, u1, v0, v1), end-exclusive, of points' projections; whole image if any is
    behind the camera."""
    if (points_in_camera[:, 2] <= 0.02).any():
        return 0, intr.width, 0, intr.height
    uv = intr.project(points_in_camera)
    u0 = max(int(np.floor(uv[:, 0].min())) - margin, 0)
    u1 = min(int(np.ceil(uv[:, 0].max())) + margin + 1, intr.width)
    v0 = max(int(np.floor(uv[:, 1].min())) - margin, 0)
    v1 = min(int(np.ceil(uv[:, 1].max())) + margin + 1, intr.height)
    return u0, u1, v0, v1


def _bbox_indices(bbox, width: int) -> np.ndarray:
    u0, u1, v0, v1 = bbox
    if u1 <= u0 or v1 <= v0:
        return np.zeros(0, np.int64)
    vv, uu = np.meshgrid(np.arange(v0, v1), np.arange(u0, u1), indexing="ij")
    return (vv * width + uu).ravel()


def _cast(shape: Shape, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``shape.intersect`` on the rays that meet the shape's bounding sphere (the others miss)."""
    b = shape.bounds_m()
    c = 0.5 * (b[0] + b[1])
    r = 0.5 * float(np.linalg.norm(b[1] - b[0])) + 1e-4
    oc = o - c
    a = np.einsum("ij,ij->i", d, d)
    bb = np.einsum("ij,ij->i", oc, d)
    cc = np.einsum("ij,ij->i", oc, oc) - r * r
    disc = bb * bb - a * cc
    cand = np.nonzero((disc >= 0) & (-bb + np.sqrt(np.maximum(disc, 0.0)) > 0))[0]
    t = np.full(len(d), _INF)
    n = np.zeros((len(d), 3))
    if len(cand):
        t[cand], n[cand] = shape.intersect(np.ascontiguousarray(o[cand]), d[cand])
    return t, n


def _aabb_corners(shape: Shape) -> np.ndarray:
    b = shape.bounds_m()
    return np.array([[b[i, 0], b[j, 1], b[k, 2]] for i in (0, 1) for j in (0, 1) for k in (0, 1)])


@dataclass(frozen=True)
class _Render:
    color: np.ndarray
    depth: np.ndarray  # (H, W) float64, inf where nothing
    ids: np.ndarray  # (H, W) int32
    normals_cam: np.ndarray  # (H, W, 3)
    luminance: np.ndarray
    specular: np.ndarray
    amodal: np.ndarray  # (K, H, W) bool


@dataclass(frozen=True)
class Room:
    """A finite table top (the plane ``z = 0`` of ``base``) with the floor below it and a wall beyond it.

    What a third-person camera sees past the table's edge: the floor ``floor_z_m`` below the top and a
    vertical wall through ``wall_point_xy`` facing ``wall_normal_xy`` (horizontal, towards the table).
    Both are background (instance id 0), not support. Base frame, metres.
    """

    table_centre_xy: tuple[float, float]
    table_half_xy: tuple[float, float]
    floor_z_m: float = -0.74
    wall_point_xy: tuple[float, float] = (0.0, 1.5)
    wall_normal_xy: tuple[float, float] = (0.0, -1.0)
    floor_rgb: tuple[float, float, float] = (0.36, 0.33, 0.30)
    wall_rgb: tuple[float, float, float] = (0.78, 0.76, 0.70)

    def __post_init__(self) -> None:
        if not all(float(h) > 0 for h in self.table_half_xy):
            raise UnitsError(f"Room.table_half_xy must be positive half sizes in metres, got {self.table_half_xy}")
        if not float(self.floor_z_m) < 0:
            raise UnitsError(f"Room.floor_z_m must be below the table top (< 0 m), got {self.floor_z_m}")
        n = np.asarray(self.wall_normal_xy, float)
        if not abs(np.linalg.norm(n) - 1.0) < 1e-6:
            raise UnitsError(f"Room.wall_normal_xy must be a unit vector, got {self.wall_normal_xy}")


def _room_surfaces(room: Room, origin: np.ndarray, d_base: np.ndarray, depth: np.ndarray) -> tuple:
    """Clip the table to its rectangle and add floor and wall: (depth, surface) with surface 0 table,
    1 floor, 2 wall, -1 nothing; ``d_base`` (N, 3) ray directions in base whose ``t`` is camera depth."""
    with np.errstate(invalid="ignore"):
        px = origin[0] + depth * d_base[:, 0]
        py = origin[1] + depth * d_base[:, 1]
    cx, cy = room.table_centre_xy
    hx, hy = room.table_half_xy
    on_table = np.isfinite(depth) & (np.abs(px - cx) <= hx) & (np.abs(py - cy) <= hy)
    depth = np.where(on_table, depth, _INF)
    surface = np.where(on_table, 0, -1)
    dz = d_base[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(dz < -1e-9, (room.floor_z_m - origin[2]) / dz, _INF)
        n = np.array([*room.wall_normal_xy, 0.0])
        w0 = np.array([*room.wall_point_xy, 0.0])
        nd = d_base @ n
        t_wall = np.where(nd < -1e-9, float(n @ (w0 - origin)) / nd, _INF)
    t_floor[~(t_floor > 0)] = _INF
    t_wall[~(t_wall > 0)] = _INF
    free = ~on_table
    floor = free & (t_floor <= t_wall) & np.isfinite(t_floor)
    wall = free & (t_wall < t_floor) & np.isfinite(t_wall)
    depth[floor] = t_floor[floor]
    depth[wall] = t_wall[wall]
    surface[floor] = 1
    surface[wall] = 2
    return depth, surface


def render(
    intrinsics: CameraIntrinsics,
    camera_from_base: Transform,
    objects: list[PlacedPrimitive],
    *,
    table: tuple[str, tuple[float, float, float]] = _TABLES[0],
    light_dir_in_base: np.ndarray = (0.3, 0.2, 0.93),
    seed: int = 0,
    color_noise: float = 1.5,
    room: Room | None = None,
) -> _Render:
    """Ray-cast the table plane (``z = 0`` in ``base``) and the objects; returns exact buffers.

    Parameters
    ----------
    intrinsics : CameraIntrinsics
        Pinhole camera (distortion, if any, is honoured by the pixel rays).
    camera_from_base : Transform
        ``camera_color_optical`` ← ``base``.
    objects : list of PlacedPrimitive
    table : (kind, rgb)
        Table texture kind (``wood``, ``laminate``, ...) and base colour.
    light_dir_in_base : (3,) float
        Direction towards the (directional) light, base frame; shadows are cast.
    seed : int
        Seeds the textures and the colour noise.
    color_noise : float
        Standard deviation of the Gaussian sensor noise on colour, in 8-bit levels.
    room : Room or None
        None: the table is an infinite plane. Otherwise a finite top with floor and wall around it.
    """
    rng = np.random.default_rng(seed)
    tex = _ValueNoise(rng)
    w, h = intrinsics.width, intrinsics.height
    base_from_camera = camera_from_base.inverse()
    r_bc = base_from_camera.rotation
    r_cb = camera_from_base.rotation
    origin = base_from_camera.translation.copy()
    rays, rays_unit = _rays_cam(intrinsics)  # camera frame; t along ``rays`` is depth z
    n_px = w * h
    ids = np.zeros(n_px, np.int32)
    normals = np.zeros((n_px, 3))  # camera frame
    albedo = np.zeros((n_px, 3), np.float32)
    ks = np.zeros(n_px, np.float32)
    shininess = np.full(n_px, 20.0, np.float32)

    # table plane z = 0 (base)
    dz = rays[:, 0] * r_bc[2, 0] + rays[:, 1] * r_bc[2, 1] + r_bc[2, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(dz < -1e-9, -origin[2] / dz, _INF)
    depth[~(depth > 0)] = _INF
    surface = np.where(np.isfinite(depth), 0, -1)
    if room is not None:
        depth, surface = _room_surfaces(room, origin, _rot(rays, r_bc), depth)
    normals[surface >= 0] = r_cb[:, 2]  # table top and floor face up
    if room is not None:
        normals[surface == 2] = r_cb @ np.array([*room.wall_normal_xy, 0.0])
    # table texture on a half-resolution grid, upsampled (it is smooth; per-pixel speckle is added after)
    import cv2

    hh2, ww2 = (h + 1) // 2, (w + 1) // 2
    sub = rays.reshape(h, w, 3)[::2, ::2].reshape(-1, 3)
    d_sub = _rot(sub, r_bc)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_sub = np.where(d_sub[:, 2] < -1e-9, -origin[2] / d_sub[:, 2], 0.0)
    x_sub = origin[0] + t_sub * d_sub[:, 0]
    y_sub = origin[1] + t_sub * d_sub[:, 1]
    f_sub = _table_factor(table[0], x_sub, y_sub, tex).reshape(hh2, ww2)
    f_tab = cv2.resize(f_sub, (w, h), interpolation=cv2.INTER_LINEAR).reshape(-1)
    f_tab = f_tab * (0.94 + 0.12 * rng.random(n_px, dtype=np.float32))
    albedo[:] = np.asarray(table[1], np.float32)[None, :] * f_tab[:, None]
    if room is not None:
        albedo[surface == 1] = np.asarray(room.floor_rgb, np.float32) * f_tab[surface == 1, None]
        albedo[surface == 2] = np.asarray(room.wall_rgb, np.float32) * (0.97 + 0.06 * f_tab[surface == 2, None])
    ks[:] = 0.04

    amodal = np.zeros((len(objects), h, w), bool)
    for k, obj in enumerate(objects):
        camera_from_object = camera_from_base @ obj.base_from_object
        corners = camera_from_object.apply(_aabb_corners(obj.shape))
        idx = _bbox_indices(_image_bbox(intrinsics, corners), w)
        if not len(idx):
            continue
        object_from_camera = camera_from_object.inverse()
        o_obj = object_from_camera.translation.copy()
        d_obj = _rot(rays[idx], object_from_camera.rotation)
        t, n_obj = _cast(obj.shape, np.broadcast_to(o_obj, d_obj.shape), d_obj)
        hit = np.isfinite(t)
        amodal[k].reshape(-1)[idx[hit]] = True
        front = hit & (t < depth[idx])
        fi = idx[front]
        depth[fi] = t[front]
        ids[fi] = obj.id
        normals[fi] = _rot(n_obj[front], camera_from_object.rotation)
        p_obj = o_obj + t[front, None] * d_obj[front]
        mott = tex(p_obj[:, 0] * 300 + p_obj[:, 2] * 170 + 11.0 * k, p_obj[:, 1] * 300 - p_obj[:, 2] * 130 + 7.0 * k)
        col = np.asarray(obj.albedo_rgb)[None, :] * (0.95 + 0.10 * mott[:, None])
        if obj.label_rgb is not None:
            lab = obj.shape.label_region(p_obj, n_obj[front])
            col[lab] = np.asarray(obj.label_rgb) * (0.95 + 0.10 * mott[lab, None])
        albedo[fi] = col
        ks[fi] = 0.35 if obj.kind == "mug" else 0.10
        shininess[fi] = 60.0 if obj.kind == "mug" else 20.0

    # shading: ambient + Lambert + Blinn-Phong, with cast shadows; computed in the camera frame
    light = np.asarray(light_dir_in_base, float)
    light = light / np.linalg.norm(light)
    light_cam = r_cb @ light
    hit_any = np.isfinite(depth)
    ndl = np.clip(normals[:, 0] * light_cam[0] + normals[:, 1] * light_cam[1] + normals[:, 2] * light_cam[2], 0.0, None)
    lit = np.ones(n_px, bool)
    # table shadows are smooth: cast them from one pixel per 2x2 block, copy to the other three
    vv, uu = np.divmod(np.arange(n_px), w)
    anchor = (vv & ~1) * w + (uu & ~1)
    is_tab = hit_any & (ids == 0)
    defer = is_tab & (anchor != np.arange(n_px)) & is_tab[anchor]
    for obj in objects:
        # the object's shadow volume: its box corners and their projections onto the table along the light
        cb = obj.base_from_object.apply(_aabb_corners(obj.shape))
        proj = cb - (cb[:, 2:3] / max(light[2], 1e-3)) * light
        bbox = _image_bbox(intrinsics, camera_from_base.apply(np.vstack([cb, proj])))
        idx = _bbox_indices(bbox, w)
        idx = idx[hit_any[idx] & lit[idx] & (ndl[idx] > 0) & ~defer[idx]]
        if not len(idx):
            continue
        object_from_camera = (camera_from_base @ obj.base_from_object).inverse()
        p_cam = rays[idx] * depth[idx, None] + 2e-5 * normals[idx]
        o = _rot(p_cam, object_from_camera.rotation) + object_from_camera.translation
        d = np.broadcast_to(object_from_camera.rotation @ light_cam, o.shape)
        t, _ = _cast(obj.shape, o, d)
        lit[idx[np.isfinite(t)]] = False
    lit[defer] = lit[anchor[defer]]
    ndl *= lit
    spec = np.zeros(n_px)
    sp = np.nonzero(ndl > 0)[0]
    half = light_cam[None, :] - rays_unit[sp]
    half /= np.sqrt(_dot(half, half))[:, None]
    ndh = _dot(normals[sp], half)
    strong = ndh > 0.75
    spec[sp[strong]] = ks[sp[strong]] * ndh[strong] ** shininess[sp[strong]]
    shade = (0.38 + 0.70 * ndl).astype(np.float32)
    rgb = albedo * shade[:, None] + spec[:, None].astype(np.float32)
    rgb[~hit_any] = 0.05
    noise_img = rng.standard_normal(rgb.shape, dtype=np.float32) * np.float32(color_noise)
    color = np.clip(rgb * 255.0 + noise_img, 0, 255).astype(np.uint8)
    lum = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]).reshape(h, w)
    normals_cam = normals.reshape(h, w, 3)
    return _Render(
        color=color.reshape(h, w, 3),
        depth=depth.reshape(h, w),
        ids=ids.reshape(h, w),
        normals_cam=normals_cam,
        luminance=lum,
        specular=spec.reshape(h, w),
        amodal=amodal,
    )


# ================================================================================================
# Layouts
# ================================================================================================
def _hull2d(points: np.ndarray) -> np.ndarray:
    """Convex hull (counter-clockwise) of (N, 2) points (Andrew's monotone chain)."""
    pts = np.unique(np.round(points, 12), axis=0)
    if len(pts) <= 2:
        return pts

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list = []
    for p in pts[::-1]:
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def _polys_overlap(a: np.ndarray, b: np.ndarray, tol: float = 1e-7) -> bool:
    """Separating-axis test of two convex polygons; touching (within ``tol``) does not count as overlap."""
    for poly in (a, b):
        e = np.roll(poly, -1, axis=0) - poly
        axes = np.stack([-e[:, 1], e[:, 0]], axis=1)
        axes /= np.maximum(np.linalg.norm(axes, axis=1, keepdims=True), 1e-15)
        pa = a @ axes.T
        pb = b @ axes.T
        if np.any((pa.max(0) <= pb.min(0) + tol) | (pb.max(0) <= pa.min(0) + tol)):
            return False
    return True


def _footprint(shape: Shape, base_from_object: Transform) -> list[np.ndarray]:
    return [_hull2d(base_from_object.apply(part)[:, :2]) for part in shape.hull_parts()]


def _footprints_overlap(fa: list[np.ndarray], fb: list[np.ndarray]) -> bool:
    return any(_polys_overlap(a, b) for a in fa for b in fb)


def _rot_z(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _pose(shape: Shape, xy, yaw: float, lying: bool = False) -> Transform:
    """Pose of a primitive resting on the table at ``xy`` with heading ``yaw``."""
    if lying:
        # object z (the cylinder axis) along base x before the yaw; object x points down
        rot = _rot_z(yaw) @ np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    else:
        rot = _rot_z(yaw)
    z = -(_aabb_corners(shape) @ rot.T)[:, 2].min()  # rest the lowest point on the table
    return Transform.from_rt(rot, [xy[0], xy[1], z], BASE, OBJECT)


_THIN_RADIUS_M = 0.016  # cylinders thinner than this lie on their side


def _random_shape(kind: str, rng: np.random.Generator) -> Shape:
    if kind == "box":
        return Box((rng.uniform(0.05, 0.14), rng.uniform(0.035, 0.07), rng.uniform(0.035, 0.14)))
    if kind == "cylinder":
        return Cylinder(rng.uniform(0.02, 0.038), rng.uniform(0.06, 0.14))
    if kind == "sphere":
        return Sphere(rng.uniform(0.025, 0.04))
    if kind == "flat_box":
        return Box((rng.uniform(0.10, 0.18), rng.uniform(0.06, 0.12), rng.uniform(0.01, 0.025)))
    if kind == "thin_cylinder":
        return Cylinder(rng.uniform(0.008, 0.015), rng.uniform(0.10, 0.18))
    if kind == "mug":
        hgt = rng.uniform(0.08, 0.11)
        return Mug(rng.uniform(0.034, 0.044), hgt, wall_m=rng.uniform(0.004, 0.006),
                   handle_radius_m=min(0.026, 0.5 * hgt - 0.014), handle_thickness_m=rng.uniform(0.005, 0.007))
    raise ConfigError(f"unknown primitive kind {kind!r}; choose from {list(KINDS + EXTRA_KINDS)}")


def _slide_to_contact(fixed: list[list[np.ndarray]], moving: list[np.ndarray], start: np.ndarray,
                      direction: np.ndarray, max_s: float) -> float | None:
    """Largest s before the footprint ``moving`` (convex polygons, placed at the origin) moved to
    ``start + s · direction`` first overlaps one of ``fixed``; None when it never does or starts overlapping."""
    fixed_flat = [(poly, poly.mean(0), float(np.linalg.norm(poly - poly.mean(0), axis=1).max()))
                  for f in fixed for poly in f]
    moving_c = [(poly, poly.mean(0), float(np.linalg.norm(poly - poly.mean(0), axis=1).max())) for poly in moving]

    def collides(s: float) -> bool:
        off = start + s * direction
        for poly, c, r in moving_c:
            for q, cq, rq in fixed_flat:
                if np.linalg.norm(c + off - cq) >= r + rq:
                    continue
                if _polys_overlap(poly + off, q):
                    return True
        return False

    if collides(0.0):
        return None
    step = 0.01
    s_prev, s = 0.0, step
    while s <= max_s:
        if collides(s):
            lo, hi = s_prev, s
            for _ in range(20):
                mid = 0.5 * (lo + hi)
                if collides(mid):
                    hi = mid
                else:
                    lo = mid
            return lo
        s_prev = s
        s += step
    return None


def _layout_single(rng, kinds) -> list[tuple[Shape, Transform, bool]]:
    shape = _random_shape(str(rng.choice(kinds)), rng)
    lying = shape.kind == "cylinder" and (rng.random() < 0.25 or shape.radius_m < _THIN_RADIUS_M)
    return [(shape, _pose(shape, rng.uniform(-0.01, 0.01, 2), rng.uniform(-np.pi, np.pi), lying), lying)]


def _layout_side_by_side(rng, n, kinds) -> list[tuple[Shape, Transform, bool]]:
    """Upright objects in a row along a random heading, each touching the next."""
    kinds = [k for k in kinds if k != "sphere"] or ["box"]
    shapes = [_random_shape(str(rng.choice(kinds)), rng) for _ in range(n)]
    yaws, half_along = [], []
    for s in shapes:
        if s.kind == "box":
            y = float(rng.choice([0.0, np.pi / 2]))
            half_along.append(0.5 * (s.size_m[0] if y == 0.0 else s.size_m[1]))
        elif s.kind == "mug":
            y = float(rng.choice([np.pi / 2, -np.pi / 2]))  # handle across the row, not into a neighbour
            half_along.append(s.radius_m)
        else:
            y = float(rng.uniform(-np.pi, np.pi))
            half_along.append(s.radius_m)
        yaws.append(y)
    xs = np.cumsum([0.0] + [half_along[i] + half_along[i + 1] for i in range(n - 1)])
    xs -= 0.5 * (xs[0] + xs[-1])
    row = rng.uniform(-np.pi, np.pi)
    rz = _rot_z(row)
    out = []
    for s, x, y in zip(shapes, xs, yaws, strict=True):
        xy = (rz @ [x, 0.0, 0.0])[:2]
        out.append((s, _pose(s, xy, y + row), False))
    return out


def _layout_clutter(rng, n, kinds, touch_prob: float = 0.65) -> list[tuple[Shape, Transform, bool]]:
    """Objects pushed towards the cluster from random directions; most end up touching a neighbour."""
    placed: list[tuple[Shape, Transform, bool]] = []
    fps: list[list[np.ndarray]] = []
    for i in range(n):
        for _attempt in range(20):
            shape = _random_shape(str(rng.choice(kinds)), rng)
            lying = shape.kind == "cylinder" and (rng.random() < 0.3 or shape.radius_m < _THIN_RADIUS_M)
            yaw = rng.uniform(-np.pi, np.pi)
            pose = _pose(shape, (0.0, 0.0), yaw, lying)
            if i == 0:
                placed.append((shape, pose, lying))
                fps.append(_footprint(shape, pose))
                break
            centre = np.mean([p.translation[:2] for _, p, _ in placed], axis=0)
            theta = rng.uniform(-np.pi, np.pi)
            direction = -np.array([math.cos(theta), math.sin(theta)])
            perp = np.array([-direction[1], direction[0]])
            start = centre - 0.4 * direction + rng.uniform(-0.03, 0.03) * perp
            rot = pose.rotation
            s = _slide_to_contact(fps, _footprint(shape, pose), start, direction, 0.8)
            if s is None:
                continue
            if rng.random() > touch_prob:
                s -= rng.uniform(0.008, 0.03)
            xy = start + s * direction
            pose = Transform.from_rt(rot, [xy[0], xy[1], pose.translation[2]], BASE, OBJECT)
            f = _footprint(shape, pose)
            if any(_footprints_overlap(f, g) for g in fps):  # pragma: no cover - guarded by the slide
                continue
            placed.append((shape, pose, lying))
            fps.append(f)
            break
    return placed


# ================================================================================================
# The scene
# ================================================================================================
@dataclass(frozen=True, eq=False)
class SyntheticScene:
    """A rendered synthetic scene with exact ground truth.

    Attributes
    ----------
    frame : RGBDFrame
        Colour, depth (noisy when a :class:`DepthNoise` was given, else exact), intrinsics, and
        ``base_from_tcp`` for the rig's ``tcp_from_camera``.
    objects : list of GroundTruthObject
        Visible instance masks (H, W) bool (exact per pixel centre), names, ids and ``camera_from_object``.
        Same order as :attr:`primitives`; a mask may be small or empty for a hidden object.
    primitives : list of PlacedPrimitive
        Shape, dimensions, ``base_from_object`` and colours of each object.
    plane : SupportPlane
        The table plane in the camera frame (normal towards the camera).
    camera_from_base : Transform
        ``camera_color_optical`` ← ``base`` (the table frame).
    rig : CameraRig
        Intrinsics and ``tcp_from_camera`` of the simulated wrist camera.
    depth_true_m : (H, W) float32
        Exact depth before noise; 0 where a ray meets nothing.
    instance_ids : (H, W) int32
        Object id per pixel, 0 = table / background.
    normals_in_camera : (H, W, 3) float32
        Unit surface normals, camera frame (zero where nothing was hit).
    amodal_masks : (K, H, W) bool
        Full silhouettes, ignoring occlusion by other objects.
    touching : tuple of (id, id)
        Pairs of objects in contact (closer than 0.5 mm), smaller id first.
    layout, seed : str, int
        How the scene was made.
    """

    frame: RGBDFrame
    objects: list[GroundTruthObject]
    primitives: list[PlacedPrimitive]
    plane: SupportPlane
    camera_from_base: Transform
    rig: CameraRig
    depth_true_m: np.ndarray
    instance_ids: np.ndarray
    normals_in_camera: np.ndarray
    amodal_masks: np.ndarray
    touching: tuple[tuple[int, int], ...]
    layout: str
    seed: int
    meta: dict = field(default_factory=dict)

    @property
    def base_from_camera(self) -> Transform:
        return self.camera_from_base.inverse()

    def object_by_id(self, object_id: int) -> tuple[GroundTruthObject, PlacedPrimitive]:
        """The ground truth and the primitive of one object id."""
        for gt, prim in zip(self.objects, self.primitives, strict=True):
            if gt.id == object_id:
                return gt, prim
        raise ConfigError(f"scene has no object id {object_id}; ids are {[o.id for o in self.objects]}")

    def visible_fraction(self) -> np.ndarray:
        """(K,) visible mask area over amodal area per object (0 for an object out of view)."""
        vis = np.array([o.mask.sum() for o in self.objects], float)
        amo = self.amodal_masks.reshape(len(self.objects), -1).sum(1).astype(float)
        return np.where(amo > 0, vis / np.maximum(amo, 1), 0.0)


def _look_at(target: np.ndarray, distance: float, tilt_rad: float, azimuth_rad: float, roll_rad: float) -> Transform:
    """``camera_from_base`` of a camera ``distance`` from ``target``, optical axis ``tilt`` from straight down."""
    horiz = np.array([math.cos(azimuth_rad), math.sin(azimuth_rad), 0.0])  # from camera towards the target
    z_cam = math.sin(tilt_rad) * horiz + math.cos(tilt_rad) * np.array([0.0, 0.0, -1.0])
    pos = target - distance * z_cam
    x_cam = np.cross(z_cam, horiz)
    x_cam /= np.linalg.norm(x_cam)
    y_cam = np.cross(z_cam, x_cam)
    rot_bc = np.stack([x_cam, y_cam, z_cam], axis=1)  # columns: camera axes in base
    c, s = math.cos(roll_rad), math.sin(roll_rad)
    rot_bc = rot_bc @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return Transform.from_rt(rot_bc, pos, BASE, CAMERA).inverse()


def _touching_pairs(prims: list[PlacedPrimitive], rng: np.random.Generator, tol_m: float = 5e-4):
    pairs = []
    samples = [p.surface_points_in_base(4000, rng) for p in prims]
    for i in range(len(prims)):
        for j in range(i + 1, len(prims)):
            a, b = prims[i], prims[j]
            ra = np.linalg.norm(a.base_from_object.translation - b.base_from_object.translation)
            if ra > np.linalg.norm(a.shape.extents_m) + np.linalg.norm(b.shape.extents_m):
                continue
            d = min(b.sdf_in_base(samples[i]).min(), a.sdf_in_base(samples[j]).min())
            if d < tol_m:
                pairs.append((a.id, b.id))
    return tuple(pairs)


def _make_room(prims: list[PlacedPrimitive], camera_from_base: Transform, rng: np.random.Generator) -> Room:
    """A table top around the objects' footprints and a wall beyond it, away from the camera."""
    pts = np.vstack([np.vstack(_footprint(p.shape, p.base_from_object)) for p in prims])
    lo, hi = pts.min(0), pts.max(0)
    lo = lo - rng.uniform(0.2, 0.6, 2)
    hi = hi + rng.uniform(0.2, 0.6, 2)
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    axis = camera_from_base.inverse().rotation[:2, 2]  # optical axis, horizontal part (base)
    away = axis / np.linalg.norm(axis) if np.linalg.norm(axis) > 1e-6 else np.array([1.0, 0.0])
    reach = float(np.abs(away) @ half)  # table centre to its far edge along ``away``
    wall = centre + (reach + rng.uniform(0.5, 1.5)) * away
    return Room(tuple(float(x) for x in centre), tuple(float(x) for x in half),
                wall_point_xy=tuple(float(x) for x in wall), wall_normal_xy=tuple(float(x) for x in -away))


def make_scene(
    layout: str = "clutter",
    *,
    seed: int = 0,
    n_objects: int = 4,
    width: int = 640,
    height: int = 480,
    tilt_deg: float | None = None,
    distance_m: float | None = None,
    noise: DepthNoise | None = None,
    kinds: tuple[str, ...] | None = None,
    room: bool = False,
    view_shift: float = 0.0,
) -> SyntheticScene:
    """Make a seeded synthetic tabletop scene and render it through a wrist-like camera.

    Parameters
    ----------
    layout : {"single", "side_by_side", "packed", "clutter"}
        ``single``: one object. ``side_by_side`` (alias ``packed``): ``n_objects`` upright objects in a row,
        each touching the next. ``clutter``: ``n_objects`` pushed together from random directions (most touch
        a neighbour; taller ones occlude others from a tilted view).
    seed : int
        Seeds everything (shapes, layout, colours, camera, textures, noise). Same seed, same scene.
    n_objects : int
        1–12; ignored by ``single``; at least 2 for ``side_by_side``.
    width, height : int
        Image size; intrinsics are a D435's at 640×480 rescaled.
    tilt_deg : float or None
        Angle between the optical axis and straight down, degrees (0–75); None draws it from 30–60.
    distance_m : float or None
        Camera distance from the look-at point on the objects, metres (0.15–2.0: wrist to third-person);
        None draws it from 0.3–0.6.
    noise : DepthNoise or None
        Stereo-like depth noise applied to ``frame.depth_m``; ``depth_true_m`` stays exact.
    kinds : tuple of str or None
        Primitive kinds to draw from (subset of :data:`KINDS` and :data:`EXTRA_KINDS`); default :data:`KINDS`.
    room : bool
        False: the table is an infinite plane. True: a finite table top 0.2–0.6 m larger than the
        objects' footprint on each side, the floor 0.74 m below it and a wall 0.5–1.5 m beyond its far edge
        (what a third-person camera sees); :attr:`SyntheticScene.meta` ``"room"`` describes it.
    view_shift : float
        0 aims the camera at the objects; s > 0 aims it s half-view-widths to their right, so that the
        objects sit towards the left border and (from about 0.7 on) are cut by it.

    Returns
    -------
    SyntheticScene
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown synthetic layout {layout!r}; choose one of {list(LAYOUTS)}")
    layout = "side_by_side" if layout == "packed" else layout
    n_objects = int(n_objects)
    if not 1 <= n_objects <= 12:
        raise ConfigError(f"n_objects must be between 1 and 12, got {n_objects}")
    if layout == "side_by_side" and n_objects < 2:
        raise ConfigError(f"layout 'side_by_side' needs n_objects >= 2 (objects touching in a row), got {n_objects}")
    kinds = tuple(kinds) if kinds is not None else KINDS
    bad = [k for k in kinds if k not in KINDS + EXTRA_KINDS]
    if bad or not kinds:
        raise ConfigError(f"kinds {list(kinds)} must be a non-empty subset of {list(KINDS + EXTRA_KINDS)}")
    if tilt_deg is not None and not 0.0 <= float(tilt_deg) <= 75.0:
        raise UnitsError(f"tilt_deg must be in [0, 75] degrees from straight down, got {tilt_deg}")
    if distance_m is not None and not 0.15 <= float(distance_m) <= 2.0:
        raise UnitsError(f"distance_m must be in [0.15, 2.0] metres (wrist to third-person), got {distance_m}")
    if int(width) < 16 or int(height) < 16:
        raise UnitsError(f"image size must be at least 16x16 pixels, got {width}x{height}")
    if not 0.0 <= float(view_shift) <= 1.5:
        raise ConfigError(f"view_shift must be in [0, 1.5] half-view-widths, got {view_shift}")

    ss = np.random.SeedSequence(int(seed))
    rng_layout, rng_look, rng_cam, rng_noise, rng_render = (np.random.default_rng(s) for s in ss.spawn(5))

    if layout == "single":
        placed = _layout_single(rng_layout, kinds)
    elif layout == "side_by_side":
        placed = _layout_side_by_side(rng_layout, n_objects, kinds)
    else:
        placed = _layout_clutter(rng_layout, n_objects, kinds)

    # appearance: distinct colours, but one touching pair (when there is one) gets nearly the same colour
    names = list(_PALETTE)
    colour_names = [str(c) for c in rng_look.permutation(names)[: len(placed)]]
    while len(colour_names) < len(placed):
        colour_names.append(str(rng_look.choice(names)))
    albedos = [np.asarray(_PALETTE[c]) for c in colour_names]
    table = _TABLES[int(rng_look.integers(len(_TABLES)))]
    prims: list[PlacedPrimitive] = []
    used: dict[str, int] = {}
    for i, (shape, pose, lying) in enumerate(placed):
        label = None
        if shape.kind in ("box", "cylinder") and rng_look.random() < 0.5:
            label = tuple(float(x) for x in _PALETTE[str(rng_look.choice(names))])
        base = f"{colour_names[i]}_{shape.kind}"
        used[base] = used.get(base, 0) + 1
        name = base if used[base] == 1 else f"{base}_{used[base]}"
        prims.append(PlacedPrimitive(i + 1, name, shape, pose, tuple(float(x) for x in albedos[i]), label, lying))
    touching = _touching_pairs(prims, np.random.default_rng(ss.spawn(1)[0]))
    if touching:
        i, j = touching[int(rng_look.integers(len(touching)))]
        a = prims[i - 1]
        b = prims[j - 1]
        similar = np.clip(np.asarray(a.albedo_rgb) + rng_look.uniform(-0.03, 0.03, 3), 0, 1)
        colour = next(c for c, v in _PALETTE.items() if np.allclose(v, a.albedo_rgb))
        base = f"{colour}_{b.kind}"
        name = base if base not in {p.name for p in prims} else f"{base}_{j}"
        prims[j - 1] = PlacedPrimitive(b.id, name, b.shape, b.base_from_object,
                                       tuple(float(x) for x in similar), b.label_rgb, b.lying)

    # camera
    tilt = math.radians(rng_cam.uniform(30, 60) if tilt_deg is None else float(tilt_deg))
    dist = rng_cam.uniform(0.3, 0.6) if distance_m is None else float(distance_m)
    centres = np.array([p.base_from_object.translation for p in prims])
    target = np.array([*centres[:, :2].mean(0), 0.03]) + np.append(rng_cam.uniform(-0.01, 0.01, 2), 0.0)
    azimuth = rng_cam.uniform(-np.pi, np.pi)
    roll = math.radians(rng_cam.uniform(-10, 10))
    camera_from_base = _look_at(target, dist, tilt, azimuth, roll)
    if view_shift:
        # aim to the right of the objects: they move towards the left image border and are cut by it
        x_cam_in_base = camera_from_base.inverse().rotation[:, 0]
        half_width_m = dist * 0.5 * int(width) / d435_intrinsics(int(width), int(height)).fx
        camera_from_base = _look_at(target + float(view_shift) * half_width_m * x_cam_in_base, dist, tilt,
                                    azimuth, roll)
    light = np.array([*rng_cam.uniform(-0.5, 0.5, 2), 1.0])

    intr = d435_intrinsics(int(width), int(height))
    room_ = _make_room(prims, camera_from_base, np.random.default_rng(ss.spawn(1)[0])) if room else None
    r = render(intr, camera_from_base, prims, table=table, light_dir_in_base=light,
               seed=int(rng_render.integers(2**31)), room=room_)
    depth_true = np.where(np.isfinite(r.depth), r.depth, 0.0).astype(np.float32)
    depth = depth_true
    if noise is not None:
        depth = noise.apply(r.depth, intrinsics=intr, normals_in_camera=r.normals_cam,
                            luminance=r.luminance, specular=r.specular, rng=rng_noise)
    tcp_from_camera = default_tcp_from_camera()
    rig = CameraRig(intr, tcp_from_camera, depth_scale=1e-3, name="synthetic_d435")
    base_from_tcp = camera_from_base.inverse() @ tcp_from_camera.inverse()
    frame = RGBDFrame(r.color, depth, intr, 0.0, base_from_tcp, f"synthetic_{layout}_{seed}",
                      {"source": "graspseg.sim.synthetic", "layout": layout, "seed": int(seed)})
    objects = [
        GroundTruthObject(p.id, p.name, r.ids == p.id, camera_from_base @ p.base_from_object) for p in prims
    ]
    plane = SupportPlane(np.array([0.0, 0.0, 1.0]), 0.0, 1.0, 0.0, 0.0, BASE).transformed(camera_from_base)
    for arr in (depth_true, r.ids, r.amodal):
        arr.setflags(write=False)
    normals = r.normals_cam.astype(np.float32)
    normals.setflags(write=False)
    return SyntheticScene(
        frame=frame,
        objects=objects,
        primitives=prims,
        plane=plane,
        camera_from_base=camera_from_base,
        rig=rig,
        depth_true_m=depth_true,
        instance_ids=r.ids,
        normals_in_camera=normals,
        amodal_masks=r.amodal,
        touching=touching,
        layout=layout,
        seed=int(seed),
        meta={"tilt_deg": math.degrees(tilt), "distance_m": dist, "table": table[0],
              "room": None if room_ is None else {"table_centre_xy": list(room_.table_centre_xy),
                                                  "table_half_xy": list(room_.table_half_xy),
                                                  "floor_z_m": room_.floor_z_m,
                                                  "wall_point_xy": list(room_.wall_point_xy),
                                                  "wall_normal_xy": list(room_.wall_normal_xy)},
              "light_dir_in_base": (light / np.linalg.norm(light)).tolist()},
    )


def _chord_interval(prim, p, d):
    """Interval of t where p + t d (object frame, 2D, unit d) lies inside the primitive's footprint."""
    if prim.shape.kind == "box":
        half = np.asarray(prim.shape.size_m[:2]) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (-half - p) / d, (half - p) / d
        t1 = np.where(np.abs(d) < 1e-12, np.where(np.abs(p) <= half, -np.inf, np.inf), t1)
        t2 = np.where(np.abs(d) < 1e-12, np.where(np.abs(p) <= half, np.inf, -np.inf), t2)
        return np.max(np.minimum(t1, t2)), np.min(np.maximum(t1, t2))
    r = prim.shape.radius_m
    b = p @ d
    disc = b * b - (p @ p - r * r)
    return (-b - math.sqrt(disc), -b + math.sqrt(disc)) if disc >= 0 else (np.inf, -np.inf)


def true_grasp_width(prim, base_from_grasp, finger_width, finger_depth, height):
    """Exact width (m) a parallel-jaw grasp closes on: the extent along the closing axis of a box or upright
    cylinder primitive inside the closing region.

    ``base_from_grasp`` is (4, 4) with the grasp frame of ``docs/grasp_frame.md``; ``height`` is the
    primitive's height (m). Ground truth for grasp-width checks.

    The closing region is the finger-wide, finger-deep box between the fingers; its points at heights
    within the object are swept, and the chord of the footprint along the (horizontal) closing axis
    through each is taken.
    """
    obj_from_base = prim.base_from_object.inverse().matrix
    m = obj_from_base @ base_from_grasp
    c = m[:2, 0] / np.linalg.norm(m[:2, 0])
    lo, hi = np.inf, -np.inf
    for y in np.linspace(-finger_width / 2, finger_width / 2, 9):
        for z in np.linspace(-finger_depth, 0.0, 19):
            q3 = m[:3, 3] + y * m[:3, 1] + z * m[:3, 2]
            if not (-height / 2 <= q3[2] <= height / 2):
                continue
            a, b = _chord_interval(prim, q3[:2], c)
            if a < b:
                # the chord in the grasp's x coordinate (the closing axis is horizontal: offsets along it add)
                shift = (q3[:2] - m[:2, 3]) @ c
                lo, hi = min(lo, a + shift), max(hi, b + shift)
    return max(0.0, hi - lo)


# ================================================================================================
# Sensor models of the generalisation benchmark
# ================================================================================================
#: ``d405``: short-baseline stereo, 0.1 mm units; ``d435``: the default stereo model; ``xtion``: a
#: structured-light camera whose depth is registered to colour only approximately (shifted 2–6 px);
#: ``inpainted``: D435 depth with every hole filled from the nearest reading (data sets that inpaint).
SENSORS: tuple[str, ...] = ("d405", "d435", "xtion", "inpainted")


def sensor_noise(sensor: str) -> DepthNoise:
    """The depth noise model of a :data:`SENSORS` name (pass to :func:`make_scene`)."""
    if sensor == "d405":
        return DepthNoise(baseline_m=0.018, subpixel_px=0.05, depth_unit_m=1e-4, range_m=(0.07, 3.0))
    if sensor in ("d435", "inpainted"):
        return DepthNoise()
    if sensor == "xtion":
        return DepthNoise(baseline_m=0.075, subpixel_px=0.12, correlation_px=5, specular_threshold=0.6,
                          range_m=(0.15, 3.5))
    raise ConfigError(f"unknown sensor {sensor!r}; choose one of {list(SENSORS)}")


def sensor_frame(scene: SyntheticScene, sensor: str, seed: int = 0) -> tuple[RGBDFrame, dict]:
    """The scene's frame as ``sensor`` delivers it (after :func:`sensor_noise` was applied in make_scene).

    ``xtion`` shifts the depth image against colour by 2–6 px horizontally and 0–2 px vertically (pixels
    shifted in from the border have no reading); ``inpainted`` fills every pixel without a reading from
    the nearest one. Returns the frame and what was done (``{"depth_shift_px": [dx, dy]}`` or ``{}``).
    """
    from scipy import ndimage

    depth = np.array(scene.frame.depth_m, np.float32)
    info: dict = {}
    if sensor == "xtion":
        rng = np.random.default_rng([int(seed), 7])
        dx = int(rng.integers(2, 7)) * int(rng.choice([-1, 1]))
        dy = int(rng.integers(0, 3)) * int(rng.choice([-1, 1]))
        shifted = np.zeros_like(depth)
        h, w = depth.shape
        src = depth[max(0, -dy): h - max(0, dy), max(0, -dx): w - max(0, dx)]
        shifted[max(0, dy): max(0, dy) + src.shape[0], max(0, dx): max(0, dx) + src.shape[1]] = src
        depth = shifted
        info["depth_shift_px"] = [dx, dy]
    elif sensor == "inpainted":
        holes = depth <= 0
        if holes.any() and not holes.all():
            idx = ndimage.distance_transform_edt(holes, return_distances=False, return_indices=True)
            depth = depth[idx[0], idx[1]]
    elif sensor not in SENSORS:
        raise ConfigError(f"unknown sensor {sensor!r}; choose one of {list(SENSORS)}")
    f = scene.frame
    frame = RGBDFrame(f.color, depth, f.intrinsics, f.timestamp_s, f.base_from_tcp, f"{f.frame_id}_{sensor}",
                      {**f.meta, "sensor": sensor, **info})
    return frame, info
