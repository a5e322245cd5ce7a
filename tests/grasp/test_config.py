import pytest

from graspseg.core.config import from_dict
from graspseg.core.errors import ConfigError
from graspseg.grasp import GraspConfig


def test_defaults_and_from_dict():
    c = from_dict(GraspConfig, {"friction_coefficient": 0.3, "side_tilts_deg": [30, 90], "boundary_error_px": 2})
    assert c.friction_coefficient == 0.3 and c.side_tilts_deg == (30.0, 90.0) and c.boundary_error_px == 2.0
    assert GraspConfig().boundary_error_px is None


@pytest.mark.parametrize("kw, match", [
    ({"side_tilts_deg": (120.0,)}, "from below the table"),
    ({"top_down": False, "side_tilts_deg": ()}, "no approach enabled"),
    ({"friction_coefficient": 0.0}, "friction_coefficient must be > 0"),
    ({"clearance_m": -0.001}, "clearance_m must be >= 0"),
    ({"clearance_m": 5.0}, "implausible"),
    ({"n_offsets": 0}, "n_offsets must be an integer >= 1"),
    ({"boundary_error_px": -1.0}, "boundary_error_px must be in"),
    ({"min_robustness": 1.5}, "fraction in"),
    ({"alternative_min_iou": -0.1}, "IoU in"),
])
def test_bad_config_raises(kw, match):
    with pytest.raises(ConfigError, match=match):
        GraspConfig(**kw)
