"""ChArUco boards: definition, printable output at exact physical scale, detection and board pose.

The board frame is OpenCV's: origin at the outer corner of the top-left square of the printed board,
x to the right, y down the page, z into the board (so a camera looking at the printed side sees +z
pointing away from it). Corner ``k`` of :meth:`CharucoBoardSpec.corners_in_board` is the chessboard
inner corner with id ``k``.

OpenCV 4.x returns ChArUco corners as (N, 1, 2) and ids as (N, 1); OpenCV 5.x returns (N, 2) and
(N,). Every array that leaves this module is normalised to (N, 2) float64 pixels and (N,) int ids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from graspseg.core.camera import CameraIntrinsics
from graspseg.core.errors import CalibrationError, GraspsegError, ShapeError
from graspseg.core.io import atomic_write_bytes
from graspseg.core.transform import CAMERA, Transform
from graspseg.core.validate import as_number

log = logging.getLogger(__name__)

#: The board's frame name in transforms (``camera_color_optical_from_board``, ``base_from_board``).
BOARD = "board"

_METRES_PER_INCH = 0.0254


def normalize_charuco_arrays(corners, ids) -> tuple[np.ndarray, np.ndarray]:
    """Bring ChArUco corners/ids of any OpenCV version to (N, 2) float64 and (N,) int64.

    Parameters
    ----------
    corners : None or array of shape (N, 1, 2) (OpenCV 4.x) or (N, 2) (OpenCV 5.x)
        Pixels (u, v).
    ids : None or array of shape (N, 1) or (N,)

    Returns
    -------
    corners_uv : (N, 2) float64
    ids : (N,) int64
        Empty arrays (shape (0, 2) and (0,)) when nothing was detected.
    """
    if corners is None or ids is None or len(corners) == 0:
        return np.zeros((0, 2), np.float64), np.zeros((0,), np.int64)
    c = np.asarray(corners, dtype=np.float64).reshape(-1, 2)
    i = np.asarray(ids).reshape(-1).astype(np.int64)
    if c.shape[0] != i.shape[0]:
        raise ShapeError(f"ChArUco detection returned {c.shape[0]} corners but {i.shape[0]} ids")
    return c, i


@dataclass(frozen=True)
class CharucoBoardSpec:
    """A ChArUco board.

    Attributes
    ----------
    squares_x, squares_y : int
        Number of chessboard squares along x (columns) and y (rows).
    square_length_m : float
        Side of one chessboard square, metres (measure it on the print!).
    marker_length_m : float
        Side of one ArUco marker, metres (smaller than the square).
    dictionary : str
        OpenCV predefined dictionary name, e.g. ``"DICT_5X5_100"``.
    """

    squares_x: int = 7
    squares_y: int = 5
    square_length_m: float = 0.04
    marker_length_m: float = 0.03
    dictionary: str = "DICT_5X5_100"

    def __post_init__(self) -> None:
        for name in ("squares_x", "squares_y", "square_length_m", "marker_length_m"):
            try:
                v = as_number(getattr(self, name), field=f"board {name}",
                              unit="squares" if name.startswith("squares") else "metres")
            except GraspsegError as e:
                raise CalibrationError(str(e)) from None
            if name.startswith("squares") and not (v.is_integer() and v <= 100):
                raise CalibrationError(f"board {name} is {v:g}; expected a whole number of squares from 3 to 100")
        if not isinstance(self.dictionary, str):
            raise CalibrationError(f"board dictionary is {self.dictionary!r}; expected a name such as 'DICT_5X5_100'")
        if int(self.squares_x) < 3 or int(self.squares_y) < 3:
            raise CalibrationError(
                f"a ChArUco board needs at least 3x3 squares, got {self.squares_x}x{self.squares_y}"
            )
        object.__setattr__(self, "squares_x", int(self.squares_x))
        object.__setattr__(self, "squares_y", int(self.squares_y))
        sq, mk = float(self.square_length_m), float(self.marker_length_m)
        if not (0.002 <= sq <= 0.5):
            raise CalibrationError(
                f"square_length_m={sq} is outside 0.002..0.5 m; board sizes are in metres (40 mm = 0.04)"
            )
        if not (0 < mk < sq):
            raise CalibrationError(
                f"marker_length_m={mk} must be positive and smaller than square_length_m={sq} (metres)"
            )
        object.__setattr__(self, "square_length_m", sq)
        object.__setattr__(self, "marker_length_m", mk)
        if not hasattr(cv2.aruco, str(self.dictionary)):
            raise CalibrationError(
                f"unknown ArUco dictionary {self.dictionary!r}; use an OpenCV name such as 'DICT_5X5_100', "
                "'DICT_4X4_50' or 'DICT_6X6_250'"
            )
        n_markers = (self.squares_x * self.squares_y) // 2
        dict_size = int(
            cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary)).bytesList.shape[0]
        )
        if n_markers > dict_size:
            raise CalibrationError(
                f"a {self.squares_x}x{self.squares_y} board needs {n_markers} markers but {self.dictionary} has "
                f"{dict_size}; pick a larger dictionary"
            )

    # --- geometry --------------------------------------------------------------------------------
    @property
    def size_m(self) -> tuple[float, float]:
        """(width, height) of the chessboard area in metres (without the white margin)."""
        return self.squares_x * self.square_length_m, self.squares_y * self.square_length_m

    @property
    def n_corners(self) -> int:
        return (self.squares_x - 1) * (self.squares_y - 1)

    def corners_in_board(self) -> np.ndarray:
        """(n_corners, 3) float64 inner-corner positions in the board frame, metres; row k has id k."""
        nx, ny = self.squares_x - 1, self.squares_y - 1
        ix, iy = np.meshgrid(np.arange(nx), np.arange(ny))
        xy = np.stack([(ix.ravel() + 1), (iy.ravel() + 1)], axis=1) * self.square_length_m
        return np.concatenate([xy, np.zeros((xy.shape[0], 1))], axis=1)

    def outline_in_board(self) -> np.ndarray:
        """(4, 3) float64 outer corners of the chessboard area (board frame, metres), clockwise."""
        w, h = self.size_m
        return np.array([[0, 0, 0], [w, 0, 0], [w, h, 0], [0, h, 0]], dtype=np.float64)

    @cached_property
    def cv_board(self):
        """The OpenCV ``CharucoBoard`` object."""
        d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        return cv2.aruco.CharucoBoard(
            (self.squares_x, self.squares_y), self.square_length_m, self.marker_length_m, d
        )

    def to_dict(self) -> dict:
        return {
            "squares_x": self.squares_x,
            "squares_y": self.squares_y,
            "square_length_m": self.square_length_m,
            "marker_length_m": self.marker_length_m,
            "dictionary": self.dictionary,
        }

    @classmethod
    def from_dict(cls, d: dict) -> CharucoBoardSpec:
        if not isinstance(d, dict):
            raise CalibrationError(f"a board definition must be a mapping, got {type(d).__name__}")
        unknown = set(d) - set(cls().to_dict())
        if unknown:
            raise CalibrationError(
                f"unknown board field(s) {sorted(unknown)}; allowed: {sorted(cls().to_dict())} (lengths in metres)"
            )
        return cls(**d)

    # --- printable output ------------------------------------------------------------------------
    def render(self, pixels_per_m: float, margin_m: float = 0.01) -> np.ndarray:
        """Board image (H, W) uint8 with a white margin, at ``pixels_per_m`` (exact: pixel = length / px size).

        The chessboard area spans exactly ``round(size_m * pixels_per_m)`` pixels; choose ``pixels_per_m``
        so that ``square_length_m * pixels_per_m`` is an integer for a print without resampling.
        """
        w_m, h_m = self.size_m
        w_px, h_px = round(w_m * pixels_per_m), round(h_m * pixels_per_m)
        m_px = round(margin_m * pixels_per_m)
        img = self.cv_board.generateImage((w_px, h_px), marginSize=0, borderBits=1)
        return cv2.copyMakeBorder(img, m_px, m_px, m_px, m_px, cv2.BORDER_CONSTANT, value=255)

    def _printable(self, dpi: float, margin_m: float) -> np.ndarray:
        try:
            dpi = as_number(dpi, field="dpi", unit="dots per inch")
            margin_m = as_number(margin_m, field="margin", unit="metres")
        except GraspsegError as e:
            raise CalibrationError(str(e)) from None
        if not 50 <= dpi <= 2400:
            raise CalibrationError(f"dpi {dpi:g} is outside 50..2400; printers print at 300-1200 dpi")
        if not 0 <= margin_m <= 0.1:
            raise CalibrationError(f"margin {margin_m * 1000:g} mm is outside 0..100 mm (the margin is in metres here)")
        img = self.render(dpi / _METRES_PER_INCH, margin_m)
        m_px = round(margin_m * dpi / _METRES_PER_INCH)
        if margin_m >= 0.005:  # caption in the bottom margin
            text = (
                f"ChArUco {self.squares_x}x{self.squares_y} {self.dictionary} square {self.square_length_m * 1000:.1f} mm "
                f"marker {self.marker_length_m * 1000:.1f} mm - print at 100%, measure a square"
            )
            scale = 0.35 * m_px / 22.0
            cv2.putText(img, text, (m_px, img.shape[0] - m_px // 3), cv2.FONT_HERSHEY_SIMPLEX, scale, 150,
                        max(1, round(scale * 1.5)), cv2.LINE_AA)
        return img

    def write_png(self, path: str | Path, dpi: float = 300.0, margin_m: float = 0.01) -> Path:
        """Write the board as a PNG at ``dpi`` with the DPI stored in the file (print at 100 %)."""
        return atomic_write_bytes(path, _encode(self._printable(dpi, margin_m), "PNG", dpi))

    def write_pdf(self, path: str | Path, dpi: float = 600.0, margin_m: float = 0.01) -> Path:
        """Write a one-page PDF whose page is exactly the board plus margin (print at 100 %, no scaling).

        The page size is ``pixels / dpi`` inches, so it matches the physical size to half a pixel
        (0.02 mm at 600 dpi).
        """
        return atomic_write_bytes(path, _encode(self._printable(dpi, margin_m), "PDF", dpi))


def _encode(img: np.ndarray, fmt: str, dpi: float) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    if fmt == "PDF":
        Image.fromarray(img).save(buf, format="PDF", resolution=float(dpi))
    else:
        Image.fromarray(img).save(buf, format="PNG", dpi=(dpi, dpi))
    return buf.getvalue()


@dataclass(frozen=True)
class BoardDetection:
    """ChArUco corners found in one image.

    Attributes
    ----------
    corners_uv : (N, 2) float64
        Sub-pixel corner positions, pixels (u, v).
    ids : (N,) int64
        Corner ids (rows of :meth:`CharucoBoardSpec.corners_in_board`).
    n_markers : int
        ArUco markers found.
    """

    corners_uv: np.ndarray
    ids: np.ndarray
    n_markers: int = 0

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def detect_board(image: np.ndarray, board: CharucoBoardSpec) -> BoardDetection:
    """Detect ChArUco corners in an (H, W) or (H, W, 3) RGB uint8 image (any OpenCV 4.7+/5.x)."""
    img = np.asarray(image)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    if img.ndim != 2:
        raise ShapeError(f"image must be (H, W) or (H, W, 3), got {np.asarray(image).shape}")
    if img.dtype != np.uint8:
        raise ShapeError(f"image must be uint8, got {img.dtype}")
    detector = cv2.aruco.CharucoDetector(board.cv_board)
    corners, ids, marker_corners, _ = detector.detectBoard(img)
    c, i = normalize_charuco_arrays(corners, ids)
    return BoardDetection(c, i, 0 if marker_corners is None else len(marker_corners))


@dataclass(frozen=True)
class BoardPose:
    """Board pose in one view from PnP.

    Attributes
    ----------
    camera_from_board : Transform
        ``camera_color_optical`` ← ``board``.
    rms_px : float
        RMS reprojection error of the used corners, pixels.
    n_corners : int
    """

    camera_from_board: Transform
    rms_px: float
    n_corners: int


def board_pose(
    detection: BoardDetection, board: CharucoBoardSpec, intrinsics: CameraIntrinsics, *, min_corners: int = 6
) -> BoardPose:
    """Board pose by PnP (iterative, from the IPPE planar start) with its reprojection error."""
    if len(detection) < min_corners:
        raise CalibrationError(
            f"only {len(detection)} ChArUco corners detected, need at least {min_corners} for a board pose; "
            "move closer or show more of the board"
        )
    obj = board.corners_in_board()[detection.ids]
    img = detection.corners_uv
    dist = np.asarray(intrinsics.distortion, np.float64)
    ok, rvec, tvec = cv2.solvePnP(obj, img, intrinsics.K, dist, flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        raise CalibrationError("solvePnP failed for the board; the corners may be collinear (show more of the board)")
    ok, rvec, tvec = cv2.solvePnP(obj, img, intrinsics.K, dist, rvec, tvec, True, flags=cv2.SOLVEPNP_ITERATIVE)
    proj, _ = cv2.projectPoints(obj, rvec, tvec, intrinsics.K, dist)
    rms = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - img) ** 2, axis=1))))
    t = Transform.from_rotvec(rvec.ravel(), tvec.ravel(), CAMERA, BOARD)
    return BoardPose(t, rms, len(detection))
