"""The pods source's window: counter deltas across resets, restarts and new pods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelops.controller.window import WindowStore, restarted, window_delta

A = ("x", "0")
B = ("x", "1")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


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
