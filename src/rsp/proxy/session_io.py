"""The narrow I/O interface of HTTP mode's session: what the client and backend protocols call on their
transports, how the proxy opens a backend connection, and where it reads the time.

The session (rsp.proxy.client, rsp.proxy.exchange, rsp.proxy.http_upstream) touches the outside world
only through these three, so a test drives it with fakes (tests/support/fake_session.py): a transport that records
what is written, a connector that hands out such transports, and a clock the test advances. In
production they are rsp's socket streams (rsp.transport.stream.SocketStream), `SocketConnector` below and
the poller's per-iteration time (HttpProxy.now).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from rsp.proxy.pools import BackendTls
from rsp.transport.connect import UpstreamConnect
from rsp.transport.plain_on_tls import PlainHttpGuard
from rsp.transport.stream import SocketStream, StreamProtocol
from rsp.transport.tls_stream import TlsStream

if TYPE_CHECKING:
    from rsp.proxy.pools import PoolRuntime
    from rsp.upstream.records import BackendRecord

__all__ = ["BackendTls", "Connector", "SocketConnector", "Transport", "start_stream", "start_tls_stream"]

# How a connection attempt ends: "" once the protocol has its transport (connection_made was called),
# else the reason it failed ("connect timeout", "connection refused", ...).
ConnectDone = Callable[[str], None]


class Transport(Protocol):
    """What the session calls on a connection: the subset of asyncio.Transport that SocketStream has.

    write/writelines queue bytes (flushed on close, dropped on abort; ignored once closing, so callers
    need not ask is_closing first); pause_reading/resume_reading stop
    and restart data_received; write_eof half-closes (tunnels); is_closing is true once close or abort
    was called. The transport calls back the protocol's connection_lost once it is closed.
    """

    @property
    def peer(self) -> tuple[object, ...]: ...
    def write(self, data: bytes) -> None: ...
    def writelines(self, parts: list[bytes]) -> None: ...
    def write_eof(self) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def is_closing(self) -> bool: ...


# The calls made for every request go through these: on rsp's own stream (a compiled class) the call is
# native; on any other transport (a test's fake) it is Python's method call. A Protocol-typed attribute
# alone would make every call the generic one.
def write(transport: Transport, data: bytes) -> None:
    if isinstance(transport, SocketStream):
        transport.write(data)
    else:
        transport.write(data)


def writelines(transport: Transport, parts: list[bytes]) -> None:
    if isinstance(transport, SocketStream):
        transport.writelines(parts)
    else:
        transport.writelines(parts)


def is_closing(transport: Transport) -> bool:
    if isinstance(transport, SocketStream):
        return transport.is_closing()
    return transport.is_closing()


class Connector(Protocol):
    """Opens backend connections: `connect` starts one to `record` of `pool` for `protocol` and calls
    `done` exactly once, later (never from inside `connect`): "" after protocol.connection_made, or the
    reason it failed."""

    def connect(self, pool: PoolRuntime, record: BackendRecord, protocol: StreamProtocol, done: ConnectDone,
                timeout: float = 0.0) -> None:
        """`timeout`: seconds for this connection (0: the pool's connect_timeout)."""


def start_stream(loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: StreamProtocol,
                 peer: tuple[object, ...], high_water: int, low_water: int, speculative: bool = False) -> None:
    """Run `protocol` on a connected socket (its connection_made is called now). `speculative`: read it now
    and register it with the poller only when it must wait (SocketStream.start), for accepted sockets."""
    stream = SocketStream(loop, sock, protocol, peer)
    stream.set_write_buffer_limits(high_water, low_water)
    stream.start(speculative)


def start_tls_stream(loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: StreamProtocol,
                     peer: tuple[object, ...], high_water: int, low_water: int, context: ssl.SSLContext, *,
                     server_side: bool, server_hostname: str | None = None,
                     plain_guard: PlainHttpGuard | None = None) -> None:
    """Run `protocol` over TLS on a connected socket (connection_made now; writes wait for the handshake).
    A listener passes `plain_guard`: plain HTTP sent to it is answered by the guard instead."""
    stream = TlsStream(loop, sock, protocol, context, server_side=server_side, server_hostname=server_hostname,
                       peer=peer, plain_guard=plain_guard)
    stream.set_write_buffer_limits(high_water, low_water)
    stream.start()


class SocketConnector:
    """The production connector: a non-blocking connect (rsp.transport.connect) and a socket stream, or a
    TLS stream for a pool that has `tls` (PoolRuntime.tls). `backend_tls` is not read any more (the pool
    carries its TLS): kept until HttpProxy stops passing it."""

    __slots__ = ("backend_tls", "high_water", "loop", "low_water")

    def __init__(self, loop: asyncio.AbstractEventLoop, high_water: int, low_water: int,
                 backend_tls: dict[str, BackendTls] | None = None) -> None:
        self.loop = loop
        self.high_water = high_water
        self.low_water = low_water
        self.backend_tls: dict[str, BackendTls] = backend_tls if backend_tls is not None else {}

    def connect(self, pool: PoolRuntime, record: BackendRecord, protocol: StreamProtocol, done: ConnectDone,
                timeout: float = 0.0) -> None:
        family, sockaddr = pool.addresses[record.index]
        tls = pool.tls
        name = tls.name_for(record.spec) if tls is not None else ""
        try:
            UpstreamConnect(self.loop, family, sockaddr, timeout or pool.spec.connect_timeout,
                            lambda sock, err: self._connected(sock, err, protocol, done, tls, name))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            self.loop.call_soon(done, reason)  # never re-enter the caller

    def _connected(self, sock: socket.socket | None, err: str, protocol: StreamProtocol, done: ConnectDone,
                   tls: BackendTls | None, name: str) -> None:
        if sock is None:
            done(err)
            return
        if tls is not None:
            # The request is queued until the handshake is done; a failed handshake (a certificate that
            # does not verify) reaches the exchange as a connection lost before any response byte.
            start_tls_stream(self.loop, sock, protocol, (), self.high_water, self.low_water, tls.context,
                             server_side=False, server_hostname=name)
        else:
            start_stream(self.loop, sock, protocol, (), self.high_water, self.low_water)
        done("")
