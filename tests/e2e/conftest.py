"""The e2e tier: the kind walkthrough's scenario, on kind or on the real control plane.

- ``make e2e`` (MODELOPS_E2E=1): against the current kubectl context, e.g. after `make kind-up`.
- Otherwise (CI): on the integration tier's real control plane with its process kubelet, set up
  by the same steps as `make kind-up`: CRDs and RBAC applied server-side (the testbed did that),
  the operator running as its ServiceAccount (a local process instead of the chart's pod: the
  process kubelet gives pods no way to the API server), `manifests/kind` applied (the claims'
  mount root moved into the test's temporary directory, as `make kind-up` swaps the image), the
  first-model Job waited for; the tests then apply `manifests/samples`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from e2e_support import Cluster, current_cluster

from kube_testbed.testbed import ROOT, Testbed

DEMO_NAMESPACE = "modelops-demo"
OPERATOR_NAMESPACE = "modelops-system"
#: Where the samples' claims are mounted in the manifests; moved under the testbed's root.
CLAIM_ROOT = "/mnt/modelops"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    if os.environ.get("MODELOPS_E2E") == "1":
        yield current_cluster()
        return
    testbed: Testbed = request.getfixturevalue("testbed")
    request.getfixturevalue("node")
    yield from _on_testbed(testbed)


def _on_testbed(testbed: Testbed) -> Iterator[Cluster]:
    metrics_port = _free_port()
    cluster = Cluster(
        namespace=DEMO_NAMESPACE,
        operator_namespace=OPERATOR_NAMESPACE,
        kubeconfig=str(testbed.plane.admin_kubeconfig),
        operator_metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
        # The walkthrough's scenario, with its wait for two drifted evaluations cut from two
        # minutes to thirty seconds so that the suite stays within its time.
        policy_interval="15s",
    )
    log = testbed.root / "e2e-operator.log"
    env = {
        **os.environ,
        "KUBECONFIG": str(testbed.operator_kubeconfig),
        "MODELOPS_IMAGE": "modelops:dev",
        "MODELOPS_PVC_ROOT": str(testbed.pvc_root),
        "MODELOPS_METRICS_HOST": "127.0.0.1",
        "MODELOPS_METRICS_PORT": str(metrics_port),
        "MODELOPS_HEALTH_HOST": "127.0.0.1",
        "MODELOPS_HEALTH_PORT": str(_free_port()),
    }
    with log.open("wb") as handle:
        operator = subprocess.Popen(
            [sys.executable, "-m", "modelops", "operator", "--all-namespaces"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        manifest = cluster.kubectl("kustomize", str(ROOT / "manifests" / "kind"))
        manifest = manifest.replace(CLAIM_ROOT, str(testbed.pvc_root))
        cluster.kubectl("apply", "-f", "-", stdin=manifest)
        cluster.kubectl(
            *("-n", DEMO_NAMESPACE, "wait", "--for=condition=complete"),
            *("job/modelops-first-model", "--timeout=300s"),
            timeout=320,
        )
        yield cluster
    finally:
        # Leave the session's control plane as the scenario found it: no demo pods running on,
        # no operator watching every namespace.
        cluster.kubectl("delete", "namespace", DEMO_NAMESPACE, "--wait=false", check=False)
        operator.terminate()
        try:
            operator.wait(timeout=20)
        except subprocess.TimeoutExpired:
            operator.kill()
            operator.wait()
