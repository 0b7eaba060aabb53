"""File formats shared by the trainer, the model server and the operator.

A model directory holds three files (names fixed by DESIGN.md):

- ``model.skops``: the fitted scikit-learn estimator, saved with skops (never a pickle by default);
- ``profile.json``: the reference profile of the training data (see ``modelops.drift.Profile``);
- ``metadata.json``: :class:`ModelMetadata`.

The trainer reports its outcome as one :class:`TrainingResult` JSON object, at most 4 KiB, in the
container's termination message; the operator reads it back from the Pod status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MODEL_FILE = "model.skops"
UNSAFE_MODEL_FILE = "model.joblib"
PROFILE_FILE = "profile.json"
METADATA_FILE = "metadata.json"
MODEL_DIR_FILES = (MODEL_FILE, PROFILE_FILE, METADATA_FILE)
#: The model card (governed promotion): optional in a model directory, never needed to serve.
CARD_FILE = "card.json"
CARD_MARKDOWN_FILE = "card.md"
#: The fairness table by group of the sensitive columns, when any were named.
FAIRNESS_FILE = "fairness.json"

#: Kubernetes keeps at most 4096 bytes of a termination message.
TERMINATION_MESSAGE_LIMIT = 4096
HOLDOUT_PARAMETER_PREFIX = "holdout_"
"""The model server's V2 model metadata carries each holdout metric of metadata.json as the
scalar parameter ``holdout_<metric>``: the operator's performance baseline, read from the pods
because it cannot read a model directory on a volume or in object storage."""

Task = Literal["classification", "regression"]


class ModelMetadata(BaseModel):
    """``metadata.json``: what a model is, how it was trained and how well it scored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: str = Field(min_length=1, max_length=63)
    """Version label of this model, e.g. ``v3`` or ``20261126-1``."""
    created: datetime
    """When the model was written (UTC)."""
    estimator: str = Field(min_length=1)
    """An allow-listed recipe name (see ``modelops.training.estimators``) for a model the trainer
    built from a recipe; else the class name of the model's final estimator."""
    name: str | None = None
    """What the model is called, when it was packaged with a name (informational)."""
    params: dict[str, bool | int | float | str | None] = Field(default_factory=dict)
    """Constructor parameters of the estimator that differ from scikit-learn's defaults."""
    features: list[str] = Field(min_length=1)
    """Feature names, in the column order the estimator expects."""
    categorical_features: list[str] = Field(default_factory=list)
    """The subset of ``features`` that are categories rather than numbers."""
    feature_dtypes: dict[str, str] = Field(default_factory=dict)
    """pandas dtype of every feature when the model was fitted on a DataFrame (it is then fed a
    DataFrame with these columns, see ``modelops.frames``); empty when it was fitted on a
    matrix."""
    target: str = Field(min_length=1)
    """Name of the target column in training data."""
    task: Task
    """``classification`` or ``regression``."""
    classes: list[str | int] | None = None
    """Class labels in the order of ``predict_proba`` columns (classification only)."""
    data_uri: str | None = None
    """URI of the training data."""
    data_sha256: str | None = None
    """SHA-256 of the training data file, so a model can be traced to its exact data."""
    metrics: dict[str, float] = Field(default_factory=dict)
    """Holdout metrics of this model (accuracy, f1, roc_auc, log_loss or r2, mae, rmse)."""
    library_versions: dict[str, str] = Field(default_factory=dict)
    """Versions of python, scikit-learn, numpy and skops used to train."""


class TrainingResult(BaseModel):
    """The trainer's verdict, written to the termination message and to stdout.

    On success ``reason`` is ``Succeeded``; when the data-quality gate or the input fails,
    ``reason`` says why (CamelCase, e.g. ``DataQualityGateFailed``), ``message`` explains, and no
    model was written.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: str
    """Candidate version this run produced (or would have produced)."""
    uri: str
    """Where the candidate model directory is (empty when none was written)."""
    metrics: dict[str, float] = Field(default_factory=dict)
    """The candidate scored on the holdout."""
    baseline: dict[str, float] = Field(default_factory=dict)
    """The current champion scored on the same holdout."""
    reason: str = "Succeeded"
    """``Succeeded`` or a CamelCase failure reason."""
    message: str = ""
    """Human-readable detail, empty on success."""
    fairness: FairnessResult | None = None
    """The fairness metric of challenger and champion per sensitive column, when one was asked."""

    @property
    def succeeded(self) -> bool:
        return self.reason == "Succeeded"

    def to_json(self) -> str:
        """Compact JSON that always fits a termination message (the message is cut if needed)."""
        exclude = {"fairness"} if self.fairness is None else None
        text = self.model_dump_json(exclude_defaults=False, exclude=exclude)
        if len(text.encode()) <= TERMINATION_MESSAGE_LIMIT:
            return text
        overflow = len(text.encode()) - TERMINATION_MESSAGE_LIMIT + 16
        return self.model_copy(
            update={"message": self.message[: max(0, len(self.message) - overflow)] + "…"}
        ).model_dump_json(exclude=exclude)


class FairnessColumn(BaseModel):
    """One sensitive column (or ``a&b``, the intersection) in :class:`FairnessResult`."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, populate_by_name=True, serialize_by_alias=True
    )

    challenger: float | None = None
    """The metric of the challenger on the holdout (None where it is undefined)."""
    champion: float | None = None
    """The metric of the champion on the same rows (None: no champion, or not scored)."""
    groups: list[str] = Field(default_factory=list)
    """The two groups behind the challenger's value: lowest rate first, then highest."""
    small_groups: list[str] = Field(default_factory=list, alias="smallGroups")
    """Groups with fewer holdout rows than ``minGroupRows`` (names may be cut)."""


class FairnessResult(BaseModel):
    """``fairness`` in the result JSON (the per-group table is ``fairness.json``)."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, populate_by_name=True, serialize_by_alias=True
    )

    metric: str
    """A fairlearn metric name, e.g. ``demographic_parity_difference``."""
    min_group_rows: int = Field(alias="minGroupRows")
    columns: dict[str, FairnessColumn] = Field(default_factory=dict)


TrainingResult.model_rebuild()
