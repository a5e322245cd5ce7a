"""Hand-built grasp sets for tests of the grasp set and the exporters."""

from __future__ import annotations

import numpy as np

from graspseg.grasp import GraspSet


def make_set(poses, widths, scores=None, accepted=None, base_from_camera=None) -> GraspSet:
    poses = np.asarray(poses, float).reshape(-1, 4, 4)
    n = len(poses)
    widths = np.asarray(widths, float)
    x = poses[:, :3, 0]
    z = poses[:, :3, 2]
    # contacts half a width either side along x, 1 cm behind the fingertips
    mid = poses[:, :3, 3] - 0.01 * z
    contacts = np.stack([mid - 0.5 * widths[:, None] * x, mid + 0.5 * widths[:, None] * x], 1)
    accepted = np.ones(n, bool) if accepted is None else np.asarray(accepted, bool)
    reasons = np.where(accepted, "", "collision")
    margins = {"opening_mm": np.arange(n, dtype=float), "opening_px": np.arange(n, dtype=float) * 2}
    base = None if base_from_camera is None else np.einsum("ij,njk->nik", base_from_camera, poses)
    return GraspSet(poses, widths, widths + 0.01, z, x, contacts, np.zeros((n, 2, 2)),
                    np.linspace(0.9, 0.5, n) if scores is None else scores, margins, np.arange(n, dtype=float),
                    accepted, reasons, 2.0, base, {"collision": int((~accepted).sum())}, "", "franka_hand", n)


def pose(rot, t):
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = t
    return m
