"""The numbers that make a patch dataset's examples: per-case parameters and shared constants.

Plain frozen dataclasses, so that they pickle simply to worker processes and Beam workers.
"""
from __future__ import annotations

from lm_zoo.intensity import CT_OUTSIDE_HU  # noqa: F401 (re-exported: the datasets pad CT patches with it)

import dataclasses

__all__ = [
    "SOURCE_PHANTOM", "SOURCE_USER", "ANEURYSM_CLASSES", "CT_OUTSIDE_HU", "NEGATIVE_GRID_MM",
    "AugmentationParams", "LandmarkParams", "AneurysmParams",
]

# The `source` feature: what the package knows about where a patch came from. A manual folder may
# hold real scans, phantoms or test crops, so it is "user" data, never claimed "real".
SOURCE_PHANTOM = "phantom"
SOURCE_USER = "user"
ANEURYSM_CLASSES = ("normal_vessel", "aneurysm")
# Negatives are drawn from the body mask of the volume binned to about this voxel size: the body
# outline needs no finer grid, and the mask of a full-resolution torso costs seconds per case.
NEGATIVE_GRID_MM = 4.0


@dataclasses.dataclass(frozen=True)
class AugmentationParams:
    """Plain numbers for lm_zoo.patches.Augmentation (kept separate so params pickle simply)."""

    max_rotation_deg: float = 10.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    jitter_mm: float = 1.0

    def build(self):
        from lm_zoo.patches import Augmentation

        return Augmentation(self.max_rotation_deg, tuple(self.scale_range), self.jitter_mm)


@dataclasses.dataclass(frozen=True)
class LandmarkParams:
    classes: tuple[str, ...]  # landmark classes that get patches (non_landmark is added)
    allowed: tuple[str, ...]  # names a landmark file may hold; anything else is an error
    source: str  # SOURCE_PHANTOM or SOURCE_USER
    seed: int
    patch_size: int = 32
    spacing_mm: float = 1.5
    samples_per_landmark: int = 4  # 1 at the exact point + (n - 1) augmented
    negatives_per_case: int = 40
    negative_min_distance_mm: float = 20.0
    body_threshold_hu: float = -500.0
    augmentation: AugmentationParams = AugmentationParams()
    # Where landmarks derived from segmentations are cached (lm_zoo.dataset_builder.derived); set by
    # the builder base for a build, None: derived afresh. Where they come from, not what they are.
    derived_cache: str | None = None


@dataclasses.dataclass(frozen=True)
class AneurysmParams:
    source: str
    seed: int
    patch_size: int = 32
    spacing_mm: float = 0.6
    samples_per_aneurysm: int = 4  # 1 at the centre + (n - 1) augmented
    max_aneurysm_candidates: int = 8  # vessel candidates inside an aneurysm also count as positives
    negatives_per_case: int = 40
    augmentation: AugmentationParams = AugmentationParams(jitter_mm=0.5)
