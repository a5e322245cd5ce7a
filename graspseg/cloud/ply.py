"""A small PLY writer and reader for point clouds (no open3d needed).

Writes vertices ``x, y, z`` (float32, metres), optional ``red, green, blue`` (uint8) and optional extra
per-vertex scalar properties (e.g. the boundary-band ``label``). Binary little-endian by default,
ASCII on request; the reader understands both (for the files written here and most simple point PLYs).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..core.errors import InputError, ShapeError
from ..core.io import atomic_write_bytes

_PLY_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}
_NP_TO_PLY = {
    "i1": "char",
    "u1": "uchar",
    "i2": "short",
    "u2": "ushort",
    "i4": "int",
    "u4": "uint",
    "f4": "float",
    "f8": "double",
}


def _as_points(points) -> np.ndarray:
    pts = getattr(points, "points_in_camera", points)
    p = np.asarray(pts)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ShapeError(f"points must be an (N, 3) array in metres, got shape {p.shape}")
    return p


def write_ply(
    path: str | Path,
    points: np.ndarray,
    colors: np.ndarray | None = None,
    *,
    properties: Mapping[str, np.ndarray] | None = None,
    binary: bool = True,
    comments: tuple[str, ...] = (),
) -> Path:
    """Write a point cloud as PLY (atomically).

    Parameters
    ----------
    path : str or Path
        Output file.
    points : (N, 3) float
        Points, metres (written as float32). An :class:`ObjectCloud` writes its camera-frame points.
    colors : (N, 3) uint8, optional
        RGB per point (floats in [0, 1] are scaled to 0..255).
    properties : mapping of name -> (N,) array, optional
        Extra per-vertex scalars (their dtype is kept: uint8, int32, float32...).
    binary : bool
        Binary little-endian (compact, default) or ASCII.
    comments : tuple of str
        Header comments (e.g. ``"frame camera_color_optical"``, ``"units m"``).

    Returns
    -------
    Path
        The written file.
    """
    p = _as_points(points).astype("<f4")
    n = len(p)
    fields: list[tuple[str, np.ndarray]] = [("x", p[:, 0]), ("y", p[:, 1]), ("z", p[:, 2])]
    if colors is not None:
        c = np.asarray(colors)
        if c.shape != (n, 3):
            raise ShapeError(f"colors must be ({n}, 3) RGB, got shape {c.shape}")
        if np.issubdtype(c.dtype, np.floating):
            c = np.clip(np.round(c * 255.0 if c.size and float(c.max()) <= 1.0 else c), 0, 255)
        c = c.astype(np.uint8)
        fields += [("red", c[:, 0]), ("green", c[:, 1]), ("blue", c[:, 2])]
    for name, values in (properties or {}).items():
        v = np.asarray(values).reshape(-1)
        if v.shape != (n,):
            raise ShapeError(
                f"property '{name}' must have one value per point ({n}), got shape {np.shape(values)}"
            )
        if v.dtype == bool:
            v = v.astype(np.uint8)
        code = v.dtype.str[1:]
        if code not in _NP_TO_PLY:
            v = v.astype(np.float32)
            code = "f4"
        fields.append((str(name), v.astype("<" + code)))
    header = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0"]
    header += [f"comment {c}" for c in comments]
    header.append(f"element vertex {n}")
    header += [f"property {_NP_TO_PLY[a.dtype.str[1:]]} {name}" for name, a in fields]
    header.append("end_header")
    head = ("\n".join(header) + "\n").encode("ascii")
    if binary:
        rec = np.empty(n, dtype=[(name, a.dtype) for name, a in fields])
        for name, a in fields:
            rec[name] = a
        body = rec.tobytes()
    else:
        cols = []
        for _, a in fields:
            cols.append(np.char.mod("%.7g" if a.dtype.kind == "f" else "%d", a))
        lines = [" ".join(row) for row in zip(*cols, strict=True)] if n else []
        body = ("\n".join(lines) + ("\n" if n else "")).encode("ascii")
    return atomic_write_bytes(path, head + body)


def read_ply(path: str | Path) -> dict[str, np.ndarray]:
    """Read the vertex element of a PLY file (binary little-endian or ASCII).

    Returns
    -------
    dict
        ``points`` (N, 3) float32, ``colors`` (N, 3) uint8 when present, and every other vertex
        property by name.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"PLY file {path} does not exist") from None
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply") or end < 0:
        raise InputError(f"{path} is not a PLY file (no 'ply' magic / 'end_header'); write it with write_ply")
    header = data[:end].decode("ascii", errors="replace").splitlines()
    body = data[end + len(b"end_header\n") :]
    fmt = None
    n = 0
    props: list[tuple[str, str]] = []
    in_vertex = False
    for line in header:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "format":
            fmt = parts[1]
        elif parts[0] == "element":
            in_vertex = parts[1] == "vertex"
            if in_vertex:
                n = int(parts[2])
        elif parts[0] == "property" and in_vertex:
            if parts[1] == "list":
                raise InputError(f"{path}: list properties in the vertex element are not supported")
            if parts[1] not in _PLY_TYPES:
                raise InputError(f"{path}: unknown PLY property type {parts[1]!r}")
            props.append((parts[2], _PLY_TYPES[parts[1]]))
    if fmt == "binary_little_endian":
        dt = np.dtype([(name, "<" + code) for name, code in props])
        rec = np.frombuffer(body, dtype=dt, count=n)
        cols = {name: rec[name] for name, _ in props}
    elif fmt == "ascii":
        rows = body.decode("ascii").split("\n")[:n]
        arr = np.array([r.split() for r in rows], dtype=np.float64).reshape(n, len(props))
        cols = {name: arr[:, i].astype(code) for i, (name, code) in enumerate(props)}
    else:
        raise InputError(f"{path}: PLY format {fmt!r} is not supported (binary_little_endian or ascii)")
    if not all(k in cols for k in "xyz"):
        raise InputError(f"{path}: the vertex element has no x, y, z properties")
    out: dict[str, np.ndarray] = {
        "points": np.stack([cols.pop("x"), cols.pop("y"), cols.pop("z")], 1).astype(np.float32)
    }
    if all(k in cols for k in ("red", "green", "blue")):
        out["colors"] = np.stack([cols.pop("red"), cols.pop("green"), cols.pop("blue")], 1).astype(np.uint8)
    out.update({k: np.array(v) for k, v in cols.items()})
    return out
