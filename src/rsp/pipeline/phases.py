"""The phases an exchange passes through, and the filter interface over them.

An exchange (one request and its response) runs, in order (OpenResty's names, nginx's order):

    rewrite        the request head may be changed (target, headers, method); routing reads the result
    access         allow, deny, or answer locally (rate limits, auth, a cache hit)
    balancer       once per try (again on retry): the pool, or one peer, for this try
    header_filter  the response head, before it is sent (status, headers)
    body_filter    each response body chunk, then the end (last=True); a filter may replace chunks
    log            after the response is complete (or failed); nothing can change any more

A filter is an object with a method per phase it needs; `phases_of` finds which it overrides, and the chain
calls only those, so a config with no filters pays nothing per exchange. rsp's own steps sit at fixed places
among the filters, so a user's Lua sees the same order rsp's own features follow (docs/lua.md): routing and
the route store right after the rewrite filters (a rewritten Host or path re-routes), the pool's balancer
after the balancer filters (unless one chose a peer), X-Forwarded-*/Forwarded/Via when the head is
serialised. The session that runs this is rsp.proxy.filter_run (docs/architecture.md, "The request
pipeline"); a listener's Chain is read once, when its HttpProxy is built.

What a request-phase method returns (the small vocabulary nginx, Envoy and mitmproxy share):
- CONTINUE (None): go on to the next filter, then the next phase.
- a LocalReply: answer now with it; the remaining request phases and the backend are skipped, the response
  phases (header_filter, body_filter, log) still run over it.
- SUSPEND: the filter started I/O (a Lua cosocket, a timer) and will call `exchange.resume()` (go on after
  this filter) or `exchange.answer(reply)` later, on the loop; the exchange waits without blocking anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Protocol

from rsp.pipeline.messages import LocalReply, Request, Response

REWRITE: Final = "rewrite"
ACCESS: Final = "access"
BALANCER: Final = "balancer"
HEADER_FILTER: Final = "header_filter"
BODY_FILTER: Final = "body_filter"
LOG: Final = "log"
PHASES: Final = (REWRITE, ACCESS, BALANCER, HEADER_FILTER, BODY_FILTER, LOG)
REQUEST_PHASES: Final = (REWRITE, ACCESS, BALANCER)


class Suspend:
    """The marker a filter returns when it continues later (see the module docstring)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SUSPEND"


SUSPEND: Final = Suspend()
CONTINUE: Final = None
Verdict = LocalReply | Suspend | None


class ExchangeView(Protocol):
    """What a filter sees of an exchange. The session implements it; tests implement it with a plain object.

    request: the request head (change it in rewrite/access; `request.set` marks it changed).
    response: the response head in header_filter and after (None before).
    ctx: per-exchange scratch space shared by every filter and phase (OpenResty's ngx.ctx).
    client_ip, client_port, server_port: the connection's addresses.
    pool: the name of the pool the exchange goes to (set in rewrite/access/balancer to re-route).
    peer: (host, port) set in balancer to send this try to one address instead of the pool's pick.
    tries: how many tries failed so far (0 on the first balancer call); last_failure: why the last one
        failed ("connect refused", "timeout", "bad response"), "" on the first.
    more_tries: set in balancer to allow that many more tries than the pool's `retries`.
    status: the final status (0 until known); upstream_addr / upstream_status: the last backend's;
        upstream_timings: each try's connect, header and response times.
    started: when the request head was complete, on the exchange's clock (the loop iteration's time, as
        nginx's cached time); now(): that clock, read now.
    """

    request: Request
    response: Response | None
    ctx: dict[str, object]
    pool: str
    peer: tuple[str, int] | None
    more_tries: int

    @property
    def client_ip(self) -> str: ...
    @property
    def client_port(self) -> int: ...
    @property
    def server_port(self) -> int: ...
    @property
    def tries(self) -> int: ...
    @property
    def last_failure(self) -> str: ...
    @property
    def status(self) -> int: ...
    @property
    def upstream_addr(self) -> str: ...
    @property
    def upstream_status(self) -> int: ...
    @property
    def started(self) -> float: ...
    @property
    def upstream_timings(self) -> tuple[tuple[float, float, float], ...]:
        """Per try so far: (connect, header, response) seconds from the try's start, -1.0 for a step it did
        not reach (a refused connect has no connect or header time)."""
    def now(self) -> float: ...
    def resume(self) -> None:
        """Go on after the filter that returned SUSPEND (call on the loop, once)."""
    def answer(self, reply: LocalReply) -> None:
        """Answer locally after the filter that returned SUSPEND (call on the loop, once)."""
    def answer_head(self, response: Response) -> None:
        """Answer with `response` after the filter that returned SUSPEND (call on the loop, once), its body
        to follow by answer_data as it comes (a cache's waiting list streaming another exchange's fetch)."""
    def answer_data(self, chunk: bytes, last: bool) -> None:
        """A part of the body of the answer answer_head began; `last` once, with the final part (may be b"")."""
    def answer_reset(self, reason: str) -> None:
        """The answer answer_head began cannot be finished: reset the client as after a backend failure."""
    def follow(self, source: ExchangeView) -> None:
        """This exchange's streamed answer is `source`'s response as it comes (a cache's waiting list): should
        `source` go on after its own client left (Filter.client_left), this exchange's client is among those
        that pace it (its backend is read while none of them is behind)."""
    def background(self, request: Request, ctx: dict[str, object]) -> None:
        """Start `request` as an exchange of its own on this listener, on the loop's next iteration, with `ctx`
        as its ctx, to the pool this exchange goes to: the balancer filters, the pool, the response phases and
        log as for a client's request, but not the rewrite and access filters nor routing (`request` is given
        as it should go); no client waits for it and its response, once through the filters, goes nowhere (a
        cache's background refresh; rsp.proxy.background)."""

    def set_timeouts(self, connect: float, send: float, read: float) -> None:
        """In balancer: this try's connect, send and read timeouts in seconds (0: the defaults)."""

    # The request body, in rewrite and access (rsp.pipeline.request_body): held while the request phases run.
    def read_body(self, done: Callable[[], None]) -> bool:
        """True when the body is complete (or over the buffer, or discarded); else `done` is called once it is
        (on the loop): the filter returns SUSPEND meanwhile."""
    def body_data(self) -> bytes | None:
        """The whole body when held whole, else None (not read yet, over the buffer, discarded, empty)."""
    def set_body(self, data: bytes) -> None:
        """Replace the body (read whole first): the backend gets `data` with its Content-Length."""
    def discard_body(self) -> None:
        """Drop the body: the backend gets the request without one."""


