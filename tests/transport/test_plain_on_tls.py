"""rsp.transport.plain_on_tls without sockets: which first bytes are plain HTTP, and what the guard answers."""

from __future__ import annotations

import pytest

from rsp.transport.plain_on_tls import PLAIN_HTTP_REFUSAL, PlainHttpGuard, looks_like_plain_http


@pytest.mark.parametrize(("first", "plain"), [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
    (b"POST /form HTTP/1.1\r\n", True),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", True),  # an h2c preface is plain too
    (b"GET", False),  # no space yet: not decided, the handshake goes on (and fails)
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", False),  # a ClientHello record (RFC 8446 §5.1)
    (b"", False),
    (b" GET / HTTP/1.1\r\n", False),  # no token before the space
    (b"G\x00T / HTTP/1.1\r\n", False),  # not a token character
    (b"A" * 30 + b" /", False),  # longer than any method
])
def test_which_first_bytes_are_plain_http(first: bytes, plain: bool) -> None:
    assert looks_like_plain_http(first) is plain


def test_http_guard_answers_400_and_counts() -> None:
    guard = PlainHttpGuard("HTTP", PLAIN_HTTP_REFUSAL)
    assert guard.refuse(("127.0.0.1", 5), b"\x16\x03\x01") is None
    assert guard.count == 0
    reply = guard.refuse(("127.0.0.1", 5), b"GET / HTTP/1.1\r\n")
    assert reply is not None
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 400 Bad Request"
    assert b"Connection: close" in lines
    assert f"Content-Length: {len(body)}".encode() in lines
    assert b"The plain HTTP request was sent to HTTPS port" in body
    assert guard.count == 1


def test_tcp_guard_closes_without_an_answer_and_counts() -> None:
    guard = PlainHttpGuard("TCP", b"")
    assert guard.refuse(("127.0.0.1", 5), b"GET / HTTP/1.1\r\n") == b""
    assert guard.count == 1
