"""What rsp's HTTP/2 frame layer (rsp.http2.core) reports to the server connection, and its per-stream state.

These are the frame layer's terms (a header block, a DATA payload, a reset); rsp.http2.server turns them into
the protocol-neutral rsp.http2.events the proxy sees.
"""

from __future__ import annotations


class HeadersIn:
    """A complete header block on a stream: the request head (`trailers` False, a new stream) or the
    request's trailers (`trailers` True, always with END_STREAM, RFC 9113 §8.1)."""

    __slots__ = ("end_stream", "fields", "stream_id", "trailers")

    def __init__(self, stream_id: int, fields: list[tuple[bytes, bytes]], end_stream: bool,
                 trailers: bool) -> None:
        self.stream_id = stream_id
        self.fields = fields
        self.end_stream = end_stream
        self.trailers = trailers


class DataIn:
    """A DATA frame: `data` without its padding; `flow_length` what it counted against the windows (padding
    included, §6.9.1), to be given back with acknowledge_received_data. A DATA frame on a stream already
    closed comes as DataIn with no data, so its flow-controlled bytes are given back to the connection."""

    __slots__ = ("data", "end_stream", "flow_length", "stream_id")

    def __init__(self, stream_id: int, data: bytes, flow_length: int, end_stream: bool) -> None:
        self.stream_id = stream_id
        self.data = data
        self.flow_length = flow_length
        self.end_stream = end_stream


class ResetIn:
    """A stream ended abnormally: the client's RST_STREAM, or a stream error rsp answered with RST_STREAM
    (`local`)."""

    __slots__ = ("error_code", "local", "stream_id")

    def __init__(self, stream_id: int, error_code: int, local: bool) -> None:
        self.stream_id = stream_id
        self.error_code = error_code
        self.local = local


class WindowOpened:
    """A WINDOW_UPDATE or the client's SETTINGS changed what may be sent: try the waiting streams again."""

    __slots__ = ()


class PingAcked:
    """The ACK of a PING rsp sent (`payload` says which)."""

    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


FrameEvent = HeadersIn | DataIn | ResetIn | WindowOpened | PingAcked


class CoreStream:
    """One stream's protocol state (RFC 9113 §5.1) and windows (§6.9).

    recv_window: DATA octets the client may still send (our window for it); to_ack: octets taken by the
    server and not yet returned by WINDOW_UPDATE; send_window: DATA octets rsp may still send.
    A stream is forgotten once both ends are closed (END_STREAM each way) or it is reset.
    """

    __slots__ = ("id", "recv_ended", "recv_window", "send_ended", "send_window", "to_ack")

    def __init__(self, stream_id: int, recv_window: int, send_window: int) -> None:
        self.id = stream_id
        self.recv_window = recv_window
        self.send_window = send_window
        self.to_ack = 0
        self.recv_ended = False
        self.send_ended = False
