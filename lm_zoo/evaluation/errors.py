"""Errors of the transfer comparison."""
from __future__ import annotations

from lm_zoo.errors import LmZooError


class EvaluationError(LmZooError, ValueError):
    """A bad argument or dataset for the evaluation; the message names it and the allowed values."""
