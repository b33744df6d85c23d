"""Input pipelines of the recipes: CIFAR-10 batches with crop-and-flip augmentation (a Keras
``PyDataset``, any backend) and landmark patch batches (``tf.data``) with per-batch domain
randomisation. Every random draw is seeded, so a run is repeatable."""
from __future__ import annotations

import numpy as np

__all__ = ["AugmentedImages", "crop_flip", "landmark_batches"]


class AugmentedImages:
    """Random crop (4 px reflect padding) + horizontal flip, seeded per epoch."""

    def __new__(cls, *args, **kwargs):
        import keras

        class _Dataset(keras.utils.PyDataset):
            def __init__(self, x, y, batch_size, seed, augment):
                super().__init__()
                self.x, self.y = x, y
                self.batch_size, self.seed, self.augment = batch_size, seed, augment
                self.epoch = 0
                self._order()

            def _order(self):
                rng = np.random.default_rng([self.seed, self.epoch])
                self.order = rng.permutation(len(self.x)) if self.augment else np.arange(len(self.x))

            def __len__(self):
                return int(np.ceil(len(self.x) / self.batch_size))

            def on_epoch_end(self):
                self.epoch += 1
                self._order()

            def __getitem__(self, i):
                idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
                x = self.x[idx]
                if self.augment:
                    rng = np.random.default_rng([self.seed, self.epoch, i])
                    x = crop_flip(x, rng)
                return x, self.y[idx]

        return _Dataset(*args, **kwargs)


def crop_flip(x: np.ndarray, rng: np.random.Generator, pad: int = 4) -> np.ndarray:
    """Each image shifted by up to ``pad`` px (reflect padding) and flipped left-right with p = 0.5."""
    n, h, w = x.shape[:3]
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    dy = rng.integers(0, 2 * pad + 1, n)
    dx = rng.integers(0, 2 * pad + 1, n)
    rows = dy[:, None] + np.arange(h)[None, :]
    cols = dx[:, None] + np.arange(w)[None, :]
    out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, ::-1]
    return out


def landmark_batches(x, y, n_classes: int, recipe, prep, shuffle: bool, randomize_batches: bool = False):
    """``tf.data`` batches of ``(prep(x), one-hot y)``; with ``randomize_batches`` each batch of raw-HU
    ``x`` goes through :func:`lm_zoo.augment.randomize` before ``prep`` (the weights' preprocessing).
    ``recipe``: anything with ``batch_size`` and ``seed`` (a :class:`Recipe`, a ``DannSettings``)."""
    import keras
    import tensorflow as tf

    def randomized(x, seed):
        # raw HU in, network input out: domain randomisation first, then the weights' preprocessing
        from lm_zoo.augment import randomize

        return prep(randomize(x, [recipe.seed, int(seed)]))

    ds = tf.data.Dataset.from_tensor_slices((x, keras.utils.to_categorical(y, n_classes))).cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=recipe.seed, reshuffle_each_iteration=True)
    ds = ds.batch(recipe.batch_size)
    if randomize_batches:
        # one seed per batch from a seeded stream that differs per epoch: deterministic runs
        seeds = tf.data.Dataset.random(seed=recipe.seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda xy, s: (tf.ensure_shape(tf.numpy_function(randomized, [xy[0], s], tf.float32), xy[0].shape), xy[1]),
            num_parallel_calls=1, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
