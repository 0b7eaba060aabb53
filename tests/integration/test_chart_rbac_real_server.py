"""The Helm chart's RBAC, enforced by the real API server, in both of the chart's watch modes.

The rest of the operator tests run the operator as the kustomize install's ServiceAccount; here
the chart's own ServiceAccount, ClusterRoles and (Role|ClusterRole)Bindings are applied
server-side, exactly as rendered by Helm's engine, and the operator does a ModelDeployment's
rollout and a DriftPolicy's evaluation with that identity: any 403 fails the test.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import flatten, render_chart
from operator_support import LOOP_SETTINGS, Artifacts, drift_policy, model_deployment, status_of

from kube_testbed.client import KubeClient, condition
from kube_testbed.testbed import RunningOperator, Testbed, kubectl

pytestmark = [pytest.mark.integration, pytest.mark.controlplane]

RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


def chart_identity(
    testbed: Testbed, release_namespace: str, watched: list[str] | None, workdir: Path
) -> tuple[str, list[dict[str, Any]]]:
    """Apply the chart's RBAC objects; the operator's ServiceAccount token and the objects."""
    values: dict[str, Any] = {"fullnameOverride": f"chart-{uuid.uuid4().hex[:6]}"}
    if watched is not None:
        values["operator"] = {"watchNamespaces": watched}
    rendered = flatten(render_chart(values, namespace=release_namespace))
    objects = [o for o in rendered if o["kind"] in RBAC_KINDS]
    (account,) = [o for o in objects if o["kind"] == "ServiceAccount"]
    manifest = workdir / "chart-rbac.yaml"
    manifest.write_text(yaml.safe_dump_all(objects))
    kubectl(
        testbed.plane.admin_kubeconfig,
        *("apply", "--server-side", "-f", str(manifest)),
    )
    token = testbed.plane.service_account_token(release_namespace, account["metadata"]["name"])
    return token, objects


@pytest.mark.parametrize("mode", ["all-namespaces", "namespace"])
async def test_the_operator_works_with_the_charts_rbac_alone(
    testbed: Testbed,
    node: Any,
    kube: KubeClient,
    artifacts: Artifacts,
    tmp_path: Path,
    mode: str,
) -> None:
    release = testbed.create_namespace("chart")
    watched = None if mode == "all-namespaces" else [kube.namespace]
    token, objects = chart_identity(testbed, release, watched, tmp_path)
    kinds = {o["kind"] for o in objects}
    assert ("RoleBinding" in kinds) == (mode == "namespace")
    config = testbed.plane.write_kubeconfig(tmp_path / "chart.kubeconfig", token=token)
    testbed.point_operator_at(config)
    since = time.time()
    try:
        async with RunningOperator(LOOP_SETTINGS, watched):
            await kube.create("modeldeployments", model_deployment(artifacts))
            await kube.wait_for(
                "modeldeployments",
                "iris",
                lambda m: status_of(m).get("phase") == "Ready",
                timeout=90,
            )
            policy = drift_policy(artifacts, retraining={"enabled": False})
            await kube.create("driftpolicies", policy)
            judged = await kube.wait_for(
                "driftpolicies", "iris-drift", lambda p: condition(p, "SourceReady"), timeout=60
            )
            assert condition(judged, "SourceReady")["status"] == "True", judged["status"]
    finally:
        forbidden = testbed.plane.forbidden(f"system:serviceaccount:{release}:", since)
        for obj in objects:
            if obj["kind"].startswith("Cluster"):
                kind = obj["kind"].lower()
                kubectl(
                    testbed.plane.admin_kubeconfig,
                    *("delete", kind, obj["metadata"]["name"], "--ignore-not-found"),
                )
        testbed.delete_namespace(release)
    assert forbidden == []
