"""Validate custom resources against the generated CRDs the way the Kubernetes API server does.

Kubernetes is not running in unit tests, so this module reproduces the parts of the API server
that matter for our CRDs, each one a real implementation rather than a stand-in:

- ``structural_problems``: the structural-schema rules the API server enforces on a CRD
  (apiextensions ``validation.go``/``structural`` package), plus our own project rules.
- ``default_rejections``/``defaults_with_rules``: what the API server checks of every ``default``
  in a CRD at install (apiextensions ``schema/defaulting/validation.go``): the literal default,
  with no nested defaulting, must be pruned, validate against its node's OpenAPI schema and pass
  every CEL rule of that node and of the nested nodes whose part of the default is present.
- ``rejections``: what a create of a custom resource would meet: unknown fields (strict field
  validation, kubectl's default), null pruning and defaulting (``apply_defaults``, the API
  server's algorithm), the OpenAPI v3.0 value validations (jsonschema's Draft 4 has the same
  boolean ``exclusiveMinimum`` semantics; x-kubernetes-* keys are ignored by it), list-map and
  set uniqueness, and every ``x-kubernetes-validations`` CEL rule, evaluated with cel-python on
  values converted by schema type as Kubernetes converts them (``number`` is always a double).

Known difference: cel-python uses Python's ``re`` for ``matches()`` where Kubernetes uses RE2;
our rules use only syntax both share (classes, groups, ``(?i:...)``, counted repetition).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import celpy
import jsonschema
import yaml
from celpy import celtypes

from modelops.crdgen import apply_defaults

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "manifests" / "samples"

#: Where a free-form embedded Kubernetes object is allowed to keep unknown fields.
PRESERVE_UNKNOWN_PATHS = frozenset(
    {
        "spec.env[].valueFrom",
        "spec.tolerations[]",
        "spec.retraining.jobTemplate",
    }
)
_SCALAR_TYPES = frozenset({"string", "integer", "number", "boolean"})
_KNOWN_FORMATS = frozenset({"date-time", "int32", "int64", "double", "float", "byte"})
_CEL = celpy.Environment()


def load_yaml(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), path
    return document


def crd_for(kind: str) -> dict[str, Any]:
    """The checked-in CRD of ``kind`` (e.g. ``DriftPolicy``); a fresh copy each call."""
    return copy.deepcopy(_checked_in_crds()[kind])


@functools.cache
def _checked_in_crds() -> dict[str, dict[str, Any]]:
    crds = [load_yaml(p) for p in sorted((ROOT / "crds").glob("modelops.dev_*.yaml"))]
    return {crd["spec"]["names"]["kind"]: crd for crd in crds}


def open_api_schema(crd: Mapping[str, Any]) -> dict[str, Any]:
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


# --- Structural schema rules ---------------------------------------------------------------------


def walk(schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every schema node with its field path (``spec.metrics[].type``, ``spec.nodeSelector{}``)."""
    yield path, schema
    for name, prop in schema.get("properties", {}).items():
        yield from walk(prop, f"{path}.{name}" if path else name)
    if isinstance(schema.get("items"), Mapping):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def structural_problems(schema: Mapping[str, Any]) -> list[str]:
    """Why ``schema`` is not a structural schema we accept (empty when it is)."""
    problems: list[str] = []
    for path, node in walk(schema):
        where = path or "<root>"
        problems += [f"{where}: {p}" for p in _node_problems(path, node)]
    return problems


