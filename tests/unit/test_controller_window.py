"""The pods source's window: counter deltas across resets, restarts and new pods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from modelops.controller import window
from modelops.controller.window import (
    MAX_LAYOUTS,
    CounterVector,
    WindowStore,
    layout,
    restarted,
    window_delta,
)

A = ("x", "0")
B = ("x", "1")
C = ("y", "0")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fresh_layouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test interns its layouts anew. The intern table (and each layout's signed mask) is
    process state: without this a test would reuse the layouts an earlier test in the process
    built, and never run Layout or layout() itself (mutmut forks each mutant's run from a
    process that already ran the suite)."""
    monkeypatch.setattr(window, "_layouts", {})


def test_delta_of_a_steady_pod() -> None:
    assert window_delta({"p": {A: 10, B: 5}}, {"p": {A: 14, B: 5}}) == {A: 4}


def test_pods_are_summed() -> None:
    previous = {"p": {A: 1}, "q": {A: 2}}
    assert window_delta(previous, {"p": {A: 3}, "q": {A: 7}}) == {A: 7}


def test_a_counter_that_fell_means_the_pod_restarted() -> None:
    assert restarted({A: 10, B: 5}, {A: 2, B: 6})
    # All of the restarted pod's values are new, not just the fallen series.
    assert window_delta({"p": {A: 10, B: 5}}, {"p": {A: 2, B: 6}}) == {A: 2, B: 6}


def test_a_vanished_series_means_the_pod_restarted() -> None:
    assert restarted({A: 10, B: 5}, {B: 7})
    assert window_delta({"p": {A: 10, B: 5}}, {"p": {B: 7}}) == {B: 7}


def test_a_new_pod_counts_in_full_and_a_gone_pod_not_at_all() -> None:
    previous = {"old": {A: 5}, "gone": {A: 100}}
    assert window_delta(previous, {"old": {A: 6}, "new": {A: 3, B: 2}}) == {A: 4, B: 2}


def test_store_sets_a_baseline_first_then_yields_windows() -> None:
    store = WindowStore()
    assert store.advance("ns/p", "v1", T0, {"pod": {A: 10}}) is None
    assert store.baseline_time("ns/p") == T0
    later = T0 + timedelta(seconds=10)
    assert store.advance("ns/p", "v1", later, {"pod": {A: 25}}) == {A: 15}
    # A new served version starts a new baseline.
    assert store.advance("ns/p", "v2", later, {"pod": {A: 30}}) is None
    store.forget("ns/p")
    assert store.baseline_time("ns/p") is None


def vector(counters: dict[tuple[str, str], float]) -> CounterVector:
    return CounterVector.of(counters)


def test_pods_with_one_set_of_series_share_one_layout() -> None:
    p, q = vector({A: 1, B: 2}), vector({A: 5, B: 6})
    assert p.layout is q.layout is layout([A, B])
    assert layout([B, A]) is not p.layout  # the order is part of it
    assert CounterVector.of(p) is p
    assert p == {A: 1.0, B: 2.0}
    assert p[B] == 2.0
    assert list(p) == [A, B]
    assert len(p) == 2
    with pytest.raises(ValueError, match="1 values for 2 series"):
        CounterVector(p.layout, np.zeros(1))


def test_the_window_of_vectors_is_the_window_of_their_mappings() -> None:
    signed = frozenset({B})
    before = {"p": {A: 10.0, B: 5.0}, "q": {A: 1.0}, "r": {A: 3.0, B: 1.0}}
    after = {
        "p": {A: 12.0, B: 2.0},  # B is signed: fell without a restart
        "q": {B: 4.0, A: 2.0},  # another layout, and a new series counted in full
        "r": {B: 1.0},  # A vanished: restarted
        "s": {A: 7.0},  # new pod
    }
    expected = {A: 2.0 + 1.0 + 7.0, B: -3.0 + 4.0 + 1.0}
    as_vectors = {pod: vector(counters) for pod, counters in after.items()}
    assert window_delta(before, after, signed) == expected
    assert window_delta({k: vector(v) for k, v in before.items()}, as_vectors, signed) == expected


def test_a_fall_in_another_layout_is_a_restart_unless_signed() -> None:
    assert window_delta({"p": {A: 10.0, B: 5.0}}, {"p": vector({B: 6.0, A: 4.0})}) == {
        A: 4.0,
        B: 6.0,
    }
    assert window_delta(
        {"p": {A: 10.0, B: 5.0}}, {"p": vector({B: 3.0, A: 14.0})}, frozenset({B})
    ) == {A: 4.0, B: -2.0}


