"""Demo models and data from scikit-learn's bundled datasets: nothing is downloaded.

``example model`` trains the default recipe of a dataset's task through the same code path as
``modelops train`` and publishes it atomically; ``example data`` resamples the dataset with small
seeded noise and can shift features by a multiple of their standard deviation, which is how the
demos and tests make drift on purpose.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn import datasets

from modelops.artifacts import Task, TrainingResult
from modelops.training.data import FloatArray, write_csv
from modelops.training.errors import InvalidInputError
from modelops.training.estimators import DEFAULT_RECIPE, get_recipe
from modelops.training.evaluate import DEFAULT_TEST_SIZE, Labels
from modelops.training.publish import TrainingRecord, existing_record, publish, validate_version
from modelops.training.trainer import (
    Dataset,
    candidate_writer,
    fit_candidate,
    recipe_blueprint,
    run_identity,
)

#: Bundled dataset name -> (scikit-learn loader, task).
DATASETS: Mapping[str, tuple[str, Task]] = {
    "iris": ("load_iris", "classification"),
    "wine": ("load_wine", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}
TARGET = "target"
DEFAULT_ROWS = 500
DEFAULT_NOISE = 0.05
"""Noise added to resampled rows, as a fraction of each feature's standard deviation."""


@dataclass(frozen=True)
class BundledData:
    """A bundled dataset with feature names fit for CSV headers and metric labels."""

    name: str
    features: tuple[str, ...]
    task: Task
    x: FloatArray
    y: Labels

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256("\0".join(self.features).encode())
        digest.update(np.ascontiguousarray(self.x).tobytes())
        digest.update(np.ascontiguousarray(self.y).tobytes())
        return digest.hexdigest()


def feature_name(raw: str) -> str:
    """``'sepal length (cm)'`` -> ``'sepal_length_cm'``: one safe word per feature."""
    return re.sub(r"[^a-z0-9]+", "_", raw.lower()).strip("_")


def load_bundled(name: str) -> BundledData:
    """One of :data:`DATASETS`, loaded from the files scikit-learn ships."""
    if name not in DATASETS:
        raise InvalidInputError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    loader, task = DATASETS[name]
    bunch = getattr(datasets, loader)()
    features = tuple(feature_name(str(raw)) for raw in bunch.feature_names)
    y = bunch.target.astype(np.float64 if task == "regression" else np.int64)
    return BundledData(name, features, task, bunch.data.astype(np.float64), y)


def example_model(
    name: str,
    output: Path,
    *,
    version: str = "v1",
    seed: int = 0,
    estimator: str | None = None,
    test_size: float = DEFAULT_TEST_SIZE,
) -> TrainingResult:
    """Train and publish a first model of dataset ``name`` as the directory ``output``."""
    validate_version(version)
    bundled = load_bundled(name)
    recipe = get_recipe(estimator or DEFAULT_RECIPE[bundled.task], bundled.task)
    features = list(bundled.features)
    blueprint = recipe_blueprint(recipe, {}, seed, features, ())
    identity = run_identity(
        bundled.sha256, recipe.name, {}, seed, test_size, features, TARGET, task=recipe.task
    )
    identity = hashlib.sha256(f"{identity}:{version}".encode()).hexdigest()
    output = output.absolute()
    uri = output.as_uri()
    stored = existing_record(output.parent, output.name, identity)
    if stored is None:
        dataset = Dataset(
            bundled.features, TARGET, bundled.task, bundled.x, bundled.y, bundled.sha256
        )
        candidate = fit_candidate(
            dataset, blueprint, version=version, seed=seed, test_size=test_size
        )
        record = TrainingRecord(identity, candidate.metadata.metrics, {})
        stored = publish(output.parent, output.name, record, candidate_writer(candidate))
    return TrainingResult(version=version, uri=uri, metrics=dict(stored.metrics))


def example_rows(
    name: str,
    *,
    rows: int = DEFAULT_ROWS,
    seed: int = 0,
    shift: float = 0.0,
    features: Collection[str] | None = None,
    noise: float = DEFAULT_NOISE,
) -> BundledData:
    """``rows`` rows resampled from dataset ``name`` with seeded noise; ``shift`` moves
    ``features`` (default: all) by that many reference standard deviations."""
    if rows < 1:
        raise InvalidInputError("--rows must be at least 1")
    if noise < 0 or not np.isfinite(noise) or not np.isfinite(shift):
        raise InvalidInputError("--shift and --noise must be finite, --noise not negative")
    bundled = load_bundled(name)
    columns = list(range(len(bundled.features)))
    if features is not None:
        unknown = sorted(set(features) - set(bundled.features))
        if unknown:
            raise InvalidInputError(
                f"unknown features {unknown} for {name}; its features are {list(bundled.features)}"
            )
        columns = [bundled.features.index(f) for f in features]
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, len(bundled.y), size=rows)
    std = bundled.x.std(axis=0)
    x = bundled.x[picked] + rng.normal(size=(rows, len(bundled.features))) * (noise * std)
    x[:, columns] += shift * std[columns]
    return BundledData(name, bundled.features, bundled.task, x, bundled.y[picked])


def write_example_data(data: BundledData, output: Path) -> None:
    """Write example rows as CSV: the features, then the target column."""
    write_csv(output, [*data.features, TARGET], data.x, data.y)
