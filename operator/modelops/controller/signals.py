"""The two signals beyond input drift, from a window's counters (pure): prediction drift and the
live metric computed from ground-truth feedback.

The window of an evaluation is one mapping of series keys to growth (``window.SeriesKey``), the
same for every source. Feature bins are keyed ``(feature, bin index)``; the new counters share
the mapping under "feature" names that start with a NUL byte, which no feature name has (a CSV
header cannot hold one), so ``sources.counts_matrix`` ignores them:

- ``(PREDICTION_INDEX, "3")``: served predictions in bin 3 of the profile's output entry (the
  counts document's ``predictions`` list);
- ``(PREDICTION_LABEL, "setosa")``: the same by bin label (``modelops_prediction_bin_total``'s
  ``bin`` label, in ``/metrics`` text and Prometheus);
- ``(FEEDBACK, "rows" | "absError" | "squaredError" | "target" | "targetSquared")``;
- ``(CONFUSION, "<actual>\\x1f<predicted>")``: feedback rows by actual and predicted class.

``target`` is a sum of true values, which may be negative: the only series whose window growth
may be below zero (``SIGNED_KEYS``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from modelops.api import LOWER_IS_BETTER
from modelops.api.driftpolicy import CLASSIFICATION_LIVE_METRICS, REGRESSION_LIVE_METRICS
from modelops.drift import DriftReport, FeatureProfile, Profile, compute_drift
from modelops.serving.counts import Counts, Feedback

PREDICTION_INDEX: Final = "\x00prediction"
PREDICTION_LABEL: Final = "\x00prediction-label"
FEEDBACK: Final = "\x00feedback"
CONFUSION: Final = "\x00confusion"
SEPARATOR: Final = "\x1f"
REGRESSION_SUMS: Final = ("absError", "squaredError", "target", "targetSquared")
SIGNED_KEYS: Final = frozenset({(FEEDBACK, "target")})
"""Series whose growth may be negative (a sum of true values)."""
BASELINE_NAMES: Final = frozenset({"accuracy", "f1", "r2", "mae", "rmse"})
"""Live metrics the trainer also writes to metadata.json (the others have no baseline)."""

Series = Mapping[tuple[str, str], float]


# --- Series of the new counters ----------------------------------------------------------------


def counts_document_series(counts: Counts) -> dict[tuple[str, str], float]:
    """The prediction and feedback series of one counts document (empty when it has neither)."""
    series: dict[tuple[str, str], float] = {}
    if counts.predictions is not None:
        for index, value in enumerate(counts.predictions.tolist()):
            series[(PREDICTION_INDEX, str(index))] = float(value)
    feedback = counts.feedback
    if feedback is not None:
        series[(FEEDBACK, "rows")] = float(feedback.rows)
        if feedback.confusion is not None:
            for i, actual in enumerate(feedback.classes):
                for j, predicted in enumerate(feedback.classes):
                    key = (CONFUSION, actual + SEPARATOR + predicted)
                    series[key] = float(feedback.confusion[i, j])
        else:
            sums = (
                feedback.abs_error,
                feedback.squared_error,
                feedback.target,
                feedback.target_squared,
            )
            for name, value in zip(REGRESSION_SUMS, sums, strict=True):
                series[(FEEDBACK, name)] = value
    return series


def prediction_counts(output: FeatureProfile, series: Series) -> NDArray[np.float64]:
    """The window's predictions per bin of ``output``: by index (counts document) plus by label
    (metrics text, Prometheus); series of bins the output does not have are ignored."""
    counts = np.zeros(output.n_bins, dtype=np.float64)
    by_label = {label: index for index, label in enumerate(output.bin_labels)}
    for (kind, label), value in series.items():
        if value <= 0:
            continue
        if kind == PREDICTION_INDEX and label.isdigit() and int(label) < output.n_bins:
            counts[int(label)] += value
        elif kind == PREDICTION_LABEL and label in by_label:
            counts[by_label[label]] += value
    return counts


def window_feedback(series: Series, classes: Sequence[str] | None) -> Feedback | None:
    """The window's feedback: a confusion matrix over ``classes`` (a classifier; labels not among
    them are ignored) or the regression sums (``classes`` None); None without feedback rows."""
    rows = series.get((FEEDBACK, "rows"), 0.0)
    if classes is not None:
        index = {label: i for i, label in enumerate(classes)}
        matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
        for (kind, pair), value in series.items():
            if kind != CONFUSION or value <= 0:
                continue
            actual, _, predicted = pair.partition(SEPARATOR)
            if actual in index and predicted in index:
                matrix[index[actual], index[predicted]] += round(value)
        total = int(matrix.sum())
        if total <= 0:
            return None
        return Feedback(rows=total, classes=tuple(classes), confusion=matrix)
    if rows <= 0:
        return None
    sums = [series.get((FEEDBACK, name), 0.0) for name in REGRESSION_SUMS]
    return Feedback(
        rows=round(rows),
        abs_error=max(sums[0], 0.0),
        squared_error=max(sums[1], 0.0),
        target=sums[2],
        target_squared=max(sums[3], 0.0),
    )


# --- The live metric ----------------------------------------------------------------------------


def live_metric(metric: str, feedback: Feedback) -> float | None:
    """``metric`` over the feedback, as scikit-learn computes it on the same rows; None when it
    is undefined (no rows; R² of a constant target). ValueError when the metric does not fit
    the model's task (a classification metric on a regressor's feedback, or the reverse)."""
    if feedback.confusion is not None:
        if metric not in CLASSIFICATION_LIVE_METRICS:
            raise ValueError(
                f"{metric} is a regression metric, but the model is a classifier: use one of "
                + ", ".join(sorted(CLASSIFICATION_LIVE_METRICS))
            )
        return _classification_metric(metric, feedback.confusion.astype(np.float64))
    if metric not in REGRESSION_LIVE_METRICS:
        raise ValueError(
            f"{metric} is a classification metric, but the model is a regressor: use one of "
            + ", ".join(sorted(REGRESSION_LIVE_METRICS))
        )
    return _regression_metric(metric, feedback)


def _ratio(top: NDArray[np.float64], bottom: NDArray[np.float64]) -> NDArray[np.float64]:
    """top / bottom, 0 where bottom is 0 (scikit-learn's zero_division=0)."""
    safe = np.where(bottom > 0, bottom, 1.0)
    result: NDArray[np.float64] = np.where(bottom > 0, top / safe, 0.0)
    return result


def _classification_metric(metric: str, confusion: NDArray[np.float64]) -> float | None:
    total = confusion.sum()
    if total <= 0:
        return None
    tp = np.diag(confusion)
    actual = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    if metric == "accuracy":
        return float(tp.sum() / total)
    present = (actual + predicted) > 0  # scikit-learn's labels: those in y_true or y_pred
    if metric == "balanced_accuracy":
        return float(np.mean(tp[actual > 0] / actual[actual > 0]))
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, actual)
    f1 = _ratio(2 * tp, actual + predicted)
    if metric == "f1":  # macro, as the trainer's holdout f1 in metadata.json
        return float(np.mean(f1[present]))
    chosen = precision if metric == "precision" else recall
    if len(confusion) == 2:  # binary: the second class is the positive one
        return float(chosen[1])
    return float(np.mean(chosen[present]))


