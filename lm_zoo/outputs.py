"""Output folders of the commands: checked before the work starts, written aside, moved into place.

A run that takes minutes must not fail at its last write, and a run that fails must leave
neither an empty folder nor one mixing two runs' files. So a command first calls
:func:`check_output_dir` (not a file, writable, enough free space when the size can be
estimated; nothing is created), then writes its whole output set inside :func:`staged_output`:
a sibling staging folder that is moved into place when the block succeeds and removed when it
fails (exception, Ctrl-C, SIGTERM turned into an exception).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["OutputDirError", "check_output_dir", "staged_output"]


class OutputDirError(ValueError):
    """An output folder that cannot take this run's outputs; the message names the argument."""


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
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it 0700; the final folder gets the umask
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
    _publish(staging, path)


def _publish(staging: Path, path: Path) -> None:
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
    if not path.exists():
        os.replace(staging, path)
        return
    for entry in sorted(staging.iterdir()):
        target = path / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)
    staging.rmdir()
