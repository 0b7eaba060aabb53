"""``multiget``: many GETs at once from the calling thread, against real sockets on 127.0.0.1
answering as servers do (Content-Length, chunked, until close) and as they fail (refused, silent,
trickling, malformed, oversized), each failure confined to its own URL."""

from __future__ import annotations

import contextlib
import gc
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httptools
import pytest

from modelops.controller.multiget import GetError, get_many

Handler = Callable[[socket.socket], None]


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], int]]:
    """Start raw TCP servers on 127.0.0.1 (one thread per connection); all stopped after."""
    listeners: list[socket.socket] = []
    stop = threading.Event()

    def start(handler: Handler) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.1)
        listeners.append(listener)

        def accept() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                threading.Thread(target=answer, args=(conn,), daemon=True).start()

        def answer(conn: socket.socket) -> None:
            with conn:
                _read_request(conn)
                with contextlib.suppress(OSError):  # the client gave up
                    handler(conn)

        threading.Thread(target=accept, daemon=True).start()
        return int(listener.getsockname()[1])

    yield start
    stop.set()
    for listener in listeners:
        listener.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def reply(raw: bytes) -> Handler:
    return lambda conn: conn.sendall(raw)


def url(port: int, path: str = "/v2/models/m/counts") -> str:
    return f"http://127.0.0.1:{port}{path}"


def test_bodies_come_back_in_url_order_however_they_are_framed(
    serve: Callable[[Handler], int],
) -> None:
    sized = serve(reply(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsized"))
    chunked = serve(
        reply(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nchu\r\n4\r\nnked\r\n0\r\n\r\n"
        )
    )
    until_close = serve(reply(b"HTTP/1.0 200 OK\r\n\r\nuntil close"))
    empty = serve(reply(b"HTTP/1.1 204 No Content\r\n\r\n"))
    answers = get_many(
        [url(until_close), url(sized), url(chunked), url(empty)],
        timeout=5,
        max_bytes=1000,
        concurrency=16,
    )
    assert answers == [b"until close", b"sized", b"chunked", b""]


def test_the_request_is_a_plain_get_of_the_path_and_query() -> None:
    received: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        port = int(listener.getsockname()[1])

        def accept() -> None:
            conn, _ = listener.accept()
            with conn:
                received.append(_read_request(conn))
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

        thread = threading.Thread(target=accept)
        thread.start()
        answers = get_many([url(port, "/a/b?c=d")], timeout=5, max_bytes=10, concurrency=1)
        thread.join()
    assert answers == [b""]
    head = received[0].split(b"\r\n")
    assert head[0] == b"GET /a/b?c=d HTTP/1.1"
    assert f"Host: 127.0.0.1:{port}".encode() in head
    assert b"Connection: close" in head


def test_an_error_status_is_a_get_error_with_the_status(serve: Callable[[Handler], int]) -> None:
    port = serve(reply(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}"))
    [answer] = get_many([url(port)], timeout=5, max_bytes=100, concurrency=1)
    assert isinstance(answer, GetError)
    assert answer.status == 404
    assert str(answer) == f"GET {url(port)} answered HTTP 404"


def test_failures_stay_with_their_own_url(serve: Callable[[Handler], int]) -> None:
    good = serve(reply(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood"))
    refused = socket.create_server(("127.0.0.1", 0))
    refused_port = int(refused.getsockname()[1])
    refused.close()  # nothing listens there any more
    malformed = serve(reply(b"SPDY/9 banana\r\n\r\n"))
    cut = serve(reply(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"))
    big = serve(reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000))
    answers = get_many(
        [url(refused_port), url(good), url(malformed), "ftp://127.0.0.1/x", url(cut), url(big)],
        timeout=5,
        max_bytes=1000,
        concurrency=16,
    )
    assert answers[1] == b"good"
    messages = [str(answer) for answer in answers]
    assert "Connection refused" in messages[0]
    assert "malformed HTTP answer" in messages[2]
    assert "only http://host[:port]/path URLs" in messages[3]
    assert "closed before the whole answer" in messages[4]
    assert messages[5] == f"GET {url(big)} answered more than 1000 bytes"
    assert all(isinstance(answers[i], GetError) for i in (0, 2, 3, 4, 5))


def test_a_silent_or_trickling_server_costs_only_its_own_timeout(
    serve: Callable[[Handler], int],
) -> None:
    release = threading.Event()

    def silent(conn: socket.socket) -> None:
        release.wait(30)

    def trickle(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while not release.is_set():
            conn.sendall(b" ")
            time.sleep(0.01)

    good = serve(reply(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood"))
    urls = [url(serve(silent)), url(serve(trickle)), url(good), url(good)]
    began = time.monotonic()
    try:
        answers = get_many(urls, timeout=0.5, max_bytes=10**6, concurrency=2)
    finally:
        release.set()
    took = time.monotonic() - began
    assert answers[2:] == [b"good", b"good"]
    for answer in answers[:2]:
        assert isinstance(answer, GetError)
        assert "timed out: no whole answer within 0.5 s" in str(answer)
    # Both slots were held by the slow ones for their timeout, then the good ones ran: each
    # request's clock starts when it starts.
    assert 0.5 <= took < 3.0


def test_no_more_than_concurrency_requests_are_open_at_once(
    serve: Callable[[Handler], int],
) -> None:
    lock = threading.Lock()
    open_now = [0]
    most = [0]

    def slow(conn: socket.socket) -> None:
        with lock:
            open_now[0] += 1
            most[0] = max(most[0], open_now[0])
        time.sleep(0.05)
        with lock:
            open_now[0] -= 1
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    port = serve(slow)
    answers = get_many([url(port)] * 9, timeout=5, max_bytes=10, concurrency=3)
    assert answers == [b"ok"] * 9
    assert most[0] == 3


def test_no_urls_no_requests() -> None:
    assert get_many([], timeout=1, max_bytes=1, concurrency=4) == []


def test_finished_requests_leave_no_garbage_for_the_collector(
    serve: Callable[[Handler], int],
) -> None:
    """Each request's parser and its callbacks' owner are freed by reference counting, not left
    in a cycle for the garbage collector (whose full collections are what costs at scale)."""
    port = serve(reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    gc.collect()
    gc.disable()
    try:
        answers = get_many([url(port)] * 5, timeout=5, max_bytes=100, concurrency=5)
        left = [o for o in gc.get_objects() if isinstance(o, httptools.HttpResponseParser)]
    finally:
        gc.enable()
    assert answers == [b"ok"] * 5
    assert left == []
