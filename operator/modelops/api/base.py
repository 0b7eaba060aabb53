"""Shared building blocks of the API types: the base model, field types and CRD metadata.

Every field's docstring becomes its CRD description (``kubectl explain``), so write them for users.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainValidator,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from modelops.storage import BUCKET_PATTERN, StorageError, parse_uri


class ApiModel(BaseModel):
    """Base of every spec type: camelCase in YAML, unknown fields rejected, docstrings kept."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        validate_default=True,
        frozen=True,
    )


class StatusModel(BaseModel):
    """Base of status types: written by the operator, so unknown fields are tolerated on read."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_attribute_docstrings=True,
    )


# --- Durations ---------------------------------------------------------------------------------

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> timedelta:
    """A Kubernetes/Go-style duration ("30s", "5m", "1h30m", "250ms") as a timedelta."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration: use a number with ms, s, m or h, e.g. 30s")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


def _check_duration(text: str) -> str:
    parse_duration(text)
    return text


Duration = Annotated[
    str,
    Field(max_length=32),
    AfterValidator(_check_duration),
    WithJsonSchema(
        {"type": "string", "pattern": DURATION_PATTERN, "maxLength": 32},
    ),
]
"""A duration string; its value stays as written so that status and YAML round-trip unchanged."""


@dataclass(frozen=True)
class AtLeast:
    """``Annotated`` metadata: a duration of at least ``minimum``, checked by pydantic and by the
    CRD (a CEL rule), so both layers reject the same values with the same message."""

    minimum: str

    def __post_init__(self) -> None:
        parse_duration(self.minimum)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        bound = parse_duration(self.minimum)

        def check(text: str) -> str:
            if parse_duration(text) < bound:
                raise ValueError(f"must be at least {self.minimum}, got {text}")
            return text

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        result = dict(handler(schema))
        rules = [*result.get("x-kubernetes-validations", []), min_duration_rule(self.minimum)]
        result["x-kubernetes-validations"] = rules
        return result


def at_least(minimum: str) -> AtLeast:
    """The duration is at least ``minimum`` (a duration string), in pydantic and in CEL."""
    return AtLeast(minimum)


def min_duration_rule(minimum: str) -> dict[str, str]:
    """The CEL rule of :class:`AtLeast`, for ``x-kubernetes-validations``."""
    return {
        "rule": f"duration(self) >= duration('{minimum}')",
        "message": f"must be at least {minimum}",
    }


# --- URIs ---------------------------------------------------------------------------------------

_CLAIM = r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?"
CLAIM_PATTERN = rf"^{_CLAIM}$"
# An s3:// URI: a bucket name, then an optional key prefix, no ?query or #fragment.
_S3 = "(?i:s3)://" + BUCKET_PATTERN + "(/[^?#]*)?$"
URI_SCHEME_RULE = {
    "rule": "self.matches('^([pP][vV][cC]://" + _CLAIM + "(/|$)|(?i:file)://(?i:localhost)?/"
    "|(?i:https?)://[^/?#]+|" + _S3 + ")')",
    "message": "must be pvc://<claim>/<path>, file:///<path>, http(s)://<host>/... or "
    "s3://<bucket>/<prefix> (the scheme must be pvc, file, http, https or s3)",
}
WRITABLE_URI_RULE = {
    "rule": "self.matches('^([pP][vV][cC]://"
    + _CLAIM
    + "(/|$)|(?i:file)://(?i:localhost)?/|"
    + _S3
    + ")')",
    "message": "must be a pvc://<claim>/<path>, file:///<path> or s3://<bucket>/<prefix> URI: "
    "the trainer cannot write to http(s)",
}
S3_BUCKET_RULE = {
    # The bucket rules a pattern cannot say without look-ahead, as check_bucket in storage.
    "rule": "!self.matches('^(?i:s3)://([^/]*[.][.]|[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+(/|$))')",
    "message": "an s3:// bucket name may not contain '..' nor be an IP address",
}
NO_DOTDOT_RULE = {
    # Only the path counts (after the authority, before ?query and #fragment), as in storage.
    "rule": "!self.matches('^[^:]*://[^/?#]*[^?#]*(/|%2[fF])([.]|%2[eE]){2}([/?#]|%2[fF]|$)')",
    "message": "'..' is not allowed in a path",
}
PRINTABLE_URI_PATTERN = r"^[!-~]+$"
PRINTABLE_URI_RULE = {
    "rule": f"self.matches('{PRINTABLE_URI_PATTERN}')",
    "message": "must be printable ASCII without spaces: percent-encode other characters (%20)",
}
_URI_RULES = [PRINTABLE_URI_RULE, URI_SCHEME_RULE, NO_DOTDOT_RULE, S3_BUCKET_RULE]


