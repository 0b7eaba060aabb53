"""The model card: a written record of every version, ``card.json`` and ``card.md``.

``modelops train`` and ``modelops package`` write both into every model directory they make:
what the model was trained from (data URI, SHA-256, rows, time range), the recipe and its
parameters, the holdout metrics of challenger and champion, the fairness table by group, why the
retraining started (the operator passes policy, Job, evaluation time and reason as Job
environment) and the library versions. The decisions taken about the version afterwards (promoted,
approved, blocked and why, rolled back) live in the operator's status; :func:`decisions` reads
them from ``kubectl get ... -o json`` output so ``modelops card --status`` can append them.

``card.md`` is :func:`render` of ``card.json``: the two always say the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelops.artifacts import CARD_FILE, CARD_MARKDOWN_FILE, FAIRNESS_FILE, ModelMetadata
from modelops.storage import redact_uri
from modelops.training.sensitive import TimeRange

CARD_FORMAT = "modelops.dev/card/v1"


@dataclass(frozen=True)
class CardContext:
    """Why a version was made, as the operator tells the retraining Job (all optional)."""

    reason: str | None = None
    """e.g. ``DriftDetected``, ``PredictionDrift``, ``PerformanceDegraded``, ``Scheduled``."""
    policy: str | None = None
    job: str | None = None
    evaluation_time: str | None = None
    time_column: str | None = None
    """The data's time column, whose first and last time the card records."""


@dataclass(frozen=True)
class CardData:
    """The numbers of one run that are not in ``metadata.json``."""

    rows: int | None = None
    training_rows: int | None = None
    holdout_rows: int | None = None
    time_range: TimeRange | None = None
    seed: int | None = None
    test_size: float | None = None
    metrics_on: str = "holdout"
    """What the metrics were computed on: ``holdout``, or ``reference`` (package without one)."""


def build(
    metadata: ModelMetadata,
    *,
    made_by: str,
    data: CardData,
    context: CardContext = CardContext(),
    champion: ModelMetadata | None = None,
    champion_uri: str | None = None,
    baseline: Mapping[str, float] | None = None,
    baseline_error: str = "",
    fairness: Mapping[str, Any] | None = None,
    sensitive: Sequence[str] = (),
) -> dict[str, Any]:
    """The ``card.json`` document of a model directory."""
    time_range = data.time_range
    return {
        "format": CARD_FORMAT,
        "name": metadata.name,
        "version": metadata.version,
        "created": metadata.created.isoformat(),
        "madeBy": made_by,
        "task": metadata.task,
        "target": metadata.target,
        "features": list(metadata.features),
        "categoricalFeatures": list(metadata.categorical_features),
        "sensitiveColumns": list(sensitive),
        "sensitiveFeatures": [name for name in sensitive if name in metadata.features],
        "data": {
            "uri": redact_uri(metadata.data_uri) if metadata.data_uri else None,
            "sha256": metadata.data_sha256,
            "rows": data.rows,
            "trainingRows": data.training_rows,
            "holdoutRows": data.holdout_rows,
            "timeColumn": time_range.column if time_range else context.time_column,
            "timeRange": (
                {"start": time_range.start, "end": time_range.end} if time_range else None
            ),
        },
        "model": {
            "estimator": metadata.estimator,
            "params": dict(metadata.params),
            "classes": metadata.classes,
            "seed": data.seed,
            "testSize": data.test_size,
        },
        "champion": (
            None
            if champion is None
            else {"version": champion.version, "uri": redact_uri(champion_uri or "") or None}
        ),
        "metrics": {
            "on": data.metrics_on,
            "challenger": dict(metadata.metrics),
            "champion": dict(baseline) if baseline else None,
            "championError": baseline_error or None,
        },
        "fairness": dict(fairness) if fairness is not None else None,
        "retraining": {
            "reason": context.reason,
            "policy": context.policy,
            "job": context.job,
            "evaluationTime": context.evaluation_time,
        },
        "libraries": dict(metadata.library_versions),
    }


