"""TFDS builders of lm_zoo, installed as ``lm_zoo.datasets``.

Importing this package registers every builder, so ``tfds build --imports lm_zoo.datasets NAME``
and ``tfds.load(NAME)`` find them.
"""
from lm_zoo.datasets.landmark_ct_patches import landmark_ct_patches_dataset_builder
from lm_zoo.datasets.mra_aneurysm_patches import mra_aneurysm_patches_dataset_builder

__all__ = ["landmark_ct_patches_dataset_builder", "mra_aneurysm_patches_dataset_builder"]
