"""The spool of a fetch that waiters in other worker processes stream from (rsp.cache.coalescing), compiled
(native_modules.txt).

The store holds complete entries only, so a response still arriving is visible to the other processes of the
machine through a file of its own: the fetcher appends the admitted head and then each body part as it
receives it (one write each), and an END (or FAIL) record; a waiter in another process reads what is there,
then polls for more. Records are `kind (1 byte) | length (4 bytes, little-endian) | payload`:

    HEAD  the body length (8 bytes, signed: -1 unknown) + the entry to store, without its body
          (rsp.cache.entry.encode): what a waiter needs to decide whether it can use the response (Vary,
          freshness) and to answer with its head, as the waiters in the fetcher's process are answered
    DATA  one body part
    END   the body is complete
    FAIL  the fetch failed (or the spool cannot be written)
    FRESH the fetch was a validation the backend confirmed (a 304): the stored response, freshened, answers
          the waiters (payload: when, 8 bytes, a double)
    STALE the backend failed (an error status): the stale stored response answers each waiter where
          stale-if-error or grace allow it for its request (RFC 5861 §4), the others go to the backend

FRESH and STALE are a spool's only record (an "outcome": no head, the answer is in the store); the fetcher
writes one when its fetch's answer is the stored response and a waiter in another process wants it, instead
of leaving that waiter to find out by polling the store. An outcome's file stays for OUTCOME_KEEP seconds
(its waiters find it on their next poll; rsp.cache.coalescing's watch removes it), unlocked: a later fetch
of the URI replaces it, and a waiter that came after it (its time) takes no notice of it.

A body of unknown length may outgrow max_object after its head: the store then no longer collects it, but its
waiters get all of it, in every process (Varnish streams a busy object to all its waiters). The spool keeps no
more of it than max_object all the same (issue 21: an object over max_object is not buffered): past that
bound, what lies more than max_object behind the end of the file is punched out of it (fallocate), and a
reader that far behind, or one that opens the spool only then (its head is gone), finds a hole where it reads
(SpoolReader.read checks, for a body of unknown length): it is reset, or goes to the backend when it had no
head yet.

A spool exists only when another process waits: a waiter sets its URI's slot on the `wanted` board, one page
of bytes every process maps (a byte per slot, indexed by the URI's hash; the first byte, ANY, set with any
slot), and the fetcher looks at it when its head is admitted and every so often after (rsp.cache.coalescing's
watch): a memory read, and when nobody waits only ANY's (a stored miss nobody else waits for costs no system
call). A slot shared by two URIs only makes a fetch spool for nobody. Whoever is done with a URI (its fetch's
spool ended, its waiter stopped waiting) clears its slot and ANY; a waiter that still wants one sets both
again on its next poll, and its fetch's next look sees it.

Files, in `<store path>-spool/` (memory-backed stores are in /dev/shm, so their spools too): `wanted`, and one
spool per fetch named by the hex of its URI's 16-byte hash. The fetcher writes the head to a private name,
takes an exclusive flock on it and links it under the spool's name, so a reader never sees a spool without
its head, and a spool whose lock is free with no END or FAIL is a dead fetcher's: the first reader or writer
that finds it so removes it (a worker killed mid-fetch; locks die with their process). At its end the fetcher
unlinks the spool: readers that have it open read on to the end, and the file goes with the last of them.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import mmap
import os
import struct
from typing import Final

from rsp.cache.entry import StoredResponse, decode, encode
from rsp.cache.memory_files import SPOOL_SUFFIX
from rsp.cache.store import url_prefix
from rsp.logs import get_logger

HEAD: Final = 1
DATA: Final = 2
END: Final = 3
FAIL: Final = 4
FRESH: Final = 5
STALE: Final = 6
OUTCOMES: Final = (FRESH, STALE)
# The records after which a spool has nothing more (a spool whose writer is gone without one was a dead one's).
FINAL: Final = (END, FAIL, FRESH, STALE)
# How long an outcome's file is kept for the waiters to read (they poll at most POLL_MAX, 50 ms, apart).
OUTCOME_KEEP: Final = 0.5
_TIME: Final = struct.Struct("<d")
_RECORD: Final = struct.Struct("<BI")
_LENGTH: Final = struct.Struct("<q")
# The board: one byte per slot, a page of them; the first byte (ANY) is set whenever any slot is.
WANT_SLOTS: Final = 4096
ANY: Final = 0
WANTED: Final = "wanted"
# The most a reader takes from a spool per poll (more waiting: it polls again at once).
READ_SIZE: Final = 256 * 1024
# Holes are punched in whole pages.
PAGE: Final = 4096
_TMP: Final = ".tmp"

Record = tuple[int, bytes]

_log = get_logger()
_names = itertools.count()


def spool_dir(store_path: str) -> str:
    """The directory of a store's spools and board, beside its file."""
    return store_path + SPOOL_SUFFIX


