"""The model server as a real process on 127.0.0.1: predictions, bin counters, malformed input.

One server per model kind for the whole module (start-up costs about a second each).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from modelops.drift import Profile
from serving_support import (
    KINDS,
    ModelCase,
    ServerProcess,
    make_model_dir,
    start_server,
    stop_server,
    v2_columns,
    v2_matrix,
)

pytestmark = pytest.mark.integration

MAX_REQUEST_BYTES = 256 * 1024
MAX_ROWS = 1000


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModelCase]:
    root = tmp_path_factory.mktemp("models")
    return {kind: make_model_dir(root, kind) for kind in KINDS}


@pytest.fixture(scope="module")
def servers(
    models: dict[str, ModelCase], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServerProcess]]:
    logs = tmp_path_factory.mktemp("logs")
    started: dict[str, ServerProcess] = {}
    try:
        for kind, case in models.items():
            started[kind] = start_server(
                case.uri,
                logs / f"{kind}.log",
                name=kind,
                extra_args=[
                    "--max-request-bytes",
                    str(MAX_REQUEST_BYTES),
                    "--max-rows",
                    str(MAX_ROWS),
                ],
            )
        yield started
    finally:
        for server in started.values():
            stop_server(server)


def infer(server: ServerProcess, name: str, doc: Any) -> httpx.Response:
    with server.client() as client:
        return client.post(f"/v2/models/{name}/infer", json=doc)


def outputs_of(response: httpx.Response) -> dict[str, np.ndarray]:
    assert response.status_code == 200, response.text
    return {
        o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in response.json()["outputs"]
    }


@pytest.mark.parametrize("kind", KINDS)
def test_predictions_equal_in_process_scikit_learn(
    kind: str, models: dict[str, ModelCase], servers: dict[str, ServerProcess]
) -> None:
    case, server = models[kind], servers[kind]
    X = case.X[:MAX_ROWS]
    expected = case.estimator.predict(X)
    doc = v2_columns(X, case.features, case.categorical) if case.categorical else v2_matrix(X)
    is_classifier = hasattr(case.estimator, "predict_proba")
    if is_classifier:
        doc["outputs"] = [{"name": "predict"}, {"name": "predict_proba"}]
    got = outputs_of(infer(server, kind, doc))
    if expected.dtype.kind in "OU":
        assert got["predict"].tolist() == expected.tolist()
    else:
        np.testing.assert_allclose(got["predict"], expected, rtol=1e-12)
    if is_classifier:
        np.testing.assert_allclose(
            got["predict_proba"], case.estimator.predict_proba(X), rtol=1e-9, atol=1e-15
        )


def metric_families(server: ServerProcess) -> dict[str, Metric]:
    """The server's /metrics page, parsed, by family name."""
    with server.client() as client:
        text = client.get("/metrics").text
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_numeric_models_predict_through_the_compiled_predictor(
    servers: dict[str, ServerProcess],
) -> None:
    expected = {
        "classifier": "compiled",
        "regressor": "compiled",
        "forest": "compiled",
        "categorical": "scikit-learn",  # object matrices go to the pipeline itself
    }
    for kind, predictor in expected.items():
        (info,) = metric_families(servers[kind])["modelops_model_info"].samples
        assert info.labels["predictor"] == predictor, kind
    log = servers["forest"].log()
    assert "Predicting with the compiled predictor: equal to scikit-learn on probe rows" in log


def test_one_tensor_per_feature_and_versioned_path_give_the_same(
    models: dict[str, ModelCase], servers: dict[str, ServerProcess]
) -> None:
    case, server = models["regressor"], servers["regressor"]
    X = case.X[:7]
    with server.client() as client:
        by_columns = client.post(
            "/v2/models/regressor/versions/v1/infer",
            json={"id": "r-1", **v2_columns(X, case.features, [])},
        )
    assert by_columns.json()["id"] == "r-1"
    assert by_columns.json()["model_version"] == "v1"
    np.testing.assert_allclose(outputs_of(by_columns)["predict"], case.estimator.predict(X))


def _bin_counts(server: ServerProcess) -> dict[tuple[str, str], float]:
    families = metric_families(server)
    return {
        (s.labels["feature"], s.labels["bin"]): s.value
        for s in families["modelops_feature_bin"].samples
    }


