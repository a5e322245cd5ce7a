"""A dimensioned picture of a gripper model with its grasp frame and its TCP frame (matplotlib, off-screen).

Two orthographic views of the hand exactly as the collision model sees it (the boxes of
:meth:`~graspseg.grasp.GripperModel.finger_boxes` and :meth:`~graspseg.grasp.GripperModel.palm_box`):

* front view, grasp-frame x (closing) to the right, z (approach) down: the fingers open left and right;
* side view, grasp-frame y to the right, z (approach) down: the finger width and the palm depth.

The grasp frame (origin at the fingertip centre, +z approach, +x closing) is drawn with x red, y green,
z blue; the robot's TCP frame (``grasp_from_tcp``, the pose :mod:`graspseg.plugin` commands) in the same
colours, dashed. Every number comes from the model; :func:`gripper_frame_geometry` computes the drawn
segments and boxes as a plain function, :func:`gripper_frame_figure` lays them out, and
:func:`draw_gripper_frame` returns the picture as an RGB array. ``examples/draw_grasp_frames.py`` writes
``docs/img/grasp_frame_<name>.png`` for every shipped gripper.
"""

from __future__ import annotations

import math

import numpy as np

from ..core.errors import InputError
from ..core.transform import TCP

#: Colours of the x, y, z axes (RGB in [0, 1]).
AXIS_COLORS = {"x": (0.85, 0.1, 0.1), "y": (0.05, 0.6, 0.1), "z": (0.1, 0.25, 0.9)}

#: The two views: (title, screen-right axis, screen-down axis) as grasp-frame unit vectors.
_VIEWS = (
    ("front view (x–z), closing →", np.array([1.0, 0, 0]), np.array([0, 0, 1.0])),
    ("side view (y–z), one finger behind the other", np.array([0, 1.0, 0]), np.array([0, 0, 1.0])),
)
_TEXT_BOX = dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.75)


def _check_opening(gripper, opening_m) -> float:
    if opening_m is None:
        return float(gripper.max_opening_m)
    try:
        o = float(opening_m)
    except (TypeError, ValueError):
        raise InputError(f"opening_m must be a number of metres, got {opening_m!r}") from None
    if not math.isfinite(o) or o < 0:
        raise InputError(
            f"opening_m = {o} m is negative or not finite; an opening is the distance between the finger pads, "
            f"give a value in the stroke [{gripper.min_opening_m}, {gripper.max_opening_m}] m of '{gripper.name}'"
        )
    if o < gripper.min_opening_m - 1e-12 or o > gripper.max_opening_m + 1e-12:
        hint = " (millimetres given? openings are in metres)" if o > 1.0 else ""
        raise InputError(
            f"opening_m = {o} m is outside the stroke of '{gripper.name}': give a value in "
            f"[{gripper.min_opening_m}, {gripper.max_opening_m}] m{hint}"
        )
    return o


