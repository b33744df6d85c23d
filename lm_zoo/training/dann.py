"""Domain-adversarial fine-tuning (DANN, Ganin et al. 2016) of a landmark classifier on labelled
phantom patches and unlabelled real CT patches.

A small domain classifier reads the ``fc1_relu`` features (the layer users take as features) behind
a gradient-reversal layer: it learns to tell phantom from real, while the reversed gradient pushes
the backbone towards features it cannot tell apart, so the landmark classifier trained on phantoms
applies to real scans. The reversal weight rises from 0 to ``max_reversal`` with Ganin's schedule
``2 / (1 + exp(-10 p)) - 1`` (p = share of steps done), so the first steps keep the trained features.

``real_negative_weight``: random body points of unlabelled scans are non-landmarks with high
probability (about 1 % lie within 10 mm of any of the 60 landmarks, :mod:`lm_zoo.training.unlabelled`);
with a weight above 0 they are also trained as ``non_landmark`` (label-smoothed, so the few that
are landmarks cost little). Without the adversarial term that teaches "real texture means
background"; with it the network cannot see which domain a patch came from, so it has to learn
what real background looks like instead.

Phantom and real batches go through the network together, so BatchNormalization sees both domains
and its moving statistics describe their mixture: no separate adaptation step is needed at inference.
"""
from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["DannSettings", "train_dann", "reversal_weight"]


@dataclasses.dataclass(frozen=True)
class DannSettings:
    """Hyper-parameters of the adversarial fine-tuning; written into the run's metrics and card."""

    steps: int = 1500
    batch_size: int = 128          # phantom patches per step; as many real ones beside them
    learning_rate: float = 0.005
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.05
    max_reversal: float = 0.3
    domain_units: int = 256
    real_negative_weight: float = 0.0
    seed: int = 0


def reversal_weight(progress: float, max_reversal: float) -> float:
    """Ganin's schedule: 0 at the start, ``max_reversal`` at the end, smooth in between."""
    p = min(max(float(progress), 0.0), 1.0)
    return float(max_reversal * (2.0 / (1.0 + np.exp(-10.0 * p)) - 1.0))


def _gradient_reversal(lam):
    import tensorflow as tf

    @tf.custom_gradient
    def reverse(x):
        return tf.identity(x), lambda dy: -lam * dy

    return reverse


def _domain_head(model, units: int, seed: int):
    """``(features_and_probs, domain_layers)``: a model giving the class scores and ``fc1_relu``
    features from ``model``'s own layers, and the domain classifier's layers (trained, never saved)."""
    import keras

    from lm_zoo.applications import FEATURE_LAYER

    both = keras.Model(model.inputs, [model.output, model.get_layer(FEATURE_LAYER).output])
    init = keras.initializers.GlorotUniform(seed=seed)
    layers = [keras.layers.Dense(units, activation="relu", kernel_initializer=init, name="domain_fc"),
              keras.layers.Dense(1, kernel_initializer=init, name="domain_logit")]
    return both, layers


def train_dann(model, phantom_batches, real_batches, class_names, settings: DannSettings = DannSettings(),
               progress=None) -> list[dict]:
    """Fine-tune ``model`` in place; returns one log row per step chunk (losses, domain accuracy).

    ``phantom_batches`` yields ``(x, y_onehot)`` and ``real_batches`` yields ``x`` (both preprocessed,
    float32, endlessly); ``progress``: a tqdm-like wrapper of ``range(steps)``.
    """
    import keras
    import tensorflow as tf

    names = list(class_names)
    background = names.index("non_landmark")
    both, domain_layers = _domain_head(model, settings.domain_units, settings.seed)
    lam = tf.Variable(0.0, trainable=False, dtype=tf.float32)
    reverse = _gradient_reversal(lam)
    optimizer = keras.optimizers.SGD(settings.learning_rate, momentum=settings.momentum, nesterov=True,
                                     weight_decay=settings.weight_decay)
    cce = keras.losses.CategoricalCrossentropy(label_smoothing=settings.label_smoothing)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    background_1h = tf.one_hot(background, len(names))

    def domain_logits(features, training):
        h = reverse(features)
        for layer in domain_layers:
            h = layer(h, training=training)
        return h

    @tf.function(reduce_retracing=True)
    def step(xs, ys, xt):
        ns, nt = tf.shape(xs)[0], tf.shape(xt)[0]
        with tf.GradientTape() as tape:
            probs, features = both(tf.concat([xs, xt], 0), training=True)
            class_loss = cce(ys, probs[:ns])
            domain_truth = tf.concat([tf.zeros((ns, 1)), tf.ones((nt, 1))], 0)
            logits = domain_logits(features, True)
            domain_loss = bce(domain_truth, logits)
            real_bg = cce(tf.tile(background_1h[None], (nt, 1)), probs[ns:])
            loss = class_loss + domain_loss + settings.real_negative_weight * real_bg + tf.add_n(both.losses or [0.0])
        variables = both.trainable_variables + [v for layer in domain_layers for v in layer.trainable_variables]
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        domain_acc = tf.reduce_mean(tf.cast(tf.equal(tf.cast(logits > 0, tf.float32), domain_truth), tf.float32))
        return class_loss, domain_loss, real_bg, domain_acc

    # Build the domain layers (and their variables) before tracing.
    _ = domain_logits(tf.zeros((1, both.outputs[1].shape[-1])), False)
    steps = range(settings.steps)
    log, sums = [], np.zeros(4)
    for i in (progress(steps) if progress else steps):
        lam.assign(reversal_weight(i / max(1, settings.steps - 1), settings.max_reversal))
        xs, ys = next(phantom_batches)
        sums += np.array([float(v) for v in step(xs, ys, next(real_batches))])
        if (i + 1) % 50 == 0 or i + 1 == settings.steps:
            n = 50 if (i + 1) % 50 == 0 else (i + 1) % 50
            c, d, b, a = sums / n
            log.append({"step": i + 1, "reversal": round(float(lam.numpy()), 4), "class_loss": round(float(c), 4),
                        "domain_loss": round(float(d), 4), "real_background_loss": round(float(b), 4), "domain_accuracy": round(float(a), 4)})
            sums[:] = 0
    return log
