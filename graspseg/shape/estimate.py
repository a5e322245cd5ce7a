"""Object frame, extents, footprint, primitive fit, completion and uncertainty from one object cloud.

The estimator works in plane-local coordinates ``(a, b, h)``: ``a, b`` span the support plane and ``h`` is the
height above it (the normal points towards the camera). The footprint is the minimum-area rectangle of the
object points projected on the plane; the height is the robust top of the points; primitives (box, upright or
lying cylinder, sphere resting on the plane) are fitted with their size tied to the footprint and height, and
the unseen back half is completed from the chosen primitive (hidden box faces, points mirrored through the
cylinder or sphere axis, or the footprint extruded down to the plane).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ..cloud.types import BandLabel, ObjectCloud
from ..core.camera import CameraIntrinsics
from ..core.errors import FrameMismatchError, InputError, ShapeError, UnitsError
from ..core.transform import CAMERA, OBJECT, Transform
from . import fitting as F
from .types import ShapeConfig, ShapeEstimate

log = logging.getLogger(__name__)

_DEFAULT_FOCAL_PX = 600.0


# --- input selection -----------------------------------------------------------------------------------
def _select_points(cloud: ObjectCloud, config: ShapeConfig, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Object points used for geometry and their pixels: finite, z > 0, ``OBJECT``-labelled, thinned."""
    pts = np.asarray(cloud.points_in_camera).reshape(-1, 3)
    uv = np.asarray(cloud.pixels_uv).reshape(-1, 2)
    labels = np.asarray(cloud.labels)
    # column-wise tests: much faster than .all(axis=1) on (N, 3)
    x, y, z = pts[:, 0], pts[:, 1], pts[:, 2]
    valid = (z > 0) & (z < np.inf) & np.isfinite(x) & np.isfinite(y)
    obj = valid & (labels == int(BandLabel.OBJECT))
    n_obj, n_valid = int(np.count_nonzero(obj)), int(np.count_nonzero(valid))
    if n_obj >= config.min_points:
        sel = obj
    elif config.use_unknown_when_short and n_valid >= config.min_points:
        notes.append(
            f"only {n_obj} OBJECT-labelled points: UNKNOWN boundary-band points were used too "
            f"({n_valid} in all); the estimate may include background"
        )
        sel = valid
    else:
        raise ShapeError(
            f"object cloud has {n_obj} OBJECT-labelled points with valid depth ({len(pts)} points in all, "
            f"{n_valid} valid); at least {config.min_points} are needed for a shape estimate: check that the mask "
            "covers the object and that the depth has readings there (or lower ShapeConfig.min_points)"
        )
    idx = np.flatnonzero(sel)
    if config.max_points and len(idx) > config.max_points:
        idx = idx[_thin_keep_silhouette(uv[idx], config.max_points)]
    return pts.take(idx, axis=0).astype(np.float64), uv.take(idx, axis=0).astype(np.float64)


