"""The server process's life: remote models, readiness, refusal of unsafe files, SIGTERM
draining, non-root with a read-only root filesystem."""

from __future__ import annotations

import functools
import http.server
import json
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
from pathlib import Path

import httpx
import joblib
import orjson
import pytest
import readonly_root

from modelops.artifacts import MODEL_FILE, UNSAFE_MODEL_FILE
from serving_support import (
    ModelCase,
    ServerProcess,
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


class ModelStore:
    """A local HTTP server of a directory; it holds the model file back until ``release()``.

    A slow object store whose slowness the test controls: while the server waits for the model
    file, the test knows it is inside the loading window and can look at it for as long as it
    wants, on any machine.
    """

    def __init__(self, directory: Path) -> None:
        self.model_requested = threading.Event()
        self._release = threading.Event()
        store = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.endswith(MODEL_FILE):
                    store.model_requested.set()
                    store._release.wait(60)
                super().do_GET()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(directory))
        )
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def release(self) -> None:
        self._release.set()

    def __enter__(self) -> ModelStore:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()


def _status(url: str) -> int | None:
    """The HTTP status of GET ``url``, or None when nothing answers (refused, reset, timeout)."""
    try:
        return httpx.get(url, timeout=1.0).status_code
    except httpx.TransportError:
        return None


def test_http_model_is_downloaded_and_ready_only_once_loaded(
    model: ModelCase, tmp_path: Path
) -> None:
    with ModelStore(model.path.parent) as store:
        server = start_server(
            f"{store.url}/{model.path.name}", tmp_path / "server.log", wait_ready=False
        )
        try:
            assert store.model_requested.wait(30), f"the model was never fetched:\n{server.log()}"
            # Inside the loading window, held open by the store: look at it for 2 s and 10 probes.
            ready_seen: list[int | None] = []
            live_seen: list[int | None] = []
            window_ends = time.monotonic() + 2.0
            while time.monotonic() < window_ends or len(ready_seen) < 10:
                ready_seen.append(_status(f"{server.url}/v2/health/ready"))
                live_seen.append(_status(f"{server.url}/v2/health/live"))
                assert server.process.poll() is None, server.log()
                time.sleep(0.05)  # probe interval, not a synchronisation
            # Never ready while the model is loading (the port opens only once it is loaded,
            # so nothing answers; a 503 would do as well); live never fails when it answers.
            assert 200 not in ready_seen, ready_seen
            assert all(status in (None, 200) for status in live_seen), live_seen
            store.release()
            wait_until_ready(server)  # polls /v2/health/ready with a deadline
            assert _status(f"{server.url}/v2/health/live") == 200
            with server.client() as client:
                response = client.post("/v2/models/model/infer", json=v2_matrix(model.X[:2]))
            assert response.status_code == 200
            assert stop_server(server) == 0
        finally:
            store.release()
            stop_server(server)


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
            "--grpc-port",
            "0",
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


def _read_head(sock: socket.socket) -> bytes:
    """Bytes from ``sock`` up to the end of one response head (the socket's timeout applies)."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    return head


def test_sigterm_finishes_the_in_flight_request_then_exits_0(
    model: ModelCase, tmp_path: Path
) -> None:
    server = start_server(model.uri, tmp_path / "server.log")
    try:
        body = orjson.dumps(v2_matrix(model.X[:5]))
        head = (
            f"POST /v2/models/model/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Expect: 100-continue\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(head)
            # "100 Continue" comes once the app reads the body: the request is in flight.
            assert _read_head(sock).startswith(b"HTTP/1.1 100"), server.log()
            sock.sendall(body[:10])  # half its body is sent
            server.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _status(f"{server.url}/v2/health/live") is not None:  # until it stops accepting
                assert server.process.poll() is None, "exited with a request in flight"
                assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
                time.sleep(0.05)
            assert server.process.poll() is None, "exited with a request in flight"
            sock.sendall(body[10:])
            response = b""
            while chunk := sock.recv(65536):
                response += chunk
        assert response.startswith(b"HTTP/1.1 200"), response[:200]
        payload = orjson.loads(response.split(b"\r\n\r\n", 1)[1])
        assert payload["outputs"][0]["data"] == model.estimator.predict(model.X[:5]).tolist()
        assert server.process.wait(15) == 0
    finally:
        stop_server(server)


def test_runs_as_non_root_on_a_read_only_root_filesystem(model: ModelCase, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to build the read-only root view (mount namespace, chroot)")
    # Where this interpreter takes its code and libraries from, asked of the interpreter and of
    # a real server process (its mapped shared objects), not assumed.
    probe = subprocess.run(
        [sys.executable, "-c", readonly_root.PROBE],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    with running_server(model.uri, tmp_path / "probe.log") as probed:
        with probed.client() as client:
            client.post("/v2/models/model/infer", json=v2_matrix(model.X[:2]))
        shared_objects = readonly_root.mapped_objects(probed.process.pid)
    work = Path(tempfile.mkdtemp(prefix="modelops-ro-", dir="/tmp"))
    try:
        work.chmod(0o755)
        (work / "root").mkdir()
        shared_model = work / "model"
        shutil.copytree(model.path, shared_model)
        for path in [shared_model, *shared_model.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        paths = readonly_root.interpreter_paths(json.loads(probe.stdout), shared_objects)
        port = free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": "/nonexistent",
            "TMPDIR": "/tmp",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if "PYTHONPATH" in os.environ:
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        argv = [
            sys.executable,
            "-m",
            "modelops",
            "serve",
            "--model-uri",
            shared_model.as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--grpc-port",
            "0",
        ]
        command = readonly_root.sandbox_command(
            work / "root", [*paths, str(shared_model)], argv, env
        )
        log = work / "server.log"
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            server = ServerProcess(process, port, log)
            wait_until_ready(server)
            status = Path(f"/proc/{process.pid}/status").read_text()
            assert f"Uid:\t{readonly_root.NOBODY}\t" in status, status
            sandbox = next(
                orjson.loads(line)["sandbox"]
                for line in log.read_text().splitlines()
                if line.startswith('{"sandbox"')
            )
            assert sandbox == {
                "uid": readonly_root.NOBODY,
                "gid": readonly_root.NOBODY,
                "root_writable": False,
                "prefix_writable": False,
            }
            response = httpx.post(
                f"http://127.0.0.1:{port}/v2/models/model/infer", json=v2_matrix(model.X[:2])
            )
            assert response.status_code == 200, log.read_text()
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
