"""RouteStore: Redis routes, once per machine (in the master; the workers ask it: rsp.routestore.client).

The master's store owns the Redis link, the route table and its cache, the Redis-supplied pools and their
health checks. A worker's lookup reaches `lookup` through the master (a `RouteWaiter` answers it on the
control channel); every change of a host's route is told to `on_route` (the master pushes it to every
worker). So a host the machine has served is known to every worker, with Redis down too. The text below
describes the store's own rules (written when each worker had its own store, and still true of this one):

The hot path (rsp.proxy.client.ClientConnection.start_exchange) routes a host no static rule matches with
one lookup in `host_pools`, a dict this store owns and every HTTP proxy shares: a known host costs a dict
hit, never a Redis round trip. Everything else happens off the hot path, on the event loop:

- a host not in `host_pools` calls `lookup`: a fresh negative entry answers the missing status at once;
  otherwise the request waits for one Redis lookup, shared by every request for that host meanwhile
  (coalesced) and bounded by `lookup_timeout`; then it is routed, or gets the default route, or the
  missing status. With Redis down (an outage logged), a host never seen gets the last known default
  route or the missing status without waiting.
- the refresher task asks Redis again for entries past their TTL and, at once, for entries a push
  invalidated (a message on the channel, which `rsp routes` publishes after each write); a reconnect
  refreshes everything (pub/sub messages published during an outage are lost).
- bad data (a garbage member, a key of the wrong type) is logged (rate-limited) and skipped.

Keyspace notifications are not used: they need `notify-keyspace-events` set on the server (managed Redis
often forbids it) and cost Redis work on every write of every key; writes by other tools than `rsp
routes` are seen within `ttl` instead, or at once if the tool publishes the host on the channel.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Mapping
from typing import Final, Protocol

from redis.exceptions import RedisError

from rsp.config.model import Backend, Pool
from rsp.config.model import RouteStore as RouteStoreSettings
from rsp.health.checker import HealthChecker
from rsp.logs import get_logger
from rsp.proxy.pools import PoolRuntime, check_tls
from rsp.routestore.bad_data import BadDataLog
from rsp.routestore.cache import ROUTE_DEFAULT, ROUTE_HOST, ROUTE_MISSING, RouteCache
from rsp.routestore.dynamic_pools import BackendSet, DynamicPools, backend_set
from rsp.routestore.redis_link import REFRESH_BATCH, RedisLink, SetReply
from rsp.routestore.schema import (
    DEFAULT_HOST,
    INVALIDATE_ALL,
    TLS_DEFAULT_HOST,
    backends_key,
    is_ip,
    normalise_host,
    parse_member,
)

# How often the refresher wakes without a push: TTL expiry and pool retirement are checked this often.
SWEEP_INTERVAL: Final = 0.5
# Expired hosts asked again per second at most (pushed ones are not counted). Each cached host is asked again
# every `ttl` whether or not it is requested, so without a bound the master's CPU at rest grows with the
# hosts: ~90 µs per host, 100,000 hosts at the default 5 s TTL would want 1.8 cores (docs/performance.md,
# "scale, every dimension"). Up to MAX_REFRESHES_PER_SECOND x ttl hosts (10,000 at 5 s) each is asked every
# ttl as before; beyond, the oldest answers go first and each host is asked every hosts / this many seconds.
# A write through `rsp routes` publishes the host, which is refreshed at once whatever the bound.
MAX_REFRESHES_PER_SECOND: Final = 2000
EXPIRED_PER_SWEEP: Final = int(MAX_REFRESHES_PER_SECOND * SWEEP_INTERVAL)
# Resolving a host name found in a member (loop.getaddrinfo, in a thread): a name that takes longer is
# skipped for this refresh, as a garbage member would be.
RESOLVE_TIMEOUT: Final = 2.0

# Failed lookups and refreshes are logged at most this often (a slow Redis would otherwise log per request).
FAILURE_LOG_INTERVAL: Final = 10.0
# Bad members named in one log line (the count says how many there were).
BAD_MEMBERS_SHOWN: Final = 5

Route = tuple[tuple[Backend, ...], str]  # (backends, ROUTE_* source)
Raw = tuple[bytes, ...]  # a host's reply from Redis, as RouteCache keeps it


class RouteWaiter(Protocol):
    """What waits for a lookup: a request (rsp.proxy.exchange.Exchange) or a worker's question."""

    def route_to(self, pool: PoolRuntime | None, status: int) -> None: ...


