"""One asyncio task that ticks every DriftPolicy when it may have work.

A Kopf daemon per policy, waking every few seconds to ask whether anything was due, cost more
than the work at 2,000 policies (a task, a timer and Kopf's daemon machinery per wake-up, thirty
wake-ups per evaluation), and every daemon needs a finalizer on its object, so a policy deleted
while the operator is down hung until it came back. Here the policies' watch events feed one
queue of due times: a new or changed policy is ticked at once; after a tick, the policy says
when it next has work (``delay``: its interval or schedule coming due, or the tick period while
it follows a Job); a deleted one is dropped. The ticks run on a thread pool, at most ``limit`` at
once, never two of one policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

logger = logging.getLogger(__name__)

Body = Mapping[str, Any]


class DueQueue:
    """Keys by due time (loop seconds), the earliest first; putting a key again moves it."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, tuple[float, int]] = {}
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: object) -> bool:
        return key in self._due

    def put(self, key: str, at: float) -> None:
        """Make ``key`` due at ``at`` (replacing its earlier due time)."""
        entry = (at, next(self._order))
        self._due[key] = entry
        heapq.heappush(self._heap, (*entry, key))

    def discard(self, key: str) -> None:
        self._due.pop(key, None)

    def pop(self, now: float) -> str | None:
        """The key due first if it is due at ``now``, removed; else None."""
        self._drop_stale()
        if not self._heap or self._heap[0][0] > now:
            return None
        _, _, key = heapq.heappop(self._heap)
        del self._due[key]
        return key

    def next_time(self) -> float | None:
        """The earliest due time, None when empty."""
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def _drop_stale(self) -> None:
        """Pop heap entries that a later ``put`` or a ``discard`` replaced."""
        heap = self._heap
        while heap and self._due.get(heap[0][2]) != heap[0][:2]:
            heapq.heappop(heap)


class PolicyScheduler:
    """Ticks the observed policies when due (see the module docstring).

    ``tick(body)`` runs on ``pool`` with a snapshot of the policy's last observed body and says
    whether the policy still exists (False: it is dropped as if deleted); ``delay(key)`` then
    gives the seconds until it next has work (None: ``period``); a tick that raised is tried
    again after ``period``. ``forget(body)`` drops what the operator keeps of a deleted policy.
    The task starts with the first observed policy, in that caller's context (Kopf keeps its
    Event queue in context variables, and each tick runs in a copy).
    """

    def __init__(
        self,
        *,
        key: Callable[[Body], str],
        tick: Callable[[dict[str, Any]], bool],
        delay: Callable[[str], float | None],
        forget: Callable[[Body], None],
        pool: Executor,
        period: float,
        limit: int,
    ) -> None:
        self._key = key
        self._tick = tick
        self._delay = delay
        self._forget = forget
        self._pool = pool
        self._period = period
        self._limit = max(1, limit)
        self._bodies: dict[str, Body] = {}
        self._queue = DueQueue()
        self._running: set[str] = set()
        self._again: set[str] = set()
        """Running keys whose policy changed meanwhile: ticked again as soon as they finish."""
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def policies(self) -> int:
        return len(self._bodies)

    def observe(self, event_type: str | None, body: Body) -> None:
        """A watch event of a policy (called in the event loop): tick a new or changed policy
        at once, drop a deleted one. A policy listed again unchanged (a watch that restarts
        lists every object) keeps its due time."""
        key = self._key(body)
        if event_type == "DELETED":
            self._drop(key, body)
            return
        version = _version(body)
        if version and key in self._bodies and _version(self._bodies[key]) == version:
            return
        self._bodies[key] = body
        loop = asyncio.get_running_loop()
        self._queue.put(key, loop.time())
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run(), name="DriftPolicy scheduler")
        self._poke()

    def _drop(self, key: str, body: Body) -> None:
        self._bodies.pop(key, None)
        self._queue.discard(key)
        self._again.discard(key)
        self._forget(body)

    async def stop(self) -> None:
        """Stop ticking (running ticks finish on their threads)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            while len(self._running) < self._limit:
                key = self._queue.pop(loop.time())
                if key is None:
                    break
                self._start(key, loop)
            due = self._queue.next_time()
            # A timer that sets the wake-up event, not ``asyncio.wait_for``: that makes a task per
            # wait and, on Python 3.11, can swallow the cancellation that ``stop`` sends.
            timer = None
            if due is not None and len(self._running) < self._limit:
                timer = loop.call_at(due, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                if timer is not None:
                    timer.cancel()

    def _start(self, key: str, loop: asyncio.AbstractEventLoop) -> None:
        body = self._bodies.get(key)
        if body is None:
            return
        if key in self._running:
            self._again.add(key)
            return
        self._running.add(key)
        run = contextvars.copy_context().run
        future = loop.run_in_executor(self._pool, run, self._tick, dict(body))
        future.add_done_callback(lambda done: self._finished(key, body, done, loop))

    def _finished(
        self, key: str, body: Body, done: asyncio.Future[bool], loop: asyncio.AbstractEventLoop
    ) -> None:
        self._running.discard(key)
        if key not in self._bodies:  # deleted while it ran: drop what the tick kept
            self._forget(body)
            self._poke()
            return
        delay: float | None = self._period
        if done.cancelled():
            pass
        elif (error := done.exception()) is not None:
            logger.warning(f"Tick of {key} failed, trying again in {self._period:g} s: {error!r}")
        elif not done.result():
            logger.info(f"{key} is gone; it is no longer ticked.")
            self._drop(key, body)
            self._poke()
            return
        else:
            try:
                delay = self._delay(key)
            except Exception:
                logger.exception(f"Could not tell when {key} is due; ticking it in {delay:g} s.")
                delay = self._period
        if key in self._again:
            self._again.discard(key)
            delay = 0.0
        if key not in self._queue:  # else an event while it ran made it due already
            self._queue.put(key, loop.time() + (self._period if delay is None else delay))
        self._poke()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()


def _version(body: Body) -> str:
    return str((body.get("metadata") or {}).get("resourceVersion") or "")
