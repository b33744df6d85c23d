"""Weight registry of MiniVGG25D (installed as ``lm_zoo.pretrained``).

Each weight set is one entry of ``registry.json`` beside this module: the weights file (shipped
in this folder, so weights load offline from a wheel, or fetched from ``origin``), its sha256,
the class names of its head, and the preprocessing it was trained with. Adding a trained set is
a matter of writing its entry with :func:`write_registry_entry` and placing its file here::

    from lm_zoo import pretrained
    ws = pretrained.get_weight_set("landmark")
    # after copying the trained file to pretrained.local_path(ws):
    pretrained.write_registry_entry("landmark", sha256=pretrained.sha256_file(pretrained.local_path(ws)),
                                    class_names=names, descriptions=definitions, data="what it saw")

Preprocessing entries (``WeightSet.preprocessing``) hold:

- ``modality``: the input the set was trained on: ``"ct"`` (raw Hounsfield units), ``"rgb"``
  (0..255) or ``"mra"`` (already scaled by ``lm_zoo.intensity.normalize_mra``);
- ``ct_window`` (``level``, ``width`` in HU) used to map CT to [0, 1], ``rgb_scale`` used to map
  RGB to [0, 1];
- ``mean`` / ``std``: per-channel standardisation applied to the unit-range input;
- ``patch_size`` / ``spacing_mm`` (3D-image sets): the 2.5D patch geometry the set was trained
  on (pixels per side, mm per pixel, as ``lm_zoo.patches.extract_25d`` takes them); absent in
  older sidecars, where readers fall back to the landmark datasets' 32 px at 1.5 mm.

The hash is always checked before a file is handed to Keras, so a corrupt or truncated file is
refused with :class:`WeightsIntegrityError` and never partially loaded.

A weights file outside the registry (``weights="path/to/x.weights.h5"``) may carry a sidecar
``path/to/x.json`` (see :func:`write_sidecar`) with its preprocessing (a registry name or a dict
as above), class names and sha256; without one it follows the ``"landmark"`` convention and its
hash is not checked.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from importlib import resources
from pathlib import Path

from lm_zoo._atomic import atomic_write_text
from lm_zoo.errors import LmZooError

__all__ = [
    "WeightSet",
    "WEIGHT_SETS",
    "REGISTRY_PATH",
    "MODALITIES",
    "WeightsNotAvailableError",
    "WeightsIntegrityError",
    "get_weight_set",
    "weights_path",
    "verify",
    "sha256_file",
    "register_weight_set",
    "write_registry_entry",
    "read_registry",
    "describe_weights",
    "sidecar_path",
    "local_path",
    "write_sidecar",
    "warn_if_altered_copy",
]

REGISTRY_PATH = Path(__file__).with_name("registry.json")
MODALITIES = ("ct", "mra", "rgb")
WEIGHTS_SUFFIX = ".weights.h5"
# Random init and weights files without a sidecar follow this set's preprocessing.
DEFAULT_CONVENTION = "landmark"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class WeightsNotAvailableError(LmZooError, ValueError):
    """A registered weight set whose file is not part of this installation."""


class WeightsIntegrityError(LmZooError, ValueError):
    """A weights file whose sha256 differs from the registered one (corrupt or truncated)."""


@dataclasses.dataclass(frozen=True)
class WeightSet:
    """One registered weight set of MiniVGG25D.

    ``filename`` is relative to this package folder (or absolute, for sets registered at run
    time); ``sha256`` is None until the trained file ships; ``class_names``/``descriptions`` give
    the head's classes in output order; ``origin`` is an optional URL for
    ``keras.utils.get_file``; ``data`` says what the set was trained on.
    """

    name: str
    filename: str
    sha256: str | None
    class_names: tuple
    descriptions: tuple
    preprocessing: dict
    origin: str | None = None
    data: str = ""

    def __post_init__(self):
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "descriptions", tuple(self.descriptions) or tuple(self.class_names))
        where = f"weight set {self.name!r}"
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"weight set name must be a non-empty string, got {self.name!r}")
        if not str(self.filename).endswith(WEIGHTS_SUFFIX):
            raise ValueError(f"{where}: filename must end in {WEIGHTS_SUFFIX!r}, got {self.filename!r}")
        if self.sha256 is not None and not _SHA256.match(str(self.sha256)):
            raise ValueError(f"{where}: sha256 must be 64 lower-case hex digits or None, got {self.sha256!r}")
        if len(self.descriptions) != len(self.class_names):
            raise ValueError(f"{where}: {len(self.descriptions)} descriptions for {len(self.class_names)} class names")
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"{where}: class names are not unique")
        _check_preprocessing(self.preprocessing, where)

    @property
    def modality(self) -> str:
        return self.preprocessing["modality"]

    @property
    def n_classes(self) -> int | None:
        """Number of classes of the head, None while the class names are not yet registered."""
        return len(self.class_names) or None

    def to_json(self) -> dict:
        entry = dataclasses.asdict(self)
        entry["class_names"] = list(self.class_names)
        entry["descriptions"] = list(self.descriptions)
        return entry


def _check_preprocessing(prep, where: str) -> None:
    if not isinstance(prep, dict):
        raise ValueError(f"{where}: preprocessing must be a dict, got {type(prep).__name__}")
    if prep.get("modality") not in MODALITIES:
        raise ValueError(f"{where}: preprocessing modality must be one of {MODALITIES}, got {prep.get('modality')!r}")
    for key in ("mean", "std"):
        values = prep.get(key)
        if values is None or len(values) != 3:
            raise ValueError(f"{where}: preprocessing {key!r} must hold 3 per-channel values, got {values!r}")
    if min(prep["std"]) <= 0:
        raise ValueError(f"{where}: preprocessing std must be positive, got {prep['std']!r}")
    window = prep.get("ct_window", {"level": 0, "width": 1})
    if float(window.get("width", 0)) <= 0:
        raise ValueError(f"{where}: preprocessing ct_window width must be positive, got {window!r}")
    if float(prep.get("rgb_scale", 255.0)) <= 0:
        raise ValueError(f"{where}: preprocessing rgb_scale must be positive, got {prep.get('rgb_scale')!r}")
    size = prep.get("patch_size", 32)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"{where}: preprocessing patch_size must be a positive int (pixels), got {size!r}")
    spacing = prep.get("spacing_mm", 1.0)
    if isinstance(spacing, bool) or not isinstance(spacing, (int, float)) or not 0 < float(spacing) < float("inf"):
        raise ValueError(f"{where}: preprocessing spacing_mm must be a positive number of mm, got {spacing!r}")


def _from_json(entry: dict, where: str) -> WeightSet:
    fields = {f.name for f in dataclasses.fields(WeightSet)}
    unknown = set(entry) - fields
    if unknown:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)}; allowed: {sorted(fields)}")
    return WeightSet(**entry)


def read_registry(path: str | os.PathLike = REGISTRY_PATH) -> dict[str, WeightSet]:
    """Parse a registry JSON file into ``{name: WeightSet}``."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"weight registry {path} is not valid JSON: {err}") from err
    sets = {}
    for name, entry in raw.items():
        ws = _from_json(entry, f"weight registry {path}, entry {name!r}")
        if ws.name != name:
            raise ValueError(f"weight registry {path}: entry {name!r} has name {ws.name!r}")
        sets[name] = ws
    return sets


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


