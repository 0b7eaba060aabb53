"""The micro-batcher with a real model: a lone request predicts at once, requests arriving in
the same loop turn share one predict call, and it goes back to predicting at once when the load
is gone."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import orjson
import pytest

from modelops.serving.batching import Batcher
from modelops.serving.dataplane import DataPlane, Prepared
from modelops.serving.loader import load_model_dir
from modelops.serving.server import build_app
from modelops.serving.settings import ServeSettings
from serving_support import ModelCase, make_model_dir, v2_matrix


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> ModelCase:
    return make_model_dir(tmp_path_factory.mktemp("models"), "classifier")


class CountingDataPlane:
    """The real data plane, counting its predict calls and the rows of each."""

    def __init__(self, dataplane: DataPlane) -> None:
        self.dataplane = dataplane
        self.calls: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dataplane, name)

    def predict_arrays(self, features: np.ndarray, outputs: tuple[str, ...]) -> list[np.ndarray]:
        self.calls.append(features.shape[0])
        return self.dataplane.predict_arrays(features, outputs)


@pytest.fixture
def batcher(classifier: ModelCase) -> tuple[Batcher, CountingDataPlane]:
    settings = ServeSettings(model_uri="file:///model", name="m")
    counting = CountingDataPlane(build_app(load_model_dir(classifier.path), settings).dataplane)
    return Batcher(counting), counting  # type: ignore[arg-type]


def prepared(dataplane: CountingDataPlane, rows: np.ndarray) -> Prepared:
    return dataplane.prepare(orjson.dumps(v2_matrix(rows)))


async def idle_turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_lone_request_predicts_without_waiting_for_the_loop(
    batcher: tuple[Batcher, CountingDataPlane], classifier: ModelCase
) -> None:
    batch, dataplane = batcher
    future = batch.predict(prepared(dataplane, classifier.X[:3]))
    assert future.done()  # no loop turn went by
    (labels,) = future.result()
    assert labels.tolist() == classifier.estimator.predict(classifier.X[:3]).tolist()
    assert dataplane.calls == [3]
    assert dataplane.metrics.rows == 3  # counted as when batched


async def test_requests_in_one_turn_share_a_predict_call_then_lone_ones_predict_at_once(
    batcher: tuple[Batcher, CountingDataPlane], classifier: ModelCase
) -> None:
    batch, dataplane = batcher
    X = classifier.X
    first = batch.predict(prepared(dataplane, X[0:1]))
    second = batch.predict(prepared(dataplane, X[1:3]))  # same turn: requests come together
    third = batch.predict(prepared(dataplane, X[3:6]))
    assert first.done()
    assert not second.done()
    assert not third.done()
    await idle_turns()
    assert dataplane.calls == [1, 5]  # the second and third in one call
    assert second.result()[0].tolist() == classifier.estimator.predict(X[1:3]).tolist()
    assert third.result()[0].tolist() == classifier.estimator.predict(X[3:6]).tolist()

    # Still batching: the next request waits for its batch, which it has to itself ...
    fourth = batch.predict(prepared(dataplane, X[6:7]))
    assert not fourth.done()
    await idle_turns()
    assert fourth.done()
    assert dataplane.calls == [1, 5, 1]
    # ... so the load is gone and the one after predicts at once again.
    fifth = batch.predict(prepared(dataplane, X[7:8]))
    assert fifth.done()
    assert dataplane.calls == [1, 5, 1, 1]
    assert dataplane.metrics.rows == 8


async def test_a_lone_request_the_model_refuses_gets_the_error_in_its_future(
    batcher: tuple[Batcher, CountingDataPlane], classifier: ModelCase
) -> None:
    batch, dataplane = batcher
    bad = prepared(dataplane, classifier.X[:2])
    bad.features = bad.features[:, :-1]  # one feature short: the model refuses it
    future = batch.predict(bad)
    assert future.done()
    with pytest.raises(Exception, match="refused"):
        future.result()
    assert dataplane.metrics.rows == 0
    good = batch.predict(prepared(dataplane, classifier.X[:1]))
    await idle_turns()
    assert good.done()
    assert good.exception() is None
