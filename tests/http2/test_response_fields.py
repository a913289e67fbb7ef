"""rsp.http2.heads.response_fields over heads in a row: it reuses the last head's conversion for a field equal
to the one in its place, so heads that differ in one field (a new X-Request-Id) or in their order still give
the header list RFC 9113 §8.3.2 asks for."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rsp.http2.heads import CONNECTION_SPECIFIC, response_fields
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
