"""The samples are valid for the types and for the generated CRDs, and tell one consistent story;
what the operator writes to status through the types is accepted by the CRDs' status schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from crd_support import ROOT, SAMPLES, crd_for, defaulted, load_yaml, rejections
from pydantic import BaseModel

from modelops.api import (
    DriftPolicy,
    DriftPolicyStatus,
    FeatureStatus,
    HistoryEntry,
    ModelDeployment,
    ModelDeploymentStatus,
    RetrainingStatus,
    reasons,
    set_condition,
)
from modelops.storage import parse_uri

SAMPLE_FILES = {
    "ModelDeployment": SAMPLES / "modelops.dev_v1alpha1_modeldeployment.yaml",
    "DriftPolicy": SAMPLES / "modelops.dev_v1alpha1_driftpolicy.yaml",
}
TYPES: dict[str, type[BaseModel]] = {"ModelDeployment": ModelDeployment, "DriftPolicy": DriftPolicy}
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("kind", list(SAMPLE_FILES))
def test_sample_is_valid_for_the_types(kind: str) -> None:
    TYPES[kind].model_validate(load_yaml(SAMPLE_FILES[kind]))


@pytest.mark.parametrize("kind", list(SAMPLE_FILES))
def test_sample_is_valid_for_the_generated_crd(kind: str) -> None:
    sample = load_yaml(SAMPLE_FILES[kind])
    assert sample["apiVersion"] == "modelops.dev/v1alpha1"
    assert sample["kind"] == kind
    assert rejections(crd_for(kind), sample) == []


@pytest.mark.parametrize("kind", list(SAMPLE_FILES))
def test_the_stored_sample_reads_back_the_same(kind: str) -> None:
    sample = load_yaml(SAMPLE_FILES[kind])
    stored = defaulted(crd_for(kind), sample)
    assert TYPES[kind].model_validate(stored) == TYPES[kind].model_validate(sample)


def test_the_samples_describe_the_iris_walkthrough() -> None:
    model = ModelDeployment.model_validate(load_yaml(SAMPLE_FILES["ModelDeployment"]))
    policy = DriftPolicy.model_validate(load_yaml(SAMPLE_FILES["DriftPolicy"]))
    assert model.spec.model.uri == "pvc://models/iris/v1"
    assert model.spec.model.format == "skops"
    assert policy.spec.model_deployment_ref.name == model.metadata.name == "iris"
    retraining = policy.spec.retraining
    assert retraining is not None
    assert retraining.enabled
    assert retraining.data_uri == "pvc://data/iris/fresh.csv"
    assert retraining.output_uri == "pvc://models/iris"
    assert parse_uri(model.spec.model.uri).path.startswith("iris/")
    assert (policy.spec.promotion.mode, policy.spec.promotion.metric) == ("auto", "accuracy")


def test_the_samples_use_the_claims_the_kind_walkthrough_creates() -> None:
    claims = {
        parse_uri(uri).claim
        for uri in (
            "pvc://models/iris/v1",
            load_yaml(SAMPLE_FILES["DriftPolicy"])["spec"]["retraining"]["dataUri"],
            load_yaml(SAMPLE_FILES["DriftPolicy"])["spec"]["retraining"]["outputUri"],
            load_yaml(SAMPLE_FILES["ModelDeployment"])["spec"]["model"]["uri"],
        )
    }
    assert claims == {"models", "data"}
    pvc_file = ROOT / "manifests" / "kind" / "pvc.yaml"
    if pvc_file.is_file():  # the deploy part's walkthrough: the claims must exist there
        created = {
            d["metadata"]["name"]
            for d in yaml.safe_load_all(pvc_file.read_text())
            if d and d.get("kind") == "PersistentVolumeClaim"
        }
        assert claims <= created


def test_the_samples_kustomization_lists_every_sample() -> None:
    kustomization = load_yaml(SAMPLES / "kustomization.yaml")
    files = {p.name for p in SAMPLES.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)
    assert set(files) == {p.name for p in SAMPLE_FILES.values()}


def resource_with_status(kind: str, status: BaseModel) -> dict[str, Any]:
    sample = load_yaml(SAMPLE_FILES[kind])
    sample["status"] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return sample


def test_a_model_deployment_status_written_through_the_types_is_accepted() -> None:
    conditions = set_condition(
        [], reasons.READY, "True", reasons.MINIMUM_REPLICAS_AVAILABLE, now=NOW
    )
    conditions = set_condition(
        conditions, reasons.PROGRESSING, "True", reasons.ROLLOUT_COMPLETE, "2/2 ready", now=NOW
    )
    status = ModelDeploymentStatus(
        observed_generation=2,
        phase="Ready",
        replicas=2,
        ready_replicas=2,
        selector="app.kubernetes.io/name=iris,modelops.dev/model=iris",
        model_uri="pvc://models/iris/v1",
        model_version="v1",
        url="http://iris.default.svc:8080/v2/models/iris",
        conditions=conditions,
        history=[
            HistoryEntry(version="v1", uri="pvc://models/iris/v1", time=NOW, reason="Created")
        ],
    )
    document = resource_with_status("ModelDeployment", status)
    assert rejections(crd_for("ModelDeployment"), document) == []
    assert ModelDeployment.model_validate(document).status == status


def test_a_drift_policy_status_written_through_the_types_is_accepted() -> None:
    conditions = set_condition([], reasons.DRIFT_DETECTED, "True", reasons.DRIFT_FOUND, now=NOW)
    conditions = set_condition(conditions, reasons.RETRAINING, "True", reasons.RETRAINING_STARTED)
    status = DriftPolicyStatus(
        observed_generation=1,
        last_evaluation_time=NOW,
        samples=1200,
        consecutive_breaches=2,
        drifted_features=1,
        features=[
            FeatureStatus(
                name="petal_length_cm",
                scores={"psi": 0.41, "ks": 0.3},
                breached=True,
                breached_metrics=["psi", "ks"],
            ),
            FeatureStatus(name="sepal_width_cm", scores={"psi": 0.01, "ks": 0.02}),
        ],
        conditions=conditions,
        last_trigger_time=NOW,
        last_retraining=RetrainingStatus(
            job="iris-drift-retrain-0123456789",
            candidate_version="v2",
            start_time=NOW,
            result="AwaitingApproval",
            reason=reasons.AWAITING_APPROVAL,
            uri="pvc://models/iris/v2",
            metrics={"accuracy": 0.97},
            baseline={"accuracy": 0.91},
        ),
    )
    document = resource_with_status("DriftPolicy", status)
    assert rejections(crd_for("DriftPolicy"), document) == []
    assert DriftPolicy.model_validate(document).status == status


def test_a_status_the_crd_refuses_is_reported() -> None:
    document = load_yaml(SAMPLE_FILES["ModelDeployment"])
    document["status"] = {"phase": "Exploded", "conditions": [{"type": "Ready"}]}
    found = {(r.path, r.message) for r in rejections(crd_for("ModelDeployment"), document)}
    assert (
        "status.phase",
        "'Exploded' is not one of ['Pending', 'Progressing', 'Ready', 'Degraded', 'Failed']",
    ) in found
    assert ("status.conditions[0]", "'status' is a required property") in found


def test_every_sample_file_parses_as_one_document() -> None:
    for path in SAMPLES.glob("*.yaml"):
        documents = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
        assert len(documents) == 1, path
