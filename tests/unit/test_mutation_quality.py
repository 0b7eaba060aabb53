"""training/quality.py at its boundaries: every limit is inclusive or exclusive as documented,
and every failure sentence is exact (it is the trainer's termination message; mutation-tested)."""

from __future__ import annotations

import numpy as np
import pytest

from modelops.training.data import Target
from modelops.training.quality import QualityLimits, QualityReport, check_data

FEATURES = ["a", "b", "c"]


def matrix(rows: int, missing: dict[int, int] | None = None) -> np.ndarray:
    """``rows`` x 3 floats; ``missing`` maps a column to how many of its first rows are NaN."""
    x = np.arange(rows * 3, dtype=float).reshape(rows, 3)
    for column, count in (missing or {}).items():
        x[:count, column] = np.nan
    return x


def labels(values: list[object], absent: int = 0) -> Target:
    present = np.ones(len(values), dtype=bool)
    present[:absent] = False
    return Target(np.array(values), present)


def check(x: np.ndarray, y: Target, task: str = "classification", **limits: float) -> QualityReport:
    return check_data(FEATURES, x, y, task, QualityLimits(**limits))  # type: ignore[arg-type]


def test_no_rows_is_its_own_sentence() -> None:
    report = check(matrix(0), labels([]))
    assert report.failures == ("the data has no rows",)
    # One row is not "no rows": the other checks speak.
    one = check(matrix(1), labels([0]), min_rows=2)
    assert one.failures == (
        "only 1 rows have a target, fewer than the minimum 2",
        "the target has 1 class(es); at least 2 are needed",
    )


def test_missing_values_at_the_limit_pass_and_over_it_fail() -> None:
    y = labels([0, 1] * 10)
    at_limit = check(matrix(20, {0: 2}), y, min_rows=2, max_missing_fraction=0.1)
    assert at_limit.passed
    over = check(matrix(20, {0: 3, 2: 20}), y, min_rows=2, max_missing_fraction=0.1)
    assert over.failures == ("too many missing values (limit 10%): a 15%, c 100%",)


def test_missing_targets_at_the_limit_pass_and_over_it_fail() -> None:
    at_limit = check(matrix(20), labels([0, 1] * 10, absent=2), min_rows=2)
    assert at_limit.passed
    over = check(matrix(20), labels([0, 1] * 10, absent=3), min_rows=2)
    assert over.failures == ("the target is missing in 15% of rows (limit 10%)",)


def test_a_missing_target_share_exactly_at_the_limit_passes() -> None:
    # 4 of 16 targets absent is exactly 25% in binary floating point (2 of 20 is not exactly
    # 10%: 1 - 0.9 is just under 0.1), so this is where > and >= part.
    y: list[object] = [0, 1] * 8
    at_limit = check(matrix(16), labels(y, absent=4), min_rows=2, max_missing_fraction=0.25)
    assert at_limit.passed
    over = check(matrix(16), labels(y, absent=5), min_rows=2, max_missing_fraction=0.25)
    assert over.failures == ("the target is missing in 31% of rows (limit 25%)",)


def test_min_rows_is_inclusive() -> None:
    assert check(matrix(4), labels([0, 1, 0, 1]), min_rows=4).passed
    assert check(matrix(4), labels([0, 1, 0, 1]), min_rows=5).failures == (
        "only 4 rows have a target, fewer than the minimum 5",
    )


def test_rare_classes_are_listed_with_their_counts() -> None:
    y = labels(["a", "a", "b", "c", "c", "c", "d"])
    report = check(matrix(7), y, min_rows=2, min_class_rows=3)
    assert report.failures == ("classes with fewer than 3 rows: a (2), b (1), d (1)",)
    assert check(
        matrix(6), labels(["a", "a", "a", "b", "b", "b"]), min_rows=2, min_class_rows=3
    ).passed


def test_a_regression_target_needs_two_values_and_two_are_enough() -> None:
    assert check(matrix(4), labels([1.0, 2.0, 1.0, 2.0]), "regression", min_rows=2).passed
    assert check(matrix(4), labels([1.0, 1.0, 1.0, 1.0]), "regression", min_rows=2).failures == (
        "the target has a single value: there is nothing to learn",
    )
    # No usable row at all: the row count says it, not the single-value check.
    assert check(matrix(2), labels([1.0, 2.0], absent=2), "regression", min_rows=2).failures == (
        "the target is missing in 100% of rows (limit 10%)",
        "only 0 rows have a target, fewer than the minimum 2",
    )


def test_every_failure_is_reported_joined() -> None:
    report = check(matrix(4, {1: 4}), labels([0, 0, 0, 0], absent=1), min_rows=5)
    assert report.message == (
        "too many missing values (limit 10%): b 100%; "
        "the target is missing in 25% of rows (limit 10%); "
        "only 3 rows have a target, fewer than the minimum 5; "
        "the target has 1 class(es); at least 2 are needed"
    )
    assert not report.passed


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"min_rows": 1}, "limits need 2 <= min_rows <= max_rows"),
        ({"min_rows": 10, "max_rows": 9}, "limits need 2 <= min_rows <= max_rows"),
        ({"max_missing_fraction": -0.01}, r"max_missing_fraction must be in \[0, 1\)"),
        ({"max_missing_fraction": 1.0}, r"max_missing_fraction must be in \[0, 1\)"),
        ({"min_class_rows": 1}, "min_class_rows must be at least 2"),
    ],
)
def test_limits_are_checked_with_exact_messages(limits: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        QualityLimits(**limits)  # type: ignore[arg-type]


def test_the_tightest_valid_limits_are_accepted() -> None:
    QualityLimits(min_rows=2, max_rows=2, max_missing_fraction=0.0, min_class_rows=2)


def test_a_matrix_that_does_not_match_the_feature_names_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="zip"):
        check_data(["a", "b"], matrix(4), labels([0, 1, 0, 1]), "classification", QualityLimits())
