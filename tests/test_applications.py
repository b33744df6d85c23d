"""MiniVGG25D as a Keras application, parametrised like keras' applications_test.py.

Weights come from temporary .weights.h5 files saved here (random init); the shipped landmark and
cifar files are only checked for "available and verified, or refused as not yet available".
"""
from __future__ import annotations

import dataclasses
import json
import shutil

import keras
import numpy as np
import pytest

from lm_zoo import pretrained
from lm_zoo.applications import MiniVGG25D, WeightsLoadError, decode_predictions, predict_batched, preprocess_input

CONTRACT_LAYERS = [
    *(f"block{b}_{kind}" for b in (1, 2) for kind in
      ("conv1", "bn1", "relu1", "conv2", "bn2", "relu2", "pool", "dropout")),
    "flatten", "fc1", "fc1_bn", "fc1_relu", "fc1_dropout", "predictions",
]
N_CLASSES = 5


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A random-init 5-class model, its weights file and a batch of patches."""
    keras.utils.set_random_seed(1)
    folder = tmp_path_factory.mktemp("weights")
    model = MiniVGG25D(weights=None, classes=N_CLASSES)
    path = folder / "five.weights.h5"
    model.save_weights(path)
    patches = np.random.default_rng(0).normal(size=(6, 32, 32, 3)).astype(np.float32)
    return {"model": model, "path": path, "patches": patches,
            "reference": model.predict(patches, verbose=0)}


@pytest.fixture
def registered(saved, tmp_path, monkeypatch):
    """Register a copy of the saved file as weight set 'test5' (in memory only)."""
    def register(sha256=None, data=None, class_names=None):
        path = tmp_path / "test5.weights.h5"
        if data is None:
            shutil.copyfile(saved["path"], path)
        else:
            path.write_bytes(data)
        names = class_names or tuple(f"class_{i}" for i in range(N_CLASSES))
        ws = pretrained.WeightSet(
            name="test5", filename=str(path), sha256=sha256 or pretrained.sha256_file(saved["path"]),
            class_names=names, descriptions=tuple(f"the {n}" for n in names),
            preprocessing=dict(pretrained.get_weight_set("landmark").preprocessing), origin=None, data="test")
        monkeypatch.setitem(pretrained.WEIGHT_SETS, "test5", ws)
        return path
    return register


# ---------------------------------------------------------------------------- construction
@pytest.mark.parametrize(
    "include_top, pooling, input_shape, expected",
    [
        (True, None, None, (None, N_CLASSES)),
        (False, None, None, (None, None, None, 64)),
        (False, None, (32, 32, 3), (None, 8, 8, 64)),
        (False, "avg", (32, 32, 3), (None, 64)),
        (False, "max", (64, 48, 3), (None, 64)),
        (False, None, (64, 48, 3), (None, 16, 12, 64)),
    ],
)
@pytest.mark.parametrize("weights", [None, "file"])
def test_construction_and_output_shape(saved, weights, include_top, pooling, input_shape, expected):
    w = saved["path"] if weights == "file" else None
    classes = N_CLASSES if weights is None else None
    model = MiniVGG25D(include_top=include_top, weights=w, input_shape=input_shape, pooling=pooling, classes=classes)
    assert model.output_shape == expected
    height, width = (input_shape or ((32, 32, 3) if include_top else (40, 40, 3)))[:2]
    out = model.predict(np.zeros((2, height, width, 3), np.float32), verbose=0)
    assert out.shape[0] == 2 and out.shape[-1] == expected[-1]
    if w is not None:
        # Loaded by structure, even without the head: conv and BN weights equal the file's.
        for name in ("block1_conv1", "block2_bn2"):
            for got, want in zip(model.get_layer(name).get_weights(), saved["model"].get_layer(name).get_weights()):
                np.testing.assert_array_equal(got, want)


def test_layer_names_and_feature_layer():
    model = MiniVGG25D(weights=None, classes=3)
    names = [layer.name for layer in model.layers[1:]]
    assert names == CONTRACT_LAYERS
    assert model.get_layer("fc1_relu").output.shape == (None, 512)
    assert model.name == "mini_vgg25d"
    assert model.get_layer("predictions").activation is keras.activations.softmax


def test_softmax_output_and_custom_activation():
    probs = MiniVGG25D(weights=None, classes=4).predict(np.ones((3, 32, 32, 3), np.float32), verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    logits_model = MiniVGG25D(weights=None, classes=4, classifier_activation=None, name="logits")
    assert logits_model.name == "logits"
    assert logits_model.get_layer("predictions").activation is keras.activations.linear


def test_input_tensor_from_other_layers():
    inputs = keras.Input((32, 32, 3))
    scaled = keras.layers.Rescaling(0.5, name="scale")(inputs)
    model = MiniVGG25D(weights=None, classes=3, input_tensor=scaled)
    assert model.inputs[0] is inputs
    assert "scale" in [layer.name for layer in model.layers]
    assert model.output_shape == (None, 3)
    model_no_top = MiniVGG25D(include_top=False, weights=None, input_tensor=keras.Input((40, 40, 3)), pooling="avg")
    assert model_no_top.output_shape == (None, 64)


def test_classes_default_from_landmark_set(monkeypatch):
    landmark = pretrained.get_weight_set("landmark")
    monkeypatch.setitem(pretrained.WEIGHT_SETS, "landmark",
                        dataclasses.replace(landmark, class_names=("a", "b", "non_landmark"), descriptions=()))
    assert MiniVGG25D(weights=None).output_shape == (None, 3)
    monkeypatch.setitem(pretrained.WEIGHT_SETS, "landmark", dataclasses.replace(landmark, class_names=(), descriptions=()))
    with pytest.raises(ValueError, match="`classes` argument must be given with weights=None"):
        MiniVGG25D(weights=None)


# ---------------------------------------------------------------------------- invalid arguments
INVALID = [
    (dict(weights="imagenet"), r"`weights` argument should be None .*'cifar', 'landmark'.*received weights='imagenet'"),
    (dict(weights="/no/such/file.weights.h5"), r"`weights` argument should be .*file.weights.h5"),
    (dict(weights=None, classes=3, pooling="sum", include_top=False), r"`pooling` argument should be one of \[None, 'avg', 'max'\]"),
    (dict(weights=None, classes=3, pooling="avg"), r"`pooling` argument only applies with include_top=False"),
    (dict(weights=None, classes=0), r"`classes` argument should be a positive integer"),
    (dict(weights=None, classes=2.5), r"`classes` argument should be a positive integer"),
    (dict(weights=None, classes=3, include_top="yes"), r"`include_top` argument should be True or False"),
    (dict(weights=None, classes=3, input_shape=(64, 64, 3)), r"include_top=True, `input_shape` should be \(32, 32, 3\)"),
    (dict(weights=None, include_top=False, input_shape=(16, 32, 3)), r"at least 32x32.*\(16, 32, 3\)"),
    (dict(weights=None, include_top=False, input_shape=(32, 32, 1)), r"`input_shape` argument should be \(height, width, 3\)"),
    (dict(weights=None, include_top=False, input_shape=(32, 32)), r"`input_shape` argument should be \(height, width, 3\)"),
    (dict(weights=None, classes=3, classifier_activation="not_an_activation"), r"`classifier_activation` argument should be"),
    (dict(weights=None, classes=3, input_tensor=np.zeros((1, 32, 32, 3))), r"`input_tensor` argument should be a Keras tensor"),
]


@pytest.mark.parametrize("kwargs, message", INVALID, ids=[str(k) for k, _ in INVALID])
def test_invalid_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MiniVGG25D(**kwargs)


def test_invalid_arguments_with_weights_file(saved, tmp_path):
    with pytest.raises(ValueError, match=rf"`classes` should be None or {N_CLASSES}.*received classes=7"):
        MiniVGG25D(weights=saved["path"], classes=7)
    with pytest.raises(ValueError, match="Only `None` and `softmax` activations"):
        MiniVGG25D(weights=saved["path"], classifier_activation="relu")
    with pytest.raises(ValueError, match=r"`input_shape` argument \(33, 32, 3\) disagrees with the shape of `input_tensor`"):
        MiniVGG25D(weights=saved["path"], input_tensor=keras.Input((32, 32, 3)), input_shape=(33, 32, 3))
    legacy = tmp_path / "model.h5"
    shutil.copyfile(saved["path"], legacy)
    with pytest.raises(ValueError, match=r"must be a file ending in '.weights.h5'.*model.h5"):
        MiniVGG25D(weights=legacy)


# ---------------------------------------------------------------------------- weights files
def test_save_load_round_trip(saved):
    with pytest.warns(UserWarning, match=r"five.weights.h5 has no recorded sha256.*write_sidecar"):
        again = MiniVGG25D(weights=saved["path"])  # classes read from the file's head
    np.testing.assert_array_equal(again.predict(saved["patches"], verbose=0), saved["reference"])


def test_registered_set_loads_after_hash_check(saved, registered):
    registered()
    model = MiniVGG25D(weights="test5")
    np.testing.assert_array_equal(model.predict(saved["patches"], verbose=0), saved["reference"])


@pytest.fixture
def no_loading(monkeypatch):
    """Fail the test if anything reaches Keras' weight loading."""
    def refuse(*args, **kwargs):
        raise AssertionError("load_weights was called on a file that failed its hash check")
    monkeypatch.setattr(keras.Model, "load_weights", refuse)


