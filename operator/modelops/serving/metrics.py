"""Prometheus metrics of the server, in their own registry, kept as plain numbers until a scrape.

A request only adds to Python ints and hands its feature matrix to a ``BinCounter``, which bins
rows in bulk every few thousand rows and before every scrape; the metric families are built at
scrape time by a custom collector. Per-request ``Counter.labels().inc()`` calls for every feature
bin would cost more than the prediction itself.

Names (binding, see DESIGN.md):
``modelops_inference_requests_total{model,version,protocol,code}``,
``modelops_inference_request_duration_seconds{model,version,protocol}``,
``modelops_inference_rows_total``,
``modelops_feature_bin_total{model,version,feature,bin}``, ``modelops_model_info``,
``modelops_prediction_bin_total{model,version,bin}`` (bin = the label of the profile's output bin:
the class for a classifier), ``modelops_feedback_rows_total{model,version}``,
``modelops_feedback_confusion_total{model,version,actual,predicted}`` (every class pair, zeros
included), ``modelops_feedback_{abs_error,squared_error,target,target_squared}_total``.
"""

from __future__ import annotations

import uuid
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from modelops.drift import Profile
from modelops.serving.binning import CHUNK_ROWS, BinCounter, PredictionCounter
from modelops.serving.counts import encode_counts
from modelops.serving.feedback import FeedbackCounter