def _regression_metric(metric: str, feedback: Feedback) -> float | None:
    n = feedback.rows
    if n <= 0:
        return None
    if metric == "mae":
        return feedback.abs_error / n
    if metric == "rmse":
        return math.sqrt(feedback.squared_error / n)
    total_variance = feedback.target_squared - feedback.target**2 / n
    if total_variance <= 1e-12 * max(feedback.target_squared, 1.0):
        return None
    return 1.0 - feedback.squared_error / total_variance


@dataclass(frozen=True)
class PerformanceVerdict:
    """Whether the live metric is degraded, and the message that says why (or why not)."""

    degraded: bool
    message: str


def judge_performance(
    metric: str,
    value: float,
    baseline: float | None,
    *,
    max_drop: float | None,
    minimum: float | None,
    maximum: float | None,
) -> PerformanceVerdict:
    """Degraded when ``value`` is worse than ``baseline`` by more than ``max_drop`` (lower is
    better for mae and rmse), below ``minimum`` or above ``maximum``."""
    lower_is_better = metric in LOWER_IS_BETTER
    problems: list[str] = []
    if max_drop is not None and baseline is not None:
        drop = value - baseline if lower_is_better else baseline - value
        if drop > max_drop:
            problems.append(
                f"{metric} {value:.4g} is {drop:.4g} worse than the holdout {baseline:.4g} "
                f"(maxDrop {max_drop:g})"
            )
    if minimum is not None and value < minimum:
        problems.append(f"{metric} {value:.4g} is below min {minimum:g}")
    if maximum is not None and value > maximum:
        problems.append(f"{metric} {value:.4g} is above max {maximum:g}")
    if problems:
        return PerformanceVerdict(True, "; ".join(problems) + ".")
    against = f" (holdout {baseline:.4g})" if baseline is not None else ""
    unknown = (
        " The holdout value is unknown, so maxDrop cannot apply."
        if max_drop is not None and baseline is None
        else ""
    )
    return PerformanceVerdict(False, f"{metric} {value:.4g}{against} is within bounds.{unknown}")


def holdout_baseline(metric: str, metadata_metrics: Mapping[str, float]) -> float | None:
    """The serving model's own holdout value of ``metric`` (metadata.json), if the trainer wrote
    one under the same definition."""
    if metric not in BASELINE_NAMES:
        return None
    value = metadata_metrics.get(metric)
    return float(value) if value is not None and math.isfinite(value) else None


# --- Prediction drift ----------------------------------------------------------------------------


def score_predictions(
    profile: Profile,
    counts: NDArray[np.float64],
    thresholds: Mapping[str, float],
    min_samples: int,
) -> DriftReport:
    """Drift of the window's predictions against the profile's output entry, with the feature
    statistics (those that apply to the output's kind). InsufficientSamplesError below
    ``min_samples``; ValueError when the profile has no output entry."""
    if profile.output is None:
        raise ValueError("the model's profile has no output entry (it predates prediction drift)")
    reference = Profile(features=(profile.output,), rows=profile.rows)
    return compute_drift(
        reference,
        counts.reshape(1, -1),
        metrics=thresholds,
        min_samples=min_samples,
    )
