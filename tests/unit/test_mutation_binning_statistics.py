"""drift/binning.py's large-batch path against a naive count (several numeric features with
different edge counts next to a categorical one, features without edges, windows past 65,536
rows, many features), the edge cases of drift/statistics.py and drift/evaluate.py's Wasserstein, and
training/evaluate.py's optional metrics (mutation-tested). Expected values are counted naively
or computed by scipy, never by the code under test."""

from __future__ import annotations

import math
import tracemalloc
from typing import Any

import numpy as np
import pytest
import scipy.stats
from profile_support import categorical, numeric

from modelops.drift import compute_drift
from modelops.drift.binning import SMALL_BATCH_ROWS, Binner
from modelops.drift.profile import FeatureProfile, Profile
from modelops.drift.statistics import chi_square, cramers_v
from modelops.training.evaluate import classification_metrics, score, split_holdout


def naive_counts(features: list[FeatureProfile], rows: list[list[Any]]) -> np.ndarray:
    width = max(f.n_bins for f in features)
    counts = np.zeros((len(features), width), dtype=np.int64)
    for row in rows:
        for j, (feature, value) in enumerate(zip(features, row, strict=True)):
            if feature.kind == "numeric":
                number = float(value)
                if not math.isfinite(number):
                    index = feature.missing_bin
                else:
                    index = sum(1 for edge in feature.edges if number >= edge)
            elif value is None:
                index = feature.missing_bin
            elif str(value) in feature.categories:
                index = feature.categories.index(str(value))
            else:
                index = len(feature.categories)  # unseen
            counts[j, index] += 1
    return counts


def test_the_large_batch_path_counts_mixed_features_like_a_naive_loop() -> None:
    features = [
        numeric("a", (0.0,)),
        categorical("c", ("red", "green", "blue", "cyan", "pink")),
        numeric("b", (-1.0, 0.0, 1.0, 2.0)),
    ]
    rng = np.random.default_rng(7)
    rows: list[list[Any]] = []
    for i in range(3 * SMALL_BATCH_ROWS):
        a = [float(rng.normal()), math.nan, math.inf, -math.inf][i % 7 % 4]
        b = float(rng.normal(0.5, 1.5)) if i % 11 else math.nan
        c = ["red", "green", "blue", "cyan", "pink", "mauve", None][i % 7]
        rows.append([a, c, b])
    binner = Binner(features)
    assert binner.bin_counts(np.array(rows, dtype=object)).tolist() == (
        naive_counts(features, rows).tolist()
    )


def test_numeric_codes_for_a_categorical_feature_in_a_large_numeric_batch() -> None:
    features = [numeric("a", (0.0, 1.0)), categorical("c", ("1", "2", "3"))]
    rows = [[float(i % 3) - 0.5, float(i % 4)] for i in range(SMALL_BATCH_ROWS + 6)]
    counts = Binner(features).bin_counts(np.array(rows, dtype=np.float64))
    expected = naive_counts(features, [[a, str(int(c))] for a, c in rows])
    assert counts.tolist() == expected.tolist()


def test_numeric_features_without_edges_in_a_large_batch() -> None:
    features = [numeric("a", ()), numeric("b", ())]
    rows = [[float(i), math.nan if i % 5 == 0 else 1.0] for i in range(SMALL_BATCH_ROWS + 1)]
    counts = Binner(features).bin_counts(np.array(rows))
    assert counts.tolist() == naive_counts(features, rows).tolist()
    assert counts.tolist() == [[65, 0], [52, 13]]


def test_a_chunk_of_65536_rows_does_not_overflow_the_tallies() -> None:
    features = [numeric("a", (0.0,))]
    counts = Binner(features).bin_counts(np.ones((70_000, 1)))
    assert counts.tolist() == [[0, 70_000, 0]]


def test_many_numeric_features_in_a_large_batch() -> None:
    features = [numeric(f"f{i}", (0.5,)) for i in range(40)]
    values = np.tile(np.array([[0.0], [1.0], [np.nan]]), (40, 40))[:120]
    counts = Binner(features).bin_counts(values)
    assert counts.tolist() == [[40, 40, 40]] * 40


def test_a_float64_window_is_counted_without_a_copy_of_it() -> None:
    # The module's promise: memory stays at a few MB whatever the window size. A 400,000 x 2
    # float64 window is 6.4 MB; its counts take a few blocks of flags (under a quarter of it).
    features = [numeric("a", (-1.0, 0.0, 1.0)), numeric("b", (0.0,))]
    pattern = [[-2.0, 1.0], [0.5, -1.0], [math.nan, 3.0], [1.5, math.inf]]
    window = np.tile(np.array(pattern), (100_000, 1))
    binner = Binner(features)
    binner.bin_counts(window[:3])  # first-call allocations out of the measurement
    tracemalloc.start()
    try:
        counts = binner.bin_counts(window)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert counts.tolist() == [
        [100_000, 0, 100_000, 100_000, 100_000],
        [100_000, 200_000, 100_000, 0, 0],
    ]
    assert peak < window.nbytes // 4


