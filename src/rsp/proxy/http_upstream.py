"""Upstream side of HTTP mode: one keep-alive connection to a backend, and the idle pool per backend.

A connection belongs to at most one exchange at a time. Between exchanges it waits in its backend's idle
pool (nginx `keepalive`, HAProxy `http-reuse safe`); bytes or EOF from an idle connection mean the backend
closed it or broke framing, so it is dropped, never reused.
"""

from __future__ import annotations

import asyncio
from typing import Final, cast

from rsp.errors import ProtocolError
from rsp.http1.events import Data, EndOfMessage, ResponseHead
from rsp.http1.parser import ResponseParser
from rsp.logs import get_logger
from rsp.proxy.reply_cache import ResponseHeadCache
from rsp.proxy.session_api import ExchangeSide, UpstreamSide
from rsp.proxy.session_io import Transport, write
from rsp.proxy.waits import WAIT_STREAM
from rsp.upstream.records import BackendRecord

# How often a pool closes the idle connections the last period did not need (HAProxy's `pool-purge-delay`,
# 5 s by default). Each trim closes half of them, as HAProxy does, so a pool shrinks geometrically after a
# burst rather than all at once (a burst that comes back finds half of its connections still warm).
POOL_TRIM_PERIOD: Final = 5.0
# UpstreamConnection.idle_since of a connection that is not in its pool's idle list.
NOT_IDLE: Final = -1.0


class UpstreamConnection(UpstreamSide):
    """One connection to a backend; the exchange it serves is an ExchangeSide (rsp.proxy.session_api)."""

    __slots__ = ("idle_since", "loop", "pool", "transport")

    def __init__(self, loop: asyncio.AbstractEventLoop, record: BackendRecord, pool: IdlePool,
                 caches: bool = True) -> None:
        self.loop = loop
        self.record = record
        self.pool = pool
        self.transport: Transport | None = None
        self.exchange: ExchangeSide | None = None
        self.parser = ResponseParser()
        self.requests = 0
        self.idle_since = NOT_IDLE
        self.closed = False
        # The last response head sent on to a client and its bytes (Exchange.on_head).
        self.replies = ResponseHeadCache(caches)

    # -- the stream's protocol (asyncio.Protocol's callbacks) ----------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.record.stats.bytes_received += len(data)
        exchange = self.exchange
        if exchange is None:
            # Idle connection talking out of turn: framing is broken or the backend is closing.
            self.close()
            return
        if exchange.tunnel:
            exchange.client.tunnel_to_client(data)
            return
        try:
            events = self.parser.feed(data)
        except ProtocolError as exc:
            exchange.upstream_failed(f"invalid response: {exc}", protocol_error=True)
            return
        client = exchange.client
        client.cork()
        try:
            for event in events:
                # Dispatch inline (this runs once per response on the hot path).
                kind = type(event)
                if kind is Data:
                    exchange.on_data(cast(Data, event).data)
                elif kind is ResponseHead:
                    exchange.on_head(cast(ResponseHead, event))
                else:
                    exchange.on_end(cast(EndOfMessage, event))
                if self.exchange is not exchange:  # the exchange ended (or failed) inside the handler
                    break
        finally:
            client.uncork()
        if self.exchange is exchange and client.wait == WAIT_STREAM:
            client.stream_continues(exchange.read_timeout)  # the response is still coming

    def eof_received(self) -> bool | None:
        exchange = self.exchange
        if exchange is not None:
            if exchange.tunnel:
                exchange.client.tunnel_eof_from_upstream()
                return True  # keep our write side open: the client may still be sending
            try:
                events = self.parser.feed(b"")
            except ProtocolError as exc:
                exchange.upstream_failed(f"invalid response: {exc}", protocol_error=True)
                return None
            for event in events:
                if type(event) is EndOfMessage:
                    exchange.on_end(event)
                elif type(event) is Data:
                    exchange.on_data(event.data)
            if self.exchange is exchange:
                exchange.upstream_failed("backend closed the connection")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.discard(self)
        self.transport = None  # breaks the stream <-> protocol cycle (see ClientConnection.connection_lost)
        exchange = self.exchange
        if exchange is not None:
            self.exchange = None
            if exchange.tunnel:
                exchange.client.tunnel_closed()
            else:
                exchange.upstream_failed("backend connection lost" + (f": {exc}" if exc else ""))

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client.pause_reading()

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.client.resume_reading()

    # -- used by the exchange ------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.record.stats.bytes_sent += len(data)
            write(self.transport, data)

    def release(self, now: float) -> None:
        self.pool.put(self, now)

    def response_done(self, keep_alive: bool, now: float) -> None:
        parser = self.parser
        stray = parser.unsolicited
        if stray:
            # Bytes after a complete response that nothing asked for (a backend answering HEAD with a body,
            # RFC 9112 §6.3): the client has its whole response; this connection's framing is lost.
            exchange = self.exchange
            request = exchange.head if exchange is not None else None
            get_logger().warning("backend %s sent %d bytes after a complete response to %s %s; closing that "
                                 "connection", self.record.label, stray,
                                 request.method.decode("latin-1") if request is not None else "-",
                                 request.target.decode("latin-1")[:200] if request is not None else "-")
        # Never pool a connection whose parser is paused (a protocol switch), mid-message or lost.
        if keep_alive and not stray and not self.closed and parser.pending == 0 and not parser.paused:
            self.release(now)
        else:
            self.close()

    def write_eof(self) -> None:
        """Half-close toward the backend (tunnels): flushed after what is queued."""
        if self.transport is not None and not self.closed:
            self.transport.write_eof()

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def close(self) -> None:
        """Close after flushing what is queued (the backend gets the whole request)."""
        self._end(abort=False)

    def abort(self) -> None:
        """Close now, dropping queued bytes (the connection's framing can no longer be trusted)."""
        self._end(abort=True)

    def _end(self, *, abort: bool) -> None:
        self.exchange = None
        if not self.closed:
            self.closed = True
            self.pool.discard(self)
            if self.transport is not None:
                if abort:
                    self.transport.abort()
                else:
                    self.transport.close()