class Filter:
    """Base of every filter: override the phases you need (the others are never called).

    Request phases return a Verdict. header_filter may change `exchange.response` (and its headers).
    body_filter gets each body chunk and `last` (True once, with the final chunk, possibly b"") and returns
    the bytes to pass on (b"" to hold them back, more to add); a filter that changes the body's length sets
    `exchange.response.body_length = UNKNOWN_LENGTH` in header_filter. log returns nothing.
    """

    name = "filter"

    def rewrite(self, exchange: ExchangeView) -> Verdict:
        return CONTINUE

    def access(self, exchange: ExchangeView) -> Verdict:
        return CONTINUE

    def balancer(self, exchange: ExchangeView) -> Verdict:
        return CONTINUE

    def header_filter(self, exchange: ExchangeView) -> Verdict:
        return CONTINUE

    def body_filter(self, exchange: ExchangeView, chunk: bytes, last: bool) -> bytes:
        return chunk

    def log(self, exchange: ExchangeView) -> None:
        return None

    def client_left(self, exchange: ExchangeView) -> bool:
        """Not a phase: the client went away after the request phases and before the response ended. True
        lets the exchange go on without it (the response read to its end through header_filter, body_filter
        and log, sent nowhere, still under the read timeout), as nginx's proxy_ignore_client_abort; False (the
        default) ends it now, the backend connection dropped. Asked again after each read of the response
        while it goes on: when no filter still needs it, it ends then (a cache that stopped storing)."""
        return False


def phases_of(flt: Filter) -> frozenset[str]:
    """The phases `flt` overrides (the only ones the chain calls it for)."""
    return frozenset(name for name in PHASES if getattr(type(flt), name) is not getattr(Filter, name))


# The phases that see the response: they run the chain backwards, as Envoy's encoder filters do, so the filter
# nearest the backend (last in the list) sees the backend's response first and the first filter sees what the
# client gets. A response cache listed after a Lua handler thus stores what the backend sent, and the Lua
# header_filter runs on cache hits too (rsp.filter_wiring).
RESPONSE_PHASES: Final = (HEADER_FILTER, BODY_FILTER)


class Chain:
    """The ordered filters of one listener (or route), indexed per phase: request phases and log in list
    order, response phases (RESPONSE_PHASES) in reverse. `empty` is the fast path's test: an exchange with an
    empty chain runs exactly as before filters existed."""

    __slots__ = ("by_phase", "empty", "filters", "keepers")

    def __init__(self, filters: list[Filter]) -> None:
        self.filters = tuple(filters)
        self.by_phase: dict[str, tuple[Filter, ...]] = {}
        for phase in PHASES:
            ordered = reversed(filters) if phase in RESPONSE_PHASES else iter(filters)
            self.by_phase[phase] = tuple(f for f in ordered if phase in phases_of(f))
        # The filters that may keep an exchange going without its client (Filter.client_left).
        self.keepers = tuple(f for f in filters if type(f).client_left is not Filter.client_left)
        self.empty = not filters

    def for_phase(self, phase: str) -> tuple[Filter, ...]:
        return self.by_phase[phase]


EMPTY_CHAIN: Final = Chain([])


class Downstream(Protocol):
    """The client side of one exchange, as the session sees it: what HTTP/1's ClientConnection and an HTTP/2
    stream both implement. A response that goes through the response phases (the listener has header or
    body filters, or the answer is local) is written only through these; without them, HTTP/1 keeps its
    direct path (the byte-for-byte head cache and direct writes, docs/architecture.md "The request pipeline").

    send_head: the (final, or 1xx interim) response head; the codec frames it for its protocol.
    send_data: a body chunk (already through body_filter). send_end: the end of the body, with trailers.
    pause_upstream/resume_upstream: the client cannot take more now / can again (backpressure toward the
    backend). reset: the exchange failed after the head was sent; the codec ends the stream abnormally
    (HTTP/1 closes the connection, HTTP/2 sends RST_STREAM).
    """

    def send_head(self, response: Response) -> None: ...
    def send_data(self, data: bytes) -> None: ...
    def send_end(self, trailers: list[tuple[bytes, bytes]]) -> None: ...
    def reset(self, reason: str) -> None: ...
