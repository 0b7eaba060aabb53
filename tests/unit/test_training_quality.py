"""The data-quality gate: each check fails on its own kind of bad data, and only then."""

from __future__ import annotations

import numpy as np
import pytest

from modelops.training.data import Target
from modelops.training.quality import QualityLimits, check_data, check_schema

FEATURES = ["a", "b"]


def data(rows: int = 40, classes: int = 2) -> tuple[np.ndarray, Target]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 2))
    y = np.arange(rows) % classes
    return x, Target(y, np.ones(rows, dtype=bool))


def test_good_data_passes() -> None:
    x, y = data()
    report = check_data(FEATURES, x, y, "classification", QualityLimits())
    assert report.passed
    assert report.message == ""


def test_schema_names_the_missing_features() -> None:
    assert check_schema(["a", "b", "extra", "y"], FEATURES).passed
    report = check_schema(["b", "y"], ["a", "b", "c"])
    assert not report.passed
    assert "['a', 'c']" in report.message


def test_too_many_missing_values_in_a_feature() -> None:
    x, y = data()
    x[:5, 1] = np.nan  # 12.5% > 10%
    report = check_data(FEATURES, x, y, "classification", QualityLimits())
    assert report.failures == ("too many missing values (limit 10%): b 12%",)
    x[:4, 1] = np.nan
    x[4, 1] = 0.0  # 10% is allowed
    assert check_data(FEATURES, x, y, "classification", QualityLimits()).passed


def test_too_many_missing_targets() -> None:
    x, y = data()
    present = y.present.copy()
    present[:8] = False
    report = check_data(FEATURES, x, Target(y.values, present), "classification", QualityLimits())
    assert any("target is missing in 20% of rows" in f for f in report.failures)


def test_too_few_rows() -> None:
    x, y = data(rows=20)
    report = check_data(FEATURES, x, y, "classification", QualityLimits(min_rows=30))
    assert report.failures == ("only 20 rows have a target, fewer than the minimum 30",)


def test_no_rows() -> None:
    x, y = data(rows=0)
    assert not check_data(FEATURES, x, y, "classification", QualityLimits()).passed


def test_single_class() -> None:
    x, y = data(classes=1)
    report = check_data(FEATURES, x, y, "classification", QualityLimits())
    assert report.failures == ("the target has 1 class(es); at least 2 are needed",)


def test_a_class_too_small_to_stratify() -> None:
    x, y = data()
    values = y.values.copy()
    values[0] = 7
    report = check_data(FEATURES, x, Target(values, y.present), "classification", QualityLimits())
    assert report.failures == ("classes with fewer than 2 rows: 7 (1)",)


def test_constant_regression_target() -> None:
    x, _ = data()
    y = Target(np.full(40, 3.0), np.ones(40, dtype=bool))
    report = check_data(FEATURES, x, y, "regression", QualityLimits())
    assert report.failures == ("the target has a single value: there is nothing to learn",)


def test_several_failures_are_all_reported() -> None:
    x, y = data(rows=10, classes=1)
    x[:, 0] = np.nan
    report = check_data(FEATURES, x, y, "classification", QualityLimits())
    assert len(report.failures) == 3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_rows": 1},
        {"min_rows": 50, "max_rows": 10},
        {"max_missing_fraction": 1.0},
        {"max_missing_fraction": -0.1},
        {"min_class_rows": 1},
    ],
)
def test_nonsensical_limits_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        QualityLimits(**kwargs)  # type: ignore[arg-type]
