"""``s3://`` URIs against a real S3 server (SeaweedFS, tests/s3_support.py), through the real
commands: serve, train from S3 data to an S3 output, package to S3, kills mid-publish, and the
one-line errors (exit 2) of wrong credentials, a missing bucket and a missing key."""

from __future__ import annotations

import contextlib
import json
import os
import random
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelops.artifacts import MODEL_DIR_FILES, TrainingResult
from modelops.serving.loader import LoadedModel, load_model_dir
from modelops.storage import StorageError
from modelops.storage.fetch import fetch_dir
from modelops.storage.s3dirs import MARKER, upload_version
from modelops.training.publish import PAUSE_ENV
from s3_support import SECRET_KEY, S3Server
from serving_support import running_server, start_server, stop_server

pytestmark = pytest.mark.integration

MODELOPS = [sys.executable, "-m", "modelops"]
BUCKET = "models"
CHAMPION = f"s3://{BUCKET}/iris/v1"
FRESH = f"s3://{BUCKET}/data/fresh.csv"
STEADY = f"s3://{BUCKET}/data/steady.csv"
MISSING = "no-such-bucket"


def clean_env(s3: S3Server, **overrides: str) -> dict[str, str]:
    """The test's environment without MODELOPS_* or AWS_* settings, pointed at ``s3``."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("MODELOPS_", "AWS_", "BOTO"))}
    return {**kept, **s3.env(**overrides)}


def modelops(s3: S3Server, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MODELOPS, *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=clean_env(s3, **env),
        check=False,
    )


@contextlib.contextmanager
def s3_environment(s3: S3Server) -> Iterator[None]:
    """This process's environment pointed at ``s3`` (for the storage layer called in-process)."""
    saved = dict(os.environ)
    os.environ.update(s3.env())
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def load_from_s3(s3: S3Server, uri: str, workdir: Path) -> LoadedModel:
    with s3_environment(s3):
        return load_model_dir(fetch_dir(uri, workdir, MODEL_DIR_FILES))


