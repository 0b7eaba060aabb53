"""A ModelDeployment's status from its spec and its Deployment; settings from the environment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from modelops.api import ModelDeploymentSpec, ModelDeploymentStatus, find_condition
from modelops.controller.modeldeployment import (
    compute_status,
    invalid_status,
    manifest_hash,
    needs_update,
    update_patch,
    with_hash,
)
from modelops.controller.settings import OperatorSettings, SettingsError
from modelops.resources import BuildDefaults, Owner, build_deployment

NOW = datetime(2026, 1, 1, tzinfo=UTC)
OWNER = Owner("modelops.dev/v1alpha1", "ModelDeployment", "iris", "ml", "uid-1")
SPEC = ModelDeploymentSpec.model_validate(
    {"model": {"uri": "pvc://m/iris/v1", "version": "v1"}, "replicas": 2}
)


def deployment(generation: int = 1, **status: Any) -> dict[str, Any]:
    return {"metadata": {"generation": generation}, "status": status}


def status_for(dep: dict[str, Any] | None, previous: ModelDeploymentStatus | None = None) -> Any:
    return compute_status("iris", "ml", 1, SPEC, dep, previous or ModelDeploymentStatus(), NOW)


def reason(status: ModelDeploymentStatus, type_: str) -> tuple[str, str]:
    found = find_condition(status.conditions, type_)
    assert found is not None
    return found.status, found.reason


def test_rollout_phases() -> None:
    assert status_for(None).phase == "Pending"
    rolling = status_for(deployment(observedGeneration=1, replicas=2, updatedReplicas=1))
    assert rolling.phase == "Progressing"
    assert reason(rolling, "Ready") == ("False", "MinimumReplicasUnavailable")
    assert reason(rolling, "Progressing") == ("True", "RolloutInProgress")
    ready = status_for(
        deployment(
            observedGeneration=1,
            replicas=2,
            updatedReplicas=2,
            readyReplicas=2,
            availableReplicas=2,
        )
    )
    assert ready.phase == "Ready"
    assert ready.ready_replicas == 2
    assert reason(ready, "Ready") == ("True", "MinimumReplicasAvailable")
    assert reason(ready, "Degraded") == ("False", "RolloutComplete")
    stale = status_for(
        deployment(
            generation=2,
            observedGeneration=1,
            replicas=2,
            updatedReplicas=2,
            availableReplicas=2,
        )
    )
    assert stale.phase == "Progressing"


def test_progress_deadline_degrades() -> None:
    stuck = status_for(
        deployment(
            observedGeneration=1,
            conditions=[
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
            ],
        )
    )
    assert stuck.phase == "Degraded"
    assert reason(stuck, "Degraded") == ("True", "ProgressDeadlineExceeded")


def test_unchanged_inputs_give_an_identical_status() -> None:
    dep = deployment(observedGeneration=1, replicas=2, updatedReplicas=2, availableReplicas=2)
    first = status_for(dep)
    later = compute_status("iris", "ml", 1, SPEC, dep, first, datetime(2027, 1, 1, tzinfo=UTC))
    assert later == first  # so the reconcile writes nothing


def test_history_records_each_served_version_once() -> None:
    first = status_for(None)
    assert [(h.version, h.reason) for h in first.history] == [("v1", "Created")]
    newer = ModelDeploymentSpec.model_validate(
        {"model": {"uri": "pvc://m/iris/v2", "version": "v2"}}
    )
    second = compute_status("iris", "ml", 2, newer, None, first, NOW)
    assert [(h.version, h.reason) for h in second.history] == [("v1", "Created"), ("v2", "Updated")]


def test_invalid_status() -> None:
    status = invalid_status(3, "spec.model.uri: bad", ModelDeploymentStatus(), NOW)
    assert status.phase == "Failed"
    assert status.observed_generation == 3
    assert reason(status, "Ready") == ("False", "InvalidSpec")


def test_hash_decides_updates_and_patches_delete_dropped_keys() -> None:
    defaults = BuildDefaults()
    desired = with_hash(build_deployment(OWNER, SPEC, defaults))
    assert not needs_update(desired, desired, OWNER)
    other = with_hash(build_deployment(OWNER, SPEC.model_copy(update={"replicas": 5}), defaults))
    assert manifest_hash(other) != manifest_hash(desired)
    assert needs_update(desired, other, OWNER)
    patch = update_patch(desired)
    assert patch["spec"]["template"]["spec"]["nodeSelector"] is None
    assert patch["spec"]["template"]["spec"]["tolerations"] is None
    orphan = {**desired, "metadata": {**desired["metadata"], "ownerReferences": []}}
    assert needs_update(orphan, desired, OWNER)


def test_settings_from_environment() -> None:
    settings = OperatorSettings.from_env(
        {
            "MODELOPS_METRICS_PORT": "9100",
            "MODELOPS_IMAGE": "mine:1",
            "MODELOPS_DEFAULT_RESOURCES": '{"requests": {"cpu": "1"}}',
            "UNRELATED": "x",
        }
    )
    assert settings.metrics_port == 9100
    assert settings.build_defaults().image == "mine:1"
    assert settings.build_defaults().resources == {"requests": {"cpu": "1"}}
    with pytest.raises(SettingsError, match="MODELOPS_METRICS_PORT"):
        OperatorSettings.from_env({"MODELOPS_METRICS_PORT": "eighty"})
    with pytest.raises(SettingsError, match="MODELOPS_DEFAULT_RESOURCES"):
        OperatorSettings.from_env({"MODELOPS_DEFAULT_RESOURCES": "{"})


def test_gc_thresholds_from_environment() -> None:
    assert OperatorSettings().gc_thresholds == (10_000, 50, 10)
    given = OperatorSettings.from_env({"MODELOPS_GC_THRESHOLDS": "700, 10,10"})
    assert given.gc_thresholds == (700, 10, 10)
    with pytest.raises(
        SettingsError, match=r"^MODELOPS_GC_THRESHOLDS \(value 3\): Field required$"
    ):
        OperatorSettings.from_env({"MODELOPS_GC_THRESHOLDS": "700,10"})
    with pytest.raises(SettingsError, match=r"MODELOPS_GC_THRESHOLDS \(value 1\): .*greater"):
        OperatorSettings.from_env({"MODELOPS_GC_THRESHOLDS": "0,10,10"})  # 0 would stop the GC
    with pytest.raises(SettingsError, match=r"MODELOPS_GC_THRESHOLDS \(value 2\): .*integer"):
        OperatorSettings.from_env({"MODELOPS_GC_THRESHOLDS": "700,ten,10"})
