"""Operator benchmark: scale, API economy, memory and CPU, one drift cycle.

    python benchmarks/operator_bench.py [--objects 200] [--rest-seconds 30] [--real]
    python benchmarks/operator_bench.py --drift-scale N [--pods-per-policy 10] [--interval 60]

With ``--real`` the scale run is on the real control plane of the tests (etcd, kube-apiserver,
kube-controller-manager from ``make k8s-bin``): the operator runs as its ServiceAccount, the real
Deployment, ReplicaSet and EndpointSlice controllers roll out every ModelDeployment, a node that
runs nothing (KWOK-style, tests/kube_testbed/pretend.py) reports the pods Running and Ready, and
the operator's requests are read from the API server's audit log. Without it, against the KMock
emulator (the previous reference, kept to compare).

What it does and prints:
1. Starts the KMock emulator of the integration tests (real HTTP on 127.0.0.1) in this process
   and the operator as a separate process (`python -m modelops operator --namespace bench`).
2. Creates N ModelDeployments, plays the Deployment controller (marks each Deployment rolled
   out) and times until every ModelDeployment is Ready; then N DriftPolicies.
3. Counts the API requests the operator sent: per ModelDeployment created (reads, our writes,
   Kopf's bookkeeping writes, Events), and all writes during a rest period (target: zero).
4. Reads the operator's peak RSS (VmHWM) at the end (target: under 200 MB).
5. Times one drift-evaluation cycle of 50 features x 20 bins x 10 pods: scraping 10 local HTTP
   endpoints that serve the model server's exposition text only (an older server: the counts
   endpoint answers 404), parsing, the window, the drift engine; the same through 10 endpoints
   serving the counts document; and, as the peer measured in the same run, the cycle's
   arithmetic alone.

``--drift-scale N`` runs only the drift evaluation at scale, on the real control plane: one
thread of this process serves the fake model-server pods, each on its own address in a network
namespace the bench creates (``pod_network``, needs root; never loopback or another machine):
the counts document of any model by path, growing at every scrape, the profile, ``/metrics``
text of one model; N ModelDeployments with ``replicas: 0`` (the real EndpointSlice controller's
slice stays empty) and, for each, one hand-made EndpointSlice of its pods labelled as the
EndpointSlice controller labels one (the Service's labels and name,
``endpointslice.kubernetes.io/managed-by: bench``), as many slices as a real cluster has; N
DriftPolicies at ``--interval``. The operator runs with its default settings. Over a
``--window`` at rest (every policy evaluated twice, then every Deployment rolled out and every
policy evaluated twice more: the first evaluations decide and write): the operator's API
requests (audit log), its CPU per minute (/proc) and per evaluation (all its CPU over the
evaluations the pods saw, counted as each policy's rate over the window), the lag behind each
evaluation's due time (gap between two scrapes of a policy's first pod minus the interval),
VmHWM; then the same through ``/metrics`` text (the counts endpoint answers 404) unless
``--skip-text``. The status reports of policies created together come together
(``MODELOPS_STATUS_REPORT_SECONDS``, 300 s): a window of a whole report period gives the
average.
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tests"))

import kmock  # noqa: E402
from kmock_emulator import (  # noqa: E402
    RealisticKubernetes,
    declare_resources,
    is_write,
    kubeconfig,
    rbac_triple,
)

from pod_network import PodNetwork, pod_address  # noqa: E402

NS = "bench"
AGENT = "modelops-bench"
GROUP_PATH = "/apis/modelops.dev/v1alpha1"


# --- Scale run against KMock -------------------------------------------------------------------


def operator_requests(server: Any, since: int = 0) -> list[Any]:
    journal = server.journal[since:]
    return [r for r in journal if r.headers.get("User-Agent") != AGENT]


def classify(request: Any) -> str:
    triple = rbac_triple(request)
    if triple is None:
        return "discovery"
    _verb, _group, resource = triple
    if not is_write(request):
        return "read"
    if resource == "events":
        return "event"
    if resource in ("modeldeployments", "driftpolicies"):
        return "kopf-bookkeeping"  # finalizer, progress and diff-base annotations
    return "controller-write"  # children, status, Jobs


def peak_rss_mb(pid: int, field: str = "VmHWM") -> float:
    """The process's peak resident memory (``VmRSS``: the current one), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def play_deployment_controller(client: httpx.AsyncClient, stop: asyncio.Event) -> None:
    """Mark every Deployment of the current generation as rolled out (what kube does)."""
    while not stop.is_set():
        listing = await client.get(f"/apis/apps/v1/namespaces/{NS}/deployments")
        for dep in listing.json().get("items") or []:
            meta, status = dep["metadata"], dep.get("status") or {}
            if status.get("observedGeneration") == meta.get("generation"):
                continue
            replicas = dep["spec"].get("replicas", 1)
            await client.patch(
                f"/apis/apps/v1/namespaces/{NS}/deployments/{meta['name']}/status",
                json={
                    "status": {
                        "observedGeneration": meta["generation"],
                        "replicas": replicas,
                        "updatedReplicas": replicas,
                        "readyReplicas": replicas,
                        "availableReplicas": replicas,
                    }
                },
                headers={"Content-Type": "application/merge-patch+json"},
            )
        await asyncio.sleep(0.2)


async def count_matching(client: httpx.AsyncClient, plural: str, check: Any) -> int:
    listing = await client.get(f"{GROUP_PATH}/namespaces/{NS}/{plural}")
    return sum(1 for item in listing.json().get("items") or [] if check(item))


def is_ready(md: dict[str, Any]) -> bool:
    return (md.get("status") or {}).get("phase") == "Ready"


def is_evaluated(policy: dict[str, Any]) -> bool:
    conditions = (policy.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "SourceReady" for c in conditions)


