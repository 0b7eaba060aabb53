"""The DriftPolicy tick beyond input drift (#14): the schedule, prediction drift and the live
metric from feedback, each decision pinned as a user sees it (status, conditions, Jobs, Events,
gauges).

Same harness as ``test_controller_driftpolicy_decisions``: the real tick against the in-memory
Kubernetes fake, serving pods faked at ``sources.http_get`` (their counts documents now carry the
``predictions`` and ``feedback`` keys of the contract, or the same counters as ``/metrics`` text),
a controllable clock. The served model is a binary classifier of classes ``a`` and ``b`` whose
reference predictions are 50 / 50; its holdout accuracy in metadata.json is 0.9.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_controller_driftpolicy_decisions import (
    CALM,
    INTERVAL,
    MODEL,
    NS,
    POLICY,
    PROFILE,
    PROMETHEUS,
    START,
    World,
    job_for,
)

from modelops.artifacts import ModelMetadata
from modelops.controller import driftpolicy
from modelops.controller.context import Context
from modelops.controller.kube import JOBS, MODEL_DEPLOYMENTS
from modelops.controller.metrics import OperatorMetrics
from modelops.controller.settings import OperatorSettings
from modelops.controller.sources import SourceError
from modelops.drift.profile import FeatureProfile, Profile

CLASSES = ("a", "b")
OUTPUT_PROFILE = Profile(
    features=PROFILE.features,
    rows=PROFILE.rows,
    output=FeatureProfile(
        name="label",
        kind="categorical",
        proportions=(0.5, 0.5, 0.0, 0.0),
        categories=CLASSES,
    ),
)
BALANCED = (500, 500, 0, 0)
SKEWED = (950, 50, 0, 0)
RIGHT = ((450, 50), (50, 450))  # accuracy 0.9, as the holdout
FLIPPED = ((50, 450), (450, 50))  # accuracy 0.1: the labels flipped (concept drift)


class SignalPods:
    """Serving pods whose counts documents (or /metrics text) hold predictions and feedback."""

    def __init__(self, world: World, profile: Profile) -> None:
        self.world = world
        self.profile = profile
        self.predictions = [0, 0, 0, 0]
        self.confusion = [[0, 0], [0, 0]]
        self.counts_endpoint = True
        self._inner = world.pods.answer
        world.pods.answer = self.answer  # type: ignore[method-assign]

    def serve(self, bins: tuple[int, ...], predictions: tuple[int, ...]) -> None:
        self.world.pods.serve(bins)
        self.predictions = [a + b for a, b in zip(self.predictions, predictions, strict=True)]

    def feedback(self, confusion: tuple[tuple[int, int], tuple[int, int]]) -> None:
        for i in range(2):
            for j in range(2):
                self.confusion[i][j] += confusion[i][j]

    def answer(self, address: str, path: str) -> bytes:
        [pod] = self.world.pods.pods.values()
        if path == f"/v2/models/{MODEL}/profile":
            return self.profile.to_json().encode()
        if path == f"/v2/models/{MODEL}/counts":
            if not self.counts_endpoint:
                raise SourceError("answered HTTP 404", status=404)
            counts = [int(v) for v in pod.counters]
            rows = sum(sum(r) for r in self.confusion)
            document = {
                "model": MODEL,
                "version": pod.version,
                "start": pod.start,
                "rows": sum(counts),
                "features": [{"name": "x", "counts": counts}],
                "predictions": self.predictions,
                "feedback": {"rows": rows, "classes": list(CLASSES), "confusion": self.confusion},
            }
            return json.dumps(document).encode()
        if path == "/metrics":
            text = self._inner(address, path).decode()
            labels = (*CLASSES, "unseen", "missing")
            lines = [
                f"# TYPE modelops_{name}_total counter"
                for name in ("prediction_bin", "feedback_rows", "feedback_confusion")
            ]
            lines += [
                f'modelops_prediction_bin_total{{model="{MODEL}",version="v1",bin="{label}"}} '
                f"{value}"
                for label, value in zip(labels, self.predictions, strict=True)
            ]
            lines.append(
                f'modelops_feedback_rows_total{{model="{MODEL}",version="v1"}} '
                f"{sum(sum(r) for r in self.confusion)}"
            )
            lines += [
                f'modelops_feedback_confusion_total{{model="{MODEL}",version="v1",'
                f'actual="{actual}",predicted="{predicted}"}} {self.confusion[i][j]}'
                for i, actual in enumerate(CLASSES)
                for j, predicted in enumerate(CLASSES)
            ]
            return (text + "\n".join(lines) + "\n").encode()
        return self._inner(address, path)


def model_dir(tmp_path: Path, metrics: dict[str, float]) -> str:
    """A model directory the operator can read (file://) with the holdout metrics given."""
    folder = tmp_path / "iris" / "v1"
    folder.mkdir(parents=True)
    metadata = ModelMetadata(
        version="v1",
        created=datetime(2030, 1, 1, tzinfo=UTC),
        estimator="LogisticRegression",
        features=["x"],
        target="label",
        task="classification",
        classes=list(CLASSES),
        metrics=metrics,
    )
    (folder / "metadata.json").write_text(metadata.model_dump_json())
    return f"file://{folder}"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    made = World(monkeypatch)
    made.model_deployment()
    made.pods.start()
    return made


def serve_model_at(world: World, uri: str) -> None:
    world.kube.apply(MODEL_DEPLOYMENTS, NS, MODEL, {"spec": {"model": {"uri": uri}}})


def window(world: World, pods: SignalPods, predictions: tuple[int, ...], feedback: Any) -> Any:
    pods.serve(CALM, predictions)
    pods.feedback(feedback)
    world.clock.advance(INTERVAL)
    return world.tick()


def gauge(world: World, name: str, metric: str) -> float | None:
    return world.ctx.metrics.registry.get_sample_value(
        name, {"namespace": NS, "policy": POLICY, "model": MODEL, "metric": metric}
    )


def flag(world: World, name: str) -> float | None:
    return world.ctx.metrics.registry.get_sample_value(name, {"namespace": NS, "policy": POLICY})


def test_deleting_the_policy_drops_its_new_gauges(world: World) -> None:
    pods = SignalPods(world, OUTPUT_PROFILE)
    world.policy(
        performance={"metric": "accuracy", "minSamples": 100, "min": 0.5}, predictionDrift={}
    )
    world.tick()
    window(world, pods, BALANCED, RIGHT)
    assert flag(world, "modelops_performance_degraded") == 0
    assert flag(world, "modelops_prediction_drift_detected") == 0
    body = world.kube.get(driftpolicy.DRIFT_POLICIES, NS, POLICY)
    driftpolicy.forget(world.ctx, body or {})
    text = world.ctx.metrics.registry.collect()
    names = {s.name for family in text for s in family.samples}
    assert not names & {
        "modelops_performance_value",
        "modelops_performance_baseline",
        "modelops_performance_degraded",
        "modelops_prediction_drift_score",
        "modelops_prediction_drift_detected",
    }


# ------------------------------------------------------------------------------ performance


def test_concept_drift_starts_one_retraining_with_reason_performance_degraded(
    world: World, tmp_path: Path
) -> None:
    serve_model_at(world, model_dir(tmp_path, {"accuracy": 0.9, "f1": 0.9}))
    pods = SignalPods(world, OUTPUT_PROFILE)
    world.policy(
        performance={"metric": "accuracy", "minSamples": 500, "maxDrop": 0.1},
        trigger={"consecutiveEvaluations": 2, "signals": ["InputDrift", "Performance"]},
    )
    world.tick()  # the baseline of the counters
    world.take_events()

    status = window(world, pods, BALANCED, RIGHT)
    assert status["performance"] == {
        "metric": "accuracy",
        "value": 0.9,
        "baseline": 0.9,
        "samples": 1000,
    }
    assert world.condition_state("PerformanceDegraded") == ("False", "MetricHealthy")
    assert world.condition_state("DriftDetected") == ("False", "NoDrift")
    assert status["consecutiveBreaches"] == 0
    assert gauge(world, "modelops_performance_value", "accuracy") == pytest.approx(0.9)
    assert gauge(world, "modelops_performance_baseline", "accuracy") == 0.9
    assert flag(world, "modelops_performance_degraded") == 0
    world.take_events()

    status = window(world, pods, BALANCED, FLIPPED)  # inputs calm, labels flipped
    assert status["performance"]["value"] == 0.1
    assert status["consecutiveBreaches"] == 1
    assert world.condition_state("DriftDetected") == ("False", "NoDrift")
    degraded = world.condition("PerformanceDegraded")
    assert degraded is not None
    assert (degraded["status"], degraded["reason"]) == ("True", "MetricDegraded")
    assert "accuracy 0.1 is 0.8 worse than the holdout 0.9 (maxDrop 0.1)" in degraded["message"]
    assert [(e.type, e.reason) for e in world.take_events()] == [("Warning", "MetricDegraded")]
    assert world.jobs() == []
    assert flag(world, "modelops_performance_degraded") == 1

    status = window(world, pods, BALANCED, FLIPPED)
    assert world.jobs() == [job_for("v1-r1")]
    assert status["lastRetraining"]["reason"] == "PerformanceDegraded"
    job = world.kube.get(JOBS, NS, job_for("v1-r1"))
    assert job is not None
    assert job["metadata"]["annotations"]["modelops.dev/retraining-reason"] == (
        "PerformanceDegraded"
    )
    assert world.reasons().count("RetrainingStarted") == 1

    window(world, pods, BALANCED, FLIPPED)  # the Job runs: maxConcurrent 1 holds the next one
    assert world.jobs() == [job_for("v1-r1")]


def test_performance_is_reported_but_does_not_retrain_unless_listed(world: World) -> None:
    pods = SignalPods(world, OUTPUT_PROFILE)
    world.policy(performance={"metric": "accuracy", "minSamples": 100, "min": 0.8})
    world.tick()
    for _ in range(3):
        status = window(world, pods, BALANCED, FLIPPED)
    assert world.condition_state("PerformanceDegraded") == ("True", "MetricDegraded")
    # pvc:// is not mounted in the operator: no holdout, so only min applies
    assert status["performance"] == {"metric": "accuracy", "value": 0.1, "samples": 1000}
    assert "below min 0.8" in (world.condition("PerformanceDegraded") or {})["message"]
    assert status["consecutiveBreaches"] == 0
    assert world.jobs() == []


def test_too_little_feedback_judges_nothing_and_keeps_the_streak(world: World) -> None:
    pods = SignalPods(world, OUTPUT_PROFILE)
    world.policy(
        performance={"metric": "accuracy", "minSamples": 500, "min": 0.8},
        trigger={"consecutiveEvaluations": 2, "signals": ["Performance"]},
    )
    world.tick()
    assert window(world, pods, BALANCED, FLIPPED)["consecutiveBreaches"] == 1
    status = window(world, pods, BALANCED, ((10, 10), (10, 10)))
    assert status["performance"]["samples"] == 40
    assert "value" not in status["performance"]
    assert world.condition_state("PerformanceDegraded") == ("Unknown", "InsufficientSamples")
    assert status["consecutiveBreaches"] == 1  # neither a breach nor a calm evaluation
    window(world, pods, BALANCED, FLIPPED)
    assert world.jobs() == [job_for("v1-r1")]


def test_a_regression_metric_on_a_classifier_is_named(world: World) -> None:
    pods = SignalPods(world, OUTPUT_PROFILE)
    world.policy(performance={"metric": "mae", "max": 1.0})
    world.tick()
    status = window(world, pods, BALANCED, RIGHT)
    assert status["performance"] == {"metric": "mae", "samples": 1000}
    condition = world.condition("PerformanceDegraded")
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("Unknown", "MetricNotApplicable")
    assert condition["message"].startswith("mae is a regression metric, but the model is a")


def test_feedback_read_from_metrics_text_gives_the_same_metric(world: World) -> None:
    pods = SignalPods(world, OUTPUT_PROFILE)
    pods.counts_endpoint = False
    world.policy(performance={"metric": "balanced_accuracy", "minSamples": 100, "min": 0.5})
    world.tick()
    status = window(world, pods, BALANCED, ((400, 100), (300, 200)))
    # recall of a 0.8, of b 0.4
    assert status["performance"]["value"] == pytest.approx(0.6)
    assert world.condition_state("PerformanceDegraded") == ("False", "MetricHealthy")


# ------------------------------------------------------------------------- prediction drift


def test_prediction_drift_starts_one_retraining_with_its_reason(world: World) -> None:
    pods = SignalPods(world, OUTPUT_PROFILE)
    world.policy(
        predictionDrift={"metrics": [{"type": "psi", "threshold": 0.2}, {"type": "chi2"}]},
        trigger={"consecutiveEvaluations": 2, "signals": ["PredictionDrift"]},
    )
    world.tick()
    world.take_events()
    status = window(world, pods, BALANCED, RIGHT)
    assert status["predictionDrift"]["samples"] == 1000
    assert status["predictionDrift"]["breachedMetrics"] == []
    assert world.condition_state("PredictionDrift") == ("False", "NoPredictionDrift")
    assert status["consecutiveBreaches"] == 0

    status = window(world, pods, SKEWED, RIGHT)
    drift = status["predictionDrift"]
    assert drift["breachedMetrics"] == ["psi", "chi2"]
    assert drift["scores"]["psi"] > 0.2
    assert set(drift["scores"]) == {"psi", "chi2"}  # ks and wasserstein do not apply to classes
    assert world.condition_state("PredictionDrift") == ("True", "PredictionDriftFound")
    assert world.condition_state("DriftDetected") == ("False", "NoDrift")
    assert flag(world, "modelops_prediction_drift_detected") == 1
    score = gauge(world, "modelops_prediction_drift_score", "psi")
    assert score == pytest.approx(drift["scores"]["psi"], abs=1e-6)

    status = window(world, pods, SKEWED, RIGHT)
    assert world.jobs() == [job_for("v1-r1")]
    assert status["lastRetraining"]["reason"] == "PredictionDrift"


def test_a_profile_without_output_cannot_score_predictions(world: World) -> None:
    pods = SignalPods(world, PROFILE)
    world.policy(predictionDrift={})
    world.tick()
    status = window(world, pods, SKEWED, RIGHT)
    assert "predictionDrift" not in status
    assert world.condition_state("PredictionDrift") == ("Unknown", "NoOutputProfile")
    assert world.condition_state("DriftDetected") == ("False", "NoDrift")


def test_the_cause_of_a_retraining_prefers_performance_over_input_drift(world: World) -> None:
    pods = SignalPods(world, OUTPUT_PROFILE)
    world.policy(
        performance={"metric": "accuracy", "minSamples": 100, "min": 0.8},
        trigger={"consecutiveEvaluations": 1, "signals": ["InputDrift", "Performance"]},
    )
    world.tick()
    pods.serve((900, 100, 0), BALANCED)
    pods.feedback(FLIPPED)
    world.clock.advance(INTERVAL)
    status = world.tick()
    assert world.condition_state("DriftDetected") == ("True", "DriftFound")
    assert status["lastRetraining"]["reason"] == "PerformanceDegraded"
    assert len(world.jobs()) == 1


# ------------------------------------------------------------------------------- the schedule


def scheduled_policy(world: World, schedule: str = "*/5 * * * *", **retraining: Any) -> None:
    world.policy(
        retraining={"schedule": schedule, "cooldown": "1h", **retraining},
        source={"type": "pods"},
    )


def test_the_schedule_alone_starts_one_job_per_time(world: World) -> None:
    scheduled_policy(world)
    status = world.tick()  # 00:00:00 is the creation time: not a time of the schedule to run
    assert status["nextScheduledTime"] == "2030-01-01T00:05:00Z"
    assert "lastScheduledTime" not in status
    assert world.jobs() == []

    world.clock.advance(299)
    assert world.tick()["nextScheduledTime"] == "2030-01-01T00:05:00Z"
    assert world.jobs() == []
    world.take_events()

    world.clock.advance(1)  # 00:05:00
    status = world.tick()
    assert world.jobs() == [job_for("v1-r1")]
    assert status["lastScheduledTime"] == "2030-01-01T00:05:00Z"
    assert status["nextScheduledTime"] == "2030-01-01T00:10:00Z"
    assert status["lastRetraining"]["reason"] == "Scheduled"
    job = world.kube.get(JOBS, NS, job_for("v1-r1"))
    assert job is not None
    assert job["metadata"]["annotations"]["modelops.dev/retraining-reason"] == "Scheduled"
    [event] = [e for e in world.take_events() if e.reason == "RetrainingStarted"]
    assert "Scheduled retraining for 2030-01-01T00:05:00Z." in event.message

    world.clock.advance(5)
    world.tick()
    assert world.jobs() == [job_for("v1-r1")]  # the same time never runs twice

    world.clock.advance(300)  # 00:10:05, the Job still runs: the time is skipped
    status = world.tick()
    assert world.jobs() == [job_for("v1-r1")]
    assert status["lastScheduledTime"] == "2030-01-01T00:10:00Z"
    assert ("Normal", "ScheduleSkipped") in [(e.type, e.reason) for e in world.take_events()]

    world.finish_job(job_for("v1-r1"), accuracy=0.8)  # rejected: worse than 0.9
    world.clock.advance(295)  # 00:15:00; the cooldown of 1h does not hold the schedule back
    world.tick()
    assert world.jobs() == [job_for("v1-r1"), job_for("v1-r2")]


def test_a_restarted_operator_runs_missed_times_once(world: World) -> None:
    scheduled_policy(world)
    world.tick()
    world.clock.advance(300)
    world.tick()
    assert world.jobs() == [job_for("v1-r1")]
    world.finish_job(job_for("v1-r1"), accuracy=0.8)
    world.tick()

    # The operator is down from 00:05 to 00:22: 00:10, 00:15 and 00:20 pass unseen.
    world.clock.advance(17 * 60)
    world.ctx = Context(kube=world.kube, settings=OperatorSettings(), metrics=OperatorMetrics())
    world.take_events()
    status = world.tick()
    assert world.jobs() == [job_for("v1-r1"), job_for("v1-r2")]
    assert status["lastScheduledTime"] == "2030-01-01T00:20:00Z"
    [event] = [e for e in world.take_events() if e.reason == "RetrainingStarted"]
    assert "(2 earlier time(s) missed while the operator was down)" in event.message
    world.clock.advance(5)
    world.tick()
    assert len(world.jobs()) == 2


def test_a_restart_after_creating_the_job_before_writing_status_adopts_it(world: World) -> None:
    scheduled_policy(world)
    world.tick()
    world.clock.advance(300)
    before = world.kube.get(driftpolicy.DRIFT_POLICIES, NS, POLICY)
    assert before is not None
    world.tick()
    assert world.jobs() == [job_for("v1-r1")]
    # The status write was lost: the policy is as before the tick, the Job exists.
    world.kube.update_status(driftpolicy.DRIFT_POLICIES, NS, POLICY, before.get("status") or {})
    world.ctx = Context(kube=world.kube, settings=OperatorSettings(), metrics=OperatorMetrics())
    status = world.tick()
    assert world.jobs() == [job_for("v1-r1")]
    assert status["lastRetraining"]["job"] == job_for("v1-r1")


def test_a_schedule_added_later_does_not_run_for_the_past(world: World) -> None:
    world.policy()
    world.tick()
    world.clock.advance(3600)
    scheduled_policy(world, schedule="0 * * * *")  # generation 2
    status = world.tick()
    assert world.jobs() == []
    assert status["nextScheduledTime"] == "2030-01-01T02:00:00Z"


def test_the_schedule_reads_its_time_zone(world: World) -> None:
    # 03:00 in Berlin is 02:00 UTC in January
    scheduled_policy(world, schedule="0 3 * * *", timeZone="Europe/Berlin")
    assert world.tick()["nextScheduledTime"] == "2030-01-01T02:00:00Z"
    world.clock.advance(2 * 3600)
    status = world.tick()
    assert world.jobs() == [job_for("v1-r1")]
    assert status["nextScheduledTime"] == "2030-01-02T02:00:00Z"


def test_a_disabled_retraining_only_reports_the_scheduled_time(world: World) -> None:
    world.policy(retraining={"enabled": False, "schedule": "*/5 * * * *"})
    world.tick()
    world.clock.advance(300)
    world.take_events()
    status = world.tick()
    assert world.jobs() == []
    assert status["lastScheduledTime"] == "2030-01-01T00:05:00Z"
    assert ("Normal", "RetrainingDisabled") in [(e.type, e.reason) for e in world.take_events()]


def test_removing_the_schedule_clears_the_next_time(world: World) -> None:
    scheduled_policy(world)
    assert "nextScheduledTime" in world.tick()
    world.policy()
    world.clock.advance(timedelta(seconds=10).total_seconds())
    assert "nextScheduledTime" not in world.tick()


def test_a_signal_taken_out_of_the_spec_leaves_nothing_behind(world: World) -> None:
    pods = SignalPods(world, OUTPUT_PROFILE)
    world.policy(performance={"metric": "accuracy", "min": 0.5}, predictionDrift={})
    world.tick()
    status = window(world, pods, BALANCED, RIGHT)
    assert {"performance", "predictionDrift"} <= set(status)
    assert world.condition("PerformanceDegraded") is not None
    world.policy()
    status = window(world, pods, BALANCED, RIGHT)
    assert not {"performance", "predictionDrift"} & set(status)
    assert world.condition("PerformanceDegraded") is None
    assert world.condition("PredictionDrift") is None


class SignalPrometheus:
    """Answers each instant query with the ``increase()`` vector of the counter it names."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        self.vectors: dict[str, list[tuple[dict[str, str], float]]] = {}

    def answer(self, query: str) -> bytes:
        self.queries.append(query)
        metric = query.split("(increase(", 1)[1].split("{", 1)[0]
        result = [
            {
                "metric": {"namespace": NS, "version": "v1", **labels},
                "value": [START.timestamp(), repr(value)],
            }
            for labels, value in self.vectors.get(metric, [])
        ]
        document = {"status": "success", "data": {"resultType": "vector", "result": result}}
        return json.dumps(document).encode()


def test_the_prometheus_source_reads_the_prediction_and_feedback_counters(world: World) -> None:
    SignalPods(world, OUTPUT_PROFILE)  # the profile, from the pods
    prometheus = SignalPrometheus()
    world.prometheus = prometheus  # type: ignore[assignment]
    world.policy(
        source={"type": "prometheus", "url": PROMETHEUS, "window": "5m"},
        performance={"metric": "recall", "minSamples": 100, "min": 0.5},
        predictionDrift={"metrics": [{"type": "psi", "threshold": 0.2}]},
        trigger={"consecutiveEvaluations": 1, "signals": ["Performance"]},
    )
    prometheus.vectors = {
        "modelops_feature_bin_total": [
            ({"feature": "x", "bin": "0"}, 250.0),
            ({"feature": "x", "bin": "1"}, 250.0),
        ],
        "modelops_prediction_bin_total": [({"bin": "a"}, 460.0), ({"bin": "b"}, 40.0)],
        "modelops_feedback_rows_total": [({}, 500.0)],
        "modelops_feedback_confusion_total": [
            ({"actual": "a", "predicted": "a"}, 240.0),
            ({"actual": "a", "predicted": "b"}, 10.0),
            ({"actual": "b", "predicted": "a"}, 220.0),
            ({"actual": "b", "predicted": "b"}, 30.0),
        ],
    }
    status = world.tick()
    assert [q.split("(increase(", 1)[1].split("{", 1)[0] for q in prometheus.queries] == [
        "modelops_feature_bin_total",
        "modelops_prediction_bin_total",
        "modelops_feedback_rows_total",
        "modelops_feedback_confusion_total",
    ]
    assert "sum by (namespace, version, actual, predicted)" in prometheus.queries[-1]
    # recall of the positive class b: 30 of 250
    assert status["performance"] == {"metric": "recall", "value": 0.12, "samples": 500}
    assert status["predictionDrift"]["samples"] == 500
    assert status["predictionDrift"]["breachedMetrics"] == ["psi"]
    assert world.condition_state("PredictionDrift") == ("True", "PredictionDriftFound")
    assert world.condition_state("PerformanceDegraded") == ("True", "MetricDegraded")
    assert world.jobs() == [job_for("v1-r1")]
    assert status["lastRetraining"]["reason"] == "PerformanceDegraded"


def test_a_scheduled_job_and_a_drift_breach_in_one_tick_make_one_job(world: World) -> None:
    world.policy(retraining={"schedule": "*/5 * * * *"}, trigger={"consecutiveEvaluations": 1})
    world.tick()
    world.pods.serve((900, 100, 0))  # drifted: the trigger would start a Job too
    world.clock.advance(300)
    status = world.tick()
    assert world.jobs() == [job_for("v1-r1")]
    assert status["lastRetraining"]["reason"] == "Scheduled"
    assert world.condition_state("DriftDetected") == ("True", "DriftFound")
    assert status["consecutiveBreaches"] == 0


class RegressionPods:
    """Pods of a regressor: predictions in the output's quantile bins, the regression sums."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.profile = Profile(
            features=PROFILE.features,
            rows=PROFILE.rows,
            output=FeatureProfile(
                name="price",
                kind="numeric",
                proportions=(0.5, 0.5, 0.0),
                edges=(-10.0,),
                centers=(-20.0, 0.0),
                mean=-10.0,
                std=10.0,
            ),
        )
        self.sums = {"rows": 0, "absError": 0.0, "squaredError": 0.0, "target": 0.0}
        self.sums["targetSquared"] = 0.0
        world.pods.answer = self.answer  # type: ignore[method-assign]

    def feedback(self, truth: list[float], predicted: list[float]) -> None:
        self.world.pods.serve(CALM)
        self.sums["rows"] += len(truth)
        for y, p in zip(truth, predicted, strict=True):
            self.sums["absError"] += abs(y - p)
            self.sums["squaredError"] += (y - p) ** 2
            self.sums["target"] += y
            self.sums["targetSquared"] += y * y

    def answer(self, address: str, path: str) -> bytes:
        [pod] = self.world.pods.pods.values()
        if path == f"/v2/models/{MODEL}/profile":
            return self.profile.to_json().encode()
        counts = [int(v) for v in pod.counters]
        document = {
            "model": MODEL,
            "version": "v1",
            "start": pod.start,
            "rows": sum(counts),
            "features": [{"name": "x", "counts": counts}],
            "predictions": [500, 500, 0],
            "feedback": {"rows": self.sums["rows"], **self.sums},
        }
        return json.dumps(document).encode()


