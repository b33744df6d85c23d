"""lm_zoo.parallel: ordered results whatever the worker count, one pool for several maps, sized
by every item queued when it starts, a bounded number of items computed ahead."""
from __future__ import annotations

import concurrent.futures
import math

import pytest

from lm_zoo import parallel
from lm_zoo.parallel import CasePool, map_ordered


@pytest.fixture
def executors(monkeypatch):
    """Every ProcessPoolExecutor made: [max_workers, number of submits]."""
    made = []

    class Counting(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, max_workers, *args, **kwargs):
            made.append([max_workers, 0])
            super().__init__(max_workers, *args, **kwargs)

        def submit(self, *args, **kwargs):
            made[-1][1] += 1
            return super().submit(*args, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Counting)
    return made


def test_map_ordered_gives_the_serial_results_in_order_on_at_most_one_process_per_item(executors):
    items = [9.0, 1.0, 4.0]
    assert list(map_ordered(math.sqrt, items, workers=1, progress=False)) == [3.0, 1.0, 2.0]
    assert executors == []  # one worker: this process, no pool
    assert list(map_ordered(math.sqrt, items, workers=8, progress=False)) == [3.0, 1.0, 2.0]
    assert executors == [[3, 3]]


def test_one_pool_serves_several_maps_started_once(executors):
    with CasePool(2) as pool:
        first = pool.map(math.sqrt, [1.0, 4.0, 9.0], progress=False)
        second = pool.map(math.sqrt, [16.0, 25.0], progress=False)
        assert list(first) == [1.0, 2.0, 3.0]
        assert list(second) == [4.0, 5.0]
    assert executors == [[2, 5]]


def test_the_size_rule_sees_every_item_queued_before_the_first_result():
    seen = []
    pool = CasePool(lambda n: seen.append(n) or 1)
    first = pool.map(abs, [-1, -2, -3], progress=False)
    second = pool.map(abs, [-4], progress=False)
    assert next(first) == 1 and seen == [4] and pool.workers == 1
    assert list(first) == [2, 3] and list(second) == [4] and seen == [4]


def test_an_expected_count_sizes_the_pool_when_the_first_map_is_small():
    seen = []
    pool = CasePool(lambda n: seen.append(n) or 1)
    pool.expect(100)
    assert list(pool.map(abs, [-1, -2], progress=False)) == [1, 2] and seen == [100]


def test_items_are_computed_a_bounded_window_ahead_and_an_abandoned_map_stops(executors):
    with CasePool(2) as pool:
        results = pool.map(math.sqrt, [float(i * i) for i in range(10)], progress=False)
        assert next(results) == 0.0
        assert executors[0][1] == parallel.WINDOW_PER_WORKER * 2  # not all ten
        results.close()  # the rest of this map is dropped, never submitted
        assert list(pool.map(math.sqrt, [36.0], progress=False)) == [6.0]
    assert executors[0][1] <= parallel.WINDOW_PER_WORKER * 2 + 1


def test_a_worker_error_reaches_the_consumer():
    with CasePool(2) as pool, pytest.raises(ValueError, match="math domain error"):
        list(pool.map(math.sqrt, [1.0, -1.0, 4.0], progress=False))
