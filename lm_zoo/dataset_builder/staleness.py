"""Stale prepared datasets: each build records the digest of the code that made its examples (and,
for manual configs, of the manual folder's listing) in its metadata.json; a prepared dataset that
no longer matches is refused with :class:`lm_zoo.errors.StaleDatasetError`."""
from __future__ import annotations

import inspect
import json
from pathlib import Path

from lm_zoo.digests import files_digest, folder_listing_digest, module_files
from lm_zoo.errors import StaleDatasetError

__all__ = ["GENERATOR_MODULES", "generator_digest", "record_manual_dir", "check_not_stale"]

# Modules (or packages: every .py in them) whose source determines the examples of every patch
# dataset; a builder adds its own file and ``EXTRA_GENERATOR_MODULES``. Their digest is stored in
# each build's metadata.json, so a prepared dataset is never reused after this code changed.
GENERATOR_MODULES = (
    "lm_zoo.dataset_builder", "lm_zoo.patches", "lm_zoo._sampling", "lm_zoo.io", "lm_zoo.landmarks",
    "lm_zoo.cohorts", "lm_zoo.anatomy", "lm_zoo.phantoms",
)
# Files of those packages that cannot change an example: editing them must not make every prepared
# dataset stale (the build lock decides who builds, not what is built).
NOT_GENERATOR_FILES = ("lm_zoo/dataset_builder/lock.py",)
# Computed once per process: a file edited during a build must not change the digest half-way.
_DIGESTS: dict[str, str] = {}


def generator_digest(builder_cls) -> str:
    """sha256 of the source files that determine ``builder_cls``'s examples: lm_zoo's patch,
    cohort and phantom code, its ``EXTRA_GENERATOR_MODULES`` and its own module."""
    key = f"{builder_cls.__module__}.{builder_cls.__qualname__}"
    if key not in _DIGESTS:
        names = (*GENERATOR_MODULES, *builder_cls.EXTRA_GENERATOR_MODULES)
        files = [f for name in names for f in module_files(name)
                 if not Path(f[1]).as_posix().endswith(NOT_GENERATOR_FILES)]
        files.append((f"builder/{builder_cls.name}", Path(inspect.getfile(builder_cls))))
        _DIGESTS[key] = files_digest(files)
    return _DIGESTS[key]


def record_manual_dir(metadata, root) -> None:
    """Note the manual folder and its listing's digest in a build's metadata: a later change to the
    folder makes the prepared dataset stale."""
    metadata["manual_dir"], metadata["source_digest"] = str(Path(root).resolve()), folder_listing_digest(root)


def recorded_metadata(data_dir) -> dict:
    """The metadata.json of a prepared dataset ({} when absent or unreadable)."""
    try:
        return json.loads((Path(str(data_dir)) / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def check_not_stale(builder, root, manual_dir=None) -> None:
    """StaleDatasetError when the dataset prepared in ``builder.data_dir`` was made by other
    generator code than the installed one, or (manual configs) from a manual folder whose listing
    has changed since. ``root``: the data_dir the builder was given; ``manual_dir``: the folder to
    compare (default: the one recorded at build time; not compared when it no longer exists)."""
    recorded = recorded_metadata(builder.data_dir)
    full = f"{builder.name}/{builder.builder_config.name} {builder.version}"
    manual = manual_dir or recorded.get("manual_dir")
    installed = builder.generator_digest()
    found = recorded.get("generator_digest")
    if found != installed:
        why = (f"generator_digest {found[:12]} recorded, {installed[:12]} for the installed lm_zoo" if found
               else "no generator_digest recorded (built by an older lm_zoo)")
        raise StaleDatasetError(
            f"dataset {full} in {builder.data_dir} was built by other code than the installed lm_zoo ({why}): "
            f"its examples may differ from what this code makes. {_rebuild_hint(builder, root, manual)}"
        )
    if "source_digest" in recorded and manual and Path(str(manual)).is_dir():
        if folder_listing_digest(manual) != recorded["source_digest"]:
            raise StaleDatasetError(
                f"dataset {full} in {builder.data_dir} was built from {recorded.get('manual_dir', '?')}; {manual} "
                f"holds other files now (a file was added, removed or modified since the build). To keep that "
                f"build, build {manual} into a separate data_dir (lm-zoo: --data-dir OTHER; tfds build: --data_dir=OTHER); or "
                f"{_rebuild_hint(builder, root, str(manual))}"
            )


def _rebuild_hint(builder, root, manual: str | None) -> str:
    command = f"tfds build --imports lm_zoo.datasets {builder.name}/{builder.builder_config.name} --data_dir={root}"
    if manual:
        command += f" --manual_dir={manual}"
    return f"delete {builder.data_dir} and rebuild it: {command}"
