"""Bring your own model: a fitted scikit-learn estimator or pipeline and its reference data in,
a model directory (``model.skops``, ``profile.json``, ``metadata.json``) out.

``modelops package`` (the CLI) and ``modelops.package(...)`` (Python) run :func:`package`. It
writes nothing until every check has passed: the model is fitted, a classifier or a regressor,
saves with only the types the server trusts, and predicts the reference rows rebuilt the way the
server will feed them exactly as it predicts them from the caller's own data. The profile is the
drift engine's, built from the same rows, so the server's bin counts and the operator's drift
evaluation judge traffic against what the model was fitted on.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelops.artifacts import METADATA_FILE, PROFILE_FILE, ModelMetadata, Task
from modelops.frames import FedModel, dtype_name, feed_for, is_text_dtype, to_matrix
from modelops.storage import StorageError, local_path, parse_uri, s3dirs
from modelops.training.card import writer as card_writer
from modelops.training.errors import InvalidInputError
from modelops.training.evaluate import score
from modelops.training.fairness import DEFAULT_MIN_GROUP_ROWS
from modelops.training.package_card import Governance, build_card, names, prepare
from modelops.training.publish import validate_version
from modelops.training.trainer import library_versions

if TYPE_CHECKING:
    import pandas as pd

#: Reference rows checked for equal predictions between the caller's data and the served form.
CHECK_ROWS = 256


@dataclass(frozen=True)
class Reference:
    """Reference data as the server will see it: features, their kinds, and the matrix."""

    features: list[str]
    categorical: list[str]
    dtypes: dict[str, str]
    """Empty when the model was fitted on a matrix (it is then fed the matrix)."""
    matrix: Any
    native: Any
    """The same rows as the caller gave them (a DataFrame or an array)."""


def package(
    model: Any,
    X: Any,  # noqa: N803 (rows x features, the scikit-learn convention)
    y: Any = None,
    *,
    version: str,
    output: str | os.PathLike[str],
    categorical: list[str] | None = None,
    holdout: tuple[Any, Any] | None = None,
    name: str | None = None,
    target: str | None = None,
    data_uri: str | None = None,
    data_sha256: str | None = None,
    sensitive: str | Sequence[str] | None = None,
    fairness_metric: str | None = None,
    fairness_min_group_rows: int = DEFAULT_MIN_GROUP_ROWS,
    allow_sensitive_features: bool = False,
    time_column: str | None = None,
) -> ModelMetadata:
    """Write the model directory ``output`` for the fitted ``model`` and its reference data ``X``.

    ``X`` is the training data (a DataFrame, or an array for a model fitted on one); ``y`` its
    target, used for metrics when no ``holdout`` ``(X, y)`` is given. ``categorical`` names
    features to profile as categories beyond the text and category columns. Raises
    :class:`InvalidInputError` with one clear message for anything the server would refuse.

    ``sensitive`` columns (and the ``time_column``) are dropped from the features (a model fitted
    on a sensitive one is refused unless ``allow_sensitive_features``); with a ``holdout`` they
    group its rows for the fairness table of the model card (``card.json``, ``card.md``), with
    ``fairness_metric`` as the headline value, see :mod:`modelops.training.package_card`.
    """
    version = validate_version(version)
    directory = _output_dir(output)
    _check_fitted(model)
    task = _task(model)
    target = target or _series_name(y) or "target"
    governance = Governance(
        names(sensitive),
        fairness_metric,
        fairness_min_group_rows,
        allow_sensitive_features,
        time_column,
    )
    prepared = prepare(model, X, holdout, governance, target)
    X, holdout = prepared.X, prepared.holdout  # noqa: N806
    reference = _reference(model, X, categorical or [], target)
    feed = feed_for(reference.features, reference.dtypes)
    served = FedModel(model, feed)
    _check_served_equal(model, served, reference)
    metrics = _metrics(served, reference, y, holdout, task, target)

    from modelops.drift import ProfileError, build_profile

    try:
        profile = build_profile(
            reference.matrix, reference.features, categorical=reference.categorical
        )
    except ProfileError as exc:
        raise InvalidInputError(f"cannot profile the reference data: {exc}") from exc
    classes = getattr(model, "classes_", None)
    metadata = ModelMetadata(
        version=version,
        created=datetime.now(UTC),
        estimator=type(_final_estimator(model)).__name__,
        name=name,
        params=_params(_final_estimator(model)),
        features=reference.features,
        categorical_features=reference.categorical,
        feature_dtypes=reference.dtypes,
        target=target,
        task=task,
        classes=None if classes is None else np.asarray(classes).tolist(),
        data_uri=data_uri,
        data_sha256=data_sha256 or _frame_sha256(reference.native),
        metrics=metrics,
        library_versions=library_versions(),
    )
    labels = predicted = None
    if holdout is not None:
        labels = np.asarray(holdout[1])
        if prepared.holdout_groups:
            predicted = np.asarray(served.predict(_reference_like(holdout[0], reference, target)))
    card = build_card(
        metadata,
        governance,
        prepared,
        rows=len(reference.matrix),
        holdout_labels=labels,
        holdout_predicted=predicted,
    )
    if isinstance(directory, str):
        with tempfile.TemporaryDirectory(prefix="modelops-package-") as upload:
            _write(Path(upload), model, profile.to_json(), metadata, card)
            try:
                s3dirs.upload_version(Path(upload), directory)
            except StorageError as exc:
                raise InvalidInputError(str(exc)) from exc
        return metadata
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        _write(staging, model, profile.to_json(), metadata, card)
        staging.chmod(0o755)
        if directory.exists():
            directory.rmdir()  # _output_dir made sure it is empty
        staging.rename(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return metadata


def _write(
    directory: Path, model: Any, profile_json: str, metadata: ModelMetadata, card: dict[str, Any]
) -> None:
    from modelops.serving.loader import ModelLoadError, save_model

    try:
        save_model(model, directory).chmod(0o644)
    except ModelLoadError as exc:
        raise InvalidInputError(str(exc)) from exc
    (directory / PROFILE_FILE).write_text(profile_json, encoding="utf-8")
    (directory / METADATA_FILE).write_text(metadata.model_dump_json(indent=2), encoding="utf-8")
    card_writer(card)(directory)


def _output_dir(output: str | os.PathLike[str]) -> Path | str:
    """The empty local directory to write, or the ``s3://`` URI to upload to (no complete
    model directory may be there yet; a partial upload is written over)."""
    text = os.fspath(output)
    try:
        if "://" in text:
            parsed = parse_uri(text)
            if parsed.is_object_store:
                if s3dirs.read_manifest(text) is not None:
                    raise InvalidInputError(f"output {text} already holds a model directory")
                return text
            if parsed.is_remote:
                raise InvalidInputError(
                    f"output {text!r} is remote and read-only: package into a local directory, "
                    "a file://, pvc:// or s3:// URI"
                )
            path = local_path(text)
        else:
            path = Path(text)
    except StorageError as exc:
        raise InvalidInputError(f"invalid output: {exc}") from exc
    path = path.absolute()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InvalidInputError(f"output {path} exists and is not an empty directory")
    return path


def _check_fitted(model: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not callable(getattr(model, "predict", None)):
        raise InvalidInputError(f"{type(model).__name__} is not a model: it has no predict method")
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise InvalidInputError(
            f"the {type(model).__name__} is not fitted: fit it on the reference data first"
        ) from None
    except TypeError as exc:
        raise InvalidInputError(
            f"{type(model).__name__} is not a scikit-learn estimator: {exc}"
        ) from None


def _task(model: Any) -> Task:
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(model):
        return "classification"
    if is_regressor(model):
        return "regression"
    raise InvalidInputError(
        f"{type(_final_estimator(model)).__name__} is neither a classifier nor a regressor"
    )


def _reference(model: Any, X: Any, categorical: list[str], target: str) -> Reference:  # noqa: N803
    import pandas as pd

    fitted_names = getattr(model, "feature_names_in_", None)
    if isinstance(X, pd.DataFrame):
        frame = X
    else:
        if fitted_names is not None:
            raise InvalidInputError(
                "the model was fitted on a DataFrame: pass the reference data as a DataFrame "
                f"with the columns {[str(n) for n in fitted_names]}"
            )
        array = np.asarray(X)
        if array.ndim != 2:
            raise InvalidInputError(f"the reference data must be 2-D, got {array.ndim}-D")
        frame = pd.DataFrame(array, columns=[f"x{j}" for j in range(array.shape[1])])
        frame = frame.infer_objects()
    if frame.empty:
        raise InvalidInputError("the reference data has no rows")
    if fitted_names is not None:
        features = [str(n) for n in fitted_names]
        if target in features:
            raise InvalidInputError(f"the target {target!r} is one of the model's features")
        missing = [n for n in features if n not in frame.columns]
        if missing:
            raise InvalidInputError(f"features missing from the reference data: {missing}")
    else:
        features = [str(c) for c in frame.columns if str(c) != target]
        expected = getattr(model, "n_features_in_", None)
        if isinstance(expected, int) and expected != len(features):
            raise InvalidInputError(
                f"the model takes {expected} features, the reference data has {len(features)} "
                f"columns besides the target: {features[:20]}"
            )
    if target in features:
        raise InvalidInputError(f"the target {target!r} is one of the model's features")
    unknown = [n for n in categorical if n not in features]
    if unknown:
        raise InvalidInputError(f"categorical features not among the features: {unknown}")
    if fitted_names is not None:
        frame = _with_fitted_categories(model, frame, features)
    try:
        dtypes = {n: dtype_name(frame[n].dtype) for n in features}
    except ValueError as exc:
        raise InvalidInputError(f"the reference data: {exc}") from exc
    kinds = [n for n in features if is_text_dtype(dtypes[n]) or n in categorical]
    try:
        matrix = to_matrix(frame, features, kinds)
    except ValueError as exc:
        raise InvalidInputError(f"the reference data: {exc}") from exc
    if fitted_names is not None:  # fitted on a DataFrame: fed one
        return Reference(features, kinds, dtypes, matrix, frame[features])
    native = frame[features].to_numpy() if isinstance(X, pd.DataFrame) else np.asarray(X)
    return Reference(features, kinds, {}, matrix, native)


def _with_fitted_categories(model: Any, frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """``frame`` with ``category`` dtype where the model found its categories by dtype.

    HistGradientBoosting with ``categorical_features="from_dtype"`` records which columns were
    categories (``is_categorical_``). Reference data read from CSV has them as text; fed as text
    the fitted model still predicts, but a clone refitted on text finds no categories and fails.
    """
    import pandas as pd

    mask = getattr(_final_estimator(model), "is_categorical_", None)
    names = getattr(_final_estimator(model), "feature_names_in_", None)
    if mask is None or names is None or [str(n) for n in names] != features:
        return frame
    cast = [
        name
        for name, is_category in zip(features, np.asarray(mask).tolist(), strict=True)
        if is_category and not isinstance(frame[name].dtype, pd.CategoricalDtype)
    ]
    if not cast:
        return frame
    return frame.assign(**{name: frame[name].astype("category") for name in cast})


def _check_served_equal(model: Any, served: FedModel, reference: Reference) -> None:
    """The model must predict the rows rebuilt as the server feeds them as it predicts the
    caller's own rows: else a dtype or a column kind was lost on the way."""
    rows = min(CHECK_ROWS, len(reference.matrix))
    native = reference.native
    own_rows = native.iloc[:rows] if hasattr(native, "iloc") else native[:rows]
    try:
        expected = np.asarray(model.predict(own_rows))
    except Exception as exc:
        raise InvalidInputError(f"the model cannot predict the reference data: {exc}") from exc
    try:
        got = np.asarray(served.predict(reference.matrix[:rows]))
    except Exception as exc:
        raise InvalidInputError(
            f"the model cannot predict the reference data as the server will send it: {exc}"
        ) from exc
    same = (
        np.allclose(got, expected, rtol=1e-9, atol=0.0)
        if expected.dtype.kind == "f"
        else np.array_equal(got, expected)
    )
    if not same:
        raise InvalidInputError(
            "the model predicts the reference data differently once rebuilt as the server will "
            "send it (a column's type does not survive): mark text-like columns with "
            "--categorical, or fit the model on the columns' real types"
        )


