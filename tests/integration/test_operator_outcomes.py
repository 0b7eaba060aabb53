"""What the operator does with a finished retraining Job, on the real control plane: a failed
data-quality gate, an unreadable result, manual approval, and the rollback of a promoted version
that never got Ready.

The retraining is set up as a previous operator run would have left it: the Job the operator
builds for the policy (owned by it, created by the test) and ``status.lastRetraining`` saying it
runs. From there everything is real: the Job controller runs the Job's pod through the process
kubelet, the container's exit code and termination message are what the kubelet reported, the
Job's Complete/Failed condition is the Job controller's, and a promoted model is rolled out (or
not) by the real Deployment controller.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from operator_support import (
    LOOP_SETTINGS,
    Artifacts,
    drift_policy,
    field_managers,
    job_finished,
    job_pods,
    make_artifacts,
    served_version,
    start_serving,
    status_of,
    terminated,
    wait_for_events,
    wait_for_pod_urls,
)

from kube_testbed.client import KubeClient, condition
from kube_testbed.testbed import RunningOperator, Testbed
from modelops.controller.settings import OperatorSettings
from modelops.resources import Owner, TrainingRequest, build_job

pytestmark = [pytest.mark.integration, pytest.mark.controlplane]
#: A promoted version gets the shortest progress deadline the settings allow to become Ready.
SETTINGS = OperatorSettings(
    **{**LOOP_SETTINGS.model_dump(), "resync_seconds": 1.0, "progress_deadline_seconds": 10}
)
#: What the other trainer writes to its termination log instead of the result JSON.
NOT_A_RESULT = "training finished, see the logs"
MODEL_LABEL = "modelops.dev/model"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    """The iris artifacts, data that fails the trainer's quality gate (10 rows), and another
    trainer: a ``modelops`` that exits 0 but writes plain text to the termination log."""
    root = tmp_path_factory.mktemp("artifacts")
    made = make_artifacts(root)
    lines = made.fresh_data.read_text().splitlines()
    (root / "too-few-rows.csv").write_text("\n".join(lines[:11]) + "\n")
    other = root / "other-trainer" / "modelops"
    other.parent.mkdir()
    other.write_text(
        "#!/bin/sh\n"
        "log=/dev/termination-log\n"
        'while [ $# -gt 0 ]; do [ "$1" = --termination-log ] && log=$2; shift; done\n'
        f'echo "{NOT_A_RESULT}" > "$log"\n'
    )
    other.chmod(0o755)
    return made


async def running_retraining(
    kube: KubeClient,
    artifacts: Artifacts,
    data: Path,
    output: Path,
    job_template: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    **policy_spec: Any,
) -> tuple[str, dict[str, Any]]:
    """A served model, a policy and its retraining Job in flight; the pod URL and the Job."""
    url = await start_serving(kube, artifacts)
    for plural in ("deployments", "services"):
        assert "modelops" in field_managers(await kube.get(plural, "iris")), plural
    spec = drift_policy(artifacts, interval="1h", **policy_spec)
    if annotations:
        spec["metadata"]["annotations"] = annotations
    retraining = spec["spec"]["retraining"]
    retraining.update(dataUri=f"file://{data}", outputUri=f"file://{output}")
    if job_template is not None:
        retraining["jobTemplate"] = job_template
    policy = await kube.create("driftpolicies", spec)
    request = TrainingRequest(
        model_deployment="iris",
        candidate_version="v1-r1",
        base_model_uri=artifacts.model_uri,
        data_uri=f"file://{data}",
        output_uri=f"file://{output}",
        job_template=job_template,
    )
    job = await kube.create("jobs", build_job(Owner.of(policy), request, SETTINGS.build_defaults()))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    await kube.patch(
        "driftpolicies",
        "iris-drift",
        {
            "status": {
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
    return url, job


def last_retraining(policy: dict[str, Any] | None) -> dict[str, Any]:
    return status_of(policy).get("lastRetraining") or {}


async def wait_for_crash(kube: KubeClient, selector: str, timeout: float = 30) -> dict[str, Any]:
    """The termination of a container of the selected pods that exited with an error."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for pod in await kube.list("pods", selector):
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                for state in (status.get("lastState") or {}, status.get("state") or {}):
                    ended = state.get("terminated") or {}
                    if ended.get("exitCode"):
                        found: dict[str, Any] = ended
                        return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"no container of {selector} exited with an error in {timeout}s")