def record(kind: int, payload: bytes = b"") -> bytes:
    return _RECORD.pack(kind, len(payload)) + payload


def head_record(pending: StoredResponse, body_length: int) -> bytes:
    """The HEAD record of a response whose entry is `pending` (ValueError when it cannot be encoded)."""
    return record(HEAD, _LENGTH.pack(body_length) + encode(pending))


def outcome_record(kind: int, at: float) -> bytes:
    """A FRESH or STALE record: the fetch's answer, known at `at` (the clock every process shares)."""
    return record(kind, _TIME.pack(at))


def outcome_time(payload: bytes) -> float:
    """When an outcome record's answer was known (0.0 for a payload too short: older than any waiter)."""
    return _TIME.unpack_from(payload)[0] if len(payload) >= _TIME.size else 0.0


def decode_head(payload: bytes) -> tuple[StoredResponse, int]:
    """A HEAD record's entry (without body) and body length; CorruptEntry when it is not one."""
    return decode(payload[_LENGTH.size:]), _LENGTH.unpack_from(payload)[0]


def parse(buffer: bytes) -> tuple[list[Record], int]:
    """The complete records at the start of `buffer`, and how many bytes they take (a record still being
    written stays for the next read)."""
    out: list[Record] = []
    at = 0
    size = _RECORD.size
    while len(buffer) - at >= size:
        kind, length = _RECORD.unpack_from(buffer, at)
        end = at + size + length
        if end > len(buffer):
            break
        out.append((kind, buffer[at + size:end]))
        at = end
    return out, at


def _append(fd: int, parts: list[bytes]) -> None:
    """Write all of `parts` (one writev: a short write only on a nearly full file system)."""
    written = os.writev(fd, parts)
    rest = b"".join(parts)[written:] if written < sum(len(part) for part in parts) else b""
    while rest:
        rest = rest[os.write(fd, rest):]


def _locked(fd: int, how: int) -> bool:
    """Whether another open file holds a lock that excludes `how` (LOCK_SH or LOCK_EX) on this file."""
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def _punched(fd: int) -> int:
    """Where the file's data begins (the end of the hole punched at its start, if any)."""
    try:
        return os.lseek(fd, 0, os.SEEK_DATA)
    except OSError:  # (ENXIO: all of it is a hole)
        return 1 << 62


def _remove(path: str, fd: int) -> None:
    """Unlink `path` if it still names the file open as `fd` (not a spool a new fetch linked meanwhile)."""
    with contextlib.suppress(OSError):
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            os.unlink(path)


class SpoolWriter:
    """The fetcher's side of one spool: body parts up to `limit` bytes (the cache's max_object). `fd` is the
    file opened by its spool name, so that inotify names the spool's writes (rsp.cache.wakeups); `lock` the
    descriptor it was made with, whose flock says the fetcher lives."""

    __slots__ = ("fd", "limit", "lock", "offset", "path", "punched", "size")

    def __init__(self, fd: int, lock: int, path: str, limit: int, size: int, offset: int) -> None:
        self.fd = fd
        self.lock = lock
        self.path = path
        self.limit = limit
        self.size = size  # body bytes written
        self.offset = offset  # bytes in the file
        self.punched = 0  # the file's first bytes punched out (past `limit`)

    def data(self, chunk: bytes) -> bool:
        """Append a body part, keeping at most `limit` bytes of the file once the body passed it; False when it
        cannot be written (then call fail)."""
        if not chunk:
            return True
        self.size += len(chunk)
        try:
            _append(self.fd, [_RECORD.pack(DATA, len(chunk)), chunk])
            self.offset += _RECORD.size + len(chunk)
            if self.size > self.limit:
                hole = (self.offset - self.limit) // PAGE * PAGE
                if hole > self.punched:
                    from rsp.linux.syscalls import punch_hole  # (here: ctypes only where it is used)

                    punch_hole(self.fd, self.punched, hole - self.punched)
                    self.punched = hole
        except OSError as exc:  # (a file system that cannot punch holes: its readers are reset at the bound)
            _log.error("cache: cannot write the spool %s: %s", self.path, exc)
            return False
        return True

    def end(self) -> None:
        self._close(END)

    def keep(self) -> None:
        """An outcome's spool (FRESH, STALE): written whole; its file stays for its waiters to read, its lock
        released (so a later fetch of the URI may replace it), until `discard`."""
        os.close(self.lock)
        self.lock = -1

    def discard(self) -> None:
        _remove(self.path, self.fd)
        os.close(self.fd)

    def fail(self) -> None:
        self._close(FAIL)

    def _close(self, kind: int) -> None:
        with contextlib.suppress(OSError):
            _append(self.fd, [record(kind)])
        _remove(self.path, self.fd)
        os.close(self.fd)
        os.close(self.lock)  # (its lock with it)


