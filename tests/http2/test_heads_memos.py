"""rsp.http2.heads' memos of the last head: response_fields reuses the last head's conversion for a field equal
to the one in its place, so heads that differ in one field (a new X-Request-Id) or in their order still give
the header list RFC 9113 §8.3.2 asks for; build_request answers a repeated request's fields with a new Request
equal to what checking them again makes, and a malformed one is refused however often it repeats."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsp.errors import MalformedRequest
from rsp.http2.heads import CONNECTION_SPECIFIC, _build_request, build_request, response_fields
from rsp.pipeline.messages import Header, Response

FIELDS = st.sampled_from([(b"Server", b"nginx"), (b"Content-Type", b"text/plain"), (b"Connection", b"close"),
                          (b"TE", b"trailers"), (b"X-Request-Id", b"1"), (b"X-Request-Id", b"2"),
                          (b"Keep-Alive", b"timeout=5"), (b"ETag", b'"v1"'), (b"content-length", b"97")])


def expected(status: int, headers: list[Header]) -> list[Header]:
    return [(b":status", b"%d" % status), *((n.lower(), v) for n, v in headers
                                            if n.lower() not in CONNECTION_SPECIFIC and n.lower() != b"te")]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([200, 404, 1000]), st.lists(FIELDS, max_size=6)), min_size=1,
                max_size=5))
def test_heads_in_a_row_each_get_their_own_http2_fields(heads: list[tuple[int, list[Header]]]) -> None:
    for status, headers in heads:
        response = Response(status, list(headers))
        assert response_fields(response) == expected(status, headers)
        response.headers.append((b"Via", b"1.1 rsp"))  # the caller's list changed after the call
        assert response_fields(response) == expected(status, response.headers)


REQUEST_FIELDS = st.sampled_from([
    [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a.example"), (b":path", b"/")],
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/x"), (b"host", b"b.example"), (b"cookie", b"a=1"),
     (b"cookie", b"b=2")],
    [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"a.example"), (b":path", b"/up"),
     (b"content-length", b"3")],
])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(REQUEST_FIELDS, st.booleans()), min_size=1, max_size=6))
def test_repeated_request_fields_make_equal_new_requests(requests: list[tuple[list[Header], bool]]) -> None:
    for fields, ended in requests:
        if ended and fields[0][1] == b"POST":
            continue  # (Content-Length without DATA: refused, below)
        got = build_request(list(fields), b"https", ended)
        want = _build_request(list(fields), b"https", ended)
        assert (got.method, got.scheme, got.authority, got.target, got.headers, got.version, got.body_length) == (
            want.method, want.scheme, want.authority, want.target, want.headers, want.version, want.body_length)
        again = build_request(list(fields), b"https", ended)
        assert again is not got and again.headers is not got.headers and again.headers == got.headers


def test_a_malformed_request_is_refused_every_time() -> None:
    fields = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b"connection", b"close")]
    for _ in range(3):
        with pytest.raises(MalformedRequest):
            build_request(list(fields), b"https", True)
