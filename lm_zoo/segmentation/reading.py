"""Reading a TotalSegmentator segmentation into {structure name: voxel indices} on one grid.

Accepted: a multi-label image or file (task ``total`` ids), a folder of per-structure masks named
as TotalSegmentator writes them, or a dict {task or structure name: image or file}. Files are read
by :func:`lm_zoo.io.read_image` (the one volume reader: it refuses truncated files); every part
must be a 3D integer label image on the same voxel grid.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from lm_zoo.io import ImageReadError, read_image
from lm_zoo.segmentation.errors import SegmentationError, SegmentationWarning
from lm_zoo.segmentation.grid import Grid
from lm_zoo.segmentation.totalsegmentator import KNOWN_STRUCTURES, SUBTASKS, TASKS, TOTAL

__all__ = ["STRUCTURE_FILE_SUFFIXES", "load"]

STRUCTURE_FILE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".nrrd")
_GRID_TOLERANCE = 1e-3  # mm / direction cosine: same grid


def _is_label_pixel(image: sitk.Image, source: str) -> np.ndarray:
    array = sitk.GetArrayFromImage(image)
    if image.GetNumberOfComponentsPerPixel() != 1 or image.GetDimension() != 3:
        raise SegmentationError(f"{source}: a segmentation must be a 3D scalar label image, got "
                                f"{image.GetDimension()}D with {image.GetNumberOfComponentsPerPixel()} components")
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise SegmentationError(f"{source}: label image holds non-integer values (pixel type "
                                    f"{image.GetPixelIDTypeAsString()}); a segmentation must hold integer labels")
        array = array.astype(np.int64)
    if array.size and array.min() < 0:
        raise SegmentationError(f"{source}: label image holds negative values (min {array.min()})")
    return array


def _read(path: Path) -> sitk.Image:
    try:
        return read_image(path)
    except ImageReadError as err:
        # the message names the file; the type stays the one segmentation callers catch
        raise SegmentationError(str(err)) from None


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    return (a.GetSize() == b.GetSize()
            and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=_GRID_TOLERANCE)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=_GRID_TOLERANCE)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=_GRID_TOLERANCE))


def _grid_text(image: sitk.Image) -> str:
    return (f"size {image.GetSize()}, spacing {tuple(round(s, 4) for s in image.GetSpacing())}, origin "
            f"{tuple(round(o, 3) for o in image.GetOrigin())}, direction {tuple(round(d, 3) for d in image.GetDirection())}")


def _decode(array: np.ndarray, classes: dict[int, str], source: str, structures: dict) -> None:
    """Split a multi-label array into structure index arrays (non-empty only)."""
    objects = ndimage.find_objects(array)
    unknown = []
    for label, box in enumerate(objects, start=1):
        if box is None:
            continue
        if label not in classes:
            unknown.append(label)
            continue
        zyx = np.argwhere(array[box] == label) + [s.start for s in box]
        if len(zyx):
            structures[classes[label]] = zyx
    if unknown:
        warnings.warn(f"{source}: label id(s) {unknown[:20]}{' ...' if len(unknown) > 20 else ''} are not in "
                      "TotalSegmentator's class map for this task; ignored", SegmentationWarning, stacklevel=4)


def _structure_stem(path: Path) -> str | None:
    name = path.name
    for suffix in STRUCTURE_FILE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return None


class _Collector:
    """The structures found so far and the grid they must share (the first part's)."""

    def __init__(self):
        self.structures: dict[str, np.ndarray] = {}
        self.reference: sitk.Image | None = None
        self.reference_source = None

    def add(self, img: sitk.Image, source: str, classes: dict[int, str] | None, single: str | None = None):
        if self.reference is None:
            self.reference, self.reference_source = img, source
        elif not _same_grid(self.reference, img):
            raise SegmentationError(f"{source}: on a different voxel grid ({_grid_text(img)}) than "
                                    f"{self.reference_source} ({_grid_text(self.reference)}); resample it "
                                    "(nearest neighbour) first")
        array = _is_label_pixel(img, source)
        if single is not None:
            if single in SUBTASKS and array.max() > 1:  # a subtask written as one multi-label file
                _decode(array, SUBTASKS[single], source, self.structures)
                return
            zyx = np.argwhere(array > 0)
            if len(zyx):
                self.structures[single] = zyx
            return
        _decode(array, classes, source, self.structures)


def _mapping_parts(segmentation: Mapping):
    for key, value in segmentation.items():
        where = f"segmentation[{key!r}]" if isinstance(value, sitk.Image) else str(value)
        img = value if isinstance(value, sitk.Image) else _read(Path(os.fspath(value)))
        if key in TASKS and not (key in KNOWN_STRUCTURES and key in SUBTASKS and sitk.GetArrayViewFromImage(img).max() <= 1):
            yield img, where, TASKS[key], None
        elif key in KNOWN_STRUCTURES:
            yield img, where, None, key
        else:
            raise SegmentationError(f"{where}: key {key!r} is neither a TotalSegmentator task ({sorted(TASKS)}) "
                                    "nor a structure name")


def _path_parts(path: Path):
    if not path.exists():
        raise FileNotFoundError(f"segmentation not found: {path}")
    if not path.is_dir():
        yield _read(path), str(path), TOTAL, None
        return
    files = sorted(p for p in path.iterdir() if p.is_file() and _structure_stem(p) in KNOWN_STRUCTURES)
    if not files:
        raise SegmentationError(f"{path}: folder holds no mask named like a TotalSegmentator structure "
                                f"(e.g. aorta.nii.gz, vertebrae_L1.nii.gz, kidney_left.nii.gz)")
    for f in files:
        yield _read(f), str(f), None, _structure_stem(f)


def load(segmentation, image):
    """(reference grid, {structure: zyx indices}, source text)."""
    if isinstance(segmentation, Mapping):
        source, parts = "segmentation dict", _mapping_parts(segmentation)
    elif isinstance(segmentation, sitk.Image):
        source, parts = "segmentation image", [(segmentation, "segmentation image", TOTAL, None)]
    else:
        path = Path(os.fspath(segmentation))
        source, parts = str(path), _path_parts(path)
    found = _Collector()
    for part in parts:
        found.add(*part)
    if image is not None:
        ref_image = read_image(image)
        if not _same_grid(found.reference, ref_image):
            raise SegmentationError(f"{found.reference_source}: segmentation grid ({_grid_text(found.reference)}) "
                                    f"differs from the image's ({_grid_text(ref_image)}); resample the segmentation "
                                    "onto the image (nearest neighbour) first")
    return Grid(found.reference), found.structures, source