def gripper_frame_geometry(gripper, opening_m: float | None = None) -> dict:
    """The segments and boxes of the gripper-frame picture, in the grasp frame, metres.

    Parameters
    ----------
    gripper : GripperModel or str
        A model, or a name / YAML path for :func:`~graspseg.grasp.load_gripper`.
    opening_m : float, optional
        Distance between the finger pads, metres, within the stroke; default the largest opening.

    Returns
    -------
    dict with keys (every array float64, grasp frame, metres):

    ``name``, ``opening_m``, ``stroke_m`` ``(min, max)``, ``tcp_offset_m``, ``tcp_closing_axis``,
    ``flange_to_fingertip_m``, ``finger_depth_m``, ``finger_width_m``, ``finger_thickness_m``, ``palm_height_m``
        The model's numbers the labels print.
    ``finger_boxes`` : (2, 2, 3)
        Min/max corners of the fingers at ``opening_m`` (``GripperModel.finger_boxes``; [0] at −x).
    ``finger_boxes_min``, ``finger_boxes_max`` : (2, 2, 3)
        The same at the two ends of the stroke.
    ``palm_box`` : (2, 3)
        Min/max corners of the palm (``GripperModel.palm_box``).
    ``finger_inner_x`` : (2,)
        x of the two inner finger faces (the pads): ``∓ opening_m / 2``.
    ``grasp_origin`` : (3,)
        The fingertip centre, (0, 0, 0).
    ``grasp_axes`` : dict ``"x" | "y" | "z"`` -> (2, 3)
        Segments from the origin along the grasp axes, ``axis_length_m`` long.
    ``grasp_from_tcp`` : (4, 4)
        Where the robot's TCP sits in the grasp frame, as :func:`graspseg.plugin.grasp_from_tcp`.
    ``tcp_origin`` : (3,)
        The TCP, ``(0, 0, −tcp_offset_m)``.
    ``tcp_axes`` : dict ``"x" | "y" | "z"`` -> (2, 3)
        Segments from the TCP along its own axes, ``0.75 · axis_length_m`` long.
    ``opening_segment`` : (2, 3)
        Between the two pads at the fingertips (z = 0).
    ``flange_z_m`` : float or None
        z of the flange (``−flange_to_fingertip_m``), None when the model gives no flange distance.
    ``axis_length_m`` : float
        0.6 · finger depth or 0.3 · the largest opening, whichever is longer.
    """
    from ..grasp import grasp_from_tcp as tcp_in_grasp
    from ..grasp import load_gripper

    gripper = load_gripper(gripper)
    o = _check_opening(gripper, opening_m)
    # the transform the plugin commands with, so that the picture shows exactly its TCP target
    grasp_from_tcp = np.array(tcp_in_grasp(gripper).matrix, dtype=np.float64)
    axis_len = max(0.6 * gripper.finger_depth_m, 0.3 * gripper.max_opening_m)
    eye = np.eye(3)
    origin = np.zeros(3)
    tcp_origin = grasp_from_tcp[:3, 3].copy()
    return {
        "name": gripper.name,
        "opening_m": o,
        "stroke_m": (float(gripper.min_opening_m), float(gripper.max_opening_m)),
        "tcp_offset_m": float(gripper.tcp_offset_m),
        "tcp_closing_axis": gripper.tcp_closing_axis,
        "flange_to_fingertip_m": float(gripper.flange_to_fingertip_m),
        "finger_depth_m": float(gripper.finger_depth_m),
        "finger_width_m": float(gripper.finger_width_m),
        "finger_thickness_m": float(gripper.finger_thickness_m),
        "palm_height_m": float(gripper.palm_height_m),
        "finger_boxes": np.asarray(gripper.finger_boxes(o), np.float64),
        "finger_boxes_min": np.asarray(gripper.finger_boxes(gripper.min_opening_m), np.float64),
        "finger_boxes_max": np.asarray(gripper.finger_boxes(gripper.max_opening_m), np.float64),
        "palm_box": np.asarray(gripper.palm_box(), np.float64),
        "finger_inner_x": np.array([-0.5 * o, 0.5 * o]),
        "grasp_origin": origin,
        "grasp_axes": {k: np.stack([origin, axis_len * eye[i]]) for i, k in enumerate("xyz")},
        "grasp_from_tcp": grasp_from_tcp,
        "tcp_origin": tcp_origin,
        "tcp_axes": {k: np.stack([tcp_origin, tcp_origin + 0.75 * axis_len * grasp_from_tcp[:3, i]]) for i, k in enumerate("xyz")},
        "opening_segment": np.array([[-0.5 * o, 0.0, 0.0], [0.5 * o, 0.0, 0.0]]),
        "flange_z_m": -float(gripper.flange_to_fingertip_m) if gripper.flange_to_fingertip_m > 0 else None,
        "axis_length_m": float(axis_len),
    }


def _mm(v_m: float) -> str:
    return f"{1e3 * v_m:.1f} mm"


