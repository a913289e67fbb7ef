"""May a response be stored? RFC 9111 §3 (and §3.5 for Authorization) for a shared cache.

`refusal` returns None when the response may be stored, else the reason (a named constant, for the X-Cache
detail, the log and the tests).
"""

from __future__ import annotations

from typing import Final

from rsp.cache.directives import CacheControl
from rsp.cache.freshness import HEURISTIC_STATUSES, has_explicit_expiration
from rsp.cache.vary import vary_names
from rsp.pipeline.messages import Header, header_get

# rsp stores answers to GET only. A HEAD response has no content to answer a later GET with; HEAD requests
# are answered from stored GET responses, and a HEAD response freshens one (§4.3.5).
STORED_METHODS: Final = frozenset({b"GET"})
# Cacheable by default (RFC 9110 §15.1) less 206: rsp does not store or combine partial content (§3.3/§3.4).
CACHEABLE_BY_DEFAULT: Final = HEURISTIC_STATUSES - {206}
# Statuses never stored even with explicit freshness: interim responses, partial content, and 304 (which
# only ever updates a stored response, §4.3.4).
NEVER_STORED: Final = frozenset({206, 304})

NOT_GET: Final = "method"
STATUS: Final = "status"
NO_STORE: Final = "no-store"
PRIVATE: Final = "private"
AUTHORIZATION: Final = "authorization"
SET_COOKIE: Final = "set-cookie"
COOKIE: Final = "cookie-without-explicit-freshness"
VARY_STAR: Final = "vary-star"
USELESS: Final = "stale-without-validator"


def refusal(method: bytes, status: int, request_headers: list[Header], request_cc: CacheControl,
            response_headers: list[Header], response_cc: CacheControl, lifetime: float, *,
            cookies: bool, vary_checked: bool = False) -> str | None:
    """None when the response may be stored, else why not. `lifetime` is its freshness lifetime (0 when it
    has none); `cookies`: the cache is configured to store responses that set cookies, and responses to requests with
    cookies that carry no explicit freshness; `vary_checked`: the caller already refused `Vary: *`."""
    if method not in STORED_METHODS:
        return NOT_GET
    if status < 200 or status in NEVER_STORED:
        return STATUS
    if request_cc.no_store or response_cc.no_store:  # §5.2.1.5, §5.2.2.5
        return NO_STORE
    if response_cc.private:  # §5.2.2.7: a shared cache must not store it
        return PRIVATE
    if header_get(request_headers, b"authorization") is not None and not (
            response_cc.must_revalidate or response_cc.public or response_cc.s_maxage is not None):
        return AUTHORIZATION  # §3.5
    if not cookies:
        if header_get(response_headers, b"set-cookie") is not None:
            return SET_COOKIE
        # rsp's choice, like Varnish's builtin VCL: a response to a request with cookies is likely made for
        # that user; store it only when the origin said so explicitly (a page merely "cacheable by default"
        # and revalidated by Last-Modified would otherwise reach another user on a 304).
        if header_get(request_headers, b"cookie") is not None and not (
                has_explicit_expiration(response_headers, response_cc) or response_cc.public):
            return COOKIE
    if not vary_checked and vary_names(response_headers) is None:
        return VARY_STAR  # Vary: * never matches a later request (§4.1): storing it serves nobody
    # §3: a final status that is cacheable by default, or an explicit freshness, or public.
    if status not in CACHEABLE_BY_DEFAULT and not has_explicit_expiration(response_headers, response_cc) \
            and not response_cc.public:
        return STATUS
    if lifetime <= 0 and header_get(response_headers, b"etag") is None \
            and header_get(response_headers, b"last-modified") is None:
        # Stale at once and impossible to revalidate: every later request would fetch it in full anyway.
        return USELESS
    return None
