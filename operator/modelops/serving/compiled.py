"""Predicting without scikit-learn's per-call overhead: the fitted arithmetic, compiled at load.

Why: with scikit-learn 1.9, ``Pipeline(SimpleImputer, StandardScaler, LogisticRegression)``
takes ~770 µs to ``predict`` one row and a 50-tree random forest ~2.4 ms (joblib), nearly all
of it input validation and dispatch repeated in every step; the arithmetic is a few µs. The
server has already checked every request (shape, datatype, no infinity) before it predicts, and
a matrix with a missing value (NaN) goes to scikit-learn (:mod:`modelops.serving.dataplane`).

So at load time, :func:`compile_predictor` restates the prediction of a few estimator types
(:data:`COMPILERS`, matched by exact type) from their fitted arrays, with the same numpy
operations in the same order as scikit-learn (or the same Cython ``Tree.predict``), so the
results are the same to the bit. A final estimator without a compiled form still gets compiled
preprocessing in front of its own ``predict`` (:data:`COMPILED_STEPS`: a gradient-boosting
pipeline's imputer alone costs ~400 µs a call through scikit-learn). Anything else, and any
configuration not restated here (e.g. an imputer with an indicator), predicts through the
estimator's own methods. Since a restatement
can drift from scikit-learn's code across versions, :func:`select_predictor` only uses a compiled
predictor after :func:`verify` found it equal to the estimator on probe rows drawn from the
model's profile; ``tests/unit/test_serving_compiled.py`` checks every trainer recipe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, logsumexp
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.extmath import softmax

from modelops.drift import Profile
from modelops.frames import FedModel, Feed

Array = np.ndarray
Function = Callable[[Array], Array]

COMPILED = "compiled"
COMPILED_STEPS = "compiled-preprocessing"
"""Compiled preprocessing, then the final estimator's own ``predict``/``predict_proba``."""
SKLEARN = "scikit-learn"


@dataclass(frozen=True, slots=True)
class Predictor:
    """What the server calls to predict: ``predict`` and, for classifiers, ``predict_proba``."""

    predict: Function
    predict_proba: Function | None
    kind: str
    """:data:`COMPILED`, :data:`COMPILED_STEPS` or :data:`SKLEARN` (shown in
    ``modelops_model_info``)."""


class NotCompilable(Exception):  # noqa: N818 (a reason, not a failure: the fallback is fine)
    """The estimator (or one of its steps) has no compiled form; the message says why."""


@dataclass(frozen=True, slots=True)
class _Final:
    predict: Function
    predict_proba: Function | None = None


# -- transforms --------------------------------------------------------------------------------


def _simple_imputer(step: SimpleImputer) -> Function:
    statistics = step.statistics_
    if step.add_indicator or not _is_nan(step.missing_values):
        raise NotCompilable("SimpleImputer with an indicator or non-NaN missing_values")
    if statistics.dtype.kind != "f" or np.isnan(statistics).any():
        raise NotCompilable("SimpleImputer with a non-numeric or empty statistic")

    def impute(X: Array) -> Array:  # noqa: N803
        missing = np.isnan(X)
        return np.where(missing, statistics, X) if missing.any() else X

    return impute


def _standard_scaler(step: StandardScaler) -> Function:
    mean, scale = step.mean_ if step.with_mean else None, step.scale_ if step.with_std else None

    def standardise(X: Array) -> Array:  # noqa: N803
        out = X - mean if mean is not None else X.copy()
        if scale is not None:
            out /= scale
        return out

    return standardise


TRANSFORMS: dict[type, Callable[[Any], Function]] = {
    SimpleImputer: _simple_imputer,
    StandardScaler: _standard_scaler,
}

# -- final estimators ----------------------------------------------------------------------------


