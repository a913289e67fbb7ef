"""Updating a stored response from a newer head: a 304 to the cache's validation (RFC 9111 §4.3.4) or a 200
to a HEAD request (§4.3.5), with the header update rules of §3.2.
"""

from __future__ import annotations

from typing import Final

from rsp.cache.admission import NOT_STORED, response_flags
from rsp.cache.conditional import entity_tag, strong_match
from rsp.cache.directives import parse_cache_control
from rsp.cache.entry import StoredResponse
from rsp.cache.freshness import freshness_lifetime, initial_age
from rsp.pipeline.messages import Header, header_get, header_values

# §3.2: every field of the newer response replaces the stored one except Content-Length (the stored content
# is kept) and the fields excepted from storage (§3.1: connection-specific ones, which never reach a filter).
# Age is not stored at all: the cache computes it (§4.2.3). X-Cache-like fields a filter adds are not in a
# backend's 304.
NOT_UPDATED: Final = frozenset({b"content-length", b"age"})


def merge_headers(stored: list[Header], newer: list[Header], excluded: frozenset[bytes] = frozenset()
                  ) -> list[Header]:
    """`stored` with every field of `newer` (but NOT_UPDATED and `excluded`) replacing its lines (§3.2)."""
    update: dict[bytes, list[Header]] = {}
    for name, value in newer:
        low = name.lower()
        if low in NOT_UPDATED or low in excluded:
            continue
        update.setdefault(low, []).append((name, value))
    out: list[Header] = []
    placed: set[bytes] = set()
    for name, value in stored:
        low = name.lower()
        if low in update:
            if low not in placed:
                out.extend(update[low])
                placed.add(low)
            continue
        out.append((name, value))
    for low, lines in update.items():
        if low not in placed:
            out.extend(lines)
    return out


def selects(stored: list[Header], not_modified: list[Header]) -> bool:
    """§4.3.4: does this 304 identify the stored response? A strong ETag in the 304 must match the stored one
    strongly; else a Last-Modified must equal the stored one; with neither, the one stored response we
    validated is the one it updates."""
    tag = entity_tag(header_get(not_modified, b"etag"))
    if tag is not None and not tag[0]:
        stored_tag = entity_tag(header_get(stored, b"etag"))
        return stored_tag is not None and strong_match(tag, stored_tag)
    modified = header_get(not_modified, b"last-modified")
    if modified is not None:
        return header_get(stored, b"last-modified") == modified
    return True


def head_contradicts(stored: list[Header], stored_length: int, head: list[Header]) -> bool:
    """§4.3.5: a 200 to HEAD whose ETag, Last-Modified or Content-Length differ from the stored response's
    means the stored one is out of date (it is then invalidated rather than freshened)."""
    for name in (b"etag", b"last-modified"):
        new = header_get(head, name)
        if new is not None and new != header_get(stored, name):
            return True
    length = header_get(head, b"content-length")
    return length is not None and length.strip() != str(stored_length).encode()


def freshened(entry: StoredResponse, newer: list[Header], request_time: float, now: float, ttl: float | None,
              heuristic: bool, label: bytes) -> tuple[StoredResponse, bool]:
    """The stored response `entry` updated from a newer head (§3.2: its fields replace the stored ones, but
    for the stored response's no-cache and private field names, what is never stored and the cache's own
    `label` field), with the times of the exchange that fetched it (§4.2.3) and a lifetime recomputed from the
    merged fields (or `ttl`, a filter's override). The flag says whether it may still be stored: a newer
    no-store or private removes it (§3.2 lets the 304's directives apply)."""
    old_cc = parse_cache_control(header_values(entry.headers, b"cache-control"))
    merged = merge_headers(entry.headers, newer, old_cc.no_cache_fields | old_cc.private_fields | NOT_STORED
                           | {label})
    cc = parse_cache_control(header_values(merged, b"cache-control"))
    fresh = StoredResponse(
        entry.url, entry.status, merged, entry.body, reason=entry.reason, selecting=entry.selecting,
        request_time=request_time, response_time=now, initial_age=initial_age(newer, request_time, now),
        lifetime=ttl if ttl is not None else freshness_lifetime(entry.status, merged, cc, now, heuristic),
        flags=response_flags(cc))
    return fresh, not (cc.no_store or cc.private)
