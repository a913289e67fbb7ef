"""rsp.transport.plain_on_tls without sockets: which first bytes are plain HTTP, and what the guard answers."""

from __future__ import annotations

import pytest

from rsp.transport.plain_on_tls import (
    DECISION_BYTES,
    MAX_METHOD_LENGTH,
    NOT_PLAIN,
    PLAIN,
    PLAIN_HTTP_REFUSAL,
    UNDECIDED,
    PlainHttpGuard,
    classify_first_bytes,
)


@pytest.mark.parametrize(("first", "verdict"), [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", PLAIN),
    (b"POST /form HTTP/1.1\r\n", PLAIN),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", PLAIN),  # an h2c preface is plain too
    (b"GET", UNDECIDED),  # no space yet: wait for more
    (b"GE", UNDECIDED),
    (b"", UNDECIDED),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", NOT_PLAIN),  # a ClientHello record (RFC 8446 §5.1)
    (b"\x16", NOT_PLAIN),  # decided by its first byte: a TLS client never waits
    (b" GET / HTTP/1.1\r\n", NOT_PLAIN),  # no token before the space
    (b"G\x00T / HTTP/1.1\r\n", NOT_PLAIN),  # not a token character
    (b"G\x00", NOT_PLAIN),  # decided before the space
    (b"A" * 30 + b" /", NOT_PLAIN),  # longer than any method
    (b"A" * MAX_METHOD_LENGTH + b" /", PLAIN),  # the longest method looked at
    (b"A" * (DECISION_BYTES - 1), UNDECIDED),
    (b"A" * DECISION_BYTES, NOT_PLAIN),  # DECISION_BYTES always decide
])
def test_which_first_bytes_are_plain_http(first: bytes, verdict: int) -> None:
    assert classify_first_bytes(first) == verdict


@pytest.mark.parametrize("line", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"M-SEARCH * HTTP/1.1\r\n",
                                  b"A" * MAX_METHOD_LENGTH + b" / HTTP/1.1\r\n"])
def test_a_request_line_split_anywhere_is_undecided_until_its_space_then_plain(line: bytes) -> None:
    space = line.index(b" ")
    for cut in range(space + 1):
        assert classify_first_bytes(line[:cut]) == UNDECIDED, line[:cut]
    for cut in range(space + 1, len(line) + 1):
        assert classify_first_bytes(line[:cut]) == PLAIN, line[:cut]


def test_any_bytes_are_decided_within_decision_bytes() -> None:
    for first in (b"A" * 40, b"GET / HTTP/1.1\r\n" * 3, bytes(range(256)), b"\x16" * 40):
        assert classify_first_bytes(first[:DECISION_BYTES]) != UNDECIDED


def test_http_guard_answers_400_and_counts() -> None:
    guard = PlainHttpGuard("HTTP", PLAIN_HTTP_REFUSAL)
    assert guard.count == 0
    reply = guard.refuse(("127.0.0.1", 5))
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 400 Bad Request"
    assert b"Connection: close" in lines
    assert f"Content-Length: {len(body)}".encode() in lines
    assert b"The plain HTTP request was sent to HTTPS port" in body
    assert guard.count == 1


def test_tcp_guard_closes_without_an_answer_and_counts() -> None:
    guard = PlainHttpGuard("TCP", b"")
    assert guard.refuse(("127.0.0.1", 5)) == b""
    assert guard.count == 1
