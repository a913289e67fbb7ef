"""rsp in HTTP mode, black box: keep-alive, the upstream pool, routing, forwarding headers, bodies, upgrades.

Every test runs rsp as a subprocess in front of `HttpBackend`s on loopback. Clients write raw bytes, so the
tests control framing exactly; backends record the exact bytes rsp forwarded and re-parse them strictly
(`backend.errors` holds a `ForwardedRequestError` for anything that is not valid HTTP/1.1).
"""

from __future__ import annotations

import base64
import hashlib
import select
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from support.http_backends import HttpBackend, ReceivedRequest, Reply, describe
from support.http_client import HttpConn, build_request, chunked, get, http_config
from support.payload import digest, payload
from support.rsp_process import RspProcess, free_port
from support.waiting import wait_until

Start = Callable[..., Any]
Run = Callable[..., RspProcess]

MIB = 1024 * 1024
# A proxy that buffered the whole 20 MiB response for a reader that cannot keep up would grow by 20 MiB;
# one that applies backpressure holds a few socket buffers' worth (same bound as the TCP relay test).
LARGE_RESPONSE = 20 * MIB
RSS_GROWTH_BOUND_KIB = 12 * 1024


def start_proxy(run_rsp: Run, backends: list[int], **kwargs: Any) -> RspProcess:
    return run_rsp(http_config(free_port(), backends, **kwargs))


def no_backend_errors(*backends: HttpBackend) -> None:
    for backend in backends:
        assert backend.errors == [], f"{backend.name} saw invalid forwarded HTTP: {backend.errors!r}"


# -- keep-alive and pipelining ------------------------------------------------------------------------

