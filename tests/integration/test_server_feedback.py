"""Prediction drift and ground truth on a real `modelops serve` process (#14).

Predictions are served over REST (JSON and Triton's binary tensors) and gRPC (Triton's client);
the prediction bins must equal the profile's binning of ``predict`` on the same rows. Feedback is
posted as Triton's HTTP client encodes a request (binary tensors) and as plain JSON; the exported
counters must give scikit-learn's metrics on the same rows, and a bad truth tensor is a 400.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
)

from modelops.serving.counts import Counts, decode_counts
from modelops.serving.loader import load_model_dir
from serving_support import ModelCase, ServerProcess, make_model_dir, start_server, stop_server

pytestmark = pytest.mark.integration

http = pytest.importorskip("tritonclient.http")
grpcclient = pytest.importorskip("tritonclient.grpc")

KINDS = ("forest", "regressor", "old-profile")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModelCase]:
    root = tmp_path_factory.mktemp("models")
    return {
        "forest": make_model_dir(root, "forest"),
        "regressor": make_model_dir(root, "regressor"),
        "old-profile": make_model_dir(root, "classifier", output=False),
    }


@pytest.fixture(scope="module")
def servers(
    models: dict[str, ModelCase], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServerProcess]]:
    logs = tmp_path_factory.mktemp("logs")
    started: dict[str, ServerProcess] = {}
    try:
        for kind, case in models.items():
            started[kind] = start_server(case.uri, logs / f"{kind}.log", name=kind)
        yield started
    finally:
        for server in started.values():
            stop_server(server)


def counts_of(server: ServerProcess, name: str) -> Counts:
    with server.client() as client:
        response = client.get(f"/v2/models/{name}/counts")
    assert response.status_code == 200, response.text
    return decode_counts(response.content, name)


def families_of(server: ServerProcess) -> dict[str, Any]:
    with server.client() as client:
        text = client.get("/metrics").text
    return {family.name: family for family in text_string_to_metric_families(text)}


def triton_inputs(module: Any, rows: np.ndarray, binary: bool = True) -> list[Any]:
    tensor = module.InferInput("input-0", list(rows.shape), "FP64")
    if module is http:
        tensor.set_data_from_numpy(rows.astype(np.float64), binary_data=binary)
    else:
        tensor.set_data_from_numpy(rows.astype(np.float64))
    return [tensor]


def truth_input(module: Any, name: str, truth: np.ndarray) -> Any:
    datatype = "INT64" if truth.dtype.kind in "iu" else "FP64"
    tensor = module.InferInput(name, [len(truth)], datatype)
    tensor.set_data_from_numpy(truth.astype(np.int64 if datatype == "INT64" else np.float64))
    return tensor


def post_feedback(server: ServerProcess, name: str, inputs: list[Any]) -> httpx.Response:
    """Feedback as Triton's HTTP client encodes an inference request (binary tensors)."""
    body, json_size = http.InferenceServerClient.generate_request_body(inputs)
    headers = {} if json_size is None else {"Inference-Header-Content-Length": str(json_size)}
    with server.client() as client:
        return client.post(f"/v2/models/{name}/feedback", content=body, headers=headers)


@pytest.mark.parametrize("kind", ["forest", "regressor"])
def test_prediction_bins_equal_the_profile_binning_of_predict(
    kind: str, models: dict[str, ModelCase], servers: dict[str, ServerProcess]
) -> None:
    case, server = models[kind], servers[kind]
    rng = np.random.default_rng(21)
    sent = [case.X[rng.choice(len(case.X), size=int(n))] for n in (1, 7, 64, 200)]
    before = counts_of(server, kind).predictions
    assert before is not None
    rest = http.InferenceServerClient(f"127.0.0.1:{server.port}")
    grpc = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    try:
        for index, rows in enumerate(sent):
            if index % 2:
                grpc.infer(kind, triton_inputs(grpcclient, rows))
            else:
                rest.infer(kind, triton_inputs(http, rows, binary=index == 0))
    finally:
        rest.close()
        grpc.close()
    profile = load_model_dir(case.path).profile
    assert profile.output is not None
    expected = profile.output_bin_counts(case.estimator.predict(np.concatenate(sent)))
    counts = counts_of(server, kind)
    assert counts.predictions is not None
    assert (counts.predictions - before).tolist() == expected.tolist()
    samples = families_of(server)["modelops_prediction_bin"].samples
    exported = {sample.labels["bin"]: sample.value for sample in samples}
    assert exported == dict(
        zip(profile.output.bin_labels, counts.predictions.tolist(), strict=True)
    )


def test_classification_feedback_counters_give_scikit_learn_s_metrics(
    models: dict[str, ModelCase], servers: dict[str, ServerProcess]
) -> None:
    case, server = models["forest"], servers["forest"]
    rng = np.random.default_rng(22)
    truth = np.asarray(case.estimator.predict(case.X)).copy()
    flipped = rng.random(len(truth)) < 0.4  # labels flip: concept drift on unchanged inputs
    truth[flipped] = (truth[flipped] + 1) % 3
    before = counts_of(server, "forest")
    for part in np.array_split(np.arange(len(truth)), 3):
        response = post_feedback(
            server,
            "forest",
            [*triton_inputs(http, case.X[part]), truth_input(http, "species", truth[part])],
        )
        assert response.status_code == 200, response.text
        assert response.json()["rows"] == len(part)
    after = counts_of(server, "forest")
    families = families_of(server)
    cells = {
        (s.labels["actual"], s.labels["predicted"]): s.value
        for s in families["modelops_feedback_confusion"].samples
    }
    assert len(cells) == 9
    matrix = np.array([[cells[str(a), str(p)] for p in range(3)] for a in range(3)])
    assert families["modelops_feedback_rows"].samples[0].value == len(truth) == matrix.sum()
    predicted = case.estimator.predict(case.X)
    assert np.trace(matrix) / matrix.sum() == pytest.approx(accuracy_score(truth, predicted))
    precision = np.diag(matrix) / matrix.sum(axis=0)
    recall = np.diag(matrix) / matrix.sum(axis=1)
    macro_f1 = float(np.mean(2 * precision * recall / (precision + recall)))
    assert macro_f1 == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert after.feedback is not None
    assert after.feedback.confusion is not None
    assert after.feedback.confusion.tolist() == matrix.astype(int).tolist()
    # Labels arriving later are not live traffic: inference rows and bins did not move.
    assert after.rows == before.rows
    assert after.predictions is not None
    assert before.predictions is not None
    assert after.predictions.tolist() == before.predictions.tolist()
    for name, values in after.features.items():
        assert values.tolist() == before.features[name].tolist()


