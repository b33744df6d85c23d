"""The one process pool of lm_zoo: ordered results, one progress bar, serial when one worker.

Cohort writers and dataset builds map a per-case function over cases. With ``workers <= 1`` the
function runs in this process (no pool start-up to pay); otherwise in a ``spawn`` pool (the
parent may have TensorFlow's threads running, which a forked child must not inherit). Results
come back in input order either way, so the bytes written do not depend on the worker count.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator

__all__ = ["map_ordered"]


def map_ordered(fn: Callable, items: Iterable, *, workers: int = 1, desc: str = "", unit: str = "case",
                progress: bool = True, leave: bool = True) -> Iterator:
    """Yield ``fn(item)`` for each item, in order, with one tqdm bar (``progress=False``: none).

    A generator: the pool (if any) lives while it is consumed and is shut down, pending work
    cancelled, when the consumer stops early or raises.
    """
    from tqdm.auto import tqdm

    items = list(items)
    bar = tqdm(total=len(items), desc=desc, unit=unit, leave=leave, disable=not progress)
    try:
        if workers <= 1 or len(items) < 2:
            for item in items:
                yield fn(item)
                bar.update()
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(min(int(workers), len(items)), mp_context=multiprocessing.get_context("spawn"))
        try:
            for result in pool.map(fn, items):
                yield result
                bar.update()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    finally:
        bar.close()