def _logistic_regression(model: LogisticRegression) -> _Final:
    coef_t: Array = model.coef_.T
    intercept: Array = model.intercept_
    classes: Array = model.classes_
    binary = classes.size <= 2

    def decision(X: Array) -> Array:  # noqa: N803 (as LinearClassifierMixin.decision_function)
        scores: Array = X @ coef_t + intercept
        return scores.reshape(-1) if scores.shape[1] == 1 else scores

    def predict(X: Array) -> Array:  # noqa: N803
        scores = decision(X)
        indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
        labels: Array = classes[indices]  # as np.take(classes, indices), 1 µs less
        return labels

    def predict_proba(X: Array) -> Array:  # noqa: N803
        scores = decision(X)
        if binary:  # LinearClassifierMixin._predict_proba_lr
            positive = expit(scores, out=scores)
            return np.stack([1 - positive, positive], axis=1)
        proba: Array = softmax(scores, copy=False)
        return proba

    return _Final(predict, predict_proba)


def _linear_regressor(model: LinearRegression | Ridge | Lasso | ElasticNet) -> _Final:
    coef, intercept = model.coef_, model.intercept_
    if not isinstance(coef, np.ndarray):
        raise NotCompilable(f"{type(model).__name__} with sparse coefficients")
    weights: Array = coef if coef.ndim == 1 else coef.T

    def predict(X: Array) -> Array:  # noqa: N803 (as LinearModel._decision_function)
        values: Array = X @ weights + intercept
        return values

    return _Final(predict)


def _single_output(model: Any) -> None:
    if model.n_outputs_ != 1:
        raise NotCompilable(f"{type(model).__name__} with {model.n_outputs_} outputs")


def _float32(X: Array) -> Array:  # noqa: N803 (trees compare float32 features)
    return np.asarray(X, dtype=np.float32)


def _tree_classifier(model: DecisionTreeClassifier) -> _Final:
    _single_output(model)
    return _classifier(model.classes_, [model.tree_], model.n_classes_, average=False)


def _forest_classifier(model: RandomForestClassifier | ExtraTreesClassifier) -> _Final:
    _single_output(model)
    trees = [tree.tree_ for tree in model.estimators_]
    return _classifier(model.classes_, trees, model.n_classes_, average=True)


def _classifier(classes: Array, trees: Sequence[Any], n_classes: int, *, average: bool) -> _Final:
    """Trees voting with leaf class fractions (as ``ForestClassifier.predict_proba``)."""

    def predict_proba(X: Array) -> Array:  # noqa: N803
        X32 = _float32(X)  # noqa: N806
        if not average:
            proba: Array = trees[0].predict(X32)[:, :n_classes]
            return proba
        total = np.zeros((X32.shape[0], n_classes), dtype=np.float64)
        for tree in trees:  # in estimator order, as scikit-learn sums them without n_jobs
            total += tree.predict(X32)[:, :n_classes]
        total /= len(trees)
        return total

    def predict(X: Array) -> Array:  # noqa: N803
        labels: Array = classes[np.argmax(predict_proba(X), axis=1)]
        return labels

    return _Final(predict, predict_proba)


def _tree_regressor(model: DecisionTreeRegressor) -> _Final:
    _single_output(model)
    tree = model.tree_

    def predict(X: Array) -> Array:  # noqa: N803
        values: Array = tree.predict(_float32(X))[:, 0]
        return values

    return _Final(predict)


def _forest_regressor(model: RandomForestRegressor | ExtraTreesRegressor) -> _Final:
    _single_output(model)
    trees = [tree.tree_ for tree in model.estimators_]

    def predict(X: Array) -> Array:  # noqa: N803 (as ForestRegressor.predict)
        X32 = _float32(X)  # noqa: N806
        total = np.zeros(X32.shape[0], dtype=np.float64)
        for tree in trees:
            total += tree.predict(X32)[:, 0]
        total /= len(trees)
        return total

    return _Final(predict)


