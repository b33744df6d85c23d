"""The detector's bad-input errors: each names the input it refuses."""
from __future__ import annotations

from lm_zoo.errors import LmZooError

__all__ = ["DetectionError", "NotCTError", "NoBodyError"]


class DetectionError(LmZooError, ValueError):
    """Input the detector cannot work on (named in the message)."""


class NotCTError(DetectionError):
    """A volume whose intensities are not CT Hounsfield units (e.g. an MR)."""


class NoBodyError(DetectionError):
    """A volume without a body to search (empty, air only, or a body too small)."""

