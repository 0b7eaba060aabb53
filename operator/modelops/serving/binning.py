"""Bulk binning of served numeric rows, exactly as ``Profile.bin_counts`` bins them, ~4x faster.

The server bins served rows in bulk (thousands at a time, see ``metrics``). For numeric-only
models it uses this path: the same bins (the drift engine's layout: bin ``k`` holds finite values
with ``k`` edges at or below them, the last bin non-finite values) counted with one vectorised
comparison in a rows-last layout and a popcount, instead of a reduction over short axes.
``tests/unit/test_serving_binning.py`` checks equality with ``Profile.bin_counts`` on values at
the edges, infinities and NaN. Anything else (categorical features, object matrices) goes to
``Profile.bin_counts`` itself.
"""

from __future__ import annotations

import math

import numpy as np

from modelops.drift import Profile

#: Rows compared per chunk (a multiple of 8: bytes are counted eight at a time). Measured with
#: numpy 2.4 on 20 features x 9 edges: ~0.07 us per row at 3072 rows and more, ~0.155 us below
#: 3072 (numpy then iterates the broadcast the slow way); absolute figures vary with the
#: machine's load (an earlier run measured 0.015 us), the 2x step at 3072 rows does not.
CHUNK_ROWS = 4096


class NumericBulkBinner:
    """Counts ``[rows, features]`` float matrices into a numeric-only profile's bins."""

    def __init__(self, profile: Profile) -> None:
        if any(feature.kind != "numeric" for feature in profile.features):
            raise ValueError("NumericBulkBinner needs a profile of numeric features only")
        self.n_features = len(profile.features)
        self.max_bins = profile.max_bins
        self.n_edges = np.array([len(f.edges) for f in profile.features], dtype=np.intp)
        self.max_edges = int(self.n_edges.max())
        edges = np.full((self.n_features, self.max_edges), np.inf)
        for row, feature in enumerate(profile.features):
            edges[row, : len(feature.edges)] = feature.edges
        # Padding edges are +inf: no finite value reaches them (non-finite values become NaN).
        self.edges = edges[:, :, None]
        self._scratch: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _buffers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reused chunk buffers: values by column, comparison flags, popcounts."""
        if self._scratch is None:
            shape = (self.n_features, self.max_edges)
            self._scratch = (
                np.empty((self.n_features, CHUNK_ROWS)),
                np.empty((*shape, CHUNK_ROWS), dtype=bool),
                np.empty((*shape, CHUNK_ROWS // 8), dtype=np.uint8),
            )
        return self._scratch

    def bin_counts(self, X: np.ndarray) -> np.ndarray:  # noqa: N803 (rows x features)
        """Counts of shape ``(n_features, max_bins)``, equal to ``Profile.bin_counts(X)``.

        Not thread-safe (it reuses its buffers): the server calls it from the event loop only.
        """
        values = np.asarray(X, dtype=np.float64)
        rows = values.shape[0]
        at_or_above = np.zeros((self.n_features, self.max_edges), dtype=np.int64)
        finite = np.zeros(self.n_features, dtype=np.int64)
        columns, flags, bit_counts = self._buffers()
        for start in range(0, rows, CHUNK_ROWS):
            block = values[start : start + CHUNK_ROWS]
            n = block.shape[0]
            width = -(-n // 8) * 8  # padded to whole 8-byte words, with NaN
            chunk = columns[:, :width]
            chunk[:, :n] = block.T
            chunk[:, n:] = np.nan
            with np.errstate(invalid="ignore", over="ignore"):
                total = float(block.sum())
            if math.isfinite(total):  # a finite sum: no NaN and no infinity among the values
                finite += n
            else:
                is_finite = np.isfinite(chunk)
                finite += np.count_nonzero(is_finite, axis=1)
                chunk[~is_finite] = np.nan  # NaN compares false with every edge
            if self.max_edges:
                ge = np.greater_equal(chunk[:, None, :], self.edges, out=flags[:, :, :width])
                at_or_above += _count_true(ge, bit_counts[:, :, : width // 8])
        counts = np.zeros((self.n_features, self.max_bins), dtype=np.int64)
        tallies = np.concatenate(
            [finite[:, None], at_or_above, np.zeros((self.n_features, 1), np.int64)], axis=1
        )
        counts[:, : self.max_edges + 1] = tallies[:, :-1] - tallies[:, 1:]
        counts[np.arange(self.n_features), self.n_edges + 1] += rows - finite
        return counts


def _count_true(flags: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Trues along the last axis (whose length is a multiple of 8); ``out`` is scratch space
    of ``uint8`` with an eighth of that length."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        # Each True is one byte 0x01: the popcount of 8-byte words counts eight at once.
        words = flags.view(np.uint64)
        return np.asarray(np.bitwise_count(words, out=out).sum(axis=-1, dtype=np.int64))
    counted: np.ndarray = np.count_nonzero(flags, axis=-1)
    return counted
