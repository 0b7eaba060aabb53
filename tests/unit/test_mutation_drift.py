"""drift/: the JSON documents of a report (what `modelops drift-report` prints) and of a profile,
and the lookups by name (mutation-tested)."""

from __future__ import annotations

import pytest

from modelops.drift import compute_drift
from modelops.drift.evaluate import DriftReport, FeatureDrift
from modelops.drift.profile import FeatureProfile, Profile

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
