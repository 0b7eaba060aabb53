"""controller/driftpolicy.py, every branch read in full: the condition (type, status, reason,
message, observedGeneration, time), the Events (object, type, reason, message), the status
fields and what was written to the API, for the paths the state-machine tests reach only in part
(mutation-tested; the world of the state-machine tests is reused as it is)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from test_controller_driftpolicy_decisions import (
    CALM,
    DRIFT,
    INTERVAL,
    MODEL,
    NS,
    POLICY,
    POLICY_UID,
    PROFILE,
    PROMETHEUS,
    START,
    World,
    job_for,
    our_job,
    retraining,
    started,
)

from modelops.api import DriftPolicySpec, describe_validation_error
from modelops.controller import driftpolicy
from modelops.controller.kube import DRIFT_POLICIES, JOBS, MODEL_DEPLOYMENTS
from modelops.controller.sources import SourceError
from modelops.drift.profile import FeatureProfile, Profile
from modelops.resources import job_name
from modelops.resources import labels as label_keys


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    made = World(monkeypatch)
    made.model_deployment()
    made.pods.start()
    return made


def events(world: World) -> list[tuple[str, str, str, str]]:
    """(object kind, type, reason, message) of every Event since the last call."""
    return [(e.kind, e.type, e.reason, e.message) for e in world.take_events()]


def status_patches(world: World) -> list[dict[str, Any]]:
    return [
        patch
        for verb, plural, _, patch in world.kube.writes
        if verb == "patch/status" and plural == "driftpolicies"
    ]


def no_nulls(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, dict):
        return all(no_nulls(v) for v in value.values())
    if isinstance(value, list):
        return all(no_nulls(v) for v in value)
    return True


# ------------------------------------------------------------------ spec and source problems


def test_an_invalid_spec_is_reported_with_the_validation_error(world: World) -> None:
    world.policy(minSamples=0)
    body = world.kube.get(DRIFT_POLICIES, NS, POLICY)
    with pytest.raises(ValidationError) as caught:
        DriftPolicySpec.model_validate(body["spec"])
    expected = describe_validation_error(caught.value)
    status = world.tick()
    assert status["conditions"] == [
        {
            "type": "DriftDetected",
            "status": "Unknown",
            "reason": "InvalidSpec",
            "message": expected,
            "observedGeneration": 1,
            "lastTransitionTime": world.clock.text(),
        }
    ]
    assert status["observedGeneration"] == 1
    assert events(world) == [("DriftPolicy", "Warning", "InvalidSpec", expected)]
    reconciles = world.counter("modelops_reconcile_total", kind="DriftPolicy", result="success")
    assert reconciles == 1


def test_a_missing_model_deployment_is_named(world: World) -> None:
    world.policy(modelDeploymentRef={"name": "ghost"})
    world.tick()
    assert world.condition("SourceReady") == {
        "type": "SourceReady",
        "status": "False",
        "reason": "ModelNotFound",
        "message": "ModelDeployment ghost does not exist.",
        "observedGeneration": 1,
        "lastTransitionTime": world.clock.text(),
    }
    assert events(world) == [
        ("DriftPolicy", "Warning", "ModelNotFound", "ModelDeployment ghost does not exist.")
    ]


def test_an_invalid_model_deployment_is_named(world: World) -> None:
    world.kube.apply(MODEL_DEPLOYMENTS, NS, MODEL, {"spec": {"replicas": -3}})
    world.policy()
    world.tick()
    condition = world.condition("SourceReady")
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "ModelNotFound")
    assert condition["message"].startswith(f"ModelDeployment {MODEL} has an invalid spec: ")
    assert "replicas" in condition["message"]
    assert events(world) == [("DriftPolicy", "Warning", "ModelNotFound", condition["message"])]


def test_the_source_messages_count_pods_and_unreachable_ones(world: World) -> None:
    lost = world.pods.start()
    world.pods.pods.pop(lost.name)  # still an endpoint, but it does not answer
    world.policy(trigger={"consecutiveEvaluations": 1})
    world.tick()
    lost_url = f"http://{lost.address}:8080/v2/models/{MODEL}/counts"
    detail = (
        "1 serving pod(s) through the counts endpoint, "
        f"1 not read (GET {lost_url} failed: connection refused)"
    )
    baseline = f"Scraped {detail}; recorded the baseline counters."
    assert world.condition("SourceReady")["message"] == baseline  # type: ignore[index]
    assert events(world) == [("DriftPolicy", "Normal", "SourceReachable", baseline)]
    world.calm()
    assert world.condition("SourceReady")["message"] == f"Read {detail}."  # type: ignore[index]
    # Same status and reason: the new message is written, no second Event.
    assert [e[2] for e in events(world)] == ["NoDrift"]


def test_an_unreachable_source_is_a_warning_with_the_error(world: World) -> None:
    started(world)

    def refuse(url: str, timeout: float) -> bytes:
        raise SourceError("GET http://10.0.0.1:8080/metrics failed: connection refused")

    world.pods.answer = lambda address, path: refuse(path, 1.0)  # type: ignore[method-assign]
    world.calm()
    condition = world.condition("SourceReady")
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "SourceUnreachable")
    assert "connection refused" in condition["message"]
    assert events(world) == [("DriftPolicy", "Warning", "SourceUnreachable", condition["message"])]


def test_the_profile_is_fetched_once_and_its_failure_reported(world: World) -> None:
    started(world)
    answer = world.pods.answer
    asked: list[str] = []

    def no_profile(address: str, path: str) -> bytes:
        if path.endswith("/profile"):
            asked.append(path)
            raise SourceError(f"GET http://{address}:8080{path} answered HTTP 503")
        return answer(address, path)

    world.pods.answer = no_profile  # type: ignore[method-assign]
    world.calm()
    condition = world.condition("SourceReady")
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "ProfileUnavailable")
    assert "HTTP 503" in condition["message"]
    assert events(world) == [("DriftPolicy", "Warning", "ProfileUnavailable", condition["message"])]
    assert "lastEvaluationTime" not in world.status()
    world.pods.answer = answer  # type: ignore[method-assign]
    world.calm()
    assert world.condition_state("SourceReady") == ("True", "SourceReachable")
    assert world.condition_state("DriftDetected") == ("False", "NoDrift")
    world.pods.answer = no_profile  # type: ignore[method-assign]
    asked.clear()
    world.drift()  # the profile of this model URI was kept: no second fetch
    assert asked == []
    assert world.condition_state("SourceReady") == ("True", "SourceReachable")
    assert world.condition_state("DriftDetected") == ("True", "DriftFound")


# ----------------------------------------------------------------------------- the judgement


def test_scores_gauges_and_the_drift_messages(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 3})
    status = world.drift()
    # PSI 0.4 ln 1.8 + 0.4 ln 5 = 0.878889830..., kept to 6 decimals.
    assert status["features"] == [
        {
            "name": "x",
            "scores": {"psi": 0.87889, "ks": 0.4},
            "breached": True,
            "breachedMetrics": ["psi", "ks"],
        }
    ]
    message = "1 of 1 features drifted (x) in 1000 rows; 1 needed."
    assert world.condition("DriftDetected")["message"] == message  # type: ignore[index]
    assert events(world) == [("DriftPolicy", "Warning", "DriftFound", message)]
    gauge = world.counter("modelops_drift_detected", namespace=NS, policy=POLICY)
    assert gauge == 1
    score = world.ctx.metrics.registry.get_sample_value(
        "modelops_drift_score",
        {"namespace": NS, "policy": POLICY, "model": MODEL, "feature": "x", "metric": "ks"},
    )
    assert score == pytest.approx(0.4)
    world.calm()
    calm = "0 of 1 features drifted in 1000 rows; 1 needed."
    assert events(world) == [("DriftPolicy", "Normal", "NoDrift", calm)]
    assert world.counter("modelops_drift_detected", namespace=NS, policy=POLICY) == 0


def test_features_outside_the_profile_are_an_invalid_spec(world: World) -> None:
    started(world, features={"include": ["x", "colour"]})
    status = world.calm()
    message = "features not in the profile: ['colour']"
    assert world.condition("DriftDetected") == {
        "type": "DriftDetected",
        "status": "Unknown",
        "reason": "InvalidSpec",
        "message": message,
        "observedGeneration": 1,
        "lastTransitionTime": world.clock.text(),
    }
    assert events(world) == [("DriftPolicy", "Warning", "InvalidSpec", message)]
    assert status["lastEvaluationTime"] == world.clock.text()


def test_a_feature_override_without_a_threshold_takes_the_default(world: World) -> None:
    # Overriding psi for x at 0.9 (over 0.879) leaves only ks breached; a metric given without a
    # threshold takes its calibrated default (ks 0.1: 0.4 breaches it).
    started(
        world,
        features={
            "overrides": [
                {"name": "x", "metrics": [{"type": "psi", "threshold": 0.9}, {"type": "ks"}]}
            ]
        },
        trigger={"consecutiveEvaluations": 3},
    )
    status = world.drift()
    assert status["features"][0]["breachedMetrics"] == ["ks"]


def test_a_metric_without_a_threshold_takes_the_calibrated_default(world: World) -> None:
    started(world, metrics=[{"type": "ks"}], trigger={"consecutiveEvaluations": 3})
    status = world.drift()
    assert status["features"][0]["breachedMetrics"] == ["ks"]
    assert status["features"][0]["scores"] == {"ks": 0.4}


# ---------------------------------------------------------------- judge() with many features


def profile_of(n: int) -> Profile:
    return Profile(
        features=tuple(
            FeatureProfile(
                name=f"f{i}",
                kind="numeric",
                proportions=(0.5, 0.5, 0.0),
                edges=(0.0,),
                centers=(-1.0, 1.0),
                mean=0.0,
                std=1.0,
            )
            for i in range(n)
        ),
        rows=1000,
    )


def judged(world: World, counts: list[tuple[float, float, float]], **spec: Any) -> Any:
    world.policy(**spec)
    body = world.kube.get(DRIFT_POLICIES, NS, POLICY)
    run = driftpolicy.Tick(world.ctx, body)
    md = world.md()
    driftpolicy.judge(
        run,
        DriftPolicySpec.model_validate(body["spec"]),
        profile_of(len(counts)),
        np.array(counts, dtype=float),
        MODEL,
        "v1",
        md,
        driftpolicy.ModelDeploymentSpec.model_validate(md["spec"]),
    )
    return run


def test_more_than_five_drifted_features_are_cut_short(world: World) -> None:
    run = judged(world, [DRIFT] * 6, trigger={"consecutiveEvaluations": 5})
    assert run.events == [
        (
            "Warning",
            "DriftFound",
            "6 of 6 features drifted (f0, f1, f2, f3, f4, ...) in 1000 rows; 1 needed.",
        )
    ]
    run = judged(world, [DRIFT] * 5, trigger={"consecutiveEvaluations": 5})
    assert run.events[0][2] == (
        "5 of 5 features drifted (f0, f1, f2, f3, f4) in 1000 rows; 1 needed."
    )


def test_a_fraction_rule_counts_the_features_evaluated(world: World) -> None:
    run = judged(
        world,
        [DRIFT, DRIFT, CALM, CALM],
        trigger={"consecutiveEvaluations": 5, "minBreachedFeatures": 0.5},
    )
    assert run.events[0][2] == "2 of 4 features drifted (f0, f1) in 1000 rows; 2 needed."
    assert run.status.consecutive_breaches == 1


def test_the_samples_of_a_window_are_those_of_its_smallest_feature(world: World) -> None:
    run = judged(world, [(100, 50, 0), (300, 300, 0)], minSamples=200)
    assert run.status.samples == 150
    assert run.status.conditions[-1].message == (
        "The window has 150 rows; at least 200 are needed."
    )


# ------------------------------------------------------------------------- status writes


def test_status_is_patched_only_when_more_than_the_evaluation_time_changed(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 5})
    world.calm()  # the first judged window: everything new
    before = len(status_patches(world))
    assert before >= 1
    world.calm()  # the same judgement again: only lastEvaluationTime moved
    assert len(status_patches(world)) == before
    world.drift()
    assert len(status_patches(world)) == before + 1
    assert all(no_nulls(patch) for patch in status_patches(world))


def test_the_first_evaluation_time_alone_is_written(world: World) -> None:
    # An evaluation that changes nothing but sets lastEvaluationTime for the first time.
    started(world)
    world.kube.update_status(
        DRIFT_POLICIES, NS, POLICY, {"samples": 150, "conditions": world.status()["conditions"]}
    )
    body = world.kube.get(DRIFT_POLICIES, NS, POLICY)
    run = driftpolicy.Tick(world.ctx, body)
    run.status.last_evaluation_time = run.now
    count = len(world.kube.writes)
    run.write()
    assert len(world.kube.writes) == count + 1
    run = driftpolicy.Tick(world.ctx, world.kube.get(DRIFT_POLICIES, NS, POLICY))
    run.status.last_evaluation_time = run.now + timedelta(seconds=5)
    run.write()
    assert len(world.kube.writes) == count + 1


def test_a_policy_without_a_generation_observes_zero(world: World) -> None:
    world.policy()
    body = world.kube.get(DRIFT_POLICIES, NS, POLICY)
    del body["metadata"]["generation"]
    run = driftpolicy.Tick(world.ctx, body)
    assert run.generation == 0
    assert run.status.observed_generation == 0


# ------------------------------------------------------------------- memory across restarts


def test_an_operator_restart_keeps_the_interval_from_the_status(world: World) -> None:
    started(world)
    world.calm()
    evaluated = world.status()["lastEvaluationTime"]
    world.ctx = type(world.ctx)(
        kube=world.kube, settings=world.ctx.settings, metrics=world.ctx.metrics
    )  # a new process: empty memory
    world.clock.advance(INTERVAL / 2)
    world.tick()
    assert world.status()["lastEvaluationTime"] == evaluated


def test_a_forgotten_policy_starts_over_with_a_baseline(world: World) -> None:
    started(world)
    world.calm()
    body = world.kube.get(DRIFT_POLICIES, NS, POLICY)
    driftpolicy.forget(world.ctx, body)
    world.kube.update_status(DRIFT_POLICIES, NS, POLICY, {"lastEvaluationTime": None})
    world.take_events()
    world.clock.advance(INTERVAL)
    world.pods.serve(DRIFT)
    world.tick()
    message = (
        "Scraped 1 serving pod(s) through the counts endpoint; recorded the baseline counters."
    )
    assert world.condition("SourceReady")["message"] == message  # type: ignore[index]


def test_a_recreated_policy_of_the_same_name_is_a_new_policy(world: World) -> None:
    started(world)
    world.kube.delete(DRIFT_POLICIES, NS, POLICY)
    world.policy()
    body = world.kube.get(DRIFT_POLICIES, NS, POLICY)
    body["metadata"]["uid"] = "another-uid"
    world.kube.put(DRIFT_POLICIES, body)
    world.clock.advance(1)
    world.tick()  # due at once: its memory is its own
    assert world.condition("SourceReady")["message"] == (  # type: ignore[index]
        "Scraped 1 serving pod(s) through the counts endpoint; recorded the baseline counters."
    )
    assert world.condition("SourceReady")["lastTransitionTime"] == world.clock.text()  # type: ignore[index]


# ---------------------------------------------------------------------- starting a retraining


def test_the_job_carries_every_retraining_setting(world: World) -> None:
    started(
        world,
        trigger={"consecutiveEvaluations": 1},
        retraining={
            "backoffLimit": 4,
            "activeDeadlineSeconds": 1234,
            "resources": {"limits": {"memory": "2Gi"}},
        },
    )
    world.kube.apply(MODEL_DEPLOYMENTS, NS, MODEL, {"spec": {"image": "registry.local/m:7"}})
    world.drift()
    job = world.kube.get(JOBS, NS, job_for("v1-r1"))
    assert job is not None
    assert job["spec"]["backoffLimit"] == 4
    assert job["spec"]["activeDeadlineSeconds"] == 1234
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.local/m:7"
    assert container["resources"] == {"limits": {"memory": "2Gi"}}
    message = (
        f"Started retraining Job {job_for('v1-r1')} for candidate v1-r1. "
        "Drift breached the trigger in 1 consecutive evaluations."
    )
    assert ("DriftPolicy", "Normal", "RetrainingStarted", message) in events(world)
    assert world.condition("Retraining")["message"] == message  # type: ignore[index]
    last = retraining(world.status())
    assert last == {
        "job": job_for("v1-r1"),
        "candidateVersion": "v1-r1",
        "startTime": world.clock.text(),
        "result": "Running",
        "reason": "RetrainingStarted",
        "message": "Training candidate v1-r1.",
        "uri": "",
        "metrics": {},
        "baseline": {},
    }
    assert world.status()["lastTriggerTime"] == world.clock.text()


def test_the_job_template_of_the_policy_reaches_the_job(world: World) -> None:
    started(
        world,
        trigger={"consecutiveEvaluations": 1},
        retraining={"jobTemplate": {"metadata": {"labels": {"team": "ml"}}}},
    )
    world.drift()
    job = world.kube.get(JOBS, NS, job_for("v1-r1"))
    assert job is not None
    assert json.dumps(job).count('"team": "ml"') >= 1


def test_the_candidate_is_named_after_the_version_the_pods_serve(world: World) -> None:
    world.kube.apply(MODEL_DEPLOYMENTS, NS, MODEL, {"spec": {"model": {"version": None}}})
    world.kube.update_status(MODEL_DEPLOYMENTS, NS, MODEL, {"modelVersion": "v7"})
    for pod in world.pods.pods.values():
        pod.version = "v7"
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    assert world.jobs() == [job_for("v7-r1")]


def test_without_a_retraining_section_drift_is_only_reported(world: World) -> None:
    world.policy(trigger={"consecutiveEvaluations": 1}, retraining=None)
    world.tick()
    world.take_events()
    world.drift()
    assert world.jobs() == []
    assert world.condition_state("Retraining") == ("False", "RetrainingDisabled")
    assert (
        "DriftPolicy",
        "Normal",
        "RetrainingDisabled",
        "Drift persists, but retraining is disabled.",
    ) in events(world)


def test_a_disabled_retraining_does_not_adopt_a_job_either(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1}, retraining={"enabled": False})
    world.kube.put(JOBS, our_job(world, "v1-r1"))
    status = world.drift()
    assert "lastRetraining" not in status
    assert world.condition_state("Retraining") == ("False", "RetrainingDisabled")


def test_a_hold_while_a_retraining_runs_keeps_the_condition_true(world: World) -> None:
    started(
        world,
        trigger={"consecutiveEvaluations": 1},
        retraining={"cooldown": "1h"},
    )
    world.drift()
    assert world.condition_state("Retraining") == ("True", "RetrainingStarted")
    world.take_events()
    world.drift()
    assert world.condition_state("Retraining") == ("True", "CooldownActive")
    assert events(world)[-1] == (
        "DriftPolicy",
        "Normal",
        "CooldownActive",
        "Drift persists; the next retraining may start in 3540s (cooldown).",
    )


def test_a_name_conflict_message_and_type(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.kube.put(
        JOBS,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": job_for("v1-r1"), "namespace": NS},
            "spec": {},
        },
    )
    world.drift()
    assert world.condition("Retraining") == {
        "type": "Retraining",
        "status": "False",
        "reason": "NameConflict",
        "message": f"Job {job_for('v1-r1')} exists and does not belong to this policy.",
        "observedGeneration": 1,
        "lastTransitionTime": world.clock.text(),
    }


# -------------------------------------------------------------------- following the Job


def finish(world: World, name: str, *, message: str, exit_code: int, failed: bool) -> None:
    world.finish_job(name, failed=failed, exit_code=exit_code)
    pod = world.kube.objects(driftpolicy.PODS, NS)[-1]
    pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"] = message
    world.kube.put(driftpolicy.PODS, pod)


def result_json(**fields: Any) -> str:
    doc = {"version": "v1-r1", "uri": "pvc://models/iris/v1-r1"}
    doc.update(fields)
    return json.dumps(doc)


def followed(world: World) -> dict[str, Any]:
    world.take_events()
    world.clock.advance(1)
    return retraining(world.tick())


def test_a_gate_failure_is_named_by_the_result_even_with_exit_code_1(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    finish(
        world,
        job_for("v1-r1"),
        message=result_json(uri="", reason="DataQualityGateFailed", message="3 rows are too few"),
        exit_code=1,
        failed=True,
    )
    last = followed(world)
    message = f"Job {job_for('v1-r1')} failed: 3 rows are too few"
    assert (last["result"], last["reason"], last["message"]) == (
        "Failed",
        "DataQualityGateFailed",
        message,
    )
    assert world.condition("Retraining")["message"] == message  # type: ignore[index]
    assert events(world) == [("DriftPolicy", "Warning", "DataQualityGateFailed", message)]


def test_a_failed_job_is_explained_by_the_job_when_the_trainer_says_nothing(
    world: World,
) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    world.finish_job(job_for("v1-r1"), failed=True)
    last = followed(world)
    message = f"Job {job_for('v1-r1')} failed: Job has reached the specified backoff limit"
    assert (last["result"], last["reason"], last["message"]) == (
        "Failed",
        "RetrainingFailed",
        message,
    )
    assert events(world) == [("DriftPolicy", "Warning", "RetrainingFailed", message)]


def test_a_failed_job_without_a_message_is_explained_by_its_reason(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    name = job_for("v1-r1")
    world.kube.update_status(
        JOBS,
        NS,
        name,
        {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]},
    )
    last = followed(world)  # and no pod at all
    assert (last["result"], last["reason"], last["message"]) == (
        "Failed",
        "RetrainingFailed",
        f"Job {name} failed: DeadlineExceeded",
    )
    assert last["completionTime"] == world.clock.text()


def test_a_succeeded_job_whose_result_failed_is_unreadable_with_the_reason(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    finish(
        world,
        job_for("v1-r1"),
        message=result_json(uri="", reason="InvalidData", message="no target column"),
        exit_code=0,
        failed=False,
    )
    last = followed(world)
    message = (
        f"Job {job_for('v1-r1')} succeeded, but its termination message holds no usable result "
        "(InvalidData: no target column)."
    )
    assert (last["result"], last["reason"], last["message"]) == (
        "Failed",
        "ResultUnreadable",
        message,
    )
    assert world.condition("Retraining")["message"] == message  # type: ignore[index]
    assert events(world) == [("DriftPolicy", "Warning", "ResultUnreadable", message)]


def test_a_succeeded_result_without_a_uri_is_unreadable(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    finish(world, job_for("v1-r1"), message=result_json(uri=""), exit_code=0, failed=False)
    last = followed(world)
    assert last["message"] == (
        f"Job {job_for('v1-r1')} succeeded, but its termination message holds no usable result "
        "(Succeeded: )."
    )


def test_a_readable_result_without_details_says_so_plainly(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    world.finish_job(job_for("v1-r1"))
    last = followed(world)
    assert last["message"] == (
        f"Job {job_for('v1-r1')} succeeded, but its termination message holds no usable result."
    )


# ------------------------------------------------------------------------ the decision


def test_auto_promotion_events_and_history(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    world.finish_job(job_for("v1-r1"), accuracy=0.97, baseline=0.90)
    last = followed(world)
    message = "Promoted v1-r1: accuracy 0.97 vs 0.9, better by 0.07 (at least 0 needed)."
    assert (last["result"], last["reason"], last["message"]) == (
        "Promoted",
        "CandidatePromoted",
        message,
    )
    assert last["uri"] == "pvc://models/iris/v1-r1"
    assert world.condition("Retraining")["message"] == (  # type: ignore[index]
        f"Job {job_for('v1-r1')} trained candidate v1-r1."
    )
    assert events(world) == [
        ("ModelDeployment", "Normal", "CandidatePromoted", message),
        ("DriftPolicy", "Normal", "CandidatePromoted", message),
    ]
    assert world.condition("PromotionPending") is None
    history = world.md()["status"]["history"]
    assert history[-1] == {
        "version": "v1-r1",
        "uri": "pvc://models/iris/v1-r1",
        "time": world.clock.text(),
        "reason": "CandidatePromoted",
    }


def test_the_candidate_version_is_the_policys_not_the_trainers(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    finish(
        world,
        job_for("v1-r1"),
        message=result_json(
            version="something-else", metrics={"accuracy": 0.97}, baseline={"accuracy": 0.9}
        ),
        exit_code=0,
        failed=False,
    )
    last = followed(world)
    assert last["message"].startswith("Promoted v1-r1: ")
    assert world.md()["spec"]["model"]["version"] == "v1-r1"


def test_the_configured_metric_decides(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1}, promotion={"metric": "f1"})
    world.drift()
    finish(
        world,
        job_for("v1-r1"),
        message=result_json(
            metrics={"accuracy": 0.99, "f1": 0.5}, baseline={"accuracy": 0.9, "f1": 0.6}
        ),
        exit_code=0,
        failed=False,
    )
    last = followed(world)
    assert (last["result"], last["reason"]) == ("Rejected", "CandidateRejected")
    assert "f1 0.5 vs 0.6" in last["message"]


def test_a_candidate_approved_before_it_finished_is_promoted_at_once(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1}, promotion={"mode": "manual"})
    world.drift()
    world.approve("v1-r1")
    world.finish_job(job_for("v1-r1"), accuracy=0.97)
    last = followed(world)
    assert (last["result"], last["reason"], last["message"]) == (
        "Promoted",
        "CandidatePromoted",
        "Promoted v1-r1: approved.",
    )


def test_awaiting_and_recorded_events(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1}, promotion={"mode": "manual"})
    world.drift()
    world.finish_job(job_for("v1-r1"), accuracy=0.97)
    last = followed(world)
    assert events(world) == [("DriftPolicy", "Normal", "AwaitingApproval", last["message"])]
    assert world.condition("PromotionPending")["message"] == last["message"]  # type: ignore[index]


def test_recorded_event(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1}, promotion={"mode": "none"})
    world.drift()
    world.finish_job(job_for("v1-r1"), accuracy=0.97)
    last = followed(world)
    assert events(world) == [("DriftPolicy", "Normal", "CandidateRecorded", last["message"])]


def test_the_approval_timeout_counts_from_the_jobs_completion(world: World) -> None:
    started(
        world,
        trigger={"consecutiveEvaluations": 1},
        promotion={"mode": "manual", "approvalTimeout": "10m"},
    )
    world.drift()
    world.clock.advance(20 * 60)  # the Job ran for 20 minutes
    world.finish_job(job_for("v1-r1"), accuracy=0.97)
    followed(world)
    world.clock.advance(5 * 60)
    assert retraining(world.tick())["result"] == "AwaitingApproval"


def test_a_promotion_to_a_vanished_deployment_is_rejected(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    world.finish_job(job_for("v1-r1"), accuracy=0.97)
    world.kube.delete(MODEL_DEPLOYMENTS, NS, MODEL)
    last = followed(world)
    assert (last["result"], last["reason"], last["message"]) == (
        "Rejected",
        "ModelNotFound",
        f"ModelDeployment {MODEL} is gone.",
    )
    assert events(world) == [
        ("DriftPolicy", "Warning", "ModelNotFound", f"ModelDeployment {MODEL} is gone.")
    ]


def test_a_promotion_drops_the_unsafe_pickle_opt_in(world: World) -> None:
    world.kube.apply(
        MODEL_DEPLOYMENTS,
        NS,
        MODEL,
        {"spec": {"model": {"format": "joblib", "allowUnsafePickle": True}}},
    )
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    world.finish_job(job_for("v1-r1"), accuracy=0.97)
    followed(world)
    assert world.md()["spec"]["model"] == {
        "uri": "pvc://models/iris/v1-r1",
        "version": "v1-r1",
        "format": "skops",
    }


# ---------------------------------------------------------------------------- the rollout


def promoted_world(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    world.finish_job(job_for("v1-r1"), accuracy=0.97)
    followed(world)
    world.take_events()


def test_a_rollout_is_confirmed_once_with_its_event(world: World) -> None:
    promoted_world(world)
    world.kube.update_status(
        MODEL_DEPLOYMENTS, NS, MODEL, {"observedGeneration": 2, "modelVersion": "v1-r1"}
    )
    world.clock.advance(1)
    last = retraining(world.tick())
    message = "Candidate v1-r1 is serving and Ready."
    assert (last["result"], last["reason"], last["message"]) == (
        "Promoted",
        "RolloutComplete",
        message,
    )
    assert events(world) == [("DriftPolicy", "Normal", "RolloutComplete", message)]
    world.clock.advance(1)
    world.tick()
    assert events(world) == []


def test_the_served_version_alone_is_not_a_complete_rollout(world: World) -> None:
    promoted_world(world)
    ready = world.md()["status"]["conditions"]
    ready[0]["status"] = "False"
    world.kube.update_status(
        MODEL_DEPLOYMENTS,
        NS,
        MODEL,
        {"observedGeneration": 2, "modelVersion": "v1-r1", "conditions": ready},
    )
    world.clock.advance(1)
    assert retraining(world.tick())["reason"] == "CandidatePromoted"
    world.kube.update_status(
        MODEL_DEPLOYMENTS, NS, MODEL, {"observedGeneration": 1, "modelVersion": "v1-r1"}
    )
    ready[0]["status"] = "True"
    world.kube.update_status(MODEL_DEPLOYMENTS, NS, MODEL, {"conditions": ready})
    world.clock.advance(1)
    assert retraining(world.tick())["reason"] == "CandidatePromoted"  # an old generation


def test_a_promotion_without_history_is_neither_confirmed_nor_rolled_back(world: World) -> None:
    promoted_world(world)
    world.kube.update_status(MODEL_DEPLOYMENTS, NS, MODEL, {"history": []})
    world.clock.advance(7200)
    last = retraining(world.tick())
    assert (last["result"], last["reason"]) == ("Promoted", "CandidatePromoted")


def test_a_model_changed_by_someone_else_is_left_alone(world: World) -> None:
    promoted_world(world)
    world.kube.apply(MODEL_DEPLOYMENTS, NS, MODEL, {"spec": {"model": {"version": "v5"}}})
    world.clock.advance(7200)
    last = retraining(world.tick())
    assert (last["result"], last["reason"]) == ("Promoted", "CandidatePromoted")
    assert world.md()["spec"]["model"]["version"] == "v5"


def test_nothing_is_followed_after_a_rollback(world: World) -> None:
    promoted_world(world)
    world.clock.advance(3600)
    world.tick()
    assert retraining(world.status())["result"] == "RolledBack"
    world.take_events()
    world.clock.advance(3600)
    world.tick()
    assert events(world) == []


def test_the_start_time_is_the_clock_and_the_job_is_owned(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    assert retraining(world.status())["startTime"] == (
        (START + timedelta(seconds=INTERVAL)).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    job = world.kube.get(JOBS, NS, job_for("v1-r1"))
    assert job is not None
    assert job["metadata"]["ownerReferences"][0]["uid"] == POLICY_UID
    assert job["metadata"]["labels"][label_keys.POLICY] == POLICY


def test_an_adopted_job_is_named_in_full(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.kube.put(JOBS, our_job(world, "v1-r1"))
    world.drift()
    message = f"Adopted the existing retraining Job {job_for('v1-r1')} for candidate v1-r1."
    assert ("DriftPolicy", "Normal", "RetrainingStarted", message) in events(world)
    assert world.condition("Retraining")["message"] == message  # type: ignore[index]


# ------------------------------------------------------- superseded Jobs, each to its own end


def test_superseded_jobs_each_end_their_own_way_in_one_tick(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1}, retraining={"maxConcurrent": 4})
    for _ in range(4):
        world.drift()
    r1, r2, r3, r4 = (job_for(f"v1-r{n}") for n in range(1, 5))
    assert world.status()["supersededJobs"] == [r1, r2, r3]
    world.take_events()
    world.finish_job(r2, failed=True)
    world.finish_job(r3)  # succeeded, but wrote no result
    world.clock.advance(1)
    world.tick()
    assert events(world) == [
        (
            "DriftPolicy",
            "Warning",
            "RetrainingFailed",
            f"Job {r2} failed: Job has reached the specified backoff limit",
        ),
        (
            "DriftPolicy",
            "Normal",
            "RetrainingSuperseded",
            f"Job {r3} succeeded; it is not judged: the later Job {r4} decides.",
        ),
    ]
    assert world.status()["supersededJobs"] == [r1]  # still running: still followed
    assert world.jobs_counted("failed") == 1
    assert world.jobs_counted("succeeded") == 1
    assert retraining(world.status())["job"] == r4

    world.finish_job(r1, failed=True)
    world.kube.delete(JOBS, NS, r4)
    world.clock.advance(1)
    world.tick()
    assert events(world) == [
        (
            "DriftPolicy",
            "Warning",
            "RetrainingFailed",
            f"Job {r1} failed: Job has reached the specified backoff limit",
        ),
        ("DriftPolicy", "Warning", "RetrainingFailed", f"Job {r4} disappeared."),
    ]
    assert world.status()["supersededJobs"] == []
    assert world.jobs_counted("failed") == 3


# ----------------------------------------------------- prediction drift and the live metric

SIGNAL_PROFILE = Profile(
    features=PROFILE.features,
    rows=PROFILE.rows,
    output=FeatureProfile(
        name="label",
        kind="categorical",
        proportions=(0.5, 0.5, 0.0, 0.0),
        categories=("a", "b"),
    ),
)


class DocumentPods:
    """One serving pod whose counts document carries the predictions and the feedback given
    (cumulative counters, as the server keeps them), and the profile given."""

    def __init__(self, world: World, profile: Profile) -> None:
        self.world = world
        self.profile = profile
        self.predictions: list[int] | None = None
        self.feedback: dict[str, Any] | None = None
        self.metadata: dict[str, Any] | None = None
        """The V2 model metadata document (``GET /v2/models/<name>``); None: HTTP 404."""
        self.asked: list[str] = []
        world.pods.answer = self.answer  # type: ignore[method-assign]

    def answer(self, address: str, path: str) -> bytes:
        self.asked.append(path)
        [pod] = self.world.pods.pods.values()
        if path == f"/v2/models/{MODEL}/profile":
            return self.profile.to_json().encode()
        if path == f"/v2/models/{MODEL}":
            if self.metadata is None:
                raise SourceError(f"GET http://{address}:8080{path} answered HTTP 404", status=404)
            return json.dumps(self.metadata).encode()
        counts = [int(v) for v in pod.counters]
        document: dict[str, Any] = {
            "model": MODEL,
            "version": pod.version,
            "start": pod.start,
            "rows": sum(counts),
            "features": [{"name": "x", "counts": counts}],
        }
        if self.predictions is not None:
            document["predictions"] = self.predictions
        if self.feedback is not None:
            document["feedback"] = self.feedback
        return json.dumps(document).encode()


def signal_window(
    world: World,
    pods: DocumentPods,
    *,
    predictions: list[int] | None = None,
    feedback: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The first tick records the baseline (all counters zero); the second reads the window."""
    if predictions is not None:
        pods.predictions = [0] * len(predictions)
    if feedback is not None:
        zero = [[0] * len(row) for row in feedback.get("confusion", [])]
        pods.feedback = {**dict.fromkeys(feedback, 0), **({"confusion": zero} if zero else {})}
        if "classes" in feedback:
            pods.feedback["classes"] = feedback["classes"]
    world.tick()
    world.take_events()
    world.pods.serve(CALM)
    pods.predictions = predictions
    pods.feedback = feedback
    world.clock.advance(INTERVAL)
    return world.tick()


