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

# RSC2: field lines as one NUL-separated run of names and values (RSC1 had a line per field); an entry of
# another version reads as CorruptEntry: a miss, dropped when evicted or purged (it is a cache).
MAGIC: Final = b"RSC2"
# flags
MUST_REVALIDATE: Final = 1  # must-revalidate, proxy-revalidate or s-maxage (§4.2.4, §5.2.2.2, §5.2.2.8)
NO_CACHE: Final = 2  # unqualified no-cache: every reuse is validated first (§5.2.2.4)

# magic, status, flags, request_time, response_time, initial_age, lifetime, stamp, then the lengths of the
# five variable parts: url, reason, headers, selecting, body.
_FIXED: Final = struct.Struct("<4sHIddddQIIIII")
# The stamp (the entry's LRU position, rsp.cache.store) sits at a fixed offset, so the store reads and rewrites
# it without decoding the rest.
_STAMP_AT: Final = struct.calcsize("<4sHIdddd")
_STAMP_FIELD: Final = struct.Struct("<Q")
# Field lines: names and values alternating, separated by NUL, which no field can hold (RFC 9110 §5.5, and
# rsp's parser refuses it), so a count of NULs checks a whole head and one C-level split decodes it. A
# selecting value (rare: Vary) is a line `name NUL (\x01value | \x00)`, lines joined with LF.
_LINE: Final = b"\n"
_SPLIT: Final = b"\x00"


class CorruptEntry(ValueError):
    """Bytes in the store that are not an entry this code wrote (another version, a torn write)."""


def primary_key(scheme: bytes, authority: bytes, target: bytes) -> bytes:
    """scheme://authority/target with scheme and host lower-cased (RFC 9110 §4.2.3 normalisation)."""
    return scheme.lower() + b"://" + authority.lower() + target


class StoredResponse:
    """One stored response (a variant of one URI). Times are POSIX seconds (see rsp.cache.freshness)."""

    __slots__ = ("blob", "body", "flags", "headers", "initial_age", "lifetime", "reason", "request_time",
                 "response_time", "selecting", "stamp", "status", "url")

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
        # The field lines as stored (decode sets it; b"" for an entry made here): equal blobs, equal fields, so
        # a process may key what it derives from the fields on it (CacheCore's serialised lines).
        self.blob = b""

    def __repr__(self) -> str:
        return f"StoredResponse({self.url!r}, {self.status}, {len(self.body)} bytes, life {self.lifetime})"


def encode(entry: StoredResponse) -> bytes:
    """The entry's bytes; ValueError when a field holds LF or NUL (no parsed message does; such a response is
    simply not stored)."""
    fields = entry.headers
    flat: list[bytes] = []
    for name, value in fields:
        flat.append(name)
        flat.append(value)
    headers = _SPLIT.join(flat)
    # 2n - 1 NULs separate n names and n values: any other is inside a field. LF is refused too (no parsed
    # field holds one, and a stored one could never be sent). C-level scans, not a pass in Python: this runs
    # on every stored miss.
    if headers.count(_SPLIT) != max(2 * len(fields) - 1, 0) or _LINE in headers:
        raise ValueError("a field holds LF or NUL")
    selecting = b""
    if entry.selecting:
        given = b"".join([name + (maybe or b"") for name, maybe in entry.selecting])
        if b"\n" in given or b"\x00" in given:
            raise ValueError("a selecting field holds LF or NUL")
        selecting = _LINE.join([name + _SPLIT + (b"\x00" if maybe is None else b"\x01" + maybe)
                                for name, maybe in entry.selecting])
    head = _FIXED.pack(MAGIC, entry.status, entry.flags, entry.request_time, entry.response_time,
                       entry.initial_age, entry.lifetime, entry.stamp, len(entry.url), len(entry.reason),
                       len(headers), len(selecting), len(entry.body))
    return b"".join((head, entry.url, entry.reason, headers, selecting, entry.body))


