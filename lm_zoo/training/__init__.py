"""Training: the recipes behind the shipped weight sets, their data, and model cards from run files.

- :mod:`~lm_zoo.training.recipe`: hyper-parameters of each recipe and the run's file names
  (shared by the recipes and the cards);
- :mod:`~lm_zoo.training.data`: CIFAR-10 and the landmark patch datasets as NumPy, real-CT patches
  mixed into a training split;
- :mod:`~lm_zoo.training.batches`, :mod:`~lm_zoo.training.loop`, :mod:`~lm_zoo.training.metrics`:
  input pipelines, the compiled and logged fit, test figures;
- :mod:`~lm_zoo.training.recipes`: :func:`train_landmark`, :func:`train_cifar`;
- :mod:`~lm_zoo.training.cards`: a model card from ``metrics.json`` + ``history.csv`` (+ preamble),
  :func:`write_card` for the shipped sets (``lm-zoo weights card NAME``);
- :mod:`~lm_zoo.training.real_ct`, :mod:`~lm_zoo.training.holdout`: what a weight set recognises
  on a real CT with landmarks derived from its segmentation, and the anatomical-group hold-out;
- :mod:`~lm_zoo.training.adaptation` (``lm-zoo train landmark --adapt-to``): landmark weights adapted
  to unlabelled real CT, by :mod:`~lm_zoo.training.dann` (adversarial fine-tuning) or
  :mod:`~lm_zoo.training.adapt` (AdaBN and background recalibration), on scans found, checked and
  streamed by :mod:`~lm_zoo.training.unlabelled`.

Importing this package loads neither Keras nor TensorFlow; the recipes import them when they run.
"""
from lm_zoo.training.cards import (
    GENERATED_NOTE, card_path, model_card, read_history, regenerate_shipped_cards, shipped_card, write_card,
)
from lm_zoo.training.data import load_cifar10, load_patch_splits, mix_real_patches, real_training_patches
from lm_zoo.training.errors import TrainingDataError
from lm_zoo.training.loop import machine_description
from lm_zoo.training.metrics import classification_metrics
from lm_zoo.training.recipe import (
    CIFAR10_CLASSES, CIFAR_RECIPE, LANDMARK_REAL_RECIPE, LANDMARK_RECIPE, REAL_SHARE, RECIPES, SHIPPED_SETS, Recipe,
)
from lm_zoo.training.recipes import train_cifar, train_landmark

__all__ = [
    "CIFAR10_CLASSES", "CIFAR_RECIPE", "GENERATED_NOTE", "LANDMARK_REAL_RECIPE", "LANDMARK_RECIPE", "REAL_SHARE",
    "RECIPES", "Recipe", "SHIPPED_SETS", "TrainingDataError", "card_path", "classification_metrics",
    "load_cifar10", "load_patch_splits", "machine_description", "mix_real_patches", "model_card",
    "read_history", "real_training_patches", "regenerate_shipped_cards", "shipped_card", "train_cifar",
    "train_landmark", "write_card",
]