def _metrics(
    served: FedModel,
    reference: Reference,
    y: Any,
    holdout: tuple[Any, Any] | None,
    task: Task,
    target: str,
) -> dict[str, float]:
    """Holdout metrics, or (with only ``y``) the metrics on the reference data itself."""
    if holdout is not None:
        x_holdout, y_holdout = holdout
        rows = _reference_like(x_holdout, reference, target)
        return _score(served, rows, y_holdout, task, "holdout")
    if y is not None:
        return _score(served, reference.matrix, y, task, "reference")
    return {}


def _reference_like(X: Any, reference: Reference, target: str) -> Any:  # noqa: N803
    import pandas as pd

    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X), columns=None)
    if not isinstance(X, pd.DataFrame):
        frame.columns = [f"x{j}" for j in range(frame.shape[1])]
        frame = frame.infer_objects()
    missing = [n for n in reference.features if n not in frame.columns]
    if missing:
        raise InvalidInputError(f"features missing from the holdout data: {missing}")
    try:
        return to_matrix(frame, reference.features, reference.categorical)
    except ValueError as exc:
        raise InvalidInputError(f"the holdout data: {exc}") from exc


def _score(served: FedModel, matrix: Any, y: Any, task: Task, what: str) -> dict[str, float]:
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != len(matrix):
        raise InvalidInputError(
            f"the {what} target has {labels.shape} values for {len(matrix)} rows"
        )
    if task == "regression":
        labels = labels.astype(np.float64)
    try:
        return score(served, matrix, labels, task)
    except ValueError as exc:
        raise InvalidInputError(f"cannot score the model on the {what} data: {exc}") from exc


