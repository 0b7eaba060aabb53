"""drift/binning.py's large-batch path: blocks of rows, groups of features and threads give the
counts of a plain per-feature ``np.searchsorted`` count, to the value, on the edge cases (NaN,
+-inf, values equal to edges, the extreme doubles, features without edges, categorical columns,
ragged last blocks, more features than one group, tiny windows). Block sizes are shrunk with
monkeypatch so every boundary is crossed on small inputs; no timing is asserted."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from profile_support import categorical, numeric

from modelops.drift import binning
from modelops.drift.binning import SMALL_BATCH_ROWS, Binner
from modelops.drift.profile import FeatureProfile

BIG = float(np.finfo(np.float64).max)
SPECIAL = [math.nan, math.inf, -math.inf, -0.0, 0.0, BIG, -BIG, 5e-324, -5e-324]


def reference_counts(features: list[FeatureProfile], data: np.ndarray) -> np.ndarray:
    """Per feature: ``searchsorted`` of the finite values, the rest missing; categories by
    their text (None missing, unknown text unseen)."""
    counts = np.zeros((len(features), max(f.n_bins for f in features)), dtype=np.int64)
    for column, feature in enumerate(features):
        if feature.kind == "categorical":
            for value in data[:, column]:
                if value is None:
                    counts[column, feature.missing_bin] += 1
                elif str(value) in feature.categories:
                    counts[column, feature.categories.index(str(value))] += 1
                else:
                    counts[column, len(feature.categories)] += 1
            continue
        values = data[:, column].astype(np.float64)
        finite = values[np.isfinite(values)]
        bins = np.searchsorted(np.array(feature.edges), finite, side="right")
        counts[column, : len(feature.edges) + 1] = np.bincount(
            bins, minlength=len(feature.edges) + 1
        )
        counts[column, feature.missing_bin] = values.size - finite.size
    return counts


def numeric_window(features: list[FeatureProfile], rows: int, seed: int) -> np.ndarray:
    """Normal values, every edge itself, its neighbours either side, and the special values."""
    rng = np.random.default_rng(seed)
    window = rng.normal(0, 2, size=(rows, len(features)))
    for column, feature in enumerate(features):
        edges = np.array(feature.edges)
        with np.errstate(over="ignore"):  # the neighbours of +-DBL_MAX are +-inf
            neighbours = [np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)]
        picks = np.concatenate([edges, *neighbours, SPECIAL])
        chosen = rng.random(rows) < 0.5
        window[chosen, column] = rng.choice(picks, size=int(chosen.sum()))
    return window


FEATURES = [
    numeric("one_edge", (0.0,)),
    numeric("four_edges", (-1.0, 0.0, 0.5, 2.0)),
    numeric("no_edges", ()),
    numeric("nine_edges", tuple(float(edge) for edge in np.linspace(-3, 3, 9))),
    numeric("extreme_edges", (-BIG, 0.0, BIG)),
]


@pytest.fixture
def tiny_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of at most 7 rows, groups of two features (11 bounds), threads for any window."""
    monkeypatch.setattr(binning, "_BLOCK_ROWS", 7)
    monkeypatch.setattr(binning, "_BLOCK_FLAGS", 2 * 11 * 7)
    monkeypatch.setattr(binning, "_PARALLEL_MIN_FLAGS", 0)


@pytest.mark.usefixtures("tiny_blocks")
@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("rows", [SMALL_BATCH_ROWS + 1, 100, 701])
def test_blocks_groups_and_threads_count_like_searchsorted(workers: int, rows: int) -> None:
    window = numeric_window(FEATURES, rows, seed=rows)
    counts = Binner(FEATURES, workers=workers).bin_counts(window)
    assert counts.dtype == np.int64
    assert counts.tolist() == reference_counts(FEATURES, window).tolist()


