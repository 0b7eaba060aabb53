"""The trainer's fairness numbers are fairlearn's own: every metric, the worst pair, the small
groups and the intersection, checked against ``MetricFrame`` on the same rows; the result's
``fairness`` stays small whatever the groups are called; bad settings are refused."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, recall_score

from modelops.artifacts import TERMINATION_MESSAGE_LIMIT, FairnessResult, TrainingResult
from modelops.training import fairness as fair
from modelops.training.errors import InvalidInputError
from modelops.training.fairness import FairnessSettings

ROWS = 600


def rows(seed: int = 3, labels: tuple[Any, Any] = (0, 1)) -> dict[str, Any]:
    """Random labels and predictions, with predictions skewed against group ``a``."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["a", "b"], size=ROWS)
    region = rng.choice(["n", "s", "e"], size=ROWS, p=[0.5, 0.45, 0.05])
    truth = rng.integers(0, 2, ROWS)
    flip = rng.random(ROWS) < np.where(sex == "a", 0.4, 0.1)
    predicted = np.where(flip, 0, truth)
    champion = np.where(rng.random(ROWS) < 0.15, 1 - truth, truth)
    mapped = np.array(labels, dtype=object)
    return {
        "sex": sex.astype(object),
        "region": region.astype(object),
        "y": mapped[truth],
        "challenger": mapped[predicted],
        "champion": mapped[champion],
        "binary": (truth, predicted, champion),
    }


def table_for(metric: str, data: dict[str, Any], **settings: Any) -> dict[str, Any]:
    config = FairnessSettings(columns=("sex", "region"), metric=metric, **settings)
    groups = fair.sensitive_groups(
        {"sex": data["sex"], "region": data["region"]}, intersection=config.intersection
    )
    return fair.evaluate(
        config,
        groups,
        data["y"],
        data["challenger"],
        data["champion"],
        task="classification",
        classes=sorted(set(data["y"].tolist())),
    )


def fairlearn_value(metric: str, truth: Any, predicted: Any, groups: Any) -> float:
    """The metric from a MetricFrame, the way fairlearn's documentation defines it."""
    if metric.startswith("demographic_parity"):
        frame = MetricFrame(
            metrics=selection_rate, y_true=truth, y_pred=predicted, sensitive_features=groups
        )
        return float(frame.difference() if metric.endswith("difference") else frame.ratio())
    if metric.startswith("equalized_odds"):
        frame = MetricFrame(
            metrics={"tpr": true_positive_rate, "fpr": false_positive_rate},
            y_true=truth,
            y_pred=predicted,
            sensitive_features=groups,
        )
        if metric.endswith("difference"):
            return float(frame.difference().max())
        return float(frame.ratio().min())
    score = accuracy_score if metric == "accuracy_difference" else recall_score
    frame = MetricFrame(metrics=score, y_true=truth, y_pred=predicted, sensitive_features=groups)
    return float(frame.difference())


@pytest.mark.parametrize("metric", fair.METRICS)
def test_every_metric_equals_metricframe_on_the_same_rows(metric: str) -> None:
    data = rows()
    truth, predicted, champion = data["binary"]
    table = table_for(metric, data, intersection=True)
    intersection = pd.DataFrame({"sex": data["sex"], "region": data["region"]})
    for column, groups in (("sex", data["sex"]), ("region", data["region"])):
        entry = table["columns"][column]
        assert entry["challenger"] == pytest.approx(
            fairlearn_value(metric, truth, predicted, groups), abs=1e-12
        )
        assert entry["champion"] == pytest.approx(
            fairlearn_value(metric, truth, champion, groups), abs=1e-12
        )
    both = table["columns"]["sex&region"]
    assert both["challenger"] == pytest.approx(
        fairlearn_value(metric, truth, predicted, intersection), abs=1e-12
    )


def test_text_labels_use_the_greater_class_as_positive() -> None:
    numbers = rows()
    text = rows(labels=("denied", "granted"))
    for metric in fair.METRICS:
        by_number = table_for(metric, numbers)["columns"]["sex"]["challenger"]
        by_text = table_for(metric, text)["columns"]["sex"]["challenger"]
        assert by_text == pytest.approx(by_number)
    assert table_for("demographic_parity_difference", text)["positiveClass"] == "granted"


