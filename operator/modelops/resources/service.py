"""The ClusterIP Service in front of a ModelDeployment's pods (pure)."""

from __future__ import annotations

from typing import Any

from modelops.api import ModelDeploymentSpec
from modelops.resources import labels
from modelops.resources.deployment import GRPC_PORT_NAME, PORT_NAME
from modelops.resources.names import service_name
from modelops.resources.owners import Owner


def build_service(owner: Owner, spec: ModelDeploymentSpec) -> dict[str, Any]:
    """The v1 Service for the ModelDeployment ``owner``: port ``http`` to the server's port and,
    unless gRPC is off, port ``grpc`` (``appProtocol: grpc``, for meshes and gateways)."""
    ports: list[dict[str, Any]] = [
        {
            "name": PORT_NAME,
            "port": spec.serving.port,
            "targetPort": PORT_NAME,
            "protocol": "TCP",
        }
    ]
    if spec.serving.grpc_port:
        ports.append(
            {
                "name": GRPC_PORT_NAME,
                "port": spec.serving.grpc_port,
                "targetPort": GRPC_PORT_NAME,
                "protocol": "TCP",
                "appProtocol": "grpc",
            }
        )
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(owner.name),
            "namespace": owner.namespace,
            "labels": {**labels.model_labels(owner.name), labels.COMPONENT: "server"},
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": labels.selector_labels(owner.name),
            "ports": ports,
        },
    }
