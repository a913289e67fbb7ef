"""The server: binds listeners, wires pools to proxies, runs periodic housekeeping, stops gracefully.

One process, one event loop. Housekeeping (idle timeouts, passive-health cool-downs, drain progress) runs
from one timer tick instead of a timer per connection: a connection costs no timer while it lives.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Final, TextIO

from rsp.admin.socket_server import AdminSocket, start_admin_socket
from rsp.config.model import Config
from rsp.errors import StartupError
from rsp.health.checker import HealthChecker
from rsp.logs import get_logger, reopen_logs, stamped
from rsp.proxy.access_log import AccessLog
from rsp.proxy.http_proxy import HttpProxy
from rsp.proxy.pools import PoolRuntime
from rsp.proxy.tcp_proxy import TcpProxy
from rsp.transport.listener import Acceptor, bind_listener
from rsp.transport.relay import SharedBuffer
from rsp.upstream.records import BackendRecord

# Housekeeping period: idle timeouts are enforced to within one tick (HAProxy's timers are ms-precise,
# nginx's to its timer resolution; a second is plenty for timeouts measured in minutes). Short timeouts
# get a proportionally shorter tick.
MAX_TICK: Final = 1.0


class Server:
    def __init__(self, config: Config, loop: asyncio.AbstractEventLoop, out: TextIO = sys.stdout,
                 listen_sockets: Sequence[socket.socket] | None = None, worker: bool = False) -> None:
        """`worker`: a worker process under rsp.master, serving `listen_sockets` (bound by the master, one per
        listener in config order). The master runs the health checks and the admin socket and prints the
        Started lines, so a worker does none of these."""
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
        self.access_log: AccessLog | None = None
        self._background: set[asyncio.Task[None]] = set()

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
        for listener, sock in zip(self.config.listeners, sockets, strict=True):
            if listener.mode == "http":
                if self.access_log is None:
                    self.access_log = AccessLog(self.config.http.access_log, self.config.http.access_log_path)
                http = HttpProxy(self.loop, self.config, self.pools, listener.pool, self.access_log)
                self.http_proxies.append(http)
                self.acceptors.append(Acceptor(self.loop, sock, http.on_accept))
                continue
            proxy = TcpProxy(self.loop, self.pools[listener.pool], self.shared, self.config.high_water)
            self.proxies.append(proxy)
            self.acceptors.append(Acceptor(self.loop, sock, proxy.on_accept))
        for pool in self.pools.values():
            pool.on_backends_changed = self._backends_changed
        if self.config.admin_socket and not self.worker:
            try:
                self.admin = await start_admin_socket(self.config.admin_socket, self.pools)
            except OSError as exc:
                for acceptor in self.acceptors:
                    acceptor.stop()
                raise StartupError(f"cannot open admin socket {self.config.admin_socket}: {exc.strerror}") from exc
        for pool in self.pools.values():
            if pool.spec.health.kind != "none" and not self.worker:
                checker = HealthChecker(pool.spec, pool.records, pool.health_changed, get_logger().info)
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
        return sum(p.live_connections() for p in self.proxies) + sum(h.live_connections() for h in self.http_proxies)

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
        for sig in (signal.SIGTERM, signal.SIGINT) if self.worker else (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            self.loop.remove_signal_handler(sig)
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
        get_logger().info("stopped")
