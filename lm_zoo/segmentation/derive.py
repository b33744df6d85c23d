"""The public entry point: a TotalSegmentator segmentation -> the table's landmarks (LPS mm)."""
from __future__ import annotations

import warnings

import numpy as np

from lm_zoo.anatomy import LM60
from lm_zoo.landmarks import Landmarks
from lm_zoo.segmentation.errors import SegmentationError, SegmentationWarning, Skip
from lm_zoo.segmentation.reading import load
from lm_zoo.segmentation.rules import RULES
from lm_zoo.segmentation.structures import Structures

__all__ = ["landmarks_from_segmentation"]


def _wanted(names) -> list[str]:
    if names is None:
        return list(LM60)
    wanted = [str(n) for n in ([names] if isinstance(names, str) else names)]
    unknown = [n for n in wanted if n not in LM60]
    if unknown:
        raise SegmentationError(f"landmarks_from_segmentation: unknown landmark name(s) {unknown}; "
                                f"known: lm_zoo.anatomy.LM60")
    return wanted


def _derive(seg: Structures, wanted: list[str]):
    """(names, points, {why skipped: landmarks}) in table order."""
    out_names, out_points = [], []
    skipped: dict[str, list[str]] = {}
    for name in (n for n in LM60 if n in wanted):
        rule = RULES.get(name)
        if rule is None or not rule.available(seg):
            continue
        try:
            point = np.asarray(rule.derive(seg), float)
        except Skip as why:
            skipped.setdefault(str(why), []).append(name)
            continue
        except KeyError:
            continue
        if not np.all(np.isfinite(point)):
            skipped.setdefault("non-finite result", []).append(name)
            continue
        out_names.append(name)
        out_points.append(point)
    return out_names, out_points, skipped


def landmarks_from_segmentation(segmentation, *, names=None, image=None):
    """Landmarks of the package's table (LPS mm) defined by a TotalSegmentator segmentation.

    Args:
        segmentation: a multi-label image or file with TotalSegmentator v2 ``total`` label ids;
            a folder of per-structure masks named as TotalSegmentator writes them
            (``aorta.nii.gz``, ``vertebrae_L1.nii.gz``, subtask masks such as
            ``vertebrae_body.nii.gz``, ``celiac_trunk.nii.gz``, ``pul_bifurcation.nii.gz``);
            or a dict {task or structure name: image or file} (e.g. ``{"total": ...,
            "vertebrae_body": ...}``). Files the folder holds that are not TotalSegmentator
            structures are ignored. All parts must share one voxel grid.
        names: landmark names to derive (default: all of ``LANDMARKS``); unknown names raise.
        image: optional CT (image, file or DICOM folder) the segmentation belongs to; a
            segmentation on another grid raises :class:`SegmentationError`.

    Returns:
        :class:`lm_zoo.landmarks.Landmarks` in table order, holding only the landmarks the
        present structures define. Absent or empty structures define nothing; a structure cut
        by the field of view on a side a landmark depends on gives no landmark and one
        :class:`SegmentationWarning` naming it. The rule of each landmark is :data:`RULES`.
    """
    wanted = _wanted(names)
    grid, structures, source = load(segmentation, image)
    out_names, out_points, skipped = _derive(Structures(grid, structures, source), wanted)
    for why, lms in skipped.items():
        warnings.warn(f"{source}: {why}; skipped {', '.join(lms)}", SegmentationWarning, stacklevel=2)
    return Landmarks(out_names, np.array(out_points, float).reshape(-1, 3))
