"""CloudConfig validation and depth cleanup (range limits, flying pixels)."""

from __future__ import annotations

import numpy as np
import pytest

from graspseg.cloud import CloudConfig, clean_depth, range_mask, surface_support
from graspseg.core import ConfigError


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"depth_range_m": (1.0, 0.5)}, r"0 <= near < far"),
        ({"depth_range_m": (0.1, 2000.0)}, "metres, not millimetres"),
        ({"depth_range_m": "far"}, "two numbers"),
        ({"flying_b_per_m": -1.0}, r"cloud.flying_b_per_m must be >= 0"),
        ({"plane_threshold_m": 0.0}, "positive distance in metres"),
        ({"flying_min_neighbors": 9}, "8-neighbours"),
        ({"scene_stride_px": 0}, r"cloud.scene_stride_px must be >= 1"),
        ({"band_px": -2}, r"cloud.band_px must be >= 0"),
        ({"plane_min_inlier_ratio": 1.5}, r"fraction in \[0, 1\]"),
    ],
)
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        CloudConfig(**kwargs)


def test_config_is_frozen_and_normalises_range():
    cfg = CloudConfig(depth_range_m=[0.1, 1])
    assert cfg.depth_range_m == (0.1, 1.0)
    with pytest.raises(AttributeError):
        cfg.band_px = 3  # type: ignore[misc]
    assert cfg.surface_tolerance_m(1.0) == pytest.approx(cfg.flying_a_m + cfg.flying_b_per_m)


def test_range_mask_limits():
    d = np.array([[0.0, 0.05, 0.5, 2.5]], np.float32)
    np.testing.assert_array_equal(
        range_mask(d, CloudConfig(depth_range_m=(0.07, 2.0))), [[False, False, True, False]]
    )


def _step_with_flying_column():
    depth = np.full((40, 60), 0.5, np.float32)
    depth[:, :30] = 0.4  # a true step edge between columns 29 and 30
    depth[:, 30] = 0.45  # a column of mixed-depth (flying) pixels between the two surfaces
    depth[10, 50] = 0.3  # an isolated speckle on the far surface
    return depth


def test_flying_pixels_removed_true_edges_kept():
    depth = _step_with_flying_column()
    cfg = CloudConfig()
    support = surface_support(depth, cfg)
    assert support[20, 30] == 2  # only its vertical neighbours agree
    assert support[20, 29] == 5 and support[20, 31] == 5  # rim pixels of both true surfaces
    clean, stats = clean_depth(depth, cfg)
    assert np.all(clean[:, 30] == 0)
    assert clean[10, 50] == 0
    assert np.all(clean[:, 29] == np.float32(0.4)) and np.all(clean[1:-1, 31] == np.float32(0.5))
    assert stats["flying_px"] == 40 + 1
    assert stats["kept_px"] == depth.size - 41
    # the input is not modified
    assert depth[20, 30] == np.float32(0.45)


def test_flying_removal_can_be_disabled_and_range_applies():
    depth = _step_with_flying_column()
    depth[0, 0] = 3.0
    clean, stats = clean_depth(depth, CloudConfig(flying_min_neighbors=0))
    assert stats["flying_px"] == 0 and stats["out_of_range_px"] == 1
    assert clean[0, 0] == 0 and clean[20, 30] == np.float32(0.45)


def test_stride_scales_the_tolerance():
    # a slanted surface sampled every 4th pixel: neighbours differ 4x more than at full resolution
    z = 0.5 + 0.003 * np.arange(
        60, dtype=np.float32
    )  # 3 mm per pixel: 12 mm per sample, beyond the 1-px tolerance
    depth = np.tile(z[::4], (10, 1))
    cfg = CloudConfig()
    assert surface_support(depth, cfg)[5, 5] < 3
    assert surface_support(depth, cfg, stride_px=4)[5, 5] == 8
