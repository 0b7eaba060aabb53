"""The server's bulk binning equals the drift engine's ``Profile.bin_counts``."""

from __future__ import annotations

import numpy as np
import pytest

from modelops.drift import build_profile
from modelops.serving.binning import (
    CHUNK_ROWS,
    MAX_PENDING_CHUNKS,
    BinCounter,
    NumericBulkBinner,
)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("rows", [1, 7, 64, 1000, 8193])
def test_equal_to_profile_bin_counts(seed: int, rows: int) -> None:
    rng = np.random.default_rng(seed)
    features = int(rng.integers(1, 12))
    reference = rng.normal(size=(400, features))
    reference[:, 0] = 3.0  # a constant feature: a degenerate profile with few edges
    if features > 1:
        reference[:, 1] = rng.integers(0, 3, size=400)  # few distinct values: few edges
    profile = build_profile(
        reference, [f"x{i}" for i in range(features)], bins=int(rng.integers(2, 20))
    )
    served = rng.normal(scale=2.0, size=(rows, features))
    # Values exactly on edges, and non-finite values, in random places.
    for j, feature in enumerate(profile.features):
        if feature.edges:
            hits = rng.integers(0, rows, size=max(1, rows // 4))
            served[hits, j] = rng.choice(feature.edges, size=len(hits))
    specials = rng.integers(0, rows, size=(max(1, rows // 20), 2))
    served[specials[:, 0], specials[:, 1] % features] = rng.choice(
        [np.nan, np.inf, -np.inf], size=len(specials)
    )
    expected = profile.bin_counts(served)
    np.testing.assert_array_equal(NumericBulkBinner(profile).bin_counts(served), expected)


def test_refuses_categorical_profiles() -> None:
    data = np.array([[1.0, "a"], [2.0, "b"]], dtype=object)
    profile = build_profile(data, ["x", "c"], categorical=["c"])
    with pytest.raises(ValueError, match="numeric"):
        NumericBulkBinner(profile)


@pytest.mark.parametrize("sizes", [[1] * 50, [3000, 3000, 3000], [CHUNK_ROWS, 1, CHUNK_ROWS - 1]])
def test_blocks_across_chunk_boundaries_count_like_one_matrix(sizes: list[int]) -> None:
    rng = np.random.default_rng(len(sizes))
    profile = build_profile(rng.normal(size=(300, 4)), ["a", "b", "c", "d"])
    blocks = [rng.normal(size=(n, 4)) for n in sizes]
    expected = profile.bin_counts(np.concatenate(blocks))
    np.testing.assert_array_equal(NumericBulkBinner(profile).bin_counts_of(blocks), expected)


@pytest.mark.parametrize("chunk_rows", [1, 16, 100])
def test_counter_bins_every_row_once_whatever_the_batches(chunk_rows: int) -> None:
    rng = np.random.default_rng(chunk_rows)
    profile = build_profile(rng.normal(size=(300, 3)), ["a", "b", "c"])
    counter = BinCounter(profile, chunk_rows=chunk_rows)
    batches = [rng.normal(size=(int(n), 3)) for n in rng.integers(1, 40, size=60)]
    for batch in batches[:30]:
        counter.add(batch)
        assert counter.pending_rows < chunk_rows * MAX_PENDING_CHUNKS  # bounded without help
    counter.bin_whole_chunks()
    assert counter.pending_rows < chunk_rows
    middle = counter.counts().copy()
    np.testing.assert_array_equal(middle, profile.bin_counts(np.concatenate(batches[:30])))
    for batch in batches[30:]:
        counter.add(batch.astype(np.float32))  # any float matrix is counted as float64
    np.testing.assert_array_equal(counter.counts(), profile.bin_counts(np.concatenate(batches)))


def test_counter_of_a_categorical_profile_uses_the_drift_engine() -> None:
    reference = np.array([[float(i), "ab"[i % 2]] for i in range(40)], dtype=object)
    profile = build_profile(reference, ["x", "c"], categorical=["c"])
    counter = BinCounter(profile, chunk_rows=8)
    served = [np.array([[float(i), "abz"[i % 3]]], dtype=object) for i in range(30)]
    for row in served:
        counter.add(row)
    np.testing.assert_array_equal(counter.counts(), profile.bin_counts(np.concatenate(served)))