def confusion(classes: list[str], matrix: list[list[int]]) -> dict[str, Any]:
    return {"rows": sum(map(sum, matrix)), "classes": classes, "confusion": matrix}


def performance_event(world: World) -> list[tuple[str, str, str, str]]:
    return [e for e in events(world) if e[2] not in ("NoDrift", "SourceReachable")]


def test_a_classifier_without_an_output_entry_takes_its_classes_from_the_feedback(
    world: World,
) -> None:
    pods = DocumentPods(world, PROFILE)
    world.policy(performance={"metric": "accuracy", "minSamples": 100, "min": 0.5})
    # classes in the feedback's own order; the matrix's rows are the actual class
    feedback = confusion(["b", "a"], [[300, 100], [0, 100]])
    status = signal_window(world, pods, feedback=feedback)
    # 300 + 100 of 500 right
    assert status["performance"] == {"metric": "accuracy", "value": 0.8, "samples": 500}
    message = "accuracy 0.8 is within bounds. (500 feedback rows)"
    assert world.condition("PerformanceDegraded")["message"] == message  # type: ignore[index]
    assert performance_event(world) == [("DriftPolicy", "Normal", "MetricHealthy", message)]


def test_labels_outside_the_profiles_categories_are_not_counted(world: World) -> None:
    pods = DocumentPods(world, SIGNAL_PROFILE)
    world.policy(performance={"metric": "accuracy", "minSamples": 100, "min": 0.5})
    # the actual class c is not a category of the model: its 100 rows are left out
    feedback = confusion(["a", "b", "c"], [[400, 100, 0], [0, 400, 0], [50, 50, 0]])
    status = signal_window(world, pods, feedback=feedback)
    # 800 of 900 right: 0.888888... kept to 6 decimals
    assert status["performance"] == {"metric": "accuracy", "value": 0.888889, "samples": 900}