def test_the_worst_pair_and_the_group_table_are_metricframes() -> None:
    data = rows()
    truth, predicted, _ = data["binary"]
    table = table_for("demographic_parity_difference", data)
    rates = MetricFrame(
        metrics=selection_rate, y_true=truth, y_pred=predicted, sensitive_features=data["sex"]
    ).by_group
    entry = table["columns"]["sex"]
    assert entry["worstPair"] == [rates.idxmin(), rates.idxmax()] == ["a", "b"]
    every = MetricFrame(
        metrics={
            "accuracy": accuracy_score,
            "selectionRate": selection_rate,
            "truePositiveRate": true_positive_rate,
            "falsePositiveRate": false_positive_rate,
        },
        y_true=truth,
        y_pred=predicted,
        sensitive_features=data["region"],
    ).by_group
    for group, row in every.iterrows():
        mine = table["columns"]["region"]["groups"][group]
        assert mine["challenger"] == pytest.approx(row.to_dict())
        assert mine["rows"] == int((data["region"] == group).sum())
    for group, value in rates.items():
        assert entry["groups"][group]["challenger"]["selectionRate"] == pytest.approx(value)
    eo = table_for("equalized_odds_difference", data)["columns"]["sex"]
    tpr = MetricFrame(
        metrics=true_positive_rate, y_true=truth, y_pred=predicted, sensitive_features=data["sex"]
    ).by_group
    assert eo["worstPair"] == [tpr.idxmin(), tpr.idxmax()]  # the TPR gap is the larger one


def test_groups_under_the_minimum_are_reported_not_dropped() -> None:
    data = rows()
    table = table_for("demographic_parity_difference", data, min_group_rows=40)
    region = table["columns"]["region"]
    count = int((data["region"] == "e").sum())
    assert count < 40
    assert region["smallGroups"] == ["e"]
    assert region["groups"]["e"]["rows"] == count
    assert table["columns"]["sex"]["smallGroups"] == []


def test_no_champion_gives_null_and_missing_cells_are_a_group() -> None:
    data = rows()
    labels = fair.group_labels(["x", "", None, "NA", "y"])
    assert labels.tolist() == ["x", fair.MISSING_GROUP, fair.MISSING_GROUP, fair.MISSING_GROUP, "y"]
    config = FairnessSettings(columns=("sex",), metric="demographic_parity_ratio")
    table = fair.evaluate(
        config,
        {"sex": data["sex"]},
        data["y"],
        data["challenger"],
        None,
        task="classification",
        classes=[0, 1],
    )
    assert table["columns"]["sex"]["champion"] is None
    assert "champion" not in table["columns"]["sex"]["groups"]["a"]
    assert fair.summary(table)["columns"]["sex"]["champion"] is None


def test_the_result_stays_under_4_kib_with_many_groups_and_long_names() -> None:
    rng = np.random.default_rng(5)
    n = 2000
    names = [f"district-{i:03d}-" + "very-long-administrative-name-" * 3 for i in range(60)]
    columns = {
        "district_of_residence_" + "x" * 60: rng.choice(names, size=n).astype(object),
        "district_of_residence_" + "x" * 60 + "_2": rng.choice(names, size=n).astype(object),
        "sex_" + "y" * 60: rng.choice(["a" * 70, "b" * 70], size=n).astype(object),
    }
    truth = rng.integers(0, 2, n)
    predicted = np.where(rng.random(n) < 0.2, 1 - truth, truth)
    config = FairnessSettings(
        columns=tuple(columns), metric="accuracy_difference", intersection=True
    )
    table = fair.evaluate(
        config,
        fair.sensitive_groups(columns, intersection=True),
        truth,
        predicted,
        predicted,
        task="classification",
        classes=[0, 1],
    )
    assert sum(len(e["smallGroups"]) for e in table["columns"].values()) > 1000
    result = TrainingResult(
        version="v2",
        uri="s3://bucket/" + "p" * 200,
        metrics={"accuracy": 0.8},
        baseline={"accuracy": 0.7},
        fairness=FairnessResult.model_validate(fair.summary(table)),
    )
    text = result.to_json()
    assert len(text.encode()) < TERMINATION_MESSAGE_LIMIT
    parsed = TrainingResult.model_validate_json(text)
    assert parsed.fairness is not None
    assert len(parsed.fairness.columns) == 4  # three columns and their intersection
    for (name, entry), summary in zip(
        table["columns"].items(), parsed.fairness.columns.values(), strict=True
    ):
        assert summary.challenger == entry["challenger"]
        assert len(summary.groups) == 2
        small = entry["smallGroups"]
        assert len(summary.small_groups) <= fair.MAX_SMALL_GROUPS + 1
        if len(small) > len(summary.small_groups):  # the rest counted, never silently cut
            kept = len(summary.small_groups) - 1
            assert summary.small_groups[-1] == f"+{len(small) - kept} more"
        else:
            assert len(summary.small_groups) == len(small), name
    counted = [c for c in parsed.fairness.columns.values() if c.small_groups]
    assert any(c.small_groups[-1].endswith(" more") for c in counted)
    assert json.loads(text)["fairness"]["columns"]  # camelCase keys as the contract says


