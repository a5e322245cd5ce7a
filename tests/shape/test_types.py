"""ShapeConfig and ShapeEstimate validation."""

from __future__ import annotations

import numpy as np
import pytest

from graspseg.core import (
    BASE,
    CAMERA,
    OBJECT,
    TCP,
    ConfigError,
    FrameMismatchError,
    ShapeError,
    Transform,
    UnitsError,
)
from graspseg.shape import ShapeConfig, ShapeEstimate


def _estimate(**changes) -> ShapeEstimate:
    kw = dict(
        camera_from_object=Transform.from_rt(np.eye(3), [0, 0, 0.5], CAMERA, OBJECT),
        base_from_object=None,
        extents_m=[0.1, 0.05, 0.04],
        principal_axes=np.eye(3),
        footprint_corners_in_camera=np.zeros((4, 3)),
        footprint_size_m=[0.1, 0.05],
        height_m=0.04,
        primitive="box",
        primitive_params={"size_m": np.array([0.1, 0.05, 0.04])},
        primitive_residuals_m={"box": 0.001},
        completed_points_in_camera=np.zeros((10, 3)),
        uncertainty={"position_m": 0.001},
        num_visible_points=6,
    )
    kw.update(changes)
    return ShapeEstimate(**kw)


def test_valid_estimate_is_read_only_and_sliced():
    est = _estimate()
    assert est.extents_m.dtype == np.float64 and not est.extents_m.flags.writeable
    assert len(est.visible_points_in_camera) == 6
    np.testing.assert_allclose(est.centre_in_camera, [0, 0, 0.5])
    np.testing.assert_allclose(est.axes_in_camera, np.eye(3))
    assert est.to_dict()["primitive_params"]["size_m"] == [0.1, 0.05, 0.04]


@pytest.mark.parametrize(
    "changes, error, match",
    [
        ({"camera_from_object": Transform.identity(CAMERA, TCP)}, FrameMismatchError, "camera_from_object must map object"),
        ({"base_from_object": Transform.identity(TCP, OBJECT)}, FrameMismatchError, "base_from_object must map object to base"),
        ({"extents_m": [0.1, 0.05]}, ShapeError, r"extents_m must be \(3,\)"),
        ({"extents_m": [0.1, np.nan, 0.1]}, UnitsError, "extents_m has non-finite"),
        ({"extents_m": [0.1, -0.05, 0.1]}, UnitsError, "must be >= 0 metres"),
        ({"footprint_corners_in_camera": np.zeros((3, 3))}, ShapeError, r"footprint_corners_in_camera must be \(4, 3\)"),
        ({"completed_points_in_camera": np.zeros((5, 2))}, ShapeError, r"must be \(M, 3\)"),
        ({"num_visible_points": 11}, ShapeError, r"num_visible_points=11 must lie in \[0, 10\]"),
        ({"primitive": "cone"}, ConfigError, "primitive 'cone' is not one of"),
        ({"frame_source": "guess"}, ConfigError, "frame_source 'guess' is not one of"),
        ({"height_m": float("inf")}, UnitsError, "height_m=inf is not finite"),
    ],
)
def test_invalid_estimates_raise(changes, error, match):
    with pytest.raises(error, match=match):
        _estimate(**changes)


def test_base_from_object_accepted_with_right_frames():
    est = _estimate(base_from_object=Transform.identity(BASE, OBJECT))
    assert est.to_dict()["base_from_object"]["to_frame"] == BASE


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"min_points": 2}, r"min_points=2; at least 4"),
        ({"completion_spacing_m": 0}, "completion_spacing_m=0.0; give a positive"),
        ({"completion_spacing_m": 0.0001}, "finer than 0.5 mm; use metres"),
        ({"footprint_cell_m": -1}, "footprint_cell_m=-1.0; give a positive"),
        ({"table_clearance_m": -0.001}, "table_clearance_m=-0.001; give a non-negative"),
        ({"depth_noise_b_per_m": float("nan")}, "depth_noise_b_per_m=nan"),
        ({"top_percentile": 20}, r"top_percentile=20; give a percentile in \[50, 100\]"),
        ({"trim_fraction": 0.6}, r"trim_fraction=0.6; give a fraction in \[0, 0.5\)"),
        ({"min_coverage": 1.5}, r"min_coverage=1.5; give a fraction"),
        ({"min_rim_coverage": -0.1}, r"min_rim_coverage=-0.1; give a fraction"),
        ({"min_component_fraction": 2}, r"min_component_fraction=2; give a fraction"),
        ({"max_points": 50}, r"max_points=50; give 0 \(keep all\) or at least 100"),
        ({"max_fit_points": 10}, r"max_fit_points=10 \(want >= 50\)"),
        ({"primitives": ("box", "cone")}, r"primitives=\['box', 'cone'\]; choose one or more of"),
        ({"primitives": ()}, r"primitives=\[\]; choose one or more"),
    ],
)
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ShapeConfig(**kwargs)


def test_config_noise_model():
    cfg = ShapeConfig(depth_noise_a_m=0.001, depth_noise_b_per_m=0.004)
    assert cfg.depth_sigma_m(0.5) == pytest.approx(0.002)
    assert ShapeConfig(primitives=["box"]).primitives == ("box",)
