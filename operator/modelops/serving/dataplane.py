"""The data plane: one served model, its predictions, and the mapping of errors to HTTP.

Transport-free: the ASGI app hands it request bodies and path parts and sends back what it
returns. Small batches are predicted right here (in the event-loop thread: a thread hop would cost
more than a 1-row prediction); the app moves large batches to a worker thread with
:meth:`DataPlane.predict_in_thread`. Predictions go through the compiled predictor when the model
has one (``compiled``), else through scikit-learn. A request with a missing value (NaN) always
goes to scikit-learn with its input checks on: the compiled predictor was verified on complete
rows only, and only the model itself knows whether it imputes a missing value or refuses it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import sklearn

from modelops import __version__
from modelops.artifacts import HOLDOUT_PARAMETER_PREFIX
from modelops.frames import feed_for
from modelops.serving.binning import ClassIndex
from modelops.serving.compiled import Function, Predictor, sklearn_predictor
from modelops.serving.errors import (
    EndpointNotFoundError,
    InvalidInputError,
    MethodNotAllowedError,
    ModelNotFoundError,
    RequestTooLargeError,
    ServingError,
)
from modelops.serving.feedback import split_feedback, truth_classes, truth_values
from modelops.serving.loader import LoadedModel
from modelops.serving.metrics import ServingMetrics
from modelops.serving.protocol import (
    FeatureLayout,
    InferRequest,
    RequestedOutput,
    binary_output,
    decode_features,
    encode_binary_response,
    encode_response,
    output_tensor,
    parse_infer_request,
    wants_binary,
)

logger = logging.getLogger(__name__)

#: The one place where errors become HTTP status codes. Anything else is a 500.
HTTP_STATUS: dict[type[Exception], int] = {
    InvalidInputError: 400,
    EndpointNotFoundError: 404,
    ModelNotFoundError: 404,
    MethodNotAllowedError: 405,
    RequestTooLargeError: 413,
}

PREDICT = "predict"
PREDICT_PROBA = "predict_proba"
#: Protocol extensions this server supports (server metadata, REST and gRPC).
EXTENSIONS = ("binary_tensor_data",)


def http_status(exc: BaseException) -> int:
    """HTTP status for an error raised while answering a request."""
    for cls in type(exc).__mro__:
        status = HTTP_STATUS.get(cls)
        if status is not None:
            return status
    return 500


@dataclass(slots=True)
class PreparedFeedback:
    """A validated feedback request: the feature matrix and the truth (class indices into the
    model's classes for a classifier, float64 values for a regressor)."""

    features: np.ndarray
    truth: np.ndarray


@dataclass(slots=True)
class Prepared:
    """A parsed, validated request ready for the estimator (not frozen: cheaper to create)."""

    request: InferRequest
    features: np.ndarray
    outputs: tuple[str, ...]


class DataPlane:
    """Answers the V2 endpoints for the one model this server was started with."""

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        name: str,
        version: str,
        max_rows: int,
        metrics: ServingMetrics,
        predictor: Predictor,
    ) -> None:
        self.loaded = loaded
        self.estimator = loaded.estimator
        self.profile = loaded.profile
        self.name = name
        self.version = version
        self.max_rows = max_rows
        self.metrics = metrics
        meta = loaded.metadata
        categorical = set(meta.categorical_features)
        self.layout = FeatureLayout(
            tuple(meta.features), tuple(f in categorical for f in meta.features)
        )
        self.predictor = predictor
        self.methods: dict[str, Function] = {PREDICT: self.predictor.predict}
        if self.predictor.predict_proba is not None:
            self.methods[PREDICT_PROBA] = self.predictor.predict_proba
        self.has_proba = PREDICT_PROBA in self.methods
        # A classifier's labels as text: the confusion matrix's axes and the truth's classes.
        feedback = metrics.feedback
        self.class_index = ClassIndex(feedback.classes if feedback and feedback.classes else ())
        own = sklearn_predictor(self.estimator, feed_for(meta.features, meta.feature_dtypes))
        self.checked_methods: dict[str, Function] = {PREDICT: own.predict}
        if own.predict_proba is not None:
            self.checked_methods[PREDICT_PROBA] = own.predict_proba
        self.server_metadata = orjson.dumps(
            {"name": "modelops", "version": __version__, "extensions": list(EXTENSIONS)}
        )
        self.model_metadata = orjson.dumps(self._model_metadata())
        self.model_ready = orjson.dumps({"name": name, "ready": True})
        # The reference profile the bins are counted against: the operator's drift evaluation
        # reads it from here, so it judges traffic against exactly the model being served.
        self.profile_json = self.profile.to_json().encode()

    # -- metadata ----------------------------------------------------------------------------

    def check_model(self, name: str, version: str | None) -> None:
        """Raise :class:`ModelNotFoundError` unless ``name`` (and ``version``) is served here."""
        if name != self.name:
            raise ModelNotFoundError(
                f"model {name!r} is not served here (this server serves {self.name!r})"
            )
        if version is not None and version != self.version:
            raise ModelNotFoundError(
                f"version {version!r} of model {name!r} is not served here "
                f"(this server serves {self.version!r})"
            )

    def _model_metadata(self) -> dict[str, Any]:
        meta = self.loaded.metadata
        inputs = [
            {"name": name, "datatype": "BYTES" if cat else "FP64", "shape": [-1]}
            for name, cat in zip(self.layout.names, self.layout.categorical, strict=True)
        ]
        classes = getattr(self.estimator, "classes_", None)
        if classes is not None:
            label_type = output_tensor(PREDICT, np.asarray(classes)[:1])["datatype"]
        else:
            label_type = "FP64"
        outputs: list[dict[str, Any]] = [{"name": PREDICT, "datatype": label_type, "shape": [-1]}]
        if self.has_proba and classes is not None:
            outputs.append({"name": PREDICT_PROBA, "datatype": "FP64", "shape": [-1, len(classes)]})
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": "sklearn",
            "inputs": inputs,
            "outputs": outputs,
            # Scalars only, as the protocol's parameters are; the holdout metrics let the
            # operator judge live performance against them without reading the model directory.
            "parameters": {
                "task": meta.task,
                "estimator": meta.estimator,
                **{HOLDOUT_PARAMETER_PREFIX + name: value for name, value in meta.metrics.items()},
            },
        }

    # -- inference ---------------------------------------------------------------------------

    def prepare(self, body: bytes) -> Prepared:
        """Parse and validate a request body (raises :class:`InvalidInputError`)."""
        request = parse_infer_request(body)
        features = decode_features(request, self.layout, self.max_rows)
        return Prepared(request, features, self._outputs(request.outputs))

    def prepare_request(self, request: InferRequest) -> Prepared:
        """:meth:`prepare` for a request parsed elsewhere: a binary-extension body
        (``parse_infer_request(body, header_length)``) or a gRPC message. Keep the two in step."""
        features = decode_features(request, self.layout, self.max_rows)
        return Prepared(request, features, self._outputs(request.outputs))

    def _outputs(self, requested: tuple[RequestedOutput, ...]) -> tuple[str, ...]:
        if not requested:
            return (PREDICT,)
        names: list[str] = []
        for output in requested:
            if output.name == PREDICT_PROBA and not self.has_proba:
                raise InvalidInputError(
                    f"output {PREDICT_PROBA!r} is not available: "
                    f"{type(self.estimator).__name__} gives no probabilities"
                )
            if output.name not in (PREDICT, PREDICT_PROBA):
                raise InvalidInputError(
                    f"unknown output {output.name!r}: ask for {PREDICT!r} or {PREDICT_PROBA!r}"
                )
            if output.name in names:
                raise InvalidInputError(f"output {output.name!r} is asked for twice")
            names.append(output.name)
        return tuple(names)

    def predict_arrays(self, features: np.ndarray, outputs: tuple[str, ...]) -> list[np.ndarray]:
        """Run the predictor for each output; a ``ValueError`` from it means the input did not
        suit the model (e.g. a category the encoder refuses), so it becomes a 400."""
        try:
            if has_missing(features):
                methods = self.checked_methods
                with sklearn.config_context(assume_finite=False):
                    return [np.asarray(methods[name](features)) for name in outputs]
            methods = self.methods
            return [np.asarray(methods[name](features)) for name in outputs]
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(f"the model refused the input: {exc}") from exc

    def predict_in_thread(self, prepared: Prepared) -> list[np.ndarray]:
        """:meth:`predict_arrays` for a worker thread (scikit-learn's config is per thread)."""
        return self.predict_rows_in_thread(prepared.features, prepared.outputs)

    def predict_rows_in_thread(
        self, features: np.ndarray, outputs: tuple[str, ...]
    ) -> list[np.ndarray]:
        """:meth:`predict_arrays` for a worker thread (scikit-learn's config is per thread)."""
        with sklearn.config_context(assume_finite=True):
            return self.predict_arrays(features, outputs)

    def count(
        self, features: np.ndarray, outputs: tuple[str, ...], arrays: list[np.ndarray]
    ) -> None:
        """Count served rows into the metrics: rows, every value into its profile bin, and the
        predictions (``arrays``, one per name in ``outputs``) into the output entry's bins."""
        metrics = self.metrics
        metrics.observe_rows(features)
        if metrics.predictions is None:
            return
        if outputs[0] == PREDICT:
            metrics.observe_predictions(arrays[0])
        elif PREDICT in outputs:
            metrics.observe_predictions(arrays[outputs.index(PREDICT)])
        else:  # only predict_proba was asked for
            metrics.observe_probabilities(arrays[0])

    # -- feedback ----------------------------------------------------------------------------

    def prepare_feedback(self, request: InferRequest) -> PreparedFeedback:
        """Validate a feedback request: its features as ``infer`` validates them, its truth
        tensor against the task (400s name what is wrong)."""
        counter = self.metrics.feedback
        if counter is None:
            raise InvalidInputError(
                f"model {self.name!r} takes no feedback: it is a classifier whose classes are "
                "unknown (metadata.json lists none)"
            )
        split = split_feedback(request, self.loaded.metadata.target)
        features = decode_features(split.features, self.layout, self.max_rows)
        rows = features.shape[0]
        if counter.classes is not None:
            truth = truth_classes(split.truth, rows, self.class_index)
        else:
            truth = truth_values(split.truth, rows)
        return PreparedFeedback(features, truth)

    def count_feedback(self, prepared: PreparedFeedback, predictions: np.ndarray) -> None:
        """Count feedback rows against the model's predictions of them (never as inference
        traffic: neither in the feature nor in the prediction bins)."""
        counter = self.metrics.feedback
        if counter is None:
            return
        predictions = np.asarray(predictions)
        if predictions.ndim > 1 and predictions.shape[1:] != (1,):
            raise InvalidInputError(
                f"the model predicts {predictions.shape[1:]} values per row; feedback takes "
                "models with one prediction per row"
            )
        if counter.classes is not None:
            predicted = self.class_index.indices(predictions.reshape(-1))
            if (predicted < 0).any():
                raise RuntimeError(
                    f"the model predicted a class outside its classes {list(counter.classes)}"
                )
            counter.add_classes(prepared.truth, predicted)
        else:
            values = np.asarray(predictions, dtype=np.float64).reshape(-1)
            counter.add_values(prepared.truth, values)

    def feedback(self, body: bytes, header_length: int | None = None) -> bytes:
        """Parse, predict and count a feedback request in the calling thread; the response."""
        prepared = self.prepare_feedback(parse_infer_request(body, header_length))
        (predictions,) = self.predict_arrays(prepared.features, (PREDICT,))
        self.count_feedback(prepared, predictions)
        return self.feedback_response(prepared)

    def feedback_response(self, prepared: PreparedFeedback) -> bytes:
        """The answer to a counted feedback request: how many rows it added."""
        return orjson.dumps(
            {
                "model_name": self.name,
                "model_version": self.version,
                "rows": int(prepared.features.shape[0]),
            }
        )

    def encode(self, prepared: Prepared, arrays: list[np.ndarray]) -> bytes:
        """The response body for a request and its predicted arrays (in ``prepared.outputs``)."""
        outputs = [
            output_tensor(name, values)
            for name, values in zip(prepared.outputs, arrays, strict=True)
        ]
        return encode_response(self.name, self.version, prepared.request.id, outputs)

    def encode_parts(
        self, prepared: Prepared, arrays: list[np.ndarray]
    ) -> tuple[bytes, int | None]:
        """The response body and, when some output goes as binary data (binary tensor
        extension), the length of its JSON header (``Inference-Header-Content-Length``)."""
        request = prepared.request
        binary = [wants_binary(request, name) for name in prepared.outputs]
        if not any(binary):
            return self.encode(prepared, arrays), None
        outputs: list[dict[str, Any]] = []
        raw: list[bytes] = []
        for name, values, as_binary in zip(prepared.outputs, arrays, binary, strict=True):
            if as_binary:
                doc, data = binary_output(name, values)
                outputs.append(doc)
                raw.append(data)
            else:
                outputs.append(output_tensor(name, values))
        return encode_binary_response(self.name, self.version, request.id, outputs, raw)

    def infer(self, body: bytes) -> bytes:
        """Parse, predict, count and answer in the calling thread, one request alone."""
        prepared = self.prepare(body)
        arrays = self.predict_arrays(prepared.features, prepared.outputs)
        self.count(prepared.features, prepared.outputs, arrays)
        return self.encode(prepared, arrays)


def log_server_error(exc: BaseException, path: str) -> None:
    """Log an unexpected error with its traceback; client errors are not logged one by one."""
    if isinstance(exc, ServingError):
        return
    logger.error("Request failed", exc_info=exc, extra={"path": path})


def has_missing(features: np.ndarray) -> bool:
    """Whether a decoded matrix holds a missing number (NaN; the protocol refused infinity)."""
    if features.dtype.kind == "f":
        return math.isnan(features.sum())  # 1 µs for one row; np.isnan takes 1.7
    return any(type(v) is float and v != v for v in features.ravel().tolist())
