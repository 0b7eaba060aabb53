"""The whole loop on the real control plane: traffic -> drift -> exactly one retraining Job ->
promotion -> rollout, across an operator restart; and drift read from a real Prometheus.

The operator runs as its ServiceAccount; the real Deployment, ReplicaSet, EndpointSlice and Job
controllers and the process kubelet run the model server and ``modelops train`` as pods. Traffic
goes to the pod addresses the EndpointSlice controller lists.
"""

from __future__ import annotations

import json
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
    retraining_jobs,
    send_rows,
    served_version,
    start_prometheus,
    start_serving,
    status_of,
    terminated,
    wait_baseline,
    wait_evaluated,
    wait_for_events,
    wait_for_pod_urls,
    wait_for_scrape,
)

from kube_testbed.client import KubeClient, condition
from kube_testbed.testbed import RunningOperator, Testbed

pytestmark = [pytest.mark.integration, pytest.mark.controlplane]
FEATURES = {"sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"}


def created_by_operator(testbed: Testbed, since: float, resource: str) -> list[str]:
    """Names of the ``resource`` objects the operator's requests created (audit log, 201)."""
    return [
        e["objectRef"].get("name") or e.get("responseObject", {}).get("metadata", {}).get("name")
        for e in testbed.operator_requests(since)
        if e["verb"] == "create"
        and (e.get("objectRef") or {}).get("resource") == resource
        and (e.get("responseStatus") or {}).get("code") == 201
    ]


async def test_drift_retrain_promote_across_a_restart(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts
) -> None:
    started = time.time()
    async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
        url = await start_serving(kube, artifacts)
        for plural in ("deployments", "services"):
            assert "modelops" in field_managers(await kube.get(plural, "iris")), plural
        await kube.create("driftpolicies", drift_policy(artifacts))
        await wait_baseline(kube, "iris-drift")

        # Traffic drawn from the reference distribution: no drift, no Job.
        await send_rows(url, "iris", artifacts.reference[:300])
        calm = await wait_evaluated(kube, "iris-drift", None)
        assert (condition(calm, "DriftDetected") or {}).get("status") == "False", calm["status"]
        assert status_of(calm)["samples"] == 300
        assert status_of(calm)["consecutiveBreaches"] == 0
        assert {f["name"] for f in status_of(calm)["features"]} == FEATURES

        # Shifted traffic: drift, one breach so far, still no Job.
        await send_rows(url, "iris", artifacts.shifted[:300])
        drifting = await wait_evaluated(kube, "iris-drift", calm["status"]["lastEvaluationTime"])
        assert condition(drifting, "DriftDetected")["status"] == "True"
        assert condition(drifting, "DriftDetected")["reason"] == "DriftFound"
        assert status_of(drifting)["consecutiveBreaches"] == 1
        assert status_of(drifting)["samples"] == 300
        assert await retraining_jobs(kube, "iris-drift") == []

    # Restart the operator in the middle: its in-memory window is gone, status is not.
    async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
        await kube.wait_for(
            "driftpolicies",
            "iris-drift",
            lambda p: (
                status_of(p).get("lastEvaluationTime") != drifting["status"]["lastEvaluationTime"]
                or "baseline" in ((condition(p, "SourceReady") or {}).get("message") or "")
            ),
            timeout=25,
        )
        await send_rows(url, "iris", artifacts.shifted[300:600])
        await kube.wait_for(
            "driftpolicies",
            "iris-drift",
            lambda p: (status_of(p).get("lastRetraining") or {}).get("job"),
            timeout=30,
        )
        (job,) = await retraining_jobs(kube, "iris-drift")
        policy = await kube.get("driftpolicies", "iris-drift")
        assert policy is not None
        retraining = policy["status"]["lastRetraining"]
        assert retraining["candidateVersion"] == "v1-r1"
        assert retraining["job"] == job["metadata"]["name"]
        assert job["metadata"]["ownerReferences"][0]["uid"] == policy["metadata"]["uid"]
        assert job["metadata"]["labels"]["modelops.dev/candidate-version"] == "v1-r1"
        assert "modelops" in field_managers(job)

        # The Job controller runs `modelops train` in a pod; the kubelet reports its end.
        name = job["metadata"]["name"]
        complete = await kube.wait_for("jobs", name, job_finished, timeout=90)
        assert complete["status"]["succeeded"] == 1
        (pod,) = await job_pods(kube, name)
        end = terminated(pod)
        assert end["exitCode"] == 0, end
        message = json.loads(end["message"])
        candidate_uri = f"file://{artifacts.output_dir}/v1-r1"
        assert (message["version"], message["uri"]) == ("v1-r1", candidate_uri)
        assert (artifacts.output_dir / "v1-r1" / "model.skops").is_file()

        promoted = await kube.wait_for(
            "driftpolicies",
            "iris-drift",
            lambda p: (status_of(p).get("lastRetraining") or {}).get("result") == "Promoted",
            timeout=20,
        )
        result = promoted["status"]["lastRetraining"]
        assert result["metrics"] == message["metrics"]
        assert result["baseline"] == message["baseline"]
        assert result["metrics"]["accuracy"] > result["baseline"]["accuracy"]
        assert result["uri"] == candidate_uri
        model = await kube.wait_for(
            "modeldeployments",
            "iris",
            lambda m: m["spec"]["model"].get("version") == "v1-r1",
        )
        assert model["spec"]["model"]["uri"] == candidate_uri
        assert "modelops" in field_managers(model)

        # The real Deployment controller rolls the pods; the new one serves the candidate.
        confirmed = await kube.wait_for(
            "driftpolicies",
            "iris-drift",
            lambda p: (status_of(p).get("lastRetraining") or {}).get("reason") == "RolloutComplete",
            timeout=60,
        )
        assert confirmed["status"]["lastRetraining"]["result"] == "Promoted"
        rolled = await kube.get("deployments", "iris")
        assert rolled is not None
        assert candidate_uri in rolled["spec"]["template"]["spec"]["containers"][0]["args"]
        assert rolled["metadata"]["generation"] == 2
        (new_url,) = await wait_for_pod_urls(kube, "iris")
        assert new_url != url
        assert await served_version(new_url, "iris") == "v1-r1"
        served = await kube.get("modeldeployments", "iris")
        assert served is not None
        assert served["status"]["phase"] == "Ready"
        assert [(h["version"], h["reason"]) for h in served["status"]["history"]] == [
            ("v1", "Created"),
            ("v1-r1", "CandidatePromoted"),
        ]

        # Exactly one Job, whatever restarts and retries happened: one create in the audit log.
        assert len(await retraining_jobs(kube, "iris-drift")) == 1
        assert created_by_operator(testbed, started, "jobs") == [name]
        final = await kube.get("driftpolicies", "iris-drift")
        assert "modelops" in field_managers(final)
        await wait_for_events(
            kube,
            "iris-drift",
            {"DriftFound", "RetrainingStarted", "CandidatePromoted", "RolloutComplete"},
        )
        await wait_for_events(kube, "iris", {"CandidatePromoted"})


