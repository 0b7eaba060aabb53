"""The DriftPolicy tick as a state machine: every decision pinned (issue #19).

``driftpolicy.tick`` runs in-process against an in-memory fake of the Kubernetes boundary
(``tests/unit/fake_kube.py``), serving pods and a Prometheus faked at the HTTP functions the
sources use (``sources.http_get``, and ``sources.get_many`` for the pods: the metrics text is
parsed, windowed and matrixed by the real code), a controllable clock (``driftpolicy.utcnow``)
and Events recorded from ``kopf.event``.
Each test reads what a user would see: status fields, conditions, Jobs, Events, the
ModelDeployment's spec and history, and the operator's counters.

The served model has one numeric feature ``x`` with one inner edge at 0 (bins: below, above,
missing), 50 / 50 in the reference. A calm window is 500 / 500 rows, a drifted one 900 / 100
(PSI 0.879, KS 0.4: over both thresholds of 0.1).
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf
import pytest
from fake_kube import FakeKube

from modelops.api import APPROVE_ANNOTATION
from modelops.controller import driftpolicy, sources
from modelops.controller.context import Context
from modelops.controller.kube import (
    DRIFT_POLICIES,
    ENDPOINT_SLICES,
    JOBS,
    MODEL_DEPLOYMENTS,
    PODS,
    ConflictError,
    NotFoundError,
    ResourceType,
)
from modelops.controller.metrics import OperatorMetrics
from modelops.controller.settings import OperatorSettings
from modelops.controller.sources import SourceError, ready_endpoints
from modelops.controller.watched import Watched, lean
from modelops.drift.profile import FeatureProfile, Profile
from modelops.resources import Owner, TrainingRequest, build_job, job_name
from modelops.resources import labels as label_keys

NS = "ml"
POLICY = "iris-drift"
POLICY_UID = "0f6a3c1e-7d4b-4a55-9a4e-1b2c3d4e5f60"
MODEL = "iris"
MODEL_URI = "pvc://models/iris/v1"
PROMETHEUS = "http://prometheus.monitoring:9090"
START = datetime(2030, 1, 1, tzinfo=UTC)
INTERVAL = 60  # seconds, the policy's spec.interval

PROFILE = Profile(
    features=(
        FeatureProfile(
            name="x",
            kind="numeric",
            proportions=(0.5, 0.5, 0.0),
            edges=(0.0,),
            centers=(-1.0, 1.0),
            mean=0.0,
            std=1.0,
        ),
    ),
    rows=1000,
)
CALM = (500, 500, 0)
DRIFT = (900, 100, 0)


def job_for(candidate: str) -> str:
    """The Job name the idempotency key (policy uid, candidate version) must give."""
    return job_name(POLICY, POLICY_UID, candidate)


# ------------------------------------------------------------------------------ the fakes


class Clock:
    """The controller's ``utcnow``: whole seconds, moved only by the test."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def text(self) -> str:
        return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Pod:
    name: str
    uid: str
    address: str
    version: str = "v1"
    counters: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    start: str = "start-1"
    """The server process's identity in its counts document."""
    counts_endpoint: bool = True
    """False: an older server, read through /metrics text."""


class ServingPods:
    """The model-server pods behind the Service: cumulative bin counters per pod."""

    def __init__(self, kube: Any) -> None:
        self.kube = kube
        self.pods: dict[str, Pod] = {}
        self._next = 1

    def start(self, name: str | None = None) -> Pod:
        number = self._next
        self._next += 1
        pod = Pod(
            name=name or f"{MODEL}-{number}",
            uid=f"uid-{number}",
            address=f"10.0.0.{number}",
        )
        self.pods[pod.name] = pod
        self._publish()
        return pod

    def stop(self, name: str) -> None:
        del self.pods[name]
        self._publish()

    def serve(self, counts: tuple[float, ...], pod: str | None = None) -> None:
        """Count ``counts`` rows into the bins (on one pod, or split over all of them)."""
        targets = [self.pods[pod]] if pod else list(self.pods.values())
        for target in targets:
            for index, value in enumerate(counts):
                target.counters[index] += value / len(targets)

    def restart(self, name: str) -> None:
        """The server process restarted: its counters begin again at zero (same pod)."""
        pod = self.pods[name]
        pod.counters = [0.0, 0.0, 0.0]
        pod.start = f"start-{int(pod.start.rsplit('-', 1)[1]) + 1}"

    def _publish(self) -> None:
        """The EndpointSlice the EndpointSlice controller would write for the Service."""
        self.kube.put(
            ENDPOINT_SLICES,
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{MODEL}-abcde",
                    "namespace": NS,
                    "labels": {label_keys.SERVICE_NAME: MODEL},
                },
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": [
                    {
                        "addresses": [pod.address],
                        "conditions": {"ready": True},
                        "targetRef": {"kind": "Pod", "name": pod.name, "uid": pod.uid},
                    }
                    for pod in self.pods.values()
                ],
            },
        )

    def answer(self, address: str, path: str) -> bytes:
        pod = next((p for p in self.pods.values() if p.address == address), None)
        if pod is None:
            raise SourceError(f"GET http://{address}:8080{path} failed: connection refused")
        if path == f"/v2/models/{MODEL}/profile":
            return PROFILE.to_json().encode()
        if path == f"/v2/models/{MODEL}/counts" and pod.counts_endpoint:
            return counts_document(pod)
        if path == "/metrics":
            lines = [
                "# HELP modelops_feature_bin_total Served feature values by profile bin.",
                "# TYPE modelops_feature_bin_total counter",
            ]
            lines += [
                f'modelops_feature_bin_total{{model="{MODEL}",version="{pod.version}",'
                f'feature="x",bin="{index}"}} {value}'
                for index, value in enumerate(pod.counters)
            ]
            return ("\n".join(lines) + "\n").encode()
        raise SourceError(f"GET http://{address}:8080{path} answered HTTP 404", status=404)


def counts_document(pod: Pod) -> bytes:
    """The pod's counts document, as the server writes it (whole counts: rows are split evenly)."""
    counts = [int(value) for value in pod.counters]
    assert counts == pod.counters, "a counts document holds whole rows"
    return json.dumps(
        {
            "model": MODEL,
            "version": pod.version,
            "start": pod.start,
            "rows": sum(counts),
            "features": [{"name": "x", "counts": counts}],
        }
    ).encode()


