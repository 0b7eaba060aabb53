"""What the operator does with a finished retraining Job: a failed data-quality gate, an
unreadable result, manual approval, and the rollback of a promoted version that never got Ready.

The retraining is set up as a previous operator run would have left it (the Job, owned by the
policy, and ``status.lastRetraining`` saying it runs); the trainer runs for real and the test
plays the kubelet."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kmock_emulator import (
    KubeClient,
    RunningOperator,
    condition,
)
from operator_support import (
    NS,
    Artifacts,
    drift_policy,
    make_artifacts,
    model_deployment,
    play_kubelet,
    status_of,
)

from modelops.controller.settings import OperatorSettings
from modelops.resources import BuildDefaults, Owner, TrainingRequest, build_job

pytestmark = pytest.mark.integration
SETTINGS = OperatorSettings(
    metrics_port=0,
    health_port=0,
    resync_seconds=5.0,
    drift_tick_seconds=1.0,
    progress_deadline_seconds=10,
)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    root = tmp_path_factory.mktemp("artifacts")
    made = make_artifacts(root)
    lines = made.fresh_data.read_text().splitlines()
    (root / "too-few-rows.csv").write_text("\n".join(lines[:11]) + "\n")
    return made


async def running_retraining(
    api: KubeClient, artifacts: Artifacts, data: Path, **policy_spec: Any
) -> dict[str, Any]:
    """A served model, a policy and its retraining Job in flight; returns the Job."""
    await api.create("modeldeployments", model_deployment(artifacts))
    await api.wait_for("deployments", "iris", lambda d: d is not None)
    await api.roll_out("iris")
    await api.wait_for("modeldeployments", "iris", lambda m: status_of(m).get("phase") == "Ready")
    spec = drift_policy(artifacts, interval="1h", **policy_spec)
    spec["spec"]["retraining"]["dataUri"] = f"file://{data}"
    policy = await api.create("driftpolicies", spec)
    request = TrainingRequest(
        model_deployment="iris",
        candidate_version="v1-r1",
        base_model_uri=artifacts.model_uri,
        data_uri=f"file://{data}",
        output_uri=f"file://{artifacts.output_dir}",
    )
    job = build_job(Owner.of(policy), request, BuildDefaults())
    await api.create("jobs", job)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    await api.patch(
        "driftpolicies",
        "iris-drift",
        {
            "status": {
                "lastEvaluationTime": now,
                "lastRetraining": {
                    "job": job["metadata"]["name"],
                    "candidateVersion": "v1-r1",
                    "startTime": now,
                    "result": "Running",
                    "reason": "RetrainingStarted",
                },
            }
        },
        sub="status",
    )
    created = await api.get("jobs", job["metadata"]["name"])
    assert created is not None
    return created


def last_retraining(policy: dict[str, Any] | None) -> dict[str, Any]:
    return status_of(policy).get("lastRetraining") or {}


async def wait_events(api: KubeClient, reasons: set[str]) -> None:
    """Wait until Events with all of ``reasons`` exist (Kopf posts them in batches)."""
    await api.wait_for(
        "events",
        "",
        lambda listing: reasons <= {str(e.get("reason")) for e in listing.get("items") or []},
    )


async def test_failed_quality_gate_promotes_nothing(api: KubeClient, artifacts: Artifacts) -> None:
    async with RunningOperator(SETTINGS, NS):
        job = await running_retraining(api, artifacts, artifacts.root / "too-few-rows.csv")
        code, message = await play_kubelet(api, job, artifacts.root)
        assert code == 3, message
        failed = await api.wait_for(
            "driftpolicies", "iris-drift", lambda p: last_retraining(p).get("result") == "Failed"
        )
        assert last_retraining(failed)["reason"] == "DataQualityGateFailed"
        assert condition(failed, "Retraining")["reason"] == "DataQualityGateFailed"
        model = await api.get("modeldeployments", "iris")
        assert model is not None
        assert model["spec"]["model"]["version"] == "v1"
        await wait_events(api, {"DataQualityGateFailed"})


async def test_unreadable_result(api: KubeClient, artifacts: Artifacts) -> None:
    async with RunningOperator(SETTINGS, NS):
        job = await running_retraining(api, artifacts, artifacts.fresh_data)
        # The Job reports success, but no pod holds a termination message.
        await api.patch(
            "jobs",
            job["metadata"]["name"],
            {"status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}},
            sub="status",
        )
        failed = await api.wait_for(
            "driftpolicies", "iris-drift", lambda p: last_retraining(p).get("result") == "Failed"
        )
        assert last_retraining(failed)["reason"] == "ResultUnreadable"
        model = await api.get("modeldeployments", "iris")
        assert model is not None
        assert model["spec"]["model"]["version"] == "v1"


async def test_manual_approval_then_rollback(api: KubeClient, artifacts: Artifacts) -> None:
    async with RunningOperator(SETTINGS, NS):
        job = await running_retraining(
            api, artifacts, artifacts.fresh_data, promotion={"mode": "manual"}
        )
        code, message = await play_kubelet(api, job, artifacts.root)
        assert code == 0, message
        waiting = await api.wait_for(
            "driftpolicies",
            "iris-drift",
            lambda p: last_retraining(p).get("result") == "AwaitingApproval",
        )
        assert condition(waiting, "PromotionPending")["status"] == "True"
        assert "modelops.dev/approve=v1-r1" in condition(waiting, "PromotionPending")["message"]

        # Approving another version does nothing; approving the candidate promotes it.
        await api.patch(
            "driftpolicies",
            "iris-drift",
            {"metadata": {"annotations": {"modelops.dev/approve": "v9"}}},
        )
        await api.patch(
            "driftpolicies",
            "iris-drift",
            {"metadata": {"annotations": {"modelops.dev/approve": "v1-r1"}}},
        )
        await api.wait_for(
            "modeldeployments", "iris", lambda m: m["spec"]["model"]["version"] == "v1-r1"
        )
        promoted = await api.get("driftpolicies", "iris-drift")
        assert last_retraining(promoted)["result"] == "Promoted"
        assert condition(promoted, "PromotionPending")["status"] == "False"

        # The new version never becomes Ready (nobody rolls it out): rolled back after the
        # progress deadline.
        rolled_back = await api.wait_for(
            "driftpolicies",
            "iris-drift",
            lambda p: last_retraining(p).get("result") == "RolledBack",
            timeout=30,
        )
        assert "Rolled back to v1" in last_retraining(rolled_back)["message"]
        model = await api.wait_for(
            "modeldeployments", "iris", lambda m: m["spec"]["model"]["version"] == "v1"
        )
        assert model["spec"]["model"]["uri"] == artifacts.model_uri
        history = [(h["version"], h["reason"]) for h in model["status"]["history"]]
        assert history == [("v1", "Created"), ("v1-r1", "CandidatePromoted"), ("v1", "RolledBack")]
        await wait_events(api, {"AwaitingApproval", "CandidatePromoted", "RolledBack"})
