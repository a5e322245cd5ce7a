from __future__ import annotations

import cv2
import numpy as np
import pytest

from calibration.board import BoardDetection, board_pose, detect_board
from calibration.handeye import (
    evaluate_hand_eye,
    opencv_hand_eye,
    park_martin,
    pose_diversity,
    solve_eye_in_hand,
)
from calibration.synthetic import make_hand_eye_dataset
from graspseg.capture.images import read_color
from graspseg.core.errors import CalibrationError
from graspseg.core.transform import BASE, CAMERA, TCP, Transform


def _errors(t: Transform, truth: Transform) -> tuple[float, float]:
    dt, dr = t.distance_to(truth)
    return dt * 1000.0, float(np.degrees(dr))


def test_park_martin_is_exact_without_noise():
    ds = make_hand_eye_dataset(2, n_poses=6, corner_noise_px=0.0, robot_noise_deg=0.0, robot_noise_mm=0.0)
    x = park_martin(ds.base_from_tcp, ds.camera_from_board)
    mm, deg = _errors(x, ds.tcp_from_camera)
    assert mm < 1e-6 and deg < 1e-6


@pytest.mark.skipif(not hasattr(cv2, "calibrateHandEye"), reason="OpenCV without calibrateHandEye (5.x)")
def test_park_martin_agrees_with_opencv_park_in_rotation(dataset):
    cam = [board_pose(d, dataset.board, dataset.intrinsics).camera_from_board for d in dataset.detections]
    ours = park_martin(dataset.base_from_tcp, cam)
    theirs = opencv_hand_eye(dataset.base_from_tcp, cam, method="park")
    _, dr = ours.distance_to(theirs)
    assert np.degrees(dr) < 0.05  # same rotation estimator; translations differ (pairs used)
    assert np.linalg.norm(ours.translation - theirs.translation) < 0.003


def test_opencv_hand_eye_rejects_unknown_method(dataset):
    with pytest.raises(CalibrationError, match="unknown OpenCV hand-eye method"):
        opencv_hand_eye(dataset.base_from_tcp, dataset.camera_from_board, method="magic")


def test_refinement_beats_closed_form_on_average():
    closed, refined = [], []
    for seed in range(3):
        ds = make_hand_eye_dataset(100 + seed, n_poses=12)
        r = solve_eye_in_hand(ds.base_from_tcp, ds.detections, ds.board, ds.intrinsics)
        closed.append(_errors(r.closed_form, ds.tcp_from_camera)[0])
        refined.append(_errors(r.tcp_from_camera, ds.tcp_from_camera)[0])
    assert np.median(refined) < np.median(closed)
    assert np.median(refined) < 1.0


def test_solve_reports_per_pose_diagnostics(dataset):
    r = solve_eye_in_hand(dataset.base_from_tcp, dataset.detections, dataset.board, dataset.intrinsics)
    mm, deg = _errors(r.tcp_from_camera, dataset.tcp_from_camera)
    assert mm < 1.5 and deg < 0.2
    dt, _ = r.base_from_board.distance_to(dataset.base_from_board)
    assert dt < 0.002
    n = len(dataset.detections)
    assert r.residual_rms_px.shape == (n,) and r.board_in_base_m.shape == (n, 3)
    assert 0.1 < r.rms_px < 1.0  # corner + robot noise, no model error
    assert r.board_spread_mm < 2.0
    assert r.outliers == [] and r.skipped == []
    assert r.diversity.rotation_span_deg > 30
    d = r.to_dict()
    assert d["schema_version"] == 1 and len(d["per_pose"]) == n and "units" in d
    rig = r.to_rig(dataset.intrinsics, depth_scale=1e-4)
    assert rig.tcp_from_camera == r.tcp_from_camera and rig.extra["hand_eye"]["n_poses"] == n


def test_modelling_robot_noise_beats_treating_poses_as_exact(dataset):
    exact = solve_eye_in_hand(dataset.base_from_tcp, dataset.detections, dataset.board, dataset.intrinsics,
                              robot_noise_deg=None, robot_noise_mm=None)
    modelled = solve_eye_in_hand(dataset.base_from_tcp, dataset.detections, dataset.board, dataset.intrinsics)
    e_exact = _errors(exact.tcp_from_camera, dataset.tcp_from_camera)
    e_model = _errors(modelled.tcp_from_camera, dataset.tcp_from_camera)
    assert e_model[0] < e_exact[0] and e_model[1] < e_exact[1]


def test_views_without_board_are_skipped_and_named(dataset):
    dets = list(dataset.detections)
    dets[2] = None
    dets[5] = BoardDetection(dets[5].corners_uv[:3], dets[5].ids[:3])
    names = [f"img{k}.png" for k in range(len(dets))]
    r = solve_eye_in_hand(dataset.base_from_tcp, dets, dataset.board, dataset.intrinsics, names=names)
    assert [n for n, _ in r.skipped] == ["img2.png", "img5.png"]
    assert "no board detected" in r.skipped[0][1] and "only 3 corners" in r.skipped[1][1]
    assert "img2.png" not in r.names and len(r.names) == len(dets) - 2
    assert any("img2.png" in w for w in r.warnings)


def test_too_few_views_raise(dataset):
    dets = [None] * 9 + list(dataset.detections[9:])
    with pytest.raises(CalibrationError, match=r"only 3 usable views of 12.*pose_000: no board detected"):
        solve_eye_in_hand(dataset.base_from_tcp, dets, dataset.board, dataset.intrinsics)


