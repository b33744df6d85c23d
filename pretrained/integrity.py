"""Hash checks: a weights file is verified against its sha256 before anything reads it, so a
corrupt or truncated file is refused with :class:`WeightsIntegrityError`, never partially loaded."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

from .presets import WEIGHT_SETS, describe_weights, get_weight_set, local_path, read_sidecar, sidecar_path
from .weight_set import WeightsIntegrityError, WeightsNotAvailableError, check_sha256, sha256_file


def weights_path(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of a registered set's weights file, verified against its sha256.

    The file in the set's preset folder wins; otherwise, when the set has an ``origin``, it is
    fetched with ``keras.utils.get_file`` into ``<cache_dir or ~/.keras>/lm_zoo``. Raises
    WeightsNotAvailableError when neither exists (or no sha256 is registered to check it against)
    and WeightsIntegrityError when the hash differs.
    """
    ws = get_weight_set(name)
    local = local_path(ws)
    if not local.exists() and ws.origin is None:
        raise WeightsNotAvailableError(
            f"weight set {name!r} is not yet available in this release (file {local} absent); "
            "use weights=None or a path to a .weights.h5 file"
        )
    if ws.sha256 is None:
        raise WeightsNotAvailableError(
            f"weight set {name!r} has no registered sha256, so its file {local} cannot be verified "
            "and is not loaded; register the hash with lm_zoo.pretrained.write_registry_entry"
        )
    if not local.exists():
        local = _download(ws, cache_dir)
    return verify(local, ws.sha256)


def _download(ws, cache_dir) -> Path:
    import keras

    # Every preset's file is model.weights.h5: one cache folder per set keeps them apart.
    fname = Path(ws.filename).name
    subdir = "lm_zoo" if fname != "model.weights.h5" else f"lm_zoo/{ws.name}"
    try:
        return Path(keras.utils.get_file(fname, ws.origin, file_hash=ws.sha256, hash_algorithm="sha256",
                                         cache_subdir=subdir, cache_dir=None if cache_dir is None else str(cache_dir)))
    except ValueError as err:  # get_file's own hash check of the download
        raise WeightsIntegrityError(f"weight set {ws.name!r}: the file downloaded from {ws.origin} does not "
                                    f"match the registered sha256 {ws.sha256}: {err}") from err


def verify(name_or_path: str | os.PathLike, sha256: str | None = None) -> Path:
    """Check a weights file's sha256 before anything reads it; return its path.

    ``name_or_path``: a registered name (its file and hash) or a file path, checked against
    ``sha256`` or, when that is None, the hash in the file's sidecar JSON.
    """
    if sha256 is not None:
        sha256 = check_sha256(sha256, "sha256 argument (--sha256)")
    if isinstance(name_or_path, str) and name_or_path in WEIGHT_SETS:
        if sha256 is None:
            return weights_path(name_or_path)
        path = local_path(WEIGHT_SETS[name_or_path])
    else:
        path = Path(name_or_path)
    if not path.is_file():
        if isinstance(name_or_path, str) and not path.exists() and os.sep not in name_or_path \
                and not name_or_path.endswith((".h5", ".keras")):
            raise WeightsNotAvailableError(
                f"{name_or_path!r} is neither a registered weight set nor a file; registered: {sorted(WEIGHT_SETS)}"
            )
        raise FileNotFoundError(f"weights file {path} does not exist")
    if sha256 is None:
        sha256 = read_sidecar(path).get("sha256")
        if sha256 is not None:
            sha256 = check_sha256(sha256, f"sidecar {sidecar_path(path)}")
    if sha256 is None:
        raise ValueError(f"no sha256 to verify {path} against: pass sha256= (--sha256 on the command line) "
                         f"or write a sidecar {sidecar_path(path)}")
    actual = sha256_file(path)
    if actual != str(sha256).lower():
        raise WeightsIntegrityError(
            f"weights file {path} failed its integrity check: expected sha256 {sha256}, "
            f"got {actual} ({path.stat().st_size} bytes); the file is corrupt or truncated, "
            "replace it (reinstall lm_zoo or download it again)"
        )
    return path


def checked_weights_file(path: str | os.PathLike, stacklevel: int = 2) -> Path:
    """A weights file given by path, ready for Keras: verified when a sha256 is recorded for it
    (its sidecar), else returned with a warning that it is unverified and how to record one."""
    path = Path(path)
    if describe_weights(path).sha256:
        return verify(path)
    if not warn_if_altered_copy(path, stacklevel=stacklevel + 1):
        warnings.warn(
            f"weights file {path} has no recorded sha256 (no sidecar {sidecar_path(path)}), so it is loaded "
            f"unverified; record its hash with lm_zoo.pretrained.write_sidecar({str(path)!r}) once you trust "
            "the file, or check it against a published hash with `lm-zoo weights verify PATH --sha256 HASH`",
            stacklevel=stacklevel + 1,
        )
    return path


def warn_if_altered_copy(path: str | os.PathLike, stacklevel: int = 2) -> bool:
    """Warn when ``path`` (a weights file without a sidecar) has the name and size of a shipped
    set's file but not its sha256: most likely a damaged copy of it. Returns whether it warned."""
    path = Path(path)
    for ws in WEIGHT_SETS.values():
        local = local_path(ws)
        if (ws.sha256 and Path(ws.filename).name == path.name and local.is_file() and path.is_file()
                and local.stat().st_size == path.stat().st_size and sha256_file(path) != ws.sha256):
            warnings.warn(
                f"weights file {path} has the name and size of the shipped {ws.name!r} weights but not their "
                f"sha256 ({ws.sha256[:12]}...): a damaged copy? load weights={ws.name!r} instead, or write a "
                f"sidecar (lm_zoo.pretrained.write_sidecar) if it is your own file",
                stacklevel=stacklevel + 1,
            )
            return True
    return False
