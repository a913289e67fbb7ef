"""HTTP/2 client connections in HTTP mode: each stream runs as an exchange of rsp's session.

    client socket -> Http2Session (a StreamProtocol) -> rsp.http2.server.ServerConnection (sans-IO)
      RequestOpened -> H2Stream (rsp.proxy.h2_stream): the stream's Request goes straight into an Exchange
        (routing, filters, pools, retries, error pages, access log, exactly as for an HTTP/1 client), and
        the exchange's Response comes back through the stream's Downstream methods as HEADERS / DATA frames

Bytes are counted here, once per read and write of the connection; streams are counted as they open.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

from rsp.config.model import Http2Settings
from rsp.http1.forward import RequestContext
from rsp.http2 import codes
from rsp.http2.events import (
    ConnectionEnded,
    Event,
    RequestData,
    RequestEnded,
    RequestOpened,
    StreamCancelled,
    StreamWritable,
)
from rsp.http2.server import ServerConnection
from rsp.logs import get_logger
from rsp.proxy.h2_stream import H2Stream
from rsp.proxy.session_io import Transport

if TYPE_CHECKING:
    from rsp.proxy.session_state import SessionState

log = get_logger()

# How often a connection's timers are checked (idle, send, header block, drain): the resolution of those
# timeouts.
TICK_INTERVAL = 1.0


class Http2Session:
    """One client connection speaking HTTP/2 (chosen by ALPN or the preface, rsp.proxy.h2_front)."""

    def __init__(self, proxy: SessionState, settings: Http2Settings, scheme: bytes,
                 live: set[Http2Session] | None = None) -> None:
        """`live`: the set of its listener's sessions (rsp.proxy.h2_front), which it leaves when closed."""
        self.proxy = proxy
        self.live = live if live is not None else set()
        self.loop = proxy.loop
        self.conn = ServerConnection(settings, proxy.clock, scheme)
        self.streams: dict[int, H2Stream] = {}
        self.context: RequestContext | None = None  # what forwarding reads besides a head, made by the 1st stream
        self.transport: Transport | None = None
        self.peer: tuple[object, ...] = ()
        self.flush_pending = False
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False

    # -- the socket's protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = t = cast(Transport, transport)
        self.peer = t.peer
        self.live.add(self)
        stats = self.proxy.stats
        stats.accepted += 1  # ClientConnection counts HTTP/1 ones; this one chose HTTP/2 instead
        stats.http2_connections += 1
        self.flush()
        self.timer = self.loop.call_later(TICK_INTERVAL, self.on_tick)

    def data_received(self, data: bytes) -> None:
        self.proxy.stats.bytes_received += len(data)
        self.handle(self.conn.receive(data))
        self.flush()

    def eof_received(self) -> bool | None:
        self.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.live.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for stream in list(self.streams.values()):
            stream.cancelled()
        self.streams.clear()
        self.transport = None

    def pause_writing(self) -> None:
        self.conn.pause_output()
        if self.transport is not None:
            # A client that does not read its socket gets nothing of its frames parsed either (its PING
            # and SETTINGS ACKs would only queue): docs/http2.md, "Limits".
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None:
            self.transport.resume_reading()
        self.handle(self.conn.resume_output())
        self.flush()

    # -- events ---------------------------------------------------------------------------------------
    def handle(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, RequestData):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.body(event.data)
            elif isinstance(event, RequestOpened):
                stream = H2Stream(self, self.conn, self.proxy, event.stream_id, self.peer, self.context)
                self.context = stream.context  # one per connection: the serialised request memo keys on it
                self.streams[event.stream_id] = stream
                stream.begin(event.request)
            elif isinstance(event, RequestEnded):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.end(event.trailers)
            elif isinstance(event, StreamWritable):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.writable()
            elif isinstance(event, StreamCancelled):
                stream = self.streams.pop(event.stream_id, None)
                if stream is not None:
                    stream.cancelled()
            elif isinstance(event, ConnectionEnded):
                if event.error_code != codes.NO_ERROR:
                    log.info("http2 connection from %s ended: %s", self.peer[0] if self.peer else "?",
                             event.reason)
                self.close()

    def stream_done(self, stream_id: int) -> None:
        self.streams.pop(stream_id, None)
        if self.conn.closing:
            self.close()

    def drain(self) -> None:
        """Graceful shutdown (stop, reload): GOAWAY now; streams in flight finish, then the connection ends."""
        if not self.closed:
            self.conn.drain()
            self.flush()

    def abort(self) -> None:
        """The drain timeout passed: close now."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def on_tick(self) -> None:
        self.timer = None
        if self.closed:
            return
        if self.proxy.draining:
            self.conn.drain()
        self.handle(self.conn.tick())
        self.flush()
        if not self.closed:
            self.timer = self.loop.call_later(TICK_INTERVAL, self.on_tick)

    # -- output ---------------------------------------------------------------------------------------
    def flush_soon(self) -> None:
        """Write the frames the streams queued once, at the end of this loop iteration's callbacks: a
        response's HEADERS and DATA leave in one write, not one per frame."""
        if not self.flush_pending:
            self.flush_pending = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_pending = False
        transport = self.transport
        if transport is None:
            return
        out = self.conn.data_to_send()
        if out:
            self.proxy.stats.bytes_sent += len(out)
            transport.write(out)
        if self.conn.closing:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        transport = self.transport
        if transport is not None:
            out = self.conn.data_to_send()
            if out:
                transport.write(out)
            transport.close()
