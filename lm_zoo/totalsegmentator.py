"""Compatibility shim: the TotalSegmentator class maps live in :mod:`lm_zoo.segmentation.totalsegmentator`."""
from lm_zoo.segmentation.totalsegmentator import (KNOWN_STRUCTURES, SOURCE, SUBTASKS, TASKS, TOTAL,  # noqa: F401
                                                  TOTALSEGMENTATOR_VERSION, __all__, task_of)
