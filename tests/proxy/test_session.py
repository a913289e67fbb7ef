"""The client protocol and the exchange on fakes: pipelining, keep-alive, drain, protocol switching and the
statuses rsp answers for a backend's failure."""

from __future__ import annotations

from collections.abc import Callable

from support.fake_session import FakeSession

Make = Callable[..., FakeSession]

GET_A = b"GET /a HTTP/1.1\r\nHost: example\r\n\r\n"
GET_B = b"GET /b HTTP/1.1\r\nHost: example\r\n\r\n"
OK_A = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"
OK_B = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nB"


def request_line(forwarded: bytes) -> bytes:
    return forwarded.split(b"\r\n", 1)[0]


def test_pipelined_requests_are_answered_in_order_and_reading_pauses_meanwhile(make_session: Make) -> None:
    s = make_session()
    client = s.client()
    client.send(GET_A + GET_B)
    backend = s.accept()
    assert request_line(backend.take()) == b"GET /a HTTP/1.1"  # only the first: one exchange at a time
    assert not client.reading  # the second request waits parsed, and the client is not read meanwhile
    backend.send(OK_A)
    assert client.take() == b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nVia: 1.1 rsp\r\n\r\nA"
    forwarded = backend.take()
    assert request_line(forwarded) == b"GET /b HTTP/1.1"  # on the same (pooled) backend connection
    assert client.reading
    backend.send(OK_B)
    assert client.take().endswith(b"\r\n\r\nB")
    assert len(s.connector.attempts) == 1


def test_responses_reach_the_client_in_request_order(make_session: Make) -> None:
    s = make_session()
    client = s.client()
    client.send(GET_A + GET_B)
    backend = s.accept()
    backend.take()
    backend.send(OK_A)
    backend.send(OK_B)
    received = client.take()
    assert received.index(b"\r\n\r\nA") < received.index(b"\r\n\r\nB")
    assert received.count(b"HTTP/1.1 200 OK\r\n") == 2


def test_keep_alive_reuses_the_client_and_the_backend_connection(make_session: Make) -> None:
    s = make_session()
    client = s.client()
    backend = s.open(client, GET_A)
    backend.send(OK_A)
    client.take()
    for request, response, body in ((GET_B, OK_B, b"B"), (GET_A, OK_A, b"A")):
        client.send(request)
        assert request_line(backend.take()) == request_line(request)
        backend.send(response)
        out = client.take()
        assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(body)
        assert b"Connection: close" not in out
        assert not client.closing
    assert len(s.connector.attempts) == 1
    assert len(s.idle_upstreams()) == 1


def test_an_http10_client_without_keep_alive_is_closed_after_its_response(make_session: Make) -> None:
    s = make_session()
    client = s.client()
    client.send(b"GET /a HTTP/1.0\r\n\r\n")
    backend = s.accept()
    assert b"Host: \r\n" in backend.take()  # Host is mandatory in what rsp sends (RFC 9112 §3.2)
    backend.send(OK_A)
    assert b"Connection: close\r\n" in client.take()
    assert client.lost
    assert len(s.idle_upstreams()) == 1  # the backend connection itself stays reusable


def test_drain_closes_idle_clients_now_and_busy_ones_after_their_response(make_session: Make) -> None:
    s = make_session()
    idle = s.client(port=40001)
    idle.send(GET_A)
    backend = s.accept()
    backend.send(OK_A)
    idle.take()
    busy = s.client(port=40002)
    busy.send(GET_B)
    backend.take()
    s.drain()
    assert idle.lost and idle.take() == b""
    assert not busy.closing
    backend.send(OK_B)
    out = busy.take()
    assert out.endswith(b"B") and b"Connection: close\r\n" in out
    assert busy.lost


def test_a_reload_keeps_a_client_told_keep_alive_before_it_began_and_answers_its_next_request_with_close(
        make_session: Make) -> None:
    # The head said keep-alive, then the drain began while the body was on its way: closing at the end of
    # the body would race with the request the client sends next (RFC 9112 §9.6).
    s = make_session()
    client = s.client()
    backend = s.open(client, GET_A)
    backend.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nA")
    s.drain(linger=1.0)
    backend.send(b"A")
    out = client.take()
    assert out.endswith(b"AA") and b"Connection: close" not in out
    assert not client.closing
    client.send(GET_B)
    assert request_line(backend.take()) == request_line(GET_B)
    backend.send(OK_B)
    out = client.take()
    assert out.endswith(b"B") and b"Connection: close\r\n" in out
    assert client.lost


