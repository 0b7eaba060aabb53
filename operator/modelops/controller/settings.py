"""The operator's configuration: one documented class, read from ``MODELOPS_*`` variables.

Every field below is the environment variable ``MODELOPS_<FIELD NAME IN UPPER CASE>``; for
example ``MODELOPS_METRICS_PORT=9000``. ``MODELOPS_DEFAULT_RESOURCES`` takes JSON. A bad value stops
the operator at start with a message naming the variable, never later in a handler.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from modelops.resources import DEFAULT_IMAGE, BuildDefaults
from modelops.storage import DEFAULT_PVC_ROOT

ENV_PREFIX = "MODELOPS_"
Port = Annotated[int, Field(ge=0, le=65535)]
Seconds = Annotated[float, Field(gt=0, le=86_400)]


def _comma_separated(value: Any) -> Any:
    """A comma-separated string (as an environment variable gives it, e.g. ``10000,50,10``)
    as a list; anything else as it is."""
    return [part.strip() for part in value.split(",")] if isinstance(value, str) else value


GcThresholds = Annotated[
    tuple[
        Annotated[int, Field(ge=1, le=10_000_000)],
        Annotated[int, Field(ge=1, le=10_000)],
        Annotated[int, Field(ge=1, le=10_000)],
    ],
    BeforeValidator(_comma_separated),
]


class SettingsError(ValueError):
    """An environment variable with a value the operator cannot use."""


class OperatorSettings(BaseModel):
    """Operator-wide settings (environment variables ``MODELOPS_<NAME>``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    image: Annotated[str, Field(min_length=1)] = DEFAULT_IMAGE
    """Image of serving pods and retraining Jobs when a ModelDeployment names none."""
    default_resources: dict[str, Any] = Field(default_factory=lambda: BuildDefaults().resources)
    """Container resources when a spec names none (JSON, e.g. {"requests":{"cpu":"100m"}})."""
    pvc_root: str = DEFAULT_PVC_ROOT
    """Where pvc:// claims are mounted inside the pods the operator creates."""
    image_pull_policy: str = "IfNotPresent"
    """Pull policy of the pods the operator creates."""
    progress_deadline_seconds: Annotated[int, Field(ge=10, le=86_400)] = 600
    """Deployment progressDeadlineSeconds; also how long a promoted version gets to become
    Ready before it is rolled back."""
    metrics_host: str = "0.0.0.0"  # noqa: S104 - scraped from other pods
    """Address of the operator's /metrics endpoint."""
    metrics_port: Port = 8000
    """Port of the operator's /metrics endpoint (0 disables it)."""
    health_host: str = "0.0.0.0"  # noqa: S104 - probed by the kubelet
    """Address of Kopf's liveness endpoint."""
    health_port: Port = 8080
    """Port of Kopf's liveness endpoint /healthz (0 disables it)."""
    resync_seconds: Seconds = 60.0
    """How often every ModelDeployment is reconciled even without a change (a safety net)."""
    drift_tick_seconds: Seconds = 5.0
    """How often a DriftPolicy that follows its retraining (Job, approval, rollout) is ticked, and
    when a failed tick is tried again; a settled policy is ticked when its interval or schedule
    comes due (``scheduler``)."""
    status_report_seconds: Seconds = 300.0
    """How old a DriftPolicy's status may get before the latest scores are written when no
    decision changed (a decision is written at once; the metrics carry every evaluation). Each
    policy reports a little sooner, at a period of its own (``reporting.report_period``)."""
    scrape_timeout_seconds: Seconds = 5.0
    """Timeout of one HTTP request to a serving pod or to Prometheus."""
    scrape_concurrency: Annotated[int, Field(ge=1, le=256)] = 16
    """Serving pods scraped in parallel for one policy."""
    watch_server_timeout_seconds: Annotated[int, Field(ge=10, le=3600)] = 300
    """Server-side timeout of each watch request: watches are re-established at least this
    often, so a silently dead connection is noticed."""
    api_timeout_seconds: Seconds = 30.0
    """Timeout of one Kubernetes API request made by the controller."""
    gc_thresholds: GcThresholds = (10_000, 50, 10)
    """Python's garbage collector thresholds (``gc.set_threshold``; CPython's default is
    700,10,10). An evaluation's decoded counts, scores and status live through several young
    collections on the busy handler threads, so with the default much of it is moved to the oldest
    generation, and those moves start full collections of the whole heap: at 2,000 policies
    (~1.5 million objects) 1-1.6 s each, 26 % of the operator's CPU. With 10000,50,10 most of
    it dies young: 6 % (``benchmarks/operator_bench.py``; figures in README)."""

    def build_defaults(self) -> BuildDefaults:
        """What the pure builders fill in."""
        return BuildDefaults(
            image=self.image,
            resources=self.default_resources,
            pvc_root=self.pvc_root,
            progress_deadline_seconds=self.progress_deadline_seconds,
            image_pull_policy=self.image_pull_policy,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorSettings:
        """Settings from ``MODELOPS_*`` variables; SettingsError names the bad one."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            key = ENV_PREFIX + name.upper()
            if key not in env:
                continue
            raw = env[key]
            if name == "default_resources":
                try:
                    values[name] = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise SettingsError(f"{key} is not valid JSON: {exc}") from None
            else:
                values[name] = raw
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = [_describe(error) for error in exc.errors(include_url=False)]
            raise SettingsError("; ".join(dict.fromkeys(problems))) from None


def _describe(error: Any) -> str:
    """``MODELOPS_NAME: message``, saying which value of a comma-separated list is meant."""
    name, *where = error["loc"]
    position = f" (value {where[0] + 1})" if where and isinstance(where[0], int) else ""
    return f"{ENV_PREFIX}{str(name).upper()}{position}: {error['msg']}"