async def test_prometheus_source(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts, tmp_path: Path
) -> None:
    async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
        url = await start_serving(kube, artifacts)
        # Prometheus on the host scrapes the pod's own address (a static target, labelled with
        # its namespace as Kubernetes service discovery would); the operator queries it there.
        target = url.removeprefix("http://")
        prometheus = start_prometheus([target], tmp_path, labels={"namespace": kube.namespace})
        try:
            rows = 'sum(modelops_inference_rows_total{model="iris"})'
            before = await wait_for_scrape(prometheus.port, rows, at_least=0)
            await send_rows(url, "iris", artifacts.shifted[:400])
            await wait_for_scrape(prometheus.port, rows, at_least=before + 400)
            policy = drift_policy(
                artifacts,
                name="iris-prom",
                source={
                    "type": "prometheus",
                    "url": f"http://127.0.0.1:{prometheus.port}",
                    "window": "5m",
                },
                trigger={"minBreachedFeatures": 2, "consecutiveEvaluations": 1},
                retraining={"enabled": False},
            )
            await kube.create("driftpolicies", policy)
            judged = await kube.wait_for(
                "driftpolicies",
                "iris-prom",
                lambda p: (condition(p, "DriftDetected") or {}).get("reason") == "DriftFound",
                timeout=30,
            )
            assert condition(judged, "SourceReady")["status"] == "True"
            assert "Prometheus" in condition(judged, "SourceReady")["message"]
            assert status_of(judged)["samples"] >= 100
            assert {f["name"] for f in status_of(judged)["features"]} == FEATURES
            assert condition(judged, "Retraining")["reason"] == "RetrainingDisabled"
            assert await retraining_jobs(kube, "iris-prom") == []
            assert "modelops" in field_managers(judged)
            await wait_for_events(kube, "iris-prom", {"DriftFound", "RetrainingDisabled"})
        finally:
            prometheus.stop()
