"""The operator against the KMock emulator over real HTTP: a ModelDeployment's whole life."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kmock_emulator import (
    KubeClient,
    RunningOperator,
    condition,
    is_write,
    operator_requests,
    rbac_triple,
)
from operator_support import NS

from modelops.controller.settings import OperatorSettings
from modelops.rbac import allows

pytestmark = pytest.mark.integration


SETTINGS = OperatorSettings(
    image="registry.example/modelops:test",
    metrics_port=0,
    health_port=0,
    resync_seconds=1.0,
    drift_tick_seconds=1.0,
)


def model_deployment(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"model": {"uri": "pvc://models/iris/v1", "version": "v1"}, **spec},
    }


def owned_by(obj: dict[str, Any] | None, owner: dict[str, Any]) -> bool:
    refs = (obj or {}).get("metadata", {}).get("ownerReferences") or []
    return any(r["uid"] == owner["metadata"]["uid"] and r["controller"] for r in refs)


def our_writes(server: Any) -> list[tuple[str, str, str]]:
    """Writes by the operator's controller (children and status), not Kopf's bookkeeping."""
    writes = [rbac_triple(r) for r in operator_requests(server) if is_write(r)]
    return [w for w in writes if w is not None and w[2] != "events" and w[2] != "modeldeployments"]


async def test_lifecycle_create_update_rest_delete(api: KubeClient, kmock: Any) -> None:
    async with RunningOperator(SETTINGS, NS):
        md = await api.create("modeldeployments", model_deployment("iris", replicas=2))
        deployment = await api.wait_for("deployments", "iris", lambda d: owned_by(d, md))
        service = await api.wait_for("services", "iris", lambda s: owned_by(s, md))
        assert deployment["spec"]["replicas"] == 2
        assert deployment["metadata"]["labels"]["modelops.dev/model"] == "iris"
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        pod = deployment["spec"]["template"]["spec"]
        assert pod["containers"][0]["image"] == "registry.example/modelops:test"
        progressing = await api.wait_for(
            "modeldeployments", "iris", lambda m: (m.get("status") or {}).get("observedGeneration")
        )
        assert condition(progressing, "Ready")["status"] == "False"
        assert progressing["status"]["phase"] in ("Pending", "Progressing")
        assert progressing["status"]["url"] == "http://iris.ml.svc:8080/v2/models/iris"

        # Play the Deployment controller: the status follows the owned Deployment.
        await api.roll_out("iris")
        ready = await api.wait_for(
            "modeldeployments",
            "iris",
            lambda m: (condition(m, "Ready") or {}).get("status") == "True",
        )
        status = ready["status"]
        assert status["phase"] == "Ready"
        assert status["readyReplicas"] == 2
        assert status["modelVersion"] == "v1"
        assert status["modelUri"] == "pvc://models/iris/v1"
        assert [h["version"] for h in status["history"]] == ["v1"]
        assert condition(ready, "Progressing")["reason"] == "RolloutComplete"
        creation_writes = our_writes(kmock)
        # Deployment, Service, and status: at most three writes (a status patch per rollout step).
        assert sorted(w for w in creation_writes if w[2] != "modeldeployments/status") == [
            ("create", "", "services"),
            ("create", "apps", "deployments"),
        ]
        # One status write at creation, one when the rollout completed.
        assert creation_writes.count(("patch", "modelops.dev", "modeldeployments/status")) == 2

        # At rest (resync every second): no write at all, from anyone in the operator (after
        # Kopf's poster has sent the Event of the Ready transition, which it does in batches).
        await asyncio.sleep(1.0)
        before = len(list(kmock))
        await asyncio.sleep(3.5)
        at_rest = [
            r for r in list(kmock)[before:] if r.headers.get("User-Agent") != "modelops-tests"
        ]
        assert [(rbac_triple(r), r.data) for r in at_rest if is_write(r)] == []
        assert any(rbac_triple(r) == ("get", "apps", "deployments") for r in at_rest)

        # A spec change rolls the Deployment.
        await api.patch(
            "modeldeployments",
            "iris",
            {"spec": {"replicas": 3, "model": {"uri": "pvc://models/iris/v2", "version": "v2"}}},
        )
        rolled = await api.wait_for("deployments", "iris", lambda d: d["spec"]["replicas"] == 3)
        args = rolled["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[args.index("--model-uri") + 1] == "pvc://models/iris/v2"
        assert rolled["metadata"]["generation"] == 2
        updating = await api.wait_for(
            "modeldeployments", "iris", lambda m: m["status"].get("observedGeneration") == 2
        )
        assert updating["status"]["phase"] == "Progressing"
        await api.roll_out("iris")
        done = await api.wait_for(
            "modeldeployments", "iris", lambda m: m["status"].get("phase") == "Ready"
        )
        assert [h["version"] for h in done["status"]["history"]] == ["v1", "v2"]
        assert done["status"]["modelVersion"] == "v2"

        # A child deleted by hand comes back.
        await api.delete("services", "iris")
        await api.wait_for("services", "iris", lambda s: owned_by(s, md))

        # Deleting the resource leaves nothing behind.
        await api.delete("modeldeployments", "iris")
        await api.wait_for("deployments", "iris", lambda d: d is None)
        await api.wait_for("services", "iris", lambda s: s is None)
        await api.wait_for("modeldeployments", "iris", lambda m: m is None)

    # Every request the operator sent is granted by the shipped RBAC rules.
    denied = {t for r in operator_requests(kmock) if (t := rbac_triple(r)) and not allows(*t)}
    assert denied == set()


async def test_invalid_spec_is_reported_not_retried(api: KubeClient, kmock: Any) -> None:
    async with RunningOperator(SETTINGS, NS):
        bad = model_deployment("broken")
        bad["spec"]["model"] = {"uri": "ftp://example/model"}
        bad["spec"]["replicas"] = -1
        await api.create("modeldeployments", bad)
        failed = await api.wait_for(
            "modeldeployments",
            "broken",
            lambda m: (condition(m, "Ready") or {}).get("reason") == "InvalidSpec",
        )
        message = condition(failed, "Ready")["message"]
        assert "spec.model.uri" in message
        assert "spec.replicas" in message
        assert failed["status"]["phase"] == "Failed"
        assert await api.get("deployments", "broken") is None
        before = len(list(kmock))
        await asyncio.sleep(2.5)
        later = [rbac_triple(r) for r in list(kmock)[before:] if is_write(r)]
        assert later == []  # no crash loop: nothing is retried or rewritten

        # Fixing the spec recovers.
        await api.patch(
            "modeldeployments",
            "broken",
            {"spec": {"replicas": 1, "model": {"uri": "file:///models/iris"}}},
        )
        await api.wait_for("deployments", "broken", lambda d: d is not None)
        fixed = await api.wait_for(
            "modeldeployments",
            "broken",
            lambda m: (condition(m, "Ready") or {}).get("reason") != "InvalidSpec",
        )
        assert fixed["status"]["observedGeneration"] == 2
