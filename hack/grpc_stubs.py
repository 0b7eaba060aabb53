"""Generate the gRPC stubs of the Open Inference Protocol into the package (grpcio-tools).

    python3 hack/grpc_stubs.py           # rewrite operator/modelops/serving/proto/*_pb2*.py*
    python3 hack/grpc_stubs.py --check   # exit 1 when the checked-in files are stale

The generated message module registers its types in a descriptor pool of its own, not in
protobuf's default pool: Triton's and KServe's clients register the same ``inference.*`` names
(from their own copies of the protocol) in the default pool, and one process may import both
(a test, a user's client next to our server in-process). That one line is the only edit made to
protoc's output; ``tests/unit/test_serving_grpc_stubs.py`` checks the files are fresh.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOT = ROOT / "operator"
PROTO = Path("modelops/serving/proto/open_inference_grpc.proto")
GENERATED = (
    "open_inference_grpc_pb2.py",
    "open_inference_grpc_pb2.pyi",
    "open_inference_grpc_pb2_grpc.py",
)
DEFAULT_POOL = "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile("
OWN_POOL = (
    "# modelops: a pool of its own (hack/grpc_stubs.py), so clients' copies of the protocol\n"
    "# can be imported in the same process.\n"
    "DESCRIPTOR = _descriptor_pool.DescriptorPool().AddSerializedFile("
)


def generate(out_dir: Path) -> dict[str, str]:
    """Run protoc on the .proto; returns the generated files by name (post-processed)."""
    from grpc_tools import protoc

    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{SOURCE_ROOT}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            str(SOURCE_ROOT / PROTO),
        ]
    )
    if code != 0:
        raise RuntimeError(f"protoc failed with exit code {code}")
    files = {name: (out_dir / PROTO.parent / name).read_text() for name in GENERATED}
    pb2 = files["open_inference_grpc_pb2.py"]
    if pb2.count(DEFAULT_POOL) != 1:
        raise RuntimeError("protoc's output changed shape: the descriptor pool line is not there")
    files["open_inference_grpc_pb2.py"] = pb2.replace(DEFAULT_POOL, OWN_POOL)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the files are fresh")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        files = generate(Path(tmp))
    target = SOURCE_ROOT / PROTO.parent
    stale = [name for name, text in files.items() if _read(target / name) != text]
    if args.check:
        for name in stale:
            print(f"{target / name} is stale: run python3 hack/grpc_stubs.py", file=sys.stderr)
        return 1 if stale else 0
    for name in stale:
        (target / name).write_text(files[name])
        print(f"wrote {target / name}")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


if __name__ == "__main__":
    sys.exit(main())
