"""The recipes behind the shipped weight sets ("landmark" and "cifar").

Each recipe is seeded, logged (``history.csv``), resumable (``keras.callbacks.BackupAndRestore``)
and writes ``<name>.weights.h5`` (model weights only, no optimizer state) with its sidecar,
``metrics.json`` and a model card ``<name>.md`` into its output folder. ``smoke=True`` runs a few
steps for tests.

The code is backend-agnostic Keras 3: inputs are NumPy arrays fed through a
``keras.utils.PyDataset`` (CIFAR, augmentation on the fly) or ``tf.data`` when TensorFlow is the
backend (landmarks), so the CIFAR recipe also runs on JAX or PyTorch.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from lm_zoo._atomic import atomic_write_json, atomic_write_text
from lm_zoo.training.batches import AugmentedImages, landmark_batches
from lm_zoo.training.cards import model_card, read_history
from lm_zoo.training.data import load_cifar10, load_patch_splits, mix_real_patches
from lm_zoo.training.loop import compile_model, fit, machine_description, save_weights
from lm_zoo.training.metrics import classification_metrics
from lm_zoo.training.recipe import CIFAR10_CLASSES, CIFAR_RECIPE, LANDMARK_RECIPE, REAL_SHARE, Recipe, run_stem

__all__ = ["train_cifar", "train_landmark", "load_backbone", "write_run_outputs"]


def train_cifar(
    out_dir,
    archive=None,
    data_dir=None,
    recipe: Recipe = CIFAR_RECIPE,
    epochs: int | None = None,
    smoke: bool = False,
    verbose=2,
    command: str | None = None,
) -> dict:
    """Train MiniVGG25D on CIFAR-10 (the "cifar" weight set). Returns the metrics dict."""
    import keras

    from lm_zoo.applications import MiniVGG25D, predict_batched, preprocess_input

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(recipe.seed)
    t0 = time.time()
    (x_train, y_train), (x_test, y_test), provenance = load_cifar10(archive, data_dir)
    if smoke:  # a class-mixed subset: the archive is sorted by class
        rng = np.random.default_rng(recipe.seed)
        tr, te = rng.choice(len(x_train), 512, replace=False), rng.choice(len(x_test), 256, replace=False)
        x_train, y_train, x_test, y_test = x_train[tr], y_train[tr], x_test[te], y_test[te]
    epochs = 1 if smoke else (epochs or recipe.epochs)
    x_train = np.asarray(preprocess_input(x_train.astype("float32"), weights="cifar"))
    x_test = np.asarray(preprocess_input(x_test.astype("float32"), weights="cifar"))
    y_train_1h = keras.utils.to_categorical(y_train, 10)
    train = AugmentedImages(x_train, y_train_1h, recipe.batch_size, recipe.seed, True)
    model = MiniVGG25D(weights=None, classes=10)
    compile_model(model, recipe, len(train), epochs)
    t_data = time.time() - t0
    fit(model, train, None, recipe, epochs, out_dir, verbose=verbose)
    t_train = time.time() - t0 - t_data
    metrics = {
        "weight_set": "cifar",
        "data": provenance,
        "n_train": int(len(x_train)),
        "n_test": int(len(x_test)),
        **classification_metrics(predict_batched(model, x_test, 1024), y_test, CIFAR10_CLASSES),
        "epochs": epochs,
        "recipe": dataclasses.asdict(recipe),
        "seconds_data": round(t_data, 1),
        "seconds_train": round(t_train, 1),
        "machine": machine_description(),
        "smoke": smoke,
    }
    return write_run_outputs(model, out_dir, metrics, command)


def train_landmark(
    out_dir,
    dataset: str = "landmark_ct_patches/phantom_lm60",
    data_dir=None,
    recipe: Recipe = LANDMARK_RECIPE,
    epochs: int | None = None,
    init_from=None,
    smoke: bool = False,
    verbose=2,
    command: str | None = None,
    real_dataset: str | None = None,
    real_manual_dir=None,
    real_share: float = REAL_SHARE,
    real_data_dir=None,
) -> dict:
    """Train MiniVGG25D to classify landmark patches (the "landmark" weight set).

    ``init_from``: a ``.weights.h5`` of an earlier stage (e.g. the 20-class model) whose
    convolutional blocks initialise this one, as in the method's 20 → 60 class progression.

    ``real_dataset``: a patch dataset of real CT (e.g. ``landmark_ct_patches/manual_adapt`` on a
    folder of CTs with TotalSegmentator segmentations, ``real_manual_dir``) mixed into the training
    split: every split of it is training data, repeated so that about ``real_share`` of each epoch
    is real; it is prepared in ``real_data_dir`` (default ``data_dir``). Its classes are matched to
    ``dataset``'s by name. Validation and test stay on
    ``dataset``, so figures on the real cases are training-data figures, and the metrics say so.
    """
    import keras

    from lm_zoo.applications import MiniVGG25D, predict_batched, preprocess_input

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(recipe.seed)
    t0 = time.time()
    splits, class_names, info, sources = load_patch_splits(dataset, data_dir)
    (x_tr, y_tr, _), (x_va, y_va, _), (x_te, y_te, c_te) = (splits[s] for s in ("train", "validation", "test"))
    if smoke:
        x_tr, y_tr, x_va, y_va = x_tr[:256], y_tr[:256], x_va[:128], y_va[:128]
    real = None
    if real_dataset:
        x_tr, y_tr, sources, real = mix_real_patches(x_tr, y_tr, sources, real_dataset, class_names,
                                                     real_data_dir or data_dir, real_manual_dir, real_share, smoke)
    epochs = 1 if smoke else (epochs or recipe.epochs)
    n_classes = len(class_names)
    prep = lambda x: np.asarray(preprocess_input(x, weights="landmark", modality="ct"))  # noqa: E731
    x_va, x_te = prep(x_va), prep(x_te)
    augment = recipe.intensity_augmentation
    if not augment:
        x_tr = prep(x_tr)
    train = landmark_batches(x_tr, y_tr, n_classes, recipe, prep, True, augment)
    val = landmark_batches(x_va, y_va, n_classes, recipe, prep, False)
    model = MiniVGG25D(weights=None, classes=n_classes)
    head_kept = bool(init_from) and load_backbone(model, init_from, class_names)
    compile_model(model, recipe, int(np.ceil(len(x_tr) / recipe.batch_size)), epochs)
    t_data = time.time() - t0
    fit(model, train, val, recipe, epochs, out_dir, verbose=verbose)
    t_train = time.time() - t0 - t_data
    metrics = {
        **_landmark_data_metrics(dataset, info, sources, real, class_names, len(x_tr), len(x_va), c_te),
        **classification_metrics(predict_batched(model, x_te, 1024), y_te, class_names, groups=c_te),
        "epochs_max": epochs,
        "recipe": dataclasses.asdict(recipe),
        "init_from": str(init_from) if init_from else None,
        **({"init_head_kept": head_kept} if init_from else {}),
        "seconds_data": round(t_data, 1),
        "seconds_train": round(t_train, 1),
        "machine": machine_description(),
        "smoke": smoke,
    }
    return write_run_outputs(model, out_dir, metrics, command)


def _landmark_data_metrics(dataset, info, sources, real, class_names, n_train, n_validation, test_cases) -> dict:
    """What a landmark run trained and was tested on, real training patches named as such."""
    phantom_sources = sorted(set(sources) - set(real["sources"]) if real else sources)
    return {
        "weight_set": "landmark",
        "dataset": dataset,
        "data": f"{dataset} v{info.version} (source: {'+'.join(phantom_sources)})"
        + (f" + real training patches {real['data']}" if real else ""),
        "source": "+".join(sources),
        **({"real_training": real} if real else {}),
        "class_names": list(class_names),
        "n_train": int(n_train),
        "n_validation": int(n_validation),
        "n_test": int(len(test_cases)),
        "n_test_cases": int(len(np.unique(test_cases))),
    }


def load_backbone(model, weights_file, class_names=None) -> bool:
    """Copy every layer except the classifier from a model of the same family; the classifier too
    when the earlier stage had the same classes in the same order (a second stage on new data).
    Returns whether the classifier was copied."""
    from lm_zoo.applications import MiniVGG25D
    from lm_zoo.pretrained import describe_weights

    donor = MiniVGG25D(weights=str(weights_file))  # class count read from the file's head
    same_head = class_names is not None and list(describe_weights(str(weights_file)).class_names) == list(class_names)
    for layer in model.layers:
        if layer.weights and (layer.name != "predictions" or same_head):
            layer.set_weights(donor.get_layer(layer.name).get_weights())
    return same_head


def write_run_outputs(model, out_dir: Path, metrics: dict, command: str | None) -> dict:
    """``mini_vgg25d_<set>.weights.h5`` with its sidecar, ``metrics.json`` (with the command line)
    and the model card of a finished run."""
    from lm_zoo import pretrained

    stem = run_stem(metrics["weight_set"])
    metrics["command"] = command
    weights_file = save_weights(model, out_dir, stem + ".weights.h5")
    # The sidecar carries the file's sha256 (checked whenever the file is loaded by path), its
    # preprocessing and class names, so the file is usable and verifiable outside the registry.
    classes = metrics.get("class_names") or (CIFAR10_CLASSES if metrics["weight_set"] == "cifar" else ())
    pretrained.write_sidecar(weights_file, preprocessing=metrics["weight_set"], class_names=classes,
                             data=str(metrics.get("data", "")))
    atomic_write_json(out_dir / "metrics.json", metrics)
    history = read_history(out_dir / "history.csv") if (out_dir / "history.csv").exists() else []
    card = model_card(metrics, command, history, pretrained.sha256_file(weights_file))
    atomic_write_text(out_dir / (stem + ".md"), card)
    return metrics
