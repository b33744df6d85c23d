"""What the phantom cohort writers (torso CT, head MRA, inserted aneurysms) share about their files:
the output-folder rule, the small text files and the rows of ``aneurysms.csv``."""
from __future__ import annotations

import os
from pathlib import Path

from lm_zoo._atomic import atomic_write_text
from lm_zoo.errors import CohortError
from lm_zoo.outputs import OutputDirError, check_output_dir

__all__ = ["prepare_cohort_dir", "write_text", "aneurysm_rows"]


def prepare_cohort_dir(out_dir, overwrite: bool, subfolders=(), remove=None) -> Path:
    """``out_dir`` as a Path, ready for a cohort: checked by :func:`lm_zoo.outputs.check_output_dir`
    (not a file, writable), refused when it holds anything and ``overwrite`` is False, then created
    with ``subfolders``. With ``overwrite``, ``remove(out)`` (if given) first deletes the writer's own
    files of an earlier cohort. Every refusal is a :class:`lm_zoo.errors.CohortError`."""
    try:
        out = check_output_dir(Path(os.fspath(out_dir)), argument="output folder")
    except OutputDirError as err:
        raise CohortError(str(err)) from None
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise CohortError(f"{out}: folder is not empty; pass overwrite=True (--overwrite) to replace its cohort")
        if remove is not None:
            remove(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for sub in subfolders:
            (out / sub).mkdir(exist_ok=True)
    except OSError as err:
        raise CohortError(f"{out}: cannot write the cohort there ({err.strerror or err})") from None
    return out


def write_text(path: Path, text: str) -> None:
    """A cohort's text file (``cases.txt``, tables), written atomically with the platform's line ends."""
    atomic_write_text(path, text, newline=None)


def aneurysm_rows(case_id: str, aneurysms) -> list[list[str]]:
    """Rows of ``aneurysms.csv`` (case_id,x,y,z,radius_mm,site) for one case."""
    return [[case_id, *(f"{v:.3f}" for v in a.center_lps), f"{a.radius_mm:.3f}", a.site] for a in aneurysms]
