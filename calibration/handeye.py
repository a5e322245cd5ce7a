"""Eye-in-hand calibration: ``tcp_from_camera`` from robot poses and board views.

Pipeline (:func:`solve_eye_in_hand`):

1. Per view, the board pose ``camera_from_board`` by PnP; views without a usable board are skipped
   and named.
2. Pose-diversity check on the robot rotations: hand-eye is unobservable when the wrist only turns
   about one axis or hardly at all, and closed forms then fail silently. Too little motion raises
   :class:`CalibrationError` (or logs a loud warning with ``allow_degenerate=True``).
3. Closed form: Park & Martin (1994) on all pose pairs, implemented here in numpy (works with every
   OpenCV version; OpenCV 5 has no ``calibrateHandEye`` in Python).
4. Joint nonlinear refinement: ``scipy.optimize.least_squares`` over ``tcp_from_camera`` and
   ``base_from_board`` (12 parameters) minimising the reprojection error of every board corner in
   every view through ``camera_from_board_i = inv(tcp_from_camera) inv(base_from_tcp_i) base_from_board``.
   Optionally (``robot_noise_deg``/``robot_noise_mm`` given) each robot pose also gets a small
   correction with a Gaussian prior of that size, which is the maximum-likelihood estimate when the
   robot's reported poses are noisy too.
5. Report: per-pose RMS residual (px), per-pose board position in base and its spread (mm),
   rotation span, outlier poses; optionally drop the outliers and solve again.

Conventions: ``A_ij = inv(base_from_tcp_i) base_from_tcp_j`` (tcp motion), ``B_ij = camera_from_board_i
inv(camera_from_board_j)`` (camera motion), ``A X = X B`` with ``X = tcp_from_camera``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import lil_matrix
from scipy.spatial.transform import Rotation

from graspseg.core.camera import CameraIntrinsics, CameraRig
from graspseg.core.errors import CalibrationError, ConfigError, ShapeError, UnitsError
from graspseg.core.transform import BASE, CAMERA, TCP, Transform
from graspseg.core.validate import MAX_BASE_FROM_TCP_M, as_float_array, check_translation_plausible

from .board import BOARD, BoardDetection, CharucoBoardSpec, board_pose

log = logging.getLogger(__name__)

MIN_VIEWS = 5


# --- input validation ------------------------------------------------------------------------------
def as_base_from_tcp(pose, *, index: int | None = None) -> Transform:
    """Validate one robot pose (Transform or 4x4 array, metres) as ``base_from_tcp``."""
    where = "" if index is None else f" (pose {index})"
    if isinstance(pose, Transform):
        if (pose.to_frame, pose.from_frame) != (BASE, TCP):
            raise CalibrationError(f"robot pose{where} is {pose.name}; expected base_from_tcp")
        m = pose.matrix
    else:
        try:
            m = as_float_array(pose, (4, 4), field=f"robot pose{where}", unit="metres (4x4 base_from_tcp)")
        except (ConfigError, ShapeError, UnitsError) as e:
            raise CalibrationError(str(e)) from None
    try:
        check_translation_plausible(
            m[:3, 3], MAX_BASE_FROM_TCP_M, name=f"robot pose{where} base_from_tcp")
    except UnitsError as e:
        raise CalibrationError(f"{e}; poses are in metres") from None
    try:
        return Transform(m, BASE, TCP)
    except (UnitsError, ShapeError) as e:
        raise CalibrationError(
            f"robot pose{where} is not a rigid transform: {e}. Give base_from_tcp as a 4x4 rigid matrix "
            "(orthonormal rotation) or xyz + a unit quat_xyzw"
        ) from None


# --- pose diversity ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PoseDiversity:
    """How much the wrist rotated across the poses.

    Attributes
    ----------
    rotation_span_deg : float
        Largest rotation between any two tcp orientations, degrees.
    axis_spans_deg : (3,) float
        Range of the tcp orientations along their three principal rotation axes, widest first, degrees.
        Hand-eye needs rotation about at least two axes: the second value is what matters.
    translation_span_m : float
        Largest distance between two tcp positions, metres.
    """

    rotation_span_deg: float
    axis_spans_deg: tuple[float, float, float]
    translation_span_m: float

    def to_dict(self) -> dict:
        return {
            "rotation_span_deg": self.rotation_span_deg,
            "axis_spans_deg": list(self.axis_spans_deg),
            "translation_span_m": self.translation_span_m,
        }


def _mean_rotation(rs: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(rs.sum(axis=0))
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def pose_diversity(base_from_tcp: Sequence[Transform]) -> PoseDiversity:
    """Rotation and translation span of a set of robot poses."""
    rs = np.stack([t.rotation for t in base_from_tcp])
    ts = np.stack([t.translation for t in base_from_tcp])
    rel = np.einsum("iba,jbc->ijac", rs, rs)  # R_i^T R_j
    cos = np.clip((np.trace(rel, axis1=2, axis2=3) - 1) / 2, -1, 1)
    span = float(np.degrees(np.arccos(cos).max()))
    mean = _mean_rotation(rs)
    rv = Rotation.from_matrix(np.einsum("ba,ibc->iac", mean, rs)).as_rotvec()
    c = rv - rv.mean(axis=0)
    _, _, vt = np.linalg.svd(c, full_matrices=True)
    proj = c @ vt.T
    axis_spans = tuple(sorted((float(x) for x in np.degrees(proj.max(axis=0) - proj.min(axis=0))), reverse=True))
    dt = np.linalg.norm(ts[:, None] - ts[None], axis=2).max()
    return PoseDiversity(span, axis_spans, float(dt))  # type: ignore[arg-type]


def check_pose_diversity(
    diversity: PoseDiversity,
    *,
    min_span_deg: float = 15.0,
    min_second_axis_deg: float = 8.0,
    warn_span_deg: float = 30.0,
    warn_second_axis_deg: float = 15.0,
    allow_degenerate: bool = False,
) -> list[str]:
    """Refuse (or, with ``allow_degenerate``, warn loudly about) poses that rotate too little.

    Returns the warning messages (also logged).
    """
    span, second = diversity.rotation_span_deg, diversity.axis_spans_deg[1]
    what = (
        f"the wrist rotation spans only {span:.1f} deg (about the two widest axes: "
        f"{diversity.axis_spans_deg[0]:.1f} and {second:.1f} deg)"
    )
    fix = (
        "tilt the camera by 30 deg or more about at least two different axes between views "
        "(e.g. look at the board from the left, right, front and back)"
    )
    warnings = []
    if span < min_span_deg or second < min_second_axis_deg:
        msg = (
            f"degenerate hand-eye motion: {what}; need >= {min_span_deg:.0f} deg overall and >= "
            f"{min_second_axis_deg:.0f} deg about a second axis, otherwise the solution is unobservable and "
            f"closed forms fail silently; {fix}"
        )
        if not allow_degenerate:
            raise CalibrationError(msg + " (or accept the risk with allow_degenerate / --allow-degenerate)")
        warnings.append("WARNING: " + msg)
    elif span < warn_span_deg or second < warn_second_axis_deg:
        warnings.append(
            f"WARNING: weak hand-eye motion: {what}; errors of several mm are likely; {fix}"
        )
    for w in warnings:
        log.warning(w)
    return warnings


# --- closed form -----------------------------------------------------------------------------------
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, k=1)
    return i, j


def park_martin(base_from_tcp: Sequence[Transform], camera_from_board: Sequence[Transform]) -> Transform:
    """Park & Martin closed-form ``tcp_from_camera`` using every pose pair (least squares).

    Parameters
    ----------
    base_from_tcp : sequence of N Transform (base <- tcp)
    camera_from_board : sequence of N Transform (camera_color_optical <- board)
    """
    n = len(base_from_tcp)
    if n != len(camera_from_board):
        raise CalibrationError(f"got {n} robot poses but {len(camera_from_board)} board poses; they must pair up")
    if n < 3:
        raise CalibrationError(f"hand-eye needs at least 3 poses (two motions), got {n}")
    g = np.stack([t.matrix for t in base_from_tcp])
    c = np.stack([t.matrix for t in camera_from_board])
    i, j = _pairs(n)
    a = np.linalg.inv(g[i]) @ g[j]  # tcp_i <- tcp_j
    b = c[i] @ np.linalg.inv(c[j])  # camera_i <- camera_j
    alpha = Rotation.from_matrix(a[:, :3, :3]).as_rotvec()
    beta = Rotation.from_matrix(b[:, :3, :3]).as_rotvec()
    # R_A R_X = R_X R_B  =>  alpha = R_X beta ; R_X = argmin sum |alpha - R beta|^2 (Kabsch).
    m = beta.T @ alpha
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rx = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    # (R_A - I) t_X = R_X t_B - t_A
    lhs = (a[:, :3, :3] - np.eye(3)).reshape(-1, 3)
    rhs = (np.einsum("ab,nb->na", rx, b[:, :3, 3]) - a[:, :3, 3]).reshape(-1)
    tx, *_ = np.linalg.lstsq(lhs, rhs, rcond=None)
    return Transform.from_rt(rx, tx, TCP, CAMERA)


def opencv_hand_eye(
    base_from_tcp: Sequence[Transform], camera_from_board: Sequence[Transform], method: str = "park"
) -> Transform:
    """OpenCV's ``calibrateHandEye`` (OpenCV 4.x only) for comparison; ``method`` by keyword."""
    import cv2

    if not hasattr(cv2, "calibrateHandEye"):
        raise CalibrationError(
            f"this OpenCV ({cv2.__version__}) has no calibrateHandEye in Python (removed in 5.0); "
            "use park_martin() instead"
        )
    methods = {
        "tsai": cv2.CALIB_HAND_EYE_TSAI,
        "park": cv2.CALIB_HAND_EYE_PARK,
        "horaud": cv2.CALIB_HAND_EYE_HORAUD,
        "andreff": cv2.CALIB_HAND_EYE_ANDREFF,
        "daniilidis": cv2.CALIB_HAND_EYE_DANIILIDIS,
    }
    if method not in methods:
        raise CalibrationError(f"unknown OpenCV hand-eye method {method!r}; choose one of {sorted(methods)}")
    r, t = cv2.calibrateHandEye(
        [p.rotation for p in base_from_tcp],
        [p.translation.reshape(3, 1) for p in base_from_tcp],
        [p.rotation for p in camera_from_board],
        [p.translation.reshape(3, 1) for p in camera_from_board],
        method=methods[method],
    )
    u, _, vt = np.linalg.svd(r)
    return Transform.from_rt(u @ vt, t.ravel(), TCP, CAMERA)


