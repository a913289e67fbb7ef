"""The server: binds listeners, wires pools to proxies, runs periodic housekeeping, stops gracefully.

One process, one event loop. Housekeeping (idle timeouts, passive-health cool-downs, drain progress) runs
from one timer tick instead of a timer per connection: a connection costs no timer while it lives.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final, TextIO

from rsp.admin.socket_server import AdminSocket, start_admin_socket
from rsp.config.model import Config, Listener
from rsp.errors import StartupError
from rsp.health.checker import HealthChecker
from rsp.logs import get_logger, reopen_logs, stamped
from rsp.metrics.endpoint import StatsEndpoint, local_machine
from rsp.metrics.snapshot import snapshot
from rsp.pipeline.phases import Chain, Filter
from rsp.proxy.access_log import AccessLog
from rsp.proxy.http_proxy import HttpProxy
from rsp.proxy.pools import PoolRuntime
from rsp.proxy.tcp_proxy import TcpProxy
from rsp.tls_wiring import TcpFront, backend_tls_for, tcp_acceptor_for, tls_context_for
from rsp.transport.listener import Acceptor, bind_listener
from rsp.transport.relay import SharedBuffer
from rsp.upstream.records import BackendRecord

if TYPE_CHECKING:  # imported only for configs that use them: pyroute2 and redis cost start-up time otherwise
    from rsp.routestore.store import RouteStore
    from rsp.sandbox.manager import AppManager

# Housekeeping period: idle timeouts are enforced to within one tick (HAProxy's timers are ms-precise,
# nginx's to its timer resolution; a second is plenty for timeouts measured in minutes). Short timeouts
# get a proportionally shorter tick.
MAX_TICK: Final = 1.0


class Server:
    def __init__(self, config: Config, loop: asyncio.AbstractEventLoop, out: TextIO = sys.stdout,
                 listen_sockets: Sequence[socket.socket] | None = None, worker: bool = False,
                 filters_for: Callable[[Listener], list[Filter]] | None = None) -> None:
        """`worker`: a worker process under rsp.master, serving `listen_sockets` (bound by the master, one per
        listener in config order). The master runs the health checks and the admin socket and prints the
        Started lines, so a worker does none of these. `filters_for`: the filters of each HTTP listener, in
        order (rsp.pipeline.phases; called once per listener at start); none by default."""
        self.config = config
        self.listen_sockets = list(listen_sockets) if listen_sockets is not None else None
        self.worker = worker
        self.loop = loop
        self.out = out
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
        self.admin: AdminSocket | None = None
        self.checkers: list[HealthChecker] = []
        self.http_proxies: list[HttpProxy] = []
        self.tls_fronts: list[TcpFront] = []  # TCP listeners' TLS termination and SNI peeking
        self.access_log: AccessLog | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.route_store: RouteStore | None = None
        # Metrics (rsp.metrics): each listener with its proxy, in config order; the stats endpoint.
        self.listening: list[tuple[Listener, HttpProxy | TcpProxy]] = []
        self.stats: StatsEndpoint | None = None
        self.started = time.time()
        self.apps: AppManager | None = None
        self.filters_for = filters_for

    # -- start ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind every listener, then announce each. Raises StartupError (and binds nothing) on failure."""
        sockets: list[socket.socket] = list(self.listen_sockets or ())
        try:
            if self.listen_sockets is None:
                for listener in self.config.listeners:
                    sockets.append(bind_listener(listener.host, listener.port))
            for name, spec in self.config.pools.items():
                self.pools[name] = PoolRuntime(spec, self.loop.time)
        except StartupError:
            for sock in sockets:
                sock.close()
            raise
        try:  # TLS: certificates and CAs are read now (a pure function of the config: a reload rereads them)
            backend_tls = backend_tls_for(self.config, self.pools)
            tls_contexts = [tls_context_for(self.config, listener) for listener in self.config.listeners]
        except Exception:
            for sock in sockets:
                sock.close()
            raise
        for listener, sock, tls in zip(self.config.listeners, sockets, tls_contexts, strict=True):
            if listener.mode == "http":
                if self.access_log is None:
                    self.access_log = AccessLog(self.config.http.access_log, self.config.http.access_log_path)
                filters = self.filters_for(listener) if self.filters_for is not None else []
                http = HttpProxy(self.loop, self.config, self.pools, listener.pool, self.access_log, tls=tls,
                                 backend_tls=backend_tls, chain=Chain(filters) if filters else None,
                                 server_port=sock.getsockname()[1])
                self.http_proxies.append(http)
                self.listening.append((listener, http))
                self.acceptors.append(Acceptor(self.loop, sock, http.on_accept))
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
            from rsp.routestore.store import RouteStore  # imports redis: only for configs that use it

            store = self.config.route_store
            self.route_store = RouteStore(store, self.config.pools[store.template], self.pools, self.http_proxies,
                                          self.loop)
            await self.route_store.start()
        if self.config.admin_socket and not self.worker:
            try:
                self.admin = await start_admin_socket(self.config.admin_socket, self.pools)
            except OSError as exc:
                for acceptor in self.acceptors:
                    acceptor.stop()
                raise StartupError(f"cannot open admin socket {self.config.admin_socket}: {exc.strerror}") from exc
        if self.config.stats is not None and not self.worker:  # with workers, the master serves it
            await self._start_stats(self.config.stats.host, self.config.stats.port, self.config.stats.refresh)
        # Sandboxed apps (rsp.sandbox): started, joining pools when ready; with workers, by the master.
        if (config_apps := self.config.sandbox.apps) and not self.worker:
            from rsp.sandbox.manager import AppManager

            # Joins and leaves reach the HTTP listeners through PoolRuntime.on_backends_changed.
            self.apps = AppManager(self.config.sandbox, self.config.path, self.loop, self.pools)
            try:
                await self.apps.start()
            except StartupError:
                for acceptor in self.acceptors:
                    acceptor.stop()
                if self.admin is not None:
                    self.admin.close()
                raise
            get_logger().info("sandbox: %d app(s) starting", len(config_apps))
        for pool in self.pools.values():
            if pool.spec.health.kind != "none" and not self.worker:
                pool_tls = backend_tls.get(pool.name)
                checker = HealthChecker(pool.spec, pool.records, pool.health_changed, get_logger().info,
                                        (pool_tls.context, pool_tls.names) if pool_tls is not None else None)
                checker.start()
                self.checkers.append(checker)
        for acceptor in self.acceptors:
            acceptor.start()
        self._stopped = self.loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.request_shutdown, sig)
        if not self.worker:  # a worker's USR1 is set by rsp.master.worker; the master's by the master
            self.loop.add_signal_handler(signal.SIGUSR1, reopen_logs)
        self._tick_handle = self.loop.call_later(self.tick_interval, self._tick)
        if self.worker:
            return
        for port in self.ports:
            self.out.write(stamped(f"Started.  Listening on port {port}.") + "\n")
        self.out.flush()

    async def _start_stats(self, host: str, port: int, refresh: float) -> None:
        """Single process: the stats endpoint gathers this process's own snapshot."""

        async def gather() -> list[dict[str, object]]:
            return [snapshot(self)]

        self.stats = StatsEndpoint(self.loop, host, port, gather, local_machine(self.started), refresh)
        try:
            await self.stats.start()
        except OSError as exc:
            self.stats = None
            for acceptor in self.acceptors:
                acceptor.stop()
            if self.admin is not None:
                self.admin.close()
            why = os.strerror(exc.errno) if exc.errno else str(exc)  # asyncio wraps strerror in a longer text
            raise StartupError(f"cannot listen for stats on {host}:{port}: {why}") from exc
        get_logger().info("stats: http://%s:%d/ (metrics at /metrics)", host, self.stats.port)

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
        if self.apps is not None:
            self._remove_signal_handlers()

    def _remove_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT) if self.worker else (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
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
                + sum(f.live_connections() for f in self.tls_fronts))

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
        self._finish()

    def _finish(self) -> None:
        for http in self.http_proxies:
            for pool in http.idle_pools.values():
                pool.close_all()
        if self.access_log is not None:
            self.access_log.close()
        if self.admin is not None:
            self.admin.close()
            self.admin = None
        if self.stats is not None:
            self.stats.close()
            self.stats = None
        stops = [checker.stop() for checker in self.checkers]
        if self.route_store is not None:
            stops.append(self.route_store.stop())
        if self.apps is not None:
            stops.append(self.apps.stop())
        for stop in stops:
            spawn_stop = self.loop.create_task(stop)
            self._background.add(spawn_stop)
            spawn_stop.add_done_callback(self._background.discard)
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
        if self.apps is None:
            self._remove_signal_handlers()
        # else after the apps have stopped (wait_stopped): a second SIGTERM meanwhile (systemd, `timeout`)
        # must not kill rsp half-way through removing the apps' namespaces.
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
        get_logger().info("stopped")