class FakePrometheus:
    """Answers instant queries with the next prepared ``increase()`` vector; keeps the queries."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        self.answers: list[dict[tuple[str, str], float]] = []

    def answer(self, query: str) -> bytes:
        self.queries.append(query)
        series = self.answers.pop(0)
        result = [
            {
                "metric": {"namespace": NS, "version": version, "feature": "x", "bin": bin_},
                "value": [START.timestamp(), repr(value)],
            }
            for (version, bin_), value in series.items()
        ]
        document = {"status": "success", "data": {"resultType": "vector", "result": result}}
        return json.dumps(document).encode()


@dataclass(frozen=True)
class Event:
    kind: str
    name: str
    type: str
    reason: str
    message: str


class World:
    """One namespace with a ModelDeployment, its serving pods and a DriftPolicy; ``tick`` runs
    the operator's timer once, as Kopf would, with the policy as stored."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.clock = Clock()
        self.kube = FakeKube(self.clock)
        self.events: list[Event] = []
        self.pods = ServingPods(self.kube)
        self.prometheus = FakePrometheus()
        self.ctx = Context(kube=self.kube, settings=OperatorSettings(), metrics=OperatorMetrics())
        monkeypatch.setattr(driftpolicy, "utcnow", self.clock)
        monkeypatch.setattr(kopf, "event", self._record_event)
        monkeypatch.setattr(sources, "http_get", self._http_get)
        monkeypatch.setattr(sources, "get_many", self._get_many)

    # --- setting up ---------------------------------------------------------------------------

    def model_deployment(self) -> None:
        self.kube.put(
            MODEL_DEPLOYMENTS,
            {
                "apiVersion": "modelops.dev/v1alpha1",
                "kind": "ModelDeployment",
                "metadata": {"name": MODEL, "namespace": NS, "uid": "md-uid", "generation": 1},
                "spec": {"model": {"uri": MODEL_URI, "version": "v1"}},
                "status": {
                    "observedGeneration": 1,
                    "phase": "Ready",
                    "modelUri": MODEL_URI,
                    "modelVersion": "v1",
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "MinimumReplicasAvailable",
                            "message": "",
                            "lastTransitionTime": self.clock.text(),
                        }
                    ],
                    "history": [
                        {
                            "version": "v1",
                            "uri": MODEL_URI,
                            "time": self.clock.text(),
                            "reason": "Created",
                        }
                    ],
                },
            },
        )

    def policy(self, **overrides: Any) -> None:
        spec: dict[str, Any] = {
            "modelDeploymentRef": {"name": MODEL},
            "interval": f"{INTERVAL}s",
            "minSamples": 200,
            "metrics": [{"type": "psi", "threshold": 0.1}, {"type": "ks", "threshold": 0.1}],
            "trigger": {"consecutiveEvaluations": 2},
            "retraining": {
                "dataUri": "pvc://data/fresh.csv",
                "outputUri": "pvc://models/iris",
                "cooldown": "0s",
            },
            "promotion": {"mode": "auto", "metric": "accuracy", "minImprovement": 0.0},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(spec.get(key), dict):
                spec[key] = {**spec[key], **value}
            else:
                spec[key] = value
        self.kube.put(
            DRIFT_POLICIES,
            {
                "apiVersion": "modelops.dev/v1alpha1",
                "kind": "DriftPolicy",
                "metadata": {"name": POLICY, "namespace": NS, "uid": POLICY_UID, "generation": 1},
                "spec": spec,
            },
        )

    # --- running ------------------------------------------------------------------------------

    def tick(self) -> dict[str, Any]:
        """One timer tick with the policy as stored; returns the stored status afterwards."""
        body = self.kube.get(DRIFT_POLICIES, NS, POLICY)
        assert body is not None
        driftpolicy.tick(self.ctx, body)
        return self.status()

    def window(self, counts: tuple[float, ...]) -> dict[str, Any]:
        """Serve ``counts`` rows, let the interval pass, tick."""
        self.pods.serve(counts)
        self.clock.advance(INTERVAL)
        return self.tick()

    def drift(self) -> dict[str, Any]:
        return self.window(DRIFT)

    def calm(self) -> dict[str, Any]:
        return self.window(CALM)

    def finish_job(
        self,
        name: str,
        *,
        accuracy: float | None = None,
        baseline: float = 0.90,
        failed: bool = False,
        exit_code: int = 0,
    ) -> None:
        """The Job controller and kubelet: the Job completes (or fails), its pod terminated with
        the trainer's result JSON as the termination message."""
        job = self.kube.get(JOBS, NS, name)
        assert job is not None
        candidate = job["metadata"]["labels"][label_keys.CANDIDATE_VERSION]
        message = ""
        if accuracy is not None:
            message = json.dumps(
                {
                    "version": candidate,
                    "uri": f"pvc://models/iris/{candidate}",
                    "metrics": {"accuracy": accuracy},
                    "baseline": {"accuracy": baseline},
                }
            )
        condition = {
            "type": "Failed" if failed else "Complete",
            "status": "True",
            "reason": "BackoffLimitExceeded" if failed else "Completed",
            "message": "Job has reached the specified backoff limit" if failed else "",
            "lastTransitionTime": self.clock.text(),
        }
        status: dict[str, Any] = {"conditions": [condition]}
        if not failed:
            status["completionTime"] = self.clock.text()
        self.kube.update_status(JOBS, NS, name, status)
        self.kube.put(
            PODS,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{name}-x7k2p",
                    "namespace": NS,
                    "labels": {label_keys.JOB_NAME: name},
                },
                "status": {
                    "containerStatuses": [
                        {
                            "name": "trainer",
                            "state": {
                                "terminated": {
                                    "exitCode": 1 if failed and not exit_code else exit_code,
                                    "message": message,
                                    "finishedAt": self.clock.text(),
                                }
                            },
                        }
                    ]
                },
            },
        )

    def approve(self, version: str) -> None:
        self.kube.apply(
            DRIFT_POLICIES, NS, POLICY, {"metadata": {"annotations": {APPROVE_ANNOTATION: version}}}
        )

    # --- reading ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        body = self.kube.get(DRIFT_POLICIES, NS, POLICY)
        assert body is not None
        status: dict[str, Any] = body.get("status") or {}
        return status

    def condition(self, type_: str) -> dict[str, Any] | None:
        found = [c for c in self.status().get("conditions", []) if c["type"] == type_]
        assert len(found) <= 1
        return found[0] if found else None

    def condition_state(self, type_: str) -> tuple[str, str] | None:
        found = self.condition(type_)
        return (found["status"], found["reason"]) if found else None

    def md(self) -> dict[str, Any]:
        found = self.kube.get(MODEL_DEPLOYMENTS, NS, MODEL)
        assert found is not None
        return found

    def jobs(self) -> list[str]:
        return [j["metadata"]["name"] for j in self.kube.objects(JOBS, NS)]

    def reasons(self, kind: str = "DriftPolicy") -> list[str]:
        return [e.reason for e in self.events if e.kind == kind]

    def take_events(self) -> list[Event]:
        taken, self.events = self.events, []
        return taken

    def counter(self, name: str, **labels: str) -> float:
        value = self.ctx.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def jobs_counted(self, result: str) -> float:
        return self.counter(
            "modelops_retraining_jobs_total", namespace=NS, policy=POLICY, result=result
        )

    # --- the fakes' wiring --------------------------------------------------------------------

    def _record_event(
        self, body: Any, *, type: str, reason: str, message: str = "", **_: Any
    ) -> None:
        meta = body["metadata"]
        self.events.append(Event(body["kind"], meta["name"], type, reason, message))

    def _get_many(
        self, urls: list[str], *, timeout: float, concurrency: int
    ) -> list[bytes | sources.SourceError]:
        assert concurrency > 0
        answers: list[bytes | sources.SourceError] = []
        for url in urls:
            try:
                answers.append(self._http_get(url, timeout))
            except sources.SourceError as exc:
                answers.append(exc)
        return answers

    def _http_get(self, url: str, timeout: float) -> bytes:
        assert timeout > 0
        if url.startswith(PROMETHEUS + "/api/v1/query?"):
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["query"][0]
            return self.prometheus.answer(query)
        parts = urllib.parse.urlsplit(url)
        assert parts.port == 8080, url
        return self.pods.answer(str(parts.hostname), parts.path)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    made = World(monkeypatch)
    made.model_deployment()
    made.pods.start()
    return made


