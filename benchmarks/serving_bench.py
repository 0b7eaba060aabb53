"""Model-server benchmark: our server against Seldon's MLServer and against the floor.

Every server gets the same model (LogisticRegression on 20 features, saved as model.skops for us
and model.joblib for MLServer's scikit-learn runtime) and is driven by the same load generator
(wrk, Debian package ``wrk``) for the same duration: 1-row and 64-row V2 requests, at
concurrency 1 and 32. The server is pinned to CPU 0 and wrk to CPU 1 (when there are two).

Servers:
- ``ours``: ``modelops serve`` as shipped;
- ``ours-no-bins``: the same with feature-bin counting switched off (what counting costs);
- ``mlserver``: MLServer 1.7.1 + mlserver-sklearn, default settings (inference in a worker);
- ``mlserver-pw0``: the same with ``parallel_workers=0`` (inference in the server process);
- ``ours-binary``: ``ours`` driven with the binary tensor extension (raw FP64 input, binary
  output), as Triton's and KServe's HTTP clients send by default;
- ``ours-grpc`` / ``mlserver-grpc`` / ``mlserver-pw0-grpc``: the same servers over gRPC
  (``ModelInfer`` with typed ``fp64_contents``), driven by ``ghz`` (a Go gRPC load generator,
  ``go install github.com/bojand/ghz/cmd/ghz@v0.121.0``; found on PATH or in ``$GHZ``) with one
  HTTP/2 connection; ``ours-grpc-raw`` sends ``raw_input_contents`` as Triton's gRPC client does.
  Without ghz the gRPC rows are skipped, and the run says so;
- ``floor``: our uvicorn + raw ASGI stack answering every request with a constant;
- ``bare``: the same stack doing the least a V2 prediction takes: parse the JSON body, make the
  matrix, one matrix product with the model's coefficients, serialise the labels; no validation,
  error handling, batching or metrics. What it reaches of the floor bounds what any real handler
  in Python on this stack can reach.

MLServer is installed into its own virtual environment under ``.bench/`` (git-ignored) on first
use, with ``uvloop==0.21.0`` pinned (its worker crashes with newer uvloop). Prints req/s, p50/p99
latency, server CPU (cores busy) and peak RSS, then our/MLServer and our/floor ratios against
the targets, and the cost of feature-bin counting.

    python benchmarks/serving_bench.py [--duration 8] [--skip-mlserver] [--skip-grpc] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".bench"
MLSERVER_VENV = BENCH_DIR / "mlserver-venv"
MLSERVER_PACKAGES = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0"]
N_FEATURES = 20
ROW_COUNTS = (1, 64)
CONCURRENCY = (1, 32)
MODEL_NAME = "model"


# ------------------------------------------------------------------------------ the model


def write_model(directory: Path) -> np.ndarray:
    """Fit the bench model; write model.skops, model.joblib, profile and metadata."""
    import joblib
    import sklearn
    from sklearn.linear_model import LogisticRegression

    from modelops.artifacts import METADATA_FILE, PROFILE_FILE, UNSAFE_MODEL_FILE, ModelMetadata
    from modelops.drift import build_profile
    from modelops.serving.loader import save_model
    from modelops.training.trainer import with_output_entry

    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, N_FEATURES))
    y = (X[:, :3].sum(axis=1) + rng.normal(scale=0.5, size=len(X)) > 0).astype(np.int64)
    estimator = LogisticRegression(max_iter=1000).fit(X, y)
    features = [f"f{i}" for i in range(N_FEATURES)]
    save_model(estimator, directory)
    joblib.dump(estimator, directory / UNSAFE_MODEL_FILE)
    # As the trainer writes it: with the output entry, so served predictions are counted too.
    profile = with_output_entry(build_profile(X, features), estimator.predict(X), "y", [0, 1])
    (directory / PROFILE_FILE).write_text(profile.to_json())
    metadata = ModelMetadata(
        version="v1",
        created=datetime.now(UTC),
        estimator="LogisticRegression",
        features=features,
        target="y",
        task="classification",
        classes=[0, 1],
        library_versions={"scikit-learn": sklearn.__version__},
    )
    (directory / METADATA_FILE).write_text(metadata.model_dump_json())
    return X


def binary_request(X: np.ndarray, rows: int) -> tuple[bytes, int]:  # noqa: N803
    """The binary-extension request: JSON header, then the raw little-endian FP64 matrix."""
    raw = np.ascontiguousarray(X[:rows], dtype="<f8").tobytes()
    doc = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [rows, N_FEATURES],
                "datatype": "FP64",
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
    }
    header = json.dumps(doc).encode()
    return header + raw, len(header)


def grpc_request(X: np.ndarray, rows: int, *, raw: bool) -> bytes:  # noqa: N803
    """A serialised ``ModelInferRequest``: typed ``fp64_contents`` or ``raw_input_contents``."""
    from modelops.serving.proto import open_inference_grpc_pb2 as pb

    request = pb.ModelInferRequest(model_name=MODEL_NAME)
    tensor = request.inputs.add(name="input-0", datatype="FP64", shape=[rows, N_FEATURES])
    if raw:
        request.raw_input_contents.append(np.ascontiguousarray(X[:rows], dtype="<f8").tobytes())
    else:
        tensor.contents.fp64_contents.extend(X[:rows].ravel().tolist())
    return request.SerializeToString()


def request_body(X: np.ndarray, rows: int) -> bytes:  # noqa: N803
    data = X[:rows]
    doc = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [rows, N_FEATURES],
                "datatype": "FP64",
                "data": data.ravel().tolist(),
            }
        ]
    }
    return json.dumps(doc).encode()


# ------------------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def pin(cpu: int) -> list[str]:
    """``taskset`` prefix pinning a command to one CPU (nothing on a single-CPU machine)."""
    if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", str(cpu)]


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    grpc_port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def wait_ready(server: Server, timeout: float = 120.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/v2/health/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} not ready after {timeout} s")


def start(
    name: str, command: list[str], port: int, workdir: Path, grpc_port: int = 0, **kwargs: Any
) -> Server:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(pin(0) + command, stdout=out, stderr=subprocess.STDOUT, **kwargs)
    server = Server(name, process, port, log, grpc_port)
    try:
        wait_ready(server)
    except Exception:
        stop(server)
        raise
    return server


def stop(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def start_ours(
    name: str, model_dir: Path, workdir: Path, *, bins: bool = True, grpc: bool = False
) -> Server:
    port = free_port()
    grpc_port = free_port() if grpc else 0
    command = [sys.executable, __file__, "--run-ours", str(model_dir), "--port", str(port)]
    command += ["--grpc-port", str(grpc_port)]
    if not bins:
        command.append("--no-bins")
    return start(name, command, port, workdir, grpc_port)


def start_floor(workdir: Path) -> Server:
    port = free_port()
    return start(
        "floor", [sys.executable, __file__, "--run-floor", "--port", str(port)], port, workdir
    )


def start_bare(model_dir: Path, workdir: Path) -> Server:
    port = free_port()
    command = [sys.executable, __file__, "--run-bare", str(model_dir), "--port", str(port)]
    return start("bare", command, port, workdir)


def ensure_mlserver() -> Path:
    """The ``mlserver`` executable of the bench venv, created on first use."""
    import sklearn

    executable = MLSERVER_VENV / "bin" / "mlserver"
    if executable.exists():
        return executable
    print(f"Creating MLServer venv in {MLSERVER_VENV} (once) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=True)
    pip = [str(MLSERVER_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    # The same scikit-learn as ours, so model.joblib unpickles exactly.
    subprocess.run([*pip, *MLSERVER_PACKAGES, f"scikit-learn=={sklearn.__version__}"], check=True)
    return executable


def start_mlserver(
    name: str, model_dir: Path, workdir: Path, parallel_workers: int | None
) -> Server:
    executable = ensure_mlserver()
    folder = workdir / name
    folder.mkdir()
    shutil.copy(model_dir / "model.joblib", folder / "model.joblib")
    port = free_port()
    grpc_port = free_port()
    settings: dict[str, Any] = {
        "debug": False,
        "http_port": port,
        "grpc_port": grpc_port,
        "metrics_port": free_port(),
    }
    if parallel_workers is not None:
        settings["parallel_workers"] = parallel_workers
    (folder / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": MODEL_NAME,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"},
    }
    (folder / "model-settings.json").write_text(json.dumps(model_settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    command = [str(executable), "start", str(folder)]
    return start(name, command, port, workdir, grpc_port, cwd=folder, env=env)


# ------------------------------------------------------------------------------ load


@dataclass
class Result:
    server: str
    rows: int
    concurrency: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    cpu_cores: float
    errors: int
    requests: int


def _to_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}[unit]


def run_wrk(
    url: str,
    body: bytes,
    concurrency: int,
    duration: float,
    workdir: Path,
    header_length: int | None = None,
) -> dict[str, float]:
    """wrk POSTing ``body``; with ``header_length`` a binary-extension body (the bytes are
    written as Lua decimal escapes, and the Inference-Header-Content-Length header is set)."""
    script = workdir / "post.lua"
    if header_length is None:
        script.write_text(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(body.decode())}\n"
        )
    else:
        escaped = "".join(f"\\{byte:03d}" for byte in body)
        script.write_text(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/octet-stream"\n'
            f'wrk.headers["Inference-Header-Content-Length"] = "{header_length}"\n'
            f'wrk.body = "{escaped}"\n'
        )
    command = [
        *pin(1),
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(duration))}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    p99 = _to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors_match = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(errors_match.group(1)) if errors_match else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return {"rps": rps, "p50": p50, "p99": p99, "errors": errors, "requests": total}


PROTO = ROOT / "operator" / "modelops" / "serving" / "proto" / "open_inference_grpc.proto"


def ghz_executable() -> str | None:
    """ghz from ``$GHZ``, PATH or ``go env GOPATH``/bin."""
    candidates = [os.environ.get("GHZ"), shutil.which("ghz")]
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        gopath = subprocess.run(
            ["go", "env", "GOPATH"], capture_output=True, text=True, check=True
        ).stdout.strip()
        candidates.append(str(Path(gopath) / "bin" / "ghz"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def run_ghz(
    ghz: str, port: int, message: bytes, concurrency: int, duration: float, workdir: Path
) -> dict[str, float]:
    """ghz (one connection, ``concurrency`` workers) calling ModelInfer with ``message``."""
    data = workdir / "grpc-request.bin"
    data.write_bytes(message)
    command = [
        *pin(1),
        ghz,
        "--insecure",
        "--proto",
        str(PROTO),
        "--import-paths",
        str(PROTO.parent),
        "--call",
        "inference.GRPCInferenceService.ModelInfer",
        "--binary-file",
        str(data),
        "--concurrency",
        str(concurrency),
        "--connections",
        "1",
        "--duration",
        f"{max(1, round(duration))}s",
        "--cpus",
        "1",
        "--format",
        "json",
        f"127.0.0.1:{port}",
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    report = json.loads(out)
    latencies = {d["percentage"]: d["latency"] / 1e6 for d in report["latencyDistribution"]}
    total = int(report["count"])
    statuses = report.get("statusCodeDistribution", {})
    # ghz cancels the calls still in flight when the duration ends: those are not errors.
    ok = int(statuses.get("OK", 0)) + int(statuses.get("Canceled", 0))
    return {
        "rps": float(report["rps"]),
        "p50": latencies[50],
        "p99": latencies[99],
        "errors": total - ok,
        "requests": total,
    }


def check_grpc_answers(server: Server, message: bytes, expected: list[Any]) -> None:
    import grpc

    from modelops.serving.proto import open_inference_grpc_pb2 as pb

    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=lambda raw: raw,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        response = call(message, timeout=30)
    output = response.outputs[0]
    if response.raw_output_contents:
        got = np.frombuffer(response.raw_output_contents[0], "<i8").tolist()
    else:
        got = list(output.contents.int64_contents) or list(output.contents.int_contents)
    if got != expected:
        raise RuntimeError(f"{server.name} (gRPC) predicted {got[:5]}..., expected {expected[:5]}")


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (MLServer's workers)."""
    import psutil

    process = psutil.Process(pid)
    total = 0.0
    for proc in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def peak_rss_mib(pid: int) -> float:
    """Peak resident set size (VmHWM) of a process plus its children, in MiB."""
    import psutil

    total = 0
    for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        with contextlib.suppress(OSError, psutil.Error):
            status = Path(f"/proc/{proc.pid}/status").read_text()
            match = re.search(r"VmHWM:\s+(\d+) kB", status)
            if match:
                total += int(match.group(1)) * 1024
    return total / 2**20


