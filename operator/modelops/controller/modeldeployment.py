"""ModelDeployment: one idempotent reconcile for create, update, resume and resync.

Reads the spec, builds the Deployment and Service with the pure builders, writes only what
differs (a hash of the desired manifest, kept in an annotation of each child, decides), and
patches status only when it changed. Creating a ModelDeployment costs three writes (Deployment,
Service, status); a reconcile when nothing changed costs none.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pydantic import ValidationError

from modelops.api import (
    HISTORY_LIMIT,
    HistoryEntry,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    describe_validation_error,
    find_condition,
    is_condition_true,
    reasons,
    set_condition,
    utcnow,
)
from modelops.api.conditions import ConditionStatus
from modelops.api.modeldeployment import Phase
from modelops.controller.context import Context
from modelops.controller.kube import (
    DEPLOYMENTS,
    MODEL_DEPLOYMENTS,
    SERVICES,
    ConflictError,
    Kube,
    KubeError,
    ResourceType,
    post_event,
)
from modelops.controller.watched import Watched
from modelops.resources import Owner, build_deployment, build_service, service_url
from modelops.resources import labels as label_keys

KIND: Final = "ModelDeployment"
SPEC_HASH: Final = "modelops.dev/spec-hash"
#: Condition reason when the Deployment or Service could not be read or written.
RECONCILE_FAILED: Final = "ReconcileFailed"


# --- Pure parts ------------------------------------------------------------------------------


def manifest_hash(manifest: dict[str, Any]) -> str:
    """A stable digest of a manifest's labels and spec (what a reconcile owns)."""
    owned = {"labels": manifest["metadata"].get("labels"), "spec": manifest["spec"]}
    text = json.dumps(owned, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def with_hash(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` carrying its own hash annotation."""
    meta = manifest["metadata"]
    meta["annotations"] = {**meta.get("annotations", {}), SPEC_HASH: manifest_hash(manifest)}
    return manifest


def update_patch(desired: dict[str, Any]) -> dict[str, Any]:
    """A merge patch turning the live object into ``desired``.

    Merge patches replace lists but merge dicts, so optional keys the desired object leaves out
    are set to None (deleted) explicitly.
    """
    patch = {
        "metadata": {
            "labels": desired["metadata"]["labels"],
            "annotations": desired["metadata"]["annotations"],
            "ownerReferences": desired["metadata"]["ownerReferences"],
        },
        "spec": json.loads(json.dumps(desired["spec"])),
    }
    if desired["kind"] == "Deployment":
        template = patch["spec"]["template"]
        for key in ("nodeSelector", "tolerations"):
            template["spec"].setdefault(key, None)
        template["metadata"]["labels"].setdefault(label_keys.MODEL_VERSION, None)
    return patch


def needs_update(live: dict[str, Any], desired: dict[str, Any], owner: Owner) -> bool:
    """Whether the live child differs from the desired one (hash) or lost its owner."""
    live_hash = (live.get("metadata", {}).get("annotations") or {}).get(SPEC_HASH)
    return live_hash != desired["metadata"]["annotations"][SPEC_HASH] or not owner.owns(live)


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int) else 0


@dataclass(frozen=True)
class Rollout:
    """What a Deployment's status says about its rollout (missing counts are zero, as the API
    server omits them)."""

    generation: int
    observed_generation: int
    wanted: int
    """``spec.replicas`` of the Deployment: what its controller is driving towards."""
    updated: int
    """Pods of the new ReplicaSet, ready or not."""
    total: int
    """Pods of every ReplicaSet, old and new (``status.replicas``)."""
    available: int
    """Available pods of every ReplicaSet, old and new."""
    stalled: bool
    """Progressing=False with ProgressDeadlineExceeded, for the generation it describes."""

    @classmethod
    def of(cls, deployment: dict[str, Any], desired_replicas: int) -> Rollout:
        """Read the counts; ``desired_replicas`` when the Deployment names no replicas."""
        status = deployment.get("status") or {}
        replicas = (deployment.get("spec") or {}).get("replicas")
        generation = _int(deployment.get("metadata", {}).get("generation"))
        observed = _int(status.get("observedGeneration"))
        return cls(
            generation=generation,
            observed_generation=observed,
            wanted=replicas if isinstance(replicas, int) else desired_replicas,
            updated=_int(status.get("updatedReplicas")),
            total=_int(status.get("replicas")),
            available=_int(status.get("availableReplicas")),
            stalled=observed >= generation
            and any(
                c.get("type") == "Progressing"
                and c.get("status") == "False"
                and c.get("reason") == reasons.PROGRESS_DEADLINE_EXCEEDED
                for c in status.get("conditions") or []
            ),
        )

    @property
    def observed(self) -> bool:
        """Whether the Deployment controller has seen the current spec (else the counts are
        about the previous one)."""
        return self.observed_generation >= self.generation

    @property
    def old(self) -> int:
        """Pods of old ReplicaSets still running."""
        return max(self.total - self.updated, 0)

    @property
    def complete(self) -> bool:
        """Every wanted pod is of the new ReplicaSet and available, and no old pod is left."""
        return (
            self.observed
            and self.updated >= self.wanted
            and self.total <= self.wanted
            and self.available >= self.wanted
        )

    def describe(self) -> str:
        """The counts, saying which pods are new and which are old."""
        if self.old == 0 and self.total > self.wanted:
            return f"scaling down to {self.wanted}, {self.total} {_pods(self.total)} running"
        text = f"{self.updated} of {self.wanted} {_pods(self.wanted)} updated"
        if self.old:
            text += f", {self.old} old still running"
        return f"{text}, {self.available} available"


def _pods(count: int) -> str:
    return "replica" if count == 1 else "replicas"


def rollout_conditions(
    desired_replicas: int, deployment: dict[str, Any] | None
) -> tuple[Phase, dict[str, tuple[ConditionStatus, str, str]]]:
    """The phase and the (status, reason, message) of Ready, Progressing and Degraded.

    Ready means the current spec is served in full: every wanted pod is of the new ReplicaSet
    and available, and the Deployment controller has observed the current generation. Mid-
    rollout, old pods still count in the Deployment's ready and available totals, so the
    message says how many are updated and how many are old.
    """
    if deployment is None:
        return "Pending", {
            reasons.READY: ("False", reasons.ROLLOUT_IN_PROGRESS, "Creating the Deployment."),
            reasons.PROGRESSING: ("True", reasons.DEPLOYMENT_CREATED, "Creating the Deployment."),
            reasons.DEGRADED: ("False", reasons.ROLLOUT_IN_PROGRESS, ""),
        }
    rollout = Rollout.of(deployment, desired_replicas)
    if rollout.stalled:
        message = f"The rollout did not progress within its deadline ({rollout.describe()})."
        return "Degraded", {
            reasons.READY: ("False", reasons.PROGRESS_DEADLINE_EXCEEDED, message),
            reasons.PROGRESSING: ("False", reasons.PROGRESS_DEADLINE_EXCEEDED, message),
            reasons.DEGRADED: ("True", reasons.PROGRESS_DEADLINE_EXCEEDED, message),
        }
    if rollout.complete:
        if rollout.wanted == 0:
            message = "Scaled to zero replicas."
            reason = reasons.SCALED_TO_ZERO
        else:
            message = f"All {rollout.wanted} {_pods(rollout.wanted)} are updated and available."
            reason = reasons.MINIMUM_REPLICAS_AVAILABLE
        return "Ready", {
            reasons.READY: ("True", reason, message),
            reasons.PROGRESSING: ("False", reasons.ROLLOUT_COMPLETE, message),
            reasons.DEGRADED: ("False", reasons.ROLLOUT_COMPLETE, ""),
        }
    if not rollout.observed and rollout.total > 0:
        # Counts of the previous generation's pods: say so rather than pass them off as new.
        message = (
            f"Waiting for the Deployment controller to observe generation {rollout.generation} "
            f"(it last observed {rollout.observed_generation}: {rollout.describe()})."
        )
    else:
        message = f"Rolling out: {rollout.describe()}."
    # The reason tells fewer available pods than wanted from old pods still serving in full.
    short = rollout.available < rollout.wanted
    reason = reasons.MINIMUM_REPLICAS_UNAVAILABLE if short else reasons.ROLLOUT_IN_PROGRESS
    return "Progressing", {
        reasons.READY: ("False", reason, message),
        reasons.PROGRESSING: ("True", reasons.ROLLOUT_IN_PROGRESS, message),
        reasons.DEGRADED: ("False", reasons.ROLLOUT_IN_PROGRESS, ""),
    }


def compute_status(
    name: str,
    namespace: str,
    generation: int,
    spec: ModelDeploymentSpec,
    deployment: dict[str, Any] | None,
    previous: ModelDeploymentStatus,
    now: datetime,
) -> ModelDeploymentStatus:
    """The status a ModelDeployment should have, given its spec and its Deployment."""
    phase, wanted = rollout_conditions(spec.replicas, deployment)
    conditions = list(previous.conditions)
    for type_, (status, reason, message) in wanted.items():
        conditions = set_condition(
            conditions,
            type_,
            status,
            reason,
            message,
            observed_generation=generation,
            now=now,
        )
    dep_status = (deployment or {}).get("status") or {}
    version = spec.model.version or ""
    history = list(previous.history)
    if not history or (history[-1].uri, history[-1].version) != (spec.model.uri, version):
        reason = "Created" if not history else "Updated"
        history.append(HistoryEntry(version=version, uri=spec.model.uri, time=now, reason=reason))
    return ModelDeploymentStatus(
        observed_generation=generation,
        phase=phase,
        replicas=_int(dep_status.get("replicas")),
        ready_replicas=_int(dep_status.get("readyReplicas")),
        selector=label_keys.selector(label_keys.selector_labels(name)),
        model_uri=spec.model.uri,
        model_version=spec.model.version or previous.model_version,
        url=service_url(name, namespace, spec.serving.port),
        conditions=conditions,
        history=history[-HISTORY_LIMIT:],
    )


def invalid_status(
    generation: int, message: str, previous: ModelDeploymentStatus, now: datetime
) -> ModelDeploymentStatus:
    """Status of a ModelDeployment whose spec cannot be served: Ready=False, InvalidSpec."""
    conditions = set_condition(
        previous.conditions,
        reasons.READY,
        "False",
        reasons.INVALID_SPEC,
        message,
        observed_generation=generation,
        now=now,
    )
    conditions = set_condition(
        conditions,
        reasons.DEGRADED,
        "True",
        reasons.INVALID_SPEC,
        message,
        observed_generation=generation,
        now=now,
    )
    return previous.model_copy(
        update={"observed_generation": generation, "phase": "Failed", "conditions": conditions}
    )


def failed_status(
    generation: int, message: str, previous: ModelDeploymentStatus, now: datetime
) -> ModelDeploymentStatus:
    """Status after the children could not be written: Progressing=False says what failed.

    Ready stays True when it was (the pods of the previous spec still serve); otherwise it
    carries the same message, so ``kubectl get``/``describe`` show why nothing happens.
    """
    conditions = set_condition(
        previous.conditions,
        reasons.PROGRESSING,
        "False",
        RECONCILE_FAILED,
        message,
        observed_generation=generation,
        now=now,
    )
    if not is_condition_true(previous.conditions, reasons.READY):
        conditions = set_condition(
            conditions,
            reasons.READY,
            "False",
            RECONCILE_FAILED,
            message,
            observed_generation=generation,
            now=now,
        )
    return previous.model_copy(
        update={"phase": previous.phase or "Pending", "conditions": conditions}
    )


def dump_status(status: ModelDeploymentStatus) -> dict[str, Any]:
    """Status as stored in the API (camelCase, JSON types, no empty optional fields)."""
    return status.model_dump(by_alias=True, mode="json", exclude_none=True)


def read_status(body: dict[str, Any]) -> ModelDeploymentStatus:
    """The stored status; unreadable parts are dropped rather than failing the reconcile."""
    raw = body.get("status") or {}
    try:
        return ModelDeploymentStatus.model_validate(raw)
    except ValidationError:
        return ModelDeploymentStatus()


# --- I/O -------------------------------------------------------------------------------------


def _ensure(
    kube: Kube,
    kind: ResourceType,
    desired: dict[str, Any],
    owner: Owner,
    *,
    fresh: bool,
    watched: Watched[dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], str | None]:
    """Make the child match ``desired``; returns it and what was done (None: nothing).

    The live child is read from ``watched`` (the operator's watch of such children) when it
    holds it, else with a GET, unless ``fresh`` (a first reconcile: it cannot exist yet). A
    watched copy a moment old can only cause a patch that changes nothing."""
    name = desired["metadata"]["name"]
    live = watched.get(owner.namespace, name) if watched is not None else None
    if live is None and not fresh:
        live = kube.get(kind, owner.namespace, name)
    if live is None:
        try:
            return kube.create(kind, owner.namespace, desired), "created"
        except ConflictError:
            live = kube.get(kind, owner.namespace, name)
            if live is None:
                raise
    if not owner.owns(live) and _controller_of(live) is not None:
        raise NameTakenError(
            f"{desired['kind']} {name} exists and belongs to {_controller_of(live)}"
        )
    if needs_update(live, desired, owner):
        return kube.patch(kind, owner.namespace, name, update_patch(desired)), "updated"
    return live, None


def _controller_of(obj: dict[str, Any]) -> str | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind')} {ref.get('name')}"
    return None


class NameTakenError(Exception):
    """A child's deterministic name is taken by an object another controller owns."""


def reconcile(
    ctx: Context,
    body: dict[str, Any],
    deployments: Watched[dict[str, Any]] | None = None,
    services: Watched[dict[str, Any]] | None = None,
) -> None:
    """Bring the Deployment, the Service and the status of one ModelDeployment up to date
    (the children as ``deployments`` and ``services`` hold them, if given: see ``watched``)."""
    with ctx.metrics.reconciling(KIND):
        _reconcile(ctx, body, deployments, services)


def _reconcile(
    ctx: Context,
    body: dict[str, Any],
    deployments: Watched[dict[str, Any]] | None,
    services: Watched[dict[str, Any]] | None,
) -> None:
    meta = body["metadata"]
    owner = Owner.of(body)
    generation = _int(meta.get("generation"))
    previous = read_status(body)
    now = utcnow()
    try:
        spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        message = describe_validation_error(exc)
        _write_status(ctx, body, invalid_status(generation, message, previous, now), previous)
        return
    fresh = previous.observed_generation is None
    desired_deployment = with_hash(build_deployment(owner, spec, ctx.defaults))
    desired_service = with_hash(build_service(owner, spec))
    try:
        deployment, dep_action = _ensure(
            ctx.kube, DEPLOYMENTS, desired_deployment, owner, fresh=fresh, watched=deployments
        )
        _ensure(ctx.kube, SERVICES, desired_service, owner, fresh=fresh, watched=services)
    except KubeError as exc:
        _report_failure(ctx, body, generation, exc, previous, now)
        raise  # the handler retries, and posts the Warning Event
    except NameTakenError as exc:
        status = previous.model_copy(
            update={
                "observed_generation": generation,
                "phase": "Failed",
                "conditions": set_condition(
                    previous.conditions,
                    reasons.READY,
                    "False",
                    reasons.NAME_CONFLICT,
                    str(exc),
                    observed_generation=generation,
                    now=now,
                ),
            }
        )
        _write_status(ctx, body, status, previous)
        return
    if dep_action == "created":
        post_event(
            body,
            "Normal",
            reasons.DEPLOYMENT_CREATED,
            f"Created Deployment {deployment['metadata']['name']}.",
        )
    elif dep_action == "updated":
        post_event(
            body,
            "Normal",
            reasons.DEPLOYMENT_UPDATED,
            f"Updated Deployment {deployment['metadata']['name']} for generation {generation}.",
        )
    status = compute_status(
        owner.name, owner.namespace, generation, spec, deployment, previous, now
    )
    _write_status(ctx, body, status, previous)


def _report_failure(
    ctx: Context,
    body: dict[str, Any],
    generation: int,
    error: KubeError,
    previous: ModelDeploymentStatus,
    now: datetime,
) -> None:
    """Write what failed into the conditions; if that write fails too (the API server may be
    the problem), the retry of the reconcile tries again."""
    message = f"Could not apply the Deployment and Service, retrying: {error}"[:1024]
    with contextlib.suppress(KubeError):
        status = failed_status(generation, message, previous, now)
        _write_status(ctx, body, status, previous, announce=False)


def forget(ctx: Context, body: dict[str, Any]) -> None:
    """A ModelDeployment is being deleted: drop its gauge (owner references remove children)."""
    meta = body["metadata"]
    ctx.metrics.forget_model(meta.get("namespace", ""), meta.get("name", ""))


def refresh_status(ctx: Context, deployment: dict[str, Any]) -> None:
    """Mirror a changed Deployment into its ModelDeployment's status (no write if unchanged)."""
    namespace = deployment["metadata"].get("namespace", "")
    owners = [
        ref
        for ref in deployment["metadata"].get("ownerReferences") or []
        if ref.get("kind") == KIND and ref.get("controller")
    ]
    if not owners:
        return
    body = ctx.kube.get(MODEL_DEPLOYMENTS, namespace, owners[0]["name"])
    if body is None or body["metadata"].get("uid") != owners[0].get("uid"):
        return
    previous = read_status(body)
    generation = _int(body["metadata"].get("generation"))
    if previous.observed_generation != generation:
        return  # a reconcile of the new generation is under way and writes the status itself
    try:
        spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
    except ValidationError:
        return
    status = compute_status(
        body["metadata"]["name"], namespace, generation, spec, deployment, previous, utcnow()
    )
    _write_status(ctx, body, status, previous)


def _write_status(
    ctx: Context,
    body: dict[str, Any],
    status: ModelDeploymentStatus,
    previous: ModelDeploymentStatus,
    *,
    announce: bool = True,
) -> None:
    meta = body["metadata"]
    ctx.metrics.set_model_ready(
        meta["namespace"], meta["name"], is_condition_true(status.conditions, reasons.READY)
    )
    new, old = dump_status(status), dump_status(previous)
    if new == old:
        return
    ctx.kube.patch_status(MODEL_DEPLOYMENTS, meta["namespace"], meta["name"], new)
    if announce:
        _announce(body, status, previous)


def _announce(
    body: dict[str, Any], status: ModelDeploymentStatus, previous: ModelDeploymentStatus
) -> None:
    """One Event when Ready flips (or its reason changes)."""
    ready = find_condition(status.conditions, reasons.READY)
    before = find_condition(previous.conditions, reasons.READY)
    if ready is None or (
        before is not None and (before.status, before.reason) == (ready.status, ready.reason)
    ):
        return
    kind = "Normal" if ready.status == "True" else "Warning"
    if ready.reason in (reasons.MINIMUM_REPLICAS_UNAVAILABLE, reasons.ROLLOUT_IN_PROGRESS):
        kind = "Normal"
    post_event(body, kind, ready.reason, ready.message or f"Ready is {ready.status}.")
