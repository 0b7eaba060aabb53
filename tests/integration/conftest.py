"""Fixtures of the operator's integration tests: the KMock emulator, an API client, the iris
artifacts and a real model server (one per test module; each test's KMock starts empty)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from kmock_emulator import KubeClient, RealisticKubernetes, declare_resources, point_clients_at
from operator_support import NS, Artifacts, Process, make_artifacts, start_model_server


@pytest.fixture
def kmock_options() -> dict[str, Any]:
    """Select the emulator that behaves like a real API server (see kmock_emulator)."""
    return {"cls": RealisticKubernetes}


@pytest.fixture
async def api(kmock: Any, tmp_path: Path) -> AsyncIterator[KubeClient]:
    """A client of the emulator, with our resources declared and clients pointed at it."""
    declare_resources(kmock)
    kmock.namespaces.add(NS)
    point_clients_at(str(kmock.url), tmp_path)
    client = KubeClient(str(kmock.url), NS)
    yield client
    await client.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    """An iris model v1 with reference, shifted and fresh data."""
    return make_artifacts(tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="module")
def server(artifacts: Artifacts) -> Iterator[Process]:
    """A real ``modelops serve`` of the iris model on 127.0.0.1."""
    process = start_model_server(artifacts.model_uri, "iris", artifacts.root / "server.log")
    try:
        yield process
    finally:
        process.stop()