@pytest.mark.usefixtures("tiny_blocks")
@pytest.mark.parametrize("workers", [1, 2])
def test_blocks_and_threads_with_categorical_columns(workers: int) -> None:
    features = [
        FEATURES[1],
        categorical("colour", ("red", "green")),
        FEATURES[3],
        FEATURES[4],
    ]
    rows = 300
    numbers = numeric_window([FEATURES[1], FEATURES[3], FEATURES[4]], rows, seed=3)
    window = np.empty((rows, 4), dtype=object)
    window[:, [0, 2, 3]] = numbers
    window[:, 1] = [["red", "green", "mauve", None][i % 4] for i in range(rows)]
    counts = Binner(features, workers=workers).bin_counts(window)
    assert counts.tolist() == reference_counts(features, window).tolist()


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_default_blocks_and_two_threads_equal_one_thread(
    monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    # Several 4096-row blocks, a ragged last one, and the window split between two threads.
    monkeypatch.setattr(binning, "_PARALLEL_MIN_FLAGS", 0)
    window = numeric_window(FEATURES, 3 * binning._BLOCK_ROWS + 1001, seed=11)
    if layout == "F":
        window = np.asfortranarray(window)
    elif layout == "strided":
        window = np.repeat(window, 2, axis=1)[:, ::2]
    serial = Binner(FEATURES, workers=1).bin_counts(window)
    threaded = Binner(FEATURES, workers=2).bin_counts(window)
    assert serial.tolist() == threaded.tolist()
    assert serial.tolist() == reference_counts(FEATURES, window).tolist()


def test_more_features_than_one_group_of_flags() -> None:
    # 12 features of 400 edges need 12 x 402 flags per row: several feature groups per block.
    edges = tuple(float(edge) for edge in np.linspace(-4, 4, 400))
    features = [numeric(f"f{i}", edges[i % 3 :]) for i in range(12)]
    window = numeric_window(features, 5000, seed=5)
    block_rows = binning._BLOCK_ROWS
    assert binning._BLOCK_FLAGS // (402 * block_rows) < len(features)
    counts = Binner(features, workers=2).bin_counts(window)
    assert counts.tolist() == reference_counts(features, window).tolist()


class RecordingPool(ThreadPoolExecutor):
    sizes: list[int] = []

    def __init__(self, max_workers: int, **kwargs: Any) -> None:
        RecordingPool.sizes.append(max_workers)
        super().__init__(max_workers, **kwargs)


def test_small_windows_stay_on_the_calling_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binning, "ThreadPoolExecutor", RecordingPool)
    monkeypatch.setattr(RecordingPool, "sizes", [])
    binner = Binner(FEATURES, workers=4)
    binner.bin_counts(numeric_window(FEATURES, SMALL_BATCH_ROWS + 1, seed=1))
    binner.bin_counts(numeric_window(FEATURES, 2 * binning._BLOCK_ROWS, seed=2))
    assert RecordingPool.sizes == []  # too few comparisons to pay for threads
    monkeypatch.setattr(binning, "_PARALLEL_MIN_FLAGS", 0)
    binner.bin_counts(numeric_window(FEATURES, binning._BLOCK_ROWS - 1, seed=3))
    assert RecordingPool.sizes == []  # not one block per thread
    binner.bin_counts(numeric_window(FEATURES, 3 * binning._BLOCK_ROWS, seed=4))
    assert RecordingPool.sizes == [3]  # one block each, at most ``workers``


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        Binner(FEATURES, workers=0)


@pytest.mark.parametrize("rows", [10, SMALL_BATCH_ROWS + 36])
def test_a_float_batch_with_a_categorical_column_before_the_numeric_ones(rows: int) -> None:
    # Codes of a categorical feature in a float batch: only the numeric columns are binned
    # against the edges, whatever their position (both paths).
    features = [categorical("code", ("1", "2")), FEATURES[1], FEATURES[3]]
    window = np.empty((rows, 3))
    window[:, 1:] = numeric_window([FEATURES[1], FEATURES[3]], rows, seed=rows)
    window[:, 0] = [[1.0, 2.0, 3.0, math.nan][i % 4] for i in range(rows)]
    as_text = window.astype(object)
    as_text[:, 0] = [{1.0: "1", 2.0: "2", 3.0: "3"}.get(value) for value in window[:, 0]]
    counts = Binner(features).bin_counts(window)
    assert counts.tolist() == reference_counts(features, as_text).tolist()
    assert counts[0].tolist()[:4] == [(rows + 3) // 4, (rows + 2) // 4, (rows + 1) // 4, rows // 4]


def test_a_flag_budget_below_one_feature_of_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    # A profile so wide that one feature's flags of a block exceed _BLOCK_FLAGS: one feature at
    # a time (7 flags here, against 11 bounds x 7 rows).
    monkeypatch.setattr(binning, "_BLOCK_ROWS", 7)
    monkeypatch.setattr(binning, "_BLOCK_FLAGS", 7)
    window = numeric_window(FEATURES, 100, seed=8)
    counts = Binner(FEATURES, workers=1).bin_counts(window)
    assert counts.tolist() == reference_counts(FEATURES, window).tolist()


def test_threads_from_exactly_the_parallel_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    # "Windows needing fewer comparisons than _PARALLEL_MIN_FLAGS stay on the calling thread":
    # one of exactly that many (rows x bounds) is split, one a block shorter is not.
    monkeypatch.setattr(binning, "ThreadPoolExecutor", RecordingPool)
    monkeypatch.setattr(RecordingPool, "sizes", [])
    binner = Binner(FEATURES, workers=4)
    rows = 3 * binning._BLOCK_ROWS
    monkeypatch.setattr(binning, "_PARALLEL_MIN_FLAGS", rows * binner.bounds.size)
    window = numeric_window(FEATURES, rows, seed=6)
    assert (
        binner.bin_counts(window[:-1]).tolist() == reference_counts(FEATURES, window[:-1]).tolist()
    )
    assert RecordingPool.sizes == []
    assert binner.bin_counts(window).tolist() == reference_counts(FEATURES, window).tolist()
    assert RecordingPool.sizes == [3]


@pytest.mark.parametrize(("cpus", "threads"), [(None, []), (1, []), (3, [3]), (64, [4])])
def test_the_default_thread_limit_follows_the_cpu_count(
    monkeypatch: pytest.MonkeyPatch, cpus: int | None, threads: list[int]
) -> None:
    # workers=None: the CPU count, at most _MAX_WORKERS (4); one thread when os.cpu_count() does
    # not know. A window of 40 blocks of the real size, past the real parallel threshold.
    monkeypatch.setattr(binning, "ThreadPoolExecutor", RecordingPool)
    monkeypatch.setattr(RecordingPool, "sizes", [])
    monkeypatch.setattr(binning.os, "cpu_count", lambda: cpus)
    binner = Binner(FEATURES)
    window = numeric_window(FEATURES, 40 * binning._BLOCK_ROWS, seed=9)
    assert window.shape[0] * binner.bounds.size >= binning._PARALLEL_MIN_FLAGS
    assert binner.bin_counts(window).tolist() == reference_counts(FEATURES, window).tolist()
    assert RecordingPool.sizes == threads
