"""Weight sets of MiniVGG25D as presets (installed as ``lm_zoo.pretrained``).

Each weight set is a folder ``<name>/`` beside this module (after keras-hub presets), holding
every part of the set, named by :func:`preset_file`:

- ``metadata.json``: name, version, sha256, class names and one-line descriptions of the head's
  classes, the preprocessing the set was trained with, what data it saw and an optional
  ``origin`` URL;
- ``model.weights.h5``: the weights (shipped, so weights load offline from a wheel, or fetched
  from ``origin``);
- ``detection.json`` (landmark sets): detection calibration, plain data that
  ``lm_zoo.detection`` interprets (:attr:`WeightSet.detection`);
- ``card.md`` (generated), ``card.preamble.md`` (hand-written), ``metrics.json`` and
  ``history.csv`` (the training run the card is generated from).

Adding a trained set is a matter of writing its metadata with :func:`write_registry_entry` and
placing its file in its folder::

    from lm_zoo import pretrained
    ws = pretrained.get_weight_set("landmark")
    # after copying the trained file to pretrained.preset_file(ws, "weights"):
    pretrained.write_registry_entry("landmark", sha256=pretrained.sha256_file(pretrained.local_path(ws)),
                                    class_names=names, descriptions=definitions, data="what it saw")

Preprocessing entries (``WeightSet.preprocessing``) hold:

- ``modality``: the input the set was trained on: ``"ct"`` (raw Hounsfield units), ``"rgb"``
  (0..255) or ``"mra"`` (already scaled by ``lm_zoo.intensity.normalize_mra``);
- ``ct_window`` (``level``, ``width`` in HU) used to map CT to [0, 1], ``rgb_scale`` used to map
  RGB to [0, 1];
- ``mean`` / ``std``: per-channel standardisation applied to the unit-range input;
- ``patch_size`` / ``spacing_mm`` (3D-image sets): the 2.5D patch geometry the set was trained
  on (pixels per side, mm per pixel, as ``lm_zoo.patches.extract_25d`` takes them), read through
  :attr:`WeightSet.patch_size` / :attr:`WeightSet.spacing_mm`; absent in older sidecars, where
  those fall back to the landmark datasets' 32 px at 1.5 mm.

The hash is always checked before a file is handed to Keras, so a corrupt or truncated file is
refused with :class:`WeightsIntegrityError` and never partially loaded.

A weights file outside the presets (``weights="path/to/x.weights.h5"``) may carry a sidecar
``path/to/x.json`` (see :func:`write_sidecar`) with its preprocessing (a registered name or a
dict as above), class names and sha256; without one it follows the ``"landmark"`` convention,
its hash is not checked and loading it warns so.

Modules: :mod:`.weight_set` (the WeightSet record and its checks), :mod:`.presets` (the folder
layout, the registry and sidecars: the one reader), :mod:`.integrity` (hash checks).
"""
from __future__ import annotations

from .integrity import checked_weights_file, verify, warn_if_altered_copy, weights_path
from .presets import (
    PRESET_FILES,
    PRESETS_DIR,
    REGISTRY_PATH,
    WEIGHT_SETS,
    PresetError,
    describe_weights,
    get_weight_set,
    local_path,
    preset_file,
    read_detection,
    read_preset,
    read_registry,
    read_sidecar,
    register_weight_set,
    sidecar_path,
    write_registry_entry,
    write_sidecar,
)
from .weight_set import (
    DEFAULT_CONVENTION,
    DEFAULT_PATCH_SIZE,
    DEFAULT_SPACING_MM,
    MODALITIES,
    WEIGHTS_SUFFIX,
    WeightSet,
    WeightsIntegrityError,
    WeightsNotAvailableError,
    check_sha256,
    sha256_file,
)

_check_sha256 = check_sha256  # former private name, used by lm_zoo.commands.weights

__all__ = [
    "WeightSet",
    "WEIGHT_SETS",
    "REGISTRY_PATH",
    "PRESETS_DIR",
    "PRESET_FILES",
    "MODALITIES",
    "WeightsNotAvailableError",
    "WeightsIntegrityError",
    "PresetError",
    "get_weight_set",
    "weights_path",
    "verify",
    "checked_weights_file",
    "sha256_file",
    "register_weight_set",
    "write_registry_entry",
    "read_registry",
    "read_preset",
    "read_detection",
    "preset_file",
    "describe_weights",
    "sidecar_path",
    "read_sidecar",
    "local_path",
    "write_sidecar",
    "warn_if_altered_copy",
]
