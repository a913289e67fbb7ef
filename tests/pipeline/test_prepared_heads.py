"""The two shortcuts of a response head a filter barely touched (rsp.http1.serialise): lines a filter add()ed
onto the bytes of an unchanged head (with_added_fields), and a head whose field lines are already written
(serialise_prepared, a cache hit's). Each gives what the full path (serialise_response) gives, or declines
when a line could change the framing or keep-alive (the head caches' declared-field rule)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsp.http1.forward import ResponseContext
from rsp.http1.serialise import local_response, serialise_prepared, serialise_response, with_added_fields
from rsp.pipeline.messages import NO_BODY, UNKNOWN_LENGTH, Header, Response

FIELDS: list[Header] = [(b"Content-Type", b"text/html"), (b"Cache-Control", b"max-age=60"), (b"ETag", b'"v1"'),
                        (b"Age", b"3"), (b"X-Cache", b"HIT")]
CONTEXTS = [
    ResponseContext(b"1.1", True, False, False),  # keep-alive
    ResponseContext(b"1.1", True, True, False),  # closing (draining, or the request body not read)
    ResponseContext(b"1.0", True, False, False),  # an HTTP/1.0 client asking for keep-alive
    ResponseContext(b"1.0", False, False, False),
    ResponseContext(b"1.1", False, False, False),  # Connection: close from the client
]


def lines_of(headers: list[Header]) -> bytes:
    return b"".join(name + b": " + value + b"\r\n" for name, value in headers if name.lower() != b"content-length")


@pytest.mark.parametrize("context", CONTEXTS)
def test_prepared_lines_give_the_bytes_serialise_response_gives(context: ResponseContext) -> None:
    body = b"x" * 1024
    # (serialise_prepared spells the line Content-Length, as serialise_response does for a head without one; a
    # local reply's own line would keep the spelling local_response gave it, lower-case.)
    response = local_response(200, [*FIELDS, (b"Content-Length", b"0")], body, head_request=False)
    prepared = serialise_prepared(response, lines_of(response.headers), context)
    full = serialise_response(response, context)
    assert prepared is not None
    assert (prepared.data, prepared.chunked, prepared.keep_alive) == (full.data, full.chunked, full.keep_alive)


@given(fields=st.lists(st.tuples(st.sampled_from([b"X-A", b"Vary", b"Expires", b"Last-Modified", b"X-Cache"]),
                                 st.binary(min_size=0, max_size=12).filter(lambda v: b"\r" not in v
                                                                           and b"\n" not in v)), max_size=6),
       status=st.sampled_from([200, 203, 301, 404, 410, 500]), length=st.integers(1, 10**9),
       reason=st.sampled_from([b"", b"Fine"]))
@settings(max_examples=200, deadline=None)
def test_prepared_lines_agree_with_the_full_path_for_any_fields(fields: list[Header], status: int, length: int,
                                                                reason: bytes) -> None:
    response = Response(status, list(fields), length, reason)
    for context in CONTEXTS:
        prepared = serialise_prepared(response, lines_of(fields), context)
        assert prepared is not None and prepared.data == serialise_response(response, context).data


@pytest.mark.parametrize(("status", "length"), [(200, NO_BODY), (200, UNKNOWN_LENGTH), (204, 5), (304, 5),
                                                (103, 5)])
def test_prepared_lines_decline_what_needs_the_full_framing(status: int, length: int) -> None:
    response = Response(status, list(FIELDS), length)
    assert serialise_prepared(response, lines_of(FIELDS), CONTEXTS[0]) is None


def test_added_lines_go_before_the_end_of_the_head() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nVia: 1.1 rsp\r\n\r\n"
    assert with_added_fields(head, [(b"X-Cache", b"MISS"), (b"X-Other", b"1")]) == (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nVia: 1.1 rsp\r\nX-Cache: MISS\r\nX-Other: 1\r\n\r\n")
    assert with_added_fields(head, [(b"X-Cache", b"MISS")]) == (  # one line (a cache's): its own short path
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nVia: 1.1 rsp\r\nX-Cache: MISS\r\n\r\n")


@pytest.mark.parametrize("name", [b"Content-Length", b"transfer-encoding", b"Connection", b"Keep-Alive",
                                  b"Upgrade", b"TE", b"Trailer", b"Proxy-Connection"])
def test_a_declared_field_is_never_added_to_the_bytes(name: bytes) -> None:
    """Framing and keep-alive are decided from the declared fields (rsp.http1.head_fields): one added to an
    unchanged head's bytes would contradict the verdict those bytes were written with."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    assert with_added_fields(head, [(b"X-Cache", b"HIT"), (name, b"1")]) is None
    assert with_added_fields(head, [(name, b"1")]) is None
    response = Response(200, [(b"X-A", b"1")], 5)
    response.add(name, b"1")
    assert serialise_prepared(response, b"X-A: 1\r\n", CONTEXTS[0]) is None


def test_add_appends_a_line_without_changing_the_head() -> None:
    response = Response(200, [(b"X-A", b"1")], 5)
    response.add(b"X-Cache", b"MISS")
    response.add(b"X-B", b"2")
    assert not response.changed
    assert response.headers == [(b"X-A", b"1"), (b"X-Cache", b"MISS"), (b"X-B", b"2")]
    assert response.added == [(b"X-Cache", b"MISS"), (b"X-B", b"2")]
