"""Box tests of gripper geometry against point sets, vectorised over many grasps.

Boxes are axis-aligned in each grasp's own frame (``grasp``: +z approach, +x closing, origin at the
fingertip centre), so a point set is first expressed in every grasp frame, then compared with the boxes.
"""

from __future__ import annotations

import numpy as np


def to_grasp_frames(points: np.ndarray, origins: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Express points in each grasp frame.

    Parameters
    ----------
    points : (M, 3) float
        Points in the camera frame, metres.
    origins : (G, 3) float
        Grasp-frame origins in the camera frame.
    rotations : (G, 3, 3) float
        Columns are the grasp x (closing), y, z (approach) axes in the camera frame.

    Returns
    -------
    (G, M, 3) float32 local coordinates: a transposed view of a (G, 3, M) array, so that each coordinate
    ``local[..., i]`` is a (G, M) array with contiguous rows (fast elementwise tests).
    """
    p = np.asarray(points, np.float32).reshape(-1, 3)
    o = np.asarray(origins, np.float32).reshape(-1, 3)
    rt = np.asarray(rotations, np.float32).reshape(-1, 3, 3).transpose(0, 2, 1)
    # R^T (p - o) for each grasp, as R^T p - R^T o: one batched (3, 3) @ (3, M) product per grasp
    q = np.matmul(rt, np.ascontiguousarray(p.T))
    q -= np.matmul(rt, o[:, :, None])
    return q.transpose(0, 2, 1)


def lowest_height(origin_heights: np.ndarray, axes_dot_normal: np.ndarray, opening_m: np.ndarray, gripper) -> np.ndarray:
    """(G,) lowest height above the support plane reached by the fingers or the palm at the grasp pose.

    Parameters
    ----------
    origin_heights : (G,) float
        Signed distance of each grasp origin to the plane (metres, positive above).
    axes_dot_normal : (G, 3) float
        The grasp x, y, z axes dotted with the plane normal.
    opening_m : (G,) float
    """
    cn, yn, an = (np.abs(axes_dot_normal[:, 0]), np.abs(axes_dot_normal[:, 1]), axes_dot_normal[:, 2])
    o = 0.5 * np.asarray(opening_m, np.float64)
    t, w, d = gripper.finger_thickness_m, 0.5 * gripper.finger_width_m, gripper.finger_depth_m
    # finger z range [-d, 0]: the lowest z term is min(0, -d * an) (an <= 0 when approaching from above)
    fingers = origin_heights - (o + t) * cn - w * yn + np.minimum(0.0, -d * an)
    pw, pd, ph = 0.5 * gripper.palm_width_m, 0.5 * gripper.palm_depth_m, gripper.palm_height_m
    palm = origin_heights - pw * cn - pd * yn + np.minimum(-d * an, (-d - ph) * an)
    return np.minimum(fingers, palm)


def finger_palm_tests(local: np.ndarray, opening_m: np.ndarray, gripper, approach_distance_m: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Hits and clearance of the swept hand, vectorised over grasps (the fingers are mirror images in x).

    Parameters
    ----------
    local : (G, M, 3) float32
        Points in each grasp frame.
    opening_m : (G,) float

    Returns
    -------
    hits : (G,) int
        Points inside either finger or the palm (swept along the approach).
    finger_clearance_m : (G,) float32
        Distance from the nearest point to either swept finger (0 when a point is inside).
    """
    f32 = np.float32
    o = (0.5 * np.asarray(opening_m, np.float32))[:, None]
    t, w, d = f32(gripper.finger_thickness_m), f32(0.5 * gripper.finger_width_m), f32(gripper.finger_depth_m)
    a = float(approach_distance_m)
    z = local[..., 2]
    # distance to the right finger box of the point mirrored to x >= 0 (in-place: few temporaries)
    ax = np.abs(local[..., 0])
    dx = o - ax
    np.maximum(dx, ax - (o + t), out=dx)
    np.maximum(dx, 0, out=dx)
    ay = np.abs(local[..., 1])
    dy = ay - w
    np.maximum(dy, 0, out=dy)
    dz = f32(-d - a) - z
    np.maximum(dz, z, out=dz)
    np.maximum(dz, 0, out=dz)
    dx *= dx
    dy *= dy
    dz *= dz
    dx += dy
    dx += dz
    dist2 = dx
    pw, pd, ph = f32(0.5 * gripper.palm_width_m), f32(0.5 * gripper.palm_depth_m), f32(gripper.palm_height_m)
    hit = ax <= pw  # in the palm (swept along the approach) ...
    hit &= ay <= pd
    hit &= z <= -d
    hit &= z >= f32(-d - ph - a)
    hit |= dist2 <= 0  # ... or in a finger
    hits = np.count_nonzero(hit, axis=1)
    return hits, np.sqrt(dist2.min(1)) if dist2.shape[1] else np.full(len(o), np.inf, np.float32)
