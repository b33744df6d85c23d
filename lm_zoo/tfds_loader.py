"""The one TFDS -> NumPy loader of lm_zoo (training recipes and the evaluation both use it).

It registers lm_zoo's builders first (``import lm_zoo.datasets``; an ImportError there is a broken
install and propagates), builds the dataset offline when it is not prepared (the phantom configs
need no download; ``manual_dir`` feeds the manual configs) and refuses a stale prepared build
(``lm_zoo.patch_datasets.PatchBuilderMixin.check_not_stale``). Split arrays come back with text
features decoded to ``str``.
"""
from __future__ import annotations

import numpy as np

from lm_zoo.errors import LmZooError

__all__ = ["DatasetError", "register_builders", "get_builder", "prepare", "split_arrays"]


class DatasetError(LmZooError, ValueError):
    """An unknown dataset or config, or a split or feature it lacks."""


def register_builders() -> None:
    """Register lm_zoo's TFDS builders (idempotent)."""
    import lm_zoo.datasets  # noqa: F401


def get_builder(name: str, data_dir=None, error: type[Exception] = DatasetError):
    """``tfds.builder(name)`` after registering lm_zoo's builders; ``error`` (naming the dataset)
    for an unknown dataset or config."""
    import tensorflow_datasets as tfds

    register_builders()
    try:
        return tfds.builder(name, data_dir=None if data_dir is None else str(data_dir))
    except tfds.core.registered.DatasetNotFoundError as err:
        raise error(f"dataset {name!r} is not a registered TFDS dataset: {str(err).splitlines()[0]}") from err
    except ValueError as err:  # e.g. an unknown config name
        raise error(f"dataset {name!r}: {err}") from err


def prepare(builder, manual_dir=None):
    """Build ``builder``'s dataset unless prepared (offline); returns the builder."""
    import tensorflow_datasets as tfds

    download_config = tfds.download.DownloadConfig(manual_dir=None if manual_dir is None else str(manual_dir))
    builder.download_and_prepare(download_config=download_config)
    return builder


def split_arrays(builder, split: str, features=None, error: type[Exception] = DatasetError) -> dict[str, np.ndarray]:
    """One split as ``{feature: array}`` (all features, or ``features``); text decoded to str."""
    import tensorflow_datasets as tfds

    if split not in builder.info.splits:
        raise error(f"dataset {builder.info.full_name!r} has no split {split!r}; it has {sorted(builder.info.splits)}")
    arrays = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, shuffle_files=False))
    wanted = list(arrays) if features is None else list(features)
    missing = [f for f in wanted if f not in arrays]
    if missing:
        raise error(f"dataset {builder.info.full_name!r} lacks the feature(s) {missing}; it has {sorted(arrays)}")
    return {f: _decode(arrays[f]) if np.asarray(arrays[f]).dtype.kind in "OS" else np.asarray(arrays[f]) for f in wanted}


def _decode(values) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()])
