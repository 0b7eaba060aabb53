"""A whole training run in process: reproducible, scored like scikit-learn, gated, idempotent."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, log_loss, r2_score

from modelops.artifacts import TERMINATION_MESSAGE_LIMIT, TrainingResult
from modelops.drift import Profile
from modelops.serving.loader import load_model_dir
from modelops.training.data import (
    feature_matrix,
    read_csv,
    sha256_file,
    target_column,
    write_csv,
)
from modelops.training.errors import (
    BaseModelError,
    DataError,
    InvalidInputError,
    QualityGateError,
    VersionConflictError,
)
from modelops.training.evaluate import split_holdout
from modelops.training.examples import example_model, example_rows, write_example_data
from modelops.training.trainer import TrainConfig, train


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("champion") / "v1"
    example_model("iris", path)
    return path


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "fresh.csv"
    write_example_data(example_rows("iris", rows=300, seed=1, shift=1.5), path)
    return path


def config(champion: Path, data: Path, output: Path, **changes: object) -> TrainConfig:
    base = TrainConfig(
        data_uri=data.as_uri(),
        base_model_uri=champion.as_uri(),
        output_uri=output.as_uri(),
        version="v2",
        seed=7,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_same_seed_gives_identical_metrics_and_predictions(
    champion: Path, fresh: Path, tmp_path: Path
) -> None:
    first = train(config(champion, fresh, tmp_path / "a"))
    second = train(config(champion, fresh, tmp_path / "b"))
    assert first.metrics == second.metrics
    assert first.baseline == second.baseline
    features = load_model_dir(champion).metadata.features
    x = feature_matrix(read_csv(fresh, numeric=features), features)
    a = load_model_dir(tmp_path / "a" / "v2").estimator
    b = load_model_dir(tmp_path / "b" / "v2").estimator
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    np.testing.assert_array_equal(a.predict_proba(x), b.predict_proba(x))


def test_scores_are_scikit_learns_on_the_shared_holdout(
    champion: Path, fresh: Path, tmp_path: Path
) -> None:
    result = train(config(champion, fresh, tmp_path))
    old = load_model_dir(champion)
    new = load_model_dir(tmp_path / "v2")
    table = read_csv(fresh, numeric=old.metadata.features, text=[old.metadata.target])
    x = feature_matrix(table, old.metadata.features)
    y = target_column(table, old.metadata.target, "classification").values
    holdout = split_holdout(x, y, "classification", seed=7)
    for model, metrics in ((new.estimator, result.metrics), (old.estimator, result.baseline)):
        predicted = model.predict(holdout.x_test)
        assert metrics["accuracy"] == accuracy_score(holdout.y_test, predicted)
        assert metrics["f1"] == f1_score(holdout.y_test, predicted, average="macro")
        assert metrics["log_loss"] == log_loss(holdout.y_test, model.predict_proba(holdout.x_test))
    # the shifted data is what the challenger learned and what the champion never saw
    assert result.metrics["accuracy"] > result.baseline["accuracy"]


def test_the_model_directory_describes_itself(champion: Path, fresh: Path, tmp_path: Path) -> None:
    result = train(config(champion, fresh, tmp_path))
    assert result == TrainingResult(
        version="v2",
        uri=(tmp_path / "v2").as_uri(),
        metrics=result.metrics,
        baseline=result.baseline,
    )
    loaded = load_model_dir(tmp_path / "v2")
    meta = loaded.metadata
    assert meta.version == "v2"
    assert meta.estimator == "LogisticRegression"
    assert meta.params == {"max_iter": 1000}
    assert meta.features == load_model_dir(champion).metadata.features
    assert (meta.target, meta.task, meta.classes) == ("target", "classification", [0, 1, 2])
    assert meta.data_uri == fresh.as_uri()
    assert meta.data_sha256 == sha256_file(fresh)
    assert meta.metrics == result.metrics
    assert {"python", "scikit-learn", "numpy", "skops"} <= set(meta.library_versions)
    profile = Profile.from_json((tmp_path / "v2" / "profile.json").read_text())
    assert profile.rows == 225  # the training split: 75% of 300 rows
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v2"]
    # The output entry: the class shares of the model's predictions on the training split.
    table = read_csv(fresh, numeric=meta.features, text=["target"])
    x = feature_matrix(table, meta.features)
    y = target_column(table, "target", "classification").values
    train_rows = split_holdout(x, y, "classification", seed=7).x_train
    predicted = loaded.estimator.predict(train_rows)
    output = profile.output
    assert output is not None
    assert (output.name, output.kind, output.categories) == (
        "target",
        "categorical",
        ("0", "1", "2"),
    )
    shares = [np.mean(predicted == label) for label in (0, 1, 2)]
    assert output.proportions == pytest.approx([*shares, 0.0, 0.0])


def test_a_second_run_is_a_no_op_with_the_same_result(
    champion: Path, fresh: Path, tmp_path: Path
) -> None:
    first = train(config(champion, fresh, tmp_path))
    files = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "v2").iterdir()}
    assert train(config(champion, fresh, tmp_path)).to_json() == first.to_json()
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "v2").iterdir()} == files


def test_the_same_version_from_other_inputs_is_a_conflict(
    champion: Path, fresh: Path, tmp_path: Path
) -> None:
    train(config(champion, fresh, tmp_path))
    with pytest.raises(VersionConflictError, match="'v2' already exists"):
        train(config(champion, fresh, tmp_path, seed=8))
    other = tmp_path / "other.csv"
    write_example_data(example_rows("iris", rows=300, seed=2), other)
    with pytest.raises(VersionConflictError):
        train(config(champion, other, tmp_path))


def test_estimator_override(champion: Path, fresh: Path, tmp_path: Path) -> None:
    result = train(config(champion, fresh, tmp_path, estimator="RandomForestClassifier"))
    meta = load_model_dir(tmp_path / "v2").metadata
    assert meta.estimator == "RandomForestClassifier"
    assert meta.params == {}
    assert set(result.metrics) == {"accuracy", "f1", "roc_auc", "log_loss"}


def test_rows_with_a_few_missing_values_train_and_missing_targets_are_dropped(
    champion: Path, tmp_path: Path
) -> None:
    data = example_rows("iris", rows=200, seed=3)
    data.x[::20, 0] = np.nan  # 5% missing
    labels = data.y.astype(object)
    labels[::25] = ""  # 4% without a target
    path = tmp_path / "gappy.csv"
    write_csv(path, [*data.features, "target"], data.x, np.asarray(labels))
    result = train(config(champion, path, tmp_path / "out"))
    assert result.metrics["accuracy"] > 0.8


def write_text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("mutate", "error", "message"),
    [
        (lambda h, rows: (h[1:], [r[1:] for r in rows]), QualityGateError, "lacks the model's"),
        (lambda h, rows: (h, rows[:20]), QualityGateError, "only 20 rows"),
        (lambda h, rows: (h, [[*r[:-1], "0"] for r in rows]), QualityGateError, "1 class"),
        (lambda h, rows: (h[:-1], [r[:-1] for r in rows]), DataError, "no target column"),
        (
            lambda h, rows: (h, [["abc", *rows[0][1:]], *rows[1:]]),
            DataError,
            "'abc' is not a number",
        ),
    ],
    ids=["missing-feature", "too-few-rows", "one-class", "missing-target", "text-in-number"],
)
def test_bad_data_writes_nothing(
    champion: Path, fresh: Path, tmp_path: Path, mutate: object, error: type, message: str
) -> None:
    lines = fresh.read_text().splitlines()
    names, rows = mutate(lines[0].split(","), [line.split(",") for line in lines[1:]])  # type: ignore[operator]
    path = write_text(tmp_path, "\n".join(",".join(r) for r in [names, *rows]) + "\n")
    with pytest.raises(error, match=message):
        train(config(champion, path, tmp_path / "out"))
    assert not (tmp_path / "out" / "v2").exists()


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"estimator": "os.system"}, InvalidInputError, "not allowed"),
        ({"estimator": "Ridge"}, InvalidInputError, "is for regression"),
        ({"data_uri": "file:///no/such/file.csv"}, InvalidInputError, "no such file"),
        ({"data_uri": "ftp://host/data.csv"}, InvalidInputError, "unsupported URI scheme"),
        ({"base_model_uri": "file:///no/such/model"}, InvalidInputError, "no such directory"),
        ({"output_uri": "https://example.com/models"}, InvalidInputError, "is remote"),
        ({"version": "../v2"}, InvalidInputError, "invalid version"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    champion: Path, fresh: Path, tmp_path: Path, changes: dict[str, str], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        train(config(champion, fresh, tmp_path / "out", **changes))
    assert not (tmp_path / "out").exists()


def test_an_unsafe_base_model_is_refused(champion: Path, fresh: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("profile.json", "metadata.json"):
        (broken / name).write_bytes((champion / name).read_bytes())
    (broken / "model.skops").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(BaseModelError, match="cannot load the base model"):
        train(config(broken, fresh, tmp_path / "out"))


def test_invalid_recipe_params_in_the_base_model_are_refused(
    champion: Path, fresh: Path, tmp_path: Path
) -> None:
    """metadata.json's params matter only when a recipe is rebuilt (``--estimator``); a clone
    takes the champion's own hyperparameters from the model itself."""
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for name in ("model.skops", "profile.json"):
        (tampered / name).write_bytes((champion / name).read_bytes())
    meta = json.loads((champion / "metadata.json").read_text())
    meta["params"] = {"C": -3}
    (tampered / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match="'C' parameter of LogisticRegression"):
        train(config(tampered, fresh, tmp_path / "out", estimator="LogisticRegression"))
    cloned = train(config(tampered, fresh, tmp_path / "out"))
    assert cloned.succeeded
    retrained = load_model_dir(tmp_path / "out" / "v2").estimator
    original = load_model_dir(champion).estimator
    assert retrained[-1].get_params()["C"] == original[-1].get_params()["C"]


