"""Parsing the drift sources' answers into bin counts (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from modelops.controller.sources import (
    SourceError,
    choose_version,
    counts_matrix,
    holdout_parameters,
    parse_bin_counters,
    parse_prometheus_vector,
    promql,
    ready_endpoints,
)
from modelops.drift import build_profile

METRICS_TEXT = """\
# HELP modelops_feature_bin_total Rows counted into each bin.
# TYPE modelops_feature_bin_total counter
modelops_feature_bin_total{model="iris",version="v1",feature="a",bin="0"} 3.0
modelops_feature_bin_total{model="iris",version="v1",feature="a",bin="1"} 4.0
modelops_feature_bin_total{model="iris",version="v2",feature="a",bin="1"} 9.0
modelops_feature_bin_total{model="other",version="v1",feature="a",bin="1"} 100.0
# HELP modelops_inference_rows_total Rows.
# TYPE modelops_inference_rows_total counter
modelops_inference_rows_total{model="iris",version="v1"} 7.0
"""


def test_parse_bin_counters_by_version_for_one_model() -> None:
    parsed = parse_bin_counters(METRICS_TEXT, "iris")
    assert parsed == {"v1": {("a", "0"): 3.0, ("a", "1"): 4.0}, "v2": {("a", "1"): 9.0}}
    with pytest.raises(SourceError):
        parse_bin_counters('modelops_feature_bin_total{model="iris" 3\n', "iris")


def test_counts_matrix_follows_the_profile_layout() -> None:
    rng = np.random.default_rng(0)
    profile = build_profile(rng.normal(size=(200, 2)), ["a", "b"], bins=4)
    series = {("a", "0"): 3.0, ("b", "2"): 5.0, ("zzz", "0"): 7.0, ("a", "999"): 1.0}
    matrix = counts_matrix(profile, series)
    assert matrix.shape == (2, profile.max_bins)
    assert matrix[0, 0] == 3.0
    assert matrix[1, 2] == 5.0
    assert matrix.sum() == 8.0


def test_ready_endpoints() -> None:
    slices = [
        {
            "ports": [{"name": "http", "port": 8080}],
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": True},
                 "targetRef": {"name": "p1", "uid": "u1"}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": False},
                 "targetRef": {"name": "p2", "uid": "u2"}},
                {"addresses": ["fd00::3"], "targetRef": {"name": "p3", "uid": "u3"}},
            ],
        },
        {"ports": [{"name": "metrics", "port": 9000}], "endpoints": [{"addresses": ["10.0.0.9"]}]},
    ]  # fmt: skip
    found = ready_endpoints(slices)
    assert [(e.pod, e.base_url) for e in found] == [
        ("p1/u1", "http://10.0.0.1:8080"),
        ("p3/u3", "http://[fd00::3]:8080"),
    ]


def test_choose_version() -> None:
    assert choose_version(["v1"], None) == "v1"
    assert choose_version(["v1", "v2"], None) is None
    assert choose_version(["v1", "v2"], "v2") == "v2"


def test_promql_escapes_label_values() -> None:
    query = promql('we"ird', "v1", "5m")
    assert 'model="we\\"ird"' in query
    assert "increase(modelops_feature_bin_total{" in query
    assert query.endswith("[5m]))")


def test_prometheus_vector() -> None:
    document = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"version": "v1", "feature": "a", "bin": "0"}, "value": [1, "2.5"]},
                {"metric": {"namespace": "other", "version": "v1", "feature": "a", "bin": "0"},
                 "value": [1, "100"]},
                {"metric": {"namespace": "ml", "version": "v1", "feature": "a", "bin": "1"},
                 "value": [1, "NaN"]},
            ],
        },
    }  # fmt: skip
    assert parse_prometheus_vector(document, "ml") == {"v1": {("a", "0"): 2.5}}
    with pytest.raises(SourceError, match="bad_data"):
        parse_prometheus_vector({"status": "error", "error": "bad_data"}, "ml")


def test_holdout_parameters_of_the_model_metadata() -> None:
    document = {
        "name": "iris",
        "versions": ["v2"],
        "parameters": {
            "task": "classification",
            "estimator": "LogisticRegression",
            "holdout_accuracy": 0.95,
            "holdout_f1": 1,
            "holdout_bad": "0.5",
            "holdout_flag": True,
            "holdout_nan": float("nan"),
        },
    }
    assert holdout_parameters(document, "v2") == {"accuracy": 0.95, "f1": 1.0}
    assert holdout_parameters(document, None) == {"accuracy": 0.95, "f1": 1.0}
    assert holdout_parameters(document, "v1") is None  # another version: not its metrics
    assert holdout_parameters({"versions": ["v2"]}, "v2") == {}  # a model without metrics
    assert holdout_parameters([1, 2], "v2") is None
