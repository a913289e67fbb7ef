"""How server.py builds the TLS parts of a listener or pool from the config.

Everything here is a function of the config (and the files it names): a reload that builds a new server
from a new config rereads every certificate, key and CA, and new connections use them.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable

from rsp.config.model import Config, Listener
from rsp.proxy.pools import BackendTls, PoolRuntime
from rsp.proxy.sni_proxy import SniRouter
from rsp.proxy.tcp_proxy import TcpProxy
from rsp.proxy.tls_tcp import TlsTcpFront
from rsp.tls.client_context import build_backend_context
from rsp.tls.server_context import build_tls_server, listener_alpn

AcceptHandler = Callable[[socket.socket, tuple[object, ...]], None]
# What a TCP listener's TLS front holds besides the TcpProxy's sessions and relays (counted while draining).
TcpFront = SniRouter | TlsTcpFront


def tls_context_for(config: Config, listener: Listener) -> ssl.SSLContext | None:
    """The listener's TLS context (SNI picks the certificate per connection), None without `tls`."""
    spec = config.tls.listeners.get(listener.key)
    if spec is None:
        return None
    http2 = listener.http2 is not None and listener.http2.mode == "alpn"
    return build_tls_server(config, spec, listener_alpn(listener.mode, http2)).context


def backend_tls_for(config: Config) -> dict[str, BackendTls]:
    """The TLS of each pool that has `tls`, by pool name: given to its PoolRuntime when it is built (and, by
    the route store, to the pools built from it as a template)."""
    return {name: BackendTls(build_backend_context(config, spec), spec) for name, spec in config.tls.pools.items()}


def pools_for(config: Config, clock: Callable[[], float]) -> dict[str, PoolRuntime]:
    """Every pool of the config at run time, each with its TLS."""
    tls = backend_tls_for(config)
    return {name: PoolRuntime(spec, clock, tls.get(name)) for name, spec in config.pools.items()}


def tcp_acceptor_for(config: Config, listener: Listener, proxy: TcpProxy, tls: ssl.SSLContext | None,
                     loop: asyncio.AbstractEventLoop, pools: dict[str, PoolRuntime]) -> tuple[AcceptHandler,
                                                                                              TcpFront | None]:
    """What a TCP listener does with an accepted client: relay, route by SNI, or terminate TLS and relay;
    and the front that holds connections of its own (None for a plain relay)."""
    routing = config.tls.sni.get(listener.key)
    if routing is not None:
        router = SniRouter(loop, routing, pools, proxy)
        return router.on_accept, router
    if tls is not None:
        front = TlsTcpFront(loop, proxy.pool, tls, config.high_water, config.low_water)
        return front.on_accept, front
    return proxy.on_accept, None
