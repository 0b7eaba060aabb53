"""drift/: the JSON documents of a report (what `modelops drift-report` prints) and of a profile,
the lookups by name, the exact refusals of profile documents and of compute_drift's arguments,
category keys, the bins and centers of small hand-worked profiles, which counting path a batch
takes, and the Kolmogorov tail against scipy (mutation-tested). Expected values are worked out by
hand or computed by scipy, never by the code under test."""

from __future__ import annotations

import copy
import math
import re
import warnings
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
import scipy.special

from modelops.drift import build_profile, compute_drift
from modelops.drift.binning import Binner, category_key, numeric_column
from modelops.drift.evaluate import DriftReport, FeatureDrift
from modelops.drift.profile import FeatureProfile, Profile, ProfileError
from modelops.drift.statistics import jensen_shannon, kolmogorov_sf, ks_statistic, proportions

PROFILE = Profile(
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
    ),
    rows=1000,
)


def test_a_feature_result_as_plain_data() -> None:
    feature = FeatureDrift(
        name="x",
        kind="numeric",
        samples=1000,
        scores={"psi": 0.5, "ks": 0.05},
        thresholds={"psi": 0.1, "ks": 0.1},
        p_values={"ks": 0.25},
    )
    assert feature.to_dict() == {
        "name": "x",
        "kind": "numeric",
        "samples": 1000,
        "scores": {"psi": 0.5, "ks": 0.05},
        "thresholds": {"psi": 0.1, "ks": 0.1},
        "p_values": {"ks": 0.25},
        "breached_metrics": ["psi"],
        "breached": True,
    }
    calm = FeatureDrift("y", "categorical", 10, {"psi": 0.1}, {"psi": 0.1})
    assert calm.to_dict()["breached"] is False  # equal to the threshold is not above it
    assert calm.to_dict()["p_values"] == {}


def test_a_report_as_plain_data_and_its_lookup() -> None:
    report = compute_drift(PROFILE, [[900, 100, 0]], metrics={"ks": 0.1})
    doc = report.to_dict()
    assert list(doc) == ["samples", "drifted", "breached_features", "features"]
    assert (doc["samples"], doc["drifted"], doc["breached_features"]) == (1000, True, ["x"])
    assert doc["features"] == [report.features[0].to_dict()]
    assert report.feature("x") is report.features[0]
    with pytest.raises(KeyError) as caught:
        report.feature("colour")
    assert caught.value.args == ("colour",)
    assert DriftReport(0, ()).to_dict() == {
        "samples": 0,
        "drifted": False,
        "breached_features": [],
        "features": [],
    }


def test_a_profile_lookup_and_its_document_round_trip() -> None:
    assert PROFILE.feature("x") is PROFILE.features[0]
    with pytest.raises(KeyError) as caught:
        PROFILE.feature("colour")
    assert caught.value.args == ("colour",)
    assert Profile.from_dict(PROFILE.to_dict()) == PROFILE
    assert Profile.from_json(PROFILE.to_json()) == PROFILE


# ------------------------------------------------------------------ category keys


def test_category_keys_of_bytes_booleans_fractions_and_other_objects() -> None:
    assert category_key("caf\u00e9".encode()) == "caf\u00e9"
    assert category_key(b"a\xffb") == "a\ufffdb"  # undecodable bytes are replaced, not refused
    assert category_key(b"") is None
    assert category_key(True) == "True"
    assert category_key(np.bool_(False)) == "False"
    assert category_key(2.5) == "2.5"
    assert category_key(np.float32(0.25)) == "0.25"
    assert category_key(Decimal("1.50")) == "1.50"


def test_numeric_columns_of_text_with_blanks_and_none() -> None:
    # "" makes numpy's conversion fail: the column is converted value by value.
    column = np.array(["1.5", " ", None, 2, ""], dtype=object)
    np.testing.assert_array_equal(numeric_column(column), [1.5, np.nan, np.nan, 2.0, np.nan])
    with pytest.raises(ValueError, match=r"^row 1: 'one' is not a number$"):
        numeric_column(np.array(["", "one"], dtype=object))


