"""Frozen MiniVGG25D backbones as feature extractors.

A backbone is ``"landmark"`` or ``"cifar"`` (shipped weight sets), ``"random"`` (the untrained
control: the architecture with a seeded random initialisation) or the path of a user's
``.weights.h5`` file.

Default feature layer: ``fc1_relu`` (512-d). It is the deepest layer every weight set shares (the
``predictions`` layer differs in class count), it has the same width for every backbone so the
stumps choose among equally many candidate features whatever the backbone, and a stump's cost
grows with the number of features (each is sorted), so 512 features fit 8x faster than the 4,096
of ``flatten``. Any other layer is allowed by name (e.g. ``flatten``, ``block2_pool``); spatial
outputs are flattened.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lm_zoo.evaluation.errors import EvaluationError

NAMED = ("landmark", "cifar")
RANDOM = "random"
DEFAULT_BACKBONES = ("landmark", "cifar", "random")
DEFAULT_LAYER = "fc1_relu"
MODALITY = "mra"


@dataclass(frozen=True)
class Backbone:
    """What a backbone argument resolved to."""

    name: str  # label in outputs: "landmark", "cifar", "random" or the file's stem
    weights: str | None  # argument for MiniVGG25D: weight-set name, file path, or None (random)
    seed: int = 0  # initialisation seed of the random control


def resolve(spec: str, seed: int = 0) -> Backbone:
    """``"landmark" | "cifar" | "random" | path/to/file.weights.h5`` -> :class:`Backbone`."""
    spec = str(spec).strip()
    if spec in NAMED:
        return Backbone(spec, spec)
    if spec == RANDOM:
        return Backbone(RANDOM, None, seed)
    if spec.endswith(".weights.h5"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"backbone weights file {str(path)!r} does not exist")
        return Backbone(path.name[: -len(".weights.h5")], str(path))
    raise EvaluationError(
        f"unknown backbone {spec!r}; allowed: {', '.join(NAMED + (RANDOM,))} or the path of a .weights.h5 file"
    )


def resolve_all(specs, seed: int = 0) -> list[Backbone]:
    if isinstance(specs, str):
        specs = [s for s in specs.split(",") if s.strip()]
    backbones = [resolve(s, seed) for s in specs]
    if not backbones:
        raise EvaluationError(f"no backbone given; allowed: {', '.join(NAMED + (RANDOM,))} or .weights.h5 paths")
    names = [b.name for b in backbones]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise EvaluationError(f"backbone(s) {duplicates} given twice in {names}")
    return backbones


def build_model(backbone: Backbone):
    """The full MiniVGG25D (with its top) carrying the backbone's weights, frozen."""
    import keras

    from lm_zoo.applications import MiniVGG25D

    if backbone.weights is None:
        # Same seed, same random features: the control is reproducible.
        keras.utils.set_random_seed(backbone.seed)
        model = MiniVGG25D(include_top=True, weights=None, classes=2)
    else:  # a shipped set or a user's file (MiniVGG25D reads the head's class count from the file)
        model = MiniVGG25D(include_top=True, weights=backbone.weights)
    model.trainable = False
    return model


def feature_model(model, layer: str = DEFAULT_LAYER):
    import keras

    names = [l.name for l in model.layers]
    if layer not in names:
        raise EvaluationError(f"unknown feature layer {layer!r}; MiniVGG25D layers: {', '.join(names[1:])}")
    return keras.Model(model.inputs, model.get_layer(layer).output, name=f"{model.name}_{layer}")


def preprocess(patches: np.ndarray, backbone: Backbone) -> np.ndarray:
    """MRA patches are per-volume normalised already; the weight set adds its standardisation
    (random init: the landmark convention; a user's file: its sidecar JSON's, see
    ``lm_zoo.applications.preprocess_input``)."""
    from lm_zoo.applications import preprocess_input

    return np.asarray(preprocess_input(np.asarray(patches, dtype=np.float32), weights=backbone.weights, modality=MODALITY), dtype=np.float32)


_FORWARD: dict = {}


def extract(model, patches: np.ndarray, batch_size: int = 512, progress=None) -> np.ndarray:
    """Features of ``patches`` (already preprocessed) through a prefetching tf.data pipeline.

    The model runs in one compiled ``tf.function`` per batch shape, without ``predict``'s
    callback machinery; outputs with spatial axes are flattened.
    """
    import tensorflow as tf

    if batch_size < 1:
        raise EvaluationError(f"batch_size must be >= 1, got {batch_size}")
    dataset = tf.data.Dataset.from_tensor_slices(patches).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    forward = _FORWARD.get(id(model))
    if forward is None or forward[0] is not model:
        # One traced function per model, reused across calls (tracing costs more than a batch).
        forward = _FORWARD[id(model)] = (model, tf.function(lambda x: model(x, training=False), reduce_retracing=True))
    forward = forward[1]
    batches = iter(dataset)
    if progress is not None:
        batches = progress(batches, total=-(-len(patches) // batch_size))
    out = [forward(x).numpy() for x in batches]
    features = np.concatenate(out) if out else np.zeros((0,) + tuple(model.output.shape[1:]), np.float32)
    return features.reshape(len(features), -1).astype(np.float32, copy=False)
