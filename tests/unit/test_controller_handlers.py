"""The operator's Kopf handlers and settings, called as Kopf calls them (no cluster)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf
import pytest

from modelops.api import ModelDeploymentStatus, find_condition
from modelops.controller import handlers, modeldeployment
from modelops.controller.context import Context
from modelops.controller.kube import KubeError
from modelops.controller.metrics import OperatorMetrics
from modelops.controller.settings import OperatorSettings
from modelops.controller.sources import Endpoint

CONFIG = OperatorSettings(metrics_port=0, health_port=0)
NOW = datetime(2026, 1, 2, tzinfo=UTC)
SERVING_DEPLOYMENTS = kopf.Resource("apps", "v1", "deployments", kind="Deployment")
OTHER_DEPLOYMENTS = kopf.Resource("apps", "v1", "statefulsets", kind="StatefulSet")
MODEL_DEPLOYMENTS = kopf.Resource("modelops.dev", "v1alpha1", "modeldeployments")


def handler(registry: kopf.OperatorRegistry, name: str) -> Any:
    """The function of one registered handler (Kopf keeps them by id)."""
    found = {
        h.fn
        for group in (
            registry._activities,
            registry._changing,
            registry._watching,
            registry._indexing,
        )
        for h in group.get_all_handlers()
        if h.fn.__name__ == name
    }
    assert len(found) == 1, name  # one function, however many causes it is registered for
    return found.pop()


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> kopf.OperatorSettings:
    """Kopf's settings after the operator's startup handler ran."""
    monkeypatch.setattr(handlers.Kube, "connect", classmethod(lambda cls, **_: object()))
    registry = kopf.OperatorRegistry()
    handlers.register(registry, CONFIG)
    settings = kopf.OperatorSettings()
    handler(registry, "configure")(
        settings=settings, memo=kopf.Memo(), logger=logging.getLogger("test")
    )
    return settings


def test_serving_deployments_are_selected_by_the_server(started: kopf.OperatorSettings) -> None:
    """Kopf's list and watch requests send what ``label_selectors`` collects for the resource
    as ``labelSelector`` (kopf/_cogs/clients/fetching.py and watching.py); a handler's
    ``labels=`` is only checked on the client, after every Deployment was received."""
    selectors = started.watching.label_selectors
    assert selectors.collect(SERVING_DEPLOYMENTS) == [
        "app.kubernetes.io/component=server,app.kubernetes.io/managed-by=modelops"
    ]
    assert selectors.collect(OTHER_DEPLOYMENTS) == []
    assert selectors.collect(MODEL_DEPLOYMENTS) == []


# --- Handler failures are visible ------------------------------------------------------------

FORBIDDEN = (
    "POST /apis/apps/v1/namespaces/ml/deployments: deployments.apps is forbidden: User "
    '"system:serviceaccount:modelops:modelops" cannot create resource "deployments"'
)
MODEL = {
    "apiVersion": "modelops.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "iris", "namespace": "ml", "uid": "uid-1", "generation": 1},
    "spec": {"model": {"uri": "pvc://models/iris/v1"}},
}


class RefusingKube:
    """Answers reads with 'not found', refuses to create anything, records status writes."""

    def __init__(self, *, status_fails: bool = False) -> None:
        self.statuses: list[dict[str, Any]] = []
        self.status_fails = status_fails

    def get(self, *_: Any) -> None:
        return None

    def create(self, *_: Any) -> dict[str, Any]:
        raise KubeError(403, FORBIDDEN)

    def patch_status(self, kind: Any, namespace: str, name: str, status: dict[str, Any]) -> Any:
        if self.status_fails:
            raise KubeError(0, "PATCH .../status failed: connection refused")
        self.statuses.append(status)
        return {}


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str, str]]:
    """Events the operator posts (kopf.event needs a running operator)."""
    posted: list[tuple[str, str, str, str]] = []

    def post(body: Any, type_: str, reason: str, message: str) -> None:
        posted.append((body["metadata"]["name"], type_, reason, message))

    monkeypatch.setattr(handlers, "post_event", post, raising=False)
    monkeypatch.setattr(modeldeployment, "post_event", post)
    return posted


#: The indexes Kopf passes to every handler, as before any watch delivered a child.
NO_CHILDREN_WATCHED: dict[str, Any] = {"server_deployments": {}, "server_services": {}}


def memo_with(kube: Any) -> kopf.Memo:
    memo = kopf.Memo()
    memo.ctx = Context(kube=kube, settings=CONFIG, metrics=OperatorMetrics())
    return memo


def test_a_failed_reconcile_is_a_warning_event_and_a_condition_message(
    events: list[tuple[str, str, str, str]],
) -> None:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, CONFIG)
    reconcile = handler(registry, "reconcile_model")
    kube = RefusingKube()
    with pytest.raises(kopf.TemporaryError) as raised:
        reconcile(body=kopf.Body(MODEL), memo=memo_with(kube), **NO_CHILDREN_WATCHED)
    assert raised.value.delay == handlers.RETRY_DELAY
    assert len(events) == 1
    name, type_, reason, message = events[0]
    assert (name, type_) == ("iris", "Warning")
    assert reason == "APIError"
    assert "HTTP 403" in message
    assert "cannot create resource" in message
    conditions = {c["type"]: c for c in kube.statuses[-1]["conditions"]}
    for type_ in ("Ready", "Progressing"):
        assert conditions[type_]["status"] == "False"
        assert conditions[type_]["reason"] == "ReconcileFailed"
        assert "POST /apis/apps/v1/namespaces/ml/deployments" in conditions[type_]["message"]
        assert "forbidden" in conditions[type_]["message"]
    # The retry meets the same failure: no second Event, no second status write.
    with pytest.raises(kopf.TemporaryError):
        reconcile(
            body=kopf.Body({**MODEL, "status": kube.statuses[-1]}),
            memo=memo_with(kube),
            **NO_CHILDREN_WATCHED,
        )
    assert len(events) == 1
    assert len(kube.statuses) == 1


def test_a_failed_status_write_does_not_hide_the_first_error(
    events: list[tuple[str, str, str, str]],
) -> None:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, CONFIG)
    with pytest.raises(kopf.TemporaryError, match="forbidden"):
        handler(registry, "reconcile_model")(
            body=kopf.Body(MODEL),
            memo=memo_with(RefusingKube(status_fails=True)),
            **NO_CHILDREN_WATCHED,
        )
    assert [e[2] for e in events] == ["APIError"]


def test_ready_stays_true_while_the_previous_spec_is_served() -> None:
    previous = ModelDeploymentStatus.model_validate(
        {
            "phase": "Ready",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "MinimumReplicasAvailable",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        }
    )
    status = modeldeployment.failed_status(2, "Could not apply: HTTP 500", previous, NOW)
    assert status.phase == "Ready"
    ready = find_condition(status.conditions, "Ready")
    progressing = find_condition(status.conditions, "Progressing")
    assert ready is not None
    assert ready.status == "True"
    assert progressing is not None
    assert (progressing.status, progressing.reason) == ("False", "ReconcileFailed")
    assert progressing.message == "Could not apply: HTTP 500"


def test_failures_are_posted_once_until_the_handler_succeeds(
    events: list[tuple[str, str, str, str]],
) -> None:
    failures = handlers.FailureEvents()
    body = {"metadata": {"name": "drift", "uid": "uid-2"}}

    def fail() -> None:
        raise KubeError(500, "GET /api/v1/namespaces/ml/pods: etcdserver: request timed out")

    for _ in range(3):
        with pytest.raises(kopf.TemporaryError):
            handlers.guarded(failures, "Evaluation", body, fail)
    assert events == [
        (
            "drift",
            "Warning",
            "APIError",
            "Evaluation failed, retrying in 5 s: HTTP 500: GET /api/v1/namespaces/ml/pods: "
            "etcdserver: request timed out",
        )
    ]
    handlers.guarded(failures, "Evaluation", body, lambda: None)
    with pytest.raises(kopf.TemporaryError):
        handlers.guarded(failures, "Evaluation", body, fail)
    assert len(events) == 2


def test_unexpected_exceptions_are_posted_and_left_to_kopf(
    events: list[tuple[str, str, str, str]],
) -> None:
    body = {"metadata": {"name": "iris", "uid": "uid-1"}}

    def bug() -> None:
        raise ValueError("no such bin")

    with pytest.raises(ValueError, match="no such bin"):
        handlers.guarded(handlers.FailureEvents(), "Status update", body, bug, retried=False)
    assert events == [
        ("iris", "Warning", "HandlerFailed", "Status update failed: ValueError: no such bin")
    ]


def test_kopf_log_lines_are_not_posted(started: kopf.OperatorSettings) -> None:
    """Handler failures are posted by FailureEvents (type Warning, once per failure)."""
    assert started.posting.enabled
    assert not started.posting.loggers


def test_the_slice_index_keeps_the_ready_endpoints_by_service() -> None:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, CONFIG)
    index = handler(registry, "server_slices")
    ready = {"addresses": ["10.0.0.7"], "conditions": {"ready": True}}
    body = {
        "metadata": {
            "name": "iris-x7k2p",
            "namespace": "ml",
            "labels": {"kubernetes.io/service-name": "iris", **handlers.SERVER_LABELS},
            "managedFields": [{"manager": "kube-controller-manager"}],
        },
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": [
            {**ready, "targetRef": {"kind": "Pod", "name": "iris-0", "uid": "u0"}},
            {"addresses": ["10.0.0.8"], "conditions": {"ready": False}},
        ],
    }
    kept = index(body=kopf.Body(body), namespace="ml")
    assert kept == {("ml", "iris"): (Endpoint("iris-0/u0", "10.0.0.7", 8080),)}
    body["metadata"]["labels"].pop("kubernetes.io/service-name")
    assert index(body=kopf.Body(body), namespace="ml") is None
