"""CSV data to numpy with the standard ``csv`` module, and clear errors that name the cell.

A data file is UTF-8 CSV with one header row; columns are found by name, so their order and
any extra columns do not matter. Missing values are empty cells or one of
:data:`MISSING_TOKENS` (any case); non-finite numbers count as missing too, because no estimator
can learn from them. Text in a numeric column is an error, never silently dropped.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from modelops.artifacts import Task
from modelops.training.errors import DataError, QualityGateError

MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})
"""Cell values (after stripping, case-insensitive) that mean "no value"."""

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Table:
    """A CSV file read as text: the header and the raw cells of each column."""

    columns: tuple[str, ...]
    cells: dict[str, list[str]]
    line_numbers: tuple[int, ...]
    """The file line each data row started on, for error messages."""

    @property
    def rows(self) -> int:
        return len(self.line_numbers)


@dataclass(frozen=True)
class Target:
    """The target column: labels (int or str) or numbers, and which rows have a value at all."""

    values: npt.NDArray[np.generic]
    present: BoolArray


def read_csv(path: Path, *, max_rows: int | None = None) -> Table:
    """Read ``path`` into a :class:`Table`.

    Raises :class:`DataError` for a file that is not UTF-8 CSV with a unique, non-empty header
    and the same number of fields on every row, and :class:`QualityGateError` as soon as it holds
    more than ``max_rows`` data rows (so an oversized file is never read whole).
    """
    reader = None
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, strict=True)
            header = _read_header(reader, path)
            cells: list[list[str]] = [[] for _ in header]
            lines: list[int] = []
            line = reader.line_num + 1
            for row in reader:
                if not row:  # blank line
                    line = reader.line_num + 1
                    continue
                if len(row) != len(header):
                    raise DataError(
                        f"{path.name}, line {line}: expected {len(header)} fields like the "
                        f"header, found {len(row)}"
                    )
                lines.append(line)
                if max_rows is not None and len(lines) > max_rows:
                    raise QualityGateError(
                        f"the data has more than {max_rows} rows (the --max-rows limit)"
                    )
                for column, cell in zip(cells, row, strict=True):
                    column.append(cell)
                line = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise DataError(f"{path.name} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except csv.Error as exc:
        where = f", line {reader.line_num}" if reader is not None else ""
        raise DataError(f"{path.name}{where} is not valid CSV: {exc}") from exc
    except OSError as exc:
        raise DataError(f"cannot read {path.name}: {exc.strerror or exc}") from exc
    return Table(header, dict(zip(header, cells, strict=True)), tuple(lines))


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


def numeric_column(table: Table, name: str) -> FloatArray:
    """Column ``name`` as float64, NaN where a value is missing or not finite."""
    raw = table.cells[name]
    try:  # fast path: numpy parses clean numeric text in C
        values = np.array(raw, dtype=np.float64)
    except ValueError:
        values = np.array([_parse_number(table, name, i, c) for i, c in enumerate(raw)])
    values = values.astype(np.float64, copy=False).reshape(len(raw))
    values[~np.isfinite(values)] = np.nan
    return values


def _parse_number(table: Table, name: str, index: int, cell: str) -> float:
    if is_missing(cell):
        return math.nan
    try:
        return float(cell)
    except ValueError:
        raise DataError(
            f"column {name!r}, line {table.line_numbers[index]}: {cell.strip()[:40]!r} is not "
            "a number"
        ) from None


def feature_matrix(table: Table, features: Sequence[str]) -> FloatArray:
    """The named columns as a rows x features float64 matrix, in the order given."""
    matrix = np.empty((table.rows, len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        matrix[:, j] = numeric_column(table, name)
    return matrix


def target_column(table: Table, name: str, task: Task, *, text_labels: bool = False) -> Target:
    """The target: integer labels when every label is an integer (unless ``text_labels``, for a
    champion that learned text labels such as ``"1"``), else text; numbers for regression.
    Rows without a target are marked in ``present``."""
    if task == "regression":
        values = numeric_column(table, name)
        return Target(values, np.isfinite(values))
    labels = [cell.strip() for cell in table.cells[name]]
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
