"""The whole loop, operator against KMock over HTTP with a real model server and real trainer:
traffic -> drift -> exactly one retraining Job -> the test plays the kubelet -> promotion."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from kmock_emulator import (
    KubeClient,
    RunningOperator,
    condition,
    operator_requests,
    rbac_triple,
)
from operator_support import (
    LOOP_SETTINGS,
    NS,
    Artifacts,
    Process,
    drift_policy,
    play_kubelet,
    retraining_jobs,
    send_rows,
    start_prometheus,
    start_serving,
    status_of,
    wait_baseline,
    wait_evaluated,
    wait_for_scrape,
)

from modelops.rbac import allows

pytestmark = pytest.mark.integration


async def test_drift_retrain_promote_across_a_restart(
    api: KubeClient, kmock: Any, artifacts: Artifacts, server: Process
) -> None:
    async with RunningOperator(LOOP_SETTINGS, NS):
        await start_serving(api, artifacts, server)
        await api.create("driftpolicies", drift_policy(artifacts))
        await wait_baseline(api, "iris-drift")

        # Traffic drawn from the reference distribution: no drift, no Job.
        await send_rows(server.port, "iris", artifacts.reference[:300])
        calm = await wait_evaluated(api, "iris-drift", None)
        assert (condition(calm, "DriftDetected") or {}).get("status") == "False", calm["status"]
        assert status_of(calm)["samples"] == 300
        assert status_of(calm)["consecutiveBreaches"] == 0
        assert {f["name"] for f in status_of(calm)["features"]} == {
            "sepal_length_cm",
            "sepal_width_cm",
            "petal_length_cm",
            "petal_width_cm",
        }

        # Shifted traffic: drift, one breach so far, still no Job.
        await send_rows(server.port, "iris", artifacts.shifted[:300])
        drifting = await wait_evaluated(api, "iris-drift", calm["status"]["lastEvaluationTime"])
        assert condition(drifting, "DriftDetected")["status"] == "True"
        assert condition(drifting, "DriftDetected")["reason"] == "DriftFound"
        assert status_of(drifting)["consecutiveBreaches"] == 1
        assert await retraining_jobs(api, "iris-drift") == []

    # Restart the operator in the middle: its in-memory window is gone, status is not.
    async with RunningOperator(LOOP_SETTINGS, NS):
        await api.wait_for(
            "driftpolicies",
            "iris-drift",
            lambda p: (
                status_of(p).get("lastEvaluationTime") != drifting["status"]["lastEvaluationTime"]
                or "baseline" in ((condition(p, "SourceReady") or {}).get("message") or "")
            ),
            timeout=25,
        )
        await send_rows(server.port, "iris", artifacts.shifted[300:600])
        await api.wait_for(
            "driftpolicies",
            "iris-drift",
            lambda p: (status_of(p).get("lastRetraining") or {}).get("job"),
            timeout=30,
        )
        (job,) = await retraining_jobs(api, "iris-drift")
        policy = await api.get("driftpolicies", "iris-drift")
        assert policy is not None
        retraining = policy["status"]["lastRetraining"]
        assert retraining["candidateVersion"] == "v1-r1"
        assert retraining["job"] == job["metadata"]["name"]
        assert job["metadata"]["ownerReferences"][0]["uid"] == policy["metadata"]["uid"]
        assert job["metadata"]["labels"]["modelops.dev/candidate-version"] == "v1-r1"

        # Play the kubelet: run `modelops train ...` and report its end through the API.
        code, message = await play_kubelet(api, job, artifacts.root)
        assert code == 0, message
        promoted = await api.wait_for(
            "driftpolicies",
            "iris-drift",
            lambda p: (status_of(p).get("lastRetraining") or {}).get("result") == "Promoted",
            timeout=20,
        )
        result = promoted["status"]["lastRetraining"]
        assert result["metrics"]["accuracy"] > result["baseline"]["accuracy"]
        candidate_uri = f"file://{artifacts.output_dir}/v1-r1"
        assert result["uri"] == candidate_uri
        model = await api.wait_for(
            "modeldeployments",
            "iris",
            lambda m: m["spec"]["model"].get("version") == "v1-r1",
        )
        assert model["spec"]["model"]["uri"] == candidate_uri
        rolled = await api.wait_for(
            "deployments",
            "iris",
            lambda d: candidate_uri in d["spec"]["template"]["spec"]["containers"][0]["args"],
        )
        await api.roll_out("iris")
        confirmed = await api.wait_for(
            "driftpolicies",
            "iris-drift",
            lambda p: (status_of(p).get("lastRetraining") or {}).get("reason") == "RolloutComplete",
            timeout=20,
        )
        assert confirmed["status"]["lastRetraining"]["result"] == "Promoted"
        served = await api.get("modeldeployments", "iris")
        assert served is not None
        history = served["status"]["history"]
        assert [(h["version"], h["reason"]) for h in history] == [
            ("v1", "Created"),
            ("v1-r1", "CandidatePromoted"),
        ]
        assert rolled["metadata"]["generation"] == 2

        # Exactly one Job, whatever restarts and retries happened.
        assert len(await retraining_jobs(api, "iris-drift")) == 1
        await asyncio.sleep(1.0)  # let Kopf's poster send the last Events
        reasons = {e.get("reason") for e in await api.list("events")}
        assert {
            "DriftFound",
            "RetrainingStarted",
            "CandidatePromoted",
            "RolloutComplete",
        } <= reasons

    denied = {t for r in operator_requests(kmock) if (t := rbac_triple(r)) and not allows(*t)}
    assert denied == set()


async def test_prometheus_source(
    api: KubeClient, artifacts: Artifacts, server: Process, tmp_path: Path
) -> None:
    prometheus = start_prometheus(server.port, tmp_path)
    try:
        async with RunningOperator(LOOP_SETTINGS, NS):
            await start_serving(api, artifacts, server)
            rows = 'sum(modelops_inference_rows_total{model="iris"})'
            before = await wait_for_scrape(prometheus.port, rows, at_least=0)
            await send_rows(server.port, "iris", artifacts.shifted[:400])
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
            await api.create("driftpolicies", policy)
            judged = await api.wait_for(
                "driftpolicies",
                "iris-prom",
                lambda p: (condition(p, "DriftDetected") or {}).get("reason") == "DriftFound",
                timeout=30,
            )
            assert condition(judged, "SourceReady")["status"] == "True"
            assert "Prometheus" in condition(judged, "SourceReady")["message"]
            assert status_of(judged)["samples"] >= 100
            assert condition(judged, "Retraining")["reason"] == "RetrainingDisabled"
            assert await retraining_jobs(api, "iris-prom") == []
    finally:
        prometheus.stop()
