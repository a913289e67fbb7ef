"""HTTP mode: one listener's proxy, the wiring of the session.

Shape (docs/architecture.md, "HTTP mode"): the sans-IO parsers in `rsp.http1` turn bytes into events; the
session reacts to events with writes on its transports. One `ClientConnection` per client (rsp.proxy.client),
one `Exchange` per request (rsp.proxy.exchange), one `UpstreamConnection` (from the backend's idle pool, or
new) per exchange (rsp.proxy.http_upstream). `HttpProxy` holds what they share: settings, routing, pools, the
idle pools, the live client connections, the clock and the connector (rsp.proxy.session_io).

Rules that make it safe:
- Requests are answered in order and one at a time per client connection: a pipelined request waits,
  parsed but unforwarded, until the response before it is complete (RFC 9112 §9.3.2), and reading pauses.
- A request the parser refuses gets its status (400, 413, 414, 431, 501, 505) and the connection closes;
  nothing of it reaches a backend, and never more requests are forwarded than answered.
- A backend's bad framing closes that backend connection (never returned to the pool) and answers 502.
- A request is retried only when that is safe: idempotent method (RFC 9110 §9.2.2), no request body, no
  response byte received (RFC 9112 §9.3.1); see rsp.proxy.exchange.
- Flow control: each side's transport pauses the other side's reading above its high-water mark.
"""

from __future__ import annotations

import socket
from typing import Final

from rsp.pipeline.messages import Request
from rsp.proxy.background import detach, start_background
from rsp.proxy.client import ClientConnection
from rsp.proxy.exchange import Exchange
from rsp.proxy.pools import PoolRuntime
from rsp.proxy.session_api import ExchangeSide, Http1ClientSide
from rsp.proxy.session_io import start_stream, start_tls_stream
from rsp.proxy.session_state import LISTENER_PROTO, MAX_PEER_POOLS, TLS_LISTENER_PROTO, SessionState
from rsp.proxy.waits import WAIT_KEEPALIVE
from rsp.transport.plain_on_tls import HTTP_PLAIN_GUARD

__all__ = ["LISTENER_PROTO", "MAX_PEER_POOLS", "TLS_LISTENER_PROTO", "HttpProxy"]

# A client connection idle this long between requests drops the memos of its last request (the parser's and
# the forwarded head's, rsp.http1.request_parser and rsp.proxy.reply_cache): they serve a client that repeats
# its head at once, and were ~1.1 KB of the ~2.9 KB an idle keep-alive connection held (docs/performance.md,
# "Memory per idle keep-alive connection"). A client that comes back later pays one full parse. Checked by the
# housekeeping tick (about once a second, and with keepalive_timeout = 0 not at all: no wait is timed then).
MEMO_IDLE_SECONDS: Final = 1.0


class HttpProxy(SessionState):
    """One HTTP listener: what its session shares (SessionState, with the constructor's arguments), accept,
    the housekeeping tick, drain."""

    def background(self, request: Request, ctx: dict[str, object], client_ip: str, pool: PoolRuntime,
                   pool_name: str) -> None:
        start_background(self, request, ctx, client_ip, pool, pool_name)

    def detach(self, exchange: ExchangeSide) -> bool:
        return isinstance(exchange, Exchange) and detach(self, exchange)

    # -- housekeeping (called from the server's tick) -------------------------------------------------
    def tick(self) -> None:
        now = self.now()
        keepalive = self.keepalive_timeout
        # A keep-alive wait's deadline is when it began plus keepalive_timeout: one that began at least
        # MEMO_IDLE_SECONDS ago has a deadline at most this.
        memo_deadline = now - MEMO_IDLE_SECONDS + keepalive
        for conn in list(self.connections):
            deadline = conn.deadline
            if deadline and now >= deadline:
                conn.on_timeout()
            elif (conn.wait == WAIT_KEEPALIVE and keepalive and deadline <= memo_deadline
                    and isinstance(conn, Http1ClientSide)):
                conn.parser.forget_memos()
                conn.forwarded.forget()
        for pool in self.idle_pools.values():
            if pool.idle:
                pool.expire(now)

    def live_connections(self) -> int:
        return sum(1 for c in self.connections if not c.is_idle())

    def begin_drain(self, linger: float = 0.0) -> None:
        """Stop keep-alive: busy clients are closed after their current response (sent with `Connection:
        close`). Idle clients are closed now, or with `linger` (a reload) after `linger` more seconds of
        idleness, and a connection accepted whose first request has not arrived yet is served: closing an
        idle keep-alive connection races with a request the client may be sending on it (RFC 9112 §9.6), so
        a reload gives clients that reuse their connections at once the time to do so and be told to close."""
        self.draining = True
        self.drain_linger = linger
        deadline = self.now() + linger
        for conn in list(self.connections):
            if not conn.is_idle():
                continue
            if linger <= 0.0:
                conn.close()
            elif conn.requests and (conn.deadline == 0.0 or conn.deadline > deadline):
                conn.deadline = deadline

    def close_all(self) -> None:
        for conn in list(self.connections):
            conn.abort()
        for pool in self.idle_pools.values():
            pool.close_all()

    def on_accept(self, sock: socket.socket, peer: tuple[object, ...]) -> None:
        """A client connected (rsp.transport.listener.Acceptor, which set it non-blocking and TCP_NODELAY)."""
        tls = self.tls
        if tls is not None:
            start_tls_stream(self.loop, sock, ClientConnection(self), peer, self.high_water, self.low_water, tls,
                             server_side=True, plain_guard=HTTP_PLAIN_GUARD)
        else:
            # Read before registering: the request usually came with the connection (SocketStream.start).
            start_stream(self.loop, sock, ClientConnection(self), peer, self.high_water, self.low_water, True)
