"""The head-output caches (rsp.proxy.reply_cache) give what forwarding without them gives: on any sequence of
heads (through a parser, whose memos hand out heads sharing objects) and contexts, the cached bytes and
framing equal forward.forward_request / forward.forward_response of the same head and context."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rsp.errors import ProtocolError
from rsp.http1 import forward
from rsp.http1.events import RequestHead, ResponseHead
from rsp.http1.parser import RequestParser, ResponseParser
from rsp.proxy.reply_cache import RequestHeadCache, ResponseHeadCache

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

request_lines = st.sampled_from([b"GET /a HTTP/1.1", b"GET /b HTTP/1.1", b"GET /a HTTP/1.0", b"HEAD /a HTTP/1.1",
                                 b"GET http://other.example/a HTTP/1.1", b"OPTIONS * HTTP/1.1",
                                 b"POST /a HTTP/1.1", b"GET /a?x=1 HTTP/1.1"])
request_fields = st.lists(st.sampled_from([
    b"Host: example", b"Host: other", b"User-Agent: x", b"Accept: */*", b"Connection: close",
    b"Connection: keep-alive", b"Connection: upgrade", b"Upgrade: websocket", b"X-Forwarded-For: 10.0.0.1",
    b"Forwarded: for=10.0.0.1", b"Content-Length: 010", b"Content-Length: 0", b"Transfer-Encoding: chunked",
    b"Keep-Alive: timeout=5", b"Connection: x-hop", b"X-Hop: 1", b"Via: 1.0 other", b"X-Trail: a ",
]), max_size=5)
request_contexts = st.builds(forward.RequestContext, st.sampled_from(["192.0.2.1", "2001:db8::1", ""]),
                             st.booleans(), st.booleans(), st.booleans(), st.sampled_from([b"http", b"https"]),
                             st.sampled_from([None, True, False]), st.booleans(), st.sampled_from([b"", b"fb"]))


@given(st.lists(request_fields, min_size=1, max_size=2), st.lists(request_contexts, min_size=1, max_size=2),
       st.lists(st.tuples(request_lines, st.integers(0, 1), st.integers(0, 1)), min_size=1, max_size=12))
@SETTINGS
def test_request_cache_gives_what_forward_request_gives(field_sets: list[list[bytes]],
                                                        contexts: list[forward.RequestContext],
                                                        steps: list[tuple[bytes, int, int]]) -> None:
    """Field sections and contexts from pools of one or two, so that the cache is asked often with equal
    inputs, or inputs that differ in one thing only."""
    cache = RequestHeadCache()
    for line, fields, which in steps:
        context = contexts[which % len(contexts)]
        data = b"\r\n".join([line, *field_sets[fields % len(field_sets)]]) + b"\r\n\r\n"
        try:
            events = RequestParser().feed(data)
        except ProtocolError:
            continue
        head = events[0]
        assert isinstance(head, RequestHead)
        assert cache.forward(head, context) == forward.forward_request(head, context)


def test_request_cache_answers_a_repeated_head_from_memory() -> None:
    parser = RequestParser()
    cache = RequestHeadCache()
    context = forward.RequestContext("192.0.2.1")
    first = parser.feed(b"GET /a HTTP/1.1\r\nHost: example\r\n\r\n")[0]
    assert isinstance(first, RequestHead)
    out = cache.forward(first, context)
    second = parser.feed(b"GET /a HTTP/1.1\r\nHost: example\r\n\r\n")[0]
    assert isinstance(second, RequestHead)
    assert cache.forward(second, forward.RequestContext("192.0.2.1")) is out  # equal context, by value
    assert cache.forward(second, forward.RequestContext("192.0.2.2")) != out  # another input


status_lines = st.sampled_from([b"HTTP/1.1 200 OK", b"HTTP/1.1 200 Fine", b"HTTP/1.0 200 OK", b"HTTP/1.1 404 Nope",
                                b"HTTP/1.1 204 No Content", b"HTTP/1.1 304 Not Modified", b"HTTP/1.1 100 Continue"])
response_fields = st.lists(st.sampled_from([
    b"Server: x", b"Date: Sat, 28 Nov 2026 05:46:08 GMT", b"Date: Sat, 28 Nov 2026 05:46:09 GMT",
    b"X-Request-Id: 1", b"X-Request-Id: 2", b"Connection: close", b"Connection: keep-alive", b"Keep-Alive: x",
    b"Connection: x-hop", b"X-Hop: 1", b"Content-Length: 0", b"Content-Length: 00", b"Transfer-Encoding: chunked",
    b"X-Trail: a ",
]), max_size=5)
response_contexts = st.tuples(st.sampled_from([b"1.0", b"1.1"]), st.booleans(), st.booleans(), st.booleans())


@given(st.lists(response_fields, min_size=1, max_size=2), st.lists(response_contexts, min_size=1, max_size=2),
       st.lists(st.tuples(status_lines, st.integers(0, 1), st.integers(0, 1), st.sampled_from([b"GET", b"HEAD"])),
                min_size=1, max_size=12))
@SETTINGS
def test_response_cache_gives_what_forward_response_gives(
        field_sets: list[list[bytes]], contexts: list[tuple[bytes, bool, bool, bool]],
        steps: list[tuple[bytes, int, int, bytes]]) -> None:
    """Field sections and contexts from pools of one or two (see the request test)."""
    cache = ResponseHeadCache()
    parser = ResponseParser()  # one parser, as on a pooled backend connection: its memos answer repeats
    for line, fields, which, method in steps:
        version, keep_alive, close, via = contexts[which % len(contexts)]
        data = b"\r\n".join([line, *field_sets[fields % len(field_sets)]]) + b"\r\n\r\n"
        parser.expect(method)
        try:
            events = parser.feed(data)
        except ProtocolError:
            parser = ResponseParser()
            continue
        head = events[0]
        assert isinstance(head, ResponseHead)
        if head.body.kind == "close" or not head.keep_alive:
            parser = ResponseParser()  # the connection ends after this message
        elif head.body.kind == "chunked":
            parser.feed(b"0\r\n\r\n")
        expected = forward.forward_response(head, forward.ResponseContext(version, keep_alive, close, via))
        assert cache.head_bytes(head, version, keep_alive, close, via, False) == expected.data
        reply = cache.reply
        assert reply is not None
        assert (reply.chunked, reply.keep_alive) == (expected.chunked, expected.keep_alive)
