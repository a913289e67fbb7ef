"""The parsers' fast path and one-head memo, and the forwarding shortcut they enable, change nothing.

The general path of each parser is the reference. For generated heads built to hit every corner of the
fast expression (special names in any case, repeated, look-alikes, every spacing around values, bad
bytes, errors), a parser whose fast path is switched off must give the same events, or the same error
with the same message. Wherever the parser offers `forwardable`, forwarding must write byte for byte
what it writes from `headers`. A memo hit must give the event a fresh parser gives.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rsp.errors import ProtocolError
from rsp.http1 import forward
from rsp.http1.events import (
    NO_BODY,
    Data,
    EndOfMessage,
    Event,
    RequestHead,
    ResponseHead,
)
from rsp.http1.fields import COMMON_CONNECTION
from rsp.http1.head_fields import REQUEST_FIELDS, RESPONSE_FIELDS
from rsp.http1.limits import MAX_MEMO_HEAD
from rsp.http1.parser import RequestParser, ResponseParser

SETTINGS = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NEVER = re.compile(rb"(?!)")


def general(parser: RequestParser | ResponseParser) -> RequestParser | ResponseParser:
    """The parser with its fast path switched off: every head takes the general path."""
    parser._fast = NEVER
    return parser


def outcome(parser: RequestParser | ResponseParser, raw: bytes) -> tuple[object, ...]:
    try:
        events = parser.feed(raw)
    except ProtocolError as error:
        return ("error", error.status, str(error))
    return ("ok", events, parser.idle, parser.paused)


def same(a: tuple[object, ...], b: tuple[object, ...]) -> None:
    assert a == b
    if a[0] == "ok":  # equality of heads reads `headers`: check the split of `raw` the same way
        for x, y in zip(a[1], b[1], strict=True):  # type: ignore[call-overload]
            if isinstance(x, RequestHead | ResponseHead):
                assert x.headers == y.headers and repr(x) == repr(y) and hash(x) == hash(y)


def mixed_case(draw: st.DrawFn, name: bytes) -> bytes:
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return bytes(c ^ 0x20 if flip and chr(c).isalpha() else c for c, flip in zip(name, flips, strict=True))


def pick(draw: st.DrawFn, usual: list[bytes], unusual: list[bytes], rare: int = 2) -> bytes:
    """One of `unusual` when `rare` coin flips all come up (1 in 2**rare), else one of `usual`: most
    generated heads stay valid (hypothesis draws the ends of an integer range far more often than 1/n)."""
    if unusual and all(draw(st.booleans()) for _ in range(rare)):
        return draw(st.sampled_from(unusual))
    return draw(st.sampled_from(usual))


SPECIAL_NAMES = [
    b"host",
    b"content-length",
    b"transfer-encoding",
    b"connection",
    b"keep-alive",
    b"upgrade",
    b"expect",
    b"te",
    b"trailer",
    b"proxy-connection",
    b"close",
    b"forwarded",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-secret",
    b"hosts",
    b"content-lengthx",
    b"tex",
]
LOOKALIKES = [b"x_forwarded_host", b"x-forwarded_for", b"content_length", b"transfer_encoding"]
# (usual values, unusual values) per special name.
VALUES = {
    b"host": ([b"example.com", b"a.example:8080", b"[::1]:80", b"Example.COM"], [b"", b"bad host", b"a%zz"]),
    b"content-length": ([b"0", b"5", b"12"], [b"05", b"00", b"18446744073709551616", b"abc", b"5, 5", b"+5"]),
    b"transfer-encoding": ([b"chunked", b"Chunked"], [b"gzip, chunked", b"chunked, gzip", b"identity", b",chunked"]),
    b"connection": (
        [b"keep-alive", b"close", b"Upgrade", b"keep-alive, Upgrade", b"Close", b"TE", b"keep-alive, close"],
        [b"close, X-Secret", b"host", b"a b", b"Content-Length", b", ,", b"keep-alive, Forwarded",
         b"X-Forwarded-For, TE"],
    ),
    b"keep-alive": ([b"timeout=5", b"max=100"], []),
    b"upgrade": ([b"websocket", b"WebSocket, h2c"], [b"h2c", b"TLS/1.2"]),
    b"expect": ([b"100-continue", b"100-Continue"], [b"nothing"]),
}
GENERIC_VALUES = (
    [b"x", b"a b", b"a\tb", b"\xe9t\xe9", b"!~", b'"quoted"', b"1.2.3.4"],
    [b"", b"a\x00b", b"a\x7fb", b"a\rb"],
)
SEPARATORS = ([b": "], [b":", b":  ", b":\t", b": \t", b" : "])
TRAILING = ([b""], [b" ", b"\t", b" \t"])
BAD_LINES = [b" folded\r\n", b"bare\nLF: x\r\n", b"NoColon\r\n", b"A: b\r", b": x\r\n", b"A\x00: b\r\n"]


@st.composite
def field_lines(draw: st.DrawFn) -> list[bytes]:
    lines = []
    for _ in range(draw(st.integers(0, 7))):
        kind = draw(st.sampled_from(["generic", "generic", "special", "bad", "lookalike"]))
        if kind == "bad" and draw(st.booleans()) and draw(st.booleans()):
            lines.append(draw(st.sampled_from(BAD_LINES)))
            continue
        if kind == "lookalike" and draw(st.booleans()) and draw(st.booleans()):
            name = mixed_case(draw, draw(st.sampled_from(LOOKALIKES)))
            value = b"x"
        elif kind == "special":
            base = draw(st.sampled_from(SPECIAL_NAMES))
            name = mixed_case(draw, base)
            value = pick(draw, *VALUES.get(base, GENERIC_VALUES))
        else:
            name = draw(st.sampled_from([b"Server", b"Date", b"Cookie", b"X-A", b"Accept", b"a", b"ETag", b"Via"]))
            value = pick(draw, *GENERIC_VALUES)
        lines.append(name + pick(draw, *SEPARATORS, rare=2) + value + pick(draw, *TRAILING, rare=3) + b"\r\n")
    return lines


@st.composite
def request_heads(draw: st.DrawFn) -> bytes:
    method = pick(draw, [b"GET", b"POST", b"HEAD", b"PATCH"], [b"OPTIONS", b"CONNECT", b"get"])
    unusual_targets = [b"*", b"http://a.example/x", b"HTTPS://a.example", b"a.example:443", b"/#f"]
    target = pick(draw, [b"/", b"/a?b=c"], unusual_targets)
    version = pick(draw, [b"HTTP/1.1", b"HTTP/1.0"], [b"HTTP/2.0", b"HTTP/1.2"], rare=4)
    lines = draw(field_lines())
    if not (draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans())):
        lines.insert(draw(st.integers(0, len(lines))), b"Host: example.com\r\n")
    body = draw(st.sampled_from([b"", b"hello", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"]))
    start = pick(draw, [b""], [b"\r\n"])
    return start + method + b" " + target + b" " + version + b"\r\n" + b"".join(lines) + b"\r\n" + body


@st.composite
def response_heads(draw: st.DrawFn) -> bytes:
    status_line = pick(
        draw,
        [b"HTTP/1.1 200 OK", b"HTTP/1.0 200 OK", b"HTTP/1.1 404 Not\tFound \xe9", b"HTTP/1.1 204 No Content"],
        [
            b"HTTP/1.1 200 ",
            b"HTTP/1.1 200",
            b"HTTP/1.1 304 Not Modified",
            b"HTTP/1.1 101 Switching Protocols",
            b"HTTP/1.1 100 Continue",
            b"HTTP/1.1 600 Bad",
            b"HTTP/2 200 OK",
        ],
        rare=1,
    )
    lines = draw(field_lines())
    body = draw(st.sampled_from([b"", b"hello", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]))
    return status_line + b"\r\n" + b"".join(lines) + b"\r\n" + body


OPTIONS = [
    {},
    {"trusted": True},
    {"trusted": True, "forwarded": True},
    {"forwarded": True, "via": False, "proto": b"https"},
    {"close": True},
    {"tunnel": False},
    {"tunnel": True, "fallback_host": b"fallback"},
]


def check_request_forwarding(head: RequestHead) -> None:
    rebuilt = head.rebuilt()
    assert rebuilt.forwardable is None and rebuilt.raw == b""
    for options in OPTIONS:
        for ip in ("192.0.2.1", "2001:db8::1", ""):
            assert forward.request_head(head, ip, **options) == forward.request_head(rebuilt, ip, **options)  # type: ignore[arg-type]


@SETTINGS
@given(request_heads())
def test_requests_fast_path_agrees_with_the_general_path(raw: bytes) -> None:
    fast = outcome(RequestParser(), raw)
    same(fast, outcome(general(RequestParser()), raw))
    if fast[0] == "ok":
        heads = [event for event in fast[1] if isinstance(event, RequestHead)]  # type: ignore[attr-defined]
        for head in heads:
            check_request_forwarding(head)
        # The same bytes again on the same connection: the memo answers with the same events.
        parser = RequestParser()
        first = parser.feed(raw)
        if parser.idle:
            assert parser.feed(raw) == first


def check_response_forwarding(head: ResponseHead) -> None:
    rebuilt = head.rebuilt()
    for request_version in (b"1.1", b"1.0"):
        request = RequestHead(b"GET", b"/", request_version, ((b"Host", b"a"),), True, NO_BODY)
        for keep_alive in (True, False):
            for chunked in (True, False):
                for via in (True, False):
                    options = {"request": request, "keep_alive": keep_alive, "chunked": chunked, "via": via}
                    assert forward.response_head(head, **options) == forward.response_head(rebuilt, **options)  # type: ignore[arg-type]
    assert forward.response_framing(head, request) == forward.response_framing(rebuilt, request)


@SETTINGS
@given(response_heads(), st.sampled_from([b"GET", b"HEAD", b"CONNECT", b"POST"]))
def test_responses_fast_path_agrees_with_the_general_path(raw: bytes, method: bytes) -> None:
    def parser(fast: bool = True) -> RequestParser | ResponseParser:
        p = ResponseParser()
        p.expect(method)
        p.expect(b"GET")
        return p if fast else general(p)

    fast = outcome(parser(), raw)
    same(fast, outcome(parser(fast=False), raw))
    if fast[0] == "ok":
        for event in fast[1]:  # type: ignore[attr-defined]
            if isinstance(event, ResponseHead):
                check_response_forwarding(event)


@SETTINGS
@given(st.lists(st.sampled_from([b"GET", b"HEAD", b"CONNECT"]), min_size=1, max_size=4), response_heads())
def test_the_response_memo_answers_only_for_the_same_method(methods: list[bytes], raw: bytes) -> None:
    """The same response to a sequence of methods: each parse equals a fresh parser's."""
    memo = ResponseParser()
    for method in methods:
        fresh = ResponseParser()
        fresh.expect(method)
        expected = outcome(fresh, raw)
        if not memo.idle or memo.paused or memo.pending:
            return
        memo.expect(method)
        got = outcome(memo, raw)
        assert got == expected
        if got[0] == "error" or not memo.idle:
            return


