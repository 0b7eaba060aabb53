"""``modelops drift report``: offline drift of a CSV window against a profile or a reference CSV.

The I/O adapter around :mod:`modelops.drift`: reads CSV with the standard library, counts the
current window in chunks (memory stays flat however large the file), prints per-feature scores,
thresholds and a verdict. Either file may be a path or a URI (``file://``, ``pvc://``,
``http(s)://``, ``s3://``), fetched by :mod:`modelops.storage` first. Exit codes: 0 no drift,
1 drift, 2 an error (one line on stderr).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from modelops.drift import DriftReport, Profile

EXIT_NO_DRIFT = 0
EXIT_DRIFT = 1
EXIT_ERROR = 2

#: Rows of the current window counted per chunk.
CHUNK_ROWS = 10_000


class ReportError(Exception):
    """Bad input for the report; the message is shown as is."""


def register(subparsers: Any) -> None:
    """Add ``drift`` with its ``report`` sub-command."""
    drift = subparsers.add_parser(
        "drift",
        help="offline drift tools",
        description="Offline drift tools built on the same engine as the operator.",
    )
    commands = drift.add_subparsers(dest="drift_command", metavar="COMMAND", required=True)
    report = commands.add_parser(
        "report",
        help="score a CSV window's drift against a profile or a reference CSV",
        description=(
            "Score the drift of every feature of CURRENT against a reference profile "
            "(profile.json) or a reference CSV. Exit codes: 0 no drift, 1 drift, 2 error."
        ),
    )
    report.add_argument(
        "--reference",
        required=True,
        metavar="PROFILE.json|REF.csv",
        help="a profile.json (as the trainer writes) or a CSV with a header row: a path or a "
        "file://, pvc://, http(s):// or s3:// URI",
    )
    report.add_argument(
        "--current", required=True, metavar="CUR.csv", help="the window to score (path or URI)"
    )
    report.add_argument(
        "--metrics",
        default=None,
        metavar="M[=T],...",
        help=(
            "metrics to compute, optionally with a threshold, e.g. psi,ks=0.15 "
            "(default: psi,ks,js,wasserstein,chi2 at their calibrated thresholds)"
        ),
    )
    report.add_argument("--format", choices=("table", "json"), default="table")
    report.add_argument(
        "--categorical",
        default="",
        metavar="COL,...",
        help="reference CSV only: columns to treat as categories (text columns always are)",
    )
    report.add_argument(
        "--ignore-columns",
        default="",
        metavar="COL,...",
        help="columns to drop from both files before comparing, e.g. the target column",
    )
    report.add_argument(
        "--bins", type=int, default=10, help="reference CSV only: quantile bins per feature"
    )
    report.add_argument(
        "--min-samples", type=int, default=1, help="fewest current rows to score (default 1)"
    )
    report.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    """Run the report; returns the exit code."""
    from modelops.drift import InsufficientSamplesError, compute_drift

    try:
        thresholds = parse_metrics(args.metrics)
        ignored = _names(args.ignore_columns)
        with tempfile.TemporaryDirectory(prefix="modelops-report-") as workdir:
            reference = _local(args.reference, Path(workdir) / "reference")
            current = _local(args.current, Path(workdir) / "current")
            profile = load_reference(reference, _names(args.categorical), args.bins, ignored)
            counts = count_current(profile, current, ignored)
        report = compute_drift(profile, counts, metrics=thresholds, min_samples=args.min_samples)
    except InsufficientSamplesError as error:
        return _fail(f"{args.current}: {error}")
    except (ReportError, ValueError) as error:
        return _fail(str(error))
    if args.format == "json":
        print(json.dumps(report_document(report, args), indent=2))
    else:
        print(format_table(report))
    return EXIT_DRIFT if report.drifted else EXIT_NO_DRIFT


def _local(given: str | os.PathLike[str], workdir: Path) -> Path:
    """A path as given; a URI fetched into ``workdir`` (size-limited, see modelops.storage)."""
    text = os.fspath(given)
    if "://" not in text:
        return Path(text)
    from modelops.storage import StorageError
    from modelops.storage.fetch import fetch_file

    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return fetch_file(text, workdir)
    except StorageError as error:
        raise ReportError(str(error)) from None


def _fail(message: str) -> int:
    print(f"modelops drift report: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_metrics(text: str | None) -> dict[str, float] | None:
    """``psi,ks=0.15`` -> ``{"psi": default, "ks": 0.15}``; None keeps every default."""
    from modelops.drift import DEFAULT_THRESHOLDS, METRICS

    if text is None:
        return None
    thresholds: dict[str, float] = {}
    for item in _names(text):
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in METRICS:
            raise ReportError(f"unknown metric {name!r}; choose from {','.join(METRICS)}")
        if not value:
            thresholds[name] = DEFAULT_THRESHOLDS[name]
            continue
        try:
            threshold = float(value)
        except ValueError:
            raise ReportError(f"threshold of {name!r} is not a number: {value!r}") from None
        if not math.isfinite(threshold) or threshold < 0:
            raise ReportError(f"threshold of {name!r} must be finite and >= 0, got {value!r}")
        thresholds[name] = threshold
    if not thresholds:
        raise ReportError("--metrics names no metric")
    return thresholds


# ------------------------------------------------------------------------------- reading CSV


def _open_csv(path: Path) -> TextIO:
    try:
        return path.open(newline="", encoding="utf-8")
    except OSError as error:
        raise ReportError(f"cannot read {path}: {error.strerror or error}") from None


def _csv_rows(path: Path, handle: TextIO) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank row, with decoding and CSV errors made clear."""
    reader = csv.reader(handle)
    try:
        for fields in reader:
            if fields and any(field.strip() for field in fields):
                yield reader.line_num, fields
    except UnicodeDecodeError:
        raise ReportError(f"{path} is not UTF-8 text") from None
    except csv.Error as error:
        raise ReportError(f"{path} line {reader.line_num}: {error}") from None
    except OSError as error:
        raise ReportError(f"cannot read {path}: {error.strerror or error}") from None


