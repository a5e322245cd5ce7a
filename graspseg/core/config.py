"""Dataclass configs from YAML/dicts and ``--section.field=value`` overrides, with typed errors.

Dataclasses are the schema: unknown keys and wrongly typed values are rejected with the dotted path of
the offending field.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError

C = TypeVar("C")


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in (a for a in args if a is not type(None)):
            try:
                return _convert(a, value, path)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{path}: cannot convert {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{path}: got {value!r}, expected one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value, path=path)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{path}: expected {len(args)} values, got {len(value)}")
            return tuple(_convert(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
        inner = args[0] if args else Any
        seq = [_convert(inner, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(seq) if origin is tuple else seq
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "on", "off", "yes", "no", "1", "0"):
            return value.lower() in ("true", "on", "yes", "1")
        raise ConfigError(f"{path}: expected true/false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        try:
            out = tp(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{path}: expected {tp.__name__}, got {value!r}") from None
        if tp is int and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        if tp is float and math.isnan(out):
            raise ConfigError(f"{path}: got NaN; expected a number")
        return out
    if tp is str:
        if not isinstance(value, str | int | float):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return str(value)
    return value


def from_dict(cls: type[C], data: dict | None, *, path: str = "") -> C:
    """Build dataclass ``cls`` from a mapping, recursively; unknown keys raise :class:`ConfigError`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(str(k) for k in set(data) - set(fields))
    if unknown:
        where = path or cls.__name__
        raise ConfigError(f"{where}: unknown option(s) {unknown}; valid options are {sorted(fields)}")
    kwargs = {k: _convert(hints[k], v, f"{path + '.' if path else ''}{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{path or cls.__name__}: {e}") from None


def to_dict(obj: Any) -> Any:
    """Plain-data (YAML/JSON-ready) view of a dataclass config."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, tuple | list):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def load_yaml(cls: type[C], path: str | Path) -> C:
    """Read a YAML file into dataclass ``cls``."""
    from .validate import read_data_file

    return from_dict(cls, read_data_file(path, "config file") or {}, path=str(path))


def with_overrides(config: C, overrides: dict[str, Any] | list[str]) -> C:
    """A copy of ``config`` with dotted overrides applied, e.g. ``{"segment.backend": "sam"}`` or ``["grasp.friction_coefficient=0.4"]``.

    String values are parsed as YAML scalars (``0.4`` → float, ``true`` → bool, ``[1, 2]`` → list).
    """
    import yaml

    if isinstance(overrides, list):
        pairs = {}
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"override {item!r} must look like section.field=value")
            try:
                pairs[key.strip().lstrip("-")] = yaml.safe_load(value)
            except yaml.YAMLError as e:
                raise ConfigError(
                    f"override {item!r}: the value is not valid YAML ({' '.join(str(e).split())[:120]}); quote strings, "
                    "write lists as [1, 2]"
                ) from None
        overrides = pairs
    data = to_dict(config)
    for key, value in overrides.items():
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            raise ConfigError(f"override key {key!r} must look like section.field (e.g. grasp.friction_coefficient)")
        node = data
        obj: Any = config  # the config object beside ``node``: a plain dict field (backend options) takes new keys
        parts = key.split(".")
        for p in parts[:-1]:
            if not isinstance(node, dict) or p not in node:
                raise ConfigError(f"override {key!r}: no config section {p!r}")
            node = node[p]
            obj = obj.get(p) if isinstance(obj, dict) else getattr(obj, p, None)
        free_form = isinstance(obj, dict)
        if not isinstance(node, dict) or (parts[-1] not in node and not free_form):
            valid = sorted(node) if isinstance(node, dict) else []
            raise ConfigError(f"override {key!r}: unknown option {parts[-1]!r}; valid options here: {valid}")
        node[parts[-1]] = value
    return from_dict(type(config), data)
