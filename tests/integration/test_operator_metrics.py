"""The operator's /metrics: DESIGN.md's names, served on the configured port, promtool-clean."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request

import pytest

from modelops.controller.metrics import OperatorMetrics

pytestmark = pytest.mark.integration

NAMES = (
    "modelops_drift_score",
    "modelops_drift_detected",
    "modelops_retraining_jobs_total",
    "modelops_promotions_total",
    "modelops_promotions_blocked_total",
    "modelops_reconcile_total",
    "modelops_reconcile_duration_seconds",
    "modelops_modeldeployment_ready",
)


def test_metrics_endpoint_is_promtool_clean() -> None:
    metrics = OperatorMetrics()
    metrics.set_drift("ml", "iris-drift", "iris", {"petal_length": {"psi": 0.4, "ks": 0.2}})
    metrics.drift_detected.labels("ml", "iris-drift").set(1)
    metrics.retraining_jobs.labels("ml", "iris-drift", "started").inc()
    metrics.promotions.labels("ml", "iris", "auto").inc()
    metrics.promotions_blocked.labels("ml", "iris", "FairnessGateFailed").inc()
    metrics.set_model_ready("ml", "iris", ready=True)
    with metrics.reconciling("ModelDeployment"):
        pass
    with pytest.raises(RuntimeError), metrics.reconciling("DriftPolicy"):
        raise RuntimeError("counted as an error")
    port = metrics.serve("127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        metrics.stop()
    for name in NAMES:
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert 'modelops_reconcile_total{kind="DriftPolicy",result="error"} 1.0' in text
    assert (
        'modelops_drift_score{feature="petal_length",metric="psi",model="iris",'
        'namespace="ml",policy="iris-drift"} 0.4' in text
    )
    assert (
        'modelops_promotions_blocked_total{model="iris",namespace="ml",'
        'reason="FairnessGateFailed"} 1.0' in text
    )
    assert "process_cpu_seconds_total" not in text  # an own registry, nothing else in it
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    assert checked.stdout.decode().strip() == ""


def test_forgetting_a_policy_drops_its_gauges() -> None:
    metrics = OperatorMetrics()
    metrics.set_drift("ml", "a", "m", {"f": {"psi": 1.0}})
    metrics.set_drift("ml", "b", "m", {"f": {"psi": 2.0}})
    metrics.drift_detected.labels("ml", "a").set(1)
    metrics.forget_policy("ml", "a")
    samples = [s.labels for f in metrics.drift_score.collect() for s in f.samples]
    assert samples == [
        {"namespace": "ml", "policy": "b", "model": "m", "feature": "f", "metric": "psi"}
    ]
    assert [s.labels for f in metrics.drift_detected.collect() for s in f.samples] == []


def test_new_scores_replace_the_policys_series_and_only_those() -> None:
    metrics = OperatorMetrics()
    metrics.set_drift("ml", "a", "m", {"f": {"psi": 1.0, "ks": 0.5}, "g": {"psi": 2.0}})
    metrics.set_drift("ml", "b", "m", {"f": {"psi": 3.0}})
    metrics.set_prediction_drift("ml", "a", "m", {"psi": 0.1, "ks": 0.2})
    metrics.set_drift("ml", "a", "m2", {"g": {"psi": 4.0}})  # a feature and the model changed
    metrics.set_prediction_drift("ml", "a", "m2", {"psi": 0.3})
    scores = {
        (s.labels["policy"], s.labels["model"], s.labels["feature"], s.labels["metric"]): s.value
        for f in metrics.drift_score.collect()
        for s in f.samples
    }
    assert scores == {("a", "m2", "g", "psi"): 4.0, ("b", "m", "f", "psi"): 3.0}
    predictions = {
        (s.labels["model"], s.labels["metric"]): s.value
        for f in metrics.prediction_drift_score.collect()
        for s in f.samples
    }
    assert predictions == {("m2", "psi"): 0.3}
    metrics.forget_policy("ml", "a")
    metrics.set_drift("ml", "a", "m", {"f": {"psi": 5.0}})  # the same name created again
    assert len([s for f in metrics.drift_score.collect() for s in f.samples]) == 2


def test_model_ready_gauge_follows_the_condition_and_goes_with_the_model() -> None:
    metrics = OperatorMetrics()
    metrics.set_model_ready("ml", "iris", ready=True)
    metrics.set_model_ready("ml", "wine", ready=False)
    metrics.set_model_ready("ml", "iris", ready=False)
    values = {s.labels["model"]: s.value for f in metrics.model_ready.collect() for s in f.samples}
    assert values == {"iris": 0.0, "wine": 0.0}
    metrics.forget_model("ml", "iris")
    metrics.forget_model("ml", "never-seen")  # deleting an unknown model is not an error
    assert [s.labels["model"] for f in metrics.model_ready.collect() for s in f.samples] == ["wine"]
