"""Camera calibration for graspseg: ChArUco boards, intrinsics, eye-in-hand hand-eye, depth check.

This package writes the :class:`graspseg.core.camera.CameraRig` YAML that graspseg reads; graspseg
never imports it. Command line: ``graspseg-calibrate``.
"""

from .board import (
    BOARD,
    BoardDetection,
    BoardPose,
    CharucoBoardSpec,
    board_pose,
    detect_board,
    normalize_charuco_arrays,
)
from .depth_check import DepthCheckResult, depth_check
from .formats import (
    from_easy_handeye2,
    load_rig,
    parse_static_transform_publisher,
    read_easy_handeye2,
    read_poses_jsonl,
    static_transform_publisher_line,
    to_easy_handeye2,
    write_easy_handeye2,
    write_poses_jsonl,
)
from .handeye import (
    HandEyeResult,
    PoseDiversity,
    evaluate_hand_eye,
    opencv_hand_eye,
    park_martin,
    pose_diversity,
    refine_joint,
    solve_eye_in_hand,
)
from .intrinsics import (
    calibrate_intrinsics,
    check_intrinsics,
    intrinsics_from_camera_info,
    intrinsics_from_realsense,
    load_intrinsics,
)

__all__ = [
    "BOARD", "BoardDetection", "BoardPose", "CharucoBoardSpec", "DepthCheckResult", "HandEyeResult", "PoseDiversity",
    "board_pose", "calibrate_intrinsics", "check_intrinsics", "depth_check", "detect_board", "evaluate_hand_eye",
    "from_easy_handeye2", "intrinsics_from_camera_info", "intrinsics_from_realsense", "load_intrinsics", "load_rig",
    "normalize_charuco_arrays", "opencv_hand_eye", "park_martin", "parse_static_transform_publisher",
    "pose_diversity", "read_easy_handeye2", "read_poses_jsonl", "refine_joint", "solve_eye_in_hand",
    "static_transform_publisher_line", "to_easy_handeye2", "write_easy_handeye2", "write_poses_jsonl",
]
