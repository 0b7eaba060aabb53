"""Real processes for the operator's integration tests: model server, trainer, Prometheus.

Everything binds 127.0.0.1 on a free port and is stopped by the fixture that started it.
"""

from __future__ import annotations

import asyncio
import csv
import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from kmock_emulator import KubeClient, condition

from modelops.controller.settings import OperatorSettings

MODELOPS = [sys.executable, "-m", "modelops"]
#: The namespace every operator integration test works in.
NS = "ml"
#: Operator settings of the drift-loop tests: a 1 s drift tick, short scrape timeouts.
LOOP_SETTINGS = OperatorSettings(
    image="registry.example/modelops:test",
    metrics_port=0,
    health_port=0,
    resync_seconds=5.0,
    drift_tick_seconds=1.0,
    scrape_timeout_seconds=2.0,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run(args: list[str], cwd: Path) -> None:
    subprocess.run([*MODELOPS, *args], cwd=cwd, check=True, capture_output=True, timeout=120)


@dataclass(frozen=True)
class Artifacts:
    """An iris model v1, reference and shifted traffic, and fresh labelled data."""

    root: Path
    model_dir: Path
    reference: list[list[float]]
    shifted: list[list[float]]
    fresh_data: Path
    output_dir: Path

    @property
    def model_uri(self) -> str:
        return f"file://{self.model_dir}"


def _rows(path: Path) -> list[list[float]]:
    with path.open() as handle:
        reader = csv.reader(handle)
        next(reader)
        return [[float(x) for x in row[:-1]] for row in reader]


def make_artifacts(root: Path) -> Artifacts:
    run(
        ["example", "model", "--dataset", "iris", "--output", str(root / "v1"), "--version", "v1"],
        root,
    )
    run(["example", "data", "--dataset", "iris", "--rows", "600", "--seed", "3",
         "--output", str(root / "reference.csv")], root)  # fmt: skip
    run(["example", "data", "--dataset", "iris", "--rows", "600", "--seed", "4", "--shift", "2",
         "--output", str(root / "shifted.csv")], root)  # fmt: skip
    return Artifacts(
        root=root,
        model_dir=root / "v1",
        reference=_rows(root / "reference.csv"),
        shifted=_rows(root / "shifted.csv"),
        fresh_data=root / "shifted.csv",
        output_dir=root / "candidates",
    )


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


def _wait_http(url: str, process: Process, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{url}: process exited; log:\n{process.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s; log:\n{process.log.read_text()[-2000:]}")


def start_model_server(model_uri: str, name: str, log: Path) -> Process:
    port = free_port()
    handle = log.open("wb")
    popen = subprocess.Popen(
        [*MODELOPS, "serve", "--model-uri", model_uri, "--name", name, "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=handle, stderr=subprocess.STDOUT,
    )  # fmt: skip
    process = Process(popen, port, log)
    _wait_http(f"http://127.0.0.1:{port}/v2/health/ready", process)
    return process


def start_prometheus(target_port: int, root: Path) -> Process:
    port = free_port()
    config = root / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: model\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{target_port}']\n"
    )
    log = root / "prometheus.log"
    popen = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
         f"--storage.tsdb.path={root / 'tsdb'}"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    process = Process(popen, port, log)
    _wait_http(f"http://127.0.0.1:{port}/-/ready", process)
    return process


def prometheus_value(port: int, query: str) -> float | None:
    """The single value of an instant query, or None while it has no result."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as response:
        result = json.load(response)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


async def wait_for_scrape(port: int, query: str, at_least: float, timeout: float = 30.0) -> float:
    """Wait until Prometheus has scraped a value of ``query`` of at least ``at_least``.

    ``increase()`` counts only what grew between two scrapes, so a test must see a scrape
    before its traffic and another after it; the first scrape comes seconds after start.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = prometheus_value(port, query)
        if value is not None and value >= at_least:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"Prometheus never scraped {query} >= {at_least} in {timeout}s")


async def send_rows(port: int, model: str, rows: list[list[float]], batch: int = 50) -> None:
    """V2 inference requests carrying ``rows`` (one 2-D FP64 tensor per request)."""
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers={"Connection": "close"}, timeout=10
    ) as client:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            body = {
                "inputs": [
                    {
                        "name": "input-0",
                        "shape": [len(chunk), len(chunk[0])],
                        "datatype": "FP64",
                        "data": chunk,
                    }
                ]
            }
            response = await client.post(f"/v2/models/{model}/infer", json=body)
            response.raise_for_status()


def endpoint_slice(service: str, port: int, *, pod: str = "server-0") -> dict[str, Any]:
    """An EndpointSlice that sends the Service's traffic to a local process."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-{pod}",
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": [
            {
                "addresses": ["127.0.0.1"],
                "conditions": {"ready": True},
                "targetRef": {"kind": "Pod", "name": pod, "uid": f"uid-{pod}"},
            }
        ],
    }


async def play_kubelet(api: Any, job: dict[str, Any], workdir: Path) -> tuple[int, str]:
    """Run the Job's container command as a local process, then report its end through the API:
    a Pod with the container's termination message, and the Job's status."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    args = list(container["args"])
    log = workdir / f"{job['metadata']['name']}.termination-log"
    args[args.index("--termination-log") + 1] = str(log)
    process = await asyncio.create_subprocess_exec(
        *MODELOPS, *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    code = await asyncio.wait_for(process.wait(), timeout=120)
    message = log.read_text() if log.exists() else ""
    name = job["metadata"]["name"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    pod = await api.create(
        "pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-x1",
                "labels": {"job-name": name, "batch.kubernetes.io/job-name": name},
            },
            "spec": job["spec"]["template"]["spec"],
        },
    )
    terminated = {"exitCode": code, "message": message, "finishedAt": now, "reason": "Completed"}
    await api.patch(
        "pods",
        pod["metadata"]["name"],
        {
            "status": {
                "phase": "Succeeded" if code == 0 else "Failed",
                "containerStatuses": [
                    {"name": container["name"], "state": {"terminated": terminated}}
                ],
            }
        },
        sub="status",
    )
    kind, reason = ("Complete", "Completed") if code == 0 else ("Failed", "PodFailurePolicy")
    status: dict[str, Any] = {
        "conditions": [
            {"type": kind, "status": "True", "reason": reason, "lastTransitionTime": now}
        ],
        "succeeded" if code == 0 else "failed": 1,
    }
    if code == 0:
        status["completionTime"] = now
    await api.patch("jobs", name, {"status": status}, sub="status")
    return code, message


# --- The iris ModelDeployment and DriftPolicy of the loop tests ---------------------------


def model_deployment(artifacts: Artifacts) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris"},
        "spec": {"model": {"uri": artifacts.model_uri, "version": "v1"}},
    }


