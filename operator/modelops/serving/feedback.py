"""Ground truth posted to ``/feedback``: the truth tensor split from the features, checked, and
counted against the server's own predictions of the same rows.

A feedback request is a V2 inference request whose inputs are the features (any form ``infer``
takes) plus one tensor named as ``metadata.json``'s target. The server predicts the rows itself,
so no request id has to be remembered and any replica can take any feedback. Counted per server
process, like every other counter: a classifier's confusion matrix over its classes (rows actual,
columns predicted), a regressor's sums of ``|y - p|``, ``(y - p)^2``, ``y`` and ``y^2``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from modelops.serving.binning import ClassIndex
from modelops.serving.counts import Feedback
from modelops.serving.errors import InvalidInputError
from modelops.serving.protocol import InferRequest, InputTensor, tensor_array

#: Datatypes a regressor's true values may come in.
_NUMERIC = ("BOOL", "INT32", "INT64", "FP32", "FP64")


@dataclass(slots=True)
class FeedbackRequest:
    """A feedback request split in two: the features (an inference request of its own, which
    ``DataPlane.prepare_request`` validates as ``infer`` does) and the truth tensor."""

    features: InferRequest
    truth: InputTensor


def split_feedback(request: InferRequest, target: str) -> FeedbackRequest:
    """Take the tensor named ``target`` out of the request's inputs (400 unless exactly one)."""
    truths = [tensor for tensor in request.inputs if tensor.name == target]
    if not truths:
        raise InvalidInputError(
            f"feedback needs the true values in an input tensor named {target!r} (the model's "
            "target) beside the features"
        )
    if len(truths) > 1:
        raise InvalidInputError(f"input {target!r} is given twice")
    features = tuple(tensor for tensor in request.inputs if tensor.name != target)
    if not features:
        raise InvalidInputError(f"feedback needs the features beside the {target!r} tensor")
    # Outputs asked for are ignored: feedback answers with the rows it counted.
    return FeedbackRequest(InferRequest(request.id, features, (), {}), truths[0])


def _truth_array(tensor: InputTensor, rows: int) -> np.ndarray:
    """The truth tensor as a 1-D array of ``rows`` values ([rows] or [rows, 1])."""
    shape = tensor.shape
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
        raise InvalidInputError(
            f"input {tensor.name!r}: the true values take shape [rows] or [rows, 1], "
            f"got {list(shape)}"
        )
    if shape[0] != rows:
        raise InvalidInputError(
            f"input {tensor.name!r} has {shape[0]} rows, the features have {rows}"
        )
    return tensor_array(tensor).reshape(rows)


def truth_classes(tensor: InputTensor, rows: int, classes: ClassIndex) -> np.ndarray:
    """The class index of every true label; an unknown or missing label is a 400."""
    labels = _truth_array(tensor, rows)
    indices = classes.indices(labels)
    bad = np.flatnonzero(indices < 0)
    if bad.size:
        row = int(bad[0])
        value = labels[row].item() if isinstance(labels[row], np.generic) else labels[row]
        what = "missing" if indices[row] == ClassIndex.MISSING else f"{value!r}, an unknown class"
        raise InvalidInputError(
            f"input {tensor.name!r}: row {row} is {what}; the classes are "
            + ", ".join(classes.classes)
        )
    return indices


def truth_values(tensor: InputTensor, rows: int) -> np.ndarray:
    """The true values of a regressor as float64; text or a non-finite value is a 400."""
    if tensor.datatype not in _NUMERIC:
        raise InvalidInputError(
            f"input {tensor.name!r}: the true values of a regressor are numbers, send "
            f"FP64/FP32/INT64/INT32, not {tensor.datatype}"
        )
    values = _truth_array(tensor, rows).astype(np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise InvalidInputError(
            f"input {tensor.name!r}: row {row} is {float(values[row])}, not a finite number"
        )
    return values


class FeedbackCounter:
    """Cumulative feedback of one server: a confusion matrix, or a regressor's sums."""

    def __init__(self, classes: Sequence[str] | None) -> None:
        self.classes = None if classes is None else tuple(classes)
        self.rows = 0
        size = 0 if classes is None else len(classes)
        self.confusion = np.zeros((size, size), dtype=np.int64)
        self.abs_error = 0.0
        self.squared_error = 0.0
        self.target = 0.0
        self.target_squared = 0.0

    @property
    def classification(self) -> bool:
        return self.classes is not None

    def add_classes(self, actual: np.ndarray, predicted: np.ndarray) -> None:
        """Count rows of true and predicted class indices (both within ``classes``)."""
        size = self.confusion.shape[0]
        flat = np.bincount(actual * size + predicted, minlength=size * size)
        self.confusion += flat.reshape(size, size)
        self.rows += int(actual.shape[0])

    def add_values(self, truth: np.ndarray, predicted: np.ndarray) -> None:
        """Count rows of true and predicted values (float64; a non-finite prediction is a 400,
        so no sum ever turns NaN)."""
        finite = np.isfinite(predicted)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise InvalidInputError(f"the model predicts {predicted[row]} for row {row}")
        error = truth - predicted
        self.abs_error += math.fsum(np.abs(error).tolist())
        self.squared_error += math.fsum((error * error).tolist())
        self.target += math.fsum(truth.tolist())
        self.target_squared += math.fsum((truth * truth).tolist())
        self.rows += int(truth.shape[0])

    def snapshot(self) -> Feedback:
        """The counts so far, as the counts document carries them."""
        if self.classes is not None:
            return Feedback(rows=self.rows, classes=self.classes, confusion=self.confusion.copy())
        return Feedback(
            rows=self.rows,
            abs_error=self.abs_error,
            squared_error=self.squared_error,
            target=self.target,
            target_squared=self.target_squared,
        )