def test_regression_feedback_counters_give_scikit_learn_s_metrics(
    models: dict[str, ModelCase], servers: dict[str, ServerProcess]
) -> None:
    case, server = models["regressor"], servers["regressor"]
    rng = np.random.default_rng(23)
    rows = case.X[:300]
    truth = case.estimator.predict(rows) + rng.normal(5.0, 40.0, size=len(rows))
    for part in np.array_split(np.arange(len(rows)), 2):
        response = post_feedback(
            server,
            "regressor",
            [*triton_inputs(http, rows[part]), truth_input(http, "progression", truth[part])],
        )
        assert response.status_code == 200, response.text
    families = families_of(server)

    def total(name: str) -> float:
        value: float = families[f"modelops_feedback_{name}"].samples[0].value
        return value

    n = total("rows")
    assert n == len(rows)
    predicted = case.estimator.predict(rows)
    assert total("abs_error") / n == pytest.approx(mean_absolute_error(truth, predicted))
    rmse = np.sqrt(total("squared_error") / n)
    assert rmse == pytest.approx(np.sqrt(mean_squared_error(truth, predicted)))
    spread = total("target_squared") - total("target") ** 2 / n
    assert 1 - total("squared_error") / spread == pytest.approx(r2_score(truth, predicted))
    feedback = counts_of(server, "regressor").feedback
    assert feedback is not None
    assert feedback.rows == n
    assert feedback.squared_error == pytest.approx(total("squared_error"))


@pytest.mark.parametrize(
    ("kind", "truth", "message"),
    [
        ("forest", {"shape": [2], "datatype": "INT64", "data": [0, 1]}, "has 2 rows"),
        ("forest", {"shape": [3], "datatype": "INT64", "data": [0, 5, 1]}, "unknown class"),
        ("forest", {"shape": [3], "datatype": "BYTES", "data": ["0", "x", "1"]}, "unknown class"),
        ("regressor", {"shape": [3], "datatype": "BYTES", "data": ["1", "2", "3"]}, "numbers"),
        ("regressor", {"shape": [3, 2], "datatype": "FP64", "data": [1.0] * 6}, "shape"),
    ],
)
def test_a_bad_truth_tensor_is_a_400(
    kind: str,
    truth: dict[str, Any],
    message: str,
    models: dict[str, ModelCase],
    servers: dict[str, ServerProcess],
) -> None:
    case, server = models[kind], servers[kind]
    target = load_model_dir(case.path).metadata.target
    rows = case.X[:3]
    body = {
        "inputs": [
            {
                "name": "input-0",
                "shape": list(rows.shape),
                "datatype": "FP64",
                "data": rows.ravel().tolist(),
            },
            {"name": target, **truth},
        ]
    }
    before = counts_of(server, kind).feedback
    with server.client() as client:
        response = client.post(f"/v2/models/{kind}/feedback", json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    after = counts_of(server, kind).feedback
    assert before is not None
    assert after is not None
    assert after.rows == before.rows


def test_a_profile_without_output_is_still_served(
    models: dict[str, ModelCase], servers: dict[str, ServerProcess]
) -> None:
    case, server = models["old-profile"], servers["old-profile"]
    with server.client() as client:
        profile = client.get("/v2/models/old-profile/profile").json()
        response = client.post(
            "/v2/models/old-profile/infer",
            json={
                "inputs": [
                    {
                        "name": "input-0",
                        "shape": [5, 4],
                        "datatype": "FP64",
                        "data": case.X[:5].ravel().tolist(),
                    }
                ]
            },
        )
    assert "output" not in profile
    assert response.status_code == 200
    counts = counts_of(server, "old-profile")
    assert counts.rows == 5
    assert counts.predictions is None
    assert "modelops_prediction_bin" not in families_of(server)
    truth = np.asarray(case.estimator.predict(case.X[:5]))
    response = post_feedback(
        server,
        "old-profile",
        [*triton_inputs(http, case.X[:5]), truth_input(http, "species", truth)],
    )
    assert response.status_code == 200, response.text
    feedback = counts_of(server, "old-profile").feedback
    assert feedback is not None
    assert feedback.rows == 5


def test_a_restarted_server_counts_feedback_from_zero(
    models: dict[str, ModelCase], tmp_path: Path
) -> None:
    case = models["forest"]
    server = start_server(case.uri, tmp_path / "fresh.log", name="forest")
    try:
        counts = counts_of(server, "forest")
    finally:
        stop_server(server)
    assert counts.feedback is not None
    assert counts.feedback.rows == 0
    assert counts.predictions is not None
    assert not counts.predictions.any()
