"""The operator container exactly as the Helm chart runs it (its args, its environment, its probe
and metrics ports, its ServiceAccount and RBAC) as a real process, ``python -m modelops operator``,
against the real API server, in both of the chart's modes: every namespace, and a list of them.

The chart's ServiceAccount, ClusterRoles and bindings are rendered and applied under a release
name of the test's own; the process authenticates with that ServiceAccount's token through
``KUBECONFIG`` (a pod would use its mounted token: the process kubelet cannot give a pod the API
server, which listens on the host's 127.0.0.1). The API server's audit log then says whether
every request it sent was granted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from operator_support import Artifacts, free_port, model_deployment

from kube_testbed.client import KubeClient, condition
from kube_testbed.controlplane import _timestamp
from kube_testbed.testbed import Testbed, kubectl

pytestmark = [pytest.mark.integration, pytest.mark.controlplane]
helm_python = pytest.importorskip("helm_python")

CHART = Path(__file__).resolve().parents[2] / "charts" / "modelops"
TEMPLATES = "modelops/templates"


def render(values: dict[str, Any], release: str, namespace: str) -> dict[str, list[dict[str, Any]]]:
    """The chart's documents by template file name."""
    rendered = helm_python.Chart.load(CHART).render(values, name=release, namespace=namespace)
    return {
        name.removeprefix(f"{TEMPLATES}/"): [d for d in yaml.safe_load_all(text) if d]
        for name, text in rendered.items()
        if name.endswith(".yaml")
    }


