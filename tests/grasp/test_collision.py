import numpy as np
import pytest

from graspseg.grasp import collision as col
from graspseg.grasp import load_gripper

G = load_gripper("franka_hand")  # fingers 10 mm thick, 20 mm wide, 45 mm deep; palm 204 x 63 x 60 mm


def test_points_in_grasp_frames():
    rot = np.eye(3)[None].repeat(2, 0)
    rot[1] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]  # grasp x = camera y
    loc = col.to_grasp_frames(np.array([[0.1, 0.2, 0.5]]), np.array([[0.1, 0.2, 0.4], [0.0, 0.0, 0.0]]), rot)
    np.testing.assert_allclose(loc[0, 0], [0, 0, 0.1], atol=1e-7)
    np.testing.assert_allclose(loc[1, 0], [0.2, -0.1, 0.5], atol=1e-7)


def test_finger_and_palm_hits_and_clearance():
    pts = np.array([
        [0.025, 0.0, -0.02],   # inside the right finger at opening 40 mm (x in [20, 30] mm)
        [-0.025, 0.0, -0.10],  # inside the left finger's swept volume, behind the fingertips
        [0.0, 0.0, -0.07],     # inside the palm
        [0.0, 0.0, 0.01],      # ahead of the fingertips: free
        [0.012, 0.0, -0.02],   # between the fingers, 8 mm from the right finger
    ], np.float32)
    hits, clear = col.finger_palm_tests(pts[None], np.array([0.04]), G, 0.08)
    assert hits[0] == 3 and clear[0] == pytest.approx(0.0)
    hits, clear = col.finger_palm_tests(pts[None, 3:], np.array([0.04]), G, 0.08)
    assert hits[0] == 0 and clear[0] == pytest.approx(0.008, abs=1e-6)


def test_lowest_height_of_a_top_down_hand():
    # approach straight down (z . n = -1), closing and y horizontal: the fingertips are the lowest point
    low = col.lowest_height(np.array([0.03]), np.array([[0.0, 0.0, -1.0]]), np.array([0.05]), G)
    assert low[0] == pytest.approx(0.03)
    # a side approach (z . n = 0, y vertical): the fingers reach finger_width/2 and the palm palm_depth/2 down
    low = col.lowest_height(np.array([0.05]), np.array([[0.0, 1.0, 0.0]]), np.array([0.05]), G)
    assert low[0] == pytest.approx(0.05 - 0.0315)
