"""Crash-safe file writing: write to a temporary file beside the target, then rename.

Two guarantees: a single file is replaced atomically (:func:`atomic_write_bytes`), and a whole output folder
is swapped into place as one set (:func:`output_set`), so a reader — or a process killed half-way — sees the
old complete set or the new complete set, never a mix. Files and folders get the usual permissions under the
process umask (``0666 & ~umask`` / ``0777 & ~umask``), not the private ``0600`` of :mod:`tempfile`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Marks the temporary folder of an output set: ``.<name>.graspseg-tmp-<pid>-<random>``.
_SET_TMP_TAG = ".graspseg-tmp-"


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask alone must set it to read it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _file_mode() -> int:
    return 0o666 & ~_umask()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the complete new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _is_flat(value) -> bool:
    """A list holding only numbers, booleans and nulls (a vector, a matrix row)."""
    return isinstance(value, list) and all(v is None or isinstance(v, bool | int | float) for v in value)


def _dumps_inline_numbers(obj, indent: int, level: int) -> str:
    """Indented JSON whose number lists each sit on one line: a 4x4 matrix takes 6 lines, not 26."""
    if _is_flat(obj) or not isinstance(obj, dict | list) or not obj:
        return json.dumps(obj)
    pad, inner = " " * (indent * level), " " * (indent * (level + 1))
    if isinstance(obj, dict):
        items = [f"{inner}{json.dumps(str(k))}: {_dumps_inline_numbers(v, indent, level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    items = [f"{inner}{_dumps_inline_numbers(v, indent, level + 1)}" for v in obj]
    return "[\n" + ",\n".join(items) + "\n" + pad + "]"


def to_json(obj, *, indent: int | None = 2, inline_numbers: bool = False) -> str:
    """JSON text with numpy arrays and scalars converted.

    ``inline_numbers`` (with ``indent``): every list of plain numbers on one line — readable and about 30 %
    smaller for documents full of vectors and matrices (``result.json``); the parsed value is the same.
    """
    if not (inline_numbers and indent):
        return json.dumps(obj, indent=indent, default=_json_default)
    plain = json.loads(json.dumps(obj, default=_json_default))  # numpy → Python, keys → strings
    return _dumps_inline_numbers(plain, indent, 0)


def atomic_write_json(path: str | Path, obj, *, indent: int | None = 2, inline_numbers: bool = False) -> Path:
    return atomic_write_text(path, to_json(obj, indent=indent, inline_numbers=inline_numbers) + "\n")


def read_json(path: str | Path, what: str = "file", error: type[Exception] | None = None):
    """Parse a JSON file; a missing or malformed file raises ``error`` (default :class:`ConfigError`) naming ``what``."""
    from .errors import ConfigError

    error = error or ConfigError
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except json.JSONDecodeError as e:
        raise error(f"{what} {path} is not valid JSON: {e}") from None


def read_yaml(path: str | Path, what: str = "file", error: type[Exception] | None = None):
    """Parse a YAML file (safe loader); a missing or malformed file raises ``error`` (default :class:`ConfigError`)."""
    import yaml

    from .errors import ConfigError

    error = error or ConfigError
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except yaml.YAMLError as e:
        raise error(f"{what} {path} is not valid YAML: {e}") from None


def check_output_dir(path: str | Path, what: str = "--out") -> Path:
    """Refuse an output folder that cannot be one: an existing file, a path under a file, an unwritable parent.

    Returns the path; raises :class:`~graspseg.core.errors.InputError` naming the path and the fix.
    """
    from .errors import InputError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} {path} exists and is not a folder; give a folder path (it is created if missing)")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{what} {path} lies under {parent}, which is a file, not a folder; choose another path")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.is_dir() and not os.access(path, os.W_OK | os.X_OK)):
        raise InputError(f"{what} {path}: no permission to write in {path if path.is_dir() else parent}; "
                         "choose a writable folder")
    return path


_RENAME_EXCHANGE = 2  # linux/fs.h


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux ``renameat2(RENAME_EXCHANGE)``; False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _remove_stale_sets(out: Path) -> None:
    """Delete temporary set folders beside ``out`` left by processes that no longer run (killed writers)."""
    prefix = f".{out.name}{_SET_TMP_TAG}"
    parent = out.absolute().parent
    if not parent.is_dir():
        return
    for p in parent.iterdir():
        if not p.name.startswith(prefix):
            continue
        try:
            pid = int(p.name[len(prefix):].split("-", 1)[0])
        except ValueError:
            continue
        if pid == os.getpid():
            continue  # another set of this process, still being written
        try:
            os.kill(pid, 0)
            continue  # its writer still runs
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(p, ignore_errors=True)
        log.info("removed %s left by an interrupted writer", p)


def _fsync_tree(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def output_set(out: str | Path, what: str = "--out") -> Iterator[Path]:
    """Write a set of output files as one unit: ``with output_set(out) as tmp: write into tmp``.

    The files go to a temporary folder beside ``out``; when the block ends without an error the folder
    replaces ``out`` in one atomic exchange (``renameat2``; where the OS lacks it, two renames with a window
    in which ``out`` is briefly absent, never mixed). On an error the temporary folder is removed and
    ``out`` keeps its old complete set. Folders left by killed writers are removed on the next call.
    """
    out = check_output_dir(out, what)
    _remove_stale_sets(out)
    out.absolute().parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{_SET_TMP_TAG}{os.getpid()}-", dir=out.absolute().parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        _fsync_tree(tmp)
        if out.is_dir() and _exchange(tmp, out):
            shutil.rmtree(tmp)  # tmp now holds the old set
        else:
            if out.is_dir():
                old = tmp.with_name(tmp.name + "-old")
                os.rename(out, old)
                os.rename(tmp, out)
                shutil.rmtree(old)
            else:
                os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
