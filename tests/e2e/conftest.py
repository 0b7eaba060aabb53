"""The e2e tier runs only against a real cluster (kind): `make kind-up`, then `make e2e`.

It is skipped, with a message saying how to run it, unless MODELOPS_E2E=1 is set and the current
kubectl context answers.
"""

from __future__ import annotations

import pytest
from e2e_support import Cluster, current_cluster


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    return current_cluster()
