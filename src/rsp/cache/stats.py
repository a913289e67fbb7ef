"""The cache's counters, per process (a worker's share, summed over workers like the other counters), and the
store's machine-wide figures. Kept as plain integer fields bumped on the paths that decide them; read by
whoever exports them (docs/cache.md, "Figures for /metrics").
"""

from __future__ import annotations

from typing import Any


class CacheStats:
    __slots__ = ("bypass", "coalesced", "hits", "misses", "purged", "revalidated", "stale", "stored")

    def __init__(self) -> None:
        self.hits = 0  # answered from the store, fresh (304s to client conditionals included)
        self.stale = 0  # answered stale: max-stale, stale-if-error or grace
        self.misses = 0  # fetched from the backend
        self.revalidated = 0  # a stale entry confirmed by a 304 and sent
        self.bypass = 0  # not looked up (origin-only preconditions)
        self.coalesced = 0  # waited for another fetch of their URI and answered from its response
        self.stored = 0  # responses written to the store
        self.purged = 0  # variants removed by PURGE

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}