def check_answers(
    server: Server, body: bytes, expected: list[Any], header_length: int | None = None
) -> None:
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if header_length is not None:
        headers["Inference-Header-Content-Length"] = str(header_length)
    request = urllib.request.Request(
        f"{server.url}/v2/models/{MODEL_NAME}/infer", data=body, headers=headers
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = response.read()
        answer_header = response.headers.get("Inference-Header-Content-Length")
    if answer_header is not None:
        got = np.frombuffer(answer[int(answer_header) :], "<i8").tolist()
    else:
        got = json.loads(answer)["outputs"][0]["data"]
    if server.name != "floor" and got != expected:
        raise RuntimeError(f"{server.name} predicted {got[:5]}..., expected {expected[:5]}...")


@dataclass
class Load:
    """One row of the report: a server driven one way (``run(rows, concurrency, duration)``)."""

    label: str
    server: Server
    run: Callable[[int, int, float], dict[str, float]]


def measure(load: Load, rows: int, concurrency: int, duration: float) -> Result:
    """One load-generator run against one server, with the CPU the server (and its workers)
    used."""
    server = load.server
    before = cpu_seconds(server.process.pid)
    started = time.monotonic()
    figures = load.run(rows, concurrency, duration)
    elapsed = time.monotonic() - started
    cores = (cpu_seconds(server.process.pid) - before) / elapsed
    return Result(
        load.label,
        rows,
        concurrency,
        figures["rps"],
        figures["p50"],
        figures["p99"],
        cores,
        int(figures["errors"]),
        int(figures["requests"]),
    )


def median_result(runs: list[Result]) -> Result:
    """The median of repeated runs of one scenario (errors and requests summed)."""

    def med(values: list[float]) -> float:
        return float(np.median(values))

    first = runs[0]
    return Result(
        first.server,
        first.rows,
        first.concurrency,
        med([r.requests_per_second for r in runs]),
        med([r.p50_ms for r in runs]),
        med([r.p99_ms for r in runs]),
        med([r.cpu_cores for r in runs]),
        sum(r.errors for r in runs),
        sum(r.requests for r in runs),
    )


def format_result(r: Result) -> str:
    cpu_us = r.cpu_cores * 1e6 / r.requests_per_second if r.requests_per_second else 0.0
    return (
        f"  {r.server:<17} rows={r.rows:<3} conc={r.concurrency:<3}"
        f" {r.requests_per_second:>9.0f} req/s"
        f"  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms"
        f"  cpu {r.cpu_cores:4.2f} cores = {cpu_us:6.0f} us/request"
        + (f"  ERRORS {r.errors}" if r.errors else "")
    )


# ------------------------------------------------------------------------------ counting cost


def counting_cost(model_dir: Path, X: np.ndarray) -> dict[str, float]:  # noqa: N803
    """In-process, per request: handling time (parse, predict, count, encode) with counting on
    and off and through scikit-learn's own predict, and the amortised time of counting alone
    (``observe_rows`` incl. bulk binning)."""
    import sklearn

    from modelops.serving.loader import load_model_dir
    from modelops.serving.server import build_app
    from modelops.serving.settings import ServeSettings

    sklearn.set_config(assume_finite=True)
    loaded = load_model_dir(model_dir)
    uri = model_dir.as_uri()
    planes = {
        "infer_us": ServeSettings(model_uri=uri),
        "infer_no_bins_us": ServeSettings(model_uri=uri, count_feature_bins=False),
        "infer_sklearn_us": ServeSettings(model_uri=uri, compiled_predictor=False),
    }
    dataplanes = {key: build_app(loaded, settings).dataplane for key, settings in planes.items()}
    figures: dict[str, float] = {}
    for rows in ROW_COUNTS:
        body = request_body(X, rows)
        features = dataplanes["infer_us"].prepare(body).features
        for key, plane in dataplanes.items():
            figures[f"{key}_{rows}"] = _time_us(lambda b=body, p=plane: p.infer(b))  # type: ignore[misc]
        metrics = dataplanes["infer_us"].metrics
        figures[f"count_us_{rows}"] = _time_us(lambda f=features, m=metrics: m.observe_rows(f))  # type: ignore[misc]
    return figures


def _time_us(call: Any, repeat: int = 3000) -> float:
    for _ in range(100):
        call()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeat):
            call()
        best = min(best, (time.perf_counter() - started) / repeat * 1e6)
    return best


