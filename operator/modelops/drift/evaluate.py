"""Deciding drift: every selected statistic for every feature, against its threshold.

A feature breaches a metric when its score is strictly greater than the threshold; every score is
"higher = more drift", so callers (the operator, the offline report) need no per-metric logic.
Which metrics apply to which kind of feature:

==============  =======  ===========  ============================================
metric          numeric  categorical  score
==============  =======  ===========  ============================================
``psi``         yes      yes          Population Stability Index
``ks``          yes      no           Kolmogorov-Smirnov D on the binned CDF
``js``          yes      yes          Jensen-Shannon distance, base 2
``wasserstein`` yes      no           Wasserstein-1 / reference std
``chi2``        no       yes          Cramer's V of the chi-square goodness of fit
==============  =======  ===========  ============================================
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from modelops.drift import statistics as stats
from modelops.drift.profile import Kind, Profile

METRICS: tuple[str, ...] = ("psi", "ks", "js", "wasserstein", "chi2")
"""Every metric name a DriftPolicy may use, in report order."""

APPLICABLE_METRICS: dict[Kind, frozenset[str]] = {
    "numeric": frozenset({"psi", "ks", "js", "wasserstein"}),
    "categorical": frozenset({"psi", "js", "chi2"}),
}

DEFAULT_THRESHOLDS: dict[str, float] = {
    "psi": 0.1,
    "ks": 0.1,
    "js": 0.1,
    "wasserstein": 0.2,
    "chi2": 0.15,
}
"""Thresholds calibrated on 1,000-row windows (see README, section drift): with all metrics on,
10 undrifted features raise a false alarm in well under 1 % of windows, and a 0.5 standard
deviation mean shift in one numeric feature is flagged in over 95 % of windows."""


class InsufficientSamplesError(ValueError):
    """The window holds fewer rows than the evaluation needs; no score is computed."""


@dataclass(frozen=True)
class FeatureDrift:
    """Scores of one feature; ``p_values`` holds the tests' p-values (ks, chi2) for context."""

    name: str
    kind: Kind
    samples: int
    scores: dict[str, float]
    thresholds: dict[str, float]
    p_values: dict[str, float] = field(default_factory=dict)

    @cached_property
    def breached_metrics(self) -> tuple[str, ...]:
        """Metrics whose score is above their threshold, in report order (computed once: the
        report is read several times per evaluation)."""
        return tuple(m for m, score in self.scores.items() if score > self.thresholds[m])

    @property
    def breached(self) -> bool:
        """Whether any metric is above its threshold."""
        return bool(self.breached_metrics)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {
            "name": self.name,
            "kind": self.kind,
            "samples": self.samples,
            "scores": dict(self.scores),
            "thresholds": dict(self.thresholds),
            "p_values": dict(self.p_values),
            "breached_metrics": list(self.breached_metrics),
            "breached": self.breached,
        }


@dataclass(frozen=True)
class DriftReport:
    """Drift of one window against a profile."""

    samples: int
    features: tuple[FeatureDrift, ...]

    @property
    def breached_features(self) -> list[str]:
        """Names of the features that breached at least one metric, in profile order."""
        return [feature.name for feature in self.features if feature.breached]

    @property
    def drifted(self) -> bool:
        """Whether any feature breached."""
        return any(feature.breached for feature in self.features)

    def feature(self, name: str) -> FeatureDrift:
        """The named feature's result (KeyError if it was not evaluated)."""
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {
            "samples": self.samples,
            "drifted": self.drifted,
            "breached_features": self.breached_features,
            "features": [feature.to_dict() for feature in self.features],
        }


def compute_drift(
    profile: Profile,
    counts: Any,
    *,
    metrics: Mapping[str, float] | None = None,
    feature_thresholds: Mapping[str, Mapping[str, float]] | None = None,
    features: Collection[str] | None = None,
    min_samples: int = 1,
    scale_wasserstein: bool = True,
) -> DriftReport:
    """Score a window's bin ``counts`` (``(n_features, max_bins)``, as from
    ``Profile.bin_counts``) against ``profile``.

    ``metrics`` maps metric name to threshold (None: every metric at its default threshold);
    ``feature_thresholds`` overrides thresholds per feature, and a metric named only there is
    evaluated for that feature alone; ``features`` restricts the evaluation to a subset. Counts
    may be floats (Prometheus ``increase()``), but must be finite and non-negative.

    Raises InsufficientSamplesError when the window has fewer than ``min_samples`` rows (at least
    one), and ValueError for unknown metrics or features or counts of the wrong shape.
    """
    thresholds = _checked_thresholds(DEFAULT_THRESHOLDS if metrics is None else metrics, "metrics")
    overrides = {
        name: _checked_thresholds(values, f"thresholds of feature {name!r}")
        for name, values in (feature_thresholds or {}).items()
    }
    selected = _selected_features(profile, features, overrides)
    matrix = _checked_counts(profile, counts)
    totals = matrix.sum(axis=1)
    samples = round(float(totals[selected].min()))
    needed = max(int(min_samples), 1)
    if samples < needed:
        raise InsufficientSamplesError(
            f"insufficient samples: the window has {samples} rows, at least {needed} are needed"
        )
    scores, p_values = _all_scores(profile, matrix, scale_wasserstein)
    results = []
    for index in selected:
        feature = profile.features[index]
        wanted = {**thresholds, **overrides.get(feature.name, {})}
        applicable = APPLICABLE_METRICS[feature.kind]
        feature_scores = {
            m: float(scores[m][index])
            for m in METRICS
            if m in wanted and m in applicable and math.isfinite(scores[m][index])
        }
        results.append(
            FeatureDrift(
                name=feature.name,
                kind=feature.kind,
                samples=round(float(totals[index])),
                scores=feature_scores,
                thresholds={m: wanted[m] for m in feature_scores},
                p_values={
                    m: float(p_values[m][index])
                    for m in feature_scores
                    if m in p_values and math.isfinite(p_values[m][index])
                },
            )
        )
    return DriftReport(samples=samples, features=tuple(results))


