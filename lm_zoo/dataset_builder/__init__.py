"""The glue between lm_zoo's cohorts and its TFDS builders (``datasets/<name>/``).

- ``params``: the numbers that make a dataset's examples (per-case parameters, constants);
- ``examples``: per-case example generation (patch extraction for landmark and aneurysm cases);
- ``scans``: checks of a cohort in the main process before its patches are made;
- ``derived``: landmarks derived from segmentations once per case, cached by source digest;
- ``workers``: serial or worker-process builds (``$LM_ZOO_DATASET_WORKERS``);
- ``beam_runner``: a local Beam build pinned to the in-process engine (no runner download);
- ``lock``: one build of a dataset config per data_dir at a time;
- ``staleness``: generator and manual-folder digests, stale prepared builds refused;
- ``base``: ``PatchBuilderMixin``, the builders' base on the public TFDS builder API.
"""
from lm_zoo.anatomy import NON_LANDMARK
from lm_zoo.dataset_builder.base import PatchBuilderMixin, manual_dir
from lm_zoo.dataset_builder.examples import aneurysm_case_examples, landmark_case_examples
from lm_zoo.dataset_builder.lock import DatasetLockedError, build_lock
from lm_zoo.dataset_builder.params import (
    ANEURYSM_CLASSES, CT_OUTSIDE_HU, NEGATIVE_GRID_MM, SOURCE_PHANTOM, SOURCE_USER, AneurysmParams,
    AugmentationParams, LandmarkParams,
)
from lm_zoo.dataset_builder.scans import (
    check_landmark_names, report_dropped_landmarks, rows_to_strata, scan_dropped_landmarks, scan_landmark_names,
)
from lm_zoo.dataset_builder.staleness import GENERATOR_MODULES
from lm_zoo.dataset_builder.workers import MIN_CASES_FOR_POOL, local_workers, workers_for

__all__ = [
    "NON_LANDMARK", "SOURCE_PHANTOM", "SOURCE_USER", "ANEURYSM_CLASSES", "CT_OUTSIDE_HU", "NEGATIVE_GRID_MM",
    "AugmentationParams", "LandmarkParams", "AneurysmParams", "landmark_case_examples", "aneurysm_case_examples",
    "scan_landmark_names", "check_landmark_names", "scan_dropped_landmarks", "report_dropped_landmarks",
    "rows_to_strata", "PatchBuilderMixin", "manual_dir", "GENERATOR_MODULES", "build_lock", "DatasetLockedError",
    "MIN_CASES_FOR_POOL", "workers_for", "local_workers",
]