def test_a_classifier_fed_regression_sums_has_no_feedback_rows(world: World) -> None:
    pods = DocumentPods(world, SIGNAL_PROFILE)
    world.policy(performance={"metric": "accuracy", "minSamples": 4, "min": 0.5})
    sums = {"rows": 4, "absError": 4.0, "squaredError": 4.0, "target": 8.0, "targetSquared": 20.0}
    status = signal_window(world, pods, feedback=sums)
    assert status["performance"] == {"metric": "accuracy", "samples": 0}
    assert world.condition("PerformanceDegraded") == {
        "type": "PerformanceDegraded",
        "status": "Unknown",
        "reason": "InsufficientSamples",
        "message": "The window has 0 feedback rows; at least 4 are needed.",
        "observedGeneration": 1,
        "lastTransitionTime": world.clock.text(),
    }
    assert performance_event(world) == []


def test_the_live_metric_is_kept_to_six_decimals(world: World) -> None:
    pods = DocumentPods(world, SIGNAL_PROFILE)
    world.policy(performance={"metric": "accuracy", "minSamples": 100, "min": 0.9})
    status = signal_window(world, pods, feedback=confusion(["a", "b"], [[200, 100], [100, 200]]))
    # 400 of 600 right
    assert status["performance"] == {"metric": "accuracy", "value": 0.666667, "samples": 600}
    message = "accuracy 0.6667 is below min 0.9. (600 feedback rows)"
    assert performance_event(world) == [("DriftPolicy", "Warning", "MetricDegraded", message)]