def writer(card: Mapping[str, Any]) -> Callable[[Path], None]:
    """A function writing ``card.json``, ``card.md`` (and ``fairness.json`` when the card has a
    fairness table) into a (staging) model directory."""

    def write(directory: Path) -> None:
        (directory / CARD_FILE).write_text(json.dumps(card, indent=2), encoding="utf-8")
        (directory / CARD_MARKDOWN_FILE).write_text(render(card), encoding="utf-8")
        if card.get("fairness") is not None:
            (directory / FAIRNESS_FILE).write_text(
                json.dumps(card["fairness"], indent=2), encoding="utf-8"
            )

    return write


def render(card: Mapping[str, Any]) -> str:
    """``card.md``: the card as Markdown."""
    version = card.get("version", "?")
    name = card.get("name")
    title = f"{_text(name)} {_text(version)}" if name else f"version {_text(version)}"
    lines = [f"# Model card: {title}", ""]
    lines.append(
        f"Made by `{card.get('madeBy', '?')}` on {card.get('created', '?')}: a "
        f"{card.get('task', '?')} model of `{_text(card.get('target', '?'))}`."
    )
    lines += ["", "## Data", ""]
    data = card.get("data") or {}
    rows = [
        ("URI", data.get("uri")),
        ("SHA-256", f"`{data['sha256']}`" if data.get("sha256") else None),
        ("Rows", data.get("rows")),
        ("Training rows", data.get("trainingRows")),
        ("Holdout rows", data.get("holdoutRows")),
    ]
    time_range = data.get("timeRange")
    if data.get("timeColumn"):
        span = f"{time_range.get('start')} to {time_range.get('end')}" if time_range else "-"
        rows.append((f"Time range ({data['timeColumn']})", span))
    lines += _table(("", ""), rows)

    model = card.get("model") or {}
    lines += ["", "## Model", ""]
    lines += _table(
        ("", ""),
        [
            ("Estimator", f"`{model.get('estimator')}`"),
            ("Seed", model.get("seed")),
            ("Holdout share", model.get("testSize")),
            ("Features", ", ".join(f"`{_text(f)}`" for f in card.get("features", []))),
            (
                "Categorical",
                ", ".join(f"`{_text(f)}`" for f in card.get("categoricalFeatures", [])),
            ),
            (
                "Sensitive (evaluation only)",
                ", ".join(f"`{_text(f)}`" for f in card.get("sensitiveColumns", [])),
            ),
        ],
    )
    if card.get("sensitiveFeatures"):
        names = ", ".join(f"`{_text(f)}`" for f in card["sensitiveFeatures"])
        lines += ["", f"**Sensitive columns used as features, explicitly allowed:** {names}"]
    params = model.get("params") or {}
    if params:
        lines += ["", "Parameters:", ""]
        lines += _table(("parameter", "value"), sorted(params.items()))

    lines += ["", f"## Metrics ({(card.get('metrics') or {}).get('on', 'holdout')})", ""]
    lines += _metrics(card)

    lines += ["", "## Fairness", ""]
    lines += _fairness(card.get("fairness"))

    retraining = card.get("retraining") or {}
    lines += ["", "## Why it was trained", ""]
    if any(retraining.values()):
        lines += _table(
            ("", ""),
            [
                ("Reason", retraining.get("reason")),
                ("DriftPolicy", retraining.get("policy")),
                ("Job", retraining.get("job")),
                ("Evaluation time", retraining.get("evaluationTime")),
            ],
        )
    else:
        lines.append("No retraining reason was recorded (a first version, or a manual run).")

    libraries = card.get("libraries") or {}
    lines += ["", "## Libraries", ""]
    lines.append(", ".join(f"{name} {v}" for name, v in sorted(libraries.items())) or "-")
    return "\n".join(lines) + "\n"


def _metrics(card: Mapping[str, Any]) -> list[str]:
    metrics = card.get("metrics") or {}
    challenger = metrics.get("challenger") or {}
    champion = metrics.get("champion") or {}
    names = list(dict.fromkeys([*challenger, *champion]))
    if not names:
        return ["No metrics were computed."]
    lines = _table(
        ("metric", "this version", "champion"),
        [(name, _number(challenger.get(name)), _number(champion.get(name))) for name in names],
    )
    if metrics.get("championError"):
        lines += ["", _text(metrics["championError"])]
    return lines


