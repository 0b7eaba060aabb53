"""Counting a batch of rows into a profile's bins, vectorised across rows and features.

The model server calls this on every request (often a single row), and the offline report and
the benchmark on windows of 100,000 rows, so there are two numerically identical paths:

- small batches: one broadcast comparison of the values against a padded edge matrix gives each
  value's bin; one ``np.bincount`` over ``bin + feature * max_bins`` counts everything;
- large batches: rows are taken in chunks and, per chunk, ``count_nonzero(values >= edge)`` is
  computed for every (feature, edge) at once; bin counts are differences of those tallies. Memory
  stays at a few MB whatever the window size, and no per-value bin index is materialised.

Categorical columns map through a dict (one Python lookup per value).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from modelops.drift.profile import FeatureProfile

#: Batches up to this many rows take the broadcast path; larger ones the chunked tallies.
SMALL_BATCH_ROWS = 64
#: Target number of comparisons per chunk of the large-batch path (about 2 MB of booleans).
_CHUNK_ELEMENTS = 1 << 21


def category_key(value: Any) -> str | None:
    """The category a raw value stands for, or None when it is missing.

    Strings are kept as they are (the empty string is missing); integers and integral floats
    become their decimal form (so ``3``, ``3.0`` and ``"3"`` are one category); NaN, inf and None
    are missing; anything else is ``str(value)``.
    """
    if isinstance(value, str):
        return value or None
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace") or None
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if not math.isfinite(number):
            return None
        return str(int(number)) if number.is_integer() else repr(number)
    return str(value)


def numeric_column(column: NDArray[Any]) -> NDArray[np.float64]:
    """A column as float64; None becomes NaN. ValueError names the first non-numeric value."""
    if column.dtype.kind in "fiub":
        return column.astype(np.float64, copy=False)
    try:
        return np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError):
        pass
    converted = np.empty(column.shape[0], dtype=np.float64)
    for row, value in enumerate(column.tolist()):
        if value is None or (isinstance(value, str) and value.strip() == ""):
            converted[row] = np.nan
            continue
        try:
            converted[row] = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"row {row}: {value!r} is not a number") from None
    return converted


class Binner:
    """The bin layout of a profile compiled into padded arrays for fast counting."""

    def __init__(self, features: Sequence[FeatureProfile]) -> None:
        self.n_features = len(features)
        self.max_bins = max(feature.n_bins for feature in features)
        self.numeric_columns = np.array(
            [i for i, f in enumerate(features) if f.kind == "numeric"], dtype=np.intp
        )
        self.all_numeric = self.numeric_columns.size == self.n_features
        numeric = [features[i] for i in self.numeric_columns]
        max_edges = max((len(f.edges) for f in numeric), default=0)
        # Padding with +inf: a finite value is never >= +inf, so padded edges add nothing.
        self.edges = np.full((len(numeric), max_edges), np.inf)
        for row, feature in enumerate(numeric):
            self.edges[row, : len(feature.edges)] = feature.edges
        self.edges_by_edge = np.ascontiguousarray(self.edges.T)
        self.n_edges = np.array([len(f.edges) for f in numeric], dtype=np.intp)
        self.numeric_offsets = self.numeric_columns * self.max_bins
        self.numeric_missing_flat = self.numeric_offsets + self.n_edges + 1
        self.categorical: list[tuple[int, dict[str, int], int, int]] = [
            (
                column,
                {category: index for index, category in enumerate(feature.categories)},
                len(feature.categories),
                len(feature.categories) + 1,
            )
            for column, feature in enumerate(features)
            if feature.kind == "categorical"
        ]

    def bin_counts(self, X: Any) -> NDArray[np.int64]:  # noqa: N803 (rows x features)
        """Counts of shape ``(n_features, max_bins)``; see ``Profile.bin_counts``."""
        data = np.asarray(X)
        if data.ndim == 1:
            data = data.reshape(1, -1)
        if data.ndim != 2 or data.shape[1] != self.n_features:
            raise ValueError(
                f"expected rows x {self.n_features} features, got an array of shape {data.shape}"
            )
        rows = data.shape[0]
        if 0 < rows <= SMALL_BATCH_ROWS and self.all_numeric:
            # The model server's per-request path: no Python loop, no extra buffer.
            small: NDArray[np.int64] = self._small_batch_counts(self._numeric_values(data))
            return small.reshape(self.n_features, self.max_bins)
        flat = np.zeros(self.n_features * self.max_bins, dtype=np.int64)
        counts = flat.reshape(self.n_features, self.max_bins)
        if rows == 0:
            return counts
        if self.numeric_columns.size:
            values = self._numeric_values(data)
            if rows <= SMALL_BATCH_ROWS:
                flat += self._small_batch_counts(values)
            else:
                self._add_large_batch_counts(values, counts)
        for column, lookup, unseen, missing in self.categorical:
            indices = _category_indices(data[:, column], lookup, unseen, missing)
            counts[column] += np.bincount(indices, minlength=self.max_bins)
        return counts

    def _numeric_values(self, data: NDArray[Any]) -> NDArray[np.float64]:
        if data.dtype.kind in "fiub":
            values = data.astype(np.float64, copy=False)
            return values if self.all_numeric else values[:, self.numeric_columns]
        columns = []
        for column in self.numeric_columns:
            try:
                columns.append(numeric_column(data[:, column]))
            except ValueError as error:
                raise ValueError(f"column {column}: {error}") from None
        return np.stack(columns, axis=1)

    def _small_batch_counts(self, values: NDArray[np.float64]) -> NDArray[np.int64]:
        bins = (values[:, :, None] >= self.edges).sum(axis=2)
        flat_index = np.where(
            np.isfinite(values), bins + self.numeric_offsets, self.numeric_missing_flat
        )
        return np.bincount(flat_index.ravel(), minlength=self.n_features * self.max_bins)

    def _add_large_batch_counts(
        self, values: NDArray[np.float64], counts: NDArray[np.int64]
    ) -> None:
        n_numeric, max_edges = self.edges.shape
        rows = values.shape[0]
        at_or_above = np.zeros((max_edges, n_numeric), dtype=np.int64)
        finite = np.zeros(n_numeric, dtype=np.int64)
        positive_infinite = np.zeros(n_numeric, dtype=np.int64)
        # Chunks stay under 65,536 rows so per-chunk tallies fit the cheap uint16 accumulator.
        chunk = max(1, min(_CHUNK_ELEMENTS // max(1, n_numeric * max_edges), 65_535))
        above = np.empty((min(chunk, rows), max_edges, n_numeric), dtype=np.bool_)
        for start in range(0, rows, chunk):
            block = values[start : start + chunk]
            flags = above[: block.shape[0]]
            np.greater_equal(block[:, None, :], self.edges_by_edge, out=flags)
            at_or_above += np.add.reduce(flags.view(np.uint8), axis=0, dtype=np.uint16)
            finite += np.add.reduce(np.isfinite(block).view(np.uint8), axis=0, dtype=np.uint16)
            positive_infinite += np.count_nonzero(block == np.inf, axis=0)
        # +inf is >= every edge but belongs to the missing bin; NaN and -inf are >= none.
        at_or_above -= positive_infinite
        numeric_counts = np.zeros((n_numeric, max_edges + 2), dtype=np.int64)
        numeric_counts[:, 0] = finite - at_or_above[0] if max_edges else finite
        if max_edges:
            numeric_counts[:, 1:max_edges] = (at_or_above[:-1] - at_or_above[1:]).T
            numeric_counts[:, max_edges] = at_or_above[-1]
        rows_index = np.arange(n_numeric)
        numeric_counts[rows_index, self.n_edges + 1] += rows - finite
        width = min(self.max_bins, max_edges + 2)
        counts[self.numeric_columns, :width] += numeric_counts[:, :width]


def _category_indices(
    column: NDArray[Any], lookup: dict[str, int], unseen: int, missing: int
) -> NDArray[np.intp]:
    indices = np.empty(column.shape[0], dtype=np.intp)
    for row, value in enumerate(column.tolist()):
        index = lookup.get(value) if isinstance(value, str) else None
        if index is None:
            key = category_key(value)
            index = missing if key is None else lookup.get(key, unseen)
        indices[row] = index
    return indices
