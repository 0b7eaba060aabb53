"""RBAC: operator/modelops/rbac.py is the single source; the kustomize roles and the chart grant
exactly its rules; and the rules match what the operator's code asks the API for."""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deploy_support import (
    MANIFESTS,
    ROOT,
    flatten,
    kustomize_roles,
    render_chart,
    yaml_documents,
)

from modelops import API_GROUP, rbac

CONTROLLER = ROOT / "operator" / "modelops" / "controller"
Access = tuple[str, str, str]  # (verb, group, resource)

#: Kube client methods -> the verb each sends (patch_status: a patch of the status subresource).
KUBE_VERBS = {
    "get": "get",
    "list": "list",
    "create": "create",
    "patch": "patch",
    "delete": "delete",
}
#: Granted although no code sends it, with the reason (checked against the rules' own `why`).
NOT_SENT_BY_CODE: dict[Access, str] = {
    ("update", API_GROUP, f"{plural}/finalizers"): "blockOwnerDeletion"
    for plural in ("modeldeployments", "driftpolicies")
}


def granted(scopes: tuple[str, ...] = ("namespaced", "cluster")) -> set[Access]:
    return {
        (verb, group, resource)
        for rule in rbac.RULES
        if rule.scope in scopes
        for group in rule.api_groups
        for resource in rule.resources
        for verb in rule.verbs
    }


def test_rules_have_no_wildcards_secrets_or_escalation_and_say_why() -> None:
    assert rbac.problems() == []
    for verb, group, resource in granted(("namespaced", "cluster", "namespace-list")):
        assert "*" not in (verb, group, resource)
        assert resource != "secrets"
        assert verb not in {"escalate", "bind", "impersonate", "deletecollection"}
        assert verb != "update" or resource.endswith("/finalizers")


def test_problems_catches_wildcards_secrets_and_duplicates() -> None:
    bad = (
        rbac.Rule(("",), ("secrets",), ("get",), "namespaced", "reads passwords"),
        rbac.Rule(("apps",), ("*",), ("*",), "namespaced", "everything"),
        rbac.Rule(("",), ("pods",), ("get", "get"), "namespaced", " "),
    )
    found = "\n".join(rbac.problems(bad))
    for expected in ("'secrets'", "'*' is forbidden", "granted twice", "does not say"):
        assert expected in found


@pytest.mark.parametrize(
    ("verb", "group", "resource", "allowed"),
    [
        ("create", "apps", "deployments", True),
        ("patch", API_GROUP, "modeldeployments/status", True),
        ("watch", "apiextensions.k8s.io", "customresourcedefinitions", True),
        ("create", "", "events", True),
        ("update", "apps", "deployments", False),
        ("get", "", "secrets", False),
        ("create", "", "pods", False),
        ("patch", "", "pods", False),
        ("delete", API_GROUP, "modeldeployments", False),
        ("create", "apps", "deployments/scale", False),
        ("list", "batch", "cronjobs", False),
        ("get", "", "configmaps", False),
    ],
)
def test_allows_matches_exactly(verb: str, group: str, resource: str, allowed: bool) -> None:
    assert rbac.allows(verb, group, resource) is allowed


def test_kustomize_roles_are_the_generated_rules_bound_to_the_operator() -> None:
    documents = yaml_documents((MANIFESTS / "rbac" / "role.yaml").read_text(encoding="utf-8"))
    assert documents == kustomize_roles()
    bindings = yaml_documents((MANIFESTS / "rbac" / "role_binding.yaml").read_text("utf-8"))
    account = yaml_documents((MANIFESTS / "rbac" / "service_account.yaml").read_text("utf-8"))[0]
    deployment = yaml_documents((MANIFESTS / "operator" / "deployment.yaml").read_text("utf-8"))[0]
    assert (
        deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    )
    assert sorted(b["roleRef"]["name"] for b in bindings) == sorted(
        r["metadata"]["name"] for r in documents
    )
    for binding in bindings:
        assert binding["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": account["metadata"]["name"],
                "namespace": account["metadata"]["namespace"],
            }
        ]


