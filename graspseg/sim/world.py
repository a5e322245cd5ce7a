"""pybullet scenes: a table, objects settled by physics, and a wrist camera rendered with TinyRenderer.

Frames: ``base`` is the world frame of the simulation (origin on the table top, +z up), as in
:mod:`graspseg.sim.synthetic`. pybullet is imported lazily (extra ``sim``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from ..core.camera import CameraIntrinsics, CameraRig
from ..core.errors import ConfigError, MissingDependencyError, UnitsError
from ..core.frame import RGBDFrame
from ..core.transform import BASE, OBJECT, Transform
from .objects import ObjectSet, ObjectSpec, primitive_mesh, urdf_collision_hull
from .synthetic import DepthNoise, _look_at, d435_intrinsics, default_tcp_from_camera

log = logging.getLogger(__name__)

#: Scene layouts of the physics simulator.
SIM_LAYOUTS: tuple[str, ...] = ("single", "packed", "pile")
TIME_STEP_S = 1.0 / 240.0
#: Density given to every object, kg/m^3 (of its collision hull; household objects are mostly 300–1000).
OBJECT_DENSITY_KG_M3 = 600.0
#: Object masses are clipped to this range, kg.
OBJECT_MASS_RANGE_KG = (0.02, 0.8)


@contextlib.contextmanager
def _c_stdout_to_stderr():
    """Send what C code writes to file descriptor 1 to stderr (pybullet prints ``argv[0]=`` on connect, which
    would corrupt the JSON that command-line tools print on stdout)."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):  # no real stdout (e.g. captured): nothing to protect
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _pybullet():
    try:
        import pybullet
        from pybullet_utils.bullet_client import BulletClient
    except ImportError:
        raise MissingDependencyError("pybullet", "sim", "the physics simulator") from None
    return pybullet, BulletClient


@dataclass(frozen=True, eq=False)
class SimObject:
    """An object in the world: its pybullet body id and what it was made from."""

    body_id: int
    spec: ObjectSpec
    instance_id: int  # 1-based, as in masks


@dataclass(frozen=True, eq=False)
class CameraView:
    """One rendered wrist-camera view with exact ground truth.

    Attributes
    ----------
    frame : RGBDFrame
        Colour, depth (noisy when a noise model was given), intrinsics and ``base_from_tcp``.
    depth_true_m : (H, W) float32
        Rendered depth before noise, metres (0 = nothing).
    body_ids : (H, W) int32
        pybullet body id per pixel (-1 = nothing).
    camera_from_base : Transform
    rig : CameraRig
    """

    frame: RGBDFrame
    depth_true_m: np.ndarray
    body_ids: np.ndarray
    camera_from_base: Transform
    rig: CameraRig
    meta: dict = field(default_factory=dict)

    def mask_of(self, body_id: int) -> np.ndarray:
        """(H, W) bool visible mask of one body."""
        return self.body_ids == int(body_id)


def projection_matrix(intr: CameraIntrinsics, near_m: float, far_m: float) -> list[float]:
    """OpenGL projection (column-major 16 floats) reproducing the pinhole intrinsics (pixel centres at +0.5)."""
    w, h = intr.width, intr.height
    m = np.zeros((4, 4))
    m[0, 0] = 2 * intr.fx / w
    m[0, 2] = 1 - 2 * (intr.cx + 0.5) / w
    m[1, 1] = 2 * intr.fy / h
    m[1, 2] = 2 * (intr.cy + 0.5) / h - 1
    m[2, 2] = -(far_m + near_m) / (far_m - near_m)
    m[2, 3] = -2 * far_m * near_m / (far_m - near_m)
    m[3, 2] = -1.0
    return m.T.reshape(-1).tolist()


def view_matrix(camera_from_base: Transform) -> list[float]:
    """OpenGL view matrix (column-major) of an optical-frame camera (z forward, y down)."""
    gl_from_optical = np.diag([1.0, -1.0, -1.0, 1.0])
    m = gl_from_optical @ camera_from_base.matrix
    return m.T.reshape(-1).tolist()


