"""The per-episode HTML report: one self-contained file (plots and overlays embedded as PNG data URIs).

Contents: a short text summary (frames, tracking, losses, flags, grasps, ground truth when present,
problems), plots over time (tracker score and IoU, best worst-case margin and grasp counts, width and
boundary error, object position), with lost frames shaded and flagged frames marked, and a strip of
overlays of the prompted frame and the first frame of each flagged run.

:class:`RrdEpisodeLog` writes the optional rerun recording of an episode (every frame with its tracked mask,
flags and best grasps) through :class:`graspseg.viz.rerun_view.RerunViewer`.
"""

from __future__ import annotations

import base64
import html
import io
import json

import numpy as np

from ..capture.images import encode_png


def _fig_png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _spans(x: np.ndarray, on: np.ndarray) -> list[tuple[float, float]]:
    out, start = [], None
    for k, f in enumerate([*on.tolist(), False]):
        if f and start is None:
            start = k
        elif not f and start is not None:
            out.append((x[start] - 0.5, x[k - 1] + 0.5))
            start = None
    return out


def plot_timeline(rows: list[dict]) -> bytes:
    """PNG of four stacked panels over the frame index (see the module docstring)."""
    from matplotlib.figure import Figure

    col = {k: np.array([r[k] for r in rows]) for k in rows[0]} if rows else {}
    x = col["frame"].astype(float)
    lost = ~col["tracked"].astype(bool)
    flagged = col["flagged"].astype(bool) & ~lost
    fig = Figure(figsize=(11, 9.5))
    axes = fig.subplots(4, 1, sharex=True)

    def legend(*axes_):  # one legend per panel, above it on the right (never over the curves)
        handles, labels = [], []
        for a in axes_:
            h, lab = a.get_legend_handles_labels()
            handles += h
            labels += lab
        axes_[0].legend(handles, labels, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=len(labels),
                        fontsize=8, frameon=False, borderaxespad=0.2)

    def decorate(ax):
        for a, b in _spans(x, lost):
            ax.axvspan(a, b, color="#d62728", alpha=0.12, lw=0)
        for f in x[flagged]:
            ax.axvline(f, color="#ff7f0e", alpha=0.5, lw=1, ls=":")
        ax.grid(alpha=0.3)

    ax = axes[0]
    ax.plot(x, col["track_score"], "-", color="#1f77b4", label="tracker score")
    if np.isfinite(col["gt_iou"]).any():
        ax.plot(x, col["gt_iou"], "-", color="#2ca02c", label="IoU with ground truth")
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("score / IoU")
    ax.set_title("tracking (red: target lost, orange dotted: flagged frames)", fontsize=10, loc="left")
    decorate(ax)
    legend(ax)

    ax = axes[1]
    ax.plot(x, col["best_worst_margin_mm"], "o-", ms=3, color="#9467bd", label="best worst-case margin (mm)")
    ax.set_ylabel("margin (mm)")
    ax2 = ax.twinx()
    ax2.plot(x, col["grasps_accepted"], "-", color="#8c564b", alpha=0.6, label="accepted grasps")
    ax2.set_ylabel("accepted grasps")
    ax.set_title("grasps", fontsize=10, loc="left")
    decorate(ax)
    legend(ax, ax2)

    ax = axes[2]
    ax.plot(x, col["width_m"] * 1e3, "o-", ms=3, color="#17becf", label="object width (mm)")
    ax.plot(x, col["best_width_m"] * 1e3, "-", color="#7f7f7f", alpha=0.7, label="best grasp width (mm)")
    ax.set_ylabel("width (mm)")
    ax3 = ax.twinx()
    ax3.plot(x, col["boundary_error_px"], "--", color="#bcbd22", label="boundary error (px)")
    ax3.set_ylabel("boundary error (px)")
    ax.set_title("size and expected boundary error", fontsize=10, loc="left")
    decorate(ax)
    legend(ax, ax3)

    ax = axes[3]
    frame_name = next((p for p in col["pose_frame"] if p), "camera_color_optical")
    for name, c in (("center_x_m", "#d62728"), ("center_y_m", "#2ca02c"), ("center_z_m", "#1f77b4")):
        v = col[name] * 1e3
        ax.plot(x, v - np.nanmedian(v) if np.isfinite(v).any() else v, "o-", ms=3, color=c,
                label=f"{name[7]} − median (mm)")
    ax.set_ylabel("position (mm)")
    ax.set_xlabel("frame")
    ax.set_title(f"object centre in {frame_name}", fontsize=10, loc="left")
    decorate(ax)
    legend(ax)
    fig.subplots_adjust(left=0.07, right=0.92, top=0.96, bottom=0.06, hspace=0.42)  # fixed: tight_layout costs ~1 s
    return _fig_png(fig)


