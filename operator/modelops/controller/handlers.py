"""Every Kopf decorator of the operator, in one module; each handler delegates in one line.

``register`` applies the decorators to a registry, so that intervals from the settings are
honoured (Kopf fixes timer intervals at decoration time) and tests can build a fresh operator.
Handlers are sync on purpose: Kopf runs them in its thread pool, so the blocking ``kubernetes``
client and the HTTP scrapes never block the event loop that serves the watch streams. The async
DriftPolicy event handler only hands each event to the scheduler, which runs the policies' ticks
on the same pool.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

import kopf

from modelops import API_GROUP, API_VERSION
from modelops.controller import driftpolicy, modeldeployment
from modelops.controller.context import Context
from modelops.controller.diffbase import LeanDiffBaseStorage
from modelops.controller.kube import MODEL_DEPLOYMENTS, USER_AGENT, Kube, KubeError, post_event
from modelops.controller.metrics import OperatorMetrics
from modelops.controller.scheduler import PolicyScheduler
from modelops.controller.settings import OperatorSettings
from modelops.controller.sources import Endpoint, ready_endpoints
from modelops.controller.watched import Key, Watched, lean
from modelops.resources import labels

MODEL_DEPLOYMENT = (API_GROUP, API_VERSION, "modeldeployments")
DRIFT_POLICY = (API_GROUP, API_VERSION, "driftpolicies")
DEPLOYMENT = ("apps", "v1", "deployments")
SERVICE = ("", "v1", "services")
ENDPOINT_SLICE = ("discovery.k8s.io", "v1", "endpointslices")
#: The labels of the serving Deployments and Services the operator creates (and the only ones
#: it watches); the EndpointSlice controller copies a Service's labels onto its slices.
SERVER_LABELS = {labels.MANAGED_BY: labels.MANAGER, labels.COMPONENT: "server"}
FINALIZER = f"{API_GROUP}/finalizer"
#: Retry delay after an API error (a transient 5xx, a timeout) instead of Kopf's default 60 s.
RETRY_DELAY = 5.0
#: Threads for the sync handlers (one per concurrently handled object at most), and as many
#: connections in the API client's pool, so that no thread waits for or discards one.
HANDLER_THREADS: Final = 32
#: DriftPolicy ticks running at once, so that the other handlers keep threads of their own.
TICKS_AT_ONCE: Final = HANDLER_THREADS // 2
#: Event reasons of a failed handler: the API said no (or did not answer), or anything else.
API_ERROR: Final = "APIError"
HANDLER_FAILED: Final = "HandlerFailed"


def _ctx(memo: Any) -> Context:
    ctx: Context = memo.ctx
    return ctx


def _retry_on_api_errors(error: KubeError) -> kopf.TemporaryError:
    return kopf.TemporaryError(str(error), delay=RETRY_DELAY)


class FailureEvents:
    """A Warning Event on the object when one of its handlers fails, once per distinct failure.

    Kopf logs a failed handler, but posts no log line as an Event unless
    ``settings.posting.loggers`` is set, and then as type ``Error``, reason ``Logging``, one per
    retry (every 5 s while an API error lasts). Here the type is Warning, the reason says what
    kind of failure it was, and the same failure is posted again only after a success.
    """

    def __init__(self, limit: int = 4096) -> None:
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], str] = {}
        self._limit = limit

    def failed(self, body: Mapping[str, Any], handler: str, reason: str, message: str) -> None:
        """Post ``message`` unless it is what this handler of this object last posted."""
        key = (_uid(body), handler)
        with self._lock:
            if self._last.get(key) == message:
                return
            if len(self._last) >= self._limit:  # objects deleted while failing
                self._last.clear()
            self._last[key] = message
        post_event(body, "Warning", reason, message)

    def succeeded(self, body: Mapping[str, Any], handler: str) -> None:
        """Forget the last failure, so that a new one is posted again."""
        with self._lock:
            self._last.pop((_uid(body), handler), None)


def _uid(body: Mapping[str, Any]) -> str:
    meta = body.get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")


def guarded(
    failures: FailureEvents,
    handler: str,
    body: Mapping[str, Any],
    work: Callable[[], None],
    *,
    retried: bool = True,
) -> None:
    """Run a handler's ``work``: an API error is retried after RETRY_DELAY, and every failure
    is posted as a Warning Event on ``body`` (``retried`` says whether Kopf runs it again:
    it does not for watch-event handlers)."""
    try:
        work()
    except KubeError as exc:
        retry = f", retrying in {RETRY_DELAY:g} s" if retried else ""
        failures.failed(body, handler, API_ERROR, f"{handler} failed{retry}: {exc}")
        raise _retry_on_api_errors(exc) from exc
    except Exception as exc:
        retry = ", Kopf retries it" if retried else ""
        error = f"{type(exc).__name__}: {exc}"
        failures.failed(body, handler, HANDLER_FAILED, f"{handler} failed{retry}: {error}")
        raise
    failures.succeeded(body, handler)


@dataclasses.dataclass(frozen=True, kw_only=True)
class IdentifiedConnectionInfo(kopf.ConnectionInfo):
    """Kopf's credentials, plus our User-Agent on every request Kopf makes with them.

    Kopf 1.45 has no setting for a field manager or a User-Agent (it sends ``kopf/<version>``
    unless the session has one). The API server records a write that names no ``fieldManager``
    under the User-Agent's product name, so with this Kopf's own patches (progress annotations)
    and Events are recorded as ``modelops``, like the controller's writes.
    """

    def as_http_headers(self) -> dict[str, str]:
        """Kopf's ``Authorization`` header and our ``User-Agent``."""
        headers: dict[str, str] = super().as_http_headers()
        return {**headers, "User-Agent": USER_AGENT}

    @classmethod
    def of(cls, info: kopf.ConnectionInfo) -> IdentifiedConnectionInfo:
        """The same credentials (equal ones stay equal, as Kopf's vault expects)."""
        return cls(**{f.name: getattr(info, f.name) for f in dataclasses.fields(info)})


