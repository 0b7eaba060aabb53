"""Safe loading and saving of model directories (model.skops, profile.json, metadata.json).

A model file is code waiting to run: a pickle executes whatever its ``__reduce__`` says. So models
are loaded with skops, which rebuilds objects from a JSON schema and refuses every type that is not
trusted. The list of trusted types beyond skops' own defaults lives here, in code, and is never read
from the artifact. Pickle (``model.joblib``) is loaded only with an explicit opt-in, and loudly.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from modelops.artifacts import (
    METADATA_FILE,
    MODEL_FILE,
    PROFILE_FILE,
    UNSAFE_MODEL_FILE,
    ModelMetadata,
)
from modelops.drift import Profile, ProfileError
from modelops.drift.binning import category_key
from modelops.frames import FrameSchema

logger = logging.getLogger(__name__)

#: Types trusted on top of skops' defaults (plain scikit-learn estimators, numpy arrays,
#: containers). Each one is a data holder of a scikit-learn estimator that skops does not trust
#: by default; none of them runs code from its state. Fixed in code, never taken from a file.
TRUSTED_TYPES: tuple[str, ...] = (
    # functools.partial: skops lists the wrapped function and every bound argument as types of
    # their own, so a partial passes only when what it would call is on this list too
    "functools.partial",
    # CalibratedClassifierCV (scikit-learn's replacement for SVC(probability=True)): the fitted
    # (estimator, calibrators) pairs and the sigmoid calibrator's two parameters
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    # numpy
    "numpy.dtype",  # dtype of object-typed category arrays (OneHotEncoder on string columns)
    # scipy: the per-feature splines of SplineTransformer
    "scipy._lib.array_api_compat.numpy._aliases.asarray",  # BSpline's array converter (asarray)
    "scipy.interpolate._bsplines.BSpline",  # knots, coefficients, degree, extrapolation flag
    # losses of the generalised linear models (skops trusts the other sklearn._loss losses)
    "sklearn._loss.loss.HalfTweedieLoss",  # TweedieRegressor (log link): holds its power
    "sklearn._loss.loss.HalfTweedieLossIdentity",  # TweedieRegressor (identity link, power=0)
    # HistGradientBoosting* with native categorical features: its fitted _preprocessor passes the
    # numeric columns through FunctionTransformer(partial(check_array, ...)), input validation only
    "sklearn.utils.validation.check_array",
    # trees
    "sklearn.tree._tree.Tree",  # decision trees, random forests, extra trees, gradient boosting
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # HistGradientBoosting*
    # SelectKBest.score_func: pure statistics over (X, y), called by fit only, never by predict
    "sklearn.feature_selection._mutual_info.mutual_info_classif",
    "sklearn.feature_selection._mutual_info.mutual_info_regression",
    "sklearn.feature_selection._univariate_selection.chi2",
    "sklearn.feature_selection._univariate_selection.f_classif",
    "sklearn.feature_selection._univariate_selection.f_regression",
    # k-nearest neighbours: the search trees and their distance metrics (parameters only)
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.metrics._dist_metrics.ManhattanDistance64",
    "sklearn.metrics._dist_metrics.MinkowskiDistance64",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.neighbors._kd_tree.KDTree",
    # MLP* after fit: the optimiser's step state (learning rate, moments)
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    # Voting*/Stacking*: named_estimators_, a dict of fitted estimators (each one checked too)
    "sklearn.utils._bunch.Bunch",
)

#: Largest model file accepted (a guard against a volume filled with junk, not a tuning knob).
MAX_MODEL_BYTES = 2 * 1024 * 1024 * 1024
MAX_JSON_BYTES = 64 * 1024 * 1024


class ModelLoadError(ValueError):
    """A model directory that is missing files, malformed, inconsistent or untrusted."""


@dataclass(frozen=True)
class LoadedModel:
    """A fitted estimator with the reference profile and metadata it was trained with."""

    estimator: Any
    profile: Profile
    metadata: ModelMetadata
    model_file: Path
    """The file the estimator came from (``model.skops``, or ``model.joblib`` when opted in)."""

    @property
    def unsafe(self) -> bool:
        """True when the estimator was unpickled (the operator opted in)."""
        return self.model_file.name == UNSAFE_MODEL_FILE

    @property
    def class_labels(self) -> tuple[str, ...] | None:
        """A classifier's labels as text (``metadata.json`` order, else the estimator's), as the
        profile's output entry and the feedback counters name them; None for a regressor."""
        return class_labels(self.estimator, self.metadata)


