"""The pure builders: deterministic names, labels, owners, restricted security, valid schemas."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from modelops.api import ModelDeploymentSpec
from modelops.resources import (
    BuildDefaults,
    Owner,
    TrainingRequest,
    build_deployment,
    build_job,
    build_service,
    job_name,
    service_url,
)
from modelops.resources.names import dns_label, label_value

K8S_VERSION = "1.30.0"
MD_OWNER = Owner("modelops.dev/v1alpha1", "ModelDeployment", "iris", "ml", "uid-md-1")
POLICY = Owner("modelops.dev/v1alpha1", "DriftPolicy", "iris-drift", "ml", "uid-dp-1")
DEFAULTS = BuildDefaults(image="registry.example/modelops:1", pvc_root="/mnt/modelops")


def spec(**overrides: Any) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {"model": {"uri": "pvc://models/iris/v1", "version": "v1"}, **overrides}
    )


def assert_restricted(pod: dict[str, Any]) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        ctx = container["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert ctx["readOnlyRootFilesystem"] is True


def test_deployment_is_valid_owned_labelled_and_restricted() -> None:
    deployment = build_deployment(MD_OWNER, spec(replicas=3), DEFAULTS)
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    meta = deployment["metadata"]
    assert meta["name"] == "iris"
    assert meta["namespace"] == "ml"
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "modelops.dev/v1alpha1",
            "kind": "ModelDeployment",
            "name": "iris",
            "uid": "uid-md-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    for key, value in {
        "app.kubernetes.io/managed-by": "modelops",
        "app.kubernetes.io/name": "iris",
        "modelops.dev/model": "iris",
    }.items():
        assert meta["labels"][key] == value
        assert deployment["spec"]["template"]["metadata"]["labels"][key] == value
    assert deployment["spec"]["replicas"] == 3
    pod = deployment["spec"]["template"]["spec"]
    assert_restricted(pod)
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_server_container_args_probes_and_read_only_model_volume() -> None:
    deployment = build_deployment(MD_OWNER, spec(serving={"port": 9000, "maxRows": 7}), DEFAULTS)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.example/modelops:1"
    assert container["command"] == ["modelops"]
    args = container["args"]
    assert args[0] == "serve"
    assert args[args.index("--model-uri") + 1] == "pvc://models/iris/v1"
    assert args[args.index("--name") + 1] == "iris"
    assert args[args.index("--port") + 1] == "9000"
    assert args[args.index("--max-rows") + 1] == "7"
    assert args[args.index("--model-version") + 1] == "v1"
    assert "--allow-unsafe-pickle" not in args
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    claim = next(v for v in pod["volumes"] if "persistentVolumeClaim" in v)
    assert claim["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    mount = next(m for m in container["volumeMounts"] if m["name"] == claim["name"])
    assert mount == {"name": claim["name"], "mountPath": "/mnt/modelops/models", "readOnly": True}
    assert {"name": "MODELOPS_PVC_ROOT", "value": "/mnt/modelops"} in container["env"]


def test_file_and_http_models_get_no_claim_volume() -> None:
    for uri in ("file:///models/iris", "https://models.example/iris"):
        pod = build_deployment(MD_OWNER, spec(model={"uri": uri}), DEFAULTS)["spec"]["template"]
        assert [v["name"] for v in pod["spec"]["volumes"]] == ["tmp"]


def test_spec_fields_reach_the_pod() -> None:
    given = spec(
        image="mine:2",
        resources={"requests": {"cpu": "1"}},
        env=[{"name": "A", "value": "b"}],
        nodeSelector={"pool": "cpu"},
        tolerations=[{"key": "k", "operator": "Exists"}],
        model={"uri": "file:///m", "format": "joblib", "allowUnsafePickle": True},
    )
    deployment = build_deployment(MD_OWNER, given, DEFAULTS)
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "mine:2"
    assert container["resources"] == {"requests": {"cpu": "1"}}
    assert {"name": "A", "value": "b"} in container["env"]
    assert "--allow-unsafe-pickle" in container["args"]
    assert pod["nodeSelector"] == {"pool": "cpu"}
    assert pod["tolerations"] == [{"key": "k", "operator": "Exists"}]


def test_builders_are_deterministic() -> None:
    assert build_deployment(MD_OWNER, spec(), DEFAULTS) == build_deployment(
        MD_OWNER, spec(), DEFAULTS
    )
    assert build_service(MD_OWNER, spec()) == build_service(MD_OWNER, spec())


def test_service_selects_the_pods_and_is_valid() -> None:
    service = build_service(MD_OWNER, spec(serving={"port": 9000}))
    kubernetes_validate.validate(service, K8S_VERSION, strict=True)
    deployment = build_deployment(MD_OWNER, spec(), DEFAULTS)
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["port"] == 9000
    assert service["metadata"]["ownerReferences"][0]["uid"] == "uid-md-1"
    assert service_url("iris", "ml", 9000) == "http://iris.ml.svc:9000/v2/models/iris"


@pytest.mark.parametrize("grpc_port", [8081, 9500, 0])
def test_grpc_port_in_container_and_service_probes_stay_on_http(grpc_port: int) -> None:
    md = spec(serving={"port": 8080, "grpcPort": grpc_port})
    service = build_service(MD_OWNER, md)
    deployment = build_deployment(MD_OWNER, md, DEFAULTS)
    kubernetes_validate.validate(service, K8S_VERSION, strict=True)
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[args.index("--grpc-port") + 1] == str(grpc_port)
    grpc_ports = [p for p in container["ports"] if p["name"] == "grpc"]
    service_ports = [p for p in service["spec"]["ports"] if p["name"] == "grpc"]
    if grpc_port:
        assert grpc_ports == [{"name": "grpc", "containerPort": grpc_port, "protocol": "TCP"}]
        assert service_ports == [
            {
                "name": "grpc",
                "port": grpc_port,
                "targetPort": "grpc",
                "protocol": "TCP",
                "appProtocol": "grpc",
            }
        ]
    else:  # gRPC off: no port anywhere
        assert grpc_ports == service_ports == []
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "http"


@pytest.mark.parametrize(
    "serving",
    [{"grpcPort": 80}, {"grpcPort": 8080}, {"port": 9000, "grpcPort": 9000}, {"grpcPort": 70000}],
)
def test_bad_grpc_ports_are_refused(serving: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"grpcPort|less than or equal"):
        spec(serving=serving)


@pytest.mark.parametrize(
    "name",
    ["iris", "a" * 80, "Model.With.Dots", "9lives", "x-" * 40],
)
def test_names_are_dns_labels_and_stable(name: str) -> None:
    label = dns_label(name)
    assert len(label) <= 63
    assert label[0].isalpha()
    assert label[-1].isalnum()
    assert label == label.lower()
    assert dns_label(name) == label
    assert len(label_value(name)) <= 63


def test_long_names_do_not_collide() -> None:
    assert dns_label("a" * 80) != dns_label("a" * 81)


def request(**overrides: Any) -> TrainingRequest:
    values: dict[str, Any] = {
        "model_deployment": "iris",
        "candidate_version": "v1-r1",
        "base_model_uri": "pvc://models/iris/v1",
        "data_uri": "pvc://data/fresh.csv",
        "output_uri": "pvc://models/iris",
    }
    return TrainingRequest(**{**values, **overrides})


def test_job_name_is_the_idempotency_key() -> None:
    first = build_job(POLICY, request(), DEFAULTS)["metadata"]["name"]
    assert first == job_name("iris-drift", "uid-dp-1", "v1-r1")
    assert first.startswith("iris-drift-retrain-")
    assert build_job(POLICY, request(), DEFAULTS)["metadata"]["name"] == first
    assert job_name("iris-drift", "uid-dp-1", "v1-r2") != first
    assert job_name("iris-drift", "uid-other", "v1-r1") != first


def test_job_runs_the_trainer_safely() -> None:
    job = build_job(POLICY, request(), DEFAULTS)
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    meta = job["metadata"]
    assert meta["labels"]["modelops.dev/policy"] == "iris-drift"
    assert meta["labels"]["modelops.dev/candidate-version"] == "v1-r1"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "modelops"
    assert meta["ownerReferences"][0]["uid"] == "uid-dp-1"
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert_restricted(pod)
    (container,) = pod["containers"]
    assert container["command"] == ["modelops"]
    args = container["args"]
    assert args[0] == "train"
    assert args[args.index("--version") + 1] == "v1-r1"
    assert args[args.index("--data-uri") + 1] == "pvc://data/fresh.csv"
    assert args[args.index("--base-model-uri") + 1] == "pvc://models/iris/v1"
    assert args[args.index("--output-uri") + 1] == "pvc://models/iris"
    assert args[args.index("--termination-log") + 1] == "/dev/termination-log"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "File"
    rules = job["spec"]["podFailurePolicy"]["rules"]
    fail_job = next(r for r in rules if r["action"] == "FailJob")
    assert 3 in fail_job["onExitCodes"]["values"]
    claims = {
        v["persistentVolumeClaim"]["claimName"]: v["persistentVolumeClaim"]["readOnly"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"data": True, "models": False}
    assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])


def test_job_template_is_a_base_the_operator_completes() -> None:
    template = {
        "backoffLimit": 4,
        "template": {
            "metadata": {"labels": {"team": "ml"}},
            "spec": {
                "nodeSelector": {"pool": "gpu"},
                "restartPolicy": "OnFailure",
                "containers": [{"name": "trainer", "image": "custom:1", "command": ["sh"]}],
            },
        },
    }
    job = build_job(POLICY, request(job_template=template, image="serving:3"), DEFAULTS)
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    pod = job["spec"]["template"]["spec"]
    assert job["spec"]["backoffLimit"] == 4
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["command"] == ["modelops"]
    assert pod["containers"][0]["image"] == "serving:3"
    assert job["spec"]["template"]["metadata"]["labels"]["team"] == "ml"
    assert job["spec"]["template"]["metadata"]["labels"]["modelops.dev/policy"] == "iris-drift"


def test_job_template_env_reaches_the_trainer_and_ours_wins() -> None:
    secret = {"secretKeyRef": {"name": "s3-credentials", "key": "AWS_SECRET_ACCESS_KEY"}}
    given = [
        {"name": "AWS_ENDPOINT_URL", "value": "http://minio.storage:9000"},
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": secret},
        {"name": "MODELOPS_PVC_ROOT", "value": "/elsewhere"},
    ]
    template = {"template": {"spec": {"containers": [{"name": "trainer", "env": given}]}}}
    job = build_job(POLICY, request(job_template=template), DEFAULTS)
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["env"][:3] == [
        given[0],
        given[1],
        {"name": "MODELOPS_PVC_ROOT", "value": "/mnt/modelops"},
    ]
    assert [e["name"] for e in container["env"][3:]] == ["MODELOPS_POLICY", "MODELOPS_JOB_NAME"]


def test_the_storage_block_reaches_the_pods_by_reference() -> None:
    from modelops.api.storage import ObjectStorage

    storage = ObjectStorage.model_validate(
        {
            "secretName": "s3-credentials",
            "endpoint": "http://minio.storage:9000",
            "region": "eu-west-1",
            "pathStyle": True,
        }
    )
    job = build_job(POLICY, request(storage=storage), DEFAULTS)
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio.storage:9000"
    assert env["AWS_REGION"]["value"] == "eu-west-1"
    assert env["MODELOPS_S3_PATH_STYLE"]["value"] == "true"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key]["valueFrom"] == {"secretKeyRef": {"name": "s3-credentials", "key": key}}
    assert env["AWS_SESSION_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert "value" not in env["AWS_SECRET_ACCESS_KEY"]
    bare = build_job(POLICY, request(storage=ObjectStorage()), DEFAULTS)
    (container,) = bare["spec"]["template"]["spec"]["containers"]
    # IRSA: nothing to add
    assert [e["name"] for e in container["env"]] == [
        "MODELOPS_PVC_ROOT",
        "MODELOPS_POLICY",
        "MODELOPS_JOB_NAME",
    ]


def test_the_storage_block_reaches_the_serving_pods() -> None:
    given = spec(
        model={"uri": "s3://models/iris/v1"},
        storage={"secretName": "s3-credentials", "endpoint": "https://s3.example:9000"},
        env=[{"name": "AWS_REGION", "value": "eu-north-1"}],
    )
    deployment = build_deployment(MD_OWNER, given, DEFAULTS)
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    pod = deployment["spec"]["template"]["spec"]
    env = pod["containers"][0]["env"]
    names = [e["name"] for e in env]
    assert names[:2] == ["MODELOPS_PVC_ROOT", "AWS_ENDPOINT_URL"]
    assert names[-1] == "AWS_REGION"  # the user's own variables come last and win
    secret_ref = {"name": "s3-credentials", "key": "AWS_ACCESS_KEY_ID"}
    assert {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": secret_ref}} in env
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]  # no volume for s3://
