"""The error a training recipe raises for missing or malformed training data."""
from __future__ import annotations

from lm_zoo.errors import LmZooError

__all__ = ["TrainingDataError"]


class TrainingDataError(LmZooError, ValueError):
    """The training data given to a recipe is missing or malformed."""
