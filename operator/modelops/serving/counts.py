"""The counts document: a server's cumulative bin counts as compact JSON, written and read here.

``GET /v2/models/<name>/counts`` answers the numbers of ``modelops_feature_bin_total`` and
``modelops_inference_rows_total`` without Prometheus' text format, which costs the operator ~17 µs
per series to parse (most of an evaluation's CPU). One JSON object::

    {"model": "iris", "version": "v1", "start": "5f0c...", "rows": 150,
     "features": [{"name": "sepal_length", "counts": [12, 40, 0]}, ...]}

``start`` names this server process (a random id drawn at start-up): counters begin at zero with
each one, so a new ``start`` on the same pod is a restart even when the counters grew back past
their old values. ``features`` follow the profile's order, each with one integer per bin of its
layout. Two keys are present only when they apply:

- ``"predictions": [int, ...]``: served predictions per bin of the profile's ``output`` entry (in
  its bin order), when the profile has one;
- ``"feedback"``: ground truth posted to ``/feedback``, for a classifier
  ``{"rows": n, "classes": ["a", "b"], "confusion": [[int, ...], ...]}`` (rows are the actual
  class, columns the predicted one, both in ``classes`` order) and for a regressor
  ``{"rows": n, "absError": x, "squaredError": x, "target": x, "targetSquared": x}`` (sums of
  ``|y - p|``, ``(y - p)^2``, ``y`` and ``y^2``: enough for MAE, RMSE and R^2).

Readers ignore unknown keys, so more may be added.

Pure: no I/O, so the operator imports the reader without the server.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson
from numpy.typing import NDArray

SUFFIX = "counts"
"""The last path segment, after ``/v2/models/<name>`` (and optionally ``/versions/<v>``)."""


class CountsError(ValueError):
    """A counts document that cannot be read; the message says what is wrong with it."""


@dataclass(frozen=True)
class Feedback:
    """Cumulative ground-truth counts of one server: a confusion matrix for a classifier
    (``confusion`` set, the regression sums 0), the error and target sums for a regressor
    (``confusion`` None, ``classes`` empty)."""

    rows: int
    """Rows of feedback counted (rows with a true label or value)."""
    classes: tuple[str, ...] = ()
    """Class labels (the profile's output categories), the order of ``confusion``'s axes."""
    confusion: NDArray[np.int64] | None = None
    """``[actual, predicted]`` counts, ``len(classes)`` square (classification only)."""
    abs_error: float = 0.0
    """Sum of ``|truth - prediction|`` (regression only)."""
    squared_error: float = 0.0
    """Sum of ``(truth - prediction)^2`` (regression only)."""
    target: float = 0.0
    """Sum of the true values (regression only)."""
    target_squared: float = 0.0
    """Sum of the squared true values (regression only)."""

    @property
    def task(self) -> Literal["classification", "regression"]:
        """``classification`` when this holds a confusion matrix, else ``regression``."""
        return "regression" if self.confusion is None else "classification"

    def to_dict(self) -> dict[str, Any]:
        """The ``feedback`` value of the counts document."""
        if self.confusion is not None:
            return {"rows": self.rows, "classes": list(self.classes), "confusion": self.confusion}
        return {
            "rows": self.rows,
            "absError": self.abs_error,
            "squaredError": self.squared_error,
            "target": self.target,
            "targetSquared": self.target_squared,
        }


@dataclass(frozen=True)
class Counts:
    """One server's counts: what it serves, since when, and the bin counts per feature."""

    model: str
    version: str
    start: str
    rows: int
    features: dict[str, NDArray[np.int64]]
    """Feature name -> cumulative counts, one per bin of the profile's layout."""
    predictions: NDArray[np.int64] | None = None
    """Served predictions per bin of the profile's output entry (None: the profile has none)."""
    feedback: Feedback | None = None
    """Ground truth received (None: this server counts no feedback, e.g. an older build)."""


def counts_path(model: str) -> str:
    """The path of ``model``'s counts document on its server."""
    return f"/v2/models/{model}/{SUFFIX}"


def encode_counts(
    *,
    model: str,
    version: str,
    start: str,
    rows: int,
    names: Sequence[str],
    n_bins: Sequence[int],
    counts: NDArray[np.int64],
    predictions: NDArray[np.int64] | None = None,
    feedback: Feedback | None = None,
) -> bytes:
    """The document of a ``(features, max_bins)`` matrix: row ``i`` cut to ``n_bins[i]`` bins;
    ``predictions`` and ``feedback`` are written when given."""
    features = [
        {"name": name, "counts": counts[row, :bins]}
        for row, (name, bins) in enumerate(zip(names, n_bins, strict=True))
    ]
    document: dict[str, Any] = {
        "model": model,
        "version": version,
        "start": start,
        "rows": rows,
        "features": features,
    }
    if predictions is not None:
        document["predictions"] = predictions
    if feedback is not None:
        document["feedback"] = feedback.to_dict()
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)


