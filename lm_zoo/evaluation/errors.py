"""Errors of the transfer comparison."""
from __future__ import annotations


class EvaluationError(ValueError):
    """A bad argument or dataset for the evaluation; the message names it and the allowed values."""
