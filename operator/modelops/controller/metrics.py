"""The operator's Prometheus metrics, in their own registry (names binding, DESIGN.md).

An own registry keeps the process/platform collectors and any library's metrics out of the
operator's /metrics, so what is exported is exactly what the dashboard and alert rules use.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from time import perf_counter
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from modelops.controller.policy_gauges import PolicyScoreGauge


class OperatorMetrics:
    """All operator metrics; one instance per operator run."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.drift_score = PolicyScoreGauge(
            "modelops_drift_score",
            "Drift score of one feature by one metric in the policy's last evaluation "
            "(higher means more drift).",
            ("feature", "metric"),
            self.registry,
        )
        self.drift_detected = Gauge(
            "modelops_drift_detected",
            "1 when the policy's last evaluation breached its trigger rule, else 0.",
            ["namespace", "policy"],
            registry=self.registry,
        )
        self.prediction_drift_score = PolicyScoreGauge(
            "modelops_prediction_drift_score",
            "Drift score of the served predictions by one metric in the policy's last "
            "evaluation (higher means more drift).",
            ("metric",),
            self.registry,
        )
        self.performance_value = Gauge(
            "modelops_performance_value",
            "The live metric computed from ground-truth feedback in the policy's last "
            "evaluation that had enough feedback.",
            ["namespace", "policy", "model", "metric"],
            registry=self.registry,
        )
        self.performance_baseline = Gauge(
            "modelops_performance_baseline",
            "The serving model's holdout value of the policy's live metric (metadata.json).",
            ["namespace", "policy", "model", "metric"],
            registry=self.registry,
        )
        self.prediction_drift_detected = Gauge(
            "modelops_prediction_drift_detected",
            "1 when the policy's last evaluation found the served predictions drifted, else 0.",
            ["namespace", "policy"],
            registry=self.registry,
        )
        self.performance_degraded = Gauge(
            "modelops_performance_degraded",
            "1 when the policy's last judged live metric was degraded (maxDrop, min or max), "
            "else 0.",
            ["namespace", "policy"],
            registry=self.registry,
        )
        self.retraining_jobs = Counter(
            "modelops_retraining_jobs",
            "Retraining Jobs by outcome (started, succeeded, failed).",
            ["namespace", "policy", "result"],
            registry=self.registry,
        )
        self.promotions = Counter(
            "modelops_promotions",
            "Candidate models promoted to serving, by promotion mode.",
            ["namespace", "model", "mode"],
            registry=self.registry,
        )
        self.promotions_blocked = Counter(
            "modelops_promotions_blocked",
            "Candidate models refused promotion by a gate, by reason (FairnessGateFailed, "
            "FairnessGroupTooSmall); once per candidate.",
            ["namespace", "model", "reason"],
            registry=self.registry,
        )
        self.model_ready = Gauge(
            "modelops_modeldeployment_ready",
            "1 while the ModelDeployment's Ready condition is True, else 0.",
            ["namespace", "model"],
            registry=self.registry,
        )
        self.reconciles = Counter(
            "modelops_reconcile",
            "Reconciliations by kind and result (success, error, invalid).",
            ["kind", "result"],
            registry=self.registry,
        )
        self.reconcile_duration = Histogram(
            "modelops_reconcile_duration_seconds",
            "Time one reconciliation or drift evaluation took.",
            ["kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self._server: Any = None

    @contextmanager
    def reconciling(self, kind: str) -> Iterator[None]:
        """Count and time one reconciliation; an exception counts as ``error`` and propagates."""
        start = perf_counter()
        try:
            yield
        except Exception:
            self.reconciles.labels(kind=kind, result="error").inc()
            raise
        else:
            self.reconciles.labels(kind=kind, result="success").inc()
        finally:
            self.reconcile_duration.labels(kind=kind).observe(perf_counter() - start)

    def set_drift(
        self, namespace: str, policy: str, model: str, scores: dict[str, dict[str, float]]
    ) -> None:
        """Replace the policy's per-feature gauges with ``scores`` (feature -> metric -> score)."""
        self.drift_score.set(
            namespace,
            policy,
            model,
            (
                ((feature, metric), score)
                for feature, by_metric in scores.items()
                for metric, score in by_metric.items()
            ),
        )

    def set_prediction_drift(
        self, namespace: str, policy: str, model: str, scores: dict[str, float]
    ) -> None:
        """Replace the policy's prediction drift gauges with ``scores`` (metric -> score)."""
        self.prediction_drift_score.set(
            namespace, policy, model, (((metric,), score) for metric, score in scores.items())
        )

    def forget_policy(self, namespace: str, policy: str) -> None:
        """Drop every gauge of a deleted policy."""
        self.drift_score.forget(namespace, policy)
        self.prediction_drift_score.forget(namespace, policy)
        for gauge in (
            self.performance_value,
            self.performance_baseline,
            self.prediction_drift_detected,
            self.performance_degraded,
            self.drift_detected,
        ):
            _remove_policy(gauge, namespace, policy)

    def set_model_ready(self, namespace: str, model: str, ready: bool) -> None:
        """Mirror a ModelDeployment's Ready condition (what the not-ready alert watches)."""
        self.model_ready.labels(namespace, model).set(1 if ready else 0)

    def forget_model(self, namespace: str, model: str) -> None:
        """Drop a deleted ModelDeployment's gauge, so no alert fires for what no longer exists."""
        if (namespace, model) in _label_sets(self.model_ready):
            self.model_ready.remove(namespace, model)

    def serve(self, host: str, port: int) -> int:
        """Start the /metrics HTTP server; returns the bound port (useful with port 0)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        return int(server.server_port)

    def stop(self) -> None:
        """Stop the /metrics HTTP server if it runs."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _remove_policy(metric: Gauge, namespace: str, policy: str) -> None:
    """Remove every series of ``metric`` whose first two labels are the policy's (a scan of
    all series: for deletions, not for every evaluation)."""
    for labels in _label_sets(metric):
        if labels[0] == namespace and labels[1] == policy:
            metric.remove(*labels)


def _label_sets(metric: Gauge) -> list[tuple[str, ...]]:
    """The label values of the metric's series: the keys of its children, without collecting
    (``collect`` builds a sample per series: with every policy's per-feature scores, each
    evaluation paid for all the others' series, so the cost grew with the square of the
    policies)."""
    with metric._lock:
        return [tuple(labels) for labels in metric._metrics]