# -- cases worth naming -----------------------------------------------------------------------------


def parse_request(raw: bytes) -> RequestHead:
    events = RequestParser().feed(raw)
    assert isinstance(events[0], RequestHead)
    return events[0]


def parse_response(raw: bytes, method: bytes = b"GET") -> list[Event]:
    parser = ResponseParser()
    parser.expect(method)
    return parser.feed(raw)


def test_a_common_request_is_kept_raw_and_forwarded_without_splitting() -> None:
    raw = b"GET /small HTTP/1.1\r\nHost: 127.0.0.1:19201\r\nUser-Agent: wrk\r\nConnection: keep-alive\r\n\r\n"
    head = parse_request(raw)
    assert head.raw == b"Host: 127.0.0.1:19201\r\nUser-Agent: wrk\r\nConnection: keep-alive\r\n"
    assert head.forwardable == b"Host: 127.0.0.1:19201\r\nUser-Agent: wrk\r\n"
    assert forward.request_head(head, "10.0.0.1") == (
        b"GET /small HTTP/1.1\r\nHost: 127.0.0.1:19201\r\nUser-Agent: wrk\r\nX-Forwarded-For: 10.0.0.1\r\n"
        b"X-Forwarded-Proto: http\r\nX-Forwarded-Host: 127.0.0.1:19201\r\nVia: 1.1 rsp\r\n\r\n"
    )
    assert head.headers == ((b"Host", b"127.0.0.1:19201"), (b"User-Agent", b"wrk"), (b"Connection", b"keep-alive"))


