"""limit_arenas: glibc's arena cap, set unless the environment already chose one."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from modelops.controller import malloc


def test_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert malloc.limit_arenas() is False


def test_nothing_is_tried_on_another_c_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert malloc.limit_arenas() is False


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_threads_share_two_arenas_once_capped() -> None:
    """Eight threads allocating at once: each gets an arena without the cap, two hold them all
    with it (counted in malloc_info's XML, one <heap> per arena)."""
    script = """
import ctypes, os, sys, threading, tempfile
from modelops.controller import malloc
if sys.argv[1] == "cap":
    assert malloc.limit_arenas()
barrier = threading.Barrier(8)
def work():
    barrier.wait()
    keep = [bytearray(1000) for _ in range(5000)]  # past pymalloc: malloc
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fdopen.restype = ctypes.c_void_p
libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.TemporaryFile("w+") as out:
    stream = libc.fdopen(os.dup(out.fileno()), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    out.seek(0)
    print(out.read().count("<heap nr="))
"""
    env = {"PATH": "/usr/bin:/bin"}

    def arenas(mode: str) -> int:
        done = subprocess.run(
            [sys.executable, "-c", script, mode],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        return int(done.stdout)

    assert arenas("cap") <= 2 < arenas("free")