async def wait_all(
    client: httpx.AsyncClient, plural: str, check: Any, n: int, limit: float
) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        if await count_matching(client, plural, check) >= n:
            return time.perf_counter() - start
        await asyncio.sleep(0.25)
    raise SystemExit(f"not all {n} {plural} got there within {limit}s")


async def scale_run(objects: int, rest_seconds: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with RealisticKubernetes(history_limit=50) as server, kmock.Server(server):
        declare_resources(server)
        server.namespaces.add(NS)
        workdir = Path(tempfile.mkdtemp(prefix="operator-bench-"))
        config = workdir / "kubeconfig"
        config.write_text(kubeconfig(str(server.url)))
        env = {
            **os.environ,
            "KUBECONFIG": str(config),
            "MODELOPS_METRICS_PORT": "0",
            "MODELOPS_HEALTH_PORT": "0",
            "MODELOPS_RESYNC_SECONDS": "30",
            "MODELOPS_DRIFT_TICK_SECONDS": "2",
            "MODELOPS_SCRAPE_TIMEOUT_SECONDS": "1",
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)
        log = (workdir / "operator.log").open("wb")
        operator = subprocess.Popen(
            [sys.executable, "-m", "modelops", "operator", "--namespace", NS],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        stop = asyncio.Event()
        controller: asyncio.Task[None] | None = None
        async with httpx.AsyncClient(
            base_url=str(server.url).rstrip("/"), headers={"User-Agent": AGENT}, timeout=60
        ) as client:
            try:
                await asyncio.sleep(2.0)  # the operator starts and lists (nothing yet)
                mark = len(server.journal)
                start = time.perf_counter()
                for i in range(objects):
                    await client.post(
                        f"{GROUP_PATH}/namespaces/{NS}/modeldeployments",
                        json={
                            "apiVersion": "modelops.dev/v1alpha1",
                            "kind": "ModelDeployment",
                            "metadata": {"name": f"model-{i:04d}"},
                            "spec": {"model": {"uri": f"pvc://models/m{i}/v1", "version": "v1"}},
                        },
                    )
                results["create_seconds"] = time.perf_counter() - start
                # Phase 1: children and first status of every ModelDeployment.
                await wait_all(client, "modeldeployments", has_status, objects, 900)
                results["reconciled_seconds"] = time.perf_counter() - start
                await asyncio.sleep(2.0)  # Events are posted in batches
                created = operator_requests(server, mark)
                results["create_per_md"] = per_kind(created, objects)
                results["create_writes"] = Counter(
                    str(rbac_triple(r)) for r in created if classify(r) == "controller-write"
                )
                # Phase 2: the Deployments roll out; the status follows.
                mark = len(server.journal)
                controller = asyncio.create_task(play_deployment_controller(client, stop))
                await wait_all(client, "modeldeployments", is_ready, objects, 900)
                results["all_ready_seconds"] = time.perf_counter() - start
                await asyncio.sleep(2.0)
                rolled = operator_requests(server, mark)
                results["rollout_per_md"] = per_kind(rolled, objects)

                start = time.perf_counter()
                for i in range(objects):
                    await client.post(
                        f"{GROUP_PATH}/namespaces/{NS}/driftpolicies",
                        json={
                            "apiVersion": "modelops.dev/v1alpha1",
                            "kind": "DriftPolicy",
                            "metadata": {"name": f"policy-{i:04d}"},
                            "spec": {
                                "modelDeploymentRef": {"name": f"model-{i:04d}"},
                                "interval": "10s",
                                "minSamples": 100,
                            },
                        },
                    )
                await wait_all(client, "driftpolicies", is_evaluated, objects, 900)
                results["policies_evaluated_seconds"] = time.perf_counter() - start
                await asyncio.sleep(12.0)  # every policy past its first evaluation and Event
                mark = len(server.journal)
                await asyncio.sleep(rest_seconds)
                rest = operator_requests(server, mark)
                writes = [rbac_triple(r) for r in rest if is_write(r)]
                results["rest_seconds"] = rest_seconds
                results["rest_writes_per_minute"] = len(writes) * 60 / rest_seconds
                results["rest_writes"] = Counter(str(w) for w in writes)
                results["rest_reads_per_minute"] = (
                    sum(1 for r in rest if classify(r) == "read") * 60 / rest_seconds
                )
                results["operator_peak_rss_mb"] = peak_rss_mb(operator.pid)
            finally:
                stop.set()
                if controller is not None:
                    await controller
                operator.terminate()
                try:
                    operator.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    operator.kill()
                    operator.wait()
                log.close()
        results["operator_log"] = str(workdir / "operator.log")
    return results


# --- Scale run against the real control plane ------------------------------------------------


def audit_kind(event: dict[str, Any]) -> str:
    """The same classes as ``classify``, from an audit event."""
    ref = event.get("objectRef") or {}
    if not ref.get("resource"):
        return "discovery"
    if event["verb"] in ("get", "list", "watch"):
        return "read"
    if ref["resource"] == "events":
        return "event"
    if ref["resource"] in ("modeldeployments", "driftpolicies") and not ref.get("subresource"):
        return "kopf-bookkeeping"
    return "controller-write"


def audit_triple(event: dict[str, Any]) -> str:
    ref = event.get("objectRef") or {}
    sub = f"/{ref['subresource']}" if ref.get("subresource") else ""
    return f"{event['verb']} {ref.get('apiGroup', '')}/{ref.get('resource')}{sub}"


def split_first_status(events: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """Requests up to each ModelDeployment's first status write (its creation: children and
    first status), and the status writes after it (following the real rollout)."""
    creation, rollout, seen = [], [], set()
    for event in events:
        ref = event.get("objectRef") or {}
        is_status = ref.get("resource") == "modeldeployments" and ref.get("subresource")
        if is_status and ref.get("name") in seen:
            rollout.append(event)
            continue
        if is_status:
            seen.add(ref.get("name"))
        creation.append(event)
    return creation, rollout


def cpu_seconds(process: Any) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def scale_run_real(objects: int, rest_seconds: float) -> dict[str, Any]:
    import psutil

    from kube_testbed.client import KubeClient
    from kube_testbed.pretend import PretendNode
    from kube_testbed.testbed import Testbed

    results: dict[str, Any] = {}
    workdir = Path(tempfile.mkdtemp(prefix="operator-bench-real-"))
    testbed = Testbed(workdir)
    testbed.start()
    node = PretendNode(testbed.plane)
    node.start()
    apiserver = psutil.Process(
        next(p.popen.pid for p in testbed.plane.processes if p.name == "kube-apiserver")
    )
    namespace = testbed.create_namespace("bench")
    env = {
        **os.environ,
        "KUBECONFIG": str(testbed.operator_kubeconfig),
        "MODELOPS_METRICS_PORT": "0",
        "MODELOPS_HEALTH_PORT": "0",
        "MODELOPS_RESYNC_SECONDS": "30",
        "MODELOPS_DRIFT_TICK_SECONDS": "2",
        "MODELOPS_SCRAPE_TIMEOUT_SECONDS": "1",
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    log = (workdir / "operator.log").open("wb")
    operator = subprocess.Popen(
        [sys.executable, "-m", "modelops", "operator", "--namespace", namespace],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    proc = psutil.Process(operator.pid)
    client = KubeClient(testbed.plane.url, namespace, testbed.plane.ssl_context())

    async def count(plural: str, check: Any) -> int:
        return sum(1 for item in await client.list(plural) if check(item))

    async def wait_all_real(plural: str, check: Any, limit: float) -> float:
        begin = time.perf_counter()
        while time.perf_counter() - begin < limit:
            if await count(plural, check) >= objects:
                return time.perf_counter() - begin
            await asyncio.sleep(0.25)
        raise SystemExit(f"not all {objects} {plural} got there within {limit}s")

    def requests_since(mark: float) -> list[dict[str, Any]]:
        return testbed.operator_requests(since=mark)

    try:
        await asyncio.sleep(3.0)  # the operator starts and lists (nothing yet)
        mark, cpu0, api0 = time.time(), cpu_seconds(proc), cpu_seconds(apiserver)
        start = time.perf_counter()
        for i in range(objects):
            await client.create(
                "modeldeployments",
                {
                    "apiVersion": "modelops.dev/v1alpha1",
                    "kind": "ModelDeployment",
                    "metadata": {"name": f"model-{i:04d}"},
                    "spec": {"model": {"uri": f"pvc://models/m{i}/v1", "version": "v1"}},
                },
            )
        results["create_seconds"] = time.perf_counter() - start
        await wait_all_real("modeldeployments", has_status, 900)
        results["reconciled_seconds"] = time.perf_counter() - start
        await wait_all_real("modeldeployments", is_ready, 900)
        results["all_ready_seconds"] = time.perf_counter() - start
        await asyncio.sleep(3.0)  # the last status writes and Events land in the audit log
        created, rollout = split_first_status(requests_since(mark))
        kinds = Counter(audit_kind(e) for e in created)
        results["create_per_md"] = {k: v / objects for k, v in sorted(kinds.items())}
        results["create_writes"] = Counter(
            audit_triple(e) for e in created if audit_kind(e) == "controller-write"
        )
        kinds = Counter(audit_kind(e) for e in rollout)
        results["rollout_per_md"] = {k: v / objects for k, v in sorted(kinds.items())}
        results["create_operator_cpu"] = cpu_seconds(proc) - cpu0
        results["create_apiserver_cpu"] = cpu_seconds(apiserver) - api0

        start = time.perf_counter()
        for i in range(objects):
            await client.create(
                "driftpolicies",
                {
                    "apiVersion": "modelops.dev/v1alpha1",
                    "kind": "DriftPolicy",
                    "metadata": {"name": f"policy-{i:04d}"},
                    "spec": {
                        "modelDeploymentRef": {"name": f"model-{i:04d}"},
                        "interval": "10s",
                        "minSamples": 100,
                    },
                },
            )
        await wait_all_real("driftpolicies", is_evaluated, 900)
        results["policies_evaluated_seconds"] = time.perf_counter() - start
        await asyncio.sleep(12.0)  # every policy past its first evaluation and Event
        mark, cpu0, api0 = time.time(), cpu_seconds(proc), cpu_seconds(apiserver)
        await asyncio.sleep(rest_seconds)
        rest = requests_since(mark)
        writes = [audit_triple(e) for e in rest if audit_kind(e) not in ("read", "discovery")]
        results["rest_seconds"] = rest_seconds
        results["rest_writes_per_minute"] = len(writes) * 60 / rest_seconds
        results["rest_writes"] = Counter(writes)
        results["rest_reads_per_minute"] = (
            sum(1 for e in rest if audit_kind(e) == "read") * 60 / rest_seconds
        )
        results["rest_operator_cpu"] = (cpu_seconds(proc) - cpu0) / rest_seconds
        results["rest_apiserver_cpu"] = (cpu_seconds(apiserver) - api0) / rest_seconds
        results["operator_peak_rss_mb"] = peak_rss_mb(operator.pid)
        results["forbidden"] = testbed.plane.forbidden("system:serviceaccount:modelops-system")
    finally:
        await client.close()
        operator.terminate()
        try:
            operator.wait(timeout=20)
        except subprocess.TimeoutExpired:
            operator.kill()
            operator.wait()
        log.close()
        node.stop()
        testbed.stop()
    results["operator_log"] = str(workdir / "operator.log")
    return results


def per_kind(requests: list[Any], objects: int) -> dict[str, float]:
    kinds = Counter(classify(r) for r in requests)
    return {kind: count / objects for kind, count in sorted(kinds.items())}


def has_status(md: dict[str, Any]) -> bool:
    return bool((md.get("status") or {}).get("observedGeneration"))


# --- One evaluation cycle ------------------------------------------------------------------------


def exposition(profile: Any, counts: np.ndarray, model: str) -> str:
    """The model server's text for these bin counts (one pod)."""
    lines = [
        "# HELP modelops_feature_bin_total Rows counted into each bin of the reference profile.",
        "# TYPE modelops_feature_bin_total counter",
    ]
    for row, feature in enumerate(profile.features):
        for column in range(feature.n_bins):
            lines.append(
                f'modelops_feature_bin_total{{model="{model}",version="v1",'
                f'feature="{feature.name}",bin="{column}"}} {float(counts[row, column])}'
            )
    return "\n".join(lines) + "\n"


def counts_document(profile: Any, counts: np.ndarray, model: str) -> bytes:
    """The model server's counts document for these bin counts (one pod)."""
    from modelops.serving.counts import encode_counts

    return encode_counts(
        model=model,
        version="v1",
        start="bench",
        rows=int(counts[0].sum()),
        names=profile.feature_names,
        n_bins=[feature.n_bins for feature in profile.features],
        counts=counts.astype(np.int64),
    )


class _Paths(http.server.BaseHTTPRequestHandler):
    """Answers the paths it was given, 404 to the others (as the model server does)."""

    bodies: dict[str, bytes] = {}

    def do_GET(self) -> None:
        body = self.bodies.get(self.path)
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


def serve_paths(bodies: dict[str, bytes]) -> tuple[http.server.ThreadingHTTPServer, int]:
    handler = type("Handler", (_Paths,), {"bodies": bodies})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, int(httpd.server_address[1])


def evaluation_cycle(features: int, bins: int, pods: int, repeats: int) -> dict[str, float]:
    """One evaluation's parts, for pods of an older server (``/metrics`` text only: the operator
    meets a 404 on the counts endpoint first) and of today's (the counts document)."""
    from modelops.controller.sources import (
        Endpoint,
        counts_matrix,
        counts_series,
        parse_bin_counters,
        scrape_pods,
    )
    from modelops.controller.window import WindowStore
    from modelops.drift import build_profile, compute_drift
    from modelops.serving.counts import counts_path, decode_counts

    rng = np.random.default_rng(0)
    names = [f"f{i:02d}" for i in range(features)]
    profile = build_profile(rng.normal(size=(5000, features)), names, bins=bins - 1)
    width = profile.max_bins
    baseline = [rng.integers(0, 1000, size=(features, width)) for _ in range(pods)]
    current = [b + rng.integers(0, 50, size=(features, width)) for b in baseline]
    texts = [exposition(profile, c, "bench") for c in current]
    documents = [counts_document(profile, c, "bench") for c in current]
    old = [serve_paths({"/metrics": text.encode()}) for text in texts]
    new = [
        serve_paths({"/metrics": text.encode(), counts_path("bench"): document})
        for text, document in zip(texts, documents, strict=True)
    ]
    old_endpoints = [Endpoint(f"pod-{i}/uid", "127.0.0.1", port) for i, (_, port) in enumerate(old)]
    new_endpoints = [Endpoint(f"pod-{i}/uid", "127.0.0.1", port) for i, (_, port) in enumerate(new)]
    base_series = [
        parse_bin_counters(exposition(profile, b, "bench"), "bench")["v1"] for b in baseline
    ]
    timings: dict[str, list[float]] = {
        "scrape_parse": [],
        "parse_only": [],
        "scrape_counts": [],
        "decode_only": [],
        "window_drift": [],
    }
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            scrape = scrape_pods(old_endpoints, "bench", timeout=5, concurrency=16)
            t1 = time.perf_counter()
            for text in texts:
                parse_bin_counters(text, "bench")
            t2 = time.perf_counter()
            by_counts = scrape_pods(new_endpoints, "bench", timeout=5, concurrency=16)
            t3 = time.perf_counter()
            for document in documents:
                counts_series(decode_counts(document, "bench"))
            t4 = time.perf_counter()
            store = WindowStore()
            now = datetime.now(UTC)
            store.advance(
                "p", "v1", now, {e.pod: s for e, s in zip(old_endpoints, base_series, strict=True)}
            )
            delta = store.advance(
                "p", "v1", now, {pod: versions["v1"] for pod, versions in scrape.pods.items()}
            )
            assert delta is not None
            report = compute_drift(profile, counts_matrix(profile, delta), min_samples=1)
            t5 = time.perf_counter()
            assert len(report.features) == features
            same = [v["v1"] for v in scrape.pods.values()]
            assert [v["v1"] for v in by_counts.pods.values()] == same
            timings["scrape_parse"].append(t1 - t0)
            timings["parse_only"].append(t2 - t1)
            timings["scrape_counts"].append(t3 - t2)
            timings["decode_only"].append(t4 - t3)
            timings["window_drift"].append(t5 - t4)
    finally:
        for httpd, _ in [*old, *new]:
            httpd.shutdown()
            httpd.server_close()
    return {key: statistics.median(values) for key, values in timings.items()} | {
        "bins_per_feature": float(width),
        "series_per_pod": float(sum(f.n_bins for f in profile.features)),
    }


# --- Drift evaluation at scale on the real control plane ----------------------------------------


class FakePods:
    """Many model-server pods in one process, each on its own address (``pod_network``) and the
    server's port: one asyncio listener in the bench's network namespace, which tells the pods
    apart by the address a connection came to. Each answers the counts document of any model
    (by path), the model's profile, and ``/metrics`` text of the one model it was given.
    Counters grow by ``step`` at every scrape of a (pod, model). In ``text`` mode the counts
    endpoint answers 404 (an older server), so the operator reads ``/metrics``.

    The scrape times of each model's first pod are recorded: one per evaluation."""

    #: The model server's port, the same on every pod.
    port = 8080

    def __init__(self, pods: int, features: int, bins: int) -> None:
        from modelops.drift import build_profile

        self.addresses = [pod_address(index) for index in range(pods)]
        self._index = {address: index for index, address in enumerate(self.addresses)}
        self.mode = "counts"
        rng = np.random.default_rng(0)
        names = [f"f{i:02d}" for i in range(features)]
        self.profile = build_profile(rng.normal(size=(5000, features)), names, bins=bins - 1)
        self.profile_json = self.profile.to_json().encode()
        width = self.profile.max_bins
        self.base = rng.integers(0, 1000, size=(features, width))
        self.step = rng.integers(0, 50, size=(features, width))
        self.owner: dict[int, str] = {}
        self.first: dict[str, int] = {}
        self.steps: Counter[tuple[int, str]] = Counter()
        self.scrapes: dict[str, list[tuple[float, str]]] = {}
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        PodNetwork.enter_in_this_thread()  # this thread's sockets live with the pod addresses
        self._loop.run_forever()

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result()

    async def _listen(self) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            index = self._index.get(writer.get_extra_info("sockname")[0])
            if index is None:
                writer.close()
                return
            await self._handle(index, reader, writer)

        self._server = await asyncio.start_server(handle, "0.0.0.0", self.port, backlog=4096)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)

    def assign(self, model: str, indexes: list[int]) -> None:
        self.first[model] = min(indexes, key=lambda i: f"fake-pod-{i:05d}")
        self.scrapes[model] = []
        for index in indexes:
            self.owner.setdefault(index, model)

    async def _handle(
        self, index: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            line = await reader.readline()
            while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                del header
            path = line.split()[1].decode() if len(line.split()) > 1 else "/"
            status, body = self.answer(index, path)
            writer.write(
                b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                % (status, b"OK" if status == 200 else b"Not Found", len(body))
                + body
            )
            await writer.drain()
        except (ConnectionError, IndexError):
            pass
        finally:
            writer.close()

    def _counts(self, index: int, model: str, how: str) -> np.ndarray:
        now = time.time()
        if self.first.get(model) == index:
            self.scrapes[model].append((now, how))
        step = self.steps[index, model]
        self.steps[index, model] += 1
        return self.base + step * self.step

    def answer(self, index: int, path: str) -> tuple[int, bytes]:
        self.requests += 1
        parts = path.split("/")
        if path == "/v2/health/ready":
            return 200, b""
        if path == "/metrics" and index in self.owner:
            model = self.owner[index]
            return 200, exposition(self.profile, self._counts(index, model, "text"), model).encode()
        if len(parts) == 5 and parts[1:3] == ["v2", "models"]:
            model = parts[3]
            if parts[4] == "profile":
                return 200, self.profile_json
            if parts[4] == "counts" and self.mode == "counts" and model in self.first:
                return 200, counts_document(
                    self.profile, self._counts(index, model, "counts"), model
                )
        return 404, b""

    def evaluations(self, how: str, since: float, until: float) -> tuple[float, list[float]]:
        """Evaluations read ``how`` during [since, until), and the gaps between consecutive
        evaluations of a policy that ended in it (the caller subtracts the interval: the lag).

        Counted as a rate, not as the scrapes whose start fell in the window: policies created
        together are evaluated in bursts, and a window edge cutting a burst would miscount by up
        to a whole period of some policies (a fifth to a third of the evaluations at N = 200).
        Each policy contributes the window's length over its mean gap."""
        evaluations, gaps = 0.0, []
        for times in self.scrapes.values():
            mine = [t for t, h in times if h == how]
            own = [b - a for a, b in itertools.pairwise(mine) if since <= b < until]
            if own:
                evaluations += (until - since) / statistics.fmean(own)
            gaps += own
        return evaluations, gaps

    def evaluated_twice(self, how: str, after: float) -> int:
        return sum(
            1
            for times in self.scrapes.values()
            if sum(1 for t, h in times if h == how and t >= after) >= 2
        )


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def drift_scale_run(
    policies: int,
    pods_per_policy: int,
    fake_pods: int,
    interval: float,
    window: float,
    text: bool,
    settle: float,
    py_spy: str | None = None,
) -> dict[str, Any]:
    """See ``--drift-scale``; ``settle`` bounds each wait for every policy's second evaluation
    (past it the window is measured all the same, and ``unsettled`` says so); with ``py_spy``
    the operator's stacks over each window go to ``PY_SPY.counts`` / ``.text`` (collapsed)."""
    import uuid

    import psutil

    from kube_testbed.client import KubeClient
    from kube_testbed.controlplane import _timestamp
    from kube_testbed.testbed import Testbed

    results: dict[str, Any] = {"policies": policies, "pods_per_policy": pods_per_policy}
    pods = FakePods(fake_pods, features=50, bins=20)
    pods.start()
    results["fake_pods"] = fake_pods
    results["addresses"] = f"{pods.addresses[0]} - {pods.addresses[-1]}"
    workdir = Path(tempfile.mkdtemp(prefix="operator-bench-drift-"))
    testbed = Testbed(workdir)
    testbed.start()
    namespace = testbed.create_namespace("bench")
    env = {
        **os.environ,
        "KUBECONFIG": str(testbed.operator_kubeconfig),
        "MODELOPS_METRICS_PORT": "0",
        "MODELOPS_HEALTH_PORT": "0",
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    log = (workdir / "operator.log").open("wb")
    operator = subprocess.Popen(
        [sys.executable, "-m", "modelops", "operator", "--namespace", namespace],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    proc = psutil.Process(operator.pid)
    client = KubeClient(testbed.plane.url, namespace, testbed.plane.ssl_context())
    gate = asyncio.Semaphore(16)

    async def create(plural: str, body: dict[str, Any]) -> None:
        async with gate:
            await client.create(plural, body)

    async def until(what: str, check: Any, limit: float, *, fatal: bool = True) -> float:
        begin = time.perf_counter()
        while not await check():
            if time.perf_counter() - begin > limit:
                if fatal:
                    raise SystemExit(f"{what}: not within {limit:.0f} s")
                results.setdefault("unsettled", []).append(what)
                break
            await asyncio.sleep(1.0)
        return time.perf_counter() - begin

    def slice_of(i: int, indexes: list[int]) -> dict[str, Any]:
        """The one EndpointSlice of model ``i``'s Service: its pods, as the EndpointSlice
        controller writes it."""
        from modelops.resources import labels

        model = f"model-{i:04d}"
        return {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{model}-bench",
                # As the EndpointSlice controller labels a slice: the Service's labels, plus
                # the Service's name and the slice's manager.
                "labels": {
                    **labels.model_labels(model),
                    labels.COMPONENT: "server",
                    "kubernetes.io/service-name": model,
                    "endpointslice.kubernetes.io/managed-by": "bench",
                },
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": pods.port, "protocol": "TCP"}],
            "endpoints": [
                {
                    "addresses": [pods.addresses[index]],
                    "conditions": {"ready": True},
                    "targetRef": {
                        "kind": "Pod",
                        "name": f"fake-pod-{index:05d}",
                        "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"fake-pod-{index}")),
                    },
                }
                for index in indexes
            ],
        }

    async def window_figures(how: str) -> dict[str, float]:
        cpu0, t0, times0 = cpu_seconds(proc), time.time(), proc.cpu_times()
        peak_before = peak_rss_mb(operator.pid)  # the set-up's peak, apart from the window's
        spy = None
        if py_spy is not None:
            spy = subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--pid",
                    str(operator.pid),
                    "--duration",
                    f"{window:.0f}",
                    "--rate",
                    "50",
                    "--gil",
                    "--format",
                    "raw",
                    "--output",
                    f"{py_spy}.{how}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        await asyncio.sleep(window)
        cpu1, t1, times1 = cpu_seconds(proc), time.time(), proc.cpu_times()
        evaluations, gaps = pods.evaluations(how, t0, t1)
        lags = [gap - interval for gap in gaps]
        cpu = cpu1 - cpu0
        requests = Counter(
            audit_triple(event)
            for event in testbed.operator_requests(since=t0)
            if _timestamp(event.get("stageTimestamp", "")) < t1
        )
        return {
            "window": t1 - t0,
            "cpu": cpu,
            "cpu_per_minute": cpu * 60 / (t1 - t0),
            "evaluations": evaluations,
            "cpu_per_evaluation": cpu / max(1, evaluations),
            "system_share": (times1.system - times0.system) / cpu if cpu else 0.0,
            "lag_p50": percentile(lags, 50),
            "lag_p99": percentile(lags, 99),
            "lag_max": max(lags) if lags else float("nan"),
            "rss_mb": peak_rss_mb(operator.pid),
            "rss_mb_before_window": peak_before,
            "rss_mb_at_end": peak_rss_mb(operator.pid, "VmRSS"),
            "requests": requests,
        } | ({"py_spy": spy.wait(timeout=60)} if spy is not None else {})

    try:
        await asyncio.sleep(3.0)
        start = time.perf_counter()
        await asyncio.gather(
            *(
                create(
                    "modeldeployments",
                    {
                        "apiVersion": "modelops.dev/v1alpha1",
                        "kind": "ModelDeployment",
                        "metadata": {"name": f"model-{i:04d}"},
                        "spec": {
                            "model": {"uri": f"pvc://models/m{i}/v1", "version": "v1"},
                            "replicas": 0,
                        },
                    },
                )
                for i in range(policies)
            )
        )

        async def all_reconciled() -> bool:
            items = await client.list("modeldeployments")
            return sum(1 for md in items if has_status(md)) >= policies

        await until("ModelDeployments reconciled", all_reconciled, 1800)
        results["models_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        bodies = []
        for i in range(policies):
            indexes = [(i * pods_per_policy + j) % fake_pods for j in range(pods_per_policy)]
            pods.assign(f"model-{i:04d}", indexes)
            bodies.append(slice_of(i, indexes))
        await asyncio.gather(*(create("endpointslices", body) for body in bodies))
        results["slices"] = len(bodies)
        results["slices_seconds"] = time.perf_counter() - start
        start = time.perf_counter()
        begin = time.time()
        await asyncio.gather(
            *(
                create(
                    "driftpolicies",
                    {
                        "apiVersion": "modelops.dev/v1alpha1",
                        "kind": "DriftPolicy",
                        "metadata": {"name": f"policy-{i:04d}"},
                        "spec": {
                            "modelDeploymentRef": {"name": f"model-{i:04d}"},
                            "interval": f"{interval:g}s",
                            "minSamples": 100,
                        },
                    },
                )
                for i in range(policies)
            )
        )
        results["policies_create_seconds"] = time.perf_counter() - start

        async def twice_counts() -> bool:
            return pods.evaluated_twice("counts", begin) >= policies

        await until("every policy evaluated twice", twice_counts, settle, fatal=False)
        results["evaluated_twice_seconds"] = time.perf_counter() - start
        results["evaluated_twice"] = pods.evaluated_twice("counts", begin)

        # Steady state: the Deployment controller (20 writes a second) is still rolling out
        # 2,000 Deployments here, each status update an event the operator answers, and the
        # first evaluations of a policy decide (drift found, the streak, retraining) and write
        # status and Events each; at rest an evaluation writes neither (``reporting``).
        async def deployments_rolled_out() -> bool:
            await asyncio.sleep(4.0)  # a LIST of 2,000 Deployments: not every second
            deployments = await client.list("deployments")
            return len(deployments) >= policies and all(
                (d.get("status") or {}).get("observedGeneration") == d["metadata"]["generation"]
                for d in deployments
            )

        await until("Deployments rolled out", deployments_rolled_out, settle, fatal=False)
        rolled_out = time.time()

        async def twice_more() -> bool:
            return pods.evaluated_twice("counts", rolled_out) >= policies

        await until("every policy evaluated twice more", twice_more, settle, fatal=False)
        results["steady_seconds"] = time.perf_counter() - start
        results["counts"] = await window_figures("counts")
        if text:
            pods.mode = "text"
            switched = time.time()

            async def twice_text() -> bool:
                return pods.evaluated_twice("text", switched) >= policies

            await until(
                "every policy evaluated twice through text", twice_text, settle, fatal=False
            )
            results["text"] = await window_figures("text")
        results["peak_rss_mb"] = peak_rss_mb(operator.pid)
        results["operator_threads"] = proc.num_threads()
        results["fake_requests"] = pods.requests
        results["forbidden"] = testbed.plane.forbidden("system:serviceaccount:modelops-system")
    finally:
        await client.close()
        operator.terminate()
        try:
            operator.wait(timeout=20)
        except subprocess.TimeoutExpired:
            operator.kill()
            operator.wait()
        log.close()
        testbed.stop()
        pods.stop()
    results["operator_log"] = str(workdir / "operator.log")
    return results


def print_drift_scale(args: argparse.Namespace) -> None:
    n, per = args.drift_scale, args.pods_per_policy
    fake = args.fake_pods or n * per
    with PodNetwork():
        results = asyncio.run(
            drift_scale_run(
                n,
                per,
                fake,
                args.interval,
                args.window,
                text=not args.skip_text,
                settle=args.settle_limit,
                py_spy=args.py_spy,
            )
        )
    if results.get("unsettled"):
        print(f"NOT SETTLED within {args.settle_limit:.0f} s: {results['unsettled']}")
    print(
        f"\n== {n} DriftPolicies x {per} pods (50 features x 20 bins), interval "
        f"{args.interval:g} s, on the real control plane (kube-apiserver v1.37.2) =="
    )
    print(
        f"{fake} fake pods in one process on {results['addresses']} (a network namespace); "
        f"{results['slices']} EndpointSlices"
    )
    print(f"{n} ModelDeployments reconciled        {results['models_seconds']:.1f} s")
    print(f"{results['slices']} EndpointSlices created       {results['slices_seconds']:.1f} s")
    print(
        f"policies created / all evaluated twice {results['policies_create_seconds']:.1f} s / "
        f"{results['evaluated_twice_seconds']:.1f} s ({results['evaluated_twice']} of {n})"
    )
    print(
        f"steady (Deployments rolled out, every policy evaluated twice more) "
        f"{results['steady_seconds']:.1f} s"
    )
    rows = [("counts", results["counts"])]
    if "text" in results:
        rows.append(("text", results["text"]))
    for how, r in rows:
        print(
            f"[{how}] window {r['window']:.0f} s: {r['evaluations']:.0f} evaluations, operator CPU "
            f"{r['cpu_per_minute']:.1f} s/min ({r['cpu_per_minute'] / 60 * 100:.0f} % of a core), "
            f"{r['cpu_per_evaluation'] * 1000:.1f} ms per evaluation "
            f"({r['system_share'] * 100:.0f} % of it in the kernel); lag behind due p50 "
            f"{r['lag_p50']:.2f} s, p99 {r['lag_p99']:.2f} s, max {r['lag_max']:.2f} s; "
            f"VmHWM {r['rss_mb']:.0f} MB ({r['rss_mb_before_window']:.0f} MB before the window), "
            f"VmRSS {r['rss_mb_at_end']:.0f} MB at its end"
        )
        requests = r["requests"]
        minutes = r["window"] / 60
        top = ", ".join(f"{k} {v / minutes:.0f}" for k, v in requests.most_common(6))
        print(
            f"[{how}] operator API requests in the window: {sum(requests.values()) / minutes:.0f}"
            f" a minute ({top})"
        )
    counts = results["counts"]
    if "text" in results:
        ratio = results["text"]["cpu_per_evaluation"] / counts["cpu_per_evaluation"]
        print(f"CPU per evaluation, /metrics text over counts documents: {ratio:.1f}x")
    per_eval = counts["cpu_per_evaluation"] * 1000
    print(
        f"target: one evaluation <= 10 ms CPU: {'met' if per_eval <= 10 else 'MISSED'} "
        f"({per_eval:.1f} ms, all operator CPU / evaluations)"
    )
    core = counts["cpu_per_minute"] / 60
    lag = counts["lag_p99"]
    print(
        f"target: < 1 core ({core:.2f}): {'met' if core < 1 else 'MISSED'}; p99 lag < 5 s "
        f"({lag:.2f} s): {'met' if lag < 5 else 'MISSED'}"
    )
    rss = results["peak_rss_mb"]
    print(f"target: peak RSS < 400 MB ({rss:.0f} MB): {'met' if rss < 400 else 'MISSED'}")
    print(
        f"operator threads {results['operator_threads']}, fake-pod requests "
        f"{results['fake_requests']}, requests refused by RBAC {len(results['forbidden'])}"
    )
    print(f"operator log: {results['operator_log']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--rest-seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-cycle", action="store_true")
    parser.add_argument(
        "--real", action="store_true", help="scale run on the real control plane (make k8s-bin)"
    )
    parser.add_argument(
        "--drift-scale",
        type=int,
        metavar="N",
        help="only the drift-evaluation scale run: N DriftPolicies over fake pods (real plane)",
    )
    parser.add_argument("--pods-per-policy", type=int, default=10)
    parser.add_argument("--fake-pods", type=int, default=0, help="default: N x pods per policy")
    parser.add_argument("--interval", type=float, default=60.0, help="spec.interval, seconds")
    parser.add_argument("--window", type=float, default=120.0, help="steady window, seconds")
    parser.add_argument("--skip-text", action="store_true", help="no /metrics text window")
    parser.add_argument(
        "--settle-limit",
        type=float,
        default=900.0,
        help="seconds to wait for every policy's second evaluation before the window",
    )
    parser.add_argument(
        "--py-spy",
        metavar="PREFIX",
        help="record the operator's stacks over each window with py-spy (collapsed format)",
    )
    args = parser.parse_args()
    if args.drift_scale:
        print_drift_scale(args)
        return 0
    if not args.skip_cycle:
        print_cycle(args.repeats)
    if not args.skip_scale:
        print_scale(args.objects, args.rest_seconds, real=args.real)
    return 0


def print_cycle(repeats: int) -> None:
    cycle = evaluation_cycle(features=50, bins=20, pods=10, repeats=repeats)
    total = cycle["scrape_parse"] + cycle["window_drift"]
    by_counts = cycle["scrape_counts"] + cycle["window_drift"]
    print(f"== One drift evaluation: 50 features x 20 bins x 10 pods (median of {repeats}) ==")
    print(f"series per pod                   {cycle['series_per_pod']:.0f}")
    print(f"scrape 10 older pods (404, text) {cycle['scrape_parse'] * 1000:8.1f} ms")
    print(f"  of which parsing (10 texts)    {cycle['parse_only'] * 1000:8.1f} ms")
    print(f"scrape 10 pods' counts documents {cycle['scrape_counts'] * 1000:8.1f} ms")
    print(f"  of which decoding (10 docs)    {cycle['decode_only'] * 1000:8.1f} ms")
    print(f"window + drift engine (peer)     {cycle['window_drift'] * 1000:8.1f} ms")
    print(
        f"whole cycle, /metrics text       {total * 1000:8.1f} ms "
        f"({total / cycle['window_drift']:.1f}x the arithmetic alone; "
        f"{total / 60 * 100:.3f}% of a 60s interval)"
    )
    print(
        f"whole cycle, counts documents    {by_counts * 1000:8.1f} ms "
        f"({total / by_counts:.1f}x faster than /metrics text; "
        f"parsing / decoding {cycle['parse_only'] / cycle['decode_only']:.0f}x)"
    )


def print_scale(n: int, rest_seconds: float, *, real: bool) -> None:
    results = asyncio.run(scale_run_real(n, rest_seconds) if real else scale_run(n, rest_seconds))
    where = "the real control plane (kube-apiserver v1.37.2)" if real else "KMock"
    print(f"\n== {n} ModelDeployments and {n} DriftPolicies against {where} ==")
    print(f"create {n} ModelDeployments (client)   {results['create_seconds']:.1f} s")
    print(f"until all have children and status    {results['reconciled_seconds']:.1f} s")
    print(f"until all are Ready (rolled out)      {results['all_ready_seconds']:.1f} s")
    print(f"create {n} policies until all evaluated {results['policies_evaluated_seconds']:.1f} s")
    print("operator requests per ModelDeployment, creation (children + first status):")
    for kind, value in results["create_per_md"].items():
        print(f"  {kind:<18} {value:.2f}")
    print(f"  controller writes: {dict(results['create_writes'])}")
    ours = results["create_per_md"].get("controller-write", 0.0)
    print(
        f"controller writes to create children and status  {ours:.2f} per ModelDeployment "
        f"(target <= 3: {'met' if ours <= 3 else 'MISSED'})"
    )
    if "rollout_per_md" in results:
        print("operator requests per ModelDeployment, rollout (status mirrors the Deployment):")
        for kind, value in results["rollout_per_md"].items():
            print(f"  {kind:<18} {value:.2f}")
    if real:
        print(
            f"CPU to create and roll out {n}: operator {results['create_operator_cpu']:.1f} s, "
            f"kube-apiserver {results['create_apiserver_cpu']:.1f} s"
        )
        print(
            f"CPU at rest: operator {results['rest_operator_cpu'] * 100:.1f} % of a core, "
            f"kube-apiserver {results['rest_apiserver_cpu'] * 100:.1f} %"
        )
        ready = results["all_ready_seconds"]
        print(f"all {n} Ready within 60 s: {'met' if ready <= 60 else 'MISSED'} ({ready:.1f} s)")
        print(f"requests refused by RBAC: {len(results['forbidden'])}")
    rest = results["rest_writes_per_minute"]
    print(
        f"writes per minute at rest ({results['rest_seconds']:.0f}s window)  {rest:.1f}  "
        f"(target 0: {'met' if rest == 0 else 'MISSED'})"
        + (f" {dict(results['rest_writes'])}" if results["rest_writes"] else "")
    )
    print(f"reads per minute at rest                  {results['rest_reads_per_minute']:.0f}")
    rss = results["operator_peak_rss_mb"]
    print(
        f"operator peak RSS                         {rss:.0f} MB "
        f"(target < 200 MB: {'met' if rss < 200 else 'MISSED'})"
    )
    print(f"operator log: {results['operator_log']}")


if __name__ == "__main__":
    sys.exit(main())
