"""RequestParser: events for valid requests, and a refusal (with its status) for every strictness rule."""

from __future__ import annotations

import pytest

from rsp.errors import ProtocolError
from rsp.http1.events import CHUNKED, END_OF_MESSAGE, NO_BODY, Data, EndOfMessage, Event, Framing, RequestHead
from rsp.http1.limits import MAX_HEADER_COUNT, MAX_HEADER_SECTION, MAX_REQUEST_LINE
from rsp.http1.parser import RequestParser


def parse(raw: bytes, *, eof: bool = False) -> list[Event]:
    parser = RequestParser()
    events = parser.feed(raw)
    if eof:
        events += parser.feed(b"")
    return events


def refused(raw: bytes, *, eof: bool = False) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse(raw, eof=eof)
    return info.value


def head_of(raw: bytes) -> RequestHead:
    event = parse(raw)[0]
    assert isinstance(event, RequestHead)
    return event


# -- valid requests -----------------------------------------------------------------------------------


def test_small_get_is_a_head_and_an_end() -> None:
    raw = b"GET /index.html?a=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n"
    assert parse(raw) == [
        RequestHead(
            method=b"GET",
            target=b"/index.html?a=1",
            version=b"1.1",
            headers=((b"Host", b"example.com:8080"), (b"User-Agent", b"t"), (b"Accept", b"*/*")),
            keep_alive=True,
            body=NO_BODY,
            upgrade=None,
            expect_continue=False,
            host=b"example.com:8080",
            connection=(),
        ),
        END_OF_MESSAGE,
    ]


def test_field_values_lose_surrounding_whitespace_and_names_keep_their_case() -> None:
    head = head_of(b"GET / HTTP/1.1\r\nhOsT:a\r\nX-A: \t one  two \t \r\nX-Empty:\r\nX-Obs: caf\xe9\r\n\r\n")
    assert head.headers == ((b"hOsT", b"a"), (b"X-A", b"one  two"), (b"X-Empty", b""), (b"X-Obs", b"caf\xe9"))


def test_content_length_body_is_data_then_end() -> None:
    events = parse(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    assert events[0].body == Framing("length", 5)  # type: ignore[union-attr]
    assert events[1:] == [Data(b"hello"), END_OF_MESSAGE]


def test_content_length_zero_is_no_body() -> None:
    assert head_of(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 000\r\n\r\n").body is NO_BODY


def test_chunked_body_is_decoded_with_extensions_and_trailers() -> None:
    raw = (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"
        b'5;name=value;flag\r\nhello\r\nA;q="x \\"y\\""\r\n0123456789\r\n000\r\nX-Sum: 1 \r\nX-More: 2\r\n\r\n'
    )
    events = parse(raw)
    assert events[0].body is CHUNKED  # type: ignore[union-attr]
    assert events[1:] == [
        Data(b"hello"),
        Data(b"0123456789"),
        EndOfMessage(((b"X-Sum", b"1"), (b"X-More", b"2"))),
    ]


def test_pipelined_requests_come_out_in_order() -> None:
    raw = (
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
        b"\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n"  # an empty line before a request line is ignored
    )
    events = parse(raw)
    assert [e.target for e in events if isinstance(e, RequestHead)] == [b"/1", b"/2", b"/3"]
    assert [type(e).__name__ for e in events] == [
        "RequestHead",
        "EndOfMessage",
        "RequestHead",
        "Data",
        "EndOfMessage",
        "RequestHead",
        "EndOfMessage",
    ]


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        (b"1.1", b"", True),
        (b"1.1", b"Connection: close\r\n", False),
        (b"1.1", b"Connection: Keep-Alive, CLOSE\r\n", False),
        (b"1.0", b"", False),
        (b"1.0", b"Connection: keep-alive\r\n", True),
        (b"1.0", b"Connection: keep-alive\r\nConnection: close\r\n", False),
    ],
)
def test_keep_alive_follows_rfc9112_section_9_3(version: bytes, connection: bytes, keep_alive: bool) -> None:
    head = head_of(b"GET / HTTP/" + version + b"\r\nHost: a\r\n" + connection + b"\r\n")
    assert head.keep_alive is keep_alive


