"""The geometric helpers of the shape stage."""

from __future__ import annotations

import numpy as np
import pytest

from graspseg.shape import fitting as F


def _rect_points(long, short, angle, centre, step=0.001):
    a, b = np.meshgrid(np.arange(-long / 2, long / 2 + 1e-9, step), np.arange(-short / 2, short / 2 + 1e-9, step))
    p = np.column_stack([a.ravel(), b.ravel()])
    c, s = np.cos(angle), np.sin(angle)
    return p @ np.array([[c, s], [-s, c]]) + centre


def test_min_area_rect_recovers_a_rotated_rectangle():
    pts = _rect_points(0.12, 0.05, 0.6, np.array([0.3, -0.1]))
    r = F.min_area_rect(pts)
    assert r.long == pytest.approx(0.12, abs=1e-4) and r.short == pytest.approx(0.05, abs=1e-4)
    np.testing.assert_allclose(r.centre, [0.3, -0.1], atol=1e-4)
    assert abs(abs(r.long_dir @ [np.cos(0.6), np.sin(0.6)]) - 1) < 1e-6
    loc = r.local(pts)
    assert np.abs(loc[:, 0]).max() <= 0.06 + 1e-4 and np.abs(loc[:, 1]).max() <= 0.025 + 1e-4


def test_footprint_rect_cuts_the_noise_tail():
    rng = np.random.default_rng(0)
    pts = _rect_points(0.10, 0.06, 0.2, np.zeros(2), step=0.0007)
    noisy = pts + rng.normal(scale=0.001, size=pts.shape)
    plain = F.min_area_rect(noisy)
    robust = F.footprint_rect(noisy, 0.001)
    assert plain.short > 0.06 + 0.004  # the extreme points of the noise widen the plain rectangle
    assert abs(robust.short - 0.06) < 0.0015 and abs(robust.long - 0.10) < 0.0015


def test_largest_components_drops_detached_points():
    pts = _rect_points(0.05, 0.05, 0.0, np.zeros(2))
    stray = np.array([[0.3, 0.3], [0.31, 0.3]])
    keep = F.largest_components(np.vstack([pts, stray]), 0.003, 0.2)
    assert keep[: len(pts)].all() and not keep[len(pts):].any()
    assert F.largest_components(np.zeros((0, 2)), 0.003, 0.2).shape == (0,)


def test_circle_fits_and_envelope():
    ang = np.linspace(0, np.pi, 60)  # half circle only
    arc = np.column_stack([0.1 + 0.03 * np.cos(ang), 0.2 + 0.03 * np.sin(ang)])
    x = F.circle_geometric(arc, F.kasa_circle(arc) + [0.002, -0.002, 0.003], iterations=20)
    np.testing.assert_allclose(x, [0.1, 0.2, 0.03], atol=1e-6)
    rng = np.random.default_rng(1)
    r = 0.04 * np.sqrt(rng.uniform(size=4000))
    t = rng.uniform(0, 2 * np.pi, 4000)
    disc = np.column_stack([r * np.cos(t), r * np.sin(t)])
    env = F.angular_envelope(disc, np.zeros(2), bins=36)
    assert len(env) == 36 and np.hypot(*env.T).min() > 0.038
    assert F.angular_coverage(disc, np.zeros(2), 0.04, 0.003) == 1.0
    assert F.angular_coverage(disc[disc[:, 0] > 0], np.zeros(2), 0.04, 0.003) == pytest.approx(0.5, abs=0.06)
    assert F.circle_coverage(disc, np.zeros(2), 0.04, 0.004) > 0.95


def test_surface_distances_and_trimmed_rms():
    half = np.array([0.05, 0.03, 0.02])
    p = np.array([[0.05, 0, 0], [0, 0, 0], [0.06, 0, 0], [0.06, 0.04, 0]])
    np.testing.assert_allclose(F.box_surface_distance(p, half), [0, 0.02, 0.01, np.hypot(0.01, 0.01)])
    np.testing.assert_allclose(F.cylinder_surface_distance(np.array([0.03, 0.0, 0.04]), np.array([0.0, 0.0, 0.06]),
                                                           0.03, 0.05), [0.0, 0.03, np.hypot(0.01, 0.01)])
    assert F.trimmed_rms(np.array([1.0, 1.0, 1.0, 100.0]), 0.25) == pytest.approx(1.0)
    assert F.trimmed_rms(np.array([]), 0.1) == float("inf")


def test_rect_coverage_and_sampling():
    pts = _rect_points(0.10, 0.05, 0.0, np.zeros(2))
    r = F.min_area_rect(pts)
    assert F.rect_coverage(pts, r, 0.003) == 1.0
    assert F.rect_coverage(pts[pts[:, 0] < 0], r, 0.003) == pytest.approx(0.5, abs=0.05)
    g = F.sample_rectangle(np.zeros(3), np.array([0.1, 0, 0]), np.array([0, 0.05, 0]), 0.01)
    assert g.shape == (11 * 6, 3) and g[:, 0].max() == pytest.approx(0.1)
    assert len(F.strided_subset(10, 100)) == 10 and len(F.strided_subset(1000, 100)) == 100
