"""Updating a stored response from a newer head: a 304 to the cache's validation (RFC 9111 §4.3.4) or a 200
to a HEAD request (§4.3.5), with the header update rules of §3.2.
"""

from __future__ import annotations

from typing import Final

from rsp.cache.conditional import entity_tag, strong_match
from rsp.pipeline.messages import Header, header_get

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
