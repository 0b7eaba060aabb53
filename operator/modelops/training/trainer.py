"""One training run: champion + fresh data in, a published challenger and its verdict out.

The order is chosen so that nothing expensive happens before everything cheap has been
checked: URIs, the champion and its recipe, the parameters and an existing version first; then
the data is parsed and gated; only then is anything fitted. Failures raise the
:mod:`~modelops.training.errors` types, which the CLI maps to exit codes and result JSON.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from modelops.artifacts import (
    METADATA_FILE,
    MODEL_DIR_FILES,
    PROFILE_FILE,
    FairnessResult,
    ModelMetadata,
    Task,
    TrainingResult,
)
from modelops.frames import FedModel, feed_for
from modelops.storage import StorageError, join_uri
from modelops.storage.fetch import fetch_dir, fetch_file
from modelops.training import data as csvdata
from modelops.training import governance
from modelops.training.card import CardContext
from modelops.training.destinations import destination
from modelops.training.errors import (
    BaseModelError,
    DataError,
    InvalidInputError,
    QualityGateError,
)
from modelops.training.estimators import (
    SEED_PARAMS,
    Params,
    Recipe,
    build,
    get_recipe,
    recipe_params,
)
from modelops.training.evaluate import DEFAULT_TEST_SIZE, Labels, score, split_holdout
from modelops.training.fairness import FairnessSettings
from modelops.training.publish import TrainingRecord, validate_version
from modelops.training.quality import QualityLimits, check_data, check_schema

if TYPE_CHECKING:
    from modelops.serving.loader import LoadedModel

log = logging.getLogger(__name__)

LIBRARIES = ("scikit-learn", "numpy", "scipy", "skops", "modelops")


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``modelops train`` is told (see the CLI for the flags)."""

    data_uri: str
    base_model_uri: str
    output_uri: str
    version: str
    seed: int = 0
    estimator: str | None = None
    test_size: float = DEFAULT_TEST_SIZE
    limits: QualityLimits = field(default_factory=QualityLimits)
    fairness: FairnessSettings = field(default_factory=FairnessSettings)
    card: CardContext = field(default_factory=CardContext)


@dataclass(frozen=True)
class Dataset:
    """Training-ready data: features in the model's order, rows with a target only."""

    features: tuple[str, ...]
    target: str
    task: Task
    x: npt.NDArray[Any]
    """float64, or an object matrix (floats and text) when some features are categorical."""
    y: Labels
    sha256: str
    uri: str | None = None
    categorical: tuple[str, ...] = ()


@dataclass(frozen=True)
class Candidate:
    """A fitted challenger with everything its model directory holds."""

    model: Any
    profile_json: str
    metadata: ModelMetadata
    baseline: dict[str, float]
    baseline_error: str = ""


def train(config: TrainConfig) -> TrainingResult:
    """Run one training; returns the result of a new or an identical existing version."""
    version = validate_version(config.version)
    output = destination(config.output_uri)
    uri = join_uri(config.output_uri, version)
    with tempfile.TemporaryDirectory(prefix="modelops-train-") as workdir:
        data_path = _fetch(lambda: fetch_file(config.data_uri, Path(workdir)), "data")
        data_sha256 = csvdata.sha256_file(data_path)
        champion = load_champion(config.base_model_uri, Path(workdir))
        meta = champion.metadata
        if config.estimator is None:
            blueprint = clone_blueprint(champion, config.seed)
        else:
            blueprint = recipe_blueprint(
                get_recipe(config.estimator, meta.task),
                dict(meta.params) if config.estimator == meta.estimator else {},
                config.seed,
                meta.features,
                meta.categorical_features,
            )
        identity = run_identity(
            data_sha256,
            blueprint.name,
            blueprint.identity,
            config.seed,
            config.test_size,
            meta.features,
            meta.target,
            meta.categorical_features,
            task=meta.task,
        )
        governance.check_inputs(config, data_path, meta)
        identity = governance.extend_identity(identity, config.fairness)
        stored = output.existing(version, identity)
        if stored is not None:
            log.info(
                "Found version %s already trained from the same inputs: nothing to do", version
            )
            return _result(version, uri, stored)
        dataset = load_dataset(
            data_path,
            meta.features,
            meta.target,
            meta.task,
            config.limits,
            categorical=meta.categorical_features,
            sha256=data_sha256,
            uri=config.data_uri,
            text_labels=_learned_text_labels(champion.estimator),
        )
        evaluation = governance.read_columns(
            config, data_path, meta, text_labels=_learned_text_labels(champion.estimator)
        )
    candidate = fit_candidate(
        dataset,
        blueprint,
        version=version,
        seed=config.seed,
        test_size=config.test_size,
        champion=FedModel(champion.estimator, feed_for(meta.features, meta.feature_dtypes)),
    )
    governed = governance.govern(
        config,
        dataset,
        blueprint,
        candidate,
        champion,
        evaluation,
        base_model_uri=config.base_model_uri,
    )
    record = TrainingRecord(
        identity,
        candidate.metadata.metrics,
        candidate.baseline,
        candidate.baseline_error,
        fairness=governed.summary,
    )
    written = output.publish(version, record, governed.writer(candidate_writer(candidate)))
    log.info("Published %s to %s", version, uri)
    return _result(version, uri, written)


