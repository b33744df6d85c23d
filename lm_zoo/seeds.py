"""The one per-case seed of lm_zoo: a case's random draws depend on the cohort's seed and the case's
key only, never on case order, cohort size or which worker builds it."""
from __future__ import annotations

import zlib

import numpy as np

__all__ = ["case_seed"]


def case_seed(seed: int, key, *, bits: int = 32) -> int:
    """Seed of the case ``key`` (an index, or a case id string, hashed with crc32) of a cohort drawn
    with ``seed``: the first word of ``SeedSequence([seed, key])``, 32 bits, or with ``bits=63`` the
    first 64-bit word shifted to 63 bits (the torso phantom's cases have always used that one)."""
    key = zlib.crc32(key.encode("utf-8")) if isinstance(key, str) else int(key)
    sequence = np.random.SeedSequence([int(seed), key])
    if bits == 32:
        return int(sequence.generate_state(1, np.uint32)[0])
    if bits == 63:
        return int(sequence.generate_state(1, np.uint64)[0] >> 1)
    raise ValueError(f"case_seed: bits must be 32 or 63, got {bits!r}")
