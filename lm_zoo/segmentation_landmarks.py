"""Compatibility shim: the segmentation -> landmarks code lives in :mod:`lm_zoo.segmentation`
(entry point ``derive``, the rule table ``rules``, errors ``errors``)."""
from lm_zoo.segmentation import (RULES, STRUCTURE_FILE_SUFFIXES, SegmentationError,  # noqa: F401
                                 SegmentationWarning, landmarks_from_segmentation)

__all__ = ["landmarks_from_segmentation", "SegmentationError", "SegmentationWarning", "RULES", "STRUCTURE_FILE_SUFFIXES"]