# ------------------------------------------------------------------ counting paths


def counted_paths(monkeypatch: pytest.MonkeyPatch, binner: Binner, rows: int) -> list[str]:
    calls: list[str] = []
    small, large = Binner._small_batch_counts, Binner._add_large_batch_counts

    def spy_small(self: Binner, values: Any) -> Any:
        calls.append("small")
        return small(self, values)

    def spy_large(self: Binner, values: Any, counts: Any) -> None:
        calls.append("large")
        large(self, values, counts)

    monkeypatch.setattr(Binner, "_small_batch_counts", spy_small)
    monkeypatch.setattr(Binner, "_add_large_batch_counts", spy_large)
    counts = binner.bin_counts(np.zeros((rows, binner.n_features), dtype=object))
    assert counts.sum() == rows * binner.n_features
    return calls


def test_batches_of_up_to_64_rows_are_broadcast_and_larger_ones_chunked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    numeric = Binner(PROFILE.features)
    assert counted_paths(monkeypatch, numeric, 0) == []
    assert counted_paths(monkeypatch, numeric, 1) == ["small"]
    assert counted_paths(monkeypatch, numeric, 64) == ["small"]
    assert counted_paths(monkeypatch, numeric, 65) == ["large"]
    colour = FeatureProfile("c", "categorical", (1.0, 0.0, 0.0), categories=("red",))
    mixed = Binner((*PROFILE.features, colour))
    assert counted_paths(monkeypatch, mixed, 64) == ["small"]
    assert counted_paths(monkeypatch, mixed, 65) == ["large"]
    # The row count is the number of rows, not of columns (here 2 columns, 100 rows).
    assert counted_paths(monkeypatch, mixed, 100) == ["large"]


# ------------------------------------------------------------------ hand-worked profiles


def test_the_top_edge_above_a_tied_maximum_and_the_empty_top_bin_center() -> None:
    # The median of [1, 2, 2] is the tied value 2: the edge moves to 1.5, midway to 1. The top
    # quantile is the maximum, so one more edge sits half a step above it, at 2.5; the bin above
    # it is empty and centred on that edge.
    feature = build_profile(np.array([[1.0], [2.0], [2.0]]), ["x"], bins=2).features[0]
    assert feature.edges == (1.5, 2.5)
    assert feature.centers == (1.0, 2.0, 2.5)
    assert feature.proportions == (1 / 3, 2 / 3, 0.0, 0.0)


def test_three_edges_with_a_tied_top_and_the_empty_bin_above() -> None:
    # Terciles of [1, 2, 3, 3] are 2 and 3, both tied values: the edges move to 1.5 (midway to
    # 1) and 2.5 (midway to 2); the top tercile is the maximum, so 3.5 is added above it.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the empty bin's 0/0 mean stays silent
        feature = build_profile(np.array([[1.0], [2.0], [3.0], [3.0]]), ["x"], bins=3)
    assert feature.features[0].edges == (1.5, 2.5, 3.5)
    assert feature.features[0].centers == (1.0, 2.0, 3.0, 3.5)
    assert feature.features[0].proportions == (0.25, 0.25, 0.5, 0.0, 0.0)


def test_quantiles_between_two_values_stay_and_empty_inner_bins_sit_midway() -> None:
    # Quartiles of [0, 10] are 2.5, 5 and 7.5, on no value: they are the edges as they are.
    feature = build_profile(np.array([[0.0], [10.0]]), ["x"], bins=4).features[0]
    assert feature.edges == (2.5, 5.0, 7.5)
    assert feature.centers == (0.0, 3.75, 6.25, 10.0)
    assert feature.proportions == (0.5, 0.0, 0.0, 0.5, 0.0)


@pytest.mark.parametrize(
    "values",
    [
        [1e308, 1e308],  # the mean overflows
        [1e308, -1e308],  # the mean is 0, the std overflows
        # Pairwise summation adds 2e308 and -2e308: inf - inf, an invalid mean.
        [1e308, -1e308, *[0.0] * 6, 1e308, -1e308, *[0.0] * 6],
    ],
)
def test_values_too_large_to_summarise_are_refused_quietly(values: list[float]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ProfileError) as caught:
            build_profile(np.array(values).reshape(-1, 1), ["x"])
    assert str(caught.value) == "feature 'x' has values too large to summarise"