def gripper_frame_labels(geom: dict) -> dict[str, str]:
    """The texts printed into the picture, from :func:`gripper_frame_geometry`'s numbers."""
    off = geom["tcp_offset_m"]
    if abs(off) < 1e-9:
        where = "at the fingertip centre"
    elif off > 0:
        where = f"{_mm(off)} behind the fingertips"
    else:
        where = f"{_mm(-off)} ahead of the fingertips"
    lo, hi = geom["stroke_m"]
    return {
        "title": f"{geom['name']}: grasp frame at the fingertip centre, +z approach, +x closing",
        "grasp": "grasp (fingertip centre)",
        "tcp": f"{TCP}: {where} (tcp_offset_m = {_mm(off)}), closes along its {geom['tcp_closing_axis']}",
        "opening": f"opening {_mm(geom['opening_m'])}",
        "stroke": f"stroke {1e3 * lo:.1f}–{1e3 * hi:.1f} mm (dotted: fingers at both ends)",
        "finger_depth": f"finger_depth {_mm(geom['finger_depth_m'])}",
        "finger_width": f"finger_width {_mm(geom['finger_width_m'])} (pad)",
        "palm_height": f"palm_height {_mm(geom['palm_height_m'])}",
        "flange": f"flange ({_mm(geom['flange_to_fingertip_m'])} from the fingertips)",
        "object_side": "object side (+z approach)",
    }


def _rect(box: np.ndarray, h: np.ndarray, v: np.ndarray) -> tuple[float, float, float, float]:
    """(left, top, width, height) in mm of a grasp-frame box projected onto the view axes (h, v)."""
    lo, hi = np.asarray(box, float)
    hs = sorted((float(lo @ h), float(hi @ h)))
    vs = sorted((float(lo @ v), float(hi @ v)))
    return 1e3 * hs[0], 1e3 * vs[0], 1e3 * (hs[1] - hs[0]), 1e3 * (vs[1] - vs[0])


