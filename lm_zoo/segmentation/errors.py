"""What a segmentation can go wrong with: an error, a warning, and the internal "no landmark" signal."""
from __future__ import annotations

from lm_zoo.errors import LmZooError

__all__ = ["SegmentationError", "SegmentationWarning", "Skip"]


class SegmentationError(LmZooError, ValueError):
    """A segmentation that cannot be turned into landmarks (names the file or folder)."""


class SegmentationWarning(UserWarning):
    """A structure skipped (cut by the field of view, implausible) or labels not understood."""


class Skip(Exception):
    """A landmark that the present structures cannot define; the message goes into a warning."""
