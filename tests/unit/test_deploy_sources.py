"""Generated deploy files match their single source (run `python tests/unit/deploy_support.py
sync` after changing rbac.py, the rules file or the dashboard)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from deploy_support import ROOT, RULES_FILE, generated_files, prometheus_rule

GENERATED = generated_files()


@pytest.mark.parametrize("path", sorted(GENERATED), ids=lambda p: str(p.relative_to(ROOT)))
def test_generated_file_is_fresh(path: Path) -> None:
    assert path.exists(), f"{path.relative_to(ROOT)} is missing: run deploy_support.py sync"
    assert path.read_text(encoding="utf-8") == GENERATED[path], (
        f"{path.relative_to(ROOT)} is stale: run `python tests/unit/deploy_support.py sync`"
    )


def test_prometheus_rule_spec_is_the_rules_file() -> None:
    text = RULES_FILE.read_text(encoding="utf-8")
    rule = prometheus_rule(text)
    assert rule["spec"] == yaml.safe_load(text)
    assert rule["kind"] == "PrometheusRule"
