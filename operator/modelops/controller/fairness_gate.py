"""The fairness gate (pure): may a candidate be promoted, given the trainer's fairness report?

It is asked before any promotion decision, in every mode (auto, manual — also when an approval
arrives later —, none). It passes only when every sensitive column (and their intersection when
asked) was measured with the configured metric, the challenger's value keeps the bound (``max``
for differences, ``min`` for ratios), does not degrade past ``maxDegradation`` against the
champion, and no group has fewer holdout rows than ``minGroupRows``. Anything missing or
unreadable blocks: the gate never passes a candidate it could not judge.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError

from modelops.api import reasons
from modelops.api.fairness import (
    INTERSECTION_SEPARATOR,
    ColumnFairness,
    Fairness,
    FairnessReport,
    is_ratio,
)

#: Float noise allowed when a challenger is compared with its champion (both are rounded values
#: of the same holdout, so 0.15 - 0.1 must not count as more than a maxDegradation of 0.05).
TOLERANCE = 1e-9
#: Findings named in full in a message; the rest are counted (an Event message is cut at 1 KiB).
SHOWN_FINDINGS = 4

FindingKind = Literal["unmeasured", "bound", "degradation", "small_groups"]


@dataclass(frozen=True)
class Finding:
    """One reason the gate blocks: what is wrong with which column."""

    kind: FindingKind
    column: str
    text: str

    @property
    def blocks_as(self) -> str:
        """The CamelCase reason of this finding."""
        if self.kind == "small_groups":
            return reasons.FAIRNESS_GROUP_TOO_SMALL
        return reasons.FAIRNESS_GATE_FAILED


@dataclass(frozen=True)
class GateVerdict:
    """The gate's answer: passed, or the reason and message of the block."""

    passed: bool
    reason: str
    message: str
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class ReadReport:
    """The ``fairness`` block of a result: absent (None, no problem), read, or unreadable."""

    report: FairnessReport | None
    problem: str = ""


def read_report(message: str) -> ReadReport:
    """The ``fairness`` block of the trainer's result JSON (its termination message)."""
    try:
        document = json.loads(message.strip() or "{}")
    except ValueError:
        return ReadReport(None, "the result is not JSON")
    if not isinstance(document, dict) or document.get("fairness") is None:
        return ReadReport(None)
    try:
        return ReadReport(FairnessReport.model_validate(document["fairness"]))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "fairness"
        return ReadReport(None, f"its fairness block is malformed at {where}: {first['msg']}")


def finite(value: float | None) -> float | None:
    """``value`` when it is a number, None for null, NaN or infinity (not storable in status)."""
    return value if value is not None and math.isfinite(value) else None


def storable(report: FairnessReport) -> FairnessReport:
    """``report`` with non-finite values as null, as the API server stores numbers."""
    return report.model_copy(
        update={
            "columns": {
                name: column.model_copy(
                    update={
                        "challenger": finite(column.challenger),
                        "champion": finite(column.champion),
                    }
                )
                for name, column in report.columns.items()
            }
        }
    )


def expected_columns(gate: Fairness) -> list[str]:
    """The columns the report must hold: each sensitive column, then their intersection."""
    names = list(gate.sensitive_columns)
    if gate.intersection_name is not None:
        names.append(gate.intersection_name)
    return names


def _find(report: FairnessReport, name: str) -> tuple[str, ColumnFairness] | None:
    """The report's entry of ``name``; an intersection matches in any order of its columns."""
    if name in report.columns:
        return name, report.columns[name]
    parts = set(name.split(INTERSECTION_SEPARATOR))
    if len(parts) < 2:
        return None
    for key, column in report.columns.items():
        if set(key.split(INTERSECTION_SEPARATOR)) == parts:
            return key, column
    return None


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _groups(column: ColumnFairness) -> str:
    shown = [g for g in column.groups[:2] if g]
    if len(shown) == 2:
        return f" between groups {shown[0]} and {shown[1]}"
    return f" (group {shown[0]})" if shown else ""