def _header(path: Path, rows: Iterator[tuple[int, list[str]]]) -> list[str]:
    first = next(rows, None)
    if first is None:
        raise ReportError(f"{path} is empty (expected a header row)")
    header = [name.strip() for name in first[1]]
    if any(not name for name in header):
        raise ReportError(f"{path}: the header has an empty column name")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise ReportError(f"{path}: duplicate columns {duplicates}")
    return header


def _checked_row(path: Path, line: int, fields: list[str], width: int) -> list[str]:
    if len(fields) != width:
        raise ReportError(f"{path} line {line}: {len(fields)} fields, the header has {width}")
    return fields


def load_reference(
    path: Path, categorical: Sequence[str], bins: int, ignored: Sequence[str]
) -> Profile:
    """A profile from ``profile.json`` or built from a reference CSV."""
    from modelops.drift import Profile, ProfileError, build_profile

    if path.suffix.lower() == ".json":
        try:
            text = path.read_bytes()
        except OSError as error:
            raise ReportError(f"cannot read {path}: {error.strerror or error}") from None
        try:
            return Profile.from_json(text)
        except ProfileError as error:
            raise ReportError(f"{path}: {error}") from None
    with _open_csv(path) as handle:
        rows = _csv_rows(path, handle)
        header = _header(path, rows)
        table = [_checked_row(path, line, fields, len(header)) for line, fields in rows]
    if not table:
        raise ReportError(f"{path} has a header but no rows")
    keep = [index for index, name in enumerate(header) if name not in set(ignored)]
    names = [header[index] for index in keep]
    unknown = sorted(set(categorical) - set(names))
    if unknown:
        raise ReportError(f"--categorical names columns that {path} does not have: {unknown}")
    import numpy as np

    columns: list[Any] = []
    kinds = set(categorical)
    for index in keep:
        cells = [row[index].strip() for row in table]
        numbers = None if header[index] in kinds else _as_numbers(cells)
        if numbers is None:
            kinds.add(header[index])
            columns.append(np.array([cell or None for cell in cells], dtype=object))
        else:
            columns.append(numbers)
    data = np.empty((len(table), len(keep)), dtype=object if kinds else np.float64)
    for position, column in enumerate(columns):
        data[:, position] = column
    try:
        return build_profile(data, names, categorical=kinds, bins=bins)
    except ProfileError as error:
        raise ReportError(f"{path}: {error}") from None