def _thin_keep_silhouette(uv: np.ndarray, target: int) -> np.ndarray:
    """(N,) bool: every pixel on the silhouette of the point set, plus a regular pixel grid of the interior.

    The footprint and the circle fits need the outermost points at full resolution; the interior only needs
    to be sampled. The grid step is chosen so that about ``target`` interior points remain.
    """
    import cv2

    step = int(np.ceil(np.sqrt(len(uv) / target)))
    u, v = uv[:, 0].astype(np.int64), uv[:, 1].astype(np.int64)
    u0, v0 = int(u.min()), int(v.min())
    width = int(u.max()) - u0 + 3
    img = np.zeros((int(v.max()) - v0 + 3, width), np.uint8)
    flat = (v - (v0 - 1)) * width + (u - (u0 - 1))  # flat pixel indices: one gather/scatter each
    img.reshape(-1)[flat] = 1
    inner = cv2.erode(img, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    rim = inner.reshape(-1)[flat] == 0
    return rim | ((u % step == 0) & (v % step == 0))


def _cross3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (np.cross is slow on tiny arrays)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _principal_axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centroid (3,), axes (3, 3) rows by decreasing variance oriented towards the camera, std (3,)."""
    centroid = points.mean(axis=0)
    d = points - centroid
    cov = d.T @ d / max(len(points) - 1, 1)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1]
    axes = evecs[:, order].T.copy()
    to_cam = -centroid / max(np.linalg.norm(centroid), 1e-12)
    for i in range(3):
        s = axes[i] @ to_cam
        if s < 0 or (abs(s) < 1e-9 and axes[i][np.argmax(np.abs(axes[i]))] < 0):
            axes[i] = -axes[i]
    return centroid, axes, np.sqrt(np.maximum(evals[order], 0.0))


def _check_degenerate(points: np.ndarray, std: np.ndarray) -> None:
    n = len(points)
    if std[0] < 2e-4:
        raise ShapeError(
            f"the {n} object points lie within {std[0] * 1e3:.3f} mm (std) of one spot; a shape needs points "
            "spread over the object: check the mask is more than a few pixels and its depth is not constant noise"
        )
    if std[1] < 1e-4 or std[1] < 1e-3 * std[0]:
        raise ShapeError(
            f"the {n} object points are collinear ({std[0] * 1e3:.1f} mm spread along one line, "
            f"{std[1] * 1e3:.3f} mm across it); a shape needs points spanning an area: the mask is probably a "
            "thin line or a single row/column of pixels"
        )


def _focal_px(intrinsics: CameraIntrinsics | None, points: np.ndarray, uv: np.ndarray,
              notes: list[str]) -> float:
    """Focal length in pixels: from the intrinsics, else regressed from the cloud's (pixel, point) pairs."""
    if intrinsics is not None:
        if not isinstance(intrinsics, CameraIntrinsics):
            raise InputError(
                f"intrinsics must be a CameraIntrinsics (or None), got {type(intrinsics).__name__}"
            )
        return 0.5 * (intrinsics.fx + intrinsics.fy)
    idx = F.strided_subset(len(points), 2000)
    p, q = points[idx], uv[idx]
    estimates = []
    for k in (0, 1):
        x = p[:, k] / p[:, 2]
        if np.std(x) > 1e-3:
            a = np.column_stack([x, np.ones_like(x)])
            f = float(np.linalg.lstsq(a, q[:, k], rcond=None)[0][0])
            if 50.0 < f < 20000.0:
                estimates.append(f)
    if not estimates:
        notes.append(
            f"no intrinsics given and the cloud's pixels do not determine the focal length: assumed "
            f"{_DEFAULT_FOCAL_PX:.0f} px for the pixel-size uncertainty"
        )
        return _DEFAULT_FOCAL_PX
    return float(np.mean(estimates))


# --- primitive fits ---------------------------------------------------------------------------------------
def _fit_box(loc: np.ndarray, rect: F.Rect2D, top: float) -> np.ndarray:
    """(K,) distances of plane-local points ``loc`` (K, 3) to the footprint rectangle extruded to ``top``."""
    rl = rect.local(loc[:, :2])
    local = np.column_stack([rl, loc[:, 2] - top / 2])
    half = np.array([rect.long / 2, rect.short / 2, top / 2])
    return F.box_surface_distance(local, half)


def _fit_upright_cylinder(loc: np.ndarray, rect: F.Rect2D, top: float, noise_m: float, max_fit_points: int):
    """Vertical cylinder standing on the plane: circle through the footprint's outer envelope, height ``top``.

    A first circle goes through the outermost point of each angular bin; the second through a per-bin
    quantile that cuts the depth-noise tail (a fraction ``0.8 σ / R`` of a blurred disc lies beyond its rim).
    """
    ab = loc[:, :2]
    # Only the outer ring of the footprint can hold the envelope: drop the interior first (speed).
    ring = np.hypot(*(ab - rect.centre).T) >= 0.3 * rect.short
    if ring.sum() >= 20:
        ab = ab[ring]
    x = rect_centre = np.array([rect.centre[0], rect.centre[1], 0.0])
    for it in range(2):
        tail = 0.0 if it == 0 else min(0.2, 0.8 * noise_m / max(x[2], 1e-3))
        env = F.angular_envelope(ab, rect_centre[:2] if it == 0 else x[:2], tail_fraction=tail)
        if len(env) < 5:
            return None
        x0 = F.kasa_circle(env)
        if it == 0:
            x = x0  # only the centre for the second pass
        else:
            x, _ = F.robust_refit(lambda i, xi, env=env: F.circle_geometric(env[i], xi),
                                  lambda xx, i, env=env: _circle_res(env[i], xx), len(env), x0)
        if not np.isfinite(x).all() or x[2] <= 0:
            return None
    sub = loc[F.strided_subset(len(loc), max_fit_points)]
    rho = np.hypot(*(sub[:, :2] - x[:2]).T)
    res = F.cylinder_surface_distance(rho, sub[:, 2] - top / 2, x[2], top / 2)
    return {"centre_ab": x[:2], "radius": float(x[2]), "orientation": "upright"}, res


def _circle_res(ab: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.hypot(*(ab - x[:2]).T) - x[2]


def _fit_lying_cylinder(loc: np.ndarray, rect: F.Rect2D, top: float):
    """Horizontal cylinder along the footprint's long axis, resting on the plane (centre height = radius)."""
    rl = rect.local(loc[:, :2])
    y, h = rl[:, 1], loc[:, 2]

    def fun(x):
        dy, dh = y - x[0], h - x[1]
        d = np.maximum(np.hypot(dy, dh), 1e-12)
        jac = np.column_stack([-dy / d, -dh / d - 1.0])
        return d - x[1], jac

    def res_fn(x, i):
        return np.hypot(y[i] - x[0], h[i] - x[1]) - x[1]

    def fit(i, x_init):
        return F.gauss_newton(lambda x: tuple(a[i] for a in fun(x)), x_init)

    x, _ = F.robust_refit(fit, res_fn, len(y), np.array([0.0, top / 2]))
    if not np.isfinite(x).all() or not 0 < x[1] < 2 * max(rect.long, top, 1e-3):
        return None
    radial = np.hypot(y - x[0], h - x[1])
    res = F.cylinder_surface_distance(radial, rl[:, 0], x[1], rect.long / 2)
    return {"y0": float(x[0]), "radius": float(x[1]), "orientation": "lying"}, res


def _fit_sphere(loc: np.ndarray, rect: F.Rect2D, top: float):
    """Sphere resting on the plane: centre (a, b, r), radius r."""

    def fit(i, x_init):
        p = loc[i]

        def f(x):
            d = p - x
            dist = np.maximum(np.linalg.norm(d, axis=1), 1e-12)
            jac = -d / dist[:, None]
            jac[:, 2] -= 1.0
            return dist - x[2], jac

        return F.gauss_newton(f, x_init)

    def res_fn(x, i):
        return np.linalg.norm(loc[i] - x, axis=1) - x[2]

    x, _ = F.robust_refit(fit, res_fn, len(loc), np.array([rect.centre[0], rect.centre[1], top / 2]))
    if not np.isfinite(x).all() or not 0 < x[2] < 2 * max(rect.long, top, 1e-3):
        return None
    res = np.abs(np.linalg.norm(loc - x, axis=1) - x[2])
    return {"centre_abh": x.copy(), "radius": float(x[2])}, res


# --- main ------------------------------------------------------------------------------------------------
def estimate_shape(cloud: ObjectCloud, config: ShapeConfig = ShapeConfig(), *,  # noqa: B008 - frozen, immutable
                   boundary_error_px: float = 2.0, intrinsics: CameraIntrinsics | None = None) -> ShapeEstimate:
    """Estimate the object frame, size, footprint, primitive and completed shape of one object cloud.

    Parameters
    ----------
    cloud : ObjectCloud
        Output of the cloud stage. Only ``OBJECT``-labelled points are used for geometry (``UNKNOWN`` band
        points may be background), unless there are too few of them (see ``ShapeConfig.use_unknown_when_short``).
    config : ShapeConfig
        Tunables.
    boundary_error_px : float
        Expected error of the mask boundary, pixels; converted to metres at the object's depth for the
        uncertainty.
    intrinsics : CameraIntrinsics, optional
        For the pixel size; when omitted the focal length is regressed from the cloud's pixels and points.

    Returns
    -------
    ShapeEstimate
        Camera-frame pose and sizes in metres; ``notes`` explains fallbacks (no plane, few points...).

    Raises
    ------
    InputError
        ``cloud`` is not an :class:`ObjectCloud`.
    UnitsError
        ``boundary_error_px`` is negative or not finite.
    ShapeError
        Too few valid object points, or degenerate (single-spot, collinear) points.
    FrameMismatchError
        The support plane is not in the camera frame.
    """
    if not isinstance(cloud, ObjectCloud):
        raise InputError(f"estimate_shape needs an ObjectCloud (from graspseg.cloud), got {type(cloud).__name__}")
    if not isinstance(config, ShapeConfig):
        raise InputError(f"config must be a ShapeConfig, got {type(config).__name__}")
    k_px = float(boundary_error_px)
    if not math.isfinite(k_px) or k_px < 0:
        raise UnitsError(f"boundary_error_px={boundary_error_px!r}; give a non-negative number of pixels (e.g. 2)")
    notes: list[str] = []
    pts, uv = _select_points(cloud, config, notes)
    centroid, axes, std = _principal_axes(pts[F.strided_subset(len(pts), 5000)])
    _check_degenerate(pts, std)
    z_obj = float(np.median(pts[:, 2]))
    sigma_z = float(config.depth_sigma_m(z_obj))

    # --- support plane or PCA stand-in -------------------------------------------------------------
    plane = cloud.plane
    frame_source = "support_plane"
    clearance = config.table_clearance_m
    if plane is not None and plane.frame != CAMERA:
        raise FrameMismatchError(
            f"cloud.plane is in frame '{plane.frame}'; estimate_shape needs it in '{CAMERA}' "
            "(use plane.transformed(camera_from_<frame>))"
        )
    if plane is not None:
        n = np.asarray(plane.normal, dtype=np.float64)
        offset = float(plane.offset)
        if offset < 0:  # the camera (origin) lies below the plane as given: the normal points away from it
            n, offset = -n, -offset
            notes.append("support-plane normal pointed away from the camera; flipped")
        h_med = float(np.median(pts @ n + offset))
        if h_med < -max(clearance, 3 * sigma_z):
            notes.append(
                f"support plane ignored: the object's median height is {h_med * 1e3:.1f} mm, i.e. below the "
                "plane (the plane was probably fitted to another surface); frame from PCA instead"
            )
            plane = None
    if plane is None:
        frame_source = "pca"
        n = axes[2].copy()
        s = pts @ n
        offset = -float(np.percentile(s, 100.0 - config.top_percentile))
        clearance = 0.0
        if cloud.plane is None:
            notes.append("no support plane: z is the smallest principal axis (towards the camera)")
        notes.append(
            "height_m, extents_m[2] and the footprint are measured along/against the PCA axis, not above a "
            "table; no completion of the unseen side"
        )
    plane_rmse = float(cloud.plane.rmse_m) if (cloud.plane is not None and frame_source == "support_plane") else 0.0

    # Plane-local basis: e1 from the camera x axis projected on the plane.
    ref = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = ref - (ref @ n) * n
    e1 /= np.linalg.norm(e1)
    e2 = _cross3(n, e1)
    basis = np.stack([e1, e2, n], axis=1)  # columns
    origin = centroid - (centroid @ n + offset) * n
    loc_all = (pts - origin) @ basis

    above = loc_all[:, 2] > clearance
    if above.sum() < config.min_points:
        notes.append(
            f"object is flat: only {int(above.sum())} points lie more than {clearance * 1e3:.1f} mm above the "
            "support plane; all points used"
        )
        above = np.ones(len(loc_all), bool)
    loc = loc_all[above]
    keep = F.largest_components(loc[:, :2], config.footprint_cell_m, config.min_component_fraction)
    if keep.sum() < len(keep):
        log.debug("dropped %d detached points before the footprint fit", int((~keep).sum()))
        if keep.sum() >= config.min_points:
            loc = loc[keep]
    visible_loc = loc

    # --- height: robust top of the points ---------------------------------------------------------
    h = loc[:, 2]
    hq = float(np.percentile(h, config.top_percentile))
    window = max(3.0 * sigma_z, 0.002)
    top_pts = h[(h >= hq - window) & (h <= hq)]
    top = float(np.median(top_pts)) if len(top_pts) else hq
    top = max(top, 1e-6)

    rect = F.footprint_rect(loc[:, :2], sigma_z)
    cam_loc = (np.zeros(3) - origin) @ basis  # camera centre in plane-local coordinates
    view = cam_loc - loc.mean(axis=0)
    sin_elevation = abs(view[2]) / max(float(np.linalg.norm(view)), 1e-9)
    top_visible = cam_loc[2] > top + 0.005 and sin_elevation >= 0.2
    if not top_visible:
        rect = F.boundary_rect(loc[:, :2], sigma_z)
        notes.append(
            "the top is not in view: the footprint comes from the side faces only, and its depth away from the "
            "camera is a lower bound when a single face is seen"
        )

    # --- primitive fits -------------------------------------------------------------------------------
    sub = loc[F.strided_subset(len(loc), config.max_fit_points)]
    residuals: dict[str, float] = {}
    fits: dict[str, dict] = {}
    if "box" in config.primitives:
        res = _fit_box(sub, rect, top)
        residuals["box"] = F.trimmed_rms(res, config.trim_fraction)
        fits["box"] = {}
    # Gates (speed): a round footprint for an upright cylinder or a sphere; height close to the footprint's
    # width for a lying cylinder or a sphere. Shapes outside them would not fit anyway.
    aspect = rect.long / max(rect.short, 1e-9)
    round_footprint = aspect < 1.6
    # the far side of the visible footprint may be hidden (shorter along the view): loose bounds
    lying_like = 0.75 < top / max(rect.short, 1e-9) < 1.8
    sphere_like = round_footprint and abs(top / max(rect.long, 1e-9) - 1.0) < 0.25
    if "cylinder" in config.primitives:
        best = None
        cands = []
        if round_footprint:
            cands.append(_fit_upright_cylinder(loc, rect, top, sigma_z, config.max_fit_points))
        if lying_like:
            cands.append(_fit_lying_cylinder(sub, rect, top))
        for cand in cands:
            if cand is None:
                continue
            params, res = cand
            r = F.trimmed_rms(res, config.trim_fraction)
            if best is None or r < best[0]:
                best = (r, params)
        if best is not None:
            residuals["cylinder"], fits["cylinder"] = best
    if "sphere" in config.primitives and sphere_like:
        cand = _fit_sphere(sub, rect, top)
        if cand is not None:
            residuals["sphere"] = F.trimmed_rms(cand[1], config.trim_fraction)
            fits["sphere"] = cand[0]
    smallest = min(rect.short, top) if frame_source == "support_plane" else rect.short
    threshold = max(config.other_residual_m, config.other_residual_ratio * smallest)
    f_px = _focal_px(intrinsics, pts, uv, notes)
    pixel_m = z_obj / f_px
    coverage, rejected = _check_primitives(fits, loc, rect, top, sigma_z, pixel_m, sin_elevation, config)
    primitive = "other"
    if residuals:
        ok = [p for p in residuals if residuals[p] <= threshold and p not in rejected]
        if ok:
            # near-ties (a disc-shaped top seen from above fits a box and a cylinder alike): the better coverage
            best = min(residuals[p] for p in ok)
            tie = max(0.0005, 0.5 * sigma_z)
            close = [p for p in ok if residuals[p] <= best + tie]
            primitive = max(close, key=lambda p: (coverage.get(p, 1.0), -residuals[p]))
        else:
            name = min(residuals, key=residuals.get)
            if residuals[name] > threshold:
                why = f"best is {name} with {residuals[name] * 1e3:.1f} mm RMS residual (accepted up to {threshold * 1e3:.1f} mm)"
            else:
                why = f"{name} fits the surface ({residuals[name] * 1e3:.1f} mm RMS) but {rejected[name]}"
            notes.append(f"no primitive fits: {why}")

    # A curved top (sphere, lying cylinder) is sampled only near its apex: take the height from the fit.
    if primitive == "sphere":
        top = 2.0 * fits["sphere"]["radius"]
    elif primitive == "cylinder" and fits["cylinder"]["orientation"] == "lying":
        top = 2.0 * fits["cylinder"]["radius"]
    if primitive == "cylinder" and fits["cylinder"]["orientation"] == "upright":
        cyl = fits["cylinder"]
        outside = float(np.mean(np.hypot(*(loc[:, :2] - cyl["centre_ab"]).T) > cyl["radius"] + max(3 * sigma_z, 0.003)))
        if outside > 0.02:
            notes.append(f"{outside:.0%} of the points lie outside the fitted cylinder (a handle?): the footprint "
                         "and the object centre include them; primitive_params gives the body axis")

    # --- completion of the unseen side ----------------------------------------------------------------
    do_complete = config.completion and frame_source == "support_plane"
    generated = np.zeros((0, 3))
    if do_complete:
        generated = _complete(primitive, fits.get(primitive, {}), visible_loc, rect, top, origin, basis, config)
        if len(generated) > config.max_completion_points:
            generated = generated[F.strided_subset(len(generated), config.max_completion_points)]
    elif not config.completion:
        notes.append("completion disabled: completed_points_in_camera holds the visible points only")

    # --- final footprint and frame from the completed shape ---------------------------------------------
    handle_margin = max(3.0 * sigma_z, 0.002)
    if primitive == "cylinder" and fits["cylinder"]["orientation"] == "upright":
        cyl = fits["cylinder"]
        rect = _rect_with_circle(visible_loc[:, :2], cyl["centre_ab"], cyl["radius"], handle_margin, sigma_z)
    elif primitive == "cylinder":
        cyl = fits["cylinder"]
        lo = np.array([rect.local(rect.corners)[:, 0].min(), cyl["y0"] - cyl["radius"]])
        hi = np.array([rect.local(rect.corners)[:, 0].max(), cyl["y0"] + cyl["radius"]])
        rect = F.rect_from_bounds(rect.centre, rect.long_dir, lo, hi)
    elif primitive == "sphere":
        c = fits["sphere"]["centre_abh"]
        rect = _rect_with_circle(visible_loc[:, :2], c[:2], fits["sphere"]["radius"], handle_margin, sigma_z)
    x2 = rect.long_dir
    x_axis = x2[0] * e1 + x2[1] * e2
    if x_axis[0] < -1e-9 or (abs(x_axis[0]) <= 1e-9 and x_axis[1] < 0):
        x_axis = -x_axis
    z_axis = n
    y_axis = _cross3(z_axis, x_axis)
    rot = np.stack([x_axis, y_axis, z_axis], axis=1)
    centre = origin + rect.centre[0] * e1 + rect.centre[1] * e2 + (top / 2) * n
    camera_from_object = Transform.from_rt(rot, centre, CAMERA, OBJECT)
    base_from_object = None if cloud.base_from_camera is None else cloud.base_from_camera @ camera_from_object
    corners = origin + rect.corners[:, :1] * e1 + rect.corners[:, 1:] * e2
    extents = np.array([rect.long, rect.short, top])

    params = _primitive_params(primitive, fits.get(primitive, {}), extents, centre, rot, origin, basis, rect, top)
    if primitive in coverage:
        params["footprint_coverage"] = coverage[primitive]

    # --- uncertainty ------------------------------------------------------------------------------
    e_m = k_px * pixel_m
    side = math.sqrt(2.0 * e_m**2 + sigma_z**2)
    height_unc = math.sqrt(sigma_z**2 + plane_rmse**2 + (sigma_z if frame_source == "pca" else 0.0) ** 2)
    if primitive == "sphere" or (primitive == "cylinder" and params.get("orientation") == "upright"):
        yaw = math.pi
        notes.append("yaw is undefined for a shape symmetric about the vertical axis: x is arbitrary")
    elif rect.long - rect.short <= 2.0 * side:
        yaw = math.pi / 4
        notes.append(
            f"footprint is nearly square ({rect.long * 1e3:.1f} x {rect.short * 1e3:.1f} mm): the x axis is "
            "ambiguous by 90 deg"
        )
    else:
        yaw = math.atan2(math.sqrt(2.0) * e_m + sigma_z, max(rect.long, 1e-9))
    uncertainty = {
        "position_m": math.sqrt(0.5 * e_m**2 + sigma_z**2),
        "yaw_rad": yaw,
        "extents_m": np.array([side, side, height_unc]),
        "height_m": height_unc,
        "pixel_size_m": pixel_m,
        "boundary_error_px": k_px,
        "boundary_error_m": e_m,
        "depth_sigma_m": sigma_z,
        "top_visible": bool(top_visible),
    }
    visible_cam = visible_loc @ basis.T + origin
    completed = np.concatenate([visible_cam, generated @ basis.T + origin]) if len(generated) else visible_cam
    return ShapeEstimate(
        camera_from_object=camera_from_object,
        base_from_object=base_from_object,
        extents_m=extents,
        principal_axes=axes,
        footprint_corners_in_camera=corners,
        footprint_size_m=np.array([rect.long, rect.short]),
        height_m=top,
        primitive=primitive,
        primitive_params=params,
        primitive_residuals_m=residuals,
        completed_points_in_camera=completed,
        uncertainty=uncertainty,
        num_visible_points=len(visible_cam),
        frame_source=frame_source,
        notes=tuple(notes),
    )


def _check_primitives(fits: dict, loc: np.ndarray, rect: F.Rect2D, top: float, noise_m: float, pixel_m: float,
                      sin_elevation: float, config: ShapeConfig) -> tuple[dict, dict]:
    """Coverage of each fitted primitive and, for the implausible ones, why (name -> reason).

    A box (or lying cylinder) must have its footprint rectangle filled by the points when its top is in view
    (cells enlarged to the sampling step on the top at this viewing elevation); an upright cylinder or a
    sphere must have points around enough of its rim; a sphere resting on the plane must be as tall as wide.
    """
    coverage: dict[str, float] = {}
    rejected: dict[str, str] = {}
    band = max(3.0 * noise_m, 0.003)
    for name, fit in fits.items():
        if name == "box" or (name == "cylinder" and fit["orientation"] == "lying"):
            if sin_elevation < 0.2:
                continue  # the top is seen edge-on: an empty footprint says nothing
            cell = max(config.footprint_cell_m, 2.5 * pixel_m / sin_elevation)
            coverage[name] = F.rect_coverage(loc[:, :2], rect, cell)
            if coverage[name] < config.min_coverage:
                rejected[name] = (f"the points cover only {coverage[name]:.0%} of its footprint (want "
                                  f"{config.min_coverage:.0%}): the object is not convex")
            continue
        centre, radius = (fit["centre_ab"], fit["radius"]) if name == "cylinder" else (fit["centre_abh"][:2], fit["radius"])
        coverage[name] = F.angular_coverage(loc[:, :2], centre, radius, band)
        if coverage[name] < config.min_rim_coverage:
            rejected[name] = (f"points lie around only {coverage[name]:.0%} of its rim (want "
                              f"{config.min_rim_coverage:.0%})")
        elif name == "sphere" and abs(2 * radius - top) > max(0.15 * top, 0.004):
            rejected[name] = (f"a sphere of radius {radius * 1e3:.1f} mm resting on the plane is "
                              f"{2 * radius * 1e3:.1f} mm tall, the object {top * 1e3:.1f} mm")
    return coverage, rejected


def _rect_with_circle(visible_ab: np.ndarray, c: np.ndarray, r: float, margin: float, noise_m: float) -> F.Rect2D:
    """Footprint of a round object: its circle plus any visible part well outside it (a handle)."""
    ang = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    circle = c + r * np.column_stack([np.cos(ang), np.sin(ang)])
    outside = visible_ab[np.hypot(*(visible_ab - c).T) > r + margin]
    if len(outside) < 10:
        return F.min_area_rect(circle)
    return F.footprint_rect(np.concatenate([np.repeat(circle, 4, axis=0), outside]), noise_m)


def _complete(primitive: str, fit: dict, loc: np.ndarray, rect: F.Rect2D, top: float, origin: np.ndarray,
              basis: np.ndarray, config: ShapeConfig) -> np.ndarray:
    """(G, 3) plane-local points of the unseen surfaces of the completed shape."""
    sp = config.completion_spacing_m
    cam_loc = (np.zeros(3) - origin) @ basis
    if primitive == "cylinder" and fit["orientation"] == "upright":
        c, r = fit["centre_ab"], fit["radius"]
        rho = np.hypot(*(loc[:, :2] - c).T)
        src = loc[rho <= r + 0.002]
        mirrored = src.copy()
        mirrored[:, :2] = 2 * c - src[:, :2]
        return mirrored
    if primitive == "cylinder":
        rl = rect.local(loc[:, :2])
        y0, r = fit["y0"], fit["radius"]
        inside = np.hypot(rl[:, 1] - y0, loc[:, 2] - r) <= r + 0.002
        m = np.column_stack([rl[inside, 0], 2 * y0 - rl[inside, 1], 2 * r - loc[inside, 2]])
        perp = np.array([-rect.long_dir[1], rect.long_dir[0]])
        ab = rect.centre + m[:, :1] * rect.long_dir + m[:, 1:2] * perp
        return np.column_stack([ab, m[:, 2]])
    if primitive == "sphere":
        c, r = fit["centre_abh"], fit["radius"]
        src = loc[np.linalg.norm(loc - c, axis=1) <= r + 0.002]
        mirrored = src.copy()
        mirrored[:, :2] = 2 * c[:2] - src[:, :2]
        return mirrored
    # Box: the hidden faces of the footprint rectangle extruded to the top; "other": the footprint's convex
    # outline extruded from the plane to the top, plus the visible points dropped onto the plane.
    u = rect.long_dir
    v = np.array([-u[1], u[0]])
    if primitive == "box":
        out = []
        hl, hs = rect.long / 2, rect.short / 2
        c3 = np.array([rect.centre[0], rect.centre[1], top / 2])
        u3, v3, w3 = np.array([u[0], u[1], 0.0]), np.array([v[0], v[1], 0.0]), np.array([0.0, 0.0, 1.0])
        faces = [(u3, v3, w3, hl, hs, top / 2), (-u3, v3, w3, hl, hs, top / 2), (v3, u3, w3, hs, hl, top / 2),
                 (-v3, u3, w3, hs, hl, top / 2), (-w3, u3, v3, top / 2, hl, hs)]
        for nrm, a1, a2, d, s1, s2 in faces:
            fc = c3 + d * nrm
            if (cam_loc - fc) @ nrm > 0:  # facing the camera: measured, not completed
                continue
            out.append(F.sample_rectangle(fc - s1 * a1 - s2 * a2, 2 * s1 * a1, 2 * s2 * a2, sp))
        return np.concatenate(out) if out else np.zeros((0, 3))
    import cv2

    hull = cv2.convexHull((loc[:, :2] * 1000.0).astype(np.float32)).reshape(-1, 2).astype(np.float64) / 1000.0
    heights = np.arange(0.0, top + 1e-9, sp)
    edge = np.roll(hull, -1, axis=0) - hull
    k = np.maximum(1, np.ceil(np.linalg.norm(edge, axis=1) / sp).astype(np.int64))
    which = np.repeat(np.arange(len(hull)), k)
    t = np.arange(len(which)) - np.repeat(np.cumsum(k) - k, k)
    seg = hull[which] + (t / k[which])[:, None] * edge[which]
    walls = [np.column_stack([np.repeat(seg, len(heights), axis=0), np.tile(heights, len(seg))])]
    bottom = loc[F.strided_subset(len(loc), 4000)].copy()
    bottom[:, 2] = 0.0
    return np.concatenate(walls + [bottom])


def _primitive_params(primitive: str, fit: dict, extents: np.ndarray, centre: np.ndarray, rot: np.ndarray,
                      origin: np.ndarray, basis: np.ndarray, rect: F.Rect2D, top: float) -> dict:
    def to_cam(abh):
        return origin + basis @ np.asarray(abh, dtype=np.float64)

    if primitive == "box":
        return {"size_m": extents.copy(), "centre_in_camera": centre.copy(), "axes_in_camera": rot.T.copy()}
    if primitive == "cylinder" and fit["orientation"] == "upright":
        c = fit["centre_ab"]
        return {"orientation": "upright", "radius_m": fit["radius"], "height_m": top,
                "axis_in_camera": basis[:, 2].copy(), "centre_in_camera": to_cam([c[0], c[1], top / 2])}
    if primitive == "cylinder":
        perp = np.array([-rect.long_dir[1], rect.long_dir[0]])
        ab = rect.centre + fit["y0"] * perp
        axis = basis[:, :2] @ rect.long_dir
        return {"orientation": "lying", "radius_m": fit["radius"], "length_m": rect.long,
                "axis_in_camera": axis, "centre_in_camera": to_cam([ab[0], ab[1], fit["radius"]])}
    if primitive == "sphere":
        return {"radius_m": fit["radius"], "centre_in_camera": to_cam(fit["centre_abh"])}
    return {}