def test_a_short_document_is_not_cut() -> None:
    table = table_for("demographic_parity_difference", rows(), intersection=True)
    document = fair.summary(table)
    assert list(document["columns"]) == ["sex", "region", "sex&region"]
    assert (
        document["columns"]["sex&region"]["groups"] == table["columns"]["sex&region"]["worstPair"]
    )


@pytest.mark.parametrize(
    ("settings", "task", "binary", "message"),
    [
        (FairnessSettings(("s",), "parity"), "classification", True, "unknown fairness metric"),
        (FairnessSettings((), "demographic_parity_difference"), "classification", True, "needs"),
        (
            FairnessSettings(("s",), "accuracy_difference"),
            "regression",
            False,
            "is for classifiers; the model is a regressor",
        ),
        (
            FairnessSettings(("s",), "equalized_odds_ratio"),
            "classification",
            False,
            "needs a binary classifier",
        ),
        (FairnessSettings(("s", "s")), "classification", True, "named twice"),
    ],
)
def test_bad_settings_are_refused(
    settings: FairnessSettings, task: Any, binary: bool, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        settings.check(task, binary=binary)


def test_accuracy_difference_works_for_many_classes() -> None:
    FairnessSettings(("s",), "accuracy_difference").check("classification", binary=False)


def test_the_intersection_of_one_column_is_that_column() -> None:
    FairnessSettings(("s",), intersection=True).check("classification", binary=True)
    groups = fair.sensitive_groups({"s": np.array(["a", "b"], dtype=object)}, intersection=True)
    assert list(groups) == ["s"]


def test_sensitive_columns_must_be_data_and_not_features() -> None:
    header = ["a", "b", "sex", "y"]
    with pytest.raises(InvalidInputError, match="no sensitive column 'race'"):
        FairnessSettings(("race",)).check_columns(header, ["a"], "y")
    with pytest.raises(InvalidInputError, match="target 'y' cannot be"):
        FairnessSettings(("y",)).check_columns(header, ["a"], "y")
    with pytest.raises(InvalidInputError, match=r"\['sex'\] are features of the model"):
        FairnessSettings(("sex",)).check_columns(header, ["a", "sex"], "y")
    allowed = FairnessSettings(("sex",), allow_sensitive_features=True)
    allowed.check_columns(header, ["a", "sex"], "y")


def test_a_regressor_table_is_metricframe_mae_by_group() -> None:
    from sklearn.metrics import mean_absolute_error

    rng = np.random.default_rng(9)
    groups = rng.choice(["p", "q", "r"], size=300).astype(object)
    truth = rng.normal(size=300)
    predicted = truth + rng.normal(0, np.where(groups == "p", 1.0, 0.2))
    rates = fair.group_rates(truth, predicted, groups, "regression", None)
    expected = MetricFrame(
        metrics=mean_absolute_error, y_true=truth, y_pred=predicted, sensitive_features=groups
    ).by_group
    for group, value in expected.items():
        assert rates[group]["mae"] == pytest.approx(value)
        assert rates[group]["meanPrediction"] == pytest.approx(predicted[groups == group].mean())


def test_equal_rates_still_name_two_groups_and_undefined_values_are_null() -> None:
    groups = np.array(["a", "a", "b", "b"], dtype=object)
    truth = np.array([0, 1, 0, 1])
    nothing = np.zeros(4, dtype=int)
    for metric, value in (
        ("demographic_parity_difference", 0.0),
        ("demographic_parity_ratio", None),
    ):
        table = fair.evaluate(
            FairnessSettings(("s",), metric),
            {"s": groups},
            truth,
            nothing,
            None,
            task="classification",
            classes=[0, 1],
        )
        assert table["columns"]["s"]["challenger"] == value  # 0/0 is no ratio: null, never NaN
        assert table["columns"]["s"]["worstPair"] == ["a", "b"]
        json.dumps(table, allow_nan=False)
