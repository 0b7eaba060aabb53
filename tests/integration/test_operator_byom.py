"""A user's own pipeline through the operator's whole loop on the real control plane.

A ColumnTransformer (scaled numbers, one-hot text) + HistGradientBoosting pipeline fitted on a
DataFrame, packaged with ``modelops.package``, served by a ModelDeployment's pod; traffic with
text columns drifts; the DriftPolicy's Job runs ``modelops train``, which refits a clone of the
user's pipeline on fresh data; the candidate beats the champion on the same holdout, is promoted,
and the rolled-out pod serves it, text columns and all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from operator_support import (
    LOOP_SETTINGS,
    job_finished,
    retraining_jobs,
    served_version,
    status_of,
    wait_baseline,
    wait_for_events,
    wait_for_pod_urls,
)

import modelops
from byom_support import BY_NAME, customers, v2_request
from kube_testbed.client import KubeClient
from kube_testbed.testbed import RunningOperator, Testbed
from modelops.artifacts import ModelMetadata
from modelops.serving.loader import load_model_dir

pytestmark = [pytest.mark.integration, pytest.mark.controlplane]
PIPELINE = BY_NAME["columntransformer-hgb"]


def model_deployment(uri: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "churn"},
        "spec": {"model": {"uri": uri, "version": "v1"}},
    }


def drift_policy(fresh_data: Path, output: Path) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "DriftPolicy",
        "metadata": {"name": "churn-drift"},
        "spec": {
            "modelDeploymentRef": {"name": "churn"},
            "interval": "10s",
            "minSamples": 100,
            "metrics": [{"type": "psi", "threshold": 0.2}],
            "trigger": {"minBreachedFeatures": 1, "consecutiveEvaluations": 1},
            "retraining": {
                "dataUri": f"file://{fresh_data}",
                "outputUri": f"file://{output}",
                "cooldown": "1h",
            },
            "promotion": {"mode": "auto", "metric": "accuracy", "minImprovement": 0.05},
        },
    }


async def infer(url: str, rows: pd.DataFrame, meta: ModelMetadata) -> dict[str, Any]:
    async with httpx.AsyncClient(headers={"Connection": "close"}, timeout=10) as client:
        response = await client.post(
            f"{url}/v2/models/churn/infer",
            json={
                **v2_request(rows, meta.features, meta.feature_dtypes),
                "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
            },
        )
        response.raise_for_status()
    return {o["name"]: o["data"] for o in response.json()["outputs"]}


async def test_a_packaged_pipeline_is_retrained_by_clone_and_promoted(
    testbed: Testbed, node: Any, kube: KubeClient, tmp_path: Path
) -> None:
    reference, holdout = customers(600, seed=1), customers(200, seed=2)
    champion = PIPELINE.fit(reference)
    meta = modelops.package(
        champion,
        reference[PIPELINE.columns],
        version="v1",
        output=tmp_path / "v1",
        holdout=(holdout[PIPELINE.columns], holdout["churn"]),
        name="churn",
        target="churn",
    )
    fresh = tmp_path / "fresh.csv"
    customers(800, seed=4, shift=1.0)[[*PIPELINE.columns, "churn"]].to_csv(fresh, index=False)
    candidates = tmp_path / "candidates"

    async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
        await kube.create("modeldeployments", model_deployment(f"file://{tmp_path / 'v1'}"))
        await kube.wait_for(
            "modeldeployments", "churn", lambda m: status_of(m).get("phase") == "Ready", timeout=90
        )
        (url,) = await wait_for_pod_urls(kube, "churn")
        await kube.create("driftpolicies", drift_policy(fresh, candidates))
        await wait_baseline(kube, "churn-drift")

        traffic = customers(300, seed=7, shift=1.0)
        for start in range(0, len(traffic), 50):
            await infer(url, traffic.iloc[start : start + 50], meta)

        promoted = await kube.wait_for(
            "driftpolicies",
            "churn-drift",
            lambda p: (status_of(p).get("lastRetraining") or {}).get("result") == "Promoted",
            timeout=150,
        )
        retraining = promoted["status"]["lastRetraining"]
        assert retraining["candidateVersion"] == "v1-r1"
        (job,) = await retraining_jobs(kube, "churn-drift")
        assert job_finished(await kube.get("jobs", job["metadata"]["name"]))
        # The shift turned the churn signal around: the clone refitted on fresh data is right
        # where the champion, judged on the same holdout, is wrong.
        assert retraining["metrics"]["accuracy"] > retraining["baseline"]["accuracy"] + 0.2

        candidate = load_model_dir(candidates / "v1-r1")
        assert type(candidate.estimator) is type(champion)
        assert [name for name, _ in candidate.estimator.steps] == ["prep", "model"]
        assert candidate.estimator.get_params()["model__max_iter"] == 60
        assert candidate.metadata.features == meta.features
        assert candidate.metadata.feature_dtypes == meta.feature_dtypes  # text stays text

        await kube.wait_for(
            "driftpolicies",
            "churn-drift",
            lambda p: (status_of(p).get("lastRetraining") or {}).get("reason") == "RolloutComplete",
            timeout=60,
        )
        (new_url,) = await wait_for_pod_urls(kube, "churn")
        assert await served_version(new_url, "churn") == "v1-r1"
        probe = customers(30, seed=8, shift=1.0)
        served = await infer(new_url, probe, meta)
        x = PIPELINE.features(probe)
        np.testing.assert_array_equal(served["predict"], candidate.estimator.predict(x))
        np.testing.assert_allclose(
            np.asarray(served["predict_proba"]).reshape(-1, 2),
            candidate.estimator.predict_proba(x),
            rtol=1e-9,
        )
        await wait_for_events(
            kube, "churn-drift", {"DriftFound", "RetrainingStarted", "CandidatePromoted"}
        )
