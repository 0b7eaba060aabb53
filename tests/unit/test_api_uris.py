"""Model and data URIs: the types and the CRD's CEL rules accept exactly the same strings."""

from __future__ import annotations

from typing import Any

import pytest
from crd_support import crd_for, evaluate_rule, open_api_schema
from pydantic import ValidationError

from modelops.api.base import ApiModel, ModelUri, WritableUri
from modelops.storage import parse_uri

# (uri, readable: accepted as a model/data URI, writable: accepted as an output URI)
URIS = [
    ("pvc://models/iris/v1", True, True),
    ("pvc://models", True, True),
    ("pvc://models/", True, True),
    ("pvc://models.team-a/iris", True, True),
    ("PVC://models/iris", True, True),
    ("file:///srv/models/iris", True, True),
    ("file://localhost/srv/models", True, True),
    ("FILE:///srv/models", True, True),
    ("http://models.example.com/iris/v1", True, False),
    ("https://models.example.com:8443/iris/v1", True, False),
    ("HTTPS://models.example.com/iris", True, False),
    ("http://models.example.com", True, False),
    ("pvc://models/a/./b", True, True),
    ("pvc://models/a..b", True, True),
    ("pvc://models/..hidden", True, True),
    ("pvc://models/iris%20v1", True, True),
    ("http://h/a?q=/../b", True, False),
    ("http://h/a#/../b", True, False),
    ("http://h/a/..?x=1", False, False),
    ("pvc://models/a/..", False, False),
    ("pvc://models/../data/x", False, False),
    ("pvc://models/%2e%2e/x", False, False),
    ("pvc://models/%2E%2E", False, False),
    ("pvc://models/a%2f..%2fb", False, False),
    ("file:///srv/../etc/passwd", False, False),
    ("pvc://../x", False, False),
    ("pvc:///x", False, False),
    ("pvc://Models/x", False, False),
    ("pvc://my_models/x", False, False),
    ("pvc://-models/x", False, False),
    ("pvc:models/x", False, False),
    ("file://host/x", False, False),
    ("file:relative/x", False, False),
    ("file:/srv/models", False, False),
    ("http:///x", False, False),
    ("s3://bucket/x", True, True),
    ("s3://models/iris/v1", True, True),
    ("s3://models", True, True),
    ("s3://models/", True, True),
    ("S3://models/iris", True, True),
    ("s3://team-a.models/iris%20v1/", True, True),
    ("s3://models/a..b", True, True),
    ("s3://models/../x", False, False),
    ("s3://models/a/%2e%2e/x", False, False),
    ("s3://models/x?versionId=1", False, False),
    ("s3://models/x#frag", False, False),
    ("s3://Models/x", False, False),
    ("s3://my_models/x", False, False),
    ("s3://ab/x", False, False),
    ("s3://" + "b" * 64 + "/x", False, False),
    ("s3://-models/x", False, False),
    ("s3://models-/x", False, False),
    ("s3://my..models/x", False, False),
    ("s3://192.168.1.10/x", False, False),
    ("s3://key:secret@models/x", False, False),
    ("s3://models:9000/x", False, False),
    ("s3:///x", False, False),
    ("s3:models/x", False, False),
    ("gs://bucket/x", False, False),
    ("ftp://host/x", False, False),
    ("..", False, False),
    ("", False, False),
    (" pvc://models/x", False, False),
    ("pvc://models/x ", False, False),
    ("pvc://models/iris v1", False, False),
    ("pvc://models/x\n", False, False),
    ("pvc://models/caf\u00e9", False, False),
]


class Uris(ApiModel):
    read: ModelUri | None = None
    """A model or data URI."""
    write: WritableUri | None = None
    """An output URI."""


def accepted_by_types(field: str, uri: str) -> bool:
    try:
        Uris.model_validate({field: uri})
    except ValidationError:
        return False
    return True


def accepted_by_crd(node: dict[str, Any], uri: str) -> bool:
    if not 0 < len(uri) <= node["maxLength"]:
        return False
    return all(
        evaluate_rule(r["rule"], node, uri) is True for r in node["x-kubernetes-validations"]
    )


def crd_uri_nodes() -> tuple[dict[str, Any], dict[str, Any]]:
    retraining = open_api_schema(crd_for("DriftPolicy"))["properties"]["spec"]["properties"][
        "retraining"
    ]["properties"]
    model = open_api_schema(crd_for("ModelDeployment"))["properties"]["spec"]["properties"][
        "model"
    ]["properties"]
    assert model["uri"] == {**retraining["dataUri"], "description": model["uri"]["description"]}
    return retraining["dataUri"], retraining["outputUri"]


@pytest.mark.parametrize(("uri", "readable", "writable"), URIS, ids=[repr(u[0]) for u in URIS])
def test_types_and_crd_agree_on_every_uri(uri: str, readable: bool, writable: bool) -> None:
    read_node, write_node = crd_uri_nodes()
    assert accepted_by_types("read", uri) == readable
    assert accepted_by_crd(read_node, uri) == readable
    assert accepted_by_types("write", uri) == writable
    assert accepted_by_crd(write_node, uri) == writable


@pytest.mark.parametrize("uri", [u for u, readable, _ in URIS if readable])
def test_every_accepted_uri_is_one_storage_can_resolve(uri: str) -> None:
    parsed = parse_uri(uri)
    assert ".." not in parsed.path.split("/")
