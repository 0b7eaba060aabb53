"""CSV data to numpy with the standard ``csv`` module, and clear errors that name the cell.

A data file is UTF-8 CSV with one header row; columns are found by name, so their order and
any extra columns do not matter. Missing values are empty cells or one of
:data:`MISSING_TOKENS` (any case); non-finite numbers count as missing too, because no estimator
can learn from them. Booleans (``True``/``False`` as pandas writes them, any case) are 1 and 0.
Text in a numeric column is an error, never silently dropped.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
from collections.abc import Callable, Collection, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from modelops.artifacts import Task
from modelops.training.errors import DataError, QualityGateError

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})
"""Cell values (after stripping, case-insensitive) that mean "no value"."""
BOOLEAN_TOKENS = {"true": 1.0, "false": 0.0}
"""Cell values (after stripping, case-insensitive) of a boolean column, as numbers."""

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


#: Rows parsed to numbers at a time: memory stays near the size of the numeric result.
CHUNK_ROWS = 16384


@dataclass(frozen=True)
class Table:
    """The columns of a CSV file that were asked for: numbers parsed, text as stripped cells."""

    columns: tuple[str, ...]
    """The whole header, in file order."""
    rows: int
    numeric_names: tuple[str, ...] = ()
    matrix: FloatArray = field(default_factory=lambda: np.empty((0, 0)))
    """``rows x len(numeric_names)``, NaN where a value is missing or not finite."""
    text: dict[str, list[str]] = field(default_factory=dict)

    def numeric(self, name: str) -> FloatArray:
        return self.matrix[:, self.numeric_names.index(name)]


@dataclass(frozen=True)
class Target:
    """The target column: labels (int or str) or numbers, and which rows have a value at all."""

    values: npt.NDArray[np.generic]
    present: BoolArray


def read_header(path: Path) -> tuple[str, ...]:
    """The column names of a CSV file (which is checked no further)."""
    chunks = _chunks(path)
    try:
        return tuple(next(chunks)[0])
    finally:
        chunks.close()


def read_csv(
    path: Path,
    *,
    numeric: Sequence[str] = (),
    text: Sequence[str] = (),
    max_rows: int | None = None,
) -> Table:
    """Read the ``numeric`` and ``text`` columns of ``path`` in one streaming pass.

    Every row is checked for its field count; only the requested columns are kept, and numbers
    are parsed in chunks of :data:`CHUNK_ROWS`, so a file costs little more memory than its
    numeric result. Raises :class:`DataError` for a file that is not UTF-8 CSV with a unique,
    non-empty header, for a requested column it lacks, and for text in a numeric column (naming
    the line); :class:`QualityGateError` as soon as it holds more than ``max_rows`` data rows.
    """
    chunks = _chunks(path)
    try:
        header = next(chunks)[0]
        index = {name: i for i, name in enumerate(header)}
        absent = [name for name in (*numeric, *text) if name not in index]
        if absent:
            raise DataError(f"{path.name} has no column {absent[0]!r}")
        select = _selector([index[name] for name in numeric])
        text_at = [index[name] for name in text]
        parsed: list[FloatArray] = []
        texts: list[list[str]] = [[] for _ in text]
        rows = 0
        for chunk in chunks:
            if max_rows is not None and rows + len(chunk) > max_rows:
                raise QualityGateError(
                    f"the data has more than {max_rows} rows (the --max-rows limit)"
                )
            parsed.append(_parse_numbers(select(chunk), numeric, path, rows))
            for cells, i in zip(texts, text_at, strict=True):
                cells.extend(row[i].strip() for row in chunk)
            rows += len(chunk)
    finally:
        chunks.close()
    if not parsed:
        parsed.append(np.empty((0, len(numeric)), dtype=np.float64))
    matrix = np.concatenate(parsed) if len(parsed) > 1 else parsed[0]
    return Table(tuple(header), rows, tuple(numeric), matrix, dict(zip(text, texts, strict=True)))


def _selector(positions: list[int]) -> Callable[[list[list[str]]], list[Sequence[str]]]:
    """A function picking the cells at ``positions`` from every row of a chunk (in C)."""
    if len(positions) == 1:
        (only,) = positions
        return lambda rows: [(row[only],) for row in rows]
    if not positions:
        return lambda rows: [() for _ in rows]
    pick = itemgetter(*positions)
    return lambda rows: list(map(pick, rows))


def _chunks(path: Path) -> Generator[list[list[str]], None, None]:
    """The header (as a one-row chunk), then chunks of up to :data:`CHUNK_ROWS` non-blank rows,
    each checked to have the header's field count; every failure as a DataError."""
    reader = None
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, strict=True)
            header = _read_header(reader, path)
            yield [list(header)]
            seen = 0
            while chunk := list(islice(reader, CHUNK_ROWS)):
                rows = [row for row in chunk if row]  # blank lines are no rows
                if set(map(len, rows)) - {len(header)}:
                    bad = next(i for i, row in enumerate(rows) if len(row) != len(header))
                    raise DataError(
                        f"{path.name}, line {line_of_row(path, seen + bad)}: expected "
                        f"{len(header)} fields like the header, found {len(rows[bad])}"
                    )
                seen += len(rows)
                if rows:
                    yield rows
    except UnicodeDecodeError as exc:
        raise DataError(f"{path.name} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except csv.Error as exc:
        where = f", line {reader.line_num}" if reader is not None else ""
        raise DataError(f"{path.name}{where} is not valid CSV: {exc}") from exc
    except OSError as exc:
        raise DataError(f"cannot read {path.name}: {exc.strerror or exc}") from exc


def line_of_row(path: Path, ordinal: int) -> int:
    """The file line on which data row ``ordinal`` (0-based, blank lines skipped) starts.

    Only error messages need it, so it is found by reading the file again rather than by
    tracking every row's line on the fast path.
    """
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        _read_header(reader, path)
        start, index = reader.line_num + 1, -1
        for row in reader:
            if row:
                index += 1
                if index == ordinal:
                    return start
            start = reader.line_num + 1
    return start


def _read_header(reader: Iterator[list[str]], path: Path) -> tuple[str, ...]:
    for row in reader:
        if not row:
            continue
        names = tuple(name.strip() for name in row)
        if any(not name for name in names):
            raise DataError(f"{path.name}: the header has an empty column name")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise DataError(f"{path.name}: duplicate column names in the header: {duplicates}")
        return names
    raise DataError(f"{path.name} is empty: a header row with the column names is required")


def is_missing(cell: str) -> bool:
    """Whether a raw cell means "no value"."""
    return cell.strip().lower() in MISSING_TOKENS


def _parse_numbers(
    rows: list[Sequence[str]], names: Sequence[str], path: Path, first: int
) -> FloatArray:
    """A chunk of rows (data row ``first`` onwards) as float64; NaN for missing and non-finite."""
    if not rows or not names:
        return np.empty((len(rows), len(names)), dtype=np.float64)
    try:  # fast path: numpy parses clean numeric text in C
        values = np.array(rows, dtype=np.float64)
    except ValueError:
        values = np.array(
            [
                [
                    _parse_number(cell, name, path, first + i)
                    for name, cell in zip(names, row, strict=True)
                ]
                for i, row in enumerate(rows)
            ],
            dtype=np.float64,
        )
    values[~np.isfinite(values)] = np.nan
    return values


def _parse_number(cell: str, name: str, path: Path, ordinal: int) -> float:
    if is_missing(cell):
        return math.nan
    try:
        return float(cell)
    except ValueError:
        boolean = BOOLEAN_TOKENS.get(cell.strip().lower())
        if boolean is not None:
            return boolean
        raise DataError(
            f"column {name!r}, line {line_of_row(path, ordinal)}: {cell.strip()[:40]!r} is not "
            "a number"
        ) from None


def feature_matrix(
    table: Table, features: Sequence[str], categorical: Collection[str] = ()
) -> npt.NDArray[Any]:
    """The features as a rows x features matrix, in the order given.

    float64 (NaN for missing) when all are numeric; otherwise the object matrix the model server
    also builds: floats in numeric columns, text in ``categorical`` ones (read as text columns),
    ``None`` where a category is missing.
    """
    if not categorical:
        if tuple(features) == table.numeric_names:
            return table.matrix
        return table.matrix[:, [table.numeric_names.index(name) for name in features]]
    matrix = np.empty((table.rows, len(features)), dtype=object)
    for j, name in enumerate(features):
        if name in categorical:
            matrix[:, j] = [None if is_missing(cell) else cell for cell in table.text[name]]
        else:
            matrix[:, j] = table.numeric(name).tolist()
    return matrix


def missing_mask(matrix: npt.NDArray[Any]) -> BoolArray:
    """Where a feature matrix (float, or object with floats and text) has no value."""
    if matrix.dtype != object:
        mask: BoolArray = np.isnan(matrix)
        return mask
    return np.asarray(np.frompyfunc(_is_absent, 1, 1)(matrix), dtype=np.bool_)


def _is_absent(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def target_column(table: Table, name: str, task: Task, *, text_labels: bool = False) -> Target:
    """The target: integer labels when every label is an integer (unless ``text_labels``, for a
    champion that learned text labels such as ``"1"``), else text; numbers for regression (read
    ``name`` as a numeric column then, as a text column for classification).
    Rows without a target are marked in ``present``."""
    if task == "regression":
        values = table.numeric(name)
        return Target(values, np.isfinite(values))
    labels = table.text[name]
    present = np.array([label.lower() not in MISSING_TOKENS for label in labels], dtype=bool)
    if text_labels:
        return Target(np.array(labels, dtype=np.str_), present)
    integers = [_as_int(label) for label, ok in zip(labels, present, strict=True) if ok]
    if all(value is not None for value in integers):
        ints = iter(integers)
        out = np.array([next(ints) if ok else 0 for ok in present], dtype=np.int64)
        return Target(out, present)
    return Target(np.array(labels, dtype=np.str_), present)


def _as_int(label: str) -> int | None:
    try:
        return int(label)
    except ValueError:
        pass
    try:
        number = float(label)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_csv(
    path: Path,
    header: Sequence[str],
    features: FloatArray,
    target: npt.NDArray[np.generic],
) -> None:
    """Write features and target as CSV, atomically (a temporary file renamed into place)."""
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        with temporary.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for row, label in zip(features.tolist(), target.tolist(), strict=True):
                writer.writerow([_format_number(v) for v in row] + [_format_number(label)])
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _format_number(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else format(value, ".6g")
    return str(value)