def test_a_regressor_is_judged_on_its_error_sums_with_negative_targets(world: World) -> None:
    pods = RegressionPods(world)
    world.policy(
        performance={"metric": "rmse", "minSamples": 4, "max": 2.0},
        trigger={"consecutiveEvaluations": 1, "signals": ["Performance"]},
    )
    world.tick()
    pods.feedback([-30.0, -10.0, -20.0, -40.0], [-31.0, -9.0, -21.0, -39.0])
    world.clock.advance(INTERVAL)
    status = world.tick()
    assert status["performance"] == {"metric": "rmse", "value": 1.0, "samples": 4}
    assert world.condition_state("PerformanceDegraded") == ("False", "MetricHealthy")
    pods.feedback([-30.0, -10.0, -20.0, -40.0], [-27.0, -13.0, -17.0, -43.0])
    world.clock.advance(INTERVAL)
    status = world.tick()  # the target sum fell: a window, not a restart
    assert status["performance"]["value"] == 3.0
    assert status["performance"]["samples"] == 4
    assert status["lastRetraining"]["reason"] == "PerformanceDegraded"


def test_an_r2_of_a_constant_target_is_undefined(world: World) -> None:
    pods = RegressionPods(world)
    world.policy(performance={"metric": "r2", "minSamples": 2, "min": 0.5})
    world.tick()
    pods.feedback([5.0, 5.0, 5.0], [4.0, 6.0, 5.0])
    world.clock.advance(INTERVAL)
    status = world.tick()
    assert status["performance"] == {"metric": "r2", "samples": 3}
    assert world.condition_state("PerformanceDegraded") == ("Unknown", "MetricUndefined")


