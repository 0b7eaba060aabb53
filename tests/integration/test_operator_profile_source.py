"""The operator gets the reference profile from the serving pods, as it must in a cluster.

In a cluster the operator does not mount the models' PersistentVolumeClaims, so for a
``pvc://`` model the only way to the profile is the server's ``/v2/models/<name>/profile``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from operator_support import run, start_model_server

from modelops.controller.sources import Endpoint, fetch_profile
from modelops.drift import Profile, ProfileError

pytestmark = pytest.mark.integration


def test_a_pvc_model_profile_comes_from_the_serving_pod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The model lives where a pod would mount the claim, but the operator's PVC root is empty.
    model_dir = tmp_path / "pvc" / "models" / "iris" / "v1"
    run(["example", "model", "--dataset", "iris", "--output", str(model_dir)], tmp_path)
    monkeypatch.setenv("MODELOPS_PVC_ROOT", str(tmp_path / "operator-sees-no-claims"))
    stored = Profile.from_json((model_dir / "profile.json").read_bytes())
    server = start_model_server(model_dir.as_uri(), "iris", tmp_path / "server.log")
    try:
        pods = [
            Endpoint("gone-0", "127.0.0.1", 1),  # a pod that went away is skipped
            Endpoint("server-0", "127.0.0.1", server.port),
        ]
        assert fetch_profile("pvc://models/iris/v1", "iris", pods, timeout=5.0) == stored
    finally:
        server.stop()

    with pytest.raises(ProfileError, match="not mounted in the operator"):
        fetch_profile("pvc://models/iris/v1", "iris", [], timeout=1.0)
