"""The default thresholds are quiet without drift and sensitive to a half-sd shift (issue targets).

Measured on 1,000-row windows drawn fresh from the reference distributions: ten numeric
features of different shapes (normal, skewed, heavy-tailed, bounded, discrete), every metric on
at its default threshold, as a DriftPolicy uses them by default. Run with ``-s`` to see the rates;
the README quotes them.
"""

from __future__ import annotations

import numpy as np
import pytest

from modelops.drift import build_profile, compute_drift

WINDOWS = 1000
WINDOW_ROWS = 1000
REFERENCE_ROWS = 20_000
SHIFT_SD = 0.5


def numeric_sample(rng: np.random.Generator, rows: int) -> np.ndarray:
    return np.column_stack(
        [
            rng.normal(size=rows),
            rng.lognormal(size=rows),
            rng.exponential(size=rows),
            rng.uniform(size=rows),
            rng.poisson(3, size=rows),
            rng.standard_t(3, size=rows),
            rng.gamma(0.5, size=rows),
            rng.normal(100, 10, size=rows),
            rng.gamma(5, size=rows),
            rng.beta(0.5, 0.5, size=rows),
        ]
    ).astype(np.float64)


def categorical_sample(rng: np.random.Generator, rows: int, shift: float = 0.0) -> np.ndarray:
    """Four categorical features of 2, 3, 6 and 12 categories; ``shift`` moves mass in the
    first one from its first category to its second."""
    columns = []
    for size in (2, 3, 6, 12):
        shares = np.linspace(1, 2, size)
        shares /= shares.sum()
        if shift and size == 2:
            shares = shares + np.array([-shift, shift])
        columns.append(rng.choice([f"c{i}" for i in range(size)], size=rows, p=shares))
    return np.column_stack(columns).astype(object)


@pytest.mark.slow
def test_numeric_defaults_are_quiet_and_sensitive() -> None:
    rng = np.random.default_rng(20261126)
    reference = numeric_sample(rng, REFERENCE_ROWS)
    names = [f"f{i}" for i in range(reference.shape[1])]
    profile = build_profile(reference, names)
    stds = reference.std(axis=0)
    false_alarms = detections = 0
    quiet_scores: dict[str, list[float]] = {}
    shifted_scores: dict[str, list[float]] = {}
    for index in range(WINDOWS):
        current = numeric_sample(rng, WINDOW_ROWS)
        report = compute_drift(profile, profile.bin_counts(current))
        false_alarms += report.drifted
        for feature in report.features:
            for metric, score in feature.scores.items():
                quiet_scores.setdefault(metric, []).append(score)
        shifted = index % len(names)
        current[:, shifted] += SHIFT_SD * stds[shifted]
        report = compute_drift(profile, profile.bin_counts(current))
        detections += names[shifted] in report.breached_features
        for metric, score in report.features[shifted].scores.items():
            shifted_scores.setdefault(metric, []).append(score)
    false_alarm_rate = false_alarms / WINDOWS
    detection_rate = detections / WINDOWS
    print(
        f"\nnumeric: {WINDOWS} windows of {WINDOW_ROWS} rows, 10 features: "
        f"false alarms {false_alarm_rate:.2%}, 0.5 sd shift detected {detection_rate:.2%}"
    )
    for metric, scores in quiet_scores.items():
        print(
            f"  {metric:12} no drift: 99.9th percentile {np.quantile(scores, 0.999):.3f}, "
            f"max {max(scores):.3f}; shifted feature: 5th percentile "
            f"{np.quantile(shifted_scores[metric], 0.05):.3f}"
        )
    assert false_alarm_rate < 0.01
    assert detection_rate >= 0.95


@pytest.mark.slow
def test_categorical_defaults_are_quiet_and_sensitive() -> None:
    rng = np.random.default_rng(11)
    names = ["two", "three", "six", "twelve"]
    reference = categorical_sample(rng, REFERENCE_ROWS)
    profile = build_profile(reference, names, categorical=names)
    false_alarms = detections = 0
    for _ in range(WINDOWS):
        quiet = categorical_sample(rng, WINDOW_ROWS)
        false_alarms += compute_drift(profile, profile.bin_counts(quiet)).drifted
        moved = categorical_sample(rng, WINDOW_ROWS, shift=0.1)
        detections += "two" in compute_drift(profile, profile.bin_counts(moved)).breached_features
    false_alarm_rate = false_alarms / WINDOWS
    detection_rate = detections / WINDOWS
    print(
        f"\ncategorical: {WINDOWS} windows of {WINDOW_ROWS} rows, 4 features: "
        f"false alarms {false_alarm_rate:.2%}, 10-point share shift detected {detection_rate:.2%}"
    )
    assert false_alarm_rate < 0.01
    assert detection_rate >= 0.95