def test_hop_by_hop_lines_anywhere_are_left_out_of_forwardable() -> None:
    head = parse_request(
        b"GET / HTTP/1.1\r\nKeep-Alive: 5\r\nA: 1\r\nConnection: keep-alive, Upgrade\r\nHost: h\r\n"
        b"Upgrade: websocket\r\nTransfer-Encoding: chunked\r\nB: 2\r\n\r\n"
    )
    assert head.forwardable == b"A: 1\r\nHost: h\r\nB: 2\r\n"
    assert head.upgrade == b"websocket" and head.body.kind == "chunked"
    response = parse_response(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\nX: y\r\n"
        b"Connection: keep-alive\r\n\r\n0\r\n\r\n"
    )[0]
    assert isinstance(response, ResponseHead) and response.forwardable == b"X: y\r\n"


@pytest.mark.parametrize(
    "field",
    [
        b"X-Forwarded-For: 1.2.3.4",  # rebuilt by forwarding
        b"Forwarded: for=1.2.3.4",
        b"TE: trailers",  # hop-by-hop lines the fast path does not cut
        b"Proxy-Connection: keep-alive",
        b"Close: x",  # a field `Connection: close` would name
        b"Content-Length: 05",  # forwarded without the leading zero
        b"A:  two spaces",  # forwarded as `A: two spaces`
        b"A: trailing ",
        b"A:",
        b"Connection: keep-alive, X-Secret",  # X-Secret would have to go too
    ],
)
def test_what_forwarding_rewrites_is_never_offered_verbatim(field: bytes) -> None:
    head = parse_request(b"POST / HTTP/1.1\r\nHost: h\r\n" + field + b"\r\nX-Secret: s\r\n\r\n")
    assert head.forwardable is None
    rebuilt = head.rebuilt()
    for trusted in (True, False):
        expected = forward.request_head(rebuilt, "10.0.0.1", trusted=trusted)
        assert forward.request_head(head, "10.0.0.1", trusted=trusted) == expected


