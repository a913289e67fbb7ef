"""What one HTTP listener's session shares: settings, routing, pools and their idle connections, the live
client connections, the clock, the connector and the filter chain (`SessionState`, the base of HttpProxy).

The client connection, the exchange and the filter run read it; HttpProxy (rsp.proxy.http_proxy) adds what
only the listener does: accept, the housekeeping tick, drain. Kept apart so that the session's imports point
one way (rsp.proxy.session_api).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import ssl
import time
from collections.abc import Callable

from rsp.config.model import Backend, Config, HealthCheck, HttpSettings
from rsp.errors import RspError
from rsp.http1.forward import RequestContext
from rsp.http1.parser import SharedHeads
from rsp.metrics.counters import ListenerStats
from rsp.pipeline.messages import Request
from rsp.pipeline.phases import (
    ACCESS,
    BALANCER,
    BODY_FILTER,
    EMPTY_CHAIN,
    HEADER_FILTER,
    LOG,
    REWRITE,
    Chain,
    Filter,
)
from rsp.proxy.access_log import AccessLog
from rsp.proxy.http_upstream import IdlePool, UpstreamConnection
from rsp.proxy.pools import PoolRuntime
from rsp.proxy.session_api import ClientSide, ExchangeSide
from rsp.proxy.session_io import BackendTls, Connector, SocketConnector
from rsp.routes.router import Router
from rsp.transport.poller import poller_of
from rsp.upstream.records import BackendRecord

# The X-Forwarded-Proto and Forwarded proto a listener writes: in clear text, or with `tls`.
LISTENER_PROTO = b"http"
TLS_LISTENER_PROTO = b"https"
# Peers a balancer filter chose outside their pool (FilterRun._pick) keep a pool of their own, for their idle
# connections; at most this many, the oldest forgotten first.
MAX_PEER_POOLS = 256


class SessionState:
    """What one HTTP listener's session shares: routing, pools, the upstream idle pools, live client connections.

    clock: the clock of every deadline, for tests (a callable returning seconds); by default the time
        rsp's poller took when the current loop iteration began (or time.monotonic on another loop).
    connector: how backend connections are opened (rsp.proxy.session_io.Connector); by default sockets.
    caches: the head-output caches (rsp.proxy.reply_cache); off only to compare their output with the
        uncached one (tests).
    tls: the listener's TLS context (rsp.tls.server_context.TlsServer.context: SNI switches it per
        connection); None for clear text. backend_tls: TLS to the pools that have it, by pool name.
    chain: the listener's filters (rsp.pipeline.phases.Chain); none by default, and then no exchange
        builds a Request, a Response or a FilterRun: the session runs as it did before filters existed.
    server_port: the listener's port, as filters see it (ExchangeView.server_port).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, config: Config, pools: dict[str, PoolRuntime],
                 default_pool: str, access_log: AccessLog, *, clock: Callable[[], float] | None = None,
                 connector: Connector | None = None, caches: bool = True, tls: ssl.SSLContext | None = None,
                 backend_tls: dict[str, BackendTls] | None = None, chain: Chain | None = None,
                 server_port: int = 0) -> None:
        self.loop = loop
        self.chain: Chain = chain if chain is not None else EMPTY_CHAIN
        self.filtered = not self.chain.empty  # the one test an exchange makes for filters
        # The chain per phase, as tuples on this (compiled) class: what an exchange's filter run reads.
        phase = self.chain.for_phase
        self.rewrite_filters: tuple[Filter, ...] = phase(REWRITE)
        self.access_filters: tuple[Filter, ...] = phase(ACCESS)
        self.balancer_filters: tuple[Filter, ...] = phase(BALANCER)
        self.header_filters: tuple[Filter, ...] = phase(HEADER_FILTER)
        self.body_filters: tuple[Filter, ...] = phase(BODY_FILTER)
        self.log_filters: tuple[Filter, ...] = phase(LOG)
        self.keep_filters: tuple[Filter, ...] = self.chain.keepers  # (Filter.client_left)
        # Whether responses go through the phases (and the Downstream interface); else by the direct path.
        self.response_filtered = bool(self.header_filters or self.body_filters)
        # Each try's times are kept only where a filter can read them (ExchangeView.upstream_timings): in
        # balancer (a retry), in the response phases, in log.
        self.tries_timed = bool(self.balancer_filters or self.response_filtered or self.log_filters)
        self.server_port = server_port
        self.peer_pools: dict[tuple[str, str, int], tuple[PoolRuntime, BackendRecord]] = {}
        # The exact clock (the access log's durations; tick() and now() without a poller). time.monotonic
        # is the clock asyncio's loops use; called directly it skips uvloop's loop.time() wrapper.
        self.clock: Callable[[], float] = clock if clock is not None else time.monotonic
        # On rsp's loop, deadlines read the time its poller took when the current iteration began (see
        # now()). An injected clock replaces it.
        self.poller = poller_of(loop) if clock is None else None
        self.connector: Connector = connector if connector is not None else SocketConnector(
            loop, config.high_water, config.low_water, backend_tls)
        self.tls = tls
        self.proto = TLS_LISTENER_PROTO if tls is not None else LISTENER_PROTO
        self.caches = caches
        self.config = config
        self.settings: HttpSettings = config.http
        # The settings read on every request, as attributes of this (compiled) class: the config's frozen
        # dataclass is interpreted, and each of its attributes is a generic attribute lookup.
        s = config.http
        self.header_timeout = s.header_timeout
        self.body_timeout = s.body_timeout
        self.response_timeout = s.response_timeout
        self.keepalive_timeout = s.keepalive_timeout
        self.max_body_size = s.max_body_size
        self.via = s.via
        self.forwarded = s.forwarded
        self.pools = pools  # a dict (not a Mapping): compiled, the lookup per request is a native operation
        self.router = Router(config.routes, default_pool)
        self.access_log = access_log
        self.high_water = config.high_water
        self.low_water = config.low_water
        self.connections: set[ClientSide] = set()
        # The first request heads of this listener's connections, shared by their parsers (a new connection
        # whose head another one sent is not parsed again).
        self.request_heads = SharedHeads()
        self.idle_pools: dict[BackendRecord, IdlePool] = {}
        self.trusted = tuple(ipaddress.ip_network(c, strict=False) for c in config.http.trusted_proxies)
        self.draining = False
        # How long an idle keep-alive client is kept once draining began (HttpProxy.begin_drain): 0 closes it.
        self.drain_linger = 0.0
        # Set by a route store (rsp.routestore.store): host -> pool for hosts no static route matches (the
        # hot path's one dict lookup), and the callback that routes a request for a host not in it yet.
        self.host_pools: dict[str, PoolRuntime] | None = None
        self.host_lookup: Callable[[ExchangeSide, str], None] | None = None
        self.stats = ListenerStats()  # this listener's client side (rsp.metrics)
        for pool in pools.values():
            for record in pool.records:
                self.idle_pools[record] = IdlePool(s.pool_max_idle, s.pool_idle_timeout, s.pool_max_requests)

    def backends_changed(self, record: BackendRecord, added: bool) -> None:
        """A backend was added or removed at run time (PoolRuntime.on_backends_changed): an added one gets its
        idle pool; a removed one keeps it (a live exchange may still return a connection to it) but empty."""
        s = self.settings
        if added:
            # A record can come back (an app of the sandbox restarted): it keeps its idle pool.
            if record not in self.idle_pools:
                self.idle_pools[record] = IdlePool(s.pool_max_idle, s.pool_idle_timeout, s.pool_max_requests)
        elif record in self.idle_pools:
            self.idle_pools[record].close_all()

    def is_trusted(self, ip: str) -> bool:
        if not self.trusted:
            return False
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.trusted)

    def request_context(self, client_ip: str) -> RequestContext:
        """What forwarding a request reads besides its head, for a client at `client_ip` (per connection)."""
        return RequestContext(client_ip, self.is_trusted(client_ip), self.forwarded, self.via, self.proto)

    def background(self, request: Request, ctx: dict[str, object], client_ip: str, pool: PoolRuntime,
                   pool_name: str) -> None:
        """Start `request` as an exchange with no client, to `pool` (ExchangeView.background): HttpProxy does
        (rsp.proxy.background); a bare session has no listener to run it on."""
        raise RspError("this session cannot start background requests")

    def detach(self, exchange: ExchangeSide) -> bool:
        """Let `exchange`, whose client went away, go on without it (Filter.client_left): HttpProxy does
        (rsp.proxy.background.detach); a bare session cannot, and says so (the exchange then ends)."""
        return False

    def now(self) -> float:
        """The clock of timeouts and idle pools: on rsp's loop, time.monotonic() read once per loop
        iteration (a deadline is a few microseconds early at most; two clock reads fewer per request);
        otherwise the clock given at construction."""
        poller = self.poller
        return poller.now if poller is not None else self.clock()

    # -- upstream connections -------------------------------------------------------------------------
    def open_upstream(self, exchange: ExchangeSide, record: BackendRecord, pool: PoolRuntime,
                      connect_timeout: float = 0.0) -> None:
        """Open a new connection to `record` for `exchange`, which hears of it through attach() or
        connect_failed(); within `connect_timeout` seconds (0: the pool's)."""
        conn = UpstreamConnection(self.loop, record, self.idle_pools[record], self.caches)
        self.connector.connect(pool, record, conn, lambda err: self._connected(exchange, record, conn, err),
                               connect_timeout)

    def _connected(self, exchange: ExchangeSide, record: BackendRecord, conn: UpstreamConnection, err: str) -> None:
        if err:
            exchange.connect_failed(record, err)
        else:
            exchange.attach(conn, reused=False)

    def peer_backend(self, pool: PoolRuntime, host: str, port: int) -> tuple[PoolRuntime, BackendRecord]:
        """The pool and backend record for a peer a balancer filter chose: the pool's own backend at that
        address, or a one-backend pool with the pool's settings (and an idle pool of its own)."""
        for record in pool.records:
            if record.spec.host == host and record.spec.port == port:
                return pool, record
        key = (pool.name, host, port)
        found = self.peer_pools.get(key)
        if found is not None:
            return found
        backend = Backend(host, port)
        spec = dataclasses.replace(pool.spec, name=f"{pool.name}@{backend.address}", backends=(backend,),
                                   health=HealthCheck())
        runtime = PoolRuntime(spec, pool.clock)
        record = runtime.records[0]
        if len(self.peer_pools) >= MAX_PEER_POOLS:
            oldest = next(iter(self.peer_pools))
            _, old_record = self.peer_pools.pop(oldest)
            idle = self.idle_pools.pop(old_record, None)
            if idle is not None:
                idle.close_all()
        s = self.settings
        self.idle_pools[record] = IdlePool(s.pool_max_idle, s.pool_idle_timeout, s.pool_max_requests)
        self.peer_pools[key] = (runtime, record)
        return runtime, record
