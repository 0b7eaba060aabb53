"""The checked-in gRPC stubs (operator/modelops/serving/proto) are what protoc makes of the
.proto today (hack/grpc_stubs.py), and they coexist with a client's copy of the protocol."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def stubs_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grpc_stubs", ROOT / "hack" / "grpc_stubs.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_regenerating_gives_the_checked_in_files(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    script = stubs_script()
    generated = script.generate(tmp_path)
    target = ROOT / "operator" / script.PROTO.parent
    assert sorted(generated) == sorted(script.GENERATED)
    for name, text in generated.items():
        assert (target / name).read_text() == text, f"{name} is stale: run hack/grpc_stubs.py"


def test_stubs_import_next_to_tritons_copy_of_the_protocol() -> None:
    pytest.importorskip("tritonclient.grpc")
    code = (
        "import tritonclient.grpc.service_pb2 as t\n"
        "from modelops.serving.proto import open_inference_grpc_pb2 as ours\n"
        "m = ours.ModelInferRequest(model_name='m', raw_input_contents=[b'x'])\n"
        "assert t.ModelInferRequest.FromString(m.SerializeToString()).model_name == 'm'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
