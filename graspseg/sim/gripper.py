"""A floating parallel-jaw gripper in pybullet, built from a :class:`~graspseg.grasp.gripper.GripperModel`,
and the grasp execution: pre-grasp → approach → close → lift → shake.

The gripper body's frame is the grasp frame: origin at the fingertip centre, +z approach, +x closing. The palm
box sits behind the fingers (−z); each finger is a box on a prismatic joint along ±x whose position is half the
opening. The hand floats: a fixed constraint to the world drives its pose.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import ConfigError
from ..core.transform import BASE, GRASP, Transform
from .world import TIME_STEP_S, SimWorld

log = logging.getLogger(__name__)

#: Outcome causes recorded by :func:`execute_grasp` ("" = success).
FAILURE_CAUSES: tuple[str, ...] = (
    "collision_pregrasp_table", "collision_pregrasp_object", "collision_pregrasp_target",
    "collision_approach_table", "collision_approach_object",
    "empty_close", "dropped_on_lift", "dropped_on_shake",
)


def _gripper_model(gripper):
    """A GripperModel from a model, a name/path, or None (the Franka Hand)."""
    if gripper is not None and not isinstance(gripper, str | bytes) and hasattr(gripper, "max_opening_m"):
        return gripper
    from ..grasp.gripper import load_gripper

    return load_gripper(gripper or "franka_hand")


class FloatingGripper:
    """Palm + two prismatic fingers, driven by a world constraint.

    Parameters
    ----------
    world : SimWorld
    gripper : GripperModel, str or None
        Geometry (metres). Default: ``franka_hand``.
    grip_force_n : float
        Force limit of each finger motor, newtons.
    """

    def __init__(self, world: SimWorld, gripper=None, *, grip_force_n: float = 60.0) -> None:
        self.world = world
        self.model = _gripper_model(gripper)
        m = self.model
        p, pb = world.p, world.pb
        self.grip_force_n = float(grip_force_n)
        fd, ft, fw = m.finger_depth_m, m.finger_thickness_m, m.finger_width_m
        palm_half = [max(m.palm_width_m, m.max_opening_m + 2 * ft) / 2, max(m.palm_depth_m, fw) / 2, max(m.palm_height_m, 0.02) / 2]
        palm_col = p.createCollisionShape(pb.GEOM_BOX, halfExtents=palm_half, collisionFramePosition=[0, 0, -fd - palm_half[2]])
        palm_vis = p.createVisualShape(pb.GEOM_BOX, halfExtents=palm_half, visualFramePosition=[0, 0, -fd - palm_half[2]],
                                       rgbaColor=[0.3, 0.3, 0.32, 1])
        f_half = [ft / 2, fw / 2, fd / 2]
        f_col = p.createCollisionShape(pb.GEOM_BOX, halfExtents=f_half)
        f_vis = p.createVisualShape(pb.GEOM_BOX, halfExtents=f_half, rgbaColor=[0.8, 0.8, 0.82, 1])
        self.body = p.createMultiBody(
            baseMass=1.0, baseCollisionShapeIndex=palm_col, baseVisualShapeIndex=palm_vis, basePosition=[0, 0, 2.0],
            linkMasses=[0.05, 0.05], linkCollisionShapeIndices=[f_col, f_col], linkVisualShapeIndices=[f_vis, f_vis],
            linkPositions=[[-ft / 2, 0, -fd / 2], [ft / 2, 0, -fd / 2]], linkOrientations=[[0, 0, 0, 1]] * 2,
            linkInertialFramePositions=[[0, 0, 0]] * 2, linkInertialFrameOrientations=[[0, 0, 0, 1]] * 2,
            linkParentIndices=[0, 0], linkJointTypes=[pb.JOINT_PRISMATIC] * 2,
            linkJointAxis=[[-1, 0, 0], [1, 0, 0]],
        )
        for j in (0, 1):
            p.changeDynamics(self.body, j, lateralFriction=1.2, spinningFriction=0.002, jointLowerLimit=0.0,
                             jointUpperLimit=m.max_opening_m / 2)
        p.changeDynamics(self.body, -1, lateralFriction=0.8)
        self.constraint = p.createConstraint(self.body, -1, -1, -1, pb.JOINT_FIXED, [0, 0, 0], [0, 0, 0], [0, 0, 2.0])
        self.finger_links = (0, 1)

    # --- state ------------------------------------------------------------------------------------------
    def pose(self) -> Transform:
        pos, orn = self.world.p.getBasePositionAndOrientation(self.body)
        return Transform.from_xyz_quat_xyzw(pos, orn, BASE, GRASP)

    def opening_m(self) -> float:
        p = self.world.p
        return float(sum(p.getJointState(self.body, j)[0] for j in self.finger_links))

    def teleport(self, base_from_grasp: Transform, opening_m: float) -> None:
        """Put the hand at a pose with the fingers at an opening, no dynamics."""
        p = self.world.p
        pos, quat = base_from_grasp.as_xyz_quat_xyzw()
        p.resetBasePositionAndOrientation(self.body, pos.tolist(), quat.tolist())
        p.resetBaseVelocity(self.body, [0, 0, 0], [0, 0, 0])
        half = float(np.clip(opening_m, 0.0, self.model.max_opening_m)) / 2
        for j in self.finger_links:
            p.resetJointState(self.body, j, half)
            p.setJointMotorControl2(self.body, j, self.world.pb.POSITION_CONTROL, targetPosition=half, force=self.grip_force_n)
        p.changeConstraint(self.constraint, pos.tolist(), jointChildFrameOrientation=quat.tolist(), maxForce=500)

    def drive(self, base_from_grasp: Transform, max_force_n: float = 500.0) -> None:
        pos, quat = base_from_grasp.as_xyz_quat_xyzw()
        self.world.p.changeConstraint(self.constraint, pos.tolist(), jointChildFrameOrientation=quat.tolist(), maxForce=max_force_n)

    def contacts(self, body: int) -> list:
        return self.world.p.getContactPoints(self.body, body)

    def penetrations(self, body: int, tol_m: float = 1e-3) -> list:
        return [c for c in self.world.p.getClosestPoints(self.body, body, 0.0) if c[8] < -tol_m]

    def close(self, steps: int = 120) -> None:
        p, pb = self.world.p, self.world.pb
        for j in self.finger_links:
            p.setJointMotorControl2(self.body, j, pb.VELOCITY_CONTROL, targetVelocity=-0.15, force=self.grip_force_n)
        self.world.step(steps)


@dataclass(frozen=True)
class ExecutionResult:
    """Outcome of one executed grasp.

    Attributes
    ----------
    success : bool
        The target is still between the fingers after lift and shake.
    cause : str
        ``""`` on success, else one of :data:`FAILURE_CAUSES`.
    final_opening_m : float
        Finger opening after closing (the grasped width), metres.
    lift_m : float
        How far the target rose, metres.
    details : dict
    """

    success: bool
    cause: str
    final_opening_m: float = 0.0
    lift_m: float = 0.0
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"success": self.success, "cause": self.cause, "final_opening_m": self.final_opening_m,
                "lift_m": self.lift_m, **self.details}


def _offset(base_from_grasp: Transform, dz_m: float = 0.0, world_up_m: float = 0.0, world_xy=(0.0, 0.0)) -> Transform:
    m = base_from_grasp.matrix.copy()
    m[:3, 3] += m[:3, 2] * dz_m + np.array([world_xy[0], world_xy[1], world_up_m])
    return Transform(m, BASE, GRASP)


def execute_grasp(
    world: SimWorld,
    gripper: FloatingGripper,
    base_from_grasp: Transform,
    opening_m: float,
    target_body: int,
    *,
    approach_m: float = 0.08,
    lift_m: float = 0.10,
    approach_speed_m_s: float = 0.25,
    shake: bool = True,
) -> ExecutionResult:
    """Execute one grasp: pre-grasp (``approach_m`` back along −z), straight approach, close, lift, shake.

    Parameters
    ----------
    base_from_grasp : Transform
        Grasp pose in the world (``base``) frame; +z approach, +x closing, origin at the fingertip centre.
    opening_m : float
        Finger opening at the pre-grasp, metres (clipped to the stroke).
    target_body : int
        pybullet body id of the object to grasp.

    Returns
    -------
    ExecutionResult
        Collisions of the hand with the table or a non-target object on the way are failures.
    """
    if (base_from_grasp.to_frame, base_from_grasp.from_frame) != (BASE, GRASP):
        raise ConfigError(f"execute_grasp needs base_from_grasp, got {base_from_grasp.name}")
    p = world.p
    others = [o.body_id for o in world.objects if o.body_id != target_body]
    opening = float(np.clip(opening_m, gripper.model.min_opening_m, gripper.model.max_opening_m))
    pre = _offset(base_from_grasp, -approach_m)
    gripper.teleport(pre, opening)
    p.performCollisionDetection()
    if gripper.penetrations(world.table_id):
        return ExecutionResult(False, "collision_pregrasp_table")
    if any(gripper.penetrations(b) for b in others):
        return ExecutionResult(False, "collision_pregrasp_object")
    if gripper.penetrations(target_body):
        return ExecutionResult(False, "collision_pregrasp_target")
    z0 = world.base_from_object(target_body).translation[2]
    # approach in small increments, checking contacts with the table and the other objects
    n = max(int(approach_m / approach_speed_m_s / TIME_STEP_S), 1)
    for i in range(1, n + 1):
        gripper.drive(_offset(base_from_grasp, -approach_m * (1 - i / n)))
        world.step(1)
        if i % 4 == 0 or i == n:
            if p.getContactPoints(gripper.body, world.table_id):
                return ExecutionResult(False, "collision_approach_table")
            if any(p.getContactPoints(gripper.body, b) for b in others):
                return ExecutionResult(False, "collision_approach_object")
    world.step(24)
    gripper.close()
    width = gripper.opening_m()
    if width < max(gripper.model.min_opening_m, 0.002):
        return ExecutionResult(False, "empty_close", width)
    # lift straight up (world z)
    n = int(1.0 / TIME_STEP_S)
    for i in range(1, n + 1):
        gripper.drive(_offset(base_from_grasp, 0.0, lift_m * i / n))
        world.step(1)
    world.step(60)
    z1 = world.base_from_object(target_body).translation[2]

    def held() -> bool:
        c = {c[3] for c in p.getContactPoints(gripper.body, target_body)}
        return {0, 1} <= c

    if not held() or z1 - z0 < 0.5 * lift_m:
        return ExecutionResult(False, "dropped_on_lift", width, float(z1 - z0))
    if shake:
        top = _offset(base_from_grasp, 0.0, lift_m)
        for k in range(6):
            sgn = 1 if k % 2 == 0 else -1
            d = (0.02 * sgn, 0.0) if k < 3 else (0.0, 0.02 * sgn)
            for i in range(1, 37):
                gripper.drive(_offset(top, 0.0, 0.0, (d[0] * i / 36, d[1] * i / 36)))
                world.step(1)
        gripper.drive(top)
        world.step(60)
        z2 = world.base_from_object(target_body).translation[2]
        if not held() or z2 - z0 < 0.5 * lift_m:
            return ExecutionResult(False, "dropped_on_shake", width, float(z2 - z0))
        z1 = z2
    return ExecutionResult(True, "", gripper.opening_m(), float(z1 - z0))


__all__ = ["FAILURE_CAUSES", "ExecutionResult", "FloatingGripper", "execute_grasp"]
