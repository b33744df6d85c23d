"""Digests that tell whether something made from files is still what those files would make:
the source of a set of modules (phantom cohort cache keys, dataset generator digests) and the
listing of a folder (a user's manual cohort)."""
from __future__ import annotations

import hashlib
import importlib
import inspect
from pathlib import Path

__all__ = ["module_files", "files_digest", "folder_listing_digest", "listing_digest"]


def module_files(name: str) -> list[tuple[str, Path]]:
    """(stable label, path) of a module's file, or of every .py of a package."""
    module = importlib.import_module(name)
    path = Path(inspect.getfile(module))
    if path.name == "__init__.py":
        return [(f"{name}/{p.name}", p) for p in sorted(path.parent.glob("*.py"))]
    return [(name, path)]


def files_digest(labelled_files) -> str:
    """sha256 of (label, content) pairs, line ends normalised so that a checkout on any OS agrees."""
    digest = hashlib.sha256()
    for label, path in sorted(labelled_files):
        digest.update(label.encode() + b"\0" + Path(path).read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()


def folder_listing_digest(root) -> str:
    """sha256 of a folder's listing: every file's relative path, size and modification time (not
    the content: a cohort of CT volumes is too large to hash on every load)."""
    root = Path(root)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(_listing_line(path, path.relative_to(root).as_posix()))
    return digest.hexdigest()


def listing_digest(path) -> str:
    """:func:`folder_listing_digest` of a folder; of a file, the same over its name, size and
    modification time (a case's segmentation is either)."""
    path = Path(path)
    if path.is_dir():
        return folder_listing_digest(path)
    return hashlib.sha256(_listing_line(path, path.name)).hexdigest()


def _listing_line(path: Path, label: str) -> bytes:
    stat = path.stat()
    return f"{label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