def started(world: World, **policy: Any) -> World:
    """The policy created, its first tick (the pods source records the counter baseline)."""
    world.policy(**policy)
    status = world.tick()
    assert "lastEvaluationTime" not in status
    assert world.condition_state("SourceReady") == ("True", "SourceReachable")
    assert world.jobs() == []
    world.take_events()
    return world


def retraining(status: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = status["lastRetraining"]
    return found


# ------------------------------------------------------------------- breach, calm, consecutive


def test_breach_calm_breach_resets_the_consecutive_count(world: World) -> None:
    started(world)  # consecutiveEvaluations: 2

    status = world.drift()
    assert status["consecutiveBreaches"] == 1
    assert status["samples"] == 1000
    assert status["driftedFeatures"] == 1
    [feature] = status["features"]
    assert feature["name"] == "x"
    assert feature["breached"] is True
    assert feature["breachedMetrics"] == ["psi", "ks"]
    # PSI of 900 / 100 against 50 / 50: 0.4 ln(1.8) + 0.4 ln(5) = 0.878890; KS |0.5 - 0.9| = 0.4
    assert feature["scores"] == {"psi": pytest.approx(0.87889, abs=1e-6), "ks": 0.4}
    assert status["lastEvaluationTime"] == "2030-01-01T00:01:00Z"  # baseline at 00:00
    assert world.condition_state("DriftDetected") == ("True", "DriftFound")
    assert [(e.type, e.reason) for e in world.take_events()] == [("Warning", "DriftFound")]
    assert world.jobs() == []

    status = world.calm()
    assert status["consecutiveBreaches"] == 0
    assert status["driftedFeatures"] == 0
    assert status["features"][0]["breached"] is False
    assert world.condition_state("DriftDetected") == ("False", "NoDrift")
    assert [(e.type, e.reason) for e in world.take_events()] == [("Normal", "NoDrift")]

    status = world.drift()
    assert status["consecutiveBreaches"] == 1  # not 2: the calm evaluation broke the streak
    assert world.jobs() == []
    assert world.reasons() == ["DriftFound"]
    assert world.condition("Retraining") is None

    status = world.drift()
    # The second breach in a row starts the Job, and starting it resets the count.
    assert world.jobs() == [job_for("v1-r1")]
    assert status["consecutiveBreaches"] == 0
    assert world.condition_state("Retraining") == ("True", "RetrainingStarted")


def test_k_consecutive_breaches_with_resets(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 3})
    seen = []
    for step in (world.drift, world.drift, world.calm, world.drift, world.drift):
        seen.append(step()["consecutiveBreaches"])
        assert world.jobs() == []
    assert seen == [1, 2, 0, 1, 2]
    world.take_events()

    status = world.drift()
    assert world.jobs() == [job_for("v1-r1")]
    assert status["consecutiveBreaches"] == 0
    assert status["lastTriggerTime"] == world.clock.text()
    assert retraining(status) == {
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
    [event] = [e for e in world.take_events() if e.reason == "RetrainingStarted"]
    assert event.type == "Normal"
    assert event.message.startswith(f"Started retraining Job {job_for('v1-r1')} for candidate")
    assert "3 consecutive evaluations" in event.message
    assert world.jobs_counted("started") == 1
    job = world.kube.get(JOBS, NS, job_for("v1-r1"))
    assert job["metadata"]["labels"][label_keys.CANDIDATE_VERSION] == "v1-r1"
    assert job["metadata"]["labels"][label_keys.POLICY] == POLICY
    assert job["metadata"]["ownerReferences"][0]["uid"] == POLICY_UID
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--version") + 1] == "v1-r1"
    assert args[args.index("--base-model-uri") + 1] == MODEL_URI

    # Drift goes on while the Job runs: the streak counts again from zero.
    assert world.drift()["consecutiveBreaches"] == 1


def test_a_single_breach_is_enough_with_consecutive_one(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    assert world.jobs() == [job_for("v1-r1")]


def test_no_evaluation_before_the_interval_has_passed(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.pods.serve(DRIFT)
    world.clock.advance(INTERVAL - 1)
    assert "lastEvaluationTime" not in world.tick()
    world.clock.advance(1)
    status = world.tick()
    assert status["lastEvaluationTime"] == world.clock.text()
    assert status["samples"] == 1000
    assert world.jobs() == [job_for("v1-r1")]


# --------------------------------------------------------------------------------- the gates


def test_cooldown_holds_the_next_retraining(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1}, retraining={"cooldown": "1h"})
    world.drift()
    first = job_for("v1-r1")
    assert world.jobs() == [first]
    triggered = world.clock.now
    world.finish_job(first, accuracy=0.80)  # worse than 0.90: rejected
    status = world.drift()
    assert retraining(status)["result"] == "Rejected"
    # Drift persists 2 minutes after the trigger: held by the cooldown, no Job.
    assert world.jobs() == [first]
    assert world.condition_state("Retraining") == ("False", "CooldownActive")
    [event] = [e for e in world.take_events() if e.reason == "CooldownActive"]
    assert event.type == "Normal"
    assert "may start in 3540s" in event.message  # 3600 s - the 60 s since the trigger
    status = world.drift()
    assert world.jobs() == [first]
    assert status["consecutiveBreaches"] == 2  # the streak keeps counting under the cooldown
    assert "CooldownActive" not in world.reasons()  # no Event again while nothing changed

    # Just before the hour: still held; once the hour is over the next breach starts a Job.
    world.clock.now = triggered + timedelta(seconds=3600 - INTERVAL - 1)
    world.drift()
    assert world.jobs() == [first]
    world.drift()
    assert world.clock.now - triggered >= timedelta(hours=1)
    assert sorted(world.jobs()) == sorted([first, job_for("v1-r2")])
    assert world.condition_state("Retraining") == ("True", "RetrainingStarted")
    assert retraining(world.status())["candidateVersion"] == "v1-r2"


def test_max_concurrent_counts_our_running_jobs(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})  # maxConcurrent 1, no cooldown
    world.drift()
    first = job_for("v1-r1")
    assert world.jobs() == [first]
    world.take_events()

    status = world.drift()  # the first Job still runs
    assert world.jobs() == [first]
    assert world.kube.created(JOBS) == [first]
    assert retraining(status)["job"] == first
    # The Retraining condition stays True (a Job runs) with the reason of the hold.
    assert world.condition_state("Retraining") == ("True", "MaxConcurrentReached")
    [event] = world.take_events()[-1:]
    assert (event.type, event.reason) == ("Normal", "MaxConcurrentReached")
    assert "1 retraining Job(s) running, at most 1" in event.message

    # The Job ends (failed): the next breach may start one.
    world.finish_job(first, failed=True)
    world.drift()
    assert sorted(world.jobs()) == sorted([first, job_for("v1-r2")])


def test_max_concurrent_two_allows_a_second_running_job(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1}, retraining={"maxConcurrent": 2})
    world.drift()
    world.drift()
    assert world.kube.created(JOBS) == [job_for("v1-r1"), job_for("v1-r2")]
    world.drift()
    assert world.kube.created(JOBS) == [job_for("v1-r1"), job_for("v1-r2")]
    assert world.condition_state("Retraining") == ("True", "MaxConcurrentReached")
    assert "2 retraining Job(s) running, at most 2" in world.condition("Retraining")["message"]


