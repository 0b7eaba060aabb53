"""Why a training run failed, as exception types that carry their exit code and reason.

Exit codes are a contract with the operator (see ``notes/common.md``): 0 success or idempotent
no-op, 3 the data-quality gate failed, 2 bad input or usage, 1 anything else. The ``reason`` is
the CamelCase word written to ``TrainingResult.reason``.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_QUALITY_GATE = 3


class TrainingError(Exception):
    """A run that could not produce a model; the message is shown to the user as is."""

    exit_code = EXIT_FAILED
    reason = "TrainingFailed"


class InvalidInputError(TrainingError, ValueError):
    """A flag, URI, estimator, parameter, model or data file that cannot be used."""

    exit_code = EXIT_BAD_INPUT
    reason = "InvalidInput"


class DataError(InvalidInputError):
    """A data file that is not a well-formed CSV with the columns and types it needs."""

    reason = "InvalidData"


class BaseModelError(InvalidInputError):
    """The champion model cannot be loaded safely or does not describe a usable recipe."""

    reason = "InvalidBaseModel"


class VersionConflictError(InvalidInputError):
    """The candidate version already exists with different content."""

    reason = "VersionConflict"


class QualityGateError(TrainingError):
    """The data is well-formed but not good enough to train on; no model was written."""

    exit_code = EXIT_QUALITY_GATE
    reason = "DataQualityGateFailed"


class TerminatedError(BaseException):
    """SIGTERM arrived (a Job deadline, an eviction): unwind, remove staging, report, exit 1.

    A ``BaseException`` so that no ``except Exception`` on the way can swallow it.
    """

    exit_code = EXIT_FAILED
    reason = "Terminated"
