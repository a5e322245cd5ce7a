"""A generic registry of pluggable backends with lazy imports.

Entries are registered either as objects or as ``"module:attr"`` strings that are imported on first
use, so heavy optional dependencies load only when their backend is asked for. Third-party packages
add entries through the entry-point group given at construction (e.g. ``graspseg.segmenters``).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import BackendNotFoundError, MissingDependencyError

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Entry:
    target: object  # the object itself, or "module:attr"
    requires: tuple[str, ...]  # importable module names the entry needs
    extra: str | None  # pip extra that installs them
    description: str


class Registry(Generic[T]):
    """Name → factory mapping for one kind of pluggable part (segmenters, grippers, exporters...)."""

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, _Entry] = {}
        self._entry_points_loaded = False

    def register(
        self,
        name: str,
        target: object | None = None,
        *,
        requires: Iterable[str] = (),
        extra: str | None = None,
        description: str = "",
        replace: bool = False,
    ) -> Callable[[T], T] | None:
        """Register ``target`` (an object or ``"module:attr"``) under ``name``; usable as a decorator."""

        def _do(obj):
            if name in self._entries and not replace:
                raise ValueError(f"{self.kind} '{name}' is already registered; pass replace=True to override")
            self._entries[name] = _Entry(obj, tuple(requires), extra, description)
            return obj

        if target is None:
            return _do
        _do(target)
        return None

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded or not self.entry_point_group:
            return
        self._entry_points_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.entry_point_group):
            if ep.name not in self._entries:
                self._entries[ep.name] = _Entry(ep.value, (), None, f"plugin from {ep.value}")

    def names(self) -> list[str]:
        """Every registered name, installed or not."""
        self._load_entry_points()
        return sorted(self._entries)

    def is_available(self, name: str) -> bool:
        e = self._entries.get(name)
        return e is not None and all(importlib.util.find_spec(m) is not None for m in e.requires)

    def available(self) -> list[str]:
        """Names whose required packages are installed."""
        return [n for n in self.names() if self.is_available(n)]

    def describe(self, name: str) -> str:
        return self._entries[name].description

    def get(self, name: str) -> T:
        """The registered object (importing it on first use)."""
        self._load_entry_points()
        if name not in self._entries:
            raise BackendNotFoundError(
                f"no {self.kind} named '{name}'; available: {', '.join(self.available()) or 'none'}"
                + (f" (registered but not installed: {', '.join(sorted(set(self.names()) - set(self.available())))})"
                   if set(self.names()) - set(self.available()) else "")
            )
        e = self._entries[name]
        for mod in e.requires:
            if importlib.util.find_spec(mod) is None:
                raise MissingDependencyError(mod, e.extra or "all", f"{self.kind} '{name}'")
        target = e.target
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            obj = importlib.import_module(module_name)
            for part in attr.split(".") if attr else ():
                obj = getattr(obj, part)
            self._entries[name] = _Entry(obj, e.requires, e.extra, e.description)
            target = obj
        return target  # type: ignore[return-value]

    def create(self, name: str, *args, **kwargs):
        """Call the registered factory with the given arguments."""
        return self.get(name)(*args, **kwargs)

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._entries
