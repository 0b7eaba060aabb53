"""Deleting a DriftPolicy while the operator is down, on the real control plane: what README's
"Uninstalling" section says. The policies are ticked by one scheduler, not by a Kopf daemon or
timer each, so Kopf puts no finalizer on them: a policy deleted while the operator is down goes
at once, and the finalizer that earlier versions put on every policy is removed when the operator
starts, so such a policy does not hang either.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from operator_support import LOOP_SETTINGS, Artifacts, drift_policy, status_of

from kube_testbed.client import KubeClient
from kube_testbed.testbed import RunningOperator, Testbed

pytestmark = [pytest.mark.integration, pytest.mark.controlplane]

FINALIZER = "modelops.dev/finalizer"


def finalizers(obj: dict[str, Any] | None) -> list[str]:
    return list(((obj or {}).get("metadata") or {}).get("finalizers") or [])


async def test_a_policy_deleted_while_the_operator_is_down_goes_at_once(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts
) -> None:
    async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
        await kube.create("driftpolicies", drift_policy(artifacts))
        # Ticked by the operator (it wrote status), and still without a finalizer.
        ticked = await kube.wait_for(
            "driftpolicies", "iris-drift", lambda p: bool(status_of(p).get("conditions"))
        )
        assert finalizers(ticked) == []
    await kube.delete("driftpolicies", "iris-drift")
    await kube.wait_for("driftpolicies", "iris-drift", lambda p: p is None, timeout=10)


async def test_the_finalizer_of_an_earlier_version_is_removed_at_start(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts
) -> None:
    legacy = drift_policy(artifacts)
    legacy["metadata"]["finalizers"] = [FINALIZER]  # as versions with a daemon per policy left it
    await kube.create("driftpolicies", legacy)
    await asyncio.sleep(1.0)
    assert finalizers(await kube.get("driftpolicies", "iris-drift")) == [FINALIZER]
    async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
        await kube.wait_for("driftpolicies", "iris-drift", lambda p: finalizers(p) == [])
    await kube.delete("driftpolicies", "iris-drift")
    await kube.wait_for("driftpolicies", "iris-drift", lambda p: p is None, timeout=10)