@dataclass(frozen=True)
class Blueprint:
    """What a run fits: a fresh unfitted estimator, and how ``metadata.json`` names it."""

    name: str
    """``metadata.json``'s ``estimator``."""
    params: Params
    """``metadata.json``'s ``params``."""
    make: Callable[[], Any]
    """A new unfitted estimator, seeded."""
    identity: Mapping[str, object]
    """Everything about the estimator that decides the fitted model (for :func:`run_identity`)."""
    feature_dtypes: Mapping[str, str] = field(default_factory=dict)
    """Fitted on a DataFrame of these dtypes (see :mod:`modelops.frames`); empty: the matrix."""


def clone_blueprint(champion: LoadedModel, seed: int) -> Blueprint:
    """The champion's own structure, refitted: ``sklearn.base.clone`` (same steps, same
    hyperparameters), every ``random_state`` set to ``seed``. A packaged pipeline of any shape
    retrains this way, fed what the champion was fed (a DataFrame, or the matrix)."""
    from sklearn.base import clone

    meta = champion.metadata

    def make() -> Any:
        estimator = clone(champion.estimator)
        seeds = {k: seed for k in estimator.get_params(deep=True) if k.endswith("random_state")}
        if seeds:
            estimator.set_params(**seeds)
        return estimator

    return Blueprint(
        name=meta.estimator,
        params=dict(meta.params),
        make=make,
        identity={"clone": describe(make())},
        feature_dtypes=dict(meta.feature_dtypes),
    )


def recipe_blueprint(
    recipe: Recipe,
    params: Mapping[str, object],
    seed: int,
    features: Sequence[str],
    categorical: Sequence[str],
) -> Blueprint:
    """An allow-listed recipe (``--estimator``), fitted on the feature matrix."""
    positions = [list(features).index(name) for name in categorical]

    def make() -> Any:
        return build(recipe, params, seed, n_features=len(features), categorical=positions)

    return Blueprint(
        name=recipe.name,
        params=recipe_params(recipe, make()),  # validates the parameters before data is read
        make=make,
        identity={k: v for k, v in sorted(params.items()) if k not in SEED_PARAMS},
    )


def describe(estimator: Any) -> object:
    """A JSON-able description of an unfitted estimator's structure and hyperparameters."""
    if hasattr(estimator, "get_params") and not isinstance(estimator, type):
        params = estimator.get_params(deep=False)
        return {
            "class": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
            "params": {k: describe(v) for k, v in sorted(params.items())},
        }
    if isinstance(estimator, list | tuple):
        return [describe(item) for item in estimator]
    if isinstance(estimator, dict):
        return {str(k): describe(v) for k, v in sorted(estimator.items(), key=lambda i: str(i[0]))}
    if isinstance(estimator, bool | int | float | str) or estimator is None:
        return estimator
    return repr(estimator)


def load_champion(uri: str, workdir: Path) -> LoadedModel:
    """The champion, loaded with the model server's safe loader (never an unsafe pickle)."""
    from modelops.serving.loader import ModelLoadError, load_model_dir

    directory = _fetch(lambda: fetch_dir(uri, workdir, MODEL_DIR_FILES), "base model")
    try:
        champion = load_model_dir(directory)
    except ModelLoadError as exc:
        raise BaseModelError(f"cannot load the base model {uri}: {exc}") from exc
    meta = champion.metadata
    log.info("Loaded champion %s (%s, %s) from %s", meta.version, meta.estimator, meta.task, uri)
    return champion


def load_dataset(
    path: Path,
    features: list[str],
    target: str,
    task: Task,
    limits: QualityLimits,
    *,
    categorical: Sequence[str] = (),
    sha256: str,
    uri: str,
    text_labels: bool = False,
) -> Dataset:
    """Parse and gate the CSV; rows without a target are dropped after the gate.

    ``text_labels`` keeps class labels as text even when they look like integers, so that they
    compare equal to the classes of a champion that was trained on text labels.
    """
    columns = csvdata.read_header(path)
    if target not in columns:
        raise DataError(f"the data has no target column {target!r} (columns: {list(columns)[:20]})")
    schema = check_schema(columns, features)
    if not schema.passed:
        raise QualityGateError(schema.message)
    regression = task == "regression"
    numeric = [name for name in features if name not in categorical]
    table = csvdata.read_csv(
        path,
        numeric=[*numeric, target] if regression else numeric,
        text=[*categorical] if regression else [*categorical, target],
        max_rows=limits.max_rows,
    )
    x = csvdata.feature_matrix(table, features, categorical)
    y = csvdata.target_column(table, target, task, text_labels=text_labels)
    report = check_data(features, x, y, task, limits)
    if not report.passed:
        raise QualityGateError(report.message)
    log.info("Read %d rows x %d features from %s", table.rows, len(features), path.name)
    return Dataset(
        tuple(features),
        target,
        task,
        x[y.present],
        y.values[y.present],
        sha256,
        uri,
        tuple(categorical),
    )


