"""rsp in HTTP mode, black box: new client connections, whatever moment their request comes.

rsp reads an accepted connection before registering it with its poller (transport.stream.SocketStream
.start, speculative), stops reading a connection once its last request is read whole, and shares the
parse of a first request head between connections (http1.request_parser.SharedHeads). None of that may
lose or mix up a request: a client that sends with its connect, one that connects and sends later, one
that pauses between keep-alive requests, and a `Connection: close` request whose response is too large
for one send to a slow reader.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from support.http_backends import HttpBackend, ReceivedRequest, Reply
from support.http_client import HttpConn, build_request, http_config
from support.payload import digest, payload
from support.rsp_process import RspProcess, free_port

Start = Callable[..., Any]
Run = Callable[..., RspProcess]

LATER_SECONDS = 0.3
LARGE = 4 * 1024 * 1024


def test_requests_sent_with_the_connect_are_answered(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = run_rsp(http_config(free_port(), [backend.port]))
    conns = [HttpConn(rsp.port) for _ in range(20)]
    try:
        for i, conn in enumerate(conns):  # the same head on every connection but the target of one
            conn.send(build_request("GET", "/other" if i == 7 else "/same", headers=[("Connection", "close")]))
        for i, conn in enumerate(conns):
            response = conn.read_response()
            path = "/other" if i == 7 else "/same"
            assert response.status == 200 and response.body.startswith(f"b GET {path} ".encode()), response
            assert conn.wait_closed(5.0)[0] == "eof"
    finally:
        for conn in conns:
            conn.close()
    assert sorted(backend.paths()) == ["/other"] + ["/same"] * 19


def test_a_client_that_connects_and_sends_later_is_answered(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = run_rsp(http_config(free_port(), [backend.port]))
    with HttpConn(rsp.port) as conn:
        time.sleep(LATER_SECONDS)  # rsp has accepted it and found nothing to read
        conn.send(build_request("GET", "/late"))
        response = conn.read_response()
        assert response.status == 200 and response.body.startswith(b"b GET /late "), response
        time.sleep(LATER_SECONDS)  # a keep-alive client that comes back later
        again = conn.request("GET", "/again", headers=[("Connection", "close")])
        assert again.status == 200 and again.body.startswith(b"b GET /again "), again
        assert conn.wait_closed(5.0)[0] == "eof"
    assert backend.paths() == ["/late", "/again"]


def test_a_head_split_across_sends_on_a_new_connection_is_answered(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = run_rsp(http_config(free_port(), [backend.port]))
    request = build_request("GET", "/split", headers=[("Connection", "close")])
    with HttpConn(rsp.port) as conn:  # an identical head first, so the shared memo holds it
        conn.send(request)
        assert conn.read_response().status == 200
    with HttpConn(rsp.port) as conn:
        conn.send(request[:10])
        time.sleep(LATER_SECONDS)
        conn.send(request[10:])
        response = conn.read_response()
        assert response.status == 200 and response.body.startswith(b"b GET /split "), response
    assert backend.paths() == ["/split", "/split"]


def test_a_closing_request_gets_a_large_response_at_a_slow_readers_pace(start_backend: Start,
                                                                        run_rsp: Run) -> None:
    """rsp stops reading the connection after its last request; the response needs many sends, each
    waiting for room: the connection must then be watched for it."""
    def handler(req: ReceivedRequest) -> Reply:
        return Reply(headers=[("Content-Type", "application/octet-stream")], body=payload(LARGE))

    backend = start_backend(HttpBackend, handler, name="b")
    rsp = run_rsp(http_config(free_port(), [backend.port]))
    with HttpConn(rsp.port, rcvbuf=32 * 1024, timeout=30.0) as conn:
        conn.send(build_request("GET", "/large", headers=[("Connection", "close")]))
        time.sleep(LATER_SECONDS)  # nothing read: rsp's sends fill the socket buffers and wait
        response = conn.read_response()
        assert response.status == 200, response
        assert len(response.body) == LARGE and digest(response.body) == digest(payload(LARGE))
        assert conn.wait_closed(5.0)[0] == "eof"