def judge_column(gate: Fairness, name: str, column: ColumnFairness) -> list[Finding]:
    """What blocks on one measured column: the bound, the degradation, small groups."""
    found: list[Finding] = []
    ratio = is_ratio(gate.metric)
    bound_name = "min" if ratio else "max"
    challenger = finite(column.challenger)
    champion = finite(column.champion)
    values = (
        f"challenger {_num(challenger)}, champion {_num(champion)}, {bound_name} {gate.bound:g}"
    )
    if challenger is None:
        found.append(
            Finding(
                "unmeasured",
                name,
                f"{name}: the challenger's {gate.metric} could not be computed ({values})",
            )
        )
    else:
        breaks = challenger < gate.bound if ratio else challenger > gate.bound
        if breaks:
            side = "below" if ratio else "over"
            found.append(
                Finding(
                    "bound",
                    name,
                    f"{name}: {challenger:.4g}{_groups(column)}, {side} {bound_name} "
                    f"{gate.bound:g} (champion {_num(champion)})",
                )
            )
        if gate.max_degradation is not None and champion is not None:
            worse = champion - challenger if ratio else challenger - champion
            if worse > gate.max_degradation + TOLERANCE:
                found.append(
                    Finding(
                        "degradation",
                        name,
                        f"{name}: {challenger:.4g}{_groups(column)} against the champion's "
                        f"{champion:.4g}, {worse:.4g} less fair, more than maxDegradation "
                        f"{gate.max_degradation:g} ({bound_name} {gate.bound:g})",
                    )
                )
    if column.small_groups:
        small = ", ".join(column.small_groups[:8]) + (
            ", ..." if len(column.small_groups) > 8 else ""
        )
        found.append(
            Finding(
                "small_groups",
                name,
                f"{name}: groups with fewer than {gate.min_group_rows} holdout rows: {small} "
                f"({values})",
            )
        )
    return found


def judge(gate: Fairness, read: ReadReport, version: str) -> GateVerdict:
    """Whether candidate ``version`` passes ``gate`` on the trainer's report ``read``."""
    report = read.report
    if report is None:
        columns = ", ".join(expected_columns(gate))
        text = (
            f"{read.problem}, so {columns} went unmeasured"
            if read.problem
            else f"the trainer reported no fairness measurement of {columns} (a trainer "
            "without fairness support?)"
        )
        text += "; an unmeasured candidate is never promoted"
        return _blocked(gate, version, [Finding("unmeasured", columns, text)])
    if report.metric != gate.metric:
        text = f"the trainer measured {report.metric}, the gate asks for {gate.metric}"
        return _blocked(gate, version, [Finding("unmeasured", "", text)])
    if report.min_group_rows is not None and report.min_group_rows < gate.min_group_rows:
        text = (
            f"the trainer counted small groups below {report.min_group_rows} holdout rows, "
            f"the gate asks for {gate.min_group_rows}"
        )
        return _blocked(gate, version, [Finding("unmeasured", "", text)])
    findings: list[Finding] = []
    passing: list[str] = []
    for name in expected_columns(gate):
        found = _find(report, name)
        if found is None:
            findings.append(Finding("unmeasured", name, f"{name}: not measured"))
            continue
        key, column = found
        column_findings = judge_column(gate, key, column)
        findings += column_findings
        if not column_findings:
            passing.append(f"{key} {_num(finite(column.challenger))}")
    if findings:
        return _blocked(gate, version, findings)
    bound_name = "min" if is_ratio(gate.metric) else "max"
    return GateVerdict(
        True,
        "",
        f"Fairness: {gate.metric} within {bound_name} {gate.bound:g} ({', '.join(passing)}).",
    )


def _blocked(gate: Fairness, version: str, findings: list[Finding]) -> GateVerdict:
    """Blocked: FairnessGateFailed when anything but small groups blocks, else too small."""
    failed = [f for f in findings if f.blocks_as == reasons.FAIRNESS_GATE_FAILED]
    reason = reasons.FAIRNESS_GATE_FAILED if failed else reasons.FAIRNESS_GROUP_TOO_SMALL
    ordered = failed + [f for f in findings if f not in failed]
    shown = "; ".join(f.text for f in ordered[:SHOWN_FINDINGS])
    more = len(ordered) - SHOWN_FINDINGS
    if more > 0:
        shown += f"; and {more} more"
    message = (
        f"Kept the current model: candidate {version} fails the fairness gate on "
        f"{gate.metric}: {shown}."
    )
    return GateVerdict(False, reason, message, tuple(ordered))