def _checked_thresholds(values: Mapping[str, float], where: str) -> dict[str, float]:
    checked: dict[str, float] = {}
    for metric, threshold in values.items():
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r} in {where}; known: {', '.join(METRICS)}")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ValueError(f"threshold of {metric!r} in {where} must be a number")
        if not math.isfinite(threshold) or threshold < 0:
            raise ValueError(f"threshold of {metric!r} in {where} must be finite and >= 0")
        checked[metric] = float(threshold)
    return checked


def _selected_features(
    profile: Profile, features: Collection[str] | None, overrides: Mapping[str, object]
) -> list[int]:
    names = profile.feature_names
    unknown = sorted((set(features or ()) | set(overrides)) - set(names))
    if unknown:
        raise ValueError(f"features not in the profile: {unknown}")
    if features is None:
        return list(range(len(names)))
    if not features:
        raise ValueError("no features selected")
    wanted = set(features)
    return [index for index, name in enumerate(names) if name in wanted]


def _checked_counts(profile: Profile, counts: Any) -> NDArray[np.float64]:
    matrix = np.asarray(counts, dtype=np.float64)
    expected = (len(profile.features), profile.max_bins)
    if matrix.shape != expected:
        raise ValueError(f"counts must have shape {expected}, got {matrix.shape}")
    if not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
        raise ValueError("counts must be finite and non-negative")
    for row, feature in enumerate(profile.features):
        if np.any(matrix[row, feature.n_bins :] != 0):
            raise ValueError(
                f"counts for feature {feature.name!r} go beyond its {feature.n_bins} bins"
            )
    return matrix


def _all_scores(
    profile: Profile, counts: NDArray[np.float64], scale_wasserstein: bool
) -> tuple[dict[str, NDArray[np.float64]], dict[str, NDArray[np.float64]]]:
    """Every metric for every feature (NaN where it does not apply or is undefined)."""
    n_features = len(profile.features)
    reference = profile.reference_proportions()
    current = stats.proportions(counts)
    totals = counts.sum(axis=1)
    nan = np.full(n_features, np.nan)
    scores = {
        "psi": stats.psi(reference, current),
        "js": stats.jensen_shannon(reference, current),
        "ks": nan.copy(),
        "wasserstein": nan.copy(),
        "chi2": nan.copy(),
    }
    p_values = {"ks": nan.copy(), "chi2": nan.copy()}
    numeric = [i for i, f in enumerate(profile.features) if f.kind == "numeric"]
    categorical = [i for i, f in enumerate(profile.features) if f.kind == "categorical"]
    if numeric:
        ks = stats.ks_statistic(reference[numeric], current[numeric])
        scores["ks"][numeric] = ks
        p_values["ks"][numeric] = stats.ks_p_value(ks, totals[numeric], float(profile.rows))
        scores["wasserstein"][numeric] = _wasserstein(
            profile, numeric, reference, counts, scale_wasserstein
        )
    if categorical:
        real_bins = np.zeros((len(categorical), profile.max_bins), dtype=bool)
        for row, index in enumerate(categorical):
            real_bins[row, : profile.features[index].n_bins] = True
        statistic, dof = stats.chi_square(reference[categorical], counts[categorical], real_bins)
        scores["chi2"][categorical] = stats.cramers_v(statistic, totals[categorical], dof)
        p_values["chi2"][categorical] = [
            stats.chi_square_p_value(float(x), float(d))
            for x, d in zip(statistic, dof, strict=True)
        ]
    return scores, p_values


def _wasserstein(
    profile: Profile,
    numeric: list[int],
    reference: NDArray[np.float64],
    counts: NDArray[np.float64],
    scale: bool,
) -> NDArray[np.float64]:
    """Wasserstein-1 over the finite bins at their reference centers; NaN without finite data."""
    width = max(len(profile.features[i].centers) for i in numeric)
    positions = np.empty((len(numeric), width))
    finite_bins = np.zeros((len(numeric), width), dtype=bool)
    scales = np.ones(len(numeric))
    for row, index in enumerate(numeric):
        feature = profile.features[index]
        n = len(feature.centers)
        positions[row, :n] = feature.centers
        positions[row, n:] = feature.centers[-1]
        finite_bins[row, :n] = True
        if scale and feature.std > 0:
            scales[row] = feature.std
    ref = np.where(finite_bins, reference[numeric, :width], 0.0)
    cur = np.where(finite_bins, counts[numeric, :width], 0.0)
    distance = stats.wasserstein(ref, cur, positions) / scales
    no_finite_values = cur.sum(axis=1) <= 0
    result: NDArray[np.float64] = np.where(no_finite_values, np.nan, distance)
    return result
