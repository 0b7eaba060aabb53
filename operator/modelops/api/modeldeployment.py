"""``ModelDeployment``: a scikit-learn model served by our model server (Deployment + Service)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from modelops.api.base import (
    ApiModel,
    FreeForm,
    Kind,
    ModelUri,
    PrinterColumn,
    ResourceRequirements,
    StatusModel,
    Version,
)
from modelops.api.conditions import ConditionList
from modelops.api.storage import ObjectStorage

KIND = Kind(
    kind="ModelDeployment",
    plural="modeldeployments",
    singular="modeldeployment",
    short_names=("mdep",),
    printer_columns=(
        PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="Ready")].status'),
        PrinterColumn("Phase", "string", ".status.phase"),
        PrinterColumn("Version", "string", ".status.modelVersion"),
        PrinterColumn("Replicas", "integer", ".status.readyReplicas"),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
    ),
    scale=True,
)

HISTORY_LIMIT = 20
"""How many served versions ``status.history`` keeps (oldest dropped first)."""

ModelFormat = Literal["skops", "joblib"]
Phase = Literal["Pending", "Progressing", "Ready", "Degraded", "Failed"]


class ModelSource(ApiModel):
    """Where the model directory is and how to load it."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.format) || self.format != 'joblib' || "
                    "(has(self.allowUnsafePickle) && self.allowUnsafePickle)",
                    "message": "format joblib loads a pickle: set allowUnsafePickle: true "
                    "to accept that risk",
                }
            ]
        }
    }

    uri: ModelUri
    """Directory holding model.skops, profile.json and metadata.json:
    pvc://<claim>/<path>, file:///<path>, http(s)://<host>/<path>, or s3://<bucket>/<prefix>
    (read only once its complete.json marker is there, as modelops train and package write it)."""
    version: Version | None = None
    """Version label of the model; defaults to the version in metadata.json."""
    format: ModelFormat = "skops"
    """Serialisation format: skops (safe, default) or joblib (a pickle)."""
    allow_unsafe_pickle: bool = False
    """Allow loading a joblib/pickle file, which can run arbitrary code. Off by default."""

    @model_validator(mode="after")
    def _pickle_needs_opt_in(self) -> ModelSource:
        if self.format == "joblib" and not self.allow_unsafe_pickle:
            raise ValueError(
                "format joblib loads a pickle: set allowUnsafePickle: true to accept that risk"
            )
        return self


