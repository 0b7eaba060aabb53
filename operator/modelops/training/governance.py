"""What a training run adds for governed promotion: sensitive columns kept out of the model, the
fairness of challenger and champion on the holdout, and the model card.

The trainer calls these at fixed points: :func:`check_inputs` with the cheap checks (before the
data is parsed), :func:`read_columns` after the features are read, :func:`govern` once the
challenger is fitted. The holdout rows are the trainer's own: :func:`holdout_rows` repeats its
seeded split on row numbers, which gives the same rows because a split depends only on the row
count, the labels it stratifies by and the seed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from modelops.artifacts import ModelMetadata
from modelops.frames import FedModel, feed_for
from modelops.training import card as cards
from modelops.training import data as csvdata
from modelops.training import fairness as fair
from modelops.training.errors import DataError
from modelops.training.evaluate import split_holdout
from modelops.training.sensitive import EvaluationColumns, read_evaluation_columns

if TYPE_CHECKING:
    from modelops.serving.loader import LoadedModel
    from modelops.training.trainer import Blueprint, Candidate, Dataset, TrainConfig

log = logging.getLogger(__name__)

Writer = Callable[[Path], None]


def check_inputs(config: TrainConfig, data_path: Path, champion: ModelMetadata) -> None:
    """Refuse (exit 2) fairness settings the model cannot be evaluated with, sensitive columns
    the data lacks or the model uses as features, and a time column the data lacks."""
    settings = config.fairness
    settings.check(champion.task, binary=len(champion.classes or []) == 2)
    time_column = config.card.time_column
    if not settings.active and not time_column:
        return
    header = csvdata.read_header(data_path)
    settings.check_columns(header, champion.features, champion.target)
    if time_column and time_column not in header:
        raise DataError(f"the data has no time column {time_column!r}")


def extend_identity(identity: str, settings: fair.FairnessSettings) -> str:
    """The run identity, extended with the fairness settings when there are any (so a re-run
    with other settings is told from a no-op; runs without them keep their identity)."""
    if not settings.active:
        return identity
    document = {"run": identity, "fairness": settings.identity()}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def read_columns(
    config: TrainConfig, data_path: Path, champion: ModelMetadata, *, text_labels: bool
) -> EvaluationColumns:
    """The sensitive groups and the time range of the data (nothing when none are named)."""
    if not config.fairness.active and not config.card.time_column:
        return EvaluationColumns()
    return read_evaluation_columns(
        data_path,
        sensitive=config.fairness.columns,
        time_column=config.card.time_column,
        target=champion.target,
        task=champion.task,
        text_labels=text_labels,
        max_rows=config.limits.max_rows,
    )


def holdout_rows(dataset: Dataset, *, seed: int, test_size: float) -> npt.NDArray[np.intp]:
    """Row numbers of the trainer's holdout (the same split as ``fit_candidate``'s)."""
    index = np.arange(len(dataset.y)).reshape(-1, 1)
    split = split_holdout(index, dataset.y, dataset.task, test_size=test_size, seed=seed)
    rows: npt.NDArray[np.intp] = split.x_test[:, 0]
    return rows


@dataclass(frozen=True)
class Governed:
    """What :func:`govern` adds to a run: the result's ``fairness`` and the extra files."""

    summary: dict[str, Any] | None
    card: dict[str, Any]

    def writer(self, write_model: Writer) -> Writer:
        """``write_model`` followed by the card (and fairness table) into the same directory."""
        write_card = cards.writer(self.card)

        def write(directory: Path) -> None:
            write_model(directory)
            write_card(directory)

        return write


def govern(
    config: TrainConfig,
    dataset: Dataset,
    blueprint: Blueprint,
    candidate: Candidate,
    champion: LoadedModel,
    evaluation: EvaluationColumns,
    *,
    base_model_uri: str,
) -> Governed:
    """Score both models' fairness on the holdout and write up the card."""
    rows = holdout_rows(dataset, seed=config.seed, test_size=config.test_size)
    table = None
    summary = None
    if config.fairness.active:
        table = fairness_table(config, dataset, blueprint, candidate, champion, evaluation, rows)
        if config.fairness.metric is not None:
            summary = fair.summary(table)
    card = cards.build(
        candidate.metadata,
        made_by="modelops train",
        data=cards.CardData(
            rows=len(dataset.y),
            training_rows=len(dataset.y) - len(rows),
            holdout_rows=len(rows),
            time_range=evaluation.time_range,
            seed=config.seed,
            test_size=config.test_size,
        ),
        context=config.card,
        champion=champion.metadata,
        champion_uri=base_model_uri,
        baseline=candidate.baseline,
        baseline_error=candidate.baseline_error,
        fairness=table,
        sensitive=config.fairness.columns,
    )
    return Governed(summary, card)


def fairness_table(
    config: TrainConfig,
    dataset: Dataset,
    blueprint: Blueprint,
    candidate: Candidate,
    champion: LoadedModel,
    evaluation: EvaluationColumns,
    rows: npt.NDArray[np.intp],
) -> dict[str, Any]:
    """The fairness table of challenger and champion on the holdout ``rows``."""
    settings = config.fairness
    x_test, y_test = dataset.x[rows], dataset.y[rows]
    challenger = FedModel(candidate.model, feed_for(dataset.features, blueprint.feature_dtypes))
    predicted = np.asarray(challenger.predict(x_test))
    champion_predicted = None
    if candidate.baseline:  # the champion could be scored on this holdout
        meta = champion.metadata
        fed = FedModel(champion.estimator, feed_for(meta.features, meta.feature_dtypes))
        champion_predicted = np.asarray(fed.predict(x_test))
    groups = fair.sensitive_groups(
        {name: labels[rows] for name, labels in evaluation.groups.items()},
        intersection=settings.intersection,
    )
    table = fair.evaluate(
        settings,
        groups,
        y_test,
        predicted,
        champion_predicted,
        task=dataset.task,
        classes=candidate.metadata.classes,
    )
    small = sum(len(entry["smallGroups"]) for entry in table["columns"].values())
    log.info(
        "Evaluated fairness (%s) on %d sensitive column(s) and %d holdout rows; %d small group(s)",
        settings.metric or "table only",
        len(table["columns"]),
        len(rows),
        small,
    )
    return table