def test_a_constant_feature_gets_an_edge_one_ulp_above_it() -> None:
    feature = build_profile(np.full((4, 1), 3.0), ["x"], bins=4).features[0]
    above = float(np.nextafter(3.0, math.inf))
    assert feature.edges == (3.0, above)
    assert feature.centers == (3.0, 3.0, above)


def test_the_most_frequent_categories_are_kept_ties_alphabetically() -> None:
    column = ["z", "z", "a", "a", "m", "m", "m", "b"]
    profile = build_profile(
        np.array([[c] for c in column], dtype=object), ["c"], categorical=["c"], max_categories=2
    )
    # m (3) first; a and z tie at 2 and a sorts first; z and b are then unseen.
    assert profile.features[0].categories == ("a", "m")
    assert profile.features[0].proportions == (2 / 8, 3 / 8, 3 / 8, 0.0)


def test_the_profile_json_text_is_indented_by_two() -> None:
    assert PROFILE.to_json() == (
        "{\n"
        '  "version": 1,\n'
        '  "rows": 1000,\n'
        '  "features": [\n'
        "    {\n"
        '      "name": "x",\n'
        '      "kind": "numeric",\n'
        '      "edges": [\n'
        "        0.0\n"
        "      ],\n"
        '      "centers": [\n'
        "        -1.0,\n"
        "        1.0\n"
        "      ],\n"
        '      "mean": 0.0,\n'
        '      "std": 1.0,\n'
        '      "proportions": [\n'
        "        0.5,\n"
        "        0.5,\n"
        "        0.0\n"
        "      ]\n"
        "    }\n"
        "  ]\n"
        "}\n"
    )


# ------------------------------------------------------------------ refused profile documents


def profile_doc(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(PROFILE.to_dict())
    colour = {"name": "c", "kind": "categorical", "categories": ["red"], "proportions": [1, 0, 0]}
    doc["features"].append(colour)
    for key, value in changes.items():
        where, _, field = key.partition("__")
        target = doc if where == "doc" else doc["features"][0 if where == "x" else 1]
        if value is KeyError:
            del target[field]
        else:
            target[field] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "profile must be a JSON object"),
        (profile_doc(doc__rows=KeyError), "profile is missing ['rows']"),
        (profile_doc(doc__features={}), "profile 'features' must be a list"),
        (profile_doc(doc__rows="1000"), "profile 'rows' must be an integer"),
        (profile_doc(doc__features=[3]), "feature #0 must be a JSON object"),
        (profile_doc(x__name=5), "feature #0 needs a non-empty string 'name'"),
        (profile_doc(c__name=""), "feature #1 needs a non-empty string 'name'"),
        (profile_doc(x__std=KeyError), "feature 'x' is missing ['std']"),
        (profile_doc(c__edges=[]), "feature 'c' has unknown keys ['edges']"),
        (profile_doc(x__proportions=0.5), "feature 'x' 'proportions' must be a list of numbers"),
        (profile_doc(x__edges=["0"]), "feature 'x' 'edges' must be a number"),
        (profile_doc(x__centers=[-1, None]), "feature 'x' 'centers' must be a number"),
        (profile_doc(x__mean=math.inf), "feature 'x' 'mean' must be finite"),
        (profile_doc(x__std=True), "feature 'x' 'std' must be a number"),
        (profile_doc(c__proportions=[1, 0, "0"]), "feature 'c' 'proportions' must be a number"),
        (
            profile_doc(c__kind="text"),
            "feature 'c' has kind 'text'; expected one of ['numeric', 'categorical']",
        ),
    ],
)
def test_profile_documents_are_refused_with_exactly_what_is_wrong(doc: Any, message: str) -> None:
    with pytest.raises(ProfileError) as caught:
        Profile.from_dict(doc)
    assert str(caught.value) == message
    assert Profile.from_dict(profile_doc()).feature_names == ("x", "c")


