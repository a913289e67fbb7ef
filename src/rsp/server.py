"""The server: binds listeners, wires pools to proxies, runs periodic housekeeping, stops gracefully.

One process, one event loop. Housekeeping (idle timeouts, passive-health cool-downs, drain progress) runs
from one timer tick instead of a timer per connection: a connection costs no timer while it lives.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from typing import Final, TextIO

from rsp.admin.socket_server import AdminSocket, start_admin_socket
from rsp.config.model import Config
from rsp.errors import StartupError
from rsp.health.checker import HealthChecker
from rsp.logs import get_logger, stamped
from rsp.proxy.access_log import AccessLog
from rsp.proxy.http_proxy import HttpProxy
from rsp.proxy.pools import PoolRuntime
from rsp.proxy.tcp_proxy import TcpProxy
from rsp.tls_wiring import TcpFront, backend_tls_for, tcp_acceptor_for, tls_context_for
from rsp.transport.listener import Acceptor, bind_listener
from rsp.transport.relay import SharedBuffer

# Housekeeping period: idle timeouts are enforced to within one tick (HAProxy's timers are ms-precise,
# nginx's to its timer resolution; a second is plenty for timeouts measured in minutes). Short timeouts
# get a proportionally shorter tick.
MAX_TICK: Final = 1.0


class Server:
    def __init__(self, config: Config, loop: asyncio.AbstractEventLoop, out: TextIO = sys.stdout) -> None:
        self.config = config
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
        self.admin: AdminSocket | None = None
        self.checkers: list[HealthChecker] = []
        self.http_proxies: list[HttpProxy] = []
        self.tls_fronts: list[TcpFront] = []  # TCP listeners' TLS termination and SNI peeking
        self.access_log: AccessLog | None = None
        self._background: set[asyncio.Task[None]] = set()

    # -- start ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind every listener, then announce each. Raises StartupError (and binds nothing) on failure."""
        sockets: list[socket.socket] = []
        try:
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
                http = HttpProxy(self.loop, self.config, self.pools, listener.pool, self.access_log, tls=tls,
                                 backend_tls=backend_tls)
                self.http_proxies.append(http)
                self.acceptors.append(Acceptor(self.loop, sock, http.on_accept))
                continue
            proxy = TcpProxy(self.loop, self.pools[listener.pool], self.shared, self.config.high_water)
            self.proxies.append(proxy)
            on_accept, front = tcp_acceptor_for(self.config, listener, proxy, tls, self.loop, self.pools)
            if front is not None:
                self.tls_fronts.append(front)
            self.acceptors.append(Acceptor(self.loop, sock, on_accept))
        if self.config.admin_socket:
            try:
                self.admin = await start_admin_socket(self.config.admin_socket, self.pools)
            except OSError as exc:
                for acceptor in self.acceptors:
                    acceptor.stop()
                raise StartupError(f"cannot open admin socket {self.config.admin_socket}: {exc.strerror}") from exc
        for pool in self.pools.values():
            if pool.spec.health.kind != "none":
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
        self._tick_handle = self.loop.call_later(self.tick_interval, self._tick)
        for port in self.ports:
            self.out.write(stamped(f"Started.  Listening on port {port}.") + "\n")
        self.out.flush()

    @property
    def ports(self) -> list[int]:
        """Bound ports in the order of the config's listeners (one acceptor each, in that order)."""
        return [a.port for a in self.acceptors]

    async def wait_stopped(self) -> None:
        assert self._stopped is not None
        await self._stopped
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

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

    def request_shutdown(self, sig: int | None = None) -> None:
        """Stop accepting; let live connections finish up to the drain timeout."""
        if self._draining:
            return
        self._draining = True
        name = signal.Signals(sig).name if sig else "request"
        live = self.live_connections()
        get_logger().info("%s received: no longer accepting; draining %d connection(s) for up to %.0f s",
                          name, live, self.config.timeouts.drain)
        for acceptor in self.acceptors:
            acceptor.stop()
        for http in self.http_proxies:
            http.begin_drain()
        self._drain_deadline = self.loop.time() + self.config.timeouts.drain
        # Check often while draining so that exit follows the last connection closely.
        self.tick_interval = min(self.tick_interval, 0.1)
        self._check_drained()

    def _check_drained(self) -> None:
        live = self.live_connections()
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
        for checker in self.checkers:
            spawn_stop = self.loop.create_task(checker.stop())
            self._background.add(spawn_stop)
            spawn_stop.add_done_callback(self._background.discard)
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.remove_signal_handler(sig)
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
        get_logger().info("stopped")
