"""rsp.http1.serialise: heads into neutral messages and changed messages back into HTTP/1 heads. An
unchanged message gives the bytes forward.py gives for its head; a change recomputes the framing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsp.errors import ProtocolError
from rsp.http1 import forward
from rsp.http1.events import RequestHead, ResponseHead
from rsp.http1.parser import RequestParser, ResponseParser
from rsp.http1.serialise import (
    local_response,
    request_of,
    request_with_added_fields,
    response_of,
    serialise_request,
    serialise_response,
)
from rsp.pipeline.messages import NO_BODY, UNKNOWN_LENGTH


def request(raw: bytes) -> RequestHead:
    head = RequestParser().feed(raw)[0]
    assert isinstance(head, RequestHead)
    return head


def response(raw: bytes, method: bytes = b"GET") -> ResponseHead:
    parser = ResponseParser()
    parser.expect(method)
    head = parser.feed(raw)[0]
    assert isinstance(head, ResponseHead)
    return head


REQUESTS = [
    b"GET /p?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n",
    b"GET /p HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: 5\r\n"
    b"X-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nVia: 1.0 up\r\n\r\n",
    b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n",
    b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET http://example.com:8080/abs?x HTTP/1.1\r\nHost: other\r\n\r\n",
    b"GET /old HTTP/1.0\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
]
CONTEXTS = [
    forward.RequestContext("192.0.2.7"),
    forward.RequestContext("10.0.0.2", trusted=True, forwarded=True, via=False, proto=b"https"),
    forward.RequestContext("2001:db8::1", forwarded=True, close=True),
]


@pytest.mark.parametrize("raw", REQUESTS)
@pytest.mark.parametrize("context", CONTEXTS)
def test_an_unchanged_request_serialises_as_forward_request_writes_it(raw: bytes,
                                                                       context: forward.RequestContext) -> None:
    head = request(raw)
    assert serialise_request(request_of(head, b"http"), head, context) == forward.forward_request(head, context)


RESPONSES = [
    (b"HTTP/1.1 200 OK\r\nServer: s\r\nContent-Length: 3\r\n\r\n", b"GET"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n\r\n", b"GET"),
    (b"HTTP/1.0 200 OK\r\nServer: s\r\n\r\n", b"GET"),
    (b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 12\r\n\r\n", b"GET"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", b"HEAD"),
    (b"HTTP/1.1 204 No Content\r\nKeep-Alive: timeout=5\r\n\r\n", b"GET"),
]


@pytest.mark.parametrize(("raw", "method"), RESPONSES)
@pytest.mark.parametrize(("version", "keep", "close", "via"),
                         [(b"1.1", True, False, True), (b"1.0", True, False, False), (b"1.1", False, True, False)])
def test_an_unchanged_response_serialises_as_forward_response_writes_it(raw: bytes, method: bytes, version: bytes,
                                                                         keep: bool, close: bool, via: bool) -> None:
    head = response(raw, method)
    context = forward.ResponseContext(version, keep, close, via)
    ours = serialise_response(response_of(head), context, head.version)
    theirs = forward.forward_response(head, context)
    assert (ours.data, ours.chunked, ours.keep_alive) == (theirs.data, theirs.chunked, theirs.keep_alive)


def lines(head: bytes) -> tuple[bytes, list[bytes]]:
    """A head's start line and its field lines, sorted: what a backend reads, less the order of the names."""
    start, *fields = head.split(b"\r\n")
    return start, sorted(f.lower() for f in fields if f)


@pytest.mark.parametrize("raw", REQUESTS)
@pytest.mark.parametrize("context", CONTEXTS)
def test_added_fields_spliced_into_the_forwarded_head_read_as_the_head_serialised_anew(
        raw: bytes, context: forward.RequestContext) -> None:
    head = request(raw)
    changed = request_of(head, b"http")
    changed.set(b"x-tier", b"gold")
    changed.set(b"x-two", b"2")
    spliced = request_with_added_fields(forward.forward_request(head, context), [(b"x-tier", b"gold"),
                                                                                 (b"x-two", b"2")])
    assert spliced is not None and spliced.endswith(b"\r\nx-tier: gold\r\nx-two: 2\r\n\r\n")
    assert lines(spliced) == lines(serialise_request(changed, head, context))


@pytest.mark.parametrize("name", [b"Host", b"content-length", b"Transfer-Encoding", b"connection", b"upgrade",
                                  b"X-Forwarded-For", b"forwarded", b"x-forwarded-proto", b"x-forwarded-host",
                                  b"Via", b"te"])
