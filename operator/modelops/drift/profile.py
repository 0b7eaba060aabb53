"""Reference profiles: how the training data fell into bins, and the JSON form of that.

A profile is what the model server counts live traffic against and what every drift statistic
compares with. Bin layout (the Prometheus ``bin`` label is the bin index):

- numeric feature with inner edges ``e_0 < ... < e_{k-1}``: bin 0 is ``x < e_0``, bin ``i`` is
  ``e_{i-1} <= x < e_i``, bin ``k`` is ``x >= e_{k-1}`` (both outer bins open-ended, so no value is
  ever out of range), then bin ``k + 1`` for missing and non-finite values (NaN, +-inf, None);
- categorical feature: one bin per category kept from the training data (profile order), then
  ``unseen`` (any other category), then ``missing`` (None, NaN, empty string).

The optional ``output`` entry profiles the model's own predictions on the reference data in the
same shape as a feature entry (named as the target): a classifier's classes as categories (in
``metadata.json`` order, each with its share of the predictions), a regressor's predictions in
quantile bins. The server counts served predictions into it: prediction drift.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from modelops.drift.binning import Binner, category_key, numeric_column

PROFILE_VERSION = 1
"""Version of the ``profile.json`` document; bumped on any incompatible change."""

Kind = Literal["numeric", "categorical"]
KINDS: tuple[Kind, ...] = ("numeric", "categorical")

UNSEEN_LABEL = "unseen"
MISSING_LABEL = "missing"

_PROPORTION_TOLERANCE = 1e-6


class ProfileError(ValueError):
    """A profile cannot be built from the given data, or a profile document is invalid."""


@dataclass(frozen=True)
class FeatureProfile:
    """The reference distribution of one feature over its bins.

    ``proportions`` has one entry per bin (see the module docstring for the layout). Numeric
    features also carry ``centers`` (the mean training value inside each finite bin: the bin
    positions of the Wasserstein distance) and the training ``mean`` and ``std``.
    """

    name: str
    kind: Kind
    proportions: tuple[float, ...]
    edges: tuple[float, ...] = ()
    centers: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    mean: float = 0.0
    std: float = 0.0

    @property
    def n_bins(self) -> int:
        """Number of bins, including the missing bin (and ``unseen`` for categories)."""
        return len(self.proportions)

    @property
    def missing_bin(self) -> int:
        """Index of the bin for missing and non-finite values (always the last one)."""
        return self.n_bins - 1

    @property
    def bin_labels(self) -> tuple[str, ...]:
        """Human-readable name of every bin, in bin order, each one different (the ``bin`` label
        of ``modelops_prediction_bin_total``): edges get as many digits as it takes to tell them
        apart, and a category that is itself called ``unseen`` or ``missing`` pushes the special
        bins' labels to ``(unseen)`` / ``(missing)``."""
        if self.kind == "categorical":
            special: list[str] = []
            for label in (UNSEEN_LABEL, MISSING_LABEL):
                while label in self.categories or label in special:
                    label = f"({label})"
                special.append(label)
            return (*self.categories, *special)
        if not self.edges:
            return ("all", MISSING_LABEL)
        for digits in (6, 9, 12, 17):
            texts = [f"{edge:.{digits}g}" for edge in self.edges]
            if len(set(texts)) == len(texts):
                break
        inner = tuple(f"[{low}, {high})" for low, high in pairwise(texts))
        return (f"< {texts[0]}", *inner, f">= {texts[-1]}", MISSING_LABEL)

    def to_dict(self) -> dict[str, Any]:
        """The feature's entry in ``profile.json``."""
        doc: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "numeric":
            doc["edges"] = list(self.edges)
            doc["centers"] = list(self.centers)
            doc["mean"] = self.mean
            doc["std"] = self.std
        else:
            doc["categories"] = list(self.categories)
        doc["proportions"] = list(self.proportions)
        return doc