def test_regression_end_to_end(tmp_path: Path) -> None:
    example_model("diabetes", tmp_path / "v1")
    data = tmp_path / "fresh.csv"
    write_example_data(example_rows("diabetes", rows=300, seed=4, shift=0.5), data)
    result = train(config(tmp_path / "v1", data, tmp_path))
    assert set(result.metrics) == set(result.baseline) == {"r2", "mae", "rmse"}
    new = load_model_dir(tmp_path / "v2")
    assert new.metadata.estimator == "Ridge"
    assert new.metadata.classes is None
    table = read_csv(data, numeric=[*new.metadata.features, "target"])
    x = feature_matrix(table, new.metadata.features)
    y = target_column(table, "target", "regression").values
    holdout = split_holdout(x, y, "regression", seed=7)
    assert result.metrics["r2"] == r2_score(holdout.y_test, new.estimator.predict(holdout.x_test))
    # The output entry: quantile bins of the predictions on the training split.
    output = new.profile.output
    assert output is not None
    assert (output.name, output.kind) == ("target", "numeric")
    predicted = new.estimator.predict(holdout.x_train)
    counts = new.profile.output_bin_counts(predicted)
    assert counts.sum() == len(holdout.x_train) == new.profile.rows
    assert counts / counts.sum() == pytest.approx(output.proportions)
    assert output.mean == pytest.approx(float(np.mean(predicted)))


