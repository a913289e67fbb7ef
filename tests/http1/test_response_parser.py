"""ResponseParser: framing from the request method and status (RFC 9112 §6.3), switching, refusals (502)."""

from __future__ import annotations

import pytest

from rsp.errors import ProtocolError
from rsp.http1.events import (
    CHUNKED,
    END_OF_MESSAGE,
    NO_BODY,
    UNTIL_CLOSE,
    Data,
    EndOfMessage,
    Event,
    Framing,
    ResponseHead,
)
from rsp.http1.parser import ResponseParser


def parse(raw: bytes, *methods: bytes, eof: bool = False) -> list[Event]:
    parser = ResponseParser()
    for method in methods or (b"GET",):
        parser.expect(method)
    events = parser.feed(raw)
    if eof:
        events += parser.feed(b"")
    return events


def heads(events: list[Event]) -> list[ResponseHead]:
    return [event for event in events if isinstance(event, ResponseHead)]


def test_content_length_response() -> None:
    events = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: x \r\n\r\nhi")
    assert events == [
        ResponseHead(200, b"OK", b"1.1", ((b"Content-Length", b"2"), (b"Server", b"x")), True, Framing("length", 2)),
        Data(b"hi"),
        END_OF_MESSAGE,
    ]


def test_chunked_response_with_trailers() -> None:
    events = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n")
    assert heads(events)[0].body is CHUNKED
    assert events[1:] == [Data(b"hi"), EndOfMessage(((b"X-T", b"1"),))]


def test_close_delimited_body_ends_at_eof_and_is_not_keep_alive() -> None:
    parser = ResponseParser()
    parser.expect(b"GET")
    events = parser.feed(b"HTTP/1.1 200 OK\r\n\r\nsome")
    events += parser.feed(b" more")
    assert heads(events)[0].body is UNTIL_CLOSE and not heads(events)[0].keep_alive
    assert events[1:] == [Data(b"some"), Data(b" more")]
    assert parser.pending == 1
    assert parser.feed(b"") == [END_OF_MESSAGE]
    assert parser.pending == 0