def test_keep_alive_serves_sequential_requests_in_order(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = start_proxy(run_rsp, [backend.port])
    with HttpConn(rsp.port) as conn:
        for i in range(5):
            response = conn.request("GET", f"/k{i}")
            assert response.status == 200, response
            assert response.body.startswith(f"b GET /k{i} ".encode()), response
        # Connection: close on the last request: answered, then rsp closes (RFC 9112 §9.6).
        last = conn.request("GET", "/last", headers=[("Connection", "close")])
        assert last.status == 200 and last.body.startswith(b"b GET /last "), last
        assert conn.wait_closed(5.0)[0] == "eof"
    assert backend.paths() == [f"/k{i}" for i in range(5)] + ["/last"]
    no_backend_errors(backend)


def test_pipelined_requests_are_answered_in_order(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = start_proxy(run_rsp, [backend.port])
    batch = (build_request("GET", "/p0") + build_request("POST", "/p1", body=b"hello")
             + build_request("HEAD", "/p2") + build_request("GET", "/p3"))
    with HttpConn(rsp.port) as conn:
        conn.send(batch)  # one write: rsp sees all four requests in one read
        answers = [conn.read_response(method) for method in ("GET", "POST", "HEAD", "GET")]
    assert [a.status for a in answers] == [200, 200, 200, 200], answers
    assert answers[0].body.startswith(b"b GET /p0 ")
    assert answers[1].body.startswith(b"b POST /p1 ") and answers[1].body.endswith(b"body=5\n")
    # HEAD: the backend's Content-Length of the body it would have sent, and no body.
    assert answers[2].body == b"" and int(answers[2].header("Content-Length") or "0") > 0, answers[2]
    assert answers[3].body.startswith(b"b GET /p3 ")
    assert backend.paths() == ["/p0", "/p1", "/p2", "/p3"]
    assert backend.requests[1].body == b"hello"
    no_backend_errors(backend)


def test_http_1_0_client_gets_its_answer_and_a_close(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = start_proxy(run_rsp, [backend.port])
    with HttpConn(rsp.port) as conn:
        conn.send(b"GET /old HTTP/1.0\r\nHost: example.com\r\n\r\n")
        response = conn.read_response()
        assert response.status == 200 and response.body.startswith(b"b GET /old "), response
        assert conn.wait_closed(5.0)[0] == "eof"


@pytest.mark.slow
def test_idle_client_connection_is_closed_silently_after_keepalive_timeout(start_backend: Start,
                                                                            run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = start_proxy(run_rsp, [backend.port], http={"keepalive_timeout": 1})
    with HttpConn(rsp.port) as conn:
        assert conn.request("GET", "/once").status == 200
        started = time.monotonic()
        how, extra = conn.wait_closed(8.0)
        waited = time.monotonic() - started
    assert how == "eof", f"idle keep-alive connection not closed ({how})"
    assert extra == b"", f"rsp sent bytes on an idle connection instead of closing silently: {extra[:200]!r}"
    # The wiring only (the deadline itself is tests/proxy/test_timeouts.py, on a fake clock): not before the
    # configured second, and well before the 60 s default.
    assert 0.7 <= waited < 8.0, f"closed after {waited:.2f} s with keepalive_timeout = 1"


# -- upstream connection pool --------------------------------------------------------------------------

def test_upstream_connections_are_reused_across_requests_and_clients(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = start_proxy(run_rsp, [backend.port])
    for i in range(20):
        response = get(rsp.port, f"/sep{i}")  # a new client connection each time
        assert response.status == 200, response
    with HttpConn(rsp.port) as conn:
        for i in range(20):
            assert conn.request("GET", f"/same{i}").status == 200
    assert len(backend.requests) == 40
    assert backend.accepted <= 3, f"{backend.accepted} backend connections for 40 sequential requests"
    no_backend_errors(backend)


def test_pooled_connection_closed_by_backend_while_idle_is_replaced(start_backend: Start, run_rsp: Run) -> None:
    """The wiring: whether rsp has read the backend's FIN before the second request (the connection leaves
    the idle pool) or not (the request meets a closed connection and is sent again on a fresh one), the
    client gets its answer from a new connection. Each path has its own deterministic unit test in
    tests/proxy (test_retry.py, test_session.py)."""
    # The backend's own keep-alive timeout is 0.2 s: it closes the pooled connection between the requests.
    backend = start_backend(HttpBackend, name="b", idle_timeout=0.2)
    rsp = start_proxy(run_rsp, [backend.port])
    with HttpConn(rsp.port) as conn:
        assert conn.request("GET", "/first").status == 200
        assert wait_until(lambda: backend.closed_idle >= 1, timeout=5.0)
        response = conn.request("GET", "/second")
    assert response.status == 200, response
    assert response.body.startswith(b"b GET /second conn=1 seq=0"), response
    assert backend.paths() == ["/first", "/second"]
    assert backend.accepted == 2
    no_backend_errors(backend)


def test_get_is_retried_when_a_pooled_connection_closes_without_answering(start_backend: Start,
                                                                           run_rsp: Run) -> None:
    """The race a pool cannot avoid: the backend closes a kept-alive connection just as the next request
    is written on it. RFC 9112 §9.3.1: an idempotent request may be retried on a new connection."""
    default = describe("b")

    def handler(req: ReceivedRequest) -> Reply:
        if req.conn == 0 and req.seq == 1:
            return Reply(raw=b"", close=True)  # read the request, close without a byte of answer
        return default(req)

    backend = start_backend(HttpBackend, handler, name="b")
    rsp = start_proxy(run_rsp, [backend.port])
    with HttpConn(rsp.port) as conn:
        assert conn.request("GET", "/first").status == 200
        response = conn.request("GET", "/second")
    assert response.status == 200, response
    assert response.body.startswith(b"b GET /second conn=1 seq=0"), response
    assert backend.accepted == 2


def test_get_goes_to_another_backend_when_its_connection_dies_before_any_response_byte(
        start_backend: Start, run_rsp: Run) -> None:
    """A fresh backend connection that closes after reading the request, without a byte of answer: an
    idempotent request goes to another backend of the pool (within `retries`), the client sees only 200."""
    dying = start_backend(HttpBackend, lambda req: Reply(raw=b"", close=True), name="dying")
    healthy = start_backend(HttpBackend, name="healthy")
    rsp = start_proxy(run_rsp, [], pools={"default": {
        "backends": [f"127.0.0.1:{dying.port}", f"127.0.0.1:{healthy.port}"], "algorithm": "first",
        "retries": 1}})
    response = get(rsp.port, "/idempotent")
    assert response.status == 200, response
    assert response.body.startswith(b"healthy GET /idempotent "), response
    assert dying.paths() == ["/idempotent"]  # the first backend did get it: this was a retry
    with HttpConn(rsp.port) as conn:
        answer = conn.request("POST", "/once", body=b"x")
    assert answer.status == 502, answer  # never sent twice: a body, and not idempotent
    assert healthy.paths() == ["/idempotent"]


# -- routing -------------------------------------------------------------------------------------------

ROUTE_CASES = [
    # (Host, method, target, backend expected)
    ("api.example.com", "GET", "/v1/users", "api"),
    ("API.Example.COM:8080", "GET", "/v1", "api"),  # host is case-insensitive, the port is not part of it
    ("api.example.com", "POST", "/v1/users", "default"),  # method does not match
    ("api.example.com", "GET", "/v2/users", "default"),  # path prefix does not match
    ("other.example.com", "GET", "/v1/users", "default"),
    ("x.apps.example.com", "GET", "/", "apps"),
    ("a.b.apps.example.com", "DELETE", "/thing", "default"),  # one label only (docs/config.md)
    ("apps.example.com", "GET", "/", "default"),  # the wildcard does not match the apex
    ("xapps.example.com", "GET", "/", "default"),
]


def test_routing_by_host_path_and_method_preserving_host(start_backend: Start, run_rsp: Run) -> None:
    backends = {name: start_backend(HttpBackend, name=name) for name in ("default", "api", "apps")}
    rsp = start_proxy(
        run_rsp, [backends["default"].port],
        pools={"api": {"backends": [f"127.0.0.1:{backends['api'].port}"], "algorithm": "roundrobin"},
               "apps": {"backends": [f"127.0.0.1:{backends['apps'].port}"]}},
        routes=[{"host": "api.example.com", "path": "/v1", "methods": ["GET"], "pool": "api"},
                {"host": "*.apps.example.com", "pool": "apps"}])
    # All on one client connection: every request is routed on its own.
    with HttpConn(rsp.port) as conn:
        for host, method, target, expected in ROUTE_CASES:
            body = b"x" if method == "POST" else b""
            response = conn.request(method, target, host=host, body=body)
            assert response.status == 200, (host, method, target, response)
            assert response.header("X-Backend") == expected, (host, method, target, response)
    for host, method, target, expected in ROUTE_CASES:
        matches = [r for r in backends[expected].requests if r.target == target and r.method == method
                   and r.header("Host") == host]
        assert len(matches) == 1, f"{method} {target} Host: {host} did not reach {expected} with its Host intact"
    no_backend_errors(*backends.values())


# -- forwarding headers --------------------------------------------------------------------------------

def test_trusted_client_x_forwarded_for_is_appended(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = start_proxy(run_rsp, [backend.port], http={"trusted_proxies": ["127.0.0.0/8"]})
    with HttpConn(rsp.port) as conn:
        assert conn.request("GET", "/xff", host="site.example:8080",
                            headers=[("X-Forwarded-For", "203.0.113.7"), ("Via", "1.0 edge")]).status == 200
        assert conn.request("GET", "/plain", host="site.example").status == 200
    first, second = backend.requests
    assert first.header("X-Forwarded-For") == "203.0.113.7, 127.0.0.1", first.head
    assert first.header_all("X-Forwarded-Proto") == ["http"], first.head
    assert first.header_all("X-Forwarded-Host") == ["site.example:8080"], first.head
    assert first.header("Host") == "site.example:8080"
    via = [element.strip() for element in (first.header("Via") or "").split(",")]
    assert via == ["1.0 edge", "1.1 rsp"], first.head
    assert "forwarded" not in first.names, "Forwarded was added although http.forwarded is false"
    assert second.header_all("X-Forwarded-For") == ["127.0.0.1"], second.head
    assert second.header_all("Via") == ["1.1 rsp"], second.head
    no_backend_errors(backend)


def test_untrusted_client_forwarding_headers_are_replaced(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = start_proxy(run_rsp, [backend.port], http={"trusted_proxies": ["10.0.0.0/8"]})
    spoofed = [("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-For", "198.51.100.1"),
               ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "bank.example")]
    assert get(rsp.port, "/spoof", host="site.example", headers=spoofed).status == 200
    (request,) = backend.requests
    assert request.header_all("X-Forwarded-For") == ["127.0.0.1"], request.head
    assert request.header_all("X-Forwarded-Proto") == ["http"], request.head
    assert request.header_all("X-Forwarded-Host") == ["site.example"], request.head
    no_backend_errors(backend)


def test_forwarded_header_when_enabled_and_no_via_when_disabled(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = start_proxy(run_rsp, [backend.port], http={"forwarded": True, "via": False})
    assert get(rsp.port, "/fwd", host="site.example").status == 200
    (request,) = backend.requests
    values = request.header_all("Forwarded")
    assert len(values) == 1, request.head
    params = {}
    for pair in values[0].split(";"):
        key, _, value = pair.strip().partition("=")
        params[key.lower()] = value.strip('"')
    assert params == {"for": "127.0.0.1", "proto": "http", "host": "site.example"}, values
    assert "via" not in request.names, request.head
    no_backend_errors(backend)


# -- hop-by-hop fields ---------------------------------------------------------------------------------

def test_hop_by_hop_request_fields_are_not_forwarded(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = start_proxy(run_rsp, [backend.port])
    hop = [("Connection", "keep-alive, X-Secret"), ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"),
           ("TE", "trailers"), ("Trailer", "X-Checksum"), ("Upgrade", "foo/2"), ("X-Secret", "do-not-forward"),
           ("X-Kept", "end-to-end")]
    with HttpConn(rsp.port) as conn:
        assert conn.request("GET", "/hop", headers=hop).status == 200
        # The connection stays usable: nothing here asked to close it.
        assert conn.request("GET", "/after").status == 200
    request = backend.requests[0]
    for name in ("keep-alive", "proxy-connection", "te", "trailer", "upgrade", "x-secret"):
        assert name not in request.names, f"{name} was forwarded: {request.head!r}"
    options = [t.strip().lower() for t in (request.header("Connection") or "").split(",") if t.strip()]
    assert set(options) <= {"keep-alive", "close"}, f"client's Connection options forwarded: {request.head!r}"
    assert request.header("X-Kept") == "end-to-end"
    no_backend_errors(backend)


def test_hop_by_hop_response_fields_are_not_forwarded(start_backend: Start, run_rsp: Run) -> None:
    def handler(req: ReceivedRequest) -> Reply:
        return Reply(headers=[("Connection", "X-Internal"), ("X-Internal", "backend-only"),
                              ("Keep-Alive", "timeout=5"), ("X-Public", "yes")], body=b"ok\n")

    backend = start_backend(HttpBackend, handler, name="b")
    rsp = start_proxy(run_rsp, [backend.port])
    with HttpConn(rsp.port) as conn:
        response = conn.request("GET", "/resp-hop")
        assert conn.request("GET", "/again").status == 200
    assert response.status == 200 and response.body == b"ok\n", response
    assert response.header("X-Public") == "yes"
    assert "x-internal" not in response.names, response
    assert "keep-alive" not in response.names, response
    assert "x-internal" not in (response.header("Connection") or "").lower(), response


# -- request and response bodies -----------------------------------------------------------------------

def test_content_length_body_of_one_mib_is_forwarded_intact(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = start_proxy(run_rsp, [backend.port])
    body = payload(MIB)
    with HttpConn(rsp.port) as conn:
        response = conn.request("POST", "/upload", body=body)
        assert response.status == 200 and response.body.endswith(f"body={MIB}\n".encode()), response
        assert conn.request("GET", "/next").status == 200
    upload = backend.requests[0]
    assert upload.header_all("Content-Length") == [str(MIB)] or upload.chunked
    assert digest(upload.body) == digest(body)
    no_backend_errors(backend)


def test_chunked_request_body_is_forwarded_as_valid_framing(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = start_proxy(run_rsp, [backend.port])
    pieces = [b"a" * 10, payload(300_000), b"xyz", payload(1)]
    encoded = chunked(pieces, ext=";name=value", trailers=[("X-Checksum", "abc")])
    head = build_request("POST", "/chunked", headers=[("Transfer-Encoding", "chunked")])
    with HttpConn(rsp.port) as conn:
        conn.send(head + encoded)
        response = conn.read_response()
        assert response.status == 200, response
        assert conn.request("GET", "/next").status == 200  # framing ended exactly where it should
    upload = backend.requests[0]
    assert upload.body == b"".join(pieces)
    assert backend.paths() == ["/chunked", "/next"]
    no_backend_errors(backend)


def test_chunked_response_is_relayed(start_backend: Start, run_rsp: Run) -> None:
    body_pieces = [b"first ", payload(100_000), b" last"]

    def handler(req: ReceivedRequest) -> Reply:
        if req.target == "/chunked-response":
            head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n"
            return Reply(raw=head + chunked(body_pieces))
        return describe("b")(req)

    backend = start_backend(HttpBackend, handler, name="b")
    rsp = start_proxy(run_rsp, [backend.port])
    with HttpConn(rsp.port) as conn:
        response = conn.request("GET", "/chunked-response")
        assert response.status == 200
        assert response.body == b"".join(body_pieces)
        assert conn.request("GET", "/next").body.startswith(b"b GET /next ")


def test_expect_100_continue(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = start_proxy(run_rsp, [backend.port])
    body = payload(5000)
    head = build_request("POST", "/expect", headers=[("Expect", "100-continue"), ("Content-Length", "5000")])
    with HttpConn(rsp.port) as conn:
        conn.send(head)
        # A client waits (curl: 1 s) for 100 Continue before sending the body; rsp must make one arrive.
        readable, _, _ = select.select([conn.sock], [], [], 3.0)
        assert readable, "no 100 Continue (nor anything else) within 3 s of an Expect: 100-continue head"
        interim = conn.read_one("POST")
        assert interim.status == 100, interim
        conn.send(body)
        response = conn.read_response("POST")
    assert response.status == 200 and response.body.endswith(b"body=5000\n"), response
    (request,) = backend.requests
    assert request.body == body
    no_backend_errors(backend)


def test_head_204_and_304_leave_the_connection_usable(start_backend: Start, run_rsp: Run) -> None:
    def handler(req: ReceivedRequest) -> Reply:
        if req.target == "/head":
            return Reply(headers=[("Content-Length", "1234")], send_body=False)
        if req.target == "/204":
            return Reply(raw=b"HTTP/1.1 204 No Content\r\nX-Backend: b\r\n\r\n")
        if req.target == "/304":
            # RFC 9110 §8.6: a 304 may carry the Content-Length of the representation it stands for.
            return Reply(raw=b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 50\r\n\r\n')
        return describe("b")(req)

    backend = start_backend(HttpBackend, handler, name="b")
    rsp = start_proxy(run_rsp, [backend.port])
    with HttpConn(rsp.port) as conn:
        head = conn.request("HEAD", "/head")
        assert head.status == 200 and head.header("Content-Length") == "1234", head
        no_content = conn.request("GET", "/204")
        assert no_content.status == 204, no_content
        not_modified = conn.request("GET", "/304", headers=[("If-None-Match", '"v1"')])
        assert not_modified.status == 304 and not_modified.header("ETag") == '"v1"', not_modified
        after = conn.request("GET", "/after")
        assert after.status == 200 and after.body.startswith(b"b GET /after "), after
        # Nothing stray (a body after HEAD/204/304) is left on the connection.
        assert conn.buf == b""
    assert backend.paths() == ["/head", "/204", "/304", "/after"]


@pytest.mark.slow
def test_large_response_streams_to_a_slow_reader_with_bounded_memory(start_backend: Start, run_rsp: Run) -> None:
    def handler(req: ReceivedRequest) -> Reply:
        size = int(req.target.rsplit("/", 1)[1])
        return Reply(headers=[("Content-Type", "application/octet-stream")], body=payload(size))

    backend = start_backend(HttpBackend, handler, name="b")
    rsp = start_proxy(run_rsp, [backend.port])
    # Warm up: the first response pays for lazy imports and buffers; the bound is about per-transfer growth.
    assert digest(get(rsp.port, f"/size/{MIB}").body) == digest(payload(MIB))
    time.sleep(0.2)
    baseline = rsp.rss_kib()
    peak = baseline
    with HttpConn(rsp.port, rcvbuf=32 * 1024, timeout=30.0) as conn:
        conn.send(build_request("GET", f"/size/{LARGE_RESPONSE}"))
        stall_end = time.monotonic() + 1.5  # stall completely: rsp must stop reading from the backend
        while time.monotonic() < stall_end:
            peak = max(peak, rsp.rss_kib())
            time.sleep(0.1)
        received = bytearray()
        deadline = time.monotonic() + 60.0
        reads = 0
        while time.monotonic() < deadline:
            chunk = conn.sock.recv(64 * 1024)
            if not chunk:
                break
            received += chunk
            reads += 1
            if reads % 16 == 0:
                peak = max(peak, rsp.rss_kib())
            if b"\r\n\r\n" in received and len(received) - received.index(b"\r\n\r\n") - 4 >= LARGE_RESPONSE:
                break
            time.sleep(0.002)
        peak = max(peak, rsp.rss_kib())
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    assert len(body) == LARGE_RESPONSE
    assert digest(body) == digest(payload(LARGE_RESPONSE))
    growth = peak - baseline
    assert growth < RSS_GROWTH_BOUND_KIB, (
        f"rsp RSS grew by {growth} KiB (baseline {baseline} KiB, peak {peak} KiB) streaming to a slow reader")


# -- upgrades ------------------------------------------------------------------------------------------

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


def test_websocket_upgrade_becomes_a_tunnel(start_backend: Start, run_rsp: Run) -> None:
    def handler(req: ReceivedRequest) -> Reply:
        key = req.header("Sec-WebSocket-Key") or ""
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        return Reply(101, "Switching Protocols", [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                                  ("Sec-WebSocket-Accept", accept)],
                     content_length=False, tunnel=True)

    backend = start_backend(HttpBackend, handler, name="b")
    rsp = start_proxy(run_rsp, [backend.port])
    key = base64.b64encode(b"0123456789abcdef").decode()
    upgrade = build_request("GET", "/ws", headers=[("Connection", "Upgrade"), ("Upgrade", "websocket"),
                                                   ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")])
    with HttpConn(rsp.port) as conn:
        conn.send(upgrade)
        response = conn.read_response()
        assert response.status == 101, response
        expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        assert response.header("Sec-WebSocket-Accept") == expected
        assert "websocket" in (response.header("Upgrade") or "").lower()
        # Now a byte tunnel: what we send comes back (the backend echoes), both ways, several rounds.
        for size in (1, 100, 200_000):
            data = payload(size)
            conn.send(data)
            assert conn.read_exact(size) == data
        conn.sock.shutdown(socket.SHUT_WR)
        assert conn.wait_closed(5.0) == ("eof", b"")
    (request,) = backend.requests
    assert (request.header("Upgrade") or "").lower() == "websocket", request.head
    assert "upgrade" in (request.header("Connection") or "").lower(), request.head
    assert request.header("Sec-WebSocket-Key") == key
    assert request.header("Sec-WebSocket-Version") == "13"


def test_h2c_upgrade_is_not_passed_to_the_backend(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = start_proxy(run_rsp, [backend.port])
    with HttpConn(rsp.port) as conn:
        response = conn.request("GET", "/h2", headers=[("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
                                                        ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")])
        assert response.status == 200 and response.body.startswith(b"b GET /h2 "), response
        assert conn.request("GET", "/after").status == 200
    request = backend.requests[0]
    assert "upgrade" not in request.names, request.head
    assert "http2-settings" not in request.names, request.head
    assert "upgrade" not in (request.header("Connection") or "").lower(), request.head
    no_backend_errors(backend)


def test_a_bad_request_after_a_forwarded_one_is_answered_after_its_response(
    start_backend: Start, run_rsp: Run
) -> None:
    def slow(req: ReceivedRequest) -> Reply:
        return Reply(body=b"first", delay=0.5)

    backend = start_backend(HttpBackend, slow, name="b")
    rsp = start_proxy(run_rsp, [backend.port])
    with HttpConn(rsp.port) as conn:
        conn.send(build_request("POST", "/order", headers=[("Content-Length", "2")]) + b"ok")
        time.sleep(0.2)  # the POST is at the backend; now a broken request follows on the same connection
        conn.send(b"GET /x HTTP/1.1\r\nHost: h\r\nBad Header: v\r\n\r\n")
        first = conn.read_response("POST")
        assert first.status == 200 and first.body == b"first", first  # the POST's own answer, not the 400
        second = conn.read_response("GET")
        assert second.status == 400, second
        assert conn.wait_closed(3.0)
    assert backend.paths() == ["/order"]
    no_backend_errors(backend)


def test_a_client_that_half_closes_gets_its_response_then_the_close(start_backend: Start, run_rsp: Run) -> None:
    backend = start_backend(HttpBackend, name="b")
    rsp = start_proxy(run_rsp, [backend.port])
    with HttpConn(rsp.port) as conn:
        conn.send(build_request("GET", "/last"))
        conn.sock.shutdown(socket.SHUT_WR)
        response = conn.read_response("GET")
        assert response.status == 200, response
        started = time.monotonic()
        assert conn.wait_closed(3.0)
        assert time.monotonic() - started < 2.5  # closed at once, not after a keep-alive or header timeout