def configure_kopf(settings: kopf.OperatorSettings, config: OperatorSettings) -> None:
    """Kopf's settings for this operator (called by the startup handler; separate to be tested)."""
    # Progress and the last handled spec live in annotations under our own domain, never in
    # status: the CRDs' structural schema would prune unknown status fields silently.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = LeanDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    # Only needed if a handler ever requires one; our delete handlers are optional because
    # owner references let the garbage collector remove the children.
    settings.persistence.finalizer = FINALIZER
    # One operator replica at a time (the Deployment uses a Recreate strategy); no peering
    # objects, so no extra CRD and no extra writes.
    settings.peering.standalone = True
    settings.peering.mandatory = False
    # Post our own decisions and handler failures (kopf.event, see FailureEvents) as Events.
    # Kopf's log lines are not posted: one Event per log line and retry would flood the API.
    settings.posting.enabled = True
    settings.posting.loggers = False
    settings.posting.level = logging.WARNING
    # Watches end after this long on the server and are re-established: a connection that
    # died silently is noticed within the client timeout.
    settings.watching.server_timeout = config.watch_server_timeout_seconds
    settings.watching.client_timeout = config.watch_server_timeout_seconds + 30
    settings.watching.connect_timeout = 30
    settings.watching.reconnect_backoff = 1.0
    settings.execution.max_workers = HANDLER_THREADS
    settings.networking.request_timeout = config.api_timeout_seconds
    # Kopf applies a handler's ``labels=`` on the client, after listing and watching every
    # object of the kind in the cluster; this selector goes into the list and watch requests.
    for kind in (DEPLOYMENT, SERVICE, ENDPOINT_SLICE):
        settings.watching.label_selectors[kind] = labels.selector(SERVER_LABELS)