class SpoolReader:
    """A waiter's side of one spool: the records written so far, then more as they come."""

    __slots__ = ("answered", "at", "buffer", "fd", "full", "holes", "path")

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path
        self.at = 0  # bytes read
        self.buffer = b""  # a record still being written
        self.full = False  # the last read took READ_SIZE: more may be there already
        self.answered = False  # the waiter was answered with the spool's head
        self.holes = False  # the body's length is unknown: the writer may punch what is far behind its end

    def read(self) -> list[Record]:
        """The records complete since the last read; [(FAIL, b"")] when the writer punched out what this read
        took (the reader was more than the spool's bound behind the end)."""
        start = self.at
        data = os.pread(self.fd, READ_SIZE, start)
        self.full = len(data) == READ_SIZE
        if not data:
            return []
        self.at = start + len(data)
        if self.holes and _punched(self.fd) > start:
            return [(FAIL, b"")]
        buffer = self.buffer + data if self.buffer else data
        records, used = parse(buffer)
        self.buffer = buffer[used:]
        return records

    def writer_gone(self) -> bool:
        """Whether the fetcher no longer holds the spool (it ended, or its process died)."""
        return not _locked(self.fd, fcntl.LOCK_SH)

    def discard(self) -> None:
        """The spool of a dead fetcher: removed for everybody."""
        _remove(self.path, self.fd)

    def close(self) -> None:
        os.close(self.fd)


