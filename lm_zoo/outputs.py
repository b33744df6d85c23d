"""Output folders of the commands: checked before the work starts, written aside, moved into place.

A run that takes minutes must not fail at its last write, and a run that fails must leave
neither an empty folder nor one mixing two runs' files. So a command first calls
:func:`check_output_dir` (not a file, writable, enough free space when the size can be
estimated; nothing is created), then writes its whole output set inside :func:`staged_output`:
a sibling staging folder that is moved into place when the block succeeds and removed when it
fails (exception, Ctrl-C, SIGTERM turned into an exception).

Publishing never deletes what the run did not write: a run's file replaces a file of the same
name, a run's folder is merged into a folder of the same name, and where a name is a folder on
one side and a file on the other nothing is moved and the error names both (the new results stay
in the staging folder the message names). Publishing is all or nothing: replaced entries are
set aside first and put back if any move fails. :func:`output_lock` keeps two runs from writing
one folder at once: the second is refused with a message naming the folder and the first run.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from lm_zoo import _flock
from lm_zoo._atomic import current_umask
from lm_zoo.errors import LmZooError

__all__ = ["OutputDirError", "OutputLockedError", "check_output_dir", "output_lock", "staged_output"]


class OutputDirError(LmZooError, ValueError):
    """An output folder that cannot take this run's outputs; the message names the argument."""


class OutputLockedError(OutputDirError):
    """Another run is writing the same output folder."""


_HELD: dict[Path, int] = {}  # lock path -> depth, so one process may nest output_lock on a folder