def test_a_metric_that_does_not_fit_the_model_is_a_warning(world: World) -> None:
    pods = DocumentPods(world, SIGNAL_PROFILE)
    world.policy(performance={"metric": "mae", "minSamples": 100, "max": 1.0})
    signal_window(world, pods, feedback=confusion(["a", "b"], [[200, 100], [100, 200]]))
    condition = world.condition("PerformanceDegraded")
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("Unknown", "MetricNotApplicable")
    assert performance_event(world) == [
        ("DriftPolicy", "Warning", "MetricNotApplicable", condition["message"])
    ]


def test_a_profile_without_output_entry_is_a_warning_with_the_way_out(world: World) -> None:
    pods = DocumentPods(world, PROFILE)
    world.policy(predictionDrift={})
    signal_window(world, pods, predictions=[500, 500, 0, 0])
    message = (
        "The model's profile has no output entry (it was written before prediction drift "
        "existed): retrain or re-package the model to score its predictions."
    )
    assert world.condition("PredictionDrift")["message"] == message  # type: ignore[index]
    assert [e for e in events(world) if e[2] == "NoOutputProfile"] == [
        ("DriftPolicy", "Warning", "NoOutputProfile", message)
    ]


def test_prediction_drift_events_and_scores(world: World) -> None:
    pods = DocumentPods(world, SIGNAL_PROFILE)
    world.policy(predictionDrift={"metrics": [{"type": "psi", "threshold": 0.2}, {"type": "chi2"}]})
    status = signal_window(world, pods, predictions=[500, 500, 0, 0])
    assert status["predictionDrift"]["breachedMetrics"] == []
    assert [e for e in events(world) if e[2] == "NoPredictionDrift"] == [
        (
            "DriftPolicy",
            "Normal",
            "NoPredictionDrift",
            "The predictions did not drift in 1000 predictions.",
        )
    ]
    pods.predictions = [1450, 550, 0, 0]  # 950 / 50 in this window
    world.pods.serve(CALM)
    world.clock.advance(INTERVAL)
    status = world.tick()
    drift = status["predictionDrift"]
    assert drift["breachedMetrics"] == ["psi", "chi2"]
    assert [e for e in events(world) if e[2] == "PredictionDriftFound"] == [
        (
            "DriftPolicy",
            "Warning",
            "PredictionDriftFound",
            "The predictions drifted (psi, chi2) in 1000 predictions.",
        )
    ]
    score = world.ctx.metrics.registry.get_sample_value(
        "modelops_prediction_drift_score",
        {"namespace": NS, "policy": POLICY, "model": MODEL, "metric": "psi"},
    )
    assert score is not None
    assert drift["scores"]["psi"] == round(score, 6)
    assert round(score, 6) != round(score, 7)  # the score has more than 6 decimals to cut


