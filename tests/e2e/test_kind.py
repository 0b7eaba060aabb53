"""End to end on a real cluster (kind after `make kind-up`, or the real control plane in CI):
the samples become Ready, serve V2 predictions, and shifted traffic makes the DriftPolicy detect
drift, run a retraining Job and promote its candidate; the operator's and the servers' metrics
say so."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import Cluster, condition, wait_for
from prometheus_client.parser import text_string_to_metric_families

from modelops.resources import service_name

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
MODEL = "iris"
POLICY = "iris-drift"
FIRST_URI = "pvc://models/iris/v1"
SERVER_PORT = 8080
OPERATOR_METRICS_PORT = 8000
ROWS_PER_REQUEST = 20
POLICY_LABEL = "modelops.dev/policy"


def example_data(path: Path, *, shift: float, seed: int) -> tuple[list[str], list[list[float]]]:
    """Feature names and rows from `modelops example data` (the target column dropped)."""
    subprocess.run(
        [
            *(sys.executable, "-m", "modelops", "example", "data", "--dataset", "iris"),
            *("--rows", "2000", "--seed", str(seed), "--shift", str(shift), "--output", str(path)),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [[float(value) for value in row] for row in reader]
    target = header.index("target")
    features = [name for i, name in enumerate(header) if i != target]
    return features, [[v for i, v in enumerate(row) if i != target] for row in rows]


def infer_body(features: list[str], rows: list[list[float]]) -> dict[str, Any]:
    """A V2 inference request with one [rows] tensor per feature."""
    return {
        "inputs": [
            {"name": name, "shape": [len(rows)], "datatype": "FP64", "data": [r[j] for r in rows]}
            for j, name in enumerate(features)
        ]
    }


def send(client: httpx.Client, features: list[str], rows: list[list[float]]) -> int:
    """Send `rows` in batches; returns how many rows were answered with 200."""
    answered = 0
    for start in range(0, len(rows), ROWS_PER_REQUEST):
        batch = rows[start : start + ROWS_PER_REQUEST]
        response = client.post(f"/v2/models/{MODEL}/infer", json=infer_body(features, batch))
        assert response.status_code == 200, response.text
        outputs = response.json()["outputs"]
        assert outputs[0]["shape"][0] == len(batch)
        answered += len(batch)
    return answered


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample of the metric `name` in a /metrics page."""
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def get_json(cluster: Cluster, kind: str, name: str) -> dict[str, Any] | None:
    out = cluster.kubectl(
        "get", kind, name, "-n", cluster.namespace, "-o", "json", "--ignore-not-found"
    )
    return json.loads(out) if out.strip() else None


def ready_status(cluster: Cluster) -> dict[str, Any] | None:
    """The ModelDeployment's status once it is Ready for its current generation."""
    body = get_json(cluster, "modeldeployment", MODEL)
    if body is None:
        return None
    ready = condition(body, "Ready")
    status: dict[str, Any] = body.get("status", {})
    if ready is None or ready.get("status") != "True":
        return None
    if status.get("observedGeneration") != body["metadata"].get("generation"):
        return None
    return status


@pytest.fixture(scope="module")
def fresh_samples(cluster: Cluster) -> Cluster:
    """The samples applied from scratch: the policy (and its cooldown) and the model reset to
    v1 (a promotion patched the ModelDeployment's spec, so it is re-created, not re-applied)."""
    for kind, name in (("driftpolicy", POLICY), ("modeldeployment", MODEL)):
        cluster.kubectl(
            *("delete", kind, name, "-n", cluster.namespace),
            *("--ignore-not-found", "--wait=true", "--timeout=180s"),
            timeout=200,
        )
    selector = f"{POLICY_LABEL}={POLICY}"
    cluster.kubectl("delete", "jobs", "-n", cluster.namespace, "-l", selector, "--ignore-not-found")
    cluster.kubectl("apply", "-n", cluster.namespace, "-k", str(ROOT / "manifests" / "samples"))
    if cluster.policy_interval is not None:
        interval = json.dumps({"spec": {"interval": cluster.policy_interval}})
        cluster.kubectl(
            *("patch", "driftpolicy", POLICY, "-n", cluster.namespace, "--type=merge", "-p"),
            interval,
        )
    status = wait_for(f"ModelDeployment {MODEL} Ready", lambda: ready_status(cluster), timeout=300)
    assert status.get("modelUri", FIRST_URI) == FIRST_URI
    return cluster


