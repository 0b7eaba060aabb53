"""The server process's life: remote models, readiness, refusal of unsafe files, SIGTERM
draining, non-root with a read-only root filesystem."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import joblib
import orjson
import pytest

from modelops.artifacts import MODEL_FILE, UNSAFE_MODEL_FILE
from serving_support import (
    ModelCase,
    TouchOnLoad,
    free_port,
    make_model_dir,
    running_server,
    start_server,
    stop_server,
    v2_matrix,
    wait_until_ready,
    write_skops_payload,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ModelCase:
    return make_model_dir(tmp_path_factory.mktemp("models"), "classifier")


class SlowFileHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a directory; the model file comes only after a delay (a slow object store)."""

    delay = 0.0

    def do_GET(self) -> None:
        if self.path.endswith(MODEL_FILE):
            time.sleep(self.delay)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def file_server(directory: Path, delay: float = 0.0) -> Iterator[str]:
    handler = type("Handler", (SlowFileHandler,), {"delay": delay})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_http_model_is_downloaded_and_ready_only_once_loaded(
    model: ModelCase, tmp_path: Path
) -> None:
    with file_server(model.path.parent, delay=1.5) as base:
        server = start_server(
            f"{base}/{model.path.name}", tmp_path / "server.log", wait_ready=False
        )
        try:
            seen_not_ready = False
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                try:
                    status = httpx.get(f"{server.url}/v2/health/ready", timeout=0.5).status_code
                except httpx.TransportError:
                    seen_not_ready = True  # nothing listens until the model is loaded
                else:
                    assert status != 200, "ready before the model was downloaded"
                time.sleep(0.05)
            assert seen_not_ready
            wait_until_ready(server)
            with server.client() as client:
                response = client.post("/v2/models/model/infer", json=v2_matrix(model.X[:2]))
            assert response.status_code == 200
        finally:
            assert stop_server(server) == 0


@pytest.mark.parametrize(
    "uri",
    ["http://127.0.0.1:{port}/../../etc", "ftp://example.org/model", "file:///no/such/model"],
    ids=["traversal", "scheme", "missing"],
)
def test_bad_model_uris_exit_1_with_a_logged_reason(uri: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelops", "serve", "--model-uri", uri.format(port=free_port())],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 1
    last = orjson.loads(result.stderr.splitlines()[-1])
    assert last["level"] == "ERROR"
    assert last["message"].startswith("Model load failed")


def _serve_once(model_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "modelops",
            "serve",
            "--model-uri",
            model_dir.as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
            *args,
        ],
        capture_output=True,
        timeout=60,
    )


@pytest.mark.parametrize("disguise", ["joblib", "skops-name", "skops-payload"])
def test_malicious_model_files_are_refused_and_nothing_runs(
    model: ModelCase, tmp_path: Path, disguise: str
) -> None:
    marker = tmp_path / "payload-ran"
    crafted = tmp_path / "crafted"
    shutil.copytree(model.path, crafted)
    (crafted / MODEL_FILE).unlink()
    if disguise == "joblib":
        (crafted / UNSAFE_MODEL_FILE).write_bytes(pickle.dumps(TouchOnLoad(str(marker))))
    elif disguise == "skops-name":
        (crafted / MODEL_FILE).write_bytes(pickle.dumps(TouchOnLoad(str(marker))))
    else:
        write_skops_payload(crafted / MODEL_FILE, marker)
    # PYTHONPATH lets the payload's class be found, so only the loader's refusal stops it.
    env_path = os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-m", "modelops", "serve", "--model-uri", crafted.as_uri()],
        capture_output=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": env_path},
    )
    assert result.returncode == 1
    assert b"Model load failed" in result.stderr
    assert not marker.exists()


