"""Helpers of the e2e tier: kubectl, the way to the model's Service and the operator's metrics,
polling.

The tier runs on two kinds of cluster with the same test code:
- kind (`make kind-up`, then `make e2e`): the current kubectl context; Services and the
  operator's pod are reached through `kubectl port-forward`, as a user would;
- the real control plane of the integration tier with its process kubelet (CI): the same
  install steps, the operator as a process with its ServiceAccount's token, and Services reached
  at their ready endpoints (the process kubelet serves no port-forward and runs no kube-proxy).
Everything else talks to the cluster through `kubectl`, exactly as a user would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest

HOW_TO_RUN = (
    "e2e tests need a real cluster: `make kind-up` (Docker, kind, kubectl and helm), then "
    "`make e2e` (sets MODELOPS_E2E=1 and runs against the current kubectl context)"
)
T = TypeVar("T")


@dataclass(frozen=True)
class Cluster:
    """Where the e2e tier runs: the samples' namespace and the operator's; ``kubeconfig`` is
    None for the current context (kind), else the testbed's admin kubeconfig."""

    namespace: str
    operator_namespace: str
    kubeconfig: str | None = None
    operator_metrics_url: str | None = None
    """The operator's /metrics when it runs as a local process (testbed); None: its pod."""
    policy_interval: str | None = None
    """The sample policy's ``spec.interval`` for this run; None: the sample's own (60s)."""

    def kubectl(
        self, *args: str, timeout: float = 120, check: bool = True, stdin: str | None = None
    ) -> str:
        """Run kubectl; its stdout, or a failure naming the command and its stderr."""
        config = (f"--kubeconfig={self.kubeconfig}",) if self.kubeconfig else ()
        return kubectl(*config, *args, timeout=timeout, check=check, stdin=stdin)

    @contextmanager
    def service(self, name: str, port: int) -> Iterator[str]:
        """A base URL that reaches the Service ``name`` of the samples' namespace."""
        if self.kubeconfig is None:
            with port_forward(self.namespace, f"svc/{name}", port) as url:
                yield url
            return
        yield wait_for(
            f"a ready endpoint of Service {name}",
            lambda: self._endpoint(name, port),
            timeout=120,
            every=1,
        )

    def _endpoint(self, service: str, port: int) -> str | None:
        slices = json.loads(
            self.kubectl(
                *("get", "endpointslices", "-n", self.namespace, "-o", "json"),
                *("-l", f"kubernetes.io/service-name={service}"),
            )
        )
        for item in slices["items"]:
            for endpoint in item.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready"):
                    return f"http://{endpoint['addresses'][0]}:{port}"
        return None

    def operator_metrics(self, port: int) -> str:
        """The operator's /metrics page (through a port-forward to its pod on kind)."""
        if self.operator_metrics_url is not None:
            return httpx.get(self.operator_metrics_url, timeout=10).text
        pod = self.kubectl(
            *("get", "pods", "-n", self.operator_namespace),
            *("-l", "app.kubernetes.io/component=operator"),
            *("-o", "jsonpath={.items[0].metadata.name}"),
        )
        with port_forward(self.operator_namespace, f"pod/{pod}", port) as url:
            return httpx.get(f"{url}/metrics", timeout=10).text


def kubectl(*args: str, timeout: float = 120, check: bool = True, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["kubectl", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr.strip()}")
    return result.stdout


def cluster_problem() -> str | None:
    """Why the e2e tier cannot run here, or None."""
    if os.environ.get("MODELOPS_E2E") != "1":
        return "MODELOPS_E2E is not 1"
    if shutil.which("kubectl") is None:
        return "kubectl is not installed"
    try:
        kubectl("version", "--request-timeout=5s", "-o", "json", timeout=15)
    except (AssertionError, subprocess.TimeoutExpired) as exc:
        return f"no reachable cluster in the current kubectl context ({exc})"
    return None


def current_cluster() -> Cluster:
    """The cluster of the current kubectl context, or a skip saying how to run the tier."""
    problem = cluster_problem()
    if problem is not None:
        pytest.skip(f"{problem}: {HOW_TO_RUN}")
    return Cluster(
        namespace=os.environ.get("MODELOPS_E2E_NAMESPACE", "modelops-demo"),
        operator_namespace=os.environ.get("MODELOPS_E2E_OPERATOR_NAMESPACE", "modelops-system"),
    )


def wait_for(what: str, probe: Callable[[], T | None], *, timeout: float, every: float = 3.0) -> T:
    """Poll `probe` until it returns something other than None (or fail naming `what`)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = probe()
        except AssertionError as exc:  # a kubectl hiccup: keep polling
            last_error, value = exc, None
        if value is not None:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} ({last_error})")


@contextmanager
def port_forward(namespace: str, target: str, port: int) -> Iterator[str]:
    """`kubectl port-forward` to a free local port on 127.0.0.1; yields the base URL."""
    with tempfile.TemporaryFile(mode="w+") as errors:
        process = subprocess.Popen(
            ["kubectl", "port-forward", "-n", namespace, target, f":{port}", "--address=127.0.0.1"],
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.search(r"127\.0\.0\.1:(\d+)", line)
            if match is None:
                process.wait(timeout=10)
                errors.seek(0)
                raise AssertionError(f"kubectl port-forward {target} failed: {errors.read()}")
            # kubectl logs a line per connection: keep reading so that its pipe never fills up.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            yield f"http://127.0.0.1:{match[1]}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """The status condition of `type_`, if any."""
    for item in obj.get("status", {}).get("conditions") or []:
        if item.get("type") == type_:
            found: dict[str, Any] = item
            return found
    return None
