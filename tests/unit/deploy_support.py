"""Helpers for the deployment tests: load manifests, render kustomize, lock runtime dependencies.

Run `python tests/unit/deploy_support.py lock > requirements.lock` to re-pin the image's runtime
dependencies from the packages installed in this environment (the transitive closure of
pyproject.toml's `dependencies`, evaluated for Linux).
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "modelops"
MANIFESTS = ROOT / "manifests"
LOCK = ROOT / "requirements.lock"
LINUX = {**default_environment(), "sys_platform": "linux", "platform_system": "Linux", "extra": ""}


def canonical(name: str) -> str:
    """A distribution name in PEP 503 normal form."""
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements() -> list[Requirement]:
    """pyproject.toml's runtime `dependencies` that apply on Linux."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [Requirement(text) for text in project["dependencies"]]
    return [r for r in requirements if r.marker is None or r.marker.evaluate(LINUX)]


def installed_closure() -> dict[str, str]:
    """Name -> installed version for the runtime requirements and everything they need."""
    pinned: dict[str, str] = {}
    todo = runtime_requirements()
    while todo:
        requirement = todo.pop()
        name = canonical(requirement.name)
        if name in pinned:
            continue
        distribution = importlib.metadata.distribution(requirement.name)
        pinned[name] = distribution.version
        for text in distribution.requires or []:
            child = Requirement(text)
            if child.marker is None or child.marker.evaluate(LINUX):
                todo.append(child)
    return dict(sorted(pinned.items()))


def read_lock(path: Path = LOCK) -> dict[str, str]:
    """Name -> version of every `name==version` line; anything else is an error."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)", line)
        if match is None:
            raise ValueError(f"{path.name}:{number}: not an exact pin: {raw!r}")
        pins[canonical(match[1])] = match[2]
    return pins


def yaml_documents(text: str) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a multi-document text."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def yaml_files(folder: Path) -> Iterator[Path]:
    """Every YAML file under a folder, sorted."""
    yield from sorted(p for p in folder.rglob("*") if p.suffix in {".yaml", ".yml"})


def kustomize(folder: Path) -> list[dict[str, Any]] | None:
    """`kubectl kustomize folder` as objects, or None when kubectl is not installed."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    result = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {folder} failed:\n{result.stderr}")
    return yaml_documents(result.stdout)


def pod_specs(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(description, pod spec) of every pod template inside a workload object."""
    kind = obj.get("kind")
    name = f"{kind}/{obj.get('metadata', {}).get('name')}"
    spec = obj.get("spec", {})
    if kind == "Pod":
        yield name, spec
    elif kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        yield name, spec["template"]["spec"]
    elif kind == "CronJob":
        yield name, spec["jobTemplate"]["spec"]["template"]["spec"]


def lock_text() -> str:
    """The requirements.lock text for this environment."""
    header = (
        "# Runtime dependencies of the modelops image, pinned (transitive closure of pyproject's\n"
        "# `dependencies` on Linux). Regenerate: python tests/unit/deploy_support.py lock\n"
    )
    return header + "".join(f"{n}=={v}\n" for n, v in installed_closure().items())


if __name__ == "__main__":
    if sys.argv[1:] != ["lock"]:
        sys.exit("usage: python tests/unit/deploy_support.py lock > requirements.lock")
    sys.stdout.write(lock_text())
