"""The one error hierarchy of lm_zoo.

Every error the package raises on bad input derives from :class:`LmZooError` and from the
built-in class a caller would catch without knowing lm_zoo (``ValueError`` for malformed content
or arguments, ``FileNotFoundError`` for something missing), so ``except lm_zoo.errors.LmZooError``
catches all of them and ``except ValueError`` keeps working. Module-specific errors
(``lm_zoo.io.ImageReadError``, ``lm_zoo.landmarks.LandmarkFileError``, ...) subclass these; the
names the modules exported before (``lm_zoo.cohorts.CohortError``,
``lm_zoo.phantoms.head_mra.CohortError``, ``lm_zoo.phantoms.torso_ct.CohortError``) are these
very classes.
"""
from __future__ import annotations

__all__ = ["LmZooError", "CohortError", "CohortNotFoundError", "AneurysmTableError", "StaleDatasetError"]


class LmZooError(Exception):
    """Base of every lm_zoo error; the message names the file, case, point or argument."""


class CohortError(LmZooError, ValueError):
    """A cohort (a user's folder, or a phantom cohort to write) that does not follow the layout or
    cannot be written as asked."""


class CohortNotFoundError(LmZooError, FileNotFoundError):
    """A cohort folder, or a required part of it, that is missing or empty."""


class AneurysmTableError(CohortError):
    """A malformed ``aneurysms.csv`` (message names the file and row)."""


class StaleDatasetError(LmZooError, RuntimeError):
    """A prepared TFDS dataset built by other generator code, or from other source files, than the
    installed code and the manual folder; the message names the folder to delete and the command
    that rebuilds it."""