def _node_problems(path: str, node: Mapping[str, Any]) -> Iterator[str]:
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    kind = node.get("type")
    for forbidden in ("$ref", "$defs", "definitions", "oneOf", "allOf", "not", "const"):
        if forbidden in node:
            yield f"{forbidden} is not allowed"
    if "nullable" in node:
        yield "nullable is not used: optional fields are simply not required"
    if not kind and not (int_or_string or preserve):
        yield "has no type"
    if kind and int_or_string:
        yield "x-kubernetes-int-or-string must not have a type"
    int_or_string_form = [{"type": "integer"}, {"type": "string"}]
    if "anyOf" in node and (not int_or_string or node["anyOf"] != int_or_string_form):
        yield "anyOf is only allowed in the int-or-string form [{type: integer}, {type: string}]"
    if preserve and path not in PRESERVE_UNKNOWN_PATHS:
        yield "x-kubernetes-preserve-unknown-fields outside an embedded Kubernetes object"
    if "additionalProperties" in node:
        if not isinstance(node["additionalProperties"], Mapping):
            yield "additionalProperties must be a schema (false/true is not structural)"
        if "properties" in node:
            yield "additionalProperties and properties are mutually exclusive"
    typed_object = "properties" in node or "additionalProperties" in node or preserve
    if kind == "object" and path != "metadata" and not typed_object:
        yield "an object without properties, additionalProperties or preserve-unknown-fields"
    if path == "metadata" and dict(node) != {"type": "object"}:
        yield "metadata may only be {type: object}"
    if kind == "array" and not isinstance(node.get("items"), Mapping):
        yield "an array needs items"
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if key in node and not isinstance(node[key], bool):
            yield f"{key} must be a boolean in OpenAPI v3.0"
        if node.get(key) is True and key.replace("exclusiveM", "m") not in node:
            yield f"{key} needs {key.replace('exclusiveM', 'm')}"
    if "format" in node and node["format"] not in _KNOWN_FORMATS:
        yield f"unknown format {node['format']!r}"
    for value in node.get("enum", ()):
        if kind == "string" and not isinstance(value, str):
            yield f"enum value {value!r} is not a string"
    for name in node.get("required", ()):
        if name not in node.get("properties", {}):
            yield f"required {name!r} is not a property"
    if path and path not in ("apiVersion", "kind", "metadata") and not node.get("description"):
        parent_is_list_or_map = path.endswith(("[]", "{}"))
        if not parent_is_list_or_map:
            yield "has no description (kubectl explain shows it)"
    yield from _list_type_problems(node)
    yield from _default_problems(node)
    for rule in node.get("x-kubernetes-validations", ()):
        if set(rule) - {"rule", "message", "messageExpression", "reason", "fieldPath"}:
            yield f"unknown keys in validation rule {rule}"
        if not rule.get("message") or "\n" in rule["message"]:
            yield f"rule {rule.get('rule')!r} needs a one-line message"
        try:
            _CEL.compile(rule["rule"])
        except Exception as exc:
            yield f"rule {rule['rule']!r} does not compile: {exc}"
        # Kubernetes type-checks rules against the schema: self.<field> must be declared.
        declared = set(node.get("properties", {}))
        for name in re.findall(r"\bself\.([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()", rule["rule"]):
            if name not in declared:
                yield f"rule {rule['rule']!r} uses self.{name}, which is not a property"


def _list_type_problems(node: Mapping[str, Any]) -> Iterator[str]:
    list_type = node.get("x-kubernetes-list-type")
    if list_type is None:
        if "x-kubernetes-list-map-keys" in node:
            yield "list-map-keys without list-type map"
        return
    if node.get("type") != "array":
        yield "x-kubernetes-list-type on a non-array"
        return
    items = node["items"]
    if list_type == "set" and items.get("type") not in _SCALAR_TYPES:
        yield "a set holds scalars only"
    if list_type == "map":
        keys = node.get("x-kubernetes-list-map-keys") or []
        if not keys:
            yield "list-type map needs x-kubernetes-list-map-keys"
        for key in keys:
            prop = items.get("properties", {}).get(key)
            if prop is None or prop.get("type") not in _SCALAR_TYPES:
                yield f"map key {key!r} must be a scalar property of the items"
            elif key not in items.get("required", ()) and "default" not in prop:
                yield f"map key {key!r} must be required or defaulted"
    elif list_type not in ("atomic", "set"):
        yield f"unknown list type {list_type!r}"


def _default_problems(node: Mapping[str, Any]) -> Iterator[str]:
    """The install-time checks of a default that are not CEL (see ``default_rejections``).

    Like the API server, this validates the literal default: nested defaults are not applied.
    """
    if "default" not in node:
        return
    default = node["default"]
    if default is None:
        yield "a null default"
        return
    unknown = list(unknown_fields(node, default, "default"))
    if unknown:
        yield f"default is not pruned: {unknown}"
    errors = list(_openapi_errors(node, default))
    if errors:
        yield f"default does not validate: {errors}"


