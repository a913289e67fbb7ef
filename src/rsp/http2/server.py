"""A sans-IO HTTP/2 server connection: bytes in, rsp.http2.events out; responses in, bytes out.

    conn = ServerConnection(settings, clock)        # our SETTINGS are queued at once
    events = conn.receive(data)                      # RequestOpened / RequestData / RequestEnded / ...
    conn.send_head(sid, response); conn.send_data(sid, b"...") -> bool; conn.send_end(sid, trailers)
    conn.acknowledge(sid, n)                         # the backend took n request-body bytes: reopen window
    conn.reset(sid, reason)                          # RST_STREAM (the exchange failed after its head)
    conn.tick()                                      # timers: idle, send, header-block, drain
    conn.drain()                                     # graceful GOAWAY (reload, stop)
    sock.send(conn.data_to_send()); conn.closing     # after ConnectionEnded, flush and close

Framing and HPACK are rsp's own (rsp.http2.core, rsp.http2.hpack_codec; h2 is the client and oracle in
tests/http2); the frame gate (rsp.http2.frame_gate) reads frame headers first for the
limits h2 does not keep; the attack defences and where each default comes from are in docs/http2.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from rsp.config.model import Http2Settings
from rsp.errors import Http2ConnectionError, MalformedRequest
from rsp.http2 import codes
from rsp.http2.core import FrameConnection
from rsp.http2.events import (
    ConnectionEnded,
    Event,
    RequestData,
    RequestEnded,
    RequestOpened,
    StreamCancelled,
    StreamWritable,
)
from rsp.http2.flood import RESETS, FloodMeter, budgets
from rsp.http2.frame_gate import FrameGate
from rsp.http2.frames_in import DataIn, FrameEvent, HeadersIn, PingAcked, ResetIn, WindowOpened
from rsp.http2.heads import build_request, check_trailers, response_fields, trailer_fields
from rsp.http2.outbound import CONNECTION_HIGH_WATER, STREAM_HIGH_WATER, STREAM_LOW_WATER, Stream
from rsp.pipeline.messages import Header, Response

# A graceful shutdown sends GOAWAY(2^31-1) and a PING, then the final GOAWAY with the last stream id when
# the PING's ACK comes back (a round trip: every stream the client sent before is then counted), or after
# this long (RFC 9113 §6.8).
DRAIN_PING_TIMEOUT = 1.0
DRAIN_PING = b"rspdrain"

# The largest response data (per stream, not yet framed) that waits for data_to_send() instead of being
# framed at once: one DATA frame's worth (RFC 9113 §4.2's default SETTINGS_MAX_FRAME_SIZE). Larger data is
# framed as it comes (its end saves nothing worth the wait).
MAX_DEFERRED_DATA: Final = 16384


class ServerConnection:
    """One client connection speaking HTTP/2 (after the preface: ALPN h2 or prior knowledge)."""

    def __init__(self, settings: Http2Settings, clock: Callable[[], float], scheme: bytes = b"https") -> None:
        self._settings = settings
        self._clock = clock
        self._scheme = scheme
        self._meter = FloodMeter(budgets(settings), settings.flood_interval, clock)
        self._core = FrameConnection(settings)
        self._gate = FrameGate(settings, self._meter, clock, stream_closed=self._stream_closed)
        self._streams: dict[int, Stream] = {}  # streams whose response has not ended
        self._waiting: dict[int, Stream] = {}  # streams with data the window or socket holds back
        self._paused: dict[int, Stream] = {}  # streams told to pause (send_data returned False)
        # Streams whose small data waits for data_to_send() to be framed: a response's end that comes in
        # the same event-loop turn (most small responses) then rides on its DATA frame (END_STREAM) instead
        # of an empty DATA frame of its own.
        self._deferred: dict[int, Stream] = {}
        self._buffered = 0  # response bytes in every stream's pending data
        self._output_paused_since: float | None = None
        self._idle_since: float | None = clock()
        self._opened = 0  # streams accepted so far (max_streams_per_connection)
        # (copied: read per stream, and a setting of the interpreted config class is a generic attribute lookup)
        self._max_concurrent = settings.max_concurrent_streams
        self._max_opened = settings.max_streams_per_connection
        self._last_stream: int | None = None  # set by the final GOAWAY: later streams are refused
        self._drain_started: float | None = None
        self._peer_gone = False  # the client sent GOAWAY: finish the streams, then close
        self.closing = False
        self.close_reason = ""

    # ---- bytes in ----------------------------------------------------------------------------------------

    def receive(self, data: bytes) -> list[Event]:
        """Process bytes from the client. After a ConnectionEnded event, send data_to_send() and close."""
        if self.closing:
            return []
        events: list[Event] = []
        try:
            passed = self._gate.feed(data)
            frame_events = self._core.receive_data(passed) if passed else []
            for ev in frame_events:
                self._on_frame_event(ev, events)
        except Http2ConnectionError as exc:
            self._abort(exc.error_code, str(exc), events)
            return events
        for payload in self._gate.goaways:
            self._on_goaway(payload, events)
        self._gate.goaways.clear()
        self._maybe_finished(events)
        if any(isinstance(e, StreamCancelled) for e in events):
            return _without_stillborn(events)
        return events

    def _stream_closed(self, stream_id: int) -> bool:
        """A DATA frame on `stream_id` lands on a stream already closed: one rsp or the client reset, or
        refused (not one whose request body is still open, nor an idle one: that is a protocol error)."""
        return stream_id not in self._streams and 0 < stream_id <= self._core.highest_inbound_stream_id

    def _on_frame_event(self, ev: FrameEvent, events: list[Event]) -> None:
        if isinstance(ev, DataIn):
            self._on_data(ev, events)
        elif isinstance(ev, HeadersIn) and not ev.trailers:
            self._on_request(ev, events)
        elif isinstance(ev, HeadersIn):
            stream = self._streams.get(ev.stream_id)
            if stream is None:
                return
            try:
                trailers = check_trailers(ev.fields)
            except MalformedRequest as exc:
                self._refuse(stream.id, codes.PROTOCOL_ERROR, events, str(exc))
                return
            if _short_body(stream):
                self._refuse(stream.id, codes.PROTOCOL_ERROR, events, "body shorter than Content-Length "
                             "(RFC 9113 §8.1.1)")
                return
            stream.request_ended = True
            events.append(RequestEnded(stream.id, trailers))
        elif isinstance(ev, ResetIn):
            self._on_reset(ev, events)
        elif isinstance(ev, WindowOpened):
            self._flush_all(events)
        elif isinstance(ev, PingAcked) and ev.payload == DRAIN_PING and self._drain_started is not None:
            self._final_goaway()

    def _on_request(self, ev: HeadersIn, events: list[Event]) -> None:
        sid = ev.stream_id
        ended = ev.end_stream
        if self._last_stream is not None and sid > self._last_stream:
            # After our final GOAWAY: not processed, the client may retry it elsewhere (§6.8).
            self._core.reset_stream(sid, codes.REFUSED_STREAM)
            return
        if len(self._streams) >= self._max_concurrent:
            self._refuse(sid, codes.REFUSED_STREAM, events, "over SETTINGS_MAX_CONCURRENT_STREAMS")
            return
        try:
            request = build_request(ev.fields, self._scheme, ended)
        except MalformedRequest as exc:
            self._refuse(sid, codes.PROTOCOL_ERROR, events, str(exc))
            return
        stream = Stream(sid, request)
        self._streams[sid] = stream
        self._idle_since = None
        self._opened += 1
        events.append(RequestOpened(sid, request))
        if ended:
            stream.request_ended = True
            events.append(RequestEnded(sid, []))
        if self._opened >= self._max_opened and self._last_stream is None:
            # nginx's keepalive_requests: this connection has served its share; finish and let the client
            # open a new one (bounds what one connection's state can grow to).
            self._queue_goaway(sid, codes.NO_ERROR, b"max streams per connection")
            self._last_stream = sid

    def _refuse(self, sid: int, code: int, events: list[Event], reason: str) -> None:
        """Reset a stream rsp will not serve; each counts against the reset budget (a client that makes
        rsp decode and refuse streams in a loop is the rapid-reset pattern too)."""
        stream = self._streams.pop(sid, None)
        self._waiting.pop(sid, None)
        self._paused.pop(sid, None)
        self._core.reset_stream(sid, code)
        if stream is not None:
            self._release(stream)
            events.append(StreamCancelled(sid, code, reason))
        self._meter.hit(RESETS)

    def _on_data(self, ev: DataIn, events: list[Event]) -> None:
        sid = ev.stream_id
        data = ev.data
        flow = ev.flow_length
        stream = self._streams.get(sid)
        if stream is None:
            # A stream rsp reset or refused: its bytes reopen the connection window at once.
            if flow:
                self._core.acknowledge_received_data(flow, sid)
            return
        if flow > len(data):
            # Padding is flow-controlled (RFC 9113 §6.9.1) but is nobody's to take: returned now.
            self._core.acknowledge_received_data(flow - len(data), sid)
        if data:
            stream.received += len(data)
            if 0 <= stream.expected < stream.received:
                # More body than Content-Length said: malformed (RFC 9113 §8.1.1), and forwarded to an
                # HTTP/1.1 backend it would be a smuggled request.
                self._core.acknowledge_received_data(len(data), sid)
                self._refuse(sid, codes.PROTOCOL_ERROR, events, "body longer than Content-Length "
                             "(RFC 9113 §8.1.1)")
                return
            stream.unacked += len(data)
            events.append(RequestData(sid, data))
        if ev.end_stream:
            if _short_body(stream):
                self._refuse(sid, codes.PROTOCOL_ERROR, events, "body shorter than Content-Length "
                             "(RFC 9113 §8.1.1)")
                return
            stream.request_ended = True
            events.append(RequestEnded(sid, []))

    def _on_reset(self, ev: ResetIn, events: list[Event]) -> None:
        sid = ev.stream_id
        stream = self._streams.pop(sid, None)
        self._waiting.pop(sid, None)
        self._paused.pop(sid, None)
        if stream is None:
            return
        self._release(stream)
        code = ev.error_code
        events.append(StreamCancelled(sid, code, "stream error" if ev.local else "reset by the client"))
        # Reset before its response ended: the rapid-reset pattern (CVE-2023-44487) when it repeats.
        self._meter.hit(RESETS)

    def _on_goaway(self, payload: bytes, events: list[Event]) -> None:
        """A GOAWAY from the client (taken out by the frame gate). NO_ERROR: it opens no more streams, ours
        finish; any other code: the client gives up on the connection, so do we (RFC 9113 §6.8)."""
        error = int.from_bytes(payload[4:8], "big") if len(payload) >= 8 else codes.PROTOCOL_ERROR
        self._peer_gone = True
        if error != codes.NO_ERROR:
            self._end(f"client GOAWAY with error {error}", error, events)

    # ---- responses out -----------------------------------------------------------------------------------

    def send_head(self, stream_id: int, response: Response) -> None:
        """The response head (1xx interim ones too, RFC 9113 §8.1)."""
        stream = self._streams.get(stream_id)
        if stream is None or self.closing:
            return
        self._core.send_headers(stream_id, response_fields(response))
        if response.status >= 200:
            stream.head_sent = True

    def send_data(self, stream_id: int, data: bytes) -> bool:
        """Queue a body chunk; False when the producer should pause until a StreamWritable event."""
        stream = self._streams.get(stream_id)
        if stream is None or self.closing:
            return True
        if data:
            stream.pending.append(data)
            stream.pending_bytes += len(data)
            self._buffered += len(data)
            if stream.pending_bytes <= MAX_DEFERRED_DATA:
                self._deferred[stream_id] = stream
            else:
                self._flush(stream)
        if stream.pending_bytes > STREAM_HIGH_WATER or self._buffered > CONNECTION_HIGH_WATER:
            stream.paused = True
            self._paused[stream_id] = stream
            return False
        return True

    def send_end(self, stream_id: int, trailers: list[Header] | None = None) -> None:
        """The end of the response body, with its trailers (a HEADERS frame with END_STREAM, §8.1)."""
        stream = self._streams.get(stream_id)
        if stream is None or self.closing:
            return
        stream.end = True
        stream.trailers = trailers or []
        self._flush(stream)
        self._maybe_finished([])

    def reset(self, stream_id: int, reason: str = "", code: int = codes.INTERNAL_ERROR) -> None:
        """End a stream abnormally (RST_STREAM): the exchange failed after its head was sent."""
        stream = self._streams.pop(stream_id, None)
        self._waiting.pop(stream_id, None)
        self._paused.pop(stream_id, None)
        if stream is None or self.closing:
            return
        self._release(stream)
        self._core.reset_stream(stream_id, code)
        self._maybe_finished([])

    def acknowledge(self, stream_id: int, size: int) -> None:
        """The backend side took `size` bytes of this stream's request body: give the window back
        (rsp.http2.core sends WINDOW_UPDATE once half a window has been taken). Nothing is acknowledged on
        receipt, so a stream whose backend is slow holds at most its own window (SETTINGS_INITIAL_WINDOW_SIZE)."""
        stream = self._streams.get(stream_id)
        if stream is None or size <= 0 or self.closing:
            return
        size = min(size, stream.unacked)
        stream.unacked -= size
        self._core.acknowledge_received_data(size, stream_id)

    def pause_output(self) -> None:
        """The socket's send buffer is full: stop framing data (the bytes would only queue in memory)."""
        if self._output_paused_since is None:
            self._output_paused_since = self._clock()

    def resume_output(self) -> list[Event]:
        self._output_paused_since = None
        events: list[Event] = []
        self._flush_all(events)
        return events

    def _flush_all(self, events: list[Event]) -> None:
        if self._output_paused_since is not None:
            return
        # Round robin: a stream that was served goes to the back (dicts keep insertion order).
        for stream in list(self._waiting.values()):
            self._waiting.pop(stream.id, None)
            self._flush(stream)
        if self._buffered <= CONNECTION_HIGH_WATER:
            for stream in list(self._paused.values()):
                if stream.pending_bytes <= STREAM_LOW_WATER:
                    del self._paused[stream.id]
                    stream.paused = False
                    if stream.id in self._streams:
                        events.append(StreamWritable(stream.id))
        self._maybe_finished(events)

    def _flush(self, stream: Stream) -> None:
        """Frame what the windows allow of this stream's data, then its end."""
        core = self._core
        sid = stream.id
        if self._output_paused_since is None:
            while stream.pending:
                window = min(core.local_flow_control_window(sid), core.max_outbound_frame_size)
                if window <= 0:
                    break
                chunk = stream.take(window)
                self._buffered -= len(chunk)
                last = stream.end and not stream.pending and not stream.trailers
                core.send_data(sid, chunk, end_stream=last)
                stream.blocked_since = None
                if last:
                    self._finish(stream)
                    return
        if stream.pending or self._output_paused_since is not None:
            if stream.blocked_since is None:
                stream.blocked_since = self._clock()
            self._waiting[sid] = stream
            return
        if stream.end:
            if stream.trailers:
                core.send_headers(sid, trailer_fields(stream.trailers), end_stream=True)
            else:
                core.end_stream(sid)
            self._finish(stream)

    def _finish(self, stream: Stream) -> None:
        sid = stream.id
        _drop(self._streams, sid)
        _drop(self._waiting, sid)
        _drop(self._paused, sid)
        self._release(stream)
        if not stream.request_ended:
            # The response is complete before the request (a 413, a redirect): ask the client to stop
            # sending its body, without error (RFC 9113 §8.1).
            self._core.reset_stream(stream.id, codes.NO_ERROR)

    def _release(self, stream: Stream) -> None:
        """A stream is over: its unsent data and its unacknowledged request bytes are let go."""
        self._buffered -= stream.pending_bytes
        stream.clear()
        if stream.unacked:
            self._core.acknowledge_received_data(stream.unacked, stream.id)  # the connection window's part
            stream.unacked = 0
        if not self._streams:
            self._idle_since = self._clock()

    # ---- timers and shutdown -----------------------------------------------------------------------------

    def tick(self) -> list[Event]:
        """Check the timers against the clock (call it every second or so): idle, header block, send, drain."""
        events: list[Event] = []
        if self.closing:
            return events
        now = self._clock()
        s = self._settings
        started = self._gate.block_started
        if started is not None and now - started >= s.header_timeout:
            self._abort(codes.ENHANCE_YOUR_CALM, "header block not finished in time", events)
            return events
        if self._idle_since is not None and now - self._idle_since >= s.idle_timeout:
            self._queue_goaway(self._core.highest_inbound_stream_id, codes.NO_ERROR, b"idle")
            self._end("idle timeout", codes.NO_ERROR, events)
            return events
        if self._output_paused_since is not None and now - self._output_paused_since >= s.send_timeout:
            self._end("send timeout: the client does not read", codes.NO_ERROR, events)
            return events
        for stream in list(self._waiting.values()):
            if stream.blocked_since is not None and now - stream.blocked_since >= s.send_timeout:
                if self._core.outbound_flow_control_window <= 0:
                    # The whole connection's window is shut: nothing moves for any stream.
                    self._abort(codes.ENHANCE_YOUR_CALM, "send timeout: connection window closed", events)
                    return events
                self.reset(stream.id, code=codes.CANCEL)
                events.append(StreamCancelled(stream.id, codes.CANCEL, "send timeout: stream window closed"))
        if self._drain_started is not None and self._last_stream is None and \
                now - self._drain_started >= DRAIN_PING_TIMEOUT:
            self._final_goaway()
        self._maybe_finished(events)
        return events

    def drain(self) -> None:
        """Graceful shutdown (reload, stop): no new streams, those in flight finish, then ConnectionEnded."""
        if self.closing or self._drain_started is not None or self._last_stream is not None:
            return
        self._drain_started = self._clock()
        self._queue_goaway(codes.MAX_STREAM_ID, codes.NO_ERROR, b"draining")
        self._core.ping(DRAIN_PING)

    def _final_goaway(self) -> None:
        if self._last_stream is None:
            self._last_stream = self._core.highest_inbound_stream_id
            self._queue_goaway(self._last_stream, codes.NO_ERROR, b"draining")

    def _maybe_finished(self, events: list[Event]) -> None:
        if not self.closing and not self._streams and (self._peer_gone or self._last_stream is not None):
            self._end("finished after GOAWAY", codes.NO_ERROR, events)

    def _queue_goaway(self, last_stream: int, code: int, debug: bytes) -> None:
        """GOAWAY: the streams up to `last_stream` may finish (a graceful one, §6.8), later ones are refused."""
        self._core.send_goaway(last_stream, code, debug)

    def _abort(self, code: int, reason: str, events: list[Event]) -> None:
        self._queue_goaway(self._core.highest_inbound_stream_id, code, reason.encode()[:64])
        self._end(reason, code, events)

    def _end(self, reason: str, code: int, events: list[Event]) -> None:
        """The connection is over: every open stream is cancelled, ConnectionEnded is reported."""
        if self.closing:
            return
        self.closing = True
        self.close_reason = reason
        for stream in list(self._streams.values()):
            events.append(StreamCancelled(stream.id, code, reason))
        self._streams.clear()
        self._waiting.clear()
        self._paused.clear()
        self._buffered = 0
        events.append(ConnectionEnded(code, reason))

    # ---- state -------------------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """The bytes to write to the client now (the deferred streams' data framed first)."""
        if self._deferred:
            deferred = list(self._deferred.values())
            self._deferred.clear()
            streams = self._streams
            for stream in deferred:
                # (a stream that ended since, or was reset, is framed or gone already)
                if streams.get(stream.id) is stream and not self.closing and stream.pending:
                    self._flush(stream)
        return self._core.data_to_send()

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def buffered(self, stream_id: int) -> int:
        """Response bytes this stream holds (waiting for window or socket)."""
        stream = self._streams.get(stream_id)
        return stream.pending_bytes if stream is not None else 0

    def request_of(self, stream_id: int) -> Stream | None:
        return self._streams.get(stream_id)


def _drop(streams: dict[int, Stream], sid: int) -> None:
    """streams.pop(sid, None), without the generic method call mypyc makes of that (~300 instructions)."""
    if sid in streams:
        del streams[sid]  # noqa: RUF051 (pop is the call this avoids)


def _short_body(stream: Stream) -> bool:
    """The request ends with fewer body bytes than its Content-Length (RFC 9113 §8.1.1)."""
    return stream.expected > 0 and stream.received != stream.expected


def _without_stillborn(events: list[Event]) -> list[Event]:
    """The events less those of streams opened and cancelled within the same read: the exchange would start
    (a backend connection, maybe) only to be cancelled at once, which is what rapid reset (CVE-2023-44487)
    makes a server do. The reset still counted against the budget; nothing else needs to hear of it."""
    opened = {e.stream_id for e in events if isinstance(e, RequestOpened)}
    stillborn = {e.stream_id for e in events if isinstance(e, StreamCancelled) and e.stream_id in opened}
    if not stillborn:
        return events
    return [e for e in events if isinstance(e, ConnectionEnded) or getattr(e, "stream_id", 0) not in stillborn]

