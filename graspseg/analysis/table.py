"""The per-frame results table: one row per frame from the prompted one, written as Parquet (pyarrow).

:data:`COLUMNS` documents every column (type, unit, meaning); the same text is stored in the Parquet
schema's field metadata (``description``, ``unit``) and in ``docs/analysis.md``. NaN marks a number that
does not exist for the frame (target lost, pipeline not run, no ground truth).
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import MissingDependencyError

#: name -> (arrow type, unit, description)
COLUMNS: dict[str, tuple[str, str, str]] = {
    "frame": ("int64", "", "position of the frame in the episode (0 = first readable frame)"),
    "frame_id": ("string", "", "the frame's identifier in the recording"),
    "timestamp_s": ("float64", "s", "capture time"),
    "t_rel_s": ("float64", "s", "time since the prompted frame"),
    "tracked": ("bool", "", "the target was followed on this frame"),
    "track_event": ("string", "", "'lost' on the first frame of a loss, 'reacquired' on the first frame after one, else ''"),
    "track_reason": ("string", "", "why the target is lost (mask vanished, area jumped, score collapsed), else ''"),
    "track_score": ("float64", "", "tracker's quality of the mask in [0, 1] (0 when lost)"),
    "iou_previous": ("float64", "", "IoU of the tracker's mask with its last good mask"),
    "mask_area_px": ("int64", "px", "pixels of the tracked mask (0 when lost)"),
    "has_pose": ("bool", "", "the frame carries base_from_tcp"),
    "gt_iou": ("float64", "", "IoU of the tracked mask (empty when lost) with the true visible mask; 1 when both are empty"),
    "gt_boundary_f": ("float64", "", "boundary F (2 px tolerance) of the tracked mask against the true mask"),
    "gt_visible_fraction": ("float64", "", "visible over unoccluded pixels of the true target (synthetic episodes)"),
    "gt_area_px": ("int64", "px", "pixels of the true visible mask (-1: no ground truth)"),
    "analysed": ("bool", "", "the pipeline ran on this frame (tracked, on the stride, no error)"),
    "error": ("string", "", "the pipeline's error on this frame, else ''"),
    "boundary_error_px": ("float64", "px", "expected mask boundary error the margins were checked against"),
    "boundary_error_m": ("float64", "m", "the boundary error at the object's depth (shape.uncertainty)"),
    "pose_frame": ("string", "", "frame of center_*: 'base' when the frame has a pose and the rig tcp_from_camera, "
                   "else 'camera_color_optical'"),
    "center_x_m": ("float64", "m", "object centre x in pose_frame"),
    "center_y_m": ("float64", "m", "object centre y in pose_frame"),
    "center_z_m": ("float64", "m", "object centre z in pose_frame"),
    "yaw_rad": ("float64", "rad", "rotation of the object's x axis about pose_frame z"),
    "width_m": ("float64", "m", "short side of the object's footprint"),
    "height_m": ("float64", "m", "object top above the support plane"),
    "primitive": ("string", "", "fitted primitive (box, cylinder, sphere, other)"),
    "grasps_evaluated": ("int64", "", "grasp candidates evaluated"),
    "grasps_accepted": ("int64", "", "candidates that pass every margin check"),
    "best_score": ("float64", "", "score of the best accepted grasp"),
    "best_width_m": ("float64", "m", "object width between the best grasp's contacts"),
    "best_opening_m": ("float64", "m", "finger opening of the best grasp"),
    "best_worst_margin_mm": ("float64", "mm", "worst-case margin of the best accepted grasp"),
    "rejections": ("string", "", "JSON object: rejected candidates per reason"),
    "jump_m": ("float64", "m", "distance of the object centre from its constant-velocity prediction from the last two "
               "analysed frames since the last loss (from the last one, not judged, when only one exists)"),
    "jump_bound_m": ("float64", "m", "jump_factor x boundary_error_m: beyond it the frame is flagged pose_jump"),
    "flagged": ("bool", "", "a grasp planned on this frame would likely fail (see flags)"),
    "flags": ("string", "", "comma-separated: lost, no_grasp, pose_jump, width_jump, error"),
    "t_read_ms": ("float64", "ms", "reading and decoding the frame (varies run to run)"),
    "t_track_ms": ("float64", "ms", "tracker step incl. the segmenter's frame encoding (varies run to run)"),
    "t_perceive_ms": ("float64", "ms", "cloud, shape and grasp stages (varies run to run)"),
}

#: Columns whose values depend on the machine and its load (left out when comparing runs).
TIMING_COLUMNS = ("t_read_ms", "t_track_ms", "t_perceive_ms")


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError("pyarrow", "analysis", "the Parquet results table") from None
    return pa, pq


def to_arrow(rows: list[dict]):
    """A ``pyarrow.Table`` of ``rows`` with the documented schema (field metadata: unit, description)."""
    pa, _ = _pyarrow()
    types = {"int64": pa.int64(), "float64": pa.float64(), "string": pa.string(), "bool": pa.bool_()}
    fields = [pa.field(name, types[t], metadata={"unit": unit, "description": desc})
              for name, (t, unit, desc) in COLUMNS.items()]
    schema = pa.schema(fields, metadata={"schema": "graspseg.analysis.frames", "schema_version": "1"})
    return pa.Table.from_pydict({name: [r[name] for r in rows] for name in COLUMNS}, schema=schema)


def write_table(rows: list[dict], path: str | Path) -> Path:
    """Write ``rows`` as Parquet at ``path`` (inside an output set: the caller makes it atomic)."""
    _, pq = _pyarrow()
    pq.write_table(to_arrow(rows), str(path), compression="zstd")
    return Path(path)


def read_table(path: str | Path):
    """The results table of an episode as a ``pyarrow.Table``."""
    _, pq = _pyarrow()
    return pq.read_table(str(path))


def same_results(a: str | Path, b: str | Path) -> list[str]:
    """Differences between two results tables, timings aside (NaN equals NaN); empty when they agree."""
    ta, tb = read_table(a).to_pydict(), read_table(b).to_pydict()
    if set(ta) != set(tb):
        return [f"columns differ: {sorted(set(ta) ^ set(tb))}"]
    out = []
    for name in ta:
        if name in TIMING_COLUMNS:
            continue
        x, y = ta[name], tb[name]
        if len(x) != len(y):
            return [f"{len(x)} rows against {len(y)}"]
        bad = [k for k, (u, v) in enumerate(zip(x, y, strict=True))
               if not (u == v or (isinstance(u, float) and isinstance(v, float) and u != u and v != v))]
        if bad:
            out.append(f"{name}: rows {bad[:5]} differ ({x[bad[0]]!r} against {y[bad[0]]!r})")
    return out


__all__ = ["COLUMNS", "TIMING_COLUMNS", "read_table", "same_results", "to_arrow", "write_table"]
