"""Alert rules and dashboard: promtool accepts and unit-tests the rules, every alert is tested,
the dashboard's queries are valid PromQL, and both use only metrics the code exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import DASHBOARD_FILE, ROOT, RULES_FILE

PROMTOOL = shutil.which("promtool")
RULE_TESTS = Path(__file__).parent / "promtool" / "modelops_rules_test.yaml"
REQUIRED_ALERTS = {
    "ModelOpsDriftDetected",
    "ModelOpsRetrainingFailed",
    "ModelOpsModelDeploymentNotReady",
    "ModelOpsOperatorDown",
}
#: Grafana's variables, replaced by what they expand to in a query.
GRAFANA_VARIABLES = {
    "$__rate_interval": "2m",
    "$__interval": "1m",
    "$__range": "6h",
    "$namespace": ".*",
    "$model": ".*",
    "$policy": ".*",
    "$metric": ".*",
}
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: apt-get install prometheus (see .ci/run)"
)


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text(encoding="utf-8"))
    return loaded


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expr) of every query panel."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", str(RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_required_alerts_exist_and_each_fires_in_a_unit_test() -> None:
    alerts = {rule["alert"] for rule in rules() if "alert" in rule}
    assert alerts >= REQUIRED_ALERTS
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    silent = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }
    assert fired == alerts, f"alerts never fired in a test: {alerts - fired}"
    assert silent == alerts, f"alerts never checked silent: {alerts - silent}"


def test_every_alert_has_a_severity_summary_and_description() -> None:
    for rule in rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}
            assert rule["annotations"]["summary"]
            assert rule["annotations"]["description"]


@needs_promtool
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    queries = dashboard_queries()
    variables = [
        v["definition"] for v in dashboard()["templating"]["list"] if v.get("type") == "query"
    ]
    expressions = [expr for _, expr in queries] + [
        re.fullmatch(r"label_values\((.+), *\w+\)", query)[1]  # type: ignore[index]
        for query in variables
    ]
    recording = []
    for index, expr in enumerate(expressions):
        for variable, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unknown Grafana variable in {expr}"
        recording.append({"record": f"dashboard:query_{index}", "expr": expr})
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recording}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_shows_what_operators_need() -> None:
    board = dashboard()
    assert board["uid"]
    assert board["title"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    text = "\n".join(expr for _, expr in dashboard_queries())
    for needle in (
        "modelops_drift_score",  # drift per feature
        "by (policy, feature, metric)",
        "modelops_retraining_jobs_total",
        "modelops_promotions_total",
        "rate(modelops_inference_requests_total",  # inference rate
        'code=~"5.."',  # errors
        "modelops_inference_request_duration_seconds_bucket",  # latency
    ):
        assert needle in text
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"


def metric_names(text: str) -> set[str]:
    return set(re.findall(r"\bmodelops_[a-z_]+[a-z]\b", text))


def exported_by_code() -> set[str]:
    """Names the code registers, with the suffixes prometheus_client adds."""
    source = "\n".join(
        path.read_text(encoding="utf-8") for path in (ROOT / "operator" / "modelops").rglob("*.py")
    )
    names: set[str] = set()
    for kind, name in re.findall(
        r"(Counter|Gauge|Histogram|Info|CounterMetricFamily|GaugeMetricFamily|"
        r"HistogramMetricFamily|InfoMetricFamily)\(\s*\"(modelops_[a-z_]+)\"",
        source,
    ):
        if kind.startswith("Counter"):
            names.add(f"{name}_total")
        elif kind.startswith("Histogram"):
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
        elif kind.startswith("Info"):
            names.add(f"{name}_info")
        else:
            names.add(name)
    return names


def used_metrics() -> set[str]:
    return metric_names(RULES_FILE.read_text(encoding="utf-8")) | metric_names(
        DASHBOARD_FILE.read_text(encoding="utf-8")
    )


def test_rules_and_dashboard_use_only_exported_metrics() -> None:
    exported = exported_by_code()
    assert "modelops_inference_requests_total" in exported  # the scanner sees the code
    unknown = used_metrics() - exported
    assert sorted(unknown) == []
