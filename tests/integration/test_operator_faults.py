"""API faults on the real control plane, injected by the fault proxy between the operator and the
API server: a 500 on a LIST, a watch ended by 410 Gone, a watch cut silently, 429s with Retry-After
on the operator's own writes, a failed write seen as a Warning Event, a status write lost before
a restart; and a drift source that never becomes ready.

The operator runs in the test's loop as its ServiceAccount, through the proxy; the real
controllers and the process kubelet do the rest. What the API server received comes from its
audit log, what the operator sent from the proxy's record.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from operator_support import (
    LOOP_SETTINGS,
    Artifacts,
    drift_policy,
    model_deployment,
    retraining_jobs,
    send_rows,
    start_serving,
    status_of,
    wait_baseline,
)

from kube_testbed.client import KubeClient, condition
from kube_testbed.faults import Fault, FaultProxy, Request
from kube_testbed.testbed import OPERATOR_USER, RunningOperator, Testbed, dump

pytestmark = [pytest.mark.integration, pytest.mark.controlplane]

INJECTED = "injected by the fault proxy"


async def wait_until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll ``check()`` until it is truthy; its value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s")
        await asyncio.sleep(0.1)


def md_requests(verb: str) -> Callable[[Request], bool]:
    return lambda r: r.resource == "modeldeployments" and r.subresource is None and r.verb == verb


def deployment_creates(r: Request) -> bool:
    return r.resource == "deployments" and r.verb == "create"


def is_ready(obj: dict[str, Any] | None) -> bool:
    return (condition(obj, "Ready") or {}).get("status") == "True"


def audited(
    testbed: Testbed, since: float, verb: str, resource: str, sub: str | None = None
) -> list[dict[str, Any]]:
    """The operator's requests the API server answered, of ``verb`` on ``resource``."""
    return [
        e
        for e in testbed.operator_requests(since)
        if e["verb"] == verb
        and (e.get("objectRef") or {}).get("resource") == resource
        and (e.get("objectRef") or {}).get("subresource") == sub
    ]


def created_codes(testbed: Testbed, since: float) -> list[int]:
    """The answers to the operator's Deployment creates: one 201. Kopf runs the resync timer
    beside the create handler's retry, so a second reconcile may send the same POST at the same
    moment and meet 409 AlreadyExists (which it handles by reading the Deployment)."""
    codes = sorted(
        e["responseStatus"]["code"] for e in audited(testbed, since, "create", "deployments")
    )
    assert codes[:1] == [201], codes
    assert set(codes[1:]) <= {409}, codes
    return codes


async def warnings(kube: KubeClient, name: str) -> list[dict[str, Any]]:
    return [e for e in await kube.events(name) if e.get("type") == "Warning"]


# --- The proxy itself -------------------------------------------------------------------------


async def test_the_proxy_forwards_as_the_operator_and_injects_each_fault(
    testbed: Testbed, kube: KubeClient
) -> None:
    """Requests through the proxy reach the API server as the operator's ServiceAccount (not as
    the admin whose certificate the TLS context carries); each fault fires once, as armed."""
    path = f"/apis/modelops.dev/v1alpha1/namespaces/{kube.namespace}/modeldeployments"
    since = time.time()
    async with FaultProxy(testbed.plane.url, testbed.plane.ssl_context()) as proxy:
        headers = {"Authorization": f"Bearer {testbed.operator_token}", "Connection": "close"}
        async with httpx.AsyncClient(base_url=proxy.url, headers=headers, timeout=15) as http:
            assert (await http.get(path)).status_code == 200
            listed = audited(testbed, since, "list", "modeldeployments")
            assert [e["user"]["username"] for e in listed] == [OPERATOR_USER]

            throttled = proxy.error(md_requests("list"), 429, retry_after="2")
            answer = await http.get(path)
            assert answer.status_code == 429
            assert answer.headers["Retry-After"] == "2"
            assert answer.json()["reason"] == "TooManyRequests"
            assert answer.json()["details"] == {"retryAfterSeconds": 2}
            assert (await http.get(path)).status_code == 200  # once only
            assert throttled.fired[0].verb == "list"
            assert len(audited(testbed, since, "list", "modeldeployments")) == 2  # not forwarded

            proxy.watch_gone(md_requests("watch"))
            gone = await http.get(path, params={"watch": "true"})
            (line,) = gone.text.splitlines()
            assert '"type": "ERROR"' in line
            assert '"code": 410' in line

            # A cut watch streams what the server sends (a watch from no resourceVersion
            # starts with an ADDED event of each existing object), then the connection drops
            # mid-stream.
            await kube.create("modeldeployments", plain_model("watched"))
            cut = proxy.watch_cut(md_requests("watch"), after=1.5)
            events: list[str] = []
            async with http.stream("GET", path, params={"watch": "true"}) as stream:
                with pytest.raises(httpx.RemoteProtocolError):
                    await read_lines(stream, events)
            assert len(events) == 1
            assert '"ADDED"' in events[0]
            assert cut.done