@pytest.fixture(scope="module")
def server(fresh_samples: Cluster) -> Iterator[httpx.Client]:
    """An HTTP client to the model's Service (through kubectl port-forward)."""
    with (
        fresh_samples.service(service_name(MODEL), SERVER_PORT) as url,
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        wait_for(
            "the model server to answer",
            lambda: True if client.get("/v2/health/ready").status_code == 200 else None,
            timeout=60,
            every=1,
        )
        yield client


@pytest.mark.timeout(600)
def test_sample_serves_predictions_and_counts_them(server: httpx.Client, tmp_path: Path) -> None:
    features, rows = example_data(tmp_path / "reference.csv", shift=0.0, seed=1)
    metadata = server.get(f"/v2/models/{MODEL}").json()
    assert {tensor["name"] for tensor in metadata["inputs"]} >= set(features)
    answered = send(server, features, rows[:400])
    page = server.get("/metrics").text
    requests = samples(page, "modelops_inference_requests_total")
    ok = sum(value for labels, value in requests if labels["code"] == "200")
    assert ok >= answered // ROWS_PER_REQUEST
    binned = sum(value for _, value in samples(page, "modelops_feature_bin_total"))
    assert binned >= answered * len(features)


def keep_sending(
    client: httpx.Client, features: list[str], rows: list[list[float]], stop: threading.Event
) -> None:
    """Shifted traffic until `stop` (errors are expected once the Deployment rolls)."""
    while not stop.is_set():
        try:
            send(client, features, rows[:100])
        except (httpx.HTTPError, AssertionError):
            time.sleep(1)
        stop.wait(0.5)


def drifted_policy(cluster: Cluster) -> dict[str, Any] | None:
    """The DriftPolicy once its DriftDetected condition is True."""
    body = get_json(cluster, "driftpolicy", POLICY)
    detected = condition(body, "DriftDetected") if body else None
    return body if detected and detected.get("status") == "True" else None


def job_succeeded(cluster: Cluster, name: str) -> bool:
    """Whether the Job completed; a failed Job fails the test at once."""
    job = get_json(cluster, "job", name) or {}
    if condition(job, "Failed"):
        raise RuntimeError(f"retraining Job {name} failed: {condition(job, 'Failed')}")
    complete = condition(job, "Complete")
    return bool(complete and complete.get("status") == "True")


def retraining_result(cluster: Cluster, wanted: set[str]) -> dict[str, Any] | None:
    body = get_json(cluster, "driftpolicy", POLICY)
    last = (body or {}).get("status", {}).get("lastRetraining") or {}
    if last.get("result") in wanted:
        return dict(last)
    if last.get("result") in {"Failed", "Rejected", "RolledBack"}:
        raise RuntimeError(f"retraining ended {last['result']}: {last.get('message')}")
    return None


@pytest.mark.timeout(1500)
def test_shifted_traffic_retrains_and_promotes(
    fresh_samples: Cluster, server: httpx.Client, tmp_path: Path
) -> None:
    cluster = fresh_samples
    features, reference = example_data(tmp_path / "reference.csv", shift=0.0, seed=2)
    _, shifted = example_data(tmp_path / "shifted.csv", shift=1.5, seed=3)
    send(server, features, reference[:600])

    stop = threading.Event()
    sender = threading.Thread(target=keep_sending, args=(server, features, shifted, stop))
    sender.start()
    try:
        policy = wait_for(
            f"DriftPolicy {POLICY} to detect drift",
            lambda: drifted_policy(cluster),
            timeout=600,
            every=5,
        )
        drifted = [f["name"] for f in policy["status"]["features"] if f.get("breached")]
        assert drifted, policy["status"]
        job = wait_for(
            "the retraining Job",
            lambda: retraining_result(cluster, {"Running", "Succeeded", "Promoted"}),
            timeout=600,
            every=5,
        )["job"]
    finally:
        stop.set()
        sender.join(timeout=30)

    wait_for(
        f"retraining Job {job} to complete",
        lambda: True if job_succeeded(cluster, job) else None,
        timeout=900,
        every=5,
    )
    promoted = wait_for(
        "the candidate's promotion",
        lambda: retraining_result(cluster, {"Promoted"}),
        timeout=300,
        every=5,
    )
    candidate = promoted["candidateVersion"]
    status = wait_for(
        f"version {candidate} to be served and Ready",
        lambda: s if (s := ready_status(cluster)) and s.get("modelVersion") == candidate else None,
        timeout=600,
        every=5,
    )
    assert status["modelUri"] == promoted["uri"]
    assert promoted["metrics"]
    assert promoted["baseline"]

    page = cluster.operator_metrics(OPERATOR_METRICS_PORT)
    ours = {"namespace": cluster.namespace, "policy": POLICY}
    scored = {
        labels["feature"]
        for labels, _ in samples(page, "modelops_drift_score")
        if labels.items() >= ours.items()
    }
    assert scored >= set(drifted)
    retrainings = {
        labels["result"]: value
        for labels, value in samples(page, "modelops_retraining_jobs_total")
        if labels.items() >= ours.items()
    }
    assert retrainings.get("succeeded", 0) >= 1, retrainings
    promotions = sum(
        value
        for labels, value in samples(page, "modelops_promotions_total")
        if labels.get("namespace") == cluster.namespace and labels.get("model") == MODEL
    )
    assert promotions >= 1
