"""The fairness gate in the DriftPolicy tick: what a user sees when a candidate is blocked (status,
condition, one Warning Event, the blocked counter), in every promotion mode, and what the
retraining Job is told. Same in-memory world as ``test_controller_driftpolicy_decisions``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_controller_driftpolicy_decisions import (
    MODEL,
    MODEL_URI,
    NS,
    POLICY,
    World,
    job_for,
    retraining,
    started,
)

from modelops.controller.kube import DRIFT_POLICIES, JOBS, MODEL_DEPLOYMENTS, PODS
from modelops.resources import labels as label_keys

GATE = {"sensitiveColumns": ["sex"], "metric": "demographic_parity_difference", "max": 0.1}
BIASED = {"sex": {"challenger": 0.31, "champion": 0.04, "groups": ["F", "M"], "smallGroups": []}}
FAIR = {"sex": {"challenger": 0.03, "champion": 0.04, "groups": ["F", "M"], "smallGroups": []}}
SMALL = {"sex": {"challenger": 0.03, "champion": 0.04, "groups": ["F", "M"], "smallGroups": ["X"]}}
BLOCKED_MESSAGE = (
    "Kept the current model: candidate v1-r1 fails the fairness gate on "
    "demographic_parity_difference: sex: 0.31 between groups F and M, over max 0.1 "
    "(champion 0.04)."
)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    made = World(monkeypatch)
    made.model_deployment()
    made.pods.start()
    return made


def finish(world: World, columns: dict[str, Any] | None, accuracy: float = 0.97) -> None:
    """The candidate's Job completes; its result JSON carries ``columns`` as the fairness block."""
    name = job_for("v1-r1")
    world.finish_job(name, accuracy=accuracy, baseline=0.90)
    if columns is None:
        return
    pod_name = f"{name}-x7k2p"
    pod = world.kube.get(PODS, NS, pod_name)
    assert pod is not None
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    document = json.loads(terminated["message"])
    document["fairness"] = {
        "metric": "demographic_parity_difference",
        "minGroupRows": 30,
        "columns": columns,
    }
    terminated["message"] = json.dumps(document)
    world.kube.put(PODS, pod)


def blocked(world: World, reason: str) -> float:
    return world.counter(
        "modelops_promotions_blocked_total", namespace=NS, model=MODEL, reason=reason
    )


def candidate(
    world: World, columns: dict[str, Any] | None, approved: str | None = None, **promotion: Any
) -> dict[str, Any]:
    """A policy with the gate (approved in advance if asked): drift, the Job, its result; the
    tick that follows it up."""
    started(
        world,
        trigger={"consecutiveEvaluations": 1},
        promotion={"fairness": GATE, **promotion},
    )
    if approved:
        world.approve(approved)
    world.drift()
    finish(world, columns)
    world.take_events()
    world.clock.advance(1)
    return world.tick()


def assert_blocked(world: World, status: dict[str, Any], reason: str, message: str) -> None:
    last = retraining(status)
    assert (last["result"], last["reason"], last["message"]) == ("Rejected", reason, message)
    assert last["candidateVersion"] == "v1-r1"
    assert world.condition_state("PromotionPending") == ("False", reason)
    assert world.condition("PromotionPending")["message"] == message  # type: ignore[index]
    assert [(e.kind, e.type, e.reason, e.message) for e in world.take_events()] == [
        ("DriftPolicy", "Warning", reason, message)
    ]
    assert blocked(world, reason) == 1
    assert world.md()["spec"]["model"] == {"uri": MODEL_URI, "version": "v1"}
    assert world.kube.patches(MODEL_DEPLOYMENTS) == []


@pytest.mark.parametrize("mode", ["auto", "manual", "none"])
def test_a_biased_candidate_is_blocked_in_every_mode(world: World, mode: str) -> None:
    status = candidate(world, BIASED, mode=mode)
    assert_blocked(world, status, "FairnessGateFailed", BLOCKED_MESSAGE)
    last = retraining(status)
    assert last["fairness"]["columns"]["sex"]["challenger"] == 0.31
    assert last["metrics"] == {"accuracy": 0.97}  # more accurate, still blocked
    # Later ticks change nothing, count nothing again.
    world.clock.advance(1)
    world.tick()
    assert world.take_events() == []
    assert blocked(world, "FairnessGateFailed") == 1


def test_an_approval_given_before_the_result_does_not_pass_the_gate(world: World) -> None:
    status = candidate(world, BIASED, approved="v1-r1", mode="manual")
    assert_blocked(world, status, "FairnessGateFailed", BLOCKED_MESSAGE)


def test_an_approval_arriving_after_the_block_changes_nothing(world: World) -> None:
    candidate(world, BIASED, mode="manual")
    world.take_events()
    world.approve("v1-r1")
    world.clock.advance(1)
    status = world.tick()
    assert retraining(status)["result"] == "Rejected"
    assert world.md()["spec"]["model"]["version"] == "v1"
    assert world.take_events() == []


