"""A floating parallel-jaw gripper in pybullet, built from a :class:`~graspseg.grasp.gripper.GripperModel`,
and the grasp execution: pre-grasp → approach → close → lift → shake.

The gripper body's frame is the grasp frame: origin at the fingertip centre, +z approach, +x closing. The palm
box sits behind the fingers (−z); each finger is a box on a prismatic joint along ±x whose position is half the
opening. The hand floats: a fixed constraint to the world drives its pose.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import ConfigError
from ..core.transform import BASE, GRASP, Transform
from .world import TIME_STEP_S, SimWorld

log = logging.getLogger(__name__)

#: Coulomb friction coefficient of the finger pads (rubber-like; Bullet multiplies it with the object's 1.0).
PAD_FRICTION = 1.0
#: Torsional ("spinning") friction of a pad, metres: the torque a contact resists about its normal is this times
#: the normal force (Bullet combines it with the object's lateral friction); ~ the radius of a 1 cm^2 pad x mu / 2.
PAD_SPINNING_FRICTION_M = 0.003
#: Grip force of the hand, newtons (the Franka Hand holds 70 N continuously).
GRIP_FORCE_N = 60.0
#: Shake: displacement amplitude (m) and peak acceleration (m/s^2) of the horizontal shake after the lift.
SHAKE_AMPLITUDE_M = 0.025
SHAKE_ACCEL_M_S2 = 3.0
#: Lift: height (m) and duration (s), a minimum-jerk profile (peak acceleration 5.77 h / T^2 = 1.6 m/s^2).
LIFT_HEIGHT_M = 0.10
LIFT_DURATION_S = 0.6
#: Contact force with the target during the approach that stops the arm (a robot's collision reflex, ~20 N on
#: a Franka): brushing the target is allowed, ramming a finger into it is a failure.
APPROACH_CONTACT_LIMIT_N = 20.0
#: Solver iterations per step while a hand is in the world (see FloatingGripper).
EXECUTION_SOLVER_ITERATIONS = 150

#: Outcome causes recorded by :func:`execute_grasp` ("" = success).
FAILURE_CAUSES: tuple[str, ...] = (
    "collision_pregrasp_table", "collision_pregrasp_object", "collision_pregrasp_target",
    "collision_approach_table", "collision_approach_object", "collision_approach_target",
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
        Force limit of each finger motor, newtons: the squeeze force on a held object (default 60 N).
    """

    def __init__(self, world: SimWorld, gripper=None, *, grip_force_n: float = GRIP_FORCE_N) -> None:
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
            # rubber-like pads: Coulomb mu ~1, torsional friction of a ~1 cm^2 pad (spinning friction is a length
            # in Bullet: torque limit = coefficient x normal force)
            p.changeDynamics(self.body, j, lateralFriction=PAD_FRICTION, spinningFriction=PAD_SPINNING_FRICTION_M,
                             jointLowerLimit=0.0, jointUpperLimit=m.max_opening_m / 2)
        p.changeDynamics(self.body, -1, lateralFriction=0.8)
        self.constraint = p.createConstraint(self.body, -1, -1, -1, pb.JOINT_FIXED, [0, 0, 0], [0, 0, 0], [0, 0, 2.0])
        # the two fingers are mechanically coupled (one spindle on the Franka Hand): they move symmetrically, so an
        # off-centre object is dragged to the hand centre as the jaws close, as on the real hand
        self.gear = p.createConstraint(self.body, 0, self.body, 1, pb.JOINT_GEAR, [1, 0, 0], [0, 0, 0], [0, 0, 0])
        p.changeConstraint(self.gear, gearRatio=-1, erp=0.2, maxForce=4 * self.grip_force_n)
        self.finger_links = (0, 1)
        # a 60 N squeeze on a 20–200 g object is a stiff contact problem: with fewer solver iterations the
        # contact impulses do not converge and the held object creeps and turns in the fingers
        p.setPhysicsEngineParameter(numSolverIterations=EXECUTION_SOLVER_ITERATIONS)

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
        """Set the pose the hand is driven to (reached over the next steps)."""
        pos, quat = base_from_grasp.as_xyz_quat_xyzw()
        self.move_to(pos, quat, max_force_n)

    def move_to(self, position_in_base, quat_xyzw, max_force_n: float = 500.0) -> None:
        """:meth:`drive` with the position (3,) metres and the orientation quaternion (x, y, z, w) given."""
        self.world.p.changeConstraint(self.constraint, [float(x) for x in position_in_base],
                                      jointChildFrameOrientation=[float(x) for x in quat_xyzw], maxForce=max_force_n)

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