async def trainer_end(kube: KubeClient, job: str, kind: str) -> dict[str, Any]:
    """The trainer container's termination once the Job controller set ``kind`` on the Job."""
    await kube.wait_for("jobs", job, lambda j: job_finished(j, kind), timeout=90)
    (pod,) = await job_pods(kube, job)
    return terminated(pod)


async def test_failed_quality_gate_promotes_nothing(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts, tmp_path: Path
) -> None:
    async with RunningOperator(SETTINGS, [kube.namespace]):
        too_few = artifacts.root / "too-few-rows.csv"
        _, job = await running_retraining(kube, artifacts, too_few, tmp_path)
        name = job["metadata"]["name"]

        # The trainer's gate refuses 10 rows (exit 3); the podFailurePolicy fails the Job at once.
        end = await trainer_end(kube, name, "Failed")
        assert end["exitCode"] == 3, end
        refusal = json.loads(end["message"])
        assert (refusal["reason"], refusal["uri"]) == ("DataQualityGateFailed", "")
        failed_job = await kube.get("jobs", name)
        assert condition(failed_job, "Failed")["reason"] == "PodFailurePolicy"
        assert len(await job_pods(kube, name)) == 1  # not retried: the data cannot change

        failed = await kube.wait_for(
            "driftpolicies", "iris-drift", lambda p: last_retraining(p).get("result") == "Failed"
        )
        assert last_retraining(failed)["reason"] == "DataQualityGateFailed"
        assert last_retraining(failed)["message"] == f"Job {name} failed: {refusal['message']}"
        assert condition(failed, "Retraining")["reason"] == "DataQualityGateFailed"
        assert "modelops" in field_managers(failed)
        model = await kube.get("modeldeployments", "iris")
        assert model is not None
        assert model["spec"]["model"]["version"] == "v1"
        assert not (tmp_path / "v1-r1").exists()
        await wait_for_events(kube, "iris-drift", {"DataQualityGateFailed"})


async def test_unreadable_result(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts, tmp_path: Path
) -> None:
    # The policy's jobTemplate puts another trainer first on the container's PATH: the Job
    # succeeds, but its termination message is not the result JSON.
    await kube.create(
        "configmaps",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "other-trainer"},
            "data": {"PATH": f"{artifacts.root / 'other-trainer'}:{os.environ['PATH']}"},
        },
    )
    template = {
        "template": {
            "spec": {
                "containers": [
                    {"name": "trainer", "envFrom": [{"configMapRef": {"name": "other-trainer"}}]}
                ]
            }
        }
    }
    async with RunningOperator(SETTINGS, [kube.namespace]):
        _, job = await running_retraining(
            kube, artifacts, artifacts.fresh_data, tmp_path, job_template=template
        )
        name = job["metadata"]["name"]
        end = await trainer_end(kube, name, "Complete")
        assert (end["exitCode"], end["message"].strip()) == (0, NOT_A_RESULT)

        failed = await kube.wait_for(
            "driftpolicies", "iris-drift", lambda p: last_retraining(p).get("result") == "Failed"
        )
        assert last_retraining(failed)["reason"] == "ResultUnreadable"
        assert last_retraining(failed)["message"] == (
            f"Job {name} succeeded, but its termination message holds no usable result."
        )
        assert condition(failed, "Retraining")["reason"] == "ResultUnreadable"
        model = await kube.get("modeldeployments", "iris")
        assert model is not None
        assert model["spec"]["model"]["version"] == "v1"
        await wait_for_events(kube, "iris-drift", {"ResultUnreadable"})


