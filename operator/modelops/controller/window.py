"""The evaluation window of the ``pods`` source: counter deltas between two scrapes (pure).

Each serving pod exports cumulative counters per (feature, bin). The window of an evaluation is
what they grew by since the previous evaluation:

- a pod seen before: the difference, series by series;
- a pod whose counters went down or lost series restarted (its process began again at zero), so
  all of its current values are new;
- a pod not seen before started after the previous evaluation (or became ready since), so all of
  its values are new;
- a pod that disappeared contributes nothing (its last increments are lost, like Prometheus'
  ``increase`` across a vanished series).

The previous values live in operator memory, not in status (10k numbers per policy are no status
material). After an operator restart the first evaluation of a policy therefore only records the
baseline; the next one judges a full window.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime

SeriesKey = tuple[str, str]
"""(feature name, bin index as a decimal string), the labels of modelops_feature_bin_total."""
Counters = Mapping[SeriesKey, float]
PodCounters = Mapping[str, Counters]
"""Pod identity (``name/uid``) -> its counters."""


def restarted(before: Counters, now: Counters, signed: Collection[SeriesKey] = frozenset()) -> bool:
    """Whether a pod's process restarted between two scrapes (a counter fell or vanished).
    ``signed`` series (sums that may go down, e.g. of negative targets) only count by vanishing.
    """
    return any(
        key not in now or (key not in signed and now[key] < value) for key, value in before.items()
    )


def window_delta(
    previous: PodCounters, current: PodCounters, signed: Collection[SeriesKey] = frozenset()
) -> dict[SeriesKey, float]:
    """Summed growth of every series across pods between ``previous`` and ``current``; the
    growth of a ``signed`` series may be negative, the others' only positive."""
    totals: dict[SeriesKey, float] = {}
    for pod, counters in current.items():
        before = previous.get(pod)
        fresh = before is None or restarted(before, counters, signed)
        for key, value in counters.items():
            grown = value if fresh or before is None else value - before.get(key, 0.0)
            if grown > 0 or (key in signed and grown != 0):
                totals[key] = totals.get(key, 0.0) + grown
    return totals


@dataclass
class Baseline:
    """The counters a policy saw at its previous evaluation."""

    version: str
    taken: datetime
    pods: dict[str, dict[SeriesKey, float]]


@dataclass
class WindowStore:
    """Baselines per policy (thread-safe: Kopf runs sync handlers in a thread pool)."""

    _baselines: dict[str, Baseline] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def advance(
        self,
        policy: str,
        version: str,
        now: datetime,
        current: PodCounters,
        signed: Collection[SeriesKey] = frozenset(),
    ) -> dict[SeriesKey, float] | None:
        """The window since the previous call, and ``current`` becomes the new baseline.

        None when there is no usable baseline: the first call for this policy (e.g. after an
        operator restart) or the first after the served version changed.
        """
        snapshot = {pod: dict(counters) for pod, counters in current.items()}
        with self._lock:
            previous = self._baselines.get(policy)
            self._baselines[policy] = Baseline(version, now, snapshot)
        if previous is None or previous.version != version:
            return None
        return window_delta(previous.pods, snapshot, signed)

    def baseline_time(self, policy: str) -> datetime | None:
        """When the policy's baseline was taken, if there is one."""
        with self._lock:
            found = self._baselines.get(policy)
        return found.taken if found is not None else None

    def forget(self, policy: str) -> None:
        """Drop a policy's baseline (policy deleted or source changed)."""
        with self._lock:
            self._baselines.pop(policy, None)