def test_a_single_row_is_counted_with_no_buffer_beside_its_result() -> None:
    # The per-request path (one row, every feature numeric): no extra buffer. Its result is
    # 1000 x 12 int64 (96 kB); the per-value scratch of one row is a small fraction of that.
    features = [numeric(f"f{i}", tuple(float(edge) for edge in range(10))) for i in range(1000)]
    row = np.full(1000, 4.5)  # at or above edges 0..4: bin 5
    row[0] = math.nan
    binner = Binner(features)
    binner.bin_counts(row)  # first-call allocations out of the measurement
    tracemalloc.start()
    try:
        counts = binner.bin_counts(row)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert counts.shape == (1000, 12)
    assert counts[0].tolist() == [0] * 11 + [1]
    assert counts[1:, 5].tolist() == [1] * 999
    assert int(counts.sum()) == 1000
    assert peak < 1.5 * 96_000


def test_a_categorical_value_of_no_known_type_is_its_str() -> None:
    # category_key: "anything else is str(value)", unhashable values (a JSON list) included.
    features = [categorical("c", ("[1, 2]", "{'k': 3}"))]
    batch = np.empty((4, 1), dtype=object)
    for row, value in enumerate(([1, 2], {"k": 3}, [1, 2], [3])):
        batch[row, 0] = value
    assert Binner(features).bin_counts(batch).tolist() == [[2, 1, 1, 0]]


def test_wasserstein_of_one_finite_row_and_of_none() -> None:
    profile = Profile(features=(numeric("x", (0.0,)),), rows=100)
    one = compute_drift(profile, [[0, 1, 0]], metrics={"wasserstein": 0.2})
    # Reference: half at center 0, half at center 1; the window: all at 1 -> W1 = 0.5 (std 1).
    assert one.features[0].scores == {"wasserstein": pytest.approx(0.5)}
    none = compute_drift(profile, [[0, 0, 5]], metrics={"wasserstein": 0.2, "psi": 0.1})
    assert set(none.features[0].scores) == {"psi"}


def test_an_unseen_bin_with_a_single_row_expects_the_floor_share() -> None:
    reference = np.array([[0.5, 0.5, 0.0]])
    counts = np.array([[10.0, 10.0, 1.0]])
    statistic, dof = chi_square(reference, counts, np.ones((1, 3), dtype=bool))
    floor = 1e-4  # the documented floor share of a bin without reference mass
    expected = 21 * np.array([0.5, 0.5, floor]) / (1 + floor)
    assert statistic[0] == pytest.approx(scipy.stats.chisquare(counts[0], expected).statistic)
    assert dof.tolist() == [1.0]


def test_cramers_v_of_a_single_row() -> None:
    assert cramers_v(np.array([2.0]), np.array([1.0]), np.array([1.0])).tolist() == [
        pytest.approx(math.sqrt(2.0))
    ]
    assert cramers_v(np.array([2.0]), np.array([0.0]), np.array([1.0])).tolist() == [0.0]


class NoProbabilities:
    """A classifier with classes but no predict_proba (like LinearSVC)."""

    classes_ = np.array([0, 1])

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (x[:, 0] > 0).astype(int)


class NoClasses:
    """A model that predicts labels and has predict_proba, but no classes_."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (x[:, 0] > 0).astype(int)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        raise AssertionError("not to be asked without classes_")


def test_classifiers_without_probabilities_or_classes_get_the_label_metrics_only() -> None:
    x = np.array([[-1.0], [1.0], [2.0], [-2.0]])
    y = np.array([0, 1, 1, 1])
    for model in (NoProbabilities(), NoClasses()):
        assert score(model, x, y, "classification") == {
            "accuracy": 0.75,
            "f1": pytest.approx((2 / 3 + 0.8) / 2),  # class 0: p 1/2, r 1; class 1: p 1, r 2/3
        }


def test_probability_metrics_need_probabilities_and_two_classes() -> None:
    y = np.array([0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    assert set(classification_metrics(y, y, None, np.array([0, 1]))) == {"accuracy", "f1"}
    assert set(classification_metrics(y, y, proba, None)) == {"accuracy", "f1"}
    assert set(classification_metrics(y, y, proba[:, :1], np.array([0]))) == {"accuracy", "f1"}
    assert set(classification_metrics(y, y, proba, np.array([0, 1]))) == {
        "accuracy",
        "f1",
        "roc_auc",
        "log_loss",
    }


def test_the_holdout_size_is_the_one_asked_for() -> None:
    x = np.arange(40, dtype=float).reshape(20, 2)
    y = np.array([0, 1] * 10)
    half = split_holdout(x, y, "classification", test_size=0.5, seed=3)
    assert (len(half.y_train), len(half.y_test)) == (10, 10)
    default = split_holdout(x, y, "classification", seed=3)
    assert (len(default.y_train), len(default.y_test)) == (15, 5)