class Spools:
    """One cache's spools in this process: the board (mapped on first use) and the spool files in
    `directory`. `limit`: a spool's body bound (max_object). Any failure of the directory or the board turns
    spooling off in this process (logged once): other processes' waiters then wait for the store, as before."""

    def __init__(self, directory: str, limit: int) -> None:
        self.directory = directory
        self.limit = limit
        self._board: mmap.mmap | None = None
        self._board_fd = -1  # (kept open: `call` writes through it)
        self._off = False
        self.kept: list[tuple[float, SpoolWriter]] = []  # outcomes written, with when to remove them

    # ---- the board -----------------------------------------------------------------------------------------

    def _slot(self, url: bytes) -> int:
        prefix = url_prefix(url)
        return 1 + (prefix[0] | prefix[1] << 8) % (WANT_SLOTS - 1)  # (slot ANY apart)

    def _map(self) -> mmap.mmap | None:
        board = self._board
        if board is not None or self._off:
            return board
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            fd = os.open(os.path.join(self.directory, WANTED), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                if os.fstat(fd).st_size < WANT_SLOTS:
                    os.ftruncate(fd, WANT_SLOTS)  # (several processes may: all to the same size)
                board = mmap.mmap(fd, WANT_SLOTS)
            except OSError:
                os.close(fd)
                raise
        except OSError as exc:
            _log.error("cache: no spool in %s (%s): waiters in other workers wait for the stored response",
                       self.directory, exc)
            self._off = True
            return None
        self._board, self._board_fd = board, fd
        self.sweep()
        return board

    def wanted(self, url: bytes) -> bool:
        """Whether a waiter in another process may want `url`'s fetch spooled: a read of the ANY byte when
        nobody waits (the usual case: neither the URI's hash nor its slot is looked at), else its slot's."""
        board = self._board if self._board is not None else self._map()
        return board is not None and board[ANY] != 0 and board[self._slot(url)] != 0

    def asked(self, url: bytes) -> bool:
        """Whether `url`'s slot is set, whatever ANY says (the watch, which may find ANY cleared a moment)."""
        board = self._map()
        return board is not None and board[self._slot(url)] != 0

    def want(self, url: bytes) -> None:
        board = self._map()
        if board is not None:
            board[self._slot(url)] = 1
            board[ANY] = 1

    def call(self, url: bytes) -> None:
        """`want`, and say so to the processes watching the directory (rsp.cache.wakeups): the slot's byte is
        also written through the file, which the mapping's writes are not, so a fetch past its head spools at
        once instead of at its next look (a waiter's first want only: its polls `want` again silently)."""
        self.want(url)
        if self._board_fd >= 0:
            with contextlib.suppress(OSError):
                os.pwrite(self._board_fd, b"\1", self._slot(url))

    def unwant(self, url: bytes) -> None:
        """Done with `url` (its spool ended, or its waiter stopped waiting): its slot and ANY cleared. A waiter
        that still wants one sets both again on its next poll, and its fetch sees it at its next look."""
        board = self._map()
        if board is not None:
            board[self._slot(url)] = 0
            board[ANY] = 0

    # ---- spool files ---------------------------------------------------------------------------------------

    def path(self, url: bytes) -> str:
        return os.path.join(self.directory, url_prefix(url).hex())

    def create(self, url: bytes, first: bytes, size: int) -> SpoolWriter | None:
        """A spool for this process's fetch of `url`, holding `first` (its HEAD record, maybe the body so far:
        `size` bytes of it); None when another live fetch spools it (a second claim after the first one's
        mark expired) or it cannot be written."""
        if self._map() is None:
            return None
        path = self.path(url)
        if os.path.exists(path) and not self._clear_dead(path):
            return None  # (before writing anything: the watch may ask again every WATCH seconds)
        tmp = f"{path}.{os.getpid()}.{next(_names)}{_TMP}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            _log.error("cache: cannot create a spool in %s: %s", self.directory, exc)
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # (held until the spool ends)
            _append(fd, [first])
            try:
                os.link(tmp, path)
            except FileExistsError:
                if not self._clear_dead(path):
                    raise
                os.link(tmp, path)
            out = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)  # (ours: the lock keeps it so)
        except OSError:  # (FileExistsError: a live fetch spools it; anything else: no spool this time)
            os.close(fd)
            fd = -1
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return SpoolWriter(out, fd, path, self.limit, size, len(first)) if fd >= 0 else None

    def tell(self, url: bytes, kind: int, at: float) -> bool:
        """Write the outcome `kind` (FRESH, STALE) of this process's fetch of `url`, known at `at`, for the waiters
        of other processes; kept OUTCOME_KEEP seconds (`expire`). False when it cannot be written."""
        writer = self.create(url, outcome_record(kind, at), 0)
        if writer is None:
            return False
        writer.keep()
        self.kept.append((at + OUTCOME_KEEP, writer))
        return True

    def expire(self, now: float) -> int:
        """Remove the outcomes kept past their time (unless a later fetch replaced them); how many remain."""
        kept = self.kept
        while kept and kept[0][0] <= now:
            kept.pop(0)[1].discard()
        return len(kept)

    def open(self, url: bytes) -> SpoolReader | None:
        """The spool of `url`'s fetch, if one is being written (or was, and ended a moment ago)."""
        try:
            fd = os.open(self.path(url), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        return SpoolReader(fd, self.path(url))

    def _clear_dead(self, path: str) -> bool:
        """Remove the spool at `path` when no live fetcher holds it; whether it was removed."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return True  # gone meanwhile
        except OSError:
            return False
        try:
            if _locked(fd, fcntl.LOCK_EX):
                return False
            _remove(path, fd)
            return True
        finally:
            os.close(fd)

    def sweep(self) -> int:
        """Remove the spools (and half-made ones) of fetchers that died; how many. Run when a process maps
        the board: a spool nobody reads again would otherwise stay."""
        removed = 0
        try:
            names = os.listdir(self.directory)
        except OSError:
            return 0
        for name in names:
            if name != WANTED and self._clear_dead(os.path.join(self.directory, name)):
                removed += 1
        return removed
