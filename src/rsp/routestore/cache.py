"""The local route cache: host -> backends, with a TTL, negative entries and an injectable clock (pure).

Entries are never dropped because Redis is unreachable: an expired entry is only *due* for a refresh, and
it keeps answering until the refresh brings something else (stale-while-revalidate). So a Redis outage
leaves every known host routed as it last was. A push invalidation marks an entry due at once.

Finding the due entries reads only them, not every entry (the sweep runs every half second; reading every
entry cost ~3 ms per 10,000 hosts, bench/routestore_refresh_cost.py): the hosts marked due are kept apart,
in the order marked, and the hosts of each TTL in the order fetched (an answer moves its host last), so the
expired ones are a prefix of that order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from rsp.config.model import Backend

# What an entry says about its host.
ROUTE_HOST: Final = "host"  # the host's own key
ROUTE_DEFAULT: Final = "default"  # no key of its own: the default route
ROUTE_MISSING: Final = "missing"  # neither: answered with the missing status (a negative entry)

# Hosts kept. A Host header is client-chosen: without a bound, random names would grow the cache (and the
# lookups) without end. 100,000 entries are a few tens of MB at most; the oldest entry goes first.
MAX_CACHED_HOSTS: Final = 100_000


@dataclass(slots=True)
class Entry:
    backends: tuple[Backend, ...]  # empty for ROUTE_MISSING
    source: str  # ROUTE_HOST, ROUTE_DEFAULT or ROUTE_MISSING
    fetched: float  # clock time of the Redis answer
    due: bool = False  # refresh at the next sweep whatever its age (an invalidation arrived)
    # Redis's reply as fetched, when every member was an address (no name to resolve again): a refresh that
    # gets the same reply reuses `backends` instead of parsing it again (rsp.routestore.store._fetch).
    raw: tuple[bytes, ...] | None = None


class RouteCache:
    def __init__(self, ttl: float, negative_ttl: float, clock: Callable[[], float],
                 max_hosts: int = MAX_CACHED_HOSTS) -> None:
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.clock = clock
        self.max_hosts = max_hosts
        self.entries: dict[str, Entry] = {}
        # Dicts as ordered sets: the hosts of each TTL in the order fetched (negative entries expire sooner),
        # and the hosts marked due in the order marked.
        self._by_age: dict[str, None] = {}
        self._missing_by_age: dict[str, None] = {}
        self._marked: dict[str, None] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def get(self, host: str) -> Entry | None:
        return self.entries.get(host)

    def put(self, host: str, backends: tuple[Backend, ...], source: str,
            raw: tuple[bytes, ...] | None = None) -> list[str]:
        """Record Redis's answer for `host` (`raw`: the reply, when reusable, see Entry.raw); returns the hosts
        evicted to stay within the bound."""
        entries = self.entries
        self.remove(host)  # re-inserted last: eviction takes the oldest answer first
        entries[host] = Entry(backends, source, self.clock(), raw=raw)
        self._order(source)[host] = None
        evicted: list[str] = []
        while len(entries) > self.max_hosts:
            oldest = next(iter(entries))
            self.remove(oldest)
            evicted.append(oldest)
        return evicted

    def remove(self, host: str) -> Entry | None:
        entry = self.entries.pop(host, None)
        if entry is not None:
            del self._order(entry.source)[host]
            self._marked.pop(host, None)
        return entry

    def _order(self, source: str) -> dict[str, None]:
        return self._missing_by_age if source == ROUTE_MISSING else self._by_age

    def is_fresh(self, entry: Entry) -> bool:
        """Whether `entry` may answer without asking Redis (a negative entry only within negative_ttl)."""
        if entry.due:
            return False
        ttl = self.negative_ttl if entry.source == ROUTE_MISSING else self.ttl
        return self.clock() - entry.fetched < ttl

    def invalidate(self, host: str) -> bool:
        """A push said `host` changed; True if it was cached (then it is refreshed at once)."""
        entry = self.entries.get(host)
        if entry is None:
            return False
        entry.due = True
        self._marked[host] = None
        return True

    def invalidate_all(self) -> None:
        """The default route changed, or pushes may have been missed (a reconnect): refresh everything."""
        for host, entry in self.entries.items():
            entry.due = True
            self._marked[host] = None

    def due_hosts(self, expired_limit: int | None = None) -> list[str]:
        """Hosts whose entry should be asked again now: every marked one (a push said it changed), then the
        expired ones, oldest answer first, at most `expired_limit` of those."""
        due = list(self._marked)
        wanted = len(due) + (len(self.entries) if expired_limit is None else expired_limit)
        now = self.clock()
        for order, ttl in ((self._by_age, self.ttl), (self._missing_by_age, self.negative_ttl)):
            for host in order:
                if len(due) >= wanted:
                    return due
                entry = self.entries[host]
                if now - entry.fetched < ttl:
                    break  # the rest of this order was fetched later: fresh too
                if not entry.due:  # a marked one is listed already
                    due.append(host)
        return due
