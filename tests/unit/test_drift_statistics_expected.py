"""Expected values of every drift statistic, fixed by hand or by scipy (issue #19).

Nothing here is recomputed from the code's own constants: each expectation is either a worked
number (the arithmetic is in the comment or in the literal expression next to it) or scipy's
answer on the same data. The cases are the ones a mutation slipped through before: two-bin
numeric features (one inner edge: below / above, plus the missing bin), single-category
categorical features, and empty bins where the PSI / chi-square floor decides the value.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from scipy.spatial.distance import jensenshannon
from scipy.special import kolmogorov

from modelops.drift import compute_drift
from modelops.drift import statistics as stats
from modelops.drift.profile import FeatureProfile, Profile

# The floor of PSI and of chi-square expectations, written out here on purpose (never imported):
# 1e-4 is the value documented at operator/modelops/drift/statistics.py `PSI_EPSILON`
# ("an empty bin counts as 0.01 %"). If the code's constant changes, these tests must fail.
FLOOR = 1e-4


def rows(*values: list[float]) -> np.ndarray:
    return np.array(values, dtype=np.float64)


# ------------------------------------------------------------------------------------------ PSI


def test_psi_of_a_two_bin_feature_by_hand() -> None:
    # reference p = [0.5, 0.5, 0] (below 0 / above 0 / missing), current q = [0.8, 0.2, 0]:
    #   (0.8 - 0.5) * ln(0.8 / 0.5) = 0.3 * 0.470004 = 0.141001
    #   (0.2 - 0.5) * ln(0.2 / 0.5) = -0.3 * -0.916291 = 0.274887
    #   missing bin: both floored to the same value -> 0
    #   PSI = 0.415888
    got = stats.psi(rows([0.5, 0.5, 0.0]), rows([0.8, 0.2, 0.0]))
    assert got[0] == pytest.approx(0.4158883083, rel=1e-9)


def test_psi_with_an_empty_reference_bin_uses_the_documented_floor() -> None:
    # reference p = [0.5, 0.5, 0] has no missing values; current q = [0.25, 0.5, 0.25] has 25 %:
    #   (0.25 - 0.5) * ln(0.25 / 0.5)        = -0.25 * -0.693147        = 0.173287
    #   (0.5 - 0.5) * ln(1)                  = 0
    #   (0.25 - 1e-4) * ln(0.25 / 1e-4)      = 0.2499 * ln(2500)
    #                                        = 0.2499 * 7.824046        = 1.955229
    #   PSI = 2.128516   (with a floor of 1e-2 it would be 0.945817)
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.25 - FLOOR) * math.log(0.25 / FLOOR)
    assert expected == pytest.approx(2.1285158933, rel=1e-9)
    got = stats.psi(rows([0.5, 0.5, 0.0]), rows([0.25, 0.5, 0.25]))
    assert got[0] == pytest.approx(expected, rel=1e-9)
    # PSI is symmetric: the empty bin on the current side gives the same value.
    swapped = stats.psi(rows([0.25, 0.5, 0.25]), rows([0.5, 0.5, 0.0]))
    assert swapped[0] == pytest.approx(expected, rel=1e-9)


def test_psi_of_a_single_category_feature_by_hand() -> None:
    # categories ("a",) -> bins [a, unseen, missing]; reference [1, 0, 0]; current [0.7, 0.3, 0]:
    #   (0.7 - 1) * ln(0.7 / 1)              = -0.3 * -0.356675         = 0.107002
    #   (0.3 - 1e-4) * ln(0.3 / 1e-4)        = 0.2999 * ln(3000)
    #                                        = 0.2999 * 8.006368        = 2.401110
    #   missing: both floored -> 0
    #   PSI = 2.508112
    got = stats.psi(rows([1.0, 0.0, 0.0]), rows([0.7, 0.3, 0.0]))
    assert got[0] == pytest.approx(2.5081121167, rel=1e-9)


def test_psi_of_identical_rows_and_of_padding_is_zero() -> None:
    # Padding (0 in both) and equal shares contribute (q - p) * ln(q / p) = 0 exactly.
    got = stats.psi(rows([0.5, 0.5, 0.0, 0.0]), rows([0.5, 0.5, 0.0, 0.0]))
    assert got[0] == 0.0


# ------------------------------------------------------------------------------------------- KS


def test_ks_of_a_two_bin_feature_equals_ks_2samp_on_the_samples() -> None:
    # 50 rows at -1 and 50 at +1 against 80 at -1 and 20 at +1, binned at the edge 0:
    # reference [0.5, 0.5, 0], current [0.8, 0.2, 0]. The CDF gap at the only inner edge is
    # |0.5 - 0.8| = 0.3; at the last edges it is 0. Every value sits on a bin's single point, so
    # the binned statistic is the raw one.
    reference_rows = [-1.0] * 50 + [1.0] * 50
    current_rows = [-1.0] * 80 + [1.0] * 20
    expected = scipy_stats.ks_2samp(reference_rows, current_rows).statistic
    assert expected == pytest.approx(0.3)
    got = stats.ks_statistic(rows([0.5, 0.5, 0.0]), rows([0.8, 0.2, 0.0]))
    assert got[0] == pytest.approx(expected, abs=1e-12)
    # Without the missing bin (a bare two-column matrix) the gap is the same first-bin gap.
    bare = stats.ks_statistic(rows([0.5, 0.5]), rows([0.8, 0.2]))
    assert bare[0] == pytest.approx(0.3, abs=1e-12)


def test_ks_counts_the_missing_bin_last_by_hand() -> None:
    # reference [0.5, 0.5, 0], current [0.5, 0.3, 0.2] (20 % missing):
    #   cumulative reference [0.5, 1.0, 1.0], current [0.5, 0.8, 1.0]
    #   gaps [0, 0.2, 0] -> D = 0.2
    got = stats.ks_statistic(rows([0.5, 0.5, 0.0]), rows([0.5, 0.3, 0.2]))
    assert got[0] == pytest.approx(0.2, abs=1e-12)


def test_ks_of_four_bins_equals_ks_2samp_on_the_samples() -> None:
    # Values 0, 1, 2, 3 with 20/30/40/10 rows against 40/40/10/10 rows:
    #   cumulative reference [0.2, 0.5, 0.9, 1.0], current [0.4, 0.8, 0.9, 1.0]
    #   gaps [0.2, 0.3, 0, 0] -> D = 0.3 (at the second edge: the first gap alone is 0.2)
    reference_rows = [0.0] * 20 + [1.0] * 30 + [2.0] * 40 + [3.0] * 10
    current_rows = [0.0] * 40 + [1.0] * 40 + [2.0] * 10 + [3.0] * 10
    expected = scipy_stats.ks_2samp(reference_rows, current_rows).statistic
    assert expected == pytest.approx(0.3)
    got = stats.ks_statistic(rows([0.2, 0.3, 0.4, 0.1]), rows([0.4, 0.4, 0.1, 0.1]))
    assert got[0] == pytest.approx(expected, abs=1e-12)


def test_ks_p_value_at_the_worked_statistic_is_kolmogorovs() -> None:
    # D = 0.3, n = 100 current, m = 100 reference rows: sqrt(n m / (n + m)) = sqrt(50);
    # the asymptotic p-value is P(K > 0.3 * sqrt(50)) = P(K > 2.12132); x^2 = 4.5, so the series
    # 2 sum (-1)^(k-1) exp(-2 k^2 x^2) is 2 exp(-9) - 2 exp(-36) + ... = 0.000246820 (scipy too).
    got = stats.ks_p_value(np.array([0.3]), np.array([100.0]), 100.0)
    assert got[0] == pytest.approx(kolmogorov(0.3 * math.sqrt(50)), rel=1e-9)
    assert got[0] == pytest.approx(2 * math.exp(-9), rel=1e-9)


# ------------------------------------------------------------------------------ Jensen-Shannon


def test_js_of_a_two_bin_feature_by_hand_and_by_scipy() -> None:
    # p = [0.5, 0.5], q = [1, 0], m = (p + q) / 2 = [0.75, 0.25]
    #   KL(p || m) = 0.5 log2(0.5 / 0.75) + 0.5 log2(0.5 / 0.25) = 0.5 (-0.584963) + 0.5 (1)
    #              = 0.207519
    #   KL(q || m) = 1 log2(1 / 0.75) = 0.415037
    #   JSD = (0.207519 + 0.415037) / 2 = 0.311278; distance = sqrt(JSD) = 0.557923
    got = stats.jensen_shannon(rows([0.5, 0.5, 0.0]), rows([1.0, 0.0, 0.0]))
    assert got[0] == pytest.approx(0.5579230453, rel=1e-9)
    assert got[0] == pytest.approx(jensenshannon([0.5, 0.5], [1.0, 0.0], base=2), rel=1e-12)


def test_js_of_a_single_category_feature_by_hand_and_by_scipy() -> None:
    # p = [1, 0, 0] (a, unseen, missing), q = [0.7, 0.3, 0], m = [0.85, 0.15, 0]
    #   KL(p || m) = log2(1 / 0.85) = 0.234465
    #   KL(q || m) = 0.7 log2(0.7 / 0.85) + 0.3 log2(0.3 / 0.15) = -0.196076 + 0.3 = 0.103924
    #   JSD = 0.169195; distance = 0.411333
    got = stats.jensen_shannon(rows([1.0, 0.0, 0.0]), rows([0.7, 0.3, 0.0]))
    assert got[0] == pytest.approx(0.4113330221, rel=1e-9)
    expected = jensenshannon([1.0, 0.0, 0.0], [0.7, 0.3, 0.0], base=2)
    assert got[0] == pytest.approx(expected, rel=1e-12)


def test_js_of_disjoint_support_is_one() -> None:
    # m = [0.5, 0.5]: KL(p || m) = KL(q || m) = log2(2) = 1, JSD = 1, distance 1.
    got = stats.jensen_shannon(rows([1.0, 0.0, 0.0]), rows([0.0, 1.0, 0.0]))
    assert got[0] == pytest.approx(1.0, abs=1e-12)


# --------------------------------------------------------------------------------- Wasserstein


def test_wasserstein_of_a_two_bin_feature_equals_scipy_on_the_samples() -> None:
    # Mass at -1 and +1: reference 0.5 / 0.5, current 0.8 / 0.2 (as counts 80 / 20).
    # The CDFs differ by 0.3 over the width 2 between the two positions: W1 = 0.3 * 2 = 0.6.
    expected = scipy_stats.wasserstein_distance([-1.0] * 50 + [1.0] * 50, [-1.0] * 80 + [1.0] * 20)
    assert expected == pytest.approx(0.6)
    got = stats.wasserstein(rows([0.5, 0.5]), rows([80.0, 20.0]), rows([-1.0, 1.0]))
    assert got[0] == pytest.approx(expected, rel=1e-12)


def test_wasserstein_with_unequal_widths_by_hand() -> None:
    # positions [0, 1, 3]; reference [0.25, 0.5, 0.25]; current counts [2, 1, 1] = [0.5, 0.25,
    # 0.25]. CDFs [0.25, 0.75, 1] and [0.5, 0.75, 1]: gaps [0.25, 0] over widths [1, 2]:
    # W1 = 0.25 * 1 + 0 * 2 = 0.25.
    got = stats.wasserstein(rows([0.25, 0.5, 0.25]), rows([2.0, 1.0, 1.0]), rows([0.0, 1.0, 3.0]))
    assert got[0] == pytest.approx(0.25, rel=1e-12)
    expected = scipy_stats.wasserstein_distance(
        [0.0, 1.0, 3.0], [0.0, 1.0, 3.0], u_weights=[0.25, 0.5, 0.25], v_weights=[2, 1, 1]
    )
    assert got[0] == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------------- chi-square


def test_chi_square_without_floor_equals_scipy_chisquare() -> None:
    # categories (a, b): reference [0.6, 0.4, 0, 0] (a, b, unseen, missing); counts 50 / 50.
    # expected 60 / 40: X2 = (50 - 60)^2 / 60 + (50 - 40)^2 / 40 = 1.666667 + 2.5 = 4.166667;
    # dof = 2 categories with mass - 1 = 1.
    statistic, dof = stats.chi_square(
        rows([0.6, 0.4, 0.0, 0.0]), rows([50.0, 50.0, 0.0, 0.0]), np.ones((1, 4), dtype=bool)
    )
    expected = scipy_stats.chisquare([50, 50], f_exp=[60, 40])
    assert statistic[0] == pytest.approx(expected.statistic, rel=1e-12)
    assert statistic[0] == pytest.approx(100 / 60 + 100 / 40, rel=1e-12)
    assert dof[0] == 1
    assert stats.chi_square_p_value(float(statistic[0]), float(dof[0])) == pytest.approx(
        expected.pvalue, rel=1e-9
    )


def test_chi_square_of_a_single_category_with_an_unseen_value() -> None:
    # categories ("a",) -> [a, unseen, missing]; reference [1, 0, 0]; counts [70, 30, 0].
    # The unseen bin has no reference mass but 30 rows: its expected share is the floor 1e-4;
    # the missing bin (0 and 0) expects nothing. Shares [1, 1e-4] / 1.0001, n = 100:
    #   expected  [99.990001, 0.0099990001]
    #   X2 = (70 - 99.990001)^2 / 99.990001 + (30 - 0.0099990001)^2 / 0.0099990001
    #      = 8.994901 + 89949.010 = 89958.005
    # dof = max(1 category with mass - 1, 1) = 1. Cramer's V = sqrt(X2 / (n dof)) = 29.993.
    statistic, dof = stats.chi_square(
        rows([1.0, 0.0, 0.0]), rows([70.0, 30.0, 0.0]), np.ones((1, 3), dtype=bool)
    )
    shares = np.array([1.0, FLOOR]) / (1.0 + FLOOR)
    expected = scipy_stats.chisquare([70, 30], f_exp=100 * shares)
    assert expected.statistic == pytest.approx(89958.005, rel=1e-7)
    assert statistic[0] == pytest.approx(expected.statistic, rel=1e-10)
    assert dof[0] == 1
    v = stats.cramers_v(statistic, np.array([100.0]), dof)
    assert v[0] == pytest.approx(29.993, rel=1e-6)


def test_cramers_v_by_hand() -> None:
    # sqrt(4.5 / (100 * 2)) = sqrt(0.0225) = 0.15; no rows -> 0.
    got = stats.cramers_v(np.array([4.5, 3.0]), np.array([100.0, 0.0]), np.array([2.0, 1.0]))
    np.testing.assert_allclose(got, [0.15, 0.0], atol=1e-12)


# ------------------------------------------------------------------- all of it through a profile


def two_bin_and_single_category_profile() -> Profile:
    """A numeric feature with one edge at 0 (bins: below, above, missing), centers -1 / +1 and
    std 1, and a categorical feature with the single category "a"."""
    return Profile(
        features=(
            FeatureProfile(
                name="x",
                kind="numeric",
                proportions=(0.5, 0.5, 0.0),
                edges=(0.0,),
                centers=(-1.0, 1.0),
                mean=0.0,
                std=1.0,
            ),
            FeatureProfile(
                name="c", kind="categorical", proportions=(1.0, 0.0, 0.0), categories=("a",)
            ),
        ),
        rows=100,
    )


def test_compute_drift_scores_two_bin_and_single_category_features() -> None:
    profile = two_bin_and_single_category_profile()
    # x: 80 below 0, 20 above; c: 70 "a", 30 unseen.
    counts = rows([80.0, 20.0, 0.0], [70.0, 30.0, 0.0])
    report = compute_drift(profile, counts, min_samples=100)
    x, c = report.feature("x"), report.feature("c")
    assert set(x.scores) == {"psi", "ks", "js", "wasserstein"}
    assert set(c.scores) == {"psi", "js", "chi2"}
    # x, worked above: PSI 0.415888, KS 0.3, W1 0.6 / std 1 = 0.6, JS by scipy.
    assert x.scores["psi"] == pytest.approx(0.4158883083, rel=1e-9)
    assert x.scores["ks"] == pytest.approx(0.3, abs=1e-12)
    assert x.scores["wasserstein"] == pytest.approx(0.6, rel=1e-12)
    assert x.scores["js"] == pytest.approx(jensenshannon([0.5, 0.5], [0.8, 0.2], base=2))
    # c, worked above: PSI 2.508112, JS 0.411333, Cramer's V 29.993.
    assert c.scores["psi"] == pytest.approx(2.5081121167, rel=1e-9)
    assert c.scores["js"] == pytest.approx(0.4113330221, rel=1e-9)
    assert c.scores["chi2"] == pytest.approx(29.993, rel=1e-6)
    # Every one of them is over its default threshold.
    assert x.breached_metrics == ("psi", "ks", "js", "wasserstein")
    assert c.breached_metrics == ("psi", "js", "chi2")
    # KS p-value at D = 0.3 with 100 rows on each side (see the KS test above).
    assert x.p_values["ks"] == pytest.approx(kolmogorov(0.3 * math.sqrt(50)), rel=1e-9)


def test_compute_drift_wasserstein_is_divided_by_the_reference_std() -> None:
    # Same two-bin feature with std 2: W1 = 0.6 / 2 = 0.3.
    feature = FeatureProfile(
        name="x",
        kind="numeric",
        proportions=(0.5, 0.5, 0.0),
        edges=(0.0,),
        centers=(-1.0, 1.0),
        mean=0.0,
        std=2.0,
    )
    report = compute_drift(Profile(features=(feature,), rows=100), rows([80.0, 20.0, 0.0]))
    assert report.feature("x").scores["wasserstein"] == pytest.approx(0.3, rel=1e-12)


def test_compute_drift_of_an_undrifted_window_is_zero_for_every_metric() -> None:
    profile = two_bin_and_single_category_profile()
    report = compute_drift(profile, rows([50.0, 50.0, 0.0], [100.0, 0.0, 0.0]), min_samples=100)
    for feature in report.features:
        for metric, score in feature.scores.items():
            assert score == pytest.approx(0.0, abs=1e-12), (feature.name, metric)
    assert report.breached_features == []
