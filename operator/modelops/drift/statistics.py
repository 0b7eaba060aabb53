"""Drift statistics computed from bin counts against reference proportions, all features at once.

Every function takes ``reference`` proportions and ``current`` counts or proportions as
``(n_features, n_bins)`` matrices (padded bins are 0 in both and contribute nothing) and returns
one value per feature. Each score is "higher = more drift". Pure numpy (no scipy at run time);
the tests check every statistic against scipy.

Binning error, against the same statistic on the raw samples:

- PSI, Jensen-Shannon and chi-square are defined on bins; there is no raw-sample version to
  miss (they measure drift at the profile's resolution: a change inside one bin is invisible).
- KS: the binned statistic is the largest CDF gap at the bin edges, so
  ``binned D <= raw D <= binned D + max over bins of max(reference share, current share)``.
- Wasserstein-1: each bin's mass sits at the bin's reference mean (``centers``), so the error is
  bounded by the current mass times the within-bin spread; values beyond the training range are
  placed at the outer bins' centers, so a far jump is measured as a jump to the range's end.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

PSI_EPSILON = 1e-4
"""Floor for a proportion in PSI and in chi-square expectations: an empty bin counts as 0.01 %.

Without it a bin empty on one side makes PSI infinite. 1e-4 caps one empty bin's contribution at
about ``q * ln(q / 1e-4)`` (0.69 for a 10 % bin) and is below one row in 10,000.
"""

_KOLMOGOROV_TERMS = np.arange(1, 101, dtype=np.float64)


def proportions(counts: FloatArray) -> FloatArray:
    """Counts normalised per row; a row without counts stays all zero."""
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(totals > 0, counts / totals, 0.0)
    result: FloatArray = shares
    return result


def psi(reference: FloatArray, current: FloatArray, epsilon: float = PSI_EPSILON) -> FloatArray:
    """Population Stability Index: ``sum((q - p) * ln(q / p))``, proportions floored at epsilon.

    Symmetric, >= 0. Default threshold 0.1 (the customary "moderate shift" level); for a normal
    feature a mean shift of ``d`` standard deviations gives PSI close to ``d**2``.
    """
    p = np.maximum(reference, epsilon)
    q = np.maximum(current, epsilon)
    result: FloatArray = np.sum((q - p) * np.log(q / p), axis=1)
    return result


def jensen_shannon(reference: FloatArray, current: FloatArray) -> FloatArray:
    """Jensen-Shannon distance in base 2: ``sqrt(JSD)``, in [0, 1], symmetric, a metric.

    Equal to ``scipy.spatial.distance.jensenshannon(p, q, base=2)``. Default threshold 0.1.
    """
    middle = (reference + current) / 2
    divergence = (_kl_to_middle(reference, middle) + _kl_to_middle(current, middle)) / 2
    result: FloatArray = np.sqrt(np.clip(divergence, 0.0, 1.0))
    return result


def _kl_to_middle(p: FloatArray, middle: FloatArray) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(p > 0, p * np.log2(p / np.where(middle > 0, middle, 1.0)), 0.0)
    result: FloatArray = terms.sum(axis=1)
    return result


def ks_statistic(reference: FloatArray, current: FloatArray) -> FloatArray:
    """Kolmogorov-Smirnov statistic on the binned CDFs: the largest gap at a bin edge, in [0, 1].

    Bins must be in value order; the missing bin, last, sorts after every number (as NaN does in
    numpy). Symmetric. Default threshold 0.1.
    """
    gaps = np.abs(np.cumsum(reference, axis=1) - np.cumsum(current, axis=1))
    result: FloatArray = np.clip(gaps.max(axis=1), 0.0, 1.0)
    return result


def ks_p_value(statistic: FloatArray, n_current: FloatArray, n_reference: float) -> FloatArray:
    """Asymptotic two-sample KS p-value: Kolmogorov's distribution at ``D * sqrt(n m / (n + m))``.

    The same as ``scipy.special.kolmogorov`` at that point. A binned D is at most the raw D, so
    this p-value is conservative (never smaller than the raw-sample one).
    """
    effective = n_current * n_reference / (n_current + n_reference)
    return kolmogorov_sf(statistic * np.sqrt(effective))


def kolmogorov_sf(x: FloatArray) -> FloatArray:
    """Survival function of the Kolmogorov distribution, ``P(K > x)``.

    Two convergent series: ``2 sum (-1)^(k-1) exp(-2 k^2 x^2)`` for x >= 1, and one minus the
    Jacobi theta form ``sqrt(2 pi) / x sum exp(-(2k-1)^2 pi^2 / (8 x^2))`` below 1.
    """
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(-1, 1)
    k = _KOLMOGOROV_TERMS
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        signs = np.where(k % 2 == 1, 1.0, -1.0)
        large = 2 * np.sum(signs * np.exp(-2 * k**2 * flat**2), axis=1)
        # Below 0.05 the CDF is under exp(-490): the survival function is 1 to double precision.
        safe = np.where(flat > 0.05, flat, 1.0)
        small_cdf = (
            math.sqrt(2 * math.pi)
            / safe[:, 0]
            * np.sum(np.exp(-((2 * k - 1) ** 2) * math.pi**2 / (8 * safe**2)), axis=1)
        )
    values = np.where(flat[:, 0] >= 1.0, large, 1.0 - small_cdf)
    values = np.where(flat[:, 0] <= 0.05, 1.0, values)
    result: FloatArray = np.clip(values, 0.0, 1.0).reshape(x.shape)
    return result


def wasserstein(reference: FloatArray, current: FloatArray, positions: FloatArray) -> FloatArray:
    """Wasserstein-1 (earth mover's) distance with each bin's mass at ``positions``.

    ``positions`` must be non-decreasing per row; both sides are renormalised over the given bins.
    Equal to ``scipy.stats.wasserstein_distance(positions, positions, reference, current)``.
    Symmetric, >= 0, in the feature's units (divide by the reference std to compare features).
    """
    ref_cdf = np.cumsum(proportions(reference), axis=1)
    cur_cdf = np.cumsum(proportions(current), axis=1)
    widths = np.diff(positions, axis=1)
    result: FloatArray = np.sum(np.abs(ref_cdf[:, :-1] - cur_cdf[:, :-1]) * widths, axis=1)
    return result


def chi_square(
    reference: FloatArray,
    counts: FloatArray,
    real_bins: NDArray[np.bool_],
    epsilon: float = PSI_EPSILON,
) -> tuple[FloatArray, FloatArray]:
    """Pearson's chi-square goodness-of-fit statistic of ``counts`` against ``reference``.

    ``real_bins`` marks each row's bins that are not padding. A bin with no reference mass but
    current counts (say, an unseen category) expects the floor share epsilon instead of zero, so it
    is a large but finite surprise; shares are then renormalised. Returns ``(statistic, dof)``
    with ``dof = (bins with reference mass) - 1``, at least 1. Equal to
    ``scipy.stats.chisquare(counts, n * reference)`` when no share is floored.
    """
    surprise = real_bins & (reference <= 0) & (counts > 0)
    expected_shares = np.where(surprise, epsilon, np.where(real_bins, reference, 0.0))
    expected_shares /= expected_shares.sum(axis=1, keepdims=True)
    expected = expected_shares * counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(expected > 0, (counts - expected) ** 2 / expected, 0.0)
    statistic: FloatArray = terms.sum(axis=1)
    with_mass = np.count_nonzero(reference > 0, axis=1)
    dof: FloatArray = np.maximum(with_mass - 1, 1).astype(np.float64)
    return statistic, dof


def cramers_v(statistic: FloatArray, n: FloatArray, dof: FloatArray) -> FloatArray:
    """Effect size of a goodness-of-fit chi-square: ``sqrt(X^2 / (n * dof))``.

    Unlike the p-value it does not grow with the window size for a fixed drift, and with no
    drift it is about ``1 / sqrt(n)`` whatever the number of categories. Default threshold 0.1.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        result: FloatArray = np.sqrt(np.where(n > 0, statistic / (n * dof), 0.0))
    return result


def chi_square_p_value(statistic: float, dof: float) -> float:
    """Upper tail ``P(chi2(dof) > statistic)``: the regularised upper incomplete gamma Q."""
    return regularized_gamma_q(dof / 2, statistic / 2)


def regularized_gamma_q(a: float, x: float) -> float:
    """``Q(a, x) = Gamma(a, x) / Gamma(a)`` by series (x < a + 1) or continued fraction."""
    if x <= 0:
        return 1.0
    log_prefactor = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        denominator = a
        for _ in range(10_000):
            denominator += 1
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefactor))
    # Lentz's continued fraction for Q.
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    fraction = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        step = d * c
        fraction *= step
        if abs(step - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_prefactor) * fraction)
