"""Pools: the API client keeps one connection per Kopf handler thread (no "Connection pool is
full"); serving pods are read by the ticking thread itself, on no pool."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import kopf
import pytest
from test_controller_cli import KUBECONFIG

from modelops.controller import handlers
from modelops.controller.kube import Kube
from modelops.controller.settings import OperatorSettings


def test_the_client_pool_has_the_size_asked_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)  # its server listens nowhere: no request is made
    monkeypatch.setenv("KUBECONFIG", str(config))
    kube = Kube.connect(pool_size=7)
    try:
        assert kube._api.rest_client.pool_manager.connection_pool_kw["maxsize"] == 7
    finally:
        kube.close()


def test_the_operator_sizes_the_pool_to_kopf_s_handler_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[dict[str, Any]] = []

    def connect(cls: type[Kube], **kwargs: Any) -> object:
        asked.append(kwargs)
        return object()

    monkeypatch.setattr(handlers.Kube, "connect", classmethod(connect))
    registry = kopf.OperatorRegistry()
    config = OperatorSettings(metrics_port=0, health_port=0)
    handlers.register(registry, config)
    [startup] = [
        h.fn for h in registry._activities.get_all_handlers() if h.fn.__name__ == "configure"
    ]
    settings = kopf.OperatorSettings()
    startup(settings=settings, memo=kopf.Memo(), logger=logging.getLogger("test"))
    threads = settings.execution.max_workers
    assert threads == handlers.HANDLER_THREADS == 32
    assert asked == [{"timeout": config.api_timeout_seconds, "pool_size": threads}]


def test_pods_are_read_in_the_ticking_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pool hands the pods' requests to other threads (see ``multiget``)."""
    from test_controller_driftpolicy_decisions import World

    world = World(monkeypatch)
    world.model_deployment()
    world.pods.start()
    world.pods.start()
    names: set[str] = set()
    answer = world.pods.answer

    def recorded(address: str, path: str) -> bytes:
        names.add(threading.current_thread().name)
        return answer(address, path)

    world.pods.answer = recorded  # type: ignore[method-assign]
    ticking = threading.Thread(target=lambda: (world.policy(), world.tick()), name="ticking")
    ticking.start()
    ticking.join()
    assert world.condition_state("SourceReady") == ("True", "SourceReachable")
    assert names == {"ticking"}  # the first tick reads the counters of both pods