#: Latency buckets in seconds: fine below a millisecond, where a 1-row prediction lands.
LATENCY_BUCKETS = (
    0.0002,
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
#: The ``protocol`` label: V2 REST (JSON or binary tensors) and gRPC. ``code`` is the HTTP status
#: for both (a gRPC error counts as the HTTP status of the same error), so one alert on 5xx
#: covers both transports.
PROTOCOLS = ("rest", "grpc")


class ServingMetrics(Collector):
    """Counters of one served model; every method runs in the event-loop thread."""

    def __init__(
        self,
        model: str,
        version: str,
        profile: Profile,
        info: Mapping[str, str],
        *,
        buckets: tuple[float, ...] = LATENCY_BUCKETS,
        count_bins: bool = True,
        chunk_rows: int = CHUNK_ROWS,
        task: str | None = None,
        estimator_classes: Sequence[Any] | None = None,
        classes: Sequence[str] | None = None,
    ) -> None:
        """``task`` (``classification`` or ``regression``) switches the feedback counters on:
        a regressor's sums, or a classifier's confusion matrix over ``classes`` (its labels as
        text; without them a classifier counts no feedback). ``estimator_classes``: a
        classifier's ``classes_``, the columns of ``predict_proba``."""
        self.model = model
        self.version = version
        self.profile = profile
        self.info = dict(info)
        self.buckets = buckets
        self.requests_by_code: dict[tuple[str, int], int] = {}
        self.bucket_counts = {protocol: [0] * (len(buckets) + 1) for protocol in PROTOCOLS}
        self.latency_sum = dict.fromkeys(PROTOCOLS, 0.0)
        self.rows = 0
        self.start = uuid.uuid4().hex
        """This process's identity in the counts document: counters began at zero with it."""
        self.bins = BinCounter(profile, chunk_rows=chunk_rows) if count_bins else None
        self.predictions = (
            None
            if profile.output is None
            else PredictionCounter(profile, estimator_classes, chunk_rows=chunk_rows)
        )
        self.feedback: FeedbackCounter | None = None
        if task == "regression":
            self.feedback = FeedbackCounter(None)
        elif task == "classification" and classes:
            self.feedback = FeedbackCounter(classes)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        ProcessCollector(registry=self.registry)

    def observe_request(self, code: int, seconds: float, protocol: str = "rest") -> None:
        """Count one inference request by protocol and (HTTP) status code, and its latency.
        Called once its response went out, so whole chunks of served rows are binned here: the
        requests whose rows fill a chunk get their answers first."""
        key = (protocol, code)
        self.requests_by_code[key] = self.requests_by_code.get(key, 0) + 1
        self.bucket_counts[protocol][bisect_left(self.buckets, seconds)] += 1
        self.latency_sum[protocol] += seconds
        bins = self.bins
        if bins is not None and bins.pending_rows >= bins.chunk_rows:
            bins.bin_whole_chunks()
        predictions = self.predictions
        if predictions is not None and predictions.pending_rows >= predictions.chunk_rows:
            predictions.bin_whole_chunks()

    def observe_rows(self, features: np.ndarray) -> None:
        """Count one batch of served rows (``[rows, features]`` in profile order; kept until
        binned, so it must not change afterwards)."""
        self.rows += features.shape[0]
        if self.bins is not None:
            self.bins.add(features)

    def observe_predictions(self, predictions: np.ndarray) -> None:
        """Count one batch of served predictions (``predict``'s output, 1-D; kept until binned)."""
        if self.predictions is not None:
            self.predictions.add(predictions)

    def observe_probabilities(self, probabilities: np.ndarray) -> None:
        """Count the predictions of a batch answered with ``predict_proba`` only: the class of
        highest probability per row."""
        if self.predictions is not None:
            self.predictions.add_class_indices(np.argmax(probabilities, axis=1))

    def prediction_bin_counts(self) -> np.ndarray | None:
        """Served predictions per bin of the output entry (None: the profile has none)."""
        return None if self.predictions is None else self.predictions.counts()

    def feature_bin_counts(self) -> np.ndarray:
        """``(features, max_bins)`` counts of every value served so far, by profile bin."""
        if self.bins is None:
            return np.zeros((len(self.profile.features), self.profile.max_bins), dtype=np.int64)
        return self.bins.counts()

    def counts_document(self) -> bytes:
        """The counts document (``modelops.serving.counts``): the numbers of ``/metrics``."""
        profile = self.profile
        return encode_counts(
            model=self.model,
            version=self.version,
            start=self.start,
            rows=self.rows,
            names=profile.feature_names,
            n_bins=[feature.n_bins for feature in profile.features],
            counts=self.feature_bin_counts(),
            predictions=self.prediction_bin_counts(),
            feedback=None if self.feedback is None else self.feedback.snapshot(),
        )

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        labels = [self.model, self.version]
        requests = CounterMetricFamily(
            "modelops_inference_requests",
            "Inference requests, by protocol (rest, grpc) and HTTP status code (for gRPC the "
            "HTTP status of the same outcome).",
            labels=["model", "version", "protocol", "code"],
        )
        for (protocol, code), count in sorted(self.requests_by_code.items()):
            requests.add_metric([*labels, protocol, str(code)], count)
        yield requests

        latency = HistogramMetricFamily(
            "modelops_inference_request_duration_seconds",
            "Time from receiving an inference request to sending its response.",
            labels=["model", "version", "protocol"],
        )
        for protocol in PROTOCOLS:
            counts = self.bucket_counts[protocol]
            if not any(counts):
                continue  # a protocol nobody used (e.g. gRPC turned off) adds no series
            cumulative, buckets = 0, []
            for bound, count in zip((*self.buckets, float("inf")), counts, strict=True):
                cumulative += count
                buckets.append((_bound_label(bound), cumulative))
            latency.add_metric([*labels, protocol], buckets, self.latency_sum[protocol])
        yield latency

        rows = CounterMetricFamily(
            "modelops_inference_rows",
            "Rows predicted (one row is one sample).",
            labels=["model", "version"],
        )
        rows.add_metric(labels, self.rows)
        yield rows

        bins = CounterMetricFamily(
            "modelops_feature_bin",
            "Served feature values counted into the bins of the model's reference profile "
            "(bin = index in the profile's bin layout).",
            labels=["model", "version", "feature", "bin"],
        )
        counts = self.feature_bin_counts().tolist()
        for feature, row in zip(self.profile.features, counts, strict=True):
            for index in range(feature.n_bins):
                bins.add_metric([*labels, feature.name, str(index)], row[index])
        yield bins

        yield from self._prediction_families(labels)
        yield from self._feedback_families(labels)

        info = InfoMetricFamily("modelops_model", "The model this server serves.")
        info.add_metric([], {"model": self.model, "version": self.version, **self.info})
        yield info

    def _prediction_families(self, labels: list[str]) -> Iterator[Metric]:
        counter = self.predictions
        if counter is None:
            return
        family = CounterMetricFamily(
            "modelops_prediction_bin",
            "Served predictions counted into the bins of the reference profile's output entry "
            "(bin = the bin's label: the class for a classifier, the value range for a "
            "regressor).",
            labels=["model", "version", "bin"],
        )
        for label, count in zip(counter.output.bin_labels, counter.counts().tolist(), strict=True):
            family.add_metric([*labels, label], count)
        yield family

    def _feedback_families(self, labels: list[str]) -> Iterator[Metric]:
        feedback = self.feedback
        if feedback is None:
            return
        rows = CounterMetricFamily(
            "modelops_feedback_rows",
            "Rows of ground truth posted to /feedback and counted.",
            labels=["model", "version"],
        )
        rows.add_metric(labels, feedback.rows)
        yield rows
        if feedback.classes is not None:
            confusion = CounterMetricFamily(
                "modelops_feedback_confusion",
                "Feedback rows by true class (actual) and the model's prediction (predicted).",
                labels=["model", "version", "actual", "predicted"],
            )
            matrix = feedback.confusion.tolist()
            for row, actual in enumerate(feedback.classes):
                for column, predicted in enumerate(feedback.classes):
                    confusion.add_metric([*labels, actual, predicted], matrix[row][column])
            yield confusion
            return
        sums = (
            ("abs_error", "absolute errors |truth - prediction|", feedback.abs_error),
            ("squared_error", "squared errors (truth - prediction)^2", feedback.squared_error),
            ("target", "true values", feedback.target),
            ("target_squared", "squared true values", feedback.target_squared),
        )
        for name, what, value in sums:
            family = CounterMetricFamily(
                f"modelops_feedback_{name}",
                f"Sum of the feedback's {what}.",
                labels=["model", "version"],
            )
            family.add_metric(labels, value)
            yield family


def _bound_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
