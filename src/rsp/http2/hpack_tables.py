"""HPACK's tables (RFC 7541 §2.3): the static table and a dynamic table with its size accounting.

Both kinds share one index space (§2.3.3): 1..61 the static table, 62.. the dynamic table, newest first.
"""

from __future__ import annotations

from collections import deque
from typing import Final

# RFC 7541 Appendix A.
STATIC_TABLE: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b':authority', b''),
    (b':method', b'GET'),
    (b':method', b'POST'),
    (b':path', b'/'),
    (b':path', b'/index.html'),
    (b':scheme', b'http'),
    (b':scheme', b'https'),
    (b':status', b'200'),
    (b':status', b'204'),
    (b':status', b'206'),
    (b':status', b'304'),
    (b':status', b'400'),
    (b':status', b'404'),
    (b':status', b'500'),
    (b'accept-charset', b''),
    (b'accept-encoding', b'gzip, deflate'),
    (b'accept-language', b''),
    (b'accept-ranges', b''),
    (b'accept', b''),
    (b'access-control-allow-origin', b''),
    (b'age', b''),
    (b'allow', b''),
    (b'authorization', b''),
    (b'cache-control', b''),
    (b'content-disposition', b''),
    (b'content-encoding', b''),
    (b'content-language', b''),
    (b'content-length', b''),
    (b'content-location', b''),
    (b'content-range', b''),
    (b'content-type', b''),
    (b'cookie', b''),
    (b'date', b''),
    (b'etag', b''),
    (b'expect', b''),
    (b'expires', b''),
    (b'from', b''),
    (b'host', b''),
    (b'if-match', b''),
    (b'if-modified-since', b''),
    (b'if-none-match', b''),
    (b'if-range', b''),
    (b'if-unmodified-since', b''),
    (b'last-modified', b''),
    (b'link', b''),
    (b'location', b''),
    (b'max-forwards', b''),
    (b'proxy-authenticate', b''),
    (b'proxy-authorization', b''),
    (b'range', b''),
    (b'referer', b''),
    (b'refresh', b''),
    (b'retry-after', b''),
    (b'server', b''),
    (b'set-cookie', b''),
    (b'strict-transport-security', b''),
    (b'transfer-encoding', b''),
    (b'user-agent', b''),
    (b'vary', b''),
    (b'via', b''),
    (b'www-authenticate', b''),
)
STATIC_LENGTH: Final = 61
# §4.1: an entry's size is its name's and value's lengths plus 32 (an estimate of the overhead).
ENTRY_OVERHEAD: Final = 32
# §4.2 / RFC 9113 §6.5.2: SETTINGS_HEADER_TABLE_SIZE starts at 4096.
DEFAULT_TABLE_SIZE: Final = 4096

# For the encoder: name -> its first static index, and (name, value) -> static index.
STATIC_NAMES: Final[dict[bytes, int]] = {}
STATIC_FIELDS: Final[dict[tuple[bytes, bytes], int]] = {}
for _i, _field in enumerate(STATIC_TABLE, 1):
    STATIC_NAMES.setdefault(_field[0], _i)
    STATIC_FIELDS.setdefault(_field, _i)


def entry_size(name: bytes, value: bytes) -> int:
    return len(name) + len(value) + ENTRY_OVERHEAD


class DynamicTable:
    """The dynamic table (§2.3.2, §4): entries newest first, evicted oldest first to stay within max_size.

    `inserted` counts every entry ever added, so an entry's absolute number (its position in that count)
    stays the same while it lives; the encoder's maps keep absolute numbers and compute indexes from them.
    """

    __slots__ = ("entries", "inserted", "max_size", "size")

    def __init__(self, max_size: int = DEFAULT_TABLE_SIZE) -> None:
        self.entries: deque[tuple[bytes, bytes]] = deque()
        self.size = 0
        self.max_size = max_size
        self.inserted = 0

    def get(self, index: int) -> tuple[bytes, bytes] | None:
        """The field at `index` of the shared index space (§2.3.3), or None when no such index."""
        if index <= STATIC_LENGTH:
            return STATIC_TABLE[index - 1] if index > 0 else None
        position = index - STATIC_LENGTH - 1
        if position < len(self.entries):
            return self.entries[position]
        return None

    def add(self, name: bytes, value: bytes) -> list[tuple[bytes, bytes]]:
        """Insert a field (§4.4); returns the entries evicted (an entry larger than the table empties it
        and is not added)."""
        size = entry_size(name, value)
        evicted = self.resize_to(self.max_size - size) if size <= self.max_size else self.resize_to(0)
        if size <= self.max_size:
            self.entries.appendleft((name, value))
            self.size += size
            self.inserted += 1
        return evicted

    def set_max_size(self, max_size: int) -> list[tuple[bytes, bytes]]:
        """A dynamic table size update (§4.3, §6.3): evict until the table fits."""
        self.max_size = max_size
        return self.resize_to(max_size)

    def resize_to(self, limit: int) -> list[tuple[bytes, bytes]]:
        evicted: list[tuple[bytes, bytes]] = []
        while self.size > limit and self.entries:
            field = self.entries.pop()
            self.size -= entry_size(field[0], field[1])
            evicted.append(field)
        return evicted

    def absolute_to_index(self, absolute: int) -> int:
        """The index (§2.3.3) of the entry inserted as number `absolute` (0-based), or 0 if evicted."""
        position = self.inserted - 1 - absolute
        if 0 <= position < len(self.entries):
            return STATIC_LENGTH + 1 + position
        return 0
