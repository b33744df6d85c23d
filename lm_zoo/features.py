"""MiniVGG25D as a scikit-learn transformer: 2.5D patches in, feature vectors out.

    from sklearn.pipeline import make_pipeline
    from sklearn.ensemble import AdaBoostClassifier
    clf = make_pipeline(FeatureExtractor(weights="landmark", modality="mra"), AdaBoostClassifier())
    clf.fit(train_patches, train_labels)

The network is built on ``fit`` (or the first ``transform``), never in ``__init__``, so
``sklearn.base.clone`` and ``get_params`` see only the constructor arguments.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from lm_zoo.applications.mini_vgg25d import DEFAULT_SIZE, FEATURE_LAYER

__all__ = ["FeatureExtractor"]

POOLING_MODES = (None, "avg", "max")


class FeatureExtractor(TransformerMixin, BaseEstimator):
    """Frozen MiniVGG25D features of 2.5D patches (N, 32, 32, 3) -> float32 (N, D).

    Parameters
    ----------
    weights : "landmark", "cifar", None (random init) or path to a ``.weights.h5`` file
        Passed to ``MiniVGG25D``; also selects the preprocessing (``preprocess_input``).
    layer : str, default "fc1_relu"
        Layer whose output is the feature vector (``fc1_relu``: 512-d). Convolutional feature
        maps are flattened, or globally pooled with ``pooling``.
    modality : "ct", "mra", "rgb" or None
        What the patches hold (raw HU, ``normalize_mra``-scaled MRA, RGB 0..255); None = the
        weight set's own modality. See ``lm_zoo.applications.preprocess_input``.
    batch_size : int, default 256
        Patches per forward pass.
    pooling : None, "avg" or "max"
        Global pooling of a convolutional layer's (H, W, C) output; None flattens it. Must be
        None for dense layers.

    Attributes
    ----------
    model_ : keras.Model
        MiniVGG25D cut at ``layer``.
    n_features_out_ : int
        Feature dimension D.
    """

    def __init__(self, weights="landmark", layer=FEATURE_LAYER, modality=None, batch_size=256, pooling=None):
        self.weights = weights
        self.layer = layer
        self.modality = modality
        self.batch_size = batch_size
        self.pooling = pooling

    def fit(self, X=None, y=None):
        """Build the frozen network (no training: the features are pre-trained)."""
        import keras

        from lm_zoo.applications import MiniVGG25D, preprocess_input

        if not isinstance(self.batch_size, (int, np.integer)) or isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise ValueError(f"FeatureExtractor: batch_size must be a positive integer, got {self.batch_size!r}")
        if self.pooling not in POOLING_MODES:
            raise ValueError(f"FeatureExtractor: pooling must be one of {list(POOLING_MODES)}, got {self.pooling!r}")
        # Validates weights and modality before the (slower) model build.
        preprocess_input(np.zeros((1, 1, 1, 3), np.float32), weights=self.weights, modality=self.modality)
        # Convolutional layers come from the headless network, so weights files saved without a
        # head work too; the head is built only for fc1*/predictions.
        net = MiniVGG25D(include_top=False, weights=self.weights, input_shape=(DEFAULT_SIZE, DEFAULT_SIZE, 3))
        if self.layer not in [layer.name for layer in net.layers]:
            # Random init with no registered class count: the head size is irrelevant for features.
            net = MiniVGG25D(include_top=True, weights=self.weights, classes=1 if self.weights is None else None)
            names = [layer.name for layer in net.layers[1:]]
            if self.layer not in names:
                raise ValueError(f"FeatureExtractor: unknown layer {self.layer!r}; available layers: {', '.join(names)}")
        output = net.get_layer(self.layer).output
        if len(output.shape) == 4:
            if self.pooling == "avg":
                output = keras.layers.GlobalAveragePooling2D(name="feature_avg_pool")(output)
            elif self.pooling == "max":
                output = keras.layers.GlobalMaxPooling2D(name="feature_max_pool")(output)
            else:
                output = keras.layers.Flatten(name="feature_flatten")(output)
        elif self.pooling is not None:
            raise ValueError(f"FeatureExtractor: pooling={self.pooling!r} applies to convolutional layers only; "
                             f"layer {self.layer!r} outputs vectors, use pooling=None")
        self.model_ = keras.Model(net.input, output, name=f"mini_vgg25d_{self.layer}")
        self.model_.trainable = False
        self.n_features_out_ = int(output.shape[-1])
        return self

    def transform(self, X):
        """Preprocess and run the patches through the network in batches; returns float32 (N, D)."""
        import keras
        from tqdm.auto import tqdm

        from lm_zoo.applications import preprocess_input

        if not hasattr(self, "model_"):
            self.fit()
        X = np.asarray(X)
        if X.ndim != 4 or X.shape[1:] != (DEFAULT_SIZE, DEFAULT_SIZE, 3):
            raise ValueError(f"FeatureExtractor.transform expects patches of shape (N, {DEFAULT_SIZE}, {DEFAULT_SIZE}, 3), "
                             f"got {X.shape}")
        out = np.empty((len(X), self.n_features_out_), np.float32)
        starts = range(0, len(X), self.batch_size)
        for start in tqdm(starts, desc=f"features {self.layer}", unit="batch", disable=len(starts) < 8, leave=False):
            batch = preprocess_input(X[start:start + self.batch_size], weights=self.weights, modality=self.modality)
            # predict_on_batch runs in inference mode: dropout off, BatchNorm on its moving statistics.
            out[start:start + len(batch)] = keras.ops.convert_to_numpy(self.model_.predict_on_batch(batch))
        return out

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "n_features_out_")
        return np.asarray([f"{self.layer}_{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False  # fit only builds the network
        return tags
