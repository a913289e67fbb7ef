"""What an HTTP/2 server connection reports to its user, per stream, in protocol-neutral terms.

A stream's events are always `RequestOpened, RequestData*, RequestEnded`, unless a `StreamCancelled` ends it
early (the client reset it, or a limit did); after `ConnectionEnded` nothing more comes.

Plain classes with `__slots__` and their own `__init__`, compiled (native_modules.txt): a small request makes
two of them and the session tests each one's type. A dataclass compiled by mypyc keeps the `__init__` the
dataclasses module generates at import, ~6x the cost of a native one (docs/performance.md, "HTTP/2 per
request: events, header block memo"). Equality and repr (tests compare events) come from `_Event`.
"""

from __future__ import annotations

from rsp.pipeline.messages import Header, Request


class _Event:
    """Equality by type and `values()`, and a dataclass-like repr."""

    __slots__ = ()

    def values(self) -> tuple[object, ...]:
        return ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Event) or type(other) is not type(self):
            return NotImplemented
        return self.values() == other.values()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self.values()!r}"


class RequestOpened(_Event):
    """A new stream's request head (HEADERS with END_STREAM is followed by RequestEnded at once)."""

    __slots__ = ("request", "stream_id")

    def __init__(self, stream_id: int, request: Request) -> None:
        self.stream_id = stream_id
        self.request = request

    def values(self) -> tuple[object, ...]:
        return (self.stream_id, self.request)


class RequestData(_Event):
    """A chunk of request body. Its bytes stay counted against the client's window until `acknowledge`."""

    __slots__ = ("data", "stream_id")

    def __init__(self, stream_id: int, data: bytes) -> None:
        self.stream_id = stream_id
        self.data = data

    def values(self) -> tuple[object, ...]:
        return (self.stream_id, self.data)


class RequestEnded(_Event):
    """The request body is complete; `trailers` are its trailer fields (RFC 9113 §8.1), often none."""

    __slots__ = ("stream_id", "trailers")

    def __init__(self, stream_id: int, trailers: list[Header]) -> None:
        self.stream_id = stream_id
        self.trailers = trailers

    def values(self) -> tuple[object, ...]:
        return (self.stream_id, self.trailers)


class StreamCancelled(_Event):
    """The stream ended before its response did: the client reset it (RST_STREAM `error_code`), or rsp did
    (a send timeout). The exchange stops; nothing more may be sent on the stream."""

    __slots__ = ("error_code", "reason", "stream_id")

    def __init__(self, stream_id: int, error_code: int, reason: str) -> None:
        self.stream_id = stream_id
        self.error_code = error_code
        self.reason = reason

    def values(self) -> tuple[object, ...]:
        return (self.stream_id, self.error_code, self.reason)


class StreamWritable(_Event):
    """A stream whose send_data returned False can take more data again (its buffer drained)."""

    __slots__ = ("stream_id",)

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id

    def values(self) -> tuple[object, ...]:
        return (self.stream_id,)


class ConnectionEnded(_Event):
    """The connection is over: send what data_to_send() returns, then close. `reason` for the log."""

    __slots__ = ("error_code", "reason")

    def __init__(self, error_code: int, reason: str) -> None:
        self.error_code = error_code
        self.reason = reason

    def values(self) -> tuple[object, ...]:
        return (self.error_code, self.reason)


Event = RequestOpened | RequestData | RequestEnded | StreamCancelled | StreamWritable | ConnectionEnded