@contextmanager
def output_lock(path, *, argument: str = "--output") -> Iterator[None]:
    """Hold a lock on the output folder ``path`` for this run (an flock, released by the OS even
    when the holder is killed). A second run is refused at once: waiting would only let it
    overwrite the first run's results afterwards. The lock file lives in the temporary folder,
    keyed by the folder's resolved path, so nothing is added to (or left in) the user's folders
    and the key does not change when the folder or its parents are created during the run."""
    try:
        import fcntl  # noqa: F401
    except ImportError:  # pragma: no cover - not POSIX: no locking
        yield
        return
    lock_path = _lock_file(path)
    if _HELD.get(lock_path):
        _HELD[lock_path] += 1
        try:
            yield
        finally:
            _HELD[lock_path] -= 1
        return
    if not lock_path.parent.is_dir():
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.chmod(lock_path.parent, 0o1777)  # shared by every user, like /tmp itself
        except OSError:
            pass
    fd = _flock.try_lock(lock_path, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
    if fd is None:
        raise OutputLockedError(
            f"{argument} {str(path)!r} is being written by another lm-zoo run ({_flock.holder(lock_path)}); "
            f"wait for it to finish or choose another folder")
    _HELD[lock_path] = 1
    try:
        yield
    finally:
        del _HELD[lock_path]
        _flock.release(lock_path, fd)


def check_output_dir(path, *, argument: str = "--output", needed_bytes: int | None = None) -> Path:
    """``path`` as a Path after checking, without creating anything, that a run can write it.

    Refuses a path that is an existing file, a folder (or nearest existing parent, when the
    folder does not exist yet) that this user cannot write, and less free space than
    ``needed_bytes`` when that estimate is given.
    """
    path = Path(os.fspath(path)).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputDirError(f"{argument} {str(path)!r} is a file, not a folder; choose a folder path")
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing != path and not existing.is_dir():
        raise OutputDirError(f"{argument} {str(path)!r} cannot be created: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputDirError(
            f"{argument} {str(path)!r} is not writable: no write permission on {existing}; choose another folder"
        )
    if needed_bytes:
        free = shutil.disk_usage(existing).free
        if free < needed_bytes:
            raise OutputDirError(
                f"{argument} {str(path)!r}: {free / 2**20:.1f} MiB free on its disk but this run writes about "
                f"{needed_bytes / 2**20:.1f} MiB; free some space or choose another folder"
            )
    return path


def _lock_file(path) -> Path:
    import hashlib

    path = Path(os.fspath(path)).expanduser().absolute()
    existing, rest = path, []
    while not existing.exists() and existing.parent != existing:
        rest.append(existing.name)
        existing = existing.parent
    key = str(existing.resolve().joinpath(*reversed(rest)))
    return Path(tempfile.gettempdir()) / "lm_zoo-output-locks" / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock")


@contextmanager
def staged_output(path, *, argument: str = "--output", resumable: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield a staging folder beside ``path``; on success its entries replace those of ``path``.

    When ``path`` does not exist (or is empty) the staging folder is renamed to it in one step;
    otherwise each written entry is moved in with ``os.replace`` (other files of ``path`` stay).
    On failure the staging folder and any parent folders made for it are removed, unless
    ``resumable(staging)`` says it holds state that a rerun of the same command resumes from
    (the staging name is then fixed, ``.<name>.partial``, so that the rerun finds it).
    """
    path = check_output_dir(path, argument=argument)
    with output_lock(path, argument=argument):
        yield from _staged(path, argument, resumable)


def _staged(path: Path, argument: str, resumable) -> Iterator[Path]:
    made = []
    parent = path.parent
    while not parent.exists():
        made.append(parent)
        parent = parent.parent
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputDirError(f"{argument} {str(path)!r} cannot be created: {err}") from None
    if resumable is not None:
        staging = path.parent / f".{path.name}.partial"
        staging.mkdir(exist_ok=True)
    else:
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes it 0700; the final folder gets the umask
    try:
        yield staging
    except BaseException:
        if resumable is None or not resumable(staging):
            shutil.rmtree(staging, ignore_errors=True)
            for folder in made:
                try:
                    folder.rmdir()
                except OSError:
                    break
        raise
    _publish(staging, path, argument)


def _publish(staging: Path, path: Path, argument: str) -> None:
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
    if not path.exists():
        os.replace(staging, path)
        return
    conflicts = _conflicts(staging, path)
    if conflicts:
        kept = ", ".join(str(c) for c in conflicts[:3]) + (f" and {len(conflicts) - 3} more" if len(conflicts) > 3 else "")
        raise OutputDirError(
            f"{argument} {str(path)!r}: {kept} is a folder where this run writes a file (or a file where it writes "
            f"a folder); nothing was replaced. This run's results are in {staging}; move or rename the entry "
            f"above and rerun, or choose another folder")
    moves = _moves(staging, path)
    backup = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".replaced", dir=path.parent))
    done: list[tuple[Path, Path, Path | None]] = []  # (new entry, target, its old version set aside)
    try:
        for k, (entry, target) in enumerate(moves):
            old = None
            if target.exists() or target.is_symlink():
                old = backup / str(k)
                os.replace(target, old)
            done.append((entry, target, old))
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(entry, target)
    except OSError as err:
        for entry, target, old in reversed(done):
            if target.exists() or target.is_symlink():
                entry.parent.mkdir(parents=True, exist_ok=True)
                os.replace(target, entry)
            if old is not None:
                os.replace(old, target)
        shutil.rmtree(backup, ignore_errors=True)
        raise OutputDirError(
            f"{argument} {str(path)!r}: could not move {err.filename or 'an entry'} into place ({err.strerror or err}); "
            f"the folder is as it was before this run. This run's results are in {staging}") from None
    shutil.rmtree(backup, ignore_errors=True)  # only the previous versions of what this run replaced
    shutil.rmtree(staging, ignore_errors=True)  # now empty folders


def _conflicts(staging: Path, path: Path) -> list[Path]:
    """Targets whose kind (folder or not) differs from the staged entry's."""
    out = []
    for entry in sorted(staging.iterdir()):
        target = path / entry.name
        if not (target.exists() or target.is_symlink()):
            continue
        entry_dir = entry.is_dir() and not entry.is_symlink()
        target_dir = target.is_dir() and not target.is_symlink()
        if entry_dir and target_dir:
            out += _conflicts(entry, target)
        elif entry_dir != target_dir:
            out.append(target)
    return out


def _moves(staging: Path, path: Path) -> list[tuple[Path, Path]]:
    """(staged entry, target) pairs: files and new folders move whole; a staged folder meeting a
    folder of the same name is merged entry by entry (the other entries of that folder stay)."""
    out = []
    for entry in sorted(staging.iterdir()):
        target = path / entry.name
        if entry.is_dir() and not entry.is_symlink() and target.is_dir() and not target.is_symlink():
            out += _moves(entry, target)
        else:
            out.append((entry, target))
    return out
