"""Turn pydantic validation errors into one line a user can act on (status messages, Events)."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(exc: ValidationError, prefix: str = "spec") -> str:
    """``spec.model.uri: unsupported URI scheme ...; spec.metrics[0].type: ...`` (field, reason).

    Paths are written the way ``kubectl explain`` and the API server write them (camelCase,
    ``[i]`` for list items); pydantic's union-branch tags (``int``, ``str``) are left out.
    """
    parts: list[str] = []
    for error in exc.errors(include_url=False):
        parts.append(f"{field_path(prefix, error['loc'])}: {_reason(error['msg'])}")
    return "; ".join(dict.fromkeys(parts))


def field_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    """``spec.metrics[0].type`` from pydantic's ``("metrics", 0, "type")``."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in _UNION_TAGS or part.startswith("function-"):
            continue
        else:
            path = f"{path}.{part}" if path else part
    return path


_UNION_TAGS = frozenset({"int", "str", "float", "bool", "none", "list", "dict"})


def _reason(message: str) -> str:
    return message.removeprefix("Value error, ")
