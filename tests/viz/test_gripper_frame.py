"""The grasp-frame picture of a gripper: geometry from the model, labels from the model, a real image."""

import numpy as np
import pytest

import graspseg.viz.gripper_frame as gf
from graspseg.core.errors import InputError
from graspseg.grasp import GripperModel, available_grippers, load_gripper
from graspseg.plugin import grasp_from_tcp

ODD = dict(name="odd", min_opening_m=0.01, max_opening_m=0.05, finger_width_m=0.015, finger_depth_m=0.03,
           finger_thickness_m=0.006, palm_width_m=0.07, palm_depth_m=0.04, palm_height_m=0.087,
           tcp_offset_m=0.0231, flange_to_fingertip_m=0.117, tcp_closing_axis="y")


@pytest.mark.parametrize("name", ["franka_hand", "robotiq_2f85", "generic", "odd"])
@pytest.mark.parametrize("opening_m", [None, "min", 0.5])
def test_geometry_is_the_models_in_the_grasp_frame(name, opening_m):
    g = GripperModel.from_dict(ODD) if name == "odd" else load_gripper(name)
    o = {None: g.max_opening_m, "min": g.min_opening_m}.get(opening_m, None)
    if o is None:
        o = g.min_opening_m + opening_m * (g.max_opening_m - g.min_opening_m)
    geom = gf.gripper_frame_geometry(g, None if opening_m is None else o)
    assert geom["opening_m"] == o
    boxes = geom["finger_boxes"]
    np.testing.assert_array_equal(boxes, g.finger_boxes(o))
    np.testing.assert_array_equal(geom["palm_box"], g.palm_box())
    # the pads (inner faces) at -/+ opening/2, symmetric about the fingertip centre; the tips at z = 0
    assert boxes[0, 1, 0] == pytest.approx(-o / 2, abs=1e-15) and boxes[1, 0, 0] == pytest.approx(o / 2, abs=1e-15)
    np.testing.assert_allclose(geom["finger_inner_x"], [-o / 2, o / 2], atol=1e-15)
    np.testing.assert_allclose(geom["opening_segment"], [[-o / 2, 0, 0], [o / 2, 0, 0]], atol=1e-15)
    assert boxes[:, 1, 2].max() == 0.0 and boxes[:, 0, 2].min() == pytest.approx(-g.finger_depth_m)
    assert geom["palm_box"][1, 2] == pytest.approx(-g.finger_depth_m)
    # the TCP where the plugin commands it: tcp_offset_m behind the tips, turned as grasp_from_tcp
    np.testing.assert_allclose(geom["tcp_origin"], [0.0, 0.0, -g.tcp_offset_m], atol=1e-15)
    np.testing.assert_array_equal(geom["grasp_from_tcp"], grasp_from_tcp(g).matrix)
    rot = grasp_from_tcp(g).rotation
    for i, k in enumerate("xyz"):
        seg = geom["tcp_axes"][k]
        np.testing.assert_allclose(seg[0], geom["tcp_origin"])
        d = seg[1] - seg[0]
        np.testing.assert_allclose(d / np.linalg.norm(d), rot[:, i], atol=1e-12)
        gseg = geom["grasp_axes"][k]
        np.testing.assert_array_equal(gseg[0], np.zeros(3))
        np.testing.assert_allclose(gseg[1] / np.linalg.norm(gseg[1]), np.eye(3)[i])
    if g.tcp_closing_axis == "y":  # the TCP's y axis is the grasp's closing (+x) axis
        np.testing.assert_allclose(rot[:, 1], [1.0, 0.0, 0.0], atol=1e-12)
    assert geom["flange_z_m"] == pytest.approx(-g.flange_to_fingertip_m)


def test_image_has_the_asked_size_and_is_not_blank():
    img = gf.draw_gripper_frame("franka_hand")
    assert img.shape == (650, 1200, 3) and img.dtype == np.uint8
    small = gf.draw_gripper_frame(load_gripper("generic"), 0.05, size_px=(640, 360))
    assert small.shape == (360, 640, 3)
    for im in (img, small):
        not_white = np.any(im < 240, axis=-1)
        assert 0.05 < not_white.mean() < 0.8  # drawn, not a blank or a filled canvas
        red = (im[..., 0] > 180) & (im[..., 1] < 80) & (im[..., 2] < 80)  # the grasp x axis
        blue = (im[..., 2] > 180) & (im[..., 0] < 80) & (im[..., 1] < 120)  # the approach axis
        assert red.sum() > 30 and blue.sum() > 30


def _px(fig, ax_index, x_mm, z_mm):
    """(row, col) of a grasp-frame point (mm) of the front (0) or side (1) view in the rendered image."""
    fig.canvas.draw()
    col, y = fig.axes[ax_index].transData.transform((x_mm, z_mm))
    return int(round(fig.bbox.height - y)), int(round(col))


