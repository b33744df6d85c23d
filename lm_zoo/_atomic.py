"""The one way lm_zoo writes an output file: whole or not at all.

Every writer (volumes, landmark files, weights, metrics, model cards, reports, PNGs, the weight
registry) goes through :func:`atomic_path`: the content is written to a temporary file in the
destination's folder (same file system, so the rename is atomic), flushed to disk, given the
permissions a plain ``open()`` would give (``0o666`` minus the user's umask; ``mkstemp`` alone
would leave ``0600``) and renamed over the destination. On any error the temporary file is
removed and the destination is untouched, so a reader never sees half a file.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text", "atomic_write_json", "current_umask"]


def current_umask() -> int:
    """The process's umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # not thread-safe, hence only the fallback
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows: folders cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """Context manager yielding a temporary path beside ``path`` for a writer to fill.

    The temporary name ends with ``path``'s own name, so writers that pick the format from the
    suffix (``.nii.gz``, ``.png``, ``.weights.h5``) see the right one. On normal exit the file is
    fsynced, chmodded to ``0o666 & ~umask`` and renamed onto ``path``; on an exception it is
    removed and the exception propagates. The parent folder must exist.
    """
    path = Path(os.fspath(path))
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix="-" + path.name)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"the writer of {path} did not create its temporary file {tmp}")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def atomic_write_text(path, text: str, newline: str | None = "") -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically (``newline=""``: line ends as given)."""
    path = Path(os.fspath(path))
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline=newline) as fh:
            fh.write(text)
    return path


def atomic_write_json(path, obj, **dump_kwargs) -> Path:
    """``obj`` as indented, key-sorted JSON with a final newline, written atomically."""
    options = {"indent": 2, "sort_keys": True, **dump_kwargs}
    return atomic_write_text(path, json.dumps(obj, **options) + "\n")
