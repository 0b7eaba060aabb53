"""compute_drift: metric selection, thresholds, verdicts and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelops.drift import (
    DEFAULT_THRESHOLDS,
    METRICS,
    InsufficientSamplesError,
    Profile,
    build_profile,
    compute_drift,
)


@pytest.fixture(scope="module")
def profile() -> Profile:
    rng = np.random.default_rng(0)
    data = np.empty((5000, 3), dtype=object)
    data[:, 0] = rng.normal(size=5000)
    data[:, 1] = rng.exponential(size=5000)
    data[:, 2] = rng.choice(["a", "b", "c"], size=5000, p=[0.5, 0.3, 0.2])
    return build_profile(data, ["x", "y", "colour"], categorical=["colour"])


def window(rng: np.random.Generator, rows: int = 1000, shift: float = 0.0) -> np.ndarray:
    data = np.empty((rows, 3), dtype=object)
    data[:, 0] = rng.normal(loc=shift, size=rows)
    data[:, 1] = rng.exponential(size=rows)
    data[:, 2] = rng.choice(["a", "b", "c"], size=rows, p=[0.5, 0.3, 0.2])
    return data


def test_contract_constants() -> None:
    assert METRICS == ("psi", "ks", "js", "wasserstein", "chi2")
    assert set(DEFAULT_THRESHOLDS) == set(METRICS)
    assert all(value > 0 for value in DEFAULT_THRESHOLDS.values())


def test_metrics_apply_by_kind(profile: Profile) -> None:
    report = compute_drift(profile, profile.bin_counts(window(np.random.default_rng(1))))
    x, y, colour = report.features
    assert tuple(x.scores) == ("psi", "ks", "js", "wasserstein")
    assert tuple(colour.scores) == ("psi", "js", "chi2")
    assert set(x.p_values) == {"ks"}
    assert set(colour.p_values) == {"chi2"}
    assert x.thresholds == {m: DEFAULT_THRESHOLDS[m] for m in x.scores}
    assert report.samples == 1000
    assert x.samples == y.samples == colour.samples == 1000
    assert x.kind == "numeric"
    assert colour.kind == "categorical"


def test_undrifted_window_is_quiet_and_a_shift_is_flagged(profile: Profile) -> None:
    rng = np.random.default_rng(2)
    quiet = compute_drift(profile, profile.bin_counts(window(rng)))
    assert quiet.breached_features == []
    assert not quiet.drifted
    shifted = compute_drift(profile, profile.bin_counts(window(rng, shift=1.0)))
    assert shifted.breached_features == ["x"]
    assert set(shifted.feature("x").breached_metrics) == {"psi", "ks", "js", "wasserstein"}
    assert shifted.feature("x").breached
    assert shifted.feature("x").p_values["ks"] < 1e-10
    assert shifted.drifted


def test_breach_is_strictly_above_the_threshold(profile: Profile) -> None:
    counts = profile.bin_counts(window(np.random.default_rng(3), shift=0.3))
    psi = compute_drift(profile, counts, metrics={"psi": 0}).features[0].scores["psi"]
    at = compute_drift(profile, counts, metrics={"psi": psi})
    below = compute_drift(profile, counts, metrics={"psi": math.nextafter(psi, 0)})
    assert "x" not in at.breached_features
    assert "x" in below.breached_features


def test_metric_selection_and_per_feature_overrides(profile: Profile) -> None:
    counts = profile.bin_counts(window(np.random.default_rng(4), shift=1.0))
    report = compute_drift(
        profile,
        counts,
        metrics={"ks": 0.1},
        feature_thresholds={"x": {"ks": 0.9}, "colour": {"chi2": 0.5}},
    )
    x, y, colour = report.features
    assert x.scores.keys() == {"ks"}
    assert x.thresholds == {"ks": 0.9}
    assert not x.breached
    assert y.thresholds == {"ks": 0.1}
    assert colour.scores.keys() == {"chi2"}  # a metric named only in an override
    assert colour.thresholds == {"chi2": 0.5}


def test_feature_subset(profile: Profile) -> None:
    counts = profile.bin_counts(window(np.random.default_rng(5)))
    report = compute_drift(profile, counts, features=["colour", "x"])
    assert [feature.name for feature in report.features] == ["x", "colour"]


def test_empty_and_too_small_windows_raise_insufficient_samples(profile: Profile) -> None:
    empty = np.zeros((3, profile.max_bins))
    with pytest.raises(InsufficientSamplesError, match=r"insufficient samples: .* 0 rows"):
        compute_drift(profile, empty)
    small = profile.bin_counts(window(np.random.default_rng(6), rows=99))
    with pytest.raises(InsufficientSamplesError, match="99 rows, at least 100"):
        compute_drift(profile, small, min_samples=100)
    assert compute_drift(profile, small, min_samples=99).samples == 99
    assert issubclass(InsufficientSamplesError, ValueError)


def test_float_counts_from_prometheus_are_accepted(profile: Profile) -> None:
    counts = profile.bin_counts(window(np.random.default_rng(7))).astype(float) * 1.5
    report = compute_drift(profile, counts)
    assert report.samples == 1500
    assert not report.drifted


def test_all_missing_numeric_window_is_drift_without_wasserstein(profile: Profile) -> None:
    data = window(np.random.default_rng(8))
    data[:, 0] = None
    x = compute_drift(profile, profile.bin_counts(data)).feature("x")
    assert "wasserstein" not in x.scores
    assert x.scores["ks"] == pytest.approx(1.0)
    assert {"psi", "ks", "js"} <= set(x.breached_metrics)


def test_unseen_categories_are_drift(profile: Profile) -> None:
    data = window(np.random.default_rng(9))
    data[:100, 2] = "zebra"
    colour = compute_drift(profile, profile.bin_counts(data)).feature("colour")
    assert colour.breached
    assert "chi2" in colour.breached_metrics
    assert math.isfinite(colour.scores["chi2"])
    assert colour.p_values["chi2"] < 1e-10


def test_constant_feature_shift_is_caught_by_the_bin_statistics() -> None:
    profile = build_profile(np.column_stack([np.full(100, 2.0), np.arange(100.0)]), ["k", "i"])
    same = compute_drift(profile, profile.bin_counts(np.column_stack([np.full(50, 2.0)] * 2)))
    assert same.feature("k").scores == {"psi": 0.0, "ks": 0.0, "js": 0.0, "wasserstein": 0.0}
    moved = compute_drift(profile, profile.bin_counts(np.column_stack([np.full(50, 3.0)] * 2)))
    assert {"psi", "ks", "js"} <= set(moved.feature("k").breached_metrics)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": {"entropy": 0.1}}, "unknown metric 'entropy'"),
        ({"metrics": {"psi": -1.0}}, "finite and >= 0"),
        ({"metrics": {"psi": float("nan")}}, "finite and >= 0"),
        ({"metrics": {"psi": "high"}}, "must be a number"),
        ({"features": ["nope"]}, r"not in the profile: \['nope'\]"),
        ({"features": []}, "no features selected"),
        ({"feature_thresholds": {"nope": {"psi": 0.1}}}, "not in the profile"),
        ({"feature_thresholds": {"x": {"bogus": 0.1}}}, "unknown metric 'bogus'"),
    ],
)
def test_bad_arguments_are_value_errors(
    profile: Profile, kwargs: dict[str, object], message: str
) -> None:
    counts = profile.bin_counts(window(np.random.default_rng(10)))
    with pytest.raises(ValueError, match=message):
        compute_drift(profile, counts, **kwargs)  # type: ignore[arg-type]


def test_counts_of_the_wrong_shape_or_values_are_rejected(profile: Profile) -> None:
    counts = profile.bin_counts(window(np.random.default_rng(11))).astype(float)
    with pytest.raises(ValueError, match="shape"):
        compute_drift(profile, counts[:2])
    bad = counts.copy()
    bad[0, 0] = -1
    with pytest.raises(ValueError, match="non-negative"):
        compute_drift(profile, bad)
    bad = counts.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        compute_drift(profile, bad)
    bad = counts.copy()
    bad[2, -1] = 5  # beyond the categorical feature's bins
    with pytest.raises(ValueError, match="beyond its 5 bins"):
        compute_drift(profile, bad)


def test_report_serialises_to_plain_data(profile: Profile) -> None:
    report = compute_drift(profile, profile.bin_counts(window(np.random.default_rng(12), shift=1)))
    doc = report.to_dict()
    assert doc["drifted"] is True
    assert doc["breached_features"] == ["x"]
    assert doc["features"][0]["breached_metrics"] == ["psi", "ks", "js", "wasserstein"]
    with pytest.raises(KeyError):
        report.feature("nope")


def test_wasserstein_can_be_left_in_feature_units(profile: Profile) -> None:
    counts = profile.bin_counts(window(np.random.default_rng(13), shift=1.0))
    scaled = compute_drift(profile, counts, metrics={"wasserstein": 1}).features[0]
    raw = compute_drift(
        profile, counts, metrics={"wasserstein": 1}, scale_wasserstein=False
    ).features[0]
    std = profile.feature("x").std
    assert scaled.scores["wasserstein"] == pytest.approx(raw.scores["wasserstein"] / std)
    assert raw.scores["wasserstein"] == pytest.approx(1.0, abs=0.1)


def test_single_category_feature_scores_zero_until_something_else_arrives() -> None:
    profile = build_profile(np.array([["only"]] * 500, dtype=object), ["c"], categorical=["c"])
    same = compute_drift(profile, profile.bin_counts(np.array([["only"]] * 100, dtype=object)))
    assert same.features[0].scores == {"psi": 0.0, "js": 0.0, "chi2": 0.0}
    mixed = np.array([["only"]] * 90 + [["new"]] * 5 + [[None]] * 5, dtype=object)
    changed = compute_drift(profile, profile.bin_counts(mixed)).features[0]
    assert set(changed.breached_metrics) == {"psi", "js", "chi2"}


def test_nan_and_inf_count_as_missing_and_are_drift_when_frequent(profile: Profile) -> None:
    data = window(np.random.default_rng(14))
    data[:3, 0] = np.nan
    data[3:5, 0] = np.inf
    few = compute_drift(profile, profile.bin_counts(data))
    assert profile.bin_counts(data)[0, profile.feature("x").missing_bin] == 5
    assert not few.drifted  # 0.5 % missing values is not drift at the default thresholds
    data[:200, 0] = -np.inf
    many = compute_drift(profile, profile.bin_counts(data)).feature("x")
    assert {"psi", "ks", "js"} <= set(many.breached_metrics)
