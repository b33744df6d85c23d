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
    """The full MiniVGG25D (with its top) carrying the backbone's weights, frozen: the network the
    features come from (``lm_zoo.features.build_network``, so the random control has the same
    weights here and in :func:`feature_extractor`)."""
    from lm_zoo.features import build_network

    return build_network(backbone.weights, random_state=backbone.seed)


def feature_extractor(backbone: Backbone, layer: str = DEFAULT_LAYER, batch_size: int = 512):
    """A fitted ``lm_zoo.features.FeatureExtractor`` of the backbone at ``layer`` (MRA patches;
    spatial outputs flattened): the evaluation's features are exactly what users get from it."""
    from lm_zoo.features import FeatureExtractor

    if batch_size < 1:
        raise EvaluationError(f"batch_size must be >= 1, got {batch_size}")
    extractor = FeatureExtractor(weights=backbone.weights, layer=layer, modality=MODALITY, batch_size=batch_size,
                                 random_state=backbone.seed if backbone.weights is None else None)
    try:
        return extractor.fit()
    except ValueError as err:
        if "unknown layer" in str(err):
            raise EvaluationError(f"unknown feature layer {layer!r}: {err}") from err
        raise


def preprocess(patches: np.ndarray, backbone: Backbone) -> np.ndarray:
    """MRA patches are per-volume normalised already; the weight set adds its standardisation
    (random init: the landmark convention; a user's file: its sidecar JSON's, see
    ``lm_zoo.applications.preprocess_input``)."""
    from lm_zoo.applications import preprocess_input

    return np.asarray(preprocess_input(np.asarray(patches, dtype=np.float32), weights=backbone.weights, modality=MODALITY), dtype=np.float32)
