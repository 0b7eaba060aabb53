"""Deleting a DriftPolicy while the operator is down, on the real control plane: what README's
"Uninstalling" section says. Kopf's finalizer (every object with a timer carries one) keeps the
object Terminating until the operator is back, which then lets it go; with the operator gone for
good, the documented patch releases it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from operator_support import LOOP_SETTINGS, Artifacts, drift_policy

from kube_testbed.client import KubeClient
from kube_testbed.testbed import RunningOperator, Testbed

pytestmark = [pytest.mark.integration, pytest.mark.controlplane]

FINALIZER = "modelops.dev/finalizer"


def finalized(obj: dict[str, Any] | None) -> bool:
    return obj is not None and FINALIZER in (obj["metadata"].get("finalizers") or [])


async def still_terminating(kube: KubeClient, name: str, seconds: float) -> dict[str, Any]:
    """The object, checked for ``seconds``: it must stay, Terminating, with the finalizer (no
    event can show that nothing removes it, so this watches for a while)."""
    deadline = time.monotonic() + seconds
    while True:
        obj = await kube.get("driftpolicies", name)
        assert obj is not None, f"{name} was deleted although no operator ran"
        assert obj["metadata"].get("deletionTimestamp"), obj["metadata"]
        assert finalized(obj)
        if time.monotonic() > deadline:
            return obj
        await asyncio.sleep(0.5)


async def test_a_policy_deleted_while_the_operator_is_down_goes_when_it_is_back(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts
) -> None:
    async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
        await kube.create("driftpolicies", drift_policy(artifacts))
        await kube.wait_for("driftpolicies", "iris-drift", finalized)
    await kube.delete("driftpolicies", "iris-drift")
    await still_terminating(kube, "iris-drift", seconds=3.0)
    async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
        await kube.wait_for("driftpolicies", "iris-drift", lambda p: p is None, timeout=30)


async def test_with_the_operator_gone_the_documented_patch_releases_the_policy(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts
) -> None:
    async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
        await kube.create("driftpolicies", drift_policy(artifacts))
        await kube.wait_for("driftpolicies", "iris-drift", finalized)
    await kube.delete("driftpolicies", "iris-drift")
    await still_terminating(kube, "iris-drift", seconds=1.0)
    # README: kubectl patch driftpolicy NAME --type=merge -p '{"metadata":{"finalizers":null}}'
    await kube.patch("driftpolicies", "iris-drift", {"metadata": {"finalizers": None}})
    await kube.wait_for("driftpolicies", "iris-drift", lambda p: p is None, timeout=10)
