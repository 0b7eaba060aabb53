"""Demo models the server can load, and demo data that drifts exactly as asked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelops.serving.loader import load_model_dir
from modelops.training.data import feature_matrix, read_csv, target_column
from modelops.training.errors import InvalidInputError
from modelops.training.examples import (
    DATASETS,
    TARGET,
    example_model,
    example_rows,
    feature_name,
    load_bundled,
    write_example_data,
)


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("sepal length (cm)", "sepal_length_cm"),
        ("od280/od315_of_diluted_wines", "od280_od315_of_diluted_wines"),
        ("mean radius", "mean_radius"),
        ("bmi", "bmi"),
    ],
)
def test_feature_names_are_single_safe_words(raw: str, name: str) -> None:
    assert feature_name(raw) == name


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_example_models_load_with_the_servers_loader(dataset: str, tmp_path: Path) -> None:
    result = example_model(dataset, tmp_path / "v1")
    loaded = load_model_dir(tmp_path / "v1")
    meta = loaded.metadata
    assert meta.version == result.version == "v1"
    assert result.uri == (tmp_path / "v1").as_uri()
    assert meta.metrics == result.metrics
    assert meta.task == DATASETS[dataset][1]
    assert meta.features == list(load_bundled(dataset).features)
    assert list(loaded.profile.feature_names) == meta.features
    assert result.metrics[("accuracy" if meta.task == "classification" else "r2")] > 0.3


def test_example_model_is_idempotent_and_refuses_other_content(tmp_path: Path) -> None:
    first = example_model("iris", tmp_path / "v1")
    assert example_model("iris", tmp_path / "v1") == first
    with pytest.raises(InvalidInputError, match="already exists"):
        example_model("iris", tmp_path / "v1", seed=3)
    with pytest.raises(InvalidInputError, match="already exists"):
        example_model("wine", tmp_path / "v1")


def test_example_model_with_another_estimator_and_version(tmp_path: Path) -> None:
    result = example_model("wine", tmp_path / "m", version="v7", estimator="GaussianNB")
    meta = load_model_dir(tmp_path / "m").metadata
    assert (meta.version, meta.estimator, result.version) == ("v7", "GaussianNB", "v7")


def test_rows_are_seeded_resamples_of_the_dataset() -> None:
    a = example_rows("iris", rows=50, seed=1)
    b = example_rows("iris", rows=50, seed=1)
    c = example_rows("iris", rows=50, seed=2)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    assert a.x.shape == (50, 4)
    assert set(a.y.tolist()) <= {0, 1, 2}


def test_shift_moves_exactly_the_chosen_features_by_reference_deviations() -> None:
    reference = load_bundled("wine")
    std = reference.x.std(axis=0)
    plain = example_rows("wine", rows=100, seed=5)
    shifted = example_rows("wine", rows=100, seed=5, shift=2.0, features=["alcohol", "ash"])
    moved = shifted.x - plain.x
    columns = [reference.features.index("alcohol"), reference.features.index("ash")]
    expected = np.zeros_like(std)
    expected[columns] = 2.0 * std[columns]
    np.testing.assert_allclose(moved, np.broadcast_to(expected, moved.shape))
    np.testing.assert_array_equal(shifted.y, plain.y)


def test_written_data_reads_back_as_training_data(tmp_path: Path) -> None:
    rows = example_rows("diabetes", rows=30, seed=0, shift=-1.0)
    path = tmp_path / "data.csv"
    write_example_data(rows, path)
    table = read_csv(path, numeric=[*rows.features, TARGET])
    assert table.columns == (*rows.features, TARGET)
    np.testing.assert_allclose(feature_matrix(table, rows.features), rows.x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(target_column(table, TARGET, "regression").values, rows.y)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "mnist"}, "unknown dataset 'mnist'"),
        (
            {"name": "iris", "features": ["petal", "sepal_width_cm"]},
            r"unknown features \['petal'\]",
        ),
        ({"name": "iris", "rows": 0}, "at least 1"),
        ({"name": "iris", "shift": float("nan")}, "finite"),
    ],
)
def test_bad_example_requests_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        example_rows(**kwargs)  # type: ignore[arg-type]
