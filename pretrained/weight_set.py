"""``WeightSet``: what one weight set of MiniVGG25D is (its preset's metadata), validated.

Plain data only: file locations live in :mod:`lm_zoo.pretrained.presets`, hash checks in
:mod:`lm_zoo.pretrained.integrity`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re

from lm_zoo.errors import LmZooError

MODALITIES = ("ct", "mra", "rgb")
WEIGHTS_SUFFIX = ".weights.h5"
# Random init and weights files without a sidecar follow this set's preprocessing.
DEFAULT_CONVENTION = "landmark"
# The 2.5D patch geometry of sets whose preprocessing predates patch_size / spacing_mm: the
# landmark patch datasets' 32 px at 1.5 mm. The one place this fallback lives.
DEFAULT_PATCH_SIZE = 32
DEFAULT_SPACING_MM = 1.5
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class WeightsNotAvailableError(LmZooError, ValueError):
    """A registered weight set whose file is not part of this installation."""


class WeightsIntegrityError(LmZooError, ValueError):
    """A weights file whose sha256 differs from the registered one (corrupt or truncated)."""


@dataclasses.dataclass(frozen=True)
class WeightSet:
    """One weight set of MiniVGG25D.

    ``filename`` is relative to the ``lm_zoo.pretrained`` folder (``<name>/model.weights.h5``
    for a preset) or absolute (sets registered at run time, weights files given by path);
    ``sha256`` is None until the trained file ships; ``class_names``/``descriptions`` give the
    head's classes in output order; ``origin`` is an optional URL for ``keras.utils.get_file``;
    ``data`` says what the set was trained on; ``version`` is the preset's own version.
    """

    name: str
    filename: str
    sha256: str | None
    class_names: tuple
    descriptions: tuple
    preprocessing: dict
    origin: str | None = None
    data: str = ""
    version: str = ""

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
        check_preprocessing(self.preprocessing, where)

    @property
    def modality(self) -> str:
        return self.preprocessing["modality"]

    @property
    def n_classes(self) -> int | None:
        """Number of classes of the head, None while the class names are not yet registered."""
        return len(self.class_names) or None

    @property
    def patch_size(self) -> int:
        """Patch side (pixels) the set was trained on, as ``lm_zoo.patches.extract_25d`` takes it."""
        value = self.preprocessing.get("patch_size")
        return DEFAULT_PATCH_SIZE if value is None else int(value)

    @property
    def spacing_mm(self) -> float:
        """Pixel spacing (mm) of the patches the set was trained on (``patch_spacing_mm``: an
        older sidecar spelling)."""
        value = self.preprocessing.get("spacing_mm", self.preprocessing.get("patch_spacing_mm"))
        return DEFAULT_SPACING_MM if value is None else float(value)

    @property
    def detection(self) -> dict | None:
        """The preset's ``detection.json`` as plain data (``lm_zoo.detection`` interprets it),
        None when the set has none."""
        from .presets import read_detection

        return read_detection(self)

    def to_json(self) -> dict:
        entry = dataclasses.asdict(self)
        entry["class_names"] = list(self.class_names)
        entry["descriptions"] = list(self.descriptions)
        return entry


def check_preprocessing(prep, where: str) -> None:
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
    size = prep.get("patch_size", DEFAULT_PATCH_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"{where}: preprocessing patch_size must be a positive int (pixels), got {size!r}")
    spacing = prep.get("spacing_mm", DEFAULT_SPACING_MM)
    if isinstance(spacing, bool) or not isinstance(spacing, (int, float)) or not 0 < float(spacing) < float("inf"):
        raise ValueError(f"{where}: preprocessing spacing_mm must be a positive number of mm, got {spacing!r}")


def from_json(entry: dict, where: str, **defaults) -> WeightSet:
    """A WeightSet from a metadata / registry entry; unknown fields are refused."""
    fields = {f.name for f in dataclasses.fields(WeightSet)}
    unknown = set(entry) - fields
    if unknown:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)}; allowed: {sorted(fields)}")
    return WeightSet(**{**defaults, **entry})


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(value, where: str) -> str:
    """``value`` as 64 lower-case hex digits; ValueError naming ``where`` otherwise."""
    text = str(value).strip().lower()
    if not _SHA256.match(text):
        raise ValueError(f"{where}: malformed sha256 {str(value)!r}; expected 64 hexadecimal digits "
                         "(e.g. the output of `sha256sum FILE`)")
    return text
