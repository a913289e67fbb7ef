"""Invalidation by unsafe methods (RFC 9111 §4.4): which stored URIs a response to POST/PUT/DELETE/... removes.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urljoin, urlsplit

from rsp.cache.entry import primary_key
from rsp.pipeline.messages import Header, header_get

# RFC 9110 §9.2.1.
SAFE_METHODS: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE"})


def invalidated(method: bytes, status: int, scheme: bytes, authority: bytes, target: bytes,
                response_headers: list[Header]) -> list[bytes]:
    """The primary keys to invalidate: none for a safe method or an error status (§4.4 says "non-error":
    2xx and 3xx); else the target URI, and Location and Content-Location when they share its origin (same
    scheme and authority, so one site cannot purge another's entries)."""
    if method in SAFE_METHODS or not 200 <= status < 400:
        return []
    own = primary_key(scheme, authority, target)
    keys = [own]
    base = own.decode("latin-1")
    for name in (b"location", b"content-location"):
        raw = header_get(response_headers, name)
        if raw is None:
            continue
        try:
            url = urlsplit(urljoin(base, raw.decode("latin-1").strip()))
        except ValueError:
            continue
        if url.scheme.encode() != scheme.lower() or url.netloc.encode().lower() != authority.lower():
            continue
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        key = primary_key(scheme, authority, path.encode("latin-1"))
        if key not in keys:
            keys.append(key)
    return keys
