"""Fan-out on the shared pool: results in order, never more than the caller's bound at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from modelops.controller.fanout import bounded_map


def test_results_come_in_order_with_at_most_limit_in_flight() -> None:
    limit = 3
    lock = threading.Lock()
    full = threading.Event()  # the first `limit` calls wait until they all run at once
    active, peak = 0, 0

    def call(item: int) -> int:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
            if active == limit:
                full.set()
        full.wait(30)
        with lock:
            active -= 1
        return item * item

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert bounded_map(pool, call, list(range(10)), limit) == [i * i for i in range(10)]
    assert peak == limit


def test_no_items_and_a_bound_below_one() -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        assert bounded_map(pool, str, [], 4) == []
        assert bounded_map(pool, str, [1, 2, 3], 0) == ["1", "2", "3"]
