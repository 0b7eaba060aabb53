"""The Deployment of model-server pods for a ModelDeployment (pure: spec in, manifest out)."""

from __future__ import annotations

from typing import Any

from modelops.api import ModelDeploymentSpec
from modelops.resources import labels
from modelops.resources.defaults import BuildDefaults
from modelops.resources.names import deployment_name, label_value
from modelops.resources.owners import Owner
from modelops.resources.security import container_security_context, pod_security_context
from modelops.resources.storage import storage_env
from modelops.resources.volumes import claim_mounts, tmp_volume
from modelops.storage import PVC_ROOT_ENV

CONTAINER = "server"
PORT_NAME = "http"
GRPC_PORT_NAME = "grpc"


def server_args(name: str, spec: ModelDeploymentSpec) -> list[str]:
    """The ``modelops serve`` arguments (flags as in common.md's model-server contract)."""
    args = [
        "serve",
        "--model-uri",
        spec.model.uri,
        "--name",
        name,
        "--host",
        "0.0.0.0",  # noqa: S104 - a pod must listen on its pod IP
        "--port",
        str(spec.serving.port),
        "--grpc-port",
        str(spec.serving.grpc_port),
        "--max-rows",
        str(spec.serving.max_rows),
        "--max-request-bytes",
        str(spec.serving.max_request_bytes),
    ]
    if spec.model.allow_unsafe_pickle:
        args.append("--allow-unsafe-pickle")
    if spec.model.version:
        args += ["--model-version", spec.model.version]
    return args


def container_ports(spec: ModelDeploymentSpec) -> list[dict[str, Any]]:
    """``http`` (V2 REST, /metrics, probes) and, unless turned off, ``grpc``."""
    ports = [{"name": PORT_NAME, "containerPort": spec.serving.port, "protocol": "TCP"}]
    if spec.serving.grpc_port:
        ports.append(
            {"name": GRPC_PORT_NAME, "containerPort": spec.serving.grpc_port, "protocol": "TCP"}
        )
    return ports


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def server_container(
    name: str, spec: ModelDeploymentSpec, defaults: BuildDefaults
) -> dict[str, Any]:
    """The model-server container: probes on /v2/health/*, read-only model volumes."""
    mounts = [m.mount(defaults.pvc_root) for m in claim_mounts([spec.model.uri])]
    env = [{"name": PVC_ROOT_ENV, "value": defaults.pvc_root}, *storage_env(spec.storage)]
    env += [e.model_dump(by_alias=True, exclude_none=True) for e in spec.env]
    resources = (
        spec.resources.model_dump(by_alias=True, exclude_none=True)
        if spec.resources is not None
        else defaults.resources
    )
    return {
        "name": CONTAINER,
        "image": spec.image or defaults.image,
        "imagePullPolicy": defaults.image_pull_policy,
        "command": ["modelops"],
        "args": server_args(name, spec),
        "env": env,
        "ports": container_ports(spec),
        "resources": resources,
        "startupProbe": _probe("/v2/health/live", period=2, failures=60),
        "livenessProbe": _probe("/v2/health/live", period=10, failures=3),
        "readinessProbe": _probe("/v2/health/ready", period=5, failures=2),
        "securityContext": container_security_context(),
        "volumeMounts": [*mounts, tmp_volume()[1]],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def build_deployment(
    owner: Owner, spec: ModelDeploymentSpec, defaults: BuildDefaults
) -> dict[str, Any]:
    """The apps/v1 Deployment serving ``spec`` for the ModelDeployment ``owner``."""
    name = owner.name
    pod_labels = {
        **labels.model_labels(name),
        labels.COMPONENT: "server",
    }
    if spec.model.version:
        pod_labels[labels.MODEL_VERSION] = label_value(spec.model.version)
    volumes = [m.volume() for m in claim_mounts([spec.model.uri])] + [tmp_volume()[0]]
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        "containers": [server_container(name, spec, defaults)],
        "volumes": volumes,
    }
    if spec.node_selector:
        pod_spec["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in spec.tolerations]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(name),
            "namespace": owner.namespace,
            "labels": {**labels.model_labels(name), labels.COMPONENT: "server"},
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "replicas": spec.replicas,
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": defaults.progress_deadline_seconds,
            "selector": {"matchLabels": labels.selector_labels(name)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(spec.serving.port),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": pod_spec,
            },
        },
    }
