"""The fairness gate through the operator's whole loop on the real control plane (issue #15).

A credit model (two numeric features; the applicants' ``group`` is in the data but never a
feature) is packaged and served by a ModelDeployment's pod. Shifted traffic drifts; the
DriftPolicy's Job runs the real ``modelops train`` with the gate's settings in its environment.
First the fresh data carries a historical bias (the label follows a proxy of the group): the
challenger is more accurate, but its demographic parity difference breaks the bound, so the
operator blocks it (``FairnessGateFailed``: condition, Warning Event, counter) and the champion
keeps serving. Then the policy points at unbiased data: the next challenger passes and is promoted.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from operator_support import (
    LOOP_SETTINGS,
    MODELOPS,
    free_port,
    job_pods,
    retraining_jobs,
    status_of,
    terminated,
    wait_baseline,
    wait_for_events,
    wait_for_pod_urls,
)
from sklearn.linear_model import LogisticRegression

import modelops
from byom_support import v2_request
from kube_testbed.client import KubeClient, condition
from kube_testbed.testbed import RunningOperator, Testbed
from modelops.artifacts import ModelMetadata
from modelops.controller.settings import OperatorSettings

pytestmark = [pytest.mark.integration, pytest.mark.controlplane]
FEATURES = ["x1", "x2"]
SHIFT = 1.5
GATE = {"sensitiveColumns": ["group"], "metric": "demographic_parity_difference", "max": 0.2}


def credit(
    rows: int, seed: int, *, shift: float = 0.0, biased: bool = False, concept: float = 1.0
) -> pd.DataFrame:
    """Applicants of groups a and b (seeded), x1 shifted by ``shift``. Unbiased: x1 and x2 do not
    depend on the group, nor does the label. Biased: x2 is a proxy of the group and the label
    follows it, as historical decisions that favoured group b would. ``concept`` is x2's weight
    in an unbiased label."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b"], size=rows)
    x1 = rng.normal(shift, 1.0, rows)
    if biased:
        x2 = np.where(group == "b", 1.0, -1.0) + rng.normal(0.0, 0.5, rows)
        score = x2 + 0.3 * (x1 - shift) + rng.normal(0.0, 0.3, rows)
    else:
        x2 = rng.normal(0.0, 1.0, rows)
        score = (x1 - shift) + concept * x2 + rng.normal(0.0, 0.5, rows)
    return pd.DataFrame({"x1": x1, "x2": x2, "group": group, "approved": (score > 0).astype(int)})


def model_deployment(uri: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "credit"},
        "spec": {"model": {"uri": uri, "version": "v1"}},
    }


def drift_policy(data: Path, output: Path) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "DriftPolicy",
        "metadata": {"name": "credit-drift"},
        "spec": {
            "modelDeploymentRef": {"name": "credit"},
            "interval": "10s",
            "minSamples": 100,
            "metrics": [{"type": "psi", "threshold": 0.2}],
            "trigger": {"minBreachedFeatures": 1, "consecutiveEvaluations": 1},
            "retraining": {
                "dataUri": f"file://{data}",
                "outputUri": f"file://{output}",
                "cooldown": "0s",
            },
            "promotion": {
                "mode": "auto",
                "metric": "accuracy",
                "minImprovement": 0.0,
                "fairness": GATE,
            },
        },
    }


async def send_traffic(url: str, meta: ModelMetadata, rows: pd.DataFrame) -> None:
    async with httpx.AsyncClient(headers={"Connection": "close"}, timeout=10) as client:
        for start in range(0, len(rows), 100):
            chunk = rows.iloc[start : start + 100]
            response = await client.post(
                f"{url}/v2/models/credit/infer",
                json=v2_request(chunk, meta.features, meta.feature_dtypes),
            )
            response.raise_for_status()


def last_retraining(policy: dict[str, Any] | None) -> dict[str, Any]:
    found: dict[str, Any] = status_of(policy).get("lastRetraining") or {}
    return found


def operator_metric(port: int, line_start: str) -> float | None:
    """The value of the operator's /metrics sample whose line starts with ``line_start``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return None


async def trainer_result(kube: KubeClient, job: str) -> dict[str, Any]:
    """The result JSON the kubelet reported as the trainer container's termination message."""
    (pod,) = await job_pods(kube, job)
    end = terminated(pod)
    assert end["exitCode"] == 0, end
    result: dict[str, Any] = json.loads(end["message"])
    return result


