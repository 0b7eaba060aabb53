"""The governed-promotion flags of ``modelops train`` and ``modelops package``.

Each ``train`` flag is also a ``MODELOPS_*`` variable: the operator sets them on retraining Jobs
from ``DriftPolicy.spec.promotion.fairness`` and from what started the retraining. Nothing heavy
is imported here, so ``modelops --help`` stays fast.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from modelops.cliargs import env_option, env_switch, positive_int

if TYPE_CHECKING:
    from modelops.training.card import CardContext
    from modelops.training.fairness import FairnessSettings

METRICS_HELP = (
    "demographic_parity_difference, equalized_odds_difference, demographic_parity_ratio, "
    "equalized_odds_ratio, accuracy_difference or recall_difference"
)


def add_train_options(train: argparse.ArgumentParser) -> None:
    """Sensitive columns, the fairness metric, and what the model card records."""
    env_option(
        train,
        "--sensitive-columns",
        "MODELOPS_SENSITIVE_COLUMNS",
        "comma-separated columns of the data read for fairness only, never model features",
        str,
        None,
    )
    env_option(
        train,
        "--fairness-metric",
        "MODELOPS_FAIRNESS_METRIC",
        f"fairlearn metric reported per sensitive column: {METRICS_HELP}",
        str,
        None,
    )
    env_switch(
        train,
        "--fairness-intersection",
        "MODELOPS_FAIRNESS_INTERSECTION",
        "also evaluate the intersection of the sensitive columns",
    )
    env_option(
        train,
        "--fairness-min-group-rows",
        "MODELOPS_FAIRNESS_MIN_GROUP_ROWS",
        "groups with fewer holdout rows are reported as too small (default 30)",
        positive_int,
        30,
    )
    env_switch(
        train,
        "--allow-sensitive-features",
        "MODELOPS_ALLOW_SENSITIVE_FEATURES",
        "let a sensitive column be a model feature (refused otherwise)",
    )
    for flag, env, text in (
        ("--retraining-reason", "MODELOPS_RETRAINING_REASON", "why the retraining started"),
        ("--policy", "MODELOPS_POLICY", "the DriftPolicy that started it"),
        ("--evaluation-time", "MODELOPS_EVALUATION_TIME", "when it decided (RFC 3339)"),
        ("--job-name", "MODELOPS_JOB_NAME", "the retraining Job"),
        ("--time-column", "MODELOPS_TIME_COLUMN", "a time column: its range goes in the card"),
    ):
        env_option(train, flag, env, f"model card: {text}", str, None)


def add_package_options(package: argparse.ArgumentParser) -> None:
    """``--sensitive`` and what the first version's card records about fairness."""
    package.add_argument(
        "--sensitive",
        help="comma-separated columns of the data that are sensitive: never features, used "
        "with --holdout-data for the card's fairness table",
    )
    package.add_argument("--fairness-metric", help=f"fairlearn metric for the card: {METRICS_HELP}")
    package.add_argument(
        "--fairness-min-group-rows",
        type=positive_int,
        default=30,
        help="groups with fewer holdout rows are reported as too small (default 30)",
    )
    package.add_argument(
        "--allow-sensitive-features",
        action="store_true",
        help="let a sensitive column be a feature of the model (refused otherwise)",
    )
    package.add_argument("--time-column", help="a time column: its range goes in the card")


def fairness_settings(args: argparse.Namespace) -> FairnessSettings:
    """The ``train`` fairness flags as settings (checked by the trainer)."""
    from modelops.training.fairness import FairnessSettings, split_names

    return FairnessSettings(
        columns=split_names(args.sensitive_columns),
        metric=(args.fairness_metric or "").strip() or None,
        intersection=args.fairness_intersection,
        min_group_rows=args.fairness_min_group_rows,
        allow_sensitive_features=args.allow_sensitive_features,
    )


def card_context(args: argparse.Namespace) -> CardContext:
    """The ``train`` card flags."""
    from modelops.training.card import CardContext

    return CardContext(
        reason=args.retraining_reason,
        policy=args.policy,
        job=args.job_name,
        evaluation_time=args.evaluation_time,
        time_column=(args.time_column or "").strip() or None,
    )