def _gaussian_nb(model: GaussianNB) -> _Final:
    """As ``GaussianNB._joint_log_likelihood``, with the per-class constants computed once."""
    classes: Array = model.classes_
    constants = [
        (np.log(model.class_prior_[i]), -0.5 * np.sum(np.log(2.0 * np.pi * model.var_[i, :])))
        for i in range(classes.size)
    ]
    theta, var = model.theta_, model.var_

    def joint_log_likelihood(X: Array) -> Array:  # noqa: N803
        columns = [
            prior + (spread - 0.5 * np.sum(((X - theta[i, :]) ** 2) / (var[i, :]), axis=1))
            for i, (prior, spread) in enumerate(constants)
        ]
        return np.stack(columns).T

    def predict(X: Array) -> Array:  # noqa: N803
        labels: Array = classes[np.argmax(joint_log_likelihood(X), axis=1)]
        return labels

    def predict_proba(X: Array) -> Array:  # noqa: N803 (equal to 1e-12: scipy's logsumexp)
        jll = joint_log_likelihood(X)
        proba: Array = np.exp(jll - logsumexp(jll, axis=1)[:, None])
        return proba

    return _Final(predict, predict_proba)


COMPILERS: dict[type, Callable[[Any], _Final]] = {
    LogisticRegression: _logistic_regression,
    LinearRegression: _linear_regressor,
    Ridge: _linear_regressor,
    Lasso: _linear_regressor,
    ElasticNet: _linear_regressor,
    DecisionTreeClassifier: _tree_classifier,
    DecisionTreeRegressor: _tree_regressor,
    RandomForestClassifier: _forest_classifier,
    ExtraTreesClassifier: _forest_classifier,
    RandomForestRegressor: _forest_regressor,
    ExtraTreesRegressor: _forest_regressor,
    GaussianNB: _gaussian_nb,
}

# -- putting it together --------------------------------------------------------------------------


def sklearn_predictor(estimator: Any, feed: Feed | None = None) -> Predictor:
    """The estimator's own ``predict``/``predict_proba``, fed the matrix or, with ``feed``, the
    DataFrame it was fitted on (see :mod:`modelops.frames`)."""
    own = _own_methods(estimator if feed is None else FedModel(estimator, feed))
    return Predictor(own.predict, own.predict_proba, SKLEARN)


def compile_predictor(estimator: Any) -> Predictor:
    """The compiled form of ``estimator`` (a bare model, or a ``Pipeline`` of compilable steps).

    A pipeline whose final estimator has no compiled form gets its preprocessing compiled
    (:data:`COMPILED_STEPS`). Raises :class:`NotCompilable` saying which step has no compiled
    form. The compiled functions take a float64 ``[rows, features]`` matrix of finite values.
    """
    steps: list[Any] = [estimator]
    if type(estimator) is Pipeline:
        steps = [step for _, step in estimator.steps if step not in (None, "passthrough")]
    transforms: list[Function] = []
    for step in steps[:-1]:
        compile_transform = TRANSFORMS.get(type(step))
        if compile_transform is None:
            raise NotCompilable(f"no compiled form for the step {type(step).__name__}")
        transforms.append(compile_transform(step))
    compile_final = COMPILERS.get(type(steps[-1]))
    if compile_final is not None:
        final, kind = compile_final(steps[-1]), COMPILED
    elif transforms:
        final, kind = _own_methods(steps[-1]), COMPILED_STEPS
    else:
        raise NotCompilable(f"no compiled form for {type(steps[-1]).__name__}")
    n_features = getattr(steps[0], "n_features_in_", None)
    if not isinstance(n_features, int):
        raise NotCompilable(f"{type(steps[0]).__name__} does not record its feature count")
    return Predictor(
        _chain(n_features, transforms, final.predict),
        _chain(n_features, transforms, final.predict_proba) if final.predict_proba else None,
        kind,
    )


def _own_methods(model: Any) -> _Final:
    """A final estimator predicting through its own methods (behind compiled preprocessing)."""
    proba = getattr(model, "predict_proba", None)
    return _Final(model.predict, proba if callable(proba) else None)


