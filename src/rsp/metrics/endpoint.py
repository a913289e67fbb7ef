"""The stats endpoint: a small HTTP/1.1 server for `/metrics`, the stats page (`/`) and `/stats.json`.

Requests are read with rsp's own strict parser (rsp.http1.parser.RequestParser: a malformed request gets
its 400/414/431/505), one request per connection, answered with `Connection: close` (RFC 9112 §9.6) so no
keep-alive state is kept. GET and HEAD only (405 with `Allow` otherwise, RFC 9110 §15.5.6); a HEAD gets the
headers GET would, without the body (RFC 9110 §9.3.2); 404 for any other path. A request body is refused
(413): none of these resources takes one. Every answer has `Cache-Control: no-store`: the numbers are live.

`gather()` returns one snapshot per worker (rsp.metrics.snapshot's dict), `machine()` the machine facts
(`workers`, `reloads`, `worker_restarts`, `last_reload`, `started`); the master passes functions that ask
its workers (with one worker or many). This server runs on the event loop of the process that owns
it, off the proxy's hot path.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from rsp.errors import ProtocolError
from rsp.http1.events import RequestHead
from rsp.http1.parser import RequestParser
from rsp.http1.reasons import reason
from rsp.logs import get_logger
from rsp.metrics.merge import merge
from rsp.metrics.prometheus import CONTENT_TYPE, render
from rsp.metrics.stats_page import page

# A scraper or browser sends its request at once; a connection that has not within this is dropped.
READ_TIMEOUT: Final = 5.0
# How long a reply may take to be written before the connection is dropped (a stalled reader).
WRITE_TIMEOUT: Final = 10.0
READ_SIZE: Final = 16 * 1024
# The page refuses framing through CSP too: only its own inline code and requests to itself.
PAGE_HEADERS: Final = (
    ("Content-Security-Policy",
     "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; "
     "frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)

Gather = Callable[[], Awaitable[list[dict[str, Any]]]]
Machine = Callable[[], dict[str, Any]]


class StatsEndpoint:
    """Serves `/metrics`, `/` and `/stats.json` on `host:port` (port 0: any free port, see `.port`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int, gather: Gather, machine: Machine,
                 refresh: float = 2.0) -> None:
        self.loop = loop
        self.host = host
        self.requested_port = port
        self.gather = gather
        self.machine = machine
        self.page = page(refresh)
        self.refresh = refresh
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind and listen; raises OSError when the address cannot be bound."""
        self._server = await asyncio.start_server(self._client, self.host, self.requested_port,
                                                  reuse_address=True)

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._handlers):
            task.cancel()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            try:
                head = await asyncio.wait_for(read_head(reader), READ_TIMEOUT)
            except ProtocolError as exc:
                reply = plain(exc.status, f"{exc}\n")
            except TimeoutError:
                reply = plain(408, "request not received in time\n")
            else:
                if head is None:
                    return
                reply = await self.answer(head)
            writer.write(reply)
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
        except (OSError, TimeoutError):
            pass  # the peer went away or stalled: nothing to answer
        finally:
            writer.close()
            if task is not None:
                self._handlers.discard(task)

    async def answer(self, head: RequestHead) -> bytes:
        """The whole reply (head and body) to `head`."""
        method = head.method
        path = head.target.split(b"?", 1)[0]
        if path not in (b"/", b"/metrics", b"/stats.json"):
            return plain(404, "not found: try /, /metrics or /stats.json\n", method)
        if method not in (b"GET", b"HEAD"):
            return plain(405, "only GET and HEAD\n", method, (("Allow", "GET, HEAD"),))
        if head.body.kind != "none":
            return plain(413, "no request body is accepted here\n", method)
        if path == b"/":
            return response(200, "text/html; charset=utf-8", self.page, method, PAGE_HEADERS)
        try:
            stats = merge(await self.gather())
            machine = self.machine()
        except Exception:  # a worker that cannot answer must not take the endpoint down
            get_logger().exception("stats endpoint: gathering the workers' counters failed")
            return plain(500, "gathering the counters failed; see rsp's log\n", method)
        if path == b"/metrics":
            return response(200, CONTENT_TYPE, render(stats, machine).encode(), method)
        document = {"time": time.time(), "refresh": self.refresh, "machine": machine, "stats": stats}
        return response(200, "application/json", json.dumps(document).encode(), method)


async def read_head(reader: asyncio.StreamReader) -> RequestHead | None:
    """The first request head on the connection; None when the peer closed before sending any byte.
    Raises ProtocolError (with its status) for a malformed or oversized head."""
    parser = RequestParser()
    while True:
        data = await reader.read(READ_SIZE)
        events = parser.feed(data)  # b"" is EOF: the parser raises for a head cut short
        for event in events:
            if isinstance(event, RequestHead):
                return event
        if not data:
            return None


def response(status: int, content_type: str, body: bytes, method: bytes = b"GET",
             extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason(status)}", f"Content-Type: {content_type}",
             f"Content-Length: {len(body)}", "Cache-Control: no-store", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in extra]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if method == b"HEAD" else head + body


def plain(status: int, text: str, method: bytes = b"GET", extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    return response(status, "text/plain; charset=utf-8", text.encode(), method, extra)
