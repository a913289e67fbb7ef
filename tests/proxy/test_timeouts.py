"""Every timeout of HTTP mode on the fake clock: nothing happens just before the deadline, the timeout's
action happens once it passed (HttpProxy.tick, which the server calls about once a second)."""

from __future__ import annotations

from collections.abc import Callable

from rsp.proxy.http_proxy import MEMO_IDLE_SECONDS
from rsp.proxy.session_api import Http1ClientSide
from support.fake_session import FakeSession

Make = Callable[..., FakeSession]

GET = b"GET /a HTTP/1.1\r\nHost: example\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
# A margin below and above each deadline: the clock is exact, so any positive value tells the sides apart.
EPSILON = 0.01


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_header_timeout_answers_408(make_session: Make) -> None:
    s = make_session(http="header_timeout = 10")
    client = s.client()
    client.send(b"GET /a HTTP/1.1\r\nHost: ex")
    s.advance(10 - EPSILON)
    assert not client.closing
    s.advance(2 * EPSILON)
    assert status_of(client.take()) == 408 and client.lost
    assert not s.connector.attempts


def test_header_timeout_runs_from_the_first_byte_of_a_kept_alive_request(make_session: Make) -> None:
    s = make_session(http="header_timeout = 10, keepalive_timeout = 60")
    client = s.client()
    s.serve(client, GET, OK)
    s.advance(30)  # idle, within keepalive_timeout
    client.send(b"GET /b HTTP/1.1\r\n")
    s.advance(10 - EPSILON)
    assert not client.closing
    s.advance(2 * EPSILON)
    assert status_of(client.take()) == 408


def test_body_timeout_answers_408_and_restarts_with_every_piece(make_session: Make) -> None:
    s = make_session(http="body_timeout = 20")
    client = s.client()
    client.send(b"POST /up HTTP/1.1\r\nHost: example\r\nContent-Length: 10\r\n\r\nabc")
    backend = s.accept()
    s.advance(20 - EPSILON)
    client.send(b"def")  # inactivity: the deadline moves
    s.advance(20 - EPSILON)
    assert not client.closing
    s.advance(2 * EPSILON)
    assert status_of(client.take()) == 408 and client.lost
    assert backend.aborted  # the backend got a partial body: that connection cannot be reused


def test_response_timeout_answers_504(make_session: Make) -> None:
    s = make_session(http="response_timeout = 30")
    client = s.client()
    backend = s.open(client, GET)
    s.advance(30 - EPSILON)
    assert not client.closing
    s.advance(2 * EPSILON)
    assert status_of(client.take()) == 504 and client.lost
    assert backend.aborted


def test_response_timeout_counts_inactivity_once_the_response_began(make_session: Make) -> None:
    s = make_session(http="response_timeout = 30")
    client = s.client()
    backend = s.open(client, GET)
    backend.send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
    s.advance(30 - EPSILON)
    backend.send(b"c")
    s.advance(30 - EPSILON)
    assert not client.closing
    s.advance(2 * EPSILON)
    out = client.take()
    assert out.endswith(b"abc") and out.count(b"HTTP/1.1") == 1  # no status after bytes: a close
    assert client.lost


def test_keepalive_timeout_closes_an_idle_client_without_a_word(make_session: Make) -> None:
    s = make_session(http="keepalive_timeout = 60")
    client = s.client()
    s.serve(client, GET, OK)
    s.advance(60 - EPSILON)
    assert not client.closing
    s.advance(2 * EPSILON)
    assert client.lost and client.take() == b""


def test_idle_pool_expiry_closes_the_backend_connection(make_session: Make) -> None:
    s = make_session(http="pool_idle_timeout = 15, keepalive_timeout = 600")
    client = s.client()
    backend = s.open(client, GET)
    backend.send(OK)
    assert len(s.idle_upstreams()) == 1
    s.advance(15 - EPSILON)
    assert not backend.closing
    s.advance(2 * EPSILON)
    assert backend.lost and not s.idle_upstreams()
    client.send(GET)  # the next request opens a new connection
    assert len(s.connector.pending()) == 1


def test_a_connection_idle_for_a_while_drops_the_memos_of_its_last_request_and_still_serves(make_session: Make) -> None:
    s = make_session(http="keepalive_timeout = 60")
    client = s.client()
    backend, _ = s.serve(client, GET, OK)
    client.send(GET)  # the same head again, from the memos
    forwarded = backend.take()
    assert forwarded.startswith(b"GET /a HTTP/1.1\r\n")
    backend.send(OK)
    client.take()
    conn = next(iter(s.proxy.connections))
    assert isinstance(conn, Http1ClientSide)
    assert conn.forwarded.head is not None  # kept: a keep-alive client repeats its head at once
    s.advance(MEMO_IDLE_SECONDS / 2)
    assert conn.forwarded.head is not None
    s.advance(MEMO_IDLE_SECONDS)
    assert conn.forwarded.head is None and conn.forwarded.data == b""
    assert not client.closing
    # the same head again, parsed in full: forwarded as before
    client.send(GET)
    assert backend.take() == forwarded
    backend.send(OK)
    assert client.take().endswith(b"\r\n\r\nok")


def test_a_busy_connection_keeps_its_memos(make_session: Make) -> None:
    s = make_session(http="keepalive_timeout = 60")
    client = s.client()
    backend, _ = s.serve(client, GET, OK)
    conn = next(iter(s.proxy.connections))
    assert isinstance(conn, Http1ClientSide)
    for _ in range(5):
        s.advance(MEMO_IDLE_SECONDS / 2)
        client.send(GET)
        backend.take()
        backend.send(OK)
        client.take()
    assert conn.forwarded.head is not None
