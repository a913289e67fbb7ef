"""CacheFilter: the response cache as a filter on the request pipeline's phases (rsp.pipeline.phases).

What each phase does is rsp.cache.cache_core's CacheCore (compiled): a filter must derive from the interpreted
Filter, and a compiled class cannot, so this class is the Filter the chain and phases_of see (it overrides
the phases the cache uses) and each instance binds those phases to its core's compiled methods. The session
then calls compiled code directly, with no interpreted frame per phase (docs/performance.md, "2026-12-07:
the hit and the stored miss, compiled").
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rsp.cache.cache_core import (
    BYPASS,
    CTX_KEY,
    HIT,
    LOCK_HOLD,
    MISS,
    PASS_TTL,
    POLL_FIRST,
    POLL_MAX,
    PURGE,
    REVALIDATED,
    SELECTED,
    STALE,
    CacheCore,
)
from rsp.cache.store import CacheStore
from rsp.config.model import CacheSettings
from rsp.pipeline.phases import ExchangeView, Filter, Verdict

__all__ = ["BYPASS", "CTX_KEY", "HIT", "LOCK_HOLD", "MISS", "PASS_TTL", "POLL_FIRST", "POLL_MAX", "PURGE",
           "REVALIDATED", "SELECTED", "STALE", "CacheCore", "CacheFilter"]


class CacheFilter(Filter):
    """The response cache on one listener or route (docs/cache.md). `call_later(delay, callback)`: the timer a
    waiting miss polls with (the running loop's by default; tests pass their own)."""

    name = "cache"

    def __init__(self, settings: CacheSettings, store: CacheStore, clock: Callable[[], float] = time.time,
                 call_later: Callable[[float, Callable[[], None]], object] | None = None) -> None:
        core = CacheCore(settings, store, clock, call_later)
        core.owner = self  # what a background refresh's ctx names (SELECTED: a CacheSelector finds its filter)
        self.core = core
        self.settings = settings
        self.store = store
        self.stats = core.stats
        self.waiting = core.waiting
        # Instance attributes win over the class's methods: the chain calls the compiled core's bound methods.
        # (The methods below stay, so that phases_of, which reads the class, sees the phases overridden.)
        self.access = core.access  # type: ignore[method-assign]
        self.header_filter = core.header_filter  # type: ignore[method-assign]
        self.body_filter = core.body_filter  # type: ignore[method-assign]
        self.log = core.log  # type: ignore[method-assign]
        self.client_left = core.client_left  # type: ignore[method-assign]

    def access(self, exchange: ExchangeView) -> Verdict:
        return self.core.access(exchange)

    def header_filter(self, exchange: ExchangeView) -> Verdict:
        return self.core.header_filter(exchange)

    def body_filter(self, exchange: ExchangeView, chunk: bytes, last: bool) -> bytes:
        return self.core.body_filter(exchange, chunk, last)

    def log(self, exchange: ExchangeView) -> None:
        self.core.log(exchange)

    def client_left(self, exchange: ExchangeView) -> bool:
        return self.core.client_left(exchange)

    def figures(self) -> dict[str, object]:
        """This process's counters and the store's figures (CacheCore.figures)."""
        return self.core.figures()