def test_the_holdout_baseline_is_read_from_the_pods_once_per_model(world: World) -> None:
    pods = DocumentPods(world, SIGNAL_PROFILE)
    pods.metadata = {"name": MODEL, "versions": ["v1"], "parameters": {"holdout_accuracy": 0.9}}
    world.policy(performance={"metric": "accuracy", "minSamples": 100, "maxDrop": 0.1})
    right = confusion(["a", "b"], [[450, 50], [50, 450]])
    status = signal_window(world, pods, feedback=right)
    assert status["performance"] == {
        "metric": "accuracy",
        "value": 0.9,
        "baseline": 0.9,
        "samples": 1000,
    }
    pods.feedback = confusion(["a", "b"], [[900, 100], [100, 900]])
    world.pods.serve(CALM)
    world.clock.advance(INTERVAL)
    world.tick()
    assert pods.asked.count(f"/v2/models/{MODEL}") == 1  # the model directory is immutable


def test_the_metadata_of_another_version_is_no_baseline(world: World) -> None:
    pods = DocumentPods(world, SIGNAL_PROFILE)
    pods.metadata = {"name": MODEL, "versions": ["v0"], "parameters": {"holdout_accuracy": 0.9}}
    world.policy(performance={"metric": "accuracy", "minSamples": 100, "maxDrop": 0.1})
    status = signal_window(world, pods, feedback=confusion(["a", "b"], [[450, 50], [50, 450]]))
    # pvc:// is not mounted in the operator either: no baseline, maxDrop cannot apply
    assert status["performance"] == {"metric": "accuracy", "value": 0.9, "samples": 1000}