# --- joint refinement ------------------------------------------------------------------------------
def _exp_se3(x: np.ndarray) -> np.ndarray:
    """(K, 6) [rotvec, translation] -> (K, 4, 4)."""
    x = np.atleast_2d(x)
    m = np.tile(np.eye(4), (x.shape[0], 1, 1))
    m[:, :3, :3] = Rotation.from_rotvec(x[:, :3]).as_matrix()
    m[:, :3, 3] = x[:, 3:]
    return m


def _log_se3(m: np.ndarray) -> np.ndarray:
    return np.concatenate([Rotation.from_matrix(m[:3, :3]).as_rotvec(), m[:3, 3]])


def _inv(m: np.ndarray) -> np.ndarray:
    out = np.zeros_like(m)
    rt = np.swapaxes(m[..., :3, :3], -1, -2)
    out[..., :3, :3] = rt
    out[..., :3, 3] = -np.einsum("...ab,...b->...a", rt, m[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def _project(intrinsics: CameraIntrinsics, p: np.ndarray) -> np.ndarray:
    """(M, 3) camera-frame points -> (M, 2) pixels; points behind the camera get a large finite value."""
    z = np.where(p[:, 2] > 1e-6, p[:, 2], 1e-6)
    x, y = p[:, 0] / z, p[:, 1] / z
    if intrinsics.has_distortion:
        x, y = intrinsics._distort_normalized(x, y)
    return np.stack([intrinsics.fx * x + intrinsics.cx, intrinsics.fy * y + intrinsics.cy], axis=1)


@dataclass(frozen=True)
class _Obs:
    view: np.ndarray  # (M,) view index of each corner
    points_in_board: np.ndarray  # (M, 3)
    uv: np.ndarray  # (M, 2)


def refine_joint(
    base_from_tcp: Sequence[Transform],
    detections: Sequence[BoardDetection],
    board: CharucoBoardSpec,
    intrinsics: CameraIntrinsics,
    tcp_from_camera: Transform,
    base_from_board: Transform,
    *,
    robot_noise_deg: float | None = None,
    robot_noise_mm: float | None = None,
    corner_noise_px: float = 0.2,
    fix_tcp_from_camera: bool = False,
) -> tuple[Transform, Transform, np.ndarray]:
    """Jointly refine ``tcp_from_camera`` and ``base_from_board`` on the corner reprojection error.

    Returns the refined transforms and the (N, 6) robot-pose corrections (zeros unless robot noise is
    modelled; ``[rotvec rad, translation m]`` right-multiplied onto each ``base_from_tcp``).
    With ``fix_tcp_from_camera`` only ``base_from_board`` (and robot corrections) are estimated, which is
    how an existing calibration is checked.
    """
    n = len(base_from_tcp)
    g = np.stack([t.matrix for t in base_from_tcp])
    obj = board.corners_in_board()
    view = np.concatenate([np.full(len(d), k) for k, d in enumerate(detections)])
    obs = _Obs(view, np.concatenate([obj[d.ids] for d in detections]), np.concatenate([d.corners_uv for d in detections]))
    model_robot = robot_noise_deg is not None and robot_noise_mm is not None
    if model_robot:
        sig = np.array([np.radians(robot_noise_deg)] * 3 + [robot_noise_mm / 1000.0] * 3)
        if np.any(sig <= 0):
            raise CalibrationError("robot_noise_deg and robot_noise_mm must be positive to model robot noise")
    n_par = 12 + (6 * n if model_robot else 0)
    x0 = np.zeros(n_par)
    # Local parametrisation: X = X0 exp(dX), W = W0 exp(dW) (no rotation-vector singularity at 180 deg).
    x_init, w_init = tcp_from_camera.matrix, base_from_board.matrix
    ph = np.concatenate([obs.points_in_board, np.ones((len(obs.view), 1))], axis=1)

    def unpack(x):
        xm = x_init @ _exp_se3(x[:6])[0]
        wm = w_init @ _exp_se3(x[6:12])[0]
        gi = g @ _exp_se3(x[12:].reshape(n, 6)) if model_robot else g
        return xm, wm, gi

    def residuals(x):
        xm, wm, gi = unpack(x)
        cam_from_board = _inv(xm)[None] @ _inv(gi) @ wm[None]  # (N, 4, 4)
        p = np.einsum("mab,mb->ma", cam_from_board[obs.view], ph)[:, :3]
        r = (_project(intrinsics, p) - obs.uv).ravel()
        if model_robot:
            r = np.concatenate([r, (x[12:].reshape(n, 6) / sig).ravel() * corner_noise_px])
        return r

    m = len(obs.view)
    sparsity = None
    if model_robot:
        sparsity = lil_matrix((2 * m + 6 * n, n_par), dtype=int)
        sparsity[: 2 * m, :12] = 1
        rows = np.arange(2 * m)
        vv = np.repeat(obs.view, 2)
        for k in range(6):
            sparsity[rows, 12 + vv * 6 + k] = 1
        sparsity[2 * m + np.arange(6 * n), 12 + np.arange(6 * n)] = 1
    free = np.ones(n_par, bool)
    if fix_tcp_from_camera:
        free[:6] = False
        if sparsity is not None:
            sparsity = sparsity[:, 6:]

    def residuals_free(p):
        x = x0.copy()
        x[free] = p
        return residuals(x)

    # soft_l1 with a 3-sigma knee: Gaussian corners are fitted as by plain least squares, while one
    # wrong pose cannot drag the solution (its residual stays large and it is flagged as an outlier).
    sol = least_squares(
        residuals_free, x0[free], method="trf", jac_sparsity=sparsity, xtol=1e-7, ftol=1e-7, gtol=1e-8,
        max_nfev=60, loss="soft_l1", f_scale=3.0 * corner_noise_px,
    )
    full = x0.copy()
    full[free] = sol.x
    sol_x = full
    xm, wm, _ = unpack(sol_x)
    corrections = sol_x[12:].reshape(n, 6) if model_robot else np.zeros((n, 6))
    return Transform(xm, TCP, CAMERA), Transform(wm, BASE, BOARD), corrections


def mean_transform(ts: Sequence[Transform]) -> Transform:
    """Chordal mean rotation and mean translation of transforms of the same frames."""
    r = _mean_rotation(np.stack([t.rotation for t in ts]))
    return Transform.from_rt(r, np.mean([t.translation for t in ts], axis=0), ts[0].to_frame, ts[0].from_frame)


# --- the whole solve --------------------------------------------------------------------------------
@dataclass(frozen=True)
class HandEyeResult:
    """An eye-in-hand calibration and its diagnostics.

    Attributes
    ----------
    tcp_from_camera : Transform
        Refined hand-eye transform (tcp <- camera_color_optical).
    base_from_board : Transform
        The board in the robot base (by-product).
    closed_form : Transform
        Park & Martin's ``tcp_from_camera`` before refinement.
    names : list of str
        Names of the views used (in order of the per-pose arrays).
    residual_rms_px : (N,) float
        Per-pose RMS corner reprojection error through the calibrated chain, pixels.
    board_in_base_m : (N, 3) float
        Board origin in base seen from each pose alone (``base_from_tcp_i tcp_from_camera camera_from_board_i``).
    board_deviation_mm : (N,) float
        Distance of each per-pose board origin from the refined ``base_from_board``, mm.
    pnp_rms_px : (N,) float
        Per-view PnP reprojection error (detection quality), pixels.
    diversity : PoseDiversity
    outliers : list of str
        Poses whose residual is far above the others (candidates to drop).
    dropped : list of str
        Poses dropped by ``drop_outliers``.
    skipped : list of (str, str)
        Views skipped before solving, with the reason.
    warnings : list of str
    """

    tcp_from_camera: Transform
    base_from_board: Transform
    closed_form: Transform
    names: list
    residual_rms_px: np.ndarray
    board_in_base_m: np.ndarray
    board_deviation_mm: np.ndarray
    pnp_rms_px: np.ndarray
    diversity: PoseDiversity
    outliers: list = field(default_factory=list)
    dropped: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    @property
    def board_spread_mm(self) -> float:
        """RMS distance of the per-pose board origins from their mean, mm."""
        c = self.board_in_base_m - self.board_in_base_m.mean(axis=0)
        return float(np.sqrt(np.mean(np.sum(c**2, axis=1))) * 1000.0)

    @property
    def rms_px(self) -> float:
        return float(np.sqrt(np.mean(self.residual_rms_px**2)))

    def to_rig(self, intrinsics: CameraIntrinsics, *, depth_scale: float = 1e-3, name: str = "camera",
               depth_range_m: tuple[float, float] = (0.07, 2.0)) -> CameraRig:
        """A :class:`CameraRig` carrying this calibration (diagnostics summarised under ``extra``)."""
        return CameraRig(
            intrinsics=intrinsics,
            tcp_from_camera=self.tcp_from_camera,
            depth_scale=depth_scale,
            depth_range_m=depth_range_m,
            name=name,
            extra={"hand_eye": self.summary()},
        )

    def summary(self) -> dict:
        return {
            "method": "park_martin + joint reprojection refinement",
            "n_poses": len(self.names),
            "rms_px": round(self.rms_px, 4),
            "board_spread_mm": round(self.board_spread_mm, 3),
            "rotation_span_deg": round(self.diversity.rotation_span_deg, 2),
            "axis_spans_deg": [round(x, 2) for x in self.diversity.axis_spans_deg],
            "outliers": list(self.outliers),
            "dropped": list(self.dropped),
            "skipped": [f"{n}: {r}" for n, r in self.skipped],
        }

    def to_dict(self) -> dict:
        return {
            "schema_version": 1,
            "units": {"length": "m", "residual": "px", "deviation": "mm", "angle": "deg"},
            "tcp_from_camera": self.tcp_from_camera.to_dict(),
            "base_from_board": self.base_from_board.to_dict(),
            "closed_form_tcp_from_camera": self.closed_form.to_dict(),
            "summary": self.summary(),
            "diversity": self.diversity.to_dict(),
            "per_pose": [
                {
                    "name": n,
                    "residual_rms_px": float(r),
                    "pnp_rms_px": float(p),
                    "board_in_base_m": b.tolist(),
                    "board_deviation_mm": float(d),
                }
                for n, r, p, b, d in zip(
                    self.names, self.residual_rms_px, self.pnp_rms_px, self.board_in_base_m, self.board_deviation_mm,
                    strict=True,
                )
            ],
            "warnings": list(self.warnings),
        }


def _flag_outliers(residual_rms_px: np.ndarray, *, min_px: float = 2.0, k: float = 5.0) -> np.ndarray:
    """Poses whose residual is far above the rest (robust z-score), and at least ``min_px``."""
    med = float(np.median(residual_rms_px))
    mad = float(np.median(np.abs(residual_rms_px - med))) * 1.4826
    thr = max(min_px, 3.0 * med, med + k * mad)
    return residual_rms_px > thr


def per_pose_diagnostics(
    base_from_tcp: Sequence[Transform],
    detections: Sequence[BoardDetection],
    camera_from_board: Sequence[Transform],
    board: CharucoBoardSpec,
    intrinsics: CameraIntrinsics,
    tcp_from_camera: Transform,
    base_from_board: Transform,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pose RMS residual (px), board origin in base (N, 3) m, its deviation from ``base_from_board`` (mm)."""
    obj = board.corners_in_board()
    res, pos = [], []
    for g, d, c in zip(base_from_tcp, detections, camera_from_board, strict=True):
        chain = tcp_from_camera.inverse() @ g.inverse() @ base_from_board
        uv = intrinsics.project(chain.apply(obj[d.ids]))
        res.append(np.sqrt(np.mean(np.sum((uv - d.corners_uv) ** 2, axis=1))))
        pos.append((g @ tcp_from_camera @ c).translation)
    pos = np.array(pos)
    dev = np.linalg.norm(pos - base_from_board.translation, axis=1) * 1000.0
    return np.array(res), pos, dev


def _prepare_views(detections, board, intrinsics, names, *, min_views, min_corners, max_pnp_rms_px, what):
    """Board pose per view; skip (and name) views without a usable board."""
    n = len(detections)
    skipped: list[tuple[str, str]] = []
    used: list[int] = []
    cam_board: list[Transform] = []
    pnp_rms: list[float] = []
    for k, d in enumerate(detections):
        if d is None or len(d) == 0:
            skipped.append((names[k], "no board detected"))
            continue
        if len(d) < min_corners:
            skipped.append((names[k], f"only {len(d)} corners (need {min_corners})"))
            continue
        bp = board_pose(d, board, intrinsics, min_corners=min_corners)
        if bp.rms_px > max_pnp_rms_px:
            skipped.append((names[k], f"board pose reprojection error {bp.rms_px:.2f} px > {max_pnp_rms_px} px"))
            continue
        used.append(k)
        cam_board.append(bp.camera_from_board)
        pnp_rms.append(bp.rms_px)
    for nm, why in skipped:
        log.warning("skipping view %s: %s", nm, why)
    if len(used) < min_views:
        listed = "; ".join(f"{nm}: {why}" for nm, why in skipped) or "none"
        raise CalibrationError(
            f"only {len(used)} usable views of {n}, need at least {min_views} for {what} (skipped: {listed}); "
            "capture more views with the whole board visible (15-25 views recommended)"
        )
    return used, cam_board, pnp_rms, skipped


def solve_eye_in_hand(
    base_from_tcp: Sequence,
    detections: Sequence[BoardDetection | None],
    board: CharucoBoardSpec,
    intrinsics: CameraIntrinsics,
    *,
    names: Sequence[str] | None = None,
    min_views: int = MIN_VIEWS,
    min_corners: int = 6,
    refine: bool = True,
    robot_noise_deg: float | None = 0.02,
    robot_noise_mm: float | None = 0.2,
    drop_outliers: bool = False,
    allow_degenerate: bool = False,
    max_pnp_rms_px: float = 2.0,
) -> HandEyeResult:
    """Calibrate ``tcp_from_camera`` from paired robot poses and board detections (see module docstring).

    Parameters
    ----------
    base_from_tcp : sequence of N Transform or (4, 4) arrays
        Robot poses reported when each image was taken, metres.
    detections : sequence of N BoardDetection or None
        Board corners per image; None (or too few corners) means "board not found" and the view is skipped.
    board : CharucoBoardSpec
    intrinsics : CameraIntrinsics
        Of the colour camera the images came from.
    names : sequence of N str, optional
        View names for messages (image file names).
    robot_noise_deg, robot_noise_mm : float or None
        Per-axis standard deviation of the robot's reported pose (rotation degrees, translation mm).
        When both are given (default 0.02 deg / 0.2 mm, a typical collaborative arm), the refinement
        also estimates a small correction of every robot pose with that Gaussian prior (maximum
        likelihood with noisy robot poses); None for either treats robot poses as exact.
    drop_outliers : bool
        Solve again without the poses flagged as outliers (they are listed in ``dropped``).
    allow_degenerate : bool
        Only warn (loudly) instead of refusing when the rotations are too similar.
    """
    n = len(base_from_tcp)
    if n != len(detections):
        raise CalibrationError(
            f"got {n} robot poses but {len(detections)} images; each image needs exactly one base_from_tcp "
            "(one JSON line per image, in the same order)"
        )
    names = list(names) if names is not None else [f"pose_{k:03d}" for k in range(n)]
    if len(names) != n:
        raise CalibrationError(f"got {len(names)} names for {n} views")
    poses = [as_base_from_tcp(p, index=k) for k, p in enumerate(base_from_tcp)]
    used, cam_board, pnp_rms, skipped = _prepare_views(
        detections, board, intrinsics, names, min_views=min_views, min_corners=min_corners,
        max_pnp_rms_px=max_pnp_rms_px, what="hand-eye",
    )
    warnings = [f"skipped view {nm}: {why}" for nm, why in skipped]
    g = [poses[k] for k in used]
    det = [detections[k] for k in used]
    nm_used = [names[k] for k in used]
    diversity = pose_diversity(g)
    warnings += check_pose_diversity(diversity, allow_degenerate=allow_degenerate)

    closed = park_martin(g, cam_board)
    base_from_board = mean_transform([gi @ closed @ ci for gi, ci in zip(g, cam_board, strict=True)])
    x, w = closed, base_from_board
    if refine:
        m_med = float(np.median([len(d) for d in det]))
        corner_noise_px = max(0.05, float(np.median(pnp_rms)) / np.sqrt(2.0 * max(1.0 - 3.0 / m_med, 0.1)))
        x, w, _ = refine_joint(
            g, det, board, intrinsics, closed, base_from_board,
            robot_noise_deg=robot_noise_deg, robot_noise_mm=robot_noise_mm, corner_noise_px=corner_noise_px,
        )
    res, pos, dev = per_pose_diagnostics(g, det, cam_board, board, intrinsics, x, w)
    flags = _flag_outliers(res)
    outliers = [nm_used[k] for k in np.flatnonzero(flags)]
    if outliers:
        msg = (
            f"outlier poses (residual far above the others): {outliers}; check that their robot pose belongs to "
            "their image"
        )
        log.warning(msg)
        warnings.append(msg)
    result = HandEyeResult(
        x, w, closed, nm_used, res, pos, dev, np.array(pnp_rms), diversity, outliers, [], skipped, warnings
    )
    if drop_outliers and outliers:
        keep = [k for k in range(len(used)) if not flags[k]]
        sub = solve_eye_in_hand(
            [g[k] for k in keep], [det[k] for k in keep], board, intrinsics, names=[nm_used[k] for k in keep],
            min_views=min_views, min_corners=min_corners, refine=refine, robot_noise_deg=robot_noise_deg,
            robot_noise_mm=robot_noise_mm, drop_outliers=False, allow_degenerate=allow_degenerate,
            max_pnp_rms_px=max_pnp_rms_px,
        )
        return HandEyeResult(
            sub.tcp_from_camera, sub.base_from_board, sub.closed_form, sub.names, sub.residual_rms_px,
            sub.board_in_base_m, sub.board_deviation_mm, sub.pnp_rms_px, sub.diversity, sub.outliers,
            outliers, skipped, warnings + sub.warnings,
        )
    return result


def consensus_outliers(
    base_from_tcp: Sequence,
    detections: Sequence[BoardDetection | None],
    board: CharucoBoardSpec,
    intrinsics: CameraIntrinsics,
    names: Sequence[str],
    *,
    inlier_px: float = 5.0,
    min_inliers: int = MIN_VIEWS,
    subset: int = 4,
    max_trials: int = 300,
    seed: int = 0,
) -> tuple[list[str], list[str], float] | None:
    """Views that disagree with the largest self-consistent set of views (RANSAC over Park & Martin).

    When a few pose lines are paired with the wrong images, the joint solution is pulled off by them and
    every view looks bad. Closed-form solutions on small subsets (every subset of ``subset`` views, or
    ``max_trials`` seeded random ones) are scored by how many views they explain within ``inlier_px``;
    the best consensus is re-solved on its inliers.

    Returns
    -------
    (outliers, inliers, inlier_rms_px) or None
        None when no consensus of at least ``min_inliers`` views exists (e.g. a wrong board size makes
        every view disagree) or when every view agrees.
    """
    import itertools

    poses = [as_base_from_tcp(p, index=k) for k, p in enumerate(base_from_tcp)]
    views = []
    for k, d in enumerate(detections):
        if d is None or len(d) < 6:
            continue
        try:
            views.append((k, board_pose(d, board, intrinsics).camera_from_board))
        except CalibrationError:
            continue
    if len(views) < max(min_inliers, subset + 1):
        return None
    g = [poses[k] for k, _ in views]
    det = [detections[k] for k, _ in views]
    cam = [c for _, c in views]
    n = len(views)

    def residuals(idx):
        try:
            x = park_martin([g[i] for i in idx], [cam[i] for i in idx])
            w = mean_transform([g[i] @ x @ cam[i] for i in idx])
            res, _, _ = per_pose_diagnostics(g, det, cam, board, intrinsics, x, w)
        except (CalibrationError, UnitsError, ShapeError):
            return None
        return np.where(np.isfinite(res), res, np.inf)

    combos = list(itertools.combinations(range(n), subset)) if n <= 12 else None
    if combos is None or len(combos) > max_trials:
        rng = np.random.default_rng(seed)
        combos = [tuple(rng.choice(n, subset, replace=False)) for _ in range(max_trials)]
    best, best_key = None, (0, -np.inf)
    for idx in combos:
        res = residuals(idx)
        if res is None:
            continue
        inl = res < inlier_px
        key = (int(inl.sum()), -float(np.median(res[inl])) if inl.any() else -np.inf)
        if key > best_key:
            best, best_key = inl, key
    if best is None or best.sum() < min_inliers:
        return None
    res = residuals(np.flatnonzero(best))
    if res is None:
        return None
    inl = res < inlier_px
    if inl.sum() < min_inliers or inl.all():
        return None
    rms = float(np.sqrt(np.mean(res[inl] ** 2)))
    view_names = [names[k] for k, _ in views]
    return ([view_names[i] for i in np.flatnonzero(~inl)], [view_names[i] for i in np.flatnonzero(inl)], rms)


def evaluate_hand_eye(
    base_from_tcp: Sequence,
    detections: Sequence[BoardDetection | None],
    board: CharucoBoardSpec,
    intrinsics: CameraIntrinsics,
    tcp_from_camera: Transform,
    *,
    names: Sequence[str] | None = None,
    min_views: int = 2,
    min_corners: int = 6,
    max_pnp_rms_px: float = 2.0,
) -> HandEyeResult:
    """Check an existing ``tcp_from_camera`` against new views (nothing about it is re-estimated).

    ``base_from_board`` is fitted with the hand-eye transform held fixed; the per-pose residuals and the
    board-position spread then show how well the calibration explains the views. A good eye-in-hand
    calibration gives residuals near the detection noise (< 1 px) and a board spread of about 1 mm.
    """
    n = len(base_from_tcp)
    if n != len(detections):
        raise CalibrationError(
            f"got {n} robot poses but {len(detections)} images; each image needs exactly one base_from_tcp"
        )
    names = list(names) if names is not None else [f"pose_{k:03d}" for k in range(n)]
    if (tcp_from_camera.to_frame, tcp_from_camera.from_frame) != (TCP, CAMERA):
        raise CalibrationError(f"expected tcp_from_{CAMERA}, got {tcp_from_camera.name}")
    poses = [as_base_from_tcp(p, index=k) for k, p in enumerate(base_from_tcp)]
    used, cam_board, pnp_rms, skipped = _prepare_views(
        detections, board, intrinsics, names, min_views=min_views, min_corners=min_corners,
        max_pnp_rms_px=max_pnp_rms_px, what="a hand-eye check",
    )
    g = [poses[k] for k in used]
    det = [detections[k] for k in used]
    nm_used = [names[k] for k in used]
    w0 = mean_transform([gi @ tcp_from_camera @ ci for gi, ci in zip(g, cam_board, strict=True)])
    _, w, _ = refine_joint(
        g, det, board, intrinsics, tcp_from_camera, w0, robot_noise_deg=None, robot_noise_mm=None,
        fix_tcp_from_camera=True,
    )
    res, pos, dev = per_pose_diagnostics(g, det, cam_board, board, intrinsics, tcp_from_camera, w)
    flags = _flag_outliers(res)
    outliers = [nm_used[k] for k in np.flatnonzero(flags)]
    warnings = [f"skipped view {nm}: {why}" for nm, why in skipped]
    if outliers:
        warnings.append(f"poses poorly explained by the calibration: {outliers}")
    diversity = pose_diversity(g) if len(g) >= 2 else PoseDiversity(0.0, (0.0, 0.0, 0.0), 0.0)
    return HandEyeResult(
        tcp_from_camera, w, tcp_from_camera, nm_used, res, pos, dev, np.array(pnp_rms), diversity, outliers,
        [], skipped, warnings,
    )
