"""Fixtures of the integration tier: the iris artifacts, shared by a test module.

The real control plane (``testbed``, ``node``, ``kube``) comes from tests/conftest.py.
"""

from __future__ import annotations

import pytest
from operator_support import Artifacts, make_artifacts


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    """An iris model v1 with reference, shifted and fresh data."""
    return make_artifacts(tmp_path_factory.mktemp("artifacts"))
