"""What an HTTP/2 server connection reports to its user, per stream, in protocol-neutral terms.

A stream's events are always `RequestOpened, RequestData*, RequestEnded`, unless a `StreamCancelled` ends it
early (the client reset it, or a limit did); after `ConnectionEnded` nothing more comes.
"""

from __future__ import annotations

from dataclasses import dataclass

from rsp.pipeline.messages import Header, Request


@dataclass(slots=True)
class RequestOpened:
    """A new stream's request head (HEADERS with END_STREAM is followed by RequestEnded at once)."""

    stream_id: int
    request: Request


@dataclass(slots=True)
class RequestData:
    """A chunk of request body. Its bytes stay counted against the client's window until `acknowledge`."""

    stream_id: int
    data: bytes


@dataclass(slots=True)
class RequestEnded:
    """The request body is complete; `trailers` are its trailer fields (RFC 9113 §8.1), often none."""

    stream_id: int
    trailers: list[Header]


@dataclass(slots=True)
class StreamCancelled:
    """The stream ended before its response did: the client reset it (RST_STREAM `error_code`), or rsp did
    (a send timeout). The exchange stops; nothing more may be sent on the stream."""

    stream_id: int
    error_code: int
    reason: str


@dataclass(slots=True)
class StreamWritable:
    """A stream whose send_data returned False can take more data again (its buffer drained)."""

    stream_id: int


@dataclass(slots=True)
class ConnectionEnded:
    """The connection is over: send what data_to_send() returns, then close. `reason` for the log."""

    error_code: int
    reason: str


Event = RequestOpened | RequestData | RequestEnded | StreamCancelled | StreamWritable | ConnectionEnded
