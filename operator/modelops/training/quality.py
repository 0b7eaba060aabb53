"""The data-quality gate: fresh data must be fit to train on before anything is fitted.

Pure functions over parsed data. Each check adds a sentence to the report; the trainer fails
with exit code 3 and writes no model when any check fails, so one bad export cannot replace a
good model.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from modelops.artifacts import Task
from modelops.training.data import Target, missing_mask


@dataclass(frozen=True)
class QualityLimits:
    """Thresholds of the gate (each is a ``modelops train`` flag)."""

    min_rows: int = 30
    """Fewest rows with a target; below this a holdout says nothing."""
    max_rows: int = 5_000_000
    """Most data rows read; more is refused before the file is read whole."""
    max_missing_fraction: float = 0.1
    """Largest share of missing values allowed in any feature, and in the target."""
    min_class_rows: int = 2
    """Fewest rows of each class (a stratified holdout needs two)."""

    def __post_init__(self) -> None:
        if self.min_rows < 2 or self.max_rows < self.min_rows:
            raise ValueError("limits need 2 <= min_rows <= max_rows")
        if not 0.0 <= self.max_missing_fraction < 1.0:
            raise ValueError("max_missing_fraction must be in [0, 1)")
        if self.min_class_rows < 2:
            raise ValueError("min_class_rows must be at least 2")


@dataclass(frozen=True)
class QualityReport:
    """The failed checks, one sentence each; empty when the gate passed."""

    failures: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def message(self) -> str:
        return "; ".join(self.failures)


def check_schema(columns: Collection[str], features: Sequence[str]) -> QualityReport:
    """Every feature of the champion must be a column (extra columns are ignored)."""
    missing = [name for name in features if name not in columns]
    if not missing:
        return QualityReport()
    return QualityReport((f"the data lacks the model's feature columns {missing}",))


def check_data(
    features: Sequence[str],
    matrix: npt.NDArray[Any],
    target: Target,
    task: Task,
    limits: QualityLimits,
) -> QualityReport:
    """Rows, missing values and target variety of parsed data."""
    failures: list[str] = []
    rows = matrix.shape[0]
    if rows == 0:
        return QualityReport(("the data has no rows",))

    missing_share = missing_mask(matrix).mean(axis=0)
    worst = [
        f"{name} {share:.0%}"
        for name, share in zip(features, missing_share.tolist(), strict=True)
        if share > limits.max_missing_fraction
    ]
    if worst:
        failures.append(
            f"too many missing values (limit {limits.max_missing_fraction:.0%}): {', '.join(worst)}"
        )
    target_missing = 1.0 - float(target.present.mean())
    if target_missing > limits.max_missing_fraction:
        failures.append(
            f"the target is missing in {target_missing:.0%} of rows "
            f"(limit {limits.max_missing_fraction:.0%})"
        )

    usable = int(target.present.sum())
    if usable < limits.min_rows:
        failures.append(
            f"only {usable} rows have a target, fewer than the minimum {limits.min_rows}"
        )

    values = target.values[target.present]
    if task == "classification":
        failures.extend(_check_classes(values, limits))
    elif usable and np.unique(values).size < 2:
        failures.append("the target has a single value: there is nothing to learn")
    return QualityReport(tuple(failures))


def _check_classes(labels: npt.NDArray[np.generic], limits: QualityLimits) -> list[str]:
    classes, counts = np.unique(labels, return_counts=True)
    if classes.size < 2:
        return [f"the target has {classes.size} class(es); at least 2 are needed"]
    rare = [
        f"{label!s} ({count})"
        for label, count in zip(classes.tolist(), counts.tolist(), strict=True)
        if count < limits.min_class_rows
    ]
    if rare:
        return [f"classes with fewer than {limits.min_class_rows} rows: {', '.join(rare)}"]
    return []
