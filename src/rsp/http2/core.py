"""rsp's HTTP/2 frame layer for the server side (RFC 9113), compiled with mypyc: frames in, FrameEvents out.

    core = FrameConnection(settings)       # our SETTINGS and the connection window's WINDOW_UPDATE queued
    events = core.receive_data(data)       # bytes the frame gate passed (preface included, GOAWAY taken out)
    core.send_headers(sid, fields, end_stream); core.send_data(sid, data, end_stream); core.end_stream(sid)
    core.acknowledge_received_data(n, sid); core.reset_stream(sid, code); core.ping(b"8 bytes!")
    core.data_to_send()

It keeps the method names of h2's H2Connection that rsp.http2.server used, so the server connection above it
kept its shape when it replaced h2 (bench/h2_codec_cost.py: h2's state machine, event objects and hpack were
~900 000 instructions per small request). h2 stays the client and the oracle in tests/http2.

Connection errors raise Http2ConnectionError with the GOAWAY code (§5.4.1; the server connection sends the
GOAWAY); stream errors queue RST_STREAM and report ResetIn(local=True) (§5.4.2). What the frame gate already
checks (frame size against SETTINGS_MAX_FRAME_SIZE, header block bounds, floods) is not checked again.
"""

from __future__ import annotations

from typing import Final

from rsp.config.model import Http2Settings
from rsp.errors import Http2ConnectionError
from rsp.http2 import codes, wire
from rsp.http2.frames_in import CoreStream, DataIn, FrameEvent, HeadersIn, PingAcked, ResetIn, WindowOpened
from rsp.http2.hpack_codec import HeaderDecoder, HeaderEncoder
from rsp.http2.hpack_tables import DEFAULT_TABLE_SIZE

# The client's SETTINGS_HEADER_TABLE_SIZE may ask for a larger table for rsp's encoder; rsp uses at most this
# much memory for it per connection (§6.5.2 lets the encoder use any size up to the peer's value).
MAX_ENCODER_TABLE_SIZE: Final = 4096
# A DATA payload at least this long is not copied into the output buffer: it is kept as it came (the
# stream's chunk or a view of it), beside its frame header, and the pieces are joined once per write. A
# growing buffer took every payload in a copy, and its reallocations copied it again as it grew
# (docs/performance.md, "DATA without copies"); below this size, another piece costs more than the copy.
DATA_PIECE_MIN: Final = 1024
# Streams rsp reset lately: frames the client sent before it saw the RST_STREAM are ignored, not errors
# (§5.1, "closed"). Older ones fall out (a bounded memory).
RECENT_RESETS: Final = 256