def class_labels(estimator: Any, metadata: ModelMetadata) -> tuple[str, ...] | None:
    """See :attr:`LoadedModel.class_labels`."""
    if metadata.task != "classification":
        return None
    classes = metadata.classes
    if classes is None:
        classes = getattr(estimator, "classes_", None)
        if classes is None:
            return None
        classes = np.asarray(classes).tolist()
    keys = [category_key(label) for label in classes]
    if any(key is None for key in keys) or len(set(keys)) != len(keys):
        return None
    return tuple(key for key in keys if key is not None)


def load_model_dir(path: Path, *, allow_unsafe_pickle: bool = False) -> LoadedModel:
    """Load and cross-check a model directory.

    ``model.skops`` is preferred. ``model.joblib`` is used only when ``model.skops`` is absent and
    ``allow_unsafe_pickle`` is set. Raises :class:`ModelLoadError` naming what is wrong.
    """
    if not path.is_dir():
        raise ModelLoadError(f"model directory {path} does not exist")
    metadata = _load_metadata(path / METADATA_FILE)
    profile = _load_profile(path / PROFILE_FILE)
    skops_file, pickle_file = path / MODEL_FILE, path / UNSAFE_MODEL_FILE
    if skops_file.is_file():
        estimator, model_file = load_skops(skops_file), skops_file
    elif pickle_file.is_file():
        if not allow_unsafe_pickle:
            raise ModelLoadError(
                f"{path} holds only {UNSAFE_MODEL_FILE}, a pickle that can run arbitrary code: "
                f"convert it to {MODEL_FILE} (skops), or opt in with --allow-unsafe-pickle"
            )
        estimator, model_file = _load_pickle(pickle_file), pickle_file
    else:
        raise ModelLoadError(f"{path} holds no {MODEL_FILE}")
    _check_consistent(estimator, profile, metadata, path)
    return LoadedModel(estimator, profile, metadata, model_file)


def load_skops(file: Path) -> Any:
    """Load a skops file, refusing any type outside skops' defaults and :data:`TRUSTED_TYPES`."""
    _check_size(file, MAX_MODEL_BYTES)
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(file=file)
    except Exception as exc:  # a zip or schema skops cannot read: never fall back to pickle
        raise ModelLoadError(f"{file} is not a readable skops file: {exc}") from exc
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise ModelLoadError(f"{file} contains untrusted types, refused: {', '.join(refused)}")
    try:
        return skops.io.load(file, trusted=list(untrusted))
    except Exception as exc:
        raise ModelLoadError(f"{file} could not be loaded: {exc}") from exc


def save_model(estimator: Any, path: Path) -> Path:
    """Write ``estimator`` as ``model.skops`` into the directory ``path`` (or to ``path`` itself
    when it ends in ``.skops``), atomically, and return the file written.

    The written file is checked against the same allow-list the server loads with, so a model the
    server would refuse is never published (:class:`ModelLoadError`).
    """
    import skops.io

    target = path if path.suffix == ".skops" else path / MODEL_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".model-", suffix=".skops", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        skops.io.dump(estimator, tmp)
        refused = sorted(set(skops.io.get_untrusted_types(file=tmp)) - set(TRUSTED_TYPES))
        if refused:
            raise ModelLoadError(
                f"{type(estimator).__name__} needs untrusted types the server would refuse: "
                + ", ".join(refused)
            )
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _load_pickle(file: Path) -> Any:
    _check_size(file, MAX_MODEL_BYTES)
    logger.warning(
        "Loading %s with pickle: it can run arbitrary code (allowUnsafePickle is set)", file
    )
    import joblib  # type: ignore[import-untyped]

    try:
        return joblib.load(file)
    except Exception as exc:
        raise ModelLoadError(f"{file} could not be unpickled: {exc}") from exc


