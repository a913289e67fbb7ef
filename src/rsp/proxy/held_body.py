"""The request body a filter run holds during the request phases (ngx.req.read_body and the like).

A FilterRun (rsp.proxy.filter_run) owns one HeldBody: it holds the client's body bytes while the request
phases run (a filter may wait for it, read it, replace it or drop it), credits them to the client as they are
held, and puts what it holds after the forwarded head once the backend is chosen. Its own module so that the
run stays one job; compiled with it (a compiled class is held, not subclassed, by another compiled class).
"""

from __future__ import annotations

from collections.abc import Callable

from rsp.http1 import forward
from rsp.pipeline.messages import NO_BODY, Request
from rsp.pipeline.request_body import RequestBody
from rsp.proxy.session_api import ExchangeSide


class HeldBody:
    """One exchange's request body as the filter run holds it (rsp.pipeline.request_body underneath)."""

    __slots__ = ("acked", "body", "exchange")

    def __init__(self, exchange: ExchangeSide) -> None:
        self.exchange = exchange
        # Made when the first body byte arrives or a filter asks for it.
        self.body: RequestBody | None = None
        self.acked = 0  # the held bytes already acknowledged to the client

    def held(self) -> RequestBody:
        body = self.body
        if body is None:
            body = self.body = RequestBody(complete=self.exchange.request_done)
        return body

    def read(self, done: Callable[[], None]) -> bool:
        """True when the body is complete (or over the buffer, or discarded) now; else `done` is called once
        it is. The body is held until the request phases are done, so this waits only for the client."""
        return self.held().wait(done)

    def data(self) -> bytes | None:
        """The whole request body when it is held whole, else None (rsp.pipeline.request_body)."""
        body = self.body
        return body.data() if body is not None else None

    def replace(self, data: bytes, request: Request) -> int:
        """Replace the body; `request`'s head then says Content-Length: len(data) (serialise_request recomputes
        the framing from body_length). Returns the new body_length."""
        self.held().replace(data)
        return _set_length(request, len(data))

    def discard(self, request: Request) -> int:
        """Drop the body (what arrives later too): the backend gets `request` without one. Returns NO_BODY."""
        self.held().discard()
        return _set_length(request, NO_BODY)

    def take_data(self, data: bytes, holding: bool) -> bool:
        """Request body bytes from the client (`holding`: the request phases still run): True when this holds
        them or drops them (a discarded body), False when the exchange forwards them as usual."""
        exchange = self.exchange
        if holding:
            if self.held().add(data):
                exchange.client.pause_reading()  # over the buffer: the client waits (backpressure)
            else:
                # Held bytes are credited to the client now (HTTP/2 flow control): a filter waiting for the
                # whole body must not wait on credit only the backend connection would give.
                self.acked += len(data)
                exchange.client.body_written(len(data))
            return True
        body = self.body
        if body is not None and body.discarded:
            if exchange.buffer is None:
                exchange.client.body_written(len(data))
            return True
        return False

    def take_end(self, trailers: tuple[tuple[bytes, bytes], ...], holding: bool) -> bool:
        """The end of the client's body: True when this keeps it (held body, or discarded)."""
        if holding:
            self.held().end(trailers)
            return True
        body = self.body
        return body is not None and body.discarded

    def flush(self, buffer: list[bytes]) -> None:
        """The held body after the head, framed as the head says: chunked as it came, or as it is (a count)."""
        body = self.body
        if body is None or body.discarded:
            return
        chunked = self.exchange.head.body.kind == "chunked" and not body.replaced
        for part in body.take():
            buffer.append(forward.encode_chunk(part) if chunked else part)
        if chunked and body.complete:
            buffer.append(forward.last_chunk(body.trailers))


def _set_length(request: Request, length: int) -> int:
    had_body = request.body_length != NO_BODY
    request.body_length = length
    if length or had_body:
        request.set(b"content-length", b"%d" % length)
    return length
