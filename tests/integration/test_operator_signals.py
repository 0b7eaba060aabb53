"""The loop beyond input drift on the real control plane (#14): a schedule alone starts exactly
one retraining Job; a restart of the operator around the scheduled time still gives exactly one;
concept drift (inputs unchanged, labels flipped, posted to the server's feedback endpoint) ends
in exactly one Job with reason PerformanceDegraded.

As in ``test_operator_driftpolicy``: the operator runs as its ServiceAccount in this loop, the
real Deployment, EndpointSlice and Job controllers and the process kubelet run the model server
and ``modelops train``; the audit log shows which Jobs the operator created. The schedules name
one minute of the hour (the first at least 20 s ahead), so each fires once in the test.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from operator_support import (
    LOOP_SETTINGS,
    Artifacts,
    drift_policy,
    labelled_rows,
    model_deployment,
    retraining_jobs,
    send_feedback,
    send_rows,
    start_prometheus,
    start_serving,
    status_of,
    wait_baseline,
    wait_for_events,
    wait_for_scrape,
)
from test_operator_driftpolicy import created_by_operator

from kube_testbed.client import KubeClient, condition
from kube_testbed.testbed import RunningOperator, Testbed

pytestmark = [pytest.mark.integration, pytest.mark.controlplane]
REASON = "modelops.dev/retraining-reason"


def next_minute(lead: float = 10.0) -> datetime:
    """The first whole minute at least ``lead`` seconds from now (UTC)."""
    soon = datetime.now(UTC) + timedelta(seconds=lead)
    return soon.replace(second=0, microsecond=0) + timedelta(minutes=1)


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled_policy(artifacts: Artifacts, name: str, at: datetime) -> dict[str, Any]:
    """A policy that retrains at minute ``at.minute`` of every hour, records its candidates
    (promotion none) and never retrains on drift (no traffic is judged: minSamples is high)."""
    return drift_policy(
        artifacts,
        name=name,
        minSamples=1_000_000,
        retraining={
            "dataUri": f"file://{artifacts.fresh_data}",
            "outputUri": f"file://{artifacts.root}/candidates-{name}",
            "cooldown": "1h",
            "schedule": f"{at.minute} * * * *",
            "timeZone": "Etc/UTC",
        },
        promotion={"mode": "none"},
    )


async def wait_scheduled_job(kube: KubeClient, policy: str, timeout: float) -> dict[str, Any]:
    return await kube.wait_for(
        "driftpolicies",
        policy,
        lambda p: (status_of(p).get("lastRetraining") or {}).get("job") is not None,
        timeout=timeout,
    )


async def until(when: datetime) -> None:
    await asyncio.sleep(max(0.0, (when - datetime.now(UTC)).total_seconds()))


async def test_only_the_schedule_fires_one_job(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts
) -> None:
    started = time.time()
    async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
        url = await start_serving(kube, artifacts)
        at = next_minute()
        await kube.create("driftpolicies", scheduled_policy(artifacts, "iris-cron", at))
        waiting = await kube.wait_for(
            "driftpolicies",
            "iris-cron",
            lambda p: status_of(p).get("nextScheduledTime") == stamp(at),
            timeout=20,
        )
        assert "lastScheduledTime" not in status_of(waiting)
        await send_rows(url, "iris", artifacts.reference[:100])  # undrifted, and too few
        assert await retraining_jobs(kube, "iris-cron") == []

        policy = await wait_scheduled_job(kube, "iris-cron", timeout=100)
        (job,) = await retraining_jobs(kube, "iris-cron")
        retraining = policy["status"]["lastRetraining"]
        assert retraining["job"] == job["metadata"]["name"]
        assert retraining["candidateVersion"] == "v1-r1"
        assert policy["status"]["lastScheduledTime"] == stamp(at)
        assert policy["status"]["nextScheduledTime"] == stamp(at + timedelta(hours=1))
        assert job["metadata"]["annotations"][REASON] == "Scheduled"
        assert (condition(policy, "DriftDetected") or {}).get("status") != "True"
        events = await wait_for_events(kube, "iris-cron", {"RetrainingStarted"})
        (started_event,) = [e for e in events if e["reason"] == "RetrainingStarted"]
        assert f"Scheduled retraining for {stamp(at)}." in started_event["message"]

        # Ticks go on (every second): the same time never starts a second Job.
        await asyncio.sleep(5)
        assert len(await retraining_jobs(kube, "iris-cron")) == 1
        assert created_by_operator(testbed, started, "jobs") == [job["metadata"]["name"]]


async def test_a_restart_around_the_scheduled_time_gives_one_job(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts
) -> None:
    started = time.time()
    async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
        await kube.create("modeldeployments", model_deployment(artifacts))
        at = next_minute(lead=15)
        await kube.create("driftpolicies", scheduled_policy(artifacts, "iris-cron-restart", at))
        await kube.wait_for(
            "driftpolicies",
            "iris-cron-restart",
            lambda p: status_of(p).get("nextScheduledTime") == stamp(at),
            timeout=20,
        )

    # The operator is down when the time comes.
    await until(at + timedelta(seconds=3))
    assert await retraining_jobs(kube, "iris-cron-restart") == []

    async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
        policy = await wait_scheduled_job(kube, "iris-cron-restart", timeout=30)
        (job,) = await retraining_jobs(kube, "iris-cron-restart")
        assert policy["status"]["lastRetraining"]["reason"] == "Scheduled"
        assert policy["status"]["lastScheduledTime"] == stamp(at)
        assert job["metadata"]["annotations"][REASON] == "Scheduled"
        await asyncio.sleep(3)

    # And once more, just after: the status written before the restart holds.
    async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
        await asyncio.sleep(5)
        assert len(await retraining_jobs(kube, "iris-cron-restart")) == 1
    assert created_by_operator(testbed, started, "jobs") == [job["metadata"]["name"]]


async def test_concept_drift_retrains_once_with_reason_performance_degraded(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts
) -> None:
    started = time.time()
    rows, labels = labelled_rows(artifacts.root / "reference.csv")
    flipped = [(label + 1) % 3 for label in labels]  # each class called the next one
    policy_spec = drift_policy(
        artifacts,
        name="iris-concept",
        minSamples=250,  # inputs judged on windows of 250 rows or more: no noise alarms
        performance={"metric": "accuracy", "minSamples": 100, "maxDrop": 0.2},
        trigger={
            "minBreachedFeatures": 2,
            "consecutiveEvaluations": 2,
            "signals": ["InputDrift", "Performance"],
        },
        retraining={
            "dataUri": f"file://{artifacts.fresh_data}",
            "outputUri": f"file://{artifacts.root}/candidates-iris-concept",
            "cooldown": "1h",
        },
        promotion={"mode": "none"},
    )
    async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
        url = await start_serving(kube, artifacts)
        await kube.create("driftpolicies", policy_spec)
        await wait_baseline(kube, "iris-concept")

        # Undrifted traffic and correct labels: the live accuracy is near the holdout's 0.97.
        await send_rows(url, "iris", rows[:300])
        await send_feedback(url, "iris", rows[:300], labels[:300], "target")
        healthy = await kube.wait_for(
            "driftpolicies",
            "iris-concept",
            lambda p: (condition(p, "PerformanceDegraded") or {}).get("reason") == "MetricHealthy",
            timeout=30,
        )
        performance = status_of(healthy)["performance"]
        assert performance["metric"] == "accuracy"
        assert performance["baseline"] == pytest.approx(0.9736842105263158)
        assert performance["value"] > 0.9
        assert performance["samples"] >= 100
        assert (condition(healthy, "DriftDetected") or {}).get("status") != "True"
        assert await retraining_jobs(kube, "iris-concept") == []

        # The same kind of inputs, but the world changed: the labels flip.
        for start in (300, 0):
            await send_rows(url, "iris", rows[start : start + 300])
            chunk = slice(start, start + 300)
            await send_feedback(url, "iris", rows[chunk], flipped[chunk], "target")
            await asyncio.sleep(10)  # one interval
        policy = await kube.wait_for(
            "driftpolicies",
            "iris-concept",
            lambda p: (status_of(p).get("lastRetraining") or {}).get("job") is not None,
            timeout=40,
        )
        (job,) = await retraining_jobs(kube, "iris-concept")
        assert policy["status"]["lastRetraining"]["reason"] == "PerformanceDegraded"
        assert job["metadata"]["annotations"][REASON] == "PerformanceDegraded"
        assert (condition(policy, "DriftDetected") or {}).get("status") != "True"
        assert condition(policy, "PerformanceDegraded")["status"] == "True"
        assert status_of(policy)["performance"]["value"] < 0.2
        await wait_for_events(
            kube, "iris-concept", {"MetricHealthy", "MetricDegraded", "RetrainingStarted"}
        )

        # Still degraded for more evaluations: the Job (and the cooldown) hold the next one.
        await send_feedback(url, "iris", rows[:200], flipped[:200], "target")
        await asyncio.sleep(12)
        assert len(await retraining_jobs(kube, "iris-concept")) == 1
        assert created_by_operator(testbed, started, "jobs") == [job["metadata"]["name"]]


async def test_the_prometheus_source_judges_predictions_and_feedback(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts, tmp_path: Path
) -> None:
    rows, labels = labelled_rows(artifacts.root / "reference.csv")
    flipped = [(label + 1) % 3 for label in labels]
    async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
        url = await start_serving(kube, artifacts)
        target = url.removeprefix("http://")
        prometheus = start_prometheus([target], tmp_path, labels={"namespace": kube.namespace})
        try:
            fed = 'sum(modelops_feedback_rows_total{model="iris"})'
            before = await wait_for_scrape(prometheus.port, fed, at_least=0)
            await send_rows(url, "iris", rows[:300])
            await send_feedback(url, "iris", rows[:300], flipped[:300], "target")
            await wait_for_scrape(prometheus.port, fed, at_least=before + 300)
            policy = drift_policy(
                artifacts,
                name="iris-prom-signals",
                source={
                    "type": "prometheus",
                    "url": f"http://127.0.0.1:{prometheus.port}",
                    "window": "5m",
                },
                performance={"metric": "accuracy", "minSamples": 100, "maxDrop": 0.2},
                predictionDrift={},
                trigger={"consecutiveEvaluations": 1, "signals": ["Performance"]},
                retraining={"enabled": False},
            )
            await kube.create("driftpolicies", policy)
            judged = await kube.wait_for(
                "driftpolicies",
                "iris-prom-signals",
                lambda p: (condition(p, "PerformanceDegraded") or {}).get("status") == "True",
                timeout=30,
            )
            performance = status_of(judged)["performance"]
            assert performance["samples"] >= 100  # increase() extrapolates: not exactly 300
            assert performance["value"] < 0.2
            assert performance["baseline"] == pytest.approx(0.9736842105263158)
            predictions = status_of(judged)["predictionDrift"]
            assert predictions["samples"] >= 100
            assert set(predictions["scores"]) == {"psi", "js", "chi2"}
            assert condition(judged, "PredictionDrift")["reason"] in {
                "PredictionDriftFound",
                "NoPredictionDrift",
            }
            assert condition(judged, "Retraining")["reason"] == "RetrainingDisabled"
            assert await retraining_jobs(kube, "iris-prom-signals") == []
        finally:
            prometheus.stop()
