"""Unlabelled real CT for domain adaptation: find the scans in users' folders, check them all
before any training starts, and stream 2.5D patches of random body points one scan at a time.

Users bring hundreds of unannotated scans (volume files or DICOM series folders, in any layout).
:func:`find_scans` walks the folders; :func:`check_scans` reads every scan once through
:func:`lm_zoo.io.read_image` and refuses, in one error that names each file, anything that is not
a 3D CT in Hounsfield units (an MR, a 2D image, a truncated file); :func:`body_patches` yields the
patches of one scan at a time, so memory is bounded by one volume whatever the cohort size.

Random body points are non-landmarks with high probability: on the TotalSegmentator example
(``example_ct``, 3 mm, its 22 landmarks derived from its segmentation) 0.4 % of 4,000 random body
points lie within 10 mm of one of those landmarks, 5 % within a patch half-width (24 mm); the 22 are
about a third of the 60, so about 1 % within 10 mm of any landmark (measured 2026-12-06).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from lm_zoo.training.errors import TrainingDataError

__all__ = ["UnlabelledScan", "AdaptationDataError", "find_scans", "check_scans", "body_patches"]

# A DICOM file has no reliable suffix: a folder whose files SimpleITK's GDCM reader groups into a
# series is a scan. Folders with more files than this are not listed file by file in errors.
_MAX_LISTED = 10


class AdaptationDataError(TrainingDataError):
    """Unlabelled scans that cannot serve adaptation; the message names every offending file."""


@dataclasses.dataclass(frozen=True)
class UnlabelledScan:
    path: Path
    size: tuple
    spacing_mm: tuple


def _is_dicom_series_folder(folder: Path) -> bool:
    import SimpleITK as sitk

    return bool(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))


def find_scans(folders: Iterable, argument: str = "--adapt-to") -> list[Path]:
    """Volume files (``lm_zoo.io.FILE_SUFFIXES``) and DICOM series folders under ``folders`` (each a
    folder, or one scan given directly), sorted, each once. Hidden files and folders are skipped; a
    missing path is refused naming ``argument`` (the option it came from)."""
    from lm_zoo.io import FILE_SUFFIXES

    found: list[Path] = []
    for given in folders:
        root = Path(os.fspath(given)).expanduser()
        if not root.exists():
            raise AdaptationDataError(f"{argument} {str(root)!r}: no such file or folder")
        if root.is_file():
            found.append(root)
            continue
        for folder, subfolders, files in os.walk(root):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            here = Path(folder)
            volumes = [here / f for f in sorted(files) if not f.startswith(".") and f.lower().endswith(FILE_SUFFIXES)]
            found += volumes
            others = [f for f in files if not f.startswith(".") and not f.lower().endswith(FILE_SUFFIXES)]
            if others and _is_dicom_series_folder(here):
                found.append(here)
    return sorted(dict.fromkeys(found))


def check_scans(paths: Sequence[Path], *, progress: bool = False, air_below_hu: float = -500.0) -> list[UnlabelledScan]:
    """Read every scan once and check it is a 3D CT in HU; one AdaptationDataError lists every scan
    that is not (file and reason), before any training starts. Needs at least one scan."""
    from tqdm.auto import tqdm

    from lm_zoo.intensity import require_hounsfield
    from lm_zoo.io import read_image

    if not paths:
        raise AdaptationDataError("--adapt-to: no volume file (.nii, .nii.gz, .mha, .mhd, .nrrd, .nhdr) and no DICOM "
                                  "series folder found; give folders of unlabelled CT scans")
    scans, problems = [], []
    for path in tqdm(list(paths), desc="checking unlabelled scans", unit="scan", disable=not progress):
        try:
            image = read_image(path)
            require_hounsfield(image, str(path), air_below_hu)
        except (ValueError, FileNotFoundError) as err:
            problems.append(str(err) if str(path) in str(err) else f"{path}: {err}")
            continue
        scans.append(UnlabelledScan(Path(path), tuple(image.GetSize()), tuple(image.GetSpacing())))
    if problems:
        listed = "\n  ".join(problems[:_MAX_LISTED])
        more = f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
        raise AdaptationDataError(
            f"--adapt-to: {len(problems)} of {len(paths)} scans cannot serve adaptation (3D CT in Hounsfield units "
            f"needed); remove or fix them:\n  {listed}{more}")
    return scans


def body_patches(scans: Sequence[UnlabelledScan], n_per_scan: int, *, seed: int, patch_size: int,
                 spacing_mm: float, body_threshold_hu: float = -500.0) -> Iterator[tuple[UnlabelledScan, np.ndarray]]:
    """``(scan, patches)`` per scan: raw-HU 2.5D patches ``(n, size, size, 3)`` at ``n_per_scan``
    random body points (:func:`lm_zoo.landmarks.sample_negatives`, seeded per scan by its position
    in ``scans`` and ``seed``). One volume is in memory at a time."""
    from lm_zoo.intensity import CT_OUTSIDE_HU
    from lm_zoo.io import read_image
    from lm_zoo.landmarks import sample_negatives
    from lm_zoo.patches import extract_25d
    from lm_zoo.seeds import case_seed

    for k, scan in enumerate(scans):
        image = read_image(scan.path)
        points = sample_negatives(image, np.empty((0, 3)), int(n_per_scan), 0.0, seed=case_seed(seed, k),
                                  body_threshold=body_threshold_hu)
        yield scan, extract_25d(image, points, patch_size, spacing_mm, CT_OUTSIDE_HU)
