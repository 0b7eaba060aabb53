"""Domain errors of the server; ``dataplane.http_status`` maps them to HTTP in one place."""

from __future__ import annotations


class ServingError(Exception):
    """Base of every error the server answers with ``{"error": "..."}``."""


class InvalidInputError(ServingError, ValueError):
    """The request is malformed: JSON, shapes, datatypes, feature count, values, rows."""


class ModelNotFoundError(ServingError):
    """The request names a model or a version this server does not serve."""


class EndpointNotFoundError(ServingError):
    """No such endpoint."""


class MethodNotAllowedError(ServingError):
    """The endpoint exists but not for this HTTP method."""

    def __init__(self, message: str, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed


class RequestTooLargeError(ServingError):
    """The request body is over the configured limit."""
