"""The Helm chart, rendered and linted by Helm's own engine (helm-python-sdk)."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml
from deploy_support import (
    ALL_TOGGLES_ON,
    CHART,
    DASHBOARD_FILE,
    RULES_FILE,
    chart_rbac_rules,
    flatten,
    render_chart,
)

from modelops.resources import DEFAULT_IMAGE

helm_python = pytest.importorskip("helm_python")

OPTIONAL = {
    "servicemonitor.yaml": "ServiceMonitor",
    "podmonitor.yaml": "PodMonitor",
    "prometheusrule.yaml": "PrometheusRule",
    "dashboard.yaml": "ConfigMap",
}


def kinds(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(obj["kind"] for obj in objects)


def only(objects: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    found = [
        o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)
    ]
    assert len(found) == 1, f"expected one {kind} *{name_suffix}, got {len(found)}"
    return found[0]


def test_default_values_render_the_operator_without_optional_parts() -> None:
    objects = flatten(render_chart())
    assert kinds(objects) == sorted(
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "Deployment",
            "Service",
        ]
    )
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == DEFAULT_IMAGE  # what the builders fall back to
    assert container["args"] == ["operator", "--all-namespaces"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "metrics": 8000,
        "health": 8080,
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELOPS_IMAGE"] == container["image"]
    assert env["MODELOPS_METRICS_PORT"] == "8000"
    assert env["MODELOPS_HEALTH_PORT"] == "8080"
    assert pod["serviceAccountName"] == only(objects, "ServiceAccount")["metadata"]["name"]


def test_every_toggle_on_renders_monitoring_from_the_shared_sources() -> None:
    rendered = render_chart(ALL_TOGGLES_ON)
    for template, kind in OPTIONAL.items():
        assert kinds(rendered[f"modelops/templates/{template}"]) == [kind]
    objects = flatten(rendered)
    rule = only(objects, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    dashboard = only(objects, "ConfigMap", "-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["modelops.json"]) == json.loads(
        DASHBOARD_FILE.read_text(encoding="utf-8")
    )
    monitor = only(objects, "ServiceMonitor")
    service = only(objects, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]


def test_service_selects_the_operator_pod() -> None:
    objects = flatten(render_chart())
    selector = only(objects, "Service")["spec"]["selector"]
    pod_labels = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()


def test_rbac_rules_are_the_generated_ones_and_bound_cluster_wide_by_default() -> None:
    objects = flatten(render_chart())
    rules = chart_rbac_rules()
    assert only(objects, "ClusterRole", "-manager")["rules"] == rules["namespaced"]
    assert only(objects, "ClusterRole", "-cluster")["rules"] == rules["cluster"]
    bound = {b["roleRef"]["name"] for b in objects if b["kind"] == "ClusterRoleBinding"}
    assert bound == {"modelops-manager", "modelops-cluster"}


def test_watching_namespaces_binds_the_manager_role_only_there() -> None:
    objects = flatten(render_chart({"operator": {"watchNamespaces": ["team-a", "team-b"]}}))
    deployment = only(objects, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["operator", "--namespace=team-a", "--namespace=team-b"]
    role_bindings = [o for o in objects if o["kind"] == "RoleBinding"]
    assert sorted(b["metadata"]["namespace"] for b in role_bindings) == ["team-a", "team-b"]
    assert {b["roleRef"]["name"] for b in role_bindings} == {"modelops-manager"}
    cluster_bindings = [o["roleRef"]["name"] for o in objects if o["kind"] == "ClusterRoleBinding"]
    assert cluster_bindings == ["modelops-cluster"]
    rules = chart_rbac_rules()
    cluster_role = only(objects, "ClusterRole", "-cluster")
    assert cluster_role["rules"] == rules["cluster"] + rules["namespaceList"]


def test_rbac_and_service_account_can_be_left_to_the_user() -> None:
    values = {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "mine"}}
    objects = flatten(render_chart(values))
    assert kinds(objects) == ["Deployment", "Service"]
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "mine"


def test_image_digest_pins_the_image() -> None:
    digest = "sha256:" + "ab" * 32
    values = {"image": {"repository": "ghcr.io/example/modelops", "digest": digest}}
    pod = only(flatten(render_chart(values)), "Deployment")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == f"ghcr.io/example/modelops@{digest}"


@pytest.mark.parametrize("values", [{}, ALL_TOGGLES_ON], ids=["default", "all-toggles"])
def test_chart_lints_clean_in_strict_mode(values: dict[str, Any]) -> None:
    for kube_version in ("v1.30.0", "v1.33.0"):
        report = helm_python.lint(CHART, values, strict=True, kube_version=kube_version)
        assert report["errors"] == []
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert problems == []


@pytest.mark.parametrize(
    ("values", "mentions"),
    [
        ({"metrics": {"serviceMonitor": {"enabeld": True}}}, "enabeld"),
        ({"operatr": {}}, "operatr"),
        ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
        ({"operator": {"ports": {"metrics": 70000}}}, "metrics"),
        ({"operator": {"watchNamespaces": ["Not_A_Namespace"]}}, "watchNamespaces"),
        ({"rbac": {"create": "yes"}}, "create"),
    ],
)
def test_schema_rejects_typos_and_bad_values(values: dict[str, Any], mentions: str) -> None:
    with pytest.raises(helm_python.HelmError) as caught:
        render_chart(values)
    assert mentions in str(caught.value)


def schema_leaves(node: dict[str, Any], path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Paths of the schema's leaf keys (those without their own closed sub-schema)."""
    leaves: set[tuple[str, ...]] = set()
    for key, child in node["properties"].items():
        if child.get("type") == "object" and "properties" in child:
            leaves |= schema_leaves(child, (*path, key))
        else:
            leaves.add((*path, key))
    return leaves


