"""The cache's store: one LMDB environment per configured cache, shared by every process on the machine.

Why LMDB: every worker maps the same file, readers never block (MVCC), one writer at a time across processes
(its lock file), and a crash of one worker leaves the data intact; so a response stored by one worker is a
hit in every other, the size bound is the file's, and entries survive a worker restart and a reload.

Layout, in three named databases of the one environment:
- `objects`: objkey -> encoded StoredResponse (rsp.cache.entry). objkey = 16 bytes of SHA-256(primary key) +
  8 bytes of SHA-256(secondary key), so every variant of a URI shares a 16-byte prefix (one range scan finds
  them) and keys stay under LMDB's 511-byte limit however long the URI; the entry holds its full URI, and a
  prefix collision is checked against it.
- `lru`: stamp (8 bytes, big-endian microseconds) + objkey -> b"": oldest first, the eviction order. The
  entry's own stamp is in its value (rsp.cache.entry.stamp_of), so its `lru` row is found from the entry: a
  put writes two rows (object, lru) besides the byte count, and a lookup reads only the objects. An `lru` row
  whose entry holds another stamp is left over (from a store written before the stamp moved there, whose
  `meta` rows objkey -> stamp are unused now): eviction drops such a row and keeps the entry.
- `meta`: b"used" -> the bytes charged for everything stored; the coalescing marks.

Size: `map_size` is the configured size, so the file can never grow past it; stored entries are charged
their page-rounded size and kept under DATA_FRACTION of it (B-tree pages, copy-on-write and the freelist need
the rest); if LMDB still reports the map full, a batch of the oldest entries is evicted and the put tried once
more. Eviction is approximate LRU: a hit moves an entry to the young end only when its stamp is older than
LRU_INTERVAL (Varnish's `lru_interval` does the same, default 2 s), so most hits never take the write lock.

Fork: an LMDB environment must not be used across fork(); each process opens its own on first use
(`_env()` compares the pid), so a parent may build the filter and the processes it forks use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

import lmdb

from rsp.cache.entry import CorruptEntry, StoredResponse, decode, encode, stamp_of, url_of, with_stamp
from rsp.cache.memory_files import LOCK_SUFFIX
from rsp.cache.vary import variant_key
from rsp.errors import CacheStoreError, StartupError
from rsp.logs import get_logger

# Share of the map the entries' charged bytes may use (see the module docstring).
DATA_FRACTION: Final = 0.6
# LMDB's page: a value bigger than about half a page goes to its own run of overflow pages.
PAGE: Final = 4096
INLINE_LIMIT: Final = PAGE // 2 - 64
# Per-entry bookkeeping: the node headers, the lru row and the stamp row.
ENTRY_OVERHEAD: Final = 160
LRU_INTERVAL: Final = 2.0
# When LMDB says the map is full despite the accounting: free this share of the budget, then retry once.
FULL_EVICT_SHARE: Final = 0.125
PREFIX: Final = 16
# Variants kept per URI: a `Vary: User-Agent` would otherwise make one URI thousands of entries, each read on
# every lookup of it. The oldest variant makes room (Varnish has no bound and warns about this Vary).
MAX_VARIANTS: Final = 16
MAX_DBS: Final = 3
_USED: Final = b"used"
# Coalescing markers in `meta`, per URI: "L:" + 16 bytes of its hash -> kind (1 byte) + until (8-byte float).
_MARK: Final = b"L:"
_MARK_VALUE: Final = struct.Struct("<Bd")
NO_MARK: Final = 0
BUSY: Final = 1  # a fetch of this URI is under way (somewhere on the machine) until `until`
PASS: Final = 2  # its last response could not be stored: don't wait for fetches of it until `until`
CLAIMED: Final = 3  # claim(): this caller now holds the fetch
_log = get_logger()
_STAMP: Final = struct.Struct(">Q")


def _charge(key: bytes, value: bytes | memoryview) -> int:
    n = len(key) + len(value)
    if n <= INLINE_LIMIT:
        return n + ENTRY_OVERHEAD
    return -(-(n + 16) // PAGE) * PAGE + ENTRY_OVERHEAD


@contextmanager
def _failures(what: str) -> Iterator[None]:
    """LMDB errors at run time (a full disk under `path`, a damaged file) as one typed error the filter
    catches: the exchange then goes on without the cache."""
    try:
        yield
    except lmdb.Error as exc:
        raise CacheStoreError(f"cache store {what}: {exc}") from exc


# url -> its PREFIX bytes of SHA-256: a miss hashes its URI for the lookup, the claim and the put, and a hot
# URI is looked up again and again; a digest costs about as much as a whole LMDB get (docs/performance.md).
# Bounded in entries and in the URI lengths it keeps; emptied when full (like rsp.cache.dates' memo).
_DIGESTS: Final[dict[bytes, bytes]] = {}
DIGEST_MEMO_SIZE: Final = 1024
DIGEST_MEMO_URL: Final = 512
# The secondary key's hash of the usual case: no Vary.
_NO_VARIANT: Final = hashlib.sha256(b"").digest()[:8]


def url_prefix(url: bytes) -> bytes:
    """The first PREFIX bytes of SHA-256(url): the key prefix every variant of `url` shares."""
    found = _DIGESTS.get(url)
    if found is not None:
        return found
    digest = hashlib.sha256(url).digest()[:PREFIX]
    if len(url) <= DIGEST_MEMO_URL:
        if len(_DIGESTS) >= DIGEST_MEMO_SIZE:
            _DIGESTS.clear()
        _DIGESTS[url] = digest
    return digest


def _owns(value: bytes | memoryview, lru_key: bytes) -> bool:
    """Whether the `lru` row `lru_key` is the entry `value`'s own (not a row left over, see the docstring)."""
    try:
        return _STAMP.pack(stamp_of(value)) == lru_key[:_STAMP.size]
    except CorruptEntry:
        return True  # unreadable: evict it


