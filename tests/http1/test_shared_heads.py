"""The request heads shared by the parsers of one proxy's connections (request_parser.SharedHeads).

A connection's first head that another connection sent byte for byte is answered from the shared memo:
the same event object, without a parse. These tests check that it is used (the event's identity), that
it gives exactly what a parser without memos gives (the differential harness of test_memo_switch, each
head on a new connection, every head twice so that the second time is a hit), and its bounds.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from http1 import test_fast_path
from http1.test_memo_switch import SETTINGS, step
from rsp.http1.events import Data, EndOfMessage, RequestHead
from rsp.http1.head_fields import REQUEST_FIELDS
from rsp.http1.limits import MAX_HEADER_COUNT, MAX_SHARED_HEAD, MAX_SHARED_HEADS
from rsp.http1.parser import RequestParser, SharedHeads

GET = b"GET /a HTTP/1.1\r\nHost: example.com\r\nUser-Agent: ab\r\n\r\n"
POST = b"POST /p HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\n"


def first_head(parser: RequestParser, data: bytes) -> RequestHead:
    events = parser.feed(data)
    head = events[0]
    assert isinstance(head, RequestHead)
    return head


def test_a_new_connection_gets_the_event_another_connection_parsed() -> None:
    shared = SharedHeads()
    first = first_head(RequestParser(shared=shared), GET)
    second = first_head(RequestParser(shared=shared), GET)
    assert second is first
    assert second.target == b"/a" and second.host == b"example.com"


def test_parsers_that_share_nothing_parse_again() -> None:
    first = first_head(RequestParser(shared=SharedHeads()), GET)
    second = first_head(RequestParser(shared=SharedHeads()), GET)
    assert second is not first and second == first


def test_another_head_is_parsed_in_full() -> None:
    shared = SharedHeads()
    first_head(RequestParser(shared=shared), GET)
    other = first_head(RequestParser(shared=shared), GET.replace(b"/a", b"/b"))
    assert other.target == b"/b"


def test_the_body_of_a_shared_head_is_the_connections_own() -> None:
    shared = SharedHeads()
    RequestParser(shared=shared).feed(POST + b"hello")
    parser = RequestParser(shared=shared)
    events = parser.feed(POST + b"he")
    assert isinstance(events[0], RequestHead) and events[1:] == [Data(b"he")]
    assert parser.feed(b"llo") == [Data(b"llo"), EndOfMessage()]
    assert parser.idle


def test_a_head_that_ends_the_connection_ends_it_from_the_shared_memo_too() -> None:
    shared = SharedHeads()
    closing = b"GET / HTTP/1.0\r\nHost: a\r\n\r\n"
    RequestParser(shared=shared).feed(closing)
    parser = RequestParser(shared=shared)
    events = parser.feed(closing + GET)  # nothing after a message that ends the connection is parsed
    assert len(events) == 2 and isinstance(events[0], RequestHead) and not events[0].keep_alive
    assert parser.feed(GET) == []


def test_a_head_in_two_reads_is_found_once_whole() -> None:
    shared = SharedHeads()
    first = first_head(RequestParser(shared=shared), GET)
    parser = RequestParser(shared=shared)
    assert parser.feed(GET[:20]) == []
    assert parser.feed(GET[20:])[0] is first


def test_only_a_connections_first_head_is_shared() -> None:
    shared = SharedHeads()
    parser = RequestParser(shared=shared)
    parser.feed(GET)
    parser.feed(GET.replace(b"/a", b"/b"))
    assert list(shared.heads) == [GET]


def test_forgotten_memos_look_in_the_shared_memo_again() -> None:
    shared = SharedHeads()
    first = first_head(RequestParser(shared=shared), GET)
    parser = RequestParser(shared=shared)
    parser.feed(b"GET /x HTTP/1.1\r\nHost: b\r\n\r\n")
    parser.forget_memos()
    assert first_head(parser, GET) is first


def test_memos_off_use_no_shared_memo() -> None:
    shared = SharedHeads()
    first_head(RequestParser(shared=shared, memos=False), GET)
    assert shared.heads == {}


def test_the_memo_is_bounded() -> None:
    shared = SharedHeads()
    for i in range(MAX_SHARED_HEADS + 10):
        RequestParser(shared=shared).feed(GET.replace(b"/a", b"/%d" % i))
    assert 0 < len(shared.heads) <= MAX_SHARED_HEADS
    big = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"x" * MAX_SHARED_HEAD + b"\r\n\r\n"
    RequestParser(shared=shared).feed(big)
    assert big not in shared.heads


def test_a_memo_serves_only_the_settings_it_was_made_for() -> None:
    shared = SharedHeads()
    with pytest.raises(ValueError, match="settings"):
        RequestParser(shared=shared, max_header_count=MAX_HEADER_COUNT - 1)
    with pytest.raises(ValueError, match="settings"):
        RequestParser(shared=shared, declared=REQUEST_FIELDS.extended((b"x-route",)))
    small = SharedHeads(max_header_count=3)
    RequestParser(shared=small, max_header_count=3).feed(GET)
    assert GET in small.heads


@SETTINGS
@given(st.lists(test_fast_path.request_heads(), min_size=1, max_size=5))
def test_shared_heads_give_what_a_parse_gives(heads: list[bytes]) -> None:
    """Each head on a new connection, the whole list twice: equal, field by field, to a parser without
    memos, for hits and misses alike (and errors: a refused head is never shared)."""
    shared = SharedHeads()
    for raw in heads + heads:
        assert step(RequestParser(shared=shared), raw, None) == step(RequestParser(memos=False), raw, None), raw
