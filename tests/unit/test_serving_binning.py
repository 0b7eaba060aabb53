"""The server's bulk binning equals the drift engine's ``Profile.bin_counts``."""

from __future__ import annotations

import numpy as np
import pytest

from modelops.drift import build_profile
from modelops.serving.binning import NumericBulkBinner


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
