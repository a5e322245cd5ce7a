"""The ``graspseg`` command line.

Each sub-command lives in ``graspseg.commands.<name>`` and exposes ``register(subparsers)``. Every error
becomes one line on stderr and exit code 2: the project's own errors (:class:`~graspseg.core.errors.GraspsegError`)
and the operating system's (a missing, unreadable or unwritable path, a full disk, no memory) say what was wrong
and how to fix it; anything else is reported as an internal error. ``--debug`` shows the traceback instead.

Exit codes: 0 done; 1 no command given (help printed); 2 refused or failed (the reason on stderr);
3 ``perceive`` ran and wrote its outputs but accepted no grasp (the reasons on stderr); 130 interrupted.
Every command prints one JSON object on stdout (indented); progress and human-readable lines go to stderr.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys

from . import __version__
from .core.errors import GraspsegError
from .core.io import check_output_dir

#: Sub-command modules under ``graspseg.commands``, in help order.
COMMAND_MODULES: tuple[str, ...] = ("perceive", "segment", "label", "bench", "serve", "finetune", "eval", "analyze",
                                     "devices", "live", "record")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graspseg",
        description="Grasp-planning perception for wrist RGB-D cameras: promptable segmentation, masked clouds, "
        "grasps with boundary-error margins.",
    )
    parser.add_argument("--version", action="version", version=f"graspseg {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser.add_argument("--debug", action="store_true", help="on an error, show the Python traceback instead of one line")
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
        if getattr(args, "out", None) is not None:
            check_output_dir(args.out)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"graspseg {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # the one place that turns every error into one line (STYLE: only cli prints)
        if args.debug:
            raise
        print(f"graspseg {args.command}: error: {error_line(e)}", file=sys.stderr)
        return 2


def error_line(e: BaseException) -> str:
    """One line that says what went wrong and what to do, for any exception."""
    if isinstance(e, GraspsegError):
        text = str(e)
    elif isinstance(e, OSError):
        where = f" {e.filename}" if e.filename else ""
        what = e.strerror or str(e) or type(e).__name__
        fixes = {errno.ENOENT: "check the path", errno.EACCES: "check its permissions",
                 errno.EPERM: "check its permissions", errno.EISDIR: "give a file, not a folder",
                 errno.ENOTDIR: "a component of the path is a file, not a folder",
                 errno.ENOSPC: "free disk space", errno.EROFS: "choose a writable location"}
        text = f"{what}:{where} ({fixes.get(e.errno, 'check the path and try again')})"
    elif isinstance(e, MemoryError):
        text = "out of memory; use a smaller frame (see --limits.max_frame_pixels) or free memory"
    elif isinstance(e, UnicodeDecodeError):
        text = f"a text file (JSON/YAML) holds binary data ({e.reason} at byte {e.start}); give the right file"
    else:
        text = (f"internal error {type(e).__name__}: {e} — rerun with --debug for the traceback and report it")
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
