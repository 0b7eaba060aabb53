"""``modelops train`` and ``modelops example`` as real processes, the way the retraining Job and
the operator's tests run them: exit codes, result JSON, idempotency, and kills mid-write."""

from __future__ import annotations

import json
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pytest

from modelops.artifacts import TERMINATION_MESSAGE_LIMIT, TrainingResult
from modelops.serving.loader import load_model_dir

pytestmark = pytest.mark.integration

MODELOPS = [sys.executable, "-m", "modelops"]
PAUSE_ENV = "MODELOPS_TEST_PAUSE_BEFORE_RENAME"


def modelops(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MODELOPS, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**clean_env(), **(env or {})},
        check=False,
    )


def clean_env() -> dict[str, str]:
    """The test's environment without any MODELOPS_* setting that would change the run."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MODELOPS_")}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A champion written by `example model`, and fresh data written by `example data`."""
    root = tmp_path_factory.mktemp("trainer")
    done = modelops("example", "model", "--dataset", "iris", "--output", str(root / "v1"))
    assert done.returncode == 0, done.stderr
    assert TrainingResult.model_validate_json(done.stdout).version == "v1"
    for name, shift in (("fresh.csv", "1.5"), ("steady.csv", "0")):
        done = modelops(
            "example", "data", "--dataset", "iris", "--rows", "300", "--seed", "1",
            "--shift", shift, "--output", str(root / name),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    return root


def train_args(models: Path, output: Path, *extra: str, data: str = "fresh.csv") -> list[str]:
    return [
        "train",
        "--data-uri", (models / data).as_uri(),
        "--base-model-uri", (models / "v1").as_uri(),
        "--output-uri", output.as_uri(),
        "--version", "v2",
        "--termination-log", str(output.parent / f"{output.name}.termination-log"),
        *extra,
    ]  # fmt: skip


def result_of(done: subprocess.CompletedProcess[str], output: Path) -> TrainingResult:
    """The result JSON, checked to be the same on stdout and in the termination log."""
    assert "Traceback" not in done.stderr, done.stderr
    printed = done.stdout.strip().splitlines()[-1]
    logged = (output.parent / f"{output.name}.termination-log").read_text()
    assert printed == logged
    assert len(logged.encode()) < TERMINATION_MESSAGE_LIMIT
    json.loads(logged)
    return TrainingResult.model_validate_json(logged)


def test_retrain_publishes_a_challenger_and_a_rerun_is_a_no_op(
    models: Path, tmp_path: Path
) -> None:
    output = tmp_path / "models"
    done = modelops(*train_args(models, output))
    assert done.returncode == 0, done.stderr
    result = result_of(done, output)
    assert result.succeeded
    assert result.uri == f"{output.as_uri()}/v2"
    assert set(result.metrics) == set(result.baseline) == {"accuracy", "f1", "roc_auc", "log_loss"}
    assert result.metrics["accuracy"] > result.baseline["accuracy"]  # it learned the shift
    loaded = load_model_dir(output / "v2")
    assert loaded.metadata.version == "v2"
    assert loaded.metadata.metrics == result.metrics
    assert [p.name for p in output.iterdir()] == ["v2"]

    files = {p.name: p.stat().st_mtime_ns for p in (output / "v2").iterdir()}
    again = modelops(*train_args(models, output))
    assert again.returncode == 0, again.stderr
    assert again.stdout == done.stdout
    assert {p.name: p.stat().st_mtime_ns for p in (output / "v2").iterdir()} == files

    clash = modelops(*train_args(models, output, "--seed", "9"))
    assert clash.returncode == 2
    conflict = result_of(clash, output)
    assert conflict.reason == "VersionConflict"
    assert "already exists" in conflict.message
    assert "modelops train: error: version 'v2' already exists" in clash.stderr
    assert {p.name: p.stat().st_mtime_ns for p in (output / "v2").iterdir()} == files


def test_every_flag_can_come_from_the_environment(models: Path, tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    env = {
        "MODELOPS_DATA_URI": (models / "steady.csv").as_uri(),
        "MODELOPS_BASE_MODEL_URI": (models / "v1").as_uri(),
        "MODELOPS_OUTPUT_URI": (tmp_path / "out").as_uri(),
        "MODELOPS_VERSION": "20261126-1",
        "MODELOPS_SEED": "3",
        "MODELOPS_TERMINATION_LOG": str(log),
        "MODELOPS_ESTIMATOR": "RandomForestClassifier",
    }
    done = modelops("train", env=env)
    assert done.returncode == 0, done.stderr
    result = TrainingResult.model_validate_json(log.read_text())
    assert result.version == "20261126-1"
    assert load_model_dir(tmp_path / "out" / "20261126-1").metadata.estimator == (
        "RandomForestClassifier"
    )


def corrupt(models: Path, tmp_path: Path, how: str) -> str:
    """A data file broken in one way; returns its file URI."""
    lines = (models / "fresh.csv").read_text().splitlines()
    rows = [line.split(",") for line in lines]
    if how == "missing-target":
        rows = [row[:-1] for row in rows]
    elif how == "text-in-number":
        rows[7][2] = "seven"
    elif how == "too-few-rows":
        rows = rows[:11]
    elif how == "one-class":
        rows = [rows[0]] + [[*row[:-1], "1"] for row in rows[1:]]
    elif how == "missing-values":
        rows = [rows[0]] + [
            [row[0], "", *row[2:]] if i % 3 else row for i, row in enumerate(rows[1:])
        ]
    path = tmp_path / f"{how}.csv"
    path.write_text("\n".join(",".join(row) for row in rows) + "\n")
    return path.as_uri()


@pytest.mark.parametrize(
    ("how", "extra", "code", "reason", "says"),
    [
        ("missing-target", [], 2, "InvalidData", "no target column 'target'"),
        ("text-in-number", [], 2, "InvalidData", "'seven' is not a number"),
        ("too-few-rows", [], 3, "DataQualityGateFailed", "only 10 rows have a target"),
        ("one-class", [], 3, "DataQualityGateFailed", "at least 2 are needed"),
        ("missing-values", [], 3, "DataQualityGateFailed", "too many missing values"),
        ("fine", ["--estimator", "sklearn.svm.SVC"], 2, "InvalidInput", "is not allowed"),
        ("fine", ["--data-uri", "file:///nowhere/data.csv"], 2, "InvalidInput", "no such file"),
        ("fine", ["--base-model-uri", "gs://bucket/v1"], 2, "InvalidInput", "unsupported URI"),
    ],
)
def test_failures_exit_with_their_code_say_why_and_write_no_model(
    models: Path, tmp_path: Path, how: str, extra: list[str], code: int, reason: str, says: str
) -> None:
    output = tmp_path / "models"
    args = train_args(models, output)
    if how != "fine":
        args[args.index("--data-uri") + 1] = corrupt(models, tmp_path, how)
    done = modelops(*args, *extra)
    assert done.returncode == code, done.stderr
    result = result_of(done, output)
    assert (result.reason, result.uri, result.metrics) == (reason, "", {})
    assert says in result.message
    assert f"modelops train: error: {result.message}" in done.stderr
    assert not (output / "v2").exists()


def test_missing_flags_are_a_usage_error(tmp_path: Path) -> None:
    done = modelops("train", "--version", "v2", "--termination-log", str(tmp_path / "log"))
    assert done.returncode == 2
    assert "the following arguments are required: --data-uri" in done.stderr
    done = modelops("train", "--seed", "x", env={"MODELOPS_DATA_URI": "file:///x"})
    assert done.returncode == 2
    assert "'x' is not an integer" in done.stderr


def _read_lines(stream: IO[str], lines: queue.Queue[str]) -> None:
    """Put the lines of ``stream`` on ``lines`` up to the "Staged" one ("" at its end).

    It stops there, so ``communicate()`` is the only reader afterwards.
    """
    for line in stream:
        lines.put(line)
        if line.startswith("Staged "):
            return
    lines.put("")


def start_paused_training(models: Path, output: Path) -> subprocess.Popen[str]:
    """Start a run that pauses between staging and rename, and wait until it got there."""
    process = subprocess.Popen(
        [*MODELOPS, *train_args(models, output)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean_env(), PAUSE_ENV: "60"},
    )
    assert process.stderr is not None
    # A thread reads the lines: select() on the pipe would miss lines already in the text
    # wrapper's buffer (two lines arriving in one read) and wait for the deadline.
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(process.stderr, lines), daemon=True)
    reader.start()
    seen = []
    try:
        while True:
            line = lines.get(timeout=60)
            seen.append(line)
            if line.startswith("Staged ") or not line:
                break
        assert seen[-1].startswith("Staged "), "".join(seen)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process


def test_sigkill_during_the_write_leaves_no_version(models: Path, tmp_path: Path) -> None:
    output = tmp_path / "models"
    process = start_paused_training(models, output)
    try:
        staged = list(output.iterdir())
        assert len(staged) == 1
        assert staged[0].name.startswith(".v2.partial-")
        assert (staged[0] / "model.skops").is_file()  # killed with everything staged
    finally:
        process.kill()
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not (output / "v2").exists()
    assert all(p.name.startswith(".") for p in output.iterdir())

    done = modelops(*train_args(models, output))
    assert done.returncode == 0, done.stderr
    assert [p.name for p in output.iterdir()] == ["v2"]  # the leftover was cleaned up
    load_model_dir(output / "v2")


def test_sigterm_during_the_write_cleans_up_and_reports(models: Path, tmp_path: Path) -> None:
    output = tmp_path / "models"
    process = start_paused_training(models, output)
    process.send_signal(signal.SIGTERM)
    stdout, _ = process.communicate(timeout=30)
    assert process.returncode == 1
    assert list(output.iterdir()) == []
    result = TrainingResult.model_validate_json(stdout.strip().splitlines()[-1])
    assert result.reason == "Terminated"


def test_kills_at_random_moments_leave_nothing_or_a_whole_model(
    models: Path, tmp_path: Path
) -> None:
    # The kill moments are drawn as fractions of a whole run timed here, so they fall inside
    # the run (start-up, training, writing, renaming) on a slow machine as on a fast one.
    timed = tmp_path / "timed"
    started = time.monotonic()
    done = modelops(*train_args(models, timed))
    whole_run = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    output = tmp_path / "models"
    chooser = random.Random(20261126)
    for _ in range(4):
        process = subprocess.Popen(
            [*MODELOPS, *train_args(models, output)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=clean_env(),
        )
        try:
            process.wait(timeout=chooser.uniform(0.1, 1.0) * whole_run)  # the kill moment
        except subprocess.TimeoutExpired:
            process.kill()
        process.wait(timeout=30)
        if (output / "v2").exists():  # finished before the kill: then it must be whole
            load_model_dir(output / "v2")
            shutil.rmtree(output / "v2")
        if output.exists():
            assert all(p.name.startswith(".") for p in output.iterdir())
    done = modelops(*train_args(models, output))
    assert done.returncode == 0, done.stderr
    assert [p.name for p in output.iterdir()] == ["v2"]


@pytest.fixture
def http_server(models: Path) -> Iterator[str]:
    """Python's own HTTP server on 127.0.0.1 serving the module's files."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=models,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_data_and_champion_over_http(models: Path, tmp_path: Path, http_server: str) -> None:
    output = tmp_path / "models"
    args = train_args(models, output)
    args[args.index("--data-uri") + 1] = f"{http_server}/fresh.csv"
    args[args.index("--base-model-uri") + 1] = f"{http_server}/v1"
    done = modelops(*args)
    assert done.returncode == 0, done.stderr
    assert result_of(done, output).succeeded
    assert load_model_dir(output / "v2").metadata.data_uri == f"{http_server}/fresh.csv"

    args[args.index("--data-uri") + 1] = f"{http_server}/absent.csv"
    args[args.index("--version") + 1] = "v3"
    done = modelops(*args)
    assert done.returncode == 2
    assert "404" in result_of(done, output).message


def test_example_data_writes_the_rows_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "wine.csv"
    done = modelops(
        "example", "data", "--dataset", "wine", "--rows", "40", "--seed", "3",
        "--shift", "2", "--features", "alcohol,ash", "--output", str(path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = path.read_text().splitlines()
    assert len(lines) == 41
    assert lines[0].startswith("alcohol,malic_acid,ash,")
    assert lines[0].endswith(",target")

    bad = tmp_path / "bad.csv"
    done = modelops(
        "example", "data", "--dataset", "wine", "--features", "sugar", "--output", str(bad)
    )
    assert done.returncode == 2
    assert "unknown features ['sugar']" in done.stderr
    assert "Traceback" not in done.stderr
    assert not bad.exists()


def test_the_model_server_serves_the_example_and_the_retrained_model(
    models: Path, tmp_path: Path
) -> None:
    from serving_support import running_server, v2_matrix

    output = tmp_path / "models"
    done = modelops(*train_args(models, output))
    assert done.returncode == 0, done.stderr
    rows = np.loadtxt(models / "fresh.csv", delimiter=",", skiprows=1)[:20, :-1]
    for directory in (models / "v1", output / "v2"):
        expected = load_model_dir(directory).estimator.predict(rows)
        log = tmp_path / f"{directory.name}.log"
        with running_server(directory.as_uri(), log) as server, server.client() as client:
            response = client.post("/v2/models/model/infer", json=v2_matrix(rows))
        assert response.status_code == 200, response.text
        predicted = response.json()["outputs"][0]["data"]
        assert predicted == expected.tolist()