def overlay_image(frame_index: int, color: np.ndarray, mask: np.ndarray, result, row: dict | None,
                  width_px: int = 480) -> np.ndarray:
    """(h, width_px, 3) RGB picture of one frame: the tracked mask, the grasps, and the frame's flags."""
    import cv2

    from ..viz.overlay import blend_mask, draw_contour, draw_grasps, draw_label

    img = blend_mask(color, mask, (0, 200, 255), 0.35) if mask.any() else color.copy()
    if mask.any():
        draw_contour(img, mask, (0, 200, 255), 2)
    if result is not None and len(result.grasps):
        img = draw_grasps(img, result.grasps, result.frame.intrinsics, result.gripper, max_rejected=15, top_k=3)
    scale = width_px / img.shape[1]
    img = cv2.resize(img, (width_px, int(round(img.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    label = f"frame {frame_index}"
    if row is not None:
        label += f"  {row['flags'] or 'prompted'}"
        if row["track_reason"]:
            reason = row["track_reason"]
            label += f" ({reason[:30]}...)" if len(reason) > 33 else f" ({reason})"
    draw_label(img, label, (8, 20), (255, 255, 255), 0.5)
    return img


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _fmt(v, nd: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return "—" if not np.isfinite(v) else f"{v:.{nd}f}"
    return html.escape(str(v))


def text_summary(summary: dict) -> list[str]:
    """Short sentences a person reads first."""
    s = summary
    out = [f"{s['frames']} frames analysed from frame {s['prompt_frame']} "
           f"({s['frames_in_episode']} readable in the episode), tracker {s['tracker']}, pipeline on every "
           f"{s['every']} frame(s)."]
    tr = s["tracking"]
    if tr["lost_runs"]:
        runs = "; ".join(f"{r['from_frame']}–{r['to_frame']} ({r['reason']})" for r in tr["lost_runs"][:5])
        out.append(f"Target lost on {tr['lost_frames']} frames: {runs}.")
        back = [e["frame"] for e in tr["events"] if e["event"] == "reacquired"]
        out.append(f"Re-acquired at frame(s) {', '.join(map(str, back))}." if back else "Never re-acquired.")
    else:
        out.append("Target followed on every frame.")
    if s["flagged_frames"]:
        counts = ", ".join(f"{k} {v}" for k, v in s["flag_counts"].items())
        out.append(f"{s['flagged_frames']} frames flagged as ones a grasp would likely fail on ({counts}).")
    else:
        out.append("No frame flagged.")
    g = s["grasps"]
    m = g["best_worst_margin_mm"]
    if m.get("n"):
        out.append(f"Accepted grasps on {g['frames_with_accepted']} of {s['analysed_frames']} analysed frames; "
                   f"best worst-case margin median {m['median']:.1f} mm (min {m['min']:.1f} mm).")
    gt = s.get("ground_truth")
    if gt:
        ev = gt.get("events") or {}
        delay = ev.get("max_abs_delay_frames")
        out.append(f"Against ground truth: mean IoU {gt['mean_iou']:.3f} over all frames"
                   + (f", {gt['mean_iou_visible']:.3f} where the target is at least half visible" if
                      gt.get("mean_iou_visible") is not None else "")
                   + (f"; loss / re-acquisition detected within {delay} frame(s) of the truth"
                      f" ({ev['missed']} missed, {ev['spurious']} spurious)" if delay is not None else "") + ".")
    if s["problems"]:
        out.append("Problems: " + " ".join(s["problems"][:5]))
    return out


def render_html(summary: dict, rows: list[dict], overlays: dict[int, np.ndarray], timeline_png: bytes | None = None
                ) -> str:
    """The report as one HTML document (no external resources); ``timeline_png`` is :func:`plot_timeline`'s
    picture when the caller already drew it."""
    name = summary["episode"]["name"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>graspseg analysis: {html.escape(name)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}"
        "h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
        ".strip{display:flex;flex-wrap:wrap;gap:8px}.strip figure{margin:0}.strip figcaption{font-size:12px}"
        "img{max-width:100%}.flag{color:#b35900}.lost{color:#b00}</style></head><body>",
        f"<h1>Episode {html.escape(name)}</h1>",
        f"<p>{html.escape(summary['episode']['path'])} ({html.escape(summary['episode']['kind'])})</p>",
        "<h2>Summary</h2><ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in text_summary(summary)) + "</ul>",
    ]
    if rows:
        parts.append("<h2>Over time</h2>")
        parts.append(f"<img alt='timeline plots' src='{_data_uri(timeline_png or plot_timeline(rows))}'>")
    if overlays:
        parts.append("<h2>Prompted frame and flagged frames</h2><div class='strip'>")
        for k, img in overlays.items():
            parts.append(f"<figure><img alt='frame {k}' src='{_data_uri(encode_png(img))}' width='{img.shape[1]}'>"
                         f"<figcaption>frame {k}</figcaption></figure>")
        parts.append("</div>")
    flagged = [r for r in rows if r["flagged"]]
    if flagged:
        parts.append("<h2>Flagged frames</h2><table><tr><th>frame</th><th>t (s)</th><th>flags</th><th style='text-align:left'>reason</th>"
                     "<th>jump (mm)</th><th>bound (mm)</th><th>accepted</th><th>margin (mm)</th></tr>")
        for r in flagged[:200]:
            cls = "lost" if not r["tracked"] else "flag"
            parts.append(f"<tr class='{cls}'><td>{r['frame']}</td><td>{_fmt(r['t_rel_s'], 2)}</td>"
                         f"<td>{html.escape(r['flags'])}</td><td style='text-align:left'>"
                         f"{html.escape(r['track_reason'] or r['error'])}</td><td>{_fmt(r['jump_m'] * 1e3, 1)}</td>"
                         f"<td>{_fmt(r['jump_bound_m'] * 1e3, 1)}</td><td>{r['grasps_accepted']}</td>"
                         f"<td>{_fmt(r['best_worst_margin_mm'], 1)}</td></tr>")
        parts.append("</table>")
    visible = {k: v for k, v in summary.items() if k not in ("config", "timing")}
    parts.append("<h2>Details</h2><details><summary>summary.json</summary><pre>"
                 + html.escape(json.dumps(visible, indent=1, default=str)) + "</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)


__all__ = ["overlay_image", "plot_timeline", "render_html", "text_summary"]


def frame_status_line(row: dict) -> str:
    """One line on a frame's row: tracking, event, flags, best grasp (the rerun ``status`` text)."""
    parts = [f"frame {row['frame']} ({row['frame_id']})"]
    parts.append(f"tracked, score {row['track_score']:.2f}" if row["tracked"] else f"LOST: {row['track_reason']}")
    if row["track_event"]:
        parts.append(row["track_event"])
    if row["analysed"]:
        if row["grasps_accepted"]:
            parts.append(f"best grasp: score {row['best_score']:.2f}, width {row['best_width_m'] * 1e3:.1f} mm, "
                         f"worst-case margin {row['best_worst_margin_mm']:.1f} mm "
                         f"({row['grasps_accepted']}/{row['grasps_evaluated']} accepted)")
        else:
            parts.append(f"no grasp accepted ({row['grasps_evaluated']} evaluated: {row['rejections']})")
    if row["error"]:
        parts.append(row["error"])
    if row["flags"]:
        parts.append(f"FLAGS: {row['flags']}")
    return "; ".join(parts)


class RrdEpisodeLog:
    """An episode's ``.rrd`` rerun recording, fed frame by frame (:func:`analyze_source`'s ``on_frame``).

    Each frame is logged on the ``frame`` timeline at its episode index: the colour image, the tracked mask,
    for analysed frames the boundary band, cloud and grasps (accepted ones green, the best thick; rejected ones
    faint red), a status line (WARN on flagged frames) and scalars ``metrics/track_score``,
    ``metrics/best_worst_margin_mm``, ``metrics/grasps_accepted``.
    """

    def __init__(self, path, episode: str) -> None:
        from ..viz.rerun_view import RerunViewer

        self.viewer = RerunViewer(str(path), app_id="graspseg_analysis", recording_id=episode)

    def __call__(self, frame, mask: np.ndarray, result, row: dict) -> None:
        self.viewer.log_frame(frame, row["frame"], result, mask=mask, text=frame_status_line(row),
                              warn=bool(row["flagged"]),
                              scalars={"track_score": row["track_score"],
                                       "best_worst_margin_mm": row["best_worst_margin_mm"],
                                       "grasps_accepted": row["grasps_accepted"] if row["analysed"] else None})

    def close(self) -> None:
        """Flush everything to the file."""
        self.viewer.close()
