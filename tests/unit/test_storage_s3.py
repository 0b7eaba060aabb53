"""``s3://`` URIs without a server: parsing, the client's configuration from the environment,
and the completion marker's format (tests/integration/test_object_storage.py uses a real one)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from modelops.storage import StorageError, check_bucket, join_uri, parse_uri, redact_uri
from modelops.storage import s3 as s3config
from modelops.storage.s3dirs import MARKER_FORMAT, FileDigest, Manifest, manifest_of


@pytest.mark.parametrize(
    ("uri", "bucket", "key"),
    [
        ("s3://models/iris/v1", "models", "iris/v1"),
        ("s3://models/iris/v1/", "models", "iris/v1/"),
        ("s3://models", "models", ""),
        ("S3://team-a.models/iris%20v1", "team-a.models", "iris v1"),
    ],
)
def test_an_s3_uri_names_a_bucket_and_a_key(uri: str, bucket: str, key: str) -> None:
    parsed = parse_uri(uri)
    assert (parsed.scheme, parsed.bucket, parsed.path) == ("s3", bucket, key)
    assert parsed.is_remote
    assert parsed.is_object_store
    assert not parsed.is_http
    assert s3config.location(uri) == (bucket, key)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3://models/a/../b", "'..' is not allowed"),
        ("s3://models/x?versionId=2", "no ?query or #fragment"),
        ("s3://models/x#v", "no ?query or #fragment"),
        ("s3://Models/x", "does not name a valid bucket"),
        ("s3://key:secret@models/x", "does not name a valid bucket"),
        ("s3:///x", "does not name a valid bucket"),
    ],
)
def test_a_bad_s3_uri_is_refused(uri: str, message: str) -> None:
    with pytest.raises(StorageError, match=re.escape(message)):
        parse_uri(uri)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("abc", True),
        ("a.b-c", True),
        ("ab", False),
        ("a" * 63, True),
        ("a" * 64, False),
        ("a..b", False),
        ("10.1.2.3", False),
        ("-ab", False),
        ("ab-", False),
        ("a_b", False),
    ],
)
def test_bucket_names_follow_the_s3_rules(name: str, valid: bool) -> None:
    assert check_bucket(name) == valid


def test_a_key_cannot_climb_out_of_its_prefix() -> None:
    assert join_uri("s3://models/iris", "v2") == "s3://models/iris/v2"
    for name in ("..", "a/b", ""):
        with pytest.raises(StorageError):
            join_uri("s3://models/iris", name)


def test_the_client_is_configured_from_the_standard_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (*s3config.ENDPOINT_ENVS, *s3config.REGION_ENVS, s3config.PATH_STYLE_ENV):
        monkeypatch.delenv(name, raising=False)
    assert s3config.endpoint() is None
    assert s3config.region() == "us-east-1"
    assert not s3config.path_style()  # AWS itself: virtual-host style
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio.storage:9000")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert s3config.endpoint() == "http://minio.storage:9000"
    assert s3config.region() == "eu-west-1"
    assert s3config.path_style()  # a self-hosted endpoint: path style unless told otherwise
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://seaweedfs:8333")
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    monkeypatch.setenv(s3config.PATH_STYLE_ENV, "false")
    assert s3config.endpoint() == "http://seaweedfs:8333"
    assert s3config.region() == "eu-north-1"
    assert not s3config.path_style()


def test_the_marker_lists_every_file_with_its_size_and_digest(tmp_path: Path) -> None:
    (tmp_path / "model.skops").write_bytes(b"model")
    (tmp_path / "profile.json").write_text("{}")
    manifest = manifest_of(tmp_path)
    assert sorted(manifest.files) == ["model.skops", "profile.json"]
    assert manifest.files["model.skops"] == FileDigest(5, hashlib.sha256(b"model").hexdigest())
    assert Manifest.from_json(manifest.to_json().encode(), "s3://b/m") == manifest
    assert MARKER_FORMAT in manifest.to_json()


@pytest.mark.parametrize(
    "text",
    [b"", b"[]", b'{"format": "other", "files": {}}', b'{"format": "modelops.dev/complete/v1"}'],
)
def test_a_marker_in_another_format_is_refused(text: bytes) -> None:
    with pytest.raises(StorageError, match=r"is not a valid complete\.json"):
        Manifest.from_json(text, "s3://b/v1/complete.json")


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        (
            "https://user:pw@models.example:8443/a/b?X-Amz-Signature=abc#f",
            "https://models.example:8443/a/b",
        ),
        ("http://models.example/iris/v1", "http://models.example/iris/v1"),
        ("s3://models/iris/v1", "s3://models/iris/v1"),
        ("pvc://models/iris", "pvc://models/iris"),
    ],
)
def test_uris_are_shown_without_userinfo_or_query(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown
