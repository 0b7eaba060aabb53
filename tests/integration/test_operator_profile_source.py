"""The operator gets the reference profile from the serving pods, as it must in a cluster.

In a cluster the operator does not mount the models' PersistentVolumeClaims, so for a
``pvc://`` model the only way to the profile is the server's ``/v2/models/<name>/profile``:
first against a bare model server (``fetch_profile`` itself, no Kubernetes), then on the real
control plane, where a DriftPolicy finds the pod through the EndpointSlice controller's slices
and the process kubelet serves the model from the claim.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from operator_support import (
    LOOP_SETTINGS,
    run,
    send_rows,
    start_model_server,
    status_of,
    wait_baseline,
    wait_evaluated,
    wait_for_pod_urls,
)

from kube_testbed.client import KubeClient, condition
from kube_testbed.testbed import RunningOperator, Testbed
from modelops.controller.settings import OperatorSettings
from modelops.controller.sources import Endpoint, fetch_profile
from modelops.drift import Profile, ProfileError

pytestmark = pytest.mark.integration


def test_a_pvc_model_profile_comes_from_the_serving_pod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The model lives where a pod would mount the claim, but the operator's PVC root is empty.
    model_dir = tmp_path / "pvc" / "models" / "iris" / "v1"
    run(["example", "model", "--dataset", "iris", "--output", str(model_dir)], tmp_path)
    monkeypatch.setenv("MODELOPS_PVC_ROOT", str(tmp_path / "operator-sees-no-claims"))
    stored = Profile.from_json((model_dir / "profile.json").read_bytes())
    server = start_model_server(model_dir.as_uri(), "iris", tmp_path / "server.log")
    try:
        pods = [
            Endpoint("gone-0", "127.0.0.1", 1),  # a pod that went away is skipped
            Endpoint("server-0", "127.0.0.1", server.port),
        ]
        assert fetch_profile("pvc://models/iris/v1", "iris", pods, timeout=5.0) == stored
    finally:
        server.stop()

    with pytest.raises(ProfileError, match="not mounted in the operator"):
        fetch_profile("pvc://models/iris/v1", "iris", [], timeout=1.0)


@pytest.mark.controlplane
async def test_a_policy_on_a_pvc_model_reads_the_profile_from_the_serving_pod(
    testbed: Testbed,
    node: Any,
    kube: KubeClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The claim's directory is where the process kubelet mounts it for the pod; the operator
    # (this process) is told its claims live in an empty directory, as in a cluster.
    claim = f"models-{kube.namespace}"
    model_dir = testbed.pvc_root / claim / "iris" / "v1"
    run(["example", "model", "--dataset", "iris", "--output", str(model_dir)], tmp_path)
    monkeypatch.setenv("MODELOPS_PVC_ROOT", str(tmp_path / "operator-sees-no-claims"))
    stored = Profile.from_json((model_dir / "profile.json").read_bytes())
    reference = tmp_path / "reference.csv"
    run(["example", "data", "--dataset", "iris", "--rows", "200", "--seed", "3",
         "--output", str(reference)], tmp_path)  # fmt: skip
    rows = [[float(x) for x in line.split(",")[:-1]] for line in reference.read_text().split()[1:]]
    settings = OperatorSettings(**{**LOOP_SETTINGS.model_dump(), "pvc_root": str(testbed.pvc_root)})
    await kube.create(
        "persistentvolumeclaims",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim},
            "spec": {
                "accessModes": ["ReadOnlyMany"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    async with RunningOperator(settings, [kube.namespace]):
        await kube.create(
            "modeldeployments",
            {
                "apiVersion": "modelops.dev/v1alpha1",
                "kind": "ModelDeployment",
                "metadata": {"name": "iris"},
                "spec": {"model": {"uri": f"pvc://{claim}/iris/v1", "version": "v1"}},
            },
        )
        await kube.wait_for(
            "modeldeployments", "iris", lambda m: status_of(m).get("phase") == "Ready", timeout=90
        )
        (url,) = await wait_for_pod_urls(kube, "iris")
        await kube.create(
            "driftpolicies",
            {
                "apiVersion": "modelops.dev/v1alpha1",
                "kind": "DriftPolicy",
                "metadata": {"name": "iris-drift"},
                "spec": {
                    "modelDeploymentRef": {"name": "iris"},
                    "interval": "10s",
                    "minSamples": 100,
                    "retraining": {"enabled": False},
                },
            },
        )
        await wait_baseline(kube, "iris-drift")
        await send_rows(url, "iris", rows)
        judged = await wait_evaluated(kube, "iris-drift", None)
        source = condition(judged, "SourceReady")
        message = "Read 1 serving pod(s) through the counts endpoint."
        assert (source["status"], source["message"]) == ("True", message), source
        assert status_of(judged)["samples"] == len(rows)
        assert [f["name"] for f in status_of(judged)["features"]] == [
            f.name for f in stored.features
        ]
        # Judged against the pod's profile (the operator had no other), not left Unknown.
        assert condition(judged, "DriftDetected")["reason"] in ("NoDrift", "DriftFound")
