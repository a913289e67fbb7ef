"""The parsers' near memos: a response head that differs from the last one only in the values of ordinary
field lines (ResponseParser._near_head), and a request head that differs only in its origin-form target
(RequestParser._near_target), are answered from the last verdict. Differential tests: on any
sequence of heads, a parser that has seen the earlier ones gives exactly what a fresh parser gives for the
last one (events, raw, forwardable, errors), and forwarding both gives the same bytes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rsp.errors import ProtocolError
from rsp.http1 import forward
from rsp.http1.events import NO_BODY, RequestHead, ResponseHead
from rsp.http1.parser import RequestParser, ResponseParser

P = TypeVar("P", RequestParser, ResponseParser)
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

REQUEST = RequestHead(b"GET", b"/", b"1.1", ((b"Host", b"a"),), True, NO_BODY)

# nginx's head for a small file, with a request id: the shape the near memo is for.
TEMPLATE = [
    b"Server: nginx/1.22.1",
    b"Date: Sat, 28 Nov 2026 05:46:08 GMT",
    b"Content-Type: text/plain",
    b"Content-Length: 5",
    b"Last-Modified: Sat, 28 Nov 2026 05:36:08 GMT",
    b"Connection: keep-alive",
    b'ETag: "6569"',
    b"X-Request-Id: 0123456789abcdef",
    b"Accept-Ranges: bytes",
]
BODY = b"hello"

# Values to put in place of a line's value: same-length and other-length canonical values, and values
# the fast path refuses or that change framing (each must give what a fresh parser gives).
values = st.one_of(
    st.binary(min_size=1, max_size=20).map(lambda b: b.hex().encode()),
    st.sampled_from([b"5", b"6", b"05", b"close", b"keep-alive, x-secret", b"chunked", b"a b", b"x ", b" x",
                     b"\x00", b"a\rb", b"\xff\xfe", b"", b"Sat, 28 Nov 2026 05:46:09 GMT"]),
)


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    lines = list(TEMPLATE)
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        name = lines[i].split(b":", 1)[0]
        lines[i] = name + b": " + draw(values)
    if draw(st.integers(0, 9)) == 0:
        lines.insert(draw(st.integers(0, len(lines))), b"X-Extra: 1")
    status = draw(st.sampled_from([b"200 OK", b"200 OK", b"200 OK", b"404 Not Found", b"204 No Content"]))
    return b"HTTP/1.1 " + status + b"\r\n" + b"\r\n".join(lines) + b"\r\n\r\n" + BODY


def result(parser: ResponseParser, raw: bytes) -> tuple[object, ...]:
    parser.expect(b"GET")
    try:
        events = parser.feed(raw)
    except ProtocolError as error:
        return ("error", error.status, str(error))
    out: list[object] = []
    for event in events:
        out.append(event)
        if isinstance(event, ResponseHead):
            out += [event.raw, event.forwardable, event.headers]
            chunked, keep = forward.response_framing(event, REQUEST)
            out.append(forward.response_head(event, keep_alive=keep, chunked=chunked, request=REQUEST))
    return ("ok", out, parser.idle)


def check_against_fresh(new: Callable[[], P], outcome: Callable[[P, bytes], tuple[object, ...]],
                        sequence: list[bytes]) -> None:
    """Feed `sequence` to one parser, and each message also to a fresh one: the outcomes must be equal."""
    warm = new()
    for raw in sequence:
        got = outcome(warm, raw)
        assert got == outcome(new(), raw)
        if got[0] == "error" or not warm.idle:
            # A failed parser is done, and one whose head framed a body other than the test's (a 204,
            # another Content-Length) is out of step with its messages: start again, as a new connection.
            warm = new()


@SETTINGS
@given(st.lists(heads(), min_size=2, max_size=6))
def test_a_parser_with_history_answers_like_a_fresh_one(sequence: list[bytes]) -> None:
    check_against_fresh(ResponseParser, result, sequence)


def test_the_near_memo_is_used_for_a_changing_request_id_and_date() -> None:
    parser = ResponseParser()
    first = b"HTTP/1.1 200 OK\r\n" + b"\r\n".join(TEMPLATE) + b"\r\n\r\n" + BODY
    second = first.replace(b"0123456789abcdef", b"fedcba9876543210")
    third = second.replace(b"fedcba9876543210", b"00000000ffffffff").replace(b"05:46:08", b"05:46:09")
    seen: list[ResponseHead] = []
    for raw in (first, second, third, third.replace(b"00000000ffffffff", b"11111111eeeeeeee")):
        got = result(parser, raw)
        assert got == result(ResponseParser(), raw)
        seen.append(got[1][0])  # type: ignore[index]
    # The fourth head came from the near memo: a new head that reuses the third's verdict objects (a
    # fresh parse would have made its own reason bytes).
    assert seen[3] is not seen[2] and seen[3].reason is seen[2].reason
    # Armed after the second head (the request id line), widened by the third (the Date line).
    assert len(parser._near.values) == 2
    # A changed Content-Length is never taken from the memo: the body is 6 bytes now.
    longer = third.replace(b"Content-Length: 5", b"Content-Length: 6") + b"!"
    assert result(parser, longer) == result(ResponseParser(), longer)
    # A value with a bare CR in a volatile line is refused as a fresh parser refuses it.
    bad = third.replace(b"00000000ffffffff", b"00000000\rfffffff")
    refused = result(parser, bad)
    assert refused[0] == "error" and refused[:2] == result(ResponseParser(), bad)[:2]


def test_every_byte_in_a_volatile_value_is_judged_as_a_fresh_parser_judges_it() -> None:
    """The near memo's check of a changed value (NearMemo.matches): each of the 256 bytes at the start, in
    the middle and at the end of the request id and of the Date, against a parser with no memo."""
    first = b"HTTP/1.1 200 OK\r\n" + b"\r\n".join(TEMPLATE) + b"\r\n\r\n" + BODY
    second = first.replace(b"0123456789abcdef", b"fedcba9876543210").replace(b"05:46:08", b"05:46:09")
    date = b"Sat, 28 Nov 2026 05:46:09 GMT"
    for old in (b"fedcba9876543210", date):
        for where in (0, len(old) // 2, len(old) - 1):
            for byte in range(256):
                value = old[:where] + bytes([byte]) + old[where + 1 :]
                raw = second.replace(old, value)
                warm = ResponseParser()
                result(warm, first)
                result(warm, second)
                assert warm._near.values, "the memo is armed by the two heads"
                assert result(warm, raw) == result(ResponseParser(), raw), (old, where, byte)


# -- the request parser's target memo (RequestParser._near_target) -------------------------------------

targets = st.one_of(
    st.binary(min_size=0, max_size=12).map(lambda b: b"/" + b.hex().encode()),
    st.sampled_from([b"/", b"/a?b=c", b"/#frag", b"/a b", b"/\x7f", b"*", b"http://h/x", b"/" + b"x" * 9000,
                     b"/%zz", b"/\xff", b"", b"x"]),
)
methods = st.sampled_from([b"GET", b"GET", b"POST", b"HEAD", b"OPTIONS", b"CONNECT"])
fields_variants = st.sampled_from([
    b"Host: h\r\nUser-Agent: wrk\r\n",
    b"Host: h\r\nUser-Agent: wrk\r\nConnection: keep-alive\r\n",
    b"Host: h\r\nContent-Length: 2\r\n",
    b"Host: other\r\nUser-Agent: wrk\r\n",
    b"User-Agent: wrk\r\n",
    b"Host: h\r\nConnection: close\r\n",
])


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    section = draw(fields_variants)
    body = b"hi" if b"Content-Length: 2" in section else b""
    version = draw(st.sampled_from([b"1.1", b"1.1", b"1.0"]))
    return draw(methods) + b" " + draw(targets) + b" HTTP/" + version + b"\r\n" + section + b"\r\n" + body


def request_result(parser: RequestParser, raw: bytes) -> tuple[object, ...]:
    try:
        events = parser.feed(raw)
    except ProtocolError as error:
        return ("error", error.status, str(error))
    out: list[object] = []
    for event in events:
        out.append(event)
        if isinstance(event, RequestHead):
            out += [event.raw, event.forwardable, event.headers, event.host, event.target]
            out.append(forward.request_head(event, "192.0.2.1"))
    return ("ok", out, parser.idle)


@SETTINGS
@given(st.lists(requests(), min_size=2, max_size=6))
def test_a_request_parser_with_history_answers_like_a_fresh_one(sequence: list[bytes]) -> None:
    check_against_fresh(RequestParser, request_result, sequence)


def test_the_target_memo_answers_a_new_path_with_the_same_field_section() -> None:
    parser = RequestParser()
    first = b"GET /small?v=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: wrk\r\n\r\n"
    heads = []
    for raw in (first, first.replace(b"v=1", b"v=2"), first.replace(b"v=1", b"v=10")):
        got = request_result(parser, raw)
        assert got == request_result(RequestParser(), raw)
        heads.append(got[1][0])  # type: ignore[index]
    # The second and third heads share the first one's field section objects: the memo answered.
    assert heads[1].raw is heads[0].raw and heads[2].forwardable is heads[0].forwardable
    assert [h.target for h in heads] == [b"/small?v=1", b"/small?v=2", b"/small?v=10"]
    # A target the request line refuses is refused as a fresh parser refuses it.
    bad = first.replace(b"/small?v=1", b"/small#v")
    refused = request_result(parser, bad)
    assert refused[0] == "error" and refused[:2] == request_result(RequestParser(), bad)[:2]