def _fairness(fairness: Mapping[str, Any] | None) -> list[str]:
    if not fairness:
        return ["No sensitive columns were named: fairness was not evaluated."]
    metric = fairness.get("metric")
    lines = [
        f"Metric: `{metric}`" if metric else "Metric: none asked (the table by group only)",
        f"; groups with fewer than {fairness.get('minGroupRows')} holdout rows are too small to "
        "judge.",
    ]
    lines = ["".join(lines)]
    if fairness.get("positiveClass") is not None:
        lines += ["", f"Positive class: `{_text(fairness['positiveClass'])}`."]
    for column, entry in (fairness.get("columns") or {}).items():
        lines += ["", f"### `{_text(column)}`", ""]
        if metric:
            pair = entry.get("worstPair") or []
            lines.append(
                f"{metric}: this version {_number(entry.get('challenger'))}, champion "
                f"{_number(entry.get('champion'))}"
                + (
                    f" (lowest {_text(pair[0])}, highest {_text(pair[1])})"
                    if len(pair) == 2
                    else ""
                )
            )
            lines.append("")
        if entry.get("smallGroups"):
            small = ", ".join(_text(g) for g in entry["smallGroups"])
            lines += [f"Too few holdout rows: {small}", ""]
        groups: Mapping[str, Any] = entry.get("groups") or {}
        rates = list(
            dict.fromkeys(
                name
                for values in groups.values()
                for role in ("challenger", "champion")
                for name in (values.get(role) or {})
            )
        )
        header = ["group", "rows", *rates, *(f"champion {name}" for name in rates)]
        rows = [
            (
                group,
                values.get("rows"),
                *(_number((values.get("challenger") or {}).get(r)) for r in rates),
                *(_number((values.get("champion") or {}).get(r)) for r in rates),
            )
            for group, values in groups.items()
        ]
        lines += _table(tuple(header), rows)
    return lines


def decisions(document: Mapping[str, Any], version: str) -> list[dict[str, Any]]:
    """The decisions about ``version`` recorded in a ModelDeployment's or a DriftPolicy's status
    (``kubectl get mdep|dpol NAME -o json``, or a ``List`` of them): ModelDeployment
    ``status.history`` entries of the version, DriftPolicy ``status.lastRetraining`` whose
    candidate it is."""
    found: list[dict[str, Any]] = []
    for item in _items(document):
        kind = str(item.get("kind", ""))
        name = str((item.get("metadata") or {}).get("name", "?"))
        status = item.get("status") or {}
        if not isinstance(status, Mapping):
            continue
        if kind == "ModelDeployment":
            for entry in status.get("history") or []:
                if isinstance(entry, Mapping) and str(entry.get("version")) == version:
                    found.append(
                        {
                            "time": entry.get("time"),
                            "source": f"ModelDeployment/{name}",
                            "decision": entry.get("reason"),
                            "message": f"served from {entry.get('uri', '?')}",
                        }
                    )
        elif kind == "DriftPolicy":
            last = status.get("lastRetraining")
            if isinstance(last, Mapping) and str(last.get("candidateVersion")) == version:
                found.append(
                    {
                        "time": last.get("completionTime") or last.get("startTime"),
                        "source": f"DriftPolicy/{name} (Job {last.get('job', '?')})",
                        "decision": last.get("reason") or last.get("result"),
                        "message": last.get("message") or f"result {last.get('result')}",
                    }
                )
    return sorted(found, key=lambda d: str(d.get("time") or ""))


def render_decisions(found: Sequence[Mapping[str, Any]], version: str) -> str:
    """The ``## Decisions`` section ``modelops card --status`` appends to ``card.md``."""
    lines = ["", "## Decisions", ""]
    if not found:
        lines.append(f"No decision about version {_text(version)} is recorded in the status given.")
    else:
        lines += _table(
            ("time", "by", "decision", "detail"),
            [(d.get("time"), d.get("source"), d.get("decision"), d.get("message")) for d in found],
        )
    return "\n".join(lines) + "\n"


def _items(document: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    if document.get("kind") == "List" or "items" in document:
        return [item for item in document.get("items") or [] if isinstance(item, Mapping)]
    return [document]


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(value) for value in row) + " |")
    return lines


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return _text(value)


def _text(value: Any) -> str:
    """Text safe in a Markdown table cell: pipes escaped, one line."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
