"""HTTP/2 client connections in HTTP mode: each stream runs as an exchange of rsp's session.

    client socket -> Http2Session (a StreamProtocol) -> rsp.http2.server.ServerConnection (sans-IO)
      RequestOpened -> H2Stream: a ClientConnection of its own on a StreamTransport (in memory)
        the request as HTTP/1.1 bytes -> ClientConnection: routing, filters, pools, retries, error pages,
        access log, exactly as for an HTTP/1 client
        its response bytes -> ResponseParser -> Response -> H2Stream.send_head / send_data / send_end (the
        Downstream interface, rsp.pipeline.phases) -> HEADERS / DATA frames on the stream

Why a ClientConnection per stream (an interim bridge, docs/http2.md "Wiring"): the session's Exchange is built
from a ClientConnection and an HTTP/1 RequestHead, and compiled it accepts no stand-in for either; the
session reaches the outside only through its Transport (rsp.proxy.session_io), so a stream gives it one. When
the pipeline has an exchange that takes a Downstream and a neutral Request, H2Stream passes itself and
`request` instead, and the HTTP/1 hop in memory goes away; nothing else here changes.

Backpressure both ways: a stream whose response send_data returns False pauses its ClientConnection's
backend reads (pause_writing), StreamWritable resumes them; request-body bytes are acknowledged to the client
(WINDOW_UPDATE) only while the stream's ClientConnection is reading (its pause_reading holds them back).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

from rsp.config.model import Http2Settings
from rsp.errors import ProtocolError
from rsp.http1.events import Data, EndOfMessage, ResponseHead
from rsp.http1.parser import ResponseParser
from rsp.http1.serialise import response_of
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
from rsp.pipeline.messages import UNKNOWN_LENGTH, Header, Request, Response
from rsp.proxy.client import ClientConnection
from rsp.proxy.session_io import Transport

if TYPE_CHECKING:
    from rsp.proxy.session_state import SessionState

log = get_logger()

# How often a connection's timers are checked (idle, send, header block, drain): the resolution of those
# timeouts.
TICK_INTERVAL = 1.0
# Request framings rsp writes toward the ClientConnection: h2 streams carry no Transfer-Encoding.
_CHUNKED = (b"transfer-encoding", b"chunked")


def http1_request(request: Request) -> bytes:
    """The request as an HTTP/1.1 head (Host first, added by rsp.http2.heads; a body of unknown length as
    chunked, RFC 9112 §7.1)."""
    parts = [request.method, b" ", request.target, b" HTTP/1.1\r\n"]
    for name, value in request.headers:
        parts += (name, b": ", value, b"\r\n")
    if request.body_length == UNKNOWN_LENGTH:
        parts += (_CHUNKED[0], b": ", _CHUNKED[1], b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


class StreamTransport:
    """The Transport (rsp.proxy.session_io) one stream's ClientConnection writes its HTTP/1 response to."""

    def __init__(self, stream: H2Stream, peer: tuple[object, ...]) -> None:
        self._stream = stream
        self._peer = peer
        self.closing = False
        self.reading_paused = False

    @property
    def peer(self) -> tuple[object, ...]:
        return self._peer

    def write(self, data: bytes) -> None:
        if not self.closing:
            self._stream.response_bytes(data)

    def writelines(self, parts: list[bytes]) -> None:
        if not self.closing:
            self._stream.response_bytes(b"".join(parts))

    def write_eof(self) -> None:
        self.close()

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self._stream.connection_closed(aborted=False)

    def abort(self) -> None:
        if not self.closing:
            self.closing = True
            self._stream.connection_closed(aborted=True)

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False
        self._stream.reading_resumed()

    def is_closing(self) -> bool:
        return self.closing