class RouteStore:
    def __init__(self, settings: RouteStoreSettings, template: Pool, pools: dict[str, PoolRuntime],
                 loop: asyncio.AbstractEventLoop,
                 clock: Callable[[], float] | None = None,
                 on_route: Callable[[str, BackendSet], None] | None = None,
                 on_health: Callable[[str], None] | None = None) -> None:
        """`on_route(host, backends)`: the host's route changed (() when it has none any more); `on_health`:
        an active check changed a Redis-supplied backend's state (the line to log)."""
        self.settings = settings
        self.on_route = on_route
        self.on_health = on_health
        self.loop = loop
        self.clock: Callable[[], float] = clock if clock is not None else loop.time
        self.log = get_logger()
        self.cache = RouteCache(settings.ttl, settings.negative_ttl, self.clock)
        template_runtime = pools.get(template.name)
        self.dynamic = DynamicPools(template, pools, self.clock, self._pool_created, self._pool_retired,
                                    tls=template_runtime.tls if template_runtime is not None else None)
        self.link = RedisLink(settings, self._message, self._connected, self.log.warning, self.clock)
        self.bad = BadDataLog(self.log.warning, self.clock)
        self.host_pools: dict[str, PoolRuntime] = {}  # host -> the pool of its route: what the machine knows
        self.host_sets: dict[str, BackendSet] = {}  # the backend set each host's pool is, for release
        self.default_route: tuple[Backend, ...] | None = None  # last known default, () when none
        self.default_fetched = 0.0
        self.default_stale = False
        self.waiting: dict[str, list[RouteWaiter]] = {}  # hosts being looked up -> requests waiting
        self.refreshing: set[str] = set()
        self.again: set[str] = set()  # invalidated while their lookup was in flight: ask once more
        self.checkers: dict[str, HealthChecker] = {}
        self.failure_logged = -FAILURE_LOG_INTERVAL
        self.failures_unlogged = 0
        self._kick = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresher: asyncio.Task[None] | None = None

    # -- life -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        self.link.start()
        self._refresher = self.loop.create_task(self._refresh_loop())

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, *([self._refresher] if self._refresher else []), return_exceptions=True)
        await self.link.stop()
        await asyncio.gather(*(c.stop() for c in self.checkers.values()), return_exceptions=True)
        self.checkers.clear()

    def adopt(self, old: RouteStore) -> None:
        """Start from what `old` (the store of the config before a reload) knew: every host keeps its route,
        with Redis down too, on this store's pools; each is asked again at once (the prefix or the template
        may have changed)."""
        if old.default_route is not None:
            self._set_default(old.default_route)
        routes: dict[str, Route] = {}
        for host in old.cache:
            entry = old.cache.get(host)
            if entry is not None:
                routes[host] = (entry.backends, entry.source)
        self._apply(routes)
        self.cache.invalidate_all()
        self._kick.set()

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = self.loop.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the request side -------------------------------------------------------------------------------
    def lookup(self, exchange: RouteWaiter, host: str) -> None:
        """Route `exchange` (a worker's question: rsp.master.machine_routes), whose host is not in host_pools."""
        entry = self.cache.get(host)
        if entry is not None and entry.source == ROUTE_MISSING and (self.cache.is_fresh(entry) or not self.link.up):
            exchange.route_to(None, self.settings.missing_status)
            return
        if not host or self.link.down_since is not None:
            # No host to look up, or Redis is down: do not make the client wait for a lookup that cannot
            # succeed; a host never seen gets the default route if one was ever known.
            exchange.route_to(self._default_pool(), self.settings.missing_status)
            return
        waiters = self.waiting.get(host)
        if waiters is not None:
            waiters.append(exchange)  # coalesced with the lookup in flight
            return
        self.waiting[host] = [exchange]
        self._spawn(self._lookup(host))

    async def _lookup(self, host: str) -> None:
        routes: dict[str, Route] | None = None
        raws: dict[str, Raw] = {}
        try:
            routes, raws = await asyncio.wait_for(self._fetch([host]), self.settings.lookup_timeout)
        except (TimeoutError, RedisError, OSError) as exc:
            self._failed(f"lookup of {host}", exc)
        finally:
            waiters = self.waiting.pop(host, [])
        if routes is not None:
            self._apply(routes, raws)
        pool = self.host_pools.get(host)
        if pool is None and routes is None:
            pool = self._default_pool()  # the lookup failed: the default route if one is known
        for exchange in waiters:
            exchange.route_to(pool, self.settings.missing_status)
        self._recheck()

    def _failed(self, what: str, exc: BaseException) -> None:
        """A lookup or refresh failed (slow Redis, a connection lost mid-command): one line per
        FAILURE_LOG_INTERVAL, whatever the request rate."""
        now = self.clock()
        if now - self.failure_logged < FAILURE_LOG_INTERVAL:
            self.failures_unlogged += 1
            return
        more = f" ({self.failures_unlogged} more since the last report)" if self.failures_unlogged else ""
        self.log.warning("route store: %s failed (%s: %s)%s", what, type(exc).__name__, exc or "timeout", more)
        self.failure_logged = now
        self.failures_unlogged = 0

    def _default_pool(self) -> PoolRuntime | None:
        if not self.default_route:
            return None
        return self.dynamic.by_set.get(backend_set(self.default_route))

    # -- Redis's answers ----------------------------------------------------------------------------------
    async def _fetch(self, hosts: list[str]) -> tuple[dict[str, Route], dict[str, Raw]]:
        """Ask Redis for `hosts` (and the default route) in one round trip; parse, resolve, decide. Also
        returns the replies worth keeping (RouteCache.Entry.raw): a host whose reply is the one cached is
        not parsed again, which is most of a TTL refresh (bench/routestore_refresh_cost.py)."""
        prefix = self.settings.prefix
        keys = [backends_key(prefix, h) for h in hosts]
        if self.settings.default:
            keys.append(backends_key(prefix, DEFAULT_HOST))
        self.refreshing.update(hosts)
        if self.settings.default:
            self.default_stale = False  # a "*" arriving during this fetch sets it again
        raws: dict[str, Raw] = {}
        try:
            replies = await self.link.fetch(keys)
            parsed = []
            for i, (key, reply) in enumerate(zip(keys, replies, strict=True)):
                host = hosts[i] if i < len(hosts) else ""  # "": the default route's key
                cached = self.cache.get(host) if host else None
                if not isinstance(reply, BaseException) and cached is not None and cached.raw is not None \
                        and cached.source == ROUTE_HOST and cached.raw == tuple(reply):
                    parsed.append(cached.backends)
                    raws[host] = cached.raw
                    continue
                backends, reusable = await self._backends(key, reply)
                parsed.append(backends)
                if host and reusable and not isinstance(reply, BaseException):
                    raws[host] = tuple(reply)
        finally:
            self.refreshing.difference_update(hosts)
        if self.settings.default:
            default = parsed.pop()
            self.default_fetched = self.clock()
            if default != self.default_route:
                self._set_default(default)
        routes: dict[str, Route] = {}
        for host, backends in zip(hosts, parsed, strict=True):
            if backends:
                routes[host] = (backends, ROUTE_HOST)
            elif self.default_route:
                routes[host] = (self.default_route, ROUTE_DEFAULT)
            else:
                routes[host] = ((), ROUTE_MISSING)
        return routes, raws

    def _set_default(self, default: tuple[Backend, ...]) -> None:
        """Keep a reference on the default route's pool, so that it exists for Redis outages."""
        old = self.default_route
        self.default_route = default
        if default:
            self.dynamic.acquire(backend_set(default))
        if old:
            self.dynamic.release(backend_set(old))

    async def _backends(self, key: str, reply: SetReply) -> tuple[tuple[Backend, ...], bool]:
        """The backends a reply names, and whether the reply may be reused as is (every member an address:
        a name is resolved again at each refresh)."""
        if isinstance(reply, BaseException):
            self.bad.report(key, f"{type(reply).__name__}: {reply}")  # WRONGTYPE: not a set
            return (), False
        out: list[Backend] = []
        bad: list[bytes] = []
        reusable = True
        for member in reply:
            backend = parse_member(member)
            if backend is None:
                bad.append(member)
                continue
            if not is_ip(backend.host):
                reusable = False
                resolved = await self._resolve(key, backend)
                if resolved is None:
                    continue
                backend = resolved
            out.append(backend)
        if bad:
            shown = ", ".join(repr(m[:80]) for m in bad[:BAD_MEMBERS_SHOWN])
            self.bad.report(key, f"{len(bad)} member(s) not address:port: {shown}")
            reusable = False  # reported again at the next refresh, as before
        return tuple(out), reusable

    async def _resolve(self, key: str, backend: Backend) -> Backend | None:
        """A member naming a host: resolved in a thread (never on the loop), like a static backend once."""
        try:
            infos = await asyncio.wait_for(
                self.loop.getaddrinfo(backend.host, backend.port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            self.bad.report(key, f"cannot resolve {backend.address}: {exc}")
            return None
        address = str(infos[0][4][0])
        return Backend(address, backend.port, name=backend.address)

    def _apply(self, routes: dict[str, Route], raws: Mapping[str, Raw] | None = None) -> None:
        for host, (backends, source) in routes.items():
            for evicted in self.cache.put(host, backends, source, raws.get(host) if raws else None):
                self._unroute(evicted)
            wanted = backend_set(backends)
            if self.host_sets.get(host) == wanted:
                continue
            self._unroute(host)
            if not wanted:
                continue
            pool = self.dynamic.acquire(wanted)
            if pool is None:
                self.bad.report(backends_key(self.settings.prefix, host),
                                f"more than {self.dynamic.max_pools} distinct backend sets; host not routed")
                continue
            self.host_sets[host] = wanted
            self.host_pools[host] = pool
            if self.on_route is not None:
                self.on_route(host, wanted)

    def _unroute(self, host: str) -> None:
        self.host_pools.pop(host, None)
        old = self.host_sets.pop(host, None)
        if old is not None:
            self.dynamic.release(old)
            if self.on_route is not None:
                self.on_route(host, ())

    # -- invalidation and refresh ------------------------------------------------------------------------
    def _message(self, data: str) -> None:
        """A pub/sub message: the host whose route changed, or "*"."""
        if data == INVALIDATE_ALL:
            self.cache.invalidate_all()
            self.default_stale = True
            self.again.update(self.refreshing)
            self.again.update(self.waiting)
        else:
            # The TLS default's key keeps its case (schema.TLS_DEFAULT_HOST); a host's is lower case.
            host = data if data == TLS_DEFAULT_HOST else normalise_host(data)
            self.cache.invalidate(host)
            if host in self.refreshing or host in self.waiting:
                self.again.add(host)
        self._kick.set()

    def _connected(self) -> None:
        self.cache.invalidate_all()
        self.default_stale = True
        self._kick.set()

    def _default_due(self) -> bool:
        """The default route is fetched with every lookup; alone when no lookup happened for a TTL (so that
        it is known before a Redis outage) or when it changed."""
        if not self.settings.default:
            return False
        return (self.default_route is None or self.default_stale
                or self.clock() - self.default_fetched >= self.settings.ttl)

    def _recheck(self) -> None:
        """Hosts invalidated while their answer was in flight: that answer may predate the change."""
        if self.again:
            for host in self.again:
                self.cache.invalidate(host)
            self.again.clear()
            self._kick.set()

    async def _refresh_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._kick.wait(), SWEEP_INTERVAL)
            except TimeoutError:
                pass
            self._kick.clear()
            self.dynamic.retire_unused()
            if not self.link.up:
                continue
            due = self.cache.due_hosts(EXPIRED_PER_SWEEP)
            try:
                if not due and self._default_due():
                    await asyncio.wait_for(self._fetch([]), self.settings.lookup_timeout)
                for start in range(0, len(due), REFRESH_BATCH):
                    batch = due[start: start + REFRESH_BATCH]
                    self._apply(*await asyncio.wait_for(self._fetch(batch), self.settings.lookup_timeout))
            except (TimeoutError, RedisError, OSError) as exc:
                self._failed("refresh", exc)
            self._recheck()

    # -- dynamic pools' wiring ------------------------------------------------------------------------------
    def _pool_created(self, pool: PoolRuntime) -> None:
        if pool.spec.health.kind != "none":
            checker = HealthChecker(pool.spec, pool.records, pool.health_changed, self.on_health or self.log.info,
                                    check_tls(pool))
            checker.start()
            self.checkers[pool.name] = checker
        self.log.info("route store: pool %s created (template %s)", pool.name, self.settings.template)

    def _pool_retired(self, pool: PoolRuntime) -> None:
        checker = self.checkers.pop(pool.name, None)
        if checker is not None:
            self._spawn(checker.stop())
        self.log.info("route store: pool %s retired (no host routes to it)", pool.name)
