"""Every pod template we ship or build meets the "restricted" Pod Security Standard, runs as a
numeric non-root user on a read-only root filesystem with an emptyDir at /tmp: the chart's, the
kustomize folders', and the Deployment and Job that modelops.resources builds."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from deploy_pss import hardening_violations, restricted_violations
from deploy_support import (
    ALL_TOGGLES_ON,
    MANIFESTS,
    ROOT,
    flatten,
    kustomize,
    pod_specs,
    render_chart,
    yaml_documents,
    yaml_files,
)

from modelops.api import ModelDeploymentSpec
from modelops.resources import BuildDefaults, Owner, TrainingRequest, build_deployment, build_job


def compliant() -> dict[str, Any]:
    return {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "main",
                "image": "modelops:dev",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }


def container_sc(spec: dict[str, Any]) -> dict[str, Any]:
    sc: dict[str, Any] = spec["containers"][0]["securityContext"]
    return sc


MUTATIONS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "host-network": (lambda s: s.update(hostNetwork=True), "hostNetwork"),
    "host-pid": (lambda s: s.update(hostPID=True), "hostPID"),
    "host-path": (
        lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "hostPath",
    ),
    "privileged": (lambda s: container_sc(s).update(privileged=True), "privileged"),
    "escalation": (
        lambda s: container_sc(s).pop("allowPrivilegeEscalation"),
        "allowPrivilegeEscalation",
    ),
    "root-allowed": (lambda s: s["securityContext"].pop("runAsNonRoot"), "runAsNonRoot"),
    "root-container": (lambda s: container_sc(s).update(runAsNonRoot=False), "runAsNonRoot"),
    "uid-0": (lambda s: container_sc(s).update(runAsUser=0), "runAsUser"),
    "no-seccomp": (lambda s: s["securityContext"].pop("seccompProfile"), "seccompProfile"),
    "unconfined": (
        lambda s: container_sc(s).update(seccompProfile={"type": "Unconfined"}),
        "Unconfined",
    ),
    "caps-kept": (lambda s: container_sc(s).pop("capabilities"), "drop must contain ALL"),
    "cap-added": (
        lambda s: container_sc(s)["capabilities"].update(add=["SYS_ADMIN"]),
        "SYS_ADMIN",
    ),
    "host-port": (
        lambda s: s["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 80}]),
        "hostPort",
    ),
    "unsafe-sysctl": (
        lambda s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
        "kernel.msgmax",
    ),
    "selinux-user": (
        lambda s: s["securityContext"].update(seLinuxOptions={"user": "system_u"}),
        "seLinuxOptions.user",
    ),
    "proc-mount": (lambda s: container_sc(s).update(procMount="Unmasked"), "procMount"),
    "init-container": (
        lambda s: s.update(initContainers=[{"name": "init", "image": "busybox"}]),
        "initContainers[init]",
    ),
}


def test_checker_accepts_a_compliant_pod() -> None:
    assert restricted_violations(compliant()) == []
    assert hardening_violations(compliant()) == []


def test_checker_allows_net_bind_service_and_container_level_settings() -> None:
    spec = compliant()
    pod_sc = spec["securityContext"]
    container_sc(spec).update(
        runAsNonRoot=pod_sc.pop("runAsNonRoot"), seccompProfile=pod_sc.pop("seccompProfile")
    )
    container_sc(spec)["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    assert restricted_violations(spec) == []


@pytest.mark.parametrize("case", sorted(MUTATIONS))
def test_checker_reports_each_violation(case: str) -> None:
    mutate, expected = MUTATIONS[case]
    spec = compliant()
    mutate(spec)
    violations = restricted_violations(spec)
    assert any(expected in v for v in violations), violations


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: container_sc(s).update(readOnlyRootFilesystem=False), "readOnlyRoot"),
        (lambda s: s["containers"][0].update(volumeMounts=[]), "/tmp"),
        (lambda s: s["securityContext"].pop("runAsUser"), "numeric"),
    ],
    ids=["writable-root", "no-tmp", "no-uid"],
)
def test_hardening_checker_reports_each_gap(
    mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    spec = compliant()
    mutate(spec)
    assert any(expected in v for v in hardening_violations(spec))


def shipped_pods() -> list[tuple[str, dict[str, Any]]]:
    """Pod templates of the chart (defaults and every toggle on) and of every static manifest."""
    pods = []
    for label, values in (("default", {}), ("all-toggles", ALL_TOGGLES_ON)):
        for obj in flatten(render_chart(values)):
            pods += [(f"chart[{label}] {name}", spec) for name, spec in pod_specs(obj)]
    for path in yaml_files(MANIFESTS):
        for obj in yaml_documents(path.read_text(encoding="utf-8")):
            pods += [(f"{path.relative_to(ROOT)} {n}", spec) for n, spec in pod_specs(obj)]
    return pods


SHIPPED = shipped_pods()


def test_every_shipped_workload_was_found() -> None:
    names = " ".join(where for where, _ in SHIPPED)
    for expected in ("chart[default] Deployment", "operator/deployment.yaml", "first-model-job"):
        assert expected in names


@pytest.mark.parametrize(("where", "spec"), SHIPPED, ids=[w for w, _ in SHIPPED])
def test_shipped_pod_is_restricted_and_hardened(where: str, spec: dict[str, Any]) -> None:
    assert restricted_violations(spec) == []
    assert hardening_violations(spec) == []


@pytest.mark.parametrize("folder", ["default", "kind"])
def test_kustomized_pods_are_restricted_and_hardened(folder: str) -> None:
    objects = kustomize(MANIFESTS / folder)
    if objects is None:
        pytest.skip("kubectl is not installed: `kubectl kustomize` renders the folders")
    specs = [spec for obj in objects for _, spec in pod_specs(obj)]
    assert specs
    for spec in specs:
        assert restricted_violations(spec) == []
        assert hardening_violations(spec) == []


def sample(kind: str) -> dict[str, Any]:
    for path in yaml_files(MANIFESTS / "samples"):
        for obj in yaml_documents(path.read_text(encoding="utf-8")):
            if obj.get("kind") == kind:
                return obj
    raise AssertionError(f"manifests/samples has no {kind}")


DEFAULTS = BuildDefaults(image="modelops:dev")


def test_builders_deployment_of_the_sample_is_restricted_and_hardened() -> None:
    body = sample("ModelDeployment")
    owner = Owner("modelops.dev/v1alpha1", "ModelDeployment", "iris", "demo", "uid-1")
    spec = ModelDeploymentSpec.model_validate(body["spec"])
    deployment = build_deployment(owner, spec, DEFAULTS)
    ((_, pod),) = pod_specs(deployment)
    assert restricted_violations(pod) == []
    assert hardening_violations(pod) == []


@pytest.mark.parametrize("with_template", [False, True], ids=["plain", "jobTemplate"])
def test_builders_retraining_job_is_restricted_and_hardened(with_template: bool) -> None:
    retraining = sample("DriftPolicy")["spec"]["retraining"]
    template = yaml.safe_load(
        "template: {metadata: {annotations: {a: b}}, spec: {priorityClassName: low}}"
    )
    request = TrainingRequest(
        model_deployment="iris",
        candidate_version="v2",
        base_model_uri="pvc://models/iris/v1",
        data_uri=retraining["dataUri"],
        output_uri=retraining["outputUri"],
        job_template=copy.deepcopy(template) if with_template else None,
    )
    policy = Owner("modelops.dev/v1alpha1", "DriftPolicy", "iris-drift", "demo", "uid-2")
    job = build_job(policy, request, DEFAULTS)
    ((_, pod),) = pod_specs(job)
    assert restricted_violations(pod) == []
    assert hardening_violations(pod) == []