def _load_metadata(file: Path) -> ModelMetadata:
    text = _read_json_file(file)
    try:
        return ModelMetadata.model_validate_json(text)
    except ValidationError as exc:
        raise ModelLoadError(f"{file} is not valid metadata: {_first_error(exc)}") from exc


def _load_profile(file: Path) -> Profile:
    text = _read_json_file(file)
    try:
        return Profile.from_json(text)
    except (ProfileError, ValueError) as exc:
        raise ModelLoadError(f"{file} is not a valid profile: {exc}") from exc


def _read_json_file(file: Path) -> bytes:
    if not file.is_file():
        raise ModelLoadError(f"{file} is missing")
    _check_size(file, MAX_JSON_BYTES)
    try:
        return file.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{file} could not be read: {exc}") from exc


def _check_size(file: Path, limit: int) -> None:
    size = file.stat().st_size
    if size > limit:
        raise ModelLoadError(f"{file} is {size} bytes, over the {limit}-byte limit")


def _check_consistent(
    estimator: Any, profile: Profile, metadata: ModelMetadata, path: Path
) -> None:
    if not callable(getattr(estimator, "predict", None)):
        raise ModelLoadError(f"{path}: {type(estimator).__name__} has no predict method")
    if list(profile.feature_names) != list(metadata.features):
        raise ModelLoadError(
            f"{path}: profile features {list(profile.feature_names)} differ from "
            f"metadata features {metadata.features}"
        )
    expected = getattr(estimator, "n_features_in_", None)
    if isinstance(expected, int) and expected != len(metadata.features):
        raise ModelLoadError(
            f"{path}: the estimator expects {expected} features, "
            f"metadata.json lists {len(metadata.features)}"
        )
    unknown = set(metadata.categorical_features) - set(metadata.features)
    if unknown:
        raise ModelLoadError(f"{path}: categorical features {sorted(unknown)} are not features")
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and [str(n) for n in names] != list(metadata.features):
        raise ModelLoadError(
            f"{path}: the estimator was fitted on the columns {[str(n) for n in names]}, "
            f"metadata.json lists the features {metadata.features}"
        )
    if metadata.feature_dtypes:
        try:
            FrameSchema.of(metadata.features, metadata.feature_dtypes)
        except ValueError as exc:
            raise ModelLoadError(f"{path}: {exc}") from exc
    _check_classes_and_output(estimator, profile, metadata, path)


def _check_classes_and_output(
    estimator: Any, profile: Profile, metadata: ModelMetadata, path: Path
) -> None:
    """metadata.json's classes are the estimator's, and the profile's output entry fits the task
    (the server counts predictions and feedback by these classes)."""
    labels = class_labels(estimator, metadata)
    fitted = getattr(estimator, "classes_", None)
    if labels is not None and metadata.classes is not None and fitted is not None:
        fitted_labels = [category_key(label) for label in np.asarray(fitted).tolist()]
        if fitted_labels != list(labels):
            raise ModelLoadError(
                f"{path}: metadata.json lists the classes {list(labels)}, the estimator "
                f"predicts {fitted_labels}"
            )
    output = profile.output
    if output is None:
        return
    if metadata.task == "regression" and output.kind != "numeric":
        raise ModelLoadError(f"{path}: a regressor's profile output entry must be numeric")
    if metadata.task == "classification":
        if output.kind != "categorical":
            raise ModelLoadError(f"{path}: a classifier's profile output entry must be categorical")
        if labels is not None and output.categories != labels:
            raise ModelLoadError(
                f"{path}: the profile's output categories {list(output.categories)} are not the "
                f"model's classes {list(labels)}"
            )


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "document"
    return f"{where}: {first.get('msg', 'invalid')}"