# ------------------------------------------------------------------------------ report


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    counting: dict[str, float] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)

    def get(self, server: str, rows: int, concurrency: int) -> Result | None:
        for r in self.results:
            if (r.server, r.rows, r.concurrency) == (server, rows, concurrency):
                return r
        return None


def print_summary(report: Report) -> None:
    print("\nPeak RSS (server process and its workers):")
    for name, mib in report.peak_rss_mib.items():
        print(f"  {name:<13} {mib:7.1f} MiB")
    print("\nRatios (ours / peer):")
    for peer in ("mlserver", "mlserver-pw0", "floor", "bare", "ours-binary", "ours-grpc"):
        for rows in ROW_COUNTS:
            for concurrency in CONCURRENCY:
                ours, other = (
                    report.get("ours", rows, concurrency),
                    report.get(peer, rows, concurrency),
                )
                if ours is None or other is None:
                    continue
                print(
                    f"  vs {peer:<13} rows={rows:<3} conc={concurrency:<3}"
                    f" throughput x{ours.requests_per_second / other.requests_per_second:5.2f}"
                    f"   p99 x{ours.p99_ms / other.p99_ms:5.2f}"
                )
    print("\nTargets (1-row requests):")
    for concurrency in CONCURRENCY:
        ours = report.get("ours", 1, concurrency)
        if ours is None:
            continue
        for peer in ("mlserver", "mlserver-pw0"):
            other = report.get(peer, 1, concurrency)
            if other is None:
                continue
            throughput = ours.requests_per_second / other.requests_per_second
            p99 = ours.p99_ms / other.p99_ms
            verdict = "met" if throughput >= 2 and p99 <= 0.5 else "MISSED"
            print(
                f"  conc={concurrency:<3} vs {peer:<13} throughput x{throughput:.2f} (>= 2)"
                f"  p99 x{p99:.2f} (<= 0.5)  {verdict}"
            )
        floor = report.get("floor", 1, concurrency)
        bare = report.get("bare", 1, concurrency)
        if floor is not None and bare is not None:
            print(
                f"  conc={concurrency:<3} for reference: the bare handler reaches"
                f" {bare.requests_per_second / floor.requests_per_second:.0%} of the floor"
            )
    print("\nTargets (every point):")
    for rows in ROW_COUNTS:
        for concurrency in CONCURRENCY:
            ours = report.get("ours", rows, concurrency)
            bare = report.get("bare", rows, concurrency)
            if ours is not None and bare is not None:
                share = ours.requests_per_second / bare.requests_per_second
                print(
                    f"  rows={rows:<3} conc={concurrency:<3} ours {share:.0%} of the bare handler"
                    f" (>= 90%)  {'met' if share >= 0.9 else 'MISSED'}"
                )
            grpc_ours = report.get("ours-grpc", rows, concurrency)
            for peer in ("mlserver-grpc", "mlserver-pw0-grpc"):
                other = report.get(peer, rows, concurrency)
                if grpc_ours is not None and other is not None:
                    ratio = grpc_ours.requests_per_second / other.requests_per_second
                    print(
                        f"  rows={rows:<3} conc={concurrency:<3} ours-grpc vs {peer}"
                        f" x{ratio:.2f} (>= 3)  {'met' if ratio >= 3 else 'MISSED'}"
                    )
    ours_json, ours_binary = report.get("ours", 64, 32), report.get("ours-binary", 64, 32)
    if ours_json is not None and ours_binary is not None:
        ratio = ours_binary.requests_per_second / ours_json.requests_per_second
        print(
            f"  rows=64  conc=32  binary REST vs JSON REST x{ratio:.2f} (>= 1.5)"
            f"  {'met' if ratio >= 1.5 else 'MISSED'}"
        )
    c = report.counting
    if c:
        print("\nFeature-bin counting cost per request (in-process, best of 3):")
        for rows in ROW_COUNTS:
            infer_us, count_us = c[f"infer_us_{rows}"], c[f"count_us_{rows}"]
            print(
                f"  rows={rows:<3} counting {count_us:6.2f} us (amortised bulk binning) of"
                f" {infer_us:7.1f} us handling (parse + predict + count + encode):"
                f" {count_us / infer_us:.1%}; handling without counting"
                f" {c[f'infer_no_bins_us_{rows}']:7.1f} us"
            )
        print("\nCompiled predictor (in-process handling per request, best of 3):")
        for rows in ROW_COUNTS:
            compiled_us, sklearn_us = c[f"infer_us_{rows}"], c[f"infer_sklearn_us_{rows}"]
            print(
                f"  rows={rows:<3} compiled {compiled_us:7.1f} us, through scikit-learn's predict"
                f" {sklearn_us:7.1f} us: x{sklearn_us / compiled_us:.1f} faster"
            )
        for rows in ROW_COUNTS:
            for concurrency in CONCURRENCY:
                on = report.get("ours", rows, concurrency)
                off = report.get("ours-no-bins", rows, concurrency)
                if on and off:
                    on_us = on.cpu_cores * 1e6 / on.requests_per_second
                    off_us = off.cpu_cores * 1e6 / off.requests_per_second
                    print(
                        f"  end to end rows={rows:<3} conc={concurrency:<3} server CPU per request"
                        f" with counting {on_us:5.0f} us, without {off_us:5.0f} us:"
                        f" {(on_us - off_us) / on_us:+.1%} (noisy on a shared machine)"
                    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per scenario and server")
    parser.add_argument("--skip-mlserver", action="store_true", help="only ours and the floor")
    parser.add_argument("--skip-grpc", action="store_true", help="no gRPC rows")
    parser.add_argument(
        "--only",
        help="comma-separated row labels to measure (e.g. ours,ours-binary,ours-grpc); "
        "servers no row needs are not started",
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--run-ours", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--run-floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run-bare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-bins", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--grpc-port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_ours:
        return run_ours(args.run_ours, args.port, args.grpc_port, bins=not args.no_bins)
    if args.run_floor:
        return run_floor(args.port)
    if args.run_bare:
        return run_bare(args.run_bare, args.port)
    if shutil.which("wrk") is None:
        print("wrk is needed as the load generator: apt-get install wrk", file=sys.stderr)
        return 2

    report = Report(machine={"cpus": os.cpu_count(), "python": sys.version.split()[0]})
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as tmp:
        workdir = Path(tmp)
        model_dir = workdir / "model"
        X = write_model(model_dir)
        from modelops.serving.loader import load_model_dir

        estimator = load_model_dir(model_dir).estimator
        bodies = {rows: request_body(X, rows) for rows in ROW_COUNTS}
        binary = {rows: binary_request(X, rows) for rows in ROW_COUNTS}
        typed = {rows: grpc_request(X, rows, raw=False) for rows in ROW_COUNTS}
        raw = {rows: grpc_request(X, rows, raw=True) for rows in ROW_COUNTS}
        expected = {rows: estimator.predict(X[:rows]).tolist() for rows in ROW_COUNTS}
        ghz = None if args.skip_grpc else ghz_executable()
        if ghz is None and not args.skip_grpc:
            print("ghz not found ($GHZ, PATH, $(go env GOPATH)/bin): no gRPC rows", flush=True)
        only = set(args.only.split(",")) if args.only else None
        starters: list[tuple[str, Any]] = [
            ("ours", lambda: start_ours("ours", model_dir, workdir, grpc=ghz is not None)),
            ("ours-no-bins", lambda: start_ours("ours-no-bins", model_dir, workdir, bins=False)),
            ("floor", lambda: start_floor(workdir)),
            ("bare", lambda: start_bare(model_dir, workdir)),
        ]
        if not args.skip_mlserver:
            starters += [
                ("mlserver", lambda: start_mlserver("mlserver", model_dir, workdir, None)),
                ("mlserver-pw0", lambda: start_mlserver("mlserver-pw0", model_dir, workdir, 0)),
            ]
        if only is not None:
            starters = [(n, f) for n, f in starters if any(label.startswith(n) for label in only)]
        print(
            f"Each scenario: {args.duration:g} s of wrk, {args.rounds} rounds with the servers"
            " interleaved (medians below); server on CPU 0, wrk on CPU 1.",
            flush=True,
        )
        servers: list[Server] = []
        try:
            for _name, starter in starters:
                servers.append(starter())
            loads: list[Load] = []
            for server in servers:
                for rows, body in bodies.items():
                    check_answers(server, body, expected[rows])
                url = f"{server.url}/v2/models/{MODEL_NAME}/infer"
                run_wrk(url, bodies[1], 32, 2, workdir)  # warm-up
                loads.append(Load(server.name, server, _wrk_load(url, bodies, workdir)))
                if server.name == "ours":
                    for rows, (body, length) in binary.items():
                        check_answers(server, body, expected[rows], length)
                    loads.append(Load("ours-binary", server, _wrk_load(url, binary, workdir)))
                if ghz is not None and server.grpc_port:
                    messages = [(f"{server.name}-grpc", typed)]
                    if server.name == "ours":
                        messages.append(("ours-grpc-raw", raw))
                    for label, by_rows in messages:
                        for rows, message in by_rows.items():
                            check_grpc_answers(server, message, expected[rows])
                        run_ghz(ghz, server.grpc_port, by_rows[1], 32, 2, workdir)  # warm-up
                        loads.append(Load(label, server, _ghz_load(ghz, server, by_rows, workdir)))
            if only is not None:
                loads = [load for load in loads if load.label in only]
            runs: dict[tuple[str, int, int], list[Result]] = {}
            for round_index in range(args.rounds):
                shift = round_index % len(loads)
                order = loads[shift:] + loads[:shift]
                for rows in ROW_COUNTS:
                    for concurrency in CONCURRENCY:
                        for load in order:
                            result = measure(load, rows, concurrency, args.duration)
                            runs.setdefault((load.label, rows, concurrency), []).append(result)
                            print(format_result(result), flush=True)
            for server in servers:
                report.peak_rss_mib[server.name] = peak_rss_mib(server.process.pid)
        finally:
            for server in servers:
                stop(server)
        report.results = [median_result(r) for r in runs.values()]
        print("\nMedians:")
        for result in report.results:
            print(format_result(result))
        if only is None:
            report.counting = counting_cost(model_dir, X)
    print_summary(report)
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2))
    return 0


