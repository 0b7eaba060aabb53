"""Every ``default`` in the generated CRDs passes the CEL rules the API server checks it against.

At CRD install the API server validates each literal ``default`` against the schema node it
sits in, without applying the nested defaults first: every ``x-kubernetes-validations`` rule
of that node, and of the nested nodes whose part of the default is present, must pass on the
default as written (issue #18: ``source: {}`` failed ``self.type != 'prometheus' || ...`` with
"no such key: type", and kube-apiserver v1.37.2 refused the DriftPolicy CRD).
"""

from __future__ import annotations

from typing import Any

import pytest
from crd_support import (
    ROOT,
    crd_for,
    default_rejections,
    defaults_with_rules,
    load_yaml,
    open_api_schema,
    walk,
)

from modelops import crdgen

KINDS = ("ModelDeployment", "DriftPolicy")
CRD_FILES = sorted(
    str(path.relative_to(ROOT))
    for directory in crdgen.CRD_DIRS
    for path in (ROOT / directory).glob("modelops.dev_*.yaml")
)


def _crd_with(node: dict[str, Any]) -> dict[str, Any]:
    """A one-version CRD whose spec.field is ``node``."""
    return {
        "spec": {
            "versions": [
                {
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "properties": {"field": node}}
                            },
                        }
                    }
                }
            ]
        }
    }


SOURCE_LIKE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "default": "pods"},
        "url": {"type": "string"},
    },
    "x-kubernetes-validations": [
        {"rule": "self.type != 'prometheus' || has(self.url)", "message": "url is required"}
    ],
}


# --- The generated CRDs --------------------------------------------------------------------------


def test_both_crd_copies_are_covered() -> None:
    assert CRD_FILES == [
        "charts/modelops/crds/modelops.dev_driftpolicies.yaml",
        "charts/modelops/crds/modelops.dev_modeldeployments.yaml",
        "crds/modelops.dev_driftpolicies.yaml",
        "crds/modelops.dev_modeldeployments.yaml",
    ]


@pytest.mark.parametrize("name", CRD_FILES)
def test_every_default_passes_every_cel_rule_it_is_checked_against(name: str) -> None:
    failures = [
        r.describe() for r in defaults_with_rules(load_yaml(ROOT / name)) if r.outcome() is not True
    ]
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize("name", CRD_FILES)
def test_every_default_is_accepted_as_written(name: str) -> None:
    """Pruned, valid against its own node's OpenAPI schema, and every CEL rule passes."""
    problems = default_rejections(load_yaml(ROOT / name))
    assert problems == [], "\n".join(problems)


def test_the_rules_over_defaults_are_the_ones_expected() -> None:
    """The walk reaches the defaulted objects whose rules read their fields (not vacuous)."""
    pairs = {
        (r.path, r.at, r.rule["rule"]) for kind in KINDS for r in defaults_with_rules(crd_for(kind))
    }
    source = open_api_schema(crd_for("DriftPolicy"))["properties"]["spec"]["properties"]["source"]
    for rule in source["x-kubernetes-validations"]:
        assert ("spec.source", "", rule["rule"]) in pairs
    assert {path for path, _, _ in pairs} >= {
        "spec.interval",
        "spec.trigger",
        "spec.source",
        "spec.promotion",
    }


def test_object_defaults_hold_their_nested_defaults() -> None:
    """What the API server stores for an absent object is its default, written out in full."""
    spec = open_api_schema(crd_for("DriftPolicy"))["properties"]["spec"]["properties"]
    assert spec["source"]["default"] == {"type": "pods"}
    assert spec["trigger"]["default"] == {
        "minBreachedFeatures": 1,
        "consecutiveEvaluations": 2,
        "signals": ["InputDrift"],
    }
    assert spec["promotion"]["default"] == {"mode": "manual", "minImprovement": 0.0}
    serving = open_api_schema(crd_for("ModelDeployment"))["properties"]["spec"]["properties"]
    assert serving["serving"]["default"] == {
        "port": 8080,
        "grpcPort": 8081,
        "maxRows": 10_000,
        "maxRequestBytes": 8 * 1024 * 1024,
    }
    for kind in KINDS:
        for path, node in walk(open_api_schema(crd_for(kind))):
            if isinstance(node.get("default"), dict):
                assert crdgen.apply_defaults(node, node["default"]) == node["default"], path


# --- The checker itself --------------------------------------------------------------------------


def test_the_checker_finds_issue_18() -> None:
    """An object default of {} fails a rule that reads a field only its nested default sets."""
    (found,) = defaults_with_rules(_crd_with({**SOURCE_LIKE, "default": {}}))
    assert (found.path, found.default, found.at) == ("spec.field", {}, "")
    # Kubernetes says "no such key: type"; cel-python says "no such member in mapping: 'type'".
    assert "no such member in mapping: 'type'" in str(found.outcome())
    assert "spec.field: default {}" in found.describe()
    assert "self.type != 'prometheus'" in found.describe()
    (problem,) = default_rejections(_crd_with({**SOURCE_LIKE, "default": {}}))
    assert problem.startswith("spec.field: default {} rule")

    assert default_rejections(_crd_with({**SOURCE_LIKE, "default": {"type": "pods"}})) == []
    bad = _crd_with({**SOURCE_LIKE, "default": {"type": "prometheus"}})
    (problem,) = default_rejections(bad)
    assert problem.endswith("(url is required): fails")


def test_the_checker_applies_nested_rules_to_the_nested_parts_present() -> None:
    inner = {
        "type": "object",
        "properties": {"window": {"type": "string"}, "size": {"type": "integer"}},
        "x-kubernetes-validations": [{"rule": "self.size > 0", "message": "size"}],
    }
    node = {
        "type": "object",
        "properties": {
            "one": inner,
            "many": {"type": "array", "items": inner},
            "absent": inner,
        },
        "default": {"one": {"size": 0}, "many": [{"size": 1}, {"window": "1m"}]},
    }
    one, many_0, many_1 = defaults_with_rules(_crd_with(node))
    assert (one.at, one.value, one.outcome()) == (".one", {"size": 0}, False)
    assert (many_0.at, many_0.value, many_0.outcome()) == (".many[0]", {"size": 1}, True)
    assert (many_1.at, many_1.value) == (".many[1]", {"window": "1m"})
    assert "no such member in mapping: 'size'" in str(many_1.outcome())
    assert len(default_rejections(_crd_with(node))) == 2


def test_the_checker_does_not_apply_nested_defaults_before_openapi_validation() -> None:
    node = {
        "type": "object",
        "properties": {"name": {"type": "string", "default": "x"}},
        "required": ["name"],
        "default": {},
    }
    (problem,) = default_rejections(_crd_with(node))
    assert "spec.field: default does not validate" in problem


def test_a_whole_number_default_of_a_number_field_is_a_double_in_cel() -> None:
    """YAML reads ``1`` as an int; Kubernetes types it by the schema (``number``: double)."""
    node = {
        "type": "number",
        "default": 1,
        "x-kubernetes-validations": [{"rule": "self == 1.0", "message": "one"}],
    }
    assert default_rejections(_crd_with(node)) == []
