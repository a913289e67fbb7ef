"""HTTP mode: the client side of a connection and the exchange (one request and its response).

Shape (DESIGN habit 1-3): the sans-IO parsers in `rsp.http1` turn bytes into events; this module reacts to
events with writes on socket streams (rsp.transport.stream). One `ClientConnection` per client, one
`Exchange` per request, one `UpstreamConnection` (from the backend's idle pool, or new) per exchange.

Rules that make it safe:
- Requests are answered in order and one at a time per client connection: a pipelined request waits,
  parsed but unforwarded, until the response before it is complete (RFC 9112 §9.3.2), and reading pauses.
- A request the parser refuses gets its status (400, 413, 414, 431, 501, 505) and the connection closes;
  nothing of it reaches a backend, and never more requests are forwarded than answered.
- A backend's bad framing closes that backend connection (never returned to the pool) and answers 502.
- A pooled connection that turns out closed is retried on a fresh connection only when that is safe:
  idempotent method (RFC 9110 §9.2.2), no request body, no response byte received (RFC 9112 §9.3.1).
- Flow control: each side's transport pauses the other side's reading above its high-water mark.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable
from typing import Final, cast

from rsp.config.model import Config, HttpSettings
from rsp.errors import ProtocolError
from rsp.http1 import forward
from rsp.http1.error_pages import error_response
from rsp.http1.events import Data, EndOfMessage, Event, RequestHead, ResponseHead
from rsp.http1.parser import RequestParser
from rsp.logs import get_logger
from rsp.proxy.access_log import AccessLog
from rsp.proxy.http_upstream import IdlePool, UpstreamConnection
from rsp.proxy.pools import PoolRuntime
from rsp.proxy.waits import WAIT_BODY, WAIT_HEAD, WAIT_KEEPALIVE, WAIT_NONE, WAIT_RESPONSE, WAIT_STREAM
from rsp.routes.router import Router
from rsp.transport.connect import UpstreamConnect
from rsp.transport.poller import poller_of
from rsp.transport.stream import NativeProtocol, SocketStream, StreamProtocol
from rsp.upstream.records import BackendRecord

# RFC 9110 §9.2.2: methods whose repetition has the same effect; only these are retried after a reused
# connection fails (and only without a body, whose bytes we do not keep).
IDEMPOTENT: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
# Request body bytes held while the backend connection is being opened, before the client is paused.
CONNECT_BUFFER_LIMIT: Final = 256 * 1024

# What an exchange excludes from its first pick: nothing (a list is made only when a backend fails).
_NO_RECORDS: Final[tuple[BackendRecord, ...]] = ()

# Corked writes whose last piece is at most this size are joined into one buffer (a copy of a few KiB
# costs less than writev's per-iovec work); larger bodies go out with writelines, copy-free.
JOIN_LIMIT: Final = 16 * 1024



class HttpProxy:
    """One HTTP listener: routing, pools, the upstream idle pools, live client connections."""

    def __init__(self, loop: asyncio.AbstractEventLoop, config: Config, pools: dict[str, PoolRuntime],
                 default_pool: str, access_log: AccessLog) -> None:
        self.loop = loop
        # The clock of every deadline here (tick() reads it too). time.monotonic is the clock asyncio's
        # loops use; called directly it skips uvloop's loop.time() wrapper, and it is read several times
        # per request.
        self.clock: Callable[[], float] = time.monotonic
        # On rsp's loop, deadlines read the time its poller took when the current iteration began (see
        # now()); the access log's durations keep the exact clock.
        self.poller = poller_of(loop)
        self.config = config
        self.settings: HttpSettings = config.http
        # The settings read on every request, as attributes of this (compiled) class: the config's frozen
        # dataclass is interpreted, and each of its attributes is a generic attribute lookup.
        s = config.http
        self.header_timeout = s.header_timeout
        self.body_timeout = s.body_timeout
        self.response_timeout = s.response_timeout
        self.keepalive_timeout = s.keepalive_timeout
        self.max_body_size = s.max_body_size
        self.via = s.via
        self.pools = pools  # a dict (not a Mapping): compiled, the lookup per request is a native operation
        self.router = Router(config.routes, default_pool)
        self.access_log = access_log
        self.high_water = config.high_water
        self.low_water = config.low_water
        self.connections: set[ClientConnection] = set()
        self.idle_pools: dict[BackendRecord, IdlePool] = {}
        self.trusted = tuple(ipaddress.ip_network(c, strict=False) for c in config.http.trusted_proxies)
        self.draining = False
        for pool in pools.values():
            for record in pool.records:
                self.idle_pools[record] = IdlePool(s.pool_max_idle, s.pool_idle_timeout, s.pool_max_requests)

    def is_trusted(self, ip: str) -> bool:
        if not self.trusted:
            return False
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.trusted)

    # -- housekeeping (called from the server's tick) -------------------------------------------------
    def now(self) -> float:
        """The clock of timeouts and idle pools: time.monotonic(), read once per loop iteration on rsp's
        loop (a deadline is a few microseconds early at most; two clock reads fewer per request)."""
        poller = self.poller
        return poller.now if poller is not None else time.monotonic()

    def tick(self) -> None:
        now = self.now()
        for conn in list(self.connections):
            if conn.deadline and now >= conn.deadline:
                conn.on_timeout()
        for pool in self.idle_pools.values():
            if pool.idle:
                pool.expire(now)

    def live_connections(self) -> int:
        return sum(1 for c in self.connections if not c.is_idle())

    def begin_drain(self) -> None:
        """Stop keep-alive: idle clients are closed now, busy ones after their current response."""
        self.draining = True
        for conn in list(self.connections):
            if conn.is_idle():
                conn.close()

    def close_all(self) -> None:
        for conn in list(self.connections):
            conn.abort()
        for pool in self.idle_pools.values():
            pool.close_all()

    # -- upstream connections -------------------------------------------------------------------------
    def open_upstream(self, exchange: Exchange, record: BackendRecord, pool: PoolRuntime) -> None:
        family, sockaddr = pool.addresses[record.index]
        try:
            UpstreamConnect(self.loop, family, sockaddr, pool.spec.connect_timeout,
                            lambda sock, err: self._connected(exchange, record, sock, err))
        except OSError as exc:
            exchange.connect_failed(record, exc.strerror or str(exc))

    def _connected(self, exchange: Exchange, record: BackendRecord, sock: socket.socket | None, err: str) -> None:
        if sock is None:
            exchange.connect_failed(record, err)
            return
        conn = UpstreamConnection(self.loop, record, self.idle_pools[record])
        self._start_stream(sock, conn, ())
        exchange.attach(conn, reused=False)

    def on_accept(self, sock: socket.socket, peer: tuple[object, ...]) -> None:
        """A client connected (rsp.transport.listener.Acceptor, which set it non-blocking and TCP_NODELAY)."""
        self._start_stream(sock, ClientConnection(self), peer)

    def _start_stream(self, sock: socket.socket, protocol: StreamProtocol, peer: tuple[object, ...]) -> None:
        stream = SocketStream(self.loop, sock, protocol, peer)
        stream.set_write_buffer_limits(self.high_water, self.low_water)
        stream.start()


def _same_verdict(head: ResponseHead, last: ResponseHead) -> bool:
    """`head` shares `last`'s verdict: the parser's near memo built it from the same status line, framing
    and Connection objects, so the client gets the same bytes around a new `forwardable`."""
    return (head.reason is last.reason and head.body is last.body and head.connection is last.connection
            and head.status == last.status and head.keep_alive == last.keep_alive and head.version == last.version)


class ClientConnection(NativeProtocol):
    """One client connection in HTTP mode."""

    __slots__ = ("backlog", "client_eof", "client_ip", "closing", "corked", "deadline", "exchange", "forwarded_for",
                 "forwarded_head", "forwarded_rest", "parser", "paused_pipeline", "paused_upstream", "peer",
                 "pending_error", "proxy", "requests", "transport", "trusted", "tunnel_mode", "wait")

    def __init__(self, proxy: HttpProxy) -> None:
        self.proxy = proxy
        self.transport: SocketStream | None = None
        self.parser = RequestParser()
        self.backlog: list[Event] = []
        self.exchange: Exchange | None = None
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
        self.trusted = False
        self.wait = WAIT_HEAD
        self.deadline = 0.0
        # The last request head forwarded and its bytes: a keep-alive client repeats its head, and the
        # parser's memo then hands out the very same head object, whose forwarded form (a function of the
        # head and this connection's address) is the same too.
        self.forwarded_for: RequestHead | None = None
        self.forwarded_head = b""
        self.forwarded_rest = b""  # forwarded_head after its target (origin-form targets)

    # -- the stream's protocol (asyncio.Protocol's callbacks) ----------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = t = cast(SocketStream, transport)
        self.peer = t.peer
        self.client_ip = str(self.peer[0]) if self.peer else ""
        self.trusted = self.proxy.is_trusted(self.client_ip)
        self.proxy.connections.add(self)
        self.set_wait(WAIT_HEAD, self.proxy.header_timeout)

    def data_received(self, data: bytes) -> None:
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
            self.backlog.extend(events)
            self.process()
        elif events:
            self.run_events(events)
        if was_idle and self.wait == WAIT_KEEPALIVE and not self.closing:
            # The next request has begun and its head is not complete yet: the whole head must now arrive
            # within header_timeout. (A head that arrived whole started its exchange, with its own wait.)
            self.set_wait(WAIT_HEAD, self.proxy.header_timeout)

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
        self.backlog.extend(events)
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
        # counting instead of by the cyclic garbage collector (measured with ab: ~2% of the CPU).
        self.transport = None

    def pause_writing(self) -> None:
        exchange = self.exchange
        if exchange is not None and exchange.upstream is not None:
            exchange.upstream.pause_reading()

    def resume_writing(self) -> None:
        exchange = self.exchange
        if exchange is not None and exchange.upstream is not None:
            exchange.upstream.resume_reading()

    # -- event processing ----------------------------------------------------------------------------
    def process(self) -> None:
        """Run the events that waited (pipelined requests behind the one just answered)."""
        events = self.backlog
        self.backlog = []
        self.run_events(events)
        if not self.backlog and self.paused_pipeline and not self.closing:
            self.paused_pipeline = False
            self._update_reading()

    def run_events(self, events: list[Event]) -> None:
        """Dispatch events in order. A request head that arrives while another exchange is in flight waits,
        with everything after it, in the backlog (pipelining), and reading pauses meanwhile."""
        for i, event in enumerate(events):
            if self.closing:
                return
            kind = type(event)
            if kind is RequestHead:
                if self.exchange is not None:
                    self.backlog.extend(events[i:])
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
        pool_name = proxy.router.pool_for(head.host, head.target, head.method)
        exchange = Exchange(self, head, proxy.pools[pool_name])
        self.exchange = exchange
        exchange.start()

    def exchange_done(self, exchange: Exchange, keep_alive: bool, now: float) -> None:
        """The response is complete on the wire (queued on our transport); `now` is the proxy's clock."""
        if self.exchange is not exchange:
            return
        self.exchange = None
        if self.pending_error is not None:
            error, self.pending_error = self.pending_error, None
            self.refuse(error)
            return
        if not keep_alive or self.proxy.draining or self.client_eof:
            self.close()
            return
        if self.parser.paused:
            # The request asked to switch protocols and the backend declined: what the client sent after
            # it is HTTP after all.
            try:
                self.backlog.extend(self.parser.resume())
            except ProtocolError as exc:
                self.refuse(exc)
                return
        if self.parser.idle:
            self.wait = WAIT_KEEPALIVE
            timeout = self.proxy.keepalive_timeout
        else:
            self.wait = WAIT_HEAD
            timeout = self.proxy.header_timeout
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
            self.exchange.abandon()
            self.exchange = None
        get_logger().info("client %s: %d %s", self.client_ip, error.status, error)
        self.proxy.access_log.refused(self.client_ip, error.status)
        self.send_and_close(error_response(error.status))

    def closing_after_exchange(self) -> None:
        self.paused_pipeline = True
        self._update_reading()

    def send_and_close(self, data: bytes) -> None:
        self.backlog.clear()
        self.write(data)  # behind anything corked: a response being written goes out first
        self.close()

    # -- timeouts ------------------------------------------------------------------------------------
    def set_wait(self, wait: int, timeout: float) -> None:
        self.wait = wait
        self.deadline = self.proxy.now() + timeout if timeout else 0.0

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
        if transport is None or transport.is_closing():
            return
        if self.paused_pipeline or self.paused_upstream:
            transport.pause_reading()
        else:
            transport.resume_reading()

    # -- output --------------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        corked = self.corked
        if corked is not None:
            corked.append(data)
            return
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def cork(self) -> None:
        """Collect writes until uncork(): a response head and its body leave in one writev, not two sends
        (each loopback send costs ~15 us of kernel time, measured)."""
        if self.corked is None:
            self.corked = []

    def uncork(self) -> None:
        out = self.corked
        self.corked = None
        if out:
            transport = self.transport
            if transport is not None and not transport.is_closing():
                if len(out) == 1:
                    transport.write(out[0])
                elif len(out[-1]) <= JOIN_LIMIT:
                    transport.write(b"".join(out))  # one small copy beats writev's iovec set-up
                else:
                    transport.writelines(out)

    def is_idle(self) -> bool:
        return self.exchange is None and not self.backlog

    def close(self) -> None:
        """Close after flushing what is queued (the stream flushes on close)."""
        self.uncork()
        self.closing = True
        self.deadline = 0.0
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def abort(self) -> None:
        self.closing = True
        self.corked = None
        if self.exchange is not None:
            self.exchange.abandon()
            self.exchange = None
        if self.transport is not None:
            self.transport.abort()

    # -- tunnel (WebSocket after 101) -----------------------------------------------------------------
    def tunnel_to_client(self, data: bytes) -> None:
        self.write(data)

    def tunnel_eof_from_upstream(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write_eof()

    def tunnel_closed(self) -> None:
        self.close()


class Exchange:
    """One request and its response, from routing to the last byte."""

    __slots__ = ("body_sent", "buffer", "buffered", "client", "head", "interim", "keep_client", "pool", "record",
                 "request_done", "response_chunked", "response_head", "response_started", "retried_fresh",
                 "reused", "sent_bytes", "started", "status", "tried", "tunnel", "upstream", "upstream_started")

    def __init__(self, client: ClientConnection, head: RequestHead, pool: PoolRuntime) -> None:
        self.client = client
        self.head = head
        self.pool = pool
        self.record: BackendRecord | None = None
        self.upstream: UpstreamConnection | None = None
        self.tried: list[BackendRecord] | None = None  # the backends that failed this request, when any
        self.buffer: list[bytes] | None = [self._forward_head()]
        self.buffered = 0
        self.body_sent = 0
        self.request_done = head.body.kind == "none"
        self.response_head: ResponseHead | None = None
        self.response_started = False
        self.response_chunked = False
        self.keep_client = head.keep_alive
        self.reused = False
        self.retried_fresh = False
        self.tunnel = False
        self.interim = False
        self.status = 0
        self.sent_bytes = 0
        # Only the access log reads these times.
        self.started = client.proxy.clock() if client.proxy.access_log.enabled else 0.0
        self.upstream_started = 0.0

    def _forward_head(self) -> bytes:
        client = self.client
        head = self.head
        last = client.forwarded_for
        if last is not None:
            if head is last:
                return client.forwarded_head
            if (head.raw is last.raw and head.forwardable is last.forwardable and head.forwardable is not None
                    and head.method is last.method and head.body is last.body and head.host is last.host
                    and head.version is last.version and head.upgrade is None and last.upgrade is None
                    and head.target[0] == 47 and last.target[0] == 47):
                # The parser's target memo: the same head with another path. What follows the target in
                # the forwarded head is made of the same objects, so it is the same bytes.
                return b"".join((head.method, b" ", head.target, client.forwarded_rest))
        settings = client.proxy.settings
        out = forward.request_head(head, client.client_ip, trusted=client.trusted, forwarded=settings.forwarded,
                                   via=settings.via)
        client.forwarded_for = head
        client.forwarded_head = out
        # An origin-form target is forwarded as it came, right after the method (forward.request_head).
        client.forwarded_rest = out[len(head.method) + 1 + len(head.target):] if head.target[0] == 47 else b""
        return out

    # -- backend selection and connection -------------------------------------------------------------
    def start(self) -> None:
        self._pick_and_connect(fresh=False)

    def _pick_and_connect(self, fresh: bool) -> None:
        pool = self.pool
        key = self._hash_key() if pool.wants_key else None
        record = pool.pick(key, self.tried or _NO_RECORDS)
        if record is None:
            if self.tried:
                self.answer_error(502, "every backend tried failed")
            else:
                self.answer_error(503, f"no backend available in pool {pool.name}")
            return
        self.record = record
        record.active += 1
        record.total += 1
        if self.client.proxy.access_log.enabled:
            self.upstream_started = self.client.proxy.clock()
        conn = None if fresh else self.client.proxy.idle_pools[record].take()
        if conn is not None:
            self.attach(conn, reused=True)
        else:
            self.client.proxy.open_upstream(self, record, pool)

    def _hash_key(self) -> bytes:
        spec = self.pool.spec
        if spec.hash_key == "uri":
            return self.head.target
        if spec.hash_key in ("header", "cookie"):
            wanted = spec.hash_name.lower().encode() if spec.hash_key == "header" else b"cookie"
            for name, value in self.head.headers:
                if name.lower() == wanted:
                    if spec.hash_key == "header":
                        return value
                    for part in value.split(b";"):
                        k, _, v = part.strip().partition(b"=")
                        if k == spec.hash_name.encode():
                            return v
            return b""
        return self.client.client_ip.encode()

    def connect_failed(self, record: BackendRecord, reason: str) -> None:
        record.active -= 1
        self.pool.traffic_failed(record, reason)
        get_logger().warning("backend %s connect failed for client %s: %s", record.label,
                             self.client.client_ip, reason)
        if self.client.closing or self.client.exchange is not self:
            return
        if self.tried is None:
            self.tried = []
        self.tried.append(record)
        self.record = None
        if len(self.tried) <= self.pool.spec.retries:
            self._pick_and_connect(fresh=False)
        elif reason == "connect timeout":
            self.answer_error(504, "backend connect timeout")
        else:
            self.answer_error(502, f"backend connect failed: {reason}")

    def attach(self, conn: UpstreamConnection, reused: bool) -> None:
        if self.client.closing or self.client.exchange is not self:
            # The client went away while we connected: keep the fresh connection for someone else.
            if self.record is not None:
                self.record.active -= 1
                self.client.proxy.idle_pools[self.record].put(conn, self.client.proxy.now())
            return
        # Passive health hears of success at the response head, not at connect: a backend that accepts
        # connections but answers garbage must still be ejected.
        self.reused = reused
        self.upstream = conn
        conn.exchange = self
        conn.requests += 1
        conn.parser.expect(self.head.method)
        buffer = self.buffer
        self.buffer = None
        if buffer:
            conn.write(b"".join(buffer))
        if self.client.paused_upstream:
            self.client.resume_reading()  # the connect buffer is flushed

    # -- request body ---------------------------------------------------------------------------------
    def request_data(self, data: bytes) -> None:
        client = self.client
        self.body_sent += len(data)
        if self.body_sent > client.proxy.max_body_size:
            client.refuse(ProtocolError("request body is over the limit", 413))
            return
        if client.wait == WAIT_BODY:
            client.deadline = client.proxy.now() + client.proxy.body_timeout
        out = forward.encode_chunk(data) if self.head.body.kind == "chunked" else data
        if self.buffer is not None:
            self.buffer.append(out)
            self.buffered += len(out)
            if self.buffered > CONNECT_BUFFER_LIMIT:
                client.pause_reading()
        elif self.upstream is not None:
            self.upstream.write(out)

    def request_end(self, end: EndOfMessage) -> None:
        self.request_done = True
        if self.head.body.kind == "chunked":
            tail = forward.last_chunk(end.trailers)
            if self.buffer is not None:
                self.buffer.append(tail)
            elif self.upstream is not None:
                self.upstream.write(tail)
        client = self.client
        if self.response_head is None and client.wait == WAIT_BODY:
            client.set_wait(WAIT_RESPONSE, client.proxy.response_timeout)

    # -- response -------------------------------------------------------------------------------------
    def on_data(self, data: bytes) -> None:
        client = self.client
        self.sent_bytes += len(data)
        client.write(forward.encode_chunk(data) if self.response_chunked else data)

    def on_end(self, end: EndOfMessage) -> None:
        if self.interim:
            self.interim = False  # the end of a 1xx: the final response is still to come
        elif not self.tunnel:
            self._response_end(end)

    def on_head(self, head: ResponseHead) -> None:
        client = self.client
        status = head.status
        if status < 200 and status != 101:
            # Interim responses (100 Continue, 103 Early Hints) go to HTTP/1.1 clients only (RFC 9110 §15.2).
            self.interim = True
            if self.head.version == b"1.1":
                client.write(forward.response_head(head, keep_alive=True, chunked=False,
                                                   via=client.proxy.via, request=self.head))
            return
        if status == 101:
            if self.head.upgrade is None:
                self.upstream_failed("101 Switching Protocols to a request that asked for no upgrade",
                                     protocol_error=True)
                return
            self._begin_tunnel(head)
            return
        self.response_head = head
        self.status = status
        self.response_started = True
        if self.record is not None and self.pool.outliers is not None:
            self.pool.traffic_ok(self.record)
        # Backend answered before the request body ended: the client stream cannot be resynced.
        close = client.proxy.draining or not self.request_done
        request = self.head
        # What the client gets depends on the response head and on these three facts only, so a backend
        # connection remembers its last answer. The parser's memo hands out the very same head object for
        # the same bytes, and its near memo a head with the same verdict objects (status line, framing,
        # Connection options) whose field lines differ: then only `forwardable` is new, between the same
        # status line and closing lines (forward.verbatim_parts).
        variant = (4 if close else 0) | (2 if request.keep_alive else 0) | (1 if request.version == b"1.1" else 0)
        upstream = self.upstream
        out = b""
        chunked = keep = False
        if upstream is not None:
            last = upstream.reply_for
            if last is not None and variant == upstream.reply_variant:
                if head is last:
                    chunked, keep, out = upstream.reply_chunked, upstream.reply_keep, upstream.reply_bytes
                elif head.forwardable is not None and upstream.reply_prefix and _same_verdict(head, last):
                    chunked, keep = upstream.reply_chunked, upstream.reply_keep
                    out = b"".join((upstream.reply_prefix, head.forwardable, upstream.reply_suffix))
        if not out:
            chunked, keep = forward.response_framing(head, request, close=close)
            via = client.proxy.via
            out = forward.response_head(head, keep_alive=keep, chunked=chunked, via=via, request=request)
            if upstream is not None:
                upstream.reply_for = head
                upstream.reply_variant = variant
                upstream.reply_chunked = chunked
                upstream.reply_keep = keep
                upstream.reply_bytes = out
                if head.forwardable is not None:
                    upstream.reply_prefix, upstream.reply_suffix = forward.verbatim_parts(
                        head, request=request, keep_alive=keep, chunked=chunked, via=via)
                else:
                    upstream.reply_prefix = upstream.reply_suffix = b""
        self.response_chunked = chunked
        self.keep_client = keep
        # The response timeout now counts inactivity: UpstreamConnection.data_received sets the deadline
        # once per read, after its events (most small responses end in the read that began them).
        client.wait = WAIT_STREAM
        client.write(out)

    def _response_end(self, end: EndOfMessage) -> None:
        client = self.client
        if self.response_chunked:
            client.write(forward.last_chunk(end.trailers))
        upstream = self.upstream
        head = self.response_head
        self.upstream = None
        now = client.proxy.now()  # once for the idle pool and the client's next deadline
        if upstream is not None:
            # Never pool a connection whose parser is paused (a protocol switch) or mid-message.
            reusable = (head is not None and head.keep_alive and self.request_done and not upstream.closed
                        and upstream.parser.pending == 0 and not upstream.parser.paused)
            if reusable:
                upstream.pool.put(upstream, now)  # its backend's idle pool
            else:
                upstream.close()
        self._finish()
        client.exchange_done(self, self.keep_client, now)

    def _begin_tunnel(self, head: ResponseHead) -> None:
        client = self.client
        self.tunnel = True
        self.status = 101
        self.response_started = True
        client.tunnel_mode = True
        client.deadline = 0.0
        client.wait = WAIT_NONE
        client.write(forward.response_head(head, keep_alive=True, chunked=False, via=client.proxy.via,
                                           request=self.head, upgrade=True))
        upstream = self.upstream
        assert upstream is not None
        early = client.parser.take_trailing_data()
        if early:
            upstream.write(early)
        trailing = upstream.parser.take_trailing_data()
        if trailing:
            client.write(trailing)
        self._log()

    # -- failures -------------------------------------------------------------------------------------
    def upstream_failed(self, reason: str, protocol_error: bool = False) -> None:
        client = self.client
        upstream = self.upstream
        self.upstream = None
        if upstream is not None:
            upstream.abort() if protocol_error else upstream.close()
        if client.exchange is not self:
            return
        record = self.record
        stale = self.reused and not self.response_started and not protocol_error
        if record is not None and not stale:  # a kept-alive connection the backend closed is routine
            self.pool.traffic_failed(record, reason)
        if not self.response_started:
            if (self.reused and not self.retried_fresh and self.head.method in IDEMPOTENT
                    and self.head.body.kind == "none" and not protocol_error):
                # A kept-alive connection the backend had closed: try once more on a fresh one.
                self.retried_fresh = True
                if record is not None:
                    record.active -= 1
                self.buffer = [self._forward_head()]
                self._pick_and_connect(fresh=True)
                return
            self.answer_error(502, reason)
            return
        get_logger().warning("backend failed mid-response for client %s: %s", client.client_ip, reason)
        self.fail_hard(reason)

    def upstream_timeout(self) -> None:
        if self.record is not None:
            self.pool.traffic_failed(self.record, "response timeout")
        if self.response_started:
            self.fail_hard("backend read timeout")
            return
        upstream = self.upstream
        self.upstream = None
        if upstream is not None:
            upstream.abort()
        self.answer_error(504, "backend response timeout")

    def fail_hard(self, reason: str) -> None:
        """Part of the response is on the wire: the only honest signal left is to close the client."""
        self.status = self.status or 502
        upstream = self.upstream
        self.upstream = None
        if upstream is not None:
            upstream.abort()
        self._finish()
        client = self.client
        client.exchange = None
        client.close()

    def answer_error(self, status: int, reason: str) -> None:
        """Answer `status` for the backend side's failure (no response byte was sent yet), then close."""
        client = self.client
        where = f" (backend {self.record.label})" if self.record is not None else ""
        get_logger().warning("client %s: %d for %s %s%s: %s", client.client_ip, status,
                             self.head.method.decode("latin-1"), self.head.target.decode("latin-1")[:200], where,
                             reason)
        self.status = status
        upstream = self.upstream
        self.upstream = None
        if upstream is not None:
            upstream.abort()
        self._finish()
        client.exchange = None
        client.send_and_close(error_response(status))

    def client_gone(self) -> None:
        """The client disconnected: drop the backend connection unless it is cleanly between messages."""
        upstream = self.upstream
        self.upstream = None
        if upstream is not None:
            if self.tunnel:
                upstream.close()
            else:
                upstream.abort()
        if self.tunnel:
            self._release()  # logged when the tunnel opened
        else:
            self.status = self.status or 499  # nginx's "client closed request"
            self._finish()

    def abandon(self) -> None:
        upstream = self.upstream
        self.upstream = None
        if upstream is not None:
            upstream.abort()
        self._finish()

    def _release(self) -> None:
        if self.record is not None:
            self.record.active -= 1
            self.record = None

    def _finish(self) -> None:
        record = self.record
        if record is not None:
            record.active -= 1
            self.record = None
            self._log(record)
        else:
            self._log(None)

    def _log(self, record: BackendRecord | None = None) -> None:
        proxy = self.client.proxy
        if not proxy.access_log.enabled:
            return
        now = proxy.clock()
        backend = record.spec.address if record is not None else (
            self.record.spec.address if self.record is not None else "-")
        proxy.access_log.request(self.client.client_ip, self.head, self.status, self.sent_bytes, backend,
                                 now - self.upstream_started if self.upstream_started else -1.0,
                                 now - self.started, time.time())