@pytest.mark.parametrize("kind", ["regressor", "categorical"])
def test_bin_counters_equal_numpy_histogram_of_what_was_sent(
    kind: str, models: dict[str, ModelCase], servers: dict[str, ServerProcess]
) -> None:
    from modelops.drift import Profile

    case, server = models[kind], servers[kind]
    profile = Profile.from_json((case.path / "profile.json").read_text())
    rng = np.random.default_rng(3)
    sent = case.X[rng.choice(len(case.X), size=200)]
    if kind == "categorical":
        sent[:5, 1] = "violet"  # unseen categories have their own bin
    before = _bin_counts(server)
    for start in range(0, len(sent), 50):
        rows = sent[start : start + 50]
        doc = v2_columns(rows, case.features, case.categorical)
        assert infer(server, kind, doc).status_code == 200
    after = _bin_counts(server)
    for j, feature in enumerate(profile.features):
        counted = [
            after[(feature.name, str(b))] - before.get((feature.name, str(b)), 0)
            for b in range(feature.n_bins)
        ]
        if feature.kind == "numeric":
            values = sent[:, j].astype(float)
            expected, _ = np.histogram(values, bins=[-np.inf, *feature.edges, np.inf])
            assert counted == [*expected.tolist(), 0]
        else:
            values = sent[:, j].tolist()
            known = [values.count(c) for c in feature.categories]
            unseen = sum(1 for v in values if v not in feature.categories)
            assert counted == [*known, unseen, 0]


def _curated_malformed() -> list[tuple[str, bytes]]:
    valid = v2_matrix(np.zeros((1, 4)))
    tensor = valid["inputs"][0]

    def with_tensor(**changes: Any) -> bytes:
        return orjson.dumps({"inputs": [{**tensor, **changes}]})

    deep = b"[" * 5000 + b"]" * 5000
    return [
        ("empty body", b""),
        ("not json", b"not json"),
        ("truncated", orjson.dumps(valid)[:-3]),
        ("binary junk", bytes(range(256))),
        ("invalid utf-8", b'{"inputs": "\xff\xfe"}'),
        ("json null", b"null"),
        ("json string", b'"inputs"'),
        ("deep nesting", b'{"inputs": ' + deep + b"}"),
        (
            "nan literal",
            b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", '
            b'"data": [NaN, 1, 2, 3]}]}',
        ),
        ("infinite number", with_tensor(data=[1, 2, 3]).replace(b"[1,2,3]", b"[1e999,1,2,3]")),
        (
            "huge integer",
            with_tensor(datatype="INT64", data=[1, 2, 3]).replace(
                b"[1,2,3]", b"[1,2,3,99999999999999999999999]"
            ),
        ),
        ("no inputs", b"{}"),
        ("inputs null", b'{"inputs": null}'),
        ("wrong datatype", with_tensor(datatype="UINT8")),
        ("lowercase datatype", with_tensor(datatype="fp64")),
        ("shape not list", with_tensor(shape="1,4")),
        ("shape empty", with_tensor(shape=[])),
        ("wrong feature count", with_tensor(shape=[1, 3], data=[1, 2, 3])),
        ("shape and data disagree", with_tensor(shape=[2, 4])),
        ("huge shape", with_tensor(shape=[2**62, 4])),
        ("too many rows", with_tensor(shape=[MAX_ROWS + 1, 4], data=[0] * (4 * MAX_ROWS + 4))),
        ("strings as FP64", with_tensor(data=["1", "2", "3", "4"])),
        ("nulls as FP64", with_tensor(data=[None, None, None, None])),
        ("objects as data", with_tensor(data=[{}, {}, {}, {}])),
        ("bools as INT64", with_tensor(datatype="INT64", data=[True, False, True, False])),
        ("floats as INT32", with_tensor(datatype="INT32", data=[0.5, 1, 2, 3])),
        ("FP32 overflow", with_tensor(datatype="FP32", data=[1e300, 1, 2, 3])),
        ("BYTES to numeric model", with_tensor(datatype="BYTES", data=["a", "b", "c", "d"])),
        ("ragged", with_tensor(shape=[2, 4], data=[[1, 2, 3, 4], [1, 2]])),
        ("id number", orjson.dumps({"id": 3, **valid})),
        ("unknown output", orjson.dumps({**valid, "outputs": [{"name": "explain"}]})),
        ("outputs object", orjson.dumps({**valid, "outputs": {"name": "predict"}})),
        ("parameters list", orjson.dumps({**valid, "parameters": [1, 2]})),
        (
            "unknown per-feature name",
            orjson.dumps({"inputs": [{**tensor, "name": "nope", "shape": [4]}]}),
        ),
    ]


