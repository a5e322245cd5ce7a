"""Parallel-jaw gripper models, read from metre-valued YAML files.

The grasp frame (``grasp``) has its origin at the fingertip centre, +z along the approach and +x along
the closing direction (see ``docs/grasp_frame.md``). The finger boxes and the palm box used for
collision checks are expressed in that frame.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from ..core.errors import ConfigError
from ..core.io import read_yaml
from ..core.registry import Registry
from ..core.transform import GRASP, TCP, Transform

GRIPPER_DIR = Path(__file__).resolve().parent / "grippers"

_REQUIRED = (
    "min_opening_m", "max_opening_m", "finger_width_m", "finger_depth_m", "finger_thickness_m",
    "palm_width_m", "palm_depth_m", "palm_height_m",
)


@dataclass(frozen=True)
class GripperModel:
    """A parallel-jaw gripper, all lengths in metres.

    Attributes
    ----------
    name : str
    min_opening_m, max_opening_m : float
        Stroke: the smallest and largest distance between the finger pads.
    finger_width_m : float
        Pad extent across the closing direction (grasp-frame y).
    finger_depth_m : float
        Finger length along the approach that can enclose the object (fingertip to palm).
    finger_thickness_m : float
        Finger extent along the closing direction (grasp-frame x).
    palm_width_m, palm_depth_m, palm_height_m : float
        Hand body extents along grasp-frame x, y and z (z = behind the fingers, along -approach).
    tcp_offset_m : float
        Distance from the robot's TCP to the fingertip centre along the approach (positive when the
        fingertips are ahead of the TCP).
    flange_to_fingertip_m : float
        Flange to the fingertip centre (the grasp-frame origin, at the physical tips) along the approach.
    tcp_closing_axis : {"x", "y"}
        The axis of the robot's TCP frame along which the fingers close (the grasp frame's +x); the Franka
        Hand's TCP closes along y. Used to turn grasp poses into TCP targets (``graspseg.plugin``).
    description : str
    """

    name: str
    min_opening_m: float
    max_opening_m: float
    finger_width_m: float
    finger_depth_m: float
    finger_thickness_m: float
    palm_width_m: float
    palm_depth_m: float
    palm_height_m: float
    tcp_offset_m: float = 0.0
    flange_to_fingertip_m: float = 0.0
    tcp_closing_axis: str = "x"
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError("gripper name must be a non-empty string (e.g. 'franka_hand')")
        for f in fields(self):
            if f.name in ("name", "description", "tcp_closing_axis"):
                continue
            v = getattr(self, f.name)
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise ConfigError(f"gripper '{self.name}': {f.name} must be a number of metres, got {v!r}") from None
            if not math.isfinite(v):
                raise ConfigError(f"gripper '{self.name}': {f.name} is {v}; give a finite number of metres")
            if f.name != "tcp_offset_m" and v < 0:
                raise ConfigError(
                    f"gripper '{self.name}': {f.name} = {v} m is negative; lengths are positive metres"
                )
            if abs(v) > 2.0:
                raise ConfigError(
                    f"gripper '{self.name}': {f.name} = {v} is over 2 m; lengths are in metres (millimetres given?)"
                )
            object.__setattr__(self, f.name, v)
        if self.tcp_closing_axis not in ("x", "y"):
            raise ConfigError(
                f"gripper '{self.name}': tcp_closing_axis must be 'x' or 'y' (the TCP axis the fingers close along), "
                f"got {self.tcp_closing_axis!r}"
            )
        if self.max_opening_m <= self.min_opening_m:
            raise ConfigError(
                f"gripper '{self.name}': stroke is inverted or empty (min_opening_m = {self.min_opening_m} m, "
                f"max_opening_m = {self.max_opening_m} m); max_opening_m must exceed min_opening_m"
            )
        for name in ("finger_width_m", "finger_depth_m", "finger_thickness_m"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"gripper '{self.name}': {name} must be > 0 m, got {getattr(self, name)}")
        reach = self.finger_depth_m + self.palm_height_m
        if self.flange_to_fingertip_m and reach < self.flange_to_fingertip_m - 1e-3:
            raise ConfigError(
                f"gripper '{self.name}': fingers ({self.finger_depth_m} m) and palm ({self.palm_height_m} m) end "
                f"{(self.flange_to_fingertip_m - reach) * 1e3:.1f} mm short of the flange (flange_to_fingertip_m = "
                f"{self.flange_to_fingertip_m} m): the collision and table checks would not see that part of the hand; "
                f"set palm_height_m = {self.flange_to_fingertip_m - self.finger_depth_m:.4f}"
            )
        if self.palm_width_m and self.palm_width_m < self.max_opening_m:
            raise ConfigError(
                f"gripper '{self.name}': palm_width_m = {self.palm_width_m} m is narrower than the stroke "
                f"max_opening_m = {self.max_opening_m} m; the palm carries the fingers, so make it at least as wide"
            )

    # --- I/O ---------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict, *, source: str = "gripper") -> GripperModel:
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: a gripper file must be a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown gripper field(s) {unknown}; valid fields are {sorted(known)}")
        missing = [k for k in ("name", *_REQUIRED) if k not in d]
        if missing:
            raise ConfigError(f"{source}: missing gripper field(s) {missing} (all lengths in metres)")
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | Path) -> GripperModel:
        """Read a gripper YAML file (metres); see ``graspseg/grasp/grippers/generic.yaml``."""
        return cls.from_dict(read_yaml(path, "gripper file"), source=str(path))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["units"] = "m"
        return d

    # --- geometry in the grasp frame --------------------------------------------------------------
    def finger_boxes(self, opening_m: float) -> np.ndarray:
        """(2, 2, 3) min/max corners of the two finger boxes in the grasp frame at ``opening_m``."""
        o = 0.5 * float(opening_m)
        t, w, d = self.finger_thickness_m, 0.5 * self.finger_width_m, self.finger_depth_m
        return np.array([[[-o - t, -w, -d], [-o, w, 0.0]], [[o, -w, -d], [o + t, w, 0.0]]])

    def palm_box(self) -> np.ndarray:
        """(2, 3) min/max corners of the palm box in the grasp frame."""
        d = self.finger_depth_m
        return np.array([[-0.5 * self.palm_width_m, -0.5 * self.palm_depth_m, -d - self.palm_height_m],
                         [0.5 * self.palm_width_m, 0.5 * self.palm_depth_m, -d]])


def grasp_from_tcp(gripper: GripperModel) -> Transform:
    """Where the robot's TCP sits in the grasp frame.

    The fingertip centre is ``tcp_offset_m`` ahead of the TCP along the approach (+z); a gripper whose
    TCP closes along its y axis (``tcp_closing_axis: y``, e.g. the Franka Hand) is turned by +90° about z
    so that the TCP's y axis is the grasp's closing (+x) axis.
    """
    rot = np.eye(3)
    if gripper.tcp_closing_axis == "y":
        rot = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # columns: TCP axes in grasp frame
    return Transform.from_rt(rot, [0.0, 0.0, -float(gripper.tcp_offset_m)], GRASP, TCP)


_SHIPPED_CACHE: dict[str, GripperModel] = {}

#: Third-party grippers: an entry point in the ``graspseg.grippers`` group names a :class:`GripperModel`,
#: a function returning one, or (as ``"module:attr"``) either of them; see ``docs/plugin.md``.
GRIPPERS: Registry = Registry("gripper", entry_point_group="graspseg.grippers")


def available_grippers() -> list[str]:
    """Names of the gripper models shipped with graspseg and those installed through entry points."""
    return sorted({p.stem for p in GRIPPER_DIR.glob("*.yaml")} | set(GRIPPERS.names()))


def load_gripper(name_or_path: str | Path | GripperModel) -> GripperModel:
    """A gripper by name (shipped: ``franka_hand``, ``robotiq_2f85``, ``generic``; or registered in
    :data:`GRIPPERS`) or a YAML file path."""
    if isinstance(name_or_path, GripperModel):
        return name_or_path
    s = str(name_or_path)
    if s in _SHIPPED_CACHE:
        return _SHIPPED_CACHE[s]
    p = Path(s)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return GripperModel.from_yaml(p)
    shipped = GRIPPER_DIR / f"{s}.yaml"
    if shipped.exists():
        _SHIPPED_CACHE[s] = GripperModel.from_yaml(shipped)
        return _SHIPPED_CACHE[s]
    if s in GRIPPERS:
        obj = GRIPPERS.get(s)
        model = obj() if callable(obj) and not isinstance(obj, GripperModel) else obj
        if not isinstance(model, GripperModel):
            raise ConfigError(f"gripper plugin {s!r} gave a {type(model).__name__}, not a GripperModel; its entry "
                              "point must name a GripperModel or a function returning one")
        return model
    raise ConfigError(
        f"unknown gripper {s!r}; known grippers are {available_grippers()}, or give a path to a YAML file "
        "(copy graspseg/grasp/grippers/generic.yaml)"
    )