def min_jerk(n: int) -> np.ndarray:
    """(n,) minimum-jerk progress 0 → 1 at the ends of ``n`` equal time steps (zero velocity and acceleration at
    both ends; peak acceleration 5.77 · distance / duration²)."""
    s = np.arange(1, int(n) + 1) / max(int(n), 1)
    return 10 * s**3 - 15 * s**4 + 6 * s**5


def shake_waypoints(amplitude_m: float = SHAKE_AMPLITUDE_M) -> list[tuple[float, float]]:
    """Horizontal shake waypoints (x, y offsets, metres): 0 → +A → −A → 0 along x, then along y."""
    a = float(amplitude_m)
    return [(a, 0.0), (-a, 0.0), (0.0, 0.0), (0.0, a), (0.0, -a), (0.0, 0.0)]


def _segment_steps(distance_m: float, accel_m_s2: float) -> int:
    """Steps of a minimum-jerk move of ``distance_m`` whose peak acceleration is ``accel_m_s2``."""
    return max(int(round(math.sqrt(5.7735 * abs(distance_m) / accel_m_s2) / TIME_STEP_S)), 1)


def execute_grasp(
    world: SimWorld,
    gripper: FloatingGripper,
    base_from_grasp: Transform,
    opening_m: float,
    target_body: int,
    *,
    approach_m: float = 0.08,
    lift_m: float = LIFT_HEIGHT_M,
    approach_speed_m_s: float = 0.25,
    shake: bool = True,
    shake_amplitude_m: float = SHAKE_AMPLITUDE_M,
    shake_accel_m_s2: float = SHAKE_ACCEL_M_S2,
    on_phase: Callable[[str], None] | None = None,
) -> ExecutionResult:
    """Execute one grasp: pre-grasp (``approach_m`` back along −z), straight approach, close, lift, shake.

    The hand follows smooth (minimum-jerk) trajectories like a robot arm under a Cartesian controller: the
    lift raises it ``lift_m`` in ``LIFT_DURATION_S``; the shake moves it ±``shake_amplitude_m`` along x and
    then y with a peak acceleration of ``shake_accel_m_s2`` (defaults 2.5 cm, 3 m/s²).

    Parameters
    ----------
    base_from_grasp : Transform
        Grasp pose in the world (``base``) frame; +z approach, +x closing, origin at the fingertip centre.
    opening_m : float
        Finger opening at the pre-grasp, metres (clipped to the stroke).
    target_body : int
        pybullet body id of the object to grasp.
    on_phase : callable or None
        Called with the phase name (``pregrasp``, ``closed``, ``lifted``, ``shaken``) when the phase ends
        (e.g. to save the world state for failure images).

    Returns
    -------
    ExecutionResult
        Collisions of the hand with the table or a non-target object on the way are failures, and so is
        pushing the target with more than ``APPROACH_CONTACT_LIMIT_N`` (touching it is allowed).
    """
    if (base_from_grasp.to_frame, base_from_grasp.from_frame) != (BASE, GRASP):
        raise ConfigError(f"execute_grasp needs base_from_grasp, got {base_from_grasp.name}")
    if shake_amplitude_m < 0 or shake_accel_m_s2 <= 0 or lift_m <= 0:
        raise ConfigError(f"execute_grasp needs lift_m > 0, shake_amplitude_m >= 0 and shake_accel_m_s2 > 0, got "
                          f"{lift_m}, {shake_amplitude_m}, {shake_accel_m_s2}")
    phase = on_phase or (lambda name: None)
    p = world.p
    others = [o.body_id for o in world.objects if o.body_id != target_body]
    opening = float(np.clip(opening_m, gripper.model.min_opening_m, gripper.model.max_opening_m))
    pre = _offset(base_from_grasp, -approach_m)
    gripper.teleport(pre, opening)
    p.performCollisionDetection()
    phase("pregrasp")
    if gripper.penetrations(world.table_id):
        return ExecutionResult(False, "collision_pregrasp_table")
    if any(gripper.penetrations(b) for b in others):
        return ExecutionResult(False, "collision_pregrasp_object")
    if gripper.penetrations(target_body):
        return ExecutionResult(False, "collision_pregrasp_target")
    z0 = world.base_from_object(target_body).translation[2]
    origin, quat = base_from_grasp.as_xyz_quat_xyzw()
    approach = base_from_grasp.rotation[:, 2]

    def at(dz_m: float = 0.0, up_m: float = 0.0, dx_m: float = 0.0, dy_m: float = 0.0) -> np.ndarray:
        """Hand position: ``dz_m`` along the approach from the grasp pose, then a world offset."""
        return origin + approach * dz_m + np.array([dx_m, dy_m, up_m])

    # approach in small increments, checking contacts with the table and the other objects
    n = max(int(approach_m / approach_speed_m_s / TIME_STEP_S), 1)
    for i in range(1, n + 1):
        gripper.move_to(at(-approach_m * (1 - i / n)), quat)
        world.step(1)
        if i % 4 == 0 or i == n:
            if p.getContactPoints(gripper.body, world.table_id):
                return ExecutionResult(False, "collision_approach_table")
            if any(p.getContactPoints(gripper.body, b) for b in others):
                return ExecutionResult(False, "collision_approach_object")
            force = sum(c[9] for c in p.getContactPoints(gripper.body, target_body))
            if force > APPROACH_CONTACT_LIMIT_N:
                return ExecutionResult(False, "collision_approach_target", details={"contact_force_n": float(force)})
    world.step(12)
    gripper.close()
    width = gripper.opening_m()
    phase("closed")
    if width < max(gripper.model.min_opening_m, 0.002):
        return ExecutionResult(False, "empty_close", width)
    # lift straight up (world z), minimum jerk
    for s in min_jerk(int(round(LIFT_DURATION_S / TIME_STEP_S))):
        gripper.move_to(at(up_m=lift_m * s), quat)
        world.step(1)
    world.step(30)
    z1 = world.base_from_object(target_body).translation[2]
    phase("lifted")

    def held() -> bool:
        c = {c[3] for c in p.getContactPoints(gripper.body, target_body)}
        return {0, 1} <= c

    if not held() or z1 - z0 < 0.5 * lift_m:
        return ExecutionResult(False, "dropped_on_lift", width, float(z1 - z0))
    if shake and shake_amplitude_m > 0:
        here = np.zeros(2)
        for goal in shake_waypoints(shake_amplitude_m):
            goal = np.asarray(goal)
            for s in min_jerk(_segment_steps(float(np.abs(goal - here).max()), shake_accel_m_s2)):
                dx, dy = here + (goal - here) * s
                gripper.move_to(at(up_m=lift_m, dx_m=dx, dy_m=dy), quat)
                world.step(1)
            here = goal
        world.step(30)
        z2 = world.base_from_object(target_body).translation[2]
        phase("shaken")
        if not held() or z2 - z0 < 0.5 * lift_m:
            return ExecutionResult(False, "dropped_on_shake", width, float(z2 - z0))
        z1 = z2
    return ExecutionResult(True, "", gripper.opening_m(), float(z1 - z0))


__all__ = ["APPROACH_CONTACT_LIMIT_N", "FAILURE_CAUSES", "GRIP_FORCE_N", "PAD_FRICTION", "PAD_SPINNING_FRICTION_M", "SHAKE_ACCEL_M_S2",
           "SHAKE_AMPLITUDE_M", "ExecutionResult", "FloatingGripper", "execute_grasp", "min_jerk", "shake_waypoints"]
