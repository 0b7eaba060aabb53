"""Reference profiles: building, the profile.json round-trip and its validation, bin counting."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from modelops.drift import (
    FeatureProfile,
    Profile,
    ProfileError,
    build_output_profile,
    build_profile,
)
from modelops.drift.binning import SMALL_BATCH_ROWS


@pytest.fixture
def numeric_profile() -> Profile:
    rng = np.random.default_rng(0)
    return build_profile(rng.normal(size=(2000, 3)), ["a", "b", "c"])


@pytest.fixture
def mixed_data() -> np.ndarray:
    rng = np.random.default_rng(1)
    data = np.empty((300, 3), dtype=object)
    data[:, 0] = rng.normal(size=300)
    data[:, 1] = rng.choice(["red", "green", "blue"], size=300)
    data[:, 2] = rng.integers(0, 5, size=300)
    data[0, 0] = None
    data[1, 1] = None
    data[2, 1] = float("nan")
    return data


def reference_bins(profile: Profile, value: float, feature: int = 0) -> int:
    row = np.zeros((1, len(profile.features)))
    row[0, feature] = value
    return int(np.argmax(profile.bin_counts(row)[feature]))


def test_numeric_profile_has_quantile_bins_open_ended_and_a_missing_bin(
    numeric_profile: Profile,
) -> None:
    feature = numeric_profile.features[0]
    assert feature.kind == "numeric"
    assert len(feature.edges) == 9
    assert feature.n_bins == 11
    assert feature.bin_labels[-1] == "missing"
    assert feature.bin_labels[0].startswith("<")
    assert feature.bin_labels[-2].startswith(">=")
    np.testing.assert_allclose(feature.proportions[:10], 0.1, atol=0.001)
    assert feature.proportions[-1] == 0
    assert numeric_profile.max_bins == 11
    assert numeric_profile.feature_names == ("a", "b", "c")
    assert numeric_profile.rows == 2000
    assert sum(feature.proportions) == pytest.approx(1)


def test_bin_layout_is_left_closed_with_open_outer_bins(numeric_profile: Profile) -> None:
    edges = numeric_profile.features[0].edges
    assert reference_bins(numeric_profile, -1e300) == 0
    assert reference_bins(numeric_profile, np.nextafter(edges[0], -np.inf)) == 0
    assert reference_bins(numeric_profile, edges[0]) == 1
    assert reference_bins(numeric_profile, edges[-1]) == len(edges)
    assert reference_bins(numeric_profile, 1e300) == len(edges)
    for value in (np.nan, np.inf, -np.inf):
        assert reference_bins(numeric_profile, value) == len(edges) + 1


def test_profile_json_round_trip_is_exact_and_stable(
    numeric_profile: Profile, mixed_data: np.ndarray
) -> None:
    mixed = build_profile(mixed_data, ["x", "colour", "n"], categorical=["colour"])
    for profile in (numeric_profile, mixed):
        text = profile.to_json()
        again = Profile.from_json(text)
        assert again == profile
        assert again.to_json() == text
        assert Profile.from_json(text.encode()) == profile
    doc = json.loads(mixed.to_json())
    assert doc["version"] == 1
    assert doc["rows"] == 300
    assert list(doc["features"][0]) == [
        "name", "kind", "edges", "centers", "mean", "std", "proportions"
    ]  # fmt: skip
    assert list(doc["features"][1]) == ["name", "kind", "categories", "proportions"]


def test_categorical_profile_keeps_seen_categories_then_unseen_then_missing(
    mixed_data: np.ndarray,
) -> None:
    profile = build_profile(mixed_data, ["x", "colour", "n"], categorical=["colour", "n"])
    colour = profile.feature("colour")
    assert colour.categories == ("blue", "green", "red")
    assert colour.bin_labels == ("blue", "green", "red", "unseen", "missing")
    assert colour.proportions[3] == 0
    assert colour.proportions[4] == pytest.approx(2 / 300)
    assert profile.feature("n").categories == ("0", "1", "2", "3", "4")
    assert profile.features[0].proportions[-1] == pytest.approx(1 / 300)


def test_categories_beyond_the_limit_count_as_unseen_in_the_reference() -> None:
    values = np.array([["a"]] * 5 + [["b"]] * 3 + [["c"]] * 2, dtype=object)
    profile = build_profile(values, ["x"], categorical=["x"], max_categories=2)
    assert profile.features[0].categories == ("a", "b")
    assert profile.features[0].proportions == (0.5, 0.3, 0.2, 0.0)


def test_constant_feature_gives_a_degenerate_but_valid_profile() -> None:
    profile = build_profile(np.full((50, 1), 3.0), ["k"])
    feature = profile.features[0]
    assert feature.edges[0] == 3.0
    assert feature.std == 0
    assert feature.proportions == (0.0, 1.0, 0.0, 0.0)
    assert Profile.from_json(profile.to_json()) == profile
    counts = profile.bin_counts(np.array([[2.0], [3.0], [3.0], [4.0], [np.nan]]))
    assert counts.tolist() == [[1, 2, 1, 1]]


def test_tied_quantiles_are_deduplicated_and_moved_between_values() -> None:
    rng = np.random.default_rng(3)
    values = rng.poisson(3, size=(5000, 1)).astype(float)
    feature = build_profile(values, ["count"]).features[0]
    assert len(set(feature.edges)) == len(feature.edges)
    assert all(edge % 1 == 0.5 for edge in feature.edges)
    assert sorted(feature.edges) == list(feature.edges)


def test_single_category_profile_and_unseen_values() -> None:
    profile = build_profile(np.array([["only"]] * 20, dtype=object), ["c"], categorical=["c"])
    assert profile.features[0].proportions == (1.0, 0.0, 0.0)
    window = np.array([["only"], ["other"], [None], [""], ["only"]], dtype=object)
    assert profile.bin_counts(window).tolist() == [[2, 1, 2]]


def test_category_keys_unify_numbers_and_text(mixed_data: np.ndarray) -> None:
    profile = build_profile(mixed_data, ["x", "colour", "n"], categorical=["colour", "n"])
    window = np.array([[0.0, "red", "3"], [0.0, "red", 3.0], [0.0, "red", np.int64(3)]], object)
    assert profile.bin_counts(window)[2, 3] == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros((0, 2)), "no rows"),
        (np.zeros(5), "2-D"),
        (np.zeros((5, 3)), "3 columns but 2 feature names"),
        (np.full((5, 2), np.nan), "no finite values"),
        (np.array([[1.0, "x"], [2.0, "y"]], dtype=object), "'b': row 0: 'x' is not a number"),
    ],
)
def test_build_profile_rejects_bad_data(data: np.ndarray, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        build_profile(data, ["a", "b"])


def test_build_profile_rejects_bad_options() -> None:
    with pytest.raises(ProfileError, match="duplicate"):
        build_profile(np.zeros((3, 2)), ["a", "a"])
    with pytest.raises(ProfileError, match="not among the feature names"):
        build_profile(np.zeros((3, 2)), ["a", "b"], categorical=["z"])
    with pytest.raises(ProfileError, match="bins"):
        build_profile(np.zeros((3, 2)), ["a", "b"], bins=1)


def valid_document() -> dict[str, object]:
    rng = np.random.default_rng(2)
    data = np.empty((100, 2), dtype=object)
    data[:, 0] = rng.normal(size=100)
    data[:, 1] = rng.choice(["x", "y"], size=100)
    return build_profile(data, ["num", "cat"], categorical=["cat"]).to_dict()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(version=2), "unsupported profile version 2"),
        (lambda d: d.pop("rows"), r"missing \['rows'\]"),
        (lambda d: d.update(extra=1), r"unknown keys \['extra'\]"),
        (lambda d: d.update(rows=0), "at least 1"),
        (lambda d: d.update(rows="many"), "'rows' must be an integer"),
        (lambda d: d.update(features=[]), "no features"),
        (lambda d: d.update(features={}), "must be a list"),
        (lambda d: d["features"][0].update(kind="text"), "kind 'text'"),
        (lambda d: d["features"][0].update(edges=[2.0, 1.0] + [3.0] * 7), "strictly increasing"),
        (lambda d: d["features"][0].update(proportions=[1.0]), "needs 11 'proportions'"),
        (lambda d: d["features"][0].update(std=-1.0), "non-negative 'std'"),
        (lambda d: d["features"][0].update(mean="x"), "'mean' must be a number"),
        (lambda d: d["features"][0].update(centers=[0.0]), "needs 10 'centers'"),
        (lambda d: d["features"][1].update(proportions=[0.5, 0.4, 0.0, 0.0]), "sum to 1"),
        (lambda d: d["features"][1].update(categories=["x", "x"]), "duplicate categories"),
        (lambda d: d["features"][1].update(categories=[1, 2]), "list of strings"),
        (lambda d: d["features"].append(d["features"][0]), "duplicate feature names"),
        (lambda d: d["features"][1].pop("name"), "non-empty string 'name'"),
    ],
)
def test_from_json_rejects_invalid_documents(change: object, message: str) -> None:
    doc = valid_document()
    change(doc)  # type: ignore[operator]
    with pytest.raises(ProfileError, match=message):
        Profile.from_json(json.dumps(doc))


@pytest.mark.parametrize("text", ["", "{", "[]", "null", b"\xff\xfe", '{"version": NaN}'])
def test_from_json_rejects_non_documents(text: str | bytes) -> None:
    with pytest.raises(ProfileError):
        Profile.from_json(text)


def test_profile_error_is_a_value_error() -> None:
    assert issubclass(ProfileError, ValueError)


# ----------------------------------------------------------------------------------- counting


def naive_counts(profile: Profile, data: np.ndarray) -> np.ndarray:
    """One value at a time, straight from the documented layout."""
    counts = np.zeros((len(profile.features), profile.max_bins), dtype=np.int64)
    for row in data:
        for column, feature in enumerate(profile.features):
            value = float(row[column])
            if not np.isfinite(value):
                counts[column, feature.missing_bin] += 1
            else:
                counts[column, int(np.searchsorted(feature.edges, value, side="right"))] += 1
    return counts


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(0, 3 * SMALL_BATCH_ROWS), st.just(3)),
        elements=st.one_of(
            st.floats(-5, 5), st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1e308, -1e308])
        ),
    )
)
def test_bin_counts_match_a_naive_count_on_both_paths(data: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    reference = np.column_stack(
        [rng.normal(size=400), rng.poisson(2, size=400), np.full(400, 1.0)]
    ).astype(float)
    profile = build_profile(reference, ["n", "p", "k"])
    assert profile.bin_counts(data).tolist() == naive_counts(profile, data).tolist()


def test_large_and_small_batches_agree_with_mixed_kinds(mixed_data: np.ndarray) -> None:
    profile = build_profile(mixed_data, ["x", "colour", "n"], categorical=["colour"])
    whole = profile.bin_counts(mixed_data)
    by_row = sum(profile.bin_counts(row) for row in mixed_data)
    assert whole.tolist() == by_row.tolist()  # type: ignore[union-attr]
    assert whole.sum(axis=1).tolist() == [300, 300, 300]
    assert whole.dtype == np.int64
    assert whole.shape == (3, profile.max_bins)


def test_reference_counts_reproduce_reference_proportions(mixed_data: np.ndarray) -> None:
    profile = build_profile(mixed_data, ["x", "colour", "n"], categorical=["colour"])
    counts = profile.bin_counts(mixed_data)
    np.testing.assert_allclose(counts / 300, profile.reference_proportions(), atol=1e-12)


def test_padded_bins_stay_zero(mixed_data: np.ndarray) -> None:
    profile = build_profile(mixed_data, ["x", "colour", "n"], categorical=["colour"])
    counts = profile.bin_counts(mixed_data)
    colour: FeatureProfile = profile.feature("colour")
    assert not counts[1, colour.n_bins :].any()


def test_one_row_as_a_vector_and_an_empty_batch(numeric_profile: Profile) -> None:
    assert numeric_profile.bin_counts(np.array([0.0, 0.0, 0.0])).sum() == 3
    assert numeric_profile.bin_counts(np.zeros((0, 3))).sum() == 0
    assert numeric_profile.bin_counts([[0, 1, 2]]).sum() == 3


def test_bin_counts_rejects_wrong_shapes_and_text(numeric_profile: Profile) -> None:
    with pytest.raises(ValueError, match="expected rows x 3 features"):
        numeric_profile.bin_counts(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="'oops' is not a number"):
        numeric_profile.bin_counts(np.array([[1.0, "oops", 2.0]], dtype=object))
    counts = numeric_profile.bin_counts(np.array([[None, "1.5", 2]], dtype=object))
    assert counts[0, -1] == 1


def test_windows_larger_than_one_chunk_count_every_row() -> None:
    profile = build_profile(np.array([[1.0], [1.0], [2.0]]), ["k"])
    rng = np.random.default_rng(7)
    window = rng.choice([0.0, 1.0, 1.5, 2.0, 9.0, np.nan, np.inf], size=(140_000, 1))
    counts = profile.bin_counts(window)
    edges = profile.features[0].edges
    finite = window[np.isfinite(window)]
    expected = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=len(edges) + 1)
    assert counts[0, :-1].tolist() == expected.tolist()
    assert counts[0, -1] == (~np.isfinite(window)).sum()


# ---------------------------------------------------------------- the output entry (#14)


def test_classifier_output_entry_holds_class_shares_in_metadata_order() -> None:
    predictions = np.array([2, 0, 2, 2, 1, 0, 2, 2])
    output = build_output_profile(predictions, "species", classes=[2, 0, 1])
    assert output.kind == "categorical"
    assert output.name == "species"
    assert output.categories == ("2", "0", "1")  # metadata order, not sorted
    assert output.proportions == pytest.approx((5 / 8, 2 / 8, 1 / 8, 0.0, 0.0))
    assert output.bin_labels == ("2", "0", "1", "unseen", "missing")


def test_classifier_output_entry_of_text_labels_and_a_class_never_predicted() -> None:
    output = build_output_profile(
        np.array(["yes", "yes", "no"]), "churn", classes=["no", "yes", "maybe"]
    )
    assert output.categories == ("no", "yes", "maybe")
    assert output.proportions == pytest.approx((1 / 3, 2 / 3, 0.0, 0.0, 0.0))


def test_regressor_output_entry_is_the_numeric_feature_builder_on_predictions() -> None:
    rng = np.random.default_rng(5)
    predictions = rng.normal(10.0, 3.0, size=1000)
    output = build_output_profile(predictions, "price", bins=8)
    as_feature = build_profile(predictions.reshape(-1, 1), ["price"], bins=8).features[0]
    assert output == as_feature
    assert output.kind == "numeric"
    assert output.n_bins == len(output.edges) + 2


@pytest.mark.parametrize(
    ("predictions", "options", "message"),
    [
        (np.array([]), {}, "no predictions"),
        (np.zeros((3, 2)), {}, "1-D"),
        (np.array([1.0, 2.0]), {"bins": 1}, "bins"),
        (np.array([1, 2]), {"classes": []}, "at least one class"),
        (np.array([1, 2]), {"classes": [1, "1"]}, "repeat"),
        (np.array([1, 2]), {"classes": [None, 1]}, "no text form"),
        (np.array(["a", "b"]), {}, "not a number"),
    ],
)
def test_build_output_profile_rejects_bad_input(
    predictions: np.ndarray, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ProfileError, match=message):
        build_output_profile(predictions, "y", **options)  # type: ignore[arg-type]


def test_profile_with_output_round_trips_and_one_without_still_loads() -> None:
    rng = np.random.default_rng(6)
    data = rng.normal(size=(200, 2))
    base = build_profile(data, ["a", "b"])
    output = build_output_profile(data[:, 0] * 2, "y")
    profile = Profile(features=base.features, rows=base.rows, output=output)
    text = profile.to_json()
    assert json.loads(text)["output"] == output.to_dict()
    loaded = Profile.from_json(text)
    assert loaded == profile
    assert loaded.output == output
    assert loaded.to_json() == text
    old = Profile.from_json(base.to_json())  # written before the output entry existed
    assert old.output is None
    assert "output" not in old.to_dict()


def test_output_bin_counts_match_the_entry_binning() -> None:
    classifier = build_output_profile(np.array(["a", "b", "b"]), "y", classes=["a", "b"])
    base = build_profile(np.zeros((3, 1)), ["x"])
    profile = Profile(features=base.features, rows=3, output=classifier)
    counts = profile.output_bin_counts(np.array(["b", "b", "c", "a", ""], dtype=object))
    assert counts.tolist() == [1, 2, 1, 1]  # a, b, unseen (c), missing ("")
    regressor = build_output_profile(np.arange(100.0), "y", bins=4)
    profile = Profile(features=base.features, rows=3, output=regressor)
    values = np.array([-1.0, 30.0, 99.0, 1e9, np.nan])
    expected = np.bincount(np.searchsorted(regressor.edges, values[:-1], side="right"), minlength=5)
    expected[-1] += 1  # NaN: the missing bin
    assert profile.output_bin_counts(values).tolist() == expected.tolist()
    with pytest.raises(ValueError, match="1-D"):
        profile.output_bin_counts(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="no output entry"):
        base.output_bin_counts(values)


def document_with_output() -> dict[str, object]:
    doc = valid_document()
    doc["output"] = build_output_profile(np.array([0, 1, 1]), "label", classes=[0, 1]).to_dict()
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(output=[]), "output must be a JSON object"),
        (lambda d: d["output"].pop("name"), "output needs a non-empty string 'name'"),
        (lambda d: d["output"].update(kind="text"), "output has kind 'text'"),
        (lambda d: d["output"].update(proportions=[0.5, 0.5]), "output needs 4 'proportions'"),
        (lambda d: d["output"].update(proportions=[0.5, 0.4, 0, 0]), "output 'proportions'"),
        (lambda d: d["output"].update(categories=["0", "0"]), "output has duplicate"),
        (lambda d: d["output"].update(extra=1), r"output has unknown keys \['extra'\]"),
    ],
)
def test_from_json_rejects_invalid_output_entries(change: object, message: str) -> None:
    doc = document_with_output()
    Profile.from_dict(json.loads(json.dumps(doc)))  # valid before the change
    change(doc)  # type: ignore[operator]
    with pytest.raises(ProfileError, match=message):
        Profile.from_json(json.dumps(doc))


def test_bin_labels_are_all_different() -> None:
    close = FeatureProfile(
        name="y",
        kind="numeric",
        proportions=(0.25, 0.25, 0.25, 0.25, 0.0),
        edges=(1_000_000.1, 1_000_000.2, 1_000_000.3),
        centers=(1e6, 1_000_000.15, 1_000_000.25, 1_000_000.4),
    )
    labels = close.bin_labels
    assert len(set(labels)) == len(labels) == close.n_bins
    assert labels[1] == "[1000000.1, 1000000.2)"
    plain = build_output_profile(np.arange(100.0), "y", bins=4)
    assert plain.bin_labels[0] == "< 24.75"  # six significant digits when they suffice
    named = build_output_profile(np.array(["missing"]), "y", classes=["missing", "unseen", "ok"])
    assert named.bin_labels == ("missing", "unseen", "ok", "(unseen)", "(missing)")