def chart_grants(values: dict[str, Any]) -> set[Access]:
    return {
        (verb, group, resource)
        for obj in flatten(render_chart(values))
        if obj["kind"] in {"ClusterRole", "Role"}
        for rule in obj["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_chart_grants_exactly_the_rules_for_its_mode() -> None:
    assert chart_grants({}) == granted()
    assert chart_grants({"operator": {"watchNamespaces": ["ml"]}}) == granted(
        ("namespaced", "cluster", "namespace-list")
    )


# --- What the code asks for --------------------------------------------------------------------


def kube_module() -> Any:
    return pytest.importorskip("modelops.controller.kube", reason="the controller has not landed")


def resource_types() -> dict[str, tuple[str, str]]:
    """Name of every ResourceType constant of the Kube client -> (group, plural)."""
    kube = kube_module()
    return {
        name: (value.group, value.plural)
        for name, value in vars(kube).items()
        if isinstance(value, kube.ResourceType)
    }


def test_kube_client_methods_are_all_known() -> None:
    """A new request method on the client must be mapped to its verb here."""
    kube = kube_module()
    methods = {
        name
        for name, fn in inspect.getmembers(kube.Kube, inspect.isfunction)
        if not name.startswith("_")
        and "kind" in inspect.signature(fn).parameters
        and name != "patch_status"
    }
    assert methods <= set(KUBE_VERBS), methods - set(KUBE_VERBS)


def _constant_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _verbs_on(call: ast.Call, method: str) -> list[tuple[str, str]]:
    """(verb, subresource suffix) a client call sends, for a call to Kube.<method>."""
    if method == "patch_status":
        return [("patch", "/status")]
    if method == "patch":
        for keyword in call.keywords:
            if keyword.arg == "subresource" and isinstance(keyword.value, ast.Constant):
                return [("patch", f"/{keyword.value.value!s}")]
    return [(KUBE_VERBS[method], "")]


def _client_method(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute) and call.func.attr in {*KUBE_VERBS, "patch_status"}:
        return call.func.attr
    return None


def _helpers(tree: ast.AST) -> dict[str, dict[int | str, list[tuple[str, str]]]]:
    """Functions taking a `ResourceType` parameter -> what they send for it (by position and
    by name), so `_ensure(kube, DEPLOYMENTS, ...)` counts as the requests `_ensure` makes."""
    found: dict[str, dict[int | str, list[tuple[str, str]]]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        params = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        for index, param in enumerate(params):
            if param.annotation is None or _constant_name(param.annotation) != "ResourceType":
                continue
            verbs = [
                verb
                for call in ast.walk(node)
                if isinstance(call, ast.Call)
                and (method := _client_method(call)) is not None
                and call.args
                and _constant_name(call.args[0]) == param.arg
                for verb in _verbs_on(call, method)
            ]
            entry = found.setdefault(node.name, {})
            if index < len(node.args.posonlyargs) + len(node.args.args):
                entry[index] = verbs
            entry[param.arg] = verbs
    return found


def code_requests(source: str, constants: dict[str, tuple[str, str]]) -> Iterator[Access]:
    """Requests visible in the source: `<client>.<method>(<RESOURCE CONSTANT>, ...)`, the same
    through a helper taking a `ResourceType` parameter, and Kopf Events."""
    tree = ast.parse(source)
    helpers = _helpers(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if (
            isinstance(node.func, ast.Attribute)
            and node.func.attr == "event"
            and _constant_name(node.func.value) == "kopf"
        ):
            yield ("create", "", "events")
            continue
        method = _client_method(node)
        if method is not None and node.args:
            name = _constant_name(node.args[0])
            if name in constants:
                group, plural = constants[name]
                for verb, suffix in _verbs_on(node, method):
                    yield (verb, group, plural + suffix)
            continue
        helper = helpers.get(_constant_name(node.func) or "")
        if helper is None:
            continue
        passed: list[tuple[int | str, ast.expr]] = [*enumerate(node.args)]
        passed += [(k.arg, k.value) for k in node.keywords if k.arg is not None]
        for key, value in passed:
            name = _constant_name(value)
            if key in helper and name in constants:
                group, plural = constants[name]
                for verb, suffix in helper[key]:
                    yield (verb, group, plural + suffix)


def kopf_requests() -> Iterator[Access]:
    """What Kopf itself sends for the handlers the operator registers."""
    kopf = pytest.importorskip("kopf")
    handlers = pytest.importorskip("modelops.controller.handlers", reason="not landed yet")
    settings = pytest.importorskip("modelops.controller.settings")
    registry = kopf.OperatorRegistry()
    handlers.register(registry, settings.OperatorSettings())
    yield ("list", "apiextensions.k8s.io", "customresourcedefinitions")
    yield ("watch", "apiextensions.k8s.io", "customresourcedefinitions")
    kinds = (("_watching", False), ("_indexing", False), ("_changing", True), ("_spawning", True))
    for attr, patches in kinds:
        for handler in getattr(registry, attr).get_all_handlers():
            selector = handler.selector
            group = selector.group or ""
            plural = selector.plural or selector.any_name
            yield ("list", group, plural)
            yield ("watch", group, plural)
            # Finalizers, progress and diff-base annotations; for event handlers, the removal
            # of a finalizer that no handler needs any more (one an older version put there).
            if patches or attr == "_watching":
                yield ("patch", group, plural)


def all_code_requests() -> set[Access]:
    constants = resource_types()
    found: set[Access] = set(kopf_requests())
    for path in sorted(CONTROLLER.rglob("*.py")):
        found |= set(code_requests(path.read_text(encoding="utf-8"), constants))
    return found


def test_code_request_scanner_sees_calls_and_events() -> None:
    source = (
        "kube.patch_status(MODEL_DEPLOYMENTS, ns, name, {})\n"
        "ctx.kube.create(kube.JOBS, ns, body)\n"
        "self.kube.patch(DEPLOYMENTS, ns, name, p, subresource='scale')\n"
        "kopf.event(body, type='Normal', reason='Promoted', message='m')\n"
        "other.get(UNKNOWN, ns)\n"
        "def ensure(kube, kind: ResourceType, body, *, fresh):\n"
        "    if not fresh:\n"
        "        kube.get(kind, ns, name)\n"
        "    kube.create(kind, ns, body)\n"
        "ensure(ctx.kube, SERVICES, body, fresh=True)\n"
        "ensure(kube=k, kind=PODS, body=b, fresh=False)\n"
    )
    constants = {
        "MODEL_DEPLOYMENTS": (API_GROUP, "modeldeployments"),
        "JOBS": ("batch", "jobs"),
        "DEPLOYMENTS": ("apps", "deployments"),
        "SERVICES": ("", "services"),
        "PODS": ("", "pods"),
    }
    assert set(code_requests(source, constants)) == {
        ("get", "", "services"),
        ("create", "", "services"),
        ("get", "", "pods"),
        ("create", "", "pods"),
        ("patch", API_GROUP, "modeldeployments/status"),
        ("create", "batch", "jobs"),
        ("patch", "apps", "deployments/scale"),
        ("create", "", "events"),
    }


def test_every_request_the_code_makes_is_granted() -> None:
    missing = sorted(a for a in all_code_requests() if not rbac.allows(*a))
    assert missing == [], f"add these to operator/modelops/rbac.py: {missing}"


def test_every_grant_is_needed_by_the_code() -> None:
    """No permission beyond what the code uses (least privilege), except the documented ones."""
    needed = all_code_requests()
    for access, reason in NOT_SENT_BY_CODE.items():
        rule = next(r for r in rbac.RULES if access[2] in r.resources)
        assert reason in rule.why
    unused = sorted(granted() - needed - set(NOT_SENT_BY_CODE))
    assert unused == [], f"granted but never requested; remove from rbac.py: {unused}"


def test_namespace_list_rule_is_what_kopf_needs_for_namespace_patterns() -> None:
    """Kopf lists and watches Namespaces only when it serves a list of namespace patterns."""
    source = Path(pytest.importorskip("kopf").__file__).parent / "_core/reactor/observation.py"
    assert "not clusterwide" in source.read_text(encoding="utf-8")
    assert granted(("namespace-list",)) == {
        ("list", "", "namespaces"),
        ("watch", "", "namespaces"),
    }