def test_a_foreign_running_job_does_not_count_against_max_concurrent(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.kube.put(
        JOBS,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": "someone-elses-job",
                "namespace": NS,
                "labels": {label_keys.POLICY: POLICY},  # same label, no owner reference of ours
            },
            "spec": {},
        },
    )
    world.drift()
    assert world.kube.created(JOBS) == [job_for("v1-r1")]


def test_retraining_disabled_only_reports(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1}, retraining={"enabled": False})
    status = world.drift()
    assert world.kube.created(JOBS) == []
    assert status["consecutiveBreaches"] == 1
    assert world.condition_state("Retraining") == ("False", "RetrainingDisabled")


# ------------------------------------------------------- a second retraining gets a new Job


@pytest.mark.parametrize("outcome", ["rejected", "failed", "vanished"])
def test_the_retraining_after_an_unsuccessful_candidate_gets_a_new_job(
    world: World, outcome: str
) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    first = job_for("v1-r1")
    if outcome == "rejected":
        world.finish_job(first, accuracy=0.85)
    elif outcome == "failed":
        world.finish_job(first, failed=True)
    else:
        world.kube.delete(JOBS, NS, first)
    status = world.drift()  # follows the first Job, then the breach starts the next
    second = job_for("v1-r2")
    assert second != first
    assert world.kube.created(JOBS) == [first, second]
    assert retraining(status)["job"] == second
    assert retraining(status)["candidateVersion"] == "v1-r2"
    job = world.kube.get(JOBS, NS, second)
    assert job["metadata"]["labels"][label_keys.CANDIDATE_VERSION] == "v1-r2"
    assert world.md()["spec"]["model"] == {"uri": MODEL_URI, "version": "v1"}
    assert world.reasons().count("RetrainingStarted") == 2
    # And a third after that one is rejected too.
    world.finish_job(second, accuracy=0.85)
    world.drift()
    assert world.kube.created(JOBS) == [first, second, job_for("v1-r3")]


# -------------------------------------------------------------------- promotion decisions


@pytest.mark.parametrize(
    ("accuracy", "promoted"),
    [(0.93, False), (0.97, True)],
    ids=["gain-0.03-kept", "gain-0.07-promoted"],
)
def test_min_improvement_decides_the_promotion(
    world: World, accuracy: float, promoted: bool
) -> None:
    started(world, trigger={"consecutiveEvaluations": 1}, promotion={"minImprovement": 0.05})
    world.drift()
    world.finish_job(job_for("v1-r1"), accuracy=accuracy, baseline=0.90)
    world.take_events()
    world.clock.advance(1)
    status = world.tick()  # interval not due: only the follow-up
    last = retraining(status)
    assert last["metrics"] == {"accuracy": accuracy}
    assert last["baseline"] == {"accuracy": 0.90}
    assert last["completionTime"] == "2030-01-01T00:01:00Z"  # the Job's completionTime
    assert world.condition_state("Retraining") == ("False", "RetrainingSucceeded")
    assert world.jobs_counted("succeeded") == 1
    md = world.md()
    promotions = world.counter("modelops_promotions_total", namespace=NS, model=MODEL, mode="auto")
    if promoted:
        assert (last["result"], last["reason"]) == ("Promoted", "CandidatePromoted")
        assert "at least 0.05 needed" in last["message"]
        assert md["spec"]["model"] == {
            "uri": "pvc://models/iris/v1-r1",
            "version": "v1-r1",
            "format": "skops",
        }
        assert md["metadata"]["generation"] == 2
        assert [h["version"] for h in md["status"]["history"]] == ["v1", "v1-r1"]
        assert md["status"]["history"][-1]["reason"] == "CandidatePromoted"
        assert promotions == 1
        assert [(e.kind, e.reason) for e in world.events] == [
            ("ModelDeployment", "CandidatePromoted"),
            ("DriftPolicy", "CandidatePromoted"),
        ]
    else:
        assert (last["result"], last["reason"]) == ("Rejected", "CandidateRejected")
        assert "better by 0.03; more than 0.05 needed" in last["message"]
        assert md["spec"]["model"] == {"uri": MODEL_URI, "version": "v1"}
        assert world.kube.patches(MODEL_DEPLOYMENTS) == []
        assert promotions == 0
        assert [(e.type, e.reason) for e in world.events] == [("Normal", "CandidateRejected")]


def test_mode_none_records_the_candidate(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1}, promotion={"mode": "none"})
    world.drift()
    world.finish_job(job_for("v1-r1"), accuracy=0.99)
    world.clock.advance(1)
    status = world.tick()
    assert retraining(status)["result"] == "Succeeded"
    assert retraining(status)["reason"] == "CandidateRecorded"
    assert world.md()["spec"]["model"]["version"] == "v1"


