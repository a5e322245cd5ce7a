"""The ``graspseg`` command line.

Each sub-command lives in ``graspseg.commands.<name>`` and exposes ``register(subparsers)``. Every
:class:`~graspseg.core.errors.GraspsegError` becomes a one-line message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__
from .core.errors import GraspsegError

#: Sub-command modules under ``graspseg.commands``, in help order.
COMMAND_MODULES: tuple[str, ...] = ("perceive", "segment", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graspseg",
        description="Grasp-planning perception for wrist RGB-D cameras: promptable segmentation, masked clouds, "
        "grasps with boundary-error margins.",
    )
    parser.add_argument("--version", action="version", version=f"graspseg {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"graspseg.commands.{name}").register(sub)
    return parser


def _yaml_scalar(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    overrides = {}
    for item in extra:  # --section.field=value mirrors the config (STYLE: flags mirror config fields)
        key, sep, value = item.partition("=")
        if not (item.startswith("--") and "." in key and sep):
            parser.error(f"unrecognized argument: {item} (config overrides look like --grasp.clearance_m=0.005)")
        overrides[key[2:]] = _yaml_scalar(value)
    args.overrides = overrides
    level = logging.WARNING - 10 * args.verbose if not args.quiet else logging.ERROR
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except GraspsegError as e:
        print(f"graspseg {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"graspseg {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