@pytest.mark.parametrize(
    ("method", "status_line"),
    [
        (b"HEAD", b"HTTP/1.1 200 OK"),
        (b"GET", b"HTTP/1.1 204 No Content"),
        (b"GET", b"HTTP/1.1 304 Not Modified"),
        (b"CONNECT", b"HTTP/1.1 200 Connection Established"),
    ],
)
def test_responses_without_body_despite_their_fields(method: bytes, status_line: bytes) -> None:
    raw = status_line + b"\r\nContent-Length: 10\r\n\r\n"
    events = parse(raw + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", method, b"GET")
    assert heads(events)[0].body is NO_BODY
    assert events[1] == END_OF_MESSAGE
    if method != b"CONNECT":  # after a 2xx to CONNECT the stream is a tunnel, see below
        assert heads(events)[1].status == 200


def test_interim_responses_precede_the_final_one_for_the_same_request() -> None:
    parser = ResponseParser()
    parser.expect(b"POST")
    events = parser.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s>\r\n\r\n")
    assert [h.status for h in heads(events)] == [100, 103] and parser.pending == 1
    events = parser.feed(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    assert [h.status for h in heads(events)] == [201] and parser.pending == 0


def test_101_pauses_and_hands_over_the_rest() -> None:
    parser = ResponseParser()
    parser.expect(b"GET")
    events = parser.feed(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05"
    )
    assert [type(e) for e in events] == [ResponseHead, EndOfMessage]
    assert parser.paused and parser.pending == 0
    assert parser.feed(b"hello") == []
    assert parser.take_trailing_data() == b"\x81\x05hello"


def test_connect_success_becomes_a_tunnel() -> None:
    parser = ResponseParser()
    parser.expect(b"CONNECT")
    parser.feed(b"HTTP/1.1 200 OK\r\n\r\n")
    assert parser.paused


def test_connect_failure_has_a_body() -> None:
    events = parse(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno", b"CONNECT")
    assert events[1:] == [Data(b"no"), END_OF_MESSAGE]


def test_pipelined_responses_follow_the_expected_methods() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    events = parse(raw, b"HEAD", b"GET")
    assert [type(e).__name__ for e in events] == [
        "ResponseHead",
        "EndOfMessage",
        "ResponseHead",
        "Data",
        "EndOfMessage",
    ]


def test_keep_alive_of_responses() -> None:
    assert heads(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))[0].keep_alive
    assert not heads(parse(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))[0].keep_alive
    assert not heads(parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"))[0].keep_alive
    assert heads(parse(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"))[0].keep_alive


def test_reason_phrase_may_be_empty_or_missing() -> None:
    assert heads(parse(b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"))[0].reason == b""
    assert heads(parse(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"))[0].reason == b""


def test_nothing_after_a_closing_response_is_parsed() -> None:
    parser = ResponseParser()
    parser.expect(b"GET")
    parser.expect(b"GET")
    events = parser.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n\r\n")
    assert [type(e) for e in events] == [ResponseHead, Data, EndOfMessage]


def test_eof_between_responses_is_clean_and_pending_tells_what_was_lost() -> None:
    parser = ResponseParser()
    parser.expect(b"GET")
    assert parser.feed(b"") == []
    assert parser.pending == 1


@pytest.mark.parametrize(
    "raw", [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc", b"HTTP/1.1 200 OK\r\nContent-", b"HTTP/1.1 200 OK\r\n"]
)
def test_eof_inside_a_response_is_an_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        parse(raw, eof=True)
    assert info.value.status == 502


R = b"HTTP/1.1 200 OK\r\n"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (R + b"Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "both Transfer-Encoding and Content-Length"),
        (R + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\n", "multiple Content-Length"),
        (R + b"Content-Length: 1x\r\n\r\n", "invalid Content-Length"),
        (R + b"Transfer-Encoding: gzip\r\n\r\n", "unsupported transfer coding"),
        (R + b"Transfer-Encoding: chunked, gzip\r\n\r\n", "not the final"),
        (b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0 response"),
        (R + b"X: a\x00\r\n\r\n", "invalid byte"),
        (R + b"X : a\r\n\r\n", "whitespace between field name and colon"),
        (R + b"X: a\r\n b\r\n\r\n", "obs-fold"),
        (R + b"Transfer_Encoding: chunked\r\n\r\n", "imitates transfer-encoding"),
        (R + b"Connection: content-length\r\n\r\n", "Connection names content-length"),
        (b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", "bare LF"),
        (b"HTTP/2.0 200 OK\r\n\r\n", "unsupported HTTP version"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "invalid status line"),
        (b"HTTP/1.1 600 Weird\r\n\r\n", "invalid status line"),
        (b"HTTP/1.1  200 OK\r\n\r\n", "invalid status line"),
        (b"HTTP/1.1 200 O\x00K\r\n\r\n", "invalid status line"),
        (b"RTSP/1.0 200 OK\r\n\r\n", "invalid status line"),
        (R + b"Transfer-Encoding: chunked\r\n\r\nZ\r\n", "invalid chunk size"),
        (R + b"Transfer-Encoding: chunked\r\n\r\n0\r\nTransfer-Encoding: x\r\n\r\n", "not allowed in trailers"),
    ],
)
def test_refused_with_502(raw: bytes, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse(raw)
    assert info.value.status == 502 and message in str(info.value), str(info.value)


def test_a_response_nobody_asked_for_is_not_parsed_and_counted() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") == []
    assert parser.unsolicited == len(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert not parser.idle
    assert parser.feed(b"HTTP/1.1 200 OK\r\n\r\n") == []  # parsing stopped for good


def test_a_head_response_with_a_body_keeps_the_response_and_counts_the_stray_bytes() -> None:
    """A backend bug: the body of a GET sent after a HEAD response (RFC 9112 §6.3 rule 1)."""
    parser = ResponseParser()
    parser.expect(b"HEAD")
    events = parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    assert [type(e).__name__ for e in events] == ["ResponseHead", "EndOfMessage"]
    head = events[0]
    assert isinstance(head, ResponseHead) and head.status == 200 and head.body.kind == "none"
    assert parser.unsolicited == 5 and parser.pending == 0 and not parser.idle


def test_a_sound_stream_has_no_unsolicited_bytes() -> None:
    parser = ResponseParser()
    parser.expect(b"HEAD")
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    assert parser.unsolicited == 0 and parser.idle
