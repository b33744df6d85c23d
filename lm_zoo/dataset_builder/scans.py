"""Checks of a cohort before its patches are made, in the main process: unknown landmark names
fail the build at once, and landmarks outside their volume are reported (a worker process's
warnings never reach the console). Landmarks derived from segmentations are derived for this check
in the worker pool, once per case (:mod:`lm_zoo.dataset_builder.derived`)."""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from lm_zoo.cohorts import CohortError
from lm_zoo.dataset_builder import derived
from lm_zoo.dataset_builder.examples import _case_landmarks, _read_case_image, _unknown_message
from lm_zoo.dataset_builder.workers import build_pool
from lm_zoo.io import inside_grid

__all__ = ["scan_landmark_names", "scan_dropped_landmarks", "report_dropped_landmarks", "check_landmark_names",
           "rows_to_strata"]

log = logging.getLogger(__name__)


def scan_landmark_names(cases, cache=None, pool=None) -> dict[str, list[str]]:
    """{case_id: landmark names} of every case, read before any patch is written so that a bad
    file fails the build at once. Only VerSe-style ``.json`` files (voxel-index centroids) need their
    image read here; the other formats are read without opening the volume.

    Landmarks derived from segmentations are derived here once per case, in ``pool`` (the build's,
    a builder's ``case_pool()``; default: a pool of this scan's own), and kept in ``cache`` (a
    builder's ``derived_cache()``) for the example step and later rebuilds; with no cache they are
    derived here and again by the example step."""
    from lm_zoo.cohorts import is_segmentation

    cases = list(cases)
    segmented = [case for case in cases if cache is not None and is_segmentation(case.landmarks)]
    with contextlib.nullcontext(pool) if pool is not None else build_pool() as used:  # only its own is closed
        used.expect(len(cases))  # the build's pool goes on to the whole cohort's patches
        found = derived.derive_names(segmented, cache, used) if segmented else {}
    names = {}
    for case in cases:
        if case.case_id in found:
            names[case.case_id] = found[case.case_id]
            continue
        lower = case.landmarks.lower()
        image = case.image if lower.endswith(".json") and not lower.endswith(".mrk.json") else None
        names[case.case_id] = _case_landmarks(case, image).names
    return names


def scan_dropped_landmarks(cases, classes) -> dict[str, list[str]]:
    """{case_id: names} of the landmarks of ``classes`` that lie outside their volume and that
    :func:`landmark_case_examples` will skip, found in the main process before the build (worker
    processes' warnings never reach the console). Volume files are opened for their header only."""
    from lm_zoo.cohorts import is_segmentation
    from lm_zoo.landmarks import read_landmarks

    wanted = set(classes)
    dropped = {}
    for case in cases:
        if is_segmentation(case.landmarks):
            continue  # landmarks derived from a segmentation on the volume's grid lie inside it
        lower = case.landmarks.lower()
        verse = lower.endswith(".json") and not lower.endswith(".mrk.json")
        try:
            landmarks = read_landmarks(case.landmarks, image=case.image if verse else None)
        except (ValueError, FileNotFoundError) as err:
            raise CohortError(f"case {case.case_id!r}: cannot read landmarks {case.landmarks}: {err}") from None
        names = [n for n in landmarks.names if n in wanted]
        if not names:
            continue
        points = landmarks.subset(names).points
        outside = [n for n, ok in zip(names, inside_grid(_image_geometry(case), points)) if not ok]
        if outside:
            dropped[case.case_id] = outside
    return dropped


def report_dropped_landmarks(dropped: dict[str, list[str]], cases, dataset: str) -> None:
    """One warning line per case with landmarks outside the volume, in the build's console output."""
    files = {case.case_id: case.landmarks for case in cases}
    for case_id in sorted(dropped):
        log.warning("%s: case %r: %d landmark(s) outside the volume, no patch made: %s (%s; check its coordinate "
                    "system)", dataset, case_id, len(dropped[case_id]), dropped[case_id], files.get(case_id, "?"))
    if dropped:
        log.warning("%s: %d landmark(s) dropped in %d case(s); listed in the dataset's metadata "
                    "(builder.info.metadata['dropped_landmarks'])", dataset,
                    sum(len(v) for v in dropped.values()), len(dropped))


class _Geometry:
    """Origin, spacing, direction and size of a volume, read from its header only."""

    def __init__(self, reader):
        self._origin, self._spacing = reader.GetOrigin(), reader.GetSpacing()
        self._direction, self._size = reader.GetDirection(), reader.GetSize()

    def GetOrigin(self):  # noqa: N802 (SimpleITK's names, so continuous_index takes either)
        return self._origin

    def GetSpacing(self):  # noqa: N802
        return self._spacing

    def GetDirection(self):  # noqa: N802
        return self._direction

    def GetSize(self):  # noqa: N802
        return self._size


def _image_geometry(case):
    import SimpleITK as sitk

    if Path(case.image).is_dir():  # a DICOM series: read it (validated like every volume)
        return _read_case_image(case.case_id, case.image)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(case.image))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return _read_case_image(case.case_id, case.image)  # its clear error
    return _Geometry(reader)


def check_landmark_names(names: dict[str, list[str]], allowed, cases) -> None:
    """CohortError naming the first case whose landmark file holds a name outside ``allowed``."""
    files = {case.case_id: case.landmarks for case in cases}
    for case_id in sorted(names):
        unknown = sorted(set(names[case_id]) - set(allowed))
        if unknown:
            raise CohortError(_unknown_message(case_id, files.get(case_id, "?"), unknown, list(allowed)))


def rows_to_strata(cases) -> dict[str, str]:
    """{case_id: "aneurysm" | "none"} for stratified MRA splits, from CSV rows (mask cohorts are
    not opened just for this, so they are split unstratified)."""
    return {c.case_id: ("aneurysm" if c.aneurysms else "none") for c in cases}
