"""TCP mode with `tls` on the listener: terminate TLS, relay the plaintext to a backend of the pool.

The client side is a TlsStream, the backend side a SocketStream; two small protocols join them with the
relay's guarantees (docs/architecture.md, "TCP mode"): flow control (a side whose write buffer passes the
high-water mark pauses reading on the other side), half-close (end of data from one side becomes
close_notify/shutdown on the other, and the other direction keeps flowing), close after flush. The last
two are the streams' own rules (rsp.transport.stream, one implementation for both): a stream flushes
before it shuts or closes, and closes itself once both of its directions have ended, so the protocols
here only pass each end on. The
backend is picked and connected once the handshake has begun; a failed connect tries another backend up
to the pool's `retries`, and the client's bytes wait meanwhile (reading paused).
"""

from __future__ import annotations

import asyncio
import socket
import ssl

from rsp.logs import get_logger
from rsp.proxy.pools import PoolRuntime
from rsp.proxy.tcp_proxy import peer_text
from rsp.transport.connect import UpstreamConnect
from rsp.transport.plain_on_tls import TCP_PLAIN_GUARD
from rsp.transport.stream import SocketStream
from rsp.transport.tls_stream import TlsStream
from rsp.upstream.records import BackendRecord


class TlsTcpFront:
    """One TCP listener that terminates TLS."""

    def __init__(self, loop: asyncio.AbstractEventLoop, pool: PoolRuntime, context: ssl.SSLContext,
                 high_water: int, low_water: int) -> None:
        self.loop = loop
        self.pool = pool
        self.context = context
        self.high_water = high_water
        self.low_water = low_water
        self.live: set[TlsClientSide] = set()

    def live_connections(self) -> int:
        return len(self.live)

    def sweep_idle(self, idle_limit: float, interval: float) -> None:
        """TCP mode's idle timeout (TcpProxy.sweep_idle's rule): no byte either way for `idle_limit` seconds,
        counted in housekeeping ticks of `interval` seconds, closes the connection."""
        for side in list(self.live):
            if side.activity != side.idle_seen:
                side.idle_seen = side.activity
                side.idle_ticks = 0
                continue
            side.idle_ticks += 1
            if side.idle_ticks * interval >= idle_limit:
                get_logger().info("connection %s closed: idle timeout", peer_text(side.addr))
                side.abort_both()

    def close_all(self, reason: str) -> None:
        """Drain timeout or shutdown: close every connection now (the server stops after this)."""
        for side in list(self.live):
            side.abort_both()

    def on_accept(self, sock: socket.socket, addr: tuple[object, ...]) -> None:
        side = TlsClientSide(self, addr)
        stream = TlsStream(self.loop, sock, side, self.context, server_side=True, peer=addr,
                           plain_guard=TCP_PLAIN_GUARD)
        stream.set_write_buffer_limits(self.high_water, self.low_water)
        stream.start()


class _Side:
    """asyncio.Protocol callbacks shared by both sides: forward to the peer side's transport."""

    def __init__(self) -> None:
        self.transport: TlsStream | SocketStream | None = None
        self.other: _Side | None = None
        self.closed = False
        self.eof = False  # this side's peer ended its data

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, TlsStream | SocketStream)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.count_activity()
        other = self.other
        if other is not None and other.transport is not None:
            other.transport.write(data)

    def count_activity(self) -> None:
        pass

    def eof_received(self) -> bool:
        self.eof = True
        other = self.other
        if other is not None and other.transport is not None:
            other.transport.write_eof()  # after what is queued for it; the stream closes once both have ended
        return True  # half-close: keep sending the other way

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        other = self.other
        if other is not None and other.transport is not None:
            other.transport.close()

    def pause_writing(self) -> None:
        other = self.other
        if other is not None and other.transport is not None:
            other.transport.pause_reading()

    def resume_writing(self) -> None:
        other = self.other
        if other is not None and other.transport is not None:
            other.transport.resume_reading()


class TlsClientSide(_Side):
    def __init__(self, front: TlsTcpFront, addr: tuple[object, ...]) -> None:
        super().__init__()
        self.front = front
        self.addr = addr
        self.pending: list[bytes] = []
        self.tried: list[BackendRecord] = []
        self.record: BackendRecord | None = None
        self.attempt: UpstreamConnect | None = None
        self.activity = 0  # reads either way, for the idle sweep (a counter, no timer per connection)
        self.idle_seen = 0
        self.idle_ticks = 0

    def count_activity(self) -> None:
        self.activity += 1

    def abort_both(self) -> None:
        other = self.other
        if other is not None and other.transport is not None:
            other.transport.abort()
        if self.transport is not None:
            self.transport.abort()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.front.live.add(self)
        self._attempt()

    def data_received(self, data: bytes) -> None:
        if self.other is None:
            self.pending.append(data)
            assert self.transport is not None
            self.transport.pause_reading()  # until a backend is connected
            return
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.live.discard(self)
        if self.attempt is not None:
            self.attempt.cancel()
            self.attempt = None
            self._release()
        super().connection_lost(exc)

    def _release(self) -> None:
        if self.record is not None:
            self.record.active -= 1
            self.record = None

    def _attempt(self) -> None:
        pool = self.front.pool
        key = str(self.addr[0]).encode() if pool.wants_key else None
        record = pool.pick(key, self.tried)
        if record is None:
            get_logger().warning("client %s: no backend available in pool %s; closing", peer_text(self.addr),
                                 pool.name)
            if self.transport is not None:
                self.transport.close()
            return
        self.tried.append(record)
        self.record = record
        record.active += 1
        record.total += 1
        family, sockaddr = pool.addresses[record.index]
        try:
            self.attempt = UpstreamConnect(self.front.loop, family, sockaddr, pool.spec.connect_timeout,
                                           self._connected)
        except OSError as exc:
            self._connected(None, exc.strerror or str(exc))

    def _connected(self, sock: socket.socket | None, error: str) -> None:
        self.attempt = None
        record = self.record
        pool = self.front.pool
        if self.closed or self.transport is None:
            if sock is not None:
                sock.close()
            self._release()
            return
        if sock is None:
            assert record is not None
            self._release()
            pool.traffic_failed(record, error)
            get_logger().warning("backend %s connect failed for client %s: %s", record.label, peer_text(self.addr),
                                 error)
            if len(self.tried) <= pool.spec.retries:
                self._attempt()
            else:
                self.transport.close()
            return
        assert record is not None
        pool.traffic_ok(record)
        backend = BackendSide(self)
        self.other = backend
        front = self.front
        stream = SocketStream(front.loop, sock, backend)
        stream.set_write_buffer_limits(front.high_water, front.low_water)
        stream.start()
        for data in self.pending:
            stream.write(data)
        self.pending.clear()
        if self.eof:
            stream.write_eof()
        self.transport.resume_reading()


class BackendSide(_Side):
    def __init__(self, client: TlsClientSide) -> None:
        super().__init__()
        self.other = client
        self.client = client

    def count_activity(self) -> None:
        self.client.activity += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._release()
        super().connection_lost(exc)
