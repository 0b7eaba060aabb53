"""Holdout metrics are scikit-learn's own, on a seeded (stratified) split."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)
from sklearn.svm import LinearSVC

from modelops.training.errors import QualityGateError
from modelops.training.evaluate import (
    CLASSIFICATION_METRICS,
    HIGHER_IS_BETTER,
    REGRESSION_METRICS,
    classification_metrics,
    score,
    split_holdout,
)


def test_multiclass_scores_match_scikit_learn() -> None:
    x, y = load_iris(return_X_y=True)
    holdout = split_holdout(x, y, "classification", seed=0)
    model = LogisticRegression(max_iter=500).fit(holdout.x_train, holdout.y_train)
    proba = model.predict_proba(holdout.x_test)
    predicted = model.predict(holdout.x_test)
    metrics = score(model, holdout.x_test, holdout.y_test, "classification")
    assert tuple(metrics) == CLASSIFICATION_METRICS
    assert metrics["accuracy"] == accuracy_score(holdout.y_test, predicted)
    assert metrics["f1"] == f1_score(holdout.y_test, predicted, average="macro")
    assert metrics["roc_auc"] == roc_auc_score(holdout.y_test, proba, multi_class="ovr")
    assert metrics["log_loss"] == log_loss(holdout.y_test, proba)


def test_binary_roc_auc_uses_the_positive_class_probability() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 2))
    y = np.where(x[:, 0] + rng.normal(size=200) > 0, "yes", "no")
    model = LogisticRegression().fit(x, y)
    metrics = score(model, x, y, "classification")
    assert metrics["roc_auc"] == roc_auc_score(y == "yes", model.predict_proba(x)[:, 1])


def test_regression_scores_match_scikit_learn() -> None:
    x, y = load_diabetes(return_X_y=True)
    holdout = split_holdout(x, y, "regression", seed=0)
    model = LinearRegression().fit(holdout.x_train, holdout.y_train)
    predicted = model.predict(holdout.x_test)
    metrics = score(model, holdout.x_test, holdout.y_test, "regression")
    assert tuple(metrics) == REGRESSION_METRICS
    assert metrics["r2"] == r2_score(holdout.y_test, predicted)
    assert metrics["mae"] == mean_absolute_error(holdout.y_test, predicted)
    assert metrics["rmse"] == pytest.approx(mean_squared_error(holdout.y_test, predicted) ** 0.5)


def test_models_without_probabilities_get_no_probability_metrics() -> None:
    x, y = load_iris(return_X_y=True)
    model = LinearSVC().fit(x, y)
    assert set(score(model, x, y, "classification")) == {"accuracy", "f1"}


def test_undefined_metrics_are_left_out_not_nan() -> None:
    y_true = np.array([1, 1, 1])  # one class only: ROC AUC is undefined
    proba = np.array([[0.2, 0.8], [0.4, 0.6], [0.9, 0.1]])
    metrics = classification_metrics(y_true, np.array([1, 1, 0]), proba, np.array([0, 1]))
    assert "roc_auc" not in metrics
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    # labels the model never saw make log_loss and roc_auc undefined as well
    metrics = classification_metrics(
        np.array([0, 2]), np.array([0, 1]), proba[:2], np.array([0, 1])
    )
    assert set(metrics) == {"accuracy", "f1"}


def test_split_is_seeded_and_stratified() -> None:
    x, y = load_iris(return_X_y=True)
    first = split_holdout(x, y, "classification", seed=5)
    again = split_holdout(x, y, "classification", seed=5)
    other = split_holdout(x, y, "classification", seed=6)
    np.testing.assert_array_equal(first.x_test, again.x_test)
    assert not np.array_equal(first.x_test, other.x_test)
    assert sorted(np.bincount(first.y_test)) == [12, 13, 13]  # 25% of each 50-row class
    assert len(first.y_train) + len(first.y_test) == len(y)


def test_a_holdout_too_small_for_every_class_fails_the_gate() -> None:
    x = np.arange(8.0).reshape(-1, 1)
    y = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    with pytest.raises(QualityGateError, match="cannot split a holdout"):
        split_holdout(x, y, "classification", seed=0)


def test_every_metric_has_a_direction() -> None:
    assert set(HIGHER_IS_BETTER) == {*CLASSIFICATION_METRICS, *REGRESSION_METRICS}