def test_a_different_opening_moves_the_fingers_and_only_them():
    g = load_gripper("franka_hand")
    wide, narrow = gf.draw_gripper_frame(g, 0.08), gf.draw_gripper_frame(g, 0.02)
    fig = gf.gripper_frame_figure(g, 0.08)
    # the right finger at the full opening spans x 40..50 mm, z -45..0 mm: a patch in its middle, above the
    # dimension line and the frames
    r, c = _px(fig, 0, 45.0, -35.0)
    patch_w, patch_n = wide[r - 3:r + 4, c - 2:c + 3].astype(int), narrow[r - 3:r + 4, c - 2:c + 3].astype(int)
    assert np.abs(patch_w - patch_n).sum(-1).min() > 60  # finger there when wide, empty when narrow
    r, c = _px(fig, 0, 15.0, -35.0)  # where the right finger of the narrow hand is (10..20 mm)
    assert np.abs(wide[r - 3:r + 4, c - 1:c + 2].astype(int) - narrow[r - 3:r + 4, c - 1:c + 2]).sum(-1).min() > 60
    # the palm and the side view do not move with the opening (the pads are one behind the other there)
    r0, c0 = _px(fig, 0, -90.0, -95.0)
    r1, c1 = _px(fig, 0, 90.0, -60.0)
    np.testing.assert_array_equal(wide[r0:r1, c0:c1], narrow[r0:r1, c0:c1])
    r0, c0 = _px(fig, 1, -30.0, -100.0)
    r1, c1 = _px(fig, 1, 30.0, -50.0)
    np.testing.assert_array_equal(wide[r0:r1, c0:c1], narrow[r0:r1, c0:c1])


def test_the_printed_numbers_come_from_the_model(monkeypatch):
    g = GripperModel.from_dict(ODD)
    seen = []
    real = gf.gripper_frame_labels

    def spy(geom):
        seen.append(geom)
        return real(geom)

    monkeypatch.setattr(gf, "gripper_frame_labels", spy)
    gf.draw_gripper_frame(g, 0.0345)
    assert len(seen) == 1 and seen[0]["tcp_offset_m"] == 0.0231 and seen[0]["opening_m"] == 0.0345
    labels = real(seen[0])
    assert labels["tcp"] == "tcp: 23.1 mm behind the fingertips (tcp_offset_m = 23.1 mm), closes along its y"
    assert labels["opening"] == "opening 34.5 mm"
    assert labels["stroke"].startswith("stroke 10.0–50.0 mm")
    assert labels["finger_depth"] == "finger_depth 30.0 mm"
    assert labels["finger_width"].startswith("finger_width 15.0 mm")
    assert labels["palm_height"] == "palm_height 87.0 mm"
    assert labels["flange"].startswith("flange (117.0 mm")
    # ... and they are what the figure prints
    from matplotlib.text import Text

    texts = " | ".join(t.get_text() for t in gf.gripper_frame_figure(g, 0.0345).findobj(Text))
    for key in ("tcp", "opening", "finger_depth", "finger_width", "palm_height", "flange", "title"):
        assert labels[key] in texts, key
    ahead = real(gf.gripper_frame_geometry(GripperModel.from_dict({**ODD, "tcp_offset_m": -0.004}), None))
    assert ahead["tcp"].startswith("tcp: 4.0 mm ahead of the fingertips (tcp_offset_m = -4.0 mm)")
    at_tips = real(gf.gripper_frame_geometry(load_gripper("robotiq_2f85"), None))
    assert at_tips["tcp"].startswith("tcp: at the fingertip centre (tcp_offset_m = 0.0 mm), closes along its x")


def test_every_shipped_gripper_draws():
    for name in available_grippers():
        assert gf.draw_gripper_frame(name, size_px=(400, 240)).shape == (240, 400, 3)


@pytest.mark.parametrize(("opening_m", "match"), [
    (-0.01, r"opening_m = -0\.01 m is negative or not finite; .*\[0\.0, 0\.08\] m of 'franka_hand'"),
    (float("nan"), r"opening_m = nan m is negative or not finite"),
    (0.081, r"opening_m = 0\.081 m is outside the stroke of 'franka_hand': give a value in \[0\.0, 0\.08\] m$"),
    (80.0, r"outside the stroke .* \(millimetres given\? openings are in metres\)"),
    ("wide", r"opening_m must be a number of metres, got 'wide'"),
])
def test_bad_openings_raise_input_error(opening_m, match):
    with pytest.raises(InputError, match=match):
        gf.draw_gripper_frame("franka_hand", opening_m)
    with pytest.raises(ValueError, match=match):  # InputError is also a ValueError
        gf.gripper_frame_geometry(load_gripper("franka_hand"), opening_m)


def test_below_the_smallest_opening_raises():
    with pytest.raises(InputError, match=r"opening_m = 0\.001 m is outside the stroke of 'generic'.*\[0\.005, 0\.1\]"):
        gf.gripper_frame_geometry("generic", 0.001)
