"""pybullet world, wrist-camera rendering, the floating gripper and grasp execution (extra 'sim')."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("pybullet")
pytest.importorskip("trimesh")

from graspseg.core.errors import ConfigError, UnitsError  # noqa: E402
from graspseg.core.transform import BASE, CAMERA, GRASP, Transform  # noqa: E402
from graspseg.sim.gripper import FloatingGripper, execute_grasp  # noqa: E402
from graspseg.sim.objects import ObjectSpec, object_set  # noqa: E402
from graspseg.sim.synthetic import d435_intrinsics  # noqa: E402
from graspseg.sim.trials import topdown_grasp_from_mask  # noqa: E402
from graspseg.sim.world import SimWorld  # noqa: E402


def _box(size, rgba=(0.8, 0.1, 0.1, 1.0)):
    return ObjectSpec("box", "primitive", primitive={"kind": "box", "size_m": list(size)}, rgba=rgba)


def _topdown(centre_xy, z, closing_yaw):
    x = np.array([np.cos(closing_yaw), np.sin(closing_yaw), 0.0])
    zz = np.array([0.0, 0.0, -1.0])
    return Transform.from_rt(np.stack([x, np.cross(zz, x), zz], 1), [centre_xy[0], centre_xy[1], z], BASE, GRASP)


@pytest.fixture
def box_world():
    w = SimWorld(0)
    o = w.add_object(_box([0.08, 0.045, 0.07]), [0.0, 0.0, 0.036])
    w.settle()
    yield w, o
    w.close()


def test_rendered_depth_and_mask_match_the_geometry(box_world):
    w, o = box_world
    intr = d435_intrinsics(320, 240)
    cam = w.look_at_camera([0, 0, 0.03], distance_m=0.45, tilt_deg=40.0, rng=np.random.default_rng(1))
    view = w.render(cam, intrinsics=intr)
    mask = view.mask_of(o.body_id)
    assert mask.sum() > 500
    v, u = np.nonzero(mask)
    pts = view.camera_from_base.inverse().apply(intr.unproject(np.stack([u, v], 1).astype(float), view.depth_true_m[v, u]))
    local = w.base_from_object(o.body_id).inverse().apply(pts)
    half = np.array([0.04, 0.0225, 0.035])
    outside = np.clip(np.abs(local) - half, 0, None).max(1)
    assert np.quantile(outside, 0.99) < 0.003  # on the box (TinyRenderer depth is float, within mm)
    table = (view.body_ids == w.table_id) & (view.depth_true_m > 0)
    v, u = np.nonzero(table)
    pts = view.camera_from_base.inverse().apply(intr.unproject(np.stack([u, v], 1).astype(float), view.depth_true_m[v, u]))
    near = np.linalg.norm(pts[:, :2], axis=1) < 0.3
    assert np.abs(pts[near, 2]).max() < 0.004
    # the frame carries the wrist pose: base_from_camera through the rig
    assert np.allclose(view.frame.base_from_camera(view.rig.tcp_from_camera).matrix, cam.inverse().matrix, atol=1e-9)


def test_layouts_are_seeded():
    poses = []
    for _ in range(2):
        with SimWorld(7) as w:
            objs = w.build("pile", object_set("dev"), 3)
            poses.append([w.base_from_object(o.body_id).translation.round(6).tolist() for o in objs])
    assert poses[0] == poses[1] and len(poses[0]) >= 2
    with SimWorld(1) as w:
        with pytest.raises(ConfigError, match="unknown sim layout 'heap'"):
            w.build("heap", object_set("dev"), 3)
        with pytest.raises(UnitsError, match="camera tilt_deg must be in"):
            w.look_at_camera([0, 0, 0], tilt_deg=85.0)


def test_topdown_grasp_lifts_the_box_and_survives_the_shake(box_world):
    w, o = box_world
    g = FloatingGripper(w)
    assert g.model.max_opening_m == pytest.approx(0.08)
    res = execute_grasp(w, g, _topdown([0, 0], 0.045, np.pi / 2), 0.07, o.body_id)
    assert res.success, res
    assert res.final_opening_m == pytest.approx(0.045, abs=0.005)
    assert res.lift_m > 0.08


def test_failures_have_causes(box_world):
    w, o = box_world
    g = FloatingGripper(w)
    # fingertips below the table
    assert execute_grasp(w, g, _topdown([0.2, 0], -0.01, 0.0), 0.06, o.body_id).cause == "collision_approach_table"
    # nothing between the fingers
    assert execute_grasp(w, g, _topdown([0.2, 0.2], 0.03, 0.0), 0.06, o.body_id).cause == "empty_close"
    # a neighbour under the palm
    other = w.add_object(_box([0.05, 0.05, 0.12], (0.1, 0.1, 0.8, 1.0)), [0.0, 0.09, 0.061])
    w.settle()
    res = execute_grasp(w, g, _topdown([0, 0.035], 0.03, 0.0), 0.08, o.body_id)
    assert res.cause in ("collision_pregrasp_object", "collision_approach_object")
    assert other.body_id != o.body_id
    with pytest.raises(ConfigError, match="needs base_from_grasp"):
        execute_grasp(w, g, Transform.identity(CAMERA, GRASP), 0.08, o.body_id)


def test_grasp_from_the_true_mask(box_world):
    w, o = box_world
    cam = w.look_at_camera([0, 0, 0.03], distance_m=0.4, tilt_deg=35.0, rng=np.random.default_rng(2))
    view = w.render(cam)
    cfg, opening = topdown_grasp_from_mask(view.frame, view.mask_of(o.body_id), cam.inverse())
    base_from_grasp = cam.inverse() @ Transform(cfg, CAMERA, GRASP)
    assert abs(abs(base_from_grasp.rotation[:, 0] @ w.base_from_object(o.body_id).rotation[:, 1]) - 1) < 0.05
    assert opening == pytest.approx(0.045 + 0.02, abs=0.006)
    assert execute_grasp(w, FloatingGripper(w), base_from_grasp, opening, o.body_id).success


def test_bench_sim_writes_its_outputs(tmp_path, capsys):
    import argparse

    from graspseg.bench import sim as bench_sim

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    bench_sim.register(sub)
    args = parser.parse_args(["sim", "--trials", "2", "--mask", "gt", "--perception", "gt-topdown", "--objects", "dev",
                              "--out", str(tmp_path), "--save-episodes", "--quiet", "--no-depth-noise"])
    assert args.func(args) == 0
    lines = (tmp_path / "trials.jsonl").read_text().splitlines()
    assert len(lines) == 2
    recs = [json.loads(x) for x in lines]
    assert all("success" in r and "cause" in r for r in recs)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["trials"] == 2 and len(summary["success_rate_ci95"]) == 2
    assert json.loads(capsys.readouterr().out)["trials"] == 2
    index = json.loads((tmp_path / "episodes" / "index.json").read_text())
    assert len(index["episodes"]) == 2
    from graspseg.capture.frame_folder import load_frame_folder, load_ground_truth

    folder = tmp_path / "episodes" / index["episodes"][0]["frames"][0]["folder"]
    assert load_frame_folder(folder).width == 640 and load_ground_truth(folder)
    with pytest.raises(ConfigError, match="use it with --mask gt"):
        args = parser.parse_args(["sim", "--perception", "gt-topdown", "--mask", "pred", "--out", str(tmp_path)])
        args.func(args)


@pytest.mark.slow
def test_ground_truth_grasps_succeed_on_heldout_singles(tmp_path):
    from graspseg.sim.trials import SimTrialConfig, ground_truth_perceiver, run_trial

    cfg = SimTrialConfig(layout="single", objects="heldout", mask="gt")
    perceive = ground_truth_perceiver()
    ok = [run_trial(i, cfg, perceive, seed=11).record["success"] for i in range(10)]
    assert sum(ok) >= 6, f"ground-truth top-down grasps succeeded in {sum(ok)}/10 trials"
