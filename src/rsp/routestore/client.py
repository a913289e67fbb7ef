"""A worker's side of the route store: the routes the machine knows, asked of the master.

The master runs the one RouteStore of the machine (rsp.routestore.store: the Redis link, the route table
and its cache, the Redis-supplied pools and their health checks). A worker keeps what its requests need on
the hot path: `host_pools` (host -> its own PoolRuntime of the host's backend set, for its balancer and
idle connections), shared with its HTTP proxies exactly as the store's was. A host not in it is asked of
the master (`lookup` -> `ask(host)`, one question per host however many requests wait); the answer
(`answered`) routes the waiting requests and, when the master holds the route, installs it. Every change
of a route the master sees (a refresh, a push, a TTL expiry) reaches every worker (`changed`), so a host
the machine has served keeps being served by every worker while Redis is down.

A question the master does not answer within `lookup_timeout` plus ANSWER_MARGIN gets the missing status.

SNI routing (rsp.proxy.sni_proxy) asks through `lookup_tls`: the name's own route, else the TLS default
(`httpsDefault`), never the HTTP default.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Protocol

from rsp.config.model import Backend, Pool
from rsp.config.model import RouteStore as RouteStoreSettings
from rsp.proxy.http_proxy import HttpProxy
from rsp.proxy.http_upstream import IdlePool
from rsp.proxy.pools import PoolRuntime
from rsp.routestore.cache import ROUTE_HOST
from rsp.routestore.dynamic_pools import BackendSet, DynamicPools, backend_set
from rsp.routestore.schema import TLS_DEFAULT_HOST
from rsp.upstream.records import BackendRecord

# The master answers from its cache at once, or after its own Redis lookup (bounded by lookup_timeout).
ANSWER_MARGIN: Final = 2.0
# How often unreferenced pools are retired and unanswered questions expired.
SWEEP_INTERVAL: Final = 0.5

Ask = Callable[[str], None]
ApplyState = Callable[[Mapping[str, PoolRuntime], Mapping[str, Any]], object]


class Waiter(Protocol):
    """What waits for an answer: a request (rsp.proxy.exchange.Exchange) or an SNI lookup."""

    def route_to(self, pool: PoolRuntime | None, status: int) -> None: ...


class _TlsLookup:
    """A server name's route for SNI routing: its own, else the TLS default's."""

    __slots__ = ("client", "done", "host")

    def __init__(self, client: RouteClient, name: str, done: Callable[[PoolRuntime | None], None]) -> None:
        self.client = client
        self.host = name
        self.done = done

    def route_to(self, pool: PoolRuntime | None, status: int) -> None:
        if pool is not None and self.client.host_sources.get(self.host) == ROUTE_HOST:
            self.done(pool)
        elif self.host != TLS_DEFAULT_HOST:
            self.host = TLS_DEFAULT_HOST
            self.client.lookup_tls(TLS_DEFAULT_HOST, self.done)
        else:
            self.done(None)


def encode_backends(backends: Sequence[Backend]) -> list[list[object]]:
    return [[b.host, b.port, b.name] for b in backends]


def decode_backends(items: Sequence[Sequence[Any]]) -> BackendSet:
    return backend_set(tuple(Backend(str(host), int(port), name=str(name)) for host, port, name in items))


class RouteClient:
    def __init__(self, settings: RouteStoreSettings, template: Pool, pools: dict[str, PoolRuntime],
                 proxies: Sequence[HttpProxy], loop: asyncio.AbstractEventLoop) -> None:
        self.settings = settings
        self.loop = loop
        self.proxies = list(proxies)
        # Set by the worker (rsp.master.worker): how the master's backend state is applied to a pool.
        self.apply_state: ApplyState | None = None
        template_runtime = pools.get(template.name)
        self.dynamic = DynamicPools(template, pools, loop.time, self._pool_created, self._pool_retired,
                                    tls=template_runtime.tls if template_runtime is not None else None)
        self.host_pools: dict[str, PoolRuntime] = {}  # the hot dict, shared with every HttpProxy
        self.host_sets: dict[str, BackendSet] = {}
        self.host_sources: dict[str, str] = {}  # where each answer came from (a ROUTE_* of the master's cache)
        self.waiting: dict[str, list[Waiter]] = {}
        self.asked_at: dict[str, float] = {}
        self.unasked: list[str] = []  # asked before the channel to the master was connected
        self.ask: Ask | None = None
        self.on_eject: Callable[[BackendRecord], None] | None = None  # the worker's: tells the master
        self._sweep: asyncio.TimerHandle | None = None
        for proxy in self.proxies:
            proxy.host_pools = self.host_pools
            proxy.host_lookup = self.lookup

    def start(self) -> None:
        self._sweep = self.loop.call_later(SWEEP_INTERVAL, self._tick)

    def connect(self, ask: Ask) -> None:
        """The channel to the master is up: questions go to `ask` from now on."""
        self.ask = ask
        for host in self.unasked:
            ask(host)
        self.unasked.clear()

    async def stop(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for host in list(self.waiting):
            self._route_waiters(host, None)

    # -- the request side -------------------------------------------------------------------------------
    def lookup_tls(self, name: str, done: Callable[[PoolRuntime | None], None]) -> None:
        """SNI routing: `done(pool)` with `name`'s own route, else the TLS default's, else None."""
        pool = self.host_pools.get(name)
        if pool is not None and self.host_sources.get(name) == ROUTE_HOST:
            done(pool)
            return
        question = _TlsLookup(self, name, done)
        if name == TLS_DEFAULT_HOST and pool is not None:
            question.route_to(pool, self.settings.missing_status)
            return
        self.lookup(question, name)

    def lookup(self, exchange: Waiter, host: str) -> None:
        """Route `exchange`, whose host is not in host_pools (HttpProxy.host_lookup): ask the master."""
        waiters = self.waiting.get(host)
        if waiters is not None:
            waiters.append(exchange)  # one question per host
            return
        self.waiting[host] = [exchange]
        self.asked_at[host] = self.loop.time()
        if self.ask is None:
            self.unasked.append(host)
        else:
            self.ask(host)

    def answered(self, message: Mapping[str, Any]) -> None:
        """The master's answer to `lookup`: the backends to use (none: the missing status), whether the master
        holds it as the host's route (installed here too), and the pool's backend state."""
        host = str(message["host"])
        items = message.get("backends") or []
        pool: PoolRuntime | None = None
        if items:
            wanted = decode_backends(items)
            if message.get("cached"):
                self._route(host, wanted)
                pool = self.host_pools.get(host)
            else:  # a fallback for this once (Redis down: the default route): not the host's route
                pool = self.dynamic.acquire(wanted)
                if pool is not None:
                    self.dynamic.release(wanted)
            if pool is not None and message.get("state") and self.apply_state is not None:
                self.apply_state(self.dynamic.pools, {pool.name: message["state"]})
        self.host_sources[host] = str(message.get("source", ""))
        self._route_waiters(host, pool, int(message.get("status", self.settings.missing_status)))

    def changed(self, message: Mapping[str, Any]) -> None:
        """The master saw `host`'s route change: install the new one, or forget the host."""
        host = str(message["host"])
        items = message.get("backends") or []
        if items:
            self._route(host, decode_backends(items))
            self.host_sources[host] = str(message.get("source", ""))
        else:
            self._unroute(host)

    def _route_waiters(self, host: str, pool: PoolRuntime | None, status: int | None = None) -> None:
        self.asked_at.pop(host, None)
        for exchange in self.waiting.pop(host, []):
            exchange.route_to(pool, self.settings.missing_status if status is None else status)

    def _route(self, host: str, wanted: BackendSet) -> None:
        if self.host_sets.get(host) == wanted:
            return
        self._unroute(host)
        pool = self.dynamic.acquire(wanted)
        if pool is None:
            return
        self.host_sets[host] = wanted
        self.host_pools[host] = pool

    def _unroute(self, host: str) -> None:
        self.host_pools.pop(host, None)
        self.host_sources.pop(host, None)
        old = self.host_sets.pop(host, None)
        if old is not None:
            self.dynamic.release(old)

    def _tick(self) -> None:
        self._sweep = self.loop.call_later(SWEEP_INTERVAL, self._tick)
        self.dynamic.retire_unused()
        late = self.loop.time() - self.settings.lookup_timeout - ANSWER_MARGIN
        for host in [h for h, at in self.asked_at.items() if at < late]:
            self._route_waiters(host, None)

    # -- dynamic pools' wiring ------------------------------------------------------------------------------
    def _pool_created(self, pool: PoolRuntime) -> None:
        pool.on_eject = self.on_eject
        for proxy in self.proxies:
            for record in pool.records:
                proxy.idle_pools[record] = IdlePool(proxy.settings.pool_max_idle, proxy.settings.pool_idle_timeout,
                                                    proxy.settings.pool_max_requests)

    def _pool_retired(self, pool: PoolRuntime) -> None:
        for proxy in self.proxies:
            for record in pool.records:
                idle = proxy.idle_pools.pop(record, None)
                if idle is not None:
                    idle.close_all()
