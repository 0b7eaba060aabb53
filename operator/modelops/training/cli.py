"""``modelops train`` and ``modelops example``: flags (each also a ``MODELOPS_*`` variable),
exit codes, and the result JSON on stdout and in the termination log.

Exit codes (a contract with the operator): 0 a model was published or an identical one was
already there, 3 the data-quality gate failed, 2 bad input or usage, 1 anything else. The result
JSON (:class:`modelops.artifacts.TrainingResult`) is written in every case that gets past flag
parsing; errors also get one plain line on stderr, never a traceback.

scikit-learn is imported only when a command runs, so ``modelops --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from modelops.cliargs import env_option, non_negative_int

DEFAULT_TERMINATION_LOG = Path("/dev/termination-log")
DATASET_NAMES = ("iris", "wine", "breast_cancer", "diabetes")

log = logging.getLogger("modelops.training")


def register(subparsers: Any) -> None:
    """Add the ``train`` and ``example`` sub-commands."""
    train = subparsers.add_parser(
        "train",
        help="refit a clone of the current model on fresh data and publish a challenger",
        description=(
            "Refit a clone of the base model (its own pipeline, or an allow-listed --estimator) "
            "on fresh CSV data, score the new model and the base model on the same seeded "
            "holdout, and publish <output-uri>/<version>/ atomically. "
            "Exit codes: 0 published (or already identical), 3 data-quality gate failed, "
            "2 bad input, 1 other failure."
        ),
    )
    env_option(
        train,
        "--data-uri",
        "MODELOPS_DATA_URI",
        "CSV with a header and the target column (file://, pvc://, http(s):// or s3://)",
    )
    env_option(
        train, "--base-model-uri", "MODELOPS_BASE_MODEL_URI", "the champion's model directory"
    )
    env_option(
        train,
        "--output-uri",
        "MODELOPS_OUTPUT_URI",
        "where <version>/ is written (file://, pvc:// or s3://)",
    )
    env_option(train, "--version", "MODELOPS_VERSION", "the candidate version label")
    env_option(
        train, "--seed", "MODELOPS_SEED", "seed of the split and the estimator", non_negative_int, 0
    )
    env_option(
        train,
        "--termination-log",
        "MODELOPS_TERMINATION_LOG",
        f"file for the result JSON (default {DEFAULT_TERMINATION_LOG}, written when it exists)",
        Path,
        None,
    )
    env_option(
        train,
        "--estimator",
        "MODELOPS_ESTIMATOR",
        "allow-listed estimator to use instead of the base model's",
        str,
        None,
    )
    env_option(
        train, "--test-size", "MODELOPS_TEST_SIZE", "holdout share, between 0 and 1", _share, 0.25
    )
    env_option(
        train, "--min-rows", "MODELOPS_MIN_ROWS", "quality gate: fewest rows", non_negative_int, 30
    )
    env_option(
        train,
        "--max-rows",
        "MODELOPS_MAX_ROWS",
        "quality gate: most rows",
        non_negative_int,
        5_000_000,
    )
    env_option(
        train,
        "--max-missing-fraction",
        "MODELOPS_MAX_MISSING_FRACTION",
        "quality gate: largest share of missing values per column",
        _fraction,
        0.1,
    )
    from modelops.training.governance_cli import add_train_options

    add_train_options(train)
    train.set_defaults(func=run_train)

    package = subparsers.add_parser(
        "package",
        help="package your own fitted scikit-learn model and its reference data for serving",
        description=(
            "Write a model directory (model.skops, profile.json, metadata.json) from a fitted "
            "scikit-learn estimator or pipeline saved with skops and the data it was fitted on. "
            "Exit codes: 0 written, 2 bad input (one line on stderr says why)."
        ),
    )
    package.add_argument(
        "--model", required=True, type=Path, help="the fitted model, a .skops file"
    )
    package.add_argument(
        "--reference-data", required=True, type=Path, help="CSV the model was fitted on"
    )
    package.add_argument("--target", required=True, help="the target column of the CSV files")
    package.add_argument("--version", required=True, help="the model's version label")
    package.add_argument(
        "--output",
        required=True,
        help="the model directory to write (a path, file://, pvc:// or s3://bucket/prefix)",
    )
    package.add_argument(
        "--categorical",
        help="comma-separated features to treat as categories (text columns always are)",
    )
    package.add_argument(
        "--holdout-data", type=Path, help="CSV of rows held out from fitting, for metadata metrics"
    )
    package.add_argument("--name", help="what the model is called (recorded in metadata.json)")
    from modelops.training.governance_cli import add_package_options

    add_package_options(package)
    package.set_defaults(func=run_package)

    example = subparsers.add_parser(
        "example",
        help="write a demo model or demo data from scikit-learn's bundled datasets",
        description="Demo models and (drifted) data from scikit-learn's bundled datasets.",
    )
    kinds = example.add_subparsers(dest="example_kind", metavar="KIND", required=True)
    model = kinds.add_parser("model", help="train and write a first model directory")
    model.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    model.add_argument("--output", required=True, type=Path, help="the model directory to write")
    model.add_argument("--version", default="v1", help="version label (default v1)")
    model.add_argument("--seed", default=0, type=non_negative_int, help="seed (default 0)")
    model.add_argument("--estimator", help="allow-listed estimator (default by task)")
    model.set_defaults(func=run_example_model)

    data = kinds.add_parser("data", help="write CSV rows resampled from a dataset, maybe shifted")
    data.add_argument("--dataset", required=True, choices=DATASET_NAMES)
    data.add_argument("--output", required=True, type=Path, help="the CSV file to write")
    data.add_argument(
        "--rows", default=500, type=non_negative_int, help="rows to write (default 500)"
    )
    data.add_argument("--seed", default=0, type=non_negative_int, help="seed (default 0)")
    data.add_argument(
        "--shift", default=0.0, type=float, help="move features by X standard deviations"
    )
    data.add_argument("--features", help="comma-separated features to shift (default all)")
    data.add_argument(
        "--noise", default=0.05, type=float, help="noise, in standard deviations (default 0.05)"
    )
    data.set_defaults(func=run_example_data)


def run_train(args: argparse.Namespace) -> int:
    """``modelops train``: run, then report the result however the run ended."""
    from modelops.artifacts import TrainingResult
    from modelops.training.errors import (
        EXIT_FAILED,
        EXIT_OK,
        InvalidInputError,
        TerminatedError,
        TrainingError,
    )

    _configure_logging()
    _stop_cleanly_on_sigterm()
    try:
        from modelops.training.governance_cli import card_context, fairness_settings
        from modelops.training.quality import QualityLimits
        from modelops.training.trainer import TrainConfig, train

        try:
            limits = QualityLimits(
                min_rows=args.min_rows,
                max_rows=args.max_rows,
                max_missing_fraction=args.max_missing_fraction,
            )
        except ValueError as exc:
            raise InvalidInputError(f"invalid quality limits: {exc}") from exc
        result = train(
            TrainConfig(
                data_uri=args.data_uri,
                base_model_uri=args.base_model_uri,
                output_uri=args.output_uri,
                version=args.version,
                seed=args.seed,
                estimator=args.estimator,
                test_size=args.test_size,
                limits=limits,
                fairness=fairness_settings(args),
                card=card_context(args),
            )
        )
        code = EXIT_OK
    except (TrainingError, TerminatedError) as exc:
        result = TrainingResult(version=args.version, uri="", reason=exc.reason, message=str(exc))
        code = exc.exit_code
    except Exception as exc:  # the last line of defence: a result, not a traceback
        log.debug("Training failed", exc_info=True)
        result = TrainingResult(
            version=args.version,
            uri="",
            reason="TrainingFailed",
            message=f"{type(exc).__name__}: {exc}",
        )
        code = EXIT_FAILED
    _report(result.to_json(), args.termination_log)
    if code != EXIT_OK:
        print(f"modelops train: error: {result.message}", file=sys.stderr)
    return code


def run_package(args: argparse.Namespace) -> int:
    """``modelops package``: a user's fitted model and reference data into a model directory."""
    from modelops.serving.loader import ModelLoadError, load_skops
    from modelops.training.data import sha256_file
    from modelops.training.errors import InvalidInputError, TrainingError
    from modelops.training.package import package, read_csv

    _configure_logging()
    try:
        if not args.model.is_file():
            raise InvalidInputError(f"the model file {args.model} does not exist")
        try:
            model = load_skops(args.model)
        except ModelLoadError as exc:
            raise InvalidInputError(str(exc)) from exc
        reference = read_csv(args.reference_data, "reference data")
        if args.target not in reference.columns:
            raise InvalidInputError(
                f"the reference data has no target column {args.target!r} "
                f"(columns: {[str(c) for c in reference.columns][:20]})"
            )
        holdout = None
        if args.holdout_data is not None:
            rows = read_csv(args.holdout_data, "holdout data")
            if args.target not in rows.columns:
                raise InvalidInputError(f"the holdout data has no target column {args.target!r}")
            holdout = (rows.drop(columns=[args.target]), rows[args.target])
        categorical = [n.strip() for n in (args.categorical or "").split(",") if n.strip()]
        metadata = package(
            model,
            reference.drop(columns=[args.target]),
            reference[args.target],
            version=args.version,
            output=args.output,
            categorical=categorical,
            holdout=holdout,
            name=args.name,
            target=args.target,
            data_uri=args.reference_data.absolute().as_uri(),
            data_sha256=sha256_file(args.reference_data),
            sensitive=args.sensitive,
            fairness_metric=args.fairness_metric,
            fairness_min_group_rows=args.fairness_min_group_rows,
            allow_sensitive_features=args.allow_sensitive_features,
            time_column=args.time_column,
        )
    except TrainingError as exc:
        print(f"modelops package: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"modelops package: error: {exc}", file=sys.stderr)
        return 2
    print(metadata.model_dump_json())
    return 0


def run_example_model(args: argparse.Namespace) -> int:
    """``modelops example model``: train and publish a first model."""
    from modelops.training.errors import TrainingError
    from modelops.training.examples import example_model

    _configure_logging()
    try:
        result = example_model(
            args.dataset,
            args.output,
            version=args.version,
            seed=args.seed,
            estimator=args.estimator,
        )
    except TrainingError as exc:
        print(f"modelops example model: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(result.to_json())
    return 0


def run_example_data(args: argparse.Namespace) -> int:
    """``modelops example data``: write demo rows, shifted on request."""
    from modelops.training.errors import TrainingError
    from modelops.training.examples import example_rows, write_example_data

    _configure_logging()
    features = None
    if args.features:
        features = [name.strip() for name in args.features.split(",") if name.strip()]
    try:
        rows = example_rows(
            args.dataset,
            rows=args.rows,
            seed=args.seed,
            shift=args.shift,
            features=features,
            noise=args.noise,
        )
        args.output.parent.mkdir(parents=True, exist_ok=True)
        write_example_data(rows, args.output)
    except TrainingError as exc:
        print(f"modelops example data: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"modelops example data: error: cannot write {args.output}: {exc}", file=sys.stderr)
        return 2
    log.info(
        "Wrote %d rows of %s (shift %g) to %s", args.rows, args.dataset, args.shift, args.output
    )
    return 0


def _report(text: str, termination_log: Path | None) -> None:
    """Print the result JSON and write it to the termination log (best effort)."""
    print(text, flush=True)
    path = termination_log
    if path is None:
        if not DEFAULT_TERMINATION_LOG.exists():
            return
        path = DEFAULT_TERMINATION_LOG
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        log.warning("Could not write the termination log %s: %s", path, exc)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not in [0, 1)")
    return value


def _share(text: str) -> float:
    value = _fraction(text)
    if value == 0.0:
        raise argparse.ArgumentTypeError("the holdout cannot be empty")
    return value


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )


def _stop_cleanly_on_sigterm() -> None:
    """Turn SIGTERM (a Job's deadline, a pod eviction) into an exception that unwinds the run,
    so staging is removed and the result says what happened."""
    from modelops.training.errors import TerminatedError

    def stop(signum: int, frame: FrameType | None) -> None:
        raise TerminatedError("terminated by SIGTERM before the model was published")

    signal.signal(signal.SIGTERM, stop)
