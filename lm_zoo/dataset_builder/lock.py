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

from lm_zoo import _flock
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
        if waited and builder.is_prepared():
            builder.info.read_from_directory(builder.data_dir)  # the other build's splits and metadata
        yield
    finally:
        _flock.release(lock_path, fd)


def _acquire(lock_path: Path, what: str, root: Path, timeout: float | None) -> tuple[int, bool]:
    """(fd holding the flock of the file now at ``lock_path``, whether this build had to wait)."""
    waited = False
    start = time.monotonic()
    while True:
        root.mkdir(parents=True, exist_ok=True)
        try:
            fd = _flock.try_lock(lock_path, f"pid {os.getpid()}\n")
        except FileNotFoundError:  # data_dir removed by a failed build meanwhile: create it again
            continue
        if fd is not None:
            return fd, waited
        holder = _flock.holder(lock_path)
        _refuse_own_parent(holder, what)
        if not waited:
            print(f"{what}: another build ({holder}) is preparing this dataset in {root}; "
                  f"waiting for it to finish (lock file {lock_path})", file=sys.stderr, flush=True)
            waited = True
        if timeout is not None and time.monotonic() - start >= timeout:
            raise DatasetLockedError(
                f"{what} is being built into {root} by another process ({holder}; lock file "
                f"{lock_path}); waited {timeout:g} s. Wait for it to finish, or build into another data_dir")
        time.sleep(0.2)


def data_root(builder) -> Path:
    """The data_dir a builder was given: ``builder.data_dir`` is ``<root>/<dataset>/<config>/<version>``."""
    return Path(str(builder.data_dir)).parents[2]


def _refuse_own_parent(holder: str, what: str) -> None:
    """A worker process waiting for the build that started it would wait forever. That happens when
    a script builds a dataset at module level: multiprocessing starts each worker by importing the
    main script again, so the worker starts the same build and waits for its own parent's lock."""
    import multiprocessing

    # While a spawned worker imports the main script, parent_process() is not set yet; the
    # "_inheriting" flag is what multiprocessing's own "not importing main" check reads then.
    worker = multiprocessing.parent_process() is not None or getattr(multiprocessing.current_process(), "_inheriting", False)
    if worker and holder == f"pid {os.getppid()}":
        raise DatasetLockedError(
            f"{what}: this worker process was started by the build it is waiting for ({holder}); the script "
            "that builds the dataset runs its build again in every worker process. Put the script's code under "
            "`if __name__ == \"__main__\":` (multiprocessing imports the main script in each worker)")
