"""The Balancer protocol and the eligibility / backup rules every algorithm shares.

Eligibility (the one place it is decided): a record may be picked when `record.available()` (up, not
draining, below max_conns) and it is not in the caller's `exclude` (backends a retry already failed on).

Backup rule (HAProxy `backup`): backups take traffic only when no non-backup backend can be picked. We read
"can be picked" literally: primaries that are down, draining, full or excluded all count as unusable, so a
retry whose primaries all failed, or a pool whose primaries are all at max_conns, spills to the backups rather
than failing the connection (HAProxy would queue in the full case; rsp has no queue).

Algorithms only implement a `Selector` over one tier of members (the primaries, or the backups);
`TieredBalancer` builds one selector per tier in `update()` and applies the backup rule in `pick()`.
Membership (up, not draining, weight > 0) is cached by `update()`; `available()` is still checked at pick time,
so a record whose `up` changed without an `update()` is never picked either, and `active`/`max_conns` need no
`update()` at all.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from rsp.upstream.records import BackendRecord


class Balancer(Protocol):
    def pick(
        self, key: bytes | None = None, exclude: Collection[BackendRecord] = ()
    ) -> BackendRecord | None:
        """The backend for the next connection, or None when none can be picked. `key` is the hash key
        (source address, header, cookie or URI bytes) for algorithms that use one; others ignore it."""
        ...

    def update(self) -> None:
        """Recompute cached membership after `up`, `draining` or `weight` of a record changed."""
        ...


class Selector:
    """One algorithm over one tier of members (all up, not draining, weight > 0 when built). A base class,
    not a Protocol: compiled, a call through a base class is a native method call (a Protocol's goes
    through Python's generic attribute lookup), and one runs per request in HTTP mode."""

    __slots__ = ()

    def choose(self, key: bytes | None, exclude: Collection[BackendRecord]) -> BackendRecord | None:
        raise NotImplementedError


def usable(record: BackendRecord, exclude: Collection[BackendRecord]) -> bool:
    """The pick-time eligibility test shared by every algorithm."""
    return record.available() and record not in exclude


def is_member(record: BackendRecord) -> bool:
    """The update-time membership test: worth considering until the next `update()`. Weight 0 means
    "no new traffic", as in HAProxy and nginx."""
    return record.up and not record.draining and record.weight > 0


class TieredBalancer:
    """Base of every algorithm: primaries first, backups only when no primary can be picked."""

    __slots__ = ("_backup", "_primary", "records")

    def __init__(self, records: Sequence[BackendRecord]) -> None:
        self.records: tuple[BackendRecord, ...] = tuple(records)
        self._primary: Selector | None = None
        self._backup: Selector | None = None
        self.update()

    def selector(self, members: tuple[BackendRecord, ...]) -> Selector:
        """Build the algorithm's selector over `members` (non-empty, in declaration order)."""
        raise NotImplementedError

    def update(self) -> None:
        primary = tuple(r for r in self.records if not r.spec.backup and is_member(r))
        backup = tuple(r for r in self.records if r.spec.backup and is_member(r))
        self._primary = self.selector(primary) if primary else None
        self._backup = self.selector(backup) if backup else None

    def pick(
        self, key: bytes | None = None, exclude: Collection[BackendRecord] = ()
    ) -> BackendRecord | None:
        if self._primary is not None:
            record = self._primary.choose(key, exclude)
            if record is not None:
                return record
        if self._backup is not None:
            return self._backup.choose(key, exclude)
        return None
