"""A header_filter that only add()s a line (the cache's X-Cache) keeps the response head unchanged: the client
gets the bytes the head caches give for the backend's head with the line before its end, and the framing they
say; a filter that adds a declared field, or changes anything else, gets its head serialised anew. A cache hit
writes its stored lines (Response.lines) as the full path would. On the fake session, no sockets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rsp.cache.cache_filter import CacheFilter
from rsp.cache.store import CacheStore
from rsp.config.model import CacheSettings
from rsp.http1.forward import ResponseContext
from rsp.http1.serialise import serialise_response
from rsp.pipeline.messages import Header, Response
from rsp.pipeline.phases import ExchangeView, Filter, Verdict
from support.fake_session import FakeSession

Make = Callable[..., FakeSession]
GET = b"GET /a HTTP/1.1\r\nHost: example\r\n\r\n"
HEAD_5 = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"


class Adds(Filter):
    """header_filter adds `fields` with Response.add, then (when `edit`) changes another field in place."""

    def __init__(self, fields: list[Header], edit: bool = False) -> None:
        self.fields = fields
        self.edit = edit

    def header_filter(self, exchange: ExchangeView) -> Verdict:
        response = exchange.response
        assert response is not None
        for name, value in self.fields:
            response.add(name, value)
        if self.edit:
            response.headers[0] = (b"Content-Type", b"text/html")
        return None


def test_an_added_line_goes_onto_the_backend_head_bytes(make_session: Make) -> None:
    s = make_session(filters=[Adds([(b"X-Cache", b"MISS")])])
    client = s.client()
    _, received = s.serve(client, GET, HEAD_5 + b"hello")
    plain = make_session()
    plain_client = plain.client()
    _, unfiltered = plain.serve(plain_client, GET, HEAD_5 + b"hello")
    head, body = unfiltered.split(b"\r\n\r\n", 1)
    assert received == head + b"\r\nX-Cache: MISS\r\n\r\n" + body  # the unfiltered bytes, one line more


def test_an_added_declared_field_makes_the_head_serialised_anew(make_session: Make) -> None:
    s = make_session(filters=[Adds([(b"Connection", b"close")])])
    client = s.client()
    _, received = s.serve(client, GET, HEAD_5 + b"hello")
    head = received.split(b"\r\n\r\n", 1)[0].lower()
    # Serialised anew: the connection-specific line a filter wrote is dropped, the framing is rsp's.
    assert b"content-length: 5" in head and b"connection: close" not in head and received.endswith(b"hello")


def test_an_in_place_change_after_an_add_is_a_change(make_session: Make) -> None:
    s = make_session(filters=[Adds([(b"X-Cache", b"MISS")], edit=True)])
    client = s.client()
    _, received = s.serve(client, GET, HEAD_5 + b"hello")
    assert b"Content-Type: text/html\r\n" in received and b"X-Cache: MISS\r\n" in received


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CacheStore]:
    s = CacheStore(str(tmp_path / "c.lmdb"), 8 * 1024 * 1024, clock=lambda: 1_800_000_000.0)
    yield s
    s.close()


def test_a_hit_head_is_what_the_full_path_writes(make_session: Make, store: CacheStore) -> None:
    flt = CacheFilter(CacheSettings("t"), store, lambda: 1_800_000_000.0)
    s = make_session(filters=[flt])
    client = s.client()
    s.serve(client, GET, b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nETag: \"1\"\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: 5\r\n\r\nhello")
    for version in (b"1.1", b"1.0"):
        client.send(GET.replace(b"HTTP/1.1", b"HTTP/" + version) if version == b"1.0" else GET)
        hit = client.take()
        head, body = hit.split(b"\r\n\r\n", 1)
        assert body == b"hello" and b"X-Cache: HIT" in head
        lines = head.split(b"\r\n")[1:]
        fields = [tuple(line.split(b": ", 1)) for line in lines]
        response = Response(200, [(n, v) for n, v in fields if n.lower() != b"connection"], 5)
        full = serialise_response(response, ResponseContext(version, version == b"1.1", False, False))
        assert head + b"\r\n\r\n" == full.data  # the same bytes as serialising the hit's fields anew
