"""The counts document: a server's cumulative bin counts as compact JSON, written and read here.

``GET /v2/models/<name>/counts`` answers the numbers of ``modelops_feature_bin_total`` and
``modelops_inference_rows_total`` without Prometheus' text format, which costs the operator ~17 µs
per series to parse (most of an evaluation's CPU). One JSON object::

    {"model": "iris", "version": "v1", "start": "5f0c...", "rows": 150,
     "features": [{"name": "sepal_length", "counts": [12, 40, 0]}, ...]}

``start`` names this server process (a random id drawn at start-up): counters begin at zero with
each one, so a new ``start`` on the same pod is a restart even when the counters grew back past
their old values. ``features`` follow the profile's order, each with one integer per bin of its
layout. Keys may be added later (prediction and feedback counts); readers ignore unknown ones.

Pure: no I/O, so the operator imports the reader without the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

SUFFIX = "counts"
"""The last path segment, after ``/v2/models/<name>`` (and optionally ``/versions/<v>``)."""


class CountsError(ValueError):
    """A counts document that cannot be read; the message says what is wrong with it."""


@dataclass(frozen=True)
class Counts:
    """One server's counts: what it serves, since when, and the bin counts per feature."""

    model: str
    version: str
    start: str
    rows: int
    features: dict[str, NDArray[np.int64]]
    """Feature name -> cumulative counts, one per bin of the profile's layout."""


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
) -> bytes:
    """The document of a ``(features, max_bins)`` matrix: row ``i`` cut to ``n_bins[i]`` bins."""
    features = [
        {"name": name, "counts": counts[row, :bins]}
        for row, (name, bins) in enumerate(zip(names, n_bins, strict=True))
    ]
    document = {
        "model": model,
        "version": version,
        "start": start,
        "rows": rows,
        "features": features,
    }
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
    features: dict[str, NDArray[np.int64]] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise CountsError(f"features[{index}] has no name")
        name: str = item["name"]
        if name in features:
            raise CountsError(f"feature {name!r} appears twice")
        features[name] = _bins(name, item.get("counts"))
    return Counts(model=model, version=version, start=start, rows=rows, features=features)


def _text(document: dict[str, Any], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise CountsError(f"{key} is {value!r}, not a non-empty string")
    return value


def _bins(name: str, values: Any) -> NDArray[np.int64]:
    """One feature's counts as int64, refused unless a list of non-negative integers."""
    if not isinstance(values, list):
        raise CountsError(f"counts of feature {name!r} are not a list")
    try:
        array = np.asarray(values)
    except (ValueError, OverflowError):
        raise CountsError(f"counts of feature {name!r} are not a list of integers") from None
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise CountsError(f"counts of feature {name!r} are not a list of integers")
    if array.dtype.kind == "u" and array.max() > np.iinfo(np.int64).max:
        raise CountsError(f"counts of feature {name!r} are too large")
    counts = array.astype(np.int64)
    if counts.min() < 0:
        raise CountsError(f"counts of feature {name!r} are negative")
    return counts