@dataclass(frozen=True)
class Profile:
    """Reference profile of a model's training data: one :class:`FeatureProfile` per feature,
    and optionally the profile of the model's predictions on that data (``output``)."""

    features: tuple[FeatureProfile, ...]
    rows: int
    output: FeatureProfile | None = None
    """The predictions' reference distribution (None for profiles written before it existed)."""
    _binner: Binner = field(init=False, repr=False, compare=False)
    _output_binner: Binner | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_profile(self.features, self.rows)
        object.__setattr__(self, "_binner", Binner(self.features))
        output_binner = None
        if self.output is not None:
            _check_feature(self.output, "output")
            output_binner = Binner((self.output,))
        object.__setattr__(self, "_output_binner", output_binner)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature names in profile (column) order."""
        return tuple(feature.name for feature in self.features)

    @property
    def max_bins(self) -> int:
        """Width of the count matrices: the largest number of bins of any feature."""
        return max(feature.n_bins for feature in self.features)

    def feature(self, name: str) -> FeatureProfile:
        """The profile of the named feature (KeyError if there is none)."""
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)

    def reference_proportions(self) -> NDArray[np.float64]:
        """Reference proportions as a ``(n_features, max_bins)`` matrix, padded with zeros."""
        matrix = np.zeros((len(self.features), self.max_bins))
        for row, feature in enumerate(self.features):
            matrix[row, : feature.n_bins] = feature.proportions
        return matrix

    def bin_counts(self, X: Any) -> NDArray[np.int64]:  # noqa: N803 (rows x features)
        """Count the rows of ``X`` (rows x features, profile order) into the profile's bins.

        Returns an int64 matrix of shape ``(n_features, max_bins)``; bins beyond a feature's
        ``n_bins`` stay 0. A 1-D ``X`` is one row. Raises ValueError when ``X`` has the wrong
        number of columns or text in a numeric column.
        """
        return self._binner.bin_counts(X)

    def output_bin_counts(self, predictions: Any) -> NDArray[np.int64]:
        """Count predictions (one per row) into the output entry's bins: an int64 vector of
        ``output.n_bins``. A class outside the output's categories counts as ``unseen``.
        Raises ValueError when the profile has no output entry or ``predictions`` is not 1-D."""
        if self._output_binner is None:
            raise ValueError("the profile has no output entry")
        values = np.asarray(predictions)
        if values.ndim != 1:
            raise ValueError(f"predictions must be 1-D (one per row), got shape {values.shape}")
        counts: NDArray[np.int64] = self._output_binner.bin_counts(values.reshape(-1, 1))[0]
        return counts

    def to_dict(self) -> dict[str, Any]:
        """The ``profile.json`` document as plain data (``output`` only when there is one)."""
        doc: dict[str, Any] = {
            "version": PROFILE_VERSION,
            "rows": self.rows,
            "features": [feature.to_dict() for feature in self.features],
        }
        if self.output is not None:
            doc["output"] = self.output.to_dict()
        return doc

    def to_json(self) -> str:
        """Stable ``profile.json`` text (key order fixed, floats written exactly)."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, doc: Any) -> Profile:
        """Validate a ``profile.json`` document; ProfileError says what is wrong."""
        return _profile_from_dict(doc)

    @classmethod
    def from_json(cls, text: str | bytes) -> Profile:
        """Parse and validate ``profile.json`` text; ProfileError says what is wrong."""
        try:
            doc = json.loads(text)
        except (ValueError, UnicodeDecodeError) as error:
            raise ProfileError(f"profile is not valid JSON: {error}") from None
        return _profile_from_dict(doc)


def build_profile(
    X: Any,  # noqa: N803 (rows x features, the scikit-learn convention)
    feature_names: Sequence[str],
    *,
    categorical: Collection[str] = (),
    bins: int = 10,
    max_categories: int = 100,
) -> Profile:
    """Build the reference profile of training data ``X`` (rows x features).

    Numeric features get ``bins`` quantile bins (edges deduplicated, so a constant feature gives a
    degenerate but valid profile: below, equal to, above the constant). Categorical features keep
    their ``max_categories`` most frequent categories; rarer ones count as ``unseen``, so that bin
    also has a reference proportion. Non-finite and missing values go to the missing bin.
    """
    names = tuple(feature_names)
    if bins < 2 or bins > 1000:
        raise ProfileError(f"bins must be between 2 and 1000, got {bins}")
    if max_categories < 1:
        raise ProfileError(f"max_categories must be at least 1, got {max_categories}")
    unknown = sorted(set(categorical) - set(names))
    if unknown:
        raise ProfileError(f"categorical features not among the feature names: {unknown}")
    data = np.asarray(X)
    if data.ndim != 2:
        raise ProfileError(f"training data must be 2-D (rows x features), got {data.ndim}-D")
    if data.shape[1] != len(names):
        raise ProfileError(
            f"training data has {data.shape[1]} columns but {len(names)} feature names were given"
        )
    if data.shape[0] == 0:
        raise ProfileError("training data has no rows")
    categorical_set = set(categorical)
    features = tuple(
        _categorical_feature(name, data[:, column], max_categories)
        if name in categorical_set
        else _numeric_feature(name, data[:, column], bins)
        for column, name in enumerate(names)
    )
    return Profile(features=features, rows=int(data.shape[0]))


