"""Reads from what the watches delivered: a resync and an evaluation without GET or LIST."""

from __future__ import annotations

from typing import Any

import pytest
from fake_kube import FakeKube

from modelops.controller import modeldeployment
from modelops.controller.context import Context
from modelops.controller.kube import DEPLOYMENTS, MODEL_DEPLOYMENTS, SERVICES
from modelops.controller.metrics import OperatorMetrics
from modelops.controller.settings import OperatorSettings
from modelops.controller.watched import Key, Watched, lean

NS = "ml"
MODEL: dict[str, Any] = {
    "apiVersion": "modelops.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "iris", "namespace": NS, "uid": "uid-1", "generation": 1},
    "spec": {"model": {"uri": "pvc://models/iris/v1"}},
}


@pytest.fixture(autouse=True)
def no_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """Events go through Kopf's poster, which needs a running operator."""
    monkeypatch.setattr(modeldeployment, "post_event", lambda *_: None)


def index_of(*objects: dict[str, Any]) -> dict[Key, list[dict[str, Any]]]:
    """A Kopf index as ``handlers`` fills it: (namespace, name) -> the watched copies."""
    index: dict[Key, list[dict[str, Any]]] = {}
    for obj in objects:
        meta = obj["metadata"]
        index.setdefault((meta["namespace"], meta["name"]), []).append(lean(obj))
    return index


def reconciled() -> tuple[Context, FakeKube, dict[str, Any]]:
    """A ModelDeployment after its first reconcile: children created, status written."""
    kube = FakeKube()
    ctx = Context(kube=kube, settings=OperatorSettings(), metrics=OperatorMetrics())
    kube.put(MODEL_DEPLOYMENTS, MODEL)
    modeldeployment.reconcile(ctx, MODEL)
    body = kube.get(MODEL_DEPLOYMENTS, NS, "iris")
    assert body is not None
    return ctx, kube, body


def test_a_resync_that_changes_nothing_reads_the_watched_children() -> None:
    ctx, kube, body = reconciled()
    deployments = Watched(index_of(*kube.objects(DEPLOYMENTS, NS)))
    services = Watched(index_of(*kube.objects(SERVICES, NS)))
    requests, writes = kube.requests, len(kube.writes)
    modeldeployment.reconcile(ctx, body, deployments, services)
    assert kube.requests == requests  # no GET of the Deployment or the Service
    assert len(kube.writes) == writes


def test_without_watched_children_a_resync_reads_them_from_the_server() -> None:
    ctx, kube, body = reconciled()
    requests = kube.requests
    modeldeployment.reconcile(ctx, body, Watched({}), Watched({}))
    assert kube.requests == requests + 2
    assert kube.patches(DEPLOYMENTS) == kube.patches(SERVICES) == []


def test_a_watched_child_that_drifted_from_the_spec_is_patched() -> None:
    ctx, kube, body = reconciled()
    (deployment,) = kube.objects(DEPLOYMENTS, NS)
    deployment["metadata"]["annotations"]["modelops.dev/spec-hash"] = "edited"
    requests = kube.requests
    modeldeployment.reconcile(
        ctx, body, Watched(index_of(deployment)), Watched(index_of(*kube.objects(SERVICES, NS)))
    )
    assert len(kube.patches(DEPLOYMENTS)) == 1
    assert kube.requests == requests + 1  # the patch alone


def test_a_watched_copy_keeps_no_managed_fields() -> None:
    obj = {"metadata": {"name": "a", "namespace": NS, "managedFields": [{"manager": "x"}]}}
    assert lean(obj) == {"metadata": {"name": "a", "namespace": NS}}
    assert "managedFields" in obj["metadata"]  # the watched body itself is not changed


def test_every_object_under_a_key_and_none_when_absent() -> None:
    slices = Watched({(NS, "iris"): [{"n": 1}, {"n": 2}]})
    assert slices.all(NS, "iris") == [{"n": 1}, {"n": 2}]
    assert slices.get(NS, "iris") == {"n": 1}
    assert slices.all(NS, "other") == []
    assert slices.get(NS, "other") is None
