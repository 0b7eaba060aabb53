"""DriftPolicy: evaluate drift when due, start exactly one retraining Job, follow it, promote.

One tick of a policy (when it changed or has work due: see ``scheduler``) does, in order (a tick
whose policy, unchanged since an earlier tick, shows none of it due returns at once: see
``quiet``, which also tells the scheduler when the next tick has work: ``next_tick_in``):

1. follow the last retraining (Job outcome, manual approval, the promoted version's rollout);
2. if ``retraining.schedule`` has a time due that was not handled yet, start the scheduled
   retraining (``status.lastScheduledTime`` records it, so a restart does not run it twice);
3. if ``spec.interval`` has passed, evaluate the window: input drift, prediction drift and the
   live metric from feedback; apply the trigger rule over the signals ``trigger.signals`` lists,
   which may create the retraining Job (its name is the idempotency key, see
   ``resources.names.job_name``: a retry after any failure meets a 409 and adopts the Job);
4. patch status once, only if a decision changed or the scores are due for a report
   (``reporting``).

Every decision emits one Event with a CamelCase reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from pydantic import ValidationError

from modelops.api import (
    APPROVE_ANNOTATION,
    HISTORY_LIMIT,
    DriftPolicySpec,
    DriftPolicyStatus,
    FeatureStatus,
    HistoryEntry,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    PerformanceStatus,
    PredictionDriftStatus,
    RetrainingStatus,
    describe_validation_error,
    find_condition,
    is_condition_true,
    parse_duration,
    reasons,
    set_condition,
    utcnow,
)
from modelops.api.conditions import ConditionStatus
from modelops.api.driftpolicy import CLASSIFICATION_LIVE_METRICS, Retraining
from modelops.artifacts import TrainingResult
from modelops.controller import fairness_gate, promotion, reporting, signals, trigger
from modelops.controller.context import Context
from modelops.controller.kube import (
    DRIFT_POLICIES,
    ENDPOINT_SLICES,
    JOBS,
    MODEL_DEPLOYMENTS,
    PODS,
    ConflictError,
    NotFoundError,
    post_event,
)
from modelops.controller.quiet import Digest
from modelops.controller.sources import (
    Endpoint,
    SignalTask,
    SourceError,
    choose_version,
    counts_matrix,
    fetch_holdout_metrics,
    fetch_profile,
    one_per_pod,
    query_prometheus,
    ready_endpoints,
    scrape_pods,
)
from modelops.controller.watched import Watched
from modelops.controller.window import SeriesKey
from modelops.drift import (
    DEFAULT_THRESHOLDS,
    InsufficientSamplesError,
    Profile,
    ProfileError,
    compute_drift,
)
from modelops.resources import Owner, TrainingRequest, build_job, job_name, service_name
from modelops.resources import labels as label_keys
from modelops.resources.job import CONTAINER as TRAINER
from modelops.resources.names import label_value

KIND: Final = "DriftPolicy"
REASON_ANNOTATION: Final = "modelops.dev/retraining-reason"
"""On a retraining Job: what started it (RetrainingStarted for input drift, PredictionDrift,
PerformanceDegraded or Scheduled)."""
CAUSES: Final = {
    "Performance": reasons.PERFORMANCE_DEGRADED,
    "PredictionDrift": reasons.PREDICTION_DRIFT,
    "InputDrift": reasons.DRIFT_FOUND,
}
"""A breached signal and the trigger it records, in the order that names a Job's cause."""
DUE_MARGIN: Final = 0.01
"""Seconds past its due time a policy is ticked (timers of the event loop may fire early)."""


def policy_key(body: Mapping[str, Any]) -> str:
    """What the operator keeps of a policy is keyed by this (the uid: a re-created policy
    starts afresh)."""
    meta = body["metadata"]
    return f"{meta.get('namespace')}/{meta.get('name')}/{meta.get('uid')}"


def read_status(body: dict[str, Any]) -> DriftPolicyStatus:
    """The stored status; unreadable parts are dropped rather than failing the tick."""
    try:
        return DriftPolicyStatus.model_validate(body.get("status") or {})
    except ValidationError:
        return DriftPolicyStatus()


