"""MiniVGG25D: the mini-VGG of the landmark transfer-learning method, as a Keras application.

Input is a 2.5D patch: 32x32 pixels, 3 channels = the axial, coronal and sagittal planes through
a point (see ``lm_zoo.patches.extract_25d``). Shaped after ``keras.applications.VGG16``::

    model = MiniVGG25D(weights="landmark")                   # or "cifar", None, "x.weights.h5"
    probs = model.predict(preprocess_input(hu_patches, weights="landmark"))
    decode_predictions(probs, top=3, weights="landmark")     # [[(name, description, score), ...]]

    # frozen features of MRA patches (already scaled by lm_zoo.intensity.normalize_mra)
    backbone = MiniVGG25D(weights="landmark", include_top=False, pooling="avg")
    feats = backbone.predict(preprocess_input(mra_patches, weights="landmark", modality="mra"))

Weights come from the presets of ``lm_zoo.pretrained`` (file, sha256, class names, preprocessing
of each set); the hash is checked before a file is read. :func:`lm_zoo.applications.predict_batched`
is the one batched forward pass over many patches.

Method: the research report of JSPS KAKENHI Grant Number 17K17680 (Japan Society for the
Promotion of Science, Grants-in-Aid for Scientific Research; https://kaken.nii.ac.jp/grant/KAKENHI-PROJECT-17K17680/)
on anatomical-landmark pre-training of a mini-VGG on 2.5D patches for cerebral aneurysm
detection. Cite it (BibTeX in ``datasets/*/CITATIONS.bib``) when you use this network.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import keras
import numpy as np
from keras import layers

from lm_zoo import pretrained
from lm_zoo.errors import LmZooError

DEFAULT_SIZE = 32
# The documented feature layer: 512-d, after BN and ReLU, before dropout and the classifier.
FEATURE_LAYER = "fc1_relu"
BLOCK_FILTERS = (32, 64)
FC_UNITS = 512
BLOCK_DROPOUT = 0.25
FC_DROPOUT = 0.5


def _conv_block(x, block: int, filters: int):
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{block}_conv{i}")(x)
        x = layers.BatchNormalization(name=f"block{block}_bn{i}")(x)
        x = layers.Activation("relu", name=f"block{block}_relu{i}")(x)
    x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    return layers.Dropout(BLOCK_DROPOUT, name=f"block{block}_dropout")(x)


def build_mini_vgg25d(inputs, *, include_top: bool, pooling, classes: int, classifier_activation, name: str,
                      model_inputs=None):
    """The bare architecture; ``MiniVGG25D`` adds validation and weights.

    ``model_inputs``: the model's inputs when ``inputs`` is an intermediate Keras tensor.
    """
    x = inputs
    for block, filters in enumerate(BLOCK_FILTERS, start=1):
        x = _conv_block(x, block, filters)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        # No bias before BN: BN's beta plays that role.
        x = layers.Dense(FC_UNITS, use_bias=False, name="fc1")(x)
        x = layers.BatchNormalization(name="fc1_bn")(x)
        x = layers.Activation("relu", name="fc1_relu")(x)
        x = layers.Dropout(FC_DROPOUT, name="fc1_dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="global_avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="global_max_pool")(x)
    return keras.Model(inputs if model_inputs is None else model_inputs, x, name=name)


# ---------------------------------------------------------------------------------------------
# The application: argument validation, weights and the weight sets' pre/post-processing.
# ---------------------------------------------------------------------------------------------
POOLING_MODES = (None, "avg", "max")


class WeightsLoadError(LmZooError, ValueError):
    """A weights file that does not fit the model built around it."""


def _allowed_weights_text() -> str:
    return (f"None (random initialization), one of {sorted(pretrained.WEIGHT_SETS)} (pre-trained weight sets) "
            f"or the path to an existing {pretrained.WEIGHTS_SUFFIX} file")


def check_weights(weights):
    """Return ``weights`` as None, a registered name or a Path; ValueError otherwise."""
    if weights is None:
        return None
    if isinstance(weights, str) and weights in pretrained.WEIGHT_SETS:
        return weights
    if isinstance(weights, (str, os.PathLike)):
        path = Path(weights)
        if path.name.endswith(pretrained.WEIGHTS_SUFFIX) and path.is_file():
            return path
        if path.is_file():
            raise ValueError(f"The `weights` argument must be a file ending in {pretrained.WEIGHTS_SUFFIX!r} "
                             f"(Keras 3 weights format); received weights={str(weights)!r}")
    raise ValueError(f"The `weights` argument should be {_allowed_weights_text()}; received weights={weights!r}")


_check_weights = check_weights  # former private name (lm_zoo.detection imports it)


def preprocess_input(x, weights="landmark", modality=None):
    """Map 2.5D patches to the input range a weight set was trained with; returns float32.

    Two steps: the modality maps the patch to a unit range, then the weight set's per-channel
    standardisation ``(unit - mean) / std`` is applied (last axis = the 3 channels).

    ``modality`` (default: the weight set's own):

    - ``"ct"``: raw Hounsfield units through ``lm_zoo.intensity.ct_window`` with the set's
      window (level 50, width 1000 HU, i.e. [-450, 550] HU -> [0, 1], clipped);
    - ``"mra"``: patches already scaled per volume by ``lm_zoo.intensity.normalize_mra``
      (about [0, 1]); used unchanged;
    - ``"rgb"``: 0..255 RGB values divided by 255.

    Weight sets (``weights``):

    - ``"landmark"``: trained on raw CT HU patches; modality ``"ct"``; mean = std = (0.5, 0.5, 0.5),
      so the unit range maps to [-1, 1];
    - ``"cifar"``: trained on CIFAR-10 RGB 0..255; modality ``"rgb"``; mean (0.4914, 0.4822, 0.4465),
      std (0.2470, 0.2435, 0.2616) (the CIFAR-10 training-set statistics);
    - ``None`` (random init): the ``"landmark"`` convention;
    - a ``.weights.h5`` path: the preprocessing named in its sidecar JSON
      (``lm_zoo.pretrained.write_sidecar``), else the ``"landmark"`` convention.

    ``x``: NumPy array / nested list or a backend tensor, shape (..., 3). NumPy in gives NumPy
    out, a tensor gives a tensor (computed with ``keras.ops``); the input is never modified.
    """
    prep = pretrained.describe_weights(check_weights(weights)).preprocessing
    modality = prep["modality"] if modality is None else modality
    if modality not in pretrained.MODALITIES:
        raise ValueError(f"The `modality` argument should be one of {list(pretrained.MODALITIES)} or None "
                         f"(the weight set's own, {prep['modality']!r}); received modality={modality!r}")
    window = prep.get("ct_window", {"level": 50.0, "width": 1000.0})
    level, width = float(window["level"]), float(window["width"])
    scale = float(prep.get("rgb_scale", 255.0))
    if isinstance(x, (np.ndarray, np.generic, list, tuple, int, float)):
        return _preprocess_numpy(np.asarray(x), modality, level, width, scale, prep)
    return _preprocess_tensor(x, modality, level, width, scale, prep)


def _check_channels(shape):
    if len(shape) == 0 or shape[-1] != 3:
        raise ValueError(f"preprocess_input expects patches with 3 channels in the last axis (axial, coronal, "
                         f"sagittal), got shape {tuple(shape)}")


def _preprocess_numpy(x, modality, level, width, scale, prep):
    _check_channels(x.shape)
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"preprocess_input expects numeric patches, got dtype {x.dtype}")
    if modality == "ct":
        from lm_zoo.intensity import ct_window

        unit = ct_window(x, level=level, width=width)
    elif modality == "rgb":
        unit = x.astype(np.float32) / np.float32(scale)
    else:
        unit = x.astype(np.float32)  # astype copies: the caller's array stays untouched
    mean = np.asarray(prep["mean"], np.float32)
    std = np.asarray(prep["std"], np.float32)
    return ((unit - mean) / std).astype(np.float32, copy=False)


def _preprocess_tensor(x, modality, level, width, scale, prep):
    ops = keras.ops
    _check_channels(tuple(x.shape))
    x = ops.cast(x, "float32")
    if modality == "ct":
        # Same formula as lm_zoo.intensity.ct_window, in keras.ops so it runs on any backend.
        unit = ops.clip((x - (level - width / 2.0)) / width, 0.0, 1.0)
    elif modality == "rgb":
        unit = x / scale
    else:
        unit = x
    mean = ops.convert_to_tensor(np.asarray(prep["mean"], np.float32))
    std = ops.convert_to_tensor(np.asarray(prep["std"], np.float32))
    return (unit - mean) / std


def decode_predictions(preds, top=5, weights="landmark"):
    """Turn a batch of class scores into ``[[(class_name, description, score), ...], ...]``.

    One list per sample, best ``top`` classes first, as ``keras.applications`` does. ``preds``:
    (N, n_classes) NumPy array or tensor from a model with the head of ``weights`` (a registered
    name, or a weights file whose sidecar JSON lists its class names).
    """
    ws = pretrained.describe_weights(check_weights(weights))
    if weights is None or not ws.class_names:
        raise pretrained.WeightsNotAvailableError(
            f"decode_predictions: no class names are registered for weights={weights!r}; "
            f"use one of {sorted(n for n, s in pretrained.WEIGHT_SETS.items() if s.class_names)} "
            "or a weights file with a sidecar JSON listing class_names")
    if not isinstance(top, (int, np.integer)) or isinstance(top, bool) or top < 1:
        raise ValueError(f"The `top` argument must be a positive integer; received top={top!r}")
    preds = preds if isinstance(preds, (np.ndarray, list, tuple)) else keras.ops.convert_to_numpy(preds)
    preds = np.asarray(preds)
    n = len(ws.class_names)
    if preds.ndim != 2 or preds.shape[1] != n:
        raise ValueError(f"decode_predictions expects a batch of predictions (i.e. a 2D array of shape "
                         f"(samples, {n})) for weights={weights!r}; found array with shape {preds.shape}")
    results = []
    for row in preds:
        order = np.argsort(-row, kind="stable")[:top]
        results.append([(ws.class_names[i], ws.descriptions[i], float(row[i])) for i in order])
    return results


def MiniVGG25D(include_top=True, weights="landmark", input_tensor=None, input_shape=None, pooling=None,
               classes=None, classifier_activation="softmax", name="mini_vgg25d"):
    """Instantiate the MiniVGG25D architecture, optionally with pre-trained weights.

    The mini-VGG of the KAKENHI 17K17680 research report (JSPS Grants-in-Aid for Scientific
    Research) on anatomical-landmark pre-training for cerebral aneurysm detection.

    Input: 2.5D patches (N, 32, 32, 3), channels = axial, coronal, sagittal planes, channels
    last, preprocessed with :func:`preprocess_input` for the same ``weights``.

    Args:
        include_top: whether to include the classifier (flatten, fc1 512 + BN + ReLU, dropout,
            predictions). The default feature layer is ``fc1_relu`` (512-d, ``FEATURE_LAYER``).
        weights: ``"landmark"`` (~60 torso-CT anatomical landmarks + ``non_landmark``),
            ``"cifar"`` (CIFAR-10), ``None`` (random init) or the path to a ``.weights.h5``
            file (loaded by structure; its sidecar JSON's sha256, when present, is checked).
            Registered files are verified against the registry's sha256 before loading.
        input_tensor: optional Keras tensor (``keras.Input()`` or a Keras layer's output) to use
            as image input; the model then starts at that tensor's source inputs.
        input_shape: optional (H, W, 3); must be (32, 32, 3) with ``include_top=True``; with
            ``include_top=False`` H and W may be larger than 32 (or None).
        pooling: ``None`` (4D output of the last block), ``"avg"`` or ``"max"`` (global pooling,
            2D output); only with ``include_top=False``.
        classes: number of classes of the head; with pretrained weights, None or the weight
            set's class count. With ``weights=None`` it defaults to the landmark set's count.
        classifier_activation: activation of the ``predictions`` layer (str or callable);
            with pretrained weights only ``"softmax"`` or ``None``.
        name: the model's name.

    Returns:
        A ``keras.Model``.
    """
    weights = check_weights(weights)
    ws = pretrained.describe_weights(weights)
    _check_arguments(weights, include_top, pooling, classes, classifier_activation)
    img_input = _input_layer(input_tensor, input_shape, include_top)
    if include_top and not isinstance(weights, Path):
        classes = _head_classes(weights, ws, classes)

    # Hash first: a corrupt or truncated file is refused before Keras reads anything of it.
    if isinstance(weights, str):
        weights_file = pretrained.weights_path(weights)
    elif weights is not None:
        weights_file = pretrained.checked_weights_file(weights, stacklevel=2)
    else:
        weights_file = None
    if include_top and isinstance(weights, Path):
        classes = _head_classes(weights, ws, classes)  # may read the head's size from the (verified) file

    # As keras.applications: a Keras input_tensor may come out of other layers; the model then
    # starts at that tensor's source inputs.
    model_inputs = keras.utils.get_source_inputs(img_input) if input_tensor is not None else None
    model = build_mini_vgg25d(img_input, include_top=include_top, pooling=pooling, classes=classes or 1,
                              classifier_activation=classifier_activation, name=name, model_inputs=model_inputs)
    if weights_file is not None:
        _load_weights(model, Path(weights_file), include_top, classes)
    return model


def _check_arguments(weights, include_top, pooling, classes, classifier_activation) -> None:
    if pooling not in POOLING_MODES:
        raise ValueError(f"The `pooling` argument should be one of {list(POOLING_MODES)}; received pooling={pooling!r}")
    if include_top and pooling is not None:
        raise ValueError(f"The `pooling` argument only applies with include_top=False; received pooling={pooling!r} "
                         "with include_top=True")
    if not isinstance(include_top, bool):
        raise ValueError(f"The `include_top` argument should be True or False; received include_top={include_top!r}")
    if classes is not None and (not isinstance(classes, (int, np.integer)) or isinstance(classes, bool) or classes < 1):
        raise ValueError(f"The `classes` argument should be a positive integer or None; received classes={classes!r}")
    if include_top:
        try:
            activation = keras.activations.get(classifier_activation)
        except ValueError:
            raise ValueError(f"The `classifier_activation` argument should be a Keras activation name, a callable "
                             f"or None; received classifier_activation={classifier_activation!r}") from None
        if weights is not None and activation not in {keras.activations.get("softmax"), keras.activations.get(None)}:
            raise ValueError("Only `None` and `softmax` activations are allowed for the `classifier_activation` "
                             f"argument when using pretrained weights, with include_top=True; received "
                             f"classifier_activation={classifier_activation!r}")


def _head_classes(weights, ws, classes):
    if weights is None:
        default = pretrained.get_weight_set(pretrained.DEFAULT_CONVENTION).n_classes
        if classes is None and default is None:
            raise ValueError("The `classes` argument must be given with weights=None and include_top=True "
                             f"(the default, the {pretrained.DEFAULT_CONVENTION!r} set's class count, is not yet registered)")
        return classes or default
    known = ws.n_classes
    if known is None and isinstance(weights, Path):
        known = classes_in_weights_file(weights)
    if classes is not None and known is not None and classes != known:
        raise ValueError(f"If using weights={str(weights)!r} with include_top=True, `classes` should be None or "
                         f"{known} (the weight set's class count); received classes={classes}")
    return classes or known


def classes_in_weights_file(path) -> int:
    """Number of classes of the head saved in a MiniVGG25D ``.weights.h5`` file.

    Read through Keras' own loading (no knowledge of the file's layout): a throwaway MiniVGG25D
    loads the file, its ``predictions`` layer recording the saved bias (one value per class)
    instead of assigning it.
    """
    path = Path(path)
    probe = build_mini_vgg25d(layers.Input((DEFAULT_SIZE, DEFAULT_SIZE, 3)), include_top=True, pooling=None,
                              classes=1, classifier_activation=None, name="head_probe")
    found = []

    def record_head(store):  # Layer.load_own_variables' public hook; store maps "0", "1" to arrays
        if len(store.keys()) == 2:  # kernel, bias
            found.append(int(store["1"].shape[0]))

    probe.get_layer("predictions").load_own_variables = record_head
    try:
        _load_quietly(probe, path)
    except OSError as err:
        raise WeightsLoadError(f"weights file {path} is not a readable Keras .weights.h5 file: {err}") from err
    except ValueError:
        pass  # the backbone's fit is judged by the real load; here only the head counts
    if found:
        return found[0]
    try:
        _load_quietly(build_mini_vgg25d(layers.Input((DEFAULT_SIZE, DEFAULT_SIZE, 3)), include_top=False, pooling=None,
                                        classes=1, classifier_activation=None, name="backbone_probe"), path)
    except (ValueError, OSError) as err:
        raise WeightsLoadError(f"weights file {path} does not fit MiniVGG25D(include_top=True): "
                               f"{_first_line(err)}") from err
    raise WeightsLoadError(f"weights file {path} holds no classifier head (a MiniVGG25D backbone saved without "
                           "its 'predictions' layer); load it with include_top=False")


def _input_layer(input_tensor, input_shape, include_top):
    if input_tensor is not None:
        if not keras.backend.is_keras_tensor(input_tensor):
            raise ValueError("The `input_tensor` argument should be a Keras tensor (from keras.Input() or a Keras "
                             f"layer); received a {type(input_tensor).__name__}")
        shape = tuple(input_tensor.shape[1:])
        if input_shape is not None and tuple(input_shape) != shape:
            raise ValueError(f"The `input_shape` argument {tuple(input_shape)} disagrees with the shape of "
                             f"`input_tensor` {shape}")
        input_shape = shape
    if input_shape is None:
        input_shape = (DEFAULT_SIZE, DEFAULT_SIZE, 3) if include_top else (None, None, 3)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"The `input_shape` argument should be (height, width, 3) (channels last: axial, coronal, "
                         f"sagittal); received input_shape={input_shape}")
    if include_top and input_shape != (DEFAULT_SIZE, DEFAULT_SIZE, 3):
        raise ValueError(f"When setting include_top=True, `input_shape` should be ({DEFAULT_SIZE}, {DEFAULT_SIZE}, 3); "
                         f"received input_shape={input_shape}")
    if any(d is not None and d < DEFAULT_SIZE for d in input_shape[:2]):
        raise ValueError(f"Input size must be at least {DEFAULT_SIZE}x{DEFAULT_SIZE}; received input_shape={input_shape}")
    return layers.Input(shape=input_shape) if input_tensor is None else input_tensor


def _first_line(err) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _load_quietly(model, path: Path):
    with warnings.catch_warnings():
        # Keras warns about containers absent from weights-only files; structure errors raise.
        warnings.filterwarnings("ignore", message=".*nested container.*")
        model.load_weights(path)


def _load_weights(model, path: Path, include_top: bool, classes):
    try:
        _load_quietly(model, path)
    except (ValueError, OSError) as err:
        raise WeightsLoadError(f"weights file {path} does not fit MiniVGG25D(include_top={include_top}, "
                               f"classes={classes}): {_first_line(err)}") from err