class ServingSpec(ApiModel):
    """How the model server listens and what it accepts."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.grpcPort) || self.grpcPort == 0 || self.grpcPort >= 1024",
                    "message": "grpcPort is 0 (no gRPC) or a non-privileged port (1024-65535)",
                },
                {
                    "rule": "!has(self.grpcPort) || self.grpcPort != (has(self.port) ? "
                    "self.port : 8080)",
                    "message": "grpcPort must differ from port",
                },
            ]
        }
    }

    port: Annotated[int, Field(ge=1024, le=65535)] = 8080
    """Container port of the V2 API and /metrics (non-privileged)."""
    grpc_port: Annotated[int, Field(ge=0, le=65535)] = 8081
    """Container port of the gRPC inference service (inference.GRPCInferenceService); 0 turns
    gRPC off. The probes stay on the HTTP port."""
    max_rows: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    """Most rows accepted in one inference request; more gives HTTP 400."""
    max_request_bytes: Annotated[int, Field(ge=1024, le=256 * 1024 * 1024)] = 8 * 1024 * 1024
    """Largest request body accepted; more gives HTTP 413."""

    @model_validator(mode="after")
    def _grpc_port_is_free(self) -> ServingSpec:
        if 0 < self.grpc_port < 1024:
            raise ValueError("grpcPort is 0 (no gRPC) or a non-privileged port (1024-65535)")
        if self.grpc_port == self.port:
            raise ValueError("grpcPort must differ from port")
        return self


RESERVED_ENV_PREFIX = "MODELOPS_"
RESERVED_ENV_MESSAGE = (
    "names starting with MODELOPS_ are reserved for the operator's own settings "
    "(use the spec fields, e.g. model.allowUnsafePickle)"
)


class EnvVar(ApiModel):
    """An environment variable for the model server container."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.value) && has(self.valueFrom))",
                    "message": "set value or valueFrom, not both",
                },
                {
                    "rule": f"!self.name.startsWith('{RESERVED_ENV_PREFIX}')",
                    "message": RESERVED_ENV_MESSAGE,
                },
            ]
        }
    }

    name: Annotated[
        str, Field(min_length=1, max_length=256, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    ]
    """Variable name."""
    value: str | None = None
    """Literal value."""
    value_from: FreeForm | None = None
    """Source of the value (a Kubernetes EnvVarSource, e.g. configMapKeyRef)."""

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name.startswith(RESERVED_ENV_PREFIX):
            raise ValueError(RESERVED_ENV_MESSAGE)
        return name

    @model_validator(mode="after")
    def _one_source(self) -> EnvVar:
        if self.value is not None and self.value_from is not None:
            raise ValueError("set value or valueFrom, not both")
        return self


class ModelDeploymentSpec(ApiModel):
    """Desired state: which model to serve, how many replicas, and how."""

    model: ModelSource
    """The model to serve."""
    replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    """Number of serving pods."""
    image: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    """Container image of the model server; defaults to the operator's configured image."""
    resources: ResourceRequirements | None = None
    """CPU and memory of each serving pod; defaults to the operator's configured resources."""
    serving: ServingSpec = ServingSpec()
    """Model server settings."""
    env: Annotated[list[EnvVar], Field(max_length=64)] = []
    """Extra environment variables for the model server."""
    storage: ObjectStorage | None = None
    """Object storage of s3:// model URIs: endpoint, region and the Secret with its keys."""
    node_selector: dict[str, str] = {}
    """Node labels the serving pods must run on."""
    tolerations: Annotated[list[FreeForm], Field(max_length=64)] = []
    """Tolerations of the serving pods (Kubernetes Toleration objects)."""


class HistoryEntry(StatusModel):
    """A model version that was served, and why it was."""

    version: str
    """Model version."""
    uri: str
    """Model URI."""
    time: datetime
    """When this version started being served."""
    reason: str
    """Why: Created, Updated, CandidatePromoted, RolledBack, ..."""


class ModelDeploymentStatus(StatusModel):
    """Observed state, written by the operator."""

    observed_generation: int | None = None
    """The metadata.generation the status describes."""
    phase: Phase | None = None
    """Pending, Progressing, Ready, Degraded or Failed."""
    replicas: int | None = None
    """Serving pods that exist (mirrored from the Deployment)."""
    ready_replicas: int | None = None
    """Serving pods that are ready."""
    selector: str | None = None
    """Label selector of the serving pods (for the scale subresource and autoscalers)."""
    model_uri: str | None = None
    """URI of the model being served."""
    model_version: str | None = None
    """Version of the model being served."""
    url: str | None = None
    """In-cluster URL of the V2 inference API."""
    conditions: ConditionList = []
    """Ready, Progressing and Degraded, Kubernetes-style."""
    history: Annotated[list[HistoryEntry], Field(max_length=HISTORY_LIMIT)] = []
    """The most recent versions served, newest last."""


class ObjectMeta(StatusModel):
    """The part of metadata the types look at; everything else passes through."""

    model_config = StatusModel.model_config | {"extra": "allow"}

    name: str | None = None
    namespace: str | None = None
    generation: int | None = None
    annotations: dict[str, str] = {}
    labels: dict[str, str] = {}


class ModelDeployment(ApiModel):
    """A scikit-learn model served over the Open Inference Protocol v2 by a Deployment of
    model-server pods and a Service."""

    api_version: Literal["modelops.dev/v1alpha1"]
    """modelops.dev/v1alpha1."""
    kind: Literal["ModelDeployment"]
    """ModelDeployment."""
    metadata: ObjectMeta
    """Standard object metadata."""
    spec: ModelDeploymentSpec
    """Desired state."""
    status: ModelDeploymentStatus | None = None
    """Observed state."""