def _one_sided(p: np.ndarray, valid: np.ndarray, axis: int) -> np.ndarray:
    """(H, W, 3) difference of neighbouring points along ``axis`` (1 = u, 0 = v), taken on the side whose depth
    jump is smaller, so a pixel next to a depth edge gets the slope of its own surface, not of the jump."""
    big = np.float32(1e6)
    fwd = np.zeros_like(p)
    bwd = np.zeros_like(p)
    jf = np.full(p.shape[:2], big, np.float32)
    jb = np.full(p.shape[:2], big, np.float32)
    lo = [slice(None), slice(None)]
    hi = [slice(None), slice(None)]
    lo[axis], hi[axis] = slice(None, -1), slice(1, None)
    lo, hi = tuple(lo), tuple(hi)
    diff = p[hi] - p[lo]
    both = valid[hi] & valid[lo]
    jump = np.where(both, np.abs(diff[..., 2]), big)
    fwd[lo], jf[lo] = diff, jump
    bwd[hi], jb[hi] = diff, jump
    return np.where((jf <= jb)[..., None], fwd, bwd)


def _normals_from_depth(depth: np.ndarray, intr: CameraIntrinsics) -> np.ndarray:
    """(H, W, 3) float32 unit normals (camera frame, facing the camera) from depth.

    Differences are one-sided, on the side with the smaller depth change: central differences across an
    object's silhouette would tilt every rim pixel's normal almost perpendicular to its viewing ray and the
    noise model would then drop the whole rim as a steep surface.
    """
    rays = intr.ray_image.astype(np.float32)
    d = depth.astype(np.float32)
    valid = d > 0
    p = np.concatenate([rays * d[..., None], d[..., None]], axis=2)
    dx = _one_sided(p, valid, 1)
    dy = _one_sided(p, valid, 0)
    n = np.empty_like(p)  # dx × dy, written out (np.cross is slow on images)
    n[..., 0] = dx[..., 1] * dy[..., 2] - dx[..., 2] * dy[..., 1]
    n[..., 1] = dx[..., 2] * dy[..., 0] - dx[..., 0] * dy[..., 2]
    n[..., 2] = dx[..., 0] * dy[..., 1] - dx[..., 1] * dy[..., 0]
    norm = np.sqrt((n * n).sum(2, keepdims=True))
    n /= np.maximum(norm, 1e-12)
    n[(norm[..., 0] <= 0) | ~valid] = 0
    flip = (n * p).sum(2) > 0
    n[flip] *= -1
    return n


