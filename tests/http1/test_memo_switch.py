"""Memos on and off give the same events: the differential harness of every parser scenario.

A parser with its memos (exact memo, request target memo, response near memo, Content-Length framing
cache, valid-Host memo) and one built with `memos=False` are fed the same bytes, message after message on
one connection; every event must be equal field by field, `raw` and `forwardable` included, and so must
errors and the parser's state. The scenarios: the hypothesis generators of the other parser tests, and
sequences of consecutive heads where only one field's value changes -- for each declared field (the ones
a verdict depends on) and for a few undeclared ones -- while another line keeps the near memo armed, or
where only the target changes.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from http1 import test_fast_path, test_hypothesis, test_near_memo
from rsp.errors import ProtocolError
from rsp.http1.events import Data, EndOfMessage, Event, RequestHead, ResponseHead
from rsp.http1.head_fields import REQUEST_FIELDS, RESPONSE_FIELDS
from rsp.http1.parser import RequestParser, ResponseParser

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def snapshot(event: Event) -> tuple[object, ...]:
    """Every field of an event, the ones equality leaves out (raw, forwardable) included."""
    if isinstance(event, RequestHead):
        return ("request", event.method, event.target, event.version, event.headers, event.keep_alive, event.body,
                event.upgrade, event.expect_continue, event.host, event.connection, event.raw, event.forwardable)
    if isinstance(event, ResponseHead):
        return ("response", event.status, event.reason, event.version, event.headers, event.keep_alive, event.body,
                event.connection, event.raw, event.forwardable)
    if isinstance(event, Data):
        return ("data", event.data)
    assert isinstance(event, EndOfMessage)
    return ("end", event.trailers)


def step(parser: RequestParser | ResponseParser, raw: bytes, method: bytes | None) -> tuple[object, ...]:
    if isinstance(parser, ResponseParser) and method is not None:
        parser.expect(method)
    try:
        events = parser.feed(raw)
    except ProtocolError as error:
        return ("error", error.status, str(error))
    return ("ok", [snapshot(event) for event in events], parser.idle, parser.paused)


def differential(request: bool, messages: Iterable[bytes], methods: Iterable[bytes | None] | None = None) -> None:
    """Feed `messages` to a parser with memos and to one without: the same outcome at every step."""
    on: RequestParser | ResponseParser = RequestParser() if request else ResponseParser()
    off: RequestParser | ResponseParser = RequestParser(memos=False) if request else ResponseParser(memos=False)
    messages = list(messages)
    method_list = list(methods) if methods is not None else [None if request else b"GET"] * len(messages)
    for raw, method in zip(messages, method_list, strict=True):
        assert step(on, raw, method) == step(off, raw, method), raw


# -- the generators of the other parser tests -------------------------------------------------------

@SETTINGS
@given(st.lists(test_fast_path.request_heads(), min_size=1, max_size=5))
def test_generated_requests(sequence: list[bytes]) -> None:
    differential(True, sequence)


@SETTINGS
@given(st.lists(st.tuples(test_fast_path.response_heads(), st.sampled_from([b"GET", b"HEAD", b"CONNECT", b"POST"])),
                min_size=1, max_size=5))
def test_generated_responses(sequence: list[tuple[bytes, bytes]]) -> None:
    differential(False, [raw for raw, _ in sequence], [method for _, method in sequence])


@SETTINGS
@given(st.lists(test_near_memo.heads(), min_size=2, max_size=6))
def test_near_memo_responses(sequence: list[bytes]) -> None:
    differential(False, sequence)


@SETTINGS
@given(st.lists(test_near_memo.requests(), min_size=2, max_size=6))
def test_target_memo_requests(sequence: list[bytes]) -> None:
    differential(True, sequence)


@SETTINGS
@given(st.lists(test_hypothesis.requests(), min_size=1, max_size=4), st.sampled_from([b" ", b""]))
def test_valid_requests_repeated(messages: list[test_hypothesis.Request], ows: bytes) -> None:
    encoded = [message.encode(ows) for message in messages]
    differential(True, encoded + encoded + encoded[::-1])


@SETTINGS
@given(st.lists(test_hypothesis.responses(), min_size=1, max_size=4))
def test_valid_responses_repeated(items: list[tuple[bytes, bytes]]) -> None:
    items = items + items
    differential(False, [raw for _, raw in items], [method for method, _ in items])


@SETTINGS
@given(st.lists(test_hypothesis.mutated_requests(), min_size=1, max_size=3))
def test_mutated_requests(sequence: list[bytes]) -> None:
    differential(True, sequence + sequence)


# -- one field changes, the rest stays --------------------------------------------------------------

# Values per field, runs of three of the same length deciding differently (the near memo only learns lines
# whose length stays: a line wrongly learned as volatile between the first two shows on the third).
FIELD_VALUES = {
    b"host": [b"a.example", b"b.example", b"c.example", b"a b", b"A.EXAMPLE"],
    b"content-length": [b"0", b"5", b"6", b"05", b"x"],
    b"transfer-encoding": [b"chunked", b"Chunked", b"gzipped", b"chunked, gzip"],
    b"connection": [b"keep-alive", b"keep-alivx", b"Keep-Alive", b"upgrade", b"x-secret", b"close", b"Close"],
    b"keep-alive": [b"timeout=5", b"timeout=6", b"max=10"],
    b"upgrade": [b"websocket", b"websockex", b"h2c", b"h2x"],
    b"expect": [b"100-continue", b"100-continuf", b"100-Continue"],
}
GENERIC_VALUES = [b"alpha", b"bravo", b"a b c", b"close", b"chunked", b"\x01bad"]
UNDECLARED = [b"x-custom", b"date", b"cookie", b"x-forwarded-for"]


def title(name: bytes) -> bytes:
    return b"-".join(part.capitalize() for part in name.split(b"-"))


def body_for(name: bytes, value: bytes) -> bytes:
    """The body the field's value frames, so that a stale framing shows in the events."""
    if name == b"content-length" and value.isdigit():
        return b"b" * int(value)
    if name == b"transfer-encoding" and value.lower() == b"chunked":
        return b"1\r\nc\r\n0\r\n\r\n"
    return b""


