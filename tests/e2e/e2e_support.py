"""Helpers of the e2e tier: kubectl, port-forwards, polling.

Everything talks to the cluster through `kubectl`, exactly as a user would, so the tier needs
nothing but a kubeconfig and the kubectl binary.
"""

from __future__ import annotations

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

import pytest

HOW_TO_RUN = (
    "e2e tests need a real cluster: `make kind-up` (Docker, kind, kubectl and helm), then "
    "`make e2e` (sets MODELOPS_E2E=1 and runs against the current kubectl context)"
)
T = TypeVar("T")


@dataclass(frozen=True)
class Cluster:
    """Where the e2e tier runs: the samples' namespace and the operator's."""

    namespace: str
    operator_namespace: str

    def kubectl(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        """Run kubectl; its stdout, or a failure naming the command and its stderr."""
        return kubectl(*args, timeout=timeout, check=check)


def kubectl(*args: str, timeout: float = 120, check: bool = True) -> str:
    result = subprocess.run(
        ["kubectl", *args], capture_output=True, text=True, timeout=timeout, check=False
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