def object_key(url: bytes, secondary: bytes) -> bytes:
    return url_prefix(url) + (hashlib.sha256(secondary).digest()[:8] if secondary else _NO_VARIANT)


# This process's id, kept current across fork: the store asks on every lookup whether its handle was inherited
# across a fork, and os.getpid() is a system call.
_PROCESS: Final = [os.getpid()]


def _forked() -> None:
    _PROCESS[0] = os.getpid()


os.register_at_fork(after_in_child=_forked)


class CacheStore:
    """One cache's LMDB environment. `size`: the map size and so the file's bound (bytes). `clock`: wall
    clock seconds (injected in tests)."""

    def __init__(self, path: str, size: int, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.size = size
        self.budget = int(size * DATA_FRACTION)
        self.clock = clock
        self._pid = -1
        self._handle: lmdb.Environment | None = None
        self._objects: lmdb._Database | None = None
        self._lru: lmdb._Database | None = None
        self._meta: lmdb._Database | None = None
        self.evicted = 0  # entries this process evicted (for metrics)

    # ---- environment ------------------------------------------------------------------------------------

    def _env(self) -> lmdb.Environment:
        if self._handle is not None and self._pid == _PROCESS[0]:
            return self._handle
        if self._handle is not None:
            # Inherited across fork: LMDB forbids using it here. py-lmdb's close() in the child releases the
            # handle without touching the parent's reader slots or locks (tests/cache/test_store.py checks
            # that the parent's open read transaction survives), and lets this process open its own.
            self._handle.close()
            self._handle = None
        # writemap: commits write into the map instead of through pwrite (half the cost of a small write
        # transaction, measured); its risk, a stray write into the map, is a C bug's, not Python's. Not synced:
        # it is a cache (a machine crash may tear a disk-backed file; open() then starts afresh).
        env = lmdb.open(self.path, subdir=False, map_size=self.size, max_dbs=MAX_DBS, sync=False,
                        metasync=False, readahead=False, meminit=False, writemap=True, mode=0o600)
        self._objects = env.open_db(b"objects")
        self._lru = env.open_db(b"lru")
        self._meta = env.open_db(b"meta")
        env.reader_check()  # free the reader slots of dead processes (a killed worker)
        self._handle, self._pid = env, _PROCESS[0]
        return env

    def open(self) -> None:
        """Open the environment now (at a process's start), so that a bad `path` stops the start with the
        reason instead of failing the first request."""
        try:
            self._env()
        except (lmdb.CorruptedError, lmdb.InvalidError, lmdb.VersionMismatchError) as exc:
            # A damaged or foreign file (a machine crash with a disk `path`: writes are not synced, it is a
            # cache): start afresh rather than refuse to start.
            _log.warning("cache store %s is unusable (%s): starting with an empty store", self.path, exc)
            self._handle = None
            for name in (self.path, self.path + LOCK_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name)
            self._open_or_fail()
        except lmdb.Error as exc:
            raise StartupError(f"cannot open the cache store {self.path}: {exc}") from exc

    def _open_or_fail(self) -> None:
        try:
            self._env()
        except lmdb.Error as exc:
            raise StartupError(f"cannot open the cache store {self.path}: {exc}") from exc

    def close(self) -> None:
        if self._handle is not None and self._pid == _PROCESS[0]:
            self._handle.close()
        self._handle = None

    # ---- reads --------------------------------------------------------------------------------------------

    def lookup(self, url: bytes) -> list[StoredResponse]:
        """Every stored variant of `url` (its stamp filled in). Unreadable entries are skipped."""
        try:  # not _failures(): this runs on every request, and a context manager costs more than the read
            return self._lookup(url)
        except lmdb.Error as exc:
            raise CacheStoreError(f"cache store read: {exc}") from exc

    def _lookup(self, url: bytes) -> list[StoredResponse]:
        env = self._env()
        prefix = url_prefix(url)
        out: list[StoredResponse] = []
        # Values as views of the map (buffers): decode copies them out. py-lmdb's arguments by position and
        # the transaction ended by hand, not by `with` (its keyword dict and __exit__ cost more than the read).
        txn = env.begin(self._objects, None, False, True)
        try:
            cursor = txn.cursor()
            found = cursor.set_range(prefix)
            # The cursor stepped by hand (no iterator and its (key, value) tuple per row): a hit is one row.
            while found and cursor.key()[:PREFIX] == prefix:
                try:
                    entry = decode(cursor.value())
                    if entry.url == url:
                        out.append(entry)  # its stamp decoded with it
                except CorruptEntry:
                    pass
                found = cursor.next()
        finally:
            txn.abort()  # a read: nothing to commit
        return out

    def used(self) -> int:
        with self._env().begin() as txn:
            raw = txn.get(_USED, db=self._meta)
        return _STAMP.unpack(raw)[0] if raw is not None else 0

    def count(self) -> int:
        with self._env().begin() as txn:
            return int(txn.stat(self._objects)["entries"])

    # ---- writes -------------------------------------------------------------------------------------------

    def _stamp(self) -> int:
        return int(self.clock() * 1_000_000)

    def _remove(self, txn: lmdb.Transaction, key: bytes, value: bytes | memoryview) -> int:
        try:
            txn.delete(_STAMP.pack(stamp_of(value)) + key, db=self._lru)
        except CorruptEntry:
            pass  # no lru row can be found for it; eviction drops the row when it comes first
        txn.delete(key, db=self._objects)
        return _charge(key, value)

    def _evict(self, txn: lmdb.Transaction, used: int, target: int) -> int:
        if used <= target:
            return used  # the usual case: no cursor to open
        cursor = txn.cursor(self._lru)
        while used > target and cursor.first():
            lru_key = bytes(cursor.key())
            key = lru_key[_STAMP.size:]
            value = txn.get(key, db=self._objects)
            cursor.delete()
            if value is not None and _owns(value, lru_key):
                txn.delete(key, db=self._objects)
                used -= _charge(key, value)
                self.evicted += 1
        return max(used, 0)

    def put(self, entry: StoredResponse, unmark: bool = False) -> bool:
        """Store (or replace) the variant; False when it cannot fit at all. `unmark`: remove the URI's
        coalescing mark in the same transaction (the fetch that held it is done)."""
        try:  # not _failures(): a context manager costs more than a small write (every stored miss)
            stored = self._put(entry, unmark)
        except lmdb.Error as exc:
            raise CacheStoreError(f"cache store write: {exc}") from exc
        if unmark and not stored:
            self.release(entry.url, self.clock())
        return stored

    def _put(self, entry: StoredResponse, unmark: bool) -> bool:
        # (no variant_key call without Vary, the usual case: it builds an empty bytearray and its bytes)
        key = object_key(entry.url, variant_key(entry.selecting) if entry.selecting else b"")
        entry.stamp = self._stamp()
        try:
            value = encode(entry)
        except ValueError:
            return False  # a field no parsed message has (LF or NUL): not storable
        need = _charge(key, value)
        if need > self.budget:
            return False
        env = self._env()
        for attempt in range(2):
            try:
                # Every py-lmdb call with its arguments by position (a keyword costs a dict per call) and the
                # transaction committed by hand (no `with`): this runs on every stored miss.
                txn = env.begin(self._objects, None, True)
                try:
                    self._write(txn, key, value, entry, need, unmark, attempt)
                except BaseException:
                    txn.abort()
                    raise
                txn.commit()
                return True
            except lmdb.MapFullError:
                continue
        return False

    def _write(self, txn: lmdb.Transaction, key: bytes, value: bytes, entry: StoredResponse, need: int,
               unmark: bool, attempt: int) -> None:
        """The rows of one put, in `txn` (whose default database is `objects`)."""
        meta = self._meta
        raw = txn.get(_USED, None, meta)
        used: int = _STAMP.unpack(raw)[0] if raw is not None else 0
        if not attempt and not entry.selecting and txn.put(key, value, False, False):
            # The usual case: a new URI without Vary. One put that fails when the key is there (no get
            # first); the room is made after it, as before it: the new entry's LRU row is not written yet, so
            # eviction cannot take it, and LMDB's own MapFullError still retries below with the old order.
            used = self._evict(txn, used, self.budget - need)
        else:
            old = txn.get(key)
            if old is not None:
                used -= self._remove(txn, key, old)
            elif entry.selecting:
                used = self._trim_variants(txn, key[:PREFIX], used)
            if attempt:
                used = self._evict(txn, used, int(self.budget * (1 - FULL_EVICT_SHARE)) - need)
            used = self._evict(txn, used, self.budget - need)
            txn.put(key, value)
        # int.to_bytes(8, "big") is _STAMP.pack's bytes as one native call (mypyc), not a call of a struct method.
        lru_key = entry.stamp.to_bytes(8, "big") + key
        # append: the stamp is the newest (the usual case), so LMDB adds at the end without a search; a put
        # out of order (another worker's newer stamp committed first) returns False and is written normally.
        if not txn.put(lru_key, b"", False, True, True, self._lru):
            txn.put(lru_key, b"", False, True, False, self._lru)
        txn.put(_USED, (used + need).to_bytes(8, "big"), False, True, False, meta)
        if unmark:
            txn.delete(_MARK + key[:PREFIX], b"", meta)

    def _trim_variants(self, txn: lmdb.Transaction, prefix: bytes, used: int) -> int:
        """Before a new variant of a URI is added: remove its oldest variants beyond MAX_VARIANTS - 1."""
        cursor = txn.cursor(self._objects)
        variants: list[tuple[bytes, bytes, int]] = []  # (stamp, key, charge)
        if cursor.set_range(prefix):
            for key, value in cursor:
                if bytes(key[:PREFIX]) != prefix:
                    break
                key_bytes = bytes(key)
                try:
                    stamp = stamp_of(value)
                except CorruptEntry:
                    stamp = 0  # unreadable: the first to go
                variants.append((_STAMP.pack(stamp), key_bytes, _charge(key_bytes, value)))
        variants.sort()
        for _, doomed, charge in variants[:max(0, len(variants) - MAX_VARIANTS + 1)]:
            stored = txn.get(doomed, db=self._objects)
            if stored is not None:
                self._remove(txn, doomed, stored)
                used -= charge
                self.evicted += 1
        return max(used, 0)

    def _get_used(self, txn: lmdb.Transaction) -> int:
        raw = txn.get(_USED, db=self._meta)
        return _STAMP.unpack(raw)[0] if raw is not None else 0

    def touch(self, entry: StoredResponse) -> None:
        """A hit: move the entry to the young end of the LRU, at most once per LRU_INTERVAL."""
        now = self._stamp()
        if now - entry.stamp < LRU_INTERVAL * 1_000_000:
            return  # the usual case: no write at all
        with _failures("write"):
            self._touch(entry, now)

    def _touch(self, entry: StoredResponse, now: int) -> None:
        key = object_key(entry.url, variant_key(entry.selecting))
        with self._env().begin(write=True) as txn:
            value = txn.get(key, db=self._objects)
            if value is None or stamp_of(value) != entry.stamp:  # evicted, replaced or touched meanwhile
                return
            # The entry is rewritten with its new stamp: at most once per LRU_INTERVAL per entry (one copy of
            # its bytes), and in exchange neither a put nor a lookup touches a separate stamp row.
            txn.delete(_STAMP.pack(entry.stamp) + key, db=self._lru)
            txn.put(_STAMP.pack(now) + key, b"", db=self._lru)
            txn.put(key, with_stamp(value, now), db=self._objects)
        entry.stamp = now

    # ---- coalescing markers (rsp.cache.cache_filter: one fetch per URI per machine) -------------------------

    def claim(self, url: bytes, now: float, hold: float) -> int:
        """CLAIMED (the caller fetches; the mark holds for `hold` seconds at most, so a fetcher that dies
        never blocks the URI for longer), or BUSY / PASS when another caller's mark is in force."""
        key = _MARK + url_prefix(url)
        try:  # not _failures(): every miss claims
            # Arguments by position and the transaction ended by hand, as in _put (every miss claims).
            txn = self._env().begin(self._meta, None, True)
            try:
                kind = self._claim(txn, key, now, hold)
            except BaseException:
                txn.abort()
                raise
            txn.commit()
        except lmdb.Error as exc:
            raise CacheStoreError(f"cache store write: {exc}") from exc
        return kind

    @staticmethod
    def _claim(txn: lmdb.Transaction, key: bytes, now: float, hold: float) -> int:
        mark = _MARK_VALUE.pack(BUSY, now + hold)
        if txn.put(key, mark, False, False):
            return CLAIMED  # the usual case: no mark yet, one put and no get
        raw = txn.get(key)
        if raw is not None:
            kind, until = _MARK_VALUE.unpack(raw)
            if until > now:
                return int(kind)  # (nothing written: committing it costs no more than an abort)
        txn.put(key, mark)
        return CLAIMED

    def mark(self, url: bytes, now: float) -> int:
        """NO_MARK, BUSY or PASS for `url` now (a read: waiters poll this)."""
        key = _MARK + url_prefix(url)
        with _failures("read"), self._env().begin() as txn:
            raw = txn.get(key, db=self._meta)
        if raw is None:
            return NO_MARK
        kind, until = _MARK_VALUE.unpack(raw)
        return int(kind) if until > now else NO_MARK

    def release(self, url: bytes, now: float, pass_for: float = 0.0) -> None:
        """The fetch is over: remove the mark, or turn it into PASS for `pass_for` seconds."""
        key = _MARK + url_prefix(url)
        with _failures("write"), self._env().begin(write=True) as txn:
            if pass_for > 0:
                txn.put(key, _MARK_VALUE.pack(PASS, now + pass_for), db=self._meta)
            else:
                txn.delete(key, db=self._meta)

    def ban(self, matches: Callable[[bytes], bool]) -> int:
        """Remove every entry whose URI `matches` (a prefix, a regex: `rsp cache ban`); how many. One write
        transaction over the whole store: an operator's command, not a request path."""
        removed = 0
        with _failures("write"), self._env().begin(write=True) as txn:
            used = self._get_used(txn)
            doomed: list[tuple[bytes, bytes]] = []
            for key, value in txn.cursor(self._objects):
                try:
                    banned = matches(url_of(value))
                except CorruptEntry:
                    banned = True
                if banned:
                    doomed.append((bytes(key), bytes(value)))
            for key, value in doomed:
                used -= self._remove(txn, key, value)
                removed += 1
            if removed:
                txn.put(_USED, _STAMP.pack(max(used, 0)), db=self._meta)
        return removed

    def delete(self, url: bytes) -> int:
        """Remove every variant of `url`; how many there were."""
        with _failures("write"):
            return self._delete(url)

    def _delete(self, url: bytes) -> int:
        prefix = url_prefix(url)
        removed = 0
        with self._env().begin(write=True) as txn:
            used = self._get_used(txn)
            cursor = txn.cursor(self._objects)
            doomed: list[tuple[bytes, bytes]] = []
            if cursor.set_range(prefix):
                for key, value in cursor:
                    if not key.startswith(prefix):
                        break
                    try:
                        same = decode(value).url == url
                    except CorruptEntry:
                        same = True  # unreadable: drop it while we are here
                    if same:
                        doomed.append((key, value))
            for key, value in doomed:
                used -= self._remove(txn, key, value)
                removed += 1
            if removed:
                txn.put(_USED, _STAMP.pack(max(used, 0)), db=self._meta)
        return removed
