"""Columns of the training data that are read for evaluation and the record only, never fitted on:
the sensitive attributes (their groups, for the fairness table) and the time column (the data's
time range, for the model card).

They are read in a pass of their own over the CSV, so the feature path of the trainer never sees
them. Rows are kept in step with the training data: like :func:`~modelops.training.trainer.
load_dataset`, rows without a target are dropped. Values of a sensitive column are never logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from modelops.artifacts import Task
from modelops.training import data as csvdata
from modelops.training.errors import DataError
from modelops.training.fairness import Labels, group_labels


@dataclass(frozen=True)
class TimeRange:
    """The earliest and the latest time in the time column (RFC 3339, UTC)."""

    column: str
    start: str | None
    end: str | None


@dataclass(frozen=True)
class EvaluationColumns:
    """Sensitive groups in the rows of the training data, and the data's time range."""

    groups: dict[str, Labels] = field(default_factory=dict)
    """Per sensitive column, the group of every row that has a target."""
    time_range: TimeRange | None = None
    rows: int = 0
    """Data rows in the file (with or without a target)."""


def read_evaluation_columns(
    path: Path,
    *,
    sensitive: Sequence[str],
    time_column: str | None,
    target: str,
    task: Task,
    text_labels: bool = False,
    max_rows: int | None = None,
) -> EvaluationColumns:
    """The sensitive and time columns of ``path``, aligned with the rows trained on."""
    regression = task == "regression"
    text = [*sensitive, *([time_column] if time_column else [])]
    table = csvdata.read_csv(
        path,
        numeric=[target] if regression else [],
        text=[*text, target] if not regression else text,
        max_rows=max_rows,
    )
    present = csvdata.target_column(table, target, task, text_labels=text_labels).present
    groups = {name: group_labels(table.text[name])[present] for name in sensitive}
    time_range = None
    if time_column:
        time_range = time_range_of(time_column, table.text[time_column])
    return EvaluationColumns(groups, time_range, table.rows)


def time_range_of(column: str, cells: Sequence[str]) -> TimeRange:
    """The first and last time of ISO 8601 cells (missing cells skipped); a cell that is no time
    is a :class:`DataError` naming the column."""
    import pandas as pd

    values = [cell for cell in cells if not csvdata.is_missing(cell)]
    if not values:
        return TimeRange(column, None, None)
    try:
        times = pd.to_datetime(pd.Series(values), utc=True, format="ISO8601")
    except (ValueError, TypeError):
        raise DataError(
            f"the time column {column!r} holds {_first_bad(values)!r}, which is not an ISO 8601 "
            "time"
        ) from None
    return TimeRange(column, _rfc3339(times.min()), _rfc3339(times.max()))


def _first_bad(values: Sequence[str]) -> str:
    """The first cell pandas cannot read as an ISO 8601 time (cut to 40 characters)."""
    import pandas as pd

    for value in values:
        try:
            pd.to_datetime(value, utc=True, format="ISO8601")
        except (ValueError, TypeError):
            return value[:40]
    return "?"


def _rfc3339(value: object) -> str:
    import pandas as pd

    stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    return stamp.isoformat().replace("+00:00", "Z")
