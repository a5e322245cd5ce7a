"""Synthetic eye-in-hand data with known ground truth: robot poses, board corners, board images, depth.

The scene: a ChArUco board lies face up on the table in front of the robot; a wrist camera looks at it
from 0.3–0.5 m with the viewing direction tilted up to ``max_tilt_deg`` from the board normal and
rolled up to ``max_roll_deg`` about the optical axis. The robot pose that would put the camera there
is derived from the true ``tcp_from_camera`` and then perturbed with robot noise (per-axis Gaussian,
``robot_noise_deg`` and ``robot_noise_mm``); corners get ``corner_noise_px`` per-coordinate Gaussian
noise. Every random choice comes from one seeded generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from graspseg.core.camera import CameraIntrinsics
from graspseg.core.transform import BASE, CAMERA, TCP, Transform

from .board import BOARD, BoardDetection, CharucoBoardSpec


def default_intrinsics() -> CameraIntrinsics:
    """A D435-like colour camera at 640x480 (no distortion)."""
    return CameraIntrinsics(640, 480, 615.0, 615.0, 319.5, 239.5)


@dataclass(frozen=True)
class SyntheticHandEye:
    """One synthetic eye-in-hand data set.

    Attributes
    ----------
    tcp_from_camera : Transform
        Ground truth.
    base_from_board : Transform
        Ground truth.
    base_from_tcp_true, base_from_tcp : list of Transform
        Exact robot poses and the noisy ones a robot would report.
    camera_from_board : list of Transform
        Exact board pose in each view.
    detections : list of BoardDetection
        Noisy corners (projected, not detected in an image).
    """

    board: CharucoBoardSpec
    intrinsics: CameraIntrinsics
    tcp_from_camera: Transform
    base_from_board: Transform
    base_from_tcp_true: list
    base_from_tcp: list
    camera_from_board: list
    detections: list


def _look_at_rotation(forward: np.ndarray, up_hint: np.ndarray) -> np.ndarray:
    z = forward / np.linalg.norm(forward)
    x = np.cross(up_hint, z)
    if np.linalg.norm(x) < 1e-6:
        x = np.cross(np.array([1.0, 0, 0]), z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


def random_tcp_from_camera(rng: np.random.Generator) -> Transform:
    """A plausible wrist-camera mount: 3–9 cm off the flange axis, optical axis within 25° of tcp z."""
    t = np.array([rng.uniform(-0.09, 0.09), rng.uniform(-0.09, 0.09), rng.uniform(0.02, 0.08)])
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    r = Rotation.from_rotvec(axis * np.radians(rng.uniform(0, 25))) * Rotation.from_rotvec(
        [0, 0, rng.uniform(-np.pi, np.pi)]
    )
    return Transform.from_rt(r.as_matrix(), t, TCP, CAMERA)


def sample_camera_from_board(
    rng: np.random.Generator,
    board: CharucoBoardSpec,
    intrinsics: CameraIntrinsics,
    *,
    max_tilt_deg: float = 35.0,
    max_roll_deg: float = 30.0,
    distance_m: tuple[float, float] = (0.3, 0.5),
    margin_px: float = 15.0,
    max_tries: int = 200,
) -> Transform:
    """A camera pose that sees every board corner at least ``margin_px`` inside the image."""
    w, h = board.size_m
    centre = np.array([w / 2, h / 2, 0.0])
    corners = board.outline_in_board()
    for _ in range(max_tries):
        tilt = np.radians(rng.uniform(0, max_tilt_deg))
        az = rng.uniform(-np.pi, np.pi)
        # Direction from the board towards the camera: board -z is out of the printed side.
        to_cam = np.array([np.sin(tilt) * np.cos(az), np.sin(tilt) * np.sin(az), -np.cos(tilt)])
        target = centre + np.array([rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02), 0.0])
        cam_pos = target + to_cam * rng.uniform(*distance_m)
        r = _look_at_rotation(target - cam_pos, np.array([0.0, -1.0, 0.0]))
        r = r @ Rotation.from_rotvec([0, 0, np.radians(rng.uniform(-max_roll_deg, max_roll_deg))]).as_matrix()
        board_from_camera = Transform.from_rt(r, cam_pos, BOARD, CAMERA)
        camera_from_board = board_from_camera.inverse()
        uv = intrinsics.project(camera_from_board.apply(corners))
        if np.all(np.isfinite(uv)) and np.all(uv >= margin_px) and np.all(
            uv <= np.array([intrinsics.width - 1 - margin_px, intrinsics.height - 1 - margin_px])
        ):
            return camera_from_board
    raise RuntimeError("could not sample a camera pose that sees the whole board; widen the distance range")


def perturb(t: Transform, rng: np.random.Generator, rot_sigma_rad: float, trans_sigma_m: float) -> Transform:
    """Right-multiply by a random small motion (per-axis Gaussian rotation vector and translation)."""
    d = Transform.from_rotvec(rng.normal(0, rot_sigma_rad, 3), rng.normal(0, trans_sigma_m, 3), t.from_frame, t.from_frame)
    return t @ d


def make_hand_eye_dataset(
    seed: int,
    *,
    n_poses: int = 20,
    board: CharucoBoardSpec | None = None,
    intrinsics: CameraIntrinsics | None = None,
    corner_noise_px: float = 0.2,
    robot_noise_deg: float = 0.02,
    robot_noise_mm: float = 0.2,
    max_tilt_deg: float = 35.0,
    max_roll_deg: float = 30.0,
    distance_m: tuple[float, float] = (0.3, 0.5),
) -> SyntheticHandEye:
    """Generate one seeded synthetic eye-in-hand data set (see the module docstring)."""
    rng = np.random.default_rng(seed)
    board = board or CharucoBoardSpec()
    intrinsics = intrinsics or default_intrinsics()
    tcp_from_camera = random_tcp_from_camera(rng)
    # Board face up on the table 0.5 m in front of the robot: board z (into the board) = base -z.
    base_from_board = Transform.from_rt(
        Rotation.from_euler("xz", [np.pi, rng.uniform(-np.pi, np.pi)]).as_matrix(),
        [0.5 + rng.uniform(-0.05, 0.05), rng.uniform(-0.1, 0.1), 0.0],
        BASE,
        BOARD,
    )
    obj = board.corners_in_board()
    ids = np.arange(obj.shape[0])
    true_tcp, noisy_tcp, cam_board, dets = [], [], [], []
    for _ in range(n_poses):
        camera_from_board = sample_camera_from_board(
            rng, board, intrinsics, max_tilt_deg=max_tilt_deg, max_roll_deg=max_roll_deg, distance_m=distance_m
        )
        base_from_tcp = base_from_board @ camera_from_board.inverse() @ tcp_from_camera.inverse()
        true_tcp.append(base_from_tcp)
        noisy_tcp.append(perturb(base_from_tcp, rng, np.radians(robot_noise_deg), robot_noise_mm / 1000.0))
        cam_board.append(camera_from_board)
        uv = intrinsics.project(camera_from_board.apply(obj)) + rng.normal(0, corner_noise_px, (obj.shape[0], 2))
        dets.append(BoardDetection(uv, ids.copy(), n_markers=(board.squares_x * board.squares_y) // 2))
    return SyntheticHandEye(board, intrinsics, tcp_from_camera, base_from_board, true_tcp, noisy_tcp, cam_board, dets)


def render_board_view(
    board: CharucoBoardSpec,
    intrinsics: CameraIntrinsics,
    camera_from_board: Transform,
    *,
    rng: np.random.Generator | None = None,
    pixel_noise: float = 2.0,
    background: int = 90,
    supersample: int = 2,
) -> np.ndarray:
    """Render the printed board into a camera view: (H, W, 3) RGB uint8.

    The generated board image is warped with the plane homography ``K [r1 r2 t]`` into a
    ``supersample``-times larger view and area-averaged down (pixel-centre convention kept), then
    grey background, mild blur and Gaussian pixel noise are added. Distortion is not rendered.
    """
    margin_m = board.square_length_m * 0.5
    ppm = 4000.0
    img = board.render(ppm, margin_m)
    big = intrinsics.scaled(intrinsics.width * supersample, intrinsics.height * supersample)
    # board-image pixel (px, py) -> board metres: X = (px + 0.5) / ppm - margin
    s = np.array([[1 / ppm, 0, 0.5 / ppm - margin_m], [0, 1 / ppm, 0.5 / ppm - margin_m], [0, 0, 1]])
    m = camera_from_board.matrix
    hmat = big.K @ np.stack([m[:3, 0], m[:3, 1], m[:3, 3]], axis=1) @ s
    size = (big.width, big.height)
    warped = cv2.warpPerspective(img, hmat, size, flags=cv2.INTER_LINEAR, borderValue=0)
    mask = cv2.warpPerspective(np.full_like(img, 255), hmat, size, flags=cv2.INTER_LINEAR, borderValue=0)
    a = mask.astype(np.float32) / 255.0
    view = warped.astype(np.float32) * a + background * (1 - a)
    view = cv2.resize(view, (intrinsics.width, intrinsics.height), interpolation=cv2.INTER_AREA)
    view = cv2.GaussianBlur(view, (0, 0), 0.6)
    if rng is not None and pixel_noise > 0:
        view = view + rng.normal(0, pixel_noise, view.shape)
    gray = np.clip(np.round(view), 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def render_plane_depth(
    intrinsics: CameraIntrinsics,
    camera_from_board: Transform,
    *,
    scale_error: float = 0.0,
    bias_m: float = 0.0,
    noise_m: float = 0.0,
    quantum_m: float = 0.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Depth (H, W) float32 metres of the board plane (extended to the table) as a depth camera with
    a scale error ``(1 + scale_error)``, a bias and noise would report it; 0 where the plane is behind."""
    rays = intrinsics.ray_image.astype(np.float64)
    n = camera_from_board.rotation[:, 2]
    d = float(n @ camera_from_board.translation)
    denom = rays[..., 0] * n[0] + rays[..., 1] * n[1] + n[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(np.abs(denom) > 1e-9, d / denom, 0.0)
    z = np.where(z > 0, z, 0.0)
    valid = z > 0
    out = z * (1.0 + scale_error) + bias_m
    if rng is not None and noise_m > 0:
        out = out + rng.normal(0, noise_m, out.shape)
    if quantum_m > 0:
        out = np.round(out / quantum_m) * quantum_m
    return np.where(valid, out, 0.0).astype(np.float32)
