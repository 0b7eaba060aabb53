"""API faults: 500s on list, watches ending in 410 or silently, a crash between the Job's
creation and the status update, an unreachable drift source."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kmock as kmock_lib
import pytest
from kmock_emulator import (
    KubeClient,
    RunningOperator,
    condition,
)
from operator_support import (
    LOOP_SETTINGS,
    NS,
    Artifacts,
    Process,
    drift_policy,
    endpoint_slice,
    free_port,
    model_deployment,
    retraining_jobs,
    send_rows,
    start_serving,
    status_of,
    wait_baseline,
)

pytestmark = pytest.mark.integration
MODEL_DEPLOYMENTS = kmock_lib.resource("modelops.dev", "v1alpha1", "modeldeployments")
DRIFT_POLICIES = kmock_lib.resource("modelops.dev", "v1alpha1", "driftpolicies")


def once(payload: Any, when: Callable[[Any], bool] = lambda _: True) -> Callable[[Any], Any]:
    """A reaction that answers ``payload`` to the first request for which ``when`` holds; every
    other request goes on to the emulator (KMock treats NotImplementedError as "not mine, but
    stay active", while returning None would disable the reaction for good)."""
    fired: list[bool] = []

    def react(request: Any) -> Any:
        if fired or not when(request):
            raise NotImplementedError
        fired.append(True)
        return payload

    react.fired = fired  # type: ignore[attr-defined]
    return react


SERVER_ERROR = kmock_lib.KubernetesError(status=500, reason="InternalError", message="injected")
GONE = {
    "type": "ERROR",
    "object": {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "code": 410,
        "reason": "Expired",
        "message": "too old resource version",
    },
}


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("list", SERVER_ERROR),
        ("watch", (GONE,)),
        ("watch", (b"",)),
    ],
    ids=["list-500", "watch-410", "watch-closed-silently"],
)
async def test_operator_recovers_from_api_faults(
    api: KubeClient, kmock: Any, artifacts: Artifacts, action: str, payload: Any
) -> None:
    reaction = once(payload)
    kmock[action, MODEL_DEPLOYMENTS] << reaction
    async with RunningOperator(LOOP_SETTINGS, NS):
        await api.create("modeldeployments", model_deployment(artifacts))
        await api.wait_for("deployments", "iris", lambda d: d is not None, timeout=30)
        await api.roll_out("iris")
        ready = await api.wait_for(
            "modeldeployments", "iris", lambda m: status_of(m).get("phase") == "Ready"
        )
        assert condition(ready, "Ready")["status"] == "True"
    assert reaction.fired  # type: ignore[attr-defined]


async def test_crash_between_job_creation_and_status_update(
    api: KubeClient, kmock: Any, artifacts: Artifacts, server: Process
) -> None:
    # The status update that would record the new Job fails, and then the operator "crashes".
    lost_update = kmock.lose_next_write(
        lambda request: (
            request.subresource == "status"
            and "lastRetraining" in ((request.data or {}).get("status") or {})
        )
    )
    policy = drift_policy(
        artifacts, trigger={"minBreachedFeatures": 2, "consecutiveEvaluations": 1}
    )
    async with RunningOperator(LOOP_SETTINGS, NS):
        await start_serving(api, artifacts, server)
        await api.create("driftpolicies", policy)
        await wait_baseline(api, "iris-drift")
        await send_rows(server.port, "iris", artifacts.shifted[:300])
        await api.wait_for("jobs", "", lambda _: lost_update, timeout=25)
        (first,) = await retraining_jobs(api, "iris-drift")
        assert (status_of(await api.get("driftpolicies", "iris-drift"))).get(
            "lastRetraining"
        ) is None

    # A new operator process knows nothing but what is in the API.
    async with RunningOperator(LOOP_SETTINGS, NS):
        await wait_baseline(api, "iris-drift")
        await send_rows(server.port, "iris", artifacts.shifted[300:600])
        adopted = await api.wait_for(
            "driftpolicies",
            "iris-drift",
            lambda p: (status_of(p).get("lastRetraining") or {}).get("job"),
            timeout=25,
        )
        assert adopted["status"]["lastRetraining"]["job"] == first["metadata"]["name"]
        assert "Adopted" in condition(adopted, "Retraining")["message"]
        assert len(await retraining_jobs(api, "iris-drift")) == 1


async def test_unreachable_source_blocks_retraining(api: KubeClient, artifacts: Artifacts) -> None:
    policy = drift_policy(
        artifacts, trigger={"minBreachedFeatures": 1, "consecutiveEvaluations": 1}
    )
    async with RunningOperator(LOOP_SETTINGS, NS):
        await api.create("modeldeployments", model_deployment(artifacts))
        await api.wait_for("deployments", "iris", lambda d: d is not None)
        await api.create("endpointslices", endpoint_slice("iris", free_port()))
        await api.create("driftpolicies", policy)
        failed = await api.wait_for(
            "driftpolicies",
            "iris-drift",
            lambda p: (condition(p, "SourceReady") or {}).get("status") == "False",
        )
        assert condition(failed, "SourceReady")["reason"] == "SourceUnreachable"
        assert "no serving pod answered" in condition(failed, "SourceReady")["message"]
        assert status_of(failed).get("lastRetraining") is None
        assert await retraining_jobs(api, "iris-drift") == []