def test_hash_mismatch_refused_before_loading(saved, registered, no_loading):
    path = registered(sha256="0" * 64)
    actual = pretrained.sha256_file(path)
    with pytest.raises(pretrained.WeightsIntegrityError) as err:
        MiniVGG25D(weights="test5")
    assert str(path) in str(err.value) and "0" * 64 in str(err.value) and actual in str(err.value)


def test_truncated_file_refused_before_loading(saved, registered, no_loading):
    data = saved["path"].read_bytes()
    path = registered(data=data[: len(data) // 2])
    with pytest.raises(pretrained.WeightsIntegrityError, match="corrupt or truncated") as err:
        MiniVGG25D(weights="test5")
    assert str(path) in str(err.value)


def test_flipped_byte_refused_with_sidecar_and_warned_without(saved, tmp_path, no_loading):
    path = tmp_path / "mine.weights.h5"
    data = bytearray(saved["path"].read_bytes())
    path.write_bytes(bytes(data))
    pretrained.write_sidecar(path, class_names=[f"c{i}" for i in range(N_CLASSES)])
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(pretrained.WeightsIntegrityError, match="mine.weights.h5 failed its integrity check"):
        MiniVGG25D(weights=path)
    pretrained.sidecar_path(path).unlink()
    with pytest.warns(UserWarning, match=r"mine.weights.h5 has no recorded sha256"), \
            pytest.raises(AssertionError, match="load_weights was called"):
        MiniVGG25D(weights=path, include_top=False)  # unverified: it reaches Keras, after the warning


def test_sidecar_hash_checked_for_paths(saved, tmp_path, no_loading):
    path = tmp_path / "mine.weights.h5"
    shutil.copyfile(saved["path"], path)
    pretrained.write_sidecar(path)
    path.write_bytes(path.read_bytes()[:-100])  # truncated after its sidecar was written
    with pytest.raises(pretrained.WeightsIntegrityError, match="mine.weights.h5"):
        MiniVGG25D(weights=path)


def test_not_yet_available_set(tmp_path, monkeypatch):
    landmark = pretrained.get_weight_set("landmark")
    absent = tmp_path / "absent.weights.h5"
    monkeypatch.setitem(pretrained.WEIGHT_SETS, "landmark", dataclasses.replace(landmark, filename=str(absent), sha256=None))
    with pytest.raises(pretrained.WeightsNotAvailableError,
                       match=r"weight set 'landmark' is not yet available in this release \(file .*absent.weights.h5 absent\); use weights=None or a path"):
        MiniVGG25D(weights="landmark")


@pytest.mark.parametrize("name", ["landmark", "cifar"])
def test_shipped_sets_load_or_are_refused(name):
    ws = pretrained.get_weight_set(name)
    if not pretrained.local_path(ws).exists():
        with pytest.raises(pretrained.WeightsNotAvailableError, match=f"'{name}' is not yet available"):
            MiniVGG25D(weights=name)
    else:
        model = MiniVGG25D(weights=name)
        assert model.output_shape == (None, len(ws.class_names))


def test_mismatching_file_names_the_file(saved, tmp_path):
    tiny = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    tiny_path = tmp_path / "tiny.weights.h5"
    tiny.save_weights(tiny_path)
    with pytest.raises(WeightsLoadError, match=r"tiny.weights.h5 does not fit MiniVGG25D\(include_top=True"):
        MiniVGG25D(weights=tiny_path)
    with pytest.raises(WeightsLoadError, match=r"tiny.weights.h5 does not fit MiniVGG25D\(include_top=False"):
        MiniVGG25D(weights=tiny_path, include_top=False)
    headless = tmp_path / "headless.weights.h5"
    MiniVGG25D(weights=None, include_top=False).save_weights(headless)
    with pytest.raises(WeightsLoadError, match=r"headless.weights.h5 holds no classifier head"):
        MiniVGG25D(weights=headless)
    garbage = tmp_path / "garbage.weights.h5"
    garbage.write_bytes(b"not an HDF5 file")
    with pytest.raises(WeightsLoadError, match="garbage.weights.h5"):
        MiniVGG25D(weights=garbage, include_top=False)


# ---------------------------------------------------------------------------- preprocess_input
LANDMARK_MEAN, LANDMARK_STD = np.array([0.5, 0.5, 0.5]), np.array([0.5, 0.5, 0.5])
CIFAR_MEAN, CIFAR_STD = np.array([0.4914, 0.4822, 0.4465]), np.array([0.2470, 0.2435, 0.2616])


def _pixel(*channels):
    return np.array(channels, dtype=np.float64).reshape(1, 1, 1, 3)


# Hand-computed from the documented recipes: CT window [-450, 550] HU, /255 for RGB, unchanged MRA.
PREPROCESS_CASES = [
    ("landmark", None, _pixel(-1000, -450, 50), [-1.0, -1.0, 0.0]),
    ("landmark", "ct", _pixel(300, 550, 2000), [0.5, 1.0, 1.0]),  # (300+450)/1000 = 0.75 -> 0.5
    ("landmark", "mra", _pixel(0.0, 0.25, 1.0), [-1.0, -0.5, 1.0]),
    ("landmark", "rgb", _pixel(0, 127.5, 255), [-1.0, 0.0, 1.0]),
    ("cifar", None, _pixel(0, 0, 0), list(-CIFAR_MEAN / CIFAR_STD)),
    ("cifar", "rgb", _pixel(255, 255, 255), list((1 - CIFAR_MEAN) / CIFAR_STD)),
    ("cifar", "mra", _pixel(0.5, 0.5, 0.5), list((0.5 - CIFAR_MEAN) / CIFAR_STD)),
    ("cifar", "ct", _pixel(50, -450, 550), list((np.array([0.5, 0.0, 1.0]) - CIFAR_MEAN) / CIFAR_STD)),
    (None, None, _pixel(-450, 50, 550), [-1.0, 0.0, 1.0]),  # random init: landmark convention
]


@pytest.mark.parametrize("weights, modality, x, expected", PREPROCESS_CASES)
def test_preprocess_input_values(weights, modality, x, expected):
    before = x.copy()
    out = preprocess_input(x, weights=weights, modality=modality)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out.reshape(3), expected, atol=1e-5)
    np.testing.assert_array_equal(x, before)  # input untouched


@pytest.mark.parametrize("weights, modality, x, expected", PREPROCESS_CASES[:6])
def test_preprocess_input_backend_tensor(weights, modality, x, expected):
    tensor = keras.ops.convert_to_tensor(x.astype(np.float32))
    out = preprocess_input(tensor, weights=weights, modality=modality)
    assert keras.ops.is_tensor(out) and keras.backend.standardize_dtype(out.dtype) == "float32"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out).reshape(3), expected, atol=1e-5)


