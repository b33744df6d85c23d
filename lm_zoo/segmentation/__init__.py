"""Landmarks of the package's table derived from a TotalSegmentator segmentation.

:func:`landmarks_from_segmentation` turns TotalSegmentator output (a multi-label ``total`` map,
a folder of per-structure masks, or a dict of task maps) into the named LPS mm points of
:data:`lm_zoo.anatomy.LANDMARKS`, using the table's own definition of each point.
Class names and ids come from :mod:`lm_zoo.segmentation.totalsegmentator`.

Every rule works on voxel centres in physical space (LPS mm) and is one entry in :data:`RULES`
(landmark -> structures, description, the function deriving it). "Cap" means the voxels within
a few mm of a mask's extreme along a direction; a cap's point is the cap centroid moved onto the
mask surface (half a voxel beyond the extreme voxel centre). "Just inside" points and "on the
wall" points follow the table's wording. A structure cut by the field of view (its mask reaching
the first/last voxel plane on a side the landmark depends on) yields no landmark and one warning
naming it.

Modules: ``totalsegmentator`` (class maps as data), ``reading`` (files, folders, dicts -> voxel
indices on one grid), ``grid`` / ``masks`` / ``shapes`` (voxel geometry), ``structures`` (the
regions the rules share), ``spine`` / ``thorax`` / ``vessels`` / ``abdomen`` / ``pelvis`` (the
rules), ``rules`` (the one table), ``derive`` (the entry point).
"""
from __future__ import annotations

from lm_zoo.segmentation.derive import landmarks_from_segmentation
from lm_zoo.segmentation.errors import SegmentationError, SegmentationWarning
from lm_zoo.segmentation.reading import STRUCTURE_FILE_SUFFIXES
from lm_zoo.segmentation.rules import RULES, Rule
from lm_zoo.segmentation.totalsegmentator import (KNOWN_STRUCTURES, SOURCE, SUBTASKS, TASKS, TOTAL,
                                                  TOTALSEGMENTATOR_VERSION, task_of)

__all__ = ["landmarks_from_segmentation", "SegmentationError", "SegmentationWarning", "RULES", "Rule",
           "STRUCTURE_FILE_SUFFIXES", "TOTALSEGMENTATOR_VERSION", "SOURCE", "TOTAL", "SUBTASKS", "TASKS",
           "KNOWN_STRUCTURES", "task_of"]