def dump_status(status: DriftPolicyStatus) -> dict[str, Any]:
    return status.model_dump(by_alias=True, mode="json", exclude_none=True)


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns the stored ``old`` into ``new``: ``new`` plus a
    null for every key of ``old`` that ``new`` no longer has, in nested objects too (a merge
    patch leaves a key it does not name as it was, so a new ``lastRetraining`` would otherwise
    keep the previous one's completionTime, and its empty metrics would merge into the previous
    candidate's). Lists are replaced whole, as the merge patch does."""
    patch = dict(new)
    for key, value in old.items():
        if key not in new:
            patch[key] = None
        elif isinstance(value, dict) and isinstance(new[key], dict):
            patch[key] = status_patch(value, new[key])
    return patch


class Tick:
    """One timer tick of one policy: the status being built and the Events to post."""

    def __init__(
        self,
        ctx: Context,
        body: dict[str, Any],
        models: Watched[dict[str, Any]] | None = None,
        slices: Watched[tuple[Endpoint, ...]] | None = None,
    ) -> None:
        self.ctx = ctx
        self.models = models
        """The watched ModelDeployments (None: read each with a GET)."""
        self.slices = slices
        """The ready endpoints of the watched EndpointSlices, by Service (None: LIST the slices
        at each evaluation)."""
        self.body = body
        self.meta = body["metadata"]
        self.namespace: str = self.meta["namespace"]
        self.name: str = self.meta["name"]
        self.generation = int(self.meta.get("generation") or 0)
        self.owner = Owner.of(body)
        self.key = policy_key(body)
        self.previous = read_status(body)
        self.status = read_status(body)  # validating again is cheaper than a deep copy
        self.status.observed_generation = self.generation
        counted = ctx.memory.streak(self.key)
        if counted is not None:  # a streak this run counted but has not written yet
            self.status.consecutive_breaches = counted
        self.streak_before = self.status.consecutive_breaches
        self.streak_cap: int | None = None
        """The trigger's consecutiveEvaluations, once the spec is read: a longer streak decides
        nothing new (``reporting``)."""
        self.now = utcnow()
        self.events: list[tuple[str, str, str]] = []
        self.started = False
        """Whether this tick started (or adopted) a retraining Job: at most one per tick."""

    # --- helpers ---------------------------------------------------------------------------

    def condition(self, type_: str, status: ConditionStatus, reason: str, message: str) -> None:
        self.status.conditions = set_condition(
            self.status.conditions,
            type_,
            status,
            reason,
            message,
            observed_generation=self.generation,
            now=self.now,
        )

    def event(self, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    def condition_with_event(
        self, type_: str, status: ConditionStatus, reason: str, message: str, event_type: str
    ) -> None:
        """Set a condition; post an Event only when its status or reason changes."""
        before = find_condition(self.status.conditions, type_)
        self.condition(type_, status, reason, message)
        if before is None or (before.status, before.reason) != (status, reason):
            self.event(event_type, reason, message)

    def write(self) -> None:
        """Patch status when a decision changed or the scores are due for a report (see
        ``reporting``); then post the Events."""
        if self.status == self.previous:  # most ticks: nothing was due (no dumps to compare)
            self._post_events()
            return
        self.ctx.memory.keep_streak(self.key, self.status.consecutive_breaches)
        new, old = dump_status(self.status), dump_status(self.previous)
        report_every = reporting.report_period(
            timedelta(seconds=self.ctx.settings.status_report_seconds), self.key
        )
        last_written = self.previous.last_evaluation_time
        if reporting.needs_write(
            old, new, last_written, self.now, report_every, streak_cap=self.streak_cap
        ):
            try:
                self.ctx.kube.patch_status(
                    DRIFT_POLICIES, self.namespace, self.name, status_patch(old, new)
                )
            except NotFoundError:
                raise PolicyGoneError(f"DriftPolicy {self.namespace}/{self.name} is gone") from None
        self._post_events()

    def _post_events(self) -> None:
        for type_, reason, message in self.events:
            post_event(self.body, type_, reason, message)


def is_quiet(ctx: Context, body: Mapping[str, Any]) -> bool:
    """Whether a tick of the policy now has nothing to do, as the digest an earlier tick left
    for the same resourceVersion says (see ``quiet``); no parsing, cheap enough for the event
    loop."""
    key = policy_key(body)
    digest = ctx.memory.digest(key)
    version = body["metadata"].get("resourceVersion")
    return (
        digest is not None
        and bool(version)
        and digest.resource_version == version
        and digest.is_quiet(utcnow(), ctx.memory.evaluated(key))
    )


def next_tick_in(ctx: Context, key: str) -> float | None:
    """Seconds until a tick of the policy has work, as the digest its last tick left says (None:
    it cannot say: the policy follows a Job, or its spec was invalid; tick it after the period).

    A little late rather than early: a tick before the due time finds nothing to do."""
    digest = ctx.memory.digest(key)
    if digest is None:
        return None
    now = utcnow()
    due = digest.next_work(now, ctx.memory.evaluated(key))
    if due is None:
        return None
    seconds = (due - now).total_seconds()
    return seconds + DUE_MARGIN if seconds > 0 else None


class PolicyGoneError(Exception):
    """The policy's status could not be written: it no longer exists (its DELETED event may
    never come: a watch that re-lists after a long disconnection does not report deletions)."""


def tick(
    ctx: Context,
    body: dict[str, Any],
    models: Watched[dict[str, Any]] | None = None,
    slices: Watched[tuple[Endpoint, ...]] | None = None,
) -> bool:
    """Run one tick of a DriftPolicy (see the module docstring); a quiet one (``is_quiet``)
    returns at once and is not counted as a reconciliation. False: the policy is gone."""
    try:
        _tick(ctx, body, models, slices)
    except PolicyGoneError:
        return False
    return True


def _tick(
    ctx: Context,
    body: dict[str, Any],
    models: Watched[dict[str, Any]] | None,
    slices: Watched[tuple[Endpoint, ...]] | None,
) -> None:
    if is_quiet(ctx, body):
        return
    version = str(body["metadata"].get("resourceVersion") or "")
    with ctx.metrics.reconciling(KIND):
        run = Tick(ctx, body, models, slices)
        key = run.key
        try:
            spec = DriftPolicySpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            message = describe_validation_error(exc)
            run.condition_with_event(
                reasons.DRIFT_DETECTED, "Unknown", reasons.INVALID_SPEC, message, "Warning"
            )
            run.write()
            return
        run.streak_cap = spec.trigger.consecutive_evaluations
        if version:
            ctx.memory.keep_digest(key, Digest.of(version, run.generation, spec, run.previous))
        follow_retraining(run, spec)
        run_schedule(run, spec)
        interval = parse_duration(spec.interval)
        if trigger.is_due(
            interval, run.now, run.previous.last_evaluation_time, run.ctx.memory.evaluated(key)
        ):
            run.ctx.memory.mark_evaluated(key, run.now)
            evaluate(run, spec, key)
        run.write()


def forget(ctx: Context, body: dict[str, Any]) -> None:
    """A policy was deleted: drop its memory and its gauges (its Jobs go with it: owner refs)."""
    key = policy_key(body)
    ctx.memory.forget(key)
    ctx.windows.forget(key)
    ctx.metrics.forget_policy(body["metadata"]["namespace"], body["metadata"]["name"])


# --- Evaluation -------------------------------------------------------------------------------


def evaluate(run: Tick, spec: DriftPolicySpec, key: str) -> None:
    """Measure drift over the window; update status and gauges; apply the trigger rule."""
    ctx = run.ctx
    md_name = spec.model_deployment_ref.name
    md = run.models.get(run.namespace, md_name) if run.models is not None else None
    if md is None:  # not watched yet, or absent: ask the server
        md = ctx.kube.get(MODEL_DEPLOYMENTS, run.namespace, md_name)
    if md is None:
        run.condition_with_event(
            reasons.SOURCE_READY,
            "False",
            reasons.MODEL_NOT_FOUND,
            f"ModelDeployment {md_name} does not exist.",
            "Warning",
        )
        return
    try:
        md_spec = ModelDeploymentSpec.model_validate(md.get("spec") or {})
    except ValidationError as exc:
        run.condition_with_event(
            reasons.SOURCE_READY,
            "False",
            reasons.MODEL_NOT_FOUND,
            f"ModelDeployment {md_name} has an invalid spec: {describe_validation_error(exc)}",
            "Warning",
        )
        return
    md_status = ModelDeploymentStatus.model_validate(md.get("status") or {})
    wanted_version = md_spec.model.version or md_status.model_version
    settings = ctx.settings
    try:
        endpoints = _endpoints(run, md_name)
        if spec.source.type == "prometheus":
            assert spec.source.url is not None  # the API type guarantees it
            window_text = spec.source.window or spec.interval
            by_version = query_prometheus(
                spec.source.url,
                md_name,
                wanted_version,
                run.namespace,
                window_text,
                timeout=settings.scrape_timeout_seconds,
                predictions=spec.prediction_drift is not None,
                feedback=_feedback_task(spec),
            )
            version = choose_version(by_version, wanted_version)
            window = by_version.get(version or "", {})
            detail = f"Prometheus at {spec.source.url}"
        else:
            scrape = scrape_pods(
                endpoints,
                md_name,
                timeout=settings.scrape_timeout_seconds,
                concurrency=settings.scrape_concurrency,
            )
            seen = {v for versions in scrape.pods.values() for v in versions}
            version = choose_version(seen, wanted_version)
            per_pod = {
                pod: versions.get(version or "", {}) for pod, versions in scrape.pods.items()
            }
            delta = ctx.windows.advance(key, version or "", run.now, per_pod, signals.SIGNED_KEYS)
            detail = scrape.describe()
            if delta is None:
                run.condition_with_event(
                    reasons.SOURCE_READY,
                    "True",
                    reasons.SOURCE_REACHABLE,
                    f"Scraped {detail}; recorded the baseline counters.",
                    "Normal",
                )
                return
            window = delta
    except SourceError as exc:
        run.condition_with_event(
            reasons.SOURCE_READY, "False", reasons.SOURCE_UNREACHABLE, str(exc), "Warning"
        )
        return
    profile = _profile(run, md_spec.model.uri, md_name, endpoints)
    if profile is None:
        return
    if spec.performance is not None:
        _remember_holdout(run, md_spec.model.uri, md_name, version, endpoints)
    run.condition_with_event(
        reasons.SOURCE_READY, "True", reasons.SOURCE_REACHABLE, f"Read {detail}.", "Normal"
    )
    judge(run, spec, profile, counts_matrix(profile, window), md_name, version, md, md_spec, window)


def _endpoints(run: Tick, md_name: str) -> list[Endpoint]:
    """The ready endpoints of the model's Service: from its watched EndpointSlices, else (no
    slice of the Service watched yet) from its listed ones; one per pod, sorted by pod."""
    service = service_name(md_name)
    watched = run.slices.all(run.namespace, service) if run.slices is not None else []
    if watched:
        return one_per_pod(endpoint for group in watched for endpoint in group)
    slices = run.ctx.kube.list(ENDPOINT_SLICES, run.namespace, {label_keys.SERVICE_NAME: service})
    return ready_endpoints(slices)


def _feedback_task(spec: DriftPolicySpec) -> SignalTask | None:
    """Which feedback counters the policy's performance metric needs (None: no performance)."""
    if spec.performance is None:
        return None
    if spec.performance.metric in CLASSIFICATION_LIVE_METRICS:
        return "classification"
    return "regression"


def _profile(run: Tick, uri: str, model: str, endpoints: list[Endpoint]) -> Profile | None:
    cached = run.ctx.memory.profile(run.key, uri)
    if cached is not None:
        return cached
    try:
        profile = fetch_profile(
            uri, model, endpoints, timeout=run.ctx.settings.scrape_timeout_seconds
        )
    except (ProfileError, SourceError) as exc:
        run.condition_with_event(
            reasons.SOURCE_READY, "False", reasons.PROFILE_UNAVAILABLE, str(exc), "Warning"
        )
        return None
    run.ctx.memory.keep_profile(run.key, uri, profile)
    return profile


def judge(
    run: Tick,
    spec: DriftPolicySpec,
    profile: Profile,
    counts: Any,
    md_name: str,
    version: str | None,
    md: dict[str, Any],
    md_spec: ModelDeploymentSpec,
    window: Mapping[SeriesKey, float] | None = None,
) -> None:
    """Score the window on every configured signal, record it, and apply the trigger rule.

    ``counts`` are the window's feature bins (``counts_matrix``), ``window`` all its series (for
    the prediction and feedback counters). An evaluation breaches when a signal that
    ``trigger.signals`` lists breaches; when none of those signals could be judged (too few
    rows), the streak of breaches stays as it was."""
    run.status.last_evaluation_time = run.now
    window = window or {}
    verdicts: dict[str, bool | None] = {
        "InputDrift": judge_input_drift(run, spec, profile, counts, md_name)
    }
    if spec.prediction_drift is not None:
        verdicts["PredictionDrift"] = judge_prediction_drift(run, spec, profile, window, md_name)
    else:
        _drop_signal(run, reasons.PREDICTION_DRIFT)
    if spec.performance is not None:
        verdicts["Performance"] = judge_performance(run, spec, profile, window, md_name, md_spec)
    else:
        _drop_signal(run, reasons.PERFORMANCE_DEGRADED)
    judged: dict[str, bool] = {}
    for signal in spec.trigger.signals:
        verdict = verdicts.get(signal)
        if verdict is not None:
            judged[signal] = verdict
    if not judged:
        return
    breached = [s for s in CAUSES if judged.get(s)]
    run.status.consecutive_breaches = run.streak_before + 1 if breached else 0
    if run.started:  # the schedule started a Job this tick: a new run of breaches begins
        run.status.consecutive_breaches = 0
        return
    cause = CAUSES[breached[0]] if breached else reasons.DRIFT_FOUND
    maybe_retrain(run, spec, version, md, md_spec, cause)


def _drop_signal(run: Tick, condition_type: str) -> None:
    """A signal the spec no longer configures leaves neither status nor condition behind."""
    if condition_type == reasons.PREDICTION_DRIFT:
        run.status.prediction_drift = None
    else:
        run.status.performance = None
    run.status.conditions = [c for c in run.status.conditions if c.type != condition_type]


def judge_input_drift(
    run: Tick, spec: DriftPolicySpec, profile: Profile, counts: Any, md_name: str
) -> bool | None:
    """Input drift of the window (None: too few rows, or the spec does not fit the profile)."""
    metrics: dict[str, float] = {
        m.type: m.threshold or DEFAULT_THRESHOLDS[m.type] for m in spec.metrics
    }
    overrides: dict[str, dict[str, float]] = {
        o.name: {m.type: m.threshold or DEFAULT_THRESHOLDS[m.type] for m in o.metrics}
        for o in (spec.features.overrides if spec.features else [])
    }
    include = spec.features.include if spec.features else None
    samples = int(counts.sum(axis=1).min()) if counts.size else 0
    try:
        report = compute_drift(
            profile,
            counts,
            metrics=metrics,
            feature_thresholds=overrides,
            features=include,
            min_samples=spec.min_samples,
        )
    except InsufficientSamplesError:
        run.status.samples = samples
        run.condition(
            reasons.DRIFT_DETECTED,
            "Unknown",
            reasons.INSUFFICIENT_SAMPLES,
            f"The window has {samples} rows; at least {spec.min_samples} are needed.",
        )
        return None
    except ValueError as exc:
        run.condition_with_event(
            reasons.DRIFT_DETECTED, "Unknown", reasons.INVALID_SPEC, str(exc), "Warning"
        )
        return None
    breached = report.breached_features
    needed = trigger.required_breaches(spec.trigger.min_breached_features, len(report.features))
    drifted = len(breached) >= needed
    run.status.samples = report.samples
    run.status.drifted_features = len(breached)
    run.status.features = [
        FeatureStatus(
            name=f.name,
            scores={m: round(s, 6) for m, s in f.scores.items()},
            breached=f.breached,
            breached_metrics=list(f.breached_metrics),
        )
        for f in report.features
    ]
    ctx = run.ctx
    ctx.metrics.set_drift(
        run.namespace, run.name, md_name, {f.name: f.scores for f in report.features}
    )
    ctx.metrics.drift_detected.labels(run.namespace, run.name).set(1 if drifted else 0)
    if drifted:
        shown = ", ".join(breached[:5]) + (", ..." if len(breached) > 5 else "")
        run.condition_with_event(
            reasons.DRIFT_DETECTED,
            "True",
            reasons.DRIFT_FOUND,
            f"{len(breached)} of {len(report.features)} features drifted ({shown}) in "
            f"{report.samples} rows; {needed} needed.",
            "Warning",
        )
    else:
        run.condition_with_event(
            reasons.DRIFT_DETECTED,
            "False",
            reasons.NO_DRIFT,
            f"{len(breached)} of {len(report.features)} features drifted in {report.samples} "
            f"rows; {needed} needed.",
            "Normal",
        )
    return drifted


def judge_prediction_drift(
    run: Tick,
    spec: DriftPolicySpec,
    profile: Profile,
    window: Mapping[SeriesKey, float],
    md_name: str,
) -> bool | None:
    """Drift of the served predictions against the profile's output entry (None: not judged)."""
    assert spec.prediction_drift is not None
    if profile.output is None:
        run.status.prediction_drift = None
        run.condition_with_event(
            reasons.PREDICTION_DRIFT,
            "Unknown",
            reasons.NO_OUTPUT_PROFILE,
            "The model's profile has no output entry (it was written before prediction drift "
            "existed): retrain or re-package the model to score its predictions.",
            "Warning",
        )
        return None
    counts = signals.prediction_counts(profile.output, window)
    thresholds: dict[str, float] = {
        m.type: m.threshold or DEFAULT_THRESHOLDS[m.type] for m in spec.prediction_drift.metrics
    }
    samples = round(float(counts.sum()))
    try:
        report = signals.score_predictions(profile, counts, thresholds, spec.min_samples)
    except InsufficientSamplesError:
        run.status.prediction_drift = PredictionDriftStatus(samples=samples)
        run.condition(
            reasons.PREDICTION_DRIFT,
            "Unknown",
            reasons.INSUFFICIENT_SAMPLES,
            f"The window has {samples} predictions; at least {spec.min_samples} are needed.",
        )
        return None
    [output] = report.features
    run.status.prediction_drift = PredictionDriftStatus(
        samples=report.samples,
        scores={m: round(v, 6) for m, v in output.scores.items()},
        breached_metrics=list(output.breached_metrics),
    )
    run.ctx.metrics.set_prediction_drift(run.namespace, run.name, md_name, output.scores)
    run.ctx.metrics.prediction_drift_detected.labels(run.namespace, run.name).set(
        1 if output.breached else 0
    )
    if output.breached:
        run.condition_with_event(
            reasons.PREDICTION_DRIFT,
            "True",
            reasons.PREDICTION_DRIFT_FOUND,
            f"The predictions drifted ({', '.join(output.breached_metrics)}) in "
            f"{report.samples} predictions.",
            "Warning",
        )
        return True
    run.condition_with_event(
        reasons.PREDICTION_DRIFT,
        "False",
        reasons.NO_PREDICTION_DRIFT,
        f"The predictions did not drift in {report.samples} predictions.",
        "Normal",
    )
    return False


def judge_performance(
    run: Tick,
    spec: DriftPolicySpec,
    profile: Profile,
    window: Mapping[SeriesKey, float],
    md_name: str,
    md_spec: ModelDeploymentSpec,
) -> bool | None:
    """The live metric over the window's feedback against the holdout (None: not judged)."""
    performance = spec.performance
    assert performance is not None
    metric = performance.metric
    classifier = (profile.output is not None and profile.output.kind == "categorical") or any(
        kind == signals.CONFUSION for kind, _ in window
    )
    classes = _classes(profile, window) if classifier else None
    feedback = signals.window_feedback(window, classes)
    samples = feedback.rows if feedback is not None else 0
    baseline = signals.holdout_baseline(metric, _holdout(run, md_spec.model.uri))
    status = PerformanceStatus(metric=metric, baseline=baseline, samples=samples)
    run.status.performance = status
    if baseline is not None:
        run.ctx.metrics.performance_baseline.labels(run.namespace, run.name, md_name, metric).set(
            baseline
        )
    if feedback is None or samples < performance.min_samples:
        run.condition(
            reasons.PERFORMANCE_DEGRADED,
            "Unknown",
            reasons.INSUFFICIENT_SAMPLES,
            f"The window has {samples} feedback rows; at least {performance.min_samples} are "
            "needed.",
        )
        return None
    try:
        value = signals.live_metric(metric, feedback)
    except ValueError as exc:
        run.condition_with_event(
            reasons.PERFORMANCE_DEGRADED,
            "Unknown",
            reasons.METRIC_NOT_APPLICABLE,
            str(exc),
            "Warning",
        )
        return None
    if value is None:
        run.condition(
            reasons.PERFORMANCE_DEGRADED,
            "Unknown",
            reasons.METRIC_UNDEFINED,
            f"{metric} is undefined on the window's {samples} feedback rows (a constant target).",
        )
        return None
    status.value = round(value, 6)
    run.ctx.metrics.performance_value.labels(run.namespace, run.name, md_name, metric).set(value)
    verdict = signals.judge_performance(
        metric,
        value,
        baseline,
        max_drop=performance.max_drop,
        minimum=performance.min,
        maximum=performance.max,
    )
    message = f"{verdict.message} ({samples} feedback rows)"
    run.ctx.metrics.performance_degraded.labels(run.namespace, run.name).set(
        1 if verdict.degraded else 0
    )
    if verdict.degraded:
        run.condition_with_event(
            reasons.PERFORMANCE_DEGRADED, "True", reasons.METRIC_DEGRADED, message, "Warning"
        )
    else:
        run.condition_with_event(
            reasons.PERFORMANCE_DEGRADED, "False", reasons.METRIC_HEALTHY, message, "Normal"
        )
    return verdict.degraded


def _classes(profile: Profile, window: Mapping[SeriesKey, float]) -> tuple[str, ...]:
    """The classes of the confusion matrix: the profile's output categories, else the labels
    the feedback names (a profile without an output entry)."""
    if profile.output is not None and profile.output.kind == "categorical":
        return profile.output.categories
    labels: set[str] = set()
    for kind, pair in window:
        if kind == signals.CONFUSION:
            actual, _, predicted = pair.partition(signals.SEPARATOR)
            labels.update((actual, predicted))
    return tuple(sorted(labels))


def _remember_holdout(
    run: Tick, uri: str, model: str, version: str | None, endpoints: list[Endpoint]
) -> None:
    """Read the serving model's holdout metrics once per model URI (a model directory is
    immutable): from the pods' model metadata, else metadata.json where the operator can read
    it. Not remembered when unavailable, so the next evaluation tries again."""
    if run.ctx.memory.holdout(run.key, uri) is not None:
        return
    try:
        metrics = fetch_holdout_metrics(
            uri, model, version, endpoints, timeout=run.ctx.settings.scrape_timeout_seconds
        )
    except SourceError:
        return
    run.ctx.memory.keep_holdout(run.key, uri, metrics)


def _holdout(run: Tick, uri: str) -> dict[str, float]:
    """The serving model's holdout metrics; those of the candidate this policy promoted when
    they could not be read; else none."""
    cached = run.ctx.memory.holdout(run.key, uri)
    if cached is not None:
        return cached
    last = run.status.last_retraining
    if last is not None and last.uri == uri and last.metrics:
        return dict(last.metrics)
    return {}


# --- The schedule ---------------------------------------------------------------------------------


def run_schedule(run: Tick, spec: DriftPolicySpec) -> None:
    """Start the scheduled retraining when a time is due; keep ``nextScheduledTime`` current."""
    retraining = spec.retraining
    if retraining is None or retraining.schedule is None:
        run.status.next_scheduled_time = None
        return
    since = trigger.schedule_since(
        run.status.last_scheduled_time,
        run.previous.next_scheduled_time,
        _parse_time(run.meta.get("creationTimestamp")),
        run.generation,
        run.now,
    )
    state = trigger.schedule_state(retraining.schedule, retraining.time_zone, run.now, since)
    run.status.next_scheduled_time = state.next_time
    if state.due is None:
        return
    md_name = spec.model_deployment_ref.name
    md = run.ctx.kube.get(MODEL_DEPLOYMENTS, run.namespace, md_name)
    md_spec = None
    if md is not None:
        try:
            md_spec = ModelDeploymentSpec.model_validate(md.get("spec") or {})
        except ValidationError:
            md_spec = None
    if md is None or md_spec is None:
        # Not handled: the time stays due (and next) until the ModelDeployment is back.
        run.status.next_scheduled_time = state.due
        run.condition_with_event(
            reasons.RETRAINING,
            "False",
            reasons.MODEL_NOT_FOUND,
            f"Scheduled retraining waits: ModelDeployment {md_name} is missing or invalid.",
            "Warning",
        )
        return
    md_status = ModelDeploymentStatus.model_validate(md.get("status") or {})
    version = md_spec.model.version or md_status.model_version
    run.status.last_scheduled_time = state.due
    running = _running_jobs(run) if retraining.enabled else []
    decision = trigger.decide_scheduled(
        enabled=retraining.enabled,
        running=len(running),
        max_concurrent=retraining.max_concurrent,
        due=state.due,
        missed=state.missed,
    )
    if not decision.start:
        run.event("Normal", decision.reason, decision.message)
        return
    start_retraining(
        run, spec, retraining, version, md, md_spec, reasons.SCHEDULED, decision.message
    )


# --- Retraining --------------------------------------------------------------------------------


def _running_jobs(run: Tick) -> list[dict[str, Any]]:
    jobs = run.ctx.kube.list(JOBS, run.namespace, {label_keys.POLICY: label_value(run.name)})
    return [j for j in jobs if promotion.job_outcome(j).state == "running" and run.owner.owns(j)]


def maybe_retrain(
    run: Tick,
    spec: DriftPolicySpec,
    version: str | None,
    md: dict[str, Any],
    md_spec: ModelDeploymentSpec,
    cause: str = reasons.DRIFT_FOUND,
) -> None:
    """Apply the trigger gates and create (or adopt) the retraining Job; ``cause`` is the
    breached signal's reason (DriftFound, PredictionDrift or PerformanceDegraded)."""
    retraining = spec.retraining
    consecutive = run.status.consecutive_breaches
    needed = spec.trigger.consecutive_evaluations
    if consecutive < needed or run.started:
        return
    running_jobs: list[dict[str, Any]] = []
    candidate = None
    if retraining is not None and retraining.enabled:
        current = version or md_spec.model.version or "v0"
        last = run.status.last_retraining
        candidate = trigger.next_candidate_version(
            current, last.candidate_version if last else None
        )
        jobs = run.ctx.kube.list(JOBS, run.namespace, {label_keys.POLICY: label_value(run.name)})
        name = job_name(run.name, run.owner.uid, candidate)
        existing = next((j for j in jobs if j["metadata"]["name"] == name), None)
        if existing is not None and run.owner.owns(existing):
            _record_started(run, name, candidate, adopted=True, cause=cause)
            return
        running_jobs = [
            j for j in jobs if promotion.job_outcome(j).state == "running" and run.owner.owns(j)
        ]
    decision = trigger.decide_trigger(
        consecutive=consecutive,
        needed=needed,
        enabled=retraining is not None and retraining.enabled,
        now=run.now,
        last_trigger=run.status.last_trigger_time,
        cooldown=parse_duration(retraining.cooldown) if retraining else timedelta(0),
        running=len(running_jobs),
        max_concurrent=retraining.max_concurrent if retraining else 1,
    )
    if decision is None:
        return
    if not decision.start or retraining is None or candidate is None:
        run.condition_with_event(
            reasons.RETRAINING,
            "False" if not is_condition_true(run.status.conditions, reasons.RETRAINING) else "True",
            decision.reason,
            decision.message,
            "Normal",
        )
        return
    start_retraining(run, spec, retraining, version, md, md_spec, cause, decision.message)


def start_retraining(
    run: Tick,
    spec: DriftPolicySpec,
    retraining: Retraining,
    version: str | None,
    md: dict[str, Any],
    md_spec: ModelDeploymentSpec,
    cause: str,
    why: str,
) -> None:
    """Create (or adopt, on a 409) the Job that trains the next candidate of ``version``."""
    assert retraining.data_uri is not None
    assert retraining.output_uri is not None
    current = version or md_spec.model.version or "v0"
    last = run.status.last_retraining
    candidate = trigger.next_candidate_version(current, last.candidate_version if last else None)
    request = TrainingRequest(
        model_deployment=md["metadata"]["name"],
        candidate_version=candidate,
        base_model_uri=md_spec.model.uri,
        data_uri=retraining.data_uri,
        output_uri=retraining.output_uri,
        image=md_spec.image,
        backoff_limit=retraining.backoff_limit,
        active_deadline_seconds=retraining.active_deadline_seconds,
        resources=(
            retraining.resources.model_dump(by_alias=True, exclude_none=True)
            if retraining.resources
            else None
        ),
        job_template=dict(retraining.job_template) if retraining.job_template else None,
        storage=spec.storage or md_spec.storage,
        fairness=spec.promotion.fairness,
        reason=reasons.DRIFT_DETECTED if cause == reasons.DRIFT_FOUND else cause,
        evaluation_time=run.now,
    )
    job = build_job(run.owner, request, run.ctx.defaults)
    job["metadata"].setdefault("annotations", {})[REASON_ANNOTATION] = _start_reason(cause)
    name = job["metadata"]["name"]
    try:
        run.ctx.kube.create(JOBS, run.namespace, job)
    except ConflictError:
        live = run.ctx.kube.get(JOBS, run.namespace, name)
        if live is None or not run.owner.owns(live):
            run.condition_with_event(
                reasons.RETRAINING,
                "False",
                reasons.NAME_CONFLICT,
                f"Job {name} exists and does not belong to this policy.",
                "Warning",
            )
            return
        _record_started(run, name, candidate, adopted=True, cause=cause)
        return
    run.ctx.metrics.retraining_jobs.labels(run.namespace, run.name, "started").inc()
    _record_started(run, name, candidate, adopted=False, why=why, cause=cause)


def _start_reason(cause: str) -> str:
    """lastRetraining.reason of a running Job: RetrainingStarted for input drift (as before
    #14), else what started it (PredictionDrift, PerformanceDegraded, Scheduled)."""
    return reasons.RETRAINING_STARTED if cause == reasons.DRIFT_FOUND else cause


def _record_started(
    run: Tick,
    name: str,
    candidate: str,
    *,
    adopted: bool,
    why: str = "",
    cause: str = reasons.DRIFT_FOUND,
) -> None:
    run.started = True
    previous = run.status.last_retraining
    if (
        previous is not None
        and previous.result == "Running"
        and previous.job not in (name, *run.status.superseded_jobs)
    ):
        run.status.superseded_jobs.append(previous.job)
    run.status.last_retraining = RetrainingStatus(
        job=name,
        candidate_version=candidate,
        start_time=run.now,
        result="Running",
        reason=_start_reason(cause),
        message=f"Training candidate {candidate}.",
    )
    run.status.last_trigger_time = run.now
    run.status.consecutive_breaches = 0
    verb = "Adopted the existing" if adopted else "Started"
    message = f"{verb} retraining Job {name} for candidate {candidate}. {why}".strip()
    run.condition(reasons.RETRAINING, "True", reasons.RETRAINING_STARTED, message)
    run.event("Normal", reasons.RETRAINING_STARTED, message)


# --- Following a retraining -------------------------------------------------------------------


def follow_retraining(run: Tick, spec: DriftPolicySpec) -> None:
    """Advance the last retraining: Job outcome, approval, rollout of a promoted version; and
    see the Jobs it superseded to their end."""
    _follow_superseded(run)
    last = run.status.last_retraining
    if last is None:
        return
    if last.result == "Running":
        _follow_job(run, spec, last)
    elif last.result == "AwaitingApproval":
        _follow_approval(run, spec, last)
    elif last.result == "Promoted" and last.reason == reasons.CANDIDATE_PROMOTED:
        _follow_rollout(run, last)


def _finish(
    run: Tick, last: RetrainingStatus, result: str, reason: str, message: str, event_type: str
) -> None:
    last.result = result  # type: ignore[assignment]
    last.reason = reason
    last.message = message
    run.event(event_type, reason, message)


def _follow_superseded(run: Tick) -> None:
    """Report how each superseded Job ended (one Event, the Job counter) and stop following it.
    Its candidate is not judged: the retraining started after it is the one that decides."""
    still_running = []
    for name in run.status.superseded_jobs:
        job = run.ctx.kube.get(JOBS, run.namespace, name)
        outcome = promotion.job_outcome(job) if job is not None else None
        if outcome is not None and outcome.state == "running":
            still_running.append(name)
            continue
        if outcome is None or outcome.state == "failed":
            reason, message = (
                (reasons.RETRAINING_FAILED, f"Job {name} disappeared.")
                if outcome is None
                else _job_failure(run, name, outcome)
            )
            run.event("Warning", reason, message)
            run.ctx.metrics.retraining_jobs.labels(run.namespace, run.name, "failed").inc()
            continue
        run.ctx.metrics.retraining_jobs.labels(run.namespace, run.name, "succeeded").inc()
        result = _job_result(run, name)[1]
        trained = f"trained candidate {result.version} ({result.uri})" if result else "succeeded"
        latest = run.status.last_retraining
        run.event(
            "Normal",
            reasons.RETRAINING_SUPERSEDED,
            f"Job {name} {trained}; it is not judged: the later Job "
            f"{latest.job if latest else '(gone)'} decides.",
        )
    run.status.superseded_jobs = still_running


def _job_result(run: Tick, name: str) -> tuple[promotion.Termination | None, TrainingResult | None]:
    """The trainer's termination and the result it wrote there, of Job ``name``'s pods."""
    pods = run.ctx.kube.list(PODS, run.namespace, {label_keys.JOB_NAME: name})
    termination = promotion.trainer_termination(pods, TRAINER)
    result = promotion.parse_result(termination.message) if termination else None
    return termination, result


def _job_failure(run: Tick, name: str, outcome: promotion.JobOutcome) -> tuple[str, str]:
    """The reason (DataQualityGateFailed or RetrainingFailed) and message of a failed Job."""
    termination, result = _job_result(run, name)
    gate = (result is not None and result.reason == reasons.DATA_QUALITY_GATE_FAILED) or (
        termination is not None and termination.exit_code == promotion.EXIT_DATA_QUALITY
    )
    reason = reasons.DATA_QUALITY_GATE_FAILED if gate else reasons.RETRAINING_FAILED
    detail = (result.message if result else "") or outcome.message or outcome.reason
    return reason, f"Job {name} failed: {detail}"


def _follow_job(run: Tick, spec: DriftPolicySpec, last: RetrainingStatus) -> None:
    kube = run.ctx.kube
    job = kube.get(JOBS, run.namespace, last.job)
    if job is None:
        last.completion_time = run.now
        _finish(
            run,
            last,
            "Failed",
            reasons.RETRAINING_FAILED,
            f"Job {last.job} disappeared.",
            "Warning",
        )
        run.condition(reasons.RETRAINING, "False", reasons.RETRAINING_FAILED, last.message)
        run.ctx.metrics.retraining_jobs.labels(run.namespace, run.name, "failed").inc()
        return
    outcome = promotion.job_outcome(job)
    if outcome.state == "running":
        return
    last.completion_time = _parse_time(outcome.completion_time) or run.now
    if outcome.state == "failed":
        reason, message = _job_failure(run, last.job, outcome)
        _finish(run, last, "Failed", reason, message, "Warning")
        run.condition(reasons.RETRAINING, "False", reason, message)
        run.ctx.metrics.retraining_jobs.labels(run.namespace, run.name, "failed").inc()
        return
    run.ctx.metrics.retraining_jobs.labels(run.namespace, run.name, "succeeded").inc()
    termination, result = _job_result(run, last.job)
    if result is None or not result.succeeded or not result.uri:
        message = (
            f"Job {last.job} succeeded, but its termination message holds no usable result"
            + (f" ({result.reason}: {result.message})" if result else "")
            + "."
        )
        _finish(run, last, "Failed", reasons.RESULT_UNREADABLE, message, "Warning")
        run.condition(reasons.RETRAINING, "False", reasons.RESULT_UNREADABLE, message)
        return
    last.uri = result.uri
    last.metrics = dict(result.metrics)
    last.baseline = dict(result.baseline)
    fairness = fairness_gate.read_report(termination.message if termination else "")
    last.fairness = fairness_gate.storable(fairness.report) if fairness.report else None
    run.condition(
        reasons.RETRAINING,
        "False",
        reasons.RETRAINING_SUCCEEDED,
        f"Job {last.job} trained candidate {result.version}.",
    )
    _decide(run, spec, last, result, fairness)


def _decide(
    run: Tick,
    spec: DriftPolicySpec,
    last: RetrainingStatus,
    result: TrainingResult,
    fairness: fairness_gate.ReadReport,
) -> None:
    passed = _fairness_passes(run, spec, last, fairness)
    if passed is None:
        return
    approved = (run.meta.get("annotations") or {}).get(APPROVE_ANNOTATION)
    decision = promotion.decide_promotion(
        mode=spec.promotion.mode,
        metric=spec.promotion.metric,
        min_improvement=spec.promotion.min_improvement,
        result=result.model_copy(update={"version": last.candidate_version}),
        approved_version=approved,
    )
    message = f"{decision.message} {passed}".strip()
    if decision.action == "promote":
        _promote(run, spec, last, message)
    elif decision.action == "await":
        _finish(run, last, "AwaitingApproval", decision.reason, message, "Normal")
        run.condition(reasons.PROMOTION_PENDING, "True", decision.reason, message)
    elif decision.action == "record":
        _finish(run, last, "Succeeded", decision.reason, message, "Normal")
    else:
        _finish(run, last, "Rejected", decision.reason, message, "Normal")


def _fairness_passes(
    run: Tick, spec: DriftPolicySpec, last: RetrainingStatus, fairness: fairness_gate.ReadReport
) -> str | None:
    """Ask the fairness gate, in every mode, before any promotion: None when it blocked (the
    candidate is Rejected, PromotionPending=False, one Warning Event, the blocked counter), else
    the gate's note for the decision's message ("" without a gate)."""
    gate = spec.promotion.fairness
    if gate is None:
        return ""
    verdict = fairness_gate.judge(gate, fairness, last.candidate_version)
    if verdict.passed:
        return verdict.message
    _finish(run, last, "Rejected", verdict.reason, verdict.message, "Warning")
    run.condition(reasons.PROMOTION_PENDING, "False", verdict.reason, verdict.message)
    if run.ctx.memory.first_block(policy_key(run.body), last.candidate_version):
        md_name = spec.model_deployment_ref.name
        run.ctx.metrics.promotions_blocked.labels(run.namespace, md_name, verdict.reason).inc()
    return None


def _follow_approval(run: Tick, spec: DriftPolicySpec, last: RetrainingStatus) -> None:
    approved = (run.meta.get("annotations") or {}).get(APPROVE_ANNOTATION)
    if approved == last.candidate_version:
        # The gate again, with the policy as it is now and the report kept in status: an
        # approval never promotes what the gate refuses.
        stored = fairness_gate.ReadReport(last.fairness)
        passed = _fairness_passes(run, spec, last, stored)
        if passed is not None:
            _promote(
                run, spec, last, f"Promoted {last.candidate_version}: approved. {passed}".strip()
            )
        return
    timeout = spec.promotion.approval_timeout
    since = last.completion_time or last.start_time
    if timeout and since and run.now - since > parse_duration(timeout):
        message = f"Candidate {last.candidate_version} was not approved within {timeout}."
        _finish(run, last, "Rejected", reasons.APPROVAL_EXPIRED, message, "Normal")
        run.condition(reasons.PROMOTION_PENDING, "False", reasons.APPROVAL_EXPIRED, message)


def _promote(run: Tick, spec: DriftPolicySpec, last: RetrainingStatus, message: str) -> None:
    """Point the ModelDeployment at the candidate: history first, then spec (which rolls it)."""
    kube = run.ctx.kube
    md_name = spec.model_deployment_ref.name
    md = kube.get(MODEL_DEPLOYMENTS, run.namespace, md_name)
    if md is None:
        _finish(
            run,
            last,
            "Rejected",
            reasons.MODEL_NOT_FOUND,
            f"ModelDeployment {md_name} is gone.",
            "Warning",
        )
        return
    _switch_model(run, md, last.uri, last.candidate_version, reasons.CANDIDATE_PROMOTED, message)
    _finish(run, last, "Promoted", reasons.CANDIDATE_PROMOTED, message, "Normal")
    if find_condition(run.status.conditions, reasons.PROMOTION_PENDING) is not None:
        run.condition(reasons.PROMOTION_PENDING, "False", reasons.CANDIDATE_PROMOTED, message)
    run.ctx.metrics.promotions.labels(run.namespace, md_name, spec.promotion.mode).inc()


def _switch_model(
    run: Tick, md: dict[str, Any], uri: str, version: str, reason: str, message: str
) -> None:
    kube = run.ctx.kube
    meta = md["metadata"]
    status = ModelDeploymentStatus.model_validate(md.get("status") or {})
    history = [*status.history, HistoryEntry(version=version, uri=uri, time=run.now, reason=reason)]
    entries = [h.model_dump(by_alias=True, mode="json") for h in history[-HISTORY_LIMIT:]]
    kube.patch_status(MODEL_DEPLOYMENTS, meta["namespace"], meta["name"], {"history": entries})
    kube.patch(
        MODEL_DEPLOYMENTS,
        meta["namespace"],
        meta["name"],
        {
            "spec": {
                "model": {
                    "uri": uri,
                    "version": version,
                    "format": "skops",
                    "allowUnsafePickle": None,
                }
            }
        },
    )
    post_event(md, "Normal", reason, message)


def _follow_rollout(run: Tick, last: RetrainingStatus) -> None:
    """Confirm the promoted version became Ready, or roll back after the progress deadline."""
    kube = run.ctx.kube
    refs = [run.body.get("spec", {}).get("modelDeploymentRef", {}).get("name", "")]
    md = kube.get(MODEL_DEPLOYMENTS, run.namespace, refs[0])
    if md is None:
        return
    status = ModelDeploymentStatus.model_validate(md.get("status") or {})
    generation = int(md["metadata"].get("generation") or 0)
    serving = (md.get("spec") or {}).get("model", {}).get("version")
    if serving != last.candidate_version:
        return  # someone changed the model since; nothing of ours to confirm or roll back
    ready = is_condition_true(status.conditions, reasons.READY)
    if ready and status.observed_generation == generation and status.model_version == serving:
        message = f"Candidate {serving} is serving and Ready."
        last.reason = reasons.ROLLOUT_COMPLETE
        last.message = message
        run.event("Normal", reasons.ROLLOUT_COMPLETE, message)
        return
    promoted_at = next((h.time for h in reversed(status.history) if h.version == serving), None)
    degraded = find_condition(status.conditions, reasons.DEGRADED)
    deadline = timedelta(seconds=run.ctx.settings.progress_deadline_seconds)
    stuck = (
        degraded is not None
        and degraded.status == "True"
        and degraded.reason == reasons.PROGRESS_DEADLINE_EXCEEDED
    )
    late = promoted_at is not None and run.now - promoted_at > deadline
    if not (stuck or late):
        return
    previous = _previous_version(status.history, serving)
    if previous is None:
        return
    message = (
        f"Rolled back to {previous.version}: candidate {serving} did not become Ready within "
        f"{deadline.total_seconds():g}s."
    )
    _switch_model(run, md, previous.uri, previous.version, reasons.ROLLED_BACK, message)
    _finish(run, last, "RolledBack", reasons.ROLLED_BACK, message, "Warning")


def _previous_version(history: list[HistoryEntry], current: str) -> HistoryEntry | None:
    for entry in reversed(history):
        if entry.version != current and entry.version:
            return entry
    return None


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
