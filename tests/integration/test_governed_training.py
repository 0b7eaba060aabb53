"""Governed promotion, the trainer's side, with real processes: ``modelops package --sensitive``
writes the first version and its card, ``modelops train`` (configured by the environment the
operator sets on retraining Jobs) reports fairness that equals fairlearn's own ``MetricFrame`` on
the holdout rows, a challenger retrained on biased data is far less fair than one retrained on the
same data without the bias, sensitive columns never reach the model, the profile, the logs or the
model server's metrics, and the card's numbers are the result's.

The expected values are never our code's: the holdout is scikit-learn's ``train_test_split`` with
the trainer's documented settings, predictions are the published pipeline's own, and the metrics
are fairlearn's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io
from fairlearn.metrics import MetricFrame, selection_rate
from prometheus_client.parser import text_string_to_metric_families
from sklearn.model_selection import train_test_split

from fairness_support import (
    FEATURES,
    REGIONS,
    SENSITIVE,
    SEXES,
    TARGET,
    TIME,
    applicants,
    fit_champion,
)
from modelops.artifacts import CARD_FILE, FAIRNESS_FILE, TrainingResult
from modelops.drift import Profile
from modelops.serving.loader import load_model_dir
from modelops.training import card as cards
from serving_support import running_server, v2_columns

pytestmark = pytest.mark.integration

METRIC = "demographic_parity_difference"
JOB_ENV = {
    "MODELOPS_SENSITIVE_COLUMNS": "sex,region",
    "MODELOPS_FAIRNESS_METRIC": METRIC,
    "MODELOPS_FAIRNESS_INTERSECTION": "true",
    "MODELOPS_FAIRNESS_MIN_GROUP_ROWS": "30",
    "MODELOPS_RETRAINING_REASON": "DriftDetected",
    "MODELOPS_POLICY": "credit-drift",
    "MODELOPS_EVALUATION_TIME": "2026-12-05T12:00:00Z",
    "MODELOPS_JOB_NAME": "credit-retrain-v2",
    "MODELOPS_TIME_COLUMN": TIME,
}


def modelops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m modelops ARGS`` with no MODELOPS_* setting but ``env``'s."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODELOPS_")}
    return subprocess.run(
        [sys.executable, "-m", "modelops", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**clean, **(env or {})},
        check=False,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first version packaged with its card, and biased and fair fresh data."""
    root = tmp_path_factory.mktemp("governed")
    reference = applicants(1500, seed=1)
    reference.to_csv(root / "reference.csv", index=False)
    applicants(500, seed=2).to_csv(root / "holdout.csv", index=False)
    skops.io.dump(fit_champion(reference), root / "champion.skops")
    done = modelops(
        "package", "--model", str(root / "champion.skops"),
        "--reference-data", str(root / "reference.csv"), "--target", TARGET,
        "--version", "v1", "--output", str(root / "v1"),
        "--holdout-data", str(root / "holdout.csv"), "--sensitive", "sex,region",
        "--fairness-metric", METRIC, "--time-column", TIME,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    applicants(3000, seed=3, biased=True, shift=0.5).to_csv(root / "biased.csv", index=False)
    applicants(3000, seed=3, shift=0.5).to_csv(root / "fair.csv", index=False)
    return root


def train(
    world: Path, data: str, output: Path, env: dict[str, str] | None = None, *, seed: int = 0
) -> tuple[subprocess.CompletedProcess[str], TrainingResult | None]:
    log = output.parent / f"{output.name}.termination-log"
    done = modelops(
        "train",
        env={
            "MODELOPS_DATA_URI": (world / data).as_uri(),
            "MODELOPS_BASE_MODEL_URI": (world / "v1").as_uri(),
            "MODELOPS_OUTPUT_URI": output.as_uri(),
            "MODELOPS_VERSION": "v2",
            "MODELOPS_SEED": str(seed),
            "MODELOPS_TERMINATION_LOG": str(log),
            **(JOB_ENV if env is None else env),
        },
    )
    assert "Traceback" not in done.stderr, done.stderr
    if not log.exists():
        return done, None
    text = log.read_text()
    assert len(text.encode()) < 4096
    assert done.stdout.strip().splitlines()[-1] == text
    return done, TrainingResult.model_validate_json(text)


@pytest.fixture(scope="module")
def biased(world: Path) -> tuple[subprocess.CompletedProcess[str], TrainingResult, Path]:
    output = world / "out-biased"
    done, result = train(world, "biased.csv", output)
    assert done.returncode == 0, done.stderr
    assert result is not None
    return done, result, output / "v2"


def holdout_of(world: Path, data: str, seed: int = 0) -> pd.DataFrame:
    """The trainer's holdout, made with scikit-learn as the trainer documents it: 25 %,
    shuffled with the seed, stratified by the target."""
    frame = pd.read_csv(world / data)
    _, test = train_test_split(frame, test_size=0.25, random_state=seed, stratify=frame[TARGET])
    return test


def parity(model: Any, rows: pd.DataFrame, groups: Any) -> tuple[float, list[str]]:
    """fairlearn's demographic parity difference of ``model`` on ``rows``, and the groups with
    the lowest and highest selection rate."""
    frame = MetricFrame(
        metrics=selection_rate,
        y_true=rows[TARGET],
        y_pred=model.predict(rows[FEATURES]),
        sensitive_features=groups,
    )
    rates = frame.by_group
    if isinstance(rates.index, pd.MultiIndex):
        rates.index = ["&".join(map(str, key)) for key in rates.index]
    return float(frame.difference()), [str(rates.idxmin()), str(rates.idxmax())]


def test_package_keeps_sensitive_columns_out_and_cards_the_first_version(world: Path) -> None:
    loaded = load_model_dir(world / "v1")
    assert loaded.metadata.features == FEATURES
    assert [f.name for f in loaded.profile.features] == FEATURES
    card = json.loads((world / "v1" / CARD_FILE).read_text())
    assert card["madeBy"] == "modelops package"
    assert card["sensitiveColumns"] == SENSITIVE
    assert card["metrics"]["challenger"] == loaded.metadata.metrics
    holdout = pd.read_csv(world / "holdout.csv")
    value, pair = parity(loaded.estimator, holdout, holdout["sex"])
    sex = card["fairness"]["columns"]["sex"]
    assert sex["challenger"] == pytest.approx(value, abs=1e-12)
    assert sex["worstPair"] == pair
    assert sex["champion"] is None  # a first version has no champion
    reference = pd.read_csv(world / "reference.csv")
    assert card["data"]["timeRange"] == {
        "start": reference[TIME].min(),
        "end": reference[TIME].max(),
    }
    assert card["data"]["rows"] == len(reference)


def test_a_challenger_retrained_on_biased_data_is_unfair_and_on_fair_data_is_not(
    world: Path, biased: tuple[Any, TrainingResult, Path], tmp_path: Path
) -> None:
    _, unfair, _ = biased
    done, fair = train(world, "fair.csv", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert unfair.fairness is not None
    assert fair is not None
    assert fair.fairness is not None
    assert unfair.fairness.metric == METRIC
    assert unfair.fairness.min_group_rows == 30
    assert set(unfair.fairness.columns) == {"sex", "region", "sex&region"}
    assert unfair.fairness.columns["sex"].challenger is not None
    assert unfair.fairness.columns["sex"].challenger > 0.3  # the gate's max (e.g. 0.1) blocks it
    assert unfair.fairness.columns["sex"].groups == list(SEXES)  # F least often approved
    assert unfair.fairness.columns["sex"].champion is not None
    assert unfair.fairness.columns["sex"].champion < 0.1  # the champion was fair
    assert fair.fairness.columns["sex"].challenger is not None
    assert fair.fairness.columns["sex"].challenger < 0.1
    for result in (unfair, fair):
        assert all(not column.small_groups for column in result.fairness.columns.values())  # type: ignore[union-attr]


def test_fairness_equals_fairlearn_metricframe_on_the_holdout_rows(
    world: Path, biased: tuple[Any, TrainingResult, Path]
) -> None:
    _, result, directory = biased
    assert result.fairness is not None
    holdout = holdout_of(world, "biased.csv")
    challenger = load_model_dir(directory).estimator
    champion = load_model_dir(world / "v1").estimator
    for column, groups in (
        ("sex", holdout["sex"]),
        ("region", holdout["region"]),
        ("sex&region", holdout[["sex", "region"]]),
    ):
        reported = result.fairness.columns[column]
        value, pair = parity(challenger, holdout, groups)
        assert reported.challenger == pytest.approx(value, abs=1e-12)
        assert reported.groups == pair
        assert reported.champion == pytest.approx(parity(champion, holdout, groups)[0], abs=1e-12)
    table = json.loads((directory / FAIRNESS_FILE).read_text())
    for group, rows in holdout.groupby("sex"):
        assert table["columns"]["sex"]["groups"][group]["rows"] == len(rows)
        rate = float(np.mean(challenger.predict(rows[FEATURES]) == 1))
        assert table["columns"]["sex"]["groups"][group]["challenger"]["selectionRate"] == (
            pytest.approx(rate)
        )


def test_the_card_numbers_are_the_result_numbers(
    world: Path, biased: tuple[Any, TrainingResult, Path], tmp_path: Path
) -> None:
    _, result, directory = biased
    card = json.loads((directory / CARD_FILE).read_text())
    assert result.fairness is not None
    assert card["version"] == result.version == "v2"
    assert card["metrics"]["challenger"] == result.metrics
    assert card["metrics"]["champion"] == result.baseline
    for column, summary in result.fairness.columns.items():
        assert card["fairness"]["columns"][column]["challenger"] == summary.challenger
        assert card["fairness"]["columns"][column]["champion"] == summary.champion
        assert card["fairness"]["columns"][column]["worstPair"] == summary.groups
    assert card["fairness"] == json.loads((directory / FAIRNESS_FILE).read_text())
    assert card["retraining"] == {
        "reason": "DriftDetected",
        "policy": "credit-drift",
        "job": "credit-retrain-v2",
        "evaluationTime": "2026-12-05T12:00:00Z",
    }
    data = pd.read_csv(world / "biased.csv")
    assert card["data"]["sha256"] == load_model_dir(directory).metadata.data_sha256
    assert card["data"]["rows"] == len(data)
    assert card["data"]["holdoutRows"] == len(holdout_of(world, "biased.csv"))
    assert card["data"]["timeRange"] == {"start": data[TIME].min(), "end": data[TIME].max()}
    assert card["champion"]["version"] == "v1"
    assert (directory / "card.md").read_text() == cards.render(card)

    status = tmp_path / "dpol.json"
    status.write_text(
        json.dumps(
            {
                "kind": "DriftPolicy",
                "metadata": {"name": "credit-drift"},
                "status": {
                    "lastRetraining": {
                        "job": "credit-retrain-v2",
                        "candidateVersion": "v2",
                        "result": "Succeeded",
                        "reason": "FairnessGateFailed",
                        "message": "demographic_parity_difference of sex above its max",
                        "completionTime": "2026-12-05T12:02:00Z",
                    }
                },
            }
        )
    )
    shown = modelops("card", directory.as_uri(), "--status", str(status))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith((directory / "card.md").read_text())
    assert "| DriftPolicy/credit-drift (Job credit-retrain-v2) | FairnessGateFailed |" in (
        shown.stdout
    )


def test_a_rerun_is_a_no_op_reporting_the_same_fairness(
    world: Path, biased: tuple[Any, TrainingResult, Path]
) -> None:
    _, result, _ = biased
    again, same = train(world, "biased.csv", world / "out-biased")
    assert again.returncode == 0, again.stderr
    assert same == result
    assert "already trained from the same inputs" in again.stderr
    other = {**JOB_ENV, "MODELOPS_FAIRNESS_METRIC": "equalized_odds_ratio"}
    clash, conflict = train(world, "biased.csv", world / "out-biased", other)
    assert clash.returncode == 2
    assert conflict is not None
    assert conflict.reason == "VersionConflict"


def test_sensitive_columns_never_reach_the_model_the_profile_or_the_logs(
    world: Path, biased: tuple[Any, TrainingResult, Path]
) -> None:
    done, _, directory = biased
    loaded = load_model_dir(directory)
    assert loaded.metadata.features == FEATURES
    assert [str(n) for n in loaded.estimator.feature_names_in_] == FEATURES
    profile = Profile.from_json((directory / "profile.json").read_text())
    assert [f.name for f in profile.features] == FEATURES
    assert not {"sex", "region", TIME} & set((directory / "profile.json").read_text().split('"'))
    for value in (*SEXES, *REGIONS):
        assert value not in done.stderr  # no group is ever logged


def test_a_sensitive_feature_is_refused_unless_explicitly_allowed(
    world: Path, tmp_path: Path
) -> None:
    env = {"MODELOPS_SENSITIVE_COLUMNS": "debt", "MODELOPS_TIME_COLUMN": TIME}
    done, result = train(world, "fair.csv", tmp_path / "refused", env)
    assert done.returncode == 2
    assert result is not None
    assert result.reason == "InvalidInput"
    assert done.stderr.strip().splitlines()[-1] == (
        "modelops train: error: the sensitive column(s) ['debt'] are features of the model: "
        "retraining would learn from them; drop them from the model, or allow it explicitly "
        "(MODELOPS_ALLOW_SENSITIVE_FEATURES=true)"
    )
    assert not (tmp_path / "refused").exists()

    allowed = {**env, "MODELOPS_ALLOW_SENSITIVE_FEATURES": "true"}
    done, result = train(world, "fair.csv", tmp_path / "allowed", allowed)
    assert done.returncode == 0, done.stderr
    assert result is not None
    assert result.fairness is None  # no metric asked: the table only
    card = json.loads((tmp_path / "allowed" / "v2" / CARD_FILE).read_text())
    assert card["sensitiveFeatures"] == ["debt"]
    assert "explicitly allowed" in (tmp_path / "allowed" / "v2" / "card.md").read_text()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MODELOPS_SENSITIVE_COLUMNS": "religion"}, "the data has no sensitive column 'religion'"),
        (
            {"MODELOPS_SENSITIVE_COLUMNS": "sex", "MODELOPS_FAIRNESS_METRIC": "parity"},
            "unknown fairness metric 'parity'; choose one of: demographic_parity_difference",
        ),
        (
            {"MODELOPS_FAIRNESS_METRIC": METRIC},
            "the fairness metric demographic_parity_difference needs sensitive columns",
        ),
        ({"MODELOPS_TIME_COLUMN": "when"}, "the data has no time column 'when'"),
        (
            {"MODELOPS_SENSITIVE_COLUMNS": "sex", "MODELOPS_FAIRNESS_MIN_GROUP_ROWS": "0"},
            "argument --fairness-min-group-rows",
        ),
    ],
)
def test_bad_fairness_input_exits_2_with_one_line(
    world: Path, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    done, _ = train(world, "fair.csv", tmp_path / "out", env)
    assert done.returncode == 2
    assert message in done.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_classification_metrics_on_a_regressor_or_many_classes_exit_2(tmp_path: Path) -> None:
    for dataset, message in (
        ("diabetes", "is for classifiers; the model is a regressor"),
        ("iris", "needs a binary classifier"),
    ):
        model = tmp_path / dataset
        assert (
            modelops("example", "model", "--dataset", dataset, "--output", str(model)).returncode
            == 0
        )
        data = tmp_path / f"{dataset}.csv"
        made = modelops(
            "example", "data", "--dataset", dataset, "--rows", "100", "--output", str(data)
        )
        assert made.returncode == 0, made.stderr
        done = modelops(
            "train", "--data-uri", data.as_uri(), "--base-model-uri", model.as_uri(),
            "--output-uri", (tmp_path / f"out-{dataset}").as_uri(), "--version", "v2",
            "--termination-log", str(tmp_path / "log"),
            "--sensitive-columns", "target", "--fairness-metric", "equalized_odds_difference",
        )  # fmt: skip
        assert done.returncode == 2
        assert message in done.stderr.strip().splitlines()[-1]


def test_the_server_serves_the_card_and_never_counts_a_sensitive_column(
    world: Path, biased: tuple[Any, TrainingResult, Path], tmp_path: Path
) -> None:
    _, _, directory = biased
    rows = pd.read_csv(world / "fair.csv").head(20)
    with (
        running_server(directory.as_uri(), tmp_path / "server.log", name="credit") as server,
        server.client() as client,
    ):
        card = client.get("/v2/models/credit/card")
        assert card.status_code == 200
        assert card.headers["content-type"] == "application/json"
        assert card.json() == json.loads((directory / CARD_FILE).read_text())
        assert client.get("/v2/models/credit/versions/v2/card").json()["version"] == "v2"
        assert client.get("/v2/models/other/card").status_code == 404
        request = v2_columns(rows[FEATURES].to_numpy(), FEATURES, [])
        assert client.post("/v2/models/credit/infer", json=request).status_code == 200
        profile = client.get("/v2/models/credit/profile").json()
        metrics = client.get("/metrics").text
    assert [f["name"] for f in profile["features"]] == FEATURES
    counted = {
        sample.labels["feature"]
        for family in text_string_to_metric_families(metrics)
        if family.name == "modelops_feature_bin"
        for sample in family.samples
    }
    assert counted == set(FEATURES)
    for value in (*SENSITIVE, TIME, *SEXES, *REGIONS):
        assert value not in metrics


def test_a_model_without_a_card_answers_404_saying_so(tmp_path: Path) -> None:
    model = tmp_path / "iris"
    assert modelops("example", "model", "--dataset", "iris", "--output", str(model)).returncode == 0
    with (
        running_server(model.as_uri(), tmp_path / "server.log", name="iris") as server,
        server.client() as client,
    ):
        response = client.get("/v2/models/iris/card")
        assert client.get("/v2/models/iris/ready").status_code == 200
    assert response.status_code == 404
    assert response.json() == {
        "error": "model iris version v1 has no model card: its model directory holds no "
        "card.json (made before model cards, or by hand)"
    }