def operator_container(documents: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    (deployment,) = documents["deployment.yaml"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = container
    return found


class ChartAccount:
    """The chart's ServiceAccount and RBAC, applied as ``helm install`` would create them."""

    def __init__(self, testbed: Testbed, documents: dict[str, list[dict[str, Any]]]) -> None:
        self.testbed = testbed
        self.objects = documents["serviceaccount.yaml"] + documents["rbac.yaml"]
        (account,) = documents["serviceaccount.yaml"]
        self.namespace = account["metadata"]["namespace"]
        self.name = account["metadata"]["name"]
        self.user = f"system:serviceaccount:{self.namespace}:{self.name}"

    def _kubectl(self, *args: str) -> str:
        manifest = yaml.safe_dump_all(self.objects)
        return kubectl(self.testbed.plane.admin_kubeconfig, *args, "-f", "-", stdin=manifest)

    def apply(self, kubeconfig: Path) -> Path:
        """Apply the objects; a kubeconfig with a token of the ServiceAccount."""
        self._kubectl("apply", "--server-side", "--field-manager=helm")
        token = self.testbed.plane.service_account_token(self.namespace, self.name)
        return self.testbed.plane.write_kubeconfig(kubeconfig, token=token)

    def remove(self) -> None:
        with contextlib.suppress(AssertionError):
            self._kubectl("delete", "--ignore-not-found", "--wait=false")


@contextlib.contextmanager
def chart_install(
    testbed: Testbed, values: dict[str, Any], tmp_path: Path
) -> Iterator[tuple[dict[str, Any], ChartAccount, Path]]:
    """Render the chart into a release namespace of its own; its container, its account (applied)
    and that account's kubeconfig."""
    release = f"mo-{uuid.uuid4().hex[:6]}"
    namespace = testbed.create_namespace(prefix="ops")
    documents = render(values, release, namespace)
    account = ChartAccount(testbed, documents)
    try:
        config = account.apply(tmp_path / "operator.kubeconfig")
        yield operator_container(documents), account, config
    finally:
        account.remove()
        testbed.delete_namespace(namespace)


def process_env(container: dict[str, Any], kubeconfig: Path, home: Path) -> dict[str, str]:
    """The container's environment on this machine: nothing of the test's own cluster or
    settings, the chart's variables, the kubeconfig; and 127.0.0.1 for the ports (the pod binds
    every address)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KUBERNETES_", "MODELOPS_")) and k != "KUBECONFIG"
    }
    env |= {e["name"]: e["value"] for e in container["env"] if "value" in e}
    env |= {"KUBECONFIG": str(kubeconfig), "HOME": str(home), "TMPDIR": str(home)}
    env |= {"MODELOPS_METRICS_HOST": "127.0.0.1", "MODELOPS_HEALTH_HOST": "127.0.0.1"}
    return env


async def wait_ok(client: httpx.AsyncClient, url: str, process: Any, timeout: float) -> str:
    """The body of the first 200 from ``url``; fails early if the process exits."""
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


async def wait_for_metric(
    client: httpx.AsyncClient, url: str, sample: str, timeout: float = 20
) -> str:
    """The metrics page once it has a line starting with ``sample``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        page = (await client.get(url)).text
        if any(line.startswith(sample) for line in page.splitlines()):
            return page
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no {sample} in {url} within {timeout:g}s")
        await asyncio.sleep(0.2)


def refused(testbed: Testbed, user: str, since: float) -> list[str]:
    """Requests of ``user`` since ``since`` refused by authorization (a 403 for a namespace being
    deleted, which an operator watching every namespace can meet in the shared test cluster, is
    not one)."""
    found = []
    for event in testbed.plane.audit_events():
        status = event.get("responseStatus") or {}
        if event.get("user", {}).get("username") != user or status.get("code") != 403:
            continue
        if _timestamp(event.get("stageTimestamp", "")) < since:
            continue
        if "because it is being terminated" in str(status.get("message")):
            continue
        found.append(f"{event.get('verb')} {event.get('requestURI')}: {status.get('message')}")
    return found


async def stop(process: Any) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=20)
        except TimeoutError:
            process.kill()
            await process.wait()


@pytest.mark.parametrize("mode", ["all-namespaces", "namespace"])
async def test_the_operator_container_as_the_chart_runs_it(
    testbed: Testbed,
    node: Any,
    kube: KubeClient,
    artifacts: Artifacts,
    tmp_path: Path,
    mode: str,
) -> None:
    ports = {"metrics": free_port(), "health": free_port()}
    watch = [kube.namespace] if mode == "namespace" else []
    values = {"operator": {"ports": ports, "watchNamespaces": watch}}
    since = time.time()
    with chart_install(testbed, values, tmp_path) as (container, account, kubeconfig):
        expected = f"--namespace={kube.namespace}" if watch else "--all-namespaces"
        assert container["args"] == ["operator", expected]
        by_name = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert by_name == ports
        probe = container["livenessProbe"]["httpGet"]
        log_path = tmp_path / "operator.log"
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "modelops",
                *container["args"],
                env=process_env(container, kubeconfig, tmp_path),
                stdout=log,
                stderr=log,
            )
            try:
                async with httpx.AsyncClient(timeout=5, headers={"Connection": "close"}) as http:
                    health = f"http://127.0.0.1:{by_name[probe['port']]}{probe['path']}"
                    await wait_ok(http, health, process, timeout=60)
                    metrics = f"http://127.0.0.1:{by_name['metrics']}/metrics"
                    page = await wait_ok(http, metrics, process, timeout=10)
                    assert "# TYPE modelops_reconcile_duration_seconds histogram" in page

                    # It reconciles a ModelDeployment: the real controllers and the kubelet
                    # roll it out, and its own metrics say so.
                    await kube.create("modeldeployments", model_deployment(artifacts))
                    ready = await kube.wait_for(
                        "modeldeployments",
                        "iris",
                        lambda m: (condition(m, "Ready") or {}).get("status") == "True",
                        timeout=90,
                    )
                    assert ready["status"]["phase"] == "Ready"
                    labels = f'model="iris",namespace="{kube.namespace}"'
                    await wait_for_metric(
                        http, metrics, f"modelops_modeldeployment_ready{{{labels}}} 1.0"
                    )
            finally:
                await stop(process)
        output = log_path.read_text(errors="replace")
        assert process.returncode == 0, output[-3000:]

        # Every request it sent was granted, as the chart's ServiceAccount, in the chart's mode.
        sent = [
            e
            for e in testbed.plane.audit_events()
            if e.get("user", {}).get("username") == account.user
        ]
        assert refused(testbed, account.user, since) == []
        watches = {
            e["requestURI"].split("?")[0]
            for e in sent
            if e["verb"] == "watch"
            and (e.get("objectRef") or {}).get("resource") == "modeldeployments"
        }
        base = "/apis/modelops.dev/v1alpha1"
        if watch:
            assert watches == {f"{base}/namespaces/{kube.namespace}/modeldeployments"}
        else:
            assert watches == {f"{base}/modeldeployments"}
        creates = {
            (e["objectRef"]["resource"], e["responseStatus"]["code"])
            for e in sent
            if e["verb"] == "create" and e["objectRef"].get("namespace") == kube.namespace
        }
        assert {("deployments", 201), ("services", 201)} <= creates


@pytest.mark.parametrize(
    "kubeconfig",
    ["none", "unreadable"],
)
def test_without_a_cluster_the_operator_says_so_in_one_line_and_exits_2(
    tmp_path: Path, kubeconfig: str
) -> None:
    """No in-cluster environment and no usable kubeconfig: one line on stderr, exit code 2
    (not a traceback retried every minute), with the chart's arguments."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KUBERNETES_", "MODELOPS_")) and k != "KUBECONFIG"
    }
    env["HOME"] = str(tmp_path)
    hint = "start a local cluster with `make kind-up`, or set KUBECONFIG to a kubeconfig file"
    if kubeconfig == "none":
        expected = (
            "modelops operator: no cluster to connect to: KUBERNETES_SERVICE_HOST is unset "
            f"(not in a pod) and there is no kubeconfig at {tmp_path}/.kube/config; {hint}"
        )
    else:
        broken = tmp_path / "kubeconfig"
        broken.write_text("apiVersion: v1\nkind: Config\nclusters: [\n")
        env["KUBECONFIG"] = str(broken)
        expected = f"modelops operator: cannot use the kubeconfig {broken}: "
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "modelops", "operator", "--all-namespaces"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(expected), line
    assert line.endswith(hint)
    assert time.monotonic() - started < 30  # no retry loop
