"""How a model is fed: the feature matrix every part works with, or the DataFrame it was fitted on.

The server decodes requests, and the trainer reads CSV, into one rows x features matrix (float64,
or an object matrix with floats in numeric columns and text or ``None`` in categorical ones).
A model fitted on a pandas DataFrame wants more: a ``ColumnTransformer`` picks its columns by
name, HistGradientBoosting finds its native categories by dtype. So ``metadata.json`` records the
dtype of every column the model was fitted on (``feature_dtypes``), and :class:`FrameSchema`
rebuilds that DataFrame from the matrix. A model fitted on a matrix (no ``feature_dtypes``) is fed
the matrix unchanged.

pandas is imported only when a DataFrame is built, so parts that never need one stay light.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

#: dtype names ``feature_dtypes`` may hold: what a column is rebuilt as.
NUMERIC_DTYPES = frozenset(
    {"float64", "float32", "int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8"}
)
TEXT_DTYPES = frozenset({"object", "category"})
BOOL_DTYPE = "bool"
DTYPES = NUMERIC_DTYPES | TEXT_DTYPES | {BOOL_DTYPE}

Feed = Callable[[np.ndarray], Any]


def dtype_name(dtype: Any) -> str:
    """The ``feature_dtypes`` name of a pandas/numpy dtype (text of any kind is ``object``).

    Raises ``ValueError`` for dtypes a request cannot carry (dates, periods, intervals...).
    """
    name = str(dtype)
    if name in DTYPES:
        return name
    if name in ("str", "string", "string[python]", "string[pyarrow]"):
        return "object"
    if name in ("boolean",):
        return BOOL_DTYPE
    lowered = name.lower()
    if lowered in NUMERIC_DTYPES:  # pandas' nullable Int64, Float64...
        return lowered
    raise ValueError(
        f"dtype {name} is not supported: use numbers, booleans, text or pandas categories"
    )


def is_text_dtype(name: str) -> bool:
    """Whether a ``feature_dtypes`` name is a text column (a categorical feature by default)."""
    return name in TEXT_DTYPES


@dataclass(frozen=True)
class FrameSchema:
    """The columns (in order) and dtypes a model was fitted on."""

    features: tuple[str, ...]
    dtypes: tuple[str, ...]

    @classmethod
    def of(cls, features: Sequence[str], dtypes: Mapping[str, str]) -> FrameSchema:
        missing = [name for name in features if name not in dtypes]
        if missing:
            raise ValueError(f"feature_dtypes has no dtype for {missing}")
        unknown = sorted({dtypes[name] for name in features} - DTYPES)
        if unknown:
            raise ValueError(f"feature_dtypes holds unsupported dtypes {unknown}")
        return cls(tuple(features), tuple(dtypes[name] for name in features))

    def frame(self, matrix: np.ndarray) -> pd.DataFrame:
        """The DataFrame the model was fitted on, from a rows x features matrix.

        Raises ``ValueError`` (a client mistake: the server answers 400) when a value cannot be
        what its column is, e.g. ``2.5`` for an integer column.
        """
        import pandas as pd

        if matrix.ndim != 2 or matrix.shape[1] != len(self.features):
            raise ValueError(
                f"X has {matrix.shape[-1]} features, but the model is expecting "
                f"{len(self.features)} features"
            )
        columns = {
            name: _column(name, matrix[:, j], dtype)
            for j, (name, dtype) in enumerate(zip(self.features, self.dtypes, strict=True))
        }
        return pd.DataFrame(columns, copy=False)


def to_matrix(frame: pd.DataFrame, features: Sequence[str], categorical: Sequence[str]) -> Any:
    """The matrix the server would decode for the rows of ``frame``: float64 when every feature
    is numeric, else an object matrix with floats in numeric columns and text (``None`` when
    missing) in ``categorical`` ones. Raises ``ValueError`` naming a column that is neither."""
    import pandas as pd

    text = set(categorical)
    columns: list[Any] = []
    for name in features:
        column = frame[name]
        if name in text:
            columns.append(column.astype(object).map(_text_or_none).to_numpy(dtype=object))
            continue
        if isinstance(column.dtype, pd.CategoricalDtype) or not (
            pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
        ):
            raise ValueError(
                f"column {name!r} ({column.dtype}) is not numeric: mark it categorical"
            )
        columns.append(column.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan))
    if not text:
        return np.column_stack(columns) if columns else np.empty((len(frame), 0))
    matrix = np.empty((len(frame), len(columns)), dtype=object)
    for j, values in enumerate(columns):
        matrix[:, j] = values if values.dtype == object else values.tolist()
    return matrix


def feed_for(features: Sequence[str], dtypes: Mapping[str, str]) -> Feed | None:
    """The function turning the matrix into the model's input; ``None`` when it is the matrix."""
    if not dtypes:
        return None
    return FrameSchema.of(features, dtypes).frame


class FedModel:
    """An estimator called with the feature matrix, fed the way it was fitted.

    It has what scoring and the server use of an estimator: ``predict``, ``predict_proba``
    (only when the estimator has it) and ``classes_``.
    """

    def __init__(self, estimator: Any, feed: Feed | None) -> None:
        self.estimator = estimator
        self.feed = feed
        proba = getattr(estimator, "predict_proba", None)
        if callable(proba):
            self.predict_proba = self._proba

    @property
    def classes_(self) -> Any:
        return getattr(self.estimator, "classes_", None)

    def predict(self, matrix: np.ndarray) -> Any:
        return self.estimator.predict(self._input(matrix))

    def _proba(self, matrix: np.ndarray) -> Any:
        return self.estimator.predict_proba(self._input(matrix))

    def _input(self, matrix: np.ndarray) -> Any:
        return matrix if self.feed is None else self.feed(matrix)


def _column(name: str, values: np.ndarray, dtype: str) -> Any:
    import pandas as pd

    if dtype in TEXT_DTYPES:
        text = pd.Series(values, dtype=object).map(_text_or_none)
        return text.astype("category") if dtype == "category" else text
    numbers = _floats(name, values)
    if dtype == BOOL_DTYPE:
        if np.isnan(numbers).any() or not np.isin(numbers, (0.0, 1.0)).all():
            raise ValueError(f"feature {name!r} takes booleans (true/false or 1/0)")
        return numbers.astype(bool)
    if dtype.startswith(("int", "uint")):
        if np.isnan(numbers).any():
            return numbers  # a missing value: the model's imputer (if any) sees NaN as in fit
        if not np.array_equal(numbers, np.round(numbers)):
            raise ValueError(f"feature {name!r} takes integers")
        return numbers.astype(dtype)
    return numbers.astype(dtype, copy=False)


def _floats(name: str, values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return values.astype(np.float64, copy=False)
    try:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"feature {name!r} takes numbers") from None


def _text_or_none(value: object) -> object:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value if isinstance(value, str) else str(value)