def fit_candidate(
    dataset: Dataset,
    blueprint: Blueprint,
    *,
    version: str,
    seed: int,
    test_size: float = DEFAULT_TEST_SIZE,
    champion: Any = None,
) -> Candidate:
    """Split, fit the blueprint, score it (and the champion, called with the feature matrix) on
    the holdout, profile the data."""
    from modelops.drift import build_profile

    holdout = split_holdout(dataset.x, dataset.y, dataset.task, test_size=test_size, seed=seed)
    feed = feed_for(dataset.features, blueprint.feature_dtypes)
    model = blueprint.make()
    started = time.perf_counter()
    try:
        model.fit(holdout.x_train if feed is None else feed(holdout.x_train), holdout.y_train)
    except ValueError as exc:  # e.g. a ColumnTransformer's column gone: the data's fault
        raise DataError(f"{blueprint.name} cannot be fitted on the data: {exc}") from exc
    log.info(
        "Trained %s on %d rows in %.2fs",
        blueprint.name,
        len(holdout.y_train),
        time.perf_counter() - started,
    )
    metrics = score(FedModel(model, feed), holdout.x_test, holdout.y_test, dataset.task)
    baseline: dict[str, float] = {}
    baseline_error = ""
    if champion is not None:
        try:
            baseline = score(champion, holdout.x_test, holdout.y_test, dataset.task)
        except Exception as exc:  # the champion may not cope with the fresh data: report it
            baseline_error = f"the champion could not be scored on the holdout: {exc}"
            log.warning("%s", baseline_error)
    log.info(
        "Scored challenger (%s) and champion (%s) on %d holdout rows",
        _brief(metrics),
        _brief(baseline) or "not scored",
        len(holdout.y_test),
    )
    profile = build_profile(holdout.x_train, dataset.features, categorical=dataset.categorical)
    classes = getattr(model, "classes_", None)
    metadata = ModelMetadata(
        version=version,
        created=datetime.now(UTC),
        estimator=blueprint.name,
        params=blueprint.params,
        features=list(dataset.features),
        categorical_features=list(dataset.categorical),
        feature_dtypes=dict(blueprint.feature_dtypes),
        target=dataset.target,
        task=dataset.task,
        classes=None if classes is None else np.asarray(classes).tolist(),
        data_uri=dataset.uri,
        data_sha256=dataset.sha256,
        metrics=metrics,
        library_versions=library_versions(),
    )
    return Candidate(model, profile.to_json(), metadata, baseline, baseline_error)


def candidate_writer(candidate: Candidate) -> Callable[[Path], None]:
    """A function writing the candidate's three files into a (staging) directory."""
    from modelops.serving.loader import save_model

    def write(directory: Path) -> None:
        # readable by a server running under another uid than the Job (skops writes 0600)
        save_model(candidate.model, directory).chmod(0o644)
        (directory / PROFILE_FILE).write_text(candidate.profile_json, encoding="utf-8")
        (directory / METADATA_FILE).write_text(
            candidate.metadata.model_dump_json(indent=2), encoding="utf-8"
        )

    return write


def run_identity(
    data_sha256: str,
    estimator: str,
    params: Mapping[str, object],
    seed: int,
    test_size: float,
    features: list[str],
    target: str,
    categorical: Sequence[str] = (),
    *,
    task: Task,
) -> str:
    """SHA-256 of every input that decides the model, so a re-run can be told from a clash."""
    document = {
        "data_sha256": data_sha256,
        "estimator": estimator,
        "params": dict(params),
        "seed": seed,
        "test_size": test_size,
        "features": features,
        "categorical": list(categorical),
        "target": target,
        "task": task,
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a model depends on."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def _fetch(fetch: Callable[[], Path], what: str) -> Path:
    try:
        return fetch()
    except StorageError as exc:
        raise InvalidInputError(f"cannot read the {what}: {exc}") from exc


def _result(version: str, uri: str, record: TrainingRecord) -> TrainingResult:
    return TrainingResult(
        version=version,
        uri=uri,
        metrics=dict(record.metrics),
        baseline=dict(record.baseline),
        message=record.message,
        fairness=None
        if record.fairness is None
        else FairnessResult.model_validate(record.fairness),
    )


def _learned_text_labels(estimator: Any) -> bool:
    """Whether a classifier's classes are text (then fresh labels must stay text to match)."""
    classes = getattr(estimator, "classes_", None)
    return classes is not None and len(classes) > 0 and all(isinstance(c, str) for c in classes)


def _brief(metrics: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {value:.4g}" for name, value in metrics.items())