def _wrk_load(
    url: str, bodies: dict[int, Any], workdir: Path
) -> Callable[[int, int, float], dict[str, float]]:
    """wrk with the body for the row count: JSON bytes, or (bytes, header length) for binary."""

    def run(rows: int, concurrency: int, duration: float) -> dict[str, float]:
        body = bodies[rows]
        if isinstance(body, tuple):
            return run_wrk(url, body[0], concurrency, duration, workdir, body[1])
        return run_wrk(url, body, concurrency, duration, workdir)

    return run


def _ghz_load(
    ghz: str, server: Server, messages: dict[int, bytes], workdir: Path
) -> Callable[[int, int, float], dict[str, float]]:
    def run(rows: int, concurrency: int, duration: float) -> dict[str, float]:
        return run_ghz(ghz, server.grpc_port, messages[rows], concurrency, duration, workdir)

    return run


# ------------------------------------------------------------------------------ server modes


def run_ours(model_dir: Path, port: int, grpc_port: int, *, bins: bool) -> int:
    """Our server, in-process settings (``--no-bins`` switches feature counting off)."""
    from modelops.serving.logs import configure_logging
    from modelops.serving.server import serve
    from modelops.serving.settings import ServeSettings

    configure_logging("WARNING")
    settings = ServeSettings(
        model_uri=model_dir.as_uri(),
        name=MODEL_NAME,
        host="127.0.0.1",
        port=port,
        grpc_port=grpc_port,
        count_feature_bins=bins,
    )
    return serve(settings)