def _final_estimator(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and steps:
        return _final_estimator(steps[-1][1])
    return model


def _params(estimator: Any) -> dict[str, bool | int | float | str | None]:
    """Scalar constructor parameters that differ from the class's defaults (informational)."""
    try:
        actual = estimator.get_params(deep=False)
        default = type(estimator)().get_params(deep=False)
    except Exception:  # a meta-estimator that needs arguments: record nothing
        return {}
    return {
        key: value
        for key, value in sorted(actual.items())
        if isinstance(value, bool | int | float | str | None) and default.get(key, value) != value
    }


def _series_name(y: Any) -> str | None:
    name = getattr(y, "name", None)
    return str(name) if name is not None else None


def _frame_sha256(native: Any) -> str:
    import pandas as pd

    frame = native if isinstance(native, pd.DataFrame) else pd.DataFrame(np.asarray(native))
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


def read_csv(path: Path, what: str) -> pd.DataFrame:
    """A CSV file as a DataFrame (pandas' own type inference), with one clear error if not."""
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise InvalidInputError(f"the {what} {path} does not exist") from None
    except pd.errors.EmptyDataError:
        raise InvalidInputError(f"the {what} {path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise InvalidInputError(f"the {what} {path} is not readable CSV: {exc}") from None
    if frame.empty:
        raise InvalidInputError(f"the {what} {path} has a header but no rows")
    return frame
