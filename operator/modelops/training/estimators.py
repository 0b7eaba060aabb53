"""The allow-list of recipes the trainer may build, and nothing else.

A recipe name (stored as ``metadata.json``'s ``estimator``) maps to a fixed scikit-learn class
and its preprocessing; a spec or a metadata file can pick a name and scalar parameters, never an
import path. Every recipe is ``SimpleImputer(median) [+ StandardScaler] + estimator`` so that the
missing values the quality gate lets through are handled the same way in training and serving;
categorical features, when a model has them, are one-hot encoded beside that.
Parameters go through scikit-learn's own ``set_params`` and ``_validate_params``.

Every class here must load with the model server's skops trust list
(``modelops.serving.loader``); a unit test saves and loads each recipe to keep the two in step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from modelops.artifacts import Task
from modelops.training.errors import InvalidInputError

ParamValue = bool | int | float | str | None
Params = dict[str, ParamValue]

#: The final pipeline step's name; ``pipeline.named_steps[MODEL_STEP]`` is the estimator.
MODEL_STEP = "model"

#: Parameters the trainer owns: the seed decides them, a recipe's params may not.
SEED_PARAMS = frozenset({"random_state"})


@dataclass(frozen=True)
class Recipe:
    """How to build one allow-listed estimator."""

    name: str
    task: Task
    estimator: Callable[[], Any]
    scale: bool
    """Whether features are standardised first (linear models; trees do not need it)."""
    defaults: Params = field(default_factory=dict)
    """Recipe defaults that differ from scikit-learn's (e.g. more iterations)."""


RECIPES: Mapping[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe(
            "LogisticRegression", "classification", LogisticRegression, True, {"max_iter": 1000}
        ),
        Recipe("RandomForestClassifier", "classification", RandomForestClassifier, False),
        Recipe("ExtraTreesClassifier", "classification", ExtraTreesClassifier, False),
        Recipe("GradientBoostingClassifier", "classification", GradientBoostingClassifier, False),
        Recipe(
            "HistGradientBoostingClassifier",
            "classification",
            HistGradientBoostingClassifier,
            False,
        ),
        Recipe("DecisionTreeClassifier", "classification", DecisionTreeClassifier, False),
        Recipe("GaussianNB", "classification", GaussianNB, False),
        Recipe("Ridge", "regression", Ridge, True),
        Recipe("Lasso", "regression", Lasso, True),
        Recipe("ElasticNet", "regression", ElasticNet, True),
        Recipe("LinearRegression", "regression", LinearRegression, True),
        Recipe("RandomForestRegressor", "regression", RandomForestRegressor, False),
        Recipe("ExtraTreesRegressor", "regression", ExtraTreesRegressor, False),
        Recipe("GradientBoostingRegressor", "regression", GradientBoostingRegressor, False),
        Recipe("HistGradientBoostingRegressor", "regression", HistGradientBoostingRegressor, False),
        Recipe("DecisionTreeRegressor", "regression", DecisionTreeRegressor, False),
    )
}

#: The recipe a new model of each task gets when none is named.
DEFAULT_RECIPE: Mapping[Task, str] = {"classification": "LogisticRegression", "regression": "Ridge"}


def get_recipe(name: str, task: Task | None = None) -> Recipe:
    """The allow-listed recipe ``name``; with ``task``, it must also solve that task."""
    recipe = RECIPES.get(name)
    if recipe is None:
        allowed = ", ".join(sorted(RECIPES))
        raise InvalidInputError(f"estimator {name!r} is not allowed; choose one of: {allowed}")
    if task is not None and recipe.task != task:
        raise InvalidInputError(f"estimator {name!r} is for {recipe.task}, the model is {task}")
    return recipe


def build(
    recipe: Recipe,
    params: Mapping[str, object],
    seed: int,
    *,
    n_features: int = 0,
    categorical: Sequence[int] = (),
) -> Any:
    """An unfitted pipeline for ``recipe`` with ``params`` validated by scikit-learn.

    ``random_state`` comes from ``seed`` on every estimator that has one, so a run is
    reproducible; a ``random_state`` among ``params`` is overridden for the same reason.
    With ``categorical`` column positions (of ``n_features``), those columns are one-hot encoded
    (unknown categories ignored, missing ``None`` a category of its own) and the others imputed
    and scaled as usual: the input is then the object matrix the model server builds.
    """
    estimator = recipe.estimator()
    settings: dict[str, object] = {**recipe.defaults}
    for key, value in params.items():
        if key in SEED_PARAMS:
            continue
        if not isinstance(value, bool | int | float | str | None):
            raise InvalidInputError(
                f"parameter {key!r} of {recipe.name} must be a number, text, true/false or null, "
                f"not {type(value).__name__}"
            )
        settings[key] = value
    if "random_state" in estimator.get_params(deep=False):
        settings["random_state"] = seed
    try:
        estimator.set_params(**settings)
        estimator._validate_params()
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"invalid parameters for {recipe.name}: {exc}") from exc
    numeric: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if recipe.scale:
        numeric.append(("scale", StandardScaler()))
    if not categorical:
        return Pipeline([*numeric, (MODEL_STEP, estimator)])
    encode = ColumnTransformer(
        [
            ("numeric", Pipeline(numeric), [i for i in range(n_features) if i not in categorical]),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(categorical),
            ),
        ]
    )
    return Pipeline([("encode", encode), (MODEL_STEP, estimator)])


def recipe_params(recipe: Recipe, pipeline: Any) -> Params:
    """The estimator's parameters that differ from scikit-learn's defaults (seed excluded):
    what ``metadata.json`` records so the recipe can be rebuilt exactly."""
    actual = pipeline.named_steps[MODEL_STEP].get_params(deep=False)
    default = recipe.estimator().get_params(deep=False)
    return {
        key: value
        for key, value in sorted(actual.items())
        if key not in SEED_PARAMS
        and isinstance(value, bool | int | float | str | None)
        and (key not in default or value != default[key] or type(value) is not type(default[key]))
    }