def one_field_changing(name: bytes, request: bool, id_every: int) -> list[bytes]:
    """Messages where only `name`'s value changes (each value for three heads in a row, every value in
    turn and back), while an X-Request-Id changes every `id_every` heads (the near memo learns it; the exact
    memo answers while it stays), and, for requests, the target alternates."""
    heads = []
    values = FIELD_VALUES.get(name, GENERIC_VALUES)
    sequence = [value for value in [*values, *values[::-1]] for _ in range(3)]
    for i, value in enumerate(sequence):
        request_id = b"%04d" % (i // id_every)
        line = title(name) + b": " + value + b"\r\n"
        if request:
            host = b"" if name == b"host" else b"Host: h\r\n"
            head = b"POST /t%d HTTP/1.1\r\n%sX-Request-Id: %s\r\n%s\r\n" % (i % 2, host, request_id, line)
        else:
            # Framed, so that the connection stays open (a body read until the close would end it).
            framed = line if name in (b"content-length", b"transfer-encoding") else line + b"Content-Length: 0\r\n"
            head = b"HTTP/1.1 200 OK\r\nDate: d\r\nX-Request-Id: %s\r\n%sServer: s\r\n\r\n" % (request_id, framed)
        heads.append(head + body_for(name, value))
    return heads


@pytest.mark.parametrize("name", [*REQUEST_FIELDS.captured, *REQUEST_FIELDS.refused, *UNDECLARED])
def test_requests_where_one_field_changes(name: bytes) -> None:
    # A fresh pair per head prefix: a head that fails or switches protocols ends the connection.
    for id_every in (1, 2):
        heads = one_field_changing(name, request=True, id_every=id_every)
        for start in range(len(heads)):
            differential(True, heads[start:])


@pytest.mark.parametrize("name", [*RESPONSE_FIELDS.captured, *RESPONSE_FIELDS.refused, *UNDECLARED])
def test_responses_where_one_field_changes(name: bytes) -> None:
    for id_every in (1, 2):
        heads = one_field_changing(name, request=False, id_every=id_every)
        for start in range(len(heads)):
            differential(False, heads[start:])


def test_requests_where_only_the_target_changes() -> None:
    heads = [b"GET /%s HTTP/1.1\r\nHost: h\r\nUser-Agent: u\r\n\r\n" % target
             for target in (b"a", b"b", b"a?x=1", b"*", b"a#f", b"http://h/x", b"c", b"c")]
    differential(True, heads)


def test_the_switch_turns_every_memo_off() -> None:
    """With memos, repeated heads come back as the same objects or from the last verdict; without, every
    head is parsed anew (and both give the same events, as above)."""
    raw = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
    for memos, same in ((True, True), (False, False)):
        parser = RequestParser(memos=memos)
        first, again = parser.feed(raw)[0], parser.feed(raw)[0]
        assert (first is again) is same
        near = parser.feed(raw.replace(b"/a", b"/b"))[0]
        assert isinstance(first, RequestHead) and isinstance(near, RequestHead)
        assert (near.raw is first.raw) is same
    for memos, same in ((True, True), (False, False)):
        response = ResponseParser(memos=memos)
        heads = []
        for request_id in (b"01", b"02", b"03"):
            response.expect(b"GET")
            head = response.feed(b"HTTP/1.1 200 OK\r\nX-Request-Id: %s\r\nContent-Length: 0\r\n\r\n" % request_id)[0]
            assert isinstance(head, ResponseHead)
            heads.append(head)
        assert (heads[2].reason is heads[1].reason) is same  # the third came from the near memo
