"""``modelops package`` for governed promotion: sensitive columns kept out of the features, and the
first version's model card (with a fairness table when holdout data is given).

A sensitive column in the reference data is dropped before the features are found, so it is
never profiled and the server never counts it; a model fitted on one is refused unless that is
explicitly allowed. The holdout's sensitive columns group its rows for the card's fairness table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelops.artifacts import ModelMetadata
from modelops.training import card as cards
from modelops.training import fairness as fair
from modelops.training.errors import InvalidInputError
from modelops.training.sensitive import TimeRange, time_range_of


@dataclass(frozen=True)
class Governance:
    """What ``package`` is told about sensitive columns and the card."""

    sensitive: tuple[str, ...] = ()
    metric: str | None = None
    min_group_rows: int = fair.DEFAULT_MIN_GROUP_ROWS
    allow_sensitive_features: bool = False
    time_column: str | None = None

    @property
    def settings(self) -> fair.FairnessSettings:
        return fair.FairnessSettings(
            columns=self.sensitive,
            metric=self.metric,
            min_group_rows=self.min_group_rows,
            allow_sensitive_features=self.allow_sensitive_features,
        )


@dataclass(frozen=True)
class Prepared:
    """Reference and holdout data without the evaluation-only columns, and what they held."""

    X: Any
    holdout: tuple[Any, Any] | None
    holdout_groups: dict[str, fair.Labels] = field(default_factory=dict)
    time_range: TimeRange | None = None


def prepare(
    model: Any,
    X: Any,  # noqa: N803
    holdout: tuple[Any, Any] | None,
    governance: Governance,
    target: str,
) -> Prepared:
    """Check the sensitive and time columns, and drop them from the data unless the model is
    fitted on them (a sensitive one only when allowed)."""
    import pandas as pd

    named = [*governance.sensitive, *([governance.time_column] if governance.time_column else [])]
    if not named:
        return Prepared(X, holdout)
    if not isinstance(X, pd.DataFrame):
        raise InvalidInputError(
            "sensitive and time columns need the reference data as a DataFrame with named columns"
        )
    settings = governance.settings
    fitted = [str(n) for n in getattr(model, "feature_names_in_", [])]
    settings.check_columns([str(c) for c in X.columns], fitted, target)
    if governance.time_column and governance.time_column not in X.columns:
        raise InvalidInputError(f"the reference data has no time column {governance.time_column!r}")
    time_range = None
    if governance.time_column:
        cells = ["" if pd.isna(v) else str(v) for v in X[governance.time_column]]
        time_range = time_range_of(governance.time_column, cells)
    drop = [name for name in named if name not in fitted]
    groups: dict[str, fair.Labels] = {}
    if holdout is not None:
        x_holdout, y_holdout = holdout
        if not isinstance(x_holdout, pd.DataFrame):
            raise InvalidInputError("with sensitive columns, the holdout data must be a DataFrame")
        absent = [name for name in governance.sensitive if name not in x_holdout.columns]
        if absent:
            raise InvalidInputError(f"the holdout data has no sensitive column {absent[0]!r}")
        groups = {
            name: fair.group_labels([None if pd.isna(v) else str(v) for v in x_holdout[name]])
            for name in governance.sensitive
        }
        holdout = (x_holdout.drop(columns=[c for c in drop if c in x_holdout.columns]), y_holdout)
    return Prepared(X.drop(columns=drop), holdout, groups, time_range)


def build_card(
    metadata: ModelMetadata,
    governance: Governance,
    prepared: Prepared,
    *,
    rows: int,
    holdout_labels: Any = None,
    holdout_predicted: Any = None,
) -> dict[str, Any]:
    """The first version's card: the fairness table when holdout rows and their groups are
    there, and the settings allow one for the model's task."""
    table = None
    if governance.sensitive and holdout_predicted is not None and prepared.holdout_groups:
        settings = governance.settings
        settings.check(metadata.task, binary=len(metadata.classes or []) == 2)
        table = fair.evaluate(
            settings,
            prepared.holdout_groups,
            holdout_labels,
            holdout_predicted,
            None,
            task=metadata.task,
            classes=metadata.classes,
        )
    elif governance.metric is not None:
        governance.settings.check(metadata.task, binary=len(metadata.classes or []) == 2)
    return cards.build(
        metadata,
        made_by="modelops package",
        data=cards.CardData(
            rows=rows,
            holdout_rows=None if holdout_labels is None else len(holdout_labels),
            time_range=prepared.time_range,
            metrics_on="holdout" if prepared.holdout is not None else "reference",
        ),
        context=cards.CardContext(time_column=governance.time_column),
        fairness=table,
        sensitive=governance.sensitive,
    )


def names(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """Sensitive column names from a comma-separated text or a list."""
    if text is None:
        return ()
    if isinstance(text, str):
        return fair.split_names(text)
    return tuple(str(name) for name in text)