def test_malformed_requests_give_4xx_and_the_server_stays_ready(
    models: dict[str, ModelCase], servers: dict[str, ServerProcess]
) -> None:
    server = servers["classifier"]
    cases = _curated_malformed()
    assert len(cases) >= 30
    url = "/v2/models/classifier/infer"
    with server.client() as client:
        for case, body in cases:
            response = client.post(url, content=body)
            assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
            assert set(response.json()) == {"error"}, case
        # Over the body limit: 413, with or without a Content-Length.
        response = client.post(url, content=b" " * (MAX_REQUEST_BYTES + 1))
        assert response.status_code == 413
        chunks = (b" " * 8192 for _ in range(MAX_REQUEST_BYTES // 8192 + 2))
        assert client.post(url, content=chunks).status_code == 413
        # Random mutations of a valid request: never a server error (some stay valid).
        valid = orjson.dumps(v2_matrix(models["classifier"].X[:3]))
        rng = random.Random(11)
        for _ in range(60):
            mutated = bytearray(valid)
            for _ in range(rng.randint(1, 6)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            response = client.post(url, content=bytes(mutated))
            assert response.status_code in (200, 400), (bytes(mutated), response.text)
        assert client.get("/v2/health/ready").status_code == 200
        assert client.post(url, content=valid).status_code == 200
        metrics = client.get("/metrics").text
    assert server.process.poll() is None
    assert 'code="500"' not in metrics
    assert "Traceback" not in server.log()


def test_logs_are_one_json_object_per_line(servers: dict[str, ServerProcess]) -> None:
    lines = [line for line in servers["forest"].log().splitlines() if line.strip()]
    assert lines
    for line in lines:
        doc = orjson.loads(line)
        assert {"time", "level", "logger", "message"} <= set(doc)
    assert any(orjson.loads(line)["message"] == "Model forest version v1 loaded" for line in lines)


def test_model_and_version_paths(servers: dict[str, ServerProcess]) -> None:
    with servers["forest"].client() as client:
        assert client.get("/v2/models/forest/versions/v1/ready").json() == {
            "name": "forest",
            "ready": True,
        }
        assert client.get("/v2/models/forest/versions/v2/ready").status_code == 404
        assert client.get("/v2/models/iris/ready").status_code == 404
        assert client.get("/v2").json()["name"] == "modelops"


def test_profile_endpoint_serves_the_loaded_reference_profile(
    servers: dict[str, ServerProcess], models: dict[str, ModelCase]
) -> None:
    stored = Profile.from_json((models["forest"].path / "profile.json").read_bytes())
    with servers["forest"].client() as client:
        for path in ("/v2/models/forest/profile", "/v2/models/forest/versions/v1/profile"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert Profile.from_json(response.content) == stored
        assert client.get("/v2/models/forest/versions/v2/profile").status_code == 404
        assert client.get("/v2/models/iris/profile").status_code == 404
        assert client.post("/v2/models/forest/profile").status_code == 405


def test_a_different_served_version_label(models: dict[str, ModelCase], tmp_path: Path) -> None:
    server = start_server(
        models["forest"].uri,
        tmp_path / "server.log",
        name="forest",
        extra_args=["--model-version", "2026-11"],
        module=("modelops.serving",),  # the `python -m modelops.serving` entry point
    )
    try:
        with server.client() as client:
            assert client.get("/v2/models/forest/versions/2026-11").status_code == 200
            assert client.get("/v2/models/forest/versions/v1").status_code == 404
    finally:
        assert stop_server(server) == 0
