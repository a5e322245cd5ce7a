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


def test_instances_overlay_writes_why_nothing_was_found_across_the_top():
    from graspseg.segment.types import MaskSet
    from graspseg.viz.overlay import instances_overlay

    color = np.full((120, 200, 3), 90, np.uint8)
    empty = MaskSet(np.zeros((0, 120, 200), bool), np.zeros(0), ())
    support = np.ones((120, 200), bool)
    plain = instances_overlay(color, empty, support=support)
    noted = instances_overlay(color, empty, support=support, note="no object found: the support plane covers 100% "
                                                                  "of the view; nothing rises above it")
    changed = np.any(plain != noted, axis=2)
    rows = np.flatnonzero(changed.any(axis=1))
    assert rows.size and rows.min() < 12 and rows.max() > 20  # wrapped onto more than one line at this width
    assert not changed[rows.max() + 1:].any()
