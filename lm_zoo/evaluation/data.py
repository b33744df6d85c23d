"""Patch datasets for the evaluation: any TFDS dataset with ``patch``, ``label`` and ``case_id``.

The default is ``mra_aneurysm_patches/phantom`` (100 training cases, 50 test cases); TFDS builds it
locally and offline on first use and reuses it afterwards. ``manual_dir`` points the ``manual``
config at a user's real TOF-MRA cohort.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lm_zoo import tfds_loader
from lm_zoo.evaluation.errors import EvaluationError

DEFAULT_DATASET = "mra_aneurysm_patches/phantom"
MANUAL_DATASET = "mra_aneurysm_patches/manual"
REQUIRED_FEATURES = ("patch", "label", "case_id")
POSITIVE_CLASS = "aneurysm"


@dataclass(frozen=True)
class PatchSplit:
    """One split as arrays: labels are 0/1 with 1 = the positive class."""

    patches: np.ndarray  # (N, H, W, 3) float32
    labels: np.ndarray  # (N,) int64
    case_ids: np.ndarray  # (N,) str
    sources: np.ndarray  # (N,) str, "phantom"/"user"/"" where the dataset has no `source`

    @property
    def n_cases(self) -> int:
        return int(np.unique(self.case_ids).size)

    @property
    def n_positive_cases(self) -> int:
        return int(np.unique(self.case_ids[self.labels == 1]).size)


@dataclass(frozen=True)
class PatchData:
    name: str
    train: PatchSplit
    test: PatchSplit
    class_names: tuple[str, str]  # (negative, positive)
    version: str
    data_folder: str = ""  # the prepared TFDS folder the patches were read from
    manual_dir: str = ""  # the cohort folder given for this run ("" when none)
    built_now: bool = True  # False: an earlier build in data_folder was reused (manual_dir not read)

    @property
    def origin(self) -> str:
        """One sentence naming the folders the data came from, for the report."""
        if self.built_now:
            source = f", built in this run from the cohort folder {self.manual_dir}" if self.manual_dir else ", built in this run"
        else:
            source = (f", prepared by an earlier build and reused (cohort folder given now: {self.manual_dir}; "
                      "give another cohort its own --data-dir)" if self.manual_dir
                      else ", prepared by an earlier build and reused")
        return f"patches read from {self.data_folder}{source}"

    @property
    def provenance(self) -> str:
        """"phantom", "user", "phantom+user" or "unknown" (no `source` feature)."""
        found = sorted({s for s in np.concatenate([self.train.sources, self.test.sources]) if s})
        return "+".join(found) if found else "unknown"


def repeated_in_train(train: PatchSplit, test: PatchSplit) -> tuple[float, float]:
    """Shares of the test split's negative and positive patches that are byte-identical to a
    training patch. A split by case keeps a case's patches together, but not a subject's: cases
    that share a volume (one subject behind many case ids, a scan listed twice) give the test
    split copies of training patches, which any features can memorise."""
    import hashlib

    def key(patch):
        return hashlib.blake2b(np.ascontiguousarray(patch).tobytes(), digest_size=16).digest()

    seen = {key(p) for p in train.patches}
    hit = np.array([key(p) in seen for p in test.patches], dtype=bool)
    return tuple(float(hit[test.labels == c].mean()) if np.any(test.labels == c) else 0.0 for c in (0, 1))


def get_builder(name: str, data_dir=None):
    """The TFDS builder, validated for the evaluation before anything is built."""
    builder = tfds_loader.get_builder(name, data_dir, error=EvaluationError)
    features = builder.info.features
    missing = [f for f in REQUIRED_FEATURES if f not in features]
    if missing:
        raise EvaluationError(
            f"dataset {name!r} lacks the feature(s) {missing}: the evaluation needs "
            f"{list(REQUIRED_FEATURES)} (case_id drives the case-level bootstrap); it has {sorted(features)}"
        )
    label = features["label"]
    names = list(getattr(label, "names", []) or [])
    if len(names) != 2:
        raise EvaluationError(
            f"dataset {name!r}: the evaluation needs a binary ClassLabel `label`, got classes {names or label}"
        )
    return builder


def load(name: str = DEFAULT_DATASET, data_dir=None, manual_dir=None, train_split: str = "train", test_split: str = "test") -> PatchData:
    """Build the dataset if needed (offline for the phantom configs) and return both splits."""
    builder = get_builder(name, data_dir)
    existed = _prepared(builder)
    tfds_loader.prepare(builder, manual_dir)
    splits = builder.info.splits
    for split in (train_split, test_split):
        if split not in splits:
            raise EvaluationError(f"dataset {name!r} has no split {split!r}; it has {sorted(splits)}")
    names = builder.info.features["label"].names
    positive = names.index(POSITIVE_CLASS) if POSITIVE_CLASS in names else 1
    negative = 1 - positive
    return PatchData(
        name=name,
        train=_as_split(builder, train_split, positive),
        test=_as_split(builder, test_split, positive),
        class_names=(names[negative], names[positive]),
        version=str(builder.info.version),
        data_folder=str(builder.data_dir),
        manual_dir="" if manual_dir is None else str(Path(manual_dir).expanduser().resolve()),
        built_now=not existed,
    )


def _prepared(builder) -> bool:
    """Whether the dataset is already prepared in the builder's data_dir (TFDS will then reuse it)."""
    from etils import epath

    return epath.Path(builder.data_dir).joinpath("dataset_info.json").exists()


def _as_split(builder, split: str, positive: int) -> PatchSplit:
    has_source = "source" in builder.info.features
    arrays = tfds_loader.split_arrays(builder, split, [*REQUIRED_FEATURES, *(["source"] if has_source else [])],
                                      error=EvaluationError)
    n = len(arrays["label"])
    return PatchSplit(
        patches=np.asarray(arrays["patch"], dtype=np.float32),
        labels=(arrays["label"] == positive).astype(np.int64),
        case_ids=arrays["case_id"],
        sources=arrays["source"] if has_source else np.full(n, ""),
    )


def check_split(split: PatchSplit, role: str, dataset: str) -> None:
    """Both classes present, as AUC and AdaBoost need."""
    if len(split.labels) == 0:
        raise EvaluationError(f"dataset {dataset!r}: the {role} split is empty")
    present = set(np.unique(split.labels).tolist())
    if present != {0, 1}:
        raise EvaluationError(
            f"dataset {dataset!r}: the {role} split holds only class {sorted(present)}; both classes are needed"
        )