def test_preprocess_input_integer_and_list_inputs():
    hu = np.array([[[[-1000, 50, 3000]]]], dtype=np.int16)
    out = preprocess_input(hu)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.reshape(3), [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(preprocess_input([[0, 127.5, 255]], weights="cifar").reshape(3),
                               (np.array([0, 0.5, 1]) - CIFAR_MEAN) / CIFAR_STD, atol=1e-5)


def test_preprocess_input_in_a_keras_graph():
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, preprocess_input(inputs, weights="cifar"))
    x = np.full((1, 32, 32, 3), 255.0, np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), preprocess_input(x, weights="cifar"), rtol=1e-6)


def test_preprocess_input_for_weights_file_follows_sidecar(saved, tmp_path):
    path = tmp_path / "rgb.weights.h5"
    shutil.copyfile(saved["path"], path)
    x = _pixel(255, 0, 0)
    np.testing.assert_allclose(preprocess_input(x, weights=path), preprocess_input(x, weights="landmark"))
    pretrained.write_sidecar(path, preprocessing="cifar")
    np.testing.assert_allclose(preprocess_input(x, weights=path), preprocess_input(x, weights="cifar"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(modality="pet"), r"`modality` argument should be one of \['ct', 'mra', 'rgb'\]"),
        (dict(weights="imagenet"), r"`weights` argument should be"),
    ],
)
def test_preprocess_input_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        preprocess_input(np.zeros((1, 2, 2, 3)), **kwargs)


