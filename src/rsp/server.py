"""One worker's server: serves the listening sockets the master bound, wires pools to proxies, runs periodic
housekeeping, stops gracefully.

What is one per machine (health checks, the admin socket, the stats endpoint, the sandboxed apps, reload) is
the master's (rsp.master), with one worker or many; the worker learns of it through its control channel
(docs/architecture.md, "Where state lives"). One process, one event loop. Housekeeping (idle timeouts,
passive-health cool-downs, drain progress) runs from one timer tick instead of a timer per connection: a
connection costs no timer while it lives.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from rsp.config.model import Config, Listener
from rsp.logs import get_logger
from rsp.pipeline.phases import Chain, Filter
from rsp.proxy.access_log import AccessLog
from rsp.proxy.h2_front import Http2Front
from rsp.proxy.http_proxy import HttpProxy
from rsp.proxy.pools import PoolRuntime
from rsp.proxy.sni_proxy import SniRouter
from rsp.proxy.tcp_proxy import TcpProxy
from rsp.tls_wiring import TcpFront, pools_for, tcp_acceptor_for, tls_context_for
from rsp.transport.listener import Acceptor
from rsp.transport.relay import SharedBuffer
from rsp.upstream.records import BackendRecord

if TYPE_CHECKING:
    from rsp.routestore.client import RouteClient

# Housekeeping period: idle timeouts are enforced to within one tick (HAProxy's timers are ms-precise,
# nginx's to its timer resolution; a second is plenty for timeouts measured in minutes). Short timeouts
# get a proportionally shorter tick.
MAX_TICK: Final = 1.0


class Server:
    def __init__(self, config: Config, loop: asyncio.AbstractEventLoop, listen_sockets: Sequence[socket.socket],
                 filters_for: Callable[[Listener], list[Filter]] | None = None) -> None:
        """`listen_sockets`: bound by the master, one per listener in config order. `filters_for`: the filters
        of each HTTP listener, in order (rsp.filter_wiring; called once per listener at start); none by default."""
        self.config = config
        self.listen_sockets = list(listen_sockets)
        self.loop = loop
        self.pools: dict[str, PoolRuntime] = {}
        self.proxies: list[TcpProxy] = []
        self.acceptors: list[Acceptor] = []
        self.shared = SharedBuffer(config.high_water)
        shortest = config.timeouts.idle
        if any(lst.mode == "http" for lst in config.listeners):
            h = config.http
            shortest = min(shortest, h.header_timeout, h.body_timeout, h.response_timeout, h.keepalive_timeout)
        self.tick_interval = min(MAX_TICK, shortest / 4)
        self._tick_handle: asyncio.TimerHandle | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._draining = False
        self._drain_deadline = 0.0
        self._drain_linger = 0.0
        self.http_proxies: list[HttpProxy] = []
        self.h2_fronts: list[Http2Front] = []  # the HTTP/2 connections of listeners with `http2`
        self.tls_fronts: list[TcpFront] = []  # TCP listeners' TLS termination and SNI peeking
        self.access_log: AccessLog | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.route_store: RouteClient | None = None  # the machine's routes, asked of the master
        # Metrics (rsp.metrics): each listener with its proxy, in config order.
        self.listening: list[tuple[Listener, HttpProxy | TcpProxy]] = []
        self.started = time.time()
        self.filters_for = filters_for

    # -- start ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Build the proxies on the listening sockets and start accepting."""
        # TLS: certificates and CAs are read now (a pure function of the config: a reload rereads them)
        self.pools.update(pools_for(self.config, self.loop.time))
        tls_contexts = [tls_context_for(self.config, listener) for listener in self.config.listeners]
        for listener, sock, tls in zip(self.config.listeners, self.listen_sockets, tls_contexts, strict=True):
            if listener.mode == "http":
                if self.access_log is None:
                    self.access_log = AccessLog(self.config.http.access_log, self.config.http.access_log_path)
                filters = self.filters_for(listener) if self.filters_for is not None else []
                http = HttpProxy(self.loop, self.config, self.pools, listener.pool, self.access_log, tls=tls,
                                 chain=Chain(filters) if filters else None, server_port=sock.getsockname()[1])
                self.http_proxies.append(http)
                self.listening.append((listener, http))
                # With `http2`, the first read chooses HTTP/2 or HTTP/1.1 (rsp.proxy.h2_front).
                accept = http.on_accept
                if listener.http2 is not None:
                    h2_front = Http2Front(http, listener.http2)
                    self.h2_fronts.append(h2_front)
                    accept = h2_front.on_accept
                self.acceptors.append(Acceptor(self.loop, sock, accept))
                continue
            proxy = TcpProxy(self.loop, self.pools[listener.pool], self.shared, self.config.high_water)
            self.proxies.append(proxy)
            self.listening.append((listener, proxy))
            on_accept, front = tcp_acceptor_for(self.config, listener, proxy, tls, self.loop, self.pools)
            if front is not None:
                self.tls_fronts.append(front)
            self.acceptors.append(Acceptor(self.loop, sock, on_accept))
        for pool in self.pools.values():
            pool.on_backends_changed = self._backends_changed
        if self.config.route_store is not None:
            from rsp.routestore.client import RouteClient

            store = self.config.route_store
            self.route_store = RouteClient(store, self.config.pools[store.template], self.pools, self.http_proxies,
                                           self.loop)
            for front in self.tls_fronts:
                if isinstance(front, SniRouter):
                    front.routes = self.route_store  # SNI routing reads the store too
            self.route_store.start()
        for acceptor in self.acceptors:
            acceptor.start()
        self._stopped = self.loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.request_shutdown, sig)
        self._tick_handle = self.loop.call_later(self.tick_interval, self._tick)

    @property
    def ports(self) -> list[int]:
        """Bound ports in the order of the config's listeners (one acceptor each, in that order)."""
        return [a.port for a in self.acceptors]

    async def wait_stopped(self) -> None:
        assert self._stopped is not None
        await self._stopped
        if self._background:
            for result in await asyncio.gather(*self._background, return_exceptions=True):
                if isinstance(result, Exception):
                    get_logger().error("while stopping: %s", result, exc_info=result)

    def _remove_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.remove_signal_handler(sig)

    # -- housekeeping --------------------------------------------------------------------------------
    def _tick(self) -> None:
        self._tick_handle = self.loop.call_later(self.tick_interval, self._tick)
        for proxy in self.proxies:
            proxy.sweep_idle(self.config.timeouts.idle, self.tick_interval)
        for front in self.tls_fronts:
            front.sweep_idle(self.config.timeouts.idle, self.tick_interval)
        for http in self.http_proxies:
            http.tick()
        if self.access_log is not None:
            self.access_log.flush()
        for pool in self.pools.values():
            pool.tick()
        if self._draining:
            self._check_drained()

    # -- stop ----------------------------------------------------------------------------------------
    def live_connections(self) -> int:
        return (sum(p.live_connections() for p in self.proxies) + sum(h.live_connections() for h in self.http_proxies)
                + sum(f.live_connections() for f in self.tls_fronts)
                + sum(f.live_connections() for f in self.h2_fronts))

    def _backends_changed(self, record: BackendRecord, added: bool) -> None:
        for http in self.http_proxies:
            http.backends_changed(record, added)

    def request_shutdown(self, sig: int | None = None, *, grace: float | None = None, linger: float = 0.0,
                         reason: str = "request") -> None:
        """Stop accepting; let live connections finish up to the drain timeout (or `grace`); idle HTTP
        keep-alive connections close now, or after `linger` seconds (HttpProxy.begin_drain)."""
        if self._draining:
            return
        self._draining = True
        name = signal.Signals(sig).name if sig else reason
        live = self.live_connections()
        grace = self.config.timeouts.drain if grace is None else grace
        self._drain_linger = linger
        get_logger().info("%s received: no longer accepting; draining %d connection(s) for up to %.0f s",
                          name, live, grace)
        for acceptor in self.acceptors:
            acceptor.stop()
        for http in self.http_proxies:
            http.begin_drain(linger)
        for front in self.h2_fronts:
            front.begin_drain()
        self._drain_deadline = self.loop.time() + grace
        # Check often while draining so that exit follows the last connection closely.
        self.tick_interval = min(self.tick_interval, 0.1)
        self._check_drained()

    def _check_drained(self) -> None:
        live = self.live_connections()
        if self._drain_linger > 0.0:
            # A reload: idle HTTP connections are held too, until their linger ends or their first request
            # (accepted just before the stop, not read yet) is answered with `Connection: close`.
            live += sum(len(h.connections) for h in self.http_proxies) - sum(h.live_connections()
                                                                               for h in self.http_proxies)
        if live and self.loop.time() < self._drain_deadline:
            return
        if live:
            get_logger().warning("drain timeout: closing %d connection(s)", live)
            for proxy in self.proxies:
                proxy.close_all("shutdown")
            for front in self.tls_fronts:
                front.close_all("shutdown")
            for http in self.http_proxies:
                http.close_all()
            for h2_front in self.h2_fronts:
                h2_front.close_all()
        self._finish()

    def _finish(self) -> None:
        for http in self.http_proxies:
            for pool in http.idle_pools.values():
                pool.close_all()
        if self.access_log is not None:
            self.access_log.close()
        stops = []
        if self.route_store is not None:
            stops.append(self.route_store.stop())
        for stop in stops:
            spawn_stop = self.loop.create_task(stop)
            self._background.add(spawn_stop)
            spawn_stop.add_done_callback(self._background.discard)
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
        self._remove_signal_handlers()
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
        get_logger().info("stopped")