def test_an_approval_is_judged_again_by_the_gate_as_it_is_then(world: World) -> None:
    # The candidate passed the gate of its time and awaits approval; then the policy tightens
    # the bound; the approval meets the tightened gate, judged on the report kept in status.
    status = candidate(world, FAIR, mode="manual")
    last = retraining(status)
    assert last["result"] == "AwaitingApproval"
    assert last["message"].endswith(
        "Fairness: demographic_parity_difference within max 0.1 (sex 0.03)."
    )
    world.take_events()
    world.kube.apply(
        DRIFT_POLICIES, NS, POLICY, {"spec": {"promotion": {"fairness": {**GATE, "max": 0.02}}}}
    )
    world.approve("v1-r1")
    world.clock.advance(1)
    status = world.tick()
    message = (
        "Kept the current model: candidate v1-r1 fails the fairness gate on "
        "demographic_parity_difference: sex: 0.03 between groups F and M, over max 0.02 "
        "(champion 0.04)."
    )
    assert_blocked(world, status, "FairnessGateFailed", message)


def test_a_fair_candidate_is_promoted_with_the_gate_in_the_message(world: World) -> None:
    status = candidate(world, FAIR, mode="auto")
    last = retraining(status)
    assert (last["result"], last["reason"]) == ("Promoted", "CandidatePromoted")
    assert last["message"].endswith(
        "Fairness: demographic_parity_difference within max 0.1 (sex 0.03)."
    )
    assert last["fairness"] == {
        "metric": "demographic_parity_difference",
        "minGroupRows": 30,
        "columns": FAIR,
    }
    assert world.md()["spec"]["model"]["version"] == "v1-r1"
    assert blocked(world, "FairnessGateFailed") == 0
    assert world.counter("modelops_promotions_total", namespace=NS, model=MODEL, mode="auto") == 1


def test_small_groups_block_with_their_own_reason(world: World) -> None:
    status = candidate(world, SMALL, mode="auto")
    message = (
        "Kept the current model: candidate v1-r1 fails the fairness gate on "
        "demographic_parity_difference: sex: groups with fewer than 30 holdout rows: X "
        "(challenger 0.03, champion 0.04, max 0.1)."
    )
    assert_blocked(world, status, "FairnessGroupTooSmall", message)
    assert blocked(world, "FairnessGateFailed") == 0


def test_a_result_without_fairness_is_blocked_when_the_gate_is_configured(world: World) -> None:
    status = candidate(world, None, mode="auto")
    message = (
        "Kept the current model: candidate v1-r1 fails the fairness gate on "
        "demographic_parity_difference: the trainer reported no fairness measurement of sex "
        "(a trainer without fairness support?); an unmeasured candidate is never promoted."
    )
    assert_blocked(world, status, "FairnessGateFailed", message)
    assert "fairness" not in retraining(status)


def test_without_a_gate_a_result_with_or_without_fairness_is_decided_as_before(
    world: World,
) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    finish(world, BIASED)
    world.clock.advance(1)
    status = world.tick()
    last = retraining(status)
    assert (last["result"], last["reason"]) == ("Promoted", "CandidatePromoted")
    assert "Fairness" not in last["message"]
    assert last["fairness"]["columns"]["sex"]["challenger"] == 0.31  # kept for the card


def test_the_job_is_told_the_gate_and_why_it_was_started(world: World) -> None:
    started(
        world,
        trigger={"consecutiveEvaluations": 1},
        promotion={"fairness": {**GATE, "intersection": True, "minGroupRows": 50}},
    )
    world.drift()
    job = world.kube.get(JOBS, NS, job_for("v1-r1"))
    assert job is not None
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["MODELOPS_SENSITIVE_COLUMNS"] == "sex"
    assert env["MODELOPS_FAIRNESS_METRIC"] == "demographic_parity_difference"
    assert env["MODELOPS_FAIRNESS_INTERSECTION"] == "true"
    assert env["MODELOPS_FAIRNESS_MIN_GROUP_ROWS"] == "50"
    assert env["MODELOPS_ALLOW_SENSITIVE_FEATURES"] == "false"
    assert env["MODELOPS_POLICY"] == "iris-drift"
    assert env["MODELOPS_RETRAINING_REASON"] == "DriftDetected"
    assert env["MODELOPS_EVALUATION_TIME"] == world.status()["lastEvaluationTime"]
    assert env["MODELOPS_JOB_NAME"] == {
        "fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}
    }
    assert job["metadata"]["labels"][label_keys.CANDIDATE_VERSION] == "v1-r1"


def test_a_fair_candidate_approved_later_is_promoted(world: World) -> None:
    candidate(world, FAIR, mode="manual")
    world.take_events()
    world.approve("v1-r1")
    world.clock.advance(1)
    last = retraining(world.tick())
    assert (last["result"], last["reason"]) == ("Promoted", "CandidatePromoted")
    assert last["message"] == (
        "Promoted v1-r1: approved. "
        "Fairness: demographic_parity_difference within max 0.1 (sex 0.03)."
    )
    assert world.md()["spec"]["model"]["version"] == "v1-r1"
    assert world.condition_state("PromotionPending") == ("False", "CandidatePromoted")


def test_a_block_whose_status_write_failed_is_decided_again_but_counted_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    started(world, trigger={"consecutiveEvaluations": 1}, promotion={"fairness": GATE})
    world.drift()
    finish(world, BIASED)
    world.take_events()
    world.clock.advance(1)
    write = world.kube.patch_status

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the API server is unavailable")

    monkeypatch.setattr(world.kube, "patch_status", unavailable)
    with pytest.raises(RuntimeError):
        world.tick()
    assert world.take_events() == []  # nothing was written, nothing told
    monkeypatch.setattr(world.kube, "patch_status", write)
    world.clock.advance(1)
    status = world.tick()
    assert_blocked(world, status, "FairnessGateFailed", BLOCKED_MESSAGE)
