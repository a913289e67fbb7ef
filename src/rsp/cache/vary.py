"""Vary (RFC 9111 §4.1): the request fields a stored response was selected by, normalised, and matching.

A stored response records the normalised values of its selecting fields in the request that caused it
(None for an absent field: "absent only matches absent", §4.1). A later request matches when each of its
normalised values is equal. `Vary: *` never matches (`vary_names` returns None).
"""

from __future__ import annotations

from typing import Final

from rsp.pipeline.messages import Header, header_values

# Fields whose values compare case-insensitively (codings, charsets and language tags, RFC 9110 §8.4.1,
# §12.5.2, §8.5.1): lower-casing them is a normalisation "known to have identical semantics" (§4.1).
CASE_INSENSITIVE: Final = frozenset({b"accept-encoding", b"accept-charset", b"accept-language"})

Selecting = tuple[tuple[bytes, bytes | None], ...]


def vary_names(headers: list[Header]) -> tuple[bytes, ...] | None:
    """The lower-case field names of every Vary line, de-duplicated in order; None for `*`."""
    names: list[bytes] = []
    for value in header_values(headers, b"vary"):
        for part in value.split(b","):
            name = part.strip(b" \t").lower()
            if name == b"*":
                return None
            if name and name not in names:
                names.append(name)
    return tuple(names)


def normalise(headers: list[Header], name: bytes) -> bytes | None:
    """The field's lines combined (RFC 9110 §5.3), list members trimmed of OWS and empty members dropped."""
    lines = header_values(headers, name)
    if not lines:
        return None
    members = [m.strip(b" \t") for line in lines for m in line.split(b",")]
    value = b",".join(m for m in members if m)
    return value.lower() if name in CASE_INSENSITIVE else value


def selecting(request_headers: list[Header], names: tuple[bytes, ...]) -> Selecting:
    return tuple((name, normalise(request_headers, name)) for name in names)


def matches(stored: Selecting, request_headers: list[Header]) -> bool:
    if not stored:
        return True  # the usual case, no Vary
    return all(normalise(request_headers, name) == value for name, value in stored)


def variant_key(stored: Selecting) -> bytes:
    """The secondary key: one stored variant per distinct set of selecting values."""
    out = bytearray()
    for name, value in stored:
        out += name + (b"\x00" if value is None else b"\x01" + value) + b"\n"
    return bytes(out)