def run_floor(port: int) -> int:
    """The floor: the same uvicorn configuration as ours, answering with a constant."""
    from modelops.serving.logs import configure_logging
    from modelops.serving.server import DrainingServer, uvicorn_config

    configure_logging("WARNING")
    body = (
        b'{"model_name":"model","model_version":"v1","outputs":[{"name":"predict",'
        b'"datatype":"INT64","shape":[1],"data":[0]}]}'
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        message = await receive()
        while message.get("more_body"):
            message = await receive()
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    config = uvicorn_config(app, "127.0.0.1", port)
    DrainingServer(config).run()
    return 0


def run_bare(model_dir: Path, port: int) -> int:
    """The bare handler: the floor plus the least a V2 prediction takes (see the docstring)."""
    import orjson

    from modelops.serving.loader import load_model_dir
    from modelops.serving.logs import configure_logging
    from modelops.serving.server import DrainingServer, uvicorn_config

    configure_logging("WARNING")
    estimator = load_model_dir(model_dir).estimator
    coef, intercept, classes = estimator.coef_[0], estimator.intercept_[0], estimator.classes_
    option = orjson.OPT_SERIALIZE_NUMPY

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":  # the readiness probe of wait_ready
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b'{"ready":true}'})
            return
        message = await receive()
        body = message.get("body", b"")
        while message.get("more_body"):
            message = await receive()
            body += message.get("body", b"")
        tensor = orjson.loads(body)["inputs"][0]
        features = np.array(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
        labels = classes[(features @ coef + intercept > 0).astype(np.intp)]
        output = {"name": "predict", "datatype": "INT64", "shape": [len(labels)], "data": labels}
        answer = orjson.dumps(
            {"model_name": MODEL_NAME, "model_version": "v1", "outputs": [output]}, option=option
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(answer)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    DrainingServer(uvicorn_config(app, "127.0.0.1", port)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
