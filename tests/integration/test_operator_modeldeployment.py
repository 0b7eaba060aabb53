"""A ModelDeployment's whole life on the real control plane: the operator (as its ServiceAccount)
creates the Deployment and Service, the real controllers and the process kubelet run two model
servers from a PersistentVolumeClaim, and the status follows what really happens."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from operator_support import run, wait_for_pod_urls

from kube_testbed.client import KubeClient, condition
from kube_testbed.testbed import RunningOperator, Testbed, dump
from modelops.controller.settings import OperatorSettings

pytestmark = [pytest.mark.integration, pytest.mark.controlplane]


def settings(testbed: Testbed) -> OperatorSettings:
    return OperatorSettings(
        image="registry.example/modelops:test",
        image_pull_policy="Never",
        metrics_port=0,
        health_port=0,
        resync_seconds=1.0,
        drift_tick_seconds=1.0,
        pvc_root=str(testbed.pvc_root),
    )


@pytest.fixture(scope="module")
def pvc_models(testbed: Testbed) -> Path:
    """iris v1 and v2 on the claim ``models``, where the serving pods mount it."""
    claim = testbed.pvc_root / "models"
    for version in ("v1", "v2"):
        run(
            ["example", "model", "--dataset", "iris", "--version", version,
             "--output", str(claim / "iris" / version)],
            testbed.root,
        )  # fmt: skip
    return claim


def model_deployment(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": {"uri": "pvc://models/iris/v1", "version": "v1"}, **spec},
    }


def claim(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadOnlyMany"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def owned_by(obj: dict[str, Any] | None, owner: dict[str, Any]) -> bool:
    refs = (obj or {}).get("metadata", {}).get("ownerReferences") or []
    return any(r["uid"] == owner["metadata"]["uid"] and r["controller"] for r in refs)


def writes(requests: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(verb, resource[/subresource]) of each write in audit events, Events left out."""
    found = []
    for event in requests:
        ref = event.get("objectRef") or {}
        if event["verb"] in ("create", "patch", "update", "delete") and ref.get("resource") != (
            "events"
        ):
            sub = f"/{ref['subresource']}" if ref.get("subresource") else ""
            found.append((event["verb"], f"{ref.get('resource')}{sub}"))
    return found


def field_managers(obj: dict[str, Any]) -> set[str]:
    return {m["manager"] for m in obj["metadata"].get("managedFields") or []}


