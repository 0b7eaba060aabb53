"""Turn pydantic validation errors into one line a user can act on (status messages, Events)."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(exc: ValidationError, prefix: str = "spec") -> str:
    """``spec.model.uri: unsupported URI scheme ...; spec.replicas: ...`` (field, then reason)."""
    parts = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(p) for p in (prefix, *error["loc"]) if p != "")
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}")
    return "; ".join(parts)
