"""TCP mode, SNI routing without terminating TLS: peek at the ClientHello, pick a pool by its server name,
then hand the client to TcpProxy with the peeked bytes, which the backend receives first (the TLS
session is end to end: rsp never holds a key).

Bounded: at most MAX_HELLO_BYTES are read (rsp.tls.client_hello), and a client that has not sent a complete
ClientHello within the listener's `sni_timeout` is closed. Names match like the HTTP routes' hosts:
exact first, then `*.parent` for one more label. With a route store (`routes`), a name no static route
has is looked up there (`hostnames:<name>:backends`, then `httpsDefault`, as the seed's router did; never
the HTTP default), within the same `sni_timeout`. No server name, bytes that are not TLS, or a name no
route has: the `sni_default` pool, else the connection is closed.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Protocol

from rsp.config.model import SniRouting
from rsp.errors import ClientHelloError
from rsp.logs import get_logger
from rsp.proxy.pools import PoolRuntime
from rsp.proxy.tcp_proxy import TcpProxy, peer_text
from rsp.tls.client_hello import MAX_HELLO_BYTES, server_name
from rsp.tls.names import NameTable
from rsp.transport.poller import CallbackWatcher, Io, io_for


class NameRoutes(Protocol):
    """The route store's side SNI routing uses (rsp.routestore.client.RouteClient.lookup_tls)."""

    def lookup_tls(self, name: str, done: Callable[[PoolRuntime | None], None]) -> None: ...


class SniRouter:
    """One TCP listener's SNI routes and the clients whose ClientHello is still being read."""

    def __init__(self, loop: asyncio.AbstractEventLoop, routing: SniRouting, pools: dict[str, PoolRuntime],
                 proxy: TcpProxy) -> None:
        self.loop = loop
        self.io: Io = io_for(loop)
        self.proxy = proxy
        self.timeout = routing.timeout
        self.names: NameTable[PoolRuntime] = NameTable()
        for route in routing.routes:
            self.names.add(route.name, pools[route.pool])
        self.default = pools[routing.default] if routing.default else None
        self.peeks: set[SniPeek] = set()
        self.routes: NameRoutes | None = None  # set by the server when the config has a route store

    def choose(self, name: str) -> PoolRuntime | None:
        """The pool for server name `name` ("" : none was sent), or the default."""
        found = self.names.lookup(name) if name else None
        return found if found is not None else self.default

    def on_accept(self, client: socket.socket, addr: tuple[object, ...]) -> None:
        SniPeek(self, client, addr).start()

    def live_connections(self) -> int:
        return len(self.peeks)  # once routed, a connection is the TcpProxy's (its sessions and relays)

    def sweep_idle(self, idle_limit: float, interval: float) -> None:
        """Nothing to sweep: a peek has its own bound (sni_timeout); a routed connection is a TcpProxy relay."""

    def close_all(self, reason: str) -> None:
        for peek in list(self.peeks):
            peek.close(reason)


class SniPeek:
    """Reads one client's first bytes until the server name is known (or the bounds are hit)."""

    def __init__(self, router: SniRouter, client: socket.socket, addr: tuple[object, ...]) -> None:
        self.router = router
        self.client = client
        self.fd = client.fileno()
        self.addr = addr
        self.data = b""
        self.watcher = CallbackWatcher(readable=self.on_readable)
        self.timer: asyncio.TimerHandle | None = None
        self.reading = False
        self.done = False

    def start(self) -> None:
        self.router.peeks.add(self)
        self.router.io.add_reader(self.fd, self.watcher)
        self.reading = True
        self.timer = self.router.loop.call_later(self.router.timeout, self.close, "no ClientHello in time")

    def on_readable(self) -> None:
        try:
            chunk = self.client.recv(MAX_HELLO_BYTES - len(self.data))
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close(exc.strerror or str(exc))
            return
        if not chunk:
            self.close("client closed before its ClientHello")
            return
        self.data += chunk
        try:
            name = server_name(self.data)
        except ClientHelloError as exc:
            self.route("", f"not a TLS ClientHello ({exc})")
            return
        if name is not None:
            self.route(name, "")

    def route(self, name: str, why: str) -> None:
        router = self.router
        found = router.names.lookup(name) if name else None
        if found is None and name and router.routes is not None:
            self._stop_reading()  # the ClientHello is read; sni_timeout bounds the lookup too
            router.routes.lookup_tls(name, lambda pool: self.routed(name, pool or router.default, why))
            return
        self.routed(name, found or router.default, why)

    def routed(self, name: str, pool: PoolRuntime | None, why: str) -> None:
        if self.done:
            return  # closed meanwhile (sni_timeout, drain)
        if pool is None:
            self.close(why or f"no route for server name {name!r}")
            return
        if why:
            get_logger().info("client %s: %s; pool %s", peer_text(self.addr), why, pool.name)
        self._stop()
        self.router.proxy.start_routed(self.client, self.addr, pool, self.data)

    def close(self, why: str) -> None:
        if self.done:
            return
        get_logger().info("client %s: %s; closing", peer_text(self.addr), why)
        self._stop()
        self.client.close()

    def _stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.router.io.remove_reader(self.fd)

    def _stop(self) -> None:
        self.done = True
        self.router.peeks.discard(self)
        self._stop_reading()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
