"""Conditional requests around a cache: the client's own (answered from the cache with 304, RFC 9110 §13.1,
§13.2.2; RFC 9111 §4.3.2) and the cache's validation requests (RFC 9111 §4.3.1).
"""

from __future__ import annotations

from typing import Final

from rsp.cache.dates import parse_http_date
from rsp.pipeline.messages import Header, header_get

# RFC 9111 §4.3.2: If-Match and If-Unmodified-Since "are not applicable to a cache", and If-Range asks for
# partial content rsp does not store: a request with any of them is passed to the origin.
ORIGIN_ONLY: Final = (b"if-match", b"if-unmodified-since", b"if-range")
# RFC 9110 §15.4.5: the fields a 304 carries that a 200 would have had (plus Last-Modified when there is no
# ETag, "useful ... if the response does not have an ETag field").
NOT_MODIFIED_FIELDS: Final = frozenset({b"cache-control", b"content-location", b"date", b"etag", b"expires",
                                        b"vary"})
CLIENT_VALIDATORS: Final = (b"if-none-match", b"if-modified-since")

ANY: Final = "*"
EntityTag = tuple[bool, bytes]  # (weak, opaque-tag with its quotes)


def parse_entity_tags(value: bytes) -> list[EntityTag] | str | None:
    """An If-None-Match / If-Match value: ANY for "*", else the tags (RFC 9110 §8.8.3); None when malformed.
    Commas may occur inside a tag (etagc), so the list is scanned, not split."""
    value = value.strip(b" \t")
    if value == b"*":
        return ANY
    tags: list[EntityTag] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i] in b" \t,":
            i += 1
        if i >= n:
            break
        weak = value.startswith(b"W/", i)
        if weak:
            i += 2
        if i >= n or value[i] != 0x22:
            return None
        end = value.find(b'"', i + 1)
        if end < 0:
            return None
        tags.append((weak, value[i:end + 1]))
        i = end + 1
        while i < n and value[i] in b" \t":
            i += 1
        if i < n and value[i] != 0x2C:
            return None
    return tags or None


def weak_match(a: EntityTag, b: EntityTag) -> bool:
    """RFC 9110 §8.8.3.2: opaque tags equal, weakness ignored."""
    return a[1] == b[1]


def strong_match(a: EntityTag, b: EntityTag) -> bool:
    return not a[0] and not b[0] and a[1] == b[1]


def entity_tag(value: bytes | None) -> EntityTag | None:
    if value is None:
        return None
    tags = parse_entity_tags(value)
    return tags[0] if isinstance(tags, list) and len(tags) == 1 else None


def origin_only(request_headers: list[Header]) -> bool:
    """The request carries a precondition only the origin can evaluate (§4.3.2)."""
    return any(header_get(request_headers, name) is not None for name in ORIGIN_ONLY)


def not_modified(method: bytes, request_headers: list[Header], stored_headers: list[Header],
                 response_time: float) -> bool:
    """Would the origin answer 304 to this request, judged on the stored response? RFC 9110 §13.2.2 order
    (If-None-Match before If-Modified-Since, which is ignored when If-None-Match is present) and §4.3.2's rule
    for a stored response without Last-Modified (use its Date, else when it was received)."""
    if method not in (b"GET", b"HEAD"):
        return False
    inm = header_get(request_headers, b"if-none-match")
    if inm is not None:
        tags = parse_entity_tags(inm)
        if tags == ANY:
            return True
        stored = entity_tag(header_get(stored_headers, b"etag"))
        # A malformed list matches nothing: the full response is always a correct answer.
        return stored is not None and isinstance(tags, list) and any(weak_match(t, stored) for t in tags)
    ims = header_get(request_headers, b"if-modified-since")
    if ims is None:
        return False
    since = parse_http_date(ims, response_time)
    if since is None:  # an invalid date: the field is ignored (RFC 9110 §13.1.3)
        return False
    raw = header_get(stored_headers, b"last-modified") or header_get(stored_headers, b"date")
    modified = parse_http_date(raw, response_time) if raw is not None else None
    return (response_time if modified is None else modified) <= since


def any_present(present: set[bytes], names: tuple[bytes, ...]) -> bool:
    """Whether one of `names` is in `present` (a request's lower-cased field names): membership tests, which
    compiled code does inline, where set.isdisjoint is a method call on every request."""
    return any(name in present for name in names)  # (mypyc makes this a loop, no generator object)


def not_modified_headers(stored_headers: list[Header]) -> list[Header]:
    """The stored fields a 304 from the cache repeats (RFC 9110 §15.4.5)."""
    has_etag = header_get(stored_headers, b"etag") is not None
    return [(k, v) for k, v in stored_headers
            if k.lower() in NOT_MODIFIED_FIELDS or (not has_etag and k.lower() == b"last-modified")]


def validators(stored_headers: list[Header]) -> list[Header]:
    """The cache's own validation fields for a stored response (RFC 9111 §4.3.1): If-None-Match from its
    ETag, If-Modified-Since from its Last-Modified. Empty: the response cannot be revalidated."""
    out: list[Header] = []
    etag = header_get(stored_headers, b"etag")
    if etag is not None:
        out.append((b"if-none-match", etag))
    modified = header_get(stored_headers, b"last-modified")
    if modified is not None:
        out.append((b"if-modified-since", modified))
    return out
