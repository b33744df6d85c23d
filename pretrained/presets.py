"""Weight-set presets: one folder per set, read by one reader.

A preset (after keras-hub) is a folder ``<name>/`` beside this module holding every part of a
weight set: ``metadata.json`` (the :class:`WeightSet` fields: name, version, sha256, class
names and descriptions, preprocessing with patch size and spacing, data, origin),
``model.weights.h5``, ``detection.json`` (detection calibration, plain data), ``card.md``,
``card.preamble.md``, ``metrics.json`` and ``history.csv``. :func:`preset_file` names each part.

A weights file outside the presets (``path/to/x.weights.h5``) keeps its parts beside it under
its stem: ``x.json`` (the sidecar: preprocessing, classes, sha256), ``x.detection.json``,
``x.md``, ... A file named ``model.weights.h5`` is read as a preset folder of its own.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from lm_zoo._atomic import atomic_write_text
from lm_zoo.errors import LmZooError
from .weight_set import (
    DEFAULT_CONVENTION,
    WEIGHTS_SUFFIX,
    WeightSet,
    from_json,
    sha256_file,
)

PRESETS_DIR = Path(__file__).parent
PRESET_WEIGHTS = "model.weights.h5"
# kind -> file name inside a preset folder, and suffix beside a weights file given by path.
PRESET_FILES = {"weights": PRESET_WEIGHTS, "metadata": "metadata.json", "detection": "detection.json",
                "card": "card.md", "preamble": "card.preamble.md", "metrics": "metrics.json",
                "history": "history.csv"}
SIBLING_SUFFIXES = {"weights": WEIGHTS_SUFFIX, "metadata": ".json", "detection": ".detection.json",
                    "card": ".md", "preamble": ".preamble.md", "metrics": ".metrics.json",
                    "history": ".history.csv"}
# metadata.json holds every WeightSet field but the file name (always model.weights.h5).
METADATA_FIELDS = ("name", "version", "sha256", "class_names", "descriptions", "preprocessing", "data", "origin")


class PresetError(LmZooError, ValueError):
    """A preset part (metadata, detection settings, sidecar) that is not valid JSON or not a preset."""


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise PresetError(f"{what} {path} is not valid JSON: {err}") from err


def read_preset(folder: str | os.PathLike) -> WeightSet:
    """The WeightSet of one preset folder (its ``metadata.json``)."""
    folder = Path(folder)
    path = folder / PRESET_FILES["metadata"]
    meta = _read_json(path, "preset metadata")
    where = f"preset metadata {path}"
    unknown = set(meta) - set(METADATA_FIELDS)
    if unknown:
        raise PresetError(f"{where}: unknown fields {sorted(unknown)}; allowed: {sorted(METADATA_FIELDS)}")
    if meta.get("name") != folder.name:
        raise PresetError(f"{where}: name {meta.get('name')!r} differs from its folder's {folder.name!r}")
    inside = folder.parent.resolve() == PRESETS_DIR.resolve()
    filename = f"{folder.name}/{PRESET_WEIGHTS}" if inside else str(folder / PRESET_WEIGHTS)
    return from_json(dict(meta, filename=filename), where)


def read_registry(path: str | os.PathLike = PRESETS_DIR) -> dict[str, WeightSet]:
    """``{name: WeightSet}`` of a folder of presets, or of a JSON index ``{name: entry}``
    (the layout of the former ``registry.json``)."""
    path = Path(path)
    if path.is_dir():
        return {p.parent.name: read_preset(p.parent) for p in sorted(path.glob(f"*/{PRESET_FILES['metadata']}"))}
    raw = _read_json(path, "weight registry")
    sets = {}
    for name, entry in raw.items():
        ws = from_json(entry, f"weight registry {path}, entry {name!r}")
        if ws.name != name:
            raise ValueError(f"weight registry {path}: entry {name!r} has name {ws.name!r}")
        sets[name] = ws
    return sets


REGISTRY_PATH = PRESETS_DIR  # the registry is this folder of presets
WEIGHT_SETS: dict[str, WeightSet] = read_registry()


def get_weight_set(name: str) -> WeightSet:
    try:
        return WEIGHT_SETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown weight set {name!r}; registered: {sorted(WEIGHT_SETS)}") from None


def register_weight_set(weight_set: WeightSet, overwrite: bool = False) -> WeightSet:
    """Add a set to the in-memory registry (e.g. weights hosted elsewhere, with ``origin``)."""
    if weight_set.name in WEIGHT_SETS and not overwrite:
        raise ValueError(f"weight set {weight_set.name!r} is already registered; pass overwrite=True to replace it")
    WEIGHT_SETS[weight_set.name] = weight_set
    return weight_set


def write_registry_entry(weight_set: WeightSet | str, registry_path: str | os.PathLike | None = None,
                         **fields) -> WeightSet:
    """Create or update one set's metadata atomically and return it.

    Pass a ``WeightSet``, or a name plus the fields to change (merged into the existing entry),
    e.g. ``write_registry_entry("landmark", sha256=sha256_file(f), class_names=names)``.
    ``registry_path``: a folder of presets (default: this package's, which also updates
    ``WEIGHT_SETS``; the set's ``<name>/metadata.json`` is written) or a JSON index file.
    """
    path = Path(registry_path) if registry_path is not None else PRESETS_DIR
    if path.suffix == ".json":
        return _write_index_entry(path, weight_set, fields)
    name = weight_set.name if isinstance(weight_set, WeightSet) else weight_set
    folder = path / name
    current = read_preset(folder) if (folder / PRESET_FILES["metadata"]).is_file() else None
    if isinstance(weight_set, WeightSet):
        ws = dataclasses.replace(weight_set, **fields) if fields else weight_set
    else:
        base = current.to_json() if current is not None else {"name": name}
        ws = from_json({**base, **fields}, f"preset {folder}", filename=PRESET_WEIGHTS)
    meta = ws.to_json()
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / PRESET_FILES["metadata"],
                      json.dumps({k: meta[k] for k in METADATA_FIELDS}, indent=2) + "\n")
    ws = read_preset(folder)
    if path.resolve() == PRESETS_DIR.resolve():
        WEIGHT_SETS[ws.name] = ws
    return ws


def _write_index_entry(path: Path, weight_set, fields) -> WeightSet:
    current = read_registry(path) if path.exists() else {}
    if isinstance(weight_set, WeightSet):
        ws = dataclasses.replace(weight_set, **fields) if fields else weight_set
    else:
        base = current[weight_set].to_json() if weight_set in current else {"name": weight_set}
        ws = from_json({**base, **fields}, f"registry entry {weight_set!r}")
    current[ws.name] = ws
    atomic_write_text(path, json.dumps({k: current[k].to_json() for k in sorted(current)}, indent=2) + "\n")
    return ws


def local_path(ws: WeightSet) -> Path:
    """Where a set's weights file lives in this installation (whether or not it exists)."""
    filename = Path(ws.filename)
    return filename if filename.is_absolute() else PRESETS_DIR / filename


def preset_file(ws: WeightSet | str | os.PathLike, kind: str) -> Path:
    """Path of one part of a weight set (whether or not it exists).

    ``ws``: a WeightSet, a registered name or a weights file path. ``kind``: one of
    ``"weights"``, ``"metadata"``, ``"detection"``, ``"card"``, ``"preamble"``, ``"metrics"``,
    ``"history"``. A registered preset's parts are the files of its folder; a weights file
    ``x.weights.h5`` given by path has them beside it (``x.json``, ``x.detection.json``, ...).
    """
    if kind not in PRESET_FILES:
        raise ValueError(f"preset_file: kind must be one of {sorted(PRESET_FILES)}, got {kind!r}")
    if isinstance(ws, WeightSet):
        weights = local_path(ws) if ws.name in WEIGHT_SETS else Path(ws.name)
    elif isinstance(ws, str) and ws in WEIGHT_SETS:
        weights = local_path(WEIGHT_SETS[ws])
    else:
        weights = Path(ws)
    if weights.name == PRESET_WEIGHTS:
        return weights.with_name(PRESET_FILES[kind])
    name = weights.name
    stem = name[: -len(WEIGHTS_SUFFIX)] if name.endswith(WEIGHTS_SUFFIX) else weights.stem
    return weights.with_name(stem + SIBLING_SUFFIXES[kind])


def read_detection(ws: WeightSet | str | os.PathLike) -> dict | None:
    """A set's detection settings (``detection.json``) as plain data; None when absent."""
    path = preset_file(ws, "detection")
    if not path.is_file():
        return None
    return _read_json(path, f"detection settings of weights {getattr(ws, 'name', str(ws))!r},")


def sidecar_path(weights_file: str | os.PathLike) -> Path:
    """``x.weights.h5`` -> ``x.json`` (the description of a weights file outside the presets;
    ``model.weights.h5`` -> ``metadata.json`` beside it)."""
    return preset_file(Path(weights_file), "metadata")


def read_sidecar(weights_file: str | os.PathLike) -> dict:
    """The sidecar (or preset metadata) of a weights file given by path; {} when it has none."""
    side = sidecar_path(weights_file)
    if not side.exists():
        return {}
    try:
        return json.loads(side.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise PresetError(f"sidecar {side} of weights file {weights_file} is not valid JSON: {err}") from err


def write_sidecar(weights_file: str | os.PathLike, *, preprocessing: str | dict = DEFAULT_CONVENTION,
                  class_names=(), descriptions=(), data: str = "") -> Path:
    """Describe a weights file outside the presets: preprocessing, classes and its sha256."""
    weights_file = Path(weights_file)
    entry = {"preprocessing": preprocessing, "class_names": list(class_names),
             "descriptions": list(descriptions), "data": data, "sha256": sha256_file(weights_file)}
    describe_weights(weights_file, _sidecar=entry)  # validates before writing
    side = sidecar_path(weights_file)
    atomic_write_text(side, json.dumps(entry, indent=2) + "\n")
    return side


def describe_weights(weights, _sidecar: dict | None = None) -> WeightSet:
    """The WeightSet that ``weights`` (a name, None or a weights file path) is used with.

    ``None`` (random init) follows the ``"landmark"`` preprocessing and has no class names. A
    path is described by its sidecar JSON when present; ``preprocessing`` there may be a
    registered name or a dict; otherwise it follows the ``"landmark"`` convention.
    """
    if weights is None:
        base = get_weight_set(DEFAULT_CONVENTION)
        return dataclasses.replace(base, name="random", sha256=None, class_names=(), descriptions=(), origin=None,
                                   data="random init")
    if isinstance(weights, str) and weights in WEIGHT_SETS:
        return WEIGHT_SETS[weights]
    path = Path(weights)
    side = read_sidecar(path) if _sidecar is None else _sidecar
    prep = side.get("preprocessing", DEFAULT_CONVENTION)
    if isinstance(prep, str):
        prep = get_weight_set(prep).preprocessing
    filename = path.name if path.name.endswith(WEIGHTS_SUFFIX) else path.name + WEIGHTS_SUFFIX
    return WeightSet(name=str(path), filename=filename, sha256=side.get("sha256"),
                     class_names=tuple(side.get("class_names", ())), descriptions=tuple(side.get("descriptions", ())),
                     preprocessing=dict(prep), origin=None, data=side.get("data", ""),
                     version=str(side.get("version", "")))