async def test_manual_approval_then_rollback(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts, tmp_path: Path
) -> None:
    async with RunningOperator(SETTINGS, [kube.namespace]):
        # Someone approved another version before the candidate was even trained.
        url, job = await running_retraining(
            kube,
            artifacts,
            artifacts.fresh_data,
            tmp_path,
            annotations={"modelops.dev/approve": "v9"},
            promotion={"mode": "manual"},
        )
        end = await trainer_end(kube, job["metadata"]["name"], "Complete")
        assert end["exitCode"] == 0, end
        assert json.loads(end["message"])["uri"] == f"file://{tmp_path}/v1-r1"
        waiting = await kube.wait_for(
            "driftpolicies",
            "iris-drift",
            lambda p: last_retraining(p).get("result") == "AwaitingApproval",
        )
        # Approving another version does nothing: the candidate waits for its own approval.
        assert waiting["metadata"]["annotations"]["modelops.dev/approve"] == "v9"
        assert condition(waiting, "PromotionPending")["status"] == "True"
        assert "modelops.dev/approve=v1-r1" in condition(waiting, "PromotionPending")["message"]

        # The candidate's model file gets damaged while it waits: once promoted, its server
        # cannot load it and the new pod never becomes Ready.
        (tmp_path / "v1-r1" / "model.skops").write_bytes(b"not a model")

        # Approving the candidate promotes it.
        await kube.patch(
            "driftpolicies",
            "iris-drift",
            {"metadata": {"annotations": {"modelops.dev/approve": "v1-r1"}}},
        )
        promoted = await kube.wait_for(
            "driftpolicies",
            "iris-drift",
            lambda p: last_retraining(p).get("result") == "Promoted",
        )
        assert last_retraining(promoted)["reason"] == "CandidatePromoted"
        assert condition(promoted, "PromotionPending")["status"] == "False"
        await kube.wait_for(
            "deployments",
            "iris",
            lambda d: (
                f"file://{tmp_path}/v1-r1" in d["spec"]["template"]["spec"]["containers"][0]["args"]
            ),
        )

        # The real Deployment controller starts the candidate's pod, whose server exits (the model
        # cannot be loaded): it never gets Ready and is rolled back after the progress deadline.
        crash = await wait_for_crash(kube, f"{MODEL_LABEL}=iris,!batch.kubernetes.io/job-name")
        assert crash["exitCode"] != 0, crash
        rolled_back = await kube.wait_for(
            "driftpolicies",
            "iris-drift",
            lambda p: last_retraining(p).get("result") == "RolledBack",
            timeout=60,
        )
        assert last_retraining(rolled_back)["message"] == (
            "Rolled back to v1: candidate v1-r1 did not become Ready within 10s."
        )
        model = await kube.wait_for(
            "modeldeployments",
            "iris",
            lambda m: (
                m["spec"]["model"]["version"] == "v1" and status_of(m).get("phase") == "Ready"
            ),
            timeout=60,
        )
        assert model["spec"]["model"]["uri"] == artifacts.model_uri
        assert "modelops" in field_managers(model)
        history = [(h["version"], h["reason"]) for h in model["status"]["history"]]
        assert history == [("v1", "Created"), ("v1-r1", "CandidatePromoted"), ("v1", "RolledBack")]
        # The v1 pod was never taken down (maxUnavailable 0 of 1): it serves on, where it was.
        assert await wait_for_pod_urls(kube, "iris") == [url]
        assert await served_version(url, "iris") == "v1"
        await wait_for_events(
            kube, "iris-drift", {"AwaitingApproval", "CandidatePromoted", "RolledBack"}
        )
        await wait_for_events(kube, "iris", {"CandidatePromoted", "RolledBack"})
