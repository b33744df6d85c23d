"""Compatibility shim: the training recipes, data loaders and model cards live in
:mod:`lm_zoo.training` now (``recipes``, ``data``, ``loop``, ``metrics``, ``cards``); the accuracy
bootstrap is :func:`lm_zoo.evaluation.statistics.bootstrap_ci`. Shipped cards are regenerated with
``lm-zoo weights card NAME`` (:func:`lm_zoo.training.cards.write_card`)."""
from __future__ import annotations

from lm_zoo.evaluation.statistics import bootstrap_ci
from lm_zoo.training import *  # noqa: F401,F403
from lm_zoo.training import __all__ as _training_all

__all__ = [*_training_all, "bootstrap_ci"]
