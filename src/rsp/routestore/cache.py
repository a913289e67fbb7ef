"""The local route cache: host -> backends, with a TTL, negative entries and an injectable clock (pure).

Entries are never dropped because Redis is unreachable: an expired entry is only *due* for a refresh, and
it keeps answering until the refresh brings something else (stale-while-revalidate). So a Redis outage
leaves every known host routed as it last was. A push invalidation marks an entry due at once.
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


class RouteCache:
    def __init__(self, ttl: float, negative_ttl: float, clock: Callable[[], float],
                 max_hosts: int = MAX_CACHED_HOSTS) -> None:
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.clock = clock
        self.max_hosts = max_hosts
        self.entries: dict[str, Entry] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def get(self, host: str) -> Entry | None:
        return self.entries.get(host)

    def put(self, host: str, backends: tuple[Backend, ...], source: str) -> list[str]:
        """Record Redis's answer for `host`; returns the hosts evicted to stay within the bound."""
        entries = self.entries
        entries.pop(host, None)  # re-inserted last: eviction takes the oldest answer first
        entries[host] = Entry(backends, source, self.clock())
        evicted: list[str] = []
        while len(entries) > self.max_hosts:
            oldest = next(iter(entries))
            del entries[oldest]
            evicted.append(oldest)
        return evicted

    def remove(self, host: str) -> Entry | None:
        return self.entries.pop(host, None)

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
        return True

    def invalidate_all(self) -> None:
        """The default route changed, or pushes may have been missed (a reconnect): refresh everything."""
        for entry in self.entries.values():
            entry.due = True

    def due_hosts(self) -> list[str]:
        """Hosts whose entry should be asked again now."""
        return [host for host, entry in self.entries.items() if not self.is_fresh(entry)]
