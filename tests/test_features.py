"""FeatureExtractor: MiniVGG25D layers as a scikit-learn transformer."""
from __future__ import annotations

import keras
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lm_zoo.applications import MiniVGG25D
from lm_zoo.features import FeatureExtractor


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    keras.utils.set_random_seed(3)
    model = MiniVGG25D(weights=None, classes=4)
    path = tmp_path_factory.mktemp("features") / "feat.weights.h5"
    model.save_weights(path)
    return path


def _textures(n, seed):
    """Two classes of MRA-like patches in [0, 1]: smooth blobs vs fine stripes, random contrast."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    labels = rng.integers(0, 2, n)
    patches = np.empty((n, 32, 32, 3), np.float32)
    for i, label in enumerate(labels):
        phase = rng.uniform(0, 2 * np.pi, 3)
        period = 3.0 if label else 16.0
        angle = rng.uniform(0, np.pi)
        wave = np.sin(2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy)[..., None] / period + phase)
        contrast = rng.uniform(0.2, 0.5)
        patches[i] = 0.5 + contrast * wave + rng.normal(0, 0.05, (32, 32, 3))
    return patches, labels


def test_unfitted_estimator_is_cloneable():
    fe = FeatureExtractor(weights=None, layer="block2_pool", modality="mra", batch_size=32, pooling="avg")
    assert not hasattr(fe, "model_")  # nothing built in __init__
    twin = clone(fe)
    assert twin.get_params() == fe.get_params() and twin is not fe
    assert FeatureExtractor().get_params() == {"weights": "landmark", "layer": "fc1_relu", "modality": None,
                                               "batch_size": 256, "pooling": None, "random_state": None}


def test_features_equal_the_layer_output(weights_file):
    patches, _ = _textures(20, seed=1)
    fe = FeatureExtractor(weights=weights_file, modality="mra", batch_size=7)
    features = fe.fit_transform(patches)
    assert features.shape == (20, 512) and features.dtype == np.float32
    model = MiniVGG25D(weights=weights_file)
    cut = keras.Model(model.input, model.get_layer("fc1_relu").output)
    # modality "mra" leaves the unit range, then the landmark standardisation (x - 0.5) / 0.5
    expected = cut.predict((patches - 0.5) / 0.5, verbose=0)
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
    # batching does not change the result
    np.testing.assert_allclose(FeatureExtractor(weights=weights_file, modality="mra", batch_size=256).fit_transform(patches),
                               features, rtol=1e-5, atol=1e-6)
    # inference mode: dropout off, so repeated calls agree exactly
    np.testing.assert_array_equal(fe.transform(patches), features)


@pytest.mark.parametrize(
    "layer, pooling, dim",
    [("block1_pool", None, 16 * 16 * 32), ("block2_relu2", "avg", 64), ("block2_dropout", "max", 64),
     ("fc1", None, 512), ("predictions", None, 4)],
)
def test_layer_choice_and_pooling(weights_file, layer, pooling, dim):
    patches, _ = _textures(3, seed=2)
    fe = FeatureExtractor(weights=weights_file, layer=layer, pooling=pooling, modality="mra").fit()
    out = fe.transform(patches)
    assert out.shape == (3, dim) and fe.n_features_out_ == dim
    names = fe.get_feature_names_out()
    assert len(names) == dim and names[0] == f"{layer}_0" and names[-1] == f"{layer}_{dim - 1}"


def test_pipeline_with_logistic_regression():
    keras.utils.set_random_seed(0)
    x_train, y_train = _textures(80, seed=10)
    x_test, y_test = _textures(60, seed=11)
    pipe = make_pipeline(FeatureExtractor(weights=None, layer="block2_pool", pooling="avg", modality="mra", batch_size=32),
                         StandardScaler(), LogisticRegression(max_iter=2000))
    pipe.fit(x_train, y_train)
    # Random-init conv features separate smooth from striped textures; chance would be 0.5.
    assert pipe.score(x_test, y_test) >= 0.9
    shuffled = clone(pipe).fit(x_train, np.random.default_rng(0).permutation(y_train))
    assert shuffled.score(x_test, y_test) < 0.8  # the score comes from the labels, not from leakage


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(layer="block3_conv1"), r"unknown layer 'block3_conv1'; available layers: block1_conv1, .*fc1_relu.*predictions"),
        (dict(pooling="avg"), r"pooling='avg' applies to convolutional layers only; layer 'fc1_relu'"),
        (dict(pooling="sum"), r"pooling must be one of \[None, 'avg', 'max'\]"),
        (dict(batch_size=0), r"batch_size must be a positive integer"),
        (dict(modality="pet"), r"`modality` argument should be one of"),
        (dict(weights="imagenet"), r"`weights` argument should be"),
    ],
)
def test_invalid_parameters(kwargs, message):
    params = dict(weights=None, **kwargs) if "weights" not in kwargs else kwargs
    with pytest.raises(ValueError, match=message):
        FeatureExtractor(**params).fit()


def test_transform_before_fit_raises_not_fitted_and_checks_patch_shape():
    from sklearn.exceptions import NotFittedError

    fe = FeatureExtractor(weights=None)
    with pytest.raises(NotFittedError):
        fe.transform(np.zeros((2, 32, 32, 3)))
    fe.fit()
    with pytest.raises(ValueError, match=r"patches of shape \(N, 32, 32, 3\), got \(2, 32, 32\)"):
        fe.transform(np.zeros((2, 32, 32)))
    assert fe.transform(np.zeros((2, 32, 32, 3))).shape == (2, 512)


def test_random_init_is_seeded_by_random_state():
    patches, _ = _textures(6, seed=8)
    a = FeatureExtractor(weights=None, modality="mra", random_state=5).fit_transform(patches)
    keras.utils.set_random_seed(123)  # the global state in between does not matter
    b = FeatureExtractor(weights=None, modality="mra", random_state=5).fit_transform(patches)
    c = FeatureExtractor(weights=None, modality="mra", random_state=6).fit_transform(patches)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fitted_extractor_pickles(weights_file):
    import pickle

    patches, _ = _textures(4, seed=5)
    fe = FeatureExtractor(weights=weights_file, modality="mra").fit()
    restored = pickle.loads(pickle.dumps(fe))  # e.g. joblib workers of cross_val_score(n_jobs=2)
    np.testing.assert_array_equal(restored.transform(patches), fe.transform(patches))


def test_conv_features_from_a_headless_weights_file(tmp_path):
    keras.utils.set_random_seed(4)
    backbone = MiniVGG25D(weights=None, include_top=False, pooling="avg")
    path = tmp_path / "headless.weights.h5"
    backbone.save_weights(path)
    patches, _ = _textures(5, seed=6)
    features = FeatureExtractor(weights=path, layer="block2_dropout", pooling="avg", modality="mra").fit_transform(patches)
    np.testing.assert_allclose(features, backbone.predict((patches - 0.5) / 0.5, verbose=0), rtol=1e-4, atol=1e-5)
