"""Object catalogue split, mask perturbations, prompts and the Wilson interval (no physics needed)."""

from __future__ import annotations

import numpy as np
import pytest

from graspseg.core.errors import ConfigError, InputError, UnitsError
from graspseg.sim.objects import heldout_fraction, object_set, random_primitive, random_urdf_split
from graspseg.sim.report import summarise, wilson_interval
from graspseg.sim.trials import SimTrialConfig, make_prompt, parse_mask_mode, perturb_mask


def test_split_rule_is_fixed_and_disjoint():
    assert [random_urdf_split(i) for i in range(6)] == ["heldout", "dev", "dev", "dev", "dev", "heldout"]
    assert heldout_fraction() == pytest.approx(0.2)
    pytest.importorskip("pybullet_data")
    dev, held = object_set("dev"), object_set("heldout")
    names_dev = {n for n, _ in dev.urdfs}
    names_held = {n for n, _ in held.urdfs}
    assert not names_dev & names_held
    assert len(held) >= 200 and len(dev) >= 800
    assert "random_urdf_005" in names_held and "random_urdf_006" in names_dev


def test_drawn_objects_are_seeded_and_graspable_size():
    pytest.importorskip("pybullet_data")
    held = object_set("heldout")
    a = [held.draw(np.random.default_rng(3)).to_dict() for _ in range(2)]
    assert a[0] == a[1]
    for s in range(20):
        spec = held.draw(np.random.default_rng(s))
        if spec.source == "primitive":
            assert spec.rgba is not None and spec.primitive["kind"] in ("box", "cylinder", "capsule", "cone")
        else:
            assert 0 < spec.scale < 10
    assert random_primitive(np.random.default_rng(0)).source == "primitive"


def test_object_folder_errors(tmp_path):
    with pytest.raises(InputError, match="neither 'dev', 'heldout' nor an existing folder"):
        object_set(tmp_path / "missing")
    with pytest.raises(InputError, match="contains no \\*.urdf files"):
        object_set(tmp_path)
    with pytest.raises(ConfigError, match="primitive_fraction is a probability"):
        object_set("dev", primitive_fraction=2.0)


def test_mask_modes_and_perturbations():
    assert parse_mask_mode("gt") == ("gt", 0)
    assert parse_mask_mode("noisy:3") == ("noisy", 3)
    for bad in ("noisy", "noisy:x", "noisy:-1", "predicted"):
        with pytest.raises(ConfigError, match="mask mode .* is not understood"):
            parse_mask_mode(bad)
    mask = np.zeros((100, 120), bool)
    mask[30:70, 40:90] = True
    rng = np.random.default_rng(0)
    er, _ = perturb_mask(mask, 3, rng, "erode")
    di, _ = perturb_mask(mask, 3, rng, "dilate")
    ji, _ = perturb_mask(mask, 3, rng, "jitter")
    assert er.sum() == (34 * 44) and not (er & ~mask).any()
    assert di.sum() > mask.sum() and not (mask & ~di).any()
    # jitter moves the boundary by at most k px in both directions
    assert not (ji & ~di).any() and not (er & ~ji).any()
    assert (ji != mask).sum() > 0
    with pytest.raises(ConfigError, match="perturbation mode must be"):
        perturb_mask(mask, 2, rng, "blur")


def test_prompts_from_the_true_mask():
    mask = np.zeros((100, 120), bool)
    mask[30:71, 40:91] = True
    click = make_prompt(mask, "click")
    assert tuple(click.points_uv[0]) == (65.0, 50.0)
    box = make_prompt(mask, "box")
    assert box.box_xyxy.tolist() == [40, 30, 91, 71]


def test_trial_config_errors():
    with pytest.raises(ConfigError, match="unknown sim layout 'heap'"):
        SimTrialConfig(layout="heap")
    with pytest.raises(ConfigError, match="prompt must be one of"):
        SimTrialConfig(prompt="text")


def test_wilson_interval_and_summary():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(3.8415 / 13.8415, abs=1e-4)
    lo, hi = wilson_interval(9, 10)
    assert lo == pytest.approx(0.5958, abs=1e-3) and hi == pytest.approx(0.9821, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(UnitsError, match="need 0 <= successes <= n"):
        wilson_interval(5, 3)
    recs = [{"success": True, "mask_iou": 0.9}, {"success": False, "cause": "no_grasp", "mask_iou": 0.7},
            {"success": False, "cause": "no_grasp"}]
    s = summarise(recs, wall_s=3.0)
    assert s["successes"] == 1 and s["failure_causes"] == {"no_grasp": 2}
    assert s["mask_iou_mean"] == pytest.approx(0.8) and s["trials_per_s"] == pytest.approx(1.0)
    assert s["schema_version"] == 1 and "units" in s
