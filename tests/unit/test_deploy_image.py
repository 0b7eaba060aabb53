"""The Dockerfile builds one consistent image (no Docker engine here: its contents are checked,
not built): pinned base and dependencies, numeric non-root user, read-only-root friendly."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
from deploy_support import (
    LINUX,
    LOCK,
    ROOT,
    canonical,
    installed_closure,
    lock_text,
    read_lock,
    runtime_requirements,
)
from packaging.requirements import Requirement
from packaging.version import Version

DOCKERFILE = ROOT / "Dockerfile"


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def test_base_image_is_a_pinned_slim_python() -> None:
    args = dict(a.split("=", 1) for k, a in instructions() if k == "ARG" and "=" in a)
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", base), base
    froms = [a for k, a in instructions() if k == "FROM"]
    assert all(a.split()[0] == "${PYTHON_IMAGE}" for a in froms)


def test_runs_as_a_numeric_non_root_user_with_tmp_for_scratch() -> None:
    stage = final_stage()
    (user,) = [a for k, a in stage if k == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), "USER must be numeric (runAsNonRoot cannot verify a name)"
    assert gid.isdigit()
    assert int(uid) >= 10000
    assert int(gid) >= 10000
    env = " ".join(a for k, a in stage if k == "ENV")
    for setting in ("TMPDIR=/tmp", "HOME=/tmp", "PYTHONDONTWRITEBYTECODE=1"):
        assert setting in env
    # Nothing runs after USER that could need root, and the user is not changed back.
    after_user = [k for k, _ in stage[[k for k, _ in stage].index("USER") :]]
    assert "RUN" not in after_user


def test_entrypoint_is_the_modelops_command() -> None:
    (entrypoint,) = [a for k, a in final_stage() if k == "ENTRYPOINT"]
    assert entrypoint == '["modelops"]'


def test_dependencies_are_installed_exactly_from_the_lock() -> None:
    runs = " && ".join(a for k, a in instructions() if k == "RUN")
    assert "--no-deps" in runs
    assert "-r requirements.lock" in runs
    assert "pip check" in runs
    for command in re.findall(r"pip install ([^&]*)", runs):
        tokens = command.split()
        for before, token in zip(["", *tokens], tokens, strict=False):
            if before == "-r" or token.startswith("-") or "/" in token:
                continue
            assert re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.]+", token), (
                f"unpinned package in the Dockerfile: {token}"
            )


def test_lock_pins_every_runtime_dependency_within_pyproject_bounds() -> None:
    pins = read_lock()
    for requirement in runtime_requirements():
        name = canonical(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: regenerate it"
        assert requirement.specifier.contains(Version(pins[name]), prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside {requirement.specifier}"
        )


def test_lock_is_closed_under_the_dependencies_of_its_pins() -> None:
    """Where this environment has a pinned version installed, what it requires is pinned too
    (the image build's `pip install --no-deps` + `pip check` enforce the rest)."""
    pins = read_lock()
    checked = 0
    for name, version in pins.items():
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if distribution.version != version:
            continue
        checked += 1
        for text in distribution.requires or []:
            child = Requirement(text)
            if child.marker is None or child.marker.evaluate(LINUX):
                assert canonical(child.name) in pins, f"{name} needs {child.name}: re-lock"
    assert checked, "no pinned version is installed here to check against"


def test_lock_generator_reproduces_the_lock_here_when_versions_match() -> None:
    installed = installed_closure()
    pins = read_lock()
    if installed != pins:
        pytest.skip("this environment has other versions than the lock (a fresh CI machine)")
    assert LOCK.read_text(encoding="utf-8") == lock_text()


def test_dockerignore_keeps_the_context_to_what_the_build_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*"
    copied = {
        source
        for k, a in instructions()
        if k == "COPY" and "--from" not in a
        for source in a.split()[:-1]
    }
    for source in copied:
        assert f"!{source.rstrip('/')}" in {p.rstrip("/") for p in patterns}, source
    assert LOCK.name in copied