@pytest.fixture(scope="module")
def stored(s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A champion and two data files in the bucket (and their local originals)."""
    root = tmp_path_factory.mktemp("s3-artifacts")
    done = modelops(s3, "example", "model", "--dataset", "iris", "--output", str(root / "v1"))
    assert done.returncode == 0, done.stderr
    for name, shift in (("fresh.csv", "1.5"), ("steady.csv", "0")):
        done = modelops(
            s3, "example", "data", "--dataset", "iris", "--rows", "300", "--seed", "1",
            "--shift", shift, "--output", str(root / name),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        s3.put(f"s3://{BUCKET}/data/{name}", (root / name).read_bytes())
    s3.create_bucket(BUCKET)
    with s3_environment(s3):
        upload_version(root / "v1", CHAMPION)
    return root


def train_args(output: str, *extra: str, data: str = FRESH, version: str = "v2") -> list[str]:
    return [
        "train",
        "--data-uri", data,
        "--base-model-uri", CHAMPION,
        "--output-uri", output,
        "--version", version,
        *extra,
    ]  # fmt: skip


def result_of(done: subprocess.CompletedProcess[str]) -> TrainingResult:
    assert "Traceback" not in done.stderr, done.stderr
    return TrainingResult.model_validate_json(done.stdout.strip().splitlines()[-1])


def test_serve_a_model_from_s3(s3: S3Server, stored: Path, tmp_path: Path) -> None:
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
    request = {
        "inputs": [
            {"name": "input-0", "shape": list(rows.shape), "datatype": "FP64",
             "data": rows.ravel().tolist()}
        ]
    }  # fmt: skip
    with running_server(CHAMPION, tmp_path / "serve.log", name="iris", env=s3.env()) as server:
        with server.client() as client:
            response = client.post("/v2/models/iris/infer", json=request)
        assert response.status_code == 200, response.text
        assert len(response.json()["outputs"][0]["data"]) == 2
        assert "Model iris version v1 loaded" in server.log()
    assert SECRET_KEY not in server.log()


def test_train_from_s3_data_to_s3_output_then_no_op_then_conflict(
    s3: S3Server, stored: Path, tmp_path: Path
) -> None:
    output = f"s3://{BUCKET}/train-once"
    done = modelops(s3, *train_args(output))
    assert done.returncode == 0, done.stderr
    result = result_of(done)
    assert result.succeeded
    assert result.uri == f"{output}/v2"
    files = [*sorted(MODEL_DIR_FILES), MARKER, "training.json", "card.json", "card.md"]
    assert s3.keys(BUCKET, "train-once/") == sorted(f"train-once/v2/{n}" for n in files)
    loaded = load_from_s3(s3, result.uri, tmp_path / "fetched")
    assert loaded.metadata.version == "v2"
    assert loaded.metadata.data_uri == FRESH
    assert loaded.metadata.metrics == result.metrics

    marker = s3.client().head_object(Bucket=BUCKET, Key=f"train-once/v2/{MARKER}")
    again = modelops(s3, *train_args(output))
    assert again.returncode == 0, again.stderr
    assert result_of(again) == result
    assert "already trained from the same inputs" in again.stderr
    after = s3.client().head_object(Bucket=BUCKET, Key=f"train-once/v2/{MARKER}")
    assert after["ETag"] == marker["ETag"]
    assert after["LastModified"] == marker["LastModified"]

    clash = modelops(s3, *train_args(output, data=STEADY))
    assert clash.returncode == 2
    assert result_of(clash).reason == "VersionConflict"
    assert "modelops train: error: version 'v2' already exists" in clash.stderr


def test_package_to_s3(s3: S3Server, stored: Path, tmp_path: Path) -> None:
    import pandas as pd
    import skops.io
    from sklearn.linear_model import LogisticRegression

    frame = pd.read_csv(stored / "steady.csv")
    model = LogisticRegression(max_iter=500).fit(frame.drop(columns=["target"]), frame["target"])
    skops.io.dump(model, tmp_path / "model.skops")
    output = f"s3://{BUCKET}/packaged/v7"
    args = [
        "package", "--model", str(tmp_path / "model.skops"),
        "--reference-data", str(stored / "steady.csv"), "--target", "target",
        "--version", "v7", "--output", output,
    ]  # fmt: skip
    done = modelops(s3, *args)
    assert done.returncode == 0, done.stderr
    assert s3.keys(BUCKET, "packaged/") == sorted(
        f"packaged/v7/{n}" for n in (*MODEL_DIR_FILES, MARKER, "card.json", "card.md")
    )
    loaded = load_from_s3(s3, output, tmp_path / "fetched")
    assert loaded.metadata.version == "v7"
    card = modelops(s3, "card", output, "--format", "json")
    assert card.returncode == 0, card.stderr
    assert json.loads(card.stdout)["version"] == "v7"
    assert json.loads(card.stdout)["madeBy"] == "modelops package"
    assert loaded.metadata.features == [str(c) for c in frame.columns if c != "target"]

    again = modelops(s3, *args)
    assert again.returncode == 2
    expected = f"modelops package: error: output {output} already holds a model directory"
    assert again.stderr.strip() == expected


def start_paused_training(s3: S3Server, output: str) -> subprocess.Popen[str]:
    """A run that pauses with every file uploaded and the marker not, once it got there."""
    process = subprocess.Popen(
        [*MODELOPS, *train_args(output)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(s3, **{PAUSE_ENV: "60"}),
    )
    assert process.stderr is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stderr, selectors.EVENT_READ)
    deadline = time.monotonic() + 120
    seen: list[str] = []
    try:
        while time.monotonic() < deadline:
            if not selector.select(timeout=1):
                continue
            line = process.stderr.readline()
            seen.append(line)
            if line.startswith("Staged ") or not line:
                break
        assert seen, "the trainer printed nothing"
        assert seen[-1].startswith(f"Staged {output}/v2;"), "".join(seen)
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        selector.close()
    return process


def test_sigkill_before_the_marker_leaves_nothing_that_loads(
    s3: S3Server, stored: Path, tmp_path: Path
) -> None:
    output = f"s3://{BUCKET}/killed"
    process = start_paused_training(s3, output)
    process.kill()
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    keys = s3.keys(BUCKET, "killed/")
    assert "killed/v2/model.skops" in keys  # killed with every file uploaded
    assert f"killed/v2/{MARKER}" not in keys
    with pytest.raises(StorageError, match=f"not a complete model directory: it has no {MARKER}"):
        load_from_s3(s3, f"{output}/v2", tmp_path / "partial")
    server = start_server(f"{output}/v2", tmp_path / "serve.log", env=s3.env(), wait_ready=False)
    try:
        assert server.process.wait(timeout=60) != 0
    finally:
        stop_server(server)
    assert f"has no {MARKER}" in server.log()

    done = modelops(s3, *train_args(output))  # a re-run writes over the partial upload
    assert done.returncode == 0, done.stderr
    assert load_from_s3(s3, f"{output}/v2", tmp_path / "whole").metadata.version == "v2"


def test_kills_at_random_moments_leave_nothing_or_a_whole_model(
    s3: S3Server, stored: Path, tmp_path: Path
) -> None:
    # Kill moments are fractions of a whole run timed here, so they fall inside the run
    # (start-up, download, training, upload) on a slow machine as on a fast one.
    started = time.monotonic()
    done = modelops(s3, *train_args(f"s3://{BUCKET}/timed"))
    whole_run = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    chooser = random.Random(20261205)
    for attempt in range(3):
        output = f"s3://{BUCKET}/random-{attempt}"
        process = subprocess.Popen(
            [*MODELOPS, *train_args(output)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=clean_env(s3),
        )
        try:
            process.wait(timeout=chooser.uniform(0.3, 1.0) * whole_run)  # the kill moment
        except subprocess.TimeoutExpired:
            process.kill()
        process.wait(timeout=30)
        keys = s3.keys(BUCKET, f"random-{attempt}/")
        if f"random-{attempt}/v2/{MARKER}" in keys:  # finished before the kill: then whole
            load_from_s3(s3, f"{output}/v2", tmp_path / f"whole-{attempt}")
        else:
            with pytest.raises(StorageError, match="not a complete model directory"):
                load_from_s3(s3, f"{output}/v2", tmp_path / f"partial-{attempt}")


@pytest.mark.parametrize(
    ("changes", "env", "message"),
    [
        ({}, {"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, "access denied (SignatureDoesNotMatch)"),
        ({}, {"AWS_ACCESS_KEY_ID": "nobody"}, "access denied (InvalidAccessKeyId)"),
        (
            {"data": "s3://no-such-bucket/data.csv"},
            {},
            "the bucket 'no-such-bucket' does not exist",
        ),
        ({"data": f"s3://{BUCKET}/data/missing.csv"}, {}, "no such object"),
        ({"output": "s3://no-such-bucket/out"}, {}, "the bucket 'no-such-bucket' does not exist"),
    ],
    ids=["wrong-secret", "unknown-key", "missing-bucket", "missing-key", "missing-output-bucket"],
)
def test_storage_errors_are_one_line_and_exit_2(
    s3: S3Server, stored: Path, changes: dict[str, str], env: dict[str, str], message: str
) -> None:
    output = changes.get("output", f"s3://{BUCKET}/never")
    done = modelops(s3, *train_args(output, data=changes.get("data", FRESH)), **env)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("modelops train: error: ")
    assert message in errors[0]
    assert result_of(done).reason == "InvalidInput"
    assert SECRET_KEY not in done.stderr + done.stdout
    assert "not-the-secret" not in done.stderr + done.stdout


def test_a_server_with_wrong_credentials_exits_with_the_reason(
    s3: S3Server, stored: Path, tmp_path: Path
) -> None:
    server = start_server(
        CHAMPION,
        tmp_path / "serve.log",
        env=s3.env(AWS_SECRET_ACCESS_KEY="not-the-secret"),
        wait_ready=False,
    )
    try:
        assert server.process.wait(timeout=60) != 0
    finally:
        stop_server(server)
    assert "access denied (SignatureDoesNotMatch)" in server.log()
    assert "not-the-secret" not in server.log()


def test_drift_report_reads_s3_uris(s3: S3Server, stored: Path) -> None:
    def report(reference: str, current: str) -> dict[str, object]:
        done = modelops(
            s3, "drift", "report", "--reference", reference, "--current", current,
            "--ignore-columns", "target", "--format", "json",
        )  # fmt: skip
        assert done.returncode == 1, done.stderr  # the fresh data is shifted: drift
        document: dict[str, object] = json.loads(done.stdout)
        assert (document.pop("reference"), document.pop("current")) == (reference, current)
        return document

    remote = report(f"{CHAMPION}/profile.json", FRESH)
    assert remote == report(str(stored / "v1" / "profile.json"), str(stored / "fresh.csv"))
    assert remote["drifted"] is True
    missing = modelops(
        s3, "drift", "report", "--reference", f"{CHAMPION}/profile.json",
        "--current", f"s3://{BUCKET}/data/missing.csv",
    )  # fmt: skip
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("modelops drift report: error: cannot read")
    assert "no such object" in missing.stderr


def test_the_server_serves_the_card_of_a_model_on_s3(
    s3: S3Server, stored: Path, tmp_path: Path
) -> None:
    output = f"s3://{BUCKET}/carded"
    done = modelops(s3, *train_args(output))
    assert done.returncode == 0, done.stderr
    uri = result_of(done).uri
    printed = modelops(s3, "card", uri, "--format", "json")
    assert printed.returncode == 0, printed.stderr
    with (
        running_server(uri, tmp_path / "serve.log", name="iris", env=s3.env()) as server,
        server.client() as client,
    ):
        card = client.get("/v2/models/iris/card")
    assert card.status_code == 200, card.text
    assert card.json() == json.loads(printed.stdout)
    assert card.json()["madeBy"] == "modelops train"
    with running_server(CHAMPION, tmp_path / "old.log", name="iris", env=s3.env()) as server:
        with server.client() as client:
            assert client.get("/v2/models/iris/card").status_code == 404  # an example: no card
        assert "No model card fetched" in server.log()