def test_the_profile_is_fetched_again_for_a_new_model_uri(world: World) -> None:
    pods = DocumentPods(world, PROFILE)
    started(world)
    world.calm()
    world.kube.apply(MODEL_DEPLOYMENTS, NS, MODEL, {"spec": {"model": {"uri": "pvc://m/v1b"}}})
    world.calm()
    assert pods.asked.count(f"/v2/models/{MODEL}/profile") == 2


def test_the_profile_is_read_from_the_model_directory_when_pods_have_none(
    world: World, tmp_path: Any
) -> None:
    (tmp_path / "profile.json").write_text(PROFILE.to_json())
    world.kube.apply(
        MODEL_DEPLOYMENTS, NS, MODEL, {"spec": {"model": {"uri": f"file://{tmp_path}"}}}
    )
    answer = world.pods.answer

    def no_profile(address: str, path: str) -> bytes:
        if path.endswith("/profile"):
            raise SourceError(f"GET http://{address}:8080{path} answered HTTP 404", status=404)
        return answer(address, path)

    world.pods.answer = no_profile  # type: ignore[method-assign]
    started(world)
    status = world.drift()
    assert status["samples"] == 1000
    assert world.condition_state("DriftDetected") == ("True", "DriftFound")


def unversioned(world: World) -> None:
    """The ModelDeployment names no version, and none is in its status."""
    world.kube.apply(MODEL_DEPLOYMENTS, NS, MODEL, {"spec": {"model": {"version": None}}})
    world.kube.update_status(MODEL_DEPLOYMENTS, NS, MODEL, {"modelVersion": None})


def test_without_a_version_in_spec_the_status_version_is_judged(world: World) -> None:
    world.kube.apply(MODEL_DEPLOYMENTS, NS, MODEL, {"spec": {"model": {"version": None}}})
    [first] = world.pods.pods.values()
    other = world.pods.start()
    other.version = "v2"  # a pod of another version (a rollout under way)
    started(world, trigger={"consecutiveEvaluations": 1})
    world.pods.serve(DRIFT, pod=first.name)
    world.pods.serve(CALM, pod=other.name)
    world.clock.advance(INTERVAL)
    status = world.tick()
    assert status["samples"] == 1000  # the v1 pod's rows only
    assert world.condition_state("DriftDetected") == ("True", "DriftFound")
    assert world.jobs() == [job_for("v1-r1")]


def test_prometheus_series_without_a_version_are_judged_and_retrained_as_v0(
    world: World,
) -> None:
    unversioned(world)
    world.policy(
        source={"type": "prometheus", "url": PROMETHEUS}, trigger={"consecutiveEvaluations": 1}
    )
    world.prometheus.answers = [{("", "0"): 900.0, ("", "1"): 100.0}]
    status = world.tick()
    assert status["samples"] == 1000
    assert world.jobs() == [job_for("v0-r1")]


