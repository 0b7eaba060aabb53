"""The compiled predictor gives scikit-learn's predictions to the bit, or is not used."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from modelops.drift import build_profile
from modelops.serving import compiled
from modelops.serving.compiled import (
    COMPILED,
    COMPILED_STEPS,
    SKLEARN,
    NotCompilable,
    Predictor,
    compile_predictor,
    probe_rows,
    select_predictor,
    verify,
)
from modelops.training.estimators import RECIPES, build

#: Recipes whose final estimator has no compiled form: compiled preprocessing, then the
#: estimator's own predict (still scikit-learn's predictions).
PREPROCESSING_ONLY = {
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
    "HistGradientBoostingClassifier",
    "HistGradientBoostingRegressor",
}

N_FEATURES = 6


def data(task: str, classes: int = 3, rows: int = 600) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    X = rng.normal(size=(rows, N_FEATURES)) * [1, 10, 0.1, 1, 5, 1] + [0, 3, 0, -2, 0, 100]
    signal = X[:, 0] + 0.2 * X[:, 1] - 8 * X[:, 2] + rng.normal(scale=0.3, size=rows)
    if task == "regression":
        return X, signal
    edges = np.quantile(signal, np.linspace(0, 1, classes + 1)[1:-1])
    return X, np.digitize(signal, edges)


def fresh_rows(rows: int = 500) -> np.ndarray:
    """Rows the model never saw, wider than the training data, and its exact training rows."""
    X, _ = data("regression")
    rng = np.random.default_rng(5)
    return np.vstack([X[:50], X[:rows] * rng.uniform(0.5, 2.0, size=(rows, N_FEATURES))])


def assert_same(predictor: Predictor, estimator: Any, rows: np.ndarray) -> None:
    """Bit-equal outputs, whole batch and row by row."""
    for batch in (rows, rows[:1], rows[7:8], rows[:33]):
        got, expected = predictor.predict(batch), estimator.predict(batch)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
        if predictor.predict_proba is not None:
            np.testing.assert_array_equal(
                predictor.predict_proba(batch), estimator.predict_proba(batch)
            )


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_trainer_recipe_compiles_to_the_same_predictions_or_falls_back(name: str) -> None:
    recipe = RECIPES[name]
    X, y = data(recipe.task)
    pipeline = build(recipe, {"n_estimators": 12} if "Forest" in name or "Trees" in name else {}, 0)
    pipeline.fit(X, y)
    profile = build_profile(X, [f"f{i}" for i in range(N_FEATURES)])
    predictor, reason = select_predictor(pipeline, profile, numeric=True)
    expected_kind = COMPILED_STEPS if name in PREPROCESSING_ONLY else COMPILED
    assert predictor.kind == expected_kind, reason
    if name in PREPROCESSING_ONLY:
        assert name in reason
    assert (predictor.predict_proba is not None) == (recipe.task == "classification")
    assert_same(predictor, pipeline, fresh_rows())


@pytest.mark.parametrize("labels", [["no", "yes"], [3, 7, 9, 11]])
def test_logistic_regression_binary_and_multiclass_with_any_labels(labels: list[Any]) -> None:
    X, y = data("classification", classes=len(labels))
    y = np.asarray(labels)[y]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    assert_same(compile_predictor(model), model, fresh_rows())


@pytest.mark.parametrize("labels", [["no", "yes"], [3, 7, 9, 11]])
def test_gaussian_naive_bayes_binary_and_multiclass_with_any_labels(labels: list[Any]) -> None:
    X, y = data("classification", classes=len(labels))
    model = GaussianNB().fit(X, np.asarray(labels)[y])
    predictor = compile_predictor(model)
    assert predictor.kind == COMPILED
    assert_same(predictor, model, fresh_rows())


def test_a_bare_estimator_without_compiled_form_predicts_through_scikit_learn() -> None:
    X, y = data("regression")
    model = GradientBoostingRegressor(n_estimators=5).fit(X, y)
    profile = build_profile(X, [f"f{i}" for i in range(N_FEATURES)])
    predictor, reason = select_predictor(model, profile, numeric=True)
    assert (predictor.kind, reason) == (SKLEARN, "no compiled form for GradientBoostingRegressor")


def test_the_imputer_fills_missing_values_as_scikit_learn_does() -> None:
    X, y = data("regression")
    X[::7, 1] = np.nan
    model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), Ridge()).fit(X, y)
    rows = fresh_rows()
    rows[::3, [1, 4]] = np.nan
    assert_same(compile_predictor(model), model, rows)


def test_passthrough_steps_and_a_forest_summed_in_parallel() -> None:
    X, y = data("regression")
    model = Pipeline(
        [("skip", "passthrough"), ("model", RandomForestRegressor(n_estimators=16, n_jobs=2))]
    ).fit(X, y)
    predictor = compile_predictor(model)
    # With n_jobs, scikit-learn sums the trees in thread order: equal up to rounding.
    np.testing.assert_allclose(predictor.predict(fresh_rows()), model.predict(fresh_rows()))
    assert verify(predictor, model, fresh_rows()) is None


@pytest.mark.parametrize(
    ("model", "why"),
    [
        (make_pipeline(MinMaxScaler(), Ridge()), "MinMaxScaler"),
        (make_pipeline(SimpleImputer(add_indicator=True), Ridge()), "indicator"),
        (
            DecisionTreeClassifier(max_depth=3).fit(
                np.arange(20.0).reshape(10, 2), np.arange(20).reshape(10, 2) % 2
            ),
            "2 outputs",
        ),
    ],
)
def test_what_has_no_compiled_form_says_why(model: Any, why: str) -> None:
    if not hasattr(model, "n_features_in_"):
        X, y = data("regression")
        model.fit(X, y)
    with pytest.raises(NotCompilable, match=why):
        compile_predictor(model)


def test_a_compiled_predictor_that_differs_is_never_used(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = data("regression")
    model = Ridge().fit(X, y)
    profile = build_profile(X, [f"f{i}" for i in range(N_FEATURES)])

    def off_by_a_bit(estimator: Ridge) -> Any:
        honest = compiled._linear_regressor(estimator)
        return compiled._Final(lambda rows: honest.predict(rows) * (1 + 1e-9))

    monkeypatch.setitem(compiled.COMPILERS, Ridge, off_by_a_bit)
    predictor, reason = select_predictor(model, profile, numeric=True)
    assert predictor.kind == SKLEARN
    assert "predict differs from scikit-learn" in reason

    def broken(estimator: Ridge) -> Any:
        return compiled._Final(lambda rows: rows[:, 99])

    monkeypatch.setitem(compiled.COMPILERS, Ridge, broken)
    predictor, reason = select_predictor(model, profile, numeric=True)
    assert predictor.kind == SKLEARN
    assert "failed on probe rows" in reason


def test_categorical_models_and_the_switch_keep_scikit_learn() -> None:
    X, y = data("regression")
    model = Ridge().fit(X, y)
    profile = build_profile(X, [f"f{i}" for i in range(N_FEATURES)])
    assert select_predictor(model, profile, numeric=False)[0].kind == SKLEARN
    predictor, reason = select_predictor(model, profile, numeric=True, compile=False)
    assert (predictor.kind, reason) == (SKLEARN, "compiled predictor switched off")


def test_a_wrong_feature_count_is_a_value_error_like_scikit_learns() -> None:
    X, y = data("regression")
    predictor = compile_predictor(make_pipeline(StandardScaler(), Ridge()).fit(X, y))
    with pytest.raises(ValueError, match="X has 5 features, but the model is expecting 6"):
        predictor.predict(X[:, :5])


def test_probe_rows_cover_each_feature_and_hit_its_bin_edges() -> None:
    X, _ = data("regression")
    profile = build_profile(X, [f"f{i}" for i in range(N_FEATURES)])
    probe = probe_rows(profile, rows=64)
    assert probe.shape == (64, N_FEATURES)
    assert np.isfinite(probe).all()
    for j, feature in enumerate(profile.features):
        assert set(feature.edges) <= set(probe[:, j])
        assert probe[:, j].min() < feature.edges[0]
        assert probe[:, j].max() > feature.edges[-1]
