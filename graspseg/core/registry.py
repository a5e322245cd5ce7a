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

from .errors import BackendNotFoundError, ConfigError, MissingDependencyError

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Entry:
    target: object  # the object itself, or "module:attr"
    requires: tuple[str, ...]  # importable module names the entry needs
    extra: str | None  # pip extra that installs them
    description: str
    entry_point: str = ""  # "name = module:attr (distribution version)" when an installed package added it


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

    def unregister(self, name: str) -> None:
        """Remove ``name`` (no error when it is not registered)."""
        self._entries.pop(name, None)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded or not self.entry_point_group:
            return
        self._entry_points_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.entry_point_group):
            dist = getattr(ep, "dist", None)
            origin = f"{ep.name} = {ep.value}" + (f" ({dist.name} {dist.version})" if dist is not None else "")
            if ep.name in self._entries:
                log.warning("%s entry point %r ignored: graspseg already has a %s named %r; the package must "
                            "publish it under another name", self.entry_point_group, origin, self.kind, ep.name)
                continue
            self._entries[ep.name] = _Entry(ep.value, (), None, f"plugin from {ep.value}", origin)

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
            try:
                module_name, _, attr = target.partition(":")
                obj = importlib.import_module(module_name)
                for part in attr.split(".") if attr else ():
                    obj = getattr(obj, part)
            except (ImportError, AttributeError) as err:
                if not e.entry_point:
                    raise
                raise ConfigError(
                    f"{self.kind} '{name}' comes from the entry point {e.entry_point} in the group "
                    f"'{self.entry_point_group}', which cannot be loaded ({type(err).__name__}: {err}); reinstall "
                    f"or fix that package, or uninstall it"
                ) from err
            self._entries[name] = _Entry(obj, e.requires, e.extra, e.description, e.entry_point)
            target = obj
        return target  # type: ignore[return-value]

    def create(self, name: str, *args, **kwargs):
        """Call the registered factory with the given arguments.

        Raises
        ------
        ConfigError
            The arguments do not fit the factory's signature (a required option such as ``model`` is
            missing, or an unknown one is given); the message lists what the factory takes.
        """
        factory = self.get(name)
        check_arguments(factory, args, kwargs, what=f"{self.kind} '{name}'")
        return factory(*args, **kwargs)

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._entries


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def check_arguments(factory: Callable, args: tuple, kwargs: dict, *, what: str) -> None:
    """Raise :class:`ConfigError` unless ``factory(*args, **kwargs)`` binds to its signature.

    A missing required option is named with its command-line spelling (``model`` → ``--model``).
    """
    import inspect

    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    params = [p for p in sig.parameters.values() if p.name != "self"]
    try:
        sig.bind(*args, **kwargs)
    except TypeError:
        accepts_kw = any(p.kind is p.VAR_KEYWORD for p in params)
        named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        required = [p.name for p in named if p.default is p.empty]
        positional = [p.name for p in named if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        given = set(kwargs) | set(positional[: len(args)])
        missing = [n for n in required if n not in given]
        unknown = [] if accepts_kw else sorted(set(kwargs) - {p.name for p in named})
        options = ", ".join(f"{p.name}{'' if p.default is p.empty else '=' + repr(p.default)}" for p in named) + (
            ", **options" if accepts_kw else "")
        if missing:
            raise ConfigError(
                f"{what} needs option(s) {missing} (on the command line: "
                f"{' '.join(_flag(n) + ' ...' for n in missing)}); it takes: {options}"
            ) from None
        if unknown:
            raise ConfigError(f"{what} has no option(s) {unknown}; it takes: {options}") from None
        raise ConfigError(f"{what} cannot be called with {len(args)} positional argument(s); it takes: {options}") from None
