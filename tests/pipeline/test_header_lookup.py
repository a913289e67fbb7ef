"""header_get / header_values: case-insensitive by name (RFC 9110 §5.1), whatever the other lines' lengths."""

from __future__ import annotations

from rsp.pipeline.messages import Header, header_get, header_values

HEADERS: list[Header] = [(b"ETAG", b"\"1\""), (b"Etag2", b"x"), (b"Date", b"d"), (b"eTag", b"\"2\""), (b"Tag", b"t"),
                         (b"Cache-Control", b"max-age=1"), (b"cache-control", b"public")]


def test_header_get_finds_the_first_line_of_any_spelling() -> None:
    assert header_get(HEADERS, b"etag") == b"\"1\""
    assert header_get(HEADERS, b"tag") == b"t"
    assert header_get(HEADERS, b"etag2") == b"x"
    assert header_get(HEADERS, b"cache-control") == b"max-age=1"
    assert header_get(HEADERS, b"date") == b"d"
    assert header_get(HEADERS, b"dat") is None and header_get(HEADERS, b"x-cache") is None
    assert header_get([], b"etag") is None


def test_header_values_gives_every_line_of_any_spelling_in_order() -> None:
    assert header_values(HEADERS, b"etag") == [b"\"1\"", b"\"2\""]
    assert header_values(HEADERS, b"cache-control") == [b"max-age=1", b"public"]
    assert header_values(HEADERS, b"etag2") == [b"x"]
    assert header_values(HEADERS, b"vary") == []
