"""Pools: the API client keeps one connection per Kopf handler thread (no "Connection pool is
full"); serving pods are read on one thread pool kept for the operator's run."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
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


def test_pods_are_read_on_the_shared_pool_when_there_is_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
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
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="shared") as pool:
        world.ctx.scrape_pool = pool
        world.policy()
        world.tick()
    assert world.condition_state("SourceReady") == ("True", "SourceReachable")
    assert names  # the first tick reads the counters of both pods
    assert all(name.startswith("shared") for name in names), names


def test_the_startup_keeps_a_scrape_pool_and_the_cleanup_stops_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Closable:
        def close(self) -> None:
            pass

    monkeypatch.setattr(handlers.Kube, "connect", classmethod(lambda cls, **_: Closable()))
    registry = kopf.OperatorRegistry()
    config = OperatorSettings(metrics_port=0, health_port=0, scrape_concurrency=4)
    handlers.register(registry, config)
    functions = {h.fn.__name__: h.fn for h in registry._activities.get_all_handlers()}
    memo = kopf.Memo()
    functions["configure"](
        settings=kopf.OperatorSettings(), memo=memo, logger=logging.getLogger("test")
    )
    pool = memo.ctx.scrape_pool
    assert isinstance(pool, ThreadPoolExecutor)
    assert pool._max_workers == handlers.HANDLER_THREADS * 4
    asyncio.run(functions["close"](memo=memo))
    with pytest.raises(RuntimeError):
        pool.submit(print)