def test_prometheus_without_series_of_the_version_has_no_rows(world: World) -> None:
    world.policy(source={"type": "prometheus", "url": PROMETHEUS})
    world.prometheus.answers = [{("v0", "0"): 900.0, ("v0", "1"): 100.0}]
    status = world.tick()
    assert status["samples"] == 0
    assert world.condition_state("DriftDetected") == ("Unknown", "InsufficientSamples")


def test_a_new_served_version_starts_a_new_baseline(world: World) -> None:
    started(world)
    evaluated = world.calm()["lastEvaluationTime"]
    world.kube.apply(MODEL_DEPLOYMENTS, NS, MODEL, {"spec": {"model": {"version": "v2"}}})
    for pod in world.pods.pods.values():
        pod.version = "v2"
    world.take_events()
    status = world.calm()
    assert status["lastEvaluationTime"] == evaluated
    message = (
        "Scraped 1 serving pod(s) through the counts endpoint; recorded the baseline counters."
    )
    assert world.condition("SourceReady")["message"] == message  # type: ignore[index]


def test_a_source_reachable_again_is_a_normal_event(world: World) -> None:
    started(world)
    answer = world.pods.answer

    def refuse(address: str, path: str) -> bytes:
        raise SourceError(f"GET http://{address}:8080{path} failed: connection refused")

    world.pods.answer = refuse  # type: ignore[method-assign]
    world.calm()
    world.take_events()
    world.pods.answer = answer  # type: ignore[method-assign]
    world.calm()
    message = "Read 1 serving pod(s) through the counts endpoint."
    assert ("DriftPolicy", "Normal", "SourceReachable", message) in events(world)


# ------------------------------------------------------------------------------ the schedule


def scheduled(world: World, schedule: str = "*/5 * * * *") -> None:
    world.policy(retraining={"schedule": schedule, "cooldown": "1h"})


def test_a_scheduled_job_is_named_after_the_status_version(world: World) -> None:
    world.kube.apply(MODEL_DEPLOYMENTS, NS, MODEL, {"spec": {"model": {"version": None}}})
    scheduled(world)
    world.tick()
    world.clock.advance(300)
    world.tick()
    assert world.jobs() == [job_for("v1-r1")]


def test_a_scheduled_job_of_an_unversioned_model_trains_v0(world: World) -> None:
    unversioned(world)
    scheduled(world)
    world.tick()
    world.clock.advance(300)
    world.tick()
    assert world.jobs() == [job_for("v0-r1")]


def test_a_scheduled_time_waits_for_an_invalid_model_deployment(world: World) -> None:
    scheduled(world)
    world.tick()
    world.kube.apply(MODEL_DEPLOYMENTS, NS, MODEL, {"spec": {"replicas": -3}})
    world.take_events()
    world.clock.advance(300)
    status = world.tick()
    assert world.jobs() == []
    assert "lastScheduledTime" not in status
    assert status["nextScheduledTime"] == "2030-01-01T00:05:00Z"
    message = f"Scheduled retraining waits: ModelDeployment {MODEL} is missing or invalid."
    assert [e for e in events(world) if e[2] == "ModelNotFound"][:1] == [
        ("DriftPolicy", "Warning", "ModelNotFound", message)
    ]


def test_times_since_the_creation_run_when_the_first_tick_is_late(world: World) -> None:
    scheduled(world)  # created at 00:00:00
    world.clock.advance(420)  # the operator was down until 00:07
    status = world.tick()
    assert status["lastScheduledTime"] == "2030-01-01T00:05:00Z"
    assert world.jobs() == [job_for("v1-r1")]


def test_a_changed_schedule_counts_from_the_last_time_handled(world: World) -> None:
    scheduled(world)
    world.tick()
    world.clock.advance(300)
    world.tick()  # 00:05 runs; the next time 00:10 is written down
    assert world.jobs() == [job_for("v1-r1")]
    schedule = {"spec": {"retraining": {"schedule": "*/2 * * * *"}}}
    world.kube.apply(DRIFT_POLICIES, NS, POLICY, schedule)
    world.clock.advance(120)  # 00:07: 00:06 of the new schedule is due (the Job still runs)
    world.take_events()
    status = world.tick()
    assert status["lastScheduledTime"] == "2030-01-01T00:06:00Z"
    assert [e[2] for e in events(world)] == ["ScheduleSkipped"]


# ------------------------------------------------------------- the trigger's gates, adoption


def test_a_job_of_the_next_candidate_is_not_adopted_before_the_streak_is_complete(
    world: World,
) -> None:
    started(world)  # consecutiveEvaluations: 2
    world.kube.put(JOBS, our_job(world, "v1-r1"))
    status = world.drift()
    assert status["consecutiveBreaches"] == 1
    assert "lastRetraining" not in status
    assert world.condition("Retraining") is None


def test_an_adopted_job_keeps_the_signal_that_started_it(world: World) -> None:
    pods = DocumentPods(world, SIGNAL_PROFILE)
    world.policy(
        predictionDrift={"metrics": [{"type": "psi", "threshold": 0.2}]},
        trigger={"consecutiveEvaluations": 1, "signals": ["PredictionDrift"]},
    )
    world.kube.put(JOBS, our_job(world, "v1-r1"))
    status = signal_window(world, pods, predictions=[950, 50, 0, 0])
    assert world.kube.created(JOBS) == []
    assert retraining(status)["reason"] == "PredictionDrift"


def test_a_job_met_by_a_409_keeps_the_schedule_as_its_reason(world: World) -> None:
    world.policy(retraining={"schedule": "*/5 * * * *"})
    world.tick()

    def another_replica_was_faster(kind: Any, namespace: str, body: Any) -> None:
        if kind == JOBS and not world.kube.objects(JOBS, NS):
            world.kube.put(JOBS, our_job(world, "v1-r1"))

    world.kube.on_create.append(another_replica_was_faster)
    world.clock.advance(300)
    status = world.tick()
    assert world.kube.created(JOBS) == [job_for("v1-r1")]
    assert retraining(status)["reason"] == "Scheduled"
    assert world.jobs_counted("started") == 0


