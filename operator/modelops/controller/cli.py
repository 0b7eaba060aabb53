"""``modelops operator [--namespace NS ...|--all-namespaces]``: run the Kopf operator.

Configuration comes from ``MODELOPS_*`` environment variables (see ``settings.OperatorSettings``).
"""

from __future__ import annotations

import argparse
import gc
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``operator`` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "operator",
        help="run the operator (reconciles ModelDeployments and DriftPolicies)",
        description=(
            "Run the ModelOps operator. Settings come from MODELOPS_* environment variables: "
            "MODELOPS_IMAGE, MODELOPS_DEFAULT_RESOURCES (JSON), MODELOPS_METRICS_PORT (8000), "
            "MODELOPS_HEALTH_PORT (8080), MODELOPS_RESYNC_SECONDS, MODELOPS_DRIFT_TICK_SECONDS, "
            "MODELOPS_PVC_ROOT, ..."
        ),
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NS",
        help="watch this namespace (repeat for several; glob patterns such as 'ml-*' work)",
    )
    scope.add_argument(
        "--all-namespaces",
        "-A",
        action="store_true",
        help="watch every namespace (the default when no --namespace is given)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log debug messages")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the operator and block until it is stopped (SIGINT/SIGTERM)."""
    from modelops.controller.settings import OperatorSettings, SettingsError

    try:
        config = OperatorSettings.from_env()
    except SettingsError as exc:
        print(f"modelops operator: {exc}", file=sys.stderr)
        return 2

    from modelops.controller.kube import ClusterConfigError, load_configuration

    # Without a cluster to talk to, Kopf would print a traceback and retry every minute; an API
    # server that does not answer yet is different, and Kopf keeps retrying it.
    try:
        load_configuration()
    except ClusterConfigError as exc:
        print(f"modelops operator: {exc}", file=sys.stderr)
        return 2

    from modelops.controller.malloc import limit_arenas

    limit_arenas()  # before Kopf's threads exist (see malloc)
    gc.set_threshold(*config.gc_thresholds)  # see OperatorSettings.gc_thresholds

    import kopf

    from modelops.controller.handlers import register as register_handlers
    from modelops.controller.logs import quiet_routine_successes

    registry = kopf.OperatorRegistry()
    register_handlers(registry, config)
    kopf.configure(verbose=args.verbose)
    quiet_routine_successes()
    liveness = (
        f"http://{config.health_host}:{config.health_port}/healthz" if config.health_port else None
    )
    namespaces: list[str] = list(args.namespace)
    kopf.run(
        registry=registry,
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=True,
        liveness_endpoint=liveness,
        memo=kopf.Memo(),
    )
    return 0