def test_a_failed_data_quality_gate_is_named(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    world.finish_job(job_for("v1-r1"), failed=True, exit_code=3)
    world.take_events()
    world.clock.advance(1)
    status = world.tick()
    assert (retraining(status)["result"], retraining(status)["reason"]) == (
        "Failed",
        "DataQualityGateFailed",
    )
    assert world.condition_state("Retraining") == ("False", "DataQualityGateFailed")
    assert world.jobs_counted("failed") == 1
    assert [(e.type, e.reason) for e in world.events] == [("Warning", "DataQualityGateFailed")]


def test_a_succeeded_job_without_a_result_is_unreadable(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    world.finish_job(job_for("v1-r1"))  # Complete, but an empty termination message
    world.clock.advance(1)
    status = world.tick()
    assert (retraining(status)["result"], retraining(status)["reason"]) == (
        "Failed",
        "ResultUnreadable",
    )
    assert world.md()["spec"]["model"]["version"] == "v1"


# ------------------------------------------------------------------ 409: adopt or NameConflict


def our_job(world: World, candidate: str) -> dict[str, Any]:
    """The Job this policy builds for ``candidate``, as an earlier (crashed) attempt made it."""
    body = world.kube.get(DRIFT_POLICIES, NS, POLICY)
    request = TrainingRequest(
        model_deployment=MODEL,
        candidate_version=candidate,
        base_model_uri=MODEL_URI,
        data_uri="pvc://data/fresh.csv",
        output_uri="pvc://models/iris",
    )
    return build_job(Owner.of(body), request, world.ctx.defaults)


def test_our_listed_job_is_adopted_without_a_create(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.kube.put(JOBS, our_job(world, "v1-r1"))  # created, but the status write was lost
    status = world.drift()
    assert world.kube.created(JOBS) == []
    assert retraining(status)["job"] == job_for("v1-r1")
    assert retraining(status)["result"] == "Running"
    assert status["consecutiveBreaches"] == 0
    assert world.condition_state("Retraining") == ("True", "RetrainingStarted")
    [event] = [e for e in world.events if e.reason == "RetrainingStarted"]
    assert event.message.startswith(f"Adopted the existing retraining Job {job_for('v1-r1')}")
    assert world.jobs_counted("started") == 0


def test_a_409_on_create_adopts_our_own_job(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})

    def another_replica_was_faster(kind: ResourceType, namespace: str, body: Any) -> None:
        if kind == JOBS and not world.kube.objects(JOBS, NS):
            world.kube.put(JOBS, our_job(world, "v1-r1"))

    world.kube.on_create.append(another_replica_was_faster)
    status = world.drift()
    assert world.kube.created(JOBS) == [job_for("v1-r1")]  # tried once, met the 409
    assert world.jobs() == [job_for("v1-r1")]
    assert retraining(status)["job"] == job_for("v1-r1")
    assert world.condition_state("Retraining") == ("True", "RetrainingStarted")
    [event] = [e for e in world.events if e.reason == "RetrainingStarted"]
    assert event.message.startswith("Adopted the existing retraining Job")
    assert world.jobs_counted("started") == 0


def test_a_foreign_object_with_the_job_name_is_a_name_conflict(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.kube.put(
        JOBS,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": job_for("v1-r1"), "namespace": NS, "labels": {"team": "other"}},
            "spec": {},
        },
    )
    status = world.drift()
    assert world.kube.created(JOBS) == [job_for("v1-r1")]
    assert "lastRetraining" not in status
    assert "lastTriggerTime" not in status
    assert world.condition_state("Retraining") == ("False", "NameConflict")
    [event] = [e for e in world.take_events() if e.reason == "NameConflict"]
    assert event.type == "Warning"
    assert f"Job {job_for('v1-r1')} exists and does not belong to this policy" in event.message
    # The foreign Job is left alone, and the next breach tries again: same name, same conflict,
    # no second Event.
    world.drift()
    assert world.kube.get(JOBS, NS, job_for("v1-r1"))["metadata"]["labels"] == {"team": "other"}
    assert world.condition_state("Retraining") == ("False", "NameConflict")
    assert "NameConflict" not in world.reasons()


# ---------------------------------------------------------------------- InsufficientSamples


def test_insufficient_samples_judges_nothing_and_keeps_the_streak(world: World) -> None:
    started(world)  # minSamples 200, consecutiveEvaluations 2
    world.drift()
    status = world.window((90, 60, 0))  # 150 rows
    assert status["samples"] == 150
    assert status["lastEvaluationTime"] == world.clock.text()
    cond = world.condition("DriftDetected")
    assert (cond["status"], cond["reason"]) == ("Unknown", "InsufficientSamples")
    assert cond["message"] == "The window has 150 rows; at least 200 are needed."
    # An unjudged window neither counts as a breach nor breaks the streak ...
    assert status["consecutiveBreaches"] == 1
    assert world.jobs() == []
    # ... and the scores of the last judged window stay.
    assert status["features"][0]["breached"] is True
    # The next judged breach is the second in a row.
    world.drift()
    assert world.jobs() == [job_for("v1-r1")]


def test_an_empty_window_is_insufficient(world: World) -> None:
    started(world)
    status = world.window((0, 0, 0))
    assert status["samples"] == 0
    assert world.condition_state("DriftDetected") == ("Unknown", "InsufficientSamples")


# ------------------------------------------------------------------------------ Job vanished


def test_a_vanished_job_fails_the_retraining(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    world.kube.delete(JOBS, NS, job_for("v1-r1"))
    world.take_events()
    world.clock.advance(1)
    status = world.tick()
    last = retraining(status)
    assert (last["result"], last["reason"]) == ("Failed", "RetrainingFailed")
    assert last["message"] == f"Job {job_for('v1-r1')} disappeared."
    assert last["completionTime"] == world.clock.text()
    assert world.condition_state("Retraining") == ("False", "RetrainingFailed")
    assert [(e.type, e.reason) for e in world.events] == [("Warning", "RetrainingFailed")]
    assert world.jobs_counted("failed") == 1
    world.clock.advance(1)
    world.tick()
    assert world.jobs_counted("failed") == 1  # followed once only


# -------------------------------------------------------------------------- manual approval


def manual_candidate(world: World, timeout: str | None = "30m") -> dict[str, Any]:
    promotion: dict[str, Any] = {"mode": "manual"}
    if timeout:
        promotion["approvalTimeout"] = timeout
    started(world, trigger={"consecutiveEvaluations": 1}, promotion=promotion)
    world.drift()
    world.finish_job(job_for("v1-r1"), accuracy=0.97)
    world.take_events()
    world.clock.advance(1)
    status = world.tick()
    last = retraining(status)
    assert (last["result"], last["reason"]) == ("AwaitingApproval", "AwaitingApproval")
    assert "modelops.dev/approve=v1-r1" in last["message"]
    assert world.condition_state("PromotionPending") == ("True", "AwaitingApproval")
    assert world.reasons() == ["AwaitingApproval"]
    return status


def test_an_unapproved_candidate_expires_after_the_approval_timeout(world: World) -> None:
    manual_candidate(world, "30m")
    completed = START + timedelta(seconds=INTERVAL)  # the Job's completionTime
    world.approve("v1-r2")  # not the candidate: ignored
    world.clock.now = completed + timedelta(minutes=30)
    status = world.tick()
    assert retraining(status)["result"] == "AwaitingApproval"  # exactly 30m is not over it
    world.clock.advance(1)
    world.take_events()
    status = world.tick()
    last = retraining(status)
    assert (last["result"], last["reason"]) == ("Rejected", "ApprovalExpired")
    assert last["message"] == "Candidate v1-r1 was not approved within 30m."
    assert world.condition_state("PromotionPending") == ("False", "ApprovalExpired")
    assert [(e.type, e.reason) for e in world.events] == [("Normal", "ApprovalExpired")]
    # Approving it now is too late.
    world.approve("v1-r1")
    world.clock.advance(1)
    world.tick()
    assert retraining(world.status())["result"] == "Rejected"
    assert world.md()["spec"]["model"]["version"] == "v1"
    assert world.kube.patches(MODEL_DEPLOYMENTS) == []


def test_an_approved_candidate_is_promoted(world: World) -> None:
    manual_candidate(world, "30m")
    world.clock.advance(600)
    world.approve("v1-r1")
    status = world.tick()
    assert retraining(status)["result"] == "Promoted"
    assert world.condition_state("PromotionPending") == ("False", "CandidatePromoted")
    assert world.md()["spec"]["model"]["version"] == "v1-r1"
    assert world.counter("modelops_promotions_total", namespace=NS, model=MODEL, mode="manual") == 1


def test_without_a_timeout_the_candidate_waits(world: World) -> None:
    manual_candidate(world, None)
    world.clock.advance(30 * 24 * 3600)
    assert retraining(world.tick())["result"] == "AwaitingApproval"


# -------------------------------------------------------------------- rollout and rollback


def promoted(world: World) -> datetime:
    """A candidate promoted automatically; returns when."""
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    world.finish_job(job_for("v1-r1"), accuracy=0.97)
    world.clock.advance(1)
    world.tick()
    assert retraining(world.status())["result"] == "Promoted"
    assert world.md()["spec"]["model"]["version"] == "v1-r1"
    world.take_events()
    return world.clock.now


def test_a_promotion_not_ready_by_the_progress_deadline_is_rolled_back(world: World) -> None:
    at = promoted(world)
    deadline = world.ctx.settings.progress_deadline_seconds  # 600 by default
    world.clock.now = at + timedelta(seconds=deadline)
    world.tick()
    assert world.md()["spec"]["model"]["version"] == "v1-r1"  # at the deadline: not yet
    world.clock.advance(1)
    status = world.tick()
    last = retraining(status)
    assert (last["result"], last["reason"]) == ("RolledBack", "RolledBack")
    assert last["message"] == (
        "Rolled back to v1: candidate v1-r1 did not become Ready within 600s."
    )
    md = world.md()
    assert md["spec"]["model"] == {"uri": MODEL_URI, "version": "v1", "format": "skops"}
    assert [(h["version"], h["reason"]) for h in md["status"]["history"]] == [
        ("v1", "Created"),
        ("v1-r1", "CandidatePromoted"),
        ("v1", "RolledBack"),
    ]
    assert [(e.kind, e.type, e.reason) for e in world.events] == [
        ("ModelDeployment", "Normal", "RolledBack"),
        ("DriftPolicy", "Warning", "RolledBack"),
    ]
    patches = len(world.kube.patches(MODEL_DEPLOYMENTS))
    world.clock.advance(3600)
    world.tick()
    assert len(world.kube.patches(MODEL_DEPLOYMENTS)) == patches  # rolled back once


def test_a_deployment_past_its_progress_deadline_is_rolled_back_at_once(world: World) -> None:
    promoted(world)
    world.kube.update_status(
        MODEL_DEPLOYMENTS,
        NS,
        MODEL,
        {
            "conditions": [
                {
                    "type": "Degraded",
                    "status": "True",
                    "reason": "ProgressDeadlineExceeded",
                    "message": "",
                    "lastTransitionTime": world.clock.text(),
                }
            ]
        },
    )
    world.clock.advance(5)
    assert retraining(world.tick())["result"] == "RolledBack"
    assert world.md()["spec"]["model"]["version"] == "v1"


def test_a_promotion_that_becomes_ready_is_confirmed_and_kept(world: World) -> None:
    promoted(world)
    world.clock.advance(30)
    world.tick()
    assert retraining(world.status())["reason"] == "CandidatePromoted"  # not Ready yet
    world.kube.update_status(
        MODEL_DEPLOYMENTS, NS, MODEL, {"observedGeneration": 2, "modelVersion": "v1-r1"}
    )
    world.clock.advance(30)
    status = world.tick()
    last = retraining(status)
    assert (last["result"], last["reason"]) == ("Promoted", "RolloutComplete")
    assert world.reasons() == ["RolloutComplete"]
    world.clock.advance(3600)
    world.tick()
    assert world.md()["spec"]["model"]["version"] == "v1-r1"


# ------------------------------------------------------------------- counter resets: sources


def test_pods_source_a_restarted_pod_counts_its_new_values_in_full(world: World) -> None:
    [pod] = world.pods.pods
    world.pods.serve((3000, 3000, 0))  # served before the operator's baseline
    started(world, trigger={"consecutiveEvaluations": 1})
    assert world.calm()["samples"] == 1000  # 3000 / 3000 grown to 3500 / 3500
    # The server process restarts; since then it counted 900 / 100 rows: its counters went down
    # from 3500 to 900 and 100. The window is those values, not a negative difference.
    world.pods.restart(pod)
    status = world.drift()
    assert status["samples"] == 1000
    assert status["features"][0]["scores"]["ks"] == 0.4
    assert world.condition_state("DriftDetected") == ("True", "DriftFound")
    assert world.jobs() == [job_for("v1-r1")]


def test_pods_source_sums_a_steady_pod_a_restarted_pod_and_a_new_pod(world: World) -> None:
    started(world)
    first = next(iter(world.pods.pods))
    second = world.pods.start().name
    world.pods.serve((1000, 1000, 0), pod=first)
    world.pods.serve((1000, 1000, 0), pod=second)
    world.clock.advance(INTERVAL)
    world.tick()  # a window of 2000 / 2000 over the second pod's first scrape
    world.pods.serve((400, 100, 0), pod=first)  # steady: grows by 400 / 100
    world.pods.restart(second)
    world.pods.serve((300, 0, 0), pod=second)  # restarted: 300 / 0 since
    third = world.pods.start().name
    world.pods.serve((200, 0, 0), pod=third)  # new: 200 / 0 in full
    world.clock.advance(INTERVAL)
    status = world.tick()
    # 400 + 300 + 200 = 900 below the edge, 100 above.
    assert status["samples"] == 1000
    assert status["features"][0]["scores"]["ks"] == 0.4


def test_pods_source_a_replaced_pod_counts_in_full(world: World) -> None:
    started(world)
    old = next(iter(world.pods.pods))
    world.pods.serve((5000, 5000, 0))
    world.calm()
    world.pods.stop(old)
    world.pods.start()
    world.pods.serve(DRIFT)
    world.clock.advance(INTERVAL)
    status = world.tick()
    assert status["samples"] == 1000
    assert world.condition_state("DriftDetected") == ("True", "DriftFound")


def test_pods_source_unreachable(world: World) -> None:
    started(world)
    world.pods.stop(next(iter(world.pods.pods)))
    world.clock.advance(INTERVAL)
    world.tick()
    assert world.condition_state("SourceReady") == ("False", "SourceUnreachable")
    assert [(e.type, e.reason) for e in world.take_events()] == [("Warning", "SourceUnreachable")]


def test_prometheus_source_takes_each_increase_window_as_it_is(world: World) -> None:
    # Prometheus' increase() already compensates counter resets (a pod restart makes the raw
    # counter go down; increase() adds the post-reset value). The operator must ask for
    # increase() over the window and judge each answer on its own: no baseline, no difference
    # against the previous answer (which after a reset is larger than the current one).
    world.policy(
        source={"type": "prometheus", "url": PROMETHEUS, "window": "5m"},
        trigger={"consecutiveEvaluations": 1},
    )
    world.prometheus.answers = [
        {("v1", "0"): 900.0, ("v1", "1"): 100.0, ("v2", "0"): 5.0},
        {("v1", "0"): 150.0, ("v1", "1"): 150.0, ("v1", "2"): 0.0},
        {("v1", "0"): 810.5, ("v1", "1"): 89.5},
    ]
    status = world.tick()  # judged at once: no baseline needed
    assert world.prometheus.queries == [
        "sum by (namespace, version, feature, bin) "
        '(increase(modelops_feature_bin_total{model="iris",version="v1"}[5m]))'
    ]
    assert status["samples"] == 1000  # v2's series is not v1's window
    assert world.condition_state("SourceReady") == ("True", "SourceReachable")
    assert (
        "Prometheus at http://prometheus.monitoring:9090"
        in world.condition("SourceReady")["message"]
    )
    assert world.condition_state("DriftDetected") == ("True", "DriftFound")
    assert world.jobs() == [job_for("v1-r1")]

    world.clock.advance(INTERVAL)
    status = world.tick()  # a smaller increase after a restart: 300 rows, as answered
    assert status["samples"] == 300
    assert status["features"][0]["scores"]["ks"] == 0.0
    assert world.condition_state("DriftDetected") == ("False", "NoDrift")
    assert status["consecutiveBreaches"] == 0

    world.clock.advance(INTERVAL)
    status = world.tick()  # fractional increase() values are fine
    assert status["samples"] == 900
    assert world.condition_state("DriftDetected") == ("True", "DriftFound")


# --------------------------------------------------------------- product bugs (not fixed here)


def test_a_new_retraining_does_not_inherit_the_previous_ones_results(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    world.finish_job(job_for("v1-r1"), accuracy=0.85)
    world.clock.advance(1)
    first = retraining(world.tick())
    assert (first["result"], first["completionTime"]) == ("Rejected", "2030-01-01T00:01:00Z")
    assert first["metrics"] == {"accuracy": 0.85}
    status = world.drift()
    last = retraining(status)
    assert (last["candidateVersion"], last["result"]) == ("v1-r2", "Running")
    assert "completionTime" not in last  # not the first Job's 00:01:00
    assert last["metrics"] == {}  # not the first candidate's {"accuracy": 0.85}
    assert last["baseline"] == {}


def test_the_status_patch_removes_what_the_new_status_no_longer_has() -> None:
    old = {
        "samples": 10,
        "features": [{"name": "x"}, {"name": "y"}],
        "lastRetraining": {"job": "a", "completionTime": "t", "metrics": {"accuracy": 0.8}},
    }
    new = {"features": [{"name": "x"}], "lastRetraining": {"job": "b", "metrics": {}}}
    patch = driftpolicy.status_patch(old, new)
    assert patch == {
        "samples": None,
        "features": [{"name": "x"}],
        "lastRetraining": {"job": "b", "completionTime": None, "metrics": {"accuracy": None}},
    }
    assert driftpolicy.status_patch(new, new) == new  # nothing removed: no null at all


def test_with_max_concurrent_two_the_outcome_of_every_job_is_followed(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1}, retraining={"maxConcurrent": 2})
    world.drift()
    world.drift()
    assert world.kube.created(JOBS) == [job_for("v1-r1"), job_for("v1-r2")]
    world.finish_job(job_for("v1-r1"), failed=True)
    world.finish_job(job_for("v1-r2"), failed=True)
    world.clock.advance(1)
    world.tick()
    world.clock.advance(1)
    world.tick()
    assert world.jobs_counted("started") == 2
    assert world.jobs_counted("failed") == 2
    assert world.reasons().count("RetrainingFailed") == 2
    assert world.status().get("supersededJobs") == []


def test_a_superseded_job_that_succeeds_is_reported_but_only_the_latest_is_judged(
    world: World,
) -> None:
    started(world, trigger={"consecutiveEvaluations": 1}, retraining={"maxConcurrent": 2})
    world.drift()
    world.drift()
    assert world.status()["supersededJobs"] == [job_for("v1-r1")]
    world.finish_job(job_for("v1-r1"), accuracy=0.99)
    world.clock.advance(1)
    world.tick()
    events = [e for e in world.take_events() if e.reason == "RetrainingSuperseded"]
    assert len(events) == 1
    assert f"Job {job_for('v1-r1')} trained candidate v1-r1" in events[0].message
    assert f"the later Job {job_for('v1-r2')} decides" in events[0].message
    assert world.jobs_counted("succeeded") == 1
    assert world.status()["supersededJobs"] == []
    assert world.status()["lastRetraining"]["result"] == "Running"  # v1-r1 is not promoted
    assert "CandidatePromoted" not in world.reasons()
    world.finish_job(job_for("v1-r2"), accuracy=0.99)
    world.clock.advance(1)
    world.tick()
    assert world.status()["lastRetraining"]["candidateVersion"] == "v1-r2"
    assert world.reasons().count("CandidatePromoted") == 1
    assert world.jobs_counted("succeeded") == 2


def test_a_superseded_job_that_vanishes_is_counted_failed_once(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1}, retraining={"maxConcurrent": 2})
    world.drift()
    world.drift()
    world.kube.delete(JOBS, NS, job_for("v1-r1"))
    world.clock.advance(1)
    world.tick()
    world.clock.advance(1)
    world.tick()
    assert world.jobs_counted("failed") == 1
    assert [e.message for e in world.take_events() if e.reason == "RetrainingFailed"] == [
        f"Job {job_for('v1-r1')} disappeared."
    ]
    assert world.status()["lastRetraining"]["result"] == "Running"


# ------------------------------------------------------------------- the fake behaves like a server


def test_the_fake_kube_answers_like_the_api_server() -> None:
    clock = Clock()
    kube = FakeKube(clock)
    body = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "labels": {"a": "1"}},
    }
    created = kube.create(JOBS, NS, {**body, "status": {"active": 1}})
    meta = created["metadata"]
    assert meta["namespace"] == NS
    assert meta["uid"]
    assert meta["resourceVersion"] == "1"
    assert meta["creationTimestamp"] == "2030-01-01T00:00:00Z"
    assert "status" not in created  # the status subresource is written separately
    with pytest.raises(ConflictError):
        kube.create(JOBS, NS, body)
    with pytest.raises(NotFoundError):
        kube.patch(JOBS, NS, "missing", {"spec": {}})
    assert kube.get(JOBS, NS, "missing") is None
    assert [j["metadata"]["name"] for j in kube.list(JOBS, NS, {"a": "1"})] == ["j"]
    assert kube.list(JOBS, NS, {"a": "2"}) == []
    assert kube.list(JOBS, "other", {}) == []
    patched = kube.patch(JOBS, NS, "j", {"spec": {"x": 1, "y": [1]}, "status": {"ignored": 1}})
    assert patched["spec"] == {"x": 1, "y": [1]}
    assert "status" not in patched
    assert patched["metadata"]["generation"] == 2
    patched = kube.patch(JOBS, NS, "j", {"spec": {"x": None, "y": [2]}})
    assert patched["spec"] == {"y": [2]}  # None deletes, lists are replaced
    patched = kube.patch_status(JOBS, NS, "j", {"m": {"a": 1}, "n": 1})
    patched = kube.patch_status(JOBS, NS, "j", {"m": {}, "n": None})
    assert patched["status"] == {"m": {"a": 1}}  # {} merges into the object, None deletes
    assert patched["metadata"]["generation"] == 3  # status writes do not move the generation
    with pytest.raises(ConflictError):
        kube.patch(JOBS, NS, "j", {"metadata": {"resourceVersion": "1"}})


