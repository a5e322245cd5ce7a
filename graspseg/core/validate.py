"""Checked conversions of values read from files (JSON, YAML, NPY) and plausibility bounds for units.

Every loader in ``core`` and ``capture`` turns a field into a number or an array through these
functions, so that a string where a matrix belongs, a ``null`` depth scale, a 3-element quaternion or
a NaN all end as a typed error that names the field, the value, the expected unit and the fix.

Plausibility bounds catch the most common unit mistake, millimetres (or centimetres) written where
metres belong: a wrist camera sits within :data:`MAX_TCP_FROM_CAMERA_M` of the tool centre point and a
robot's TCP within :data:`MAX_BASE_FROM_TCP_M` of its base. Both bounds can be raised explicitly
(a ``max_translation_m`` key beside the transform, ``max_tcp_from_camera_m`` in a rig file) or the check
switched off with ``allow_implausible: true``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ConfigError, ShapeError, UnitsError

#: Default bound on ``|tcp_from_camera.translation|`` (metres): a wrist camera sits close to the tool.
MAX_TCP_FROM_CAMERA_M = 0.5
#: Default bound on ``|base_from_tcp.translation|`` (metres): the reach of a large industrial arm.
MAX_BASE_FROM_TCP_M = 3.0
#: Plausible horizontal field of view of a pinhole colour camera, degrees (telephoto .. wide angle).
FOV_RANGE_DEG = (5.0, 160.0)

#: Translation bounds by (to_frame, from_frame); other frame pairs are not bounded here.
TRANSLATION_BOUNDS_M: dict[tuple[str, str], float] = {
    ("tcp", "camera_color_optical"): MAX_TCP_FROM_CAMERA_M,
    ("base", "tcp"): MAX_BASE_FROM_TCP_M,
}


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def as_number(value: Any, *, field: str, unit: str, source: str = "", fix: str = "") -> float:
    """``value`` as a finite float, or a typed error naming ``field``, the value and ``unit``.

    Booleans, ``None``, strings, lists and mappings are refused (:class:`ConfigError`); NaN and
    infinity are refused (:class:`UnitsError`).
    """
    where = f"{source}: " if source else ""
    hint = f"; {fix}" if fix else ""
    if isinstance(value, bool) or value is None or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(
            f"{where}{field} is {_short(value)} ({type(value).__name__}); expected a number in {unit}{hint}"
        )
    out = float(value)
    if not math.isfinite(out):
        raise UnitsError(f"{where}{field} is {out}; expected a finite number in {unit}{hint}")
    return out


def as_float_array(
    value: Any, shape: tuple[int | None, ...], *, field: str, unit: str, source: str = "", fix: str = ""
) -> np.ndarray:
    """``value`` (nested lists or an array) as a finite float64 array of ``shape`` (None = any length).

    Raises
    ------
    ConfigError
        A string, ``None``, a mapping, booleans, complex or otherwise non-numeric entries, ragged lists.
    ShapeError
        Numbers of the wrong shape.
    UnitsError
        NaN or infinite entries.
    """
    where = f"{source}: " if source else ""
    hint = f"; {fix}" if fix else ""
    want = "x".join("N" if s is None else str(s) for s in shape)
    if len(shape) == 1:
        listed = "a list of numbers" if shape[0] is None else f"a list of {shape[0]} numbers"
    else:
        listed = f"a {want} list of numbers"
    if value is None or isinstance(value, (str, bytes, Mapping, bool)):
        raise ConfigError(
            f"{where}{field} is {_short(value)} ({type(value).__name__}); expected {listed} in {unit}{hint}"
        )
    try:
        raw = np.asarray(value)
    except (ValueError, TypeError):
        raw = None
    if raw is None or raw.dtype == object or raw.dtype.kind not in "iuf":
        what = "ragged or non-numeric" if raw is None or raw.dtype == object else f"of dtype {raw.dtype}"
        raise ConfigError(
            f"{where}{field} is {_short(value)}, which is {what}; expected {listed} (real) in {unit}{hint}"
        )
    arr = raw.astype(np.float64)
    if arr.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, arr.shape, strict=False)):
        raise ShapeError(f"{where}{field} has shape {arr.shape}, expected {want} ({unit}){hint}")
    if not np.all(np.isfinite(arr)):
        raise UnitsError(f"{where}{field} contains NaN or inf ({_short(arr.tolist())}); expected finite {unit}{hint}")
    return arr


def as_flag(value: Any, *, field: str, source: str = "") -> bool:
    """A boolean option read from a file (``true``/``false`` only)."""
    if not isinstance(value, bool):
        where = f"{source}: " if source else ""
        raise ConfigError(f"{where}{field} is {_short(value)}; expected true or false")
    return value


def check_translation_plausible(
    translation_m: np.ndarray, max_m: float, *, name: str, source: str = "", override: str = ""
) -> None:
    """Refuse a translation longer than ``max_m`` metres as a likely unit mistake (mm or cm for m).

    Parameters
    ----------
    translation_m : (3,) float
        Translation, metres.
    max_m : float
        Bound, metres.
    name : str
        Transform name for the message (``tcp_from_camera_color_optical``).
    override : str
        How the user raises the bound (shown in the message).
    """
    t = np.asarray(translation_m, dtype=np.float64).reshape(3)
    dist = float(np.linalg.norm(t))
    if dist <= max_m:
        return
    where = f"{source}: " if source else ""
    guess = ""
    for unit, factor in (("centimetres", 100.0), ("millimetres", 1000.0)):
        if dist / factor <= max_m:
            guess = f"; as {unit} it would be {np.round(t / factor, 4).tolist()} m"
            break
    raise UnitsError(
        f"{where}{name} translation {np.round(t, 4).tolist()} is {dist:.3f} m long, more than the plausible "
        f"{max_m:g} m — millimetres? translations are in metres (divide mm by 1000){guess}"
        + (f"; if the value is right, {override}" if override else "")
    )


def translation_bound(d: Mapping, to_frame: str, from_frame: str, *, source: str = "") -> float | None:
    """The translation bound for a transform mapping ``d`` (None: unbounded or ``allow_implausible``)."""
    if "allow_implausible" in d and as_flag(d["allow_implausible"], field="allow_implausible", source=source):
        return None
    default = TRANSLATION_BOUNDS_M.get((to_frame, from_frame))
    if "max_translation_m" in d:
        bound = as_number(d["max_translation_m"], field="max_translation_m", unit="metres", source=source)
        if bound <= 0:
            raise UnitsError(f"{source + ': ' if source else ''}max_translation_m must be > 0 m, got {bound}")
        return bound
    return default


def check_fov_plausible(width: int, height: int, fx: float, fy: float, cx: float, cy: float, *, source: str = "") -> None:
    """Refuse intrinsics that no pinhole colour camera of a ``width`` × ``height`` image has.

    Checks the horizontal and vertical field of view against :data:`FOV_RANGE_DEG`, the aspect
    ``fx / fy`` (0.5 .. 2) and that the principal point lies inside the image.
    """
    where = f"{source}: " if source else ""
    lo, hi = FOV_RANGE_DEG
    for name, f, size in (("fx", fx, width), ("fy", fy, height)):
        fov = math.degrees(2.0 * math.atan2(size / 2.0, f))
        if not lo <= fov <= hi:
            typical = 0.8 * size  # about 64 degrees
            raise UnitsError(
                f"{where}{name} = {f:g} px is implausible for a {size} px image: it gives a {fov:.1f} deg field of "
                f"view, outside the plausible {lo:g}-{hi:g} deg; focal lengths are in pixels for this image size (a {width}x{height} camera "
                f"typically has {name} ~ {typical:.0f} px): were metres or millimetres given, or the intrinsics of "
                "another resolution?"
            )
    if not 0.5 <= fx / fy <= 2.0:
        raise UnitsError(
            f"{where}fx = {fx:g} px and fy = {fy:g} px differ by a factor {fx / fy:.2f}; square-pixel cameras have "
            "fx ~ fy — check that fx and fy belong to the same camera and resolution"
        )
    if not (0.0 <= cx <= width and 0.0 <= cy <= height):
        raise UnitsError(
            f"{where}principal point (cx, cy) = ({cx:g}, {cy:g}) px lies outside the {width}x{height} image; "
            f"it is usually near the centre ({(width - 1) / 2:g}, {(height - 1) / 2:g}) — check that width/height "
            "belong to these intrinsics"
        )


def read_data_file(path, what: str, *, kind: str = "yaml", error: type[Exception] = ConfigError):
    """Parse a YAML or JSON file; every way it can fail is ``error`` naming ``what``, the path and the fix.

    Besides a missing or malformed file (handled by :mod:`graspseg.core.io`), a directory, an unreadable
    file and a binary (non-UTF-8) file are refused too.
    """
    from pathlib import Path

    from .io import read_json, read_yaml

    p = Path(path)
    if p.is_dir():
        raise error(f"{what} {p} is a directory; give the path of a {kind.upper()} file")
    try:
        return (read_json if kind == "json" else read_yaml)(p, what, error)
    except UnicodeDecodeError:
        raise error(f"{what} {p} is not a text file (binary or not UTF-8); give a {kind.upper()} file") from None
    except OSError as e:
        raise error(f"cannot read {what} {p}: {e.strerror or e}; check the path and its permissions") from None
    except RecursionError:
        raise error(f"{what} {p} is nested too deeply to be a {kind.upper()} file") from None
