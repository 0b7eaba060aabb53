"""The ASGI app in-process (real app, real model, httpx's ASGI transport): routes, errors,
micro-batching and the metrics it exposes."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelops.serving.app import ServingApp
from modelops.serving.loader import LoadedModel, load_model_dir
from modelops.serving.server import build_app
from modelops.serving.settings import ServeSettings
from serving_support import ModelCase, make_model_dir, v2_columns, v2_matrix


def app_for(loaded: LoadedModel, **settings: Any) -> ServingApp:
    return build_app(loaded, ServeSettings(model_uri="file:///model", name="m", **settings))


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> ModelCase:
    return make_model_dir(tmp_path_factory.mktemp("models"), "classifier")


@pytest.fixture
async def client(classifier: ModelCase) -> AsyncIterator[httpx.AsyncClient]:
    app = app_for(load_model_dir(classifier.path), max_request_bytes=4096)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        http.app = app  # type: ignore[attr-defined]
        yield http


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v2", 200),
        ("GET", "/v2/health/live", 200),
        ("GET", "/v2/health/ready", 200),
        ("GET", "/v2/models/m", 200),
        ("GET", "/v2/models/m/versions/v1", 200),
        ("GET", "/v2/models/m/ready", 200),
        ("GET", "/v2/models/m/versions/v1/ready", 200),
        ("GET", "/metrics", 200),
        ("GET", "/v2/models/other", 404),
        ("GET", "/v2/models/other/ready", 404),
        ("POST", "/v2/models/other/infer", 404),
        ("GET", "/v2/models/m/versions/v2", 404),
        ("POST", "/v2/models/m/versions/v2/infer", 404),
        ("GET", "/v2/models/m/explain", 404),
        ("GET", "/nothing", 404),
        ("GET", "/v2/models/m/infer", 405),
        ("POST", "/v2/models/m/ready", 405),
        ("DELETE", "/v2", 405),
    ],
)
async def test_routes(client: httpx.AsyncClient, method: str, path: str, status: int) -> None:
    response = await client.request(method, path)
    assert response.status_code == status
    if status >= 400:
        assert set(response.json()) == {"error"}
    if status == 405:
        assert response.headers["allow"]


async def test_model_metadata_lists_features_and_outputs(
    client: httpx.AsyncClient, classifier: ModelCase
) -> None:
    doc = (await client.get("/v2/models/m")).json()
    assert doc["name"] == "m"
    assert doc["versions"] == ["v1"]
    assert [i["name"] for i in doc["inputs"]] == classifier.features
    assert [o["name"] for o in doc["outputs"]] == ["predict", "predict_proba"]


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    big = b'{"inputs": [' + b" " * 5000 + b"]}"
    assert (await client.post("/v2/models/m/infer", content=big)).status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while reading
        for _ in range(10):
            yield b" " * 1000

    response = await client.post("/v2/models/m/infer", content=chunks())
    assert response.status_code == 413


async def test_concurrent_requests_are_batched_yet_answered_row_by_row(
    client: httpx.AsyncClient, classifier: ModelCase
) -> None:
    X = classifier.X
    slices = [X[i : i + 1 + i % 5] for i in range(0, 100, 5)]
    requests = [{"id": str(i), **v2_matrix(rows)} for i, rows in enumerate(slices)]
    requests[3]["outputs"] = [{"name": "predict_proba"}, {"name": "predict"}]
    responses = await asyncio.gather(*(client.post("/v2/models/m/infer", json=r) for r in requests))
    for i, (rows, response) in enumerate(zip(slices, responses, strict=True)):
        assert response.status_code == 200
        doc = response.json()
        assert doc["id"] == str(i)
        outputs = {o["name"]: o for o in doc["outputs"]}
        assert outputs["predict"]["data"] == classifier.estimator.predict(rows).tolist()
        if i == 3:
            proba = np.array(outputs["predict_proba"]["data"]).reshape(
                outputs["predict_proba"]["shape"]
            )
            np.testing.assert_allclose(proba, classifier.estimator.predict_proba(rows), rtol=1e-12)
    app: ServingApp = client.app  # type: ignore[attr-defined]
    assert app.metrics.rows == sum(len(s) for s in slices)


async def test_a_request_the_model_refuses_fails_alone_within_a_batch(tmp_path: Path) -> None:
    case = make_model_dir(tmp_path, "categorical")
    strict = make_pipeline(
        ColumnTransformer(
            [("num", StandardScaler(), [0, 2]), ("cat", OneHotEncoder(handle_unknown="error"), [1])]
        ),
        LogisticRegression(),
    ).fit(case.X, case.estimator.predict(case.X))
    loaded = dataclasses.replace(load_model_dir(case.path), estimator=strict)
    app = app_for(loaded)
    good = [v2_columns(case.X[i : i + 2], case.features, case.categorical) for i in range(5)]
    bad = v2_columns(case.X[:1], case.features, case.categorical)
    bad["inputs"][1]["data"] = ["purple"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        responses = await asyncio.gather(
            *(http.post("/v2/models/m/infer", json=doc) for doc in [*good[:2], bad, *good[2:]])
        )
    statuses = [r.status_code for r in responses]
    assert statuses == [200, 200, 400, 200, 200, 200]
    assert "purple" in responses[2].json()["error"]
    assert responses[0].json()["outputs"][0]["data"] == strict.predict(case.X[0:2]).tolist()


async def test_request_metrics_and_bin_counts(
    client: httpx.AsyncClient, classifier: ModelCase
) -> None:
    sent = classifier.X[::3]
    await client.post("/v2/models/m/infer", json=v2_matrix(sent))
    await client.post("/v2/models/m/infer", content=b"{")
    await client.post("/v2/models/m/versions/v9/infer", json=v2_matrix(sent))
    text = (await client.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    codes = {s.labels["code"]: s.value for s in families["modelops_inference_requests"].samples}
    assert codes == {"200": 1, "400": 1, "404": 1}
    rows = families["modelops_inference_rows"].samples[0]
    assert rows.value == len(sent)
    count = [
        s
        for s in families["modelops_inference_request_duration_seconds"].samples
        if s.name.endswith("_count")
    ]
    assert count[0].value == 3
    info = families["modelops_model_info"].samples[0]
    assert info.labels["model"] == "m"
    assert info.labels["version"] == "v1"
    bins = families["modelops_feature_bin"].samples
    app: ServingApp = client.app  # type: ignore[attr-defined]
    for j, feature in enumerate(app.dataplane.profile.features):
        counted = [s.value for s in bins if s.labels["feature"] == feature.name]
        assert [s.labels["bin"] for s in bins if s.labels["feature"] == feature.name] == [
            str(i) for i in range(feature.n_bins)
        ]
        expected, _ = np.histogram(sent[:, j], bins=[-np.inf, *feature.edges, np.inf])
        assert counted == [*expected.tolist(), 0]  # last bin: missing values, none sent


def test_exposition_passes_promtool(classifier: ModelCase, tmp_path: Path) -> None:
    import shutil

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian package prometheus) is not installed")
    app = app_for(load_model_dir(classifier.path))
    app.dataplane.infer(httpx.Request("POST", "/", json=v2_matrix(classifier.X[:4])).read())
    result = subprocess.run(
        [promtool, "check", "metrics"], input=app.metrics.exposition(), capture_output=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