async def test_lifecycle_create_roll_out_update_rest_delete(
    testbed: Testbed, node: Any, kube: KubeClient, pvc_models: Path
) -> None:
    await kube.create("persistentvolumeclaims", claim("models"))
    started = time.time()
    async with RunningOperator(settings(testbed), [kube.namespace]) as operator:
        md = await kube.create("modeldeployments", model_deployment("iris", replicas=2))
        deployment = await kube.wait_for("deployments", "iris", lambda d: owned_by(d, md))
        service = await kube.wait_for("services", "iris", lambda s: owned_by(s, md))
        assert deployment["spec"]["replicas"] == 2
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        assert field_managers(deployment) <= {"modelops", "kube-controller-manager"}
        assert "modelops" in field_managers(deployment)

        # The real controllers and the kubelet roll it out; Pod Security admitted the pods.
        ready = await kube.wait_for(
            "modeldeployments",
            "iris",
            lambda m: (condition(m, "Ready") or {}).get("status") == "True",
            timeout=90,
        )
        status = ready["status"]
        assert status["phase"] == "Ready"
        assert status["readyReplicas"] == 2
        assert status["modelVersion"] == "v1"
        assert status["url"] == f"http://iris.{kube.namespace}.svc:8080/v2/models/iris"
        assert condition(ready, "Progressing")["reason"] == "RolloutComplete"
        # Every write of the operator, Kopf's own included, is recorded as "modelops".
        assert field_managers(ready) == {"modelops", "modelops-tests"}
        urls = await wait_for_pod_urls(kube, "iris", count=2)
        assert all(not u.startswith("http://127.") for u in urls)

        # Deployment, Service, Kopf's annotations and one status patch per step of the real
        # rollout (created, then each replica ready): nothing else was written.
        creation = writes(testbed.operator_requests(since=started))
        assert sorted(w for w in creation if "status" not in w[1]) == [
            ("create", "deployments"),
            ("create", "services"),
        ] + [("patch", "modeldeployments")] * creation.count(("patch", "modeldeployments"))
        assert creation.count(("patch", "modeldeployments")) <= 2
        status_patches = [
            e["requestObject"]["status"]
            for e in testbed.operator_requests(since=started)
            if (e.get("objectRef") or {}).get("subresource") == "status"
        ]
        assert len(status_patches) <= 2 + 2, dump(status_patches)

        # At rest (a resync every second): no write, and no read either, the resync finds the
        # Deployment and the Service in what the operator's watches delivered.
        registry = operator.memo.ctx.metrics.registry
        succeeded = {"kind": "ModelDeployment", "result": "success"}
        rest_from = time.time()
        resyncs = registry.get_sample_value("modelops_reconcile_total", succeeded)
        await asyncio.sleep(3.5)
        at_rest = testbed.operator_requests(since=rest_from)
        assert registry.get_sample_value("modelops_reconcile_total", succeeded) >= resyncs + 2
        assert at_rest == [], dump(at_rest)

        # A spec change rolls the Deployment; the status says so until the new pods serve.
        await kube.patch(
            "modeldeployments",
            "iris",
            {"spec": {"model": {"uri": "pvc://models/iris/v2", "version": "v2"}}},
        )
        rolled = await kube.wait_for(
            "deployments", "iris", lambda d: d["metadata"]["generation"] == 2
        )
        args = rolled["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[args.index("--model-uri") + 1] == "pvc://models/iris/v2"
        done = await kube.wait_for(
            "modeldeployments",
            "iris",
            lambda m: (
                m["status"].get("modelVersion") == "v2" and m["status"].get("phase") == "Ready"
            ),
            timeout=90,
        )
        assert [h["version"] for h in done["status"]["history"]] == ["v1", "v2"]
        assert done["status"]["observedGeneration"] == 2

        # A child deleted by hand comes back.
        await kube.delete("services", "iris")
        await kube.wait_for("services", "iris", lambda s: owned_by(s, md))

        # Deleting the resource leaves nothing behind (the real garbage collector).
        await kube.delete("modeldeployments", "iris")
        await kube.wait_for("modeldeployments", "iris", lambda m: m is None)
        await kube.wait_for("deployments", "iris", lambda d: d is None, timeout=60)
        await kube.wait_for("services", "iris", lambda s: s is None, timeout=60)


async def test_a_model_that_cannot_load_is_reported_not_ready(
    testbed: Testbed, node: Any, kube: KubeClient, pvc_models: Path
) -> None:
    await kube.create("persistentvolumeclaims", claim("models"))
    async with RunningOperator(settings(testbed), [kube.namespace]):
        await kube.create(
            "modeldeployments",
            model_deployment("missing", model={"uri": "pvc://models/iris/v9"}),
        )
        progressing = await kube.wait_for(
            "modeldeployments",
            "missing",
            lambda m: (m.get("status") or {}).get("observedGeneration") == 1,
        )
        assert condition(progressing, "Ready")["status"] == "False"
        # The pod's server exits (nothing to load) and is restarted; never called ready.
        crashed = await wait_for_crash(kube, "modelops.dev/model=missing")
        assert crashed["lastState"]["terminated"]["exitCode"] != 0
        current = await kube.get("modeldeployments", "missing")
        assert condition(current, "Ready")["status"] == "False"
        assert current["status"]["phase"] in ("Pending", "Progressing", "Degraded")


async def wait_for_crash(kube: KubeClient, selector: str, timeout: float = 60) -> dict[str, Any]:
    """The status of a container of the selected pods once it has exited and been restarted."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for pod in await kube.list("pods", selector):
            for container in (pod.get("status") or {}).get("containerStatuses") or []:
                if container.get("restartCount", 0) >= 1:
                    found: dict[str, Any] = container
                    return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"no pod of {selector} restarted in {timeout}s")