def gripper_frame_figure(gripper, opening_m: float | None = None, *, size_px: tuple[int, int] = (1200, 650)):
    """The matplotlib ``Figure`` (Agg canvas attached, no pyplot) behind :func:`draw_gripper_frame`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    geom = gripper_frame_geometry(gripper, opening_m)
    labels = gripper_frame_labels(geom)
    dpi = 100
    fig = Figure(figsize=(size_px[0] / dpi, size_px[1] / dpi), dpi=dpi)
    FigureCanvasAgg(fig)

    # extents of everything drawn, mm, in grasp-frame coordinates
    pts = np.concatenate([geom["finger_boxes_max"].reshape(-1, 3), geom["palm_box"], geom["tcp_origin"][None],
                          *geom["tcp_axes"].values(), *geom["grasp_axes"].values()])
    if geom["flange_z_m"] is not None:
        pts = np.concatenate([pts, [[0.0, 0.0, geom["flange_z_m"]]]])
    lo_mm, hi_mm = 1e3 * pts.min(0), 1e3 * pts.max(0)
    pad = 0.12 * float((hi_mm - lo_mm).max())
    al = 1e3 * geom["axis_length_m"]
    # one scale for both views: each panel as wide as its extent
    ratios = [float((hi_mm - lo_mm) @ h) + 2 * pad for _, h, _ in _VIEWS]
    grid = fig.add_gridspec(1, 2, width_ratios=ratios, left=0.07, right=0.98, top=0.86, bottom=0.1, wspace=0.12)
    axes = [fig.add_subplot(grid[0, i]) for i in range(2)]

    for ax, (title, h, v) in zip(axes, _VIEWS, strict=True):
        out = np.cross(h, -v)  # screen right × screen up: the direction towards the viewer

        def proj(p, h=h, v=v):
            return 1e3 * float(np.asarray(p) @ h), 1e3 * float(np.asarray(p) @ v)

        # palm and fingers, as the collision model sees them
        x0, y0, w, hh = _rect(geom["palm_box"], h, v)
        ax.add_patch(Rectangle((x0, y0), w, hh, facecolor="0.82", edgecolor="0.25", lw=1.2, zorder=1))
        ax.text(x0 + 0.5 * w, y0 + 0.3 * hh, "palm", ha="center", va="center", fontsize=9, color="0.2", zorder=6)
        for box in (*geom["finger_boxes_min"], *geom["finger_boxes_max"]):  # the two ends of the stroke, dotted
            x0, y0, w, hh = _rect(box, h, v)
            ax.add_patch(Rectangle((x0, y0), w, hh, fill=False, edgecolor="0.45", lw=0.9, ls=":", zorder=2))
        for box in geom["finger_boxes"]:
            x0, y0, w, hh = _rect(box, h, v)
            ax.add_patch(Rectangle((x0, y0), w, hh, facecolor=(0.55, 0.6, 0.68), edgecolor="0.15", lw=1.2,
                                   alpha=0.85, zorder=3))

        # the flange and the object side
        xl = (float(lo_mm @ h) - pad, float(hi_mm @ h) + pad)
        if geom["flange_z_m"] is not None:
            fz = proj([0.0, 0.0, geom["flange_z_m"]])[1]
            ax.plot(xl, (fz, fz), color="0.3", lw=1.0, ls="-.", zorder=2)
            ax.text(xl[0] + 0.02 * (xl[1] - xl[0]), fz - 0.01 * pad, labels["flange"], fontsize=7.5, va="bottom",
                    color="0.3")
        zt = proj([0.0, 0.0, 0.0])[1]
        ax.axhspan(zt, float(hi_mm[2]) + pad, color=(1.0, 0.93, 0.8), zorder=0)
        ax.text(xl[1] - 0.02 * (xl[1] - xl[0]), float(hi_mm[2]) + 0.8 * pad, labels["object_side"], fontsize=8,
                ha="right", va="bottom", color=(0.55, 0.35, 0.0))

        def frame(origin, segs, tcp, ax=ax, proj=proj, out=out):
            ox, oy = proj(origin)
            name = TCP if tcp else "grasp"
            for k, seg in segs.items():
                d = np.asarray(seg[1]) - np.asarray(seg[0])
                ex, ey = proj(seg[1])
                col = tuple(0.6 * c for c in AXIS_COLORS[k]) if tcp else AXIS_COLORS[k]
                if math.hypot(ex - ox, ey - oy) > 1e-3 * al:
                    ax.annotate("", xy=(ex, ey), xytext=(ox, oy), zorder=9 if tcp else 8,
                                arrowprops=dict(arrowstyle="-|>", color=col, lw=1.3 if tcp else 2.2,
                                                ls=(0, (3, 2)) if tcp else "-", shrinkA=0, shrinkB=0,
                                                mutation_scale=10 if tcp else 13))
                    ux, uy = (ex - ox) / math.hypot(ex - ox, ey - oy), (ey - oy) / math.hypot(ex - ox, ey - oy)
                    # screen points (y up); the TCP's labels sit beside its arrow, the grasp's beyond the tip
                    dx, dy = 5 * ux, -5 * uy
                    if tcp:
                        dx, dy = dx + 9 * uy, dy + 9 * ux
                    ha = "left" if dx > 2 else "right" if dx < -2 else "center"
                    va = "bottom" if dy > 2 else "top" if dy < -2 else "center"
                    ax.annotate(f"{name} {k}", (ex, ey), xytext=(dx, dy), textcoords="offset points", color=col,
                                fontsize=7.5 if tcp else 8.5, ha=ha, va=va, zorder=11,
                                fontweight="normal" if tcp else "bold")
                else:  # along the line of sight: (.) towards the viewer, (x) away
                    toward = float(d @ out) > 0
                    mk = dict(ms=13 if not tcp else 9, mfc="none", mec=col, mew=1.4 if not tcp else 1.0)
                    ax.plot([ox], [oy], marker="o", zorder=9, ls="none", **mk)
                    ax.plot([ox], [oy], marker="." if toward else "x", color=col, ms=6 if toward else 5, zorder=9)
                    sign = "⊙" if toward else "⊗"
                    ax.annotate(f"{name} {k} {sign}", (ox, oy), xytext=(-9, 7) if tcp else (9, -9),
                                textcoords="offset points", color=col, fontsize=7.5 if tcp else 8.5,
                                ha="right" if tcp else "left", va="bottom" if tcp else "top", zorder=11,
                                fontweight="normal" if tcp else "bold")

        frame(geom["grasp_origin"], geom["grasp_axes"], False)
        frame(geom["tcp_origin"], geom["tcp_axes"], True)
        gx, gy = proj(geom["grasp_origin"])
        ax.plot([gx], [gy], marker="o", ms=4, color="k", zorder=12)
        tx, ty = proj(geom["tcp_origin"])
        ax.plot([tx], [ty], marker="D", ms=4, mfc="white", mec="k", zorder=12)

        # dimensions, between the fingers (above the frames) and beside them
        fb = geom["finger_boxes"][1]
        z_dim = 1e3 * -0.6 * geom["finger_depth_m"]
        if h[0] == 1.0:  # front view: opening across the pads, finger depth, palm height
            a0, a1 = (proj(p)[0] for p in geom["opening_segment"])
            ax.annotate("", xy=(a1, z_dim), xytext=(a0, z_dim),
                        arrowprops=dict(arrowstyle="<->", color="k", lw=1.0, shrinkA=0, shrinkB=0), zorder=7)
            ax.annotate(labels["opening"], (0.5 * (a0 + a1), z_dim), xytext=(0, 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize=8.5, zorder=9, bbox=_TEXT_BOX)
            xr = float(fb[1] @ h) * 1e3 + 0.25 * pad
            z0, z1 = proj(fb[0])[1], proj(fb[1])[1]
            ax.annotate("", xy=(xr, z1), xytext=(xr, z0),
                        arrowprops=dict(arrowstyle="<->", color="0.2", lw=0.9, shrinkA=0, shrinkB=0), zorder=7)
            ax.annotate(labels["finger_depth"], (xr, 0.5 * (z0 + z1)), xytext=(4, 0), textcoords="offset points",
                        fontsize=7.5, va="center", ha="left", color="0.2")
            pb = geom["palm_box"]
            xr = float(pb[1] @ h) * 1e3 - 0.1 * pad
            p0, p1 = proj(pb[0])[1], proj(pb[1])[1]
            ax.annotate("", xy=(xr, p1), xytext=(xr, p0),
                        arrowprops=dict(arrowstyle="<->", color="0.2", lw=0.9, shrinkA=0, shrinkB=0), zorder=7)
            ax.annotate(labels["palm_height"], (xr, 0.5 * (p0 + p1)), xytext=(-4, 0), textcoords="offset points",
                        fontsize=7.5, va="center", ha="right", color="0.2")
        else:  # side view: the pad width (both fingers lie one behind the other)
            a0, a1 = proj(fb[0])[0], proj(fb[1])[0]
            ax.annotate("", xy=(a1, z_dim), xytext=(a0, z_dim),
                        arrowprops=dict(arrowstyle="<->", color="k", lw=1.0, shrinkA=0, shrinkB=0), zorder=7)
            ax.annotate(labels["finger_width"], (0.5 * (a0 + a1), z_dim), xytext=(0, 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize=8.5, zorder=9, bbox=_TEXT_BOX)

        ax.set_xlim(*xl)
        ax.set_ylim(float(hi_mm[2]) + pad, float(lo_mm[2]) - pad)  # inverted: approach (+z) points down
        ax.set_aspect("equal", adjustable="box")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(("x" if h[0] == 1.0 else "y") + " [mm], grasp frame", fontsize=8)
        ax.set_ylabel("z [mm], grasp frame (approach ↓)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, color="0.9", lw=0.5, zorder=0)
        ax.set_axisbelow(True)

    fig.suptitle(labels["title"], fontsize=11, y=0.975)
    fig.text(0.5, 0.925, f"{labels['tcp']}   ·   {labels['opening']}, {labels['stroke']}", ha="center",
             fontsize=9)
    fig.text(0.5, 0.015, "solid arrows: grasp frame (● origin); dashed: TCP frame (◇ origin) = grasp_from_tcp, the "
             "pose the plugin commands; x red, y green, z blue. Boxes: finger_boxes() and palm_box() of the model.",
             ha="center", fontsize=7.5, color="0.3")
    return fig


def draw_gripper_frame(gripper, opening_m: float | None = None, *, size_px: tuple[int, int] = (1200, 650)
                       ) -> np.ndarray:
    """A picture of the gripper model with its grasp frame and TCP frame, two orthographic views.

    Parameters
    ----------
    gripper : GripperModel or str
        A model, or a name / YAML path for :func:`~graspseg.grasp.load_gripper`.
    opening_m : float, optional
        Distance between the finger pads, metres, within the stroke; default the largest opening.
    size_px : (width, height)
        Size of the returned image in pixels.

    Returns
    -------
    (H, W, 3) uint8 RGB image, ``H, W = size_px[1], size_px[0]``.

    Raises
    ------
    InputError
        ``opening_m`` is negative or outside the gripper's stroke.
    """
    fig = gripper_frame_figure(gripper, opening_m, size_px=size_px)
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[:, :, :3]
    return np.ascontiguousarray(img)
