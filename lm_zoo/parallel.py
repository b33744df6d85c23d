"""The one process pool of lm_zoo: ordered results, one progress bar per map, serial when one worker.

Cohort writers and dataset builds map a per-case function over cases. With one worker the
function runs in this process (no pool start-up to pay); otherwise in a ``spawn`` pool (the
parent may have TensorFlow's threads running, which a forked child must not inherit). Results
come back in input order either way, so the bytes written do not depend on the worker count.

:class:`CasePool` serves several maps from one set of processes (a dataset build's name scan
and every split), started once; :func:`map_ordered` is one map on a pool of its own.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator

__all__ = ["CasePool", "map_ordered", "WINDOW_PER_WORKER"]

# Cases computed ahead of the consumer, per worker: enough to keep every worker busy while the
# consumer takes a result, few enough that finished results never pile up in memory.
WINDOW_PER_WORKER = 2


class CasePool:
    """Ordered maps sharing one process pool, started on the first result needed from it.

    ``workers``: a count, or a rule ``workers(n)`` applied, when the pool starts, to the number of
    items queued by every map so far (a build's splits are all queued before the first is read) or
    announced by :meth:`expect`, whichever is more.
    Each :meth:`map` queues its items at once and returns a generator of their results in order;
    items are computed in the order they were queued, at most ``WINDOW_PER_WORKER`` per worker
    ahead of the consumer, so the next map's items start while the last ones of this map finish.
    Use as a context manager (or call :meth:`close`): pending work is cancelled on exit.
    """

    def __init__(self, workers: int | Callable[[int], int] = 1):
        self._rule = workers
        self.workers: int | None = None  # decided on the first result
        self._expected = 0
        self._jobs: list = []  # (fn, item) of every map, in queue order; None once taken or dropped
        self._pending: dict = {}  # job index -> Future
        self._next = 0  # the next job index to submit
        self._executor = None

    def expect(self, n_items: int) -> None:
        """Size the pool, when it starts, for at least ``n_items`` (a first map that is a small part
        of the work, e.g. a few cases to check before the whole cohort's patches)."""
        self._expected = max(self._expected, int(n_items))

    def map(self, fn: Callable, items: Iterable, *, desc: str = "", unit: str = "case", progress: bool = True,
            leave: bool = True) -> Iterator:
        """Queue ``fn(item)`` for every item now; a generator of the results in order, with one tqdm
        bar (``progress=False``: none). Closing the generator early drops its items not yet done."""
        first = len(self._jobs)
        self._jobs.extend((fn, item) for item in items)
        return self._results(range(first, len(self._jobs)), desc, unit, progress, leave)

    def _results(self, indices: range, desc, unit, progress, leave) -> Iterator:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(indices), desc=desc, unit=unit, leave=leave, disable=not progress)
        try:
            for i in indices:
                yield self._result(i)
                bar.update()
        finally:
            bar.close()
            for i in indices:  # an early stop: nothing more of this map is computed
                self._jobs[i] = None
                future = self._pending.pop(i, None)
                if future is not None:
                    future.cancel()

    def _result(self, i: int):
        if self.workers is None:
            rule = self._rule
            n_items = max(len(self._jobs), self._expected)
            self.workers = max(1, int(rule(n_items) if callable(rule) else rule))
        if self.workers <= 1:
            fn, item = self._jobs[i]
            self._jobs[i] = None
            return fn(item)
        self._submit_up_to(i)
        return self._pending.pop(i).result()

    def _submit_up_to(self, i: int) -> None:
        """Submit queued jobs in order: through job ``i``, then while fewer than the window run."""
        if self._executor is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        window = WINDOW_PER_WORKER * self.workers
        while self._next < len(self._jobs) and (self._next <= i or len(self._pending) < window):
            job = self._jobs[self._next]
            if job is not None:
                self._pending[self._next] = self._executor.submit(*job)
                self._jobs[self._next] = None
            self._next += 1

    def close(self) -> None:
        """Cancel pending work and stop the processes (waiting for the running items)."""
        self._pending.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> "CasePool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def map_ordered(fn: Callable, items: Iterable, *, workers: int = 1, desc: str = "", unit: str = "case",
                progress: bool = True, leave: bool = True) -> Iterator:
    """Yield ``fn(item)`` for each item, in order, with one tqdm bar (``progress=False``: none).

    A generator: the pool (if any) lives while it is consumed and is shut down, pending work
    cancelled, when the consumer stops early or raises. At most ``workers`` processes, never more
    than items.
    """
    items = list(items)
    with CasePool(min(int(workers), max(len(items), 1))) as pool:
        yield from pool.map(fn, items, desc=desc, unit=unit, progress=progress, leave=leave)