def test_a_field_rsp_writes_itself_is_never_spliced(name: bytes) -> None:
    head = request(REQUESTS[0])
    assert request_with_added_fields(forward.forward_request(head, CONTEXTS[0]), [(b"x-ok", b"1"),
                                                                                  (name, b"1")]) is None


def test_the_neutral_request_has_no_connection_specific_fields_and_an_origin_form_target() -> None:
    head = request(b"GET http://example.com/a?b HTTP/1.1\r\nHost: x\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n"
                   b"TE: trailers\r\nAccept: */*\r\n\r\n")
    req = request_of(head, b"https")
    assert (req.method, req.scheme, req.authority, req.target, req.path, req.query) == (
        b"GET", b"https", b"example.com", b"/a?b", b"/a", b"b")
    assert req.headers == [(b"Host", b"x"), (b"Accept", b"*/*")]
    assert not req.changed


def test_a_changed_target_and_host_are_written_with_the_original_host_as_x_forwarded_host() -> None:
    head = request(b"GET /a HTTP/1.1\r\nHost: public.example\r\nAccept: */*\r\n\r\n")
    req = request_of(head, b"http")
    req.target = b"/internal/a"
    req.set(b"host", b"backend.local")
    req.set(b"x-added", b"1")
    assert serialise_request(req, head, forward.RequestContext("192.0.2.7")).split(b"\r\n") == [
        b"GET /internal/a HTTP/1.1", b"Host: backend.local", b"Accept: */*", b"x-added: 1",
        b"X-Forwarded-For: 192.0.2.7", b"X-Forwarded-Proto: http", b"X-Forwarded-Host: public.example",
        b"Via: 1.1 rsp", b"", b""]