def commented_keys(lines: list[str]) -> dict[tuple[str, ...], bool]:
    """Path of every mapping key in values.yaml -> whether a comment line precedes it."""
    found: dict[tuple[str, ...], bool] = {}
    stack: list[tuple[int, str]] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "-")) or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = stripped.split(":", 1)[0]
        stack.append((indent, key))
        found[tuple(k for _, k in stack)] = index > 0 and lines[index - 1].strip().startswith("#")
    return found


def test_schema_is_closed_and_every_values_key_is_commented() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    text = (CHART / "values.yaml").read_text(encoding="utf-8")
    values = yaml.safe_load(text)

    def walk(node: dict[str, Any], value: Any, path: str) -> None:
        assert node.get("additionalProperties") is False, f"{path or 'root'} is open"
        assert set(node["properties"]) == set(value), f"{path}: schema and values.yaml differ"
        for key, child in node["properties"].items():
            if child.get("type") == "object" and "properties" in child:
                walk(child, value[key], f"{path}.{key}".lstrip("."))

    walk(schema, values, "")
    jsonschema.Draft7Validator.check_schema(schema)  # Helm 3 and 4 both read draft 7
    comments = commented_keys(text.splitlines())
    missing = [".".join(path) for path in sorted(schema_leaves(schema)) if not comments[path]]
    assert missing == [], f"values.yaml keys without a comment: {missing}"


def test_values_defaults_match_the_schema_and_copies_stay_independent() -> None:
    chart = helm_python.Chart.load(CHART)
    chart.validate_schema(copy.deepcopy(chart.values))
    assert chart.metadata["name"] == "modelops"


def test_notes_say_what_to_do_next_and_that_crds_are_not_upgraded() -> None:
    for values in ({}, {"operator": {"watchNamespaces": ["ml"]}}):
        notes = helm_python.Chart.load(CHART).render(values, name="mo", namespace="ops")[
            "modelops/templates/NOTES.txt"
        ]
        assert "rollout status deployment/mo-modelops-operator" in notes
        assert "never" in notes
        assert "upgrades or deletes them" in notes
    assert "The operator watches: ml." in notes
