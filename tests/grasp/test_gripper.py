import numpy as np
import pytest

from graspseg.core.errors import ConfigError
from graspseg.grasp import GripperModel, available_grippers, load_gripper

BASE = dict(name="g", min_opening_m=0.0, max_opening_m=0.08, finger_width_m=0.02, finger_depth_m=0.045,
            finger_thickness_m=0.01, palm_width_m=0.2, palm_depth_m=0.06, palm_height_m=0.06)


def test_shipped_grippers_load_with_their_strokes():
    assert {"franka_hand", "robotiq_2f85", "generic"} <= set(available_grippers())
    franka = load_gripper("franka_hand")
    assert franka.max_opening_m == pytest.approx(0.08)
    assert load_gripper("robotiq_2f85").max_opening_m == pytest.approx(0.085)
    assert load_gripper(franka) is franka


def test_user_yaml_round_trip(tmp_path):
    import yaml

    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump({**BASE, "name": "mine", "max_opening_m": 0.05}))
    g = load_gripper(p)
    assert g.name == "mine" and g.max_opening_m == 0.05


@pytest.mark.parametrize("field, value, match", [
    ("max_opening_m", -0.08, "negative"),
    ("min_opening_m", 0.09, "stroke is inverted"),
    ("finger_depth_m", 45.0, "over 2 m"),
    ("finger_width_m", 0.0, "finger_width_m must be > 0"),
    ("palm_width_m", 0.05, "narrower than the stroke"),
    ("finger_thickness_m", "thick", "must be a number"),
    ("palm_height_m", float("nan"), "finite"),
])
def test_bad_gripper_values_raise(field, value, match):
    with pytest.raises(ConfigError, match=match):
        GripperModel(**{**BASE, field: value})


def test_bad_gripper_files_raise(tmp_path):
    p = tmp_path / "g.yaml"
    p.write_text("name: g\nmax_opening_m: 0.08\n")
    with pytest.raises(ConfigError, match="missing gripper field"):
        GripperModel.from_yaml(p)
    p.write_text("name: g\nstroke: 3\n")
    with pytest.raises(ConfigError, match="unknown gripper field"):
        GripperModel.from_yaml(p)
    p.write_text("[1, 2")
    with pytest.raises(ConfigError, match="not valid YAML"):
        GripperModel.from_yaml(p)
    with pytest.raises(ConfigError, match="does not exist"):
        GripperModel.from_yaml(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="unknown gripper 'nope'"):
        load_gripper("nope")
    with pytest.raises(ConfigError, match="non-empty"):
        GripperModel(**{**BASE, "name": " "})


def test_finger_and_palm_boxes_in_grasp_frame():
    g = GripperModel(**BASE)
    f = g.finger_boxes(0.04)
    # left finger spans x in [-0.03, -0.02], right in [0.02, 0.03]; both end at the fingertip plane z = 0
    np.testing.assert_allclose(f[0], [[-0.03, -0.01, -0.045], [-0.02, 0.01, 0.0]])
    np.testing.assert_allclose(f[1], [[0.02, -0.01, -0.045], [0.03, 0.01, 0.0]])
    np.testing.assert_allclose(g.palm_box(), [[-0.1, -0.03, -0.105], [0.1, 0.03, -0.045]])


def test_tcp_closing_axis():
    from graspseg.core import ConfigError
    from graspseg.grasp import load_gripper

    assert load_gripper("franka_hand").tcp_closing_axis == "y"
    assert load_gripper("generic").tcp_closing_axis == "x"
    d = load_gripper("generic").to_dict()
    d.pop("units")
    d["tcp_closing_axis"] = "z"
    with pytest.raises(ConfigError, match="tcp_closing_axis must be 'x' or 'y'"):
        type(load_gripper("generic")).from_dict(d)


def test_franka_grasp_origin_is_at_the_physical_fingertips_and_the_tcp_behind_them():
    """The checks must see the whole finger: panda_hand_tcp (0.1034 m) is the pads' centre, the tips reach 0.112 m."""
    from graspseg.grasp import load_gripper

    franka = load_gripper("franka_hand")
    assert franka.flange_to_fingertip_m == pytest.approx(0.112)
    assert franka.flange_to_fingertip_m - franka.tcp_offset_m == pytest.approx(0.1034)  # panda_hand_tcp
    assert franka.finger_boxes(0.04)[:, 1, 2].max() == 0.0  # nothing beyond the grasp-frame origin
    assert franka.flange_to_fingertip_m - franka.finger_depth_m == pytest.approx(0.067)  # fingers leave the housing


def test_third_party_grippers_load_through_the_registry():
    from graspseg.grasp import GRIPPERS

    mine = load_gripper("generic").to_dict() | {"name": "lab_gripper", "max_opening_m": 0.06}
    mine.pop("units", None)
    GRIPPERS.register("lab_gripper", lambda: GripperModel.from_dict(mine), replace=True)
    GRIPPERS.register("lab_gripper_obj", GripperModel.from_dict(mine | {"name": "lab_gripper_obj"}), replace=True)
    GRIPPERS.register("broken_gripper", lambda: {"max_opening_m": 0.05}, replace=True)
    try:
        assert {"lab_gripper", "lab_gripper_obj"} <= set(available_grippers())
        assert load_gripper("lab_gripper").max_opening_m == 0.06
        assert load_gripper("lab_gripper_obj").name == "lab_gripper_obj"
        with pytest.raises(ConfigError, match="gripper plugin 'broken_gripper' gave a dict, not a GripperModel"):
            load_gripper("broken_gripper")
    finally:
        for name in ("lab_gripper", "lab_gripper_obj", "broken_gripper"):
            GRIPPERS.unregister(name)
    with pytest.raises(ConfigError, match="unknown gripper 'lab_gripper'; known grippers are"):
        load_gripper("lab_gripper")


def test_a_hand_that_stops_short_of_the_flange_is_refused():
    d = load_gripper("franka_hand").to_dict()
    d.pop("units")
    d["palm_height_m"] = 0.060  # 7 mm of hand the collision and table checks would not see
    with pytest.raises(ConfigError, match=r"end 7.0 mm short of the flange .* set palm_height_m = 0.0670"):
        GripperModel.from_dict(d)
    for name in available_grippers():  # every shipped model reaches its flange
        g = load_gripper(name)
        assert g.finger_depth_m + g.palm_height_m == pytest.approx(g.flange_to_fingertip_m, abs=1e-9)