# ------------------------------------------------------------------ refused drift arguments


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            {"metrics": {"auc": 0.1}},
            "unknown metric 'auc' in metrics; known: psi, ks, js, wasserstein, chi2",
        ),
        (
            {"feature_thresholds": {"x": {"psi": "high"}}},
            "threshold of 'psi' in thresholds of feature 'x' must be a number",
        ),
        ({"features": []}, "no features selected"),
        ({"counts": [[900, None, 0]]}, "counts must be finite and non-negative"),
        ({"counts": [[900, -1, 0]]}, "counts must be finite and non-negative"),
    ],
)
def test_drift_arguments_are_refused_with_exactly_what_is_wrong(
    arguments: dict[str, Any], message: str
) -> None:
    given = dict(arguments)  # the parameters are shared between runs: not to be changed
    counts = given.pop("counts", [[900, 100, 0]])
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        compute_drift(PROFILE, counts, **given)
    assert str(caught.value) == message


# ------------------------------------------------------------------ statistics


def test_the_kolmogorov_tail_matches_scipy_on_both_series_and_at_the_cut() -> None:
    x = np.array([0.0, 0.05, 0.3, 0.8, 1.2, 1.5, 1.9, 3.0, 5.0])
    expected = scipy.special.kolmogorov(x)
    assert expected[1] == 1.0
    # 1.9 and 3.0 would lose 1e-14 and 1e-9 (relative) in the theta series (1 minus a CDF
    # near 1); 5.0 would be 0.
    assert kolmogorov_sf(x) == pytest.approx(expected, rel=1e-15, abs=1e-300)


def test_the_kolmogorov_tail_keeps_the_shape_and_is_silent_far_out() -> None:
    assert np.shape(kolmogorov_sf(np.float64(2.0))) == ()
    grid = kolmogorov_sf(np.array([[0.0, 1.0], [3.0, 1e200]]))
    assert grid.shape == (2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kolmogorov_sf(np.array([1e200, -1e200])).tolist() == [0.0, 1.0]


def test_a_ks_gap_over_one_from_rounding_is_one() -> None:
    # A profile's proportions may sum to 1 within 1e-6: the CDF gap can exceed 1 by as much.
    reference = np.array([[1.0000005, 0.0, 0.0]])
    assert ks_statistic(reference, np.array([[0.0, 1.0, 0.0]])).tolist() == [1.0]


def test_proportions_of_a_row_without_counts_are_zero_and_quiet() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        shares = proportions(np.array([[0.0, 0.0, 0.0], [1.0, 3.0, 0.0]]))
    assert shares.tolist() == [[0.0, 0.0, 0.0], [0.25, 0.75, 0.0]]


def test_jensen_shannon_over_empty_bins_is_quiet_and_never_nan() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # log2(0) and 0 * -inf in the empty bins stay silent
        disjoint = jensen_shannon(np.array([[0.5, 0.5, 0.0]]), np.array([[0.0, 0.0, 1.0]]))
        # Nearly equal shares: the divergence rounds to -1.3e-16, which is 0, not a NaN root.
        close = jensen_shannon(np.array([[0.19, 0.81]]), np.array([[0.19 + 1e-15, 0.81 - 1e-15]]))
    assert disjoint.tolist() == [1.0]  # disjoint distributions are 1 bit apart
    assert close.tolist() == [0.0]


def test_bins_up_to_1000_and_the_100_most_frequent_categories_by_default() -> None:
    assert (
        len(build_profile(np.arange(2000.0).reshape(-1, 1), ["x"], bins=1000).features[0].edges)
        == 999
    )
    with pytest.raises(ProfileError, match=r"^bins must be between 2 and 1000, got 1001$"):
        build_profile(np.arange(2000.0).reshape(-1, 1), ["x"], bins=1001)
    column = np.array([[f"c{i:03d}"] for i in range(101)] + [["c000"]], dtype=object)
    feature = build_profile(column, ["c"], categorical=["c"]).features[0]
    assert len(feature.categories) == 100  # c000 (twice) and 99 of the others; one is unseen
    assert feature.proportions[-2:] == (1 / 102, 0.0)