def test_the_result_json_parses_and_fits_a_termination_message(
    champion: Path, fresh: Path, tmp_path: Path
) -> None:
    text = train(config(champion, fresh, tmp_path)).to_json()
    assert len(text.encode()) < TERMINATION_MESSAGE_LIMIT
    document = json.loads(text)
    assert {"version", "uri", "metrics", "baseline"} <= set(document)


def test_a_champion_with_text_labels_is_scored_with_text_labels(
    champion: Path, tmp_path: Path
) -> None:
    from modelops.serving.loader import save_model
    from modelops.training.estimators import build, get_recipe

    steady = example_rows("iris", rows=300, seed=5)
    data = tmp_path / "steady.csv"
    write_example_data(steady, data)
    text_champion = tmp_path / "text"
    text_champion.mkdir()
    model = build(get_recipe("LogisticRegression"), {}, seed=0).fit(steady.x, steady.y.astype(str))
    save_model(model, text_champion)
    (text_champion / "profile.json").write_bytes((champion / "profile.json").read_bytes())
    meta = json.loads((champion / "metadata.json").read_text())
    meta["classes"] = ["0", "1", "2"]
    (text_champion / "metadata.json").write_text(json.dumps(meta))
    result = train(config(text_champion, data, tmp_path / "out"))
    assert result.baseline["accuracy"] > 0.9  # labels compared as text, not 1 != "1"
    assert load_model_dir(tmp_path / "out" / "v2").metadata.classes == ["0", "1", "2"]