# --- Defaults as the API server checks them at CRD install --------------------------------------


class DefaultRule(NamedTuple):
    """One CEL rule that the API server evaluates against (part of) one literal default.

    ``path`` is the field path of the schema node holding the default (``spec.source``),
    ``default`` that literal default, ``rule`` the ``x-kubernetes-validations`` entry. The rule
    belongs to ``schema``, the node at ``path + at`` (``at`` is ``""`` for the defaulted node
    itself, ``.window`` or ``[0]`` for a nested one), and sees ``value``, the part of the
    default found there, as ``self``.
    """

    path: str
    default: Any
    rule: Mapping[str, Any]
    at: str
    value: Any
    schema: Mapping[str, Any]

    def outcome(self) -> bool | str:
        """True when the rule passes, else False or the evaluation error (see evaluate_rule)."""
        return evaluate_rule(self.rule["rule"], self.schema, self.value)

    def describe(self) -> str:
        """``spec.source: default {} fails rule 'self.type ...' (message): outcome``."""
        where = f"{self.path}: default {json.dumps(self.default)}"
        if self.at:
            where += f", at {self.at} {json.dumps(self.value)},"
        outcome = self.outcome()
        result = "fails" if outcome is False else str(outcome)
        return f"{where} rule {self.rule['rule']!r} ({self.rule.get('message')}): {result}"


def defaults_with_rules(crd: Mapping[str, Any]) -> list[DefaultRule]:
    """Every (default, CEL rule) pair the API server evaluates when the CRD is installed.

    Each schema node with a ``default``, at any depth, meets its own rules and those of every
    nested node (properties, items, additionalProperties) whose part of the default is present,
    evaluated against the literal default: the API server does not apply the nested defaults
    first (``defaulting.validate`` calls the CEL validator with ``s.Default.Object``).
    """
    found: list[DefaultRule] = []
    for version in crd["spec"]["versions"]:
        for path, node in walk(version["schema"]["openAPIV3Schema"]):
            if "default" not in node:
                continue
            default = node["default"]
            for at, schema, value, rule in _rules_over(node, default, ""):
                found.append(DefaultRule(path, default, rule, at, value, schema))
    return found


def default_rejections(crd: Mapping[str, Any]) -> list[str]:
    """Why the API server would refuse ``crd`` for one of its defaults (empty when it accepts)."""
    problems = []
    for version in crd["spec"]["versions"]:
        for path, node in walk(version["schema"]["openAPIV3Schema"]):
            problems += [f"{path}: {problem}" for problem in _default_problems(node)]
    problems += [r.describe() for r in defaults_with_rules(crd) if r.outcome() is not True]
    return problems


def _rules_over(
    schema: Mapping[str, Any], value: Any, at: str
) -> Iterator[tuple[str, Mapping[str, Any], Any, Mapping[str, Any]]]:
    """The rules of ``schema`` and of its nested nodes over the parts of ``value`` present."""
    for rule in schema.get("x-kubernetes-validations", ()):
        yield at, schema, value, rule
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            if name in properties:
                yield from _rules_over(properties[name], item, f"{at}.{name}")
            elif isinstance(extra, Mapping):
                yield from _rules_over(extra, item, f"{at}.{name}")
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            yield from _rules_over(schema["items"], item, f"{at}[{index}]")


# --- Validating a custom resource ----------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    """One reason the API server would refuse the object: which layer, where, and why."""

    layer: str  # "schema" (OpenAPI, unknown fields, list keys) or "cel"
    path: str
    message: str


def rejections(crd: Mapping[str, Any], obj: Mapping[str, Any]) -> list[Rejection]:
    """Everything the API server would reject in ``obj`` on create (empty when it accepts)."""
    schema = open_api_schema(crd)
    found = [Rejection("schema", p, "unknown field") for p in unknown_fields(schema, obj, "")]
    value = apply_defaults(schema, drop_nulls(obj))
    found += [Rejection("schema", p, m) for p, m in _openapi_errors(schema, value)]
    found += [Rejection("schema", p, m) for p, m in _list_key_errors(schema, value, "")]
    found += [Rejection("cel", p, m) for p, m in cel_errors(schema, value, "")]
    return found


