"""The pods source reads each pod's counts document, falls back to /metrics text for servers
without it, says which in SourceReady, and turns bad answers into status, never a crash.

The DriftPolicy tick runs against the fakes of ``test_controller_driftpolicy_decisions``;
``http_get`` and ``scrape_pods`` also run against real HTTP servers on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from test_controller_driftpolicy_decisions import CALM, DRIFT, MODEL, World, started

from modelops.controller.sources import (
    COUNTS_DOCUMENT,
    METRICS_TEXT,
    Endpoint,
    SourceError,
    http_get,
    scrape_pods,
)
from modelops.serving.counts import counts_path

BY_COUNTS = "1 serving pod(s) through the counts endpoint"
BY_TEXT = "1 serving pod(s) through /metrics text (no counts endpoint)"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    made = World(monkeypatch)
    made.model_deployment()
    made.pods.start()
    return made


def source_message(world: World) -> str:
    condition = world.condition("SourceReady")
    assert condition is not None
    message: str = condition["message"]
    return message


# --- counts document or /metrics text ---------------------------------------------------------


def test_a_server_with_the_counts_endpoint_is_read_through_it(world: World) -> None:
    started(world, trigger={"consecutiveEvaluations": 1})
    assert world.drift()["samples"] == 1000
    assert world.condition_state("DriftDetected") == ("True", "DriftFound")
    assert source_message(world) == f"Read {BY_COUNTS}."


def test_an_older_server_is_read_through_metrics_text_with_the_same_result(world: World) -> None:
    for pod in world.pods.pods.values():
        pod.counts_endpoint = False
    world.policy(trigger={"consecutiveEvaluations": 1})
    world.tick()
    assert source_message(world) == f"Scraped {BY_TEXT}; recorded the baseline counters."
    status = world.drift()
    assert status["samples"] == 1000
    assert status["features"][0]["scores"]["ks"] == 0.4
    assert source_message(world) == f"Read {BY_TEXT}."


def test_pods_of_both_kinds_are_summed_and_counted_in_the_message(world: World) -> None:
    older = world.pods.start()
    older.counts_endpoint = False
    started(world, trigger={"consecutiveEvaluations": 1})
    assert world.calm()["samples"] == 1000  # 500 / 500 split over both pods
    assert source_message(world) == (
        "Read 2 serving pod(s): 1 through the counts endpoint, 1 through /metrics text "
        "(no counts endpoint)."
    )


def test_a_restart_is_told_by_the_start_even_when_counters_grew_past_their_old_values(
    world: World,
) -> None:
    [name] = world.pods.pods
    started(world, trigger={"consecutiveEvaluations": 1})
    world.calm()  # baseline 500 / 500
    # The process restarts and serves 900 / 100 then 500 / 500 again before the next evaluation:
    # 1400 / 600 is above 500 / 500 in every bin, so only the new start tells a restart.
    world.pods.restart(name)
    world.pods.serve(DRIFT)
    status = world.window(CALM)
    assert status["samples"] == 2000
    assert world.condition_state("DriftDetected") == ("True", "DriftFound")


# --- bad answers become status ----------------------------------------------------------------


def test_a_malformed_counts_document_is_named_in_status(world: World) -> None:
    started(world)
    answer = world.pods.answer

    def malformed(address: str, path: str) -> bytes:
        if path == counts_path(MODEL):
            return json.dumps({"model": MODEL, "version": "v1", "start": "s", "rows": -4}).encode()
        return answer(address, path)

    world.pods.answer = malformed  # type: ignore[method-assign]
    world.calm()
    condition = world.condition("SourceReady")
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("False", "SourceUnreachable")
    assert condition["message"] == (
        "no serving pod could be read (1 tried): GET http://10.0.0.1:8080/v2/models/iris/counts "
        "answered a malformed counts document: rows is -4, not a count"
    )


def test_a_malformed_pod_among_good_ones_is_left_out_and_named(world: World) -> None:
    bad = world.pods.start()
    answer = world.pods.answer

    def garbage(address: str, path: str) -> bytes:
        if address == bad.address and path == counts_path(MODEL):
            return b"<html>oops</html>"
        return answer(address, path)

    world.pods.answer = garbage  # type: ignore[method-assign]
    started(world)
    message = source_message(world)
    assert message.startswith(f"Scraped {BY_COUNTS}, 1 not read (GET http://{bad.address}:8080")
    assert "answered a malformed counts document: not JSON" in message


def test_an_older_pod_with_unparsable_text_among_good_ones_is_left_out_and_named(
    world: World,
) -> None:
    bad = world.pods.start()
    bad.counts_endpoint = False
    answer = world.pods.answer

    def garbage(address: str, path: str) -> bytes:
        if address == bad.address and path == "/metrics":
            return b'modelops_feature_bin_total{model="iris" 1 2 3\n'
        return answer(address, path)

    world.pods.answer = garbage  # type: ignore[method-assign]
    started(world)
    message = source_message(world)
    assert message.startswith(f"Scraped {BY_COUNTS}, 1 not read (unparsable metrics: ")
    assert world.condition_state("SourceReady") == ("True", "SourceReachable")


def test_an_error_other_than_404_is_not_a_reason_to_fall_back(world: World) -> None:
    answer = world.pods.answer
    asked: list[str] = []

    def failing(address: str, path: str) -> bytes:
        asked.append(path)
        if path == counts_path(MODEL):
            raise SourceError(f"GET http://{address}:8080{path} answered HTTP 503", status=503)
        return answer(address, path)

    world.pods.answer = failing  # type: ignore[method-assign]
    world.policy()
    world.tick()
    assert world.condition_state("SourceReady") == ("False", "SourceUnreachable")
    assert "/metrics" not in asked


# --- real HTTP ---------------------------------------------------------------------------------


Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], int]]:
    """Start HTTP servers on 127.0.0.1 answering with a handler; their ports."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(handle: Handler) -> int:
        class Answer(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                handle(self)

            def log_message(self, *_: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def reply(status: int, body: bytes) -> Handler:
    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        request.send_response(status)
        request.send_header("content-length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    return handle


COUNTS = json.dumps(
    {
        "model": MODEL,
        "version": "v1",
        "start": "s1",
        "rows": 3,
        "features": [{"name": "x", "counts": [1, 2, 0]}],
    }
).encode()
TEXT = (
    "# TYPE modelops_feature_bin_total counter\n"
    f'modelops_feature_bin_total{{model="{MODEL}",version="v1",feature="x",bin="0"}} 4\n'
).encode()


def by_path(answers: dict[str, bytes]) -> Handler:
    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        body = answers.get(request.path)
        if body is None:
            reply(404, b'{"error":"no endpoint"}')(request)
        else:
            reply(200, body)(request)

    return handle


def test_http_errors_carry_their_status(serve: Callable[[Handler], int]) -> None:
    port = serve(reply(404, b'{"error":"no endpoint"}'))
    with pytest.raises(SourceError) as caught:
        http_get(f"http://127.0.0.1:{port}/x", 5.0)
    assert caught.value.status == 404
    assert str(caught.value) == f"GET http://127.0.0.1:{port}/x answered HTTP 404"


def test_a_pod_is_read_through_counts_or_metrics_text(serve: Callable[[Handler], int]) -> None:
    new = Endpoint(
        pod="a/1", address="127.0.0.1", port=serve(by_path({counts_path(MODEL): COUNTS}))
    )
    old = Endpoint(pod="b/2", address="127.0.0.1", port=serve(by_path({"/metrics": TEXT})))
    scrape = scrape_pods([new, old], MODEL, timeout=5.0, concurrency=2)
    assert scrape.pods == {
        "a/1/s1": {"v1": {("x", "0"): 1.0, ("x", "1"): 2.0, ("x", "2"): 0.0}},
        "b/2": {"v1": {("x", "0"): 4.0}},
    }
    assert scrape.via == {"a/1/s1": COUNTS_DOCUMENT, "b/2": METRICS_TEXT}
    assert scrape.errors == {}


def test_a_trickling_pod_is_given_up_on(serve: Callable[[Handler], int]) -> None:
    def trickle(request: http.server.BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("content-length", "100000")
        request.end_headers()
        try:
            for _ in range(100000):
                request.wfile.write(b" ")
                request.wfile.flush()
                time.sleep(0.01)
        except OSError:
            pass  # the client gave up

    port = serve(trickle)
    with pytest.raises(SourceError, match=r"no whole answer within 0\.3 s"):
        http_get(f"http://127.0.0.1:{port}{counts_path(MODEL)}", 0.3)


def test_a_dead_pod_does_not_keep_the_others_from_being_read(
    serve: Callable[[Handler], int],
) -> None:
    release = threading.Event()

    def hang(request: http.server.BaseHTTPRequestHandler) -> None:
        release.wait(30)

    good = serve(by_path({counts_path(MODEL): COUNTS}))
    dead = serve(hang)
    endpoints = [
        Endpoint(pod="dead/0", address="127.0.0.1", port=dead),
        Endpoint(pod="good/1", address="127.0.0.1", port=good),
        Endpoint(pod="good/2", address="127.0.0.1", port=good),
    ]
    try:
        scrape = scrape_pods(endpoints, MODEL, timeout=0.5, concurrency=2)
    finally:
        release.set()
    assert sorted(scrape.pods) == ["good/1/s1", "good/2/s1"]
    assert list(scrape.errors) == ["dead/0"]
    assert "timed out" in scrape.errors["dead/0"]
    assert scrape.describe().startswith(
        "2 serving pod(s) through the counts endpoint, 1 not read (GET http://127.0.0.1:"
    )