def test_a_reload_closes_a_client_told_keep_alive_once_its_linger_passes(make_session: Make) -> None:
    s = make_session()
    client = s.client()
    backend = s.open(client, GET_A)
    backend.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nA")
    s.drain(linger=1.0)
    backend.send(b"A")
    client.take()
    s.clock.advance(0.5)
    s.proxy.tick()
    s.turns.run()
    assert not client.closing
    s.clock.advance(0.6)
    s.proxy.tick()
    s.turns.run()
    assert client.lost and client.take() == b""


def test_a_shutdown_closes_a_client_told_keep_alive_at_the_end_of_its_response(make_session: Make) -> None:
    s = make_session()
    client = s.client()
    backend = s.open(client, GET_A)
    backend.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nA")
    s.drain()
    backend.send(b"A")
    assert client.take().endswith(b"AA")
    assert client.lost


def test_websocket_switch_then_bytes_both_ways(make_session: Make) -> None:
    s = make_session()
    client = s.client()
    client.send(b"GET /ws HTTP/1.1\r\nHost: example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    backend = s.accept()
    forwarded = backend.take()
    assert b"Upgrade: websocket\r\nConnection: upgrade\r\n" in forwarded
    backend.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x02hi")
    out = client.take()
    assert out.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Upgrade: websocket\r\nConnection: upgrade\r\n" in out
    assert out.endswith(b"\r\n\r\n\x81\x02hi")  # bytes after the 101 in the same read
    client.send(b"\x81\x85client")
    assert backend.take() == b"\x81\x85client"
    backend.send(b"\x81\x03bye")
    assert client.take() == b"\x81\x03bye"
    backend.send_eof()
    assert client.eof_sent  # the half-close goes through
    client.send(b"last")
    assert backend.take() == b"last"


def test_a_declined_upgrade_is_an_ordinary_response(make_session: Make) -> None:
    s = make_session()
    client = s.client()
    client.send(b"GET /ws HTTP/1.1\r\nHost: example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    backend = s.accept()
    backend.take()
    backend.send(OK_A)
    assert client.take().endswith(b"A")
    client.send(GET_B)
    assert request_line(backend.take()) == b"GET /b HTTP/1.1"


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_502_when_every_connect_fails(make_session: Make) -> None:
    s = make_session(backends=2, pool="retries = 1")
    client = s.client()
    client.send(GET_A)
    first = s.fail("connection refused")
    second = s.fail("connection refused")
    assert {first.record.index, second.record.index} == {0, 1}  # the retry went to the other backend
    out = client.take()
    assert status_of(out) == 502 and client.lost
    assert not s.connector.pending()


def test_504_when_the_connect_times_out(make_session: Make) -> None:
    s = make_session(pool="retries = 0")
    client = s.client()
    client.send(GET_A)
    s.fail("connect timeout")
    assert status_of(client.take()) == 504


def test_503_when_no_backend_is_available(make_session: Make) -> None:
    s = make_session(backends=2)
    pool = s.pools["default"]
    for record in s.records:
        pool.set_draining(record, True)
    client = s.client()
    client.send(GET_A)
    assert status_of(client.take()) == 503
    assert not s.connector.attempts


def test_502_when_the_backend_breaks_framing(make_session: Make) -> None:
    s = make_session()
    client = s.client()
    backend = s.open(client, GET_A)
    backend.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    assert status_of(client.take()) == 502
    assert backend.aborted  # never back to the pool
    assert not s.idle_upstreams()


def test_a_backend_that_dies_mid_response_closes_the_client(make_session: Make) -> None:
    s = make_session()
    client = s.client()
    backend = s.open(client, GET_A)
    backend.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    backend.reset()
    out = client.take()
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"abc")  # no second status line
    assert client.lost


def test_a_refused_request_reaches_no_backend(make_session: Make) -> None:
    s = make_session()
    client = s.client()
    client.send(b"GET /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n")
    assert status_of(client.take()) == 400
    assert client.lost and not s.connector.attempts


def test_a_body_after_a_head_response_is_dropped_with_its_connection(make_session: Make) -> None:
    """A backend that answers HEAD with a body (a backend bug): the client gets the complete response and
    keeps its connection; the backend connection, whose framing is lost, is closed, never pooled."""
    s = make_session()
    client = s.client()
    backend = s.open(client, b"HEAD /a HTTP/1.1\r\nHost: example\r\n\r\n")
    backend.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    out = client.take()
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\n")  # no body, no 502
    assert b"Content-Length: 5\r\n" in out
    assert backend.lost and not s.idle_upstreams()
    assert not client.closing
    fresh = s.open(client, GET_A)  # the next request gets a new backend connection
    fresh.send(OK_A)
    assert client.take().endswith(b"A")
