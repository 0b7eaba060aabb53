"""The operator container exactly as the Helm chart runs it (its args, its environment, its probe
and metrics ports), as a real process against the KMock emulator: the liveness probe and the
metrics port answer where the manifest says, and every request it sends is one RBAC grants."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kmock_emulator import (
    RealisticKubernetes,
    declare_resources,
    kubeconfig,
    operator_requests,
    rbac_triple,
)

from modelops.rbac import allows

pytestmark = pytest.mark.integration
helm_python = pytest.importorskip("helm_python")

CHART = Path(__file__).resolve().parents[2] / "charts" / "modelops"


@pytest.fixture
def kmock_options() -> dict[str, Any]:
    return {"cls": RealisticKubernetes}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def operator_container(values: dict[str, Any]) -> dict[str, Any]:
    """The operator container of the chart's Deployment rendered with `values`."""
    rendered = helm_python.Chart.load(CHART).render(values, name="modelops", namespace="ops")
    deployment = yaml.safe_load(rendered["modelops/templates/deployment.yaml"])
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = container
    return found


async def wait_for_request(
    kmock: Any, triple: tuple[str, str, str], process: Any, timeout: float
) -> set[tuple[str, str, str]]:
    """The (verb, group, resource) triples the operator sent, once `triple` is among them."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        triples = {t for r in operator_requests(kmock) if (t := rbac_triple(r)) is not None}
        done = triple in triples or process.returncode is not None
        if done or asyncio.get_running_loop().time() > deadline:
            return triples
        await asyncio.sleep(0.1)


async def wait_ok(client: httpx.AsyncClient, url: str, process: Any, timeout: float) -> str:
    """The body of the first 200 from `url`; fails early if the process exits."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if process.returncode is not None:
            raise AssertionError(f"the operator exited with {process.returncode}")
        try:
            response = await client.get(url)
            if response.status_code == 200:
                return response.text
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 within {timeout:.0f}s")


async def test_operator_container_answers_its_probe_and_metrics_ports(
    kmock: Any, tmp_path: Path
) -> None:
    declare_resources(kmock)
    ports = {"metrics": free_port(), "health": free_port()}
    container = operator_container({"operator": {"ports": ports}})
    config = tmp_path / "kubeconfig"
    config.write_text(kubeconfig(str(kmock.url)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "MODELOPS_"))}
    env |= {e["name"]: e["value"] for e in container["env"] if "value" in e}
    # Tests bind 127.0.0.1 only (the pod binds every address).
    env |= {"KUBECONFIG": str(config), "MODELOPS_METRICS_HOST": "127.0.0.1"}
    env |= {"MODELOPS_HEALTH_HOST": "127.0.0.1", "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    by_name = {port["name"]: port["containerPort"] for port in container["ports"]}
    probe = container["livenessProbe"]["httpGet"]
    log = (tmp_path / "operator.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "modelops", *container["args"], env=env, stdout=log, stderr=log
    )
    try:
        async with httpx.AsyncClient(timeout=5, headers={"Connection": "close"}) as client:
            health = f"http://127.0.0.1:{by_name[probe['port']]}{probe['path']}"
            await wait_ok(client, health, process, timeout=60)
            metrics = f"http://127.0.0.1:{by_name['metrics']}/metrics"
            page = await wait_ok(client, metrics, process, timeout=10)
        assert "modelops_reconcile_duration_seconds" in page
        # The probe answers once Kopf runs, which can be before its first watch request.
        watch = ("watch", "modelops.dev", "modeldeployments")
        triples = await wait_for_request(kmock, watch, process, timeout=30)
        assert watch in triples
        assert sorted(t for t in triples if not allows(*t)) == []
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=20)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()
    assert process.returncode == 0, (tmp_path / "operator.log").read_text()[-2000:]
