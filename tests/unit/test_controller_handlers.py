"""The operator's Kopf handlers and settings, called as Kopf calls them (no cluster)."""

from __future__ import annotations

import logging
from typing import Any

import kopf
import pytest

from modelops.controller import handlers
from modelops.controller.settings import OperatorSettings

CONFIG = OperatorSettings(metrics_port=0, health_port=0)
SERVING_DEPLOYMENTS = kopf.Resource("apps", "v1", "deployments", kind="Deployment")
OTHER_DEPLOYMENTS = kopf.Resource("apps", "v1", "statefulsets", kind="StatefulSet")
MODEL_DEPLOYMENTS = kopf.Resource("modelops.dev", "v1alpha1", "modeldeployments")


def handler(registry: kopf.OperatorRegistry, name: str) -> Any:
    """The function of one registered handler (Kopf keeps them by id)."""
    found = [
        h.fn
        for group in (registry._activities, registry._changing, registry._watching)
        for h in group.get_all_handlers()
        if h.fn.__name__ == name
    ]
    assert len(found) == 1, name
    return found[0]


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
