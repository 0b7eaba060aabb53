"""Prediction drift and ground truth in the server (#14): served predictions counted into the
profile's output bins, and ``/feedback`` counted against the server's own predictions, in-process
(the real app over httpx's ASGI transport; the real server process is in tests/integration)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
)

from modelops.drift import build_output_profile, build_profile
from modelops.serving.app import ServingApp
from modelops.serving.binning import ClassIndex, PredictionCounter
from modelops.serving.counts import Counts, decode_counts
from modelops.serving.loader import ModelLoadError, load_model_dir
from modelops.serving.server import build_app
from modelops.serving.settings import ServeSettings
from serving_support import ModelCase, make_model_dir, v2_columns, v2_matrix

# --- counting predictions, pure -----------------------------------------------------------


def test_class_index_matches_integers_text_and_mixed_labels() -> None:
    index = ClassIndex(("2", "0", "yes", "1"))
    assert index.indices(np.array([0, 2, 1, 7])).tolist() == [1, 0, 3, -1]
    assert index.indices(np.array(["yes", "0", "no", ""])).tolist() == [2, 1, -1, -2]
    mixed = np.array([2.0, "yes", None, float("nan"), 1], dtype=object)
    assert index.indices(mixed).tolist() == [0, 2, -2, -2, 3]
    assert index.indices(np.array([1.0, 2.5])).tolist() == [3, -1]
    assert index.indices(np.array([], dtype=np.int64)).tolist() == []
    assert ClassIndex(("a", "b")).indices(np.array([1, 2])).tolist() == [-1, -1]


def test_classifier_predictions_and_probability_argmax_count_into_class_bins() -> None:
    base = build_profile(np.zeros((4, 1)), ["x"])
    output = build_output_profile(np.array(["b", "a"]), "y", classes=["b", "a"])
    profile = replace(base, output=output)
    counter = PredictionCounter(profile, estimator_classes=["a", "b"], chunk_rows=8)
    counter.add(np.array(["a", "a", "b", "c"]))
    counter.add_class_indices(np.array([1, 1, 0]))  # estimator classes: 1 is "b"
    counter.bin_whole_chunks()  # 7 pending rows: under a chunk, nothing binned yet
    assert counter.pending_rows == 7
    assert counter.counts().tolist() == [3, 3, 1, 0]  # b, a, unseen, missing
    assert counter.pending_rows == 0
    for _ in range(5):
        counter.add(np.array(["b"] * 10))
    assert counter.pending_rows < 8 * 4  # binned once MAX_PENDING_CHUNKS chunks gathered
    assert counter.counts().tolist() == [53, 3, 1, 0]


def test_regressor_predictions_count_like_the_profile_binning() -> None:
    rng = np.random.default_rng(2)
    base = build_profile(rng.normal(size=(50, 1)), ["x"])
    profile = replace(base, output=build_output_profile(rng.normal(size=500), "y"))
    counter = PredictionCounter(profile, chunk_rows=64)
    batches = [rng.normal(0.3, 1.2, size=int(n)) for n in rng.integers(1, 50, size=40)]
    batches.append(np.array([np.nan, np.inf, -np.inf, 1e300]))
    for batch in batches:
        counter.add(batch)
        counter.bin_whole_chunks()
    expected = profile.output_bin_counts(np.concatenate(batches))
    assert counter.counts().tolist() == expected.tolist()
    with pytest.raises(ValueError, match="classifier"):
        counter.add_class_indices(np.array([0]))


# --- the app, in-process ------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModelCase]:
    root = tmp_path_factory.mktemp("models")
    cases = {kind: make_model_dir(root, kind) for kind in ("classifier", "regressor")}
    cases["categorical"] = make_model_dir(root, "categorical")
    cases["no-output"] = make_model_dir(root, "forest", output=False)
    return cases


async def _client(case: ModelCase) -> httpx.AsyncClient:
    settings = ServeSettings(model_uri="file:///model", name="m")
    app = build_app(load_model_dir(case.path), settings)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    http.app = app  # type: ignore[attr-defined]
    return http


@pytest.fixture
async def clients(models: dict[str, ModelCase]) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    opened = {kind: await _client(case) for kind, case in models.items()}
    try:
        yield opened
    finally:
        for http in opened.values():
            await http.aclose()


async def counts_of(client: httpx.AsyncClient) -> Counts:
    response = await client.get("/v2/models/m/counts")
    assert response.status_code == 200
    return decode_counts(response.content, "m")


async def families_of(client: httpx.AsyncClient) -> dict[str, Any]:
    text = (await client.get("/metrics")).text
    return {family.name: family for family in text_string_to_metric_families(text)}


def with_truth(request: dict[str, Any], name: str, truth: np.ndarray) -> dict[str, Any]:
    kind = truth.dtype.kind
    datatype = "BYTES" if kind in "OUS" else ("INT64" if kind in "iu" else "FP64")
    data = [str(v) for v in truth.tolist()] if datatype == "BYTES" else truth.tolist()
    tensor = {"name": name, "shape": [len(truth)], "datatype": datatype, "data": data}
    return {**request, "inputs": [*request["inputs"], tensor]}


@pytest.mark.parametrize("kind", ["classifier", "regressor", "categorical"])
async def test_served_predictions_are_counted_into_the_output_bins(
    kind: str, models: dict[str, ModelCase], clients: dict[str, httpx.AsyncClient]
) -> None:
    case, client = models[kind], clients[kind]
    rng = np.random.default_rng(3)
    sent = [case.X[rng.choice(len(case.X), size=int(n))] for n in (1, 5, 40, 300)]
    for rows in sent:
        body = (
            v2_columns(rows, case.features, case.categorical)
            if case.categorical
            else v2_matrix(rows)
        )
        assert (await client.post("/v2/models/m/infer", json=body)).status_code == 200
    profile = load_model_dir(case.path).profile
    assert profile.output is not None
    expected = profile.output_bin_counts(case.estimator.predict(np.concatenate(sent)))
    counts = await counts_of(client)
    assert counts.predictions is not None
    assert counts.predictions.tolist() == expected.tolist()
    family = (await families_of(client))["modelops_prediction_bin"]
    from_text = {sample.labels["bin"]: sample.value for sample in family.samples}
    assert from_text == dict(zip(profile.output.bin_labels, expected.tolist(), strict=True))


async def test_a_request_for_probabilities_only_counts_the_likeliest_class(
    models: dict[str, ModelCase], clients: dict[str, httpx.AsyncClient]
) -> None:
    case, client = models["classifier"], clients["classifier"]
    body = {**v2_matrix(case.X), "outputs": [{"name": "predict_proba"}]}
    assert (await client.post("/v2/models/m/infer", json=body)).status_code == 200
    profile = load_model_dir(case.path).profile
    counts = await counts_of(client)
    assert counts.predictions is not None
    expected = profile.output_bin_counts(case.estimator.predict(case.X))
    assert counts.predictions.tolist() == expected.tolist()


async def test_classification_feedback_counts_equal_scikit_learn(
    models: dict[str, ModelCase], clients: dict[str, httpx.AsyncClient]
) -> None:
    case, client = models["classifier"], clients["classifier"]
    rng = np.random.default_rng(4)
    truth = case.estimator.predict(case.X)
    flipped = rng.random(len(truth)) < 0.3  # concept drift: a third of the labels change
    truth[flipped] = rng.integers(0, 3, size=int(flipped.sum()))
    before = await counts_of(client)
    halves = np.array_split(np.arange(len(truth)), 2)
    for part in halves:
        body = with_truth(v2_matrix(case.X[part]), "species", truth[part])
        response = await client.post("/v2/models/m/feedback", json=body)
        assert response.status_code == 200, response.text
        assert response.json() == {"model_name": "m", "model_version": "v1", "rows": len(part)}
    counts = await counts_of(client)
    feedback = counts.feedback
    assert feedback is not None
    assert feedback.task == "classification"
    assert feedback.classes == ("0", "1", "2")
    assert feedback.rows == len(truth)
    predicted = case.estimator.predict(case.X)
    expected = confusion_matrix(truth, predicted, labels=[0, 1, 2])
    assert feedback.confusion is not None
    np.testing.assert_array_equal(feedback.confusion, expected)
    confusion = feedback.confusion
    accuracy = np.trace(confusion) / confusion.sum()
    assert accuracy == pytest.approx(accuracy_score(truth, predicted))
    precision = np.diag(confusion) / confusion.sum(axis=0)
    recall = np.diag(confusion) / confusion.sum(axis=1)
    f1 = np.mean(2 * precision * recall / (precision + recall))
    assert f1 == pytest.approx(f1_score(truth, predicted, average="macro"))
    # Feedback rows are not inference traffic: no feature bins, predictions or rows counted.
    assert counts.rows == before.rows
    assert counts.predictions is not None
    assert before.predictions is not None
    assert counts.predictions.tolist() == before.predictions.tolist()
    for name, values in counts.features.items():
        assert values.tolist() == before.features[name].tolist()
    families = await families_of(client)
    rows = families["modelops_feedback_rows"].samples[0].value
    assert rows == len(truth)
    cells = {
        (s.labels["actual"], s.labels["predicted"]): s.value
        for s in families["modelops_feedback_confusion"].samples
    }
    assert len(cells) == 9  # every pair, zeros included
    assert cells == {(str(a), str(p)): float(expected[a, p]) for a in range(3) for p in range(3)}


async def test_regression_feedback_sums_give_scikit_learn_s_mae_rmse_and_r2(
    models: dict[str, ModelCase], clients: dict[str, httpx.AsyncClient]
) -> None:
    case, client = models["regressor"], clients["regressor"]
    rng = np.random.default_rng(5)
    rows = case.X[:200]
    truth = case.estimator.predict(rows) + rng.normal(0, 30, size=200)
    body = with_truth(v2_matrix(rows), "progression", truth)
    response = await client.post("/v2/models/m/versions/v1/feedback", json=body)
    assert response.status_code == 200, response.text
    feedback = (await counts_of(client)).feedback
    assert feedback is not None
    assert feedback.task == "regression"
    n = feedback.rows
    assert n == 200
    predicted = case.estimator.predict(rows)
    assert feedback.abs_error / n == pytest.approx(mean_absolute_error(truth, predicted))
    rmse = np.sqrt(feedback.squared_error / n)
    assert rmse == pytest.approx(np.sqrt(mean_squared_error(truth, predicted)))
    total = feedback.target_squared - feedback.target**2 / n
    assert 1 - feedback.squared_error / total == pytest.approx(r2_score(truth, predicted))
    families = await families_of(client)
    for name, value in (
        ("modelops_feedback_abs_error", feedback.abs_error),
        ("modelops_feedback_squared_error", feedback.squared_error),
        ("modelops_feedback_target", feedback.target),
        ("modelops_feedback_target_squared", feedback.target_squared),
    ):
        assert families[name].samples[0].value == pytest.approx(value)


async def test_feedback_with_text_labels_and_per_feature_tensors(
    models: dict[str, ModelCase], clients: dict[str, httpx.AsyncClient]
) -> None:
    case, client = models["categorical"], clients["categorical"]
    rows = case.X[:50]
    truth = np.array(["yes"] * 25 + ["no"] * 25, dtype=object)
    body = with_truth(v2_columns(rows, case.features, case.categorical), "label", truth)
    response = await client.post("/v2/models/m/feedback", json=body)
    assert response.status_code == 200, response.text
    feedback = (await counts_of(client)).feedback
    assert feedback is not None
    assert feedback.classes == ("no", "yes")
    expected = confusion_matrix(truth, case.estimator.predict(rows), labels=["no", "yes"])
    assert feedback.confusion is not None
    np.testing.assert_array_equal(feedback.confusion, expected)


async def test_binary_tensor_feedback(
    models: dict[str, ModelCase], clients: dict[str, httpx.AsyncClient]
) -> None:
    case, client = models["classifier"], clients["classifier"]
    rows = np.ascontiguousarray(case.X[:30])
    truth = np.arange(30, dtype=np.int64) % 3
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": list(rows.shape),
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": rows.nbytes},
                },
                {
                    "name": "species",
                    "shape": [30],
                    "datatype": "INT64",
                    "parameters": {"binary_data_size": truth.nbytes},
                },
            ]
        }
    )
    response = await client.post(
        "/v2/models/m/feedback",
        content=header + rows.astype("<f8").tobytes() + truth.astype("<i8").tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 200, response.text
    feedback = (await counts_of(client)).feedback
    assert feedback is not None
    assert feedback.confusion is not None
    expected = confusion_matrix(truth, case.estimator.predict(rows), labels=[0, 1, 2])
    np.testing.assert_array_equal(feedback.confusion, expected)


def _matrix_with(rows: np.ndarray, truth: dict[str, Any]) -> dict[str, Any]:
    return {"inputs": [*v2_matrix(rows)["inputs"], truth]}


THREE = np.zeros((3, 4))


@pytest.mark.parametrize(
    ("kind", "body", "message"),
    [
        ("classifier", v2_matrix(THREE), "an input tensor named 'species'"),
        (
            "classifier",
            _matrix_with(
                THREE, {"name": "species", "shape": [2], "datatype": "INT64", "data": [0, 1]}
            ),
            "'species' has 2 rows, the features have 3",
        ),
        (
            "classifier",
            _matrix_with(
                THREE, {"name": "species", "shape": [3, 2], "datatype": "INT64", "data": [0] * 6}
            ),
            r"shape \[rows\] or \[rows, 1\]",
        ),
        (
            "classifier",
            _matrix_with(
                THREE, {"name": "species", "shape": [3], "datatype": "INT64", "data": [0, 7, 1]}
            ),
            "row 1 is 7, an unknown class; the classes are 0, 1, 2",
        ),
        (
            "classifier",
            _matrix_with(
                THREE,
                {"name": "species", "shape": [3], "datatype": "BYTES", "data": ["0", "", "1"]},
            ),
            "row 1 is missing",
        ),
        (
            "classifier",
            _matrix_with(
                THREE,
                {"name": "species", "shape": [3], "datatype": "INT64", "data": ["a", "b", "c"]},
            ),
            "values do not match datatype INT64",
        ),
        (
            "classifier",
            {
                "inputs": [
                    *_matrix_with(
                        THREE,
                        {"name": "species", "shape": [3], "datatype": "INT64", "data": [0, 1, 2]},
                    )["inputs"],
                    {"name": "species", "shape": [3], "datatype": "INT64", "data": [0, 1, 2]},
                ]
            },
            "'species' is given twice",
        ),
        (
            "classifier",
            {"inputs": [{"name": "species", "shape": [1], "datatype": "INT64", "data": [0]}]},
            "needs the features",
        ),
        (
            "classifier",
            _matrix_with(
                np.zeros((3, 3)),
                {"name": "species", "shape": [3], "datatype": "INT64", "data": [0, 1, 2]},
            ),
            "has 3 features, the model takes 4",  # the features are checked as infer does
        ),
        (
            "regressor",
            {
                "inputs": [
                    *v2_matrix(np.zeros((2, 10)))["inputs"],
                    {"name": "progression", "shape": [2], "datatype": "BYTES", "data": ["1", "2"]},
                ]
            },
            "regressor are numbers",
        ),
        (
            "regressor",
            {
                "inputs": [
                    *v2_matrix(np.zeros((2, 10)))["inputs"],
                    {"name": "progression", "shape": [2], "datatype": "FP64", "data": [1.0, "NaN"]},
                ]
            },
            "values do not match datatype FP64",
        ),
    ],
)
async def test_bad_feedback_is_a_400_and_counts_nothing(
    kind: str,
    body: dict[str, Any],
    message: str,
    clients: dict[str, httpx.AsyncClient],
) -> None:
    client = clients[kind]
    response = await client.post("/v2/models/m/feedback", json=body)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"}
    assert re.search(message, response.json()["error"])
    feedback = (await counts_of(client)).feedback
    assert feedback is not None
    assert feedback.rows == 0


async def test_a_non_finite_true_value_is_a_400(clients: dict[str, httpx.AsyncClient]) -> None:
    rows = np.zeros((2, 10))
    header = orjson.dumps(
        {
            "inputs": [
                *v2_matrix(rows)["inputs"],
                {
                    "name": "progression",
                    "shape": [2],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": 16},
                },
            ]
        }
    )
    response = await clients["regressor"].post(
        "/v2/models/m/feedback",
        content=header + np.array([1.0, np.nan]).tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 400
    assert "row 1 is nan, not a finite number" in response.json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v2/models/m/feedback", 405),
        ("POST", "/v2/models/other/feedback", 404),
        ("POST", "/v2/models/m/versions/v9/feedback", 404),
    ],
)
async def test_feedback_routes(
    method: str, path: str, status: int, clients: dict[str, httpx.AsyncClient]
) -> None:
    response = await clients["classifier"].request(method, path, json={})
    assert response.status_code == status
    assert set(response.json()) == {"error"}


async def test_a_profile_without_output_is_still_served_and_takes_feedback(
    models: dict[str, ModelCase], clients: dict[str, httpx.AsyncClient]
) -> None:
    case, client = models["no-output"], clients["no-output"]
    assert load_model_dir(case.path).profile.output is None
    assert (await client.post("/v2/models/m/infer", json=v2_matrix(case.X[:10]))).status_code == 200
    counts = await counts_of(client)
    assert counts.rows == 10
    assert counts.predictions is None
    assert "predictions" not in orjson.loads((await client.get("/v2/models/m/counts")).content)
    assert "modelops_prediction_bin" not in await families_of(client)
    truth = case.estimator.predict(case.X[:10])
    body = with_truth(v2_matrix(case.X[:10]), "species", truth)
    assert (await client.post("/v2/models/m/feedback", json=body)).status_code == 200
    feedback = (await counts_of(client)).feedback
    assert feedback is not None
    assert feedback.confusion is not None
    assert int(np.trace(feedback.confusion)) == 10


def test_an_output_entry_that_does_not_fit_the_model_is_refused(tmp_path: Path) -> None:
    case = make_model_dir(tmp_path, "classifier")
    loaded = load_model_dir(case.path)
    wrong = build_output_profile(np.array(["a"]), "species", classes=["a", "b", "c"])
    (case.path / "profile.json").write_text(replace(loaded.profile, output=wrong).to_json())
    with pytest.raises(ModelLoadError, match="output categories"):
        load_model_dir(case.path)
    numeric = build_output_profile(np.arange(10.0), "species")
    (case.path / "profile.json").write_text(replace(loaded.profile, output=numeric).to_json())
    with pytest.raises(ModelLoadError, match="must be categorical"):
        load_model_dir(case.path)


async def test_a_classifier_counts_feedback_by_its_classes_as_text(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    app: ServingApp = clients["classifier"].app  # type: ignore[attr-defined]
    assert app.metrics.feedback is not None
    assert app.metrics.feedback.classes == ("0", "1", "2")


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
async def test_prediction_and_feedback_metrics_pass_promtool(
    kind: str, models: dict[str, ModelCase], clients: dict[str, httpx.AsyncClient]
) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian package prometheus) is not installed")
    case, client = models[kind], clients[kind]
    target = load_model_dir(case.path).metadata.target
    rows = case.X[:20]
    assert (await client.post("/v2/models/m/infer", json=v2_matrix(rows))).status_code == 200
    body = with_truth(v2_matrix(rows), target, np.asarray(case.estimator.predict(rows)))
    assert (await client.post("/v2/models/m/feedback", json=body)).status_code == 200
    text = (await client.get("/metrics")).content
    assert b"modelops_prediction_bin_total" in text
    assert b"modelops_feedback_rows_total" in text
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_big_batches_predicted_in_a_worker_thread_are_counted_too(
    models: dict[str, ModelCase], clients: dict[str, httpx.AsyncClient]
) -> None:
    case, client = models["regressor"], clients["regressor"]
    rows = np.tile(case.X, (7, 1))[:3000]  # over THREAD_ROWS: the worker-thread path
    assert (await client.post("/v2/models/m/infer", json=v2_matrix(rows))).status_code == 200
    truth = np.linspace(0.0, 300.0, len(rows))
    body = with_truth(v2_matrix(rows), "progression", truth)
    response = await client.post("/v2/models/m/feedback", json=body)
    assert response.status_code == 200, response.text
    counts = await counts_of(client)
    predicted = case.estimator.predict(rows)
    profile = load_model_dir(case.path).profile
    assert counts.predictions is not None
    assert counts.predictions.tolist() == profile.output_bin_counts(predicted).tolist()
    assert counts.feedback is not None
    assert counts.feedback.rows == 3000
    assert counts.feedback.abs_error == pytest.approx(np.abs(truth - predicted).sum())