def test_too_few_predictions_judge_no_prediction_drift(world: World) -> None:
    pods = SignalPods(world, OUTPUT_PROFILE)
    world.policy(predictionDrift={})
    world.tick()
    status = window(world, pods, (50, 50, 0, 0), RIGHT)
    assert status["predictionDrift"]["samples"] == 100
    assert status["predictionDrift"]["scores"] == {}
    assert world.condition_state("PredictionDrift") == ("Unknown", "InsufficientSamples")


def test_a_scheduled_time_waits_for_a_missing_model_deployment(world: World) -> None:
    scheduled_policy(world)
    world.tick()
    world.kube.delete(MODEL_DEPLOYMENTS, NS, MODEL)
    world.clock.advance(300)
    status = world.tick()
    assert world.jobs() == []
    assert "lastScheduledTime" not in status
    assert status["nextScheduledTime"] == "2030-01-01T00:05:00Z"  # still due
    assert world.condition_state("Retraining") == ("False", "ModelNotFound")
    world.model_deployment()
    world.clock.advance(5)
    status = world.tick()  # the time is still due: it runs now, once
    assert world.jobs() == [job_for("v1-r1")]
    assert status["lastScheduledTime"] == "2030-01-01T00:05:00Z"


def test_the_baseline_falls_back_to_the_promoted_candidates_metrics(world: World) -> None:
    pods = SignalPods(world, OUTPUT_PROFILE)
    world.policy(performance={"metric": "accuracy", "minSamples": 100, "maxDrop": 0.1})
    world.kube.update_status(
        driftpolicy.DRIFT_POLICIES,
        NS,
        POLICY,
        {
            "lastRetraining": {
                "job": "j",
                "candidateVersion": "v1",
                "result": "Promoted",
                "uri": "pvc://models/iris/v1",
                "metrics": {"accuracy": 0.95},
            }
        },
    )
    world.tick()
    status = window(world, pods, BALANCED, RIGHT)
    assert status["performance"]["baseline"] == 0.95
    assert world.condition_state("PerformanceDegraded") == ("False", "MetricHealthy")


def test_a_schedule_changed_to_fire_sooner_is_not_held_back_by_the_old_next_time(
    world: World,
) -> None:
    world.policy(retraining={"schedule": "0 3 * * *"})
    assert world.tick()["nextScheduledTime"] == "2030-01-01T03:00:00Z"
    world.policy(retraining={"schedule": "*/5 * * * *"})
    world.clock.advance(60)
    assert world.tick()["nextScheduledTime"] == "2030-01-01T00:05:00Z"
    world.clock.advance(240)
    world.tick()
    assert world.jobs() == [job_for("v1-r1")]
