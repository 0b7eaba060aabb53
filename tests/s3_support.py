"""A real S3 server for the tests: SeaweedFS's ``weed server -s3`` as a local process.

The binary comes from ``make s3-bin`` (hack/seaweedfs). Everything binds 127.0.0.1 on free ports
and lives in one temporary directory, with the server's log. The S3 gateway has one identity
(:data:`ACCESS_KEY`/:data:`SECRET_KEY`), so a request signed with other credentials is refused as
it would be by AWS. ``stop()`` sends SIGTERM, waits briefly, then SIGKILLs: weed does not always
exit on SIGTERM alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GO_MOD = Path(__file__).resolve().parents[1] / "hack" / "seaweedfs" / "go.mod"
ACCESS_KEY = "modelops-test"
SECRET_KEY = "modelops-test-secret-0123456789"
REGION = "us-east-1"
START_TIMEOUT_SECONDS = 90.0
STOP_GRACE_SECONDS = 3.0


def weed_version() -> str:
    """The SeaweedFS version ``hack/seaweedfs/go.mod`` pins (the cache is named after it)."""
    for line in GO_MOD.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if fields[:1] == ["github.com/seaweedfs/seaweedfs"]:
            return fields[1]
    raise RuntimeError(f"{GO_MOD} pins no github.com/seaweedfs/seaweedfs")


def weed_binary() -> Path:
    """Where ``make s3-bin`` puts ``weed`` (``$MODELOPS_SEAWEEDFS_BIN`` overrides)."""
    if os.environ.get("MODELOPS_SEAWEEDFS_BIN"):
        return Path(os.environ["MODELOPS_SEAWEEDFS_BIN"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "modelops" / "seaweedfs" / weed_version() / "weed"


def s3_problem() -> str | None:
    """Why the S3 server cannot run here, or None."""
    if not os.access(weed_binary(), os.X_OK):
        return f"SeaweedFS is not built ({weed_binary()}): run `make s3-bin` (once; ~5-7 min)"
    return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class S3Server:
    """One ``weed server`` with master, volume, filer and S3 gateway, in ``workdir``."""

    workdir: Path
    host: str = "127.0.0.1"
    """The address every part binds and advertises (a pod reaches the kubelet's gateway)."""
    endpoint: str = ""
    process: subprocess.Popen[bytes] | None = None
    buckets: set[str] = field(default_factory=set)

    @property
    def log(self) -> Path:
        return self.workdir / "weed.log"

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment a process needs to reach this server with the good credentials."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            **overrides,
        }

    def start(self) -> None:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "s3.json"
        identity = {
            "name": "modelops",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        config.write_text(json.dumps({"identities": [identity]}), encoding="utf-8")
        ports = {name: free_port(self.host) for name in PORT_FLAGS}
        self.endpoint = f"http://{self.host}:{ports['-s3.port']}"
        command = [
            str(weed_binary()),
            "server",
            f"-dir={data}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",
            "-filer",
            "-s3",
            f"-s3.config={config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-volume.max=100",
            "-master.volumeSizeLimitMB=64",
            *(f"{flag}={port}" for flag, port in ports.items()),
        ]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        """Until the gateway stores and lists an object with our credentials."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        problem = "no answer"
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}: {self.tail()}")
            try:
                self.create_bucket("modelops-probe")
                self.client().put_object(Bucket="modelops-probe", Key="probe", Body=b"ok")
                return
            except Exception as exc:  # not up yet: connection refused, 503, no volume yet
                problem = f"{type(exc).__name__}: {exc}"
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"SeaweedFS S3 did not get ready: {problem}\n{self.tail()}")

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> Any:
        """A boto3 client of this server (other credentials: a client the server refuses)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=REGION,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def create_bucket(self, name: str) -> str:
        """Create ``name`` unless this server already has it; returns the name."""
        if name not in self.buckets:
            client = self.client()
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                client.create_bucket(Bucket=name)
            self.buckets.add(name)
        return name

    def put(self, uri: str, data: bytes) -> None:
        """Write an object (``s3://bucket/key``), creating its bucket."""
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        self.create_bucket(bucket)
        self.client().put_object(Bucket=bucket, Key=key, Body=data)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` in ``bucket``, sorted."""
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, a short wait, then SIGKILL of the whole process group."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        except ProcessLookupError:
            process.wait(timeout=30)


PORT_FLAGS = (
    "-master.port",
    "-master.port.grpc",
    "-volume.port",
    "-volume.port.grpc",
    "-filer.port",
    "-filer.port.grpc",
    "-s3.port",
    "-s3.port.grpc",
    "-metricsPort",
    "-debug.port",
    "-iam.port",
)
