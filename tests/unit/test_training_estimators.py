"""The allow-list: every recipe builds, fits, validates its parameters with scikit-learn, and
saves to a file the model server's safe loader accepts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelops.serving.loader import load_skops, save_model
from modelops.training.errors import InvalidInputError
from modelops.training.estimators import (
    DEFAULT_RECIPE,
    MODEL_STEP,
    RECIPES,
    build,
    get_recipe,
    recipe_params,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 3))
X[::7, 1] = np.nan  # the imputer handles what the quality gate lets through
Y_CLASS = np.arange(60) % 3
Y_REG = np.nan_to_num(X[:, 0]) * 2.0 + RNG.normal(size=60)

SMALL = {  # keep ensembles small so the whole module runs in a second or two
    "RandomForestClassifier": {"n_estimators": 5},
    "ExtraTreesClassifier": {"n_estimators": 5},
    "GradientBoostingClassifier": {"n_estimators": 5},
    "HistGradientBoostingClassifier": {"max_iter": 5},
    "RandomForestRegressor": {"n_estimators": 5},
    "ExtraTreesRegressor": {"n_estimators": 5},
    "GradientBoostingRegressor": {"n_estimators": 5},
    "HistGradientBoostingRegressor": {"max_iter": 5},
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_fits_and_loads_with_the_servers_allow_list(name: str, tmp_path: Path) -> None:
    recipe = RECIPES[name]
    y = Y_CLASS if recipe.task == "classification" else Y_REG
    model = build(recipe, SMALL.get(name, {}), seed=3).fit(X, y)
    loaded = load_skops(save_model(model, tmp_path))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recorded_params_rebuild_the_same_estimator(name: str) -> None:
    recipe = RECIPES[name]
    first = build(recipe, SMALL.get(name, {}), seed=1)
    params = recipe_params(recipe, first)
    assert "random_state" not in params
    again = build(recipe, params, seed=1)
    assert again.named_steps[MODEL_STEP].get_params() == first.named_steps[MODEL_STEP].get_params()


def test_seed_sets_random_state_and_overrides_params() -> None:
    model = build(get_recipe("RandomForestClassifier"), {"random_state": 99}, seed=7)
    assert model.named_steps[MODEL_STEP].random_state == 7


def test_recipe_defaults_and_scaling() -> None:
    model = build(get_recipe("LogisticRegression"), {"C": 0.5}, seed=0)
    assert list(model.named_steps) == ["impute", "scale", MODEL_STEP]
    assert recipe_params(get_recipe("LogisticRegression"), model) == {"C": 0.5, "max_iter": 1000}
    trees = build(get_recipe("RandomForestRegressor"), {}, seed=0)
    assert list(trees.named_steps) == ["impute", MODEL_STEP]
    assert recipe_params(get_recipe("RandomForestRegressor"), trees) == {}


def test_unknown_estimators_are_refused_with_the_allow_list() -> None:
    with pytest.raises(InvalidInputError, match=r"'os.system' is not allowed; choose one of: "):
        get_recipe("os.system")
    with pytest.raises(InvalidInputError, match="not allowed"):
        get_recipe("sklearn.svm.SVC")


def test_task_must_match() -> None:
    with pytest.raises(InvalidInputError, match="'Ridge' is for regression, the model is"):
        get_recipe("Ridge", "classification")
    assert DEFAULT_RECIPE["regression"] in RECIPES
    assert RECIPES[DEFAULT_RECIPE["classification"]].task == "classification"


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("LogisticRegression", {"C": -1.0}, "'C' parameter of LogisticRegression must be"),
        ("LogisticRegression", {"C": "strong"}, "'C' parameter"),
        ("RandomForestClassifier", {"n_estimators": 0}, "'n_estimators' parameter"),
        ("Ridge", {"solver": "magic"}, "'solver' parameter of Ridge"),
        ("Ridge", {"not_a_param": 1}, "Invalid parameter 'not_a_param'"),
        ("Ridge", {"alpha": [1, 2]}, "must be a number, text, true/false or null, not list"),
    ],
)
def test_invalid_params_are_refused_by_scikit_learn(
    name: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        build(get_recipe(name), params, seed=0)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_takes_categorical_features_in_the_servers_layout(
    name: str, tmp_path: Path
) -> None:
    recipe = RECIPES[name]
    x = np.empty((60, 3), dtype=object)
    x[:, 0] = X[:, 0].tolist()
    x[:, 1] = RNG.choice(["red", "green", "blue"], size=60).tolist()
    x[::9, 1] = None
    x[:, 2] = X[:, 1].tolist()
    y = Y_CLASS if recipe.task == "classification" else Y_REG
    model = build(recipe, SMALL.get(name, {}), seed=3, n_features=3, categorical=[1]).fit(x, y)
    loaded = load_skops(save_model(model, tmp_path))
    unseen = x[:5].copy()
    unseen[:, 1] = "purple"  # unknown categories are ignored, not an error
    np.testing.assert_array_equal(loaded.predict(unseen), model.predict(unseen))
