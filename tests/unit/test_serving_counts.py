"""The counts document (modelops.serving.counts): written by the server, read by the operator, and
served in-process beside /metrics with the same numbers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelops.drift import build_profile
from modelops.serving.app import ServingApp
from modelops.serving.counts import (
    CountsError,
    Feedback,
    counts_path,
    decode_counts,
    encode_counts,
)
from modelops.serving.loader import load_model_dir
from modelops.serving.metrics import ServingMetrics
from modelops.serving.server import build_app
from modelops.serving.settings import ServeSettings
from serving_support import ModelCase, make_model_dir, v2_matrix

GOOD: dict[str, Any] = {
    "model": "m",
    "version": "v1",
    "start": "abc",
    "rows": 5,
    "features": [{"name": "a", "counts": [2, 3, 0]}, {"name": "b", "counts": [5, 0]}],
}


def test_encoded_matrix_rows_are_cut_to_each_feature_s_bins() -> None:
    matrix = np.array([[2, 3, 0], [5, 0, 0]], dtype=np.int64)
    raw = encode_counts(
        model="m", version="v1", start="abc", rows=5, names=["a", "b"], n_bins=[3, 2], counts=matrix
    )
    assert orjson.loads(raw) == GOOD
    counts = decode_counts(raw, "m")
    assert (counts.model, counts.version, counts.start, counts.rows) == ("m", "v1", "abc", 5)
    assert list(counts.features) == ["a", "b"]
    assert counts.features["a"].dtype == np.int64
    assert counts.features["a"].tolist() == [2, 3, 0]
    assert counts.features["b"].tolist() == [5, 0]


def test_unknown_keys_are_ignored_for_later_additions() -> None:
    raw = orjson.dumps({**GOOD, "explanations": {"counts": [1, 2]}, "later": {}})
    counts = decode_counts(raw, "m")
    assert counts.rows == 5
    assert counts.predictions is None
    assert counts.feedback is None


def _with(**changes: Any) -> bytes:
    return orjson.dumps({**GOOD, **changes})


def _encode(**extra: Any) -> bytes:
    matrix = np.array([[2, 3, 0], [5, 0, 0]], dtype=np.int64)
    return encode_counts(
        model="m",
        version="v1",
        start="abc",
        rows=5,
        names=["a", "b"],
        n_bins=[3, 2],
        counts=matrix,
        **extra,
    )


def test_prediction_counts_and_classification_feedback_round_trip() -> None:
    confusion = np.array([[3, 1], [0, 2]], dtype=np.int64)
    feedback = Feedback(rows=6, classes=("no", "yes"), confusion=confusion)
    raw = _encode(predictions=np.array([4, 1, 0, 0], dtype=np.int64), feedback=feedback)
    document = orjson.loads(raw)
    assert document["predictions"] == [4, 1, 0, 0]
    assert document["feedback"] == {
        "rows": 6,
        "classes": ["no", "yes"],
        "confusion": [[3, 1], [0, 2]],
    }
    counts = decode_counts(raw, "m")
    assert counts.predictions is not None
    assert counts.predictions.dtype == np.int64
    assert counts.predictions.tolist() == [4, 1, 0, 0]
    assert counts.feedback is not None
    assert counts.feedback.task == "classification"
    assert counts.feedback.rows == 6
    assert counts.feedback.classes == ("no", "yes")
    assert counts.feedback.confusion is not None
    assert counts.feedback.confusion.tolist() == confusion.tolist()


def test_regression_feedback_round_trips() -> None:
    feedback = Feedback(rows=3, abs_error=1.5, squared_error=1.25, target=-2.0, target_squared=14.0)
    raw = _encode(feedback=feedback)
    document = orjson.loads(raw)
    assert "predictions" not in document
    assert document["feedback"] == {
        "rows": 3,
        "absError": 1.5,
        "squaredError": 1.25,
        "target": -2.0,
        "targetSquared": 14.0,
    }
    decoded = decode_counts(raw, "m").feedback
    assert decoded == feedback
    assert decoded is not None
    assert decoded.task == "regression"


def test_keys_that_do_not_apply_are_absent() -> None:
    document = orjson.loads(_encode())
    assert set(document) == {"model", "version", "start", "rows", "features"}


CLASSIFIED = {"rows": 3, "classes": ["a", "b"], "confusion": [[1, 1], [0, 1]]}
REGRESSED = {"rows": 2, "absError": 1, "squaredError": 0.5, "target": -3, "targetSquared": 5}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (_with(predictions={"counts": [1]}), "counts of predictions are not a list"),
        (_with(predictions=[1, -1]), "counts of predictions are negative"),
        (_with(predictions=[1.5]), "counts of predictions are not a list of integers"),
        (_with(feedback=[]), "feedback is not a JSON object"),
        (_with(feedback={}), "feedback rows is None, not a count"),
        (_with(feedback={**CLASSIFIED, "rows": -1}), "feedback rows is -1"),
        (_with(feedback={**CLASSIFIED, "classes": []}), "not a non-empty list"),
        (_with(feedback={**CLASSIFIED, "classes": ["a", 1]}), "not a non-empty list"),
        (_with(feedback={**CLASSIFIED, "classes": ["a", "a"]}), "repeat a label"),
        (_with(feedback={**CLASSIFIED, "confusion": [[3, 0]]}), "does not have 2 rows"),
        (_with(feedback={**CLASSIFIED, "confusion": [[1, 1, 0], [1]]}), "row 0 has 3 counts"),
        (_with(feedback={**CLASSIFIED, "confusion": [[1, -1], [2, 1]]}), "row 0 are negative"),
        (_with(feedback={**CLASSIFIED, "confusion": [[1, 1], [0, 2]]}), "adds up to 4, rows"),
        (_with(feedback={**CLASSIFIED, "target": 1.0}), "both a confusion matrix and"),
        (_with(feedback={**REGRESSED, "absError": "1"}), "absError is '1', not a number"),
        (_with(feedback={**REGRESSED, "target": True}), "target is True, not a number"),
        (_with(feedback={k: v for k, v in REGRESSED.items() if k != "target"}), "target is None"),
        (_with(feedback={**REGRESSED, "squaredError": -0.5}), "squaredError is negative"),
        (_with(feedback={**REGRESSED, "targetSquared": None}), "targetSquared is None"),
        (
            _with(feedback=REGRESSED).replace(b'"targetSquared":5', b'"targetSquared":1e999'),
            "not JSON",
        ),
    ],
)
def test_malformed_predictions_and_feedback_are_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(CountsError, match=reason):
        decode_counts(raw, "m")


def test_a_negative_target_sum_is_valid() -> None:
    feedback = decode_counts(_with(feedback=REGRESSED), "m").feedback
    assert feedback == Feedback(
        rows=2, abs_error=1.0, squared_error=0.5, target=-3.0, target_squared=5.0
    )


def _feature(counts: Any, name: Any = "a") -> bytes:
    return _with(features=[{"name": name, "counts": counts}])


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (_with(model="other"), "counts of model 'other', not 'm'"),
        (_with(version=""), "version is '', not a non-empty string"),
        (_with(start=7), "start is 7, not a non-empty string"),
        (_with(rows=-1), "rows is -1, not a count"),
        (_with(rows=True), "rows is True, not a count"),
        (_with(rows=2.5), "rows is 2.5, not a count"),
        (_with(features={"a": [1]}), "features is not a list"),
        (_with(features=[[1, 2]]), "features[0] has no name"),
        (_feature([1], name=3), "features[0] has no name"),
        (_feature("12"), "counts of feature 'a' are not a list"),
        (_feature([1.5, 2]), "counts of feature 'a' are not a list of integers"),
        (_feature([1, "2"]), "counts of feature 'a' are not a list of integers"),
        (_feature([[1], [2]]), "counts of feature 'a' are not a list of integers"),
        (_feature([[1], [2, 3]]), "counts of feature 'a' are not a list of integers"),
        (_feature([True, False]), "counts of feature 'a' are not a list of integers"),
        (_feature([1, -2]), "counts of feature 'a' are negative"),
        (_feature([2**64 - 1]), "counts of feature 'a' are too large"),
        (
            _with(features=[{"name": "a", "counts": [1]}, {"name": "a", "counts": [2]}]),
            "feature 'a' appears twice",
        ),
    ],
)
def test_a_malformed_document_is_refused_with_its_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(CountsError) as caught:
        decode_counts(raw, "m")
    assert str(caught.value).startswith(reason)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ([1.5], "not a list of integers"),
        ([True, False], "not a list of integers"),
        ([3, -1], "negative"),
        ([2**64 - 1], "too large"),
        ("7", "not a list"),
    ],
)
def test_one_bad_feature_among_good_ones_is_named(bad: Any, reason: str) -> None:
    """All features' counts are converted at once when they are plain integers; a document
    with anything else is read feature by feature, so the error names the bad one."""
    features = [{"name": "a", "counts": [1, 2]}, {"name": "b", "counts": bad}]
    with pytest.raises(CountsError, match=f"^counts of feature 'b' are {reason}"):
        decode_counts(_with(features=features), "m")


def test_features_converted_together_keep_their_own_bins() -> None:
    rng = np.random.default_rng(0)
    sizes = [20, 0, 1, 7, 20]
    counts = [rng.integers(0, 2**40, size=n).tolist() for n in sizes]
    features = [{"name": f"f{i}", "counts": c} for i, c in enumerate(counts)]
    decoded = decode_counts(_with(features=features), "m").features
    assert list(decoded) == [f"f{i}" for i in range(len(sizes))]
    for i, c in enumerate(counts):
        assert decoded[f"f{i}"].dtype == np.int64
        assert decoded[f"f{i}"].tolist() == c


def test_a_document_without_features_reads_as_none() -> None:
    assert decode_counts(_with(features=[]), "m").features == {}


def test_a_feature_without_bins_reads_as_empty() -> None:
    assert decode_counts(_feature([]), "m").features["a"].tolist() == []


def test_every_server_process_has_its_own_start() -> None:
    profile = build_profile(np.arange(20.0).reshape(10, 2), ["a", "b"])
    first = ServingMetrics("m", "v1", profile, {})
    second = ServingMetrics("m", "v1", profile, {})
    assert first.start != second.start
    assert decode_counts(first.counts_document(), "m").start == first.start


def test_switched_off_counting_gives_zero_bins_and_the_rows() -> None:
    profile = build_profile(np.arange(20.0).reshape(10, 2), ["a", "b"])
    metrics = ServingMetrics("m", "v1", profile, {}, count_bins=False)
    metrics.observe_rows(np.zeros((7, 2)))
    counts = decode_counts(metrics.counts_document(), "m")
    assert counts.rows == 7
    assert [len(v) for v in counts.features.values()] == [f.n_bins for f in profile.features]
    assert not any(v.any() for v in counts.features.values())


# --- the endpoint, in-process ------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> ModelCase:
    return make_model_dir(tmp_path_factory.mktemp("models"), "classifier")


@pytest.fixture
async def client(classifier: ModelCase) -> AsyncIterator[httpx.AsyncClient]:
    settings = ServeSettings(model_uri="file:///model", name="m")
    app = build_app(load_model_dir(classifier.path), settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        http.app = app  # type: ignore[attr-defined]
        yield http


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", counts_path("m"), 200),
        ("GET", "/v2/models/m/versions/v1/counts", 200),
        ("GET", counts_path("other"), 404),
        ("GET", "/v2/models/m/versions/v2/counts", 404),
        ("POST", counts_path("m"), 405),
    ],
)
async def test_counts_routes(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    if status == 200:
        assert response.headers["content-type"] == "application/json"
    else:
        assert set(response.json()) == {"error"}


async def test_counts_equal_metrics_after_traffic(
    client: httpx.AsyncClient, classifier: ModelCase
) -> None:
    for rows in (classifier.X[::3], classifier.X[1::7]):
        assert (await client.post("/v2/models/m/infer", json=v2_matrix(rows))).status_code == 200
    counts = decode_counts((await client.get(counts_path("m"))).content, "m")
    text = (await client.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert counts.rows == families["modelops_inference_rows"].samples[0].value
    from_text: dict[str, list[float]] = {}
    for sample in families["modelops_feature_bin"].samples:
        from_text.setdefault(sample.labels["feature"], []).append(sample.value)
    assert {name: values.tolist() for name, values in counts.features.items()} == from_text
    app: ServingApp = client.app  # type: ignore[attr-defined]
    assert tuple(counts.features) == app.dataplane.profile.feature_names
    assert counts.start == app.metrics.start
    assert sum(counts.features[app.dataplane.profile.feature_names[0]]) == counts.rows