# ------------------------------------------------------------------- the watched ModelDeployments


def count_calls(world: World, monkeypatch: pytest.MonkeyPatch, method: str) -> list[str]:
    """The plurals of every ``method`` call (``get``, ``list``) the controller makes from now on,
    the calls still answered by the fake API server."""
    calls: list[str] = []
    real = getattr(world.kube, method)

    def counted(kind: Any, *args: Any) -> Any:
        calls.append(kind.plural)
        return real(kind, *args)

    monkeypatch.setattr(world.kube, method, counted)
    return calls


def test_an_evaluation_reads_its_model_from_the_watch_index_and_asks_the_server_on_a_miss(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    real_get = world.kube.get
    reads = count_calls(world, monkeypatch, "get")
    stored = real_get(MODEL_DEPLOYMENTS, NS, MODEL)
    assert stored is not None
    stored["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    index: dict[tuple[str, str], list[dict[str, Any]]] = {(NS, MODEL): [lean(stored)]}
    assert "managedFields" not in index[(NS, MODEL)][0]["metadata"]
    policy = real_get(DRIFT_POLICIES, NS, POLICY)
    assert policy is not None
    world.pods.serve(DRIFT)
    world.clock.advance(INTERVAL)
    driftpolicy.tick(world.ctx, policy, models=Watched(index))
    assert "modeldeployments" not in reads
    assert world.status()["samples"] == 1000
    assert world.jobs() == [job_for("v1-r1")]  # the spec from the index started the Job

    index.clear()  # e.g. the policy was created before the index saw its model
    world.pods.serve(CALM)
    world.clock.advance(INTERVAL)
    policy = real_get(DRIFT_POLICIES, NS, POLICY)
    assert policy is not None
    driftpolicy.tick(world.ctx, policy, models=Watched(index))
    assert reads.count("modeldeployments") == 1
    assert world.status()["lastEvaluationTime"] == world.clock.text()


def test_an_evaluation_finds_its_pods_in_the_watched_slices(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    real_list = world.kube.list
    lists = count_calls(world, monkeypatch, "list")
    (endpoint_slice,) = real_list(ENDPOINT_SLICES, NS, {})
    # As handlers.server_slices keeps a slice: its ready endpoints, keyed by the Service's name.
    index = {(NS, MODEL): [tuple(ready_endpoints([endpoint_slice]))]}
    world.pods.serve(DRIFT)
    world.clock.advance(INTERVAL)
    policy = world.kube.get(DRIFT_POLICIES, NS, POLICY)
    assert policy is not None
    driftpolicy.tick(world.ctx, policy, slices=Watched(index))
    assert "endpointslices" not in lists
    assert world.status()["samples"] == 1000

    index.clear()  # none watched yet (or the Service has no endpoints): asked of the server
    world.pods.serve(CALM)
    world.clock.advance(INTERVAL)
    policy = world.kube.get(DRIFT_POLICIES, NS, POLICY)
    assert policy is not None
    driftpolicy.tick(world.ctx, policy, slices=Watched(index))
    assert lists.count("endpointslices") == 1
    assert world.status()["samples"] == 1000


# --------------------------------------------------------------------------- quiet ticks


def test_a_tick_with_nothing_due_neither_parses_nor_asks_the_server(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    started(world, trigger={"consecutiveEvaluations": 2})
    world.calm()
    world.clock.advance(5)
    world.tick()  # the resourceVersion of the evaluation's status write, parsed once
    parsed: list[dict[str, Any]] = []
    real_read_status = driftpolicy.read_status
    monkeypatch.setattr(
        driftpolicy, "read_status", lambda body: parsed.append(body) or real_read_status(body)
    )
    requests = world.kube.requests
    for _ in range(10):  # up to 55 s after the evaluation
        world.clock.advance(5)
        world.tick()
    assert parsed == []
    assert world.kube.requests == requests + 10 * 2  # only the test's own reads of the policy

    world.clock.advance(5)  # the interval has passed
    assert world.tick()["lastEvaluationTime"] == world.clock.text()


def test_new_scores_without_a_new_decision_wait_for_the_report_period(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 2})
    first = world.calm()
    assert first["features"][0]["scores"]["ks"] == 0.0
    writes = len(world.kube.patches(DRIFT_POLICIES, subresource="status"))
    reported = first["lastEvaluationTime"]

    status = world.window((520, 480, 0))  # other scores, still no drift: nothing written
    assert world.kube.patches(DRIFT_POLICIES, subresource="status")[writes:] == []
    assert status["lastEvaluationTime"] == reported
    assert status["features"][0]["scores"]["ks"] == 0.0
    assert world.counter(
        "modelops_drift_score", namespace=NS, policy=POLICY, model=MODEL, feature="x", metric="ks"
    ) == pytest.approx(0.02)

    world.clock.advance(300 - 2 * INTERVAL)  # the report period has passed since the write
    status = world.window((530, 470, 0))
    assert status["lastEvaluationTime"] == world.clock.text()
    assert status["features"][0]["scores"]["ks"] == pytest.approx(0.03)
    assert len(world.kube.patches(DRIFT_POLICIES, subresource="status")) == writes + 1

    status = world.drift()  # a decision (DriftDetected, the streak) is written at once
    assert status["lastEvaluationTime"] == world.clock.text()
    assert status["consecutiveBreaches"] == 1
    assert world.condition_state("DriftDetected") == ("True", "DriftFound")


def test_a_report_only_policy_counts_its_streak_in_memory_between_reports(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 2}, retraining={"enabled": False})
    assert world.drift()["consecutiveBreaches"] == 1
    assert world.drift()["consecutiveBreaches"] == 2  # the count the trigger asks for
    writes = len(world.kube.patches(DRIFT_POLICIES, subresource="status"))
    for _ in range(4):  # still drifting, retraining disabled: nothing new decided
        assert world.drift()["consecutiveBreaches"] == 2
    assert len(world.kube.patches(DRIFT_POLICIES, subresource="status")) == writes
    status = world.drift()  # 300 s since the last write: reported, with the whole streak
    assert status["consecutiveBreaches"] == 7
    assert status["lastEvaluationTime"] == world.clock.text()
    assert world.calm()["consecutiveBreaches"] == 0  # the streak broken: written at once
    assert world.drift()["consecutiveBreaches"] == 1  # counted from the reset, not from memory


def test_a_running_job_is_followed_on_every_tick_while_the_policy_stays_unchanged(
    world: World,
) -> None:
    started(world, trigger={"consecutiveEvaluations": 1}, promotion={"mode": "none"})
    world.drift()
    job = job_for("v1-r1")
    for _ in range(3):  # the Job runs; the policy's resourceVersion stops changing
        world.clock.advance(5)
        assert retraining(world.tick())["result"] == "Running"
    world.finish_job(job, accuracy=0.95)
    world.clock.advance(5)
    assert retraining(world.tick())["result"] == "Succeeded"


# ------------------------------------------------------------- when the scheduler ticks next


def next_tick_in(world: World) -> float | None:
    body = world.kube.get(DRIFT_POLICIES, NS, POLICY)
    assert body is not None
    return driftpolicy.next_tick_in(world.ctx, driftpolicy.policy_key(body))


def test_a_settled_policy_is_ticked_next_when_its_interval_comes_due(world: World) -> None:
    started(world)
    assert next_tick_in(world) is None  # the status it wrote is not yet read back
    world.tick()  # as the scheduler does at the event of that write
    assert next_tick_in(world) == pytest.approx(INTERVAL + driftpolicy.DUE_MARGIN)
    world.clock.advance(INTERVAL - 10)
    assert next_tick_in(world) == pytest.approx(10 + driftpolicy.DUE_MARGIN)
    world.clock.advance(10)
    world.pods.serve(CALM)
    assert world.tick()["lastEvaluationTime"] == world.clock.text()
    assert next_tick_in(world) == pytest.approx(INTERVAL + driftpolicy.DUE_MARGIN)


def test_a_policy_following_its_job_is_ticked_after_the_period(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    world.drift()
    assert world.jobs() == [job_for("v1-r1")]
    world.tick()  # the status now shows the Job running
    assert next_tick_in(world) is None


def test_a_policy_whose_status_cannot_be_written_for_404_is_reported_gone(world: World) -> None:
    """Its DELETED event may never come (a watch that re-lists does not report deletions): the
    tick says so and the scheduler drops the policy, instead of retrying a write every period."""
    world.policy()
    body = world.kube.get(DRIFT_POLICIES, NS, POLICY)
    assert body is not None
    world.kube.delete(DRIFT_POLICIES, NS, POLICY)
    assert driftpolicy.tick(world.ctx, body) is False
    assert world.events == []  # nothing posted about a policy that is gone


def test_a_tick_of_an_existing_policy_says_it_exists(world: World) -> None:
    world.policy()
    body = world.kube.get(DRIFT_POLICIES, NS, POLICY)
    assert body is not None
    assert driftpolicy.tick(world.ctx, body) is True