def test_preprocess_input_needs_three_channels():
    with pytest.raises(ValueError, match=r"3 channels.*\(1, 2, 2, 1\)"):
        preprocess_input(np.zeros((1, 2, 2, 1)))
    with pytest.raises(ValueError, match="3 channels"):
        preprocess_input(keras.ops.zeros((1, 2, 2, 4)))


# ---------------------------------------------------------------------------- decode_predictions
def test_decode_predictions_format():
    preds = np.array([[0.05, 0.1, 0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.25],
                      [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9, 0.1]], np.float32)
    decoded = decode_predictions(preds, top=3, weights="cifar")
    assert len(decoded) == 2 and all(len(row) == 3 for row in decoded)
    assert [c for c, _, _ in decoded[0]] == ["bird", "truck", "automobile"]
    assert decoded[1][0][0] == "ship"
    for name, description, score in decoded[0]:
        assert isinstance(name, str) and isinstance(description, str) and isinstance(score, float)
    np.testing.assert_allclose([s for _, _, s in decoded[0]], [0.6, 0.25, 0.1], rtol=1e-6)
    assert len(decode_predictions(preds, top=50, weights="cifar")[0]) == 10
    tensor_decoded = decode_predictions(keras.ops.convert_to_tensor(preds), top=1, weights="cifar")
    assert tensor_decoded[1][0][0] == "ship"