def test_connection_options_are_lower_cased_and_listed() -> None:
    head = head_of(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, X-Hop\r\nConnection: ,TE,\r\n\r\n")
    assert head.connection == (b"keep-alive", b"x-hop", b"te")


def test_http10_without_host_is_accepted() -> None:
    head = head_of(b"GET / HTTP/1.0\r\n\r\n")
    assert (head.version, head.host) == (b"1.0", b"")


def test_absolute_form_authority_wins_over_host() -> None:
    head = head_of(b"GET http://Example.com:81/p?q HTTP/1.1\r\nHost: other\r\n\r\n")
    assert (head.target, head.host) == (b"http://Example.com:81/p?q", b"Example.com:81")


def test_connect_takes_authority_form_and_pauses() -> None:
    parser = RequestParser()
    events = parser.feed(b"CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n\x16\x03\x01")
    assert [type(e) for e in events] == [RequestHead, EndOfMessage]
    assert events[0].host == b"db.internal:5432"  # type: ignore[union-attr]
    assert parser.paused
    assert parser.feed(b"more") == []
    assert parser.take_trailing_data() == b"\x16\x03\x01more"
    assert parser.feed(b"GET / HTTP/1.1\r\n\r\n") == []  # the stream is a tunnel now


def test_options_asterisk() -> None:
    assert head_of(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").target == b"*"


def test_any_token_is_a_method() -> None:
    assert head_of(b"M-SEARCH_2! /x HTTP/1.1\r\nHost: a\r\n\r\n").method == b"M-SEARCH_2!"


def test_expect_100_continue_is_flagged_for_http11_only() -> None:
    assert head_of(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n").expect_continue
    assert not head_of(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n").expect_continue


def test_websocket_upgrade_pauses_after_the_request_and_resume_continues() -> None:
    parser = RequestParser()
    raw = b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n"
    events = parser.feed(raw + b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
    assert events[0].upgrade == b"websocket"  # type: ignore[union-attr]
    assert len(events) == 2 and parser.paused
    # The backend refused the upgrade: the bytes that waited are HTTP after all.
    resumed = parser.resume()
    assert [e.target for e in resumed if isinstance(e, RequestHead)] == [b"/next"]
    assert not parser.paused


@pytest.mark.parametrize(
    "fields",
    [
        b"Upgrade: websocket\r\n",  # no Connection: upgrade
        b"Connection: upgrade\r\nUpgrade: h2c\r\n",  # h2c is never tunnelled ("h2c smuggling")
        b"Connection: upgrade\r\nUpgrade: websocket, H2C\r\n",
    ],
)
def test_upgrade_is_not_offered(fields: bytes) -> None:
    assert head_of(b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n").upgrade is None


def test_upgrade_from_http10_is_ignored() -> None:
    assert head_of(b"GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n").upgrade is None


def test_everything_after_a_closing_request_is_ignored() -> None:
    parser = RequestParser()
    events = parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /evil HTTP/1.1\r\n\r\n")
    assert [type(e) for e in events] == [RequestHead, EndOfMessage]
    assert parser.feed(b"more garbage \x00") == []
    assert parser.feed(b"") == []


def test_idle_is_true_only_between_messages() -> None:
    parser = RequestParser()
    assert parser.idle
    parser.feed(b"GET / HTTP/1.1\r\n")
    assert not parser.idle
    parser.feed(b"Host: a\r\n\r\n")
    assert parser.idle
    parser.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nx")
    assert not parser.idle


def test_a_body_read_in_pieces_comes_out_as_the_same_bytes() -> None:
    parser = RequestParser()
    events = parser.feed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1")
    for piece in (b"0\r\n", b"0123456789ab", b"cdef\r", b"\n0", b"\r\n", b"\r", b"\n"):
        events += parser.feed(piece)
    body = b"".join(e.data for e in events if isinstance(e, Data))
    assert body == b"0123456789abcdef" and events[-1] == END_OF_MESSAGE


def test_a_whole_read_of_body_is_passed_on_without_a_copy() -> None:
    parser = RequestParser()
    parser.feed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n")
    piece = bytes(range(256)) * 100
    [event] = parser.feed(piece)
    assert isinstance(event, Data) and event.data is piece


# -- end of stream ------------------------------------------------------------------------------------


def test_eof_between_requests_is_clean() -> None:
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\r\n")
    assert parser.feed(b"") == []
    assert parser.feed(b"GET / HTTP/1.1\r\n") == []  # nothing is parsed after the end


@pytest.mark.parametrize(
    "raw",
    [b"GET / HTTP/1.1\r\nHost:", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nab", b"G"],
)
def test_eof_inside_a_request_is_an_error(raw: bytes) -> None:
    assert refused(raw, eof=True).status == 400


# -- strictness: every refusal and its status -----------------------------------------------------------

H = b"POST / HTTP/1.1\r\nHost: a\r\n"
REFUSALS = [
    # framing (RFC 9112 §6.1, §6.3)
    (H + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400, "both Transfer-Encoding and Content-Length"),
    (H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "both Transfer-Encoding and Content-Length"),
    (H + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\n", 400, "multiple Content-Length"),
    (H + b"Content-Length: 3, 3\r\n\r\n", 400, "invalid Content-Length"),
    (H + b"Content-Length: +3\r\n\r\n", 400, "invalid Content-Length"),
    (H + b"Content-Length: 0x10\r\n\r\n", 400, "invalid Content-Length"),
    (H + b"Content-Length: -1\r\n\r\n", 400, "invalid Content-Length"),
    (H + b"Content-Length: \r\n\r\n", 400, "invalid Content-Length"),
    (H + b"Content-Length: 1 0\r\n\r\n", 400, "invalid Content-Length"),
    (H + b"Content-Length: 1234567890123456789\r\n\r\n", 400, "Content-Length too large"),
    (H + b"Transfer-Encoding: gzip\r\n\r\n", 501, "unsupported transfer coding"),
    (H + b"Transfer-Encoding: gzip, chunked\r\n\r\n", 501, "unsupported transfer coding"),
    (H + b"Transfer-Encoding: identity\r\n\r\n", 501, "unsupported transfer coding"),
    (H + b"Transfer-Encoding: chunked;x=1\r\n\r\n", 501, "unsupported transfer coding"),
    (H + b"Transfer-Encoding: chunked, gzip\r\n\r\n", 400, "not the final"),
    (H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "not the final"),
    (H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "more than once"),
    (H + b"Transfer-Encoding: chunked, chunked\r\n\r\n", 400, "more than once"),
    (H + b"Transfer-Encoding: ,chunked\r\n\r\n", 400, "empty Transfer-Encoding element"),
    (H + b"Transfer-Encoding: \r\n\r\n", 400, "empty Transfer-Encoding element"),
    (H + b"Transfer-Encoding: \xa0chunked\r\n\r\n", 400, "malformed Transfer-Encoding"),
    (H + b"Transfer-Encoding: chunked;x\r\n\r\n", 400, "malformed Transfer-Encoding"),
    (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0 request"),
    (b"CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\nContent-Length: 1\r\n\r\n", 400, "CONNECT request has no content"),
    # field lines (RFC 9112 §5, RFC 9110 §5.5)
    (H + b"X-A: a\x00b\r\n\r\n", 400, "invalid byte in field value"),
    (H + b"X-A: a\x01\r\n\r\n", 400, "invalid byte in field value"),
    (H + b"X-A: a\x7fb\r\n\r\n", 400, "invalid byte in field value"),
    (H + b"X-A: a\rb\r\n\r\n", 400, "bare CR"),
    (H + b"X-A: a\nb: c\r\n\r\n", 400, "bare LF"),
    (H + b"X-A : a\r\n\r\n", 400, "whitespace between field name and colon"),
    (H + b"X-A\t: a\r\n\r\n", 400, "whitespace between field name and colon"),
    (H + b"X-A: a\r\n b\r\n\r\n", 400, "obs-fold"),
    (H + b"X-A: a\r\n\tb\r\n\r\n", 400, "obs-fold"),
    (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, "obs-fold"),
    (H + b": a\r\n\r\n", 400, "empty field name"),
    (H + b"X-A a\r\n\r\n", 400, "without colon"),
    (H + b"X(A): a\r\n\r\n", 400, "invalid field name"),
    (H + b"\xefoo: a\r\n\r\n", 400, "invalid field name"),
    (H + b"X\x00A: a\r\n\r\n", 400, "invalid field name"),
    (H + b"Transfer_Encoding: chunked\r\n\r\n", 400, "imitates transfer-encoding"),
    (H + b"content_length: 5\r\n\r\n", 400, "imitates content-length"),
    (H + b"X_Forwarded-For: 1.2.3.4\r\n\r\n", 400, "imitates x-forwarded-for"),
    (H + b"x_forwarded_proto: https\r\n\r\n", 400, "imitates x-forwarded-proto"),
    (b"GET / HTTP/1.1\nHost: a\n\n", 400, "bare LF"),
    (b"GET / HTTP/1.1\r\nHost: a\n\r\n", 400, "bare LF"),
    (b"GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "bare LF"),
    (b"GET / HTTP/1.1\r\nHost: a\r\n\rZGET /evil HTTP/1.1\r\n\r\n", 400, "bare CR"),
    # Connection (RFC 9110 §7.6.1)
    (H + b"Connection: close, Content-Length\r\nContent-Length: 1\r\n\r\n", 400, "Connection names content-length"),
    (H + b"Connection: Transfer-Encoding\r\n\r\n", 400, "Connection names transfer-encoding"),
    (H + b"Connection: host\r\n\r\n", 400, "Connection names host"),
    (H + b"Connection: a b\r\n\r\n", 400, "invalid Connection option"),
    # Host (RFC 9112 §3.2)
    (b"GET / HTTP/1.1\r\n\r\n", 400, "without Host"),
    (b"GET / HTTP/1.1\r\nX: y\r\n\r\n", 400, "without Host"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, "more than one Host"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400, "more than one Host"),
    (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "invalid Host"),
    (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "invalid Host"),
    (b"GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400, "invalid Host"),
    (b"GET / HTTP/1.1\r\nHost: \xffa\xff\r\n\r\n", 400, "invalid Host"),
    # request line and target (RFC 9112 §3)
    (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid request line"),
    (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "invalid request line"),
    (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid request line"),
    (b"GET /\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid method or request-target"),
    (b"GET /\nHTTP/1.1\r\nHost: a\r\n\r\n", 400, "bare CR or LF in request line"),
    (b"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid method or request-target"),
    (b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid method or request-target"),
    (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid method or request-target"),
    (b'G=":<>(e),[T];?" /get HTTP/1.1\r\nHost: a\r\n\r\n', 400, "invalid method or request-target"),
    (b"\x00 / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid method or request-target"),
    (b"GET ! HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid request-target"),
    (b"GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid request-target"),
    (b"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "other than http(s)"),
    (b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid authority"),
    (b"GET http://:80/x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid authority"),
    (b"GET http://u:p@a/x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "userinfo"),
    (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "asterisk-form is only for OPTIONS"),
    (b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "CONNECT needs an authority-form"),
    (b"CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid authority-form"),
    (b"CONNECT http://a:1/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid authority-form"),
    # version (RFC 9112 §2.3, RFC 9110 §15.6.6)
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "version not supported"),
    (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, "version not supported"),
    (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505, "version not supported"),
    (b"GET / HTTP/1.32\r\nHost: a\r\n\r\n", 400, "invalid request line"),
    (b"GET / http/1.1\r\nHost: a\r\n\r\n", 400, "invalid request line"),
    (b"GET / HTTP/1\r\nHost: a\r\n\r\n", 400, "invalid request line"),
    (b"GET /\r\n\r\n", 400, "invalid request line"),
    (b"GET / HTTP/\r\r1.1\r\n\r\n", 400, "bare CR"),
    # chunked bodies (RFC 9112 §7.1)
    (H + b"Transfer-Encoding: chunked\r\n\r\n0_2e\r\n\r\n", 400, "invalid chunk size"),
    (H + b"Transfer-Encoding: chunked\r\n\r\n0x1\r\nA\r\n0\r\n\r\n", 400, "invalid chunk size"),
    (H + b"Transfer-Encoding: chunked\r\n\r\n-0\r\n\r\n", 400, "invalid chunk size"),
    (H + b"Transfer-Encoding: chunked\r\n\r\n+1\r\nA\r\n0\r\n\r\n", 400, "invalid chunk size"),
    (H + b"Transfer-Encoding: chunked\r\n\r\n 1\r\nA\r\n0\r\n\r\n", 400, "invalid chunk size"),
    (H + b"Transfer-Encoding: chunked\r\n\r\n1 \r\nA\r\n0\r\n\r\n", 400, "invalid chunk size"),
    (H + b"Transfer-Encoding: chunked\r\n\r\n1 ;a\r\nA\r\n0\r\n\r\n", 400, "invalid chunk size"),
    (H + b"Transfer-Encoding: chunked\r\n\r\n\r\n\r\n", 400, "invalid chunk size"),
    (H + b"Transfer-Encoding: chunked\r\n\r\n1;\r\nA\r\n0\r\n\r\n", 400, "invalid chunk size"),
    (H + b'Transfer-Encoding: chunked\r\n\r\n1;a="b\r\nA\r\n0\r\n\r\n', 400, "invalid chunk size"),
    (H + b"Transfer-Encoding: chunked\r\n\r\n1;a=b c\r\nA\r\n0\r\n\r\n", 400, "invalid chunk size"),
    (H + b"Transfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", 400, "invalid chunk size"),
    (H + b"Transfer-Encoding: chunked\r\n\r\n1\nA\r\n0\r\n\r\n", 400, "not terminated by CRLF"),
    (H + b"Transfer-Encoding: chunked\r\n\r\n5\r\r;ABCD\r\n34\r\n", 400, "invalid chunk size"),
    (H + b"Transfer-Encoding: chunked\r\n\r\n1\r\nAB\r\n0\r\n\r\n", 400, "not followed by CRLF"),
    (H + b"Transfer-Encoding: chunked\r\n\r\na\r\n0123456789\n0\r\n\r\n", 400, "not followed by CRLF"),
    (H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\n", 400, "bare LF"),
    (H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX: a\nY: b\r\n\r\n", 400, "bare LF"),
    (H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nX : a\r\n\r\n", 400, "whitespace between field name and colon"),
    (H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n", 400, "not allowed in trailers"),
    (H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nhost: b\r\n\r\n", 400, "not allowed in trailers"),
]


@pytest.mark.parametrize(("raw", "status", "message"), REFUSALS)
def test_refused(raw: bytes, status: int, message: str) -> None:
    error = refused(raw)
    assert (error.status, message in str(error)) == (status, True), str(error)


@pytest.mark.parametrize(("raw", "status", "message"), REFUSALS)
def test_refused_the_same_when_fed_one_byte_at_a_time(raw: bytes, status: int, message: str) -> None:
    parser = RequestParser()
    with pytest.raises(ProtocolError) as info:
        for byte in range(len(raw)):
            parser.feed(raw[byte : byte + 1])
    assert info.value.status == status


def test_a_broken_line_is_refused_before_the_head_is_complete() -> None:
    with pytest.raises(ProtocolError, match="obs-fold"):
        RequestParser().feed(b"GET / HTTP/1.1\r\nHost: a\r\n folded")
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nX: 1")
    with pytest.raises(ProtocolError, match="invalid byte in field value"):
        parser.feed(b"\x00\r\nY")
    with pytest.raises(ProtocolError, match="invalid request line"):
        RequestParser().feed(b"GET / HTTP/1.1 \r\nHost")
    with pytest.raises(ProtocolError) as info:
        RequestParser().feed(b"GET / HTTP/3.0\r\nHo")
    assert info.value.status == 505


# -- limits -------------------------------------------------------------------------------------------


def test_request_line_of_exactly_the_limit_is_accepted_and_one_more_is_414() -> None:
    prefix, suffix = b"GET /", b" HTTP/1.1"
    fill = MAX_REQUEST_LINE - len(prefix) - len(suffix)
    ok = prefix + b"a" * fill + suffix + b"\r\nHost: a\r\n\r\n"
    assert head_of(ok).target == b"/" + b"a" * fill
    assert refused(prefix + b"a" * (fill + 1) + suffix + b"\r\nHost: a\r\n\r\n").status == 414


def test_long_request_line_is_refused_before_its_end_arrives() -> None:
    parser = RequestParser()
    parser.feed(b"GET /" + b"a" * (MAX_REQUEST_LINE - 10))
    with pytest.raises(ProtocolError) as info:
        parser.feed(b"a" * 20)
    assert info.value.status == 414


def test_header_section_over_the_limit_is_431_even_unfinished() -> None:
    value = b"v" * 1000
    lines = b"".join(b"X-%d: %s\r\n" % (i, value) for i in range(MAX_HEADER_SECTION // 1000 + 1))
    assert refused(b"GET / HTTP/1.1\r\nHost: a\r\n" + lines + b"\r\n").status == 431
    parser = RequestParser()
    with pytest.raises(ProtocolError) as info:
        for i in range(MAX_HEADER_SECTION // 1000 + 2):
            parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n" if i == 0 else b"X-%d: %s\r\n" % (i, value))
    assert info.value.status == 431


def test_field_count_limit() -> None:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADER_COUNT - 1))
    assert len(head_of(b"GET / HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n").headers) == MAX_HEADER_COUNT
    assert refused(b"GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n" + fields + b"\r\n").status == 431


def test_limits_can_be_lowered_per_parser() -> None:
    parser = RequestParser(max_request_line=16, max_header_section=32, max_header_count=2)
    with pytest.raises(ProtocolError) as info:
        parser.feed(b"GET /0123456789abcdef HTTP/1.1\r\nHost: a\r\n\r\n")
    assert info.value.status == 414
    with pytest.raises(ProtocolError) as info:
        RequestParser(max_header_count=2).feed(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n")
    assert info.value.status == 431


def test_a_head_sent_one_byte_at_a_time_is_parsed_once() -> None:
    raw = b"GET /x HTTP/1.1\r\nHost: a\r\n" + b"X-Long: " + b"v" * 20000 + b"\r\n\r\n"
    parser = RequestParser()
    events: list[Event] = []
    for index in range(len(raw)):
        events += parser.feed(raw[index : index + 1])
    assert len(events) == 2 and events[0].headers[1] == (b"X-Long", b"v" * 20000)  # type: ignore[union-attr]


def test_chunk_line_too_long() -> None:
    parser = RequestParser()
    parser.feed(H + b"Transfer-Encoding: chunked\r\n\r\n1;a=")
    with pytest.raises(ProtocolError, match="chunk header line too long"):
        for _ in range(40):
            parser.feed(b"b" * 1000)


def test_a_bare_cr_is_refused_before_the_line_ends() -> None:
    with pytest.raises(ProtocolError, match="bare CR in head"):
        RequestParser().feed(b"GET / HTTP/1.1\rX")
    assert RequestParser().feed(b"GET / HTTP/1.1\r") == []  # the LF may still come
    parser = RequestParser()
    parser.feed(H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n")
    with pytest.raises(ProtocolError, match="bare CR after last chunk"):
        parser.feed(b"\ra")
    with pytest.raises(ProtocolError, match="bare CR in chunk header"):
        RequestParser().feed(H + b"Transfer-Encoding: chunked\r\n\r\n5\r\r;ABCD")


def test_names_with_runs_of_separators_are_ordinary_fields() -> None:
    # Only a single "-" <-> "_" swap collides in CGI-style backends; "Transfer--Encoding" is just a name.
    head = head_of(H + b"Transfer--Encoding: chunked\r\nX__Forwarded__For: 1.2.3.4\r\n\r\n")
    assert head.body is NO_BODY and len(head.headers) == 3


def test_nothing_is_parsed_after_an_error_or_the_end() -> None:
    parser = RequestParser()
    with pytest.raises(ProtocolError):
        parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n")
    assert parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") == []
    parser = RequestParser()
    with pytest.raises(ProtocolError):
        parser.feed(b"GET / HTTP/1.1\r\nHo")
        parser.feed(b"")
    assert parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n") == []


def test_early_tunnel_bytes_survive_the_client_closing() -> None:
    parser = RequestParser()
    parser.feed(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\nhello")
    assert parser.feed(b"") == []
    assert parser.take_trailing_data() == b"hello"
