"""Off-screen 3D picture of a cloud with grasps (matplotlib, Agg backend)."""

from __future__ import annotations

import io

import numpy as np

from .overlay import gripper_outline_in_grasp, margin_color


def _subsample(points: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    if len(points) <= n:
        return np.arange(len(points))
    return np.random.default_rng(seed).choice(len(points), n, replace=False)


def render_cloud_with_grasps(result, *, size_px: tuple[int, int] = (1200, 560), max_grasps: int = 8) -> np.ndarray:
    """Two views (from the camera, and from the side) of the scene, the object and its best grasps.

    Parameters
    ----------
    result : PerceptionResult
    size_px : (width, height) of the returned image.

    Returns
    -------
    (H, W, 3) uint8 RGB image. Points are drawn in a table-aligned frame (z up) when a support plane
    is known, else in the camera frame.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cloud, grasps, gripper = result.cloud, result.grasps, result.gripper
    # Table-aligned display frame: z = plane normal, so "up" is up in the picture.
    rot = np.eye(3)
    if cloud.plane is not None:
        z = cloud.plane.normal
        x = np.cross([0.0, 1.0, 0.0], z)
        x = x / np.linalg.norm(x) if np.linalg.norm(x) > 1e-6 else np.array([1.0, 0, 0])
        rot = np.stack([x, np.cross(z, x), z])  # rows: display axes in camera frame
    centre = np.asarray(cloud.points_in_camera, float).mean(axis=0) if len(cloud) else np.zeros(3)

    def to_display(p: np.ndarray) -> np.ndarray:
        return (np.asarray(p, float) - centre) @ rot.T

    scene = np.asarray(cloud.scene_points_in_camera, float)
    near = scene[np.linalg.norm(scene - centre, axis=1) < 0.25]
    scene_d = to_display(near[_subsample(near, 6000)])
    obj_idx = _subsample(cloud.points_in_camera, 4000, 1)
    obj_d = to_display(cloud.points_in_camera[obj_idx])
    obj_c = np.asarray(cloud.colors[obj_idx], float) / 255.0
    lim = float(np.clip(np.abs(obj_d).max(initial=0.05) * 1.3, 0.06, 0.25))  # half-size of the shown cube, m
    scene_d = scene_d[(np.abs(scene_d) < lim).all(axis=1)]  # 3D axes do not clip: drop what lies outside

    fig = plt.figure(figsize=(size_px[0] / 100, size_px[1] / 100), dpi=100)
    acc = np.flatnonzero(np.asarray(grasps.accepted, bool))[:max_grasps] if len(grasps) else np.array([], int)
    rej = np.flatnonzero(~np.asarray(grasps.accepted, bool))[:max_grasps] if len(grasps) else np.array([], int)
    for i, (elev, azim, title) in enumerate(((88, -90, "view from above"), (12, -60, "side view"))):
        ax = fig.add_subplot(1, 2, i + 1, projection="3d")
        ax.scatter(*scene_d.T, s=0.3, c="0.6", alpha=0.4, depthshade=False)
        ax.scatter(*obj_d.T, s=1.0, c=obj_c, depthshade=False)
        for idx, faint in [(j, True) for j in rej] + [(j, False) for j in acc[::-1]]:
            pose = np.asarray(grasps.camera_from_grasp[idx])
            color = (0.6, 0.6, 0.6) if faint else tuple(c / 255 for c in margin_color(float(grasps.worst_case_margin_mm[idx])))
            for line in gripper_outline_in_grasp(float(grasps.opening_m[idx]), float(grasps.width_m[idx]), gripper):
                p = to_display(line @ pose[:3, :3].T + pose[:3, 3])
                ax.plot(*p.T, color=color, linewidth=0.6 if faint else 2.0, alpha=0.35 if faint else 1.0)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_zlim(-lim, lim)
        ax.set_box_aspect((1, 1, 1))
        ax.view_init(elev=elev, azim=azim)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("x [m]", fontsize=7)
        ax.set_ylabel("y [m]", fontsize=7)
        ax.set_zlabel("up [m]" if cloud.plane is not None else "z [m]", fontsize=7)
        ax.tick_params(labelsize=6)
    n_acc = int(np.asarray(grasps.accepted).sum()) if len(grasps) else 0
    fig.suptitle(f"{n_acc} accepted of {len(grasps)} grasps (coloured by worst-case margin; grey = rejected); "
                 f"boundary error {result.boundary_error_px:.1f} px", fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    import cv2

    img = cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(img[:, :, ::-1])