async def test_a_biased_challenger_is_blocked_and_a_fair_one_promoted(
    testbed: Testbed, node: Any, kube: KubeClient, tmp_path: Path
) -> None:
    reference, holdout = credit(800, 1), credit(300, 2)
    champion = LogisticRegression().fit(reference[FEATURES], reference["approved"])
    meta = modelops.package(
        champion,
        reference[FEATURES],
        reference["approved"],
        version="v1",
        output=tmp_path / "v1",
        holdout=(holdout[FEATURES], holdout["approved"]),
        name="credit",
        target="approved",
    )
    biased, fair = tmp_path / "biased.csv", tmp_path / "fair.csv"
    credit(1000, 3, shift=SHIFT, biased=True).to_csv(biased, index=False)
    credit(1000, 4, shift=SHIFT, concept=-1.0).to_csv(fair, index=False)
    candidates = tmp_path / "candidates"
    traffic = credit(600, 5, shift=SHIFT)[FEATURES]  # drift in x1
    metrics_port = free_port()
    settings = OperatorSettings(
        **{**LOOP_SETTINGS.model_dump(), "metrics_host": "127.0.0.1", "metrics_port": metrics_port}
    )
    blocked_line = (
        f'modelops_promotions_blocked_total{{model="credit",namespace="{kube.namespace}",'
        'reason="FairnessGateFailed"}'
    )

    async with RunningOperator(settings, [kube.namespace]):
        await kube.create("modeldeployments", model_deployment(f"file://{tmp_path / 'v1'}"))
        await kube.wait_for(
            "modeldeployments", "credit", lambda m: status_of(m).get("phase") == "Ready", timeout=90
        )
        (url,) = await wait_for_pod_urls(kube, "credit")
        await kube.create("driftpolicies", drift_policy(biased, candidates))
        await wait_baseline(kube, "credit-drift")

        # Drift: the operator starts the Job, telling the trainer the gate and why it runs.
        await send_traffic(url, meta, traffic.iloc[:300])
        refused = await kube.wait_for(
            "driftpolicies",
            "credit-drift",
            lambda p: last_retraining(p).get("result") == "Rejected",
            timeout=150,
        )
        last = last_retraining(refused)
        (job,) = await retraining_jobs(kube, "credit-drift")
        assert last["job"] == job["metadata"]["name"]
        (container,) = job["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["MODELOPS_SENSITIVE_COLUMNS"] == "group"
        assert env["MODELOPS_FAIRNESS_METRIC"] == "demographic_parity_difference"
        assert env["MODELOPS_RETRAINING_REASON"] == "DriftDetected"

        # The trainer measured the challenger and the champion with fairlearn on its holdout.
        result = await trainer_result(kube, last["job"])
        measured = result["fairness"]["columns"]["group"]
        assert result["metrics"]["accuracy"] > result["baseline"]["accuracy"]  # better, yet...
        assert measured["challenger"] > GATE["max"]
        assert sorted(measured["groups"]) == ["a", "b"]

        # ... the gate refuses it, whatever its accuracy: status, condition, Event, counter.
        a, b = measured["groups"]
        message = (
            "Kept the current model: candidate v1-r1 fails the fairness gate on "
            f"demographic_parity_difference: group: {measured['challenger']:.4g} between groups "
            f"{a} and {b}, over max 0.2 (champion {measured['champion']:.4g})."
        )
        assert (last["candidateVersion"], last["reason"], last["message"]) == (
            "v1-r1",
            "FairnessGateFailed",
            message,
        )
        assert last["fairness"]["columns"]["group"] == measured
        pending = condition(refused, "PromotionPending")
        assert (pending["status"], pending["reason"], pending["message"]) == (
            "False",
            "FairnessGateFailed",
            message,
        )
        events = await wait_for_events(kube, "credit-drift", {"FairnessGateFailed"})
        gate_events = [e for e in events if e.get("reason") == "FairnessGateFailed"]
        assert [(e["type"], e["message"]) for e in gate_events] == [("Warning", message)]
        assert operator_metric(metrics_port, blocked_line) == 1.0
        model = await kube.get("modeldeployments", "credit")
        assert model is not None
        assert model["spec"]["model"]["version"] == "v1"

        # The candidate's card records what started it; the group was never a model input.
        card = json.loads((candidates / "v1-r1" / "card.json").read_text())
        assert card["retraining"] == {
            "reason": "DriftDetected",
            "policy": "credit-drift",
            "job": last["job"],  # from the pod's label, through the downward API
            "evaluationTime": last["startTime"],
        }
        written = json.loads((candidates / "v1-r1" / "metadata.json").read_text())
        assert written["features"] == FEATURES
        # `modelops card --status` appends the operator's decision, as kubectl would give it.
        status_file = tmp_path / "credit-drift.json"
        status_file.write_text(json.dumps(refused))
        shown = subprocess.run(
            [*MODELOPS, "card", str(candidates / "v1-r1"), "--status", str(status_file)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        decisions = shown[shown.index("## Decisions") :]
        assert "FairnessGateFailed" in decisions
        assert f"over max 0.2 (champion {measured['champion']:.4g})" in decisions

        # The policy is pointed at unbiased data; the next drift's challenger passes and wins.
        await kube.patch(
            "driftpolicies",
            "credit-drift",
            {"spec": {"retraining": {"dataUri": f"file://{fair}"}}},
        )
        await send_traffic(url, meta, traffic.iloc[300:])
        promoted = await kube.wait_for(
            "driftpolicies",
            "credit-drift",
            lambda p: (
                last_retraining(p).get("candidateVersion") == "v1-r2"
                and last_retraining(p).get("result") == "Promoted"
            ),
            timeout=150,
        )
        last = last_retraining(promoted)
        result = await trainer_result(kube, last["job"])
        value = result["fairness"]["columns"]["group"]["challenger"]
        assert value <= GATE["max"]
        assert last["message"].endswith(
            f"Fairness: demographic_parity_difference within max 0.2 (group {value:.4g})."
        )
        model = await kube.wait_for(
            "modeldeployments", "credit", lambda m: m["spec"]["model"].get("version") == "v1-r2"
        )
        assert model["spec"]["model"]["uri"] == f"file://{candidates}/v1-r2"
        assert operator_metric(metrics_port, blocked_line) == 1.0  # once per blocked candidate
        await wait_for_events(kube, "credit-drift", {"FairnessGateFailed", "CandidatePromoted"})
