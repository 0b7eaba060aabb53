"""The one scheduler of DriftPolicy ticks (``controller.scheduler``): a due queue that moves a
key put again, and a task that ticks a new or changed policy at once, then when it says it next
has work, never two ticks of one policy at once, at most ``limit`` in all, and forgets deleted
policies (also one deleted while its tick ran)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from modelops.controller.scheduler import DueQueue, PolicyScheduler


def test_the_queue_gives_due_keys_earliest_first() -> None:
    queue = DueQueue()
    queue.put("b", 2.0)
    queue.put("a", 1.0)
    queue.put("c", 9.0)
    assert queue.next_time() == 1.0
    assert [queue.pop(5.0), queue.pop(5.0), queue.pop(5.0)] == ["a", "b", None]
    assert len(queue) == 1
    assert "c" in queue


def test_putting_a_key_again_moves_it_and_discarding_drops_it() -> None:
    queue = DueQueue()
    queue.put("a", 1.0)
    queue.put("a", 7.0)
    queue.put("b", 3.0)
    queue.discard("b")
    assert queue.pop(5.0) is None
    assert queue.next_time() == 7.0
    assert queue.pop(7.0) == "a"
    assert queue.next_time() is None
    assert len(queue) == 0


def body(name: str, version: str = "1") -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "uid": name, "resourceVersion": version}}


class Recorder:
    """Ticks that record (name, resourceVersion) and may be held; delays set per name."""

    def __init__(self) -> None:
        self.ticks: list[tuple[str, str]] = []
        self.forgotten: list[str] = []
        self.delays: dict[str, float | None] = {}
        self.hold = threading.Event()
        self.hold.set()
        self.running = 0
        self.most_running = 0
        self.lock = threading.Lock()
        self.fail: set[str] = set()
        self.gone: set[str] = set()

    def tick(self, body: dict[str, Any]) -> bool:
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        self.hold.wait(5)
        time.sleep(0.01)
        meta = body["metadata"]
        with self.lock:
            self.running -= 1
            self.ticks.append((meta["name"], meta["resourceVersion"]))
        if meta["name"] in self.fail:
            raise RuntimeError("boom")
        return meta["name"] not in self.gone

    def scheduler(self, pool: ThreadPoolExecutor, *, period: float = 60.0, limit: int = 8) -> Any:
        def key(b: Mapping[str, Any]) -> str:
            return str(b["metadata"]["name"])

        return PolicyScheduler(
            key=key,
            tick=self.tick,
            delay=lambda k: self.delays.get(k, 60.0),
            forget=lambda b: self.forgotten.append(b["metadata"]["name"]),
            pool=pool,
            period=period,
            limit=limit,
        )


async def until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


@pytest.fixture
def pool() -> Any:
    with ThreadPoolExecutor(8) as executor:
        yield executor


async def test_a_new_policy_is_ticked_at_once_then_when_it_has_work(pool: Any) -> None:
    recorder = Recorder()
    recorder.delays["a"] = 0.2
    scheduler = recorder.scheduler(pool)
    started = time.monotonic()
    scheduler.observe(None, body("a"))
    await until(lambda: len(recorder.ticks) >= 3)
    elapsed = time.monotonic() - started
    await scheduler.stop()
    assert recorder.ticks[:3] == [("a", "1")] * 3
    assert 0.4 <= elapsed < 2.0  # two waits of 0.2 s, not the 60 s period


async def test_a_change_is_ticked_at_once_with_the_new_body(pool: Any) -> None:
    recorder = Recorder()
    scheduler = recorder.scheduler(pool)
    scheduler.observe(None, body("a", "1"))
    await until(lambda: len(recorder.ticks) == 1)
    scheduler.observe("MODIFIED", body("a", "2"))
    await until(lambda: len(recorder.ticks) == 2)
    await scheduler.stop()
    assert recorder.ticks == [("a", "1"), ("a", "2")]


async def test_a_change_during_a_tick_is_ticked_after_it_never_alongside(pool: Any) -> None:
    recorder = Recorder()
    recorder.hold.clear()
    scheduler = recorder.scheduler(pool)
    scheduler.observe(None, body("a", "1"))
    await until(lambda: recorder.running == 1)
    scheduler.observe("MODIFIED", body("a", "2"))
    scheduler.observe("MODIFIED", body("a", "3"))
    await asyncio.sleep(0.05)
    recorder.hold.set()
    await until(lambda: len(recorder.ticks) == 2)
    await asyncio.sleep(0.05)
    await scheduler.stop()
    assert recorder.ticks == [("a", "1"), ("a", "3")]
    assert recorder.most_running == 1


async def test_at_most_limit_ticks_run_at_once(pool: Any) -> None:
    recorder = Recorder()
    recorder.hold.clear()
    scheduler = recorder.scheduler(pool, limit=2)
    for name in "abcde":
        scheduler.observe(None, body(name))
    await until(lambda: recorder.running == 2)
    await asyncio.sleep(0.05)
    assert recorder.running == 2
    recorder.hold.set()
    await until(lambda: len(recorder.ticks) == 5)
    await scheduler.stop()
    assert recorder.most_running == 2
    assert sorted(name for name, _ in recorder.ticks) == list("abcde")


@pytest.mark.parametrize(
    "failed", [True, False], ids=["a failed tick", "a policy that cannot say when"]
)
async def test_is_ticked_again_after_the_period(pool: Any, failed: bool) -> None:
    recorder = Recorder()
    if failed:
        recorder.fail.add("a")
        recorder.delays["a"] = 30.0  # not asked: a failed tick says nothing of its next work
    else:
        recorder.delays["a"] = None
    scheduler = recorder.scheduler(pool, period=0.1)
    scheduler.observe(None, body("a"))
    await until(lambda: len(recorder.ticks) >= 3)
    await scheduler.stop()


async def test_a_deleted_policy_is_forgotten_and_not_ticked_again(pool: Any) -> None:
    recorder = Recorder()
    recorder.delays["a"] = 0.05
    scheduler = recorder.scheduler(pool)
    scheduler.observe(None, body("a"))
    await until(lambda: len(recorder.ticks) == 1)
    scheduler.observe("DELETED", body("a"))
    ticks = len(recorder.ticks)
    await asyncio.sleep(0.3)
    await scheduler.stop()
    assert len(recorder.ticks) == ticks
    assert recorder.forgotten == ["a"]
    assert scheduler.policies == 0


async def test_a_policy_deleted_while_its_tick_runs_is_forgotten_after_it(pool: Any) -> None:
    recorder = Recorder()
    recorder.hold.clear()
    scheduler = recorder.scheduler(pool)
    scheduler.observe(None, body("a"))
    await until(lambda: recorder.running == 1)
    scheduler.observe("DELETED", body("a"))
    recorder.hold.set()
    await until(lambda: recorder.forgotten == ["a", "a"])  # at the event, and what the tick kept
    await scheduler.stop()
    assert recorder.ticks == [("a", "1")]


async def test_a_policy_listed_again_unchanged_keeps_its_due_time(pool: Any) -> None:
    recorder = Recorder()
    scheduler = recorder.scheduler(pool)
    scheduler.observe(None, body("a", "1"))
    await until(lambda: len(recorder.ticks) == 1)
    scheduler.observe(None, body("a", "1"))  # a restarted watch lists it again
    await asyncio.sleep(0.2)
    await scheduler.stop()
    assert recorder.ticks == [("a", "1")]


async def test_a_policy_its_tick_finds_gone_is_dropped_and_forgotten(pool: Any) -> None:
    recorder = Recorder()
    recorder.gone.add("a")
    recorder.delays["a"] = 0.05
    scheduler = recorder.scheduler(pool, period=0.05)
    scheduler.observe(None, body("a"))
    await until(lambda: recorder.forgotten == ["a"])
    await asyncio.sleep(0.2)
    await scheduler.stop()
    assert recorder.ticks == [("a", "1")]
    assert scheduler.policies == 0


async def test_a_change_while_every_slot_is_busy_is_not_pushed_back_by_the_tick_ending(
    pool: Any,
) -> None:
    recorder = Recorder()
    recorder.hold.clear()
    scheduler = recorder.scheduler(pool, limit=1)  # a's event is queued, not popped, meanwhile
    scheduler.observe(None, body("a", "1"))
    await until(lambda: recorder.running == 1)
    scheduler.observe("MODIFIED", body("a", "2"))
    recorder.hold.set()
    await until(lambda: len(recorder.ticks) == 2, timeout=2.0)  # not after the 60 s delay
    await scheduler.stop()
    assert recorder.ticks == [("a", "1"), ("a", "2")]