async def read_lines(stream: httpx.Response, into: list[str]) -> None:
    async for text in stream.aiter_lines():
        into.append(text)


def plain_model(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": {"uri": "file:///nonexistent/model", "version": "v1"}},
    }


# --- Watching through faults ----------------------------------------------------------------

#: Each fault hits the operator's ModelDeployment stream before the object exists; ``resumes``
#: is the request that shows it is watching again.
WATCH_FAULTS: dict[str, tuple[Callable[[FaultProxy], Fault], str]] = {
    "list-500": (lambda proxy: proxy.error(md_requests("list"), 500), "list"),
    "watch-410": (lambda proxy: proxy.watch_gone(md_requests("watch")), "list"),
    "watch-cut": (lambda proxy: proxy.watch_cut(md_requests("watch"), after=1.0), "watch"),
}


@pytest.mark.parametrize("fault", list(WATCH_FAULTS))
async def test_operator_recovers_from_api_faults(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts, fault: str
) -> None:
    arm, resumes = WATCH_FAULTS[fault]
    async with FaultProxy(testbed.plane.url, testbed.plane.ssl_context()) as proxy:
        armed = arm(proxy)
        testbed.point_operator_at_cluster(through=proxy.url)
        async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
            await wait_until(lambda: armed.done, f"the operator met the {fault}")
            # A 500 is retried, a 410 makes Kopf list again, a cut watch is resumed from the
            # last resourceVersion: the ModelDeployment created after that is seen only there.
            after = armed.fired[0].time + armed.after
            again = await wait_until(
                lambda: proxy.seen(md_requests(resumes), since=after),
                f"a {resumes} of modeldeployments after the {fault}",
            )
            if fault == "watch-cut":
                assert "resourceVersion" in again[0].query  # resumed, not listed again
            await kube.create("modeldeployments", model_deployment(artifacts))
            ready = await kube.wait_for("modeldeployments", "iris", is_ready, timeout=90)
            assert ready["status"]["phase"] == "Ready"
            assert condition(ready, "Progressing")["reason"] == "RolloutComplete"
    assert len(armed.fired) == 1


# --- Failed writes ---------------------------------------------------------------------------


async def test_throttled_writes_are_resent_quietly(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts
) -> None:
    """Two 429s with Retry-After: 1 on the Deployment's creation: the operator waits as told,
    sends it a third time in the same reconcile, and nobody hears of it."""
    since = time.time()
    async with FaultProxy(testbed.plane.url, testbed.plane.ssl_context()) as proxy:
        throttled = proxy.error(deployment_creates, 429, times=2, retry_after="1")
        testbed.point_operator_at_cluster(through=proxy.url)
        async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
            await kube.create("modeldeployments", model_deployment(artifacts))
            ready = await kube.wait_for("modeldeployments", "iris", is_ready, timeout=90)
        posts = proxy.seen(deployment_creates)
    assert throttled.done
    gaps = [later.time - earlier.time for earlier, later in itertools.pairwise(posts[:3])]
    assert all(0.9 <= gap < 3 for gap in gaps), gaps  # Retry-After honoured, not doubled
    # The API server saw the third attempt only, and it succeeded (and no more POSTs than
    # forwarded: a resync running at the same moment may meet the name taken, a 409).
    codes = created_codes(testbed, since)
    assert len(posts) == 2 + len(codes)
    assert condition(ready, "Progressing")["reason"] == "RolloutComplete"
    # Quietly: no Warning Event, no status that ever said the reconcile failed.
    assert await warnings(kube, "iris") == []
    written = [
        e["requestObject"] for e in audited(testbed, since, "patch", "modeldeployments", "status")
    ]
    assert written
    assert "ReconcileFailed" not in dump(written)


