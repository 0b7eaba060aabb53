"""One seeded holdout and the metrics both models are scored with on it.

Pure: arrays in, numbers out. Metrics are scikit-learn's own functions; a metric that is not
defined for the data (e.g. ROC AUC when the model has no probabilities, or when the holdout lacks
one of its classes) is left out rather than reported as NaN, because JSON cannot carry NaN and a
made-up number would mislead the promotion decision.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)
from sklearn.model_selection import train_test_split

from modelops.artifacts import Task
from modelops.training.data import FloatArray
from modelops.training.errors import QualityGateError

CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("r2", "mae", "rmse")

#: Whether a larger value of each metric is better (the operator compares with this).
HIGHER_IS_BETTER: Mapping[str, bool] = {
    "accuracy": True,
    "f1": True,
    "roc_auc": True,
    "log_loss": False,
    "r2": True,
    "mae": False,
    "rmse": False,
}

DEFAULT_TEST_SIZE = 0.25

Labels = npt.NDArray[Any]
Features = npt.NDArray[Any]
"""float64, or an object matrix of floats and text when a model has categorical features."""


@dataclass(frozen=True)
class Holdout:
    """A train/test split of one data set."""

    x_train: Features
    x_test: Features
    y_train: Labels
    y_test: Labels


def split_holdout(
    x: Features, y: Labels, task: Task, *, test_size: float = DEFAULT_TEST_SIZE, seed: int
) -> Holdout:
    """A seeded split, stratified by class for classification so both sides see every class."""
    try:
        x_train, x_test, y_train, y_test = train_test_split(
            x,
            y,
            test_size=test_size,
            random_state=seed,
            shuffle=True,
            stratify=y if task == "classification" else None,
        )
    except ValueError as exc:  # e.g. fewer holdout rows than classes
        raise QualityGateError(f"cannot split a holdout of {test_size:.0%}: {exc}") from exc
    return Holdout(x_train, x_test, y_train, y_test)


def score(model: Any, x: Features, y: Labels, task: Task) -> dict[str, float]:
    """Score a fitted model on ``x``, ``y`` with the metrics of its task."""
    predicted = model.predict(x)
    if task == "regression":
        return regression_metrics(y, predicted)
    proba = None
    classes = getattr(model, "classes_", None)
    if hasattr(model, "predict_proba") and classes is not None:
        proba = model.predict_proba(x)
    return classification_metrics(y, predicted, proba, classes)


def classification_metrics(
    y_true: Labels,
    y_pred: Labels,
    proba: FloatArray | None = None,
    classes: Labels | None = None,
) -> dict[str, float]:
    """accuracy, macro f1, and with class probabilities roc_auc (one-vs-rest) and log_loss."""
    metrics = {
        "accuracy": accuracy_score(y_true, y_pred),
        "f1": f1_score(y_true, y_pred, average="macro", zero_division=0),
    }
    if proba is not None and classes is not None and len(classes) >= 2:
        metrics["roc_auc"] = _defined(lambda: _roc_auc(y_true, proba, classes))
        metrics["log_loss"] = _defined(lambda: log_loss(y_true, proba, labels=classes))
    return _finite(metrics)


def _roc_auc(y_true: Labels, proba: FloatArray, classes: Labels) -> float:
    if len(classes) == 2:
        return float(roc_auc_score(y_true == classes[1], proba[:, 1]))
    return float(roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=classes))


def regression_metrics(y_true: FloatArray, y_pred: FloatArray) -> dict[str, float]:
    """r2, mean absolute error and root mean squared error."""
    return _finite(
        {
            "r2": r2_score(y_true, y_pred),
            "mae": mean_absolute_error(y_true, y_pred),
            "rmse": root_mean_squared_error(y_true, y_pred),
        }
    )


def _defined(compute: Any) -> float:
    """The metric, or NaN where scikit-learn says it is undefined for this data."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(compute())
    except ValueError:
        return math.nan


def _finite(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {name: float(value) for name, value in metrics.items() if np.isfinite(value)}