def defaulted(crd: Mapping[str, Any], obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` as the API server stores it: nulls pruned, defaults applied."""
    result = apply_defaults(open_api_schema(crd), drop_nulls(obj))
    assert isinstance(result, dict)
    return result


def drop_nulls(value: Any) -> Any:
    """Nulls of non-nullable fields are pruned before defaulting (none of ours is nullable)."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def unknown_fields(schema: Mapping[str, Any], value: Any, path: str) -> Iterator[str]:
    """Fields the schema does not declare (strict field validation reports them)."""
    if schema.get("x-kubernetes-preserve-unknown-fields") or path == "metadata":
        return
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            child = f"{path}.{name}" if path else name
            if properties is not None and name in properties:
                yield from unknown_fields(properties[name], item, child)
            elif isinstance(extra, Mapping):
                yield from unknown_fields(extra, item, child)
            elif properties is not None:
                yield child
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            yield from unknown_fields(schema["items"], item, f"{path}[{index}]")


def _openapi_errors(schema: Mapping[str, Any], value: Any) -> Iterator[tuple[str, str]]:
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    for error in validator.iter_errors(value):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        yield path.lstrip("."), error.message


def _list_key_errors(schema: Mapping[str, Any], value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            if name in value:
                yield from _list_key_errors(prop, value[name], f"{path}.{name}".lstrip("."))
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        list_type = schema.get("x-kubernetes-list-type")
        if list_type == "set" and len({repr(v) for v in value}) != len(value):
            yield path, "duplicate entries in a set"
        if list_type == "map":
            keys = schema["x-kubernetes-list-map-keys"]
            seen = [
                tuple(repr(item.get(k)) for k in keys) for item in value if isinstance(item, dict)
            ]
            if len(set(seen)) != len(seen):
                yield path, f"duplicate entries for key {keys}"
        for index, item in enumerate(value):
            yield from _list_key_errors(schema["items"], item, f"{path}[{index}]")


# --- CEL ------------------------------------------------------------------------------------------


def cel_errors(schema: Mapping[str, Any], value: Any, path: str) -> Iterator[tuple[str, str]]:
    """The message of every ``x-kubernetes-validations`` rule that ``value`` fails."""
    for rule in schema.get("x-kubernetes-validations", ()):
        outcome = evaluate_rule(rule["rule"], schema, value)
        if outcome is not True:
            detail = "" if outcome is False else f" ({outcome})"
            yield path, rule["message"] + detail
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            child = f"{path}.{name}".lstrip(".")
            if name in properties:
                yield from cel_errors(properties[name], item, child)
            elif isinstance(extra, Mapping):
                yield from cel_errors(extra, item, child)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            yield from cel_errors(schema["items"], item, f"{path}[{index}]")


def evaluate_rule(rule: str, schema: Mapping[str, Any], value: Any) -> bool | str:
    """True or False, or the text of the evaluation error (which Kubernetes also rejects)."""
    try:
        result = _CEL.program(_CEL.compile(rule)).evaluate({"self": to_cel(schema, value)})
    except Exception as exc:
        return f"evaluation error: {exc}"
    if isinstance(result, celtypes.BoolType):
        return bool(result)
    return f"evaluation error: {result}"


def to_cel(schema: Mapping[str, Any], value: Any) -> Any:
    """``value`` as a CEL value, typed by the schema the way Kubernetes types it."""
    if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
        return celpy.json_to_cel(value)
    kind = schema.get("type")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return celtypes.MapType(
            {
                celtypes.StringType(k): to_cel(
                    properties.get(k) or (extra if isinstance(extra, Mapping) else {}), v
                )
                for k, v in value.items()
            }
        )
    if isinstance(value, list):
        return celtypes.ListType([to_cel(schema.get("items", {}), v) for v in value])
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if kind == "number" and isinstance(value, int | float):
        return celtypes.DoubleType(float(value))
    if isinstance(value, int):
        return celtypes.IntType(value)
    if isinstance(value, float):
        return celtypes.DoubleType(value)
    if isinstance(value, str):
        return celtypes.StringType(value)
    return celpy.json_to_cel(value)
