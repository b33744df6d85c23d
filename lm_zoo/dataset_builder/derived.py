"""Landmarks derived from TotalSegmentator segmentations, once per case.

The derivation (``lm_zoo.cohorts.read_case_landmarks`` on a ``segmentations/`` entry) costs tens of
seconds for a clinical CT. A build runs it once per case, in its worker pool, and keeps the result
in ``<download folder>/lm_zoo_derived/<digest>.json`` (beside the phantom cache), keyed by the
case's source digest: the derivation code, the segmentation's file names, sizes and modification
times, and the image's grid. The scan of landmark names, the example step and a later rebuild read
it from there. Points are stored as JSON numbers (Python's shortest repr of a float64, read back to
the same bits), so the examples are the bytes a fresh derivation gives.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np

from lm_zoo._atomic import atomic_write_json
from lm_zoo.cohorts import CohortError, read_case_landmarks
from lm_zoo.digests import files_digest, folder_listing_digest, listing_digest, module_files

__all__ = ["DERIVED_CACHE", "case_source_digest", "cached_landmarks", "derive_names",
           "landmark_errors"]

log = logging.getLogger(__name__)

# Under the build's download folder, beside lm_zoo_phantoms.
DERIVED_CACHE = "lm_zoo_derived"
# Bumped when the stored format changes.
_FORMAT = "lm_zoo-derived-landmarks-1"
# Modules whose source determines a derivation's result.
_DERIVATION_MODULES = ("lm_zoo.segmentation", "lm_zoo.landmarks", "lm_zoo.io", "lm_zoo.cohorts")
_CODE_DIGEST: list[str] = []  # computed once per process


def _code_digest() -> str:
    if not _CODE_DIGEST:
        _CODE_DIGEST.append(files_digest([f for name in _DERIVATION_MODULES for f in module_files(name)]))
    return _CODE_DIGEST[0]


def _image_grid(path: str) -> str:
    """The grid of a volume from its header (a DICOM folder: its listing)."""
    import SimpleITK as sitk

    if Path(path).is_dir():
        return folder_listing_digest(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return listing_digest(path)  # unreadable: the derivation's grid check will say so
    return repr((reader.GetOrigin(), reader.GetSpacing(), reader.GetDirection(), reader.GetSize()))


def case_source_digest(case) -> str:
    """sha256 of what a case's derived landmarks depend on: the derivation code, the segmentation's
    path, file names, sizes and modification times, and the image's grid."""
    import hashlib

    parts = (_FORMAT, _code_digest(), os.path.abspath(case.landmarks), listing_digest(case.landmarks),
             _image_grid(case.image))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _category_name(category) -> str:
    return f"{category.__module__}:{category.__qualname__}"


def _category(name: str):
    module, _, qualname = name.partition(":")
    try:
        found = functools.reduce(getattr, qualname.split("."), importlib.import_module(module))
    except (ImportError, AttributeError):
        return UserWarning
    return found if isinstance(found, type) and issubclass(found, Warning) else UserWarning


def _derive(case, image):
    """(Landmarks, the warnings the derivation gave as dicts), the image's grid checked."""
    with warnings.catch_warnings(record=True) as caught:
        landmarks = read_case_landmarks(case.landmarks, image=case.image if image is None else image)
    given = [{"category": _category_name(w.category), "message": str(w.message), "filename": w.filename,
              "lineno": w.lineno} for w in caught]
    return landmarks, given


def _load(path: Path):
    from lm_zoo.landmarks import Landmarks

    entry = json.loads(path.read_text(encoding="utf-8"))
    if entry.get("format") != _FORMAT:
        raise ValueError(f"{path}: not a {_FORMAT} entry")
    points = np.array(entry["points"], dtype=np.float64).reshape(-1, 3)
    return Landmarks(list(entry["names"]), points), list(entry["warnings"])


def cached_landmarks(case, cache, image=None):
    """(Landmarks, warnings as dicts) of a segmentation case: read from ``cache`` when a derivation
    from the same sources is stored there, else derived (on ``image``, default: the case's volume)
    and stored. Errors propagate as the derivation raises them."""
    path = Path(cache) / f"{case_source_digest(case)}.json"
    if path.is_file():
        try:
            return _load(path)
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.debug("derived landmarks %s unreadable (%s): derived again", path, err)
    landmarks, given = _derive(case, image)
    entry = {"format": _FORMAT, "case_id": case.case_id, "segmentation": str(case.landmarks),
             "names": list(landmarks.names), "points": landmarks.points.tolist(), "warnings": given}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, entry)
    except OSError as err:  # a read-only download folder: the build still works, derives again
        log.warning("cannot cache derived landmarks in %s: %s", path.parent, err)
    return landmarks, given


@contextlib.contextmanager
def landmark_errors(case):
    """A reader's or derivation's ValueError/FileNotFoundError as a CohortError naming the case."""
    try:
        yield
    except (ValueError, FileNotFoundError) as err:
        raise CohortError(f"case {case.case_id!r}: cannot read landmarks {case.landmarks}: {err}") from None


def _names_and_warnings(case, cache):
    with landmark_errors(case):
        landmarks, given = cached_landmarks(case, cache)
    return landmarks.names, given


def derive_names(cases, cache, pool) -> dict[str, list[str]]:
    """{case_id: landmark names} of segmentation ``cases``, each derived (or read from ``cache``)
    in ``pool`` (a :class:`lm_zoo.parallel.CasePool`); the derivations' warnings are given again
    here, in the main process, where the console shows them."""
    cases = list(cases)
    names = {}
    results = pool.map(functools.partial(_names_and_warnings, cache=cache), cases,
                       desc="landmarks from segmentations", unit="case", leave=False)
    for case, (case_names, given) in zip(cases, results):
        for w in given:
            warnings.warn_explicit(w["message"], _category(w["category"]), w["filename"], w["lineno"])
        names[case.case_id] = case_names
    return names
