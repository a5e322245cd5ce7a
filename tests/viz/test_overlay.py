"""The grasp overlay: best grasp thick and labelled, rejected ones coloured by reason, a legend, text inside."""

import cv2
import numpy as np

from graspseg.core import CameraIntrinsics
from graspseg.grasp import load_gripper
from graspseg.viz.overlay import _ACCEPTED, REASON_COLORS, draw_grasps, wrap_text
from tests.grasp.helpers import make_set, pose


def _count(img, rgb):
    return int(np.count_nonzero(np.all(img == np.array(rgb, np.uint8), axis=-1)))


def test_best_grasp_thick_reasons_coloured_and_legend():
    k = CameraIntrinsics(width=640, height=480, fx=600.0, fy=600.0, cx=320.0, cy=240.0)
    grasps = make_set([pose(np.eye(3), [0.0, 0.0, 0.5]), pose(np.eye(3), [0.05, 0.0, 0.5]),
                       pose(np.eye(3), [-0.05, 0.0, 0.5])], [0.04, 0.04, 0.04], accepted=[True, False, False])
    object.__setattr__(grasps, "rejected_because", np.array(["", "collision", "table"]))
    img = draw_grasps(np.zeros((480, 640, 3), np.uint8), grasps, k, load_gripper("franka_hand"))
    assert _count(img, _ACCEPTED) > 200  # the best grasp's thick outline and its legend entry
    legend = img[400:, :300]
    # the legend names the accepted colour and both rejection colours used, in their own colours
    for rgb in (_ACCEPTED, REASON_COLORS["collision"], REASON_COLORS["table"]):
        assert _count(legend, rgb) > 0, rgb
    assert _count(legend, REASON_COLORS["friction"]) == 0  # no entry for a reason not drawn


def test_wrapped_text_fits_the_image():
    text = "the object fits the stroke but not with a 3 px boundary error on each side; " * 3
    lines = wrap_text(text, 300)
    assert len(lines) > 1
    assert all(cv2.getTextSize(ln, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0] <= 300 for ln in lines)
    assert " ".join(lines) == " ".join(text.split())
