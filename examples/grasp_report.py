"""Measure the grasp stage against its targets; prints JSON to stdout and a short table to stderr.

Targets measured:
- synthetic exact scenes: width error of accepted grasps against the exact geometry (target <= 3 mm);
- a 3 px dilated mask whose false rim carries mixed (flying) depth: accepted grasps with a contact on the
  false rim, without (k = 0) and with (k = 3 px) the boundary-error margin checks (target: 0 with the checks);
- no accepted grasp below the table clearance (exact plane of the synthetic scenes, fitted plane on real frames);
- objects wider than the stroke: explained empty result;
- the shared real frames: accepted grasps per object, and the planning time (median of repeats).

Usage: ``python examples/grasp_report.py [--scenes 12] [--repeats 5] [--real DIR]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from graspseg.cloud import CloudConfig, build_object_cloud
from graspseg.cloud.types import BandLabel, ObjectCloud, SupportPlane
from graspseg.core import BASE, CAMERA, RGBDFrame, Transform
from graspseg.grasp import GraspConfig, load_gripper, plan_grasps
from graspseg.sim.synthetic import Box, Cylinder, PlacedPrimitive, d435_intrinsics, render, true_grasp_width

FRANKA = load_gripper("franka_hand")


def look_at(target, distance: float, tilt_deg: float, azimuth_deg: float) -> Transform:
    t, a = math.radians(tilt_deg), math.radians(azimuth_deg)
    horiz = np.array([math.cos(a), math.sin(a), 0.0])
    z = math.sin(t) * horiz + math.cos(t) * np.array([0.0, 0.0, -1.0])
    pos = np.asarray(target, float) - distance * z
    x = np.cross(z, horiz if t > 1e-6 else np.array([0.0, 1.0, 0.0]))
    x /= np.linalg.norm(x)
    return Transform.from_rt(np.stack([x, np.cross(z, x), z], 1), pos, BASE, CAMERA).inverse()


def scene(prim: PlacedPrimitive, tilt_deg: float, distance_m: float, azimuth_deg: float):
    intr = d435_intrinsics()
    cam_from_base = look_at((0.0, 0.0, 0.03), distance_m, tilt_deg, azimuth_deg)
    r = render(intr, cam_from_base, [prim], seed=1, color_noise=0.0)
    depth = np.where(np.isfinite(r.depth), r.depth, 0.0).astype(np.float32)
    frame = RGBDFrame(r.color, depth, intr)
    plane = SupportPlane(np.array([0.0, 0.0, 1.0]), 0.0, 1.0, 0.0, 0.0, BASE).transformed(cam_from_base)
    return frame, r.ids == prim.id, plane, cam_from_base




def lowest_height(grasps, base_from_cam: np.ndarray, gripper) -> np.ndarray:
    out = []
    for i in range(len(grasps)):
        boxes = [*gripper.finger_boxes(grasps.opening_m[i]), gripper.palm_box()]
        c = np.array([[b[ix][0], b[iy][1], b[iz][2]] for b in boxes for ix, iy, iz in itertools.product((0, 1), repeat=3)])
        p = c @ grasps.camera_from_grasp[i][:3, :3].T + grasps.camera_from_grasp[i][:3, 3]
        out.append((p @ base_from_cam[:3, :3].T + base_from_cam[:3, 3])[:, 2].min())
    return np.array(out)


def naive_cloud(frame: RGBDFrame, mask: np.ndarray, plane: SupportPlane) -> ObjectCloud:
    """Every mask pixel with depth is a certain object point: no depth check of the rim at all."""
    v, u = np.nonzero(mask & (frame.depth_m > 0))
    z = frame.depth_m[v, u].astype(np.float64)
    rays = frame.intrinsics.ray_image[v, u]
    pts = np.stack([rays[:, 0] * z, rays[:, 1] * z, z], 1).astype(np.float32)
    sv, su = np.nonzero(frame.depth_m[::4, ::4] > 0)
    sz = frame.depth_m[::4, ::4][sv, su].astype(np.float64)
    sr = frame.intrinsics.ray_image[sv * 4, su * 4]
    scene_pts = np.stack([sr[:, 0] * sz, sr[:, 1] * sz, sz], 1).astype(np.float32)
    band = np.where(mask, BandLabel.OBJECT, BandLabel.OUTSIDE).astype(np.uint8)
    return ObjectCloud(pts, np.stack([u, v], 1).astype(np.int32), np.zeros((len(pts), 3), np.uint8),
                       np.full(len(pts), BandLabel.OBJECT, np.uint8), mask, band, scene_pts, plane)


def leaky(frame: RGBDFrame, mask: np.ndarray, r_px: int = 3, blend: float = 0.5):
    """Mask dilated by r_px; the false-rim pixels get depth blended between object and background."""
    import cv2

    dil = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r_px + 1,) * 2)).astype(bool)
    rim = dil & ~mask
    depth = frame.depth_m.copy()
    _, lab = cv2.distanceTransformWithLabels((~mask).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    mv, mu = np.nonzero(mask)
    lut = np.zeros(lab.max() + 1, int)
    lut[lab[mv, mu]] = np.arange(len(mv))
    rv, ru = np.nonzero(rim)
    near = lut[lab[rv, ru]]
    z_obj, z_bg = depth[mv[near], mu[near]], depth[rv, ru]
    depth[rv, ru] = np.where(z_bg > 0, (1 - blend) * z_obj + blend * z_bg, 0.0)
    return RGBDFrame(frame.color, depth, frame.intrinsics), dil, rim


def synthetic(n_scenes: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    widths, low, rim_k0, rim_k3, accepted, per = [], [], 0, 0, 0, []
    for i in range(n_scenes):
        yaw = float(rng.uniform(0, 180))
        if i % 2 == 0:
            size = (float(rng.uniform(0.03, 0.07)), float(rng.uniform(0.05, 0.12)), float(rng.uniform(0.05, 0.15)))
            prim = PlacedPrimitive(1, "box", Box(size), Transform.from_rotvec([0, 0, math.radians(yaw)], [0, 0, size[2] / 2], BASE, "object"), (0.7, 0.2, 0.2))
        else:
            r, h = float(rng.uniform(0.015, 0.035)), float(rng.uniform(0.06, 0.15))
            prim = PlacedPrimitive(1, "can", Cylinder(r, h), Transform.from_rt(np.eye(3), [0, 0, h / 2], BASE, "object"), (0.2, 0.3, 0.7))
        tilt, dist, az = float(rng.uniform(20, 50)), float(rng.uniform(0.35, 0.6)), float(rng.uniform(0, 360))
        frame, mask, plane, cam_from_base = scene(prim, tilt, dist, az)
        cloud = build_object_cloud(frame, mask, CloudConfig(), plane=plane)
        gs = plan_grasps(frame, cloud, None, FRANKA, boundary_error_px=2.0)
        acc = gs.accepted_only()
        accepted += int(len(acc) > 0)
        b = cam_from_base.inverse()
        height = prim.shape.size_m[2] if prim.shape.kind == "box" else prim.shape.height_m
        errs = [abs(acc.width_m[j] - true_grasp_width(prim, b.matrix @ acc.camera_from_grasp[j], FRANKA.finger_width_m,
                                                FRANKA.finger_depth_m, height)) for j in range(len(acc))]
        widths += errs
        low += lowest_height(acc, b.matrix, FRANKA).tolist()
        fr2, dil, rim = leaky(frame, mask)
        cl2 = naive_cloud(fr2, dil, plane)
        counts = []
        for k in (0.0, 3.0):
            g2 = plan_grasps(fr2, cl2, None, FRANKA, GraspConfig(max_grasps=1000), boundary_error_px=k)
            uv = np.rint(g2.contacts_uv).astype(int)
            counts.append(int((rim[uv[..., 1], uv[..., 0]].any(1) & g2.accepted).sum()))
        rim_k0 += counts[0]
        rim_k3 += counts[1]
        per.append({"kind": prim.shape.kind, "accepted": gs.n_accepted, "max_width_error_mm": round(1e3 * max(errs), 2) if errs else None,
                    "rim_contacts_accepted_k0": counts[0], "rim_contacts_accepted_k3": counts[1]})
    # objects wider than the stroke
    wide = PlacedPrimitive(1, "wide", Box((0.12, 0.12, 0.06)), Transform.from_rt(np.eye(3), [0, 0, 0.03], BASE, "object"), (0.5, 0.5, 0.2))
    frame, mask, plane, _ = scene(wide, 30.0, 0.45, 90.0)
    gw = plan_grasps(frame, build_object_cloud(frame, mask, CloudConfig(), plane=plane), None, FRANKA, boundary_error_px=2.0)
    w = np.asarray(widths) * 1e3
    return {
        "scenes": n_scenes,
        "scenes_with_accepted_grasp": accepted,
        "width_error_mm": {"n": len(w), "median": float(np.median(w)) if len(w) else None,
                           "p95": float(np.percentile(w, 95)) if len(w) else None, "max": float(w.max()) if len(w) else None},
        "lowest_hand_point_above_table_mm": float(1e3 * min(low)) if low else None,
        "false_rim_contacts_accepted": {"k=0px (no margin)": rim_k0, "k=3px": rim_k3},
        "wide_box_120mm": {"accepted": gw.n_accepted, "suggestion": gw.suggestion, "rejected_counts": gw.rejected_counts},
        "per_scene": per,
    }


def real(directory: Path, repeats: int) -> dict:
    from graspseg.capture.frame_folder import load_frame_folder, load_ground_truth

    out, times, cpu = {}, [], []
    for d in sorted(p for p in directory.iterdir() if p.is_dir()):
        frame = load_frame_folder(d)
        for obj in load_ground_truth(d):
            cloud = build_object_cloud(frame, obj.mask)
            ts, cs = [], []
            for _ in range(repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                gs = plan_grasps(frame, cloud, None, FRANKA, boundary_error_px=2.0)
                ts.append((time.perf_counter() - t0) * 1e3)
                cs.append((time.process_time() - c0) * 1e3)
            times.append(float(np.median(ts)))
            cpu.append(float(np.median(cs)))
            acc = gs.accepted_only()
            low = None
            if cloud.plane is not None and len(acc):
                n, off = cloud.plane.normal, cloud.plane.offset
                hs = []
                for i in range(len(acc)):
                    boxes = [*FRANKA.finger_boxes(acc.opening_m[i]), FRANKA.palm_box()]
                    c = np.array([[b[ix][0], b[iy][1], b[iz][2]] for b in boxes for ix, iy, iz in itertools.product((0, 1), repeat=3)])
                    p = c @ acc.camera_from_grasp[i][:3, :3].T + acc.camera_from_grasp[i][:3, 3]
                    hs.append(float((p @ n + off).min()))
                low = round(1e3 * min(hs), 2)
            out[f"{d.name}/{obj.name}"] = {
                "points": len(cloud), "candidates": gs.n_candidates, "accepted": gs.n_accepted,
                "best_width_mm": round(float(acc.width_m[0]) * 1e3, 1) if len(acc) else None,
                "best_worst_case_margin_mm": round(float(acc.worst_case_margin_mm[0]), 2) if len(acc) else None,
                "lowest_hand_point_above_plane_mm": low, "rejected_counts": gs.rejected_counts,
                "suggestion": gs.suggestion, "median_ms": round(times[-1], 1), "median_cpu_ms": round(cpu[-1], 1),
            }
    return {"objects": out, "median_plan_ms": float(np.median(times)) if times else None,
            "median_plan_cpu_ms": float(np.median(cpu)) if cpu else None, "repeats": repeats}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/data/real/6dof_graspnet")
    args = ap.parse_args(argv)
    report = {"gripper": FRANKA.name, "boundary_error_px": 2.0, "synthetic": synthetic(args.scenes, args.seed)}
    if args.real.is_dir():
        report["real"] = real(args.real, args.repeats)
    print(json.dumps(report, indent=2))
    s = report["synthetic"]
    print(f"synthetic: width error max {s['width_error_mm']['max']} mm over {s['width_error_mm']['n']} accepted grasps; "
          f"false-rim contacts accepted {s['false_rim_contacts_accepted']}; lowest hand point "
          f"{s['lowest_hand_point_above_table_mm']} mm; wide box accepted {s['wide_box_120mm']['accepted']}: "
          f"{s['wide_box_120mm']['suggestion']}", file=sys.stderr)
    if "real" in report:
        for name, r in report["real"]["objects"].items():
            print(f"{name:28s} accepted {r['accepted']:3d}/{r['candidates']:3d}  width {r['best_width_mm']}  "
                  f"{r['median_ms']:.1f} ms  {r['suggestion'][:60]}", file=sys.stderr)
        print(f"median plan time {report['real']['median_plan_ms']:.1f} ms (CPU {report['real']['median_plan_cpu_ms']:.1f} ms)",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
