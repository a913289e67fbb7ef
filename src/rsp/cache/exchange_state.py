"""One exchange's state in the cache filter (rsp.cache.cache_filter), what a handler's cache variables make of
it (rsp.pipeline.cache_vars), and the flags a stored response keeps of its Cache-Control."""

from __future__ import annotations

from typing import Final

from rsp.cache.directives import CacheControl
from rsp.cache.entry import StoredResponse
from rsp.cache.spool import SpoolReader, SpoolWriter
from rsp.pipeline.cache_vars import CACHE_BYPASS, CACHE_NO_STORE, CACHE_TTL, flag
from rsp.pipeline.messages import Header

# Where an exchange's state is kept: exchange.ctx[CTX_KEY].
CTX_KEY: Final = "cache"
# A waiting miss polls the store this long after it began waiting at first (then twice as long each time).
POLL_FIRST: Final = 0.005
# What an exchange is to the cache (ExchangeState.kind).
LOOKED_UP: Final = 0  # answered locally (hit, 304, 504): nothing to do in the response phases
FETCH: Final = 1  # a miss: to the backend, its response maybe stored
REVALIDATE: Final = 2
FRESHENED: Final = 3
BYPASSED: Final = 4
INVALIDATE: Final = 5
WAITING: Final = 6  # suspended until another fetch of the URI ends


class ExchangeState:
    """One exchange's cache state, in `exchange.ctx["cache"]` (rsp.cache.cache_filter)."""

    __slots__ = ("background", "body", "bypassed", "chunks", "client", "deadline", "delay", "entry", "fetching", "kind",
                 "locked", "no_store", "pending", "request_cc", "request_time", "revalidates", "size", "spool_in",
                 "spool_out", "ttl", "url")

    def __init__(self, kind: int, url: bytes, request_cc: CacheControl, request_time: float) -> None:
        self.kind = kind
        self.url = url
        self.request_cc = request_cc
        self.request_time = request_time
        self.entry: StoredResponse | None = None  # the stored response being revalidated
        self.client: list[Header] = []  # the client's own validators, set aside while we validate
        self.pending: StoredResponse | None = None  # the response being collected for the store
        self.chunks: list[bytes] = []
        self.size = 0
        self.body = b""  # what body_filter emits after a freshening 304
        self.locked = False  # this exchange holds the URI's fetch (store.claim)
        self.deadline = 0.0  # while waiting for a fetch: when to stop waiting
        self.delay = POLL_FIRST
        self.background = False  # the state of a background refresh this filter started (stale-while-revalidate)
        self.fetching = False  # this exchange's fetch has a waiting list in this process (CacheFilter.waiting)
        self.spool_out: SpoolWriter | None = None  # this fetch's spool, while another process's waiter reads it
        self.spool_in: SpoolReader | None = None  # the spool of another process's fetch this waiter follows
        # A stale `entry` this exchange must validate (RFC 9111 §4.3.1): waiting, it is answered by what the
        # URI's fetch confirms or fetches after it arrived; released, it sends its own conditional request.
        self.revalidates = False
        # What a handler set (rsp.pipeline.cache_vars): not looked up; not stored; the freshness lifetime.
        self.bypassed = False
        self.no_store = False
        self.ttl: float | None = None


def steer(state: ExchangeState, steered: dict[bytes, bytes]) -> None:
    """What a handler set for this exchange (rsp.pipeline.cache_vars; the key is read before the state exists)."""
    state.bypassed = flag(steered.get(CACHE_BYPASS))
    state.no_store = flag(steered.get(CACHE_NO_STORE))
    ttl = steered.get(CACHE_TTL)
    state.ttl = float(ttl) if ttl is not None and ttl.isdigit() else None