class H2Stream:
    """One stream: its request fed to a ClientConnection, its response back to the HTTP/2 connection."""

    def __init__(self, session: Http2Session, stream_id: int, request: Request) -> None:
        self.session = session
        self.id = stream_id
        self.request = request
        self.chunked = request.body_length == UNKNOWN_LENGTH
        self.parser = ResponseParser()
        self.parser.expect(request.method)
        self.head_sent = False
        self.interim = False  # the head being parsed is a 1xx one
        self.done = False  # the response ended or the stream was reset
        self.unacked = 0  # request-body bytes fed while the ClientConnection was not reading
        self.transport = StreamTransport(self, session.peer)
        self.client = ClientConnection(session.proxy)
        self.client.connection_made(cast(asyncio.BaseTransport, self.transport))
        stats = session.proxy.stats
        stats.accepted -= 1  # the bridge's connection is not a client connection (counted as a stream)
        stats.http2_streams += 1

    # -- the request ----------------------------------------------------------------------------------
    def begin(self) -> None:
        self.client.data_received(http1_request(self.request))

    def body(self, data: bytes) -> None:
        self.client.data_received(b"%x\r\n%b\r\n" % (len(data), data) if self.chunked else data)
        if self.transport.reading_paused:
            self.unacked += len(data)
        else:
            self.session.conn.acknowledge(self.id, len(data))

    def end(self, trailers: list[Header]) -> None:
        if self.chunked:
            lines = b"".join(name + b": " + value + b"\r\n" for name, value in trailers)
            self.client.data_received(b"0\r\n" + lines + b"\r\n")

    def reading_resumed(self) -> None:
        if self.unacked and not self.done:
            self.session.conn.acknowledge(self.id, self.unacked)
            self.unacked = 0
            self.session.flush_soon()

    # -- the response (Downstream) --------------------------------------------------------------------
    def response_bytes(self, data: bytes) -> None:
        try:
            events = self.parser.feed(data)
        except ProtocolError as exc:
            log.warning("http2 stream %d: unreadable response from the session: %s", self.id, exc)
            self.reset("bad response")
            return
        for event in events:
            if isinstance(event, Data):
                self.send_data(event.data)
            elif isinstance(event, ResponseHead):
                self.interim = event.status < 200
                self.send_head(response_of(event))
            elif isinstance(event, EndOfMessage):
                if self.interim:
                    self.interim = False  # the end of a 1xx head: the final response follows (RFC 9110 §15.2)
                else:
                    self.send_end(list(event.trailers))

    def send_head(self, response: Response) -> None:
        if not self.done:
            self.session.conn.send_head(self.id, response)
            self.head_sent = self.head_sent or response.status >= 200
            self.session.flush_soon()

    def send_data(self, data: bytes) -> None:
        if not self.done and not self.session.conn.send_data(self.id, data):
            self.client.pause_writing()  # stop reading the backend until StreamWritable
        self.session.flush_soon()

    def send_end(self, trailers: list[Header]) -> None:
        if self.done:
            return
        self.done = True
        self.session.conn.send_end(self.id, trailers)
        self.session.stream_done(self)
        self.client.close()  # the stream's exchange is over: its ClientConnection ends too

    def reset(self, reason: str) -> None:
        if self.done:
            return
        self.done = True
        self.session.conn.reset(self.id, reason)
        self.session.stream_done(self)
        self.client.abort()

    def connection_closed(self, aborted: bool) -> None:
        """The ClientConnection closed its transport: after a complete response (send_end came), after an
        answer until close (an HTTP/1.0 backend: the end of data ends the body), or mid-response (reset)."""
        if not self.done and not aborted:
            try:
                for event in self.parser.feed(b""):
                    if isinstance(event, EndOfMessage):
                        self.send_end(list(event.trailers))
            except ProtocolError:
                pass
        if not self.done:
            self.reset("connection closed mid-response")
        loop = self.session.loop
        loop.call_soon(self.client.connection_lost, None)

    def cancelled(self) -> None:
        """The client reset the stream (or a limit did): the exchange stops, its backend connection too."""
        if not self.done:
            self.done = True
            self.session.stream_done(self)
            self.client.abort()


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
        # Bytes are counted by each stream's ClientConnection (as HTTP/1 heads and bodies), not here again.
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
                stream = H2Stream(self, event.stream_id, event.request)
                self.streams[event.stream_id] = stream
                stream.begin()
            elif isinstance(event, RequestEnded):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.end(event.trailers)
            elif isinstance(event, StreamWritable):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.client.resume_writing()
            elif isinstance(event, StreamCancelled):
                stream = self.streams.pop(event.stream_id, None)
                if stream is not None:
                    stream.cancelled()
            elif isinstance(event, ConnectionEnded):
                if event.error_code != codes.NO_ERROR:
                    log.info("http2 connection from %s ended: %s", self.peer[0] if self.peer else "?",
                             event.reason)
                self.close()

    def stream_done(self, stream: H2Stream) -> None:
        self.streams.pop(stream.id, None)
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