def decode_counts(raw: bytes, model: str) -> Counts:
    """Read a counts document of ``model``; CountsError says what is wrong with a bad one."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CountsError(f"not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise CountsError("not a JSON object")
    if document.get("model") != model:
        raise CountsError(f"counts of model {document.get('model')!r}, not {model!r}")
    version, start = _text(document, "version"), _text(document, "start")
    rows = document.get("rows")
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        raise CountsError(f"rows is {rows!r}, not a count")
    items = document.get("features")
    if not isinstance(items, list):
        raise CountsError("features is not a list")
    named: dict[str, Any] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise CountsError(f"features[{index}] has no name")
        name: str = item["name"]
        if name in named:
            raise CountsError(f"feature {name!r} appears twice")
        named[name] = item.get("counts")
    features = _feature_bins(named)
    predictions = None
    if "predictions" in document:
        predictions = _bins("predictions", document["predictions"])
    feedback = None
    if "feedback" in document:
        feedback = _feedback(document["feedback"])
    return Counts(
        model=model,
        version=version,
        start=start,
        rows=rows,
        features=features,
        predictions=predictions,
        feedback=feedback,
    )


_REGRESSION_KEYS = {
    "absError": "abs_error",
    "squaredError": "squared_error",
    "target": "target",
    "targetSquared": "target_squared",
}


def _feedback(value: Any) -> Feedback:
    """The ``feedback`` object: a classifier's confusion matrix or a regressor's sums."""
    if not isinstance(value, dict):
        raise CountsError("feedback is not a JSON object")
    rows = value.get("rows")
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        raise CountsError(f"feedback rows is {rows!r}, not a count")
    if "confusion" in value or "classes" in value:
        if any(key in value for key in _REGRESSION_KEYS):
            raise CountsError("feedback has both a confusion matrix and regression sums")
        return _classification_feedback(rows, value.get("classes"), value.get("confusion"))
    sums: dict[str, float] = {}
    for key, field_name in _REGRESSION_KEYS.items():
        number = value.get(key)
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise CountsError(f"feedback {key} is {number!r}, not a number")
        if not math.isfinite(number):
            raise CountsError(f"feedback {key} is not finite")
        if key != "target" and number < 0:
            raise CountsError(f"feedback {key} is negative")
        sums[field_name] = float(number)
    return Feedback(
        rows=rows,
        abs_error=sums["abs_error"],
        squared_error=sums["squared_error"],
        target=sums["target"],
        target_squared=sums["target_squared"],
    )


def _classification_feedback(rows: int, classes: Any, confusion: Any) -> Feedback:
    if (
        not isinstance(classes, list)
        or not classes
        or not all(isinstance(label, str) and label for label in classes)
    ):
        raise CountsError("feedback classes are not a non-empty list of non-empty strings")
    if len(set(classes)) != len(classes):
        raise CountsError("feedback classes repeat a label")
    if not isinstance(confusion, list) or len(confusion) != len(classes):
        raise CountsError(f"feedback confusion does not have {len(classes)} rows (one per class)")
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for index, row in enumerate(confusion):
        counts = _bins(f"feedback confusion row {index}", row)
        if counts.size != len(classes):
            raise CountsError(
                f"feedback confusion row {index} has {counts.size} counts, not {len(classes)}"
            )
        matrix[index] = counts
    if int(matrix.sum()) != rows:
        raise CountsError(f"feedback confusion adds up to {int(matrix.sum())}, rows is {rows}")
    return Feedback(rows=rows, classes=tuple(classes), confusion=matrix)


def _text(document: dict[str, Any], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise CountsError(f"{key} is {value!r}, not a non-empty string")
    return value


def _feature_bins(named: dict[str, Any]) -> dict[str, NDArray[np.int64]]:
    """Every feature's counts (by name) as int64. A document of plain non-negative integers, the
    usual one, is converted in one numpy call for all features: converting and checking each
    feature's short list on its own took about twice as long (a 50 x 20 document: ~200 µs to
    decode, ~100 µs so). Anything else is checked feature by feature (``_bins``), whose error
    names it."""
    together = _plain_counts(list(named.values()))
    if together is None:
        return {name: _bins(f"feature {name!r}", values) for name, values in named.items()}
    features: dict[str, NDArray[np.int64]] = {}
    start = 0
    for name, values in named.items():
        stop = start + len(values)
        features[name] = together[start:stop]
        start = stop
    return features


def _plain_counts(lists: list[Any]) -> NDArray[np.int64] | None:
    """All the lists' values in one int64 array, or None unless each is a list of non-negative
    integers below 2**63 (no bool, float, str or nested list)."""
    if not all(type(values) is list for values in lists):
        return None
    flat = list(itertools.chain.from_iterable(lists))
    if not set(map(type, flat)) <= {int}:
        return None
    try:
        counts = np.array(flat, dtype=np.int64)
    except OverflowError:
        return None
    return counts if counts.size == 0 or counts.min() >= 0 else None


def _bins(what: str, values: Any) -> NDArray[np.int64]:
    """Counts as int64, refused unless a list of non-negative integers (``what`` names them in
    the error: ``feature 'x'``, ``predictions``)."""
    if not isinstance(values, list):
        raise CountsError(f"counts of {what} are not a list")
    try:
        array = np.asarray(values)
    except (ValueError, OverflowError):
        raise CountsError(f"counts of {what} are not a list of integers") from None
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise CountsError(f"counts of {what} are not a list of integers")
    if array.dtype.kind == "u" and array.max() > np.iinfo(np.int64).max:
        raise CountsError(f"counts of {what} are too large")
    counts = array.astype(np.int64)
    if counts.min() < 0:
        raise CountsError(f"counts of {what} are negative")
    return counts
