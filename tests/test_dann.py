"""lm_zoo.training.dann: gradient reversal, its schedule, and what the adversarial fine-tuning does."""
from __future__ import annotations

import numpy as np
import pytest

from lm_zoo.training import dann


def test_reversal_weight_rises_from_zero_to_the_maximum():
    weights = [dann.reversal_weight(p, 0.3) for p in np.linspace(0, 1, 11)]
    assert weights[0] == 0.0 and weights[-1] == pytest.approx(0.3, abs=2e-4)
    assert all(b > a for a, b in zip(weights, weights[1:]))
    assert dann.reversal_weight(-1, 0.3) == 0.0 and dann.reversal_weight(2, 0.3) == weights[-1]


def test_gradient_reversal_is_identity_forward_and_flips_the_gradient():
    import tensorflow as tf

    lam = tf.Variable(0.25)
    reverse = dann._gradient_reversal(lam)
    x = tf.constant([[1.0, -2.0, 3.0]])
    w = tf.constant([[2.0, 5.0, -1.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = reverse(x)
        loss = tf.reduce_sum(y * w)
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), -0.25 * w.numpy())


def _streams(seed=0, batch=16):
    """Phantom-like batches of 3 classes (a bright square whose place is the class) and 'real' ones:
    the same kind of image at another intensity scale with coarser noise, labels never given."""
    rng = np.random.default_rng(seed)
    eye = np.eye(3, dtype=np.float32)

    def images(n, scale, noise):
        y = rng.integers(0, 3, n)
        x = rng.normal(0, noise, (n, 32, 32, 3)).astype(np.float32)
        for i, c in enumerate(y):
            x[i, 4 + 8 * c: 12 + 8 * c, 10:20] += 2.0
        return x * scale, y

    def source():
        while True:
            x, y = images(batch, 1.0, 0.3)
            yield x, eye[y]

    def target():
        while True:
            yield images(batch, 1.6, 0.8)[0] + 0.5

    return source(), target()


def test_real_negatives_teach_the_background_and_the_domain_head_is_not_saved():
    import keras

    from lm_zoo.applications import MiniVGG25D

    keras.utils.set_random_seed(0)
    model = MiniVGG25D(weights=None, classes=3)
    n_weights = len(model.weights)
    source, target = _streams()
    probe = next(target)
    background = int(np.bincount(model.predict(probe, verbose=0).argmax(1), minlength=3).argmin())
    names = ["a", "b"]
    names.insert(background, "non_landmark")  # the class the untrained model calls least often
    before = (model.predict(probe, verbose=0).argmax(1) == background).mean()
    settings = dann.DannSettings(steps=60, batch_size=16, real_negative_weight=1.0, learning_rate=0.01)
    log = dann.train_dann(model, source, target, names, settings)
    after = (model.predict(probe, verbose=0).argmax(1) == background).mean()
    assert before < 0.5 and after > 0.8, (before, after)
    assert len(model.weights) == n_weights, "the domain classifier stays out of the saved model"
    assert [row["step"] for row in log] == [50, 60]
    assert log[-1]["reversal"] == pytest.approx(0.3, abs=1e-3)
    assert set(log[-1]) >= {"class_loss", "domain_loss", "domain_accuracy", "real_background_loss"}
