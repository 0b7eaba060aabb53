"""Where a DriftPolicy's live bin counts come from: the serving pods, or Prometheus.

Pure parts (parsing, summing, matrix building) are separate from the HTTP calls, which use the
standard library with a timeout, a deadline and a size limit. Nothing here talks to the Kubernetes
API: the EndpointSlices are read by ``kube`` and handed in.

A serving pod is read through its counts document (``modelops.serving.counts``: JSON arrays,
decoded in a fraction of the time Prometheus' text takes to parse); a server without it (an
older image answers 404) through ``/metrics`` text.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from numpy.typing import NDArray
from prometheus_client.parser import text_string_to_metric_families

from modelops.artifacts import (
    HOLDOUT_PARAMETER_PREFIX,
    METADATA_FILE,
    PROFILE_FILE,
    ModelMetadata,
)
from modelops.controller import multiget, signals
from modelops.controller.window import (
    MAX_LAYOUTS,
    Counters,
    CounterVector,
    Layout,
    SeriesKey,
    layout,
)
from modelops.drift import Profile, ProfileError
from modelops.serving.counts import Counts, CountsError, counts_path, decode_counts
from modelops.storage import StorageError, join_uri, local_path, parse_uri

BIN_METRIC: Final = "modelops_feature_bin"
"""The family name of ``modelops_feature_bin_total`` as the parser reports it."""
PREDICTION_METRIC: Final = "modelops_prediction_bin"
FEEDBACK_ROWS_METRIC: Final = "modelops_feedback_rows"
CONFUSION_METRIC: Final = "modelops_feedback_confusion"
FEEDBACK_SUM_METRICS: Final = {
    "modelops_feedback_abs_error": "absError",
    "modelops_feedback_squared_error": "squaredError",
    "modelops_feedback_target": "target",
    "modelops_feedback_target_squared": "targetSquared",
}
"""Families of the regression sums, and their names in the counts document."""
COUNTED_FAMILIES: Final = frozenset(
    {BIN_METRIC, PREDICTION_METRIC, FEEDBACK_ROWS_METRIC, CONFUSION_METRIC, *FEEDBACK_SUM_METRICS}
)
MAX_RESPONSE_BYTES: Final = 64 * 1024 * 1024
READ_BYTES: Final = 256 * 1024
"""Bytes read at once from a response (the deadline is checked between reads)."""
COUNTS_DOCUMENT: Final = "counts"
METRICS_TEXT: Final = "metrics"
"""How a pod was read: ``PodScrape.via`` values."""


class SourceError(Exception):
    """The source could not be read (unreachable, bad answer); the message says why.

    ``status`` is the HTTP status of an error answer (None when there was no answer).
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Endpoint:
    """One ready serving pod: its identity (``name/uid``) and where its HTTP port is."""

    pod: str
    address: str
    port: int

    @property
    def base_url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}"


# --- Pure parts ------------------------------------------------------------------------------


