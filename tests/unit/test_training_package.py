"""`modelops package` and `modelops.package(...)`: what a model directory holds, and one clear
line with exit code 2 for every input the server would refuse, with nothing written."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import modelops
from byom_support import BY_NAME, customers
from modelops.cli import main
from modelops.serving.loader import load_model_dir
from modelops.training.errors import InvalidInputError

REFERENCE = customers(300, seed=1)
MIXED = BY_NAME["columntransformer-hgb"]


def _double(values: Any) -> Any:
    """A user function: the server cannot know it is harmless."""
    return values * 2


@pytest.fixture(scope="module")
def fitted() -> Any:
    return MIXED.fit(REFERENCE)


def test_package_writes_a_directory_the_server_loads(fitted: Any, tmp_path: Path) -> None:
    meta = modelops.package(
        fitted, REFERENCE[MIXED.columns], REFERENCE["churn"], version="v1", output=tmp_path / "m"
    )
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "card.json",
        "card.md",
        "metadata.json",
        "model.skops",
        "profile.json",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no staging directory left
    loaded = load_model_dir(tmp_path / "m")
    assert loaded.metadata == meta
    assert meta.target == "churn"  # the name of y
    assert set(meta.metrics) == {"accuracy", "f1", "roc_auc", "log_loss"}  # scored on (X, y)
    assert len(meta.data_sha256 or "") == 64
    profile = json.loads((tmp_path / "m" / "profile.json").read_text())
    kinds = {f["name"]: f["kind"] for f in profile["features"]}
    assert kinds == {
        "age": "numeric",
        "income": "numeric",
        "tenure": "numeric",
        "promo": "numeric",  # a boolean: 0 or 1
        "city": "categorical",
        "plan": "categorical",
    }


def test_categorical_override_profiles_a_numeric_code_as_categories(tmp_path: Path) -> None:
    frame = REFERENCE.assign(region=REFERENCE["age"] % 4)
    model = LogisticRegression().fit(frame[["income", "region"]], frame["churn"])
    meta = modelops.package(
        model, frame[["income", "region"]], version="v1", output=tmp_path, categorical=["region"]
    )
    assert meta.categorical_features == ["region"]
    assert meta.metrics == {}  # no y, no holdout: nothing to score on


def _refused(model: Any, x: Any, tmp_path: Path, match: str, **kwargs: Any) -> None:
    output = tmp_path / "out"
    options: dict[str, Any] = {"version": "v1", "output": output, **kwargs}
    with pytest.raises(InvalidInputError, match=match):
        modelops.package(model, x, **options)
    assert not output.exists()
    assert list(tmp_path.iterdir()) == []  # nothing half-written beside it either


def test_unfitted_model_is_refused(tmp_path: Path) -> None:
    _refused(MIXED.make(), REFERENCE, tmp_path, r"the Pipeline is not fitted")


def test_something_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    _refused(StandardScaler().fit(REFERENCE[["age"]]), REFERENCE, tmp_path, r"has no predict")


def test_feature_missing_from_the_data_is_refused(fitted: Any, tmp_path: Path) -> None:
    _refused(fitted, REFERENCE.drop(columns=["plan"]), tmp_path, r"missing .*\['plan'\]")


def test_target_that_is_a_feature_is_refused(fitted: Any, tmp_path: Path) -> None:
    _refused(fitted, REFERENCE, tmp_path, r"target 'city' is one of the model's features",
             target="city")  # fmt: skip


def test_unsafe_type_is_refused_by_name(tmp_path: Path) -> None:
    model = make_pipeline(FunctionTransformer(_double), LinearRegression())
    model.fit(REFERENCE[["age", "income"]], REFERENCE["bill"])
    _refused(model, REFERENCE[["age", "income"]], tmp_path, rf"{__name__}\._double")


def test_empty_reference_is_refused(fitted: Any, tmp_path: Path) -> None:
    _refused(fitted, REFERENCE.iloc[:0], tmp_path, r"no rows")


def test_wrong_number_of_columns_for_a_matrix_model_is_refused(tmp_path: Path) -> None:
    model = LinearRegression().fit(np.ones((4, 2)) * np.arange(4)[:, None], np.arange(4))
    _refused(model, np.zeros((4, 3)), tmp_path, r"takes 2 features.* has 3 columns")


def test_dates_are_refused_with_what_to_use_instead(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "when": pd.date_range("2026-01-01", periods=3)})
    model = LinearRegression().fit(frame[["x"]].assign(when=[0, 1, 2]), [0.0, 1.0, 2.0])
    model.feature_names_in_ = np.array(["x", "when"], dtype=object)
    _refused(model, frame, tmp_path, r"dtype datetime64.* not supported")


def test_non_empty_output_is_refused_and_left_alone(fitted: Any, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="exists and is not an empty directory"):
        modelops.package(fitted, REFERENCE, version="v1", output=tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["notes.txt"]


def test_remote_output_is_refused(fitted: Any) -> None:
    with pytest.raises(InvalidInputError, match="is remote"):
        modelops.package(fitted, REFERENCE, version="v1", output="https://models.example/churn/v1")


# --- the CLI: exit 2 and one line -------------------------------------------------------------


def _cli(tmp_path: Path, model: Path, data: Path, *extra: str) -> list[str]:
    return [
        "package", "--model", str(model), "--reference-data", str(data), "--target", "churn",
        "--version", "v1", "--output", str(tmp_path / "out"), *extra,
    ]  # fmt: skip


@pytest.fixture
def saved(fitted: Any, tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "churn.skops"
    skops.io.dump(fitted, model)
    data = tmp_path / "reference.csv"
    REFERENCE.to_csv(data, index=False)
    return model, data


def test_cli_packages_and_exits_0(
    saved: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_cli(tmp_path, *saved)) == 0
    assert load_model_dir(tmp_path / "out").metadata.features == MIXED.columns


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing-model", r"the model file .* does not exist"),
        ("empty-data", r"reference data .*(empty|no rows|no columns)"),
        ("no-target", r"no target column 'churn'"),
        ("not-skops", r"is not a readable skops file"),
        ("unfitted", r"the Pipeline is not fitted"),
        ("missing-feature", r"features missing from the reference data: \['plan'\]"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    change: str,
    message: str,
    saved: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    model, data = saved
    if change == "missing-model":
        model = tmp_path / "nowhere.skops"
    elif change == "empty-data":
        data.write_text("")
    elif change == "no-target":
        REFERENCE.drop(columns=["churn"]).to_csv(data, index=False)
    elif change == "not-skops":
        model.write_bytes(b"\x80\x04K\x01.")  # a pickle, never loaded as one
    elif change == "unfitted":
        skops.io.dump(MIXED.make(), model)
    elif change == "missing-feature":
        REFERENCE.drop(columns=["plan"]).to_csv(data, index=False)
    assert main(_cli(tmp_path, model, data)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("modelops package: error: ")
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_cli_keeps_native_categories_that_csv_turns_into_text(tmp_path: Path) -> None:
    """HistGradientBoosting found its categories by dtype; the CSV has them as text. The
    package records ``category`` (from ``is_categorical_``), so a clone refits on the CSV."""
    native = BY_NAME["hgb-native-categorical"]
    model = tmp_path / "native.skops"
    skops.io.dump(native.fit(REFERENCE), model)
    data = tmp_path / "reference.csv"
    REFERENCE.to_csv(data, index=False)
    assert main(_cli(tmp_path, model, data)) == 0
    meta = load_model_dir(tmp_path / "out").metadata
    assert {meta.feature_dtypes[n] for n in ("city", "plan")} == {"category"}
    assert meta.feature_dtypes["age"] == "int64"
    retrain = [
        "train", "--data-uri", data.as_uri(), "--base-model-uri", (tmp_path / "out").as_uri(),
        "--output-uri", (tmp_path / "next").as_uri(), "--version", "v2",
        "--termination-log", str(tmp_path / "result.json"),
    ]  # fmt: skip
    assert main(retrain) == 0
    assert load_model_dir(tmp_path / "next" / "v2").metadata.feature_dtypes == meta.feature_dtypes