class SimWorld:
    """A pybullet world (DIRECT, headless) with a table whose top is the plane z = 0 of ``base``.

    Parameters
    ----------
    seed : int
        Seeds every random choice of the layouts.
    table_rgba : (4,) floats or None
        Table colour; None draws one.
    """

    def __init__(self, seed: int = 0, *, table_rgba=None) -> None:
        pb, client = _pybullet()
        self.pb = pb
        with _c_stdout_to_stderr():
            self.p = client(connection_mode=pb.DIRECT)
        self.rng = np.random.default_rng(seed)
        self.p.setGravity(0, 0, -9.81)
        self.p.setTimeStep(TIME_STEP_S)
        self.p.setPhysicsEngineParameter(numSolverIterations=50, deterministicOverlappingPairs=1)
        rgba = table_rgba if table_rgba is not None else (*self.rng.uniform([0.45, 0.35, 0.25], [0.75, 0.65, 0.55]), 1.0)
        col = self.p.createCollisionShape(pb.GEOM_BOX, halfExtents=[0.6, 0.6, 0.025])
        vis = self.p.createVisualShape(pb.GEOM_BOX, halfExtents=[0.6, 0.6, 0.025], rgbaColor=list(rgba))
        self.table_id = self.p.createMultiBody(0, col, vis, basePosition=[0, 0, -0.025])
        self.p.changeDynamics(self.table_id, -1, lateralFriction=0.8)
        self.objects: list[SimObject] = []

    def close(self) -> None:
        try:
            self.p.disconnect()
        except Exception:  # noqa: BLE001 - already disconnected
            pass

    def __enter__(self) -> SimWorld:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- objects --------------------------------------------------------------------------------------
    def add_object(self, spec: ObjectSpec, position, orientation_xyzw=(0, 0, 0, 1)) -> SimObject:
        """Load one object at a pose (base frame).

        Every object gets the mass of its collision hull at :data:`OBJECT_DENSITY_KG_M3` (clipped to
        :data:`OBJECT_MASS_RANGE_KG`) and the inertia of a solid box of its hull's extents: the ``random_urdfs``
        all declare 0.1 kg and a 3× inertia scaling whatever their size, i.e. densities of 0.5–10 g/cm³ and
        objects that resist turning in the fingers.
        """
        pb = self.pb
        if spec.source == "urdf":
            body = self.p.loadURDF(spec.path, list(position), list(orientation_xyzw), globalScaling=spec.scale)
            if spec.rgba is not None:
                self.p.changeVisualShape(body, -1, rgbaColor=list(spec.rgba))
            hull = urdf_collision_hull(spec.path, spec.scale)
        elif spec.source == "primitive":
            mesh = primitive_mesh(spec)
            verts = mesh.vertices.tolist()
            idx = mesh.faces.reshape(-1).tolist()
            col = self.p.createCollisionShape(pb.GEOM_MESH, vertices=verts)
            vis = self.p.createVisualShape(pb.GEOM_MESH, vertices=verts, indices=idx, rgbaColor=list(spec.rgba or (0.6, 0.6, 0.6, 1)))
            body = self.p.createMultiBody(0.1, col, vis, basePosition=list(position), baseOrientation=list(orientation_xyzw))
            hull = (float(mesh.convex_hull.volume), tuple(float(x) for x in mesh.extents))
        else:
            raise ConfigError(f"object source must be 'urdf' or 'primitive', got {spec.source!r}")
        if hull is not None:
            volume, ext = hull
            mass = float(np.clip(volume * OBJECT_DENSITY_KG_M3, *OBJECT_MASS_RANGE_KG))
            ex, ey, ez = ext
            inertia = [mass / 12 * (ey**2 + ez**2), mass / 12 * (ex**2 + ez**2), mass / 12 * (ex**2 + ey**2)]
            self.p.changeDynamics(body, -1, mass=mass, localInertiaDiagonal=inertia)
        self.p.changeDynamics(body, -1, lateralFriction=1.0, rollingFriction=0.0005, spinningFriction=0.001)
        obj = SimObject(body, spec, len(self.objects) + 1)
        self.objects.append(obj)
        return obj

    def remove_object(self, obj: SimObject) -> None:
        self.p.removeBody(obj.body_id)
        self.objects = [o for o in self.objects if o.body_id != obj.body_id]

    def aabb(self, body_id: int) -> np.ndarray:
        """(2, 3) axis-aligned bounds in base, metres."""
        lo, hi = self.p.getAABB(body_id)
        return np.array([lo, hi])

    def base_from_object(self, body_id: int) -> Transform:
        pos, orn = self.p.getBasePositionAndOrientation(body_id)
        return Transform.from_xyz_quat_xyzw(pos, orn, BASE, OBJECT)

    def step(self, n: int = 1) -> None:
        for _ in range(int(n)):
            self.p.stepSimulation()

    def settle(self, max_steps: int = 720, tol_m_s: float = 5e-3) -> int:
        """Step until every object is (nearly) at rest; returns the steps taken."""
        steps = 0
        while steps < max_steps:
            self.step(24)
            steps += 24
            if all(np.linalg.norm(self.p.getBaseVelocity(o.body_id)[0]) < tol_m_s and
                   np.linalg.norm(self.p.getBaseVelocity(o.body_id)[1]) < 20 * tol_m_s for o in self.objects):
                break
        return steps

    def drop_fallen(self, radius_m: float = 0.35) -> None:
        """Remove objects that left the table area."""
        for o in list(self.objects):
            p = self.base_from_object(o.body_id).translation
            if p[2] < -0.02 or np.hypot(p[0], p[1]) > radius_m:
                self.remove_object(o)

    # --- layouts ---------------------------------------------------------------------------------------
    def _fits(self, body: int, gap_m: float) -> bool:
        """True when ``body`` is at least ``gap_m`` from every other object (exact distance between the
        collision shapes; pybullet's AABBs of rotated meshes are much looser)."""
        for o in self.objects:
            if o.body_id == body:
                continue
            if self.p.getClosestPoints(body, o.body_id, gap_m):
                return False
        return True

    def _upright_orientation(self, spec: ObjectSpec, yaw: float) -> tuple[float, ...]:
        """The object's own upright orientation (as modelled) turned by ``yaw`` about the table normal."""
        return tuple(self.pb.getQuaternionFromEuler([0, 0, yaw]))

    def _rest_height(self, body: int) -> float:
        """Move ``body`` so its lowest point sits 2 mm above the table; returns the new base z."""
        pos, orn = self.p.getBasePositionAndOrientation(body)
        low = self.aabb(body)[0, 2]
        z = pos[2] - low + 0.002
        self.p.resetBasePositionAndOrientation(body, [pos[0], pos[1], z], orn)
        return z

    def build(self, layout: str, objects: ObjectSet, n_objects: int) -> list[SimObject]:
        """Populate the table with a seeded layout and let physics settle it."""
        if layout not in SIM_LAYOUTS:
            raise ConfigError(f"unknown sim layout {layout!r}; choose one of {list(SIM_LAYOUTS)}")
        n = 1 if layout == "single" else int(n_objects)
        if n < 1 or n > 12:
            raise ConfigError(f"n_objects must be in 1..12, got {n_objects}")
        rng = self.rng
        if layout == "single":
            spec = objects.draw(rng)
            yaw = rng.uniform(-np.pi, np.pi)
            o = self.add_object(spec, [0, 0, 0.1], self._upright_orientation(spec, yaw))
            self._rest_height(o.body_id)
            self.settle()
        elif layout == "packed":
            # upright objects side by side: random positions in a 24 cm square, 4–10 mm gaps, no overlaps
            for _ in range(n):
                spec = objects.draw(rng)
                for _attempt in range(30):
                    xy = rng.uniform(-0.12, 0.12, 2) * (0.5 if not self.objects else 1.0)
                    yaw = rng.uniform(-np.pi, np.pi)
                    o = self.add_object(spec, [xy[0], xy[1], 0.1], self._upright_orientation(spec, yaw))
                    self._rest_height(o.body_id)
                    if self._fits(o.body_id, float(rng.uniform(0.004, 0.01))) and self._near_others(o.body_id, 0.03):
                        break
                    self.remove_object(o)
            self.settle()
        else:  # pile
            for _ in range(n):
                spec = objects.draw(rng)
                xy = rng.uniform(-0.04, 0.04, 2)
                q = rng.normal(size=4)
                q /= np.linalg.norm(q)
                o = self.add_object(spec, [xy[0], xy[1], 0.2], tuple(q))
                # drop from just above the current pile
                top = max([self.aabb(x.body_id)[1, 2] for x in self.objects if x.body_id != o.body_id] + [0.0])
                pos, orn = self.p.getBasePositionAndOrientation(o.body_id)
                low = self.aabb(o.body_id)[0, 2]
                self.p.resetBasePositionAndOrientation(o.body_id, [pos[0], pos[1], pos[2] - low + top + 0.02], orn)
                self.settle(max_steps=240)
            self.settle()
        self.drop_fallen()
        return list(self.objects)

    def _near_others(self, body: int, dist_m: float) -> bool:
        """True when ``body`` is within ``dist_m`` of another object (keeps packed layouts packed)."""
        others = [o for o in self.objects if o.body_id != body]
        if not others:
            return True
        return any(self.p.getClosestPoints(body, o.body_id, dist_m) for o in others)

    # --- camera ----------------------------------------------------------------------------------------
    def look_at_camera(self, target_in_base, *, distance_m: float | None = None, tilt_deg: float | None = None,
                       rng: np.random.Generator | None = None) -> Transform:
        """A wrist-camera pose looking at ``target_in_base``; distance 0.25–0.7 m and tilt 30–60° when not given."""
        rng = rng or self.rng
        dist = float(rng.uniform(0.3, 0.6)) if distance_m is None else float(distance_m)
        tilt = float(rng.uniform(30, 60)) if tilt_deg is None else float(tilt_deg)
        if not 0.15 <= dist <= 1.5:
            raise UnitsError(f"camera distance_m must be in [0.15, 1.5] m, got {dist}")
        if not 0 <= tilt <= 75:
            raise UnitsError(f"camera tilt_deg must be in [0, 75] degrees from straight down, got {tilt}")
        return _look_at(np.asarray(target_in_base, float), dist, math.radians(tilt),
                        float(rng.uniform(-np.pi, np.pi)), math.radians(float(rng.uniform(-10, 10))))

    def side_view(self, point_in_base, heading_rad: float, *, width: int = 320, height: int = 240,
                  distance_m: float = 0.28, elevation_m: float = 0.08) -> np.ndarray:
        """(height, width, 3) uint8 colour of a third-person view of ``point_in_base`` from the side (no noise,
        no shadows): for failure images of the grasp execution."""
        c = np.asarray(point_in_base, float)
        eye = c + np.array([distance_m * math.cos(heading_rad), distance_m * math.sin(heading_rad), elevation_m])
        vm = self.p.computeViewMatrix(eye.tolist(), (c + [0, 0, 0.03]).tolist(), [0, 0, 1])
        pm = self.p.computeProjectionMatrixFOV(50, width / height, 0.02, 2.0)
        _, _, rgba, _, _ = self.p.getCameraImage(width, height, vm, pm, renderer=self.pb.ER_TINY_RENDERER, shadow=0,
                                                 flags=self.pb.ER_NO_SEGMENTATION_MASK)
        return np.asarray(rgba, np.uint8).reshape(height, width, 4)[:, :, :3].copy()

    def render(self, camera_from_base: Transform, *, intrinsics: CameraIntrinsics | None = None,
               noise: DepthNoise | None = None, rng: np.random.Generator | None = None,
               near_m: float = 0.05, far_m: float = 3.0, timestamp_s: float = 0.0, frame_id: str = "") -> CameraView:
        """Render colour, depth and the body-id image with TinyRenderer; optionally add depth noise."""
        pb = self.pb
        intr = intrinsics or d435_intrinsics()
        w, h = intr.width, intr.height
        light = (camera_from_base.inverse().translation + np.array([0.3, 0.2, 0.8])).tolist()
        _, _, rgba, zbuf, seg = self.p.getCameraImage(
            w, h, view_matrix(camera_from_base), projection_matrix(intr, near_m, far_m),
            renderer=pb.ER_TINY_RENDERER, shadow=1, lightDirection=light, lightAmbientCoeff=0.5,
            lightDiffuseCoeff=0.6, lightSpecularCoeff=0.1,
        )
        rgba = np.asarray(rgba, np.uint8).reshape(h, w, 4)
        zbuf = np.asarray(zbuf, np.float64).reshape(h, w)
        seg = np.asarray(seg, np.int64).reshape(h, w)
        depth = far_m * near_m / (far_m - (far_m - near_m) * zbuf)
        body_ids = np.where(seg >= 0, seg & ((1 << 24) - 1), -1).astype(np.int32)
        depth = np.where((seg >= 0) & (zbuf < 1.0), depth, 0.0).astype(np.float32)
        color = rgba[:, :, :3].copy()
        rng = rng or self.rng
        color = np.clip(color.astype(np.float32) + rng.normal(0, 1.5, color.shape), 0, 255).astype(np.uint8)
        depth_out = depth
        if noise is not None:
            normals = _normals_from_depth(depth, intr)
            lum = (color.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255.0
            depth_out = noise.apply(np.where(depth > 0, depth, np.inf), intrinsics=intr, normals_in_camera=normals,
                                    luminance=lum, specular=np.zeros((h, w)), rng=rng)
        tcp_from_camera = default_tcp_from_camera()
        rig = CameraRig(intr, tcp_from_camera, depth_scale=1e-3, name="sim_d435")
        base_from_tcp = camera_from_base.inverse() @ tcp_from_camera.inverse()
        frame = RGBDFrame(color, depth_out, intr, timestamp_s, base_from_tcp, frame_id, {"source": "graspseg.sim.world"})
        depth.setflags(write=False)
        return CameraView(frame, depth, body_ids, camera_from_base, rig)


__all__ = ["OBJECT_DENSITY_KG_M3", "OBJECT_MASS_RANGE_KG", "SIM_LAYOUTS", "CameraView", "SimObject", "SimWorld", "projection_matrix", "view_matrix"]
