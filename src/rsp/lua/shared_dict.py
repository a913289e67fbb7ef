"""ngx.shared's dictionaries, one set per machine, in LMDB: every worker process sees the same values.

One LMDB environment per machine (a directory under the runtime dir) whose main database holds every
dictionary: an entry's LMDB key is the dictionary's prefix (its name's length in one byte, then the name)
followed by the key, and under `\x00` + name is the count of bytes the dictionary holds (its size bound is kept
with that count). One keyspace rather than a named database per dictionary: a write to a named database also
rewrites that database's record in the main one at commit, a second B-tree update in every transaction (incr
costs about 1,400 instructions less this way, docs/performance.md). A value is stored with its type, its
flags and its expiry time; an expired entry reads as absent and is removed by the next write that meets it.
Every change is one LMDB write transaction: LMDB serialises writers across processes with its lock file, so
`incr` is atomic across workers, like nginx's shm zone under its mutex.

LMDB environments must not cross a fork: the master (or the single process) calls `prepare_store` to create
the directory and the environment (empty, at start; kept on reload, as nginx keeps its zones), and each worker
opens its own `SharedStore` after it started. No Lua here: rsp.lua.shared_lua adapts this to the ngx API.

Eviction differs from nginx's LRU: a write that does not fit removes expired entries first, then entries in
key order, and reports it (`forcible`); safe_set / safe_add refuse instead ("no memory").
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Final

import lmdb

# type tag (1 byte) + flags (uint32) + expiry (float64 epoch seconds, 0: never)
_HEAD: Final = struct.Struct("<cId")
_NUMBER: Final = struct.Struct("<d")
_HEAD_NUMBER: Final = struct.Struct("<cIdd")  # a number's whole entry, packed and unpacked in one call
_NUMBER_TAG: Final = ord("n")  # a number entry's first byte (NUMBER), as `raw[0]` gives it
# a number's whole entry unpacked and packed by incr's usual case (bound once: no method lookup per call; one
# call each is cheaper than keeping the head's bytes and packing the number alone, measured)
_UNPACK_ENTRY: Final = _HEAD_NUMBER.unpack
_NUMBER_ENTRY: Final = 21  # _HEAD_NUMBER.size, a constant (no attribute lookup per incr)
_PACK_ENTRY: Final = _HEAD_NUMBER.pack
_USED: Final = struct.Struct("<q")  # a dictionary's bytes in use, under META + name
STRING: Final = b"s"
NUMBER: Final = b"n"
BOOLEAN: Final = b"b"
# The byte count of dictionary NAME is kept under META + NAME: no dictionary's prefix starts with 0.
META: Final = b"\x00"
# A dictionary's name is at most this long (its length is its prefix's first byte).
MAX_NAME: Final = 255
# What one entry costs besides its key and value: LMDB's node header and page share, roughly (nginx's shm
# entry costs about as much). The bound counts this so that many tiny keys cannot overfill a dictionary.
ENTRY_OVERHEAD: Final = 64
# LMDB's map must hold every dictionary, the B-tree pages over them and the copies a write transaction makes
# before commit: twice the sum of the bounds, plus a floor for the metadata.
MAP_FACTOR: Final = 2
MAP_FLOOR: Final = 1024 * 1024
# ngx.shared.DICT:get_keys() returns at most this many keys by default (OpenResty's default).
DEFAULT_MAX_KEYS: Final = 1024
# Lock-free readers LMDB allows at once (its default is 126): a worker opens one read transaction at a time.
MAX_READERS: Final = 1024
DEFAULT_RUNTIME_DIR: Final = "/run/rsp"
# incr's LMDB calls through the types' methods: a call of one skips the method's lookup on the instance
_BEGIN: Final = lmdb.Environment.begin
_GET: Final = lmdb.Transaction.get
_PUT: Final = lmdb.Transaction.put
_COMMIT: Final = lmdb.Transaction.commit

Value = bytes | float | bool


class SharedDictError(Exception):
    """A store that cannot be opened or created (the message names the path)."""


def default_store_dir(config_path: str, runtime_dir: str = DEFAULT_RUNTIME_DIR) -> str:
    """Where a config's dictionaries live when `lua.shared_dir` is not set: one directory per config file
    under the runtime dir (or the temp dir when the runtime dir is not writable)."""
    tag = hashlib.sha256(os.path.abspath(config_path).encode()).hexdigest()[:12]
    base = runtime_dir if os.access(runtime_dir, os.W_OK) else tempfile.gettempdir()
    return os.path.join(base, f"lua-shared-{tag}")


def map_size(dicts: dict[str, int]) -> int:
    return MAP_FACTOR * sum(dicts.values()) + MAP_FLOOR


def key_prefix(name: str) -> bytes:
    """What starts every LMDB key of dictionary `name`: the name's length in one byte, then the name (so that
    no dictionary's keys can be taken for another's)."""
    raw = name.encode()
    if not 0 < len(raw) <= MAX_NAME:
        raise SharedDictError(f"a shared dictionary's name must be 1 to {MAX_NAME} bytes: {name!r}")
    return bytes((len(raw),)) + raw


def prepare_store(path: str, dicts: dict[str, int], *, fresh: bool) -> None:
    """Create the environment (`fresh`: empty, as at start). Call before forking workers."""
    for name in dicts:
        key_prefix(name)
    if fresh and os.path.isdir(path):
        shutil.rmtree(path)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        lmdb.open(path, map_size=map_size(dicts), max_readers=MAX_READERS).close()
    except (OSError, lmdb.Error) as exc:
        raise SharedDictError(f"cannot create the shared dictionaries at {path}: {exc}") from exc


def _encode(value: Value, flags: int, expires: float) -> bytes:
    if isinstance(value, bool):
        return _HEAD.pack(BOOLEAN, flags, expires) + (b"\x01" if value else b"\x00")
    if isinstance(value, int | float):
        return _HEAD_NUMBER.pack(NUMBER, flags, expires, float(value))
    return _HEAD.pack(STRING, flags, expires) + value


def _decode(raw: bytes) -> tuple[Value, int, float]:
    if len(raw) == _HEAD_NUMBER.size and raw[:1] == NUMBER:
        _, flags, expires, number = _HEAD_NUMBER.unpack(raw)
        return float(number), flags, expires
    kind, flags, expires = _HEAD.unpack_from(raw)
    body = raw[_HEAD.size:]
    if kind == NUMBER:
        return _NUMBER.unpack(body)[0], flags, expires
    if kind == BOOLEAN:
        return body == b"\x01", flags, expires
    return bytes(body), flags, expires


def _cost(key: bytes, raw_len: int) -> int:
    return len(key) + raw_len + ENTRY_OVERHEAD


class SharedStore:
    """A worker's handle on the machine's dictionaries. Every method is one LMDB transaction."""

    def __init__(self, path: str, dicts: dict[str, int], clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.bounds = dict(dicts)
        self.clock = clock
        try:
            # No fsync per commit (sync, metasync): ngx.shared is volatile like nginx's shared memory; what
            # matters is that every process sees every commit at once, which LMDB's shared map gives. writemap:
            # a commit writes into the shared map instead of pwrite()-ing its pages (a write transaction then
            # costs about 1.5 us instead of 6-9).
            self.env = lmdb.open(path, map_size=map_size(dicts), max_readers=MAX_READERS, create=False,
                                 sync=False, metasync=False, writemap=True)
        except (OSError, lmdb.Error) as exc:
            raise SharedDictError(f"cannot open the shared dictionaries at {path}: {exc}") from exc
        self.prefixes = {name: key_prefix(name) for name in dicts}

    def close(self) -> None:
        self.env.close()

    def has(self, name: str) -> bool:
        return name in self.prefixes

    # ---- reading ------------------------------------------------------------------------------------------

    def get(self, name: str, key: bytes, stale: bool = False) -> tuple[Value | None, int, bool]:
        """(value, flags, is_stale); value None when absent (or expired, unless `stale`)."""
        with self.env.begin() as txn:
            raw = txn.get(self.prefixes[name] + key)
        if raw is None:
            return None, 0, False
        value, flags, expires = _decode(raw)
        expired = bool(expires) and expires <= self.clock()
        if expired and not stale:
            return None, 0, False
        return value, flags, expired

    def ttl(self, name: str, key: bytes) -> float | None:
        """Seconds left (0: never expires), None when absent."""
        with self.env.begin() as txn:
            raw = txn.get(self.prefixes[name] + key)
        if raw is None:
            return None
        _, _, expires = _decode(raw)
        if not expires:
            return 0.0
        left = expires - self.clock()
        return left if left > 0 else None

    def keys(self, name: str, limit: int = DEFAULT_MAX_KEYS) -> list[bytes]:
        now = self.clock()
        out: list[bytes] = []
        prefix = self.prefixes[name]
        with self.env.begin() as txn:
            for key, raw in _entries(txn, prefix):
                _, _, expires = _decode(raw)
                if expires and expires <= now:
                    continue
                out.append(key[len(prefix):])
                if limit and len(out) >= limit:
                    break
        return out

    def used(self, name: str) -> int:
        with self.env.begin() as txn:
            return self._used(txn, name)

    # ---- writing ------------------------------------------------------------------------------------------

    def store(self, name: str, key: bytes, value: Value | None, exptime: float = 0, flags: int = 0, *,
              mode: str = "set", safe: bool = False) -> tuple[bool, str, bool]:
        """set / add / replace (mode), nil deletes. (ok, error, forcible): error "exists" (add), "not found"
        (replace), "no memory" (safe, or a value larger than the dictionary)."""
        now = self.clock()
        at = self.prefixes[name] + key  # the entry's LMDB key (its cost counts the dictionary's key alone)
        # begin (db, parent, write), get and put without keyword arguments (lmdb parses those slowly)
        with self.env.begin(None, None, True) as txn:
            old = txn.get(at)
            live = old is not None and not (_decode(old)[2] and _decode(old)[2] <= now)
            if mode == "add" and live:
                return False, "exists", False
            if mode == "replace" and not live:
                return False, "not found", False
            used = self._used(txn, name)
            if old is not None:
                used -= _cost(key, len(old))
            if value is None:
                if old is not None:
                    txn.delete(at)
                    self._set_used(txn, name, used)
                return True, "", False
            raw = _encode(value, flags, now + exptime if exptime and exptime > 0 else 0.0)
            cost = _cost(key, len(raw))
            if cost > self.bounds[name]:
                return False, "no memory", False
            forcible = False
            if used + cost > self.bounds[name]:
                if safe:
                    return False, "no memory", False
                used, forcible = self._evict(txn, name, at, used, used + cost - self.bounds[name], now)
            txn.put(at, raw)
            self._set_used(txn, name, used + cost)
            return True, "", forcible

    def incr(self, name: str, key: bytes, delta: float, init: float | None = None,
             init_ttl: float = 0) -> tuple[float | None, str, bool]:
        """Atomic add (one write transaction, serialised across processes). (new value, error, forcible)."""
        return self.incr_at(name, self.prefixes[name] + key, key, delta, init, init_ttl)

    def incr_at(self, name: str, at: bytes, key: bytes, delta: float, init: float | None,
                init_ttl: float) -> tuple[float | None, str, bool]:
        """incr of `key` whose LMDB key `at` (its dictionary's prefix + key) the caller made (ngx.shared's
        incr keeps the prefix: rsp.lua.shared_lua.SharedIncr)."""
        # begun (db, parent, write), read and written without keyword arguments (lmdb parses those slowly),
        # through the type's methods (no lookup on the instance) and committed by hand (`with` looks up
        # __enter__ / __exit__ on the transaction's type at every call)
        txn = _BEGIN(self.env, None, None, True)
        try:
            old = _GET(txn, at)
            if old is not None and len(old) == _NUMBER_ENTRY and old[0] == _NUMBER_TAG:
                # the usual incr: a live number replaced by a number of the same size (the bytes in use
                # unchanged: no byte count read or written), unpacked and packed in one call each, the clock read
                # only for an entry that expires
                flags: int
                expires: float  # typed: compared and added as C doubles (compiled)
                current: float
                _, flags, expires, current = _UNPACK_ENTRY(old)
                if not expires or expires > self.clock():
                    new = current + delta
                    _PUT(txn, at, _PACK_ENTRY(NUMBER, flags, expires, new))
                    _COMMIT(txn)
                    return new, "", False
            result = self._incr(txn, name, at, key, old, delta, init, init_ttl)
        except BaseException:
            txn.abort()
            raise
        _COMMIT(txn)
        return result

    def _incr(self, txn: lmdb.Transaction, name: str, at: bytes, key: bytes, old: bytes | None,
              delta: float, init: float | None, init_ttl: float) -> tuple[float | None, str, bool]:
        """incr's other cases: a new or expired entry (init), a value that is not a number. `at`: the entry's
        LMDB key, `key`: the dictionary's."""
        now = self.clock()
        expires = 0.0
        current: float
        decoded = _decode(old) if old is not None else None
        if decoded is not None and not (decoded[2] and decoded[2] <= now):
            value, flags, expires = decoded
            if isinstance(value, bool) or not isinstance(value, float):
                return None, "not a number", False
            current = value
        else:
            if init is None:
                return None, "not found", False
            current, flags = float(init), 0
            expires = now + init_ttl if init_ttl and init_ttl > 0 else 0.0
        new = current + delta
        raw = _encode(new, flags, expires)
        if old is not None and len(old) == len(raw):
            # a number replaced by a number (it had expired): the bytes in use unchanged (no byte count read or
            # write)
            txn.put(at, raw)
            return new, "", False
        used = self._used(txn, name) - (_cost(key, len(old)) if old is not None else 0)
        cost = _cost(key, len(raw))
        forcible = False
        if used + cost > self.bounds[name]:
            used, forcible = self._evict(txn, name, at, used, used + cost - self.bounds[name], now)
        txn.put(at, raw)
        self._set_used(txn, name, used + cost)
        return new, "", forcible

    def expire(self, name: str, key: bytes, exptime: float) -> bool:
        now = self.clock()
        at = self.prefixes[name] + key
        with self.env.begin(write=True) as txn:
            raw = txn.get(at)
            if raw is None:
                return False
            value, flags, expires = _decode(raw)
            if expires and expires <= now:
                return False
            txn.put(at, _encode(value, flags, now + exptime if exptime > 0 else 0.0))
            return True

    def flush_all(self, name: str) -> None:
        with self.env.begin(write=True) as txn:
            doomed = [key for key, _ in _entries(txn, self.prefixes[name])]
            for key in doomed:
                txn.delete(key)
            self._set_used(txn, name, 0)

    def flush_expired(self, name: str, limit: int = 0) -> int:
        now = self.clock()
        skip = len(self.prefixes[name])  # an entry's cost counts the dictionary's key, not the prefix
        with self.env.begin(write=True) as txn:
            doomed: list[tuple[bytes, int]] = []
            for key, raw in _entries(txn, self.prefixes[name]):
                expires = _decode(raw)[2]
                if expires and expires <= now:
                    doomed.append((key, len(raw)))
                    if limit and len(doomed) >= limit:
                        break
            for key, _size in doomed:
                txn.delete(key)
            self._set_used(txn, name, self._used(txn, name) - sum(_cost(k[skip:], n) for k, n in doomed))
        return len(doomed)

    # ---- bookkeeping --------------------------------------------------------------------------------------

    def _used(self, txn: lmdb.Transaction, name: str) -> int:
        raw = txn.get(META + name.encode())
        return int(_USED.unpack(raw)[0]) if raw else 0

    def _set_used(self, txn: lmdb.Transaction, name: str, used: int) -> None:
        txn.put(META + name.encode(), _USED.pack(max(0, used)))

    def _evict(self, txn: lmdb.Transaction, name: str, keep: bytes, used: int, need: int,
               now: float) -> tuple[int, bool]:
        """Free at least `need` bytes: expired entries first, then others in key order (not `keep`, an LMDB
        key)."""
        prefix = self.prefixes[name]
        freed = 0
        for only_expired in (True, False):
            doomed: list[bytes] = []
            for key, raw in _entries(txn, prefix):
                if freed >= need:
                    break
                expires = _decode(raw)[2]
                if key != keep and (not only_expired or (expires and expires <= now)):
                    freed += _cost(key[len(prefix):], len(raw))
                    doomed.append(key)
            for key in doomed:
                txn.delete(key)
            if freed >= need:
                break
        return used - freed, True


def _entries(txn: lmdb.Transaction, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(LMDB key, stored value) of every entry of the dictionary whose keys start with `prefix`, in key order
    (its keys are one contiguous range of the main database)."""
    cursor = txn.cursor()
    if not cursor.set_range(prefix):
        return
    for at, raw in cursor:
        key = bytes(at)
        if not key.startswith(prefix):
            return
        yield key, bytes(raw)
