"""The drift statistics against scipy, and their properties (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import special
from scipy import stats as scipy_stats
from scipy.spatial.distance import jensenshannon

from modelops.drift import build_profile, compute_drift
from modelops.drift import statistics as stats

SEEDS = range(5)


def random_proportions(rng: np.random.Generator, bins: int, empty: int = 0) -> np.ndarray:
    shares = rng.dirichlet(np.ones(bins))
    shares[rng.choice(bins, size=empty, replace=False)] = 0
    return shares / shares.sum()


# ------------------------------------------------------------------------- against scipy


@pytest.mark.parametrize("seed", SEEDS)
def test_jensen_shannon_equals_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.stack([random_proportions(rng, 12, empty=seed % 3) for _ in range(4)])
    q = np.stack([random_proportions(rng, 12, empty=(seed + 1) % 3) for _ in range(4)])
    ours = stats.jensen_shannon(p, q)
    expected = [jensenshannon(a, b, base=2) for a, b in zip(p, q, strict=True)]
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_wasserstein_equals_scipy_with_weights(seed: int) -> None:
    rng = np.random.default_rng(seed)
    positions = np.sort(rng.normal(size=(3, 9)) * 5, axis=1)
    p = np.stack([random_proportions(rng, 9, empty=1) for _ in range(3)])
    q = rng.integers(0, 50, size=(3, 9)).astype(float)
    ours = stats.wasserstein(p, q, positions)
    expected = [
        scipy_stats.wasserstein_distance(x, x, u_weights=a, v_weights=b)
        for x, a, b in zip(positions, p, q, strict=True)
    ]
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_chi_square_equals_scipy_chisquare(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.stack([rng.dirichlet(np.full(6, 5.0)) for _ in range(3)])
    assert p.min() > stats.PSI_EPSILON  # no floor applies, so the statistic is scipy's
    counts = np.stack([rng.multinomial(500, rng.dirichlet(np.ones(6))) for _ in range(3)])
    statistic, dof = stats.chi_square(p, counts.astype(float), np.ones_like(p, dtype=bool))
    for row in range(3):
        expected = scipy_stats.chisquare(counts[row], f_exp=p[row] * counts[row].sum())
        assert statistic[row] == pytest.approx(expected.statistic, rel=1e-10)
        assert dof[row] == 5
        p_value = stats.chi_square_p_value(float(statistic[row]), float(dof[row]))
        assert p_value == pytest.approx(expected.pvalue, rel=1e-8, abs=1e-300)


@pytest.mark.parametrize("dof", [1, 2, 3, 7.5, 20, 150])
def test_chi_square_p_value_matches_scipy_across_the_range(dof: float) -> None:
    for x in [0.0, 0.01, 0.5, dof / 2, dof, dof + 1, 2 * dof + 10, 10 * dof + 50]:
        assert stats.chi_square_p_value(x, dof) == pytest.approx(
            scipy_stats.chi2.sf(x, dof), rel=1e-9, abs=1e-300
        )


def test_kolmogorov_survival_function_matches_scipy() -> None:
    x = np.concatenate([[0.0, 1e-3, 0.2], np.linspace(0.3, 3.0, 55), [4.0, 6.0, 10.0]])
    np.testing.assert_allclose(stats.kolmogorov_sf(x), special.kolmogorov(x), atol=1e-12)


def test_psi_by_hand_with_documented_epsilon() -> None:
    p = np.array([[0.5, 0.5, 0.0]])
    q = np.array([[0.25, 0.5, 0.25]])
    eps = stats.PSI_EPSILON
    expected = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.25 - eps) * np.log(0.25 / eps)
    assert stats.psi(p, q)[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_binned_ks_is_within_the_documented_bound_of_ks_2samp(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(5000, 1))
    current = rng.normal(loc=0.1 * seed, scale=1 + 0.1 * seed, size=(800, 1))
    profile = build_profile(reference, ["x"])
    counts = profile.bin_counts(current)
    report = compute_drift(profile, counts, metrics={"ks": 0.1})
    binned = report.features[0].scores["ks"]
    raw = scipy_stats.ks_2samp(reference[:, 0], current[:, 0]).statistic
    shares = np.maximum(profile.reference_proportions()[0], counts[0] / counts[0].sum())
    assert binned <= raw + 1e-12
    assert raw <= binned + shares.max() + 1e-12


def test_ks_p_value_is_the_asymptotic_kolmogorov_p_value() -> None:
    d, n, m = np.array([0.05, 0.1]), np.array([1000.0, 400.0]), 20_000.0
    expected = special.kolmogorov(d * np.sqrt(n * m / (n + m)))
    np.testing.assert_allclose(stats.ks_p_value(d, n, m), expected, atol=1e-12)


# ----------------------------------------------------------------------------- properties


def proportion_rows(bins: int) -> st.SearchStrategy[np.ndarray]:
    weights = arrays(np.float64, bins, elements=st.floats(0, 1000, allow_subnormal=False))
    return weights.filter(lambda w: w.sum() > 1e-6).map(lambda w: (w / w.sum())[None, :])


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 15).flatmap(lambda b: st.tuples(proportion_rows(b), proportion_rows(b))))
def test_symmetric_statistics_are_symmetric_and_bounded(pair: tuple[np.ndarray, ...]) -> None:
    p, q = pair
    for name, function in (("psi", stats.psi), ("js", stats.jensen_shannon)):
        forward, backward = function(p, q)[0], function(q, p)[0]
        assert forward == pytest.approx(backward, rel=1e-9, abs=1e-12), name
        assert forward >= 0
    assert 0 <= stats.jensen_shannon(p, q)[0] <= 1
    ks = stats.ks_statistic(p, q)[0]
    assert 0 <= ks <= 1
    assert ks == pytest.approx(stats.ks_statistic(q, p)[0])
    positions = np.cumsum(np.ones_like(p), axis=1)
    w = stats.wasserstein(p, q, positions)[0]
    assert w >= 0
    assert w == pytest.approx(stats.wasserstein(q, p, positions)[0], rel=1e-9, abs=1e-12)
    assert w <= positions[0, -1] - positions[0, 0] + 1e-9


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 15).flatmap(proportion_rows), st.integers(1, 10_000))
def test_identical_distributions_score_zero(p: np.ndarray, n: int) -> None:
    positions = np.cumsum(np.ones_like(p), axis=1)
    assert stats.psi(p, p)[0] == 0
    assert stats.jensen_shannon(p, p)[0] == pytest.approx(0, abs=1e-7)
    assert stats.ks_statistic(p, p)[0] == pytest.approx(0, abs=1e-12)
    assert stats.wasserstein(p, p, positions)[0] == pytest.approx(0, abs=1e-9)
    statistic, dof = stats.chi_square(p, p * n, np.ones_like(p, dtype=bool))
    assert statistic[0] == pytest.approx(0, abs=1e-9)
    assert stats.cramers_v(statistic, np.array([float(n)]), dof)[0] == pytest.approx(0, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.integers(3, 12).flatmap(lambda b: st.tuples(proportion_rows(b), proportion_rows(b))))
def test_disjoint_support_gives_maximal_js_and_ks(pair: tuple[np.ndarray, ...]) -> None:
    p, q = pair
    left = np.zeros_like(p)
    left[0, 0] = 1
    right = np.zeros_like(q)
    right[0, -1] = 1
    assume(p.shape == q.shape)
    assert stats.jensen_shannon(left, right)[0] == pytest.approx(1)
    assert stats.ks_statistic(left, right)[0] == pytest.approx(1)


@settings(max_examples=100, deadline=None)
@given(st.floats(0, 20))
def test_kolmogorov_sf_is_a_survival_function(x: float) -> None:
    value = stats.kolmogorov_sf(np.array([x]))[0]
    assert 0 <= value <= 1
    assert value >= stats.kolmogorov_sf(np.array([x + 0.1]))[0] - 1e-12