def build_output_profile(
    predictions: Any,
    name: str,
    *,
    classes: Sequence[Any] | None = None,
    bins: int = 10,
) -> FeatureProfile:
    """The ``output`` entry of a profile from a model's predictions on its reference data.

    With ``classes`` (a classifier's labels, in ``metadata.json`` order) the entry is categorical:
    one category per class as text (so ``3`` and ``"3"`` are one class, as for features), each
    with its share of the predictions; a prediction outside the classes counts as ``unseen``.
    Without, the predictions are numbers and get ``bins`` quantile bins like a numeric feature.
    """
    if not name:
        raise ProfileError("the output entry needs a name (the target)")
    values = np.asarray(predictions)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ProfileError(f"predictions must be 1-D (one per row), got shape {values.shape}")
    if values.size == 0:
        raise ProfileError("there are no predictions to profile")
    if classes is None:
        if bins < 2 or bins > 1000:
            raise ProfileError(f"bins must be between 2 and 1000, got {bins}")
        return _numeric_feature(name, values, bins)
    categories = []
    for label in classes:
        key = category_key(label)
        if key is None:
            raise ProfileError(f"class {label!r} has no text form (missing or not finite)")
        categories.append(key)
    if not categories:
        raise ProfileError("a classifier's output entry needs at least one class")
    if len(set(categories)) != len(categories):
        raise ProfileError(f"classes {list(classes)} repeat a label")
    layout = FeatureProfile(
        name=name,
        kind="categorical",
        proportions=(1.0,) + (0.0,) * (len(categories) + 1),
        categories=tuple(categories),
    )
    counts = Binner((layout,)).bin_counts(values.reshape(-1, 1))[0]
    return FeatureProfile(
        name=name,
        kind="categorical",
        proportions=_floats(counts / values.size),
        categories=tuple(categories),
    )


def _numeric_feature(name: str, column: NDArray[Any], bins: int) -> FeatureProfile:
    try:
        values = numeric_column(column)
    except ValueError as error:
        raise ProfileError(f"feature {name!r}: {error}") from None
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise ProfileError(f"feature {name!r} has no finite values in the training data")
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(np.mean(finite))
        std = float(np.std(finite))
    if not (math.isfinite(mean) and math.isfinite(std)):
        raise ProfileError(f"feature {name!r} has values too large to summarise")
    edges = _quantile_edges(finite, bins)
    bin_of_value = np.searchsorted(edges, finite, side="right")
    n_finite_bins = edges.size + 1
    counts = np.bincount(bin_of_value, minlength=n_finite_bins)
    sums = np.asarray(
        np.bincount(bin_of_value, weights=finite, minlength=n_finite_bins), dtype=np.float64
    )
    centers = _bin_centers(edges, counts, sums)
    proportions = np.append(counts, values.size - finite.size) / values.size
    return FeatureProfile(
        name=name,
        kind="numeric",
        proportions=_floats(proportions),
        edges=_floats(edges),
        centers=_floats(centers),
        mean=mean,
        std=std,
    )


