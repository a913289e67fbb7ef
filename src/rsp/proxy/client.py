"""HTTP mode's client side: one client connection, its pipelining, its timeouts and its output.

Requests are answered in order and one at a time: a request head that arrives while an exchange is in
flight waits, with what follows it, in `backlog` (RFC 9112 §9.3.2), and reading pauses meanwhile. What the
connection waits for (`wait`, rsp.proxy.waits) decides which timeout its `deadline` is; HttpProxy.tick()
calls on_timeout() once the deadline passed.
"""

from __future__ import annotations

import asyncio
from typing import Final, cast

from rsp.errors import ProtocolError
from rsp.http1.error_pages import error_response
from rsp.http1.events import Data, EndOfMessage, Event, RequestHead, ResponseHead
from rsp.http1.forward import Reply, RequestContext, ResponseContext, encode_chunk, forward_response, last_chunk
from rsp.http1.parser import RequestParser
from rsp.http1.serialise import serialise_prepared, serialise_response, with_added_fields
from rsp.logs import get_logger
from rsp.pipeline.messages import Header, Response
from rsp.proxy.exchange import Exchange
from rsp.proxy.reply_cache import RequestHeadCache
from rsp.proxy.session_api import ExchangeSide, Http1ClientSide
from rsp.proxy.session_io import Transport, is_closing, write, writelines
from rsp.proxy.session_state import SessionState
from rsp.proxy.waits import WAIT_BODY, WAIT_HEAD, WAIT_KEEPALIVE, WAIT_RESPONSE, WAIT_STREAM
from rsp.routes.router import host_only

# Corked writes whose last piece is at most this size are joined into one buffer (a copy of a few KiB
# costs less than writev's per-iovec work); larger bodies go out with writelines, copy-free.
JOIN_LIMIT: Final = 16 * 1024
# The context of a connection not connected yet (replaced in connection_made).
_NO_CONTEXT: Final = RequestContext("")


