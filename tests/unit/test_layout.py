"""The package layout keeps the standard library's `operator` module reachable."""

from __future__ import annotations

import importlib
import subprocess
import sys


def test_import_operator_is_the_standard_library() -> None:
    # Run in a fresh interpreter from the repository root, where an `operator/` folder exists.
    code = "import operator, modelops; print(operator.__file__); print(operator.itemgetter)"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    first = out.splitlines()[0]
    assert "site-packages" not in first
    assert first.endswith("operator.py")
    assert "modelops" not in first


def test_modelops_is_importable_and_typed() -> None:
    module = importlib.import_module("modelops")
    assert module.API_GROUP == "modelops.dev"
    assert module.API_VERSION == "v1alpha1"