def one_per_pod(endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    """``endpoints`` one per pod (the last one seen of a pod), sorted by pod."""
    found = {endpoint.pod: endpoint for endpoint in endpoints}
    return [found[pod] for pod in sorted(found)]


def ready_endpoints(slices: Iterable[Mapping[str, Any]], port_name: str = "http") -> list[Endpoint]:
    """The ready endpoints of a Service's EndpointSlices, one per pod, sorted by pod."""
    return one_per_pod(_ready(slices, port_name))


def _ready(slices: Iterable[Mapping[str, Any]], port_name: str) -> Iterator[Endpoint]:
    for eps in slices:
        port = next(
            (p.get("port") for p in eps.get("ports") or [] if p.get("name") == port_name), None
        )
        if not isinstance(port, int):
            continue
        for endpoint in eps.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            addresses = endpoint.get("addresses") or []
            if not addresses:
                continue
            ref = endpoint.get("targetRef") or {}
            pod = f"{ref.get('name', addresses[0])}/{ref.get('uid', '')}"
            yield Endpoint(pod=pod, address=str(addresses[0]), port=port)


def _series_key(family: str, labels: Mapping[str, str]) -> SeriesKey | None:
    """The window's key of one sample of ``family`` (see ``signals``), None for other families."""
    if family == BIN_METRIC:
        return (labels.get("feature", ""), labels.get("bin", ""))
    if family == PREDICTION_METRIC:
        return (signals.PREDICTION_LABEL, labels.get("bin", ""))
    if family == FEEDBACK_ROWS_METRIC:
        return (signals.FEEDBACK, "rows")
    if family == CONFUSION_METRIC:
        pair = labels.get("actual", "") + signals.SEPARATOR + labels.get("predicted", "")
        return (signals.CONFUSION, pair)
    if family in FEEDBACK_SUM_METRICS:
        return (signals.FEEDBACK, FEEDBACK_SUM_METRICS[family])
    return None


def parse_bin_counters(text: str, model: str) -> dict[str, dict[SeriesKey, float]]:
    """The bin, prediction and feedback counters of ``model`` in ``/metrics`` text, by version:
    version -> series (keyed as in ``signals``)."""
    by_version: dict[str, dict[SeriesKey, float]] = {}
    try:
        for family in text_string_to_metric_families(text):
            # A family without a TYPE line is "untyped" and keeps the _total in its name.
            name = family.name.removesuffix("_total")
            if name not in COUNTED_FAMILIES:
                continue
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue
                labels = sample.labels
                if labels.get("model") != model:
                    continue
                key = _series_key(name, labels)
                if key is None:
                    continue
                series = by_version.setdefault(labels.get("version", ""), {})
                series[key] = series.get(key, 0.0) + float(sample.value)
    except ValueError as exc:
        raise SourceError(f"unparsable metrics: {exc}") from None
    return by_version


def counts_matrix(profile: Profile, series: Mapping[SeriesKey, float]) -> NDArray[np.float64]:
    """Series summed into the profile's ``(n_features, max_bins)`` layout.

    Series of features the profile does not know, and bins beyond a feature's range, are ignored
    (they cannot come from a server serving this profile).
    """
    index = {name: row for row, name in enumerate(profile.feature_names)}
    matrix = np.zeros((len(profile.features), profile.max_bins), dtype=np.float64)
    for (feature, bin_label), value in series.items():
        row = index.get(feature)
        if row is None or not bin_label.isdigit():
            continue
        column = int(bin_label)
        if column < profile.features[row].n_bins and value > 0:
            matrix[row, column] += value
    return matrix


def choose_version(versions: Iterable[str], wanted: str | None) -> str | None:
    """The version to judge: the wanted one if given, else the only one seen (None if several)."""
    seen = sorted(set(versions))
    if wanted:
        return wanted
    return seen[0] if len(seen) == 1 else None


def promql(
    model: str,
    version: str | None,
    window: str,
    metric: str = "modelops_feature_bin_total",
    by: tuple[str, ...] = ("feature", "bin"),
) -> str:
    """The PromQL of a window's growth of one counter of one model (and version)."""
    matchers = [f'model="{_escape(model)}"']
    if version:
        matchers.append(f'version="{_escape(version)}"')
    selector = ",".join(matchers)
    labels = ", ".join(("namespace", "version", *by))
    return f"sum by ({labels}) (increase({metric}{{{selector}}}[{window}]))"


SignalTask = Literal["classification", "regression"]


def signal_queries(
    predictions: bool, feedback: SignalTask | None
) -> list[tuple[str, tuple[str, ...], Callable[[Mapping[str, str]], SeriesKey]]]:
    """The counters a policy needs beyond the bins: (metric, grouping labels, series key)."""
    queries: list[tuple[str, tuple[str, ...], Callable[[Mapping[str, str]], SeriesKey]]] = []
    if predictions:
        queries.append(
            (
                PREDICTION_METRIC + "_total",
                ("bin",),
                lambda labels: (signals.PREDICTION_LABEL, labels.get("bin", "")),
            )
        )
    if feedback is not None:
        queries.append(
            (FEEDBACK_ROWS_METRIC + "_total", (), _constant_key((signals.FEEDBACK, "rows")))
        )
    if feedback == "classification":
        queries.append(
            (
                CONFUSION_METRIC + "_total",
                ("actual", "predicted"),
                lambda labels: (
                    signals.CONFUSION,
                    labels.get("actual", "") + signals.SEPARATOR + labels.get("predicted", ""),
                ),
            )
        )
    elif feedback == "regression":
        for family, name in FEEDBACK_SUM_METRICS.items():
            queries.append((family + "_total", (), _constant_key((signals.FEEDBACK, name))))
    return queries


def _constant_key(key: SeriesKey) -> Callable[[Mapping[str, str]], SeriesKey]:
    """A series key that does not depend on the labels (a counter with one series)."""
    return lambda _labels: key


def _bin_key(labels: Mapping[str, str]) -> SeriesKey:
    return (str(labels.get("feature", "")), str(labels.get("bin", "")))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def parse_prometheus_vector(
    document: Mapping[str, Any],
    namespace: str,
    key: Callable[[Mapping[str, str]], SeriesKey] = _bin_key,
) -> dict[str, dict[SeriesKey, float]]:
    """A Prometheus instant-vector answer as version -> series; series labelled with another
    namespace are dropped (scrape configs without a namespace label keep everything)."""
    if document.get("status") != "success":
        raise SourceError(f"Prometheus answered {document.get('error') or document.get('status')}")
    data = document.get("data") or {}
    if data.get("resultType") != "vector":
        raise SourceError(f"Prometheus answered a {data.get('resultType')}, not a vector")
    by_version: dict[str, dict[SeriesKey, float]] = {}
    for item in data.get("result") or []:
        labels = item.get("metric") or {}
        if labels.get("namespace", namespace) != namespace:
            continue
        try:
            value = float(item["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            raise SourceError("Prometheus answered a sample without a value") from None
        if not np.isfinite(value):
            continue
        series_key = key(labels)
        series = by_version.setdefault(str(labels.get("version", "")), {})
        series[series_key] = series.get(series_key, 0.0) + value
    return by_version


# --- HTTP ------------------------------------------------------------------------------------


def http_get(url: str, timeout: float) -> bytes:
    """GET ``url`` (size-limited); SourceError on any failure.

    ``timeout`` bounds each socket operation and, checked between reads, the whole body: a server
    that trickles its answer is given up on soon after ``timeout``, not after each of its bytes.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "modelops-operator"})  # noqa: S310
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    size = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            while chunk := response.read1(READ_BYTES):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise SourceError(f"GET {url} answered more than {MAX_RESPONSE_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise SourceError(f"GET {url} failed: no whole answer within {timeout:g} s")
    except urllib.error.HTTPError as exc:
        raise SourceError(f"GET {url} answered HTTP {exc.code}", status=exc.code) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceError(f"GET {url} failed: {reason}") from None
    return b"".join(chunks)


@dataclass(frozen=True)
class PodScrape:
    """What scraping the serving pods gave: counters per pod and version, how each pod was read
    (COUNTS_DOCUMENT or METRICS_TEXT), and the failures.

    A pod read through its counts document is keyed ``name/uid/start``: a new server process in
    the same pod is a new key, so the window takes its counters in full.
    """

    pods: dict[str, Mapping[str, Counters]]
    via: dict[str, str]
    errors: dict[str, str]

    def describe(self) -> str:
        """How many pods were read and how, for SourceReady's message."""
        read, text = len(self.pods), sum(1 for how in self.via.values() if how == METRICS_TEXT)
        if not text:
            detail = f"{read} serving pod(s) through the counts endpoint"
        elif text == read:
            detail = f"{read} serving pod(s) through /metrics text (no counts endpoint)"
        else:
            detail = (
                f"{read} serving pod(s): {read - text} through the counts endpoint, "
                f"{text} through /metrics text (no counts endpoint)"
            )
        if self.errors:
            detail += f", {len(self.errors)} not read ({next(iter(self.errors.values()))})"
        return detail


def counts_series(counts: Counts) -> CounterVector:
    """A counts document's bins as the series ``/metrics`` text gives (feature, bin) -> value,
    and its prediction and feedback counts (see ``signals``), as one vector: the bins are the
    document's arrays end to end, over a layout made once per profile."""
    extra = signals.counts_document_series(counts)
    shape = (tuple((name, len(values)) for name, values in counts.features.items()), tuple(extra))
    shared = _counts_layouts.get(shape)
    if shared is None:
        keys = [(name, str(index)) for name, size in shape[0] for index in range(size)]
        shared = _counts_layouts[shape] = layout([*keys, *extra])
        if len(_counts_layouts) > MAX_LAYOUTS:
            _counts_layouts.clear()
    values = np.concatenate(
        [*counts.features.values(), np.fromiter(extra.values(), np.float64, len(extra))],
        dtype=np.float64,
    )
    return CounterVector(shared, values)


_counts_layouts: dict[tuple[tuple[tuple[str, int], ...], tuple[SeriesKey, ...]], Layout] = {}
"""Layouts of counts documents by their shape (feature names and sizes, other series), so that
the keys of a profile's thousand series are built once, not at every scrape (a lost race only
builds one twice: ``layout`` interns it)."""


def scrape_pods(
    endpoints: list[Endpoint], model: str, *, timeout: float, concurrency: int
) -> PodScrape:
    """Read every endpoint at once from the calling thread (at most ``concurrency`` requests
    open, each given up on after ``timeout``, so a slow or dead pod holds up nothing but its
    own request; see ``multiget``); SourceError when none could be read."""
    if not endpoints:
        raise SourceError("the Service has no ready endpoints")
    scrape = PodScrape(pods={}, via={}, errors={})
    results = _read_pods(endpoints, model, timeout=timeout, concurrency=concurrency)
    for endpoint, result in zip(endpoints, results, strict=True):
        if isinstance(result, SourceError):
            scrape.errors[endpoint.pod] = str(result)
        else:
            key, versions, how = result
            scrape.pods[key] = versions
            scrape.via[key] = how
    if not scrape.pods:
        first = next(iter(scrape.errors.values()))
        raise SourceError(f"no serving pod could be read ({len(scrape.errors)} tried): {first}")
    return scrape


PodRead = tuple[str, Mapping[str, Counters], str]


def _read_pods(
    endpoints: list[Endpoint], model: str, *, timeout: float, concurrency: int
) -> list[PodRead | SourceError]:
    """Each endpoint's counts document, and ``/metrics`` text of those without one (HTTP 404:
    an older server), decoded; a SourceError for each pod that could not be read."""
    urls = [endpoint.base_url + counts_path(model) for endpoint in endpoints]
    answers = get_many(urls, timeout=timeout, concurrency=concurrency)
    older = [
        i for i, got in enumerate(answers) if isinstance(got, SourceError) and got.status == 404
    ]
    texts = get_many(
        [endpoints[i].base_url + "/metrics" for i in older],
        timeout=timeout,
        concurrency=concurrency,
    )
    by_text = dict(zip(older, texts, strict=True))
    return [
        _from_text(endpoint, model, by_text[index])
        if index in by_text
        else _from_counts(endpoint, model, url, answer)
        for index, (endpoint, url, answer) in enumerate(zip(endpoints, urls, answers, strict=True))
    ]


def _from_counts(
    endpoint: Endpoint, model: str, url: str, answer: bytes | SourceError
) -> PodRead | SourceError:
    """A pod read through its counts document, or why it could not be."""
    if isinstance(answer, SourceError):
        return answer
    try:
        counts = decode_counts(answer, model)
    except CountsError as exc:
        return SourceError(f"GET {url} answered a malformed counts document: {exc}")
    return (
        f"{endpoint.pod}/{counts.start}",
        {counts.version: counts_series(counts)},
        COUNTS_DOCUMENT,
    )


def _from_text(endpoint: Endpoint, model: str, text: bytes | SourceError) -> PodRead | SourceError:
    """A pod read through ``/metrics`` text (an older server), or why it could not be."""
    if isinstance(text, SourceError):
        return text
    try:
        counters = parse_bin_counters(text.decode("utf-8", "replace"), model)
    except SourceError as exc:
        return exc
    return endpoint.pod, counters, METRICS_TEXT


def get_many(urls: list[str], *, timeout: float, concurrency: int) -> list[bytes | SourceError]:
    """The bodies of ``urls`` read at once (``multiget``), failures as SourceErrors."""
    answers = multiget.get_many(
        urls, timeout=timeout, max_bytes=MAX_RESPONSE_BYTES, concurrency=concurrency
    )
    return [
        SourceError(str(answer), status=answer.status)
        if isinstance(answer, multiget.GetError)
        else answer
        for answer in answers
    ]


def query_prometheus(
    base_url: str,
    model: str,
    version: str | None,
    namespace: str,
    window: str,
    *,
    timeout: float,
    predictions: bool = False,
    feedback: SignalTask | None = None,
) -> dict[str, dict[SeriesKey, float]]:
    """The window's bin counts from Prometheus' HTTP API (``increase`` over ``window``), and with
    ``predictions``/``feedback`` the prediction bins and feedback counters too (one query each).

    ``increase`` treats a fall as a counter reset, so the sum of regression targets is right
    only while it grows (non-negative targets); the pods source has no such limit."""
    by_version: dict[str, dict[SeriesKey, float]] = {}
    queries = [
        ("modelops_feature_bin_total", ("feature", "bin"), _bin_key),
        *signal_queries(predictions, feedback),
    ]
    for metric, by, key in queries:
        query = urllib.parse.urlencode({"query": promql(model, version, window, metric, by)})
        url = f"{base_url.rstrip('/')}/api/v1/query?{query}"
        raw = http_get(url, timeout)
        try:
            document = json.loads(raw)
        except ValueError:
            raise SourceError(
                f"Prometheus at {base_url} answered something that is not JSON"
            ) from None
        if not isinstance(document, dict):
            raise SourceError(f"Prometheus at {base_url} answered an unexpected document")
        for version_label, series in parse_prometheus_vector(document, namespace, key).items():
            by_version.setdefault(version_label, {}).update(series)
    return by_version


def fetch_profile(
    model_uri: str, model: str, endpoints: list[Endpoint], *, timeout: float
) -> Profile:
    """The reference profile of the served model.

    Tried in order: the serving pods' ``GET /v2/models/<name>/profile`` (exactly the profile the
    bins are counted against), then ``profile.json`` at the model URI when the operator can read
    it (an http(s) URI, or a file:// or pvc:// path present in the operator's filesystem, as in
    tests that run the operator beside the server). ProfileError or SourceError say why not.
    """
    problems: list[str] = []
    for endpoint in endpoints:
        try:
            return Profile.from_json(
                http_get(f"{endpoint.base_url}/v2/models/{model}/profile", timeout)
            )
        except SourceError as exc:
            problems.append(str(exc))
    try:
        parsed = parse_uri(model_uri)
        if parsed.is_object_store:
            raise SourceError(
                f"{model_uri} is in object storage, which the operator does not read (it holds "
                "no credentials)"
            )
        if parsed.is_http:
            return Profile.from_json(http_get(join_uri(model_uri, PROFILE_FILE), timeout))
        path = local_path(model_uri) / PROFILE_FILE
        if path.is_file():
            return Profile.from_json(path.read_bytes())
        problems.append(f"{path} is not mounted in the operator")
    except (StorageError, SourceError, OSError) as exc:
        problems.append(str(exc))
    raise ProfileError("the model's profile is unavailable: " + "; ".join(problems[:3]))


def fetch_holdout_metrics(
    model_uri: str,
    model: str,
    version: str | None,
    endpoints: list[Endpoint],
    *,
    timeout: float,
) -> dict[str, float]:
    """The holdout metrics in the model's ``metadata.json`` (the performance baseline).

    Tried in order: the serving pods' V2 model metadata (``GET /v2/models/<name>``, whose
    parameters carry them as ``holdout_<metric>``) from a pod serving ``version``, then
    ``metadata.json`` at the model URI where the operator can read it (an http(s) URI, or a
    file:// or pvc:// path present in its filesystem). SourceError says why neither worked.
    """
    problems: list[str] = []
    for endpoint in endpoints:
        try:
            document = json.loads(http_get(f"{endpoint.base_url}/v2/models/{model}", timeout))
        except (SourceError, ValueError) as exc:
            problems.append(f"{endpoint.pod}: {exc}")
            continue
        metrics = holdout_parameters(document, version)
        if metrics is not None:
            return metrics
        problems.append(f"{endpoint.pod} serves another version than {version}")
    try:
        parsed = parse_uri(model_uri)
        if parsed.is_object_store:
            raise SourceError(f"{model_uri} is in object storage, which the operator does not read")
        if parsed.is_http:
            raw = http_get(join_uri(model_uri, METADATA_FILE), timeout)
        else:
            path = local_path(model_uri) / METADATA_FILE
            if not path.is_file():
                raise SourceError(f"{path} is not mounted in the operator")
            raw = path.read_bytes()
        return dict(ModelMetadata.model_validate_json(raw).metrics)
    except (StorageError, OSError, ValueError, SourceError) as exc:
        problems.append(f"{METADATA_FILE} of {model_uri} is unreadable: {exc}")
    raise SourceError("the model's holdout metrics are unavailable: " + "; ".join(problems[:3]))


def holdout_parameters(document: Any, version: str | None) -> dict[str, float] | None:
    """The ``holdout_<metric>`` parameters of a V2 model metadata document, or None when it is
    not one of ``version`` (any version when None); non-numeric values are ignored."""
    if not isinstance(document, dict):
        return None
    versions = document.get("versions")
    if version is not None and (not isinstance(versions, list) or version not in versions):
        return None
    parameters = document.get("parameters")
    if not isinstance(parameters, dict):
        return {}
    return {
        key.removeprefix(HOLDOUT_PARAMETER_PREFIX): float(value)
        for key, value in parameters.items()
        if key.startswith(HOLDOUT_PARAMETER_PREFIX)
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    }