def test_the_store_keeps_vectors_not_the_mappings_it_was_given() -> None:
    store = WindowStore()
    given = {A: 10.0}
    store.advance("ns/p", "v1", T0, {"pod": given})
    given[A] = 1000.0  # the caller's dict changing later changes nothing
    assert store.advance("ns/p", "v1", T0, {"pod": {A: 25.0}}) == {A: 15.0}


def test_a_layout_indexes_its_keys_and_masks_the_signed_ones() -> None:
    shared = layout([A, B, C])
    assert shared.keys == (A, B, C)
    assert shared.index == {A: 0, B: 1, C: 2}
    for _ in range(2):  # the first call computes the mask, the second may reuse it
        mask = shared.signed({B, ("z", "9")})
        assert mask.dtype == np.bool_
        assert mask.tolist() == [False, True, False]
    assert shared.signed(frozenset()).tolist() == [False, False, False]
    assert shared.signed([A, C]).tolist() == [True, False, True]


def test_the_intern_table_starts_over_past_max_layouts() -> None:
    first = layout([A])
    for n in range(1, MAX_LAYOUTS):
        layout([("f", str(n))])
    assert layout([A]) is first  # the table is full, not past it
    layout([("f", str(MAX_LAYOUTS))])  # one more: the memo starts over
    again = layout([A])
    assert again is not first
    assert again.keys == (A,)


def test_a_series_vanished_from_another_layout_is_a_restart_even_if_nothing_fell() -> None:
    # B grew and A vanished: a restart, so B's 7 counts in full (not 7 - 5).
    assert restarted({A: 1.0, B: 5.0}, {B: 7.0})
    assert window_delta({"p": {A: 1.0, B: 5.0}}, {"p": {B: 7.0}}) == {B: 7.0}
    assert window_delta({"p": {A: 1.0, B: 5.0}}, {"p": {C: 2.0, B: 7.0}}) == {B: 7.0, C: 2.0}


def test_a_pod_that_had_no_series_yet_counts_in_full() -> None:
    assert window_delta({"p": {}}, {"p": {A: 3.0, B: 0.0}}) == {A: 3.0}
    store = WindowStore()
    store.advance("ns/p", "v1", T0, {"pod": {}})
    assert store.advance("ns/p", "v1", T0, {"pod": {B: 2.0}}) == {B: 2.0}


def test_a_vector_shows_its_series_in_its_repr() -> None:
    assert repr(vector({A: 1.0, B: 2.5})) == "CounterVector({('x', '0'): 1.0, ('x', '1'): 2.5})"
    assert repr(vector({})) == "CounterVector({})"


def test_whole_counts_below_2_to_the_32_are_kept_in_4_bytes() -> None:
    counts = vector({A: 0.0, B: 4294967295.0, C: 7.0}).compact()
    assert counts.array.dtype == np.uint32
    assert counts == {A: 0.0, B: 4294967295.0, C: 7.0}
    assert counts.compact() is counts
    for values in (
        {A: 1.5, B: 2.0},  # a sum of targets, not a count
        {A: -1.0, B: 2.0},
        {A: 4294967296.0, B: 2.0},
        {A: float("nan"), B: 2.0},
    ):
        kept = vector(values).compact()
        assert kept.array.dtype == np.float64, values
    empty = CounterVector(layout([]), np.zeros(0))
    assert empty.compact() is empty


def test_a_compact_baseline_gives_the_windows_of_a_float_one() -> None:
    """Kept as uint32, a fall below the baseline still means a restart (never a wrap to 2**32)
    and growth past 2**32 is exact."""
    store = WindowStore()
    store.advance("ns/p", "v1", T0, {"p": {A: 10.0, B: 4294967290.0}, "q": {A: 5.0, B: 1.0}})
    kept = store._baselines["ns/p"].pods
    assert {pod: counters.array.dtype for pod, counters in kept.items()} == {
        "p": np.uint32,
        "q": np.uint32,
    }
    window = store.advance(
        "ns/p",
        "v1",
        T0,
        {
            "p": {A: 12.0, B: 4294967300.0},  # grew by 2 and 10, past 2**32
            "q": {A: 3.0, B: 2.0},  # A fell: q restarted, all of its values count
        },
    )
    assert window == {A: 2.0 + 3.0, B: 10.0 + 2.0}
    assert store.advance("ns/p", "v1", T0, {"p": {B: 4294967301.0, A: 13.0}}) == {A: 1.0, B: 1.0}
