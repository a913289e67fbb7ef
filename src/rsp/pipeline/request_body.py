"""The request body as the request phases hold it: what OpenResty's ngx.req.read_body / get_body_data /
set_body_data / discard_body work on (sans-IO: the session feeds it, filters read and replace it).

While an exchange is in its request phases (before its head is serialised for the backend), the body bytes
that arrive are held here as they came off the wire, decoded (no chunk framing), instead of going to the
backend connection; after the phases the session sends the held bytes (re-framed when a filter replaced
them) and then forwards the rest as it comes.

A filter that wants the whole body waits (`wait`) until it is complete or until the held bytes pass `limit`
(REQUEST_BODY_BUFFER_SIZE, as nginx's client_body_buffer_size). Past the limit the holder is told to pause
the client (backpressure: rsp reads no more than that into memory for a filter) and `data()` is None, as
OpenResty's get_body_data is nil when nginx wrote the body to a temporary file. rsp writes no temporary
files: a body over the limit is not buffered whole anywhere, it streams to the backend once the phases are
done (held part first). That keeps the memory per request bounded and puts no disk I/O on the event loop;
a filter that needs large bodies whole is out of scope (docs/lua.md, "The request body").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from rsp.errors import PipelineError

# The most request-body bytes held for the filters of one exchange (nginx's client_body_buffer_size, which
# defaults to 16k; OpenResty setups commonly raise it to 1m, the figure rsp takes).
REQUEST_BODY_BUFFER_SIZE: Final = 1024 * 1024


class RequestBody:
    """The held body of one exchange. `complete`: its end arrived (or there is no body); `overflow`: more than
    `limit` bytes arrived; `discarded`: a filter dropped it (what arrives later is dropped too); `replaced`: a
    filter set new content (its framing is a Content-Length now)."""

    __slots__ = ("complete", "discarded", "limit", "overflow", "parts", "replaced", "size", "trailers", "waiters")

    def __init__(self, complete: bool = False, limit: int = REQUEST_BODY_BUFFER_SIZE) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.limit = limit
        self.complete = complete
        self.overflow = False
        self.discarded = False
        self.replaced = False
        self.trailers: tuple[tuple[bytes, bytes], ...] = ()
        self.waiters: list[Callable[[], None]] = []

    def add(self, data: bytes) -> bool:
        """Hold `data`; True when the holder must pause the client (the held bytes passed the limit)."""
        if self.discarded:
            return False
        self.parts.append(data)
        self.size += len(data)
        if self.size > self.limit and not self.overflow:
            self.overflow = True
            self._wake()
        return self.overflow

    def end(self, trailers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        """The body's end arrived (with its trailer fields, if chunked)."""
        self.complete = True
        self.trailers = trailers
        self._wake()

    def ready(self) -> bool:
        """Nothing more to wait for: complete, over the limit, or discarded."""
        return self.complete or self.overflow or self.discarded

    def wait(self, done: Callable[[], None]) -> bool:
        """True when the body is ready now; else `done` is called once it is (from add, end or discard)."""
        if self.ready():
            return True
        self.waiters.append(done)
        return False

    def data(self) -> bytes | None:
        """The whole body, or None: not complete yet, over the limit, discarded, or empty (OpenResty's
        get_body_data is nil for a request without a body)."""
        if not self.complete or self.overflow or self.discarded or not self.size:
            return None
        if len(self.parts) > 1:
            self.parts = [b"".join(self.parts)]
        return self.parts[0]

    def replace(self, data: bytes) -> None:
        """New content for the body (ngx.req.set_body_data). Only a body held whole can be replaced: one over
        the limit is partly still with the client, and its rest would follow the new content."""
        if self.overflow:
            raise PipelineError(f"the request body is over the {self.limit}-byte buffer: it cannot be replaced")
        if not self.complete and not self.discarded:
            raise PipelineError("the request body is not read yet (call ngx.req.read_body first)")
        self.parts = [data] if data else []
        self.size = len(data)
        self.replaced = True
        self.trailers = ()

    def discard(self) -> None:
        """Drop the body (ngx.req.discard_body): what is held and what arrives later."""
        self.discarded = True
        self.parts = []
        self.size = 0
        self._wake()

    def take(self) -> list[bytes]:
        """The held bytes, handed over to be sent (the body holds nothing after)."""
        parts = self.parts
        self.parts = []
        self.size = 0
        return parts

    def _wake(self) -> None:
        waiters = self.waiters
        self.waiters = []
        for done in waiters:
            done()