def test_framing_comes_from_body_length_not_from_what_a_filter_left_in_the_fields() -> None:
    head = request(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n")
    req = request_of(head, b"http")
    req.headers.append((b"Transfer-Encoding", b"gzip"))  # connection-specific: never forwarded
    req.headers.append((b"Content-Length", b"99"))  # a second length: dropped
    out = serialise_request(req, head, forward.RequestContext("192.0.2.7", via=False))
    assert out.count(b"Content-Length: 5\r\n") == 1 and b"99" not in out and b"Transfer-Encoding" not in out
    req.body_length = UNKNOWN_LENGTH
    out = serialise_request(req, head, forward.RequestContext("192.0.2.7", via=False))
    assert b"Content-Length" not in out and b"Transfer-Encoding: chunked\r\n" in out
    req.set(b"content-length", None)
    req.body_length = 12
    assert b"Content-Length: 12\r\n" in serialise_request(req, head, forward.RequestContext("192.0.2.7"))


def test_a_response_whose_length_a_filter_made_unknown_is_chunked_or_closed() -> None:
    head = response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: s\r\n\r\n")
    res = response_of(head)
    res.body_length = UNKNOWN_LENGTH
    res.status = 201
    res.reason = b""  # the standard phrase
    res.set(b"x-filter", b"yes")
    reply = serialise_response(res, forward.ResponseContext(b"1.1", True), head.version)
    assert reply.chunked and reply.keep_alive
    assert reply.data == (b"HTTP/1.1 201 Created\r\nServer: s\r\nx-filter: yes\r\nTransfer-Encoding: chunked\r\n"
                          b"\r\n")
    reply = serialise_response(res, forward.ResponseContext(b"1.0", True), head.version)
    assert not reply.chunked and not reply.keep_alive and b"Connection: close\r\n" in reply.data


def test_a_local_reply_has_its_length_also_for_head_and_none_for_204() -> None:
    ctx = forward.ResponseContext(b"1.1", True)
    assert serialise_response(local_response(403, [], b"denied", False), ctx).data == (
        b"HTTP/1.1 403 Forbidden\r\ncontent-length: 6\r\n\r\n")
    head_reply = local_response(200, [(b"Content-Type", b"text/plain")], b"hello", True)
    assert head_reply.body_length == NO_BODY
    assert b"content-length: 5\r\n" in serialise_response(head_reply, ctx).data
    assert serialise_response(local_response(204, [], b"", False), ctx).data == b"HTTP/1.1 204 No Content\r\n\r\n"


# Field lines that exercise what forwarding rewrites or drops; a head is a few of them in any order.
INTERESTING_LINES = [
    b"Host: example.com", b"Host: other", b"Content-Length: 5", b"Content-Length: 005", b"Transfer-Encoding: chunked",
    b"Connection: close", b"Connection: keep-alive, X-Hop", b"Connection: Upgrade", b"Upgrade: websocket",
    b"X-Hop: 1", b"Keep-Alive: timeout=5", b"TE: trailers", b"Trailer: X", b"Proxy-Connection: keep-alive",
    b"X-Forwarded-For: 1.1.1.1", b"X-Forwarded-Proto: https", b"X-Forwarded-Host: h", b"Forwarded: for=1.1.1.1",
    b"Via: 1.0 up", b"Accept: */*", b"accept:  text/html  ", b"Expect: 100-continue", b"Cookie: a=b",
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([b"GET", b"POST", b"HEAD", b"OPTIONS"]),
       st.sampled_from([b"/", b"/a?b=c", b"http://example.com:8080/x", b"*"]),
       st.sampled_from([b"1.1", b"1.0"]),
       st.lists(st.sampled_from(INTERESTING_LINES), max_size=6),
       st.sampled_from(CONTEXTS))
def test_any_accepted_unchanged_request_serialises_as_forward_request_writes_it(
        method: bytes, target: bytes, version: bytes, lines: list[bytes], context: forward.RequestContext) -> None:
    raw = b"%s %s HTTP/%s\r\n%s\r\n" % (method, target, version, b"".join(line + b"\r\n" for line in lines))
    try:
        events = RequestParser().feed(raw)
    except ProtocolError:
        return  # refused: nothing is forwarded
    head = events[0]
    assert isinstance(head, RequestHead)
    assert serialise_request(request_of(head, b"http"), head, context) == forward.forward_request(head, context)


RESPONSE_LINES = [
    b"Content-Length: 3", b"Content-Length: 03", b"Transfer-Encoding: chunked", b"Connection: close",
    b"Connection: keep-alive, X-Hop", b"X-Hop: 1", b"Keep-Alive: timeout=5", b"Server: s", b"ETag: \"x\"",
    b"set-cookie:  a=b  ", b"Trailer: X", b"Proxy-Connection: close",
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([b"GET", b"HEAD"]), st.sampled_from([b"200 OK", b"204 No Content", b"304 Not Modified",
                                                             b"404 Not Found", b"103 Early Hints"]),
       st.sampled_from([b"1.1", b"1.0"]), st.lists(st.sampled_from(RESPONSE_LINES), max_size=5),
       st.sampled_from([(b"1.1", True, False, True), (b"1.0", True, False, False), (b"1.1", False, True, False)]))
def test_any_accepted_unchanged_response_serialises_as_forward_response_writes_it(
        method: bytes, status_line: bytes, version: bytes, lines: list[bytes],
        context_args: tuple[bytes, bool, bool, bool]) -> None:
    raw = b"HTTP/%s %s\r\n%s\r\n" % (version, status_line, b"".join(line + b"\r\n" for line in lines))
    parser = ResponseParser()
    parser.expect(method)
    try:
        events = parser.feed(raw)
    except ProtocolError:
        return
    head = events[0]
    assert isinstance(head, ResponseHead)
    context = forward.ResponseContext(*context_args)
    ours = serialise_response(response_of(head), context, head.version)
    theirs = forward.forward_response(head, context)
    assert (ours.data, ours.chunked, ours.keep_alive) == (theirs.data, theirs.chunked, theirs.keep_alive)


def test_response_of_a_repeated_head_is_a_new_list_each_time() -> None:
    """The end-to-end fields are memoised per head, but each Response gets its own list (rsp.proxy.h2_stream
    appends Via to it in place)."""
    head = response(b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nServer: s\r\n"
                    b"Content-Length: 0\r\n\r\n")
    first = response_of(head)
    first.headers.append((b"via", b"1.1 rsp"))
    second = response_of(head)
    assert second.headers == [(b"Server", b"s"), (b"Content-Length", b"0")]
    assert second.headers is not first.headers


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from([*RESPONSE_LINES, b"X-Request-Id: 1", b"X-Request-Id: 2",
                                          b"Date: Sun, 06 Dec 2026 22:00:00 GMT", b"Server: t", b"TE: trailers"]),
                         max_size=6), min_size=1, max_size=4))
def test_response_of_heads_in_a_row_keeps_the_end_to_end_fields(sections: list[list[bytes]]) -> None:
    """response_of builds the fields from the parser's forwardable lines and the last head's (a line in the same
    place is reused, a new one split or taken from a memo): heads in a row, some alike, each give what the head's
    own fields give without the connection-specific ones (RFC 9110 §7.6.1)."""
    for lines in sections:
        raw = b"HTTP/1.1 200 OK\r\n%s\r\n" % b"".join(line + b"\r\n" for line in lines)
        parser = ResponseParser()
        parser.expect(b"GET")
        try:
            head = parser.feed(raw)[0]
        except ProtocolError:
            continue
        assert isinstance(head, ResponseHead)
        drop = forward.HOP_BY_HOP.union(head.connection)
        assert response_of(head).headers == [(n, v) for n, v in head.headers if n.lower() not in drop]
