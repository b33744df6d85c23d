"""What a training run is: the hyper-parameters of each recipe and the names of its files.

Kept below both the recipes (:mod:`lm_zoo.training.recipes`) and the model cards
(:mod:`lm_zoo.training.cards`), which write and read the same run.
"""
from __future__ import annotations

import dataclasses

__all__ = [
    "CIFAR10_CLASSES", "Recipe", "CIFAR_RECIPE", "LANDMARK_RECIPE", "LANDMARK_REAL_RECIPE", "RECIPES",
    "REAL_SHARE", "SHIPPED_SETS", "run_stem",
]

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
# The weight sets whose run files (metrics.json, history.csv) and cards ship in lm_zoo.pretrained.
SHIPPED_SETS = ("cifar", "landmark", "landmark_phantom")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of one recipe; written verbatim into the model card."""

    name: str
    epochs: int
    batch_size: int
    learning_rate: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    warmup_epochs: int = 1
    early_stopping_patience: int | None = None
    seed: int = 0
    intensity_augmentation: bool = False  # lm_zoo.augment.randomize on raw-HU training batches


CIFAR_RECIPE = Recipe(name="cifar", epochs=80, batch_size=128, learning_rate=0.05)
LANDMARK_RECIPE = Recipe(
    name="landmark", epochs=20, batch_size=128, learning_rate=0.05, label_smoothing=0.05,
    early_stopping_patience=8, intensity_augmentation=True,
)
# Second stage: the phantom-trained weights (init_from) adapted to real CT patches mixed into the
# phantom ones (train_landmark(real_dataset=...)). A short, low-rate run: the real patches are few
# and their landmarks were derived from segmentations, so the phantom keeps every class in view.
LANDMARK_REAL_RECIPE = Recipe(
    name="landmark_real", epochs=4, batch_size=128, learning_rate=0.01, label_smoothing=0.05,
    warmup_epochs=0, intensity_augmentation=True,
)
RECIPES = {"landmark": LANDMARK_RECIPE, "landmark_real": LANDMARK_REAL_RECIPE}
# Default share of each epoch's examples drawn (with repetition) from the real dataset.
REAL_SHARE = 0.15


def run_stem(weight_set: str) -> str:
    """The file stem of a run's weights and card: ``mini_vgg25d_<weight_set>``."""
    return f"mini_vgg25d_{weight_set}"
