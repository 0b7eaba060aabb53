"""`modelops` command line: one entry point, one sub-command per part.

Each part owns its sub-command in a small `cli` module exposing `register(subparsers)`; those
modules import their heavy dependencies (scikit-learn, kopf, uvicorn) only when the command runs,
so `modelops --help` stays fast and one part's import failure cannot break another's command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

from modelops import __version__

#: Modules that each add one sub-command (see the module docstrings for the commands).
COMMAND_MODULES = (
    "modelops.controller.cli",  # modelops operator
    "modelops.serving.cli",  # modelops serve
    "modelops.training.cli",  # modelops train, modelops example
    "modelops.training.card_cli",  # modelops card
    "modelops.drift_report",  # modelops drift report
    "modelops.crdgen",  # modelops crds
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="modelops",
        description="Serve scikit-learn models on Kubernetes, watch their drift, retrain them.",
    )
    parser.add_argument("--version", action="version", version=f"modelops {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and run the chosen sub-command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