def write_categorical_csv(path: Path, rows: int, seed: int, *, missing_colour: int = 0) -> None:
    """size (number), colour (category), weight (number) -> label yes/no."""
    rng = np.random.default_rng(seed)
    size = rng.normal(size=rows)
    colour = rng.choice(["red", "green", "blue"], size=rows).astype(object)
    colour[:missing_colour] = ""
    weight = rng.normal(size=rows)
    label = np.where((colour == "red") | (size > 0.5), "yes", "no")
    lines = ["size,colour,weight,label"]
    lines += [
        f"{s:.5f},{c},{w:.5f},{y}" for s, c, w, y in zip(size, colour, weight, label, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")


def test_categorical_features_are_retrained_in_the_servers_layout(tmp_path: Path) -> None:
    from modelops.training.estimators import get_recipe
    from modelops.training.publish import TrainingRecord, publish
    from modelops.training.quality import QualityLimits
    from modelops.training.trainer import (
        candidate_writer,
        fit_candidate,
        load_dataset,
        recipe_blueprint,
    )

    first = tmp_path / "first.csv"
    write_categorical_csv(first, 300, seed=1)
    dataset = load_dataset(
        first,
        ["size", "colour", "weight"],
        "label",
        "classification",
        QualityLimits(),
        categorical=["colour"],
        sha256=sha256_file(first),
        uri=first.as_uri(),
    )
    assert dataset.x.dtype == object
    recipe = get_recipe("LogisticRegression")
    blueprint = recipe_blueprint(recipe, {}, 0, dataset.features, dataset.categorical)
    candidate = fit_candidate(dataset, blueprint, version="v1", seed=0)
    publish(tmp_path, "v1", TrainingRecord("first"), candidate_writer(candidate))

    fresh = tmp_path / "fresh.csv"
    write_categorical_csv(fresh, 400, seed=2, missing_colour=8)  # 2% missing categories
    result = train(config(tmp_path / "v1", fresh, tmp_path, estimator="RandomForestClassifier"))
    assert result.metrics["accuracy"] > 0.9
    assert result.baseline["accuracy"] > 0.9
    loaded = load_model_dir(tmp_path / "v2")
    assert loaded.metadata.categorical_features == ["colour"]
    assert loaded.metadata.classes == ["no", "yes"]
    assert [f.kind for f in loaded.profile.features] == ["numeric", "categorical", "numeric"]
    # the object matrix the model server builds: floats, and strings for categories
    request = np.array(
        [[1.2, "green", 0.0], [-1.0, "red", 0.3], [-1.0, "purple", 0.3]], dtype=object
    )
    assert loaded.estimator.predict(request).tolist() == ["yes", "yes", "no"]


def test_too_many_missing_categories_fail_the_gate(champion: Path, tmp_path: Path) -> None:
    from modelops.training.quality import QualityLimits
    from modelops.training.trainer import load_dataset

    data = tmp_path / "gappy.csv"
    write_categorical_csv(data, 100, seed=1, missing_colour=30)
    with pytest.raises(QualityGateError, match="colour 30%"):
        load_dataset(
            data,
            ["size", "colour", "weight"],
            "label",
            "classification",
            QualityLimits(),
            categorical=["colour"],
            sha256="x",
            uri=data.as_uri(),
        )
