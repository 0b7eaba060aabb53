"""The retraining Job's governance environment (issue #15's contract): the fairness gate's settings,
what started the retraining, and the Job's name from the downward API; still restricted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import kubernetes_validate
from deploy_pss import hardening_violations, restricted_violations

from modelops.api.fairness import Fairness
from modelops.resources import BuildDefaults, Owner, TrainingRequest, build_job
from modelops.resources.governance import rfc3339

POLICY = Owner("modelops.dev/v1alpha1", "DriftPolicy", "credit-drift", "ml", "uid-dp-7")
DEFAULTS = BuildDefaults(image="registry.example/modelops:1", pvc_root="/mnt/modelops")
EVALUATED = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
JOB_NAME_FROM_LABEL = {
    "name": "MODELOPS_JOB_NAME",
    "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}},
}


def request(**overrides: Any) -> TrainingRequest:
    base: dict[str, Any] = {
        "model_deployment": "credit",
        "candidate_version": "v1-r1",
        "base_model_uri": "pvc://models/credit/v1",
        "data_uri": "pvc://data/credit.csv",
        "output_uri": "pvc://models/credit",
    }
    return TrainingRequest(**{**base, **overrides})


def trainer_env(job: dict[str, Any]) -> list[dict[str, Any]]:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env: list[dict[str, Any]] = container["env"]
    return env


def gate(**fields: Any) -> Fairness:
    return Fairness.model_validate(
        {
            "sensitiveColumns": ["sex", "age_band"],
            "metric": "demographic_parity_ratio",
            "min": 0.8,
            **fields,
        }
    )


def test_the_gate_and_the_reason_reach_the_trainer() -> None:
    job = build_job(
        POLICY,
        request(
            fairness=gate(intersection=True, minGroupRows=50, allowSensitiveFeatures=True),
            reason="DriftDetected",
            evaluation_time=EVALUATED,
        ),
        DEFAULTS,
    )
    kubernetes_validate.validate(job, "1.30.0", strict=True)
    assert trainer_env(job) == [
        {"name": "MODELOPS_PVC_ROOT", "value": "/mnt/modelops"},
        {"name": "MODELOPS_SENSITIVE_COLUMNS", "value": "sex,age_band"},
        {"name": "MODELOPS_FAIRNESS_METRIC", "value": "demographic_parity_ratio"},
        {"name": "MODELOPS_FAIRNESS_INTERSECTION", "value": "true"},
        {"name": "MODELOPS_FAIRNESS_MIN_GROUP_ROWS", "value": "50"},
        {"name": "MODELOPS_ALLOW_SENSITIVE_FEATURES", "value": "true"},
        {"name": "MODELOPS_POLICY", "value": "credit-drift"},
        {"name": "MODELOPS_RETRAINING_REASON", "value": "DriftDetected"},
        {"name": "MODELOPS_EVALUATION_TIME", "value": "2030-01-02T03:04:05Z"},
        JOB_NAME_FROM_LABEL,
    ]


def test_the_defaults_of_the_gate_are_spelled_out() -> None:
    job = build_job(POLICY, request(fairness=gate()), DEFAULTS)
    env = {e["name"]: e.get("value") for e in trainer_env(job)}
    assert env["MODELOPS_FAIRNESS_INTERSECTION"] == "false"
    assert env["MODELOPS_FAIRNESS_MIN_GROUP_ROWS"] == "30"
    assert env["MODELOPS_ALLOW_SENSITIVE_FEATURES"] == "false"


def test_without_a_gate_nor_a_reason_only_the_policy_and_the_job_name() -> None:
    assert trainer_env(build_job(POLICY, request(), DEFAULTS)) == [
        {"name": "MODELOPS_PVC_ROOT", "value": "/mnt/modelops"},
        {"name": "MODELOPS_POLICY", "value": "credit-drift"},
        JOB_NAME_FROM_LABEL,
    ]


def test_a_job_template_cannot_override_the_governance_variables() -> None:
    given = [
        {"name": "MODELOPS_SENSITIVE_COLUMNS", "value": "nothing"},
        {"name": "MODELOPS_JOB_NAME", "value": "forged"},
        {"name": "TEAM", "value": "risk"},
    ]
    template = {"template": {"spec": {"containers": [{"name": "trainer", "env": given}]}}}
    env = trainer_env(build_job(POLICY, request(fairness=gate(), job_template=template), DEFAULTS))
    names = [e["name"] for e in env]
    assert len(names) == len(set(names))
    by_name = {e["name"]: e for e in env}
    assert by_name["MODELOPS_SENSITIVE_COLUMNS"]["value"] == "sex,age_band"
    assert by_name["MODELOPS_JOB_NAME"] == JOB_NAME_FROM_LABEL
    assert by_name["TEAM"]["value"] == "risk"


def test_the_job_with_the_governance_environment_is_restricted() -> None:
    job = build_job(
        POLICY,
        request(fairness=gate(), reason="Scheduled", evaluation_time=EVALUATED),
        DEFAULTS,
    )
    pod = job["spec"]["template"]["spec"]
    assert restricted_violations(pod) == []
    assert hardening_violations(pod) == []


def test_times_are_rfc3339_in_utc() -> None:
    assert rfc3339(EVALUATED) == "2030-01-02T03:04:05Z"
    assert rfc3339(datetime(2030, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))) == (
        "2030-01-02T03:04:05Z"
    )
    assert rfc3339(datetime(2030, 1, 2, 3, 4, 5)) == "2030-01-02T03:04:05Z"  # naive: UTC
