"""Fewer glibc malloc arenas for the operator process, set before its threads start.

glibc gives every thread that allocates while the others hold the lock a heap of its own, up
to eight per core. The operator evaluates policies on Kopf's 32 handler threads, and what one
thread allocates (decoded counts, windows, scores) is often freed by another or outlives its
neighbours, so each heap keeps its free holes: at 2,000 policies 262 of the 470 MiB in the heaps
were free yet held by the process. Two arenas keep the holes in two heaps where they are reused.
The same as ``MALLOC_ARENA_MAX=2`` in the environment (which wins when set), applied however the
operator is started. Nothing happens on a C library other than glibc.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
from typing import Final

logger = logging.getLogger(__name__)

ARENAS: Final = 2
M_ARENA_MAX: Final = -8
"""mallopt's parameter number for the arena limit (glibc's malloc.h)."""


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas at ``arenas``; whether the cap was set (False: not glibc,
    or ``MALLOC_ARENA_MAX`` chosen by whoever started the process)."""
    if "MALLOC_ARENA_MAX" in os.environ or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        done = bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):
        done = False
    if not done:
        logger.debug("mallopt(M_ARENA_MAX, %d) was refused", arenas)
    return done
