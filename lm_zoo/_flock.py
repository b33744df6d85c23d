"""The one lock-file mechanism of lm_zoo (output folders, dataset builds): an flock on a file that
is removed when its holder is done, so no lock file is left between runs.

Removing a lock file while others may be waiting on it is safe only if a process that won the
flock checks that it holds the file now at the path (not one unlinked meanwhile): :func:`try_lock`
does, so two processes never hold different files of one path. POSIX only (``fcntl``).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["try_lock", "holder", "release"]


def try_lock(lock_path: Path, text: str) -> int | None:
    """One attempt: the fd holding the flock of the file at ``lock_path`` (created if missing; ``text``,
    saying who holds it, written into it), or None when another process holds it. FileNotFoundError
    when the folder of ``lock_path`` is missing."""
    import fcntl

    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        # The holder before us removes the file when it is done: hold the file at the path, not that one.
        try:
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, text.encode(), 0)
            return fd
        os.close(fd)


def holder(lock_path: Path) -> str:
    """What the holder of ``lock_path`` wrote about itself ("pid ...")."""
    try:
        return Path(lock_path).read_text(encoding="utf-8", errors="replace").strip() or "pid unknown"
    except OSError:
        return "pid unknown"


def release(lock_path: Path, fd: int) -> None:
    """Remove the lock file while still holding it (see the module doc), then release it."""
    with contextlib.suppress(OSError):
        os.unlink(lock_path)
    os.close(fd)