def _check_uri(text: str) -> str:
    if not re.fullmatch(PRINTABLE_URI_PATTERN, text):
        raise ValueError(f"{text!r} {PRINTABLE_URI_RULE['message']}")
    try:
        parsed = parse_uri(text)
    except StorageError as exc:
        raise ValueError(str(exc)) from None
    if parsed.scheme == "file" and not text.lower().startswith("file://"):
        raise ValueError(f"{text!r} is not an absolute file URI: use file:///<path>")
    if parsed.scheme == "pvc" and not re.fullmatch(CLAIM_PATTERN, parsed.claim):
        raise ValueError(
            f"the claim {parsed.claim!r} in {text!r} is not a PersistentVolumeClaim name "
            "(lower-case letters, digits, '-' and '.')"
        )
    return text


ModelUri = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2048,
        json_schema_extra={"x-kubernetes-validations": _URI_RULES},
    ),
    AfterValidator(_check_uri),
]
"""A ``pvc://``, ``file://``, ``http(s)://`` or ``s3://`` URI with no ``..`` segment."""


def _check_writable_uri(text: str) -> str:
    if parse_uri(_check_uri(text)).is_http:
        raise ValueError(WRITABLE_URI_RULE["message"])
    return text


WritableUri = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2048,
        json_schema_extra={
            "x-kubernetes-validations": [
                PRINTABLE_URI_RULE,
                WRITABLE_URI_RULE,
                NO_DOTDOT_RULE,
                S3_BUCKET_RULE,
            ]
        },
    ),
    AfterValidator(_check_writable_uri),
]
"""A URI the trainer can write to: ``pvc://``, ``file://`` or ``s3://``."""


# --- Other field types ---------------------------------------------------------------------------

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
LABEL_VALUE_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"

ObjectName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
"""The name of an object in the same namespace (a DNS-1123 label)."""

Version = Annotated[str, Field(min_length=1, max_length=63, pattern=LABEL_VALUE_PATTERN)]
"""A model version; also used as a label value, so at most 63 characters."""

_NUMBER = r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
QUANTITY_PATTERN = rf"^{_NUMBER}(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?{_NUMBER}))?$"


def _check_quantity(value: object) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"must not be negative, got {value}")
        return value
    if isinstance(value, float):
        raise ValueError(
            f"write {value} as a string, e.g. '{value}' (a quantity is an integer or text)"
        )
    if isinstance(value, str) and re.fullmatch(QUANTITY_PATTERN, value):
        return value
    raise ValueError(f"{value!r} is not a resource quantity: use e.g. 500m, 1Gi or 2")


Quantity = Annotated[
    int | str,
    PlainValidator(_check_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
            "pattern": QUANTITY_PATTERN,
            "minimum": 0,
        }
    ),
]
"""A non-negative Kubernetes resource quantity such as ``500m``, ``1Gi`` or ``2``."""

FreeForm = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]
"""An embedded Kubernetes object passed through as it is (validated by the API server later)."""


class ResourceRequirements(ApiModel):
    """CPU and memory for a container, as in a Pod spec."""

    limits: dict[str, Quantity] | None = None
    """Upper bounds, e.g. ``{cpu: "1", memory: 1Gi}``."""
    requests: dict[str, Quantity] | None = None
    """What the scheduler reserves, e.g. ``{cpu: 250m, memory: 256Mi}``."""


# --- CRD metadata --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry of a CRD (what ``kubectl get`` shows)."""

    name: str
    type: str
    json_path: str
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class Kind:
    """Everything about a custom resource kind that is not a field: names and CRD features."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    categories: tuple[str, ...] = ("modelops",)
    printer_columns: tuple[PrinterColumn, ...] = ()
    scale: bool = False
