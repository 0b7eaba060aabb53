"""Realistic user pipelines for the bring-your-own-model tests: data a notebook would have
(integers, floats, text categories), and six pipelines of the shapes people fit on it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler
from sklearn.svm import SVC

NUMERIC = ["age", "income", "tenure", "promo"]
TEXT = ["city", "plan"]
CITIES = ["lisbon", "porto", "faro", "braga"]
PLANS = ["basic", "plus", "pro"]


def customers(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Customers with a churn label and a monthly bill. ``shift`` (0 to 1) moves income and the
    city mix, and turns the effect of income on churn around: a model fitted before the shift is
    wrong after it, a retrained one is right again."""
    rng = np.random.default_rng(seed)
    city_p = np.array([0.4, 0.3, 0.2, 0.1]) + shift * np.array([-0.2, 0.0, 0.1, 0.1])
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows),
            "income": rng.normal(50.0 + 15.0 * shift, 12.0, rows),
            "tenure": rng.exponential(3.0, rows).round(2),
            "city": rng.choice(CITIES, rows, p=city_p / city_p.sum()),
            "plan": rng.choice(PLANS, rows),
            "promo": rng.random(rows) < 0.3,
        }
    )
    signal = (
        0.05 * (frame["age"] - 45)
        + 0.08 * (1.0 - 2.0 * shift) * (frame["income"] - 50)
        + 1.2 * (frame["city"] == "porto")
        - 0.9 * (frame["plan"] == "basic")
        - 0.2 * frame["tenure"]
        - 0.5 * frame["promo"]
        + rng.normal(0.0, 0.6, rows)
    )
    frame["churn"] = (signal > 0).astype(np.int64)
    frame["bill"] = 20 + 0.4 * frame["income"] + 0.01 * frame["age"] ** 2 + rng.normal(0, 2, rows)
    return frame


def _mixed(final: Any) -> Pipeline:
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), TEXT),
        ]
    )
    return Pipeline([("prep", prep), ("model", final)])


@dataclass(frozen=True)
class UserPipeline:
    """One pipeline as a user fits it: which columns, which target, and on what."""

    name: str
    target: str
    columns: list[str]
    make: Callable[[], Any]
    categories_as_dtype: bool = False
    """Text columns as pandas ``category`` (HistGradientBoosting's native categories)."""
    on_matrix: bool = False
    """Fitted on ``frame.to_numpy()``: no column names."""

    def features(self, frame: pd.DataFrame) -> Any:
        x = frame[self.columns].copy()
        if self.categories_as_dtype:
            for name in TEXT:
                if name in x:
                    x[name] = x[name].astype("category")
        return x.to_numpy() if self.on_matrix else x

    def fit(self, frame: pd.DataFrame) -> Any:
        return self.make().fit(self.features(frame), frame[self.target])


PIPELINES = [
    UserPipeline(
        "columntransformer-hgb",
        "churn",
        NUMERIC + TEXT,
        lambda: _mixed(HistGradientBoostingClassifier(max_iter=60, random_state=0)),
    ),
    UserPipeline(
        "polynomial-ridge",
        "bill",
        NUMERIC,
        lambda: Pipeline(
            [("poly", PolynomialFeatures(2)), ("scale", StandardScaler()), ("ridge", Ridge(1.0))]
        ),
    ),
    UserPipeline(
        "hgb-native-categorical",
        "churn",
        NUMERIC + TEXT,
        lambda: HistGradientBoostingClassifier(
            categorical_features="from_dtype", max_iter=60, random_state=0
        ),
        categories_as_dtype=True,
    ),
    UserPipeline(
        "knn-scaled",
        "churn",
        NUMERIC,
        lambda: Pipeline([("scale", StandardScaler()), ("knn", KNeighborsClassifier(15))]),
    ),
    UserPipeline(
        "svc-probability",
        "churn",
        NUMERIC + TEXT,
        # scikit-learn 1.9 deprecates SVC(probability=True) for this
        lambda: _mixed(CalibratedClassifierCV(SVC(random_state=0), ensemble=False)),
    ),
    UserPipeline(
        "matrix-without-names",
        "bill",
        NUMERIC,
        lambda: Pipeline(
            [
                ("impute", SimpleImputer()),
                ("forest", RandomForestRegressor(n_estimators=30, random_state=0)),
            ]
        ),
        on_matrix=True,
    ),
]


BY_NAME = {p.name: p for p in PIPELINES}


def v2_request(frame: pd.DataFrame, features: list[str], dtypes: dict[str, str]) -> dict[str, Any]:
    """A V2 request with one tensor per feature, typed as a client would type the column."""
    inputs = []
    for name in features:
        column = frame[name]
        dtype = dtypes.get(name) or str(column.dtype)
        if dtype in ("object", "category", "str") or not pd.api.types.is_numeric_dtype(column):
            datatype, data = "BYTES", [str(v) for v in column]
        elif dtype == "bool":
            datatype, data = "BOOL", [bool(v) for v in column]
        elif dtype.startswith(("int", "uint")):
            datatype, data = "INT64", [int(v) for v in column]
        else:
            datatype, data = "FP64", [float(v) for v in column]
        inputs.append({"name": name, "datatype": datatype, "shape": [len(column)], "data": data})
    return {"inputs": inputs}