def write_registry_entry(weight_set: WeightSet | str, registry_path: str | os.PathLike | None = None, **fields) -> WeightSet:
    """Create or update one entry of ``registry.json`` atomically and return it.

    Pass a ``WeightSet``, or a name plus the fields to change (merged into the existing entry),
    e.g. ``write_registry_entry("landmark", sha256=sha256_file(f), class_names=names)``.
    Writing the package's own registry also updates ``WEIGHT_SETS``.
    """
    path = Path(registry_path) if registry_path is not None else REGISTRY_PATH
    current = read_registry(path) if path.exists() else {}
    if isinstance(weight_set, WeightSet):
        ws = dataclasses.replace(weight_set, **fields) if fields else weight_set
    else:
        base = current[weight_set].to_json() if weight_set in current else {"name": weight_set}
        base.update(fields)
        ws = _from_json(base, f"registry entry {weight_set!r}")
    current[ws.name] = ws
    text = json.dumps({k: current[k].to_json() for k in sorted(current)}, indent=2) + "\n"
    atomic_write_text(path, text)
    if path.resolve() == REGISTRY_PATH.resolve():
        WEIGHT_SETS[ws.name] = ws
    return ws




def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def local_path(ws: WeightSet) -> Path:
    """Where a set's file lives in this installation (whether or not it exists)."""
    filename = Path(ws.filename)
    if filename.is_absolute():
        return filename
    return Path(str(resources.files(__name__).joinpath(ws.filename)))