def _as_numbers(cells: list[str]) -> Any:
    """The column as floats (empty cells NaN), or None when any cell is not a number."""
    import numpy as np

    values = np.empty(len(cells))
    for row, cell in enumerate(cells):
        if not cell:
            values[row] = np.nan
            continue
        try:
            values[row] = float(cell)
        except ValueError:
            return None
    return values


def count_current(profile: Profile, path: Path, ignored: Sequence[str]) -> Any:
    """Bin counts of the current CSV, read and counted in chunks of ``CHUNK_ROWS`` rows."""
    import numpy as np

    names = profile.feature_names
    numeric = [feature.kind == "numeric" for feature in profile.features]
    with _open_csv(path) as handle:
        rows = _csv_rows(path, handle)
        header = _header(path, rows)
        columns = [name for name in header if name not in set(ignored)]
        missing = [name for name in names if name not in columns]
        extra = [name for name in columns if name not in names]
        if missing:
            raise ReportError(f"{path} lacks columns the reference has: {missing}")
        if extra:
            raise ReportError(
                f"{path} has columns the reference does not: {extra} (drop them with "
                "--ignore-columns)"
            )
        order = [header.index(name) for name in names]
        counts = np.zeros((len(names), profile.max_bins), dtype=np.int64)
        chunk: list[list[Any]] = []
        for line, fields in rows:
            _checked_row(path, line, fields, len(header))
            chunk.append(_parse_row(path, line, fields, order, numeric, names))
            if len(chunk) == CHUNK_ROWS:
                counts += profile.bin_counts(_as_array(chunk, numeric))
                chunk.clear()
        if chunk:
            counts += profile.bin_counts(_as_array(chunk, numeric))
    return counts


def _parse_row(
    path: Path,
    line: int,
    fields: list[str],
    order: list[int],
    numeric: list[bool],
    names: Sequence[str],
) -> list[Any]:
    row: list[Any] = []
    for position, index in enumerate(order):
        cell = fields[index].strip()
        if not numeric[position]:
            row.append(cell or None)
        elif not cell:
            row.append(math.nan)
        else:
            try:
                row.append(float(cell))
            except ValueError:
                raise ReportError(
                    f"{path} line {line}, column {names[position]!r}: {cell!r} is not a number"
                ) from None
    return row


def _as_array(chunk: list[list[Any]], numeric: list[bool]) -> Any:
    import numpy as np

    return np.array(chunk, dtype=np.float64 if all(numeric) else object)


# ------------------------------------------------------------------------------------ output


def report_document(report: DriftReport, args: argparse.Namespace) -> dict[str, Any]:
    """The JSON output: the report plus what was compared and the verdict."""
    return {
        "reference": str(args.reference),
        "current": str(args.current),
        "verdict": "drift" if report.drifted else "no drift",
        **report.to_dict(),
    }


def format_table(report: DriftReport) -> str:
    """One line per feature: each metric as score/threshold, '*' marking a breach."""
    from modelops.drift import METRICS

    used = [m for m in METRICS if any(m in feature.scores for feature in report.features)]
    header = ["feature", "kind", *used, "verdict"]
    lines = [header]
    for feature in report.features:
        cells = [feature.name, feature.kind]
        for metric in used:
            if metric in feature.scores:
                mark = "*" if metric in feature.breached_metrics else ""
                score, threshold = feature.scores[metric], feature.thresholds[metric]
                cells.append(f"{score:.4f}/{threshold:g}{mark}")
            else:
                cells.append("-")
        cells.append("DRIFT" if feature.breached else "ok")
        lines.append(cells)
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in lines
    ]
    breached = report.breached_features
    verdict = (
        f"drift: {len(breached)} of {len(report.features)} features ({', '.join(breached)})"
        if breached
        else f"no drift: {len(report.features)} features"
    )
    text.append(f"{verdict}; {report.samples} rows; score/threshold, * = above threshold")
    return "\n".join(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``drift ...`` on its own (``python -m modelops.drift_report drift report ...``)."""
    parser = argparse.ArgumentParser(prog="modelops")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
