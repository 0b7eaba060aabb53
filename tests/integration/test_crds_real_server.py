"""The CRDs, the invalid-spec table and every install manifest, judged by a real kube-apiserver.

The unit tier checks the same things against our own emulation of CRD validation; here the
server that users run has the last word: it installs the CRDs (it refuses a CRD whose default
fails one of its CEL rules), defaults a minimal object exactly as the pydantic types do, refuses
each invalid spec of the table at the field the table names, and accepts the kustomize and Helm
output server-side.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import flatten, render_chart
from test_api_invalid_specs import (
    CASES,
    DRIFT_POLICY,
    MODEL_DEPLOYMENT,
    SPEC_TYPES,
    VALID_DRIFT_POLICIES,
    Case,
)

from kube_testbed.client import ApiError, KubeClient
from kube_testbed.testbed import ROOT, Testbed, kubectl
from modelops.api import DriftPolicySpec

pytestmark = [pytest.mark.integration, pytest.mark.controlplane]

PLURALS = {"ModelDeployment": "modeldeployments", "DriftPolicy": "driftpolicies"}


def resource(kind: str, spec: dict[str, Any], name: str = "sample") -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


def test_both_crds_are_installed_and_served(testbed: Testbed) -> None:
    for name in ("modeldeployments.modelops.dev", "driftpolicies.modelops.dev"):
        crd = testbed.plane.request(
            "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        )
        established = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert established["Established"] == "True", crd["status"]
        assert established.get("NonStructuralSchema") is None


@pytest.mark.parametrize("kind", list(SPEC_TYPES))
async def test_the_server_defaults_a_minimal_spec_as_the_types_do(
    kube: KubeClient, kind: str
) -> None:
    spec = MODEL_DEPLOYMENT if kind == "ModelDeployment" else DRIFT_POLICY
    stored = await kube.create(PLURALS[kind], resource(kind, spec), dry_run=True)
    expected = (
        SPEC_TYPES[kind]
        .model_validate(spec)
        .model_dump(by_alias=True, exclude_none=True, mode="json")
    )
    assert _normalised(stored["spec"]) == _normalised(expected)


def _normalised(value: Any) -> Any:
    """Numbers as floats (1 and 1.0 are one value to the server) and empty collections dropped
    (the types' empty defaults are absent on the server)."""
    if isinstance(value, dict):
        items = {k: _normalised(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v not in ({}, [])}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    return json.loads(json.dumps(value), parse_int=float)


@pytest.mark.parametrize("case", [c for c in CASES if c.crd], ids=lambda c: c.id)
async def test_the_server_refuses_each_invalid_spec_at_its_field(
    kube: KubeClient, case: Case
) -> None:
    with pytest.raises(ApiError) as refused:
        await kube.create(
            PLURALS[case.kind], resource(case.kind, case.spec), dry_run=True, strict=True
        )
    assert refused.value.status in (400, 422), refused.value
    for layer, path, text in case.crd:
        assert path in refused.value.message, (path, refused.value.message)
        if layer == "cel":
            assert text in refused.value.message, (text, refused.value.message)


@pytest.mark.parametrize("name", list(VALID_DRIFT_POLICIES))
async def test_the_server_accepts_the_new_fields_and_defaults_them_as_the_types_do(
    kube: KubeClient, name: str
) -> None:
    spec = VALID_DRIFT_POLICIES[name]
    stored = await kube.create(
        "driftpolicies", resource("DriftPolicy", spec), dry_run=True, strict=True
    )
    expected = DriftPolicySpec.model_validate(spec).model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )
    assert _normalised(stored["spec"]) == _normalised(expected)


def test_every_case_of_the_table_has_a_crd_layer() -> None:
    """Every invalid spec is refused by the server itself, not only by the operator."""
    assert [c.id for c in CASES if not c.crd] == []


@pytest.mark.parametrize("folder", ["manifests/default", "manifests/kind"])
def test_kustomize_output_is_accepted_server_side(testbed: Testbed, folder: str) -> None:
    # A dry run creates nothing, so the namespaces the rest goes into must exist first.
    built = yaml.safe_load_all(
        kubectl(testbed.plane.admin_kubeconfig, "kustomize", str(ROOT / folder))
    )
    for obj in built:
        if obj and obj["kind"] == "Namespace":
            kubectl(
                testbed.plane.admin_kubeconfig,
                "apply",
                "--server-side",
                "-f",
                "-",
                stdin=json.dumps(obj),
            )
    kubectl(
        testbed.plane.admin_kubeconfig,
        *("apply", "--server-side", "--dry-run=server", "--field-manager=modelops-tests"),
        *("-k", str(ROOT / folder)),
    )


def test_samples_are_accepted_server_side(testbed: Testbed, kube: KubeClient) -> None:
    kubectl(
        testbed.plane.admin_kubeconfig,
        *("apply", "--server-side", "--dry-run=server", "-n", kube.namespace),
        *("-k", str(ROOT / "manifests/samples")),
    )


def test_the_rendered_chart_is_accepted_server_side(testbed: Testbed, tmp_path: Path) -> None:
    objects = [o for o in flatten(render_chart()) if o.get("apiVersion", "").find("coreos") < 0]
    assert any(o["kind"] == "Deployment" for o in objects)
    manifest = tmp_path / "chart.yaml"
    manifest.write_text(yaml.safe_dump_all(objects))
    kubectl(
        testbed.plane.admin_kubeconfig,
        *("apply", "--server-side", "--dry-run=server", "-n", "modelops-system"),
        *("-f", str(manifest)),
    )
