"""When a request is sent again: a stale pooled connection (once, fresh, same backend), and a backend
connection that dies before any response byte (another backend, within the pool's `retries`); only
idempotent requests without a body (RFC 9110 §9.2.2)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from support.fake_session import FakeSession, FakeTransport

Make = Callable[..., FakeSession]

GET = b"GET /a HTTP/1.1\r\nHost: example\r\n\r\n"
POST = b"POST /a HTTP/1.1\r\nHost: example\r\nContent-Length: 2\r\n\r\nhi"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def served_once(s: FakeSession, client: FakeTransport) -> FakeTransport:
    """One GET answered: its backend connection is then idle in the pool."""
    backend = s.open(client, GET)
    backend.send(OK)
    assert client.take().endswith(b"ok")
    return backend


def test_a_stale_pooled_connection_is_retried_on_a_fresh_one(make_session: Make) -> None:
    s = make_session(backends=2, pool='algorithm = "first"')
    client = s.client()
    stale = served_once(s, client)
    client.send(GET)
    assert stale.take().startswith(b"GET /a ")
    stale.send_eof()  # the backend had closed its idle connection
    [attempt] = s.connector.pending()
    assert attempt.record.index == 0  # the same backend, on a new connection
    fresh = s.accept()
    assert fresh.take().startswith(b"GET /a ")
    fresh.send(OK)
    assert status_of(client.take()) == 200
    assert s.records[0].failures == 0  # routine, not a failure of the backend


def test_a_connection_reset_before_any_response_byte_goes_to_another_backend(make_session: Make) -> None:
    s = make_session(backends=2, pool='algorithm = "first", retries = 1, passive_failures = 0')
    client = s.client()
    client.send(GET)
    first = s.accept()
    assert first.take().startswith(b"GET /a ")
    first.reset()
    [attempt] = s.connector.pending()
    assert attempt.record.index == 1
    second = s.accept()
    assert second.take().startswith(b"GET /a ")
    second.send(OK)
    assert status_of(client.take()) == 200
    assert s.records[0].failures == 1  # passive health heard of it
    assert [r.active for r in s.records] == [0, 0]


def test_a_stale_connection_whose_fresh_retry_dies_goes_to_another_backend(make_session: Make) -> None:
    s = make_session(backends=2, pool='algorithm = "first", retries = 1, passive_failures = 0')
    client = s.client()
    stale = served_once(s, client)
    client.send(GET)
    stale.send_eof()
    fresh = s.accept()
    fresh.send_eof()  # EOF before any byte on a fresh connection
    other = s.accept()
    assert s.connector.attempts[-1].record.index == 1
    assert other.take().startswith(b"GET /a ")
    other.send(OK)
    assert status_of(client.take()) == 200
    assert [r.failures for r in s.records] == [1, 0]


def test_retries_are_bounded_by_the_pool(make_session: Make) -> None:
    s = make_session(backends=3, pool='retries = 1, passive_failures = 0')
    client = s.client()
    client.send(GET)
    s.accept().reset()
    s.accept().reset()
    assert not s.connector.pending()  # two attempts: the first and one retry
    assert status_of(client.take()) == 502


@pytest.mark.parametrize("request_bytes", [POST, b"PATCH /a HTTP/1.1\r\nHost: example\r\n\r\n"],
                         ids=["with a body", "not idempotent"])
def test_a_request_is_not_sent_twice(make_session: Make, request_bytes: bytes) -> None:
    s = make_session(backends=2, pool="retries = 3")
    client = s.client()
    client.send(request_bytes)
    s.accept().reset()
    assert not s.connector.pending()
    assert status_of(client.take()) == 502


def test_no_retry_once_the_backend_answered(make_session: Make) -> None:
    s = make_session(backends=2, pool="retries = 3")
    client = s.client()
    backend = s.open(client, GET)
    backend.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    backend.reset()
    assert not s.connector.pending()
    assert status_of(client.take().split(b"\r\n\r\n", 1)[1]) == 502


def test_a_protocol_error_is_not_retried(make_session: Make) -> None:
    s = make_session(backends=2, pool="retries = 3")
    client = s.client()
    client.send(GET)
    s.accept().send(b"NOT HTTP\r\n\r\n")
    assert not s.connector.pending()
    assert status_of(client.take()) == 502
