"""The lean diff-base storage builds exactly Kopf's essence, from less copying."""

from __future__ import annotations

import copy
from typing import Any

import kopf
import pytest

from modelops import API_GROUP
from modelops.controller.diffbase import LeanDiffBaseStorage, lean_body

KEY = "last-handled-configuration"


def policy_body() -> dict[str, Any]:
    """A DriftPolicy as the watch delivers it: status, managedFields, foreign annotations."""
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "DriftPolicy",
        "metadata": {
            "name": "churn",
            "namespace": "ml",
            "uid": "0b7c",
            "generation": 3,
            "resourceVersion": "4711",
            "labels": {"team": "growth"},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                f"{API_GROUP}/{KEY}": '{"spec":{"interval":"5m"}}\n',
                "owner": "ml-platform",
            },
            "finalizers": ["modelops.dev/finalizer"],
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {"modelRef": "churn", "interval": "5m", "features": ["age", "income"]},
        "status": {"phase": "Healthy", "features": [{"name": "age", "psi": 0.01}]},
    }


def kopf_storage() -> kopf.AnnotationsDiffBaseStorage:
    return kopf.AnnotationsDiffBaseStorage(prefix=API_GROUP, key=KEY)


def lean_storage() -> LeanDiffBaseStorage:
    return LeanDiffBaseStorage(prefix=API_GROUP, key=KEY)


@pytest.mark.parametrize(
    "extra_fields",
    [None, [], ["status.features"], ["metadata.generation"], ["status"]],
)
def test_the_essence_is_kopfs_own(extra_fields: list[str] | None) -> None:
    body = kopf.Body(policy_body())
    assert lean_storage().build(body=body, extra_fields=extra_fields) == kopf_storage().build(
        body=body, extra_fields=extra_fields
    )


def test_a_body_without_metadata_or_labels_builds_the_same_essence() -> None:
    raw = policy_body()
    del raw["metadata"]["labels"], raw["metadata"]["annotations"]
    for body in (kopf.Body(raw), kopf.Body({"spec": {"modelRef": "churn"}})):
        assert lean_storage().build(body=body) == kopf_storage().build(body=body)


def test_the_essence_shares_nothing_with_the_body() -> None:
    raw = policy_body()
    pristine = copy.deepcopy(raw)
    essence: dict[str, Any] = dict(lean_storage().build(body=kopf.Body(raw)))
    essence["spec"]["features"].append("tenure")
    essence["metadata"]["labels"]["team"] = "risk"
    assert raw == pristine


def test_the_lean_body_drops_status_and_unkept_metadata() -> None:
    lean = lean_body(policy_body())
    assert "status" not in lean
    assert set(lean["metadata"]) == {"name", "namespace", "uid", "labels", "annotations"}
    assert lean["spec"] == policy_body()["spec"]


def test_a_stored_essence_is_found_again_and_compares_equal() -> None:
    storage = lean_storage()
    body = kopf.Body(policy_body())
    essence = storage.build(body=body)
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=essence)
    raw = policy_body()
    raw["metadata"]["annotations"].update(patch["metadata"]["annotations"])
    raw["status"]["phase"] = "Drifted"  # a status patch is no change to handle
    updated = kopf.Body(raw)
    assert storage.fetch(body=updated) == storage.build(body=updated)
