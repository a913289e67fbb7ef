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


# scheme://authority as a request gave it -> lower-cased: every request of a site names the same few origins,
# and a dict lookup costs less than a method call to lower(). Bounded (emptied when full).
_ORIGINS: Final[dict[bytes, bytes]] = {}
ORIGINS_MEMO_SIZE: Final = 256
ORIGIN_MEMO_LENGTH: Final = 256


def primary_key(scheme: bytes, authority: bytes, target: bytes) -> bytes:
    """scheme://authority/target with scheme and host lower-cased (RFC 9110 §4.2.3 normalisation)."""
    given = scheme + b"://" + authority
    origin = _ORIGINS.get(given)
    if origin is None:
        origin = given.lower()
        if len(given) > ORIGIN_MEMO_LENGTH:
            return origin + target  # (not kept: a long authority is not a site's usual one)
        if len(_ORIGINS) >= ORIGINS_MEMO_SIZE:
            _ORIGINS.clear()
        _ORIGINS[given] = origin
    return origin + target


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
    # on every stored miss. find(), not `in`: CPython's bytes `in` first tries the operand as an int and
    # raises and clears a TypeError (about 1.5k instructions) before it searches.
    if headers.count(_SPLIT) != max(2 * len(fields) - 1, 0) or headers.find(_LINE) >= 0:
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


# An entry up to this size is copied out of LMDB's buffer whole and sliced; a larger one's body apart.
WHOLE_COPY: Final = 16384
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
    """An entry from its bytes, or from LMDB's buffer (then copied out while the read transaction is open)."""
    if isinstance(data, bytes):
        return _decode(data, None)
    if len(data) <= WHOLE_COPY:
        return _decode(bytes(data), None)  # one copy, then compiled slices of bytes
    # A large entry: its head and its body copied out apart, so the body is copied once, not twice.
    if len(data) < _FIXED.size:
        raise CorruptEntry("not an rsp cache entry")
    fixed = _FIXED.unpack_from(data)
    end: int = _FIXED.size + fixed[8] + fixed[9] + fixed[10] + fixed[11]
    head = bytes(data[:end])
    return _decode(head, _body_of(data, head, end))


# The bodies of the large entries read lately, by their whole head (the URL, the status, the fields, the
# selecting values, the body's length, the times the fetch began and ended and the put's stamp, each from the
# clock: no two stored responses share them), so a hot 100 KiB object is copied out of LMDB's map once per
# worker instead of on every hit (the copy was a sixth of such a hit: docs/performance.md). The store still
# decides on every lookup what is stored: a purged, replaced or freshened entry is not found, or has another
# head; an LRU touch (at most once per LRU_INTERVAL) rewrites the stamp, so the body is copied once more then.
# Bounded in bytes per process; the oldest go first.
BODY_MEMO_BYTES: Final = 16 * 1024 * 1024
# A body over this share of the memo is copied each time (it would push out every other).
BODY_MEMO_LARGEST: Final = BODY_MEMO_BYTES // 4


class _BodyMemo:
    """The memo's bodies in insertion order and their total size (a class: mypyc keeps the int native)."""

    def __init__(self) -> None:
        self.bodies: dict[bytes, bytes] = {}
        self.size = 0

    def clear(self) -> None:
        self.bodies.clear()
        self.size = 0


_BODIES: Final = _BodyMemo()


def _body_of(data: memoryview, head: bytes, end: int) -> bytes:
    memo = _BODIES
    body = memo.bodies.get(head)
    if body is not None and len(body) == len(data) - end:  # (a torn value is still found CorruptEntry)
        return body
    body = bytes(data[end:])
    n = len(body)
    if n <= BODY_MEMO_LARGEST:
        bodies = memo.bodies
        while memo.size + n > BODY_MEMO_BYTES and bodies:
            memo.size -= len(bodies.pop(next(iter(bodies))))
        bodies[head] = body
        memo.size += n
    return body


def forget_bodies() -> None:
    """Empty the per-process body memo (tests; a forked worker starts with its parent's, which stays valid)."""
    _BODIES.clear()


def remembered_body_bytes() -> int:
    return _BODIES.size


def _decode(data: bytes, body: bytes | None) -> StoredResponse:
    """`data`: the entry's bytes, or its head's when `body` is given apart. Every part is a compiled slice of
    bytes with offsets as native ints (a slice of LMDB's buffer costs a view object and a bytes() call)."""
    if len(data) < _FIXED.size:
        raise CorruptEntry("not an rsp cache entry")
    fixed = _FIXED.unpack_from(data)
    if fixed[0] != MAGIC:
        raise CorruptEntry("not an rsp cache entry")
    # The lengths as native ints: the url, the reason, the fields, the selecting lines, the body.
    n_url: int = fixed[8]
    n_reason: int = fixed[9]
    n_fields: int = fixed[10]
    n_selecting: int = fixed[11]
    n_body: int = fixed[12]
    a = _FIXED.size
    b = a + n_url
    c = b + n_reason
    d = c + n_fields
    e = d + n_selecting
    if body is None:
        if e + n_body != len(data):
            raise CorruptEntry("lengths do not add up")
        body = data[e:]
    elif e != len(data) or len(body) != n_body:
        raise CorruptEntry("lengths do not add up")
    selecting: list[tuple[bytes, bytes | None]] = []
    if e > d:
        for name, value in _pairs(data[d:e]):
            if value[:1] == b"\x00":
                selecting.append((name, None))
            elif value[:1] == b"\x01":
                selecting.append((name, value[1:]))
            else:
                raise CorruptEntry("a selecting value without its marker")
    blob = data[c:d]
    entry = StoredResponse(data[a:b], fixed[1], _fields(blob), body, reason=data[b:c],
                           selecting=tuple(selecting), request_time=fixed[3], response_time=fixed[4],
                           initial_age=fixed[5], lifetime=fixed[6], flags=fixed[2], stamp=fixed[7])
    entry.blob = blob
    return entry


# At most this many entries' serialised field lines are kept per process (field_lines).
LINES_MEMO: Final = 512
_LINES_MEMO: Final[dict[bytes, bytes]] = {}


def field_lines(entry: StoredResponse) -> bytes:
    """The stored response's field lines written as HTTP/1 writes them (`name: value\r\n`; a stored response
    has no Content-Length nor connection-specific field), memoised by the stored bytes they come from: a hit
    then writes its head without serialising the fields again (Response.lines, CacheCore._answer)."""
    blob = entry.blob
    if blob:
        known = _LINES_MEMO.get(blob)
        if known is not None:
            return known
    lines = b"".join([name + b": " + value + b"\r\n" for name, value in entry.headers])
    if blob:
        if len(_LINES_MEMO) >= LINES_MEMO:
            _LINES_MEMO.clear()  # (bounded: a busy cache's hot entries are back in it at their next hit)
        _LINES_MEMO[blob] = lines
    return lines


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
