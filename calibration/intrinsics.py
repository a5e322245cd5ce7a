"""Colour-camera intrinsics: load factory values, calibrate from board views, check against board views.

Sources of factory intrinsics: a RealSense camera (``pyrealsense2``, optional extra ``realsense``), a
ROS ``sensor_msgs/CameraInfo`` YAML (``camera_calibration_parsers`` format or a ``ros2 topic echo``
dump), our rig YAML, or our intrinsics JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from graspseg.core.camera import CameraIntrinsics, check_intrinsics_plausible
from graspseg.core.errors import CalibrationError, GraspsegError, MissingDependencyError, UnitsError
from graspseg.core.validate import as_float_array, as_number

from .board import BoardDetection, CharucoBoardSpec, board_pose

log = logging.getLogger(__name__)

_PLUMB_BOB = {"plumb_bob", "rational_polynomial", "brown_conrady", "modified_brown_conrady", "none", ""}


def _check_pixels(intr: CameraIntrinsics, source: str) -> CameraIntrinsics:
    """Refuse intrinsics implausible for their image size (core plausibility check) as CalibrationError."""
    try:
        return check_intrinsics_plausible(intr, source=source)
    except UnitsError as e:
        raise CalibrationError(str(e)) from None


def intrinsics_from_camera_info(d: dict, *, source: str = "CameraInfo") -> CameraIntrinsics:
    """Parse a ROS CameraInfo mapping.

    Accepts the ``camera_calibration_parsers`` YAML (``image_width``, ``camera_matrix: {data}``,
    ``distortion_coefficients: {data}``) and message dumps (``width``, ``k``/``K``, ``d``/``D``).
    Only plumb-bob / rational-polynomial distortion is supported (first five coefficients kept).
    """
    if not isinstance(d, dict):
        raise CalibrationError(f"{source}: expected a CameraInfo mapping, got {type(d).__name__}")

    def data(v):
        return v.get("data") if isinstance(v, dict) else v

    width = d.get("image_width", d.get("width"))
    height = d.get("image_height", d.get("height"))
    k = data(d.get("camera_matrix", d.get("k", d.get("K"))))
    dist = data(d.get("distortion_coefficients", d.get("d", d.get("D")))) or []
    missing = [n for n, v in (("width", width), ("height", height), ("camera matrix K", k)) if v is None]
    if missing:
        raise CalibrationError(
            f"{source}: CameraInfo is missing {missing}; need image_width/width, image_height/height and "
            "camera_matrix.data/k (9 numbers, pixels)"
        )
    try:
        nested = isinstance(k, (list, tuple)) and bool(k) and isinstance(k[0], (list, tuple))
        k = as_float_array(k, (None, None) if nested else (None,), field="camera matrix", unit="pixels",
                           source=source).reshape(-1)
        dist = as_float_array(dist, (None,), field="distortion coefficients", unit="OpenCV coefficients", source=source)
        for name, v in (("width", width), ("height", height)):
            as_number(v, field=name, unit="pixels", source=source)
    except GraspsegError as e:
        raise CalibrationError(str(e)) from None
    if k.size != 9:
        raise CalibrationError(f"{source}: camera matrix has {k.size} numbers, expected 9 (row-major 3x3)")
    model = str(d.get("distortion_model", "plumb_bob")).lower()
    if model not in _PLUMB_BOB:
        raise CalibrationError(
            f"{source}: distortion model {model!r} is not supported; use plumb_bob (k1 k2 p1 p2 k3) or "
            "rectified images with zero distortion"
        )
    if int(width) == 0 or int(height) == 0:
        raise CalibrationError(f"{source}: image size is {width}x{height}; the CameraInfo was never filled in")
    try:
        intr = CameraIntrinsics.from_K(k.reshape(3, 3), width, height, dist)
    except (GraspsegError, ValueError) as e:
        raise CalibrationError(f"{source}: {e}") from None
    return _check_pixels(intr, source)


def intrinsics_from_realsense_profile(rs_intrinsics) -> CameraIntrinsics:
    """Convert a ``pyrealsense2.intrinsics`` (or any object with width, height, fx, fy, ppx, ppy, coeffs)."""
    coeffs = list(getattr(rs_intrinsics, "coeffs", [0.0] * 5))[:5]
    return _check_pixels(
        CameraIntrinsics(
            int(rs_intrinsics.width), int(rs_intrinsics.height), float(rs_intrinsics.fx), float(rs_intrinsics.fy),
            float(rs_intrinsics.ppx), float(rs_intrinsics.ppy), tuple(coeffs + [0.0] * (5 - len(coeffs))),
        ),
        "RealSense",
    )


def intrinsics_from_realsense(serial: str | None = None, width: int = 640, height: int = 480, fps: int = 30) -> CameraIntrinsics:
    """Factory colour intrinsics of a connected RealSense (needs the ``realsense`` extra)."""
    try:
        import pyrealsense2 as rs
    except ImportError:
        raise MissingDependencyError("pyrealsense2", "realsense", "reading RealSense factory intrinsics") from None
    from graspseg.core.errors import DeviceNotConnectedError

    pipe, cfg = rs.pipeline(), rs.config()
    if serial:
        cfg.enable_device(serial)
    cfg.enable_stream(rs.stream.color, width, height, rs.format.rgb8, fps)
    try:
        profile = pipe.start(cfg)
    except RuntimeError as e:
        raise DeviceNotConnectedError(
            f"cannot start a RealSense colour stream {width}x{height}@{fps} (serial {serial or 'any'}): {e}; "
            "check the USB 3 connection or the requested mode"
        ) from None
    try:
        vs = profile.get_stream(rs.stream.color).as_video_stream_profile()
        return intrinsics_from_realsense_profile(vs.get_intrinsics())
    finally:
        pipe.stop()


def load_intrinsics(path: str | Path) -> CameraIntrinsics:
    """Load intrinsics from a rig YAML, a ROS CameraInfo YAML, or an intrinsics JSON (by content)."""
    import yaml

    from .formats import read_text

    path = Path(path)
    text = read_text(path, "intrinsics file")
    try:
        d = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError, RecursionError) as e:
        raise CalibrationError(f"intrinsics file {path} cannot be parsed: {' '.join(str(e).split())}") from None
    if not isinstance(d, dict):
        raise CalibrationError(f"intrinsics file {path} must hold a mapping, got {type(d).__name__}")
    if "intrinsics" in d:
        from .formats import rig_from_dict

        return rig_from_dict(d, source=str(path), need_hand_eye=False).intrinsics
    if any(k in d for k in ("camera_matrix", "k", "K", "image_width")):
        return intrinsics_from_camera_info(d, source=str(path))
    try:
        return _check_pixels(CameraIntrinsics.from_dict(d, source=str(path)), str(path))
    except GraspsegError as e:
        raise CalibrationError(
            f"{e}; give a rig YAML, a ROS CameraInfo YAML or a JSON with width, height, fx, fy, cx, cy"
        ) from None


def camera_info_dict(intr: CameraIntrinsics, camera_name: str = "camera") -> dict:
    """ROS ``camera_calibration_parsers`` YAML mapping for ``intr`` (plumb_bob)."""
    k = intr.K
    p = np.concatenate([k, np.zeros((3, 1))], axis=1)
    return {
        "image_width": intr.width,
        "image_height": intr.height,
        "camera_name": camera_name,
        "camera_matrix": {"rows": 3, "cols": 3, "data": k.ravel().tolist()},
        "distortion_model": "plumb_bob",
        "distortion_coefficients": {"rows": 1, "cols": 5, "data": list(intr.distortion)},
        "rectification_matrix": {"rows": 3, "cols": 3, "data": np.eye(3).ravel().tolist()},
        "projection_matrix": {"rows": 3, "cols": 4, "data": p.ravel().tolist()},
    }


# --- calibration from board views ------------------------------------------------------------------
@dataclass(frozen=True)
class IntrinsicsCalibration:
    """Result of calibrating intrinsics from board views.

    Attributes
    ----------
    intrinsics : CameraIntrinsics
    rms_px : float
        Overall RMS reprojection error, pixels.
    per_view_rms_px : (V,) float
    names : list of str
        Views used.
    std_fx_fy_cx_cy_px : (4,) float
        Standard deviations of fx, fy, cx, cy estimated by OpenCV, pixels.
    skipped : list of (str, str)
    """

    intrinsics: CameraIntrinsics
    rms_px: float
    per_view_rms_px: np.ndarray
    names: list
    std_fx_fy_cx_cy_px: np.ndarray
    skipped: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "schema_version": 1,
            "units": {"intrinsics": "px", "rms": "px"},
            "intrinsics": self.intrinsics.to_dict(),
            "rms_px": self.rms_px,
            "std_fx_fy_cx_cy_px": self.std_fx_fy_cx_cy_px.tolist(),
            "per_view": [{"name": n, "rms_px": float(r)} for n, r in zip(self.names, self.per_view_rms_px, strict=True)],
            "skipped": [f"{n}: {r}" for n, r in self.skipped],
        }


def _usable(detections, names, min_corners):
    names = list(names) if names is not None else [f"view_{k:03d}" for k in range(len(detections))]
    used, skipped = [], []
    for k, d in enumerate(detections):
        if d is None or len(d) < min_corners:
            skipped.append((names[k], "no board detected" if d is None or len(d) == 0 else f"only {len(d)} corners"))
        else:
            used.append(k)
    for nm, why in skipped:
        log.warning("skipping view %s: %s", nm, why)
    return names, used, skipped


def calibrate_intrinsics(
    detections: Sequence[BoardDetection | None],
    board: CharucoBoardSpec,
    image_size: tuple[int, int],
    *,
    names: Sequence[str] | None = None,
    min_views: int = 6,
    min_corners: int = 8,
    distortion: str = "k1k2p1p2",
) -> IntrinsicsCalibration:
    """Calibrate intrinsics with ``cv2.calibrateCameraExtended`` on ChArUco corners.

    Parameters
    ----------
    image_size : (width, height)
    distortion : {"none", "k1k2", "k1k2p1p2", "full"}
        Which distortion terms to estimate (others fixed at 0). With few views prefer fewer terms.
    """
    names, used, skipped = _usable(detections, names, min_corners)
    if len(used) < min_views:
        raise CalibrationError(
            f"intrinsics calibration needs >= {min_views} board views with >= {min_corners} corners, got {len(used)} "
            f"(skipped: {[f'{n}: {r}' for n, r in skipped]}); capture the board tilted in different image regions"
        )
    flags_by_model = {
        "none": cv2.CALIB_FIX_K1 | cv2.CALIB_FIX_K2 | cv2.CALIB_FIX_K3 | cv2.CALIB_ZERO_TANGENT_DIST,
        "k1k2": cv2.CALIB_FIX_K3 | cv2.CALIB_ZERO_TANGENT_DIST,
        "k1k2p1p2": cv2.CALIB_FIX_K3,
        "full": 0,
    }
    if distortion not in flags_by_model:
        raise CalibrationError(f"unknown distortion model {distortion!r}; choose one of {sorted(flags_by_model)}")
    obj = board.corners_in_board()
    obj_pts = [obj[detections[k].ids].astype(np.float32) for k in used]
    img_pts = [detections[k].corners_uv.astype(np.float32) for k in used]
    w, h = image_size
    k0 = np.array([[max(w, h), 0, (w - 1) / 2], [0, max(w, h), (h - 1) / 2], [0, 0, 1]], np.float64)
    rms, k, dist, _, _, std_in, _, per_view = cv2.calibrateCameraExtended(
        obj_pts, img_pts, (w, h), k0, np.zeros(5), flags=flags_by_model[distortion] | cv2.CALIB_USE_INTRINSIC_GUESS
    )
    intr = _check_pixels(CameraIntrinsics.from_K(k, w, h, dist.ravel()[:5]), "calibrated intrinsics")
    std = np.asarray(std_in).ravel()[:4]
    return IntrinsicsCalibration(intr, float(rms), np.asarray(per_view).ravel(), [names[k] for k in used], std, skipped)


@dataclass(frozen=True)
class IntrinsicsCheck:
    """How well given intrinsics explain board views.

    Attributes
    ----------
    per_view_rms_px : (V,) float
        PnP reprojection error per view with the given intrinsics, pixels.
    median_rms_px : float
    refit : IntrinsicsCalibration or None
        Free calibration on the same views (when there are enough) for comparison.
    delta_fx_fy_cx_cy_px : (4,) float or None
        Refit minus given, pixels.
    ok : bool
    message : str
    """

    per_view_rms_px: np.ndarray
    median_rms_px: float
    names: list
    refit: IntrinsicsCalibration | None
    delta_fx_fy_cx_cy_px: np.ndarray | None
    ok: bool
    message: str
    skipped: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "schema_version": 1,
            "units": {"rms": "px", "delta": "px"},
            "ok": self.ok,
            "message": self.message,
            "median_rms_px": self.median_rms_px,
            "per_view": [{"name": n, "rms_px": float(r)} for n, r in zip(self.names, self.per_view_rms_px, strict=True)],
            "delta_fx_fy_cx_cy_px": None if self.delta_fx_fy_cx_cy_px is None else self.delta_fx_fy_cx_cy_px.tolist(),
            "refit": None if self.refit is None else self.refit.to_dict(),
            "skipped": [f"{n}: {r}" for n, r in self.skipped],
        }


def check_intrinsics(
    intrinsics: CameraIntrinsics,
    detections: Sequence[BoardDetection | None],
    board: CharucoBoardSpec,
    *,
    names: Sequence[str] | None = None,
    max_rms_px: float = 1.0,
    max_focal_change: float = 0.01,
    min_corners: int = 8,
) -> IntrinsicsCheck:
    """Check given (e.g. factory) intrinsics against board views.

    Each view's board pose is solved with the given intrinsics; a good calibration explains every view
    with a sub-pixel error. With 6+ views, a free calibration is fitted too and the focal-length change
    is compared with ``max_focal_change`` (fraction; 1 % focal error = 1 % depth-scale error in PnP).
    """
    names, used, skipped = _usable(detections, names, min_corners)
    if not used:
        raise CalibrationError(
            f"no usable board view to check intrinsics against (skipped: {[f'{n}: {r}' for n, r in skipped]})"
        )
    rms = np.array([board_pose(detections[k], board, intrinsics, min_corners=min_corners).rms_px for k in used])
    refit, delta = None, None
    if len(used) >= 6:
        refit = calibrate_intrinsics(
            [detections[k] for k in used], board, intrinsics.size, names=[names[k] for k in used],
            distortion="k1k2p1p2" if intrinsics.has_distortion else "none",
        )
        r = refit.intrinsics
        delta = np.array([r.fx - intrinsics.fx, r.fy - intrinsics.fy, r.cx - intrinsics.cx, r.cy - intrinsics.cy])
    med = float(np.median(rms))
    problems = []
    if med > max_rms_px:
        problems.append(f"median board reprojection error {med:.2f} px > {max_rms_px} px")
    if delta is not None:
        rel = abs(delta[:2]).max() / intrinsics.fx
        if rel > max_focal_change:
            problems.append(
                f"a free calibration moves the focal length by {rel * 100:.2f} % (> {max_focal_change * 100:.1f} %)"
            )
    ok = not problems
    if ok:
        msg = f"intrinsics explain {len(used)} board views with median {med:.2f} px"
    else:
        msg = "intrinsics look wrong: " + "; ".join(problems) + (
            "; recalibrate (graspseg-calibrate intrinsics --images DIR) or check that the intrinsics belong to "
            "this camera and resolution"
        )
    return IntrinsicsCheck(rms, med, [names[k] for k in used], refit, delta, ok, msg, skipped)
