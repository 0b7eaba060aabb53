"""Command-line flags that also read ``MODELOPS_*`` environment variables.

The operator's pod specs pass flags and users of the image may prefer variables, so every command
builds its flags here, the same way: a flag beats its variable, which beats the default; an empty
variable counts as unset; a flag with neither a variable nor a default is required.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

TRUE_WORDS = ("1", "true", "yes", "on")
REQUIRED: Any = object()
"""Default of a flag that must be given (as the flag or its variable)."""


def env_option(
    parser: argparse.ArgumentParser,
    flag: str,
    env: str,
    help_text: str,
    kind: Callable[[str], Any] = str,
    default: Any = REQUIRED,
    **extra: Any,
) -> None:
    """Add ``flag`` with its default taken from ``env`` (converted by ``kind`` like the flag)."""
    from_env = os.environ.get(env) or None
    parser.add_argument(
        flag,
        type=kind,
        default=from_env if from_env is not None else (None if default is REQUIRED else default),
        required=default is REQUIRED and from_env is None,
        help=f"{help_text} (env {env})",
        **extra,
    )


def env_switch(parser: argparse.ArgumentParser, flag: str, env: str, help_text: str) -> None:
    """Add an on/off ``flag``, also switched on by ``env`` set to 1, true, yes or on."""
    parser.add_argument(
        flag,
        action="store_true",
        default=os.environ.get(env, "").strip().lower() in TRUE_WORDS,
        help=f"{help_text} (env {env}=true)",
    )


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number, 1 or more."""
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return value