def _quantile_edges(finite: NDArray[np.float64], bins: int) -> NDArray[np.float64]:
    """Deduplicated quantile edges, moved off the observed values where values are tied.

    A quantile that lands on a tied value (a discrete or constant feature) becomes the midpoint
    between that value and the next smaller observed one, so each observed value sits inside a
    bin rather than on its edge and a shift of less than the value spacing still changes bins.
    When the top quantile is the maximum itself, one more edge above it keeps larger values apart
    (for a constant feature: bins below, equal to and above the constant).
    """
    ordered = np.sort(finite)
    quantiles = np.unique(np.quantile(ordered, np.arange(1, bins) / bins))
    # ordered[position - 1] is the largest value below each quantile: its smaller neighbour.
    position = np.searchsorted(ordered, quantiles)
    on_value = ordered[np.minimum(position, ordered.size - 1)] == quantiles
    below = ordered[np.maximum(position - 1, 0)]
    edges = np.unique(np.where(on_value & (position > 0), (below + quantiles) / 2, quantiles))
    top = ordered[-1]
    if quantiles[-1] >= top:
        top_start = int(np.searchsorted(ordered, top))
        above = top + (top - ordered[top_start - 1]) / 2 if top_start > 0 else top
        if not above > top or not np.isfinite(above):
            above = np.nextafter(top, np.inf)
        edges = np.append(edges, above)
    result: NDArray[np.float64] = edges
    return result


