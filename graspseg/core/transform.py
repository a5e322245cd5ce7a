"""Frame-named rigid transforms.

A :class:`Transform` maps points from ``from_frame`` to ``to_frame`` and is named
``<to>_from_<from>``: ``base_from_camera = base_from_tcp @ tcp_from_camera``. Composing transforms
whose inner frames differ raises :class:`FrameMismatchError`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from .errors import ConfigError, FrameMismatchError, ShapeError, UnitsError
from .validate import as_float_array, check_translation_plausible, translation_bound

#: Canonical frame names (REP-103 optical convention for the camera: z forward, x right, y down).
BASE = "base"
TCP = "tcp"
CAMERA = "camera_color_optical"
OBJECT = "object"
GRASP = "grasp"

_RIGID_TOL = 1e-4


def check_rigid(matrix: np.ndarray, *, name: str = "transform", tol: float = _RIGID_TOL) -> np.ndarray:
    """Validate a 4×4 homogeneous rigid transform and return it as float64.

    Parameters
    ----------
    matrix : (4, 4) array_like
        Rotation block must be orthonormal with determinant +1, last row ``[0, 0, 0, 1]``.
    name : str
        Used in the error message.
    """
    try:
        m = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise ShapeError(
            f"{name} must be a 4x4 matrix of numbers, got {str(matrix)[:80]!r}; give 4 rows of 4 numbers "
            "(rotation, translation in metres, last row 0 0 0 1)"
        ) from None
    if m.shape != (4, 4):
        raise ShapeError(f"{name} must be a 4x4 matrix, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise UnitsError(f"{name} contains NaN or inf values; give a finite 4x4 rigid transform")
    if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=tol):
        raise UnitsError(f"{name} last row is {m[3].tolist()}, expected [0, 0, 0, 1]")
    r = m[:3, :3]
    ortho_err = float(np.abs(r @ r.T - np.eye(3)).max())
    det = float(np.linalg.det(r))
    if ortho_err > tol or abs(det - 1.0) > tol:
        raise UnitsError(
            f"{name} is not a rigid transform: rotation block has |R Rᵀ - I| = {ortho_err:.2e} and det = "
            f"{det:.4f} (want 0 and +1); scale or shear is not allowed — re-orthonormalise the rotation"
        )
    if np.abs(m[:3, 3]).max() > 100.0:
        raise UnitsError(
            f"{name} translation {m[:3, 3].tolist()} exceeds 100 m; translations are in metres "
            "(did you pass millimetres?)"
        )
    return m


@dataclass(frozen=True, eq=False)
class Transform:
    """A rigid transform that maps points in ``from_frame`` to ``to_frame``.

    Attributes
    ----------
    matrix : (4, 4) float64
        Homogeneous matrix; translation in metres.
    to_frame, from_frame : str
        Frame names.
    """

    matrix: np.ndarray
    to_frame: str
    from_frame: str

    def __post_init__(self) -> None:
        m = check_rigid(self.matrix, name=f"{self.to_frame}_from_{self.from_frame}")
        m.setflags(write=False)
        object.__setattr__(self, "matrix", m)

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def identity(cls, to_frame: str, from_frame: str) -> Transform:
        return cls(np.eye(4), to_frame, from_frame)

    @classmethod
    def from_rt(cls, rotation: np.ndarray, translation_m: np.ndarray, to_frame: str, from_frame: str) -> Transform:
        """Build from a (3, 3) rotation matrix and a (3,) translation in metres."""
        m = np.eye(4)
        m[:3, :3] = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
        m[:3, 3] = np.asarray(translation_m, dtype=np.float64).reshape(3)
        return cls(m, to_frame, from_frame)

    @classmethod
    def from_xyz_quat_xyzw(cls, xyz_m, quat_xyzw, to_frame: str, from_frame: str) -> Transform:
        """Build from a translation (metres) and a quaternion in (x, y, z, w) order."""
        name = f"{to_frame}_from_{from_frame}"
        q = as_float_array(quat_xyzw, (4,), field=f"{name} quat_xyzw", unit="a unit quaternion (x, y, z, w)",
                           fix="give 4 numbers in (x, y, z, w) order")
        xyz = as_float_array(xyz_m, (3,), field=f"{name} xyz_m", unit="metres", fix="give 3 numbers x, y, z in metres")
        norm = float(np.linalg.norm(q))
        if abs(norm - 1.0) > 1e-3:
            raise UnitsError(
                f"{name} quat_xyzw {q.tolist()} has norm {norm:.4f}; a rotation quaternion has norm 1 "
                "(normalise it, and check the order is x, y, z, w)"
            )
        return cls.from_rt(Rotation.from_quat(q).as_matrix(), xyz, to_frame, from_frame)

    @classmethod
    def from_rotvec(cls, rotvec_rad, translation_m, to_frame: str, from_frame: str) -> Transform:
        return cls.from_rt(Rotation.from_rotvec(np.asarray(rotvec_rad, float)).as_matrix(), translation_m, to_frame, from_frame)

    # --- accessors ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return f"{self.to_frame}_from_{self.from_frame}"

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) rotation matrix."""
        return self.matrix[:3, :3]

    @property
    def translation(self) -> np.ndarray:
        """(3,) translation in metres (origin of ``from_frame`` expressed in ``to_frame``)."""
        return self.matrix[:3, 3]

    def as_xyz_quat_xyzw(self) -> tuple[np.ndarray, np.ndarray]:
        """Translation (metres) and quaternion in (x, y, z, w) order."""
        return self.translation.copy(), Rotation.from_matrix(self.rotation).as_quat()

    # --- algebra ------------------------------------------------------------------------------
    def inverse(self) -> Transform:
        r = self.rotation
        m = np.eye(4)
        m[:3, :3] = r.T
        m[:3, 3] = -r.T @ self.translation
        return Transform(m, self.from_frame, self.to_frame)

    def __matmul__(self, other: Transform) -> Transform:
        if not isinstance(other, Transform):
            return NotImplemented
        if self.from_frame != other.to_frame:
            raise FrameMismatchError(
                f"cannot compose {self.name} @ {other.name}: inner frames '{self.from_frame}' and "
                f"'{other.to_frame}' differ; the chain must cancel ({self.to_frame}_from_X @ X_from_{other.from_frame})"
            )
        return Transform(self.matrix @ other.matrix, self.to_frame, other.from_frame)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map (N, 3) points in ``from_frame`` to ``to_frame``; returns (N, 3) float64."""
        p = np.asarray(points, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3:
            raise ShapeError(f"points must be (N, 3), got {p.shape}")
        return p @ self.rotation.T + self.translation

    def apply_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """Rotate (N, 3) direction vectors (no translation)."""
        v = np.asarray(vectors, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != 3:
            raise ShapeError(f"vectors must be (N, 3), got {v.shape}")
        return v @ self.rotation.T

    def distance_to(self, other: Transform) -> tuple[float, float]:
        """Translation (m) and rotation angle (rad) between two transforms of the same frames."""
        if (self.to_frame, self.from_frame) != (other.to_frame, other.from_frame):
            raise FrameMismatchError(f"cannot compare {self.name} with {other.name}")
        dt = float(np.linalg.norm(self.translation - other.translation))
        dr = Rotation.from_matrix(self.rotation.T @ other.rotation).magnitude()
        return dt, float(dr)

    # --- I/O ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        xyz, q = self.as_xyz_quat_xyzw()
        return {
            "to_frame": self.to_frame,
            "from_frame": self.from_frame,
            "matrix": self.matrix.tolist(),
            "xyz_m": xyz.tolist(),
            "quat_xyzw": q.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict, *, to_frame: str | None = None, from_frame: str | None = None,
                  source: str = "", check_plausible: bool = True) -> Transform:
        """Read ``{"matrix": 4x4}`` or ``{"xyz_m"|"xyz": [3], "quat_xyzw": [4]}`` (metres; frames optional).

        Parameters
        ----------
        d : dict
            The mapping. Optional keys: ``to_frame``, ``from_frame``; ``max_translation_m`` (metres) raises
            the plausibility bound, ``allow_implausible: true`` switches it off.
        to_frame, from_frame : str, optional
            Frames the reader expects; a mapping naming other frames is refused.
        source : str
            File or field name for messages.
        check_plausible : bool
            Refuse ``tcp_from_camera_color_optical`` longer than 0.5 m and ``base_from_tcp`` longer than
            3 m (see :mod:`graspseg.core.validate`) as a likely millimetre mistake.

        Raises
        ------
        ConfigError
            Not a mapping, missing keys, strings or nulls where numbers belong, frame names that differ.
        ShapeError, UnitsError
            Wrong shapes; NaN; a matrix that is not rigid; an implausibly long translation.
        """
        where = f"{source}: " if source else ""
        if not isinstance(d, dict):
            raise UnitsError(
                f"{where}a transform must be a mapping with 'matrix' (4x4) or 'xyz_m' + 'quat_xyzw', got "
                f"{type(d).__name__} {str(d)[:60]!r}"
            )
        to = d.get("to_frame", to_frame)
        frm = d.get("from_frame", from_frame)
        if to is None or frm is None:
            raise UnitsError(f"{where}a transform needs 'to_frame' and 'from_frame' (or the reader must supply them)")
        if not isinstance(to, str) or not isinstance(frm, str) or not to or not frm:
            raise ConfigError(f"{where}to_frame/from_frame must be frame names (strings), got {to!r} and {frm!r}")
        for key, want, got in (("to_frame", to_frame, to), ("from_frame", from_frame, frm)):
            if want is not None and got != want:
                raise ConfigError(
                    f"{where}{key} is {got!r} but {want!r} is expected here ({to_frame}_from_{from_frame}); "
                    "invert the transform or fix the frame names"
                )
        name = f"{to}_from_{frm}"
        if "matrix" in d:
            m = as_float_array(d["matrix"], (4, 4), field=f"{name} matrix", unit="metres (4x4 rigid transform)",
                               source=source, fix="give 4 rows of 4 numbers, last row [0, 0, 0, 1]")
            t = cls(m, to, frm)
        else:
            xyz = d.get("xyz_m", d.get("xyz"))
            if xyz is None or "quat_xyzw" not in d:
                raise UnitsError(
                    f"{where}transform {name} needs 'matrix' (4x4) or 'xyz_m' (3 numbers, metres) + 'quat_xyzw' "
                    f"(4 numbers, x y z w); got keys {sorted(d)}"
                    + ("; 'quat_wxyz' is w-first: reorder it to x, y, z, w" if "quat_wxyz" in d else "")
                )
            try:
                t = cls.from_xyz_quat_xyzw(xyz, d["quat_xyzw"], to, frm)
            except (ConfigError, ShapeError, UnitsError) as e:
                raise type(e)(f"{where}{e}") from None
        if check_plausible:
            bound = translation_bound(d, to, frm, source=source)
            if bound is not None:
                check_translation_plausible(
                    t.translation, bound, name=name, source=source,
                    override="add 'max_translation_m: <metres>' beside it (or 'allow_implausible: true')",
                )
        return t

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Transform):
            return NotImplemented
        return (self.to_frame, self.from_frame) == (other.to_frame, other.from_frame) and bool(
            np.allclose(self.matrix, other.matrix, atol=1e-9)
        )

    def __hash__(self) -> int:
        return hash((self.to_frame, self.from_frame, self.matrix.round(9).tobytes()))

    def __repr__(self) -> str:
        xyz, q = self.as_xyz_quat_xyzw()
        return f"Transform({self.name}, xyz_m={np.round(xyz, 4).tolist()}, quat_xyzw={np.round(q, 4).tolist()})"
