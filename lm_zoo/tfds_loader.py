"""The one TFDS -> NumPy loader of lm_zoo (training recipes and the evaluation both use it).

It registers lm_zoo's builders first (``import lm_zoo.datasets``; an ImportError there is a broken
install and propagates), builds the dataset offline when it is not prepared (the phantom configs
need no download; ``manual_dir`` feeds the manual configs) and refuses a stale prepared build
(``lm_zoo.dataset_builder.PatchBuilderMixin.check_not_stale``). Split arrays come back with text
features decoded to ``str``.
"""
from __future__ import annotations

import numpy as np

from lm_zoo.errors import LmZooError

__all__ = ["DatasetError", "register_builders", "get_builder", "prepare", "split_arrays", "split_overlap"]


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


def split_overlap(builder, near_mm: float = 1.0) -> dict:
    """How much the test split of a prepared dataset repeats its train split: the cases of each
    split (and those in both), the sources, and per class (``normal`` = not ``aneurysm``) the share
    of test points within ``near_mm`` of a train point and the median nearest distance. Made for a
    one-subject ``mra_aneurysm_patches/inserted`` build, where every case is the same head."""
    from scipy.spatial import cKDTree

    feats = ["case_id", "label", "point_lps_mm", "source"]
    split = {s: split_arrays(builder, s, feats) for s in ("train", "test")}
    pos = builder.info.features["label"].str2int("aneurysm")
    cases = {s: sorted(set(a["case_id"])) for s, a in split.items()}
    res = {"train_cases": len(cases["train"]), "test_cases": len(cases["test"]),
           "cases_in_both": sorted(set(cases["train"]) & set(cases["test"])),
           "sources": sorted({str(v) for a in split.values() for v in a["source"]})}
    for name, label in (("normal", 1 - pos), ("aneurysm", pos)):
        tr = np.unique(split["train"]["point_lps_mm"][split["train"]["label"] == label], axis=0)
        te = np.unique(split["test"]["point_lps_mm"][split["test"]["label"] == label], axis=0)
        d = cKDTree(tr).query(te)[0] if len(tr) and len(te) else np.zeros(0)
        res[name] = {"train_points": len(tr), "test_points": len(te),
                     "test_within_1mm_of_train": float(np.mean(d <= near_mm)) if d.size else float("nan"),
                     "nearest_train_mm_p50": float(np.median(d)) if d.size else float("nan")}
    return res
