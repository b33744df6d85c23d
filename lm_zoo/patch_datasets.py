"""Moved to :mod:`lm_zoo.dataset_builder` (split by concern: params, examples, scans, workers,
lock, staleness, base); this module re-exports its names so that old imports keep working."""
from lm_zoo.dataset_builder import *  # noqa: F401,F403
from lm_zoo.dataset_builder import __all__  # noqa: F401
