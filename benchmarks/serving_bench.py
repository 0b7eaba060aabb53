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
- ``floor``: our uvicorn + raw ASGI stack answering every request with a constant;
- ``bare``: the same stack doing the least a V2 prediction takes: parse the JSON body, make the
  matrix, one matrix product with the model's coefficients, serialise the labels; no validation,
  error handling, batching or metrics. What it reaches of the floor bounds what any real handler
  in Python on this stack can reach.

MLServer is installed into its own virtual environment under ``.bench/`` (git-ignored) on first
use, with ``uvloop==0.21.0`` pinned (its worker crashes with newer uvloop). Prints req/s, p50/p99
latency, server CPU (cores busy) and peak RSS, then our/MLServer and our/floor ratios against
the targets, and the cost of feature-bin counting.

    python benchmarks/serving_bench.py [--duration 8] [--skip-mlserver] [--json FILE]
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

    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, N_FEATURES))
    y = (X[:, :3].sum(axis=1) + rng.normal(scale=0.5, size=len(X)) > 0).astype(np.int64)
    estimator = LogisticRegression(max_iter=1000).fit(X, y)
    features = [f"f{i}" for i in range(N_FEATURES)]
    save_model(estimator, directory)
    joblib.dump(estimator, directory / UNSAFE_MODEL_FILE)
    (directory / PROFILE_FILE).write_text(build_profile(X, features).to_json())
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


def start(name: str, command: list[str], port: int, workdir: Path, **kwargs: Any) -> Server:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(pin(0) + command, stdout=out, stderr=subprocess.STDOUT, **kwargs)
    server = Server(name, process, port, log)
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


def start_ours(name: str, model_dir: Path, workdir: Path, *, bins: bool = True) -> Server:
    port = free_port()
    command = [sys.executable, __file__, "--run-ours", str(model_dir), "--port", str(port)]
    if not bins:
        command.append("--no-bins")
    return start(name, command, port, workdir)


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
    settings: dict[str, Any] = {
        "debug": False,
        "http_port": port,
        "grpc_port": free_port(),
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
    return start(name, [str(executable), "start", str(folder)], port, workdir, cwd=folder, env=env)


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
    url: str, body: bytes, concurrency: int, duration: float, workdir: Path
) -> dict[str, float]:
    script = workdir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
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


def check_answers(server: Server, body: bytes, expected: list[Any]) -> None:
    import urllib.request

    request = urllib.request.Request(
        f"{server.url}/v2/models/{MODEL_NAME}/infer",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        doc = json.loads(response.read())
    got = doc["outputs"][0]["data"]
    if server.name != "floor" and got != expected:
        raise RuntimeError(f"{server.name} predicted {got[:5]}..., expected {expected[:5]}...")


def measure(
    server: Server, body: bytes, rows: int, concurrency: int, duration: float, workdir: Path
) -> Result:
    """One wrk run against one server, with the CPU the server (and its workers) used."""
    url = f"{server.url}/v2/models/{MODEL_NAME}/infer"
    before = cpu_seconds(server.process.pid)
    started = time.monotonic()
    figures = run_wrk(url, body, concurrency, duration, workdir)
    elapsed = time.monotonic() - started
    cores = (cpu_seconds(server.process.pid) - before) / elapsed
    return Result(
        server.name,
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
        f"  {r.server:<13} rows={r.rows:<3} conc={r.concurrency:<3}"
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
    for peer in ("mlserver", "mlserver-pw0", "floor", "bare"):
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
        if floor is not None:
            share = ours.requests_per_second / floor.requests_per_second
            print(
                f"  conc={concurrency:<3} vs floor         throughput {share:.0%} of the floor"
                f" (>= 80%)  {'met' if share >= 0.8 else 'MISSED'}"
            )
            bare = report.get("bare", 1, concurrency)
            if bare is not None:
                print(
                    f"  conc={concurrency:<3} for reference: the bare handler reaches"
                    f" {bare.requests_per_second / floor.requests_per_second:.0%} of the floor,"
                    f" ours {ours.requests_per_second / bare.requests_per_second:.0%}"
                    " of the bare handler"
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
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--run-ours", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--run-floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run-bare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-bins", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_ours:
        return run_ours(args.run_ours, args.port, bins=not args.no_bins)
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
        expected = {rows: estimator.predict(X[:rows]).tolist() for rows in ROW_COUNTS}
        starters: list[tuple[str, Any]] = [
            ("ours", lambda: start_ours("ours", model_dir, workdir)),
            ("ours-no-bins", lambda: start_ours("ours-no-bins", model_dir, workdir, bins=False)),
            ("floor", lambda: start_floor(workdir)),
            ("bare", lambda: start_bare(model_dir, workdir)),
        ]
        if not args.skip_mlserver:
            starters += [
                ("mlserver", lambda: start_mlserver("mlserver", model_dir, workdir, None)),
                ("mlserver-pw0", lambda: start_mlserver("mlserver-pw0", model_dir, workdir, 0)),
            ]
        print(
            f"Each scenario: {args.duration:g} s of wrk, {args.rounds} rounds with the servers"
            " interleaved (medians below); server on CPU 0, wrk on CPU 1.",
            flush=True,
        )
        servers: list[Server] = []
        try:
            for _name, starter in starters:
                servers.append(starter())
            for server in servers:
                for rows, body in bodies.items():
                    check_answers(server, body, expected[rows])
                url = f"{server.url}/v2/models/{MODEL_NAME}/infer"
                run_wrk(url, bodies[1], 32, 2, workdir)  # warm-up
            runs: dict[tuple[str, int, int], list[Result]] = {}
            for round_index in range(args.rounds):
                order = (
                    servers[round_index % len(servers) :] + servers[: round_index % len(servers)]
                )
                for rows, body in bodies.items():
                    for concurrency in CONCURRENCY:
                        for server in order:
                            result = measure(
                                server, body, rows, concurrency, args.duration, workdir
                            )
                            runs.setdefault((server.name, rows, concurrency), []).append(result)
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
        report.counting = counting_cost(model_dir, X)
    print_summary(report)
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2))
    return 0


# ------------------------------------------------------------------------------ server modes


def run_ours(model_dir: Path, port: int, *, bins: bool) -> int:
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
