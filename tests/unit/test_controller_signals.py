"""The pure parts of #14's operator side: the live metric from counters equals scikit-learn's on
the same rows, the verdict respects each metric's direction, the new counters are read from all
three forms (counts document, /metrics text, Prometheus), window deltas of a signed sum, and the
schedule's times as a CronJob reads them."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    precision_score,
    r2_score,
    recall_score,
    root_mean_squared_error,
)

from modelops.controller import signals, sources, trigger
from modelops.controller.window import restarted, window_delta
from modelops.drift.profile import FeatureProfile, Profile
from modelops.serving.counts import Counts, Feedback

# ------------------------------------------------------------------ live metric = scikit-learn


def classification_rows(classes: list[str], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    actual = rng.choice(classes, size=n, p=None)
    noise = rng.random(n) < 0.3
    predicted = np.where(noise, rng.choice(classes, size=n), actual)
    return actual, predicted


def feedback_of(classes: list[str], actual: np.ndarray, predicted: np.ndarray) -> Feedback:  # type: ignore[type-arg]
    matrix = confusion_matrix(actual, predicted, labels=classes).astype(np.int64)
    return Feedback(rows=int(matrix.sum()), classes=tuple(classes), confusion=matrix)


@pytest.mark.parametrize("classes", [["no", "yes"], ["a", "b", "c", "d"]])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_classification_metrics_equal_scikit_learn(classes: list[str], seed: int) -> None:
    actual, predicted = classification_rows(classes, 777, seed)
    feedback = feedback_of(classes, actual, predicted)
    binary = len(classes) == 2
    average = "binary" if binary else "macro"
    extra = {"pos_label": classes[1]} if binary else {}
    expected = {
        "accuracy": accuracy_score(actual, predicted),
        "f1": f1_score(actual, predicted, average="macro", zero_division=0),
        "precision": precision_score(actual, predicted, average=average, zero_division=0, **extra),
        "recall": recall_score(actual, predicted, average=average, zero_division=0, **extra),
        "balanced_accuracy": balanced_accuracy_score(actual, predicted),
    }
    for metric, value in expected.items():
        assert signals.live_metric(metric, feedback) == pytest.approx(value, abs=1e-12), metric


def test_macro_metrics_leave_out_classes_nobody_saw_as_scikit_learn_does() -> None:
    classes = ["a", "b", "c"]
    actual = np.array(["a", "a", "b", "b", "a"])
    predicted = np.array(["a", "b", "b", "b", "a"])
    feedback = feedback_of(classes, actual, predicted)  # c: no row, no prediction
    assert signals.live_metric("f1", feedback) == pytest.approx(
        f1_score(actual, predicted, average="macro")
    )
    assert signals.live_metric("precision", feedback) == pytest.approx(
        precision_score(actual, predicted, average="macro")
    )
    assert signals.live_metric("balanced_accuracy", feedback) == pytest.approx(
        balanced_accuracy_score(actual, predicted)
    )


@pytest.mark.parametrize("seed", [4, 5])
def test_regression_metrics_equal_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.normal(-3.0, 2.0, size=500)  # negative targets: the target sum falls
    prediction = truth + rng.normal(0.0, 0.7, size=500)
    feedback = Feedback(
        rows=500,
        abs_error=float(np.abs(truth - prediction).sum()),
        squared_error=float(((truth - prediction) ** 2).sum()),
        target=float(truth.sum()),
        target_squared=float((truth**2).sum()),
    )
    assert signals.live_metric("mae", feedback) == pytest.approx(
        mean_absolute_error(truth, prediction)
    )
    assert signals.live_metric("rmse", feedback) == pytest.approx(
        root_mean_squared_error(truth, prediction)
    )
    assert signals.live_metric("r2", feedback) == pytest.approx(r2_score(truth, prediction))


def test_undefined_and_misapplied_metrics() -> None:
    constant = Feedback(rows=10, abs_error=1.0, squared_error=1.0, target=20.0, target_squared=40.0)
    assert signals.live_metric("r2", constant) is None  # the target never varies
    classifier = feedback_of(["a", "b"], np.array(["a"]), np.array(["b"]))
    with pytest.raises(ValueError, match="mae is a regression metric, but the model is a class"):
        signals.live_metric("mae", classifier)
    with pytest.raises(ValueError, match="accuracy is a classification metric"):
        signals.live_metric("accuracy", constant)


# ------------------------------------------------------------------------------- the verdict


@pytest.mark.parametrize(
    ("metric", "value", "baseline", "bounds", "degraded"),
    [
        ("accuracy", 0.85, 0.9, {"max_drop": 0.1}, False),
        ("accuracy", 0.79, 0.9, {"max_drop": 0.1}, True),
        ("accuracy", 0.95, 0.9, {"max_drop": 0.0}, False),  # better is never degraded
        ("mae", 1.2, 1.0, {"max_drop": 0.1}, True),  # lower is better: up is worse
        ("mae", 0.5, 1.0, {"max_drop": 0.1}, False),
        ("rmse", 1.05, 1.0, {"max_drop": 0.1}, False),
        ("r2", 0.5, 0.8, {"max_drop": 0.2}, True),
        ("accuracy", 0.7, None, {"max_drop": 0.1}, False),  # no baseline: maxDrop cannot apply
        ("accuracy", 0.7, None, {"minimum": 0.75}, True),
        ("mae", 3.0, None, {"maximum": 2.5}, True),
        ("mae", 2.0, None, {"maximum": 2.5}, False),
    ],
)
def test_the_verdict_respects_direction_and_bounds(
    metric: str, value: float, baseline: float | None, bounds: dict[str, float], degraded: bool
) -> None:
    arguments: dict[str, float | None] = {"max_drop": None, "minimum": None, "maximum": None}
    arguments.update(bounds)
    verdict = signals.judge_performance(metric, value, baseline, **arguments)
    assert verdict.degraded is degraded
    if baseline is None and "max_drop" in bounds and not degraded:
        assert "maxDrop cannot apply" in verdict.message


def test_the_baseline_is_the_holdout_value_of_the_same_definition() -> None:
    holdout = {"accuracy": 0.9, "f1": 0.8, "roc_auc": 0.95, "mae": math.nan}
    assert signals.holdout_baseline("accuracy", holdout) == 0.9
    assert signals.holdout_baseline("f1", holdout) == 0.8
    assert signals.holdout_baseline("precision", holdout) is None  # the trainer writes none
    assert signals.holdout_baseline("mae", holdout) is None  # not finite
    assert signals.holdout_baseline("r2", holdout) is None


# ------------------------------------------------------------------------ the three sources

OUTPUT = FeatureProfile(
    name="label", kind="categorical", proportions=(0.6, 0.4, 0.0, 0.0), categories=("0", "1")
)


def test_a_counts_document_gives_prediction_and_feedback_series() -> None:
    counts = Counts(
        model="m",
        version="v1",
        start="s",
        rows=10,
        features={"x": np.array([4, 6])},
        predictions=np.array([7, 3, 0, 0]),
        feedback=Feedback(rows=5, classes=("0", "1"), confusion=np.array([[2, 1], [0, 2]])),
    )
    series = sources.counts_series(counts)
    assert series[("x", "0")] == 4
    assert series[(signals.PREDICTION_INDEX, "0")] == 7
    assert series[(signals.FEEDBACK, "rows")] == 5
    assert series[(signals.CONFUSION, "0\x1f1")] == 1
    # Class labels that look like bin indexes are keyed apart from them.
    assert signals.prediction_counts(OUTPUT, series).tolist() == [7, 3, 0, 0]
    feedback = signals.window_feedback(series, ("0", "1"))
    assert feedback is not None
    assert feedback.confusion is not None
    assert feedback.confusion.tolist() == [[2, 1], [0, 2]]


def test_metrics_text_gives_the_same_series_by_label() -> None:
    text = "\n".join(
        [
            "# TYPE modelops_prediction_bin_total counter",
            'modelops_prediction_bin_total{model="m",version="v1",bin="0"} 7',
            'modelops_prediction_bin_total{model="m",version="v1",bin="1"} 3',
            'modelops_prediction_bin_total{model="other",version="v1",bin="1"} 99',
            "# TYPE modelops_feedback_abs_error_total counter",
            'modelops_feedback_abs_error_total{model="m",version="v1"} 2.5',
            "# TYPE modelops_feedback_confusion_total counter",
            'modelops_feedback_confusion_total{model="m",version="v1",actual="1",predicted="0"} 4',
            "# TYPE modelops_inference_rows_total counter",
            'modelops_inference_rows_total{model="m",version="v1"} 10',
        ]
    )
    series = sources.parse_bin_counters(text, "m")["v1"]
    assert series == {
        (signals.PREDICTION_LABEL, "0"): 7.0,
        (signals.PREDICTION_LABEL, "1"): 3.0,
        (signals.FEEDBACK, "absError"): 2.5,
        (signals.CONFUSION, "1\x1f0"): 4.0,
    }
    assert signals.prediction_counts(OUTPUT, series).tolist() == [7, 3, 0, 0]


def test_prometheus_queries_each_counter_the_policy_needs() -> None:
    assert sources.signal_queries(False, None) == []
    names = [q[0] for q in sources.signal_queries(True, "regression")]
    assert names == [
        "modelops_prediction_bin_total",
        "modelops_feedback_rows_total",
        "modelops_feedback_abs_error_total",
        "modelops_feedback_squared_error_total",
        "modelops_feedback_target_total",
        "modelops_feedback_target_squared_total",
    ]
    metric, by, key = sources.signal_queries(False, "classification")[1]
    assert sources.promql("m", "v1", "5m", metric, by) == (
        "sum by (namespace, version, actual, predicted) "
        '(increase(modelops_feedback_confusion_total{model="m",version="v1"}[5m]))'
    )
    document = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {
                    "metric": {"namespace": "ns", "version": "v1", "actual": "a", "predicted": "b"},
                    "value": [0, "12.5"],
                }
            ],
        },
    }
    parsed = sources.parse_prometheus_vector(json.loads(json.dumps(document)), "ns", key)
    assert parsed == {"v1": {(signals.CONFUSION, "a\x1fb"): 12.5}}


def test_a_signed_sum_may_fall_without_meaning_a_restart() -> None:
    target = (signals.FEEDBACK, "target")
    rows = (signals.FEEDBACK, "rows")
    before = {"p": {target: 10.0, rows: 4.0}}
    after = {"p": {target: -5.0, rows: 9.0}}
    assert not restarted(before["p"], after["p"], signals.SIGNED_KEYS)
    assert window_delta(before, after, signals.SIGNED_KEYS) == {target: -15.0, rows: 5.0}
    # Without the key set, the fall reads as a restart (the old behaviour for every series).
    assert window_delta(before, after) == {rows: 9.0}


def test_prediction_drift_uses_the_statistics_that_fit_the_output() -> None:
    profile = Profile(
        features=(
            FeatureProfile(
                name="x", kind="categorical", proportions=(1.0, 0, 0), categories=("u",)
            ),
        ),
        rows=100,
        output=OUTPUT,
    )
    counts = np.array([300.0, 700.0, 0.0, 0.0])
    report = signals.score_predictions(profile, counts, {"psi": 0.1, "ks": 0.1}, 100)
    [output] = report.features
    assert set(output.scores) == {"psi"}
    assert output.breached_metrics == ("psi",)
    with pytest.raises(ValueError, match="no output entry"):
        signals.score_predictions(
            Profile(features=profile.features, rows=100), counts, {"psi": 0.1}, 1
        )


# ------------------------------------------------------------------------------ the schedule

T0 = datetime(2030, 3, 30, 12, 0, tzinfo=UTC)


def test_only_the_latest_missed_time_is_due() -> None:
    state = trigger.schedule_state("*/10 * * * *", None, T0 + timedelta(minutes=35), T0)
    assert state.due == T0 + timedelta(minutes=30)
    assert state.missed == 2
    assert state.next_time == T0 + timedelta(minutes=40)
    state = trigger.schedule_state("*/10 * * * *", None, T0 + timedelta(minutes=35), state.due)
    assert state.due is None


def test_a_time_exactly_now_is_due() -> None:
    state = trigger.schedule_state("0 * * * *", None, T0 + timedelta(hours=1), T0)
    assert state.due == T0 + timedelta(hours=1)
    assert state.missed == 0


def test_time_zones_and_daylight_saving_follow_the_zone() -> None:
    # 2030-03-31: Europe/Berlin moves from UTC+1 to UTC+2 at 01:00 UTC.
    before = trigger.schedule_state("30 3 * * *", "Europe/Berlin", T0, T0)
    assert before.next_time == datetime(2030, 3, 31, 1, 30, tzinfo=UTC)
    after = trigger.schedule_state("30 3 * * *", "Europe/Berlin", before.next_time, T0)
    assert after.due == datetime(2030, 3, 31, 1, 30, tzinfo=UTC)
    assert after.next_time == datetime(2030, 4, 1, 1, 30, tzinfo=UTC)


def test_a_date_that_never_comes_is_never_due() -> None:
    state = trigger.schedule_state("0 0 30 2 *", None, T0, T0 - timedelta(days=3650))
    assert state == trigger.ScheduleState(due=None, missed=0, next_time=None)


def test_a_long_outage_of_a_frequent_schedule_still_runs_once() -> None:
    state = trigger.schedule_state("* * * * *", None, T0, T0 - timedelta(days=30))
    assert state.due == T0
    assert state.missed == trigger.MAX_COUNTED_MISSES


def test_after_a_long_outage_the_time_due_is_never_ahead_of_now() -> None:
    now = datetime(2030, 1, 1, 11, 59, 59, 500_000, tzinfo=UTC)  # half a second before 12:00
    state = trigger.schedule_state("* * * * *", None, now, now - timedelta(days=30))
    assert state.missed == trigger.MAX_COUNTED_MISSES
    assert state.due == datetime(2030, 1, 1, 11, 59, tzinfo=UTC)
    assert state.next_time == datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    exact = trigger.schedule_state(
        "* * * * *", None, now.replace(second=0, microsecond=300_000), now - timedelta(days=30)
    )
    assert exact.due == datetime(2030, 1, 1, 11, 59, tzinfo=UTC)


def test_where_the_schedule_counts_from() -> None:
    now, created = T0, T0 - timedelta(days=2)
    last, seen = T0 - timedelta(hours=1), T0 + timedelta(minutes=5)
    assert trigger.schedule_since(last, seen, created, 5, now) == last
    assert trigger.schedule_since(None, seen, created, 5, now) == now  # seen is still ahead
    passed = T0 - timedelta(minutes=5)  # the operator was down when it came
    assert trigger.schedule_since(None, passed, created, 5, now) == passed - timedelta(seconds=1)
    assert trigger.schedule_since(None, None, created, 1, now) == created
    assert trigger.schedule_since(None, None, created, 2, now) == now


def test_the_scheduled_decision() -> None:
    yes = trigger.decide_scheduled(enabled=True, running=0, max_concurrent=1, due=T0, missed=0)
    assert (yes.start, yes.reason) == (True, "Scheduled")
    busy = trigger.decide_scheduled(enabled=True, running=1, max_concurrent=1, due=T0, missed=0)
    assert (busy.start, busy.reason) == (False, "ScheduleSkipped")
    off = trigger.decide_scheduled(enabled=False, running=0, max_concurrent=1, due=T0, missed=3)
    assert (off.start, off.reason) == (False, "RetrainingDisabled")