def weights_path(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of a registered set's weights file, verified against its sha256.

    The file beside this module wins; otherwise, when the entry has an ``origin``, it is fetched
    with ``keras.utils.get_file`` into ``<cache_dir or ~/.keras>/lm_zoo``. Raises WeightsNotAvailableError when
    neither exists (or no sha256 is registered to check it against) and WeightsIntegrityError
    when the hash differs.
    """
    ws = get_weight_set(name)
    local = local_path(ws)
    if not local.exists() and ws.origin is None:
        raise WeightsNotAvailableError(
            f"weight set {name!r} is not yet available in this release (file {local} absent); "
            "use weights=None or a path to a .weights.h5 file"
        )
    if ws.sha256 is None:
        raise WeightsNotAvailableError(
            f"weight set {name!r} has no registered sha256, so its file {local} cannot be verified "
            "and is not loaded; register the hash with lm_zoo.pretrained.write_registry_entry"
        )
    if not local.exists():
        import keras

        try:
            local = Path(keras.utils.get_file(Path(ws.filename).name, ws.origin, file_hash=ws.sha256,
                                              hash_algorithm="sha256", cache_subdir="lm_zoo",
                                              cache_dir=None if cache_dir is None else str(cache_dir)))
        except ValueError as err:  # get_file's own hash check of the download
            raise WeightsIntegrityError(f"weight set {name!r}: the file downloaded from {ws.origin} does not "
                                        f"match the registered sha256 {ws.sha256}: {err}") from err
    return verify(local, ws.sha256)


def verify(name_or_path: str | os.PathLike, sha256: str | None = None) -> Path:
    """Check a weights file's sha256 before anything reads it; return its path.

    ``name_or_path``: a registered name (its file and hash) or a file path, checked against
    ``sha256`` or, when that is None, the hash in the file's sidecar JSON.
    """
    if sha256 is not None:
        sha256 = _check_sha256(sha256, "sha256 argument (--sha256)")
    if isinstance(name_or_path, str) and name_or_path in WEIGHT_SETS:
        if sha256 is None:
            return weights_path(name_or_path)
        path = local_path(WEIGHT_SETS[name_or_path])
    else:
        path = Path(name_or_path)
    if not path.is_file():
        if isinstance(name_or_path, str) and not path.exists() and os.sep not in name_or_path \
                and not name_or_path.endswith((".h5", ".keras")):
            raise WeightsNotAvailableError(
                f"{name_or_path!r} is neither a registered weight set nor a file; registered: {sorted(WEIGHT_SETS)}"
            )
        raise FileNotFoundError(f"weights file {path} does not exist")
    if sha256 is None:
        sha256 = _read_sidecar(path).get("sha256")
        if sha256 is not None:
            sha256 = _check_sha256(sha256, f"sidecar {sidecar_path(path)}")
    if sha256 is None:
        raise ValueError(f"no sha256 to verify {path} against: pass sha256= (--sha256 on the command line) or write a sidecar {sidecar_path(path)}")
    actual = sha256_file(path)
    if actual != str(sha256).lower():
        raise WeightsIntegrityError(
            f"weights file {path} failed its integrity check: expected sha256 {sha256}, "
            f"got {actual} ({path.stat().st_size} bytes); the file is corrupt or truncated, "
            "replace it (reinstall lm_zoo or download it again)"
        )
    return path


def _check_sha256(value, where: str) -> str:
    text = str(value).strip().lower()
    if not _SHA256.match(text):
        raise ValueError(f"{where}: malformed sha256 {str(value)!r}; expected 64 hexadecimal digits "
                         "(e.g. the output of `sha256sum FILE`)")
    return text


def warn_if_altered_copy(path: str | os.PathLike) -> None:
    """Warn when ``path`` (a weights file without a sidecar) has the name and size of a shipped
    set's file but not its sha256: most likely a damaged copy of it."""
    import warnings

    path = Path(path)
    for ws in WEIGHT_SETS.values():
        local = local_path(ws)
        if (ws.sha256 and Path(ws.filename).name == path.name and local.is_file() and path.is_file()
                and local.stat().st_size == path.stat().st_size and sha256_file(path) != ws.sha256):
            warnings.warn(
                f"weights file {path} has the name and size of the shipped {ws.name!r} weights but not their "
                f"sha256 ({ws.sha256[:12]}...): a damaged copy? load weights={ws.name!r} instead, or write a "
                f"sidecar (lm_zoo.pretrained.write_sidecar) if it is your own file",
                stacklevel=3,
            )


def sidecar_path(weights_file: str | os.PathLike) -> Path:
    """``x.weights.h5`` -> ``x.json`` (the description of a weights file outside the registry)."""
    weights_file = Path(weights_file)
    stem = weights_file.name[: -len(WEIGHTS_SUFFIX)] if weights_file.name.endswith(WEIGHTS_SUFFIX) else weights_file.stem
    return weights_file.with_name(stem + ".json")


def _read_sidecar(weights_file: Path) -> dict:
    side = sidecar_path(weights_file)
    if not side.exists():
        return {}
    try:
        return json.loads(side.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"sidecar {side} of weights file {weights_file} is not valid JSON: {err}") from err


def write_sidecar(weights_file: str | os.PathLike, *, preprocessing: str | dict = DEFAULT_CONVENTION,
                  class_names=(), descriptions=(), data: str = "") -> Path:
    """Describe a weights file outside the registry: preprocessing, classes and its sha256."""
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
    registry name or a dict; otherwise it follows the ``"landmark"`` convention.
    """
    if weights is None:
        base = get_weight_set(DEFAULT_CONVENTION)
        return dataclasses.replace(base, name="random", sha256=None, class_names=(), descriptions=(), origin=None, data="random init")
    if isinstance(weights, str) and weights in WEIGHT_SETS:
        return WEIGHT_SETS[weights]
    path = Path(weights)
    side = _read_sidecar(path) if _sidecar is None else _sidecar
    prep = side.get("preprocessing", DEFAULT_CONVENTION)
    if isinstance(prep, str):
        prep = get_weight_set(prep).preprocessing
    return WeightSet(name=str(path), filename=path.name if path.name.endswith(WEIGHTS_SUFFIX) else path.name + WEIGHTS_SUFFIX,
                     sha256=side.get("sha256"), class_names=tuple(side.get("class_names", ())),
                     descriptions=tuple(side.get("descriptions", ())), preprocessing=dict(prep),
                     origin=None, data=side.get("data", ""))


# --- TEMP(h3b): preset_file, replaced by h3a at merge
def preset_file(ws: WeightSet, kind: str) -> Path:
    """Path of one part of a weight set's preset: ``x.weights.h5`` -> ``x.<kind>.json`` beside it
    (for a registered set: in the package)."""
    if kind not in ("detection", "metrics"):
        raise ValueError(f"preset_file: unknown part {kind!r}; expected 'detection' or 'metrics'")
    local = local_path(ws) if ws.name in WEIGHT_SETS else Path(ws.name)
    name = local.name[: -len(WEIGHTS_SUFFIX)] if local.name.endswith(WEIGHTS_SUFFIX) else local.stem
    return local.with_name(f"{name}.{kind}.json")
# --- end TEMP(h3b)