def _pairs(blob: bytes) -> list[tuple[bytes, bytes]]:
    """Selecting lines: `name NUL marker+value`, joined with LF."""
    if not blob:
        return []
    out = []
    for line in blob.split(_LINE):
        name, sep, value = line.partition(_SPLIT)
        if not sep:
            raise CorruptEntry("a field line without its separator")
        out.append((name, value))
    return out


# The decoded fields of the entries read lately, by their stored bytes: a hot entry's fields are split into
# pairs once per process, not on every hit. Entries decoded from equal bytes share the list, so nobody changes
# a StoredResponse's `headers` in place (every user copies or builds a new list). Emptied when full.
_FIELDS_MEMO: Final[dict[bytes, list[Header]]] = {}
FIELDS_MEMO_SIZE: Final = 512


def _fields(blob: bytes) -> list[tuple[bytes, bytes]]:
    """Field lines: names and values alternating, NUL-separated."""
    if not blob:
        return []
    known = _FIELDS_MEMO.get(blob)
    if known is not None:
        return known
    parts = blob.split(_SPLIT)
    if len(parts) % 2:
        raise CorruptEntry("a field name without its value")
    fields = [(parts[i], parts[i + 1]) for i in range(0, len(parts), 2)]
    if len(_FIELDS_MEMO) >= FIELDS_MEMO_SIZE:
        _FIELDS_MEMO.clear()
    _FIELDS_MEMO[blob] = fields
    return fields


def decode(data: bytes | memoryview) -> StoredResponse:
    """An entry from its bytes, or from LMDB's buffer (then every part is copied out once, the body included,
    while the read transaction is still open)."""
    if len(data) < _FIXED.size:
        raise CorruptEntry("not an rsp cache entry")
    (magic, status, flags, request_time, response_time, initial_age, lifetime, stamp, n_url, n_reason, n_headers,
     n_selecting, n_body) = _FIXED.unpack_from(data)
    if magic != MAGIC:
        raise CorruptEntry("not an rsp cache entry")
    e = _FIXED.size + n_url + n_reason + n_headers + n_selecting
    if e + n_body != len(data):
        raise CorruptEntry("lengths do not add up")
    # Two copies out of the buffer, the head and the body; the head's parts are then sliced from bytes (a
    # compiled slice each, where a slice of the buffer costs a view object and a bytes() call: every hit).
    head = bytes(data[:e])
    body = bytes(data[e:])
    b = _FIXED.size + n_url
    c = b + n_reason
    d = c + n_headers
    selecting: list[tuple[bytes, bytes | None]] = []
    if n_selecting:
        for name, value in _pairs(head[d:e]):
            if value[:1] == b"\x00":
                selecting.append((name, None))
            elif value[:1] == b"\x01":
                selecting.append((name, value[1:]))
            else:
                raise CorruptEntry("a selecting value without its marker")
    blob = head[c:d]
    entry = StoredResponse(head[_FIXED.size:b], status, _fields(blob), body, reason=head[b:c],
                           selecting=tuple(selecting), request_time=request_time, response_time=response_time,
                           initial_age=initial_age, lifetime=lifetime, flags=flags, stamp=stamp)
    entry.blob = blob
    return entry


def stamp_of(data: bytes | memoryview) -> int:
    """The stamp of an encoded entry (its LRU position); CorruptEntry when it is not one."""
    if len(data) < _FIXED.size or bytes(data[:4]) != MAGIC:
        raise CorruptEntry("not an rsp cache entry")
    stamp: int = _STAMP_FIELD.unpack_from(data, _STAMP_AT)[0]
    return stamp


def with_stamp(data: bytes | memoryview, stamp: int) -> bytes:
    """A copy of an encoded entry with another stamp."""
    out = bytearray(data)
    _STAMP_FIELD.pack_into(out, _STAMP_AT, stamp)
    return bytes(out)


def url_of(data: bytes | memoryview) -> bytes:
    """Only the URI of an encoded entry (a ban scans every entry: no need to decode the rest)."""
    if len(data) < _FIXED.size or bytes(data[:4]) != MAGIC:
        raise CorruptEntry("not an rsp cache entry")
    n_url = _FIXED.unpack_from(data)[8]
    return bytes(data[_FIXED.size:_FIXED.size + n_url])