def register(registry: kopf.OperatorRegistry, config: OperatorSettings) -> None:
    """Add the operator's handlers, configured by ``config``, to ``registry``."""
    failures = FailureEvents()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, memo: Any, logger: Any, **_: Any) -> None:
        configure_kopf(settings, config)
        metrics = OperatorMetrics()
        if config.metrics_port:
            port = metrics.serve(config.metrics_host, config.metrics_port)
            logger.info(f"Serving metrics on {config.metrics_host}:{port}.")
        memo.ctx = Context(
            kube=Kube.connect(timeout=config.api_timeout_seconds, pool_size=HANDLER_THREADS),
            settings=config,
            metrics=metrics,
            handler_pool=settings.execution.executor,
        )

    @kopf.on.cleanup(registry=registry)
    async def close(memo: Any, **_: Any) -> None:
        scheduler: PolicyScheduler | None = getattr(memo, "scheduler", None)
        if scheduler is not None:
            await scheduler.stop()
        ctx: Context | None = getattr(memo, "ctx", None)
        if ctx is not None:
            ctx.kube.close()
            ctx.metrics.stop()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info: kopf.ConnectionInfo | None = kopf.login_with_service_account(
            **kwargs
        ) or kopf.login_with_kubeconfig(**kwargs)
        return None if info is None else IdentifiedConnectionInfo.of(info)

    # --- ModelDeployment ------------------------------------------------------------------

    # One idempotent reconcile for create, update, resume and a periodic resync.
    @kopf.on.resume(*MODEL_DEPLOYMENT, id="reconcile", registry=registry)
    @kopf.on.create(*MODEL_DEPLOYMENT, id="reconcile", registry=registry)
    @kopf.on.update(*MODEL_DEPLOYMENT, id="reconcile", registry=registry)
    @kopf.timer(
        *MODEL_DEPLOYMENT,
        id="resync",
        interval=config.resync_seconds,
        initial_delay=config.resync_seconds,
        registry=registry,
    )
    def reconcile_model(body: kopf.Body, memo: Any, **kwargs: Any) -> None:
        deployments = Watched(kwargs["server_deployments"])  # the indexes below
        services = Watched(kwargs["server_services"])
        guarded(
            failures,
            "Reconcile",
            body,
            lambda: modeldeployment.reconcile(_ctx(memo), dict(body), deployments, services),
        )

    @kopf.on.delete(*MODEL_DEPLOYMENT, id="forget", optional=True, registry=registry)
    def forget_model(body: kopf.Body, memo: Any, **_: Any) -> None:
        guarded(failures, "Forget", body, lambda: modeldeployment.forget(_ctx(memo), dict(body)))

    # The children as their watches delivered them: a resync that changes nothing reads them
    # here instead of with two GETs (``watched``). Filtered by the server (configure_kopf); the
    # same labels here keep Kopf's own check.
    @kopf.index(*DEPLOYMENT, labels=SERVER_LABELS, id="server_deployments", registry=registry)
    def server_deployments(
        body: kopf.Body, namespace: str | None, name: str, **_: Any
    ) -> dict[Key, dict[str, Any]]:
        return {(namespace, name): lean(body)}

    @kopf.index(*SERVICE, labels=SERVER_LABELS, id="server_services", registry=registry)
    def server_services(
        body: kopf.Body, namespace: str | None, name: str, **_: Any
    ) -> dict[Key, dict[str, Any]]:
        return {(namespace, name): lean(body)}

    @kopf.on.event(*DEPLOYMENT, labels=SERVER_LABELS, registry=registry)
    def deployment_changed(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
        obj: dict[str, Any] = dict(event["object"])

        def mirror() -> None:
            if event["type"] == "DELETED":
                recreate(_ctx(memo), obj)
            else:
                modeldeployment.refresh_status(_ctx(memo), obj)

        # Kopf does not retry watch-event handlers; the ModelDeployment's resync catches up.
        guarded(failures, "Status update from the Deployment", obj, mirror, retried=False)

    @kopf.on.event(*SERVICE, labels=SERVER_LABELS, registry=registry)
    def service_changed(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
        obj: dict[str, Any] = dict(event["object"])
        if event["type"] == "DELETED":
            guarded(
                failures,
                "Recreating the Service",
                obj,
                lambda: recreate(_ctx(memo), obj),
                retried=False,
            )

    # --- DriftPolicy ----------------------------------------------------------------------

    @kopf.index(*MODEL_DEPLOYMENT, id="model_deployments", registry=registry)
    def model_deployments(
        body: kopf.Body, namespace: str | None, name: str, **_: Any
    ) -> dict[Key, dict[str, Any]]:
        """Every ModelDeployment as its watch last delivered it: a drift evaluation reads its
        model from here rather than with a GET (one request less per evaluation)."""
        return {(namespace, name): lean(body)}

    @kopf.index(*ENDPOINT_SLICE, labels=SERVER_LABELS, id="server_slices", registry=registry)
    def server_slices(
        body: kopf.Body, namespace: str | None, **_: Any
    ) -> dict[Key, tuple[Endpoint, ...]] | None:
        """The ready endpoints of the serving Services' EndpointSlices, by Service: an
        evaluation of the ``pods`` source finds its pods here rather than with a LIST. Only
        the endpoints are kept (a slice's body is ~100 times larger)."""
        service = (body.get("metadata", {}).get("labels") or {}).get(labels.SERVICE_NAME)
        return None if not service else {(namespace, service): tuple(ready_endpoints([body]))}

    @kopf.on.event(*DRIFT_POLICY, id="schedule", registry=registry)
    async def policy_changed(event: kopf.RawEvent, memo: Any, **kwargs: Any) -> None:
        """Hand every DriftPolicy event to the one scheduler (``scheduler``), made at the first.

        No daemon or timer per policy, so Kopf puts no finalizer on policies (and removes the
        one older versions put there): a policy deleted while the operator is down just goes.
        """
        scheduler: PolicyScheduler | None = getattr(memo, "scheduler", None)
        if scheduler is None:
            scheduler = memo.scheduler = _policy_scheduler(
                _ctx(memo),
                failures,
                models=Watched(kwargs["model_deployments"]),  # the indexes above
                slices=Watched(kwargs["server_slices"]),
            )
        # Kept until the next event: without managedFields (a third of a scored policy's dicts,
        # each long-lived object a cost to every full garbage collection).
        scheduler.observe(event["type"], lean(event["object"]))


def _policy_scheduler(
    ctx: Context,
    failures: FailureEvents,
    *,
    models: Watched[dict[str, Any]],
    slices: Watched[tuple[Endpoint, ...]],
) -> PolicyScheduler:
    """The scheduler of the DriftPolicy ticks: each on the handler threads, its failure posted
    (``guarded``) and tried again after the tick period."""

    def tick(body: dict[str, Any]) -> bool:
        exists = True

        def work() -> None:
            nonlocal exists
            exists = driftpolicy.tick(ctx, body, models=models, slices=slices)

        guarded(failures, "Evaluation", body, work)
        return exists

    assert ctx.handler_pool is not None
    return PolicyScheduler(
        key=driftpolicy.policy_key,
        tick=tick,
        delay=lambda key: driftpolicy.next_tick_in(ctx, key),
        forget=lambda body: driftpolicy.forget(ctx, dict(body)),
        pool=ctx.handler_pool,
        period=ctx.settings.drift_tick_seconds,
        limit=TICKS_AT_ONCE,
    )


def recreate(ctx: Context, child: dict[str, Any]) -> None:
    """A Deployment or Service of a ModelDeployment was deleted: reconcile its owner (unless
    it is being deleted too) with fresh reads, the watched copies may still hold the child."""
    owner = _owner_body(ctx, child)
    if owner is not None and not owner["metadata"].get("deletionTimestamp"):
        modeldeployment.reconcile(ctx, owner)


def _owner_body(ctx: Context, obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == modeldeployment.KIND and ref.get("controller"):
            body = ctx.kube.get(MODEL_DEPLOYMENTS, obj["metadata"]["namespace"], ref["name"])
            if body is not None and body["metadata"].get("uid") == ref.get("uid"):
                return body
    return None
