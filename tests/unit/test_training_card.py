"""The model card: what ``card.json`` records, ``card.md`` renders, the decisions read from a
ModelDeployment's or DriftPolicy's status, and ``modelops card`` with its errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelops.artifacts import CARD_FILE, CARD_MARKDOWN_FILE, FAIRNESS_FILE, ModelMetadata
from modelops.cli import main
from modelops.training import card as cards
from modelops.training import fairness as fair
from modelops.training.sensitive import TimeRange, time_range_of

METADATA = ModelMetadata(
    version="v2",
    created=datetime(2026, 12, 5, 12, 0, tzinfo=UTC),
    estimator="LogisticRegression",
    params={"C": 0.5},
    features=["income", "debt"],
    target="approved",
    task="classification",
    classes=[0, 1],
    data_uri="https://user:secret@example.com/data.csv?token=abc",
    data_sha256="ab" * 32,
    metrics={"accuracy": 0.91, "f1": 0.9},
    library_versions={"python": "3.11.7", "scikit-learn": "1.9.1"},
)


def fairness_table() -> dict[str, Any]:
    rng = np.random.default_rng(1)
    groups = np.array(["F|x", "M"] * 50, dtype=object)
    truth = rng.integers(0, 2, 100)
    predicted = np.where(groups == "M", truth, 0)
    settings = fair.FairnessSettings(("sex",), "demographic_parity_difference", min_group_rows=60)
    return fair.evaluate(
        settings, {"sex": groups}, truth, predicted, truth, task="classification", classes=[0, 1]
    )


def a_card() -> dict[str, Any]:
    return cards.build(
        METADATA,
        made_by="modelops train",
        data=cards.CardData(
            rows=400,
            training_rows=300,
            holdout_rows=100,
            time_range=TimeRange("applied_at", "2026-01-01T00:00:00Z", "2026-03-31T23:00:00Z"),
            seed=7,
            test_size=0.25,
        ),
        context=cards.CardContext(
            reason="DriftDetected",
            policy="credit-drift",
            job="credit-retrain-v2",
            evaluation_time="2026-12-05T11:59:00Z",
        ),
        champion=METADATA.model_copy(update={"version": "v1"}),
        champion_uri="s3://models/credit/v1",
        baseline={"accuracy": 0.8, "f1": 0.79},
        fairness=fairness_table(),
        sensitive=("sex",),
    )


def test_the_card_records_the_run() -> None:
    card = a_card()
    assert card["version"] == "v2"
    assert card["data"]["uri"] == "https://example.com/data.csv"  # no credentials in a card
    assert card["data"]["timeRange"] == {
        "start": "2026-01-01T00:00:00Z",
        "end": "2026-03-31T23:00:00Z",
    }
    assert card["metrics"]["challenger"] == METADATA.metrics
    assert card["metrics"]["champion"] == {"accuracy": 0.8, "f1": 0.79}
    assert card["champion"] == {"version": "v1", "uri": "s3://models/credit/v1"}
    assert card["retraining"]["reason"] == "DriftDetected"
    assert card["sensitiveColumns"] == ["sex"]
    assert card["sensitiveFeatures"] == []
    assert card["fairness"]["columns"]["sex"]["smallGroups"] == ["F|x", "M"]
    json.dumps(card)  # JSON all the way down


def test_the_markdown_says_what_the_json_does() -> None:
    text = cards.render(a_card())
    assert text.startswith("# Model card: version v2\n")
    for expected in (
        "| SHA-256 | `" + "ab" * 32 + "` |",
        "| Time range (applied_at) | 2026-01-01T00:00:00Z to 2026-03-31T23:00:00Z |",
        "| accuracy | 0.91 | 0.8 |",
        "| Reason | DriftDetected |",
        "| DriftPolicy | credit-drift |",
        "| Job | credit-retrain-v2 |",
        "Metric: `demographic_parity_difference`",
        "Too few holdout rows: F\\|x, M",
        "| F\\|x | 50 |",  # a pipe in a group name cannot break the table
        "| C | 0.5 |",
        "scikit-learn 1.9.1",
    ):
        assert expected in text, expected


def test_the_writer_writes_card_markdown_and_the_fairness_table(tmp_path: Path) -> None:
    card = a_card()
    cards.writer(card)(tmp_path)
    assert json.loads((tmp_path / CARD_FILE).read_text()) == card
    assert (tmp_path / CARD_MARKDOWN_FILE).read_text() == cards.render(card)
    assert json.loads((tmp_path / FAIRNESS_FILE).read_text()) == card["fairness"]
    without = {**card, "fairness": None}
    (tmp_path / "x").mkdir()
    cards.writer(without)(tmp_path / "x")
    assert not (tmp_path / "x" / FAIRNESS_FILE).exists()
    assert "fairness was not evaluated" in (tmp_path / "x" / CARD_MARKDOWN_FILE).read_text()


MDEP = {
    "apiVersion": "modelops.dev/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "credit"},
    "status": {
        "modelVersion": "v3",
        "history": [
            {
                "version": "v1",
                "uri": "s3://m/v1",
                "time": "2026-12-01T00:00:00Z",
                "reason": "Created",
            },
            {
                "version": "v2",
                "uri": "s3://m/v2",
                "time": "2026-12-05T12:05:00Z",
                "reason": "CandidatePromoted",
            },
            {"version": "v3", "uri": "s3://m/v3", "time": "2026-12-06T00:00:00Z", "reason": "x"},
            {
                "version": "v2",
                "uri": "s3://m/v2",
                "time": "2026-12-07T00:00:00Z",
                "reason": "RolledBack",
            },
        ],
    },
}
DPOL = {
    "apiVersion": "modelops.dev/v1alpha1",
    "kind": "DriftPolicy",
    "metadata": {"name": "credit-drift"},
    "status": {
        "lastRetraining": {
            "job": "credit-retrain-v2",
            "candidateVersion": "v2",
            "result": "Succeeded",
            "reason": "FairnessGateFailed",
            "message": "demographic_parity_difference of sex is 0.42 (Fzorbl, Mqwix), max 0.1",
            "startTime": "2026-12-05T12:00:00Z",
            "completionTime": "2026-12-05T12:01:00Z",
        }
    },
}


def test_decisions_about_the_version_from_both_kinds() -> None:
    found = cards.decisions({"kind": "List", "items": [MDEP, DPOL]}, "v2")
    assert [(d["decision"], d["source"]) for d in found] == [
        ("FairnessGateFailed", "DriftPolicy/credit-drift (Job credit-retrain-v2)"),
        ("CandidatePromoted", "ModelDeployment/credit"),
        ("RolledBack", "ModelDeployment/credit"),
    ]
    assert "0.42" in found[0]["message"]
    assert cards.decisions(DPOL, "v9") == []
    assert cards.decisions(MDEP, "v1")[0]["decision"] == "Created"
    text = cards.render_decisions(found, "v2")
    assert "| 2026-12-05T12:01:00Z | DriftPolicy/credit-drift (Job credit-retrain-v2) |" in text
    assert "No decision about version v9" in cards.render_decisions([], "v9")


@pytest.fixture
def carded(tmp_path: Path) -> Path:
    directory = tmp_path / "v2"
    directory.mkdir()
    cards.writer(a_card())(directory)
    return directory


def test_card_command_prints_the_markdown_with_decisions(
    carded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["card", str(carded)]) == 0
    assert capsys.readouterr().out == (carded / CARD_MARKDOWN_FILE).read_text()
    status = tmp_path / "dpol.json"
    status.write_text(json.dumps(DPOL))
    assert main(["card", carded.as_uri(), "--status", str(status)]) == 0
    out = capsys.readouterr().out
    assert out.startswith((carded / CARD_MARKDOWN_FILE).read_text())
    assert "## Decisions" in out
    assert "FairnessGateFailed" in out
    assert main(["card", str(carded), "--status", str(status), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["decisions"][0]["decision"] == "FairnessGateFailed"
    assert document["metrics"] == a_card()["metrics"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("no-card", "no model card:"),
        ("no-dir", "is not a directory"),
        ("bad-status", "is not JSON"),
        ("not-a-resource", "is not a ModelDeployment or DriftPolicy"),
        ("bad-card", "is not JSON"),
    ],
)
def test_card_command_bad_input_is_one_line_and_exit_2(
    carded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, message: str
) -> None:
    args = ["card", str(carded)]
    if setup == "no-card":
        (carded / CARD_FILE).unlink()
    elif setup == "no-dir":
        args = ["card", str(tmp_path / "nowhere")]
    elif setup == "bad-card":
        (carded / CARD_FILE).write_text("{nope")
    else:
        status = tmp_path / "status.json"
        status.write_text("[1, 2]" if setup == "not-a-resource" else "not json")
        args += ["--status", str(status)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("modelops card: error: ")
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_time_ranges_are_read_as_iso_8601() -> None:
    span = time_range_of("t", ["2026-02-01T10:00:00+01:00", "", "2026-01-01", "NA"])
    assert (span.start, span.end) == ("2026-01-01T00:00:00Z", "2026-02-01T09:00:00Z")
    assert time_range_of("t", ["", "na"]) == TimeRange("t", None, None)
    from modelops.training.errors import DataError

    with pytest.raises(DataError, match=r"^the time column 't' holds 'yesterday', which is not an"):
        time_range_of("t", ["2026-01-01", "yesterday"])


def test_the_command_names_the_artifact_file() -> None:
    from modelops.artifacts import CARD_FILE as ARTIFACT
    from modelops.training.card_cli import CARD_FILE as COMMAND

    assert COMMAND == ARTIFACT