def test_requests_without_host_or_in_absolute_form_are_forwarded_with_the_right_host() -> None:
    head = parse_request(b"GET / HTTP/1.0\r\nA: b\r\n\r\n")
    assert head.forwardable is None
    assert b"\r\nHost: fb\r\n" in forward.request_head(head, "1.2.3.4", fallback_host=b"fb")
    head = parse_request(b"GET http://a.example/x HTTP/1.1\r\nHost: other\r\n\r\n")
    assert head.forwardable is not None  # offered, but forwarding rewrites Host itself
    assert forward.request_head(head, "1.2.3.4", via=False).startswith(b"GET /x HTTP/1.1\r\nHost: a.example\r\n")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\nx", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent_Length: 1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: host\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nA: b\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nHost: a\r\nA: \x01\r\n\r\n", 400),
    ],
)
def test_errors_are_those_of_the_general_path(raw: bytes, status: int) -> None:
    with pytest.raises(ProtocolError) as fast:
        RequestParser().feed(raw)
    with pytest.raises(ProtocolError) as reference:
        general(RequestParser()).feed(raw)
    assert fast.value.status == reference.value.status == status
    assert str(fast.value) == str(reference.value)


def test_limits_hold_on_the_fast_path() -> None:
    with pytest.raises(ProtocolError) as error:
        RequestParser(max_header_count=2).feed(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n")
    assert error.value.status == 431
    assert RequestParser(max_header_count=2).feed(b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\n\r\n")
    with pytest.raises(ProtocolError) as error:
        RequestParser(max_header_section=20).feed(b"GET / HTTP/1.1\r\nHost: a\r\nA: 123456789\r\n\r\n")
    assert error.value.status == 431
    with pytest.raises(ProtocolError) as error:
        RequestParser(max_request_line=20).feed(b"GET /1234567 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert error.value.status == 414
    assert RequestParser(max_request_line=20).feed(b"GET /123456 HTTP/1.1\r\nHost: a\r\n\r\n")
    for line, ok in ((b"HTTP/1.1 200 OK", True), (b"HTTP/1.1 200 OKK", False), (b"HTTP/1.1 200", True)):
        parser = ResponseParser(max_status_line=15)
        parser.expect(b"GET")
        if ok:
            assert parser.feed(line + b"\r\nContent-Length: 0\r\n\r\n")
        else:
            with pytest.raises(ProtocolError):
                parser.feed(line + b"\r\nContent-Length: 0\r\n\r\n")
    parser = ResponseParser(max_header_count=1)
    parser.expect(b"GET")
    with pytest.raises(ProtocolError, match="more than 1 field lines"):
        parser.feed(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n")


def test_the_request_memo_hands_out_the_same_event_for_the_same_bytes() -> None:
    parser = RequestParser()
    raw = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    first = parser.feed(raw)
    again = parser.feed(raw + raw)
    assert again == first + first and again[0] is first[0]
    other = parser.feed(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")[0]
    assert isinstance(other, RequestHead) and other.target == b"/x"
    # A head that starts like the remembered one but goes on is parsed, not mistaken for it.
    parser.feed(raw)
    longer = parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nab")
    assert [type(event) for event in longer] == [RequestHead, Data, EndOfMessage]
    # Pieces: the memo is only consulted once the whole head is there.
    parser.feed(raw)
    assert parser.feed(raw[:10]) == []
    assert parser.feed(raw[10:]) == first


def test_the_response_memo_keeps_the_framing_of_each_method() -> None:
    parser = ResponseParser()
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    parser.expect(b"GET")
    assert parser.feed(raw)[1:] == [Data(b"hello"), EndOfMessage()]
    parser.expect(b"HEAD")
    head_events = parser.feed(raw[: raw.index(b"hello")])
    assert [type(event) for event in head_events] == [ResponseHead, EndOfMessage]
    parser.expect(b"GET")
    events = parser.feed(raw)
    assert events[1:] == [Data(b"hello"), EndOfMessage()] and parser.idle and not parser.pending


def test_the_usual_connection_values_name_only_fields_the_fast_path_vetted() -> None:
    for declared in (REQUEST_FIELDS, RESPONSE_FIELDS):
        assert all(declared.vetted.issuperset(options) for options in COMMON_CONNECTION.values())


def test_only_small_heads_are_remembered() -> None:
    parser = RequestParser()
    small = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    large = b"GET / HTTP/1.1\r\nHost: a\r\nCookie: " + b"c" * MAX_MEMO_HEAD + b"\r\n\r\n"
    first = parser.feed(small)[0]
    assert parser.feed(large)[0] != first
    assert parser.feed(small)[0] is first  # the large head did not replace the small one
    again = parser.feed(large)[0]
    assert again == parser.feed(large)[0] and again is not parser.feed(large)[0]
