"""The whole loop on the real control plane with everything in S3: a model served from
``s3://``, drift, one retraining Job that reads ``s3://`` data and publishes to an ``s3://``
output, promotion and a rollout that serves the candidate from S3.

The ModelDeployment's ``storage`` block names the endpoint, region and a Secret with the keys;
the operator passes them to the serving pods and (the policy having no block of its own) to the
retraining Job, the keys by ``secretKeyRef``; it never reads the Secret (the ``kube`` fixture
fails the test on any 403 to the operator). The S3 server binds the
process kubelet's gateway address, which the pods reach.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from operator_support import (
    LOOP_SETTINGS,
    Artifacts,
    drift_policy,
    job_finished,
    job_pods,
    model_deployment,
    retraining_jobs,
    send_rows,
    served_version,
    status_of,
    terminated,
    wait_baseline,
    wait_evaluated,
    wait_for_pod_urls,
)

from kube_testbed.client import KubeClient
from kube_testbed.testbed import RunningOperator, Testbed
from modelops.storage.s3dirs import MARKER, upload_version
from s3_support import ACCESS_KEY, REGION, SECRET_KEY, S3Server, s3_problem

pytestmark = [pytest.mark.integration, pytest.mark.controlplane]

BUCKET = "models"
SECRET = "s3-credentials"


@pytest.fixture(scope="module")
def pod_s3(node: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 server on the kubelet's gateway address, which pods and tests both reach."""
    problem = s3_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the S3 server is required in CI: {problem}")
        pytest.skip(problem)
    server = S3Server(tmp_path_factory.mktemp("pod-s3"), host=node.host_address)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def upload_champion(s3: S3Server, directory: Path, uri: str) -> None:
    saved = dict(os.environ)
    os.environ.update(s3.env())
    try:
        upload_version(directory, uri)
    finally:
        os.environ.clear()
        os.environ.update(saved)


async def test_drift_retrain_promote_with_everything_in_s3(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts, pod_s3: S3Server
) -> None:
    champion = f"s3://{BUCKET}/{kube.namespace}/iris/v1"
    data = f"s3://{BUCKET}/{kube.namespace}/data/shifted.csv"
    output = f"s3://{BUCKET}/{kube.namespace}/candidates"
    pod_s3.put(data, artifacts.fresh_data.read_bytes())
    upload_champion(pod_s3, artifacts.model_dir, champion)
    await kube.create(
        "secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET},
            "stringData": {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY},
        },
    )
    deployment = model_deployment(artifacts)
    deployment["spec"]["model"]["uri"] = champion
    deployment["spec"]["storage"] = {
        "secretName": SECRET,
        "endpoint": pod_s3.endpoint,
        "region": REGION,
    }
    policy = drift_policy(artifacts)
    policy["spec"]["retraining"].update(dataUri=data, outputUri=output)

    async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
        await kube.create("modeldeployments", deployment)
        await kube.wait_for(
            "modeldeployments", "iris", lambda m: status_of(m).get("phase") == "Ready", timeout=90
        )
        (url,) = await wait_for_pod_urls(kube, "iris")
        await kube.create("driftpolicies", policy)
        await wait_baseline(kube, "iris-drift")

        await send_rows(url, "iris", artifacts.shifted[:300])
        first = await wait_evaluated(kube, "iris-drift", None)
        await send_rows(url, "iris", artifacts.shifted[300:600])
        await wait_evaluated(kube, "iris-drift", first["status"]["lastEvaluationTime"])
        await kube.wait_for(
            "driftpolicies",
            "iris-drift",
            lambda p: (status_of(p).get("lastRetraining") or {}).get("job"),
            timeout=30,
        )
        (job,) = await retraining_jobs(kube, "iris-drift")
        name = job["metadata"]["name"]
        complete = await kube.wait_for("jobs", name, job_finished, timeout=120)
        assert complete["status"]["succeeded"] == 1
        (pod,) = await job_pods(kube, name)
        end = terminated(pod)
        assert end["exitCode"] == 0, end
        message = json.loads(end["message"])
        candidate = f"{output}/v1-r1"
        assert (message["version"], message["uri"]) == ("v1-r1", candidate)
        prefix = f"{kube.namespace}/candidates/v1-r1/"
        assert f"{prefix}{MARKER}" in pod_s3.keys(BUCKET, prefix)
        trainer = job["spec"]["template"]["spec"]["containers"][0]
        secret_ref = {"name": SECRET, "key": "AWS_SECRET_ACCESS_KEY"}
        assert {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": secret_ref}} in (
            trainer["env"]
        )

        promoted = await kube.wait_for(
            "driftpolicies",
            "iris-drift",
            lambda p: (status_of(p).get("lastRetraining") or {}).get("reason") == "RolloutComplete",
            timeout=90,
        )
        assert promoted["status"]["lastRetraining"]["result"] == "Promoted"
        model = await kube.get("modeldeployments", "iris")
        assert model is not None
        assert model["spec"]["model"]["uri"] == candidate
        (new_url,) = await wait_for_pod_urls(kube, "iris")
        assert new_url != url
        assert await served_version(new_url, "iris") == "v1-r1"

        # Credentials never reach status or Events.
        events = await kube.list("events")
        written = json.dumps([promoted["status"], model["status"], events])
        assert SECRET_KEY not in written
