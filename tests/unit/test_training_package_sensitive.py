"""``modelops.package(..., sensitive=...)``: sensitive columns never become features, a model
fitted on one is refused unless allowed, and the first card's fairness table is fairlearn's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_ratio
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import modelops
from fairness_support import FEATURES, SENSITIVE, TARGET, TIME, applicants, fit_champion
from modelops.artifacts import CARD_FILE
from modelops.drift import Profile
from modelops.training.errors import InvalidInputError

REFERENCE = applicants(600, seed=11)
HOLDOUT = applicants(300, seed=12)


def test_a_matrix_model_gets_the_columns_without_the_sensitive_ones(tmp_path: Path) -> None:
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        REFERENCE[FEATURES].to_numpy(), REFERENCE[TARGET]
    )
    everything = REFERENCE.drop(columns=[TARGET])
    with pytest.raises(InvalidInputError, match="takes 3 features"):  # without --sensitive
        modelops.package(model, everything, REFERENCE[TARGET], version="v1", output=tmp_path / "a")
    metadata = modelops.package(
        model,
        everything,
        REFERENCE[TARGET],
        version="v1",
        output=tmp_path / "m",
        sensitive=SENSITIVE,
        time_column=TIME,
        holdout=(HOLDOUT.drop(columns=[TARGET]), HOLDOUT[TARGET]),
        fairness_metric="demographic_parity_ratio",
    )
    assert metadata.features == FEATURES
    profile = Profile.from_json((tmp_path / "m" / "profile.json").read_text())
    assert [f.name for f in profile.features] == FEATURES
    card = json.loads((tmp_path / "m" / CARD_FILE).read_text())
    expected = demographic_parity_ratio(
        HOLDOUT[TARGET],
        model.predict(HOLDOUT[FEATURES].to_numpy()),
        sensitive_features=HOLDOUT["region"],
    )
    assert card["fairness"]["columns"]["region"]["challenger"] == pytest.approx(expected)
    assert card["data"]["timeRange"]["start"] == REFERENCE[TIME].min()
    assert card["metrics"]["on"] == "holdout"
    assert card["data"]["holdoutRows"] == len(HOLDOUT)


def test_a_model_fitted_on_a_sensitive_column_is_refused_unless_allowed(tmp_path: Path) -> None:
    columns = [*FEATURES, "region"]
    model = make_pipeline(
        ColumnTransformer(
            [("num", StandardScaler(), FEATURES), ("cat", OneHotEncoder(), ["region"])]
        ),
        LogisticRegression(),
    ).fit(REFERENCE[columns], REFERENCE[TARGET])
    with pytest.raises(InvalidInputError, match=r"\['region'\] are features of the model"):
        modelops.package(
            model, REFERENCE, REFERENCE[TARGET], version="v1", output=tmp_path / "a",
            sensitive="sex,region",
        )  # fmt: skip
    assert not (tmp_path / "a").exists()
    metadata = modelops.package(
        model, REFERENCE, REFERENCE[TARGET], version="v1", output=tmp_path / "b",
        sensitive="sex,region", allow_sensitive_features=True,
    )  # fmt: skip
    assert metadata.features == columns
    card = json.loads((tmp_path / "b" / CARD_FILE).read_text())
    assert card["sensitiveFeatures"] == ["region"]
    assert card["fairness"] is None  # no holdout: no table


def test_bad_sensitive_input_is_refused_with_one_message(tmp_path: Path) -> None:
    model = fit_champion(REFERENCE)
    holdout = (HOLDOUT[FEATURES], HOLDOUT[TARGET])
    cases = [
        ({"sensitive": ["religion"]}, "no sensitive column 'religion'"),
        ({"sensitive": ["sex"], "holdout": holdout}, "the holdout data has no sensitive column"),
        ({"sensitive": ["sex"], "fairness_metric": "parity"}, "unknown fairness metric 'parity'"),
        ({"time_column": "when"}, "no time column 'when'"),
    ]
    for i, (options, message) in enumerate(cases):
        with pytest.raises(InvalidInputError, match=message):
            modelops.package(
                model, REFERENCE, REFERENCE[TARGET], version="v1", output=tmp_path / str(i),
                **options,
            )  # fmt: skip
    inputs = ["debt", "postcode_score"]
    regressor = Ridge().fit(REFERENCE[inputs].to_numpy(), REFERENCE["income"])
    with pytest.raises(InvalidInputError, match="the model is a regressor"):
        modelops.package(
            regressor, REFERENCE[[*inputs, "sex"]], REFERENCE["income"], version="v1",
            output=tmp_path / "r", sensitive=["sex"], fairness_metric="accuracy_difference",
            holdout=(HOLDOUT[[*inputs, "sex"]], HOLDOUT["income"]),
        )  # fmt: skip
    with pytest.raises(InvalidInputError, match="need the reference data as a DataFrame"):
        modelops.package(
            regressor, np.asarray(REFERENCE[inputs]), REFERENCE["income"], version="v1",
            output=tmp_path / "n", sensitive=["sex"],
        )  # fmt: skip
    assert not pd.Index([p.name for p in tmp_path.iterdir()]).size
