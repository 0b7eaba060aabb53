"""Counting a batch of rows into a profile's bins, vectorised across rows and features.

The model server calls this on every request (often a single row), and the offline report and
the benchmark on windows of 100,000 rows, so there are two numerically identical paths:

- small batches: one broadcast comparison of the values against a padded edge matrix gives each
  value's bin; one ``np.bincount`` over ``bin + feature * max_bins`` counts everything;
- large batches: rows are taken in blocks of a few thousand, each block is transposed so every
  feature's values are contiguous, and ``count(values >= bound)`` is computed for every
  (feature, bound) at once, the bounds being ``-DBL_MAX``, the edges and ``+inf``; bin counts are
  differences of those tallies. Memory stays at a few MB whatever the window size, no per-value
  bin index is materialised, and large windows are split across a few threads (numpy releases
  the GIL in the copies, comparisons and sums; integer tallies add up the same in any order).

Categorical columns map through a dict (one Python lookup per value).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from modelops.drift.profile import FeatureProfile

#: Batches up to this many rows take the broadcast path; larger ones the blocked tallies.
SMALL_BATCH_ROWS = 64
#: Rows per block of the large-batch path (blocks are balanced, so about this many). Numpy
#: compares a block's transposed rows with each bound in one loop per (feature, bound); below
#: ~2,800 rows numpy 2.4 copies such a broadcast through its 8,192-element ufunc buffers instead,
#: four times slower per value here, so blocks stay well above that.
_BLOCK_ROWS = 4096
#: A block is transposed this many rows at a time: the slice being read stays in L2 (400 kB for
#: 50 features), which made the copy about a quarter faster here.
_TRANSPOSE_ROWS = 1024
#: Most (feature, bound, row) flags one thread holds at once (4 MB): wide profiles are counted a
#: group of features at a time.
_BLOCK_FLAGS = 1 << 22
#: Windows needing fewer comparisons than this (about 2 ms of work) stay on the calling thread.
_PARALLEL_MIN_FLAGS = 1 << 23
#: Most threads counting one window (by default: this or the CPU count, whichever is smaller).
_MAX_WORKERS = 4


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

    def __init__(self, features: Sequence[FeatureProfile], *, workers: int | None = None) -> None:
        """``workers`` caps the threads counting a large window (None: the CPU count, at most
        ``_MAX_WORKERS``); windows too small to gain from threads are counted serially anyway."""
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
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
        # The large-batch path's bounds: ``>= -DBL_MAX`` holds for finite values and +inf (not NaN
        # or -inf), ``>= +inf`` for +inf alone; +inf also pads shorter edge lists.
        self.bounds = np.full((len(numeric), max_edges + 2), np.inf)
        self.bounds[:, 0] = -np.finfo(np.float64).max
        self.bounds[:, 1 : max_edges + 1] = self.edges
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
        tallies = self._tallies(values)
        n_numeric, n_bounds = tallies.shape
        # Bin i (finite) holds the values >= bound i and < bound i + 1; the rest are missing.
        numeric_counts = np.zeros((n_numeric, self.max_bins), dtype=np.int64)
        numeric_counts[:, : n_bounds - 1] = tallies[:, :-1] - tallies[:, 1:]
        finite = tallies[:, 0] - tallies[:, -1]
        numeric_counts[np.arange(n_numeric), self.n_edges + 1] += values.shape[0] - finite
        counts[self.numeric_columns] += numeric_counts

    def _tallies(self, values: NDArray[np.float64]) -> NDArray[np.int64]:
        """How many values of each numeric feature are >= each bound, row parts in threads."""
        parts = _row_parts(values.shape[0], self._worker_count(values.shape[0]))
        if len(parts) == 1:
            return _tally(values, self.bounds)
        with ThreadPoolExecutor(max_workers=len(parts)) as pool:
            partials = list(pool.map(lambda part: _tally(values[slice(*part)], self.bounds), parts))
        total: NDArray[np.int64] = np.sum(partials, axis=0)
        return total

    def _worker_count(self, rows: int) -> int:
        if rows * self.bounds.size < _PARALLEL_MIN_FLAGS:
            return 1
        limit = self.workers or min(_MAX_WORKERS, os.cpu_count() or 1)
        return max(1, min(limit, rows // _BLOCK_ROWS))


def _row_parts(rows: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` consecutive row ranges of near-equal length covering ``range(rows)``."""
    cuts = [rows * part // parts for part in range(parts + 1)]
    return list(pairwise(cuts))


def _tally(values: NDArray[np.float64], bounds: NDArray[np.float64]) -> NDArray[np.int64]:
    """Per (feature, bound): how many ``values`` (rows x features) are >= the bound.

    Blocks of rows, and of features when the profile is wide, keep the scratch buffers at
    ``_BLOCK_FLAGS`` flags whatever the window's size.
    """
    n_numeric, n_bounds = bounds.shape
    rows = values.shape[0]
    block_rows = _balanced_block_rows(rows)
    group = max(1, min(n_numeric, _BLOCK_FLAGS // (n_bounds * block_rows)))
    columns = np.empty((group, block_rows))
    flags = np.empty((group, n_bounds, _whole_words(block_rows)), dtype=np.bool_)
    tallies = np.zeros((n_numeric, n_bounds), dtype=np.int64)
    for start in range(0, rows, block_rows):
        block = values[start : start + block_rows]
        for first in range(0, n_numeric, group):
            last = min(first + group, n_numeric)
            tallies[first:last] += _block_tally(
                block[:, first:last], bounds[first:last], columns, flags
            )
    return tallies


def _balanced_block_rows(rows: int) -> int:
    """Rows per block: at most ``_BLOCK_ROWS``, and no short last block (numpy would compare it
    at the slow rate, see ``_BLOCK_ROWS``)."""
    blocks = -(-rows // _BLOCK_ROWS)
    return -(-rows // blocks)


def _block_tally(
    block: NDArray[np.float64],
    bounds: NDArray[np.float64],
    columns: NDArray[np.float64],
    flags: NDArray[np.bool_],
) -> NDArray[np.int64]:
    """``_tally`` of one block, in the scratch ``columns`` and ``flags``: transposed first, so
    each feature's values are contiguous and numpy compares them with a bound in one loop."""
    rows, n = block.shape
    transposed = columns[:n, :rows]
    for start in range(0, rows, _TRANSPOSE_ROWS):
        stop = start + _TRANSPOSE_ROWS
        np.copyto(transposed[:, start:stop], block[start:stop].T)
    above = flags[:n, :, : _whole_words(rows)]
    above[:, :, rows:] = False
    np.greater_equal(transposed[:, None, :], bounds[:, :, None], out=above[:, :, :rows])
    return _count_set(above)


def _whole_words(flags: int) -> int:
    """``flags`` rounded up to a whole number of 8-byte words."""
    return -(-flags // 8) * 8


def _count_set(flags: NDArray[np.bool_]) -> NDArray[np.int64]:
    """How many ``flags`` are set along the last axis (contiguous, a multiple of 8 long).

    Eight flags are the eight bytes of a uint64, so one integer addition adds eight counts at
    once; a byte overflows past 255 additions, so words are summed 255 at a time and the bytes
    of those sums added up last. About twice as fast as summing the flags as uint16.
    """
    words = flags.view(np.uint64)
    sums = np.add.reduceat(words, np.arange(0, words.shape[-1], 255), axis=-1)
    counts: NDArray[np.int64] = sums.view(np.uint8).sum(axis=-1, dtype=np.int64)
    return counts


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
