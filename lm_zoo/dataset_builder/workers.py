"""How a local (non-Beam) build runs its cases: serially for a few cases, else in worker processes
(``lm_zoo.parallel.map_ordered``: case order kept, so the examples do not depend on the count)."""
from __future__ import annotations

import os

from lm_zoo.parallel import map_ordered

__all__ = ["MIN_CASES_FOR_POOL", "workers_for", "local_workers", "local_examples"]

# Below this many cases, starting worker processes costs more than it saves.
MIN_CASES_FOR_POOL = 8


def workers_for(n_cases: int) -> int:
    """Worker processes for ``n_cases`` cases: 1 for a few cases, where starting processes costs
    more than it saves, else :func:`local_workers` (at most one per case)."""
    return 1 if n_cases < MIN_CASES_FOR_POOL else min(local_workers(), n_cases)


def local_workers() -> int:
    """Processes for a local (non-Beam) build: ``$LM_ZOO_DATASET_WORKERS``, else the usable CPUs."""
    value = os.environ.get("LM_ZOO_DATASET_WORKERS")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"LM_ZOO_DATASET_WORKERS must be a positive integer, got {value!r}")
        return int(value)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def local_examples(cases, per_case):
    """Every (key, example) of ``per_case(case)`` over ``cases``, in case order."""
    cases = list(cases)
    for examples in map_ordered(per_case, cases, workers=workers_for(len(cases)), desc="cases", unit="case",
                                leave=False):
        yield from examples