def test_decode_predictions_registered_names(registered):
    registered()
    decoded = decode_predictions(np.eye(N_CLASSES)[[3]], top=2, weights="test5")
    assert decoded[0][0] == ("class_3", "the class_3", 1.0)


@pytest.mark.parametrize(
    "preds, kwargs, message",
    [
        (np.zeros((2, 7)), dict(weights="cifar"), r"shape \(samples, 10\)\) for weights='cifar'; found array with shape \(2, 7\)"),
        (np.zeros(10), dict(weights="cifar"), r"found array with shape \(10,\)"),
        (np.zeros((1, 10)), dict(weights="cifar", top=0), r"`top` argument must be a positive integer"),
        (np.zeros((1, 10)), dict(weights=None), r"no class names are registered for weights=None"),
    ],
)
def test_decode_predictions_errors(preds, kwargs, message):
    with pytest.raises(ValueError, match=message):
        decode_predictions(preds, **kwargs)


def test_decode_predictions_from_sidecar(saved, tmp_path):
    path = tmp_path / "named.weights.h5"
    shutil.copyfile(saved["path"], path)
    names = [f"lm_{i}" for i in range(N_CLASSES)]
    side = pretrained.write_sidecar(path, class_names=names, descriptions=[f"landmark {i}" for i in range(N_CLASSES)])
    assert json.loads(side.read_text())["class_names"] == names
    decoded = decode_predictions(np.eye(N_CLASSES)[[1]], top=1, weights=path)
    assert decoded == [[("lm_1", "landmark 1", 1.0)]]


def test_classes_checked_against_registered_set_before_file(registered, no_loading):
    registered(sha256="0" * 64)  # the file would fail its hash check: the argument error comes first
    with pytest.raises(ValueError, match=rf"weights='test5' with include_top=True, `classes` should be None or {N_CLASSES}"):
        MiniVGG25D(weights="test5", classes=N_CLASSES + 1)


