"""Shared fixtures for every test tier.

``testbed`` is the real control plane (etcd, kube-apiserver, kube-controller-manager built by
``make k8s-bin``), shared by the session; ``node`` is its process kubelet; ``kube`` is a fresh
namespace of it per test, with an admin client, that fails the test when the operator got any
403 there. ``s3`` is a real S3 server (SeaweedFS, built by ``make s3-bin``), shared by the session.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from kube_testbed.client import KubeClient
from kube_testbed.controlplane import binaries_dir, missing_binaries
from kube_testbed.testbed import Testbed
from s3_support import S3Server, s3_problem


def pytest_configure(config: pytest.Config) -> None:
    """The kubectl that `make k8s-bin` built with the control plane comes first on the PATH
    (the same release as the API server; the machine's own kubectl otherwise)."""
    if (binaries_dir() / "kubectl").exists():
        os.environ["PATH"] = f"{binaries_dir()}{os.pathsep}{os.environ.get('PATH', '')}"


def testbed_problem() -> str | None:
    """Why the real control plane cannot run here, or None."""
    missing = missing_binaries()
    if missing:
        return f"{', '.join(missing)} not built: run `make k8s-bin` (once; ~7-10 min)"
    if os.geteuid() != 0:
        return "the process kubelet needs root for network namespaces (ip netns)"
    if shutil.which("ip") is None or shutil.which("kubectl") is None:
        return "the testbed needs `ip` (iproute2) and `kubectl` on the PATH"
    return None


@pytest.fixture(scope="session")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """The real control plane with the project's CRDs and RBAC installed, and a kubelet."""
    problem = testbed_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the real control plane is required in CI: {problem}")
        pytest.skip(problem)
    bed = Testbed(tmp_path_factory.mktemp("testbed"))
    bed.start()
    try:
        yield bed
    finally:
        bed.stop()


@pytest.fixture(scope="session")
def node(testbed: Testbed) -> Any:
    """The process kubelet: pods of every namespace run as local processes."""
    return testbed.start_kubelet()


@pytest.fixture
async def kube(testbed: Testbed) -> AsyncIterator[KubeClient]:
    """An admin client of a fresh namespace; the operator's clients use its ServiceAccount."""
    namespace = testbed.create_namespace()
    testbed.point_operator_at_cluster()
    client = testbed.client(namespace)
    since = time.time()
    try:
        yield client
    finally:
        await client.close()
        forbidden = testbed.forbidden_to_operator(since)
        testbed.delete_namespace(namespace)
    assert not forbidden, f"the operator was refused by RBAC: {forbidden}"


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 server on 127.0.0.1 with one identity (tests/s3_support.py); buckets are made
    by ``s3.create_bucket`` or ``s3.put``."""
    problem = s3_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the S3 server is required in CI: {problem}")
        pytest.skip(problem)
    server = S3Server(tmp_path_factory.mktemp("s3"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
