from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from calibration.board import (
    BoardDetection,
    CharucoBoardSpec,
    board_pose,
    detect_board,
    normalize_charuco_arrays,
)
from calibration.synthetic import default_intrinsics, render_board_view, sample_camera_from_board
from graspseg.core.errors import CalibrationError, ShapeError


def test_normalize_opencv4_and_opencv5_shapes_agree():
    corners = np.arange(10, dtype=np.float32).reshape(5, 2) + 0.5
    ids = np.array([3, 1, 4, 0, 2])
    c4, i4 = normalize_charuco_arrays(corners.reshape(5, 1, 2), ids.reshape(5, 1))  # OpenCV 4.x
    c5, i5 = normalize_charuco_arrays(corners, ids)  # OpenCV 5.x
    assert c4.shape == (5, 2) and i4.shape == (5,)
    np.testing.assert_array_equal(c4, c5)
    np.testing.assert_array_equal(i4, i5)
    c0, i0 = normalize_charuco_arrays(None, None)
    assert c0.shape == (0, 2) and i0.shape == (0,)


def test_normalize_rejects_count_mismatch():
    with pytest.raises(ShapeError, match="3 corners but 2 ids"):
        normalize_charuco_arrays(np.zeros((3, 1, 2)), np.zeros((2, 1)))


def test_corners_match_opencv_board(board):
    ours = board.corners_in_board()
    cv = np.asarray(board.cv_board.getChessboardCorners()).reshape(-1, 3)
    np.testing.assert_allclose(ours, cv, atol=1e-9)
    assert ours.shape == (board.n_corners, 3)


def test_render_has_exact_physical_scale(board):
    ppm = 5000.0
    img = board.render(ppm, margin_m=0.01)
    w, h = board.size_m
    assert img.shape == (round((h + 0.02) * ppm), round((w + 0.02) * ppm))
    # the top-left square of the chessboard area is black, the margin white
    m = round(0.01 * ppm)
    sq = round(board.square_length_m * ppm)
    assert img[m + sq // 2, m + sq // 2] == 0 and img[m // 2, m // 2] == 255


def test_png_and_pdf_carry_the_physical_size(board, tmp_path):
    png = board.write_png(tmp_path / "b.png", dpi=300, margin_m=0.01)
    with Image.open(png) as im:
        dpi = im.info["dpi"]
        width_m = im.size[0] / dpi[0] * 0.0254
    assert dpi[0] == pytest.approx(300, abs=0.01)
    assert width_m == pytest.approx(board.size_m[0] + 0.02, abs=0.0003)
    pdf = board.write_pdf(tmp_path / "b.pdf", dpi=600, margin_m=0.01)
    box = re.search(rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", pdf.read_bytes())
    assert box is not None
    w_pt, h_pt = float(box.group(3)), float(box.group(4))
    assert w_pt / 72 * 0.0254 == pytest.approx(board.size_m[0] + 0.02, abs=0.0002)
    assert h_pt / 72 * 0.0254 == pytest.approx(board.size_m[1] + 0.02, abs=0.0002)


def test_detect_rendered_board_and_pose(board):
    intr = default_intrinsics()
    rng = np.random.default_rng(3)
    truth = sample_camera_from_board(rng, board, intr)
    img = render_board_view(board, intr, truth, rng=rng)
    det = detect_board(img, board)
    assert len(det) >= board.n_corners - 2
    assert det.corners_uv.shape == (len(det), 2) and det.ids.ndim == 1
    expected = intr.project(truth.apply(board.corners_in_board()[det.ids]))
    assert np.abs(expected - det.corners_uv).max() < 0.5
    pose = board_pose(det, board, intr)
    dt, dr = pose.camera_from_board.distance_to(truth)
    assert dt < 0.002 and np.degrees(dr) < 0.3
    assert pose.rms_px < 0.5


def test_detect_nothing_on_blank_image(board):
    det = detect_board(np.full((480, 640, 3), 128, np.uint8), board)
    assert len(det) == 0


def test_detect_rejects_float_image(board):
    with pytest.raises(ShapeError, match="uint8"):
        detect_board(np.zeros((48, 64), np.float32), board)


def test_board_pose_needs_enough_corners(board):
    det = BoardDetection(np.zeros((3, 2)), np.arange(3))
    with pytest.raises(CalibrationError, match="only 3 ChArUco corners"):
        board_pose(det, board, default_intrinsics())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"squares_x": 2}, "at least 3x3 squares"),
        ({"square_length_m": 40.0}, "lengths are in metres|sizes are in metres"),
        ({"marker_length_m": 0.05}, "smaller than square_length_m"),
        ({"dictionary": "DICT_NOPE"}, "unknown ArUco dictionary"),
        ({"squares_x": 12, "squares_y": 12, "dictionary": "DICT_4X4_50"}, "needs 72 markers"),
    ],
)
def test_board_spec_errors(kwargs, match):
    with pytest.raises(CalibrationError, match=match):
        CharucoBoardSpec(**kwargs)


def test_board_from_dict_rejects_unknown_fields():
    with pytest.raises(CalibrationError, match="unknown board field"):
        CharucoBoardSpec.from_dict({"squares_x": 5, "square_mm": 40})
    assert CharucoBoardSpec.from_dict(CharucoBoardSpec(5, 4).to_dict()) == CharucoBoardSpec(5, 4)
