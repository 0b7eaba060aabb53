"""A gauge of many scores per policy, kept as one array per policy and exported when scraped.

prometheus_client keeps an object per labelled series (the child gauge, its dict, value and
lock, and its key in two dicts: ~1.3 KB). A policy has one drift score per feature and metric,
250 for 50 features by 5 metrics, so 2,000 policies held 500,000 such children, most of the
operator's memory, and every evaluation set 250 of them one lock at a time. Here a policy's
scores are its labels (one tuple, shared by the policies of one profile) and an array of
values, replaced whole by each evaluation; the samples are only built while /metrics is read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

POLICY_LABELS: Final = ("namespace", "policy", "model")

MAX_SHARED_LABELS: Final = 4096
"""Distinct label tuples shared between policies (one per profile in practice); past it the
memo starts over."""


@dataclass(frozen=True, slots=True)
class _Scores:
    model: str
    labels: tuple[tuple[str, ...], ...]
    values: NDArray[np.float64]


class PolicyScoreGauge(Collector):
    """The gauge ``name`` with labels namespace, policy, model and ``score_labels``."""

    def __init__(
        self,
        name: str,
        documentation: str,
        score_labels: tuple[str, ...],
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.label_names = (*POLICY_LABELS, *score_labels)
        self._scores: dict[tuple[str, str], _Scores] = {}
        self._shared: dict[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]] = {}
        self._lock = threading.Lock()
        registry.register(self)

    def set(
        self,
        namespace: str,
        policy: str,
        model: str,
        scores: Iterable[tuple[tuple[str, ...], float]],
    ) -> None:
        """Replace the policy's series with ``scores``: (score label values, value) pairs."""
        pairs = list(scores)
        if not pairs:
            self.forget(namespace, policy)
            return
        labels = tuple(label_values for label_values, _ in pairs)
        values = np.fromiter((value for _, value in pairs), np.float64, len(pairs))
        with self._lock:
            shared = self._shared.get(labels)
            if shared is None:
                if len(self._shared) >= MAX_SHARED_LABELS:
                    self._shared.clear()
                shared = self._shared[labels] = labels
            self._scores[namespace, policy] = _Scores(model, shared, values)

    def forget(self, namespace: str, policy: str) -> None:
        """Drop the policy's series."""
        with self._lock:
            self._scores.pop((namespace, policy), None)

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self.name, self.documentation, labels=self.label_names)

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.label_names)
        with self._lock:
            policies = list(self._scores.items())
        for (namespace, policy), scores in policies:
            for label_values, value in zip(scores.labels, scores.values.tolist(), strict=True):
                family.add_metric([namespace, policy, scores.model, *label_values], value)
        yield family
