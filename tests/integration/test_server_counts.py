"""The counts endpoint of a real server process gives the numbers of its /metrics page.

V2 requests go in over HTTP; the counts document read by the operator's own reader must equal
the Prometheus text parsed by prometheus_client, bin by bin, and its rows counter.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelops.artifacts import METADATA_FILE, ModelMetadata
from modelops.controller.signals import prediction_counts
from modelops.controller.sources import (
    Endpoint,
    SourceError,
    fetch_holdout_metrics,
    parse_bin_counters,
    scrape_pods,
)
from modelops.drift import Profile
from modelops.serving.counts import Counts, counts_path, decode_counts
from serving_support import (
    ModelCase,
    ServerProcess,
    make_model_dir,
    start_server,
    stop_server,
    v2_columns,
)

pytestmark = pytest.mark.integration

KINDS = ("regressor", "categorical")


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
            started[kind] = start_server(case.uri, logs / f"{kind}.log", name=kind)
        yield started
    finally:
        for server in started.values():
            stop_server(server)


def counts_of(server: ServerProcess, name: str) -> Counts:
    with server.client() as client:
        response = client.get(counts_path(name))
    assert response.status_code == 200, response.text
    return decode_counts(response.content, name)


def metrics_of(server: ServerProcess) -> tuple[float, dict[str, list[float]]]:
    """Rows and per-feature bin counts (in bin order) from the parsed /metrics page."""
    with server.client() as client:
        text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    rows = families["modelops_inference_rows"].samples[0].value
    bins: dict[str, dict[int, float]] = {}
    for sample in families["modelops_feature_bin"].samples:
        bins.setdefault(sample.labels["feature"], {})[int(sample.labels["bin"])] = sample.value
    return rows, {name: [by_bin[i] for i in sorted(by_bin)] for name, by_bin in bins.items()}


@pytest.mark.parametrize("kind", KINDS)
def test_counts_equal_the_metrics_page_after_traffic(
    kind: str, models: dict[str, ModelCase], servers: dict[str, ServerProcess]
) -> None:
    case, server = models[kind], servers[kind]
    rng = np.random.default_rng(11)
    sent = case.X[rng.choice(len(case.X), size=300)]
    if kind == "categorical":
        sent[:7, 1] = "violet"  # an unseen category has its own bin
    with server.client() as client:
        for start in range(0, len(sent), 30):
            doc = v2_columns(sent[start : start + 30], case.features, case.categorical)
            assert client.post(f"/v2/models/{kind}/infer", json=doc).status_code == 200
    counts = counts_of(server, kind)
    rows, bins = metrics_of(server)
    assert counts.rows == rows >= len(sent)
    assert list(counts.features) == case.features
    assert {name: values.tolist() for name, values in counts.features.items()} == bins
    assert all(int(values.sum()) == counts.rows for values in counts.features.values())
    assert (counts.model, counts.version) == (kind, case.version)


def test_the_operator_reads_the_counts_document_of_a_real_server(
    models: dict[str, ModelCase], servers: dict[str, ServerProcess]
) -> None:
    server = servers["regressor"]
    with server.client() as client:  # some traffic of its own, whatever ran before
        case = models["regressor"]
        doc = v2_columns(case.X[:5], case.features, case.categorical)
        assert client.post("/v2/models/regressor/infer", json=doc).status_code == 200
    endpoint = Endpoint(pod="regressor-0/uid-0", address="127.0.0.1", port=server.port)
    scrape = scrape_pods([endpoint], "regressor", timeout=10.0, concurrency=1)
    assert scrape.errors == {}
    [(key, versions)] = scrape.pods.items()
    how = scrape.via[key]
    start = counts_of(server, "regressor").start
    assert (key, how) == (f"regressor-0/uid-0/{start}", "counts")
    _, bins = metrics_of(server)
    features = {
        (name, str(index)): value
        for name, values in bins.items()
        for index, value in enumerate(values)
    }
    assert features.items() <= versions["v1"].items()
    # The same predictions per output bin as the operator's fallback reads from /metrics
    # (there keyed by bin label, here by index).
    with server.client() as client:
        text = client.get("/metrics").text
        profile = Profile.from_json(client.get("/v2/models/regressor/profile").content)
    assert profile.output is not None
    from_text = parse_bin_counters(text, "regressor")["v1"]
    by_index = prediction_counts(profile.output, versions["v1"])
    assert by_index.tolist() == prediction_counts(profile.output, from_text).tolist()
    assert by_index.sum() == counts_of(server, "regressor").rows > 0


def test_unknown_model_or_version_is_a_404(servers: dict[str, ServerProcess]) -> None:
    with servers["regressor"].client() as client:
        assert client.get("/v2/models/regressor/versions/v1/counts").status_code == 200
        assert client.get("/v2/models/regressor/versions/v2/counts").status_code == 404
        assert client.get(counts_path("iris")).status_code == 404
        assert client.post(counts_path("regressor")).status_code == 405


def test_a_restarted_server_has_a_new_start_and_counts_from_zero(
    models: dict[str, ModelCase], servers: dict[str, ServerProcess], tmp_path: Path
) -> None:
    case = models["regressor"]
    before = counts_of(servers["regressor"], "regressor")
    again = start_server(case.uri, tmp_path / "again.log", name="regressor")
    try:
        fresh = counts_of(again, "regressor")
    finally:
        stop_server(again)
    assert fresh.start != before.start
    assert fresh.rows == 0
    assert not any(values.any() for values in fresh.features.values())


@pytest.mark.parametrize("kind", KINDS)
def test_the_holdout_metrics_are_read_from_the_pods_model_metadata(
    kind: str, models: dict[str, ModelCase], servers: dict[str, ServerProcess]
) -> None:
    # The operator's performance baseline, for a model directory it cannot read (object storage).
    case = models[kind]
    endpoint = Endpoint(pod="pod-0", address="127.0.0.1", port=servers[kind].port)
    expected = ModelMetadata.model_validate_json((case.path / METADATA_FILE).read_text()).metrics
    assert expected
    metrics = fetch_holdout_metrics(
        "s3://models/unreadable", kind, case.version, [endpoint], timeout=10
    )
    assert metrics == expected
    with pytest.raises(SourceError, match=r"serves another version than v9.*object storage"):
        fetch_holdout_metrics("s3://models/unreadable", kind, "v9", [endpoint], timeout=10)
