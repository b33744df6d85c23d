"""Transfer the other way: each backbone with a new head, trained end to end.

The backbone's top (``fc1`` ... ``fc1_dropout``) is kept and its class layer replaced by one
sigmoid unit; every layer is trained on the training patches with the same recipe for every
backbone (Adam, ``LEARNING_RATE``, class-balanced loss weights, a fixed number of epochs), so the
only difference between backbones is where the weights start.

BatchNormalization layers train with batch statistics; a few epochs are too few for their moving
averages (momentum 0.99) to forget the source domain (CT, CIFAR, or the random control's identity),
so after training the moving statistics are recomputed on training patches, layer by layer in
inference mode (as "precise BN" does) — otherwise test-time normalisation would not match training.
"""
from __future__ import annotations

import numpy as np

LEARNING_RATE = 3e-4
BATCH_SIZE = 128
HEAD_INPUT = "fc1_dropout"
RECALIBRATION_PATCHES = 2048
PREDICT_BATCH = 512  # rows per inference batch (the last one padded): one traced shape per model


def build(base, seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    x = base.get_layer(HEAD_INPUT).output
    out = keras.layers.Dense(1, activation="sigmoid", name="aneurysm")(x)
    model = keras.Model(base.inputs, out, name=f"{base.name}_finetuned")
    # The base was frozen layer by layer for feature extraction; the wrapper's `trainable` flag does
    # not reach layers it shares with that base, so each is unfrozen explicitly.
    for layer in model.layers:
        layer.trainable = True
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss="binary_crossentropy")
    return model


def probe(model):
    """(BatchNormalization layers, a model giving each one's input and then ``model``'s output).

    The recalibration and the test scores all run through this one model's compiled function
    at one batch shape (``predict_batched``), so TensorFlow traces it once per fine-tuned model.
    A Keras sub-model per layer, each with its own ``predict``, traced a new function every time
    (TensorFlow's "retracing" warnings). It shares ``model``'s variables, so each pass sees the
    statistics set before it.
    """
    import keras

    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    return layers, keras.Model(model.inputs, [*(layer.input for layer in layers), model.output])


def recalibrate_batch_norm(model, x, n: int = RECALIBRATION_PATCHES, seed: int = 0, probed=None) -> None:
    """Set every BatchNormalization layer's moving mean/variance to the statistics of its inputs on
    ``n`` patches of ``x``, earlier layers first, each computed in inference mode. ``probed``:
    :func:`probe` of ``model``, when the caller has it already."""
    from lm_zoo.applications.inference import predict_batched

    rng = np.random.default_rng(seed)
    sample = x[np.sort(rng.choice(len(x), size=min(n, len(x)), replace=False))]
    layers, probe_model = probed or probe(model)
    for i, layer in enumerate(layers):
        inputs = predict_batched(probe_model, sample, PREDICT_BATCH)[i]
        axes = tuple(range(inputs.ndim - 1))
        layer.moving_mean.assign(inputs.mean(axis=axes))
        layer.moving_variance.assign(inputs.var(axis=axes))


def fit_verbosity(progress: bool) -> int:
    """Keras ``fit`` verbosity: its live bar (1) on a terminal; elsewhere (a log file, a pipe) one
    plain line per epoch (2), as the live bar writes ANSI colour codes and backspaces whatever
    the output is."""
    import sys

    if not progress:
        return 0
    return 1 if sys.stdout.isatty() else 2


def class_weights(labels) -> dict[int, float]:
    """Inverse class frequency, so the rare aneurysm patches are not ignored."""
    counts = np.bincount(np.asarray(labels), minlength=2).astype(float)
    return {c: float(len(labels) / (2 * counts[c])) for c in (0, 1) if counts[c] > 0}


def finetune_scores(base, train_x, train_y, test_x, *, epochs: int, seed: int, verbose=0) -> np.ndarray:
    """Train end to end on (train_x, train_y); sigmoid scores of test_x (preprocessed patches)."""
    import tensorflow as tf

    from lm_zoo.applications.inference import predict_batched

    model = build(base, seed)
    train = (
        tf.data.Dataset.from_tensor_slices((train_x, np.asarray(train_y, np.float32)))
        .shuffle(len(train_x), seed=seed, reshuffle_each_iteration=True)
        .batch(BATCH_SIZE)
        .prefetch(tf.data.AUTOTUNE)
    )
    # The tf.data pipeline shuffles (seeded); fit's own shuffle does not apply to datasets.
    model.fit(train, epochs=epochs, shuffle=False, class_weight=class_weights(train_y), verbose=verbose)
    probed = probe(model)
    recalibrate_batch_norm(model, train_x, seed=seed, probed=probed)
    return predict_batched(probed[1], test_x, PREDICT_BATCH)[-1].ravel()
