"""Fairness of a classifier by group of a sensitive attribute, with fairlearn's own metrics.

Pure: labels, predictions and group labels in, numbers out. The trainer scores the challenger
and the champion on the same holdout rows with :func:`evaluate`; the aggregate value of the
chosen metric per sensitive column (and for the intersection of the columns, when asked) goes
into the result JSON (:func:`summary`, the operator's fairness gate reads it), the per-group
table into the model directory (``fairness.json``) and the model card.

Metrics (the names are a contract with ``DriftPolicy.spec.promotion.fairness``):
``demographic_parity_difference|ratio`` and ``equalized_odds_difference|ratio`` are fairlearn's
functions of the same name, computed on the labels made binary (the positive class is the greater
of a binary classifier's two classes, scikit-learn's convention); ``accuracy_difference`` and
``recall_difference`` are ``MetricFrame(...).difference()`` (between groups) of scikit-learn's
``accuracy_score`` and ``recall_score`` (binary, the positive class as above). All are defined
for classifiers only; the demographic-parity, equalized-odds and recall metrics for binary ones.

Group labels are text; a missing cell is the group :data:`MISSING_GROUP`. A group with fewer
holdout rows than ``min_group_rows`` is still counted but reported in ``smallGroups``: too little
evidence is the operator's reason to refuse, never a silent pass.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from modelops.artifacts import TERMINATION_MESSAGE_LIMIT, Task
from modelops.training.errors import InvalidInputError

DIFFERENCE_METRICS = (
    "demographic_parity_difference",
    "equalized_odds_difference",
    "accuracy_difference",
    "recall_difference",
)
RATIO_METRICS = ("demographic_parity_ratio", "equalized_odds_ratio")
METRICS = (*DIFFERENCE_METRICS, *RATIO_METRICS)
#: Metrics that need a binary classifier (a positive class).
BINARY_METRICS = frozenset(METRICS) - {"accuracy_difference"}

DEFAULT_MIN_GROUP_ROWS = 30
#: Joins column names (``sex&race``) and group labels (``F&A``) of the intersection.
INTERSECTION = "&"
MISSING_GROUP = "(missing)"
#: Longest group or column name kept in the result JSON (the termination message is small).
MAX_NAME_CHARS = 40
#: Most small groups named per column in the result JSON; the rest are counted.
MAX_SMALL_GROUPS = 8

Labels = npt.NDArray[Any]


@dataclass(frozen=True)
class FairnessSettings:
    """What ``modelops train`` is told about fairness (each a flag and a ``MODELOPS_*``
    variable, see the CLI)."""

    columns: tuple[str, ...] = ()
    """Sensitive columns of the data: read for evaluation only."""
    metric: str | None = None
    """One of :data:`METRICS`; None: only the per-group table, no value in the result."""
    intersection: bool = False
    """Also evaluate the intersection of all the columns (with one column there is none)."""
    min_group_rows: int = DEFAULT_MIN_GROUP_ROWS
    allow_sensitive_features: bool = False
    """Whether a sensitive column may be a model feature (refused unless so)."""

    @property
    def active(self) -> bool:
        return bool(self.columns)

    def check(self, task: Task, *, binary: bool) -> None:
        """Raise :class:`InvalidInputError` for settings the model cannot be evaluated with."""
        if self.metric is not None and self.metric not in METRICS:
            raise InvalidInputError(
                f"unknown fairness metric {self.metric!r}; choose one of: {', '.join(METRICS)}"
            )
        if self.metric is not None and not self.columns:
            raise InvalidInputError(
                f"the fairness metric {self.metric} needs sensitive columns "
                "(--sensitive-columns / MODELOPS_SENSITIVE_COLUMNS)"
            )
        if len(set(self.columns)) != len(self.columns):
            raise InvalidInputError(f"sensitive columns named twice: {list(self.columns)}")
        if self.min_group_rows < 1:
            raise InvalidInputError("the fairness minimum group rows must be at least 1")
        if self.metric is not None and task != "classification":
            raise InvalidInputError(
                f"the fairness metric {self.metric} is for classifiers; the model is a regressor"
            )
        if self.metric in BINARY_METRICS and not binary:
            raise InvalidInputError(
                f"the fairness metric {self.metric} needs a binary classifier (two classes); "
                "use accuracy_difference for more classes"
            )

    def check_columns(self, header: Sequence[str], features: Sequence[str], target: str) -> None:
        """Sensitive columns must be in the data, not the target, and not model features unless
        explicitly allowed."""
        absent = [name for name in self.columns if name not in header]
        if absent:
            raise InvalidInputError(f"the data has no sensitive column {absent[0]!r}")
        if target in self.columns:
            raise InvalidInputError(f"the target {target!r} cannot be a sensitive column")
        used = [name for name in self.columns if name in features]
        if used and not self.allow_sensitive_features:
            raise InvalidInputError(
                f"the sensitive column(s) {used} are features of the model: retraining would "
                "learn from them; drop them from the model, or allow it explicitly "
                "(MODELOPS_ALLOW_SENSITIVE_FEATURES=true)"
            )

    def identity(self) -> dict[str, object]:
        """What decides the reported fairness (part of a run's identity when active)."""
        return {
            "sensitive": list(self.columns),
            "metric": self.metric,
            "intersection": self.intersection,
            "minGroupRows": self.min_group_rows,
        }


def split_names(text: str | None) -> tuple[str, ...]:
    """Comma-separated names, stripped, empty ones dropped."""
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


def group_labels(cells: Sequence[str | None]) -> Labels:
    """Group labels as text; missing cells are :data:`MISSING_GROUP`."""
    from modelops.training.data import is_missing

    return np.array(
        [MISSING_GROUP if cell is None or is_missing(str(cell)) else str(cell) for cell in cells],
        dtype=object,
    )


def sensitive_groups(columns: Mapping[str, Labels], *, intersection: bool) -> dict[str, Labels]:
    """The group label of every row per evaluated column: each column, then (when asked) the
    intersection of all of them as ``a&b``."""
    groups = {name: np.asarray(values, dtype=object) for name, values in columns.items()}
    if intersection and len(groups) >= 2:
        key = INTERSECTION.join(groups)
        joined = [INTERSECTION.join(map(str, row)) for row in zip(*groups.values(), strict=True)]
        groups[key] = np.array(joined, dtype=object)
    return groups


def positive_class(classes: Sequence[Any] | None) -> Any:
    """The positive class of a binary classifier (the greater label), else None."""
    if classes is None or len(classes) != 2:
        return None
    return classes[1]


def evaluate(
    settings: FairnessSettings,
    groups: Mapping[str, Labels],
    y_true: Labels,
    challenger: Labels,
    champion: Labels | None,
    *,
    task: Task,
    classes: Sequence[Any] | None,
) -> dict[str, Any]:
    """The fairness table (``fairness.json``): per column, the metric's value for each model,
    the worst pair of groups, the small groups, and every group's rows and rates."""
    positive = positive_class(classes)
    columns: dict[str, Any] = {}
    for column, labels in groups.items():
        names, counts = np.unique(labels.astype(str), return_counts=True)
        by_group: dict[str, Any] = {
            str(name): {"rows": int(count)} for name, count in zip(names, counts, strict=True)
        }
        for role, predicted in (("challenger", challenger), ("champion", champion)):
            if predicted is None:
                continue
            for name, rates in group_rates(y_true, predicted, labels, task, positive).items():
                by_group[name][role] = rates
        entry: dict[str, Any] = {"groups": by_group}
        if settings.metric is not None:
            value, pair = metric_value(settings.metric, y_true, challenger, labels, positive)
            entry["challenger"] = value
            entry["worstPair"] = pair
            entry["champion"] = (
                None
                if champion is None
                else metric_value(settings.metric, y_true, champion, labels, positive)[0]
            )
        entry["smallGroups"] = [
            str(name)
            for name, count in zip(names, counts, strict=True)
            if count < settings.min_group_rows
        ]
        columns[column] = entry
    return {
        "metric": settings.metric,
        "minGroupRows": settings.min_group_rows,
        "positiveClass": None if positive is None else _plain(positive),
        "holdoutRows": len(y_true),
        "columns": columns,
    }


def group_rates(
    y_true: Labels, y_pred: Labels, groups: Labels, task: Task, positive: Any
) -> dict[str, dict[str, float | None]]:
    """Per group: accuracy (and for a binary classifier selection rate, true and false positive
    rates), or for a regressor mean absolute error and mean prediction.

    The same numbers as fairlearn's ``MetricFrame(...).by_group`` of ``accuracy_score``,
    ``selection_rate``, ``true_positive_rate`` and ``false_positive_rate`` (a test holds them
    equal), counted with one pandas ``groupby`` so that many groups (an intersection) stay cheap.
    """
    import pandas as pd

    frame = pd.DataFrame({"group": groups.astype(str)})
    if task == "regression":
        values = np.asarray(y_pred, dtype=np.float64)
        frame["mae"] = np.abs(np.asarray(y_true, dtype=np.float64) - values)
        frame["meanPrediction"] = values
        sums = frame.groupby("group", sort=True).mean()
        return {
            str(name): {m: _finite(row[m]) for m in ("mae", "meanPrediction")}
            for name, row in sums.iterrows()
        }
    frame["correct"] = np.asarray(y_true) == np.asarray(y_pred)
    if positive is None:
        means = frame.groupby("group", sort=True)["correct"].mean()
        return {str(name): {"accuracy": _finite(value)} for name, value in means.items()}
    truth, predicted = _binary(y_true, positive), _binary(y_pred, positive)
    frame["selected"] = predicted
    frame["positive"] = truth
    frame["negative"] = 1 - truth
    frame["truePositive"] = truth * predicted
    frame["falsePositive"] = (1 - truth) * predicted
    sums = frame.groupby("group", sort=True).agg(
        rows=("correct", "size"),
        correct=("correct", "sum"),
        selected=("selected", "sum"),
        positive=("positive", "sum"),
        negative=("negative", "sum"),
        truePositive=("truePositive", "sum"),
        falsePositive=("falsePositive", "sum"),
    )
    return {
        str(name): {
            "accuracy": _ratio(row["correct"], row["rows"]),
            "selectionRate": _ratio(row["selected"], row["rows"]),
            "truePositiveRate": _ratio(row["truePositive"], row["positive"]),
            "falsePositiveRate": _ratio(row["falsePositive"], row["negative"]),
        }
        for name, row in sums.iterrows()
    }


def _ratio(part: Any, whole: Any) -> float | None:
    return float(part) / float(whole) if whole else None


def metric_value(
    metric: str, y_true: Labels, y_pred: Labels, groups: Labels, positive: Any
) -> tuple[float | None, list[str]]:
    """The metric for one model (None where it is undefined, e.g. a group without positives),
    and the groups with the lowest and the highest rate behind it."""
    from fairlearn import metrics as fm
    from sklearn.metrics import accuracy_score, recall_score

    sensitive = groups.astype(str)
    truth, predicted = y_true, y_pred
    if metric in BINARY_METRICS:
        truth, predicted = _binary(y_true, positive), _binary(y_pred, positive)
    if metric in ("accuracy_difference", "recall_difference"):
        score = accuracy_score if metric == "accuracy_difference" else _recall(recall_score)
        frame = _quiet(
            lambda: fm.MetricFrame(
                metrics=score, y_true=truth, y_pred=predicted, sensitive_features=sensitive
            )
        )
        return _finite(frame.difference()), _extremes(frame.by_group)
    function: Callable[..., float] = getattr(fm, metric)
    value = _quiet(lambda: function(truth, predicted, sensitive_features=sensitive))
    if metric.startswith("demographic_parity"):
        rates = _quiet(
            lambda: (
                fm.MetricFrame(
                    metrics=fm.selection_rate,
                    y_true=truth,
                    y_pred=predicted,
                    sensitive_features=sensitive,
                ).by_group
            )
        )
        return _finite(value), _extremes(rates)
    frame = _quiet(
        lambda: fm.MetricFrame(
            metrics={"tpr": fm.true_positive_rate, "fpr": fm.false_positive_rate},
            y_true=truth,
            y_pred=predicted,
            sensitive_features=sensitive,
        )
    )
    if metric.endswith("_difference"):
        gaps = frame.difference()
        worst = "tpr" if gaps["tpr"] >= gaps["fpr"] or math.isnan(gaps["fpr"]) else "fpr"
    else:
        ratios = frame.ratio()
        worst = "tpr" if ratios["tpr"] <= ratios["fpr"] or math.isnan(ratios["fpr"]) else "fpr"
    return _finite(value), _extremes(frame.by_group[worst])


def summary(
    table: Mapping[str, Any], limit: int = TERMINATION_MESSAGE_LIMIT // 2
) -> dict[str, Any]:
    """The result JSON's ``fairness``: per column the two values, the worst pair and the small
    groups, from a :func:`evaluate` table; names are cut (and long lists of small groups
    counted) until the document takes at most ``limit`` bytes, so the result fits a termination
    message."""
    for name_chars, small_groups in ((MAX_NAME_CHARS, MAX_SMALL_GROUPS), (16, 3), (8, 0)):
        columns: dict[str, Any] = {}
        for column, entry in table["columns"].items():
            key = _column_key(column, name_chars)
            while key in columns:  # two long names cut to the same text
                key += "~"
            columns[key] = {
                "challenger": entry.get("challenger"),
                "champion": entry.get("champion"),
                "groups": [_cut(g, name_chars) for g in entry.get("worstPair", [])],
                "smallGroups": _small(entry["smallGroups"], name_chars, small_groups),
            }
        document = {
            "metric": table["metric"],
            "minGroupRows": table["minGroupRows"],
            "columns": columns,
        }
        if len(json.dumps(document, separators=(",", ":")).encode()) <= limit:
            break
    return document


def _column_key(column: str, chars: int) -> str:
    """A column name cut per part (``a&b`` stays recognisable as an intersection)."""
    return INTERSECTION.join(_cut(part, chars) for part in column.split(INTERSECTION))


def _small(groups: Sequence[str], chars: int, most: int) -> list[str]:
    """At most ``most`` small groups, then ``+N more`` when some were left out."""
    named = [_cut(group, chars) for group in groups[:most]]
    if len(groups) > most:
        named.append(f"+{len(groups) - most} more")
    return named


def _cut(name: str, chars: int) -> str:
    return name if len(name) <= chars else name[: max(1, chars - 1)] + "…"


def _binary(labels: Labels, positive: Any) -> npt.NDArray[np.int64]:
    binary: npt.NDArray[np.int64] = (np.asarray(labels) == positive).astype(np.int64)
    return binary


def _recall(recall_score: Callable[..., float]) -> Callable[..., float]:
    def recall(y_true: Labels, y_pred: Labels) -> float:
        return recall_score(y_true, y_pred, pos_label=1, zero_division=np.nan)

    return recall


def _extremes(values: Any) -> list[str]:
    """The groups with the lowest and the highest value (NaN values left out)."""
    finite = values.dropna()
    if finite.empty:
        return []
    low, high = str(finite.idxmin()), str(finite.idxmax())
    if low == high:  # all equal: any two groups are the pair
        others = [str(name) for name in finite.index if str(name) != low]
        return [low, others[0]] if others else [low]
    return [low, high]


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _quiet(compute: Callable[[], Any]) -> Any:
    """fairlearn and scikit-learn warn about undefined rates; the value says so (None)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compute()