def drift_policy(artifacts: Artifacts, name: str = "iris-drift", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "DriftPolicy",
        "metadata": {"name": name},
        "spec": {
            "modelDeploymentRef": {"name": "iris"},
            "interval": "10s",
            "minSamples": 100,
            "metrics": [{"type": "psi", "threshold": 0.2}, {"type": "js", "threshold": 0.1}],
            "trigger": {"minBreachedFeatures": 2, "consecutiveEvaluations": 2},
            "retraining": {
                "dataUri": f"file://{artifacts.fresh_data}",
                "outputUri": f"file://{artifacts.output_dir}",
                "cooldown": "1h",
            },
            "promotion": {"mode": "auto", "metric": "accuracy", "minImprovement": 0.01},
            **spec,
        },
    }


def status_of(obj: dict[str, Any] | None) -> dict[str, Any]:
    return (obj or {}).get("status") or {}


async def start_serving(api: KubeClient, artifacts: Artifacts, server: Process) -> None:
    await api.create("modeldeployments", model_deployment(artifacts))
    await api.wait_for("deployments", "iris", lambda d: d is not None)
    await api.roll_out("iris")
    await api.wait_for("modeldeployments", "iris", lambda m: status_of(m).get("phase") == "Ready")
    await api.create("endpointslices", endpoint_slice("iris", server.port))


async def wait_evaluated(api: KubeClient, name: str, after: str | None) -> dict[str, Any]:
    """The policy after its next evaluation that judged drift (lastEvaluationTime moved)."""
    return await api.wait_for(
        "driftpolicies",
        name,
        lambda p: status_of(p).get("lastEvaluationTime") not in (None, after),
        timeout=25,
    )


async def wait_baseline(api: KubeClient, name: str) -> dict[str, Any]:
    return await api.wait_for(
        "driftpolicies",
        name,
        lambda p: "baseline" in ((condition(p, "SourceReady") or {}).get("message") or ""),
        timeout=25,
    )


async def retraining_jobs(api: KubeClient, policy: str) -> list[dict[str, Any]]:
    return [
        j
        for j in await api.list("jobs")
        if j["metadata"].get("labels", {}).get("modelops.dev/policy") == policy
    ]