async def test_a_failed_write_is_a_warning_event_and_a_condition_then_recovers(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts
) -> None:
    """A 500 on the Deployment's creation: one Warning Event (reason APIError) on the
    ModelDeployment and Progressing/Ready=False ReconcileFailed with the error; the retry 5 s
    later creates it and the rollout completes."""
    since = time.time()
    post = f"POST /apis/apps/v1/namespaces/{kube.namespace}/deployments"
    async with FaultProxy(testbed.plane.url, testbed.plane.ssl_context()) as proxy:
        failing = proxy.error(deployment_creates, 500)
        testbed.point_operator_at_cluster(through=proxy.url)
        async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
            await kube.create("modeldeployments", model_deployment(artifacts))
            failed = await kube.wait_for(
                "modeldeployments",
                "iris",
                lambda m: (condition(m, "Progressing") or {}).get("reason") == "ReconcileFailed",
            )
            message = (
                f"Could not apply the Deployment and Service, retrying: HTTP 500: {post}: "
                f"{INJECTED}"
            )
            progressing = condition(failed, "Progressing")
            assert (progressing["status"], progressing["message"]) == ("False", message)
            ready = condition(failed, "Ready")
            assert (ready["status"], ready["reason"], ready["message"]) == (
                "False",
                "ReconcileFailed",
                message,
            )
            warning = await wait_for_warning(kube, "iris")
            assert warning["reason"] == "APIError"
            assert warning["message"] == (
                f"Reconcile failed, retrying in 5 s: HTTP 500: {post}: {INJECTED}"
            )
            recovered = await kube.wait_for("modeldeployments", "iris", is_ready, timeout=90)
            assert condition(recovered, "Progressing")["reason"] == "RolloutComplete"
            # Posted once, not once per retry; nothing after the recovery.
            assert [w["reason"] for w in await warnings(kube, "iris")] == ["APIError"]
    assert failing.done
    created_codes(testbed, since)


async def wait_for_warning(kube: KubeClient, name: str, timeout: float = 15) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        found = await warnings(kube, name)
        if found:
            return found[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"no Warning Event on {name} in {timeout:g}s")


# --- A lost status write and a restart ----------------------------------------------------


def records_retraining(r: Request) -> bool:
    """The status patch that would record a new retraining Job."""
    status = (r.body.get("status") if isinstance(r.body, dict) else None) or {}
    return (
        r.resource == "driftpolicies"
        and r.subresource == "status"
        and r.verb == "patch"
        and "lastRetraining" in status
    )


async def keep_sending(url: str, rows: list[list[float]]) -> None:
    """Shifted traffic, 100 rows at a time, until cancelled (as live traffic keeps coming)."""
    while True:
        for start in range(0, len(rows), 100):
            await send_rows(url, "iris", rows[start : start + 100])
            await asyncio.sleep(0.2)


