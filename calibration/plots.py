"""PNG plots of a hand-eye result: residuals per pose and board positions in the base frame."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from graspseg.core.io import atomic_write_bytes

from .handeye import HandEyeResult


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return atomic_write_bytes(path, buf.getvalue())


def write_hand_eye_plots(result: HandEyeResult, out_dir: str | Path) -> list[Path]:
    """Write ``residuals_per_pose.png`` and ``board_positions_in_base.png`` into ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = len(result.names)
    x = np.arange(n)
    outl = set(result.outliers)
    colors = ["tab:red" if nm in outl else "tab:blue" for nm in result.names]

    fig = Figure(figsize=(max(6.0, 0.35 * n + 2), 4.5))
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    ax1.bar(x, result.residual_rms_px, color=colors)
    ax1.plot(x, result.pnp_rms_px, "k.", label="board PnP alone")
    ax1.set_ylabel("reprojection RMS [px]")
    ax1.set_title(f"hand-eye residuals per pose (red = outlier); overall {result.rms_px:.2f} px")
    ax1.legend(loc="upper right", fontsize=8)
    ax2.bar(x, result.board_deviation_mm, color=colors)
    ax2.set_ylabel("board origin offset [mm]")
    ax2.set_xticks(x)
    ax2.set_xticklabels(result.names, rotation=90, fontsize=7)
    fig.tight_layout()
    p1 = _save(fig, out / "residuals_per_pose.png")

    pos_mm = (result.board_in_base_m - result.base_from_board.translation) * 1000.0
    fig = Figure(figsize=(9, 4.5))
    axa, axb = fig.subplots(1, 2)
    for ax, (i, j), lab in ((axa, (0, 1), ("x", "y")), (axb, (0, 2), ("x", "z"))):
        ax.scatter(pos_mm[:, i], pos_mm[:, j], c=colors)
        for k in range(n):
            ax.annotate(str(k), (pos_mm[k, i], pos_mm[k, j]), fontsize=7)
        ax.axhline(0, color="0.7", lw=0.5)
        ax.axvline(0, color="0.7", lw=0.5)
        ax.set_xlabel(f"{lab[0]} - board {lab[0]} [mm] (base frame)")
        ax.set_ylabel(f"{lab[1]} - board {lab[1]} [mm] (base frame)")
        ax.set_aspect("equal", adjustable="datalim")
    fig.suptitle(f"board origin in base seen from each pose; spread {result.board_spread_mm:.2f} mm RMS")
    fig.tight_layout()
    p2 = _save(fig, out / "board_positions_in_base.png")
    return [p1, p2]