def _chain(n_features: int, transforms: Sequence[Function], final: Function) -> Function:
    def run(X: Array) -> Array:  # noqa: N803
        if X.ndim != 2 or X.shape[1] != n_features:
            # The message scikit-learn gives (the server reports it as a 400).
            raise ValueError(
                f"X has {X.shape[-1]} features, but the model is expecting {n_features} features"
            )
        X = np.asarray(X, dtype=np.float64)  # noqa: N806
        for transform in transforms:
            X = transform(X)  # noqa: N806
        return final(X)

    return run


def verify(predictor: Predictor, estimator: Any, probe: Array) -> str | None:
    """How ``predictor`` differs from ``estimator`` on the probe rows (``None``: it does not).

    Labels and integers must be equal, with the same dtype and shape; floats (values and
    probabilities) equal up to 1e-12 relative (scikit-learn itself sums a forest's trees in a
    different order when ``n_jobs`` is set). Rows are checked as one batch and one by one, as
    the server predicts both.
    """
    checks = [("predict", predictor.predict, estimator.predict)]
    if predictor.predict_proba is not None:
        checks.append(("predict_proba", predictor.predict_proba, estimator.predict_proba))
    batches = [probe, *(probe[i : i + 1] for i in range(min(len(probe), 8)))]
    for name, compiled, reference in checks:
        for batch in batches:
            got, expected = np.asarray(compiled(batch)), np.asarray(reference(batch))
            if got.dtype != expected.dtype or got.shape != expected.shape:
                return (
                    f"{name} gives {got.dtype}{list(got.shape)}, "
                    f"scikit-learn {expected.dtype}{list(expected.shape)}"
                )
            if expected.dtype.kind == "f":
                equal = np.allclose(got, expected, rtol=1e-12, atol=0.0, equal_nan=True)
            else:
                equal = np.array_equal(got, expected)
            if not equal:
                return f"{name} differs from scikit-learn on {len(batch)} probe row(s)"
    return None


def probe_rows(profile: Profile, rows: int = 64, seed: int = 0) -> Array:
    """Rows spread over (and beyond) each numeric feature's reference distribution, and its
    bin edges exactly: where a threshold or a rounding difference would show."""
    rng = np.random.default_rng(seed)
    columns = []
    for feature in profile.features:
        spread = feature.std if feature.std > 0 else 1.0
        column = rng.normal(feature.mean, 2 * spread, size=rows)
        edges = np.asarray(feature.edges[: rows // 2], dtype=np.float64)
        column[: len(edges)] = edges
        columns.append(rng.permutation(column))
    return np.column_stack(columns) if columns else np.empty((rows, 0))


def select_predictor(
    estimator: Any,
    profile: Profile,
    *,
    numeric: bool,
    compile: bool = True,
    feed: Feed | None = None,
) -> tuple[Predictor, str]:
    """The predictor the server uses, and why: the compiled one when the model's inputs are
    numeric, it compiles and :func:`verify` finds no difference from scikit-learn's (fed as the
    model was fitted: ``feed``); else scikit-learn's."""
    fallback = sklearn_predictor(estimator, feed)
    if not compile:
        return fallback, "compiled predictor switched off"
    if not numeric:
        return fallback, "the model has categorical features"
    try:
        compiled = compile_predictor(estimator)
        reference = estimator if feed is None else FedModel(estimator, feed)
        difference = verify(compiled, reference, probe_rows(profile))
    except NotCompilable as exc:
        return fallback, str(exc)
    except Exception as exc:  # a model the restatement misjudged: stay correct
        return fallback, f"compiled predictor failed on probe rows: {exc!r}"
    if difference is not None:
        return fallback, f"compiled predictor rejected: {difference}"
    if compiled.kind == COMPILED_STEPS:
        final = type(estimator.steps[-1][1]).__name__
        return compiled, f"preprocessing compiled, {final} predicts itself; equal on probe rows"
    return compiled, "equal to scikit-learn on probe rows"


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and value != value
