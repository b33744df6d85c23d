"""How a local (non-Beam) build runs its cases: one :class:`lm_zoo.parallel.CasePool` per build,
serving the scan of derived landmark names and every split, its processes started once.

Its size (:func:`workers_for`): ``$LM_ZOO_DATASET_WORKERS`` when set (at most one per case), else
one worker (in this process, no start-up) for a cohort of fewer than ``MIN_CASES_FOR_POOL`` cases,
else one per usable CPU that other jobs leave idle, never more than cases. Cases are computed in
order, at most ``WINDOW_PER_WORKER`` per worker ahead of the writer, and results come back in case
order, so the examples do not depend on the count. Memory: each worker holds one case (its volume, as float32
while sampled, and its examples); the build process holds at most the window's finished cases'
examples (``benchmarks/cohort_scale.py`` prints both peaks).
"""
from __future__ import annotations

import os

from lm_zoo.parallel import CasePool

__all__ = ["MIN_CASES_FOR_POOL", "workers_for", "idle_cpus", "local_workers", "build_pool"]

# Below this many cases in the whole cohort, starting worker processes costs more than it saves
# (each imports SimpleITK and lm_zoo; under `tfds build` also TensorFlow, through the CLI's module).
MIN_CASES_FOR_POOL = 8


def workers_for(n_cases: int) -> int:
    """Worker processes for ``n_cases`` cases: ``$LM_ZOO_DATASET_WORKERS`` when set, else 1 for a
    few cases, where starting processes costs more than it saves, else the usable CPUs that other
    jobs leave idle (:func:`idle_cpus`); at most one per case."""
    n_cases = max(int(n_cases), 1)
    if os.environ.get("LM_ZOO_DATASET_WORKERS"):
        return min(local_workers(), n_cases)
    return 1 if n_cases < MIN_CASES_FOR_POOL else min(idle_cpus(), n_cases)


def idle_cpus() -> int:
    """The usable CPUs less those other jobs keep busy (the 1-minute load average, less this
    process's own one): a second worker on a core another job holds only slows both down."""
    cpus = _usable_cpus()
    try:
        others = max(os.getloadavg()[0] - 1.0, 0.0)
    except OSError:  # no load average on this platform
        others = 0.0
    return max(1, min(cpus, int(cpus - others + 0.5)))


def local_workers() -> int:
    """Processes for a local (non-Beam) build: ``$LM_ZOO_DATASET_WORKERS``, else the usable CPUs."""
    value = os.environ.get("LM_ZOO_DATASET_WORKERS")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"LM_ZOO_DATASET_WORKERS must be a positive integer, got {value!r}")
        return int(value)
    return _usable_cpus()


def _usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def build_pool() -> CasePool:
    """A build's pool, sized by :func:`workers_for` of every case queued before its first result."""
    return CasePool(workers_for)