def test_classes_in_weights_file(saved, tmp_path):
    from lm_zoo.applications import classes_in_weights_file

    assert classes_in_weights_file(saved["path"]) == N_CLASSES
    # Read through Keras' public loading, never the file's private layout.
    import inspect

    from lm_zoo.applications import mini_vgg25d

    assert "h5py" not in inspect.getsource(mini_vgg25d)
    headless = tmp_path / "headless.weights.h5"
    MiniVGG25D(weights=None, include_top=False).save_weights(headless)
    with pytest.raises(WeightsLoadError, match="holds no classifier head"):
        classes_in_weights_file(headless)


# ---------------------------------------------------------------------------- predict_batched
def test_predict_batched_fixed_size_batches(saved):
    from lm_zoo.applications import inference, predict_batched

    model = saved["model"]
    x = np.random.default_rng(2).normal(size=(21, 32, 32, 3)).astype(np.float32)
    full = predict_batched(model, x, 32)  # one padded batch
    assert full.shape == (21, N_CLASSES) and full.dtype == np.float32
    np.testing.assert_allclose(full, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    seen = []
    chunked = predict_batched(model, x, 8, progress=lambda batches, total: seen.append(total) or batches)
    np.testing.assert_allclose(chunked, full, rtol=1e-5, atol=1e-6)
    assert seen == [3]
    predict_batched(model, x[:5], 8)
    if keras.backend.backend() == "tensorflow":  # batch size 32, then 8 (three calls): two traces
        assert inference._COMPILED[id(model)][1].experimental_get_tracing_count() == 2
    assert predict_batched(model, x[:0], 8).shape == (0, N_CLASSES)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        predict_batched(model, x, 0)


def _with_random_batchnorm_statistics(model, seed):
    """Trained-like BatchNorm layers (random init has mean 0, variance 1: folding them is trivial)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 0.5, n), rng.normal(0, 0.5, n),
                               rng.uniform(0.2, 3, n)])
    return model


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the folded path is the TensorFlow one")
def test_predict_batched_folds_batchnorm_with_the_same_outputs():
    from lm_zoo.applications import FEATURE_LAYER
    from lm_zoo.applications.folding import folded_forward

    keras.utils.set_random_seed(3)
    model = _with_random_batchnorm_statistics(MiniVGG25D(weights=None, classes=N_CLASSES), 0)
    x = np.random.default_rng(4).normal(size=(19, 32, 32, 3)).astype(np.float32)
    backbone = keras.Model(model.inputs, model.get_layer(FEATURE_LAYER).output)
    for m in (model, backbone):
        assert folded_forward(m) is not None
        np.testing.assert_allclose(predict_batched(m, x, 8), m.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    # weights changed after the function was traced are used (folded from the live variables)
    _with_random_batchnorm_statistics(model, 1)
    np.testing.assert_allclose(predict_batched(model, x, 8), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_folding_declines_models_that_are_not_plain_chains():
    from lm_zoo.applications.folding import folded_forward

    keras.utils.set_random_seed(5)
    model = _with_random_batchnorm_statistics(MiniVGG25D(weights=None, classes=N_CLASSES), 2)
    x = np.random.default_rng(6).normal(size=(6, 32, 32, 3)).astype(np.float32)
    reference = model.predict(x, verbose=0)
    two_outputs = keras.Model(model.inputs, [model.get_layer("block1_bn1").output, model.output])
    assert folded_forward(two_outputs) is None
    np.testing.assert_allclose(predict_batched(two_outputs, x, 4)[1], reference, rtol=1e-5, atol=1e-6)
    inputs = keras.Input((4,))
    assert folded_forward(keras.Model(inputs, keras.layers.Dense(3)(inputs))) is None
    reapplied = keras.Input((32, 32, 3))  # the same layers called again: their first use is another model's
    y = reapplied
    for layer in model.layers[1:]:
        y = layer(y)
    reused = keras.Model(reapplied, y)
    assert folded_forward(reused) is None
    np.testing.assert_allclose(predict_batched(reused, x, 4), reference, rtol=1e-5, atol=1e-6)
