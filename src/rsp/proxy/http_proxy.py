"""HTTP mode: one listener's proxy, the wiring of the session.

Shape (docs/architecture.md, "HTTP mode"): the sans-IO parsers in `rsp.http1` turn bytes into events; the
session reacts to events with writes on its transports. One `ClientConnection` per client (rsp.proxy.client),
one `Exchange` per request (rsp.proxy.exchange), one `UpstreamConnection` (from the backend's idle pool, or
new) per exchange (rsp.proxy.http_upstream). `HttpProxy` holds what they share: settings, routing, pools, the
idle pools, the live client connections, the clock and the connector (rsp.proxy.session_io).

Rules that make it safe:
- Requests are answered in order and one at a time per client connection: a pipelined request waits,
  parsed but unforwarded, until the response before it is complete (RFC 9112 §9.3.2), and reading pauses.
- A request the parser refuses gets its status (400, 413, 414, 431, 501, 505) and the connection closes;
  nothing of it reaches a backend, and never more requests are forwarded than answered.
- A backend's bad framing closes that backend connection (never returned to the pool) and answers 502.
- A request is retried only when that is safe: idempotent method (RFC 9110 §9.2.2), no request body, no
  response byte received (RFC 9112 §9.3.1); see rsp.proxy.exchange.
- Flow control: each side's transport pauses the other side's reading above its high-water mark.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rsp.config.model import Backend, Config, HealthCheck, HttpSettings
from rsp.http1.forward import RequestContext
from rsp.metrics.counters import ListenerStats
from rsp.pipeline.phases import EMPTY_CHAIN, Chain
from rsp.proxy.access_log import AccessLog
from rsp.proxy.client import ClientConnection
from rsp.proxy.http_upstream import IdlePool, UpstreamConnection
from rsp.proxy.pools import PoolRuntime
from rsp.proxy.session_io import BackendTls, Connector, SocketConnector, start_stream, start_tls_stream
from rsp.routes.router import Router
from rsp.transport.poller import poller_of
from rsp.upstream.records import BackendRecord

if TYPE_CHECKING:
    from rsp.proxy.exchange import Exchange

# The X-Forwarded-Proto and Forwarded proto a listener writes: in clear text, or with `tls`.
LISTENER_PROTO = b"http"
TLS_LISTENER_PROTO = b"https"
# Peers a balancer filter chose outside their pool (FilterRun._pick) keep a pool of their own, for their idle
# connections; at most this many, the oldest forgotten first.
MAX_PEER_POOLS = 256


class HttpProxy:
    """One HTTP listener: routing, pools, the upstream idle pools, live client connections.

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
        self.connections: set[ClientConnection] = set()
        self.idle_pools: dict[BackendRecord, IdlePool] = {}
        self.trusted = tuple(ipaddress.ip_network(c, strict=False) for c in config.http.trusted_proxies)
        self.draining = False
        # Set by a route store (rsp.routestore.store): host -> pool for hosts no static route matches (the
        # hot path's one dict lookup), and the callback that routes a request for a host not in it yet.
        self.host_pools: dict[str, PoolRuntime] | None = None
        self.host_lookup: Callable[[Exchange, str], None] | None = None
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

    # -- housekeeping (called from the server's tick) -------------------------------------------------
    def now(self) -> float:
        """The clock of timeouts and idle pools: on rsp's loop, time.monotonic() read once per loop
        iteration (a deadline is a few microseconds early at most; two clock reads fewer per request);
        otherwise the clock given at construction."""
        poller = self.poller
        return poller.now if poller is not None else self.clock()

    def tick(self) -> None:
        now = self.now()
        for conn in list(self.connections):
            if conn.deadline and now >= conn.deadline:
                conn.on_timeout()
        for pool in self.idle_pools.values():
            if pool.idle:
                pool.expire(now)

    def live_connections(self) -> int:
        return sum(1 for c in self.connections if not c.is_idle())

    def begin_drain(self, linger: float = 0.0) -> None:
        """Stop keep-alive: busy clients are closed after their current response (sent with `Connection:
        close`). Idle clients are closed now, or with `linger` (a reload) after `linger` more seconds of
        idleness, and a connection accepted whose first request has not arrived yet is served: closing an
        idle keep-alive connection races with a request the client may be sending on it (RFC 9112 §9.6), so
        a reload gives clients that reuse their connections at once the time to do so and be told to close."""
        self.draining = True
        deadline = self.now() + linger
        for conn in list(self.connections):
            if not conn.is_idle():
                continue
            if linger <= 0.0:
                conn.close()
            elif conn.requests and (conn.deadline == 0.0 or conn.deadline > deadline):
                conn.deadline = deadline

    def close_all(self) -> None:
        for conn in list(self.connections):
            conn.abort()
        for pool in self.idle_pools.values():
            pool.close_all()

    # -- upstream connections -------------------------------------------------------------------------
    def open_upstream(self, exchange: Exchange, record: BackendRecord, pool: PoolRuntime) -> None:
        """Open a new connection to `record` for `exchange`, which hears of it through attach() or
        connect_failed()."""
        conn = UpstreamConnection(self.loop, record, self.idle_pools[record], self.caches)
        self.connector.connect(pool, record, conn, lambda err: self._connected(exchange, record, conn, err))

    def _connected(self, exchange: Exchange, record: BackendRecord, conn: UpstreamConnection, err: str) -> None:
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

    def on_accept(self, sock: socket.socket, peer: tuple[object, ...]) -> None:
        """A client connected (rsp.transport.listener.Acceptor, which set it non-blocking and TCP_NODELAY)."""
        tls = self.tls
        if tls is not None:
            start_tls_stream(self.loop, sock, ClientConnection(self), peer, self.high_water, self.low_water, tls,
                             server_side=True)
        else:
            start_stream(self.loop, sock, ClientConnection(self), peer, self.high_water, self.low_water)
