"""One build of a dataset config per data_dir at a time: an flock beside the prepared datasets,
removed when the build ends.

A second build waits for the first (and then reuses its result) instead of failing inside TFDS
with FileExistsError.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

from lm_zoo.errors import LmZooError

__all__ = ["DatasetLockedError", "build_lock", "data_root"]


class DatasetLockedError(LmZooError, RuntimeError):
    """Another process is building the same dataset config into the same data_dir."""


@contextlib.contextmanager
def build_lock(builder):
    """Hold ``<data_dir>/.lock.<dataset>.<config>.<version>`` (an flock, released by the OS even
    when its holder is killed) while ``builder`` is prepared; the file is removed when the build
    ends, so a data_dir holds no lock file between builds.

    A second build waits, saying so on stderr, for at most ``$LM_ZOO_BUILD_LOCK_TIMEOUT`` seconds
    (default: as long as the first one runs), then refuses with :class:`DatasetLockedError`. When
    the first build finished meanwhile, the waiting builder reads its result (TFDS then reuses it).
    """
    try:
        import fcntl  # noqa: F401
    except ImportError:  # pragma: no cover - not POSIX: no locking
        yield
        return
    root = data_root(builder)
    config = builder.builder_config.name if builder.builder_config else "default"
    lock_path = root / f".lock.{builder.name}.{config}.{builder.version}"
    timeout = os.environ.get("LM_ZOO_BUILD_LOCK_TIMEOUT")
    try:
        timeout = None if timeout in (None, "") else float(timeout)
    except ValueError:
        raise ValueError(f"LM_ZOO_BUILD_LOCK_TIMEOUT must be a number of seconds, got {timeout!r}") from None
    fd, waited = _acquire(lock_path, f"{builder.name}/{config}", root, timeout)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        if waited and builder.is_prepared():
            builder.info.read_from_directory(builder.data_dir)  # the other build's splits and metadata
        yield
    finally:
        # Removed while still held: a build waiting on this file then finds it unlinked and locks
        # the path afresh (_acquire compares inodes), so two builds never hold different files.
        with contextlib.suppress(OSError):
            os.unlink(lock_path)
        os.close(fd)  # releases the lock


def _acquire(lock_path: Path, what: str, root: Path, timeout: float | None) -> tuple[int, bool]:
    """(fd holding the flock of the file now at ``lock_path``, whether this build had to wait)."""
    import fcntl

    waited = False
    start = time.monotonic()
    while True:
        root.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:  # data_dir removed by a failed build meanwhile: create it again
            continue
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _lock_holder(lock_path)
                if not waited:
                    print(f"{what}: another build ({holder}) is preparing this dataset in {root}; "
                          f"waiting for it to finish (lock file {lock_path})", file=sys.stderr, flush=True)
                    waited = True
                if timeout is not None and time.monotonic() - start >= timeout:
                    os.close(fd)
                    raise DatasetLockedError(
                        f"{what} is being built into {root} by another process ({holder}; lock file "
                        f"{lock_path}); waited {timeout:g} s. Wait for it to finish, or build into another data_dir"
                    ) from None
                time.sleep(0.2)
        # The holder before us removes the file when it is done: hold the file at the path, not that one.
        try:
            if os.fstat(fd).st_ino == os.stat(lock_path).st_ino:
                return fd, waited
        except FileNotFoundError:
            pass
        os.close(fd)


def _lock_holder(lock_path: Path) -> str:
    try:
        return lock_path.read_text().strip() or "pid unknown"
    except OSError:
        return "pid unknown"



def data_root(builder) -> Path:
    """The data_dir a builder was given: ``builder.data_dir`` is ``<root>/<dataset>/<config>/<version>``."""
    return Path(str(builder.data_dir)).parents[2]