class IdlePool:
    """Idle keep-alive connections to one backend, most recently used first (warm sockets, and the
    oldest age out: nginx's keepalive cache does the same).

    Its size follows use, not a fixed number (docs/performance.md, "Backend keep-alive pool"): a connection
    is kept while fewer than `max_idle` wait (a safety cap a person sets), and every `POOL_TRIM_PERIOD` the
    pool closes half of the connections that stayed idle through the whole period (`low`, the fewest that
    were waiting at any moment of it: those were not needed even at the period's peak)."""

    __slots__ = ("idle", "idle_timeout", "low", "max_idle", "max_requests", "trimmed_at")

    def __init__(self, max_idle: int, idle_timeout: float, max_requests: int) -> None:
        self.idle: list[UpstreamConnection] = []
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.max_requests = max_requests
        self.low = 0
        self.trimmed_at = 0.0

    def take(self) -> UpstreamConnection | None:
        idle = self.idle
        while idle:
            conn = idle.pop()
            conn.idle_since = NOT_IDLE
            if len(idle) < self.low:
                self.low = len(idle)
            if not conn.closed:
                return conn
        self.low = 0
        return None

    def put(self, conn: UpstreamConnection, now: float) -> None:
        """Keep `conn` for reuse, or close it when the pool is full or it has served its quota."""
        conn.exchange = None
        if conn.closed or conn.requests >= self.max_requests or len(self.idle) >= self.max_idle:
            conn.close()
            return
        conn.idle_since = now
        self.idle.append(conn)  # its parser is between messages (pending == 0) and is reused

    def discard(self, conn: UpstreamConnection) -> None:
        if conn.idle_since != NOT_IDLE:  # a busy connection is not searched for in a list of thousands
            conn.idle_since = NOT_IDLE
            try:
                self.idle.remove(conn)
            except ValueError:
                pass

    def expire(self, now: float) -> None:
        """Close what waited longer than the idle timeout, and every `POOL_TRIM_PERIOD` half of what the
        last period did not use. `idle` is in the order connections were put back, so the oldest lead."""
        idle = self.idle
        limit = now - self.idle_timeout
        old = 0
        while old < len(idle) and idle[old].idle_since < limit:
            old += 1
        if now - self.trimmed_at >= POOL_TRIM_PERIOD:
            self.trimmed_at = now
            unused = min(self.low, len(idle))
            old = max(old, (unused + 1) // 2)
            self.low = len(idle) - old
        if old:
            closing = idle[:old]
            del idle[:old]
            for conn in closing:
                conn.idle_since = NOT_IDLE  # out already: discard() need not search for it
                conn.close()
        if len(idle) < self.low:
            self.low = len(idle)

    def close_all(self) -> None:
        closing, self.idle = self.idle, []
        self.low = 0
        for conn in closing:
            conn.idle_since = NOT_IDLE
            conn.close()