def env_of(job: dict[str, Any]) -> dict[str, Any]:
    [container] = job["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_the_job_tells_the_trainer_which_signal_started_it(world: World) -> None:
    pods = DocumentPods(world, SIGNAL_PROFILE)
    world.policy(
        predictionDrift={"metrics": [{"type": "psi", "threshold": 0.2}]},
        trigger={"consecutiveEvaluations": 1, "signals": ["PredictionDrift"]},
    )
    signal_window(world, pods, predictions=[950, 50, 0, 0])
    job = world.kube.get(JOBS, NS, job_for("v1-r1"))
    assert job is not None
    assert env_of(job)["MODELOPS_RETRAINING_REASON"] == "PredictionDrift"


def test_input_drift_is_told_to_the_trainer_as_drift_detected(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    job = world.kube.get(JOBS, NS, job_for("v1-r1"))
    assert job is not None
    assert env_of(job)["MODELOPS_RETRAINING_REASON"] == "DriftDetected"


def test_the_job_takes_the_model_deployments_object_storage(world: World) -> None:
    storage = {"endpoint": "http://minio.storage:9000", "region": "eu-west-1"}
    world.kube.apply(MODEL_DEPLOYMENTS, NS, MODEL, {"spec": {"storage": storage}})
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    job = world.kube.get(JOBS, NS, job_for("v1-r1"))
    assert job is not None
    env = env_of(job)
    assert env["AWS_ENDPOINT_URL"] == "http://minio.storage:9000"
    assert env["AWS_REGION"] == "eu-west-1"


def test_the_policys_object_storage_comes_before_the_model_deployments(world: World) -> None:
    world.kube.apply(MODEL_DEPLOYMENTS, NS, MODEL, {"spec": {"storage": {"region": "us-east-2"}}})
    started(world, trigger={"consecutiveEvaluations": 1}, storage={"region": "eu-west-1"})
    world.drift()
    job = world.kube.get(JOBS, NS, job_for("v1-r1"))
    assert job is not None
    assert env_of(job)["AWS_REGION"] == "eu-west-1"


# ------------------------------------------------------------------ the interval, signals


def test_a_restarted_operator_does_not_query_prometheus_before_the_interval(
    world: World,
) -> None:
    world.policy(source={"type": "prometheus", "url": PROMETHEUS})
    world.prometheus.answers = [{("v1", "0"): 500.0, ("v1", "1"): 500.0}]
    world.tick()
    assert len(world.prometheus.queries) == 1
    world.ctx = type(world.ctx)(
        kube=world.kube, settings=world.ctx.settings, metrics=world.ctx.metrics
    )  # a new process: empty memory, the evaluation time in status
    world.clock.advance(INTERVAL / 2)
    world.tick()
    assert len(world.prometheus.queries) == 1


def test_taking_out_one_signal_leaves_the_other(world: World) -> None:
    pods = DocumentPods(world, SIGNAL_PROFILE)
    world.policy(
        predictionDrift={"metrics": [{"type": "psi", "threshold": 0.2}]},
        performance={"metric": "accuracy", "minSamples": 100, "min": 0.5},
    )
    status = signal_window(
        world,
        pods,
        predictions=[500, 500, 0, 0],
        feedback=confusion(["a", "b"], [[450, 50], [50, 450]]),
    )
    assert "predictionDrift" in status
    assert "performance" in status
    world.kube.apply(DRIFT_POLICIES, NS, POLICY, {"spec": {"predictionDrift": None}})
    pods.feedback = confusion(["a", "b"], [[900, 100], [100, 900]])
    world.pods.serve(CALM)
    world.clock.advance(INTERVAL)
    status = world.tick()
    assert "predictionDrift" not in status
    assert status["performance"]["value"] == 0.9
    assert world.condition("PredictionDrift") is None
    assert world.condition_state("PerformanceDegraded") == ("False", "MetricHealthy")
    world.kube.apply(
        DRIFT_POLICIES,
        NS,
        POLICY,
        {"spec": {"performance": None, "predictionDrift": {"metrics": [{"type": "psi"}]}}},
    )
    pods.predictions = [1000, 1000, 0, 0]
    world.pods.serve(CALM)
    world.clock.advance(INTERVAL)
    status = world.tick()
    assert "performance" not in status
    assert world.condition("PerformanceDegraded") is None
    assert world.condition_state("PredictionDrift") == ("False", "NoPredictionDrift")


def test_a_forgotten_policy_has_no_evaluation_time_in_memory(world: World) -> None:
    started(world)
    world.calm()
    body = world.kube.get(DRIFT_POLICIES, NS, POLICY)
    assert body is not None
    key = f"{NS}/{POLICY}/{POLICY_UID}"
    assert world.ctx.memory.evaluated(key) == world.clock.now
    driftpolicy.forget(world.ctx, body)
    assert world.ctx.memory.evaluated(key) is None


def test_the_status_patch_replaces_a_value_by_an_object_and_back() -> None:
    assert driftpolicy.status_patch({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert driftpolicy.status_patch({"a": {"b": 2}}, {"a": 1}) == {"a": 1}


def test_prometheus_feeds_a_regression_metric_its_error_sums(world: World) -> None:
    from test_controller_signals_decisions import SignalPrometheus

    prometheus = SignalPrometheus()
    world.prometheus = prometheus  # type: ignore[assignment]
    world.policy(
        source={"type": "prometheus", "url": PROMETHEUS},
        performance={"metric": "mae", "minSamples": 4, "max": 2.0},
    )
    prometheus.vectors = {
        "modelops_feature_bin_total": [
            ({"feature": "x", "bin": "0"}, 500.0),
            ({"feature": "x", "bin": "1"}, 500.0),
        ],
        "modelops_feedback_rows_total": [({}, 4.0)],
        "modelops_feedback_abs_error_total": [({}, 6.0)],
        "modelops_feedback_squared_error_total": [({}, 10.0)],
        "modelops_feedback_target_total": [({}, 8.0)],
        "modelops_feedback_target_squared_total": [({}, 20.0)],
    }
    status = world.tick()
    # MAE 6 / 4 rows
    assert status["performance"] == {"metric": "mae", "value": 1.5, "samples": 4}
    assert world.condition_state("PerformanceDegraded") == ("False", "MetricHealthy")


# ------------------------------------------------------------------ the fairness gate's counter

GATE = {"sensitiveColumns": ["sex"], "metric": "demographic_parity_difference", "max": 0.1}


def blocked_count(world: World) -> float:
    return world.counter(
        "modelops_promotions_blocked_total",
        namespace=NS,
        model=MODEL,
        reason="FairnessGateFailed",
    )


def test_each_blocked_candidate_is_counted(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1}, promotion={"fairness": GATE})
    for candidate in ("v1-r1", "v1-r2"):
        world.drift()
        world.finish_job(job_for(candidate), accuracy=0.99)  # no fairness block: blocked
        world.clock.advance(1)
        status = world.tick()
        assert retraining(status)["candidateVersion"] == candidate
        assert retraining(status)["result"] == "Rejected"
    assert blocked_count(world) == 2


def test_a_recreated_policy_blocking_the_same_candidate_is_counted_again(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1}, promotion={"fairness": GATE})
    world.drift()
    world.finish_job(job_for("v1-r1"), accuracy=0.99)
    world.clock.advance(1)
    world.tick()
    assert blocked_count(world) == 1
    body = world.kube.get(DRIFT_POLICIES, NS, POLICY)
    assert body is not None
    driftpolicy.forget(world.ctx, body)
    world.kube.delete(DRIFT_POLICIES, NS, POLICY)
    world.policy(trigger={"consecutiveEvaluations": 1}, promotion={"fairness": GATE})
    body = world.kube.get(DRIFT_POLICIES, NS, POLICY)
    assert body is not None
    body["metadata"]["uid"] = "another-uid"
    world.kube.put(DRIFT_POLICIES, body)
    world.tick()  # a new baseline
    world.drift()
    name = job_name(POLICY, "another-uid", "v1-r1")
    world.finish_job(name, accuracy=0.99)
    world.clock.advance(1)
    status = world.tick()
    assert (retraining(status)["job"], retraining(status)["result"]) == (name, "Rejected")
    assert blocked_count(world) == 2


def test_a_label_holding_the_separator_still_counts_its_rows(world: World) -> None:
    pods = DocumentPods(world, PROFILE)  # no output entry: the classes come from the feedback
    world.policy(performance={"metric": "accuracy", "minSamples": 100, "min": 0.5})
    feedback = confusion(["a\x1fb", "c"], [[300, 100], [0, 100]])
    status = signal_window(world, pods, feedback=feedback)
    assert status["performance"]["samples"] == 500


def test_the_job_of_the_status_versions_next_candidate_is_adopted(world: World) -> None:
    world.kube.apply(MODEL_DEPLOYMENTS, NS, MODEL, {"spec": {"model": {"version": None}}})
    started(world, trigger={"consecutiveEvaluations": 1})
    world.kube.put(JOBS, our_job(world, "v1-r1"))
    status = world.drift()
    assert world.kube.created(JOBS) == []
    assert retraining(status)["job"] == job_for("v1-r1")


def test_the_job_of_an_unversioned_models_candidate_is_adopted(world: World) -> None:
    unversioned(world)
    world.policy(
        source={"type": "prometheus", "url": PROMETHEUS}, trigger={"consecutiveEvaluations": 1}
    )
    world.kube.put(JOBS, our_job(world, "v0-r1"))
    world.prometheus.answers = [{("", "0"): 900.0, ("", "1"): 100.0}]
    status = world.tick()
    assert world.kube.created(JOBS) == []
    assert retraining(status)["job"] == job_for("v0-r1")
