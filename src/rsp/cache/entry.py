"""A stored response and its byte format in the store.

Keys (RFC 9111 §2): the primary key is the target URI (scheme, authority, origin-form target) and is the same
for every method (a HEAD is answered from a stored GET); the secondary key is the Vary selecting values
(rsp.cache.vary). The value is one self-describing byte string: a fixed header then length-prefixed fields,
so a worker reads an entry another worker wrote without any shared Python state.
"""

from __future__ import annotations

import struct
from typing import Final

from rsp.cache.vary import Selecting
from rsp.pipeline.messages import Header

MAGIC: Final = b"RSC1"
# flags
MUST_REVALIDATE: Final = 1  # must-revalidate, proxy-revalidate or s-maxage (§4.2.4, §5.2.2.2, §5.2.2.8)
NO_CACHE: Final = 2  # unqualified no-cache: every reuse is validated first (§5.2.2.4)

# magic, status, flags, request_time, response_time, initial_age, lifetime, stamp
_FIXED: Final = struct.Struct("<4sHIddddQ")
_LEN: Final = struct.Struct("<I")
_ABSENT: Final = 0xFFFFFFFF


class CorruptEntry(ValueError):
    """Bytes in the store that are not an entry this code wrote (another version, a torn write)."""


def primary_key(scheme: bytes, authority: bytes, target: bytes) -> bytes:
    """scheme://authority/target with scheme and host lower-cased (RFC 9110 §4.2.3 normalisation)."""
    return scheme.lower() + b"://" + authority.lower() + target


class StoredResponse:
    """One stored response (a variant of one URI). Times are POSIX seconds (see rsp.cache.freshness)."""

    __slots__ = ("body", "flags", "headers", "initial_age", "lifetime", "reason", "request_time", "response_time",
                 "selecting", "stamp", "status", "url")

    def __init__(self, url: bytes, status: int, headers: list[Header], body: bytes, *, reason: bytes = b"",
                 selecting: Selecting = (), request_time: float = 0.0, response_time: float = 0.0,
                 initial_age: float = 0.0, lifetime: float = 0.0, flags: int = 0, stamp: int = 0) -> None:
        self.url = url
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.selecting = selecting
        self.request_time = request_time
        self.response_time = response_time
        self.initial_age = initial_age
        self.lifetime = lifetime
        self.flags = flags
        self.stamp = stamp  # the LRU position, set by the store

    def __repr__(self) -> str:
        return f"StoredResponse({self.url!r}, {self.status}, {len(self.body)} bytes, life {self.lifetime})"


def _blob(out: bytearray, data: bytes | None) -> None:
    out += _LEN.pack(_ABSENT if data is None else len(data))
    if data is not None:
        out += data


def encode(entry: StoredResponse) -> bytes:
    out = bytearray(_FIXED.pack(MAGIC, entry.status, entry.flags, entry.request_time, entry.response_time,
                                entry.initial_age, entry.lifetime, entry.stamp))
    _blob(out, entry.url)
    _blob(out, entry.reason)
    out += _LEN.pack(len(entry.headers))
    for name, value in entry.headers:
        _blob(out, name)
        _blob(out, value)
    out += _LEN.pack(len(entry.selecting))
    for name, maybe in entry.selecting:
        _blob(out, name)
        _blob(out, maybe)
    _blob(out, entry.body)
    return bytes(out)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def count(self) -> int:
        if self.pos + 4 > len(self.data):
            raise CorruptEntry("truncated entry")
        (n,) = _LEN.unpack_from(self.data, self.pos)
        self.pos += 4
        return int(n)

    def blob(self) -> bytes | None:
        n = self.count()
        if n == _ABSENT:
            return None
        if self.pos + n > len(self.data):
            raise CorruptEntry("truncated entry")
        value = self.data[self.pos:self.pos + n]
        self.pos += n
        return value

    def some(self) -> bytes:
        value = self.blob()
        if value is None:
            raise CorruptEntry("missing field")
        return value


def decode(data: bytes) -> StoredResponse:
    if len(data) < _FIXED.size or data[:4] != MAGIC:
        raise CorruptEntry("not an rsp cache entry")
    _, status, flags, request_time, response_time, initial_age, lifetime, stamp = _FIXED.unpack_from(data)
    r = _Reader(data)
    r.pos = _FIXED.size
    url = r.some()
    reason = r.some()
    headers = [(r.some(), r.some()) for _ in range(r.count())]
    selecting = tuple((r.some(), r.blob()) for _ in range(r.count()))
    body = r.some()
    if r.pos != len(data):
        raise CorruptEntry("trailing bytes")
    return StoredResponse(url, status, headers, body, reason=reason, selecting=selecting,
                          request_time=request_time, response_time=response_time, initial_age=initial_age,
                          lifetime=lifetime, flags=flags, stamp=stamp)
