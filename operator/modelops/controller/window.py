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

A pod's counters are kept as a ``CounterVector``: one array of values over a ``Layout`` of series
keys that every pod serving the same profile shares, so a baseline costs 8 bytes per series (a
dict of key tuples cost ~170 bytes) and the window is array arithmetic, not a loop over series.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import numpy as np
from numpy.typing import NDArray

SeriesKey = tuple[str, str]
"""(feature name, bin index as a decimal string), the labels of modelops_feature_bin_total."""
Counters = Mapping[SeriesKey, float]
PodCounters = Mapping[str, Counters]
"""Pod identity (``name/uid``) -> its counters."""

MAX_LAYOUTS: Final = 4096
"""Distinct layouts remembered (one per profile in practice); past it the memo starts over."""


class Layout:
    """An ordered set of series keys, interned: pods with the same keys share one ``Layout``."""

    __slots__ = ("_signed", "index", "keys")

    def __init__(self, keys: tuple[SeriesKey, ...]) -> None:
        self.keys = keys
        self.index = {key: position for position, key in enumerate(keys)}
        self._signed: dict[frozenset[SeriesKey], NDArray[np.bool_]] = {}

    def signed(self, keys: Collection[SeriesKey]) -> NDArray[np.bool_]:
        """Which positions hold one of ``keys`` (memoised: the signed keys are one constant)."""
        frozen = frozenset(keys)
        mask = self._signed.get(frozen)
        if mask is None:
            mask = np.fromiter((key in frozen for key in self.keys), bool, len(self.keys))
            self._signed[frozen] = mask
        return mask


UINT32_END: Final = float(2**32)

_layouts: dict[tuple[SeriesKey, ...], Layout] = {}
_layouts_lock = threading.Lock()


def layout(keys: Sequence[SeriesKey]) -> Layout:
    """The interned layout of ``keys`` (in their order)."""
    frozen = tuple(keys)
    with _layouts_lock:
        found = _layouts.get(frozen)
        if found is None:
            if len(_layouts) >= MAX_LAYOUTS:
                _layouts.clear()
            found = _layouts[frozen] = Layout(frozen)
    return found


class CounterVector(Mapping[SeriesKey, float]):
    """One pod's counters: values over a shared ``Layout`` (reads as the mapping it stands for)."""

    __slots__ = ("array", "layout")

    def __init__(self, layout: Layout, array: NDArray[np.float64] | NDArray[np.uint32]) -> None:
        if array.shape != (len(layout.keys),):
            raise ValueError(f"{array.shape[0]} values for {len(layout.keys)} series")
        self.layout = layout
        self.array = array

    def compact(self) -> CounterVector:
        """The same counters in 4 bytes each when all are whole numbers below 2**32, as
        counts are (a baseline is kept a whole interval: half the memory); else itself."""
        values = self.array
        if values.dtype == np.uint32 or not len(values):
            return self
        low, high = float(values.min()), float(values.max())
        if low >= 0 and high < UINT32_END and bool((values == np.floor(values)).all()):
            return CounterVector(self.layout, values.astype(np.uint32))
        return self

    @classmethod
    def of(cls, counters: Counters) -> CounterVector:
        """The vector of a mapping (itself when it is one already)."""
        if isinstance(counters, CounterVector):
            return counters
        values = np.fromiter(counters.values(), np.float64, len(counters))
        return cls(layout(list(counters)), values)

    def __getitem__(self, key: SeriesKey) -> float:
        return float(self.array[self.layout.index[key]])

    def __iter__(self) -> Iterator[SeriesKey]:
        return iter(self.layout.keys)

    def __len__(self) -> int:
        return len(self.layout.keys)

    def __repr__(self) -> str:
        return f"CounterVector({dict(self)!r})"


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
    sums: dict[Layout, tuple[NDArray[np.float64], NDArray[np.bool_]]] = {}
    for pod, counters in current.items():
        now = CounterVector.of(counters)
        before = previous.get(pod)
        grown = (
            now.array.astype(np.float64, copy=False)
            if before is None
            else _growth(CounterVector.of(before), now, signed)
        )
        signed_mask = now.layout.signed(signed)
        counted = (grown > 0) | (signed_mask & (grown != 0))
        total, seen = sums.get(now.layout) or (np.zeros(len(grown)), np.zeros(len(grown), np.bool_))
        sums[now.layout] = (total + np.where(counted, grown, 0.0), seen | counted)
    totals: dict[SeriesKey, float] = {}
    for shared, (total, seen) in sums.items():
        for position in np.flatnonzero(seen).tolist():
            key = shared.keys[position]
            totals[key] = totals.get(key, 0.0) + float(total[position])
    return totals


def _growth(
    before: CounterVector, now: CounterVector, signed: Collection[SeriesKey]
) -> NDArray[np.float64]:
    """What ``now`` grew by since ``before``: all of its values when the pod restarted (a series
    fell, unless ``signed``, or vanished), else the differences (a new series counts in full).
    In float64 whatever the arrays hold (a compact baseline's uint32 would wrap below zero)."""
    values: NDArray[np.float64] = now.array.astype(np.float64, copy=False)
    if before.layout is now.layout:
        diff = values - before.array
        fell = diff < 0
        fell &= ~now.layout.signed(signed)
        return values if bool(fell.any()) else diff
    index = now.layout.index
    positions = [index.get(key, -1) for key in before.layout.keys]
    if -1 in positions:
        return values  # a series vanished
    where = np.asarray(positions, dtype=np.intp)
    fell = values[where] < before.array
    fell &= ~before.layout.signed(signed)
    if bool(fell.any()):
        return values
    earlier = np.zeros(len(values))
    earlier[where] = before.array
    return values - earlier


@dataclass
class Baseline:
    """The counters a policy saw at its previous evaluation."""

    version: str
    taken: datetime
    pods: dict[str, CounterVector]


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
        snapshot = {pod: CounterVector.of(counters) for pod, counters in current.items()}
        kept = {pod: counters.compact() for pod, counters in snapshot.items()}
        with self._lock:
            previous = self._baselines.get(policy)
            self._baselines[policy] = Baseline(version, now, kept)
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