def _bin_centers(
    edges: NDArray[np.float64], counts: NDArray[np.int64], sums: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Mean training value per finite bin; an empty bin sits at its edge (outer) or midpoint."""
    with np.errstate(invalid="ignore", divide="ignore"):
        centers = sums / counts
    fallback = np.empty(edges.size + 1)
    fallback[0] = edges[0]
    fallback[-1] = edges[-1]
    fallback[1:-1] = (edges[:-1] + edges[1:]) / 2
    centers = np.where(counts > 0, centers, fallback)
    # Rounding can push a bin mean past its edge; keep positions ordered like the bins.
    clipped: NDArray[np.float64] = np.maximum.accumulate(centers)
    return clipped


def _categorical_feature(name: str, column: NDArray[Any], max_categories: int) -> FeatureProfile:
    keys = [category_key(value) for value in column.tolist()]
    tally = Counter(key for key in keys if key is not None)
    kept_by_frequency = sorted(tally.items(), key=lambda item: (-item[1], item[0]))
    categories = tuple(sorted(key for key, _ in kept_by_frequency[:max_categories]))
    rows = len(keys)
    missing = rows - sum(tally.values())
    kept_total = sum(tally[key] for key in categories)
    counts = [tally[key] for key in categories]
    counts += [rows - missing - kept_total, missing]
    proportions = np.asarray(counts, dtype=np.float64) / rows
    return FeatureProfile(
        name=name,
        kind="categorical",
        proportions=_floats(proportions),
        categories=categories,
    )


def _floats(values: NDArray[Any]) -> tuple[float, ...]:
    return tuple(float(value) for value in values)


# ---------------------------------------------------------------- validation of documents


_TOP_KEYS = {"version", "rows", "features"}
_OPTIONAL_TOP_KEYS = {"output"}
_NUMERIC_KEYS = {"name", "kind", "edges", "centers", "mean", "std", "proportions"}
_CATEGORICAL_KEYS = {"name", "kind", "categories", "proportions"}


def _profile_from_dict(doc: Any) -> Profile:
    if not isinstance(doc, Mapping):
        raise ProfileError("profile must be a JSON object")
    _exact_keys(doc, _TOP_KEYS, "profile", optional=_OPTIONAL_TOP_KEYS)
    if doc["version"] != PROFILE_VERSION or isinstance(doc["version"], bool):
        raise ProfileError(
            f"unsupported profile version {doc['version']!r} (this build reads {PROFILE_VERSION})"
        )
    features_doc = doc["features"]
    if not isinstance(features_doc, list):
        raise ProfileError("profile 'features' must be a list")
    features = tuple(
        _feature_from_dict(entry, position) for position, entry in enumerate(features_doc)
    )
    rows = doc["rows"]
    if not isinstance(rows, int) or isinstance(rows, bool):
        raise ProfileError("profile 'rows' must be an integer")
    output = None
    if "output" in doc:
        output = _feature_from_dict(doc["output"], where="output")
    return Profile(features=features, rows=rows, output=output)


def _feature_from_dict(
    entry: Any, position: int = 0, *, where: str | None = None
) -> FeatureProfile:
    """A feature entry (or the output entry, which has the same shape: ``where="output"``)."""
    if where is None:
        where = f"feature #{position}"
    if not isinstance(entry, Mapping):
        raise ProfileError(f"{where} must be a JSON object")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise ProfileError(f"{where} needs a non-empty string 'name'")
    where = "output" if where == "output" else f"feature {name!r}"
    kind = entry.get("kind")
    if kind == "numeric":
        _exact_keys(entry, _NUMERIC_KEYS, where)
        return FeatureProfile(
            name=name,
            kind="numeric",
            proportions=_float_list(entry["proportions"], f"{where} 'proportions'"),
            edges=_float_list(entry["edges"], f"{where} 'edges'"),
            centers=_float_list(entry["centers"], f"{where} 'centers'"),
            mean=_float(entry["mean"], f"{where} 'mean'"),
            std=_float(entry["std"], f"{where} 'std'"),
        )
    if kind == "categorical":
        _exact_keys(entry, _CATEGORICAL_KEYS, where)
        categories = entry["categories"]
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            raise ProfileError(f"{where} 'categories' must be a list of strings")
        return FeatureProfile(
            name=name,
            kind="categorical",
            proportions=_float_list(entry["proportions"], f"{where} 'proportions'"),
            categories=tuple(categories),
        )
    raise ProfileError(f"{where} has kind {kind!r}; expected one of {list(KINDS)}")


def _exact_keys(
    doc: Mapping[str, Any], expected: set[str], where: str, *, optional: Collection[str] = ()
) -> None:
    missing = sorted(expected - set(doc))
    extra = sorted(set(doc) - expected - set(optional))
    if missing:
        raise ProfileError(f"{where} is missing {missing}")
    if extra:
        raise ProfileError(f"{where} has unknown keys {extra}")


def _float(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileError(f"{where} must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise ProfileError(f"{where} must be finite")
    return number


def _float_list(value: Any, where: str) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise ProfileError(f"{where} must be a list of numbers")
    return tuple(_float(item, where) for item in value)


def _check_profile(features: tuple[FeatureProfile, ...], rows: int) -> None:
    """Invariants every profile holds, however it was made."""
    if rows < 1:
        raise ProfileError(f"profile 'rows' must be at least 1, got {rows}")
    if not features:
        raise ProfileError("profile has no features")
    names = [feature.name for feature in features]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ProfileError(f"duplicate feature names: {duplicates}")
    for feature in features:
        _check_feature(feature)


def _check_feature(feature: FeatureProfile, where: str | None = None) -> None:
    if not feature.name:
        raise ProfileError(f"{where or 'a feature'} needs a non-empty name")
    where = where or f"feature {feature.name!r}"
    if feature.kind not in KINDS:
        raise ProfileError(f"{where} has kind {feature.kind!r}; expected one of {list(KINDS)}")
    proportions = np.asarray(feature.proportions, dtype=np.float64)
    if feature.kind == "numeric":
        edges = np.asarray(feature.edges, dtype=np.float64)
        if edges.size == 0:
            raise ProfileError(f"{where} needs at least one bin edge")
        if not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
            raise ProfileError(f"{where} 'edges' must be finite and strictly increasing")
        expected_bins = edges.size + 2
        centers = np.asarray(feature.centers, dtype=np.float64)
        if centers.size != edges.size + 1:
            raise ProfileError(f"{where} needs {edges.size + 1} 'centers', got {centers.size}")
        if not np.all(np.isfinite(centers)) or np.any(np.diff(centers) < 0):
            raise ProfileError(f"{where} 'centers' must be finite and non-decreasing")
        if not (math.isfinite(feature.mean) and math.isfinite(feature.std)) or feature.std < 0:
            raise ProfileError(f"{where} needs a finite 'mean' and a non-negative 'std'")
        if proportions.size == expected_bins and proportions[:-1].sum() <= 0:
            raise ProfileError(f"{where} has no reference mass on finite values")
    else:
        if len(set(feature.categories)) != len(feature.categories):
            raise ProfileError(f"{where} has duplicate categories")
        expected_bins = len(feature.categories) + 2
    if proportions.size != expected_bins:
        raise ProfileError(
            f"{where} needs {expected_bins} 'proportions' (one per bin), got {proportions.size}"
        )
    if not np.all(np.isfinite(proportions)) or np.any(proportions < 0):
        raise ProfileError(f"{where} 'proportions' must be finite and non-negative")
    if abs(float(proportions.sum()) - 1.0) > _PROPORTION_TOLERANCE:
        raise ProfileError(f"{where} 'proportions' must sum to 1, got {proportions.sum():.9g}")