class ClientConnection(Http1ClientSide):
    """One HTTP/1 client connection in HTTP mode (what the rest of the session sees of it: ClientSide, and
    Http1ClientSide for what only HTTP/1 has)."""

    __slots__ = ("backlog", "client_eof", "corked", "paused_pipeline", "pending_error", "proxy", "reply_chunked",
                 "transport")

    def __init__(self, proxy: SessionState) -> None:
        self.proxy = proxy
        self.transport: Transport | None = None
        self.parser = RequestParser(shared=proxy.request_heads)
        # Events waiting for the exchange in flight (pipelining); None when none wait, as nearly always:
        # an empty list is 56 bytes that every idle keep-alive connection would hold.
        self.backlog: list[Event] | None = None
        self.exchange: ExchangeSide | None = None
        self.pending_error: ProtocolError | None = None
        self.closing = False
        self.client_eof = False
        self.tunnel_mode = False
        self.paused_pipeline = False
        self.paused_upstream = False
        self.requests = 0
        self.corked: list[bytes] | None = None
        self.peer: tuple[object, ...] = ()
        self.client_ip = ""
        self.context = _NO_CONTEXT  # what forwarding its requests reads besides their heads
        self.wait = WAIT_HEAD
        self.deadline = 0.0
        # The last request head forwarded and its bytes: a keep-alive client repeats its head.
        self.forwarded = RequestHeadCache(proxy.caches)
        # The framing of the response being sent through the Downstream interface (send_head): chunked, and
        # whether the connection stays open after it. Only exchanges with filters use it.
        self.reply_chunked = False
        self.reply_keep_alive = False

    # -- the stream's protocol (asyncio.Protocol's callbacks) ----------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = t = cast(Transport, transport)
        self.peer = t.peer
        self.client_ip = str(self.peer[0]) if self.peer else ""
        self.context = self.proxy.request_context(self.client_ip)
        self.proxy.connections.add(self)
        self.proxy.stats.accepted += 1
        self.set_wait(WAIT_HEAD, self.proxy.header_timeout)

    def data_received(self, data: bytes) -> None:
        self.proxy.stats.bytes_received += len(data)
        if self.tunnel_mode:
            exchange = self.exchange
            if exchange is not None and exchange.upstream is not None:
                exchange.upstream.write(data)
            return
        if self.closing:
            return
        was_idle = self.wait == WAIT_KEEPALIVE
        try:
            events = self.parser.feed(data)
        except ProtocolError as exc:
            self.refuse(exc)
            return
        if self.backlog:
            self._wait(events)
            self.process()
        elif events:
            self.run_events(events)
        if was_idle and self.wait == WAIT_KEEPALIVE and not self.closing:
            # The next request has begun and its head is not complete yet: the whole head must now arrive
            # within header_timeout. (A head that arrived whole started its exchange, with its own wait.)
            self.set_wait(WAIT_HEAD, self.proxy.header_timeout)
        if self.parser.ended and not self.closing:
            self._update_reading()  # the last request is read whole: stop reading (_update_reading)

    def eof_received(self) -> bool | None:
        if self.tunnel_mode:
            exchange = self.exchange
            if exchange is not None and exchange.upstream is not None:
                exchange.upstream.write_eof()
            return True
        self.client_eof = True
        try:
            events = self.parser.feed(b"")
        except ProtocolError as exc:
            self.refuse(exc)
            return True
        self._wait(events)
        self.process()
        # The client will send nothing more. Finish the exchange in progress (a half-closed client still
        # gets its response), then close.
        if self.exchange is None and not self.backlog:
            self.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.proxy.connections.discard(self)
        exchange = self.exchange
        if exchange is not None:
            exchange.client_gone()
        self.exchange = None
        # The stream refers to us: dropping it breaks the cycle, so both are freed now by reference
        # counting instead of by the cyclic garbage collector (see docs/performance.md).
        self.transport = None

    def pause_writing(self) -> None:
        exchange = self.exchange
        if exchange is not None:
            exchange.client_behind(True)

    def resume_writing(self) -> None:
        exchange = self.exchange
        if exchange is not None:
            exchange.client_behind(False)

    # -- event processing ----------------------------------------------------------------------------
    def process(self) -> None:
        """Run the events that waited (pipelined requests behind the one just answered)."""
        events = self.backlog
        self.backlog = None
        if events is not None:
            self.run_events(events)
        # (Not `self.backlog` here: mypy, and so mypyc, would take it for the None assigned above, though
        # run_events may have filled it.)
        if not self._backlog_waits() and self.paused_pipeline and not self.closing:
            self.paused_pipeline = False
            self._update_reading()

    def _backlog_waits(self) -> bool:
        return bool(self.backlog)

    def _wait(self, events: list[Event]) -> None:
        """Add `events` (a list of the caller's, not used after) to the backlog."""
        backlog = self.backlog
        if backlog is None:
            self.backlog = events if events else None
        else:
            backlog.extend(events)

    def run_events(self, events: list[Event]) -> None:
        """Dispatch events in order. A request head that arrives while another exchange is in flight waits,
        with everything after it, in the backlog (pipelining), and reading pauses meanwhile."""
        for i, event in enumerate(events):
            if self.closing:
                return
            kind = type(event)
            if kind is RequestHead:
                if self.exchange is not None:
                    self._wait(events[i:])
                    self._pause_pipeline()  # bounded memory: the client waits for the current response
                    return
                self.start_exchange(cast(RequestHead, event))
                continue
            exchange = self.exchange
            if exchange is None:
                continue  # body events of a request already answered with an error
            if kind is Data:
                exchange.request_data(cast(Data, event).data)
            else:
                exchange.request_end(cast(EndOfMessage, event))

    def start_exchange(self, head: RequestHead) -> None:
        proxy = self.proxy
        self.requests += 1
        if head.method == b"CONNECT":
            # A tunnel to any host:port is a forward proxy's job (RFC 9110 §9.3.6); a reverse proxy that
            # forwarded it would open tunnels through its backends. 501: not a method we implement.
            self.refuse(ProtocolError("CONNECT is not supported: rsp is a reverse proxy", 501))
            return
        if head.body.kind == "length" and head.body.length > proxy.max_body_size:
            self.refuse(ProtocolError(f"request body of {head.body.length} bytes is over the limit", 413))
            return
        if head.body.kind == "length" or head.body.kind == "chunked":
            self.set_wait(WAIT_BODY, proxy.body_timeout)
        else:
            self.set_wait(WAIT_RESPONSE, proxy.response_timeout)
        if proxy.filtered:
            # The listener has filters: the exchange runs its phases, routing among them (after rewrite).
            exchange = Exchange(self, proxy, head, proxy.pools[proxy.router.default], filtered=True)
            self.exchange = exchange
            exchange.start()
            return
        host_pools = proxy.host_pools
        if host_pools is None:
            pool = proxy.pools[proxy.router.pool_for(head.host, head.target, head.method)]
        else:
            # A route store: hosts no static rule matches are routed by it (rsp.routestore).
            name = proxy.router.match(head.host, head.target, head.method)
            if name is not None:
                pool = proxy.pools[name]
            else:
                host = host_only(head.host)
                found = host_pools.get(host)
                if found is None:
                    self._await_route(head, host)
                    return
                pool = found
        exchange = Exchange(self, proxy, head, pool)
        self.exchange = exchange
        exchange.start()

    def _await_route(self, head: RequestHead, host: str) -> None:
        """A host the route store has no pool for yet: the exchange waits (its body is buffered as while
        connecting) until the store calls Exchange.route_to, without blocking the loop."""
        proxy = self.proxy
        exchange = Exchange(self, proxy, head, proxy.pools[proxy.router.default])
        self.exchange = exchange
        lookup = proxy.host_lookup
        assert lookup is not None
        lookup(exchange, host)

    def exchange_done(self, exchange: ExchangeSide, keep_alive: bool, now: float) -> None:
        """The response is complete on the wire (queued on our transport); `now` is the proxy's clock."""
        if self.exchange is not exchange:
            return
        self.exchange = None
        if self.pending_error is not None:
            error, self.pending_error = self.pending_error, None
            self.refuse(error)
            return
        proxy = self.proxy
        if not keep_alive or self.client_eof or (proxy.draining and proxy.drain_linger <= 0.0):
            self.close()
            return
        if self.parser.paused:
            # The request asked to switch protocols and the backend declined: what the client sent after
            # it is HTTP after all.
            try:
                self._wait(self.parser.resume())
            except ProtocolError as exc:
                self.refuse(exc)
                return
        if self.parser.idle:
            self.wait = WAIT_KEEPALIVE
            timeout = proxy.keepalive_timeout
            if proxy.draining:
                # The head went out saying keep-alive before a reload's drain began: closing now would race
                # with a request the client may be sending already (RFC 9112 §9.6). It idles for the linger,
                # as HttpProxy.begin_drain keeps the idle ones; a request in it gets `Connection: close`.
                timeout = min(timeout, proxy.drain_linger) if timeout else proxy.drain_linger
        else:
            self.wait = WAIT_HEAD
            timeout = proxy.header_timeout
        self.deadline = now + timeout if timeout else 0.0
        if self.backlog:
            self.process()

    def refuse(self, error: ProtocolError) -> None:
        """Answer a request we will not forward, then close (the stream can no longer be trusted)."""
        exchange = self.exchange
        if exchange is not None and (exchange.response_started or exchange.request_done):
            # The error belongs to a later request: the one in flight was forwarded whole, so it gets its
            # own response first, then this answer (responses in order, RFC 9112 §9.3.2).
            self.pending_error = error
            self.closing_after_exchange()
            return
        if self.exchange is not None:
            self.exchange.abandon()  # counted there, with no status ("other")
            self.exchange = None
        else:
            self.proxy.stats.responses.count(error.status)
        get_logger().info("client %s: %d %s", self.client_ip, error.status, error)
        self.proxy.access_log.refused(self.client_ip, error.status)
        self.send_and_close(error_response(error.status))

    def closing_after_exchange(self) -> None:
        self.paused_pipeline = True
        self._update_reading()

    def send_and_close(self, data: bytes) -> None:
        self.backlog = None
        self.write(data)  # behind anything corked: a response being written goes out first
        self.close()

    # -- timeouts ------------------------------------------------------------------------------------
    def set_wait(self, wait: int, timeout: float) -> None:
        self.wait = wait
        self.deadline = self.proxy.now() + timeout if timeout else 0.0

    def stream_continues(self, timeout: float) -> None:
        proxy = self.proxy
        self.deadline = proxy.now() + (timeout or proxy.response_timeout)

    def on_timeout(self) -> None:
        wait = self.wait
        self.deadline = 0.0
        if wait == WAIT_KEEPALIVE:
            self.close()
        elif wait == WAIT_HEAD:
            if self.parser.idle and self.requests:
                self.close()  # an idle keep-alive connection, not a slow request
            else:
                self.refuse(ProtocolError("request head not received in time", 408))
        elif wait == WAIT_BODY:
            exchange = self.exchange
            if exchange is not None and exchange.response_started:
                exchange.fail_hard("client body timeout")
            else:
                self.refuse(ProtocolError("request body not received in time", 408))
        elif wait in (WAIT_RESPONSE, WAIT_STREAM) and self.exchange is not None:
            self.exchange.upstream_timeout()

    # -- flow control --------------------------------------------------------------------------------
    def pause_reading(self) -> None:
        self.paused_upstream = True
        self._update_reading()

    def resume_reading(self) -> None:
        self.paused_upstream = False
        self._update_reading()

    def _pause_pipeline(self) -> None:
        if not self.paused_pipeline:
            self.paused_pipeline = True
            self._update_reading()

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or is_closing(transport):
            return
        # Once the request that ends the connection has been read whole, nothing the client sends can be
        # used (the parser ignores it, RFC 9112 §9.6), so the connection is not read any more: a new
        # connection that sent `Connection: close` then needs no poller registration at all
        # (transport.stream.SocketStream.start). The cost: a client that goes away meanwhile is noticed
        # when its response is written, not before (HAProxy's default, without `option abortonclose`).
        if self.paused_pipeline or self.paused_upstream or self.parser.ended:
            transport.pause_reading()
        else:
            transport.resume_reading()

    # -- output --------------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        self.proxy.stats.bytes_sent += len(data)  # every byte to the client passes here (uncork too)
        corked = self.corked
        if corked is not None:
            corked.append(data)
            return
        transport = self.transport
        if transport is not None:
            write(transport, data)  # ignored once the transport is closing

    def cork(self) -> None:
        """Collect writes until uncork(): a response head and its body leave in one writev, not two sends
        (each send is a system call, see docs/performance.md)."""
        if self.corked is None:
            self.corked = []

    def uncork(self) -> None:
        out = self.corked
        self.corked = None
        if out:
            transport = self.transport
            if transport is not None:  # writes are ignored once it is closing
                if len(out) == 1:
                    write(transport, out[0])
                elif len(out[-1]) <= JOIN_LIMIT:
                    write(transport, b"".join(out))  # one small copy beats writev's iovec set-up
                else:
                    writelines(transport, out)

    def is_idle(self) -> bool:
        return self.exchange is None and not self.backlog

    def close(self) -> None:
        """Close after flushing what is queued (the stream flushes on close)."""
        self.uncork()
        self.closing = True
        self.deadline = 0.0
        transport = self.transport
        if transport is not None and not is_closing(transport):
            transport.close()

    def abort(self) -> None:
        self.closing = True
        self.corked = None
        if self.exchange is not None:
            self.exchange.abandon()
            self.exchange = None
        if self.transport is not None:
            self.transport.abort()

    # -- Downstream (rsp.pipeline.phases): how an exchange with filters writes its response -------------
    def send_head(self, response: Response, close: bool = False) -> None:
        """The response head (or a 1xx interim one) for the current exchange, framed for HTTP/1.1 (RFC 9112 §6):
        the verbatim bytes of the backend's head when no filter changed it (the head cache of its backend
        connection), else rsp.http1.serialise. `close`: close the connection after this response."""
        exchange = self.exchange
        if exchange is None:
            return
        request = exchange.head
        origin = response.origin
        if response.status < 200:
            if request.version == b"1.1" and isinstance(origin, ResponseHead):  # RFC 9110 §15.2
                self.write(forward_response(origin, ResponseContext(request.version, request.keep_alive, False,
                                                                    self.proxy.via)).data)
            return
        close = close or self.proxy.draining or not exchange.request_done
        upstream = exchange.upstream
        out: bytes | None = None
        reply: Reply
        if not response.changed and isinstance(origin, ResponseHead):
            if upstream is not None:
                cache = upstream.replies
                out = cache.head_bytes(origin, request.version, request.keep_alive, close, self.proxy.via, False)
                cached = cache.reply
                assert cached is not None
                reply = cached
            else:
                reply = forward_response(origin, ResponseContext(request.version, request.keep_alive, close,
                                                                 self.proxy.via))
                out = reply.data
            added = response.added
            if added is not None:  # lines a filter added (a cache's X-Cache): to these bytes, unless declared
                out = with_added_fields(out, added)
        if out is None:
            lines = response.lines
            prepared = None
            if lines is not None and origin is None and not response.changed:  # (a cache hit's stored lines)
                prepared = serialise_prepared(response, lines, ResponseContext(request.version, request.keep_alive,
                                                                               close, False))
            if prepared is not None:
                reply = prepared
            else:
                version = origin.version if isinstance(origin, ResponseHead) else b"1.1"
                reply = serialise_response(response, ResponseContext(request.version, request.keep_alive, close,
                                                                     self.proxy.via and origin is not None), version)
            out = reply.data
        self.reply_chunked = reply.chunked
        self.reply_keep_alive = reply.keep_alive
        self.write(out)

    def send_data(self, data: bytes) -> None:
        self.write(encode_chunk(data) if self.reply_chunked else data)

    def send_end(self, trailers: list[Header]) -> None:
        if self.reply_chunked:
            self.write(last_chunk(tuple(trailers)))

    def reset(self, reason: str) -> None:
        """The exchange failed after its head was sent: HTTP/1 can only close the connection."""
        self.close()

    # -- tunnel (WebSocket after 101) -----------------------------------------------------------------
    def tunnel_to_client(self, data: bytes) -> None:
        self.write(data)

    def tunnel_eof_from_upstream(self) -> None:
        transport = self.transport
        if transport is not None and not is_closing(transport):
            transport.write_eof()

    def tunnel_closed(self) -> None:
        self.close()
