"""The grasp set: a frozen struct of arrays, sorted best first."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.errors import NoGraspError, ShapeError
from ..core.transform import BASE, CAMERA, GRASP, Transform

#: Rejection reasons, in the order the checks run (each grasp records the first that fails).
REJECT_REASONS: tuple[str, ...] = (
    "no_contact",        # too few object points between the fingers
    "shallow",           # the object reaches less than min_grasp_depth_m between the fingers
    "too_wide",          # measured width + clearance exceeds the stroke
    "too_narrow",        # measured width below the minimum opening
    "table",             # a finger would go below the table clearance
    "collision",         # finger or palm hits scene points (object, neighbours)
    "friction",          # contact normals outside the friction cone
    "contact_unknown",   # a contact sits on an UNKNOWN boundary-band point
    "opening_margin",    # fits nominally, but not with the boundary error added
    "finger_landing",    # fingers descend closer than the boundary error to something
    "robustness",        # survives too few eroded / dilated / alternative masks
)

#: Margin names; each is stored twice in ``GraspSet.margins``: ``<name>_mm`` and ``<name>_px``.
MARGIN_NAMES: tuple[str, ...] = ("opening", "contact", "finger_landing")

SCHEMA_VERSION = 2  # 2: vectors and contacts name their frame (approach_in_camera, ..._in_base)


def _ro(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class GraspSet:
    """Parallel-jaw grasps with their boundary-error margins (struct of arrays, N grasps).

    Grasp frame: origin at the fingertip centre, +z approach, +x closing (``docs/grasp_frame.md``).

    Attributes
    ----------
    camera_from_grasp : (N, 4, 4) float64
        Grasp poses in ``camera_color_optical``.
    base_from_grasp : (N, 4, 4) float64 or None
        Grasp poses in ``base`` when the camera pose is known.
    width_m : (N,) float64
        Measured object width between the contacts, metres.
    opening_m : (N,) float64
        Pre-grasp opening the fingers are set to, metres.
    approach, closing : (N, 3) float64
        Unit vectors in the camera frame (the grasp frame's z and x axes).
    contacts_in_camera : (N, 2, 3) float64
        The two contact points (at -x and +x), metres, camera frame.
    contacts_uv : (N, 2, 2) float64
        Source pixels (u, v) of the contacts.
    score : (N,) float64
        Nominal quality in [0, 1] (friction alignment, centring, approach preference, grasp depth, and
        whether the camera saw the width end to end).
    margins : dict of str -> (N,) float64
        ``opening_mm/px``, ``finger_landing_mm/px`` (slack beyond the boundary error; negative = violated),
        ``contact_mm/px`` (distance of the nearer contact to uncertain mask pixels minus the boundary error:
        reported, not a rejection), ``error_mm`` (the boundary error at the contacts' depth), ``leak_depth_mm``
        (depth jump a leaking mask drags in at the contacts), ``robustness`` (fraction survived),
        ``neighbour_clearance_mm`` (of the swept fingers from other objects; 1000 when none is near).
    worst_case_margin_mm : (N,) float64
        The smaller of the opening and finger-landing margins, mm.
    accepted : (N,) bool
    rejected_because : (N,) str
        ``""`` when accepted, else one of :data:`REJECT_REASONS`.
    boundary_error_px : float
    rejected_counts : dict of str -> int
        Over every candidate evaluated (not only those returned).
    suggestion : str
        When nothing is accepted: the dominant reason and the fix.
    gripper : str
    n_candidates : int
        Candidates evaluated.
    """

    camera_from_grasp: np.ndarray
    width_m: np.ndarray
    opening_m: np.ndarray
    approach: np.ndarray
    closing: np.ndarray
    contacts_in_camera: np.ndarray
    contacts_uv: np.ndarray
    score: np.ndarray
    margins: dict
    worst_case_margin_mm: np.ndarray
    accepted: np.ndarray
    rejected_because: np.ndarray
    boundary_error_px: float = 0.0
    base_from_grasp: np.ndarray | None = None
    rejected_counts: dict = field(default_factory=dict)
    suggestion: str = ""
    gripper: str = ""
    n_candidates: int = 0
    timings_ms: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(np.asarray(self.camera_from_grasp).reshape(-1, 4, 4))
        shapes = {
            "camera_from_grasp": (n, 4, 4), "width_m": (n,), "opening_m": (n,), "approach": (n, 3),
            "closing": (n, 3), "contacts_in_camera": (n, 2, 3), "contacts_uv": (n, 2, 2), "score": (n,),
            "worst_case_margin_mm": (n,), "accepted": (n,), "rejected_because": (n,),
        }
        for name, shape in shapes.items():
            a = np.asarray(getattr(self, name))
            if name == "accepted":
                a = a.astype(bool)
            elif name == "rejected_because":
                a = a.astype(str) if a.size else np.zeros(0, dtype="<U16")
            else:
                a = a.astype(np.float64)
            a = a.reshape(shape) if a.size == int(np.prod(shape)) else a
            if a.shape != shape:
                raise ShapeError(f"GraspSet.{name} must be {shape}, got {a.shape}")
            object.__setattr__(self, name, _ro(a))
        if self.base_from_grasp is not None:
            b = np.asarray(self.base_from_grasp, np.float64).reshape(-1, 4, 4)
            if len(b) != n:
                raise ShapeError(f"GraspSet.base_from_grasp must be ({n}, 4, 4), got {b.shape}")
            object.__setattr__(self, "base_from_grasp", _ro(b))
        margins = {}
        for k, v in dict(self.margins).items():
            a = np.asarray(v, np.float64).reshape(-1)
            if a.shape != (n,):
                raise ShapeError(f"GraspSet.margins[{k!r}] must be ({n},), got {a.shape}")
            margins[k] = _ro(a)
        object.__setattr__(self, "margins", margins)
        bad = self.accepted & (self.rejected_because != "")
        if bad.any():
            raise ShapeError("a grasp cannot be both accepted and rejected (rejected_because must be '' when accepted)")
        object.__setattr__(self, "boundary_error_px", float(self.boundary_error_px))

    # --- construction ------------------------------------------------------------------------------
    @classmethod
    def empty(cls, *, boundary_error_px: float = 0.0, rejected_counts: dict | None = None, suggestion: str = "",
              gripper: str = "", n_candidates: int = 0, margin_keys: tuple[str, ...] = ()) -> GraspSet:
        """A grasp set with no grasps (and the explanation of why)."""
        z = np.zeros
        keys = margin_keys or tuple(f"{m}_{u}" for m in MARGIN_NAMES for u in ("mm", "px")) + (
            "error_mm", "leak_depth_mm", "robustness")
        return cls(z((0, 4, 4)), z(0), z(0), z((0, 3)), z((0, 3)), z((0, 2, 3)), z((0, 2, 2)), z(0),
                   {k: z(0) for k in keys}, z(0), z(0, bool), np.zeros(0, dtype="<U16"),
                   boundary_error_px, None, dict(rejected_counts or {}), suggestion, gripper, n_candidates)

    # --- views ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.width_m)

    def __getitem__(self, index) -> GraspSet:
        idx = np.atleast_1d(np.arange(len(self))[index])
        return GraspSet(
            self.camera_from_grasp[idx], self.width_m[idx], self.opening_m[idx], self.approach[idx],
            self.closing[idx], self.contacts_in_camera[idx], self.contacts_uv[idx], self.score[idx],
            {k: v[idx] for k, v in self.margins.items()}, self.worst_case_margin_mm[idx], self.accepted[idx],
            self.rejected_because[idx], self.boundary_error_px,
            None if self.base_from_grasp is None else self.base_from_grasp[idx],
            dict(self.rejected_counts), self.suggestion, self.gripper, self.n_candidates, dict(self.timings_ms),
        )

    def top(self, k: int) -> GraspSet:
        """The first ``k`` grasps (the set is sorted best first)."""
        return self[: max(0, int(k))]

    def accepted_only(self) -> GraspSet:
        return self[np.flatnonzero(self.accepted)]

    @property
    def n_accepted(self) -> int:
        return int(self.accepted.sum())

    def pose(self, i: int, frame: str = CAMERA) -> Transform:
        """Grasp ``i`` as a :class:`Transform` ``<frame>_from_grasp`` (``camera_color_optical`` or ``base``)."""
        if frame == BASE:
            if self.base_from_grasp is None:
                raise ShapeError("no base_from_grasp: the frame had no robot pose or the rig no tcp_from_camera")
            return Transform(self.base_from_grasp[i], BASE, GRASP)
        if frame != CAMERA:
            raise ShapeError(f"grasp poses exist in '{CAMERA}' and '{BASE}', not '{frame}'")
        return Transform(self.camera_from_grasp[i], CAMERA, GRASP)

    def raise_if_empty(self) -> GraspSet:
        """Return self, or raise :class:`NoGraspError` (with per-reason counts) when nothing is accepted."""
        if not self.accepted.any():
            msg = self.suggestion or "no grasp candidate was accepted"
            raise NoGraspError(f"no grasp accepted: {msg}; rejected: {self.rejected_counts}", self.rejected_counts)
        return self

    def to_dict(self, *, compact: bool = False, top_k: int | None = None) -> dict:
        """JSON-ready dict with ``schema_version``, ``units`` and frame names in every pose and vector key.

        Parameters
        ----------
        compact : bool
            For planners: accepted grasps only, without the per-candidate pixel data (``contacts_uv``)
            and the px margins; the counts and the suggestion stay.
        top_k : int, optional
            Keep the first ``top_k`` grasps listed (the set is sorted best first).
        """
        view = self.accepted_only() if compact else self
        if top_k is not None:
            view = view.top(top_k)
        in_base = view.base_from_grasp is not None
        base_rot = None
        if in_base and len(view):
            # base_from_camera = base_from_grasp @ inv(camera_from_grasp), the same for every grasp
            base_rot = view.base_from_grasp[0, :3, :3] @ view.camera_from_grasp[0, :3, :3].T
            base_t = view.base_from_grasp[0, :3, 3] - base_rot @ view.camera_from_grasp[0, :3, 3]
        grasps = []
        for i in range(len(view)):
            g = {
                "camera_from_grasp": view.camera_from_grasp[i].tolist(),
                "width_m": float(view.width_m[i]),
                "opening_m": float(view.opening_m[i]),
                "approach_in_camera": view.approach[i].tolist(),
                "closing_in_camera": view.closing[i].tolist(),
                "contacts_in_camera": view.contacts_in_camera[i].tolist(),
                "score": float(view.score[i]),
                "margins": {k: float(v[i]) for k, v in view.margins.items() if not (compact and k.endswith("_px"))},
                "worst_case_margin_mm": float(view.worst_case_margin_mm[i]),
                "accepted": bool(view.accepted[i]),
                "rejected_because": str(view.rejected_because[i]),
            }
            if not compact:
                g["contacts_uv"] = view.contacts_uv[i].tolist()
            if in_base:
                g["base_from_grasp"] = view.base_from_grasp[i].tolist()
                g["approach_in_base"] = view.base_from_grasp[i, :3, 2].tolist()
                g["closing_in_base"] = view.base_from_grasp[i, :3, 0].tolist()
                g["contacts_in_base"] = (view.contacts_in_camera[i] @ base_rot.T + base_t).tolist()
            grasps.append(g)
        return {
            "schema_version": SCHEMA_VERSION,
            "compact": bool(compact),
            "units": {"length": "m", "margins": "mm and px (suffix)", "robustness": "fraction"},
            "frames": {"camera": CAMERA, "base": BASE if in_base else None, "grasp": GRASP,
                       "grasp_axes": "+z approach, +x closing, origin at the fingertip centre"},
            "gripper": self.gripper,
            "boundary_error_px": self.boundary_error_px,
            "n_candidates": self.n_candidates,
            "n_accepted": self.n_accepted,
            "n_listed": len(view),
            "rejected_counts": {k: int(v) for k, v in self.rejected_counts.items()},
            "suggestion": self.suggestion,
            "grasps": grasps,
        }

    def __repr__(self) -> str:
        return (f"GraspSet({len(self)} grasps, {self.n_accepted} accepted, gripper={self.gripper!r}, "
                f"boundary_error_px={self.boundary_error_px:g}, rejected={self.rejected_counts})")
