"""Training data as NumPy arrays: CIFAR-10 (TFDS or a JPEG archive) and the landmark patch datasets
(built offline through :mod:`lm_zoo.tfds_loader`), with real-CT patches matched to a training set's
classes and mixed into its training split."""
from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import numpy as np

from lm_zoo.training.errors import TrainingDataError
from lm_zoo.training.recipe import CIFAR10_CLASSES, REAL_SHARE

__all__ = ["load_cifar10", "load_patch_splits", "real_training_patches", "mix_real_patches"]


def load_cifar10(archive: str | os.PathLike | None = None, data_dir: str | None = None):
    """CIFAR-10 as ``((x_train, y_train), (x_test, y_test), provenance)``, uint8 RGB 32x32.

    With ``archive`` None, ``tfds.load("cifar10")`` is used (it must already be prepared in
    ``data_dir``: nothing is downloaded). Otherwise ``archive`` is a tar of JPEG/PNG files laid out
    as ``train/<class>/*`` and ``test/<class>/*`` (class folder names as in ``CIFAR10_CLASSES``).
    """
    if archive is None:
        import tensorflow_datasets as tfds

        builder = tfds.builder("cifar10", data_dir=data_dir)
        if not builder.is_prepared():
            raise TrainingDataError(
                f"cifar10 is not prepared in TFDS data_dir {builder.data_dir!r} and lm_zoo never "
                "downloads; pass archive=PATH (a tar with train/<class>/*.jpg and test/<class>/*.jpg)"
            )
        out = []
        for split in ("train", "test"):
            ds = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
            out.append((ds["image"], ds["label"].astype("int64")))
        return out[0], out[1], f"tfds cifar10 ({builder.data_dir})"
    return _load_cifar10_tar(Path(archive))


def _load_cifar10_tar(path: Path):
    from PIL import Image

    if not path.exists():
        raise FileNotFoundError(f"CIFAR-10 archive not found: {path}")
    images = {"train": [], "test": []}
    labels = {"train": [], "test": []}
    class_index = {c: i for i, c in enumerate(CIFAR10_CLASSES)}
    try:
        tar = tarfile.open(path)
    except tarfile.TarError as err:
        raise TrainingDataError(f"{path}: not a readable tar archive ({err})") from err
    with tar:
        members = sorted((m for m in tar if m.isfile()), key=lambda m: m.name)
        for member in members:
            parts = Path(member.name).parts
            if len(parts) < 3 or parts[-3] not in images:
                continue
            split, cls = parts[-3], parts[-2]
            if cls not in class_index:
                raise TrainingDataError(f"{path}: unknown class folder {cls!r} in {member.name}")
            data = tar.extractfile(member).read()
            img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            if img.shape != (32, 32, 3):
                raise TrainingDataError(f"{path}: {member.name} is {img.shape}, expected 32x32 RGB")
            images[split].append(img)
            labels[split].append(class_index[cls])
    for split in images:
        if not images[split]:
            raise TrainingDataError(f"{path}: no images under {split}/<class>/")
    as_arrays = [(np.stack(images[s]), np.asarray(labels[s], "int64")) for s in ("train", "test")]
    return as_arrays[0], as_arrays[1], f"CIFAR-10 JPEG archive {path.name}"


def load_patch_splits(dataset: str, data_dir=None, splits=("train", "validation", "test"), manual_dir=None):
    """A TFDS patch dataset as NumPy: ``{split: (patches, labels, case_ids)}``, the class names, the
    DatasetInfo and the sorted set of its ``source`` values ("phantom", "user"; read from the data,
    not guessed from the name). ``splits=None``: every split the dataset has.

    The dataset is built locally (offline) when it is not prepared yet (``lm_zoo.tfds_loader``).
    """
    from lm_zoo import tfds_loader

    builder = tfds_loader.prepare(tfds_loader.get_builder(dataset, data_dir, error=TrainingDataError), manual_dir)
    if splits is None:  # every split it has (a cohort of one or two cases has no validation/test)
        splits = tuple(builder.info.splits.keys())
    has_source = "source" in builder.info.features
    out, sources = {}, set()
    for split in splits:
        arrays = tfds_loader.split_arrays(
            builder, split, ["patch", "label", "case_id", *(["source"] if has_source else [])], error=TrainingDataError
        )
        out[split] = (arrays["patch"], arrays["label"].astype("int64"), arrays["case_id"])
        sources |= set(arrays["source"].tolist()) if has_source else {"unknown"}
    return out, builder.info.features["label"].names, builder.info, sorted(sources)

def real_training_patches(real_dataset: str, class_names, data_dir=None, manual_dir=None) -> dict:
    """Every split of ``real_dataset`` as training arrays ``x`` (raw HU) and ``y`` (indices into
    ``class_names``, matched by name), with the cases, version and sources it came from."""
    splits, real_names, info, real_sources = load_patch_splits(real_dataset, data_dir, splits=None, manual_dir=manual_dir)
    names = list(class_names)
    unknown = sorted(set(real_names) - set(names))
    if unknown:
        raise TrainingDataError(
            f"real dataset {real_dataset}: class(es) {unknown} are not classes of the training dataset "
            f"({len(names)} classes); rename them or leave them out of its classes.txt"
        )
    remap = np.array([names.index(n) for n in real_names], dtype="int64")
    x = np.concatenate([v[0] for v in splits.values()])
    y = remap[np.concatenate([v[1] for v in splits.values()])]
    if len(x) == 0:
        raise TrainingDataError(f"real dataset {real_dataset}: no patches")
    cases = sorted({str(c.decode() if isinstance(c, bytes) else c) for v in splits.values() for c in v[2]})
    return {"x": x, "y": y, "dataset": real_dataset, "data": f"{real_dataset} v{info.version} (source: {'+'.join(real_sources)})",
            "sources": real_sources, "cases": cases,
            "classes_present": sorted({names[i] for i in np.unique(y)})}


def mix_real_patches(x_tr, y_tr, sources, real_dataset: str, class_names, data_dir=None, manual_dir=None,
                     real_share: float = REAL_SHARE, smoke: bool = False):
    """The training split with ``real_dataset``'s patches appended, repeated so that about
    ``real_share`` of each epoch is real: ``(x, y, sources, real)`` where ``real`` describes them
    for the metrics (cases, repeats, share, classes present)."""
    if not 0.0 < real_share < 1.0:
        raise TrainingDataError(f"real_share must be between 0 and 1 (exclusive), got {real_share}")
    real = real_training_patches(real_dataset, class_names, data_dir, manual_dir)
    xr, yr = (real.pop("x"), real.pop("y"))
    if smoke:
        xr, yr = xr[:64], yr[:64]
    repeats = max(1, int(np.ceil(real_share * len(x_tr) / ((1.0 - real_share) * len(xr)))))
    x_tr = np.concatenate([x_tr, *([xr] * repeats)])
    y_tr = np.concatenate([y_tr, *([yr] * repeats)])
    real.update(repeats=repeats, share=round(repeats * len(xr) / len(x_tr), 4), n_patches=int(len(xr)))
    sources = sorted(set(sources) | set(real["sources"]))
    return x_tr, y_tr, sources, real