def test_count_mismatch_raises(dataset):
    with pytest.raises(CalibrationError, match="got 11 robot poses but 12 images"):
        solve_eye_in_hand(dataset.base_from_tcp[:11], dataset.detections, dataset.board, dataset.intrinsics)


def test_non_rigid_pose_raises(dataset):
    poses = [p.matrix.copy() for p in dataset.base_from_tcp]
    poses[4][:3, :3] *= 1.05
    with pytest.raises(CalibrationError, match=r"robot pose \(pose 4\) is not a rigid transform"):
        solve_eye_in_hand(poses, dataset.detections, dataset.board, dataset.intrinsics)


def test_millimetre_poses_raise(dataset):
    poses = [p.matrix.copy() for p in dataset.base_from_tcp]
    for m in poses:
        m[:3, 3] *= 1000.0
    with pytest.raises(CalibrationError, match=r"millimetres\?.*as millimetres it would be"):
        solve_eye_in_hand(poses, dataset.detections, dataset.board, dataset.intrinsics)


def test_wrong_pose_frames_raise(dataset):
    poses = list(dataset.base_from_tcp)
    poses[0] = Transform(poses[0].matrix, BASE, CAMERA)
    with pytest.raises(CalibrationError, match="expected base_from_tcp"):
        solve_eye_in_hand(poses, dataset.detections, dataset.board, dataset.intrinsics)


def test_degenerate_motion_is_refused_with_the_span():
    ds = make_hand_eye_dataset(4, n_poses=6, max_tilt_deg=3.0, max_roll_deg=2.0)
    with pytest.raises(CalibrationError, match=r"degenerate hand-eye motion: the wrist rotation spans only \d+\.\d deg"):
        solve_eye_in_hand(ds.base_from_tcp, ds.detections, ds.board, ds.intrinsics)
    r = solve_eye_in_hand(ds.base_from_tcp, ds.detections, ds.board, ds.intrinsics, allow_degenerate=True,
                          robot_noise_deg=None)
    assert any(w.startswith("WARNING: degenerate") for w in r.warnings)


def test_weak_motion_warns():
    ds = make_hand_eye_dataset(4, n_poses=6, max_tilt_deg=10.0, max_roll_deg=8.0)
    r = solve_eye_in_hand(ds.base_from_tcp, ds.detections, ds.board, ds.intrinsics, allow_degenerate=True,
                          robot_noise_deg=None)
    assert any(w.startswith("WARNING") and "rotation spans only" in w for w in r.warnings)


def test_pose_diversity_sees_single_axis_rotation():
    poses = [Transform.from_rotvec([0, 0, np.radians(a)], [0.4, 0, 0.3], BASE, TCP) for a in range(0, 60, 10)]
    d = pose_diversity(poses)
    assert d.rotation_span_deg == pytest.approx(50.0, abs=1e-6)
    assert d.axis_spans_deg[0] == pytest.approx(50.0, abs=1e-3)
    assert d.axis_spans_deg[1] < 1e-6
    ds = make_hand_eye_dataset(4, n_poses=8)
    with pytest.raises(CalibrationError, match="about the two widest axes"):
        solve_eye_in_hand(poses + poses[:2], ds.detections, ds.board, ds.intrinsics)


def test_outlier_pose_is_flagged_and_dropped(dataset):
    poses = list(dataset.base_from_tcp)
    bad = 6
    poses[bad] = poses[bad] @ Transform.from_rotvec([0.0, np.radians(2.0), 0.0], [0.01, 0, 0], TCP, TCP)
    names = [f"v{k}" for k in range(len(poses))]
    r = solve_eye_in_hand(poses, dataset.detections, dataset.board, dataset.intrinsics, names=names)
    assert r.outliers == ["v6"]
    assert int(np.argmax(r.residual_rms_px)) == bad
    r2 = solve_eye_in_hand(poses, dataset.detections, dataset.board, dataset.intrinsics, names=names, drop_outliers=True)
    assert r2.dropped == ["v6"] and "v6" not in r2.names
    assert _errors(r2.tcp_from_camera, dataset.tcp_from_camera)[0] < _errors(r.tcp_from_camera, dataset.tcp_from_camera)[0]


def test_evaluate_separates_good_and_bad_calibrations(dataset):
    good = evaluate_hand_eye(dataset.base_from_tcp, dataset.detections, dataset.board, dataset.intrinsics,
                             dataset.tcp_from_camera)
    off = dataset.tcp_from_camera @ Transform.from_rotvec([0, 0, 0], [0.005, 0, 0], CAMERA, CAMERA)
    bad = evaluate_hand_eye(dataset.base_from_tcp, dataset.detections, dataset.board, dataset.intrinsics, off)
    assert good.board_spread_mm < 1.5
    assert bad.board_spread_mm > 2 * good.board_spread_mm
    assert bad.rms_px > good.rms_px
    with pytest.raises(CalibrationError, match="expected tcp_from_camera_color_optical"):
        evaluate_hand_eye(dataset.base_from_tcp, dataset.detections, dataset.board, dataset.intrinsics,
                          dataset.base_from_board)


def test_end_to_end_from_rendered_images(rendered_dir):
    folder, ds = rendered_dir
    files = sorted(p for p in folder.glob("view_*.png"))
    dets = [detect_board(read_color(f), ds.board) for f in files]
    assert all(len(d) >= 20 for d in dets)
    r = solve_eye_in_hand(ds.base_from_tcp, dets, ds.board, ds.intrinsics, names=[f.name for f in files])
    mm, deg = _errors(r.tcp_from_camera, ds.tcp_from_camera)
    assert mm < 1.5 and deg < 0.2
    assert r.rms_px < 1.0
