"""``DriftPolicy.spec.promotion.fairness``: the fairness gate, and the trainer's fairness report.

The gate is configured here; the trainer measures the metric with fairlearn for the challenger and
the champion on the same holdout, per sensitive column, and reports it in its result JSON (the
``fairness`` block, :class:`FairnessReport`); the operator refuses promotion in every mode when
the challenger breaks the bound, degrades past ``maxDegradation`` or a group is too small.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from modelops.api.base import ApiModel, StatusModel

FairnessMetric = Literal[
    "demographic_parity_difference",
    "equalized_odds_difference",
    "demographic_parity_ratio",
    "equalized_odds_ratio",
    "accuracy_difference",
    "recall_difference",
]
FAIRNESS_METRICS: tuple[FairnessMetric, ...] = (
    "demographic_parity_difference",
    "equalized_odds_difference",
    "demographic_parity_ratio",
    "equalized_odds_ratio",
    "accuracy_difference",
    "recall_difference",
)
#: Column names go comma-separated into the Job's environment and ``&``-joined into the name of
#: their intersection, so neither character (nor surrounding blanks) may be part of one.
COLUMN_PATTERN = r"^[^,&\s]([^,&]*[^,&\s])?$"
INTERSECTION_SEPARATOR = "&"
DEFAULT_MIN_GROUP_ROWS = 30


def is_ratio(metric: str) -> bool:
    """Ratios (1 = parity) must stay above ``min``; differences (0 = parity) below ``max``."""
    return metric.endswith("_ratio")


class Fairness(ApiModel):
    """A fairness gate on the holdout: a candidate that breaks it is never promoted."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "self.metric.endsWith('_ratio') || (has(self.max) && !has(self.min))",
                    "message": "a difference metric takes max (the largest allowed difference), "
                    "not min",
                },
                {
                    "rule": "!self.metric.endsWith('_ratio') || (has(self.min) && !has(self.max))",
                    "message": "a ratio metric takes min (the smallest allowed ratio), not max",
                },
            ]
        }
    }

    sensitive_columns: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=256, pattern=COLUMN_PATTERN)]],
        Field(min_length=1, max_length=8, json_schema_extra={"x-kubernetes-list-type": "set"}),
    ]
    """Columns of the retraining data holding the sensitive attributes (e.g. sex, age_band):
    read for evaluation only, never model inputs unless allowSensitiveFeatures."""
    metric: FairnessMetric
    """fairlearn metric measured per column on the holdout: demographic_parity_difference,
    equalized_odds_difference, accuracy_difference, recall_difference (0 = parity, bounded by
    max) or demographic_parity_ratio, equalized_odds_ratio (1 = parity, bounded by min)."""
    max: Annotated[float, Field(ge=0, le=1)] | None = None
    """Largest difference allowed (difference metrics only), e.g. 0.1."""
    min: Annotated[float, Field(ge=0, le=1)] | None = None
    """Smallest ratio allowed (ratio metrics only), e.g. 0.8 (the four-fifths rule)."""
    max_degradation: Annotated[float, Field(ge=0, le=1)] | None = None
    """How much less fair than the champion the challenger may be on the same holdout (a
    difference may grow, a ratio shrink, by at most this); unset: not compared."""
    intersection: bool = False
    """Also gate on the intersection of all the columns (e.g. sex&race)."""
    min_group_rows: Annotated[int, Field(ge=1, le=1_000_000)] = DEFAULT_MIN_GROUP_ROWS
    """Fewest holdout rows a group needs; a smaller group blocks the candidate
    (FairnessGroupTooSmall) rather than passing unmeasured."""
    allow_sensitive_features: bool = False
    """Let a sensitive column also be a model input (by default training with one is refused)."""

    @field_validator("sensitive_columns")
    @classmethod
    def _unique_columns(cls, columns: list[str]) -> list[str]:
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise ValueError(f"sensitive columns must be unique, repeated: {', '.join(repeated)}")
        return columns

    @model_validator(mode="after")
    def _bound_of_the_metric_kind(self) -> Fairness:
        if is_ratio(self.metric):
            if self.min is None or self.max is not None:
                raise ValueError("a ratio metric takes min (the smallest allowed ratio), not max")
        elif self.max is None or self.min is not None:
            raise ValueError(
                "a difference metric takes max (the largest allowed difference), not min"
            )
        return self

    @property
    def bound(self) -> float:
        """The configured bound of the metric's kind (``min`` for ratios, ``max`` otherwise)."""
        value = self.min if is_ratio(self.metric) else self.max
        assert value is not None  # the validator guarantees it
        return value

    @property
    def intersection_name(self) -> str | None:
        """The report's key of the intersection, when one is asked of two or more columns."""
        if not self.intersection or len(self.sensitive_columns) < 2:
            return None
        return INTERSECTION_SEPARATOR.join(self.sensitive_columns)


class ColumnFairness(StatusModel):
    """The metric of one sensitive column (or intersection) on the holdout."""

    challenger: float | None = None
    """The candidate's value (null when it could not be computed)."""
    champion: float | None = None
    """The current model's value on the same holdout (null without a champion)."""
    groups: list[str] = []
    """The two groups whose values give the challenger's difference or ratio."""
    small_groups: list[str] = []
    """Groups with fewer holdout rows than minGroupRows."""


class FairnessReport(StatusModel):
    """The trainer's fairness measurement (result JSON ``fairness``), kept with the candidate."""

    metric: str
    """The fairlearn metric measured."""
    min_group_rows: int | None = None
    """The smallest group size the trainer checked against."""
    columns: dict[str, ColumnFairness] = {}
    """Per sensitive column (and ``a&b`` for the intersection)."""