def test_pickle_is_served_only_with_the_opt_in_and_a_warning(
    model: ModelCase, tmp_path: Path
) -> None:
    legacy = tmp_path / "legacy"
    shutil.copytree(model.path, legacy)
    (legacy / MODEL_FILE).unlink()
    joblib.dump(model.estimator, legacy / UNSAFE_MODEL_FILE)
    assert _serve_once(legacy).returncode == 1
    with running_server(
        legacy.as_uri(), tmp_path / "server.log", extra_args=["--allow-unsafe-pickle"]
    ) as server:
        with server.client() as client:
            response = client.post("/v2/models/model/infer", json=v2_matrix(model.X[:3]))
            assert (
                response.json()["outputs"][0]["data"]
                == model.estimator.predict(model.X[:3]).tolist()
            )
            assert 'format="pickle"' in client.get("/metrics").text
        warnings = [
            orjson.loads(line)
            for line in server.log().splitlines()
            if orjson.loads(line)["level"] == "WARNING"
        ]
        assert any("pickle" in w["message"] for w in warnings)


def test_sigterm_finishes_the_in_flight_request_then_exits_0(
    model: ModelCase, tmp_path: Path
) -> None:
    server = start_server(model.uri, tmp_path / "server.log")
    try:
        body = orjson.dumps(v2_matrix(model.X[:5]))
        head = (
            f"POST /v2/models/model/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(head + body[:10])  # the request is in flight: half its body is sent
            time.sleep(0.3)
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert server.process.poll() is None, "exited with a request in flight"
            with pytest.raises(httpx.TransportError):  # no longer accepting
                httpx.get(f"{server.url}/v2/health/live", timeout=1.0)
            sock.sendall(body[10:])
            response = b""
            while chunk := sock.recv(65536):
                response += chunk
        assert response.startswith(b"HTTP/1.1 200")
        payload = orjson.loads(response.split(b"\r\n\r\n", 1)[1])
        assert payload["outputs"][0]["data"] == model.estimator.predict(model.X[:5]).tolist()
        assert server.process.wait(15) == 0
    finally:
        stop_server(server)


NON_ROOT_SCRIPT = r"""
set -eu
# Python lives under /root (mode 0700): show only /root/.pyenv to the unprivileged user.
mkdir -p "$WORK/pyenv" && mount --bind /root/.pyenv "$WORK/pyenv"
mount -t tmpfs -o mode=0755 tmpfs /root
mkdir /root/.pyenv && mount --bind "$WORK/pyenv" /root/.pyenv
mount -t tmpfs -o mode=1777 tmpfs "$WORK/tmp"
mount -o remount,ro,bind /
exec setpriv --reuid=65534 --regid=65534 --clear-groups \
    env HOME=/nonexistent TMPDIR="$WORK/tmp" PYTHONDONTWRITEBYTECODE=1 \
    "$PYTHON" -m modelops serve --model-uri "$MODEL_URI" --host 127.0.0.1 --port "$PORT"
"""


def test_runs_as_non_root_on_a_read_only_root_filesystem(model: ModelCase) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("setpriv") is None:
        pytest.skip("needs root, unshare and setpriv to build the read-only sandbox")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("mount namespaces are not available here")
    work = Path(tempfile.mkdtemp(prefix="modelops-ro-", dir="/tmp"))
    try:
        work.chmod(0o755)
        (work / "tmp").mkdir()
        shared_model = work / "model"
        shutil.copytree(model.path, shared_model)
        for path in [shared_model, *shared_model.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        port = free_port()
        log = work / "server.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["unshare", "-m", "--propagation", "private", "sh", "-c", NON_ROOT_SCRIPT],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={
                    **os.environ,
                    "WORK": str(work),
                    "PYTHON": sys.executable,
                    "MODEL_URI": shared_model.as_uri(),
                    "PORT": str(port),
                },
            )
        try:
            deadline = time.monotonic() + 30
            ready = False
            while time.monotonic() < deadline and process.poll() is None and not ready:
                with contextlib.suppress(httpx.TransportError):
                    ready = httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200
                time.sleep(0.1)
            assert ready, log.read_text()
            response = httpx.post(
                f"http://127.0.0.1:{port}/v2/models/model/infer", json=v2_matrix(model.X[:2])
            )
            assert response.status_code == 200
            assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 200
            process.send_signal(signal.SIGTERM)
            assert process.wait(15) == 0, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert "Model model version v1 loaded" in log.read_text()
    finally:
        shutil.rmtree(work, ignore_errors=True)