async def test_a_lost_status_write_then_a_restart_adopts_the_job(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts
) -> None:
    """The status patch recording the new retraining Job is answered 500 and never reaches the
    API server; the operator then stops. A new operator, knowing only what the API holds,
    finds the Job by its deterministic name and adopts it: still one Job."""
    since = time.time()
    policy = drift_policy(
        artifacts, trigger={"minBreachedFeatures": 2, "consecutiveEvaluations": 1}
    )
    async with FaultProxy(testbed.plane.url, testbed.plane.ssl_context()) as proxy:
        lost = proxy.error(records_retraining, 500)
        testbed.point_operator_at_cluster(through=proxy.url)
        async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
            url = await start_serving(kube, artifacts)
            await kube.create("driftpolicies", policy)
            await wait_baseline(kube, "iris-drift")
            await send_rows(url, "iris", artifacts.shifted[:300])
            await wait_until(lambda: lost.done, "the status write of the new Job", timeout=40)
            # Stopped before its next evaluation (10 s later) could repair it.
            (first,) = await retraining_jobs(kube, "iris-drift")
        assert "lastRetraining" not in status_of(await kube.get("driftpolicies", "iris-drift"))
        written = audited(testbed, since, "patch", "driftpolicies", "status")
        assert "lastRetraining" not in dump([e["requestObject"] for e in written])

        restarted = time.time()
        async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
            # Traffic keeps coming, so whenever the new operator takes its baseline, the next
            # window has shifted rows.
            sender = asyncio.create_task(keep_sending(url, artifacts.shifted[300:600]))
            try:
                adopted = await kube.wait_for(
                    "driftpolicies",
                    "iris-drift",
                    lambda p: (status_of(p).get("lastRetraining") or {}).get("job"),
                    timeout=45,
                )
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
    name = first["metadata"]["name"]
    assert adopted["status"]["lastRetraining"]["job"] == name
    assert [j["metadata"]["name"] for j in await retraining_jobs(kube, "iris-drift")] == [name]
    assert len(audited(testbed, since, "create", "jobs")) == 1
    assert audited(testbed, restarted, "create", "jobs") == []
    # The write that recorded it says it was adopted, not started.
    recorded = [
        e["requestObject"]["status"]
        for e in audited(testbed, restarted, "patch", "driftpolicies", "status")
        if "lastRetraining" in e["requestObject"]["status"]
    ]
    assert recorded, "no status write recorded the Job"
    retraining = next(c for c in recorded[0]["conditions"] if c["type"] == "Retraining")
    assert retraining["message"].startswith(f"Adopted the existing retraining Job {name} ")


# --- An unreachable source -------------------------------------------------------------------


async def test_a_source_that_never_becomes_ready_blocks_retraining(
    testbed: Testbed, node: Any, kube: KubeClient, artifacts: Artifacts
) -> None:
    """The model cannot load, so its pods never become ready: the EndpointSlice controller
    lists them not ready, and the policy says SourceUnreachable instead of judging (or
    retraining on) nothing."""
    policy = drift_policy(
        artifacts, trigger={"minBreachedFeatures": 1, "consecutiveEvaluations": 1}
    )
    broken = model_deployment(artifacts)
    broken["spec"]["model"]["uri"] = f"file://{artifacts.root / 'missing'}"
    async with RunningOperator(LOOP_SETTINGS, [kube.namespace]):
        await kube.create("modeldeployments", broken)
        await wait_for_unready_endpoint(kube, "iris")
        await kube.create("driftpolicies", policy)
        failed = await kube.wait_for(
            "driftpolicies",
            "iris-drift",
            lambda p: (condition(p, "SourceReady") or {}).get("status") == "False",
        )
        source = condition(failed, "SourceReady")
        assert source["reason"] == "SourceUnreachable"
        assert source["message"] == "the Service has no ready endpoints"
        assert condition(failed, "DriftDetected") is None
        assert status_of(failed).get("lastRetraining") is None
        assert await retraining_jobs(kube, "iris-drift") == []
        warned = await wait_for_warning(kube, "iris-drift")
        assert warned["reason"] == "SourceUnreachable"
        assert not is_ready(await kube.get("modeldeployments", "iris"))


async def wait_for_unready_endpoint(kube: KubeClient, service: str, timeout: float = 60) -> None:
    """Until the Service's EndpointSlice lists a pod, not ready."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        slices = await kube.list("endpointslices", f"kubernetes.io/service-name={service}")
        endpoints = [e for s in slices for e in s.get("endpoints") or []]
        if endpoints and not any((e.get("conditions") or {}).get("ready") for e in endpoints):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{service} never listed a pod that is not ready")