class FrameConnection:
    """The frame layer of one server-side HTTP/2 connection."""

    __slots__ = ("_block", "_block_end", "_block_stream", "_buf", "_conn_max", "_conn_recv", "_conn_to_ack",
                 "_local_acked", "_local_initial", "_out", "_peer_initial", "_pieces", "_preface_left", "_recent",
                 "_settings", "_settings_seen", "_streams", "decoder", "encoder", "highest_inbound_stream_id",
                 "max_outbound_frame_size", "outbound_flow_control_window")

    def __init__(self, settings: Http2Settings) -> None:
        self._settings = settings
        # Until the client acknowledges our SETTINGS, its encoder may use the protocol's 4096 (RFC 7541 §4.2).
        self.decoder = HeaderDecoder(max(settings.header_table_size, DEFAULT_TABLE_SIZE),
                                     settings.max_header_list_size)
        self.encoder = HeaderEncoder()
        self._out = bytearray()
        # What goes out before `_out`, when a large DATA payload was queued: frames' bytes and payloads as
        # they came (see send_data).
        self._pieces: list[bytes | memoryview] = []
        self._buf = b""
        self._preface_left = len(codes.PREFACE)
        self._settings_seen = False
        self._streams: dict[int, CoreStream] = {}
        self._recent: dict[int, None] = {}
        self.highest_inbound_stream_id = 0
        self._block: bytearray | None = None  # a header block waiting for its CONTINUATION frames
        self._block_stream = 0
        self._block_end = False
        # Windows (§6.9): what we send is limited by the client's, what it sends by ours.
        self.max_outbound_frame_size = wire.MIN_MAX_FRAME_SIZE
        self.outbound_flow_control_window = wire.DEFAULT_WINDOW
        self._peer_initial = wire.DEFAULT_WINDOW
        self._local_initial = wire.DEFAULT_WINDOW  # ours takes effect when the client acknowledges it
        self._local_acked = False
        self._conn_max = max(settings.connection_window, wire.DEFAULT_WINDOW)
        self._conn_recv = self._conn_max
        self._conn_to_ack = 0
        wire.put_settings(self._out, [
            (wire.MAX_CONCURRENT_STREAMS, settings.max_concurrent_streams),
            (wire.INITIAL_WINDOW_SIZE, settings.initial_window_size),
            (wire.MAX_FRAME_SIZE, settings.max_frame_size),
            (wire.HEADER_TABLE_SIZE, settings.header_table_size),
            (wire.MAX_HEADER_LIST_SIZE, settings.max_header_list_size),
            (wire.ENABLE_PUSH, 0),
        ])
        if self._conn_max > wire.DEFAULT_WINDOW:
            wire.put_window_update(self._out, 0, self._conn_max - wire.DEFAULT_WINDOW)

    # ---- frames in ---------------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[FrameEvent]:
        events: list[FrameEvent] = []
        if self._buf:
            data = self._buf + data
            self._buf = b""
        pos = 0
        end = len(data)
        if self._preface_left:
            # §3.4: the client's connection preface, then a SETTINGS frame.
            done = len(codes.PREFACE) - self._preface_left
            take = min(self._preface_left, end)
            if data[:take] != codes.PREFACE[done:done + take]:
                raise Http2ConnectionError("invalid connection preface (RFC 9113 §3.4)", codes.PROTOCOL_ERROR)
            self._preface_left -= take
            pos = take
        while end - pos >= codes.FRAME_HEADER_SIZE:
            length = (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2]
            start = pos + codes.FRAME_HEADER_SIZE
            if end - start < length:
                break
            kind = data[pos + 3]
            flags = data[pos + 4]
            # The 31-bit stream id, its reserved bit left out (§4.1); octet by octet, as the length is (a slice
            # and int.from_bytes cost ~10x more compiled).
            sid = ((data[pos + 5] & 0x7F) << 24) | (data[pos + 6] << 16) | (data[pos + 7] << 8) | data[pos + 8]
            pos = start + length
            self._frame(kind, flags, sid, data[start:pos], events)
        if pos < end:
            self._buf = data[pos:]
        return events

    def _frame(self, kind: int, flags: int, sid: int, payload: bytes, events: list[FrameEvent]) -> None:
        if self._block is not None and kind != codes.CONTINUATION:
            raise Http2ConnectionError("header block interrupted before END_HEADERS (RFC 9113 §6.10)",
                                       codes.PROTOCOL_ERROR)
        if not self._settings_seen:
            if kind != codes.SETTINGS or flags & codes.ACK:
                raise Http2ConnectionError("the preface's first frame is not SETTINGS (RFC 9113 §3.4)",
                                           codes.PROTOCOL_ERROR)
            self._settings_seen = True
        if kind == codes.HEADERS:
            self._on_headers(flags, sid, payload, events)
        elif kind == codes.DATA:
            self._on_data(flags, sid, payload, events)
        elif kind == codes.CONTINUATION:
            self._on_continuation(flags, sid, payload, events)
        elif kind == codes.WINDOW_UPDATE:
            self._on_window_update(sid, payload, events)
        elif kind == codes.SETTINGS:
            self._on_settings(flags, sid, payload, events)
        elif kind == codes.RST_STREAM:
            self._on_rst_stream(sid, payload, events)
        elif kind == codes.PING:
            if len(payload) != wire.PING_SIZE:
                raise Http2ConnectionError("PING frame not 8 octets (RFC 9113 §6.7)", codes.FRAME_SIZE_ERROR)
            _need_connection(sid, "PING")
            if flags & codes.ACK:
                events.append(PingAcked(payload))
            else:
                wire.put_ping(self._out, payload, True)
        elif kind == codes.PRIORITY:
            # §5.3.2: priority signals are deprecated; rsp ignores them, after the checks §6.3 asks for.
            _need_stream(sid, "PRIORITY")
            if len(payload) != wire.PRIORITY_SIZE:
                self._stream_error(sid, codes.FRAME_SIZE_ERROR, events)
        elif kind == codes.PUSH_PROMISE:
            raise Http2ConnectionError("PUSH_PROMISE from a client (RFC 9113 §8.4)", codes.PROTOCOL_ERROR)
        # GOAWAY never reaches here (the frame gate takes it out); unknown types are ignored (§5.5).

    def _on_headers(self, flags: int, sid: int, payload: bytes, events: list[FrameEvent]) -> None:
        _need_stream(sid, "HEADERS")
        start = 0
        end = len(payload)
        if flags & codes.PADDED:
            if not payload:
                raise Http2ConnectionError("PADDED HEADERS frame without its pad length (RFC 9113 §6.2)",
                                           codes.FRAME_SIZE_ERROR)
            start = 1
            end -= payload[0]
        if flags & wire.PRIORITY_FLAG:
            start += wire.PRIORITY_SIZE  # ignored, as PRIORITY frames are (§5.3.2)
        if end < start:
            raise Http2ConnectionError("HEADERS padding or priority longer than the frame (RFC 9113 §6.2)",
                                       codes.PROTOCOL_ERROR)
        fragment = payload[start:end]
        end_stream = bool(flags & codes.END_STREAM)
        if flags & codes.END_HEADERS:
            self._on_block(sid, fragment, end_stream, events)
        else:
            self._block = bytearray(fragment)
            self._block_stream = sid
            self._block_end = end_stream

    def _on_continuation(self, flags: int, sid: int, payload: bytes, events: list[FrameEvent]) -> None:
        block = self._block
        if block is None or sid != self._block_stream:
            raise Http2ConnectionError("CONTINUATION without a header block to continue (RFC 9113 §6.10)",
                                       codes.PROTOCOL_ERROR)
        block += payload
        if flags & codes.END_HEADERS:
            self._block = None
            self._on_block(sid, bytes(block), self._block_end, events)

    def _on_block(self, sid: int, block: bytes, end_stream: bool, events: list[FrameEvent]) -> None:
        # Every block is decoded, whatever becomes of its stream: the HPACK state is the connection's (§4.3).
        fields = self.decoder.decode(block)
        stream = self._streams.get(sid)
        if stream is None:
            if sid <= self.highest_inbound_stream_id:
                if sid in self._recent:
                    return  # sent before the client saw our RST_STREAM (§5.1, "closed")
                raise Http2ConnectionError(f"HEADERS on closed stream {sid} (RFC 9113 §5.1)", codes.STREAM_CLOSED)
            if not sid & 1:
                raise Http2ConnectionError(f"client stream {sid} with an even id (RFC 9113 §5.1.1)",
                                           codes.PROTOCOL_ERROR)
            self.highest_inbound_stream_id = sid
            stream = CoreStream(sid, self._local_initial, self._peer_initial)
            stream.recv_ended = end_stream
            self._streams[sid] = stream
            events.append(HeadersIn(sid, fields, end_stream, False))
            return
        if stream.recv_ended:
            self._stream_error(sid, codes.STREAM_CLOSED, events)  # half-closed (remote), §5.1
        elif not end_stream:
            self._stream_error(sid, codes.PROTOCOL_ERROR, events)  # trailers end the stream, §8.1
        else:
            stream.recv_ended = True
            self._maybe_forget(stream)
            events.append(HeadersIn(sid, fields, True, True))

    def _on_data(self, flags: int, sid: int, payload: bytes, events: list[FrameEvent]) -> None:
        _need_stream(sid, "DATA")
        flow = len(payload)
        data = payload
        if flags & codes.PADDED:
            if not payload or payload[0] >= flow:
                raise Http2ConnectionError("DATA padding as long as the frame (RFC 9113 §6.1)",
                                           codes.PROTOCOL_ERROR)
            data = payload[1:flow - payload[0]]
        if flow > self._conn_recv:
            raise Http2ConnectionError("DATA beyond the connection's flow-control window (RFC 9113 §6.9.1)",
                                       codes.FLOW_CONTROL_ERROR)
        self._conn_recv -= flow
        stream = self._streams.get(sid)
        if stream is None or stream.recv_ended:
            if stream is None and sid > self.highest_inbound_stream_id:
                raise Http2ConnectionError(f"DATA on idle stream {sid} (RFC 9113 §5.1)", codes.PROTOCOL_ERROR)
            if stream is not None or sid not in self._recent:
                self._stream_error(sid, codes.STREAM_CLOSED, events)
            events.append(DataIn(sid, b"", flow, False))  # the connection window's share comes back
            return
        if flow > stream.recv_window:
            raise Http2ConnectionError(f"DATA beyond stream {sid}'s flow-control window (RFC 9113 §6.9.1)",
                                       codes.FLOW_CONTROL_ERROR)
        stream.recv_window -= flow
        end_stream = bool(flags & codes.END_STREAM)
        if end_stream:
            stream.recv_ended = True
            self._maybe_forget(stream)
        events.append(DataIn(sid, data, flow, end_stream))

    def _on_window_update(self, sid: int, payload: bytes, events: list[FrameEvent]) -> None:
        if len(payload) != wire.WINDOW_UPDATE_SIZE:
            raise Http2ConnectionError("WINDOW_UPDATE not 4 octets (RFC 9113 §6.9)", codes.FRAME_SIZE_ERROR)
        increment = int.from_bytes(payload, "big") & codes.MAX_STREAM_ID
        if not sid:
            if not increment:
                raise Http2ConnectionError("WINDOW_UPDATE of 0 (RFC 9113 §6.9)", codes.PROTOCOL_ERROR)
            self.outbound_flow_control_window += increment
            if self.outbound_flow_control_window > wire.MAX_WINDOW:
                raise Http2ConnectionError("connection window over 2^31-1 (RFC 9113 §6.9.1)",
                                           codes.FLOW_CONTROL_ERROR)
            events.append(WindowOpened())
            return
        stream = self._streams.get(sid)
        if stream is None:
            if sid > self.highest_inbound_stream_id:
                raise Http2ConnectionError(f"WINDOW_UPDATE on idle stream {sid} (RFC 9113 §5.1)",
                                           codes.PROTOCOL_ERROR)
            return  # a closed stream: the update may have crossed our END_STREAM (§6.9)
        if not increment:
            self._stream_error(sid, codes.PROTOCOL_ERROR, events)
            return
        stream.send_window += increment
        if stream.send_window > wire.MAX_WINDOW:
            self._stream_error(sid, codes.FLOW_CONTROL_ERROR, events)
            return
        events.append(WindowOpened())

    def _on_settings(self, flags: int, sid: int, payload: bytes, events: list[FrameEvent]) -> None:
        _need_connection(sid, "SETTINGS")
        if flags & codes.ACK:
            if payload:
                raise Http2ConnectionError("SETTINGS ACK with a payload (RFC 9113 §6.5)", codes.FRAME_SIZE_ERROR)
            self._local_settings_acked()
            return
        if len(payload) % wire.SETTING_SIZE:
            raise Http2ConnectionError("SETTINGS not a multiple of 6 octets (RFC 9113 §6.5)",
                                       codes.FRAME_SIZE_ERROR)
        for pos in range(0, len(payload), wire.SETTING_SIZE):
            ident = (payload[pos] << 8) | payload[pos + 1]
            value = int.from_bytes(payload[pos + 2:pos + 6], "big")
            self._peer_setting(ident, value)
        wire.put_settings_ack(self._out)
        events.append(WindowOpened())

    def _peer_setting(self, ident: int, value: int) -> None:
        """One of the client's settings (§6.5.2); unknown identifiers are ignored."""
        if ident == wire.HEADER_TABLE_SIZE:
            self.encoder.set_max_table_size(min(value, MAX_ENCODER_TABLE_SIZE))
        elif ident == wire.ENABLE_PUSH:
            if value > 1:
                raise Http2ConnectionError("SETTINGS_ENABLE_PUSH not 0 or 1 (RFC 9113 §6.5.2)",
                                           codes.PROTOCOL_ERROR)
        elif ident == wire.INITIAL_WINDOW_SIZE:
            if value > wire.MAX_WINDOW:
                raise Http2ConnectionError("SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1 (RFC 9113 §6.5.2)",
                                           codes.FLOW_CONTROL_ERROR)
            # §6.9.2: the change applies to every open stream's window, which may go negative.
            delta = value - self._peer_initial
            self._peer_initial = value
            for stream in self._streams.values():
                stream.send_window += delta
                if stream.send_window > wire.MAX_WINDOW:
                    raise Http2ConnectionError("a stream window over 2^31-1 (RFC 9113 §6.9.2)",
                                               codes.FLOW_CONTROL_ERROR)
        elif ident == wire.MAX_FRAME_SIZE:
            if not wire.MIN_MAX_FRAME_SIZE <= value <= wire.MAX_MAX_FRAME_SIZE:
                raise Http2ConnectionError("SETTINGS_MAX_FRAME_SIZE out of range (RFC 9113 §6.5.2)",
                                           codes.PROTOCOL_ERROR)
            self.max_outbound_frame_size = value

    def _local_settings_acked(self) -> None:
        """The client took our SETTINGS: our stream window and HPACK table size now hold (§6.5.3)."""
        if self._local_acked:
            return
        self._local_acked = True
        s = self._settings
        delta = s.initial_window_size - self._local_initial
        self._local_initial = s.initial_window_size
        for stream in self._streams.values():
            stream.recv_window += delta
        self.decoder.max_table_size = s.header_table_size

    def _on_rst_stream(self, sid: int, payload: bytes, events: list[FrameEvent]) -> None:
        _need_stream(sid, "RST_STREAM")
        if len(payload) != wire.RST_STREAM_SIZE:
            raise Http2ConnectionError("RST_STREAM not 4 octets (RFC 9113 §6.4)", codes.FRAME_SIZE_ERROR)
        if sid > self.highest_inbound_stream_id:
            raise Http2ConnectionError(f"RST_STREAM on idle stream {sid} (RFC 9113 §6.4)", codes.PROTOCOL_ERROR)
        stream = self._streams.pop(sid, None)
        if stream is not None:
            self._remember_reset(sid)
            events.append(ResetIn(sid, int.from_bytes(payload, "big"), False))

    def _stream_error(self, sid: int, code: int, events: list[FrameEvent]) -> None:
        """§5.4.2: RST_STREAM with `code`; the stream is over for both ends."""
        wire.put_rst_stream(self._out, sid, code)
        self._remember_reset(sid)
        if self._streams.pop(sid, None) is not None:
            events.append(ResetIn(sid, code, True))

    def _remember_reset(self, sid: int) -> None:
        recent = self._recent
        recent[sid] = None
        if len(recent) > RECENT_RESETS:
            del recent[next(iter(recent))]

    def _maybe_forget(self, stream: CoreStream) -> None:
        if stream.recv_ended and stream.send_ended:
            streams = self._streams
            if stream.id in streams:  # (not pop(id, None): a generic method call compiled, ~300 instructions)
                del streams[stream.id]

    # ---- flow control of what the client sends -----------------------------------------------------------

    def acknowledge_received_data(self, size: int, stream_id: int) -> None:
        """`size` octets of DATA were taken: reopen the windows by WINDOW_UPDATE, once half of a window has
        been taken (one update per half window, not one per frame)."""
        if size <= 0:
            return
        self._conn_to_ack += size
        if self._conn_to_ack >= self._conn_max // 2 or self._conn_recv <= 0:
            wire.put_window_update(self._out, 0, self._conn_to_ack)
            self._conn_recv += self._conn_to_ack
            self._conn_to_ack = 0
        stream = self._streams.get(stream_id)
        if stream is None or stream.recv_ended:
            return  # no more DATA comes on it: nothing to reopen
        stream.to_ack += size
        if stream.to_ack >= self._local_initial // 2 or stream.recv_window <= 0:
            wire.put_window_update(self._out, stream_id, stream.to_ack)
            stream.recv_window += stream.to_ack
            stream.to_ack = 0

    # ---- frames out --------------------------------------------------------------------------------------

    def send_headers(self, stream_id: int, fields: list[tuple[bytes, bytes]], end_stream: bool = False) -> None:
        wire.put_header_block(self._out, stream_id, self.encoder.encode(fields), end_stream,
                              self.max_outbound_frame_size)
        if end_stream:
            self._sent_end(stream_id)

    def send_data(self, stream_id: int, data: bytes | memoryview, end_stream: bool = False) -> None:
        """One DATA frame; the caller keeps within local_flow_control_window and max_outbound_frame_size.
        `data` must not change until data_to_send() has returned (a large payload is kept, not copied)."""
        size = len(data)
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream.send_window -= size
        self.outbound_flow_control_window -= size
        if size < DATA_PIECE_MIN:
            wire.put_data(self._out, stream_id, data, end_stream)
        else:
            pieces = self._pieces
            out = self._out
            if out:  # the frames queued before it go first
                pieces.append(bytes(out))
                out.clear()
            pieces.append(wire.data_header(stream_id, size, end_stream))
            pieces.append(data)
        if end_stream:
            self._sent_end(stream_id)

    def end_stream(self, stream_id: int) -> None:
        wire.put_data(self._out, stream_id, b"", True)
        self._sent_end(stream_id)

    def _sent_end(self, stream_id: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream.send_ended = True
            self._maybe_forget(stream)

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        wire.put_rst_stream(self._out, stream_id, error_code)
        self._streams.pop(stream_id, None)
        self._remember_reset(stream_id)

    def local_flow_control_window(self, stream_id: int) -> int:
        """What may be sent on this stream now: the smaller of its window and the connection's."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return 0
        return min(stream.send_window, self.outbound_flow_control_window)

    def ping(self, payload: bytes) -> None:
        wire.put_ping(self._out, payload, False)

    def send_goaway(self, last_stream_id: int, error_code: int, debug: bytes) -> None:
        wire.put_goaway(self._out, last_stream_id, error_code, debug)

    def data_to_send(self) -> bytes:
        """Every frame queued since the last call, in order, as one buffer: the only copy of a large
        payload this layer makes."""
        pieces = self._pieces
        if not pieces:
            out = bytes(self._out)
            self._out.clear()
            return out
        if self._out:
            pieces.append(bytes(self._out))
            self._out.clear()
        self._pieces = []
        return b"".join(pieces)


def _need_stream(sid: int, kind: str) -> None:
    if not sid:
        raise Http2ConnectionError(f"{kind} frame on stream 0 (RFC 9113 §6)", codes.PROTOCOL_ERROR)


def _need_connection(sid: int, kind: str) -> None:
    if sid:
        raise Http2ConnectionError(f"{kind} frame on a stream (RFC 9113 §6)", codes.PROTOCOL_ERROR)
