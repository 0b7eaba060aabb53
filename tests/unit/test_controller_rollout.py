"""A ModelDeployment's phase and message from its Deployment, at each stage of a real rollout.

The statuses are shaped as kube-apiserver returns them (zero counts omitted; during a rolling
update ``replicas``, ``readyReplicas`` and ``availableReplicas`` count old and new pods alike).
"""

from __future__ import annotations

from typing import Any

import pytest

from modelops.controller.modeldeployment import rollout_conditions

AVAILABLE = {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
UNAVAILABLE = {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}
UPDATING = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}
DONE = {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
DEADLINE = {
    "type": "Progressing",
    "status": "False",
    "reason": "ProgressDeadlineExceeded",
    "message": 'ReplicaSet "iris-7d9f8c" has timed out progressing.',
}


def deployment(generation: int, spec_replicas: int, /, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "iris", "namespace": "ml", "generation": generation},
        "spec": {"replicas": spec_replicas},
        "status": status,
    }


CASES = {
    # No pod of any generation yet: the same words as once observed, so that the controller's
    # first status write (observedGeneration 1, nothing updated) changes nothing.
    "just created, not observed yet": (
        deployment(1, 2),
        "Progressing",
        ("False", "MinimumReplicasUnavailable"),
        ["Rolling out: 0 of 2 replicas updated, 0 available."],
    ),
    "first rollout, pods starting": (
        deployment(
            1,
            2,
            observedGeneration=1,
            replicas=2,
            updatedReplicas=2,
            unavailableReplicas=2,
            conditions=[UNAVAILABLE, UPDATING],
        ),
        "Progressing",
        ("False", "MinimumReplicasUnavailable"),
        ["2 of 2 replicas updated, 0 available"],
    ),
    "mid-rollout, one new pod not ready, old pods serving": (
        deployment(
            2,
            2,
            observedGeneration=2,
            replicas=3,
            updatedReplicas=1,
            readyReplicas=2,
            availableReplicas=2,
            unavailableReplicas=1,
            conditions=[AVAILABLE, UPDATING],
        ),
        "Progressing",
        ("False", "RolloutInProgress"),
        ["1 of 2 replicas updated, 2 old still running, 2 available"],
    ),
    "mid-rollout, every new pod up, one old pod left": (
        deployment(
            2,
            2,
            observedGeneration=2,
            replicas=3,
            updatedReplicas=2,
            readyReplicas=3,
            availableReplicas=3,
            conditions=[AVAILABLE, UPDATING],
        ),
        "Progressing",
        ("False", "RolloutInProgress"),
        ["2 of 2 replicas updated, 1 old still running"],
    ),
    "spec changed, controller has not looked yet": (
        deployment(
            3,
            2,
            observedGeneration=2,
            replicas=2,
            updatedReplicas=2,
            readyReplicas=2,
            availableReplicas=2,
            conditions=[AVAILABLE, DONE],
        ),
        "Progressing",
        ("False", "RolloutInProgress"),
        ["observe generation 3", "last observed 2"],
    ),
    "complete": (
        deployment(
            2,
            2,
            observedGeneration=2,
            replicas=2,
            updatedReplicas=2,
            readyReplicas=2,
            availableReplicas=2,
            conditions=[AVAILABLE, DONE],
        ),
        "Ready",
        ("True", "MinimumReplicasAvailable"),
        ["All 2 replicas are updated and available."],
    ),
    "stalled past its deadline": (
        deployment(
            2,
            2,
            observedGeneration=2,
            replicas=3,
            updatedReplicas=1,
            readyReplicas=2,
            availableReplicas=2,
            unavailableReplicas=1,
            conditions=[AVAILABLE, DEADLINE],
        ),
        "Degraded",
        ("False", "ProgressDeadlineExceeded"),
        ["did not progress within its deadline", "1 of 2 replicas updated, 2 old"],
    ),
    "deadline of the previous generation, new spec not observed": (
        deployment(3, 2, observedGeneration=2, replicas=2, conditions=[UNAVAILABLE, DEADLINE]),
        "Progressing",
        ("False", "MinimumReplicasUnavailable"),
        ["observe generation 3"],
    ),
    "scaling to zero": (
        deployment(
            4,
            0,
            observedGeneration=4,
            replicas=1,
            updatedReplicas=1,
            readyReplicas=1,
            availableReplicas=1,
            conditions=[AVAILABLE, DONE],
        ),
        "Progressing",
        ("False", "RolloutInProgress"),
        ["scaling down to 0, 1 replica running"],
    ),
    "scaled to zero": (
        deployment(4, 0, observedGeneration=4, conditions=[AVAILABLE, DONE]),
        "Ready",
        ("True", "ScaledToZero"),
        ["Scaled to zero replicas."],
    ),
}


@pytest.mark.parametrize(("dep", "phase", "ready", "says"), list(CASES.values()), ids=list(CASES))
def test_rollout(dep: dict[str, Any], phase: str, ready: tuple[str, str], says: list[str]) -> None:
    got_phase, conditions = rollout_conditions(dep["spec"]["replicas"], dep)
    status, reason, message = conditions["Ready"]
    assert (got_phase, (status, reason)) == (phase, ready)
    for text in says:
        assert text in message
    assert conditions["Progressing"][2] == message
    if phase != "Ready":
        assert "are updated and available" not in message
        assert conditions["Progressing"][0] == ("False" if phase == "Degraded" else "True")


def test_the_deployments_own_replicas_count_when_they_differ_from_the_spec() -> None:
    """After a reconcile patched the Deployment, its ``spec.replicas`` is what its controller
    works towards; the ModelDeployment's value is only the fallback."""
    dep = deployment(2, 3, observedGeneration=2, replicas=2, updatedReplicas=2, availableReplicas=2)
    phase, conditions = rollout_conditions(2, dep)
    assert phase == "Progressing"
    assert "2 of 3 replicas updated" in conditions["Ready"][2]
