"""Every static and rendered manifest is valid for Kubernetes 1.30 and 1.33 (strict: unknown fields
fail): kustomize folders as `kubectl kustomize` builds them, the chart as Helm renders it, the
CRDs, and the samples against the generated CRD schemas. Prometheus Operator objects have no
schema offline: they are checked structurally (their rules go through promtool elsewhere)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import pytest
from deploy_support import (
    ALL_TOGGLES_ON,
    CHART,
    MANIFESTS,
    ROOT,
    flatten,
    kustomize,
    render_chart,
    yaml_documents,
    yaml_files,
)

from modelops.resources import DEFAULT_IMAGE

KUBERNETES_VERSIONS = ("1.30.0", "1.33.0")
KUSTOMIZATIONS = (
    "default",
    "namespace",
    "crd",
    "rbac",
    "operator",
    "prometheus",
    "kind",
    "samples",
)
MONITORING = "monitoring.coreos.com/v1"
#: Which fields of the Prometheus Operator kinds our manifests may use (a typo is caught here).
MONITOR_FIELDS = {
    "PodMonitor": {"selector", "namespaceSelector", "podMetricsEndpoints"},
    "ServiceMonitor": {"selector", "namespaceSelector", "endpoints"},
}
ENDPOINT_FIELDS = {"port", "path", "interval", "scrapeTimeout", "honorLabels", "relabelings"}
RELABEL_FIELDS = {"action", "targetLabel", "replacement", "sourceLabels", "regex", "separator"}


def is_kubernetes_manifest(path: Path) -> bool:
    """Kubernetes objects, not kustomizations or Prometheus rule files."""
    return path.name != "kustomization.yaml" and "rules" not in path.relative_to(ROOT).parts


def static_objects() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for folder in (MANIFESTS, ROOT / "crds", CHART / "crds"):
        for path in yaml_files(folder):
            if is_kubernetes_manifest(path):
                for index, obj in enumerate(yaml_documents(path.read_text(encoding="utf-8"))):
                    found.append((f"{path.relative_to(ROOT)}#{index}", obj))
    return found


def chart_objects() -> list[tuple[str, dict[str, Any]]]:
    cases = {
        "default": {},
        "all-toggles": ALL_TOGGLES_ON,
        "namespaced": {"operator": {"watchNamespaces": ["team-a"]}},
    }
    return [
        (f"chart[{label}]:{obj['kind']}/{obj['metadata']['name']}", obj)
        for label, values in cases.items()
        for obj in flatten(render_chart(values))
    ]


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the openAPIV3Schema of every generated CRD version."""
    schemas = {}
    for path in yaml_files(ROOT / "crds"):
        for crd in yaml_documents(path.read_text(encoding="utf-8")):
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


def closed(schema: dict[str, Any]) -> dict[str, Any]:
    """A structural schema (OpenAPI 3.0, so JSON Schema draft 4) where unknown fields fail, as
    with kubectl's default "Strict" field validation, instead of being pruned; objects that
    preserve unknown fields stay open."""
    schema = copy.deepcopy(schema)

    def walk(node: Any, top: bool) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for key, child in node.items():
                if key == "properties":
                    for name, prop in child.items():
                        if not (top and name == "metadata"):
                            walk(prop, False)
                elif key != "additionalProperties" or isinstance(child, dict):
                    walk(child, False)
        elif isinstance(node, list):
            for child in node:
                walk(child, False)

    walk(schema, True)
    return schema


def check_monitoring(obj: dict[str, Any]) -> None:
    kind, spec = obj["kind"], obj["spec"]
    if kind == "PrometheusRule":
        assert set(spec) == {"groups"}
        for group in spec["groups"]:
            assert group["name"]
            assert group["rules"]
        return
    assert set(spec) <= MONITOR_FIELDS[kind], set(spec) - MONITOR_FIELDS[kind]
    assert spec["selector"]["matchLabels"]
    endpoints_key = "podMetricsEndpoints" if kind == "PodMonitor" else "endpoints"
    for endpoint in spec[endpoints_key]:
        assert set(endpoint) <= ENDPOINT_FIELDS, set(endpoint) - ENDPOINT_FIELDS
        assert isinstance(endpoint["port"], str)
        for relabel in endpoint.get("relabelings", []):
            assert set(relabel) <= RELABEL_FIELDS


SCHEMAS = crd_schemas()


def validate(obj: dict[str, Any], version: str) -> None:
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    if api_version == MONITORING:
        check_monitoring(obj)
    elif api_version.startswith("modelops.dev/"):
        if (api_version, kind) not in SCHEMAS:
            pytest.skip(f"no generated CRD for {api_version} {kind} yet (crds/ is empty)")
        jsonschema.Draft4Validator(closed(SCHEMAS[(api_version, kind)])).validate(obj)
    else:
        kubernetes_validate.validate(obj, version, strict=True)


STATIC = static_objects()
RENDERED = chart_objects()


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("where", "obj"), STATIC, ids=[w for w, _ in STATIC])
def test_static_manifest_is_valid(where: str, obj: dict[str, Any], version: str) -> None:
    validate(obj, version)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("where", "obj"), RENDERED, ids=[w for w, _ in RENDERED])
def test_rendered_chart_object_is_valid(where: str, obj: dict[str, Any], version: str) -> None:
    validate(obj, version)


@pytest.mark.parametrize("folder", KUSTOMIZATIONS)
def test_kustomization_builds_valid_objects(folder: str) -> None:
    objects = kustomize(MANIFESTS / folder)
    if objects is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize` renders the folders")
    assert objects, f"manifests/{folder} builds nothing"
    for obj in objects:
        for version in KUBERNETES_VERSIONS:
            validate(obj, version)


def test_default_install_is_complete_and_namespaced() -> None:
    objects = kustomize(MANIFESTS / "default")
    if objects is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize` renders the folders")
    kinds = sorted(o["kind"] for o in objects)
    generated = [o for _, o in STATIC if o["kind"] == "CustomResourceDefinition"]
    assert kinds.count("CustomResourceDefinition") * 2 == len(generated)  # crds/ + chart copy
    for kind in ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment"):
        assert kind in kinds
    for obj in objects:
        if obj["kind"] in {"ServiceAccount", "Deployment"}:
            assert obj["metadata"]["namespace"] == "modelops-system"
    namespace = next(o for o in objects if o["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELOPS_IMAGE"] == container["image"] == DEFAULT_IMAGE


def test_closed_crd_schema_rejects_a_misspelt_field() -> None:
    if not SCHEMAS:
        pytest.skip("no generated CRDs yet")
    (api_version, kind), schema = next(iter(sorted(SCHEMAS.items())))
    validator = jsonschema.Draft4Validator(closed(schema))
    obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}, "spek": {}}
    assert any("spek" in error.message for error in validator.iter_errors(obj))


def test_strict_validation_rejects_an_unknown_field() -> None:
    deployment = copy.deepcopy(next(o for w, o in STATIC if o["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)
