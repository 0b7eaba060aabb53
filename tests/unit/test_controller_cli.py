"""``modelops operator`` without a cluster: one line saying what is missing, exit 2, no retries.

An API server that merely does not answer is still Kopf's to retry, so only the local
configuration is checked (no request is made).
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kopf
import pytest

from modelops.controller import cli

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: me
  user: {token: not-a-real-token}
contexts:
- name: nowhere
  context: {cluster: nowhere, user: me}
current-context: nowhere
"""


@pytest.fixture
def kopf_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """No cluster, an empty home, and Kopf replaced by a recorder."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    for key in list(os.environ):
        if key.startswith("MODELOPS_"):
            monkeypatch.delenv(key)
    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(kopf, "run", lambda **kwargs: runs.append(kwargs))
    monkeypatch.setattr(kopf, "configure", lambda **_: None)
    return runs


def operator(*argv: str) -> int:
    args = argparse.Namespace(namespace=list(argv), all_namespaces=False, verbose=False)
    return cli.run(args)


def one_line(err: str) -> str:
    assert err.endswith("\n")
    assert err.count("\n") == 1, err
    return err


def test_no_cluster_and_no_kubeconfig(
    kopf_runs: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert operator() == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith("modelops operator: ")
    assert "KUBERNETES_SERVICE_HOST" in err
    assert str(tmp_path / ".kube" / "config") in err
    assert "make kind-up" in err
    assert kopf_runs == []


def test_kubeconfig_named_by_the_environment_is_missing(
    kopf_runs: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "gone.yaml"))
    assert operator() == 2
    assert str(tmp_path / "gone.yaml") in one_line(capsys.readouterr().err)
    assert kopf_runs == []


@pytest.mark.parametrize("text", ["", "clusters: [unclosed", "apiVersion: v1\nkind: Config\n"])
def test_unusable_kubeconfig(
    kopf_runs: list[dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
) -> None:
    config = tmp_path / ".kube" / "config"
    config.parent.mkdir()
    config.write_text(text)
    assert operator() == 2
    err = one_line(capsys.readouterr().err)
    assert f"cannot use the kubeconfig {config}" in err
    assert "make kind-up" in err
    assert kopf_runs == []


def test_an_unreachable_api_server_is_left_to_kopf(
    kopf_runs: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)  # its server listens nowhere: no request is made here
    monkeypatch.setenv("KUBECONFIG", str(config))
    assert operator("ml") == 0
    assert [run["namespaces"] for run in kopf_runs] == [["ml"]]
    assert capsys.readouterr().err == ""


def test_the_garbage_collector_thresholds_are_applied_before_kopf_runs(
    kopf_runs: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(config))
    monkeypatch.setenv("MODELOPS_GC_THRESHOLDS", "12345,20,5")
    seen: list[tuple[int, ...]] = []
    monkeypatch.setattr(kopf, "run", lambda **_: seen.append(gc.get_threshold()))
    before = gc.get_threshold()
    try:
        assert operator("ml") == 0
    finally:
        gc.set_threshold(*before)
    assert seen == [(12345, 20, 5)]


def test_the_command_prints_no_traceback(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST") and not key.startswith("MODELOPS_")
    }
    env["HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "modelops", "operator"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "make kind-up" in one_line(done.stderr)
