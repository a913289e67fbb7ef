"""One HTTP/2 stream as the client side of an exchange (rsp.proxy.session_api.ClientSide).

    RequestOpened (a Request from the pseudo-headers, rsp.http2.heads) -> H2Stream.begin -> an Exchange made
    for that Request (rsp.proxy.h2_stream.exchange_for_request): routing, filters (when the listener has
    any), pools, retries, error pages, access log, exactly as for an HTTP/1 client; the request head
    serialised for the HTTP/1 backend by rsp.http1.serialise
    the exchange's response -> send_head / send_data / send_end / reset (the Downstream interface,
    rsp.pipeline.phases) -> HEADERS / DATA / RST_STREAM frames on the stream (rsp.http2.server)

No HTTP/1 bytes are made or parsed for the client's side of it.

Flow control both ways: a response chunk the connection cannot take yet (send_data returned False) pauses
the backend's reading until StreamWritable; request-body bytes are acknowledged to the client (WINDOW_UPDATE,
RFC 9113 §6.9) when the exchange wrote them to the backend connection (body_written), and held back while
the exchange asked for no more (pause_reading: the backend side is not taking them).

Compiled with the session (native_modules.txt): it derives from the compiled ClientSide, and a compiled
class has no interpreted subclasses.
"""

from __future__ import annotations

from typing import Final, Protocol

from rsp.errors import ProtocolError
from rsp.http1.events import CHUNKED, END_OF_MESSAGE, NO_BODY, EndOfMessage, Framing, RequestHead, ResponseHead
from rsp.http1.forward import VIA_PSEUDONYM, RequestContext
from rsp.http1.serialise import error_reply, local_response
from rsp.http2.server import ServerConnection
from rsp.logs import get_logger
from rsp.pipeline.messages import UNKNOWN_LENGTH, Header, Request, Response
from rsp.proxy.exchange import Exchange
from rsp.proxy.session_api import ClientSide, ExchangeSide, UpstreamSide
from rsp.proxy.session_state import SessionState
from rsp.proxy.waits import WAIT_BODY, WAIT_NONE, WAIT_RESPONSE, WAIT_STREAM
from rsp.routes.router import host_only

log = get_logger()
# The Via field for each HTTP/1 version a backend answers with, made once (the same object every response:
# its hash is cached for the HPACK encoder's per-field memo).
_VIA_FIELDS: Final = {version: (b"via", version + b" " + VIA_PSEUDONYM) for version in (b"1.0", b"1.1")}


class StreamOwner(Protocol):
    """What a stream needs of its HTTP/2 connection (rsp.proxy.h2_session.Http2Session)."""

    def flush_soon(self) -> None: ...
    def stream_done(self, stream_id: int) -> None: ...


class H2Stream(ClientSide):
    """One stream: its Request into an Exchange, the exchange's response onto the HTTP/2 connection."""

    __slots__ = ("conn", "done", "head_request", "id", "owner", "paused_backend", "proxy", "unacked")

    def __init__(self, owner: StreamOwner, conn: ServerConnection, proxy: SessionState, stream_id: int,
                 peer: tuple[object, ...], context: RequestContext | None = None) -> None:
        """`context`: the connection's RequestContext (its streams share one peer), made here when None."""
        self.owner = owner
        self.conn = conn
        self.proxy = proxy
        self.id = stream_id
        self.peer = peer
        self.client_ip = str(peer[0]) if peer else ""
        self.context = context if context is not None else proxy.request_context(self.client_ip)
        self.closing = False
        self.exchange: ExchangeSide | None = None
        self.wait = WAIT_NONE
        self.deadline = 0.0
        self.paused_upstream = False
        self.reply_keep_alive = True  # (a stream's end never closes its connection)
        self.requests = 1
        self.done = False  # the response ended or the stream was reset
        self.head_request = False
        self.unacked = 0  # request-body bytes written to the backend while the exchange asked for no more
        # The backend connection whose reading this stream paused (its response outran the client's window).
        self.paused_backend: UpstreamSide | None = None
        proxy.stats.http2_streams += 1

    # -- the request (from Http2Session's events) -----------------------------------------------------
    def begin(self, request: Request) -> None:
        proxy = self.proxy
        proxy.connections.add(self)  # the proxy's tick checks its deadline, drain and stop see it
        self.head_request = request.method == b"HEAD"
        if request.body_length > proxy.max_body_size:
            self.refuse(ProtocolError(f"request body of {request.body_length} bytes is over the limit", 413))
            return
        if request.body_length:
            self.set_wait(WAIT_BODY, proxy.body_timeout)
        else:
            self.set_wait(WAIT_RESPONSE, proxy.response_timeout)
        exchange, host = exchange_for_request(self, proxy, request)
        self.exchange = exchange
        if host is None:
            exchange.start()
            return
        # A host the route store has no pool for yet: the exchange waits (its body is buffered as while
        # connecting) until the store calls Exchange.route_to, without blocking the loop.
        lookup = proxy.host_lookup
        assert lookup is not None
        lookup(exchange, host)

    def body(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is not None:
            exchange.request_data(data)
        else:
            self.conn.acknowledge(self.id, len(data))  # answered already: the bytes are dropped

    def end(self, trailers: list[Header]) -> None:
        exchange = self.exchange
        if exchange is not None:
            # (the shared END_OF_MESSAGE without trailers: a frozen dataclass costs ~2,000 instructions to make)
            exchange.request_end(EndOfMessage(tuple(trailers)) if trailers else END_OF_MESSAGE)

    def writable(self) -> None:
        """The connection took the response bytes that paused the backend's reading (StreamWritable)."""
        backend = self.paused_backend
        if backend is not None:
            self.paused_backend = None
            backend.resume_reading()

    def cancelled(self) -> None:
        """The client reset the stream, a limit did, or the connection ended: the exchange stops."""
        if self.closing:
            return
        self._over()
        exchange = self.exchange
        self.exchange = None
        if exchange is not None:
            exchange.client_gone()

    # -- Downstream -----------------------------------------------------------------------------------
    def send_head(self, response: Response, close: bool = False) -> None:
        if self.done:
            return
        origin = response.origin
        if self.proxy.via and isinstance(origin, ResponseHead):
            # The backend's response passed through rsp over HTTP/`version` (RFC 9110 §7.6.3), as HTTP/1
            # clients are told (rsp.http1.forward); on a copy when a filter can see the response (its log
            # phase sees what the filters left), else added in place (the response was made for this send).
            via = _VIA_FIELDS.get(origin.version) or (b"via", origin.version + b" " + VIA_PSEUDONYM)
            proxy = self.proxy
            if proxy.header_filters or proxy.body_filters or proxy.log_filters:
                response = Response(response.status, [*response.headers, via], response.body_length,
                                    response.reason)
            else:
                response.headers.append(via)
        self.conn.send_head(self.id, response)
        self.owner.flush_soon()

    def send_data(self, data: bytes) -> None:
        if self.done:
            return
        if not self.conn.send_data(self.id, data):
            exchange = self.exchange
            upstream = exchange.upstream if exchange is not None else None
            if upstream is not None:
                upstream.pause_reading()  # until StreamWritable
                self.paused_backend = upstream
        self.owner.flush_soon()

    def send_end(self, trailers: list[Header]) -> None:
        if self.done:
            return
        self.done = True
        self.conn.send_end(self.id, trailers)
        self.owner.flush_soon()

    def reset(self, reason: str) -> None:
        """The exchange failed after its head was sent (or before, with no way to answer): RST_STREAM."""
        if not self.done:
            self.done = True
            self.conn.reset(self.id, reason)
            self.owner.flush_soon()
        self._over()

    def refuse(self, error: ProtocolError) -> None:
        """Answer a request rsp will not forward with the error's status (the stream only; the connection
        goes on), or reset the stream when its response already began."""
        exchange = self.exchange
        self.exchange = None
        if exchange is not None:
            exchange.abandon()  # counted there, with no status ("other")
            if exchange.response_started:
                self.reset(str(error))
                return
        else:
            self.proxy.stats.responses.count(error.status)
        log.info("client %s: %d %s", self.client_ip, error.status, error)
        self.proxy.access_log.refused(self.client_ip, error.status)
        reply = error_reply(error.status)
        self.send_head(local_response(error.status, reply.response.headers, reply.body, self.head_request))
        if not self.head_request:
            self.send_data(reply.body)
        self.send_end([])
        self._over()

    # -- the exchange's life --------------------------------------------------------------------------
    def set_wait(self, wait: int, timeout: float) -> None:
        self.wait = wait
        self.deadline = self.proxy.now() + timeout if timeout else 0.0

    def stream_continues(self, timeout: float) -> None:
        proxy = self.proxy
        self.deadline = proxy.now() + (timeout or proxy.response_timeout)

    def exchange_done(self, exchange: ExchangeSide, keep_alive: bool, now: float) -> None:
        if self.exchange is exchange:
            self.exchange = None
        self._over()

    def _over(self) -> None:
        """The stream's exchange is over (answered, reset or cancelled): off the proxy's lists."""
        backend = self.paused_backend
        if backend is not None:
            # The response's last bytes paused it and it went back to its idle pool (or closed): an idle
            # connection reads, or a backend's close would go unseen and the next exchange on it would hang.
            self.paused_backend = None
            backend.resume_reading()
        if not self.closing:
            self.closing = True
            self.deadline = 0.0
            self.proxy.connections.discard(self)
            self.owner.stream_done(self.id)

    def pause_reading(self) -> None:
        self.paused_upstream = True

    def resume_reading(self) -> None:
        self.paused_upstream = False
        unacked = self.unacked
        if unacked:
            self.unacked = 0
            if not self.done:
                self.conn.acknowledge(self.id, unacked)
                self.owner.flush_soon()

    def body_written(self, size: int) -> None:
        if self.paused_upstream:
            self.unacked += size
        elif not self.done:
            self.conn.acknowledge(self.id, size)
            self.owner.flush_soon()

    # -- the proxy's housekeeping ---------------------------------------------------------------------
    def on_timeout(self) -> None:
        wait = self.wait
        self.deadline = 0.0
        exchange = self.exchange
        if wait == WAIT_BODY:
            if exchange is not None and exchange.response_started:
                exchange.fail_hard("client body timeout")
            else:
                self.refuse(ProtocolError("request body not received in time", 408))
        elif wait in (WAIT_RESPONSE, WAIT_STREAM) and exchange is not None:
            exchange.upstream_timeout()

    def is_idle(self) -> bool:
        return self.exchange is None

    def close(self) -> None:
        if not self.done:
            self.reset("closed")
        self._over()

    def abort(self) -> None:
        exchange = self.exchange
        self.exchange = None
        if exchange is not None:
            exchange.abandon()
        self.reset("aborted")


def exchange_for_request(client: ClientSide, proxy: SessionState,
                         request: Request) -> tuple[Exchange, str | None]:
    """An exchange for a neutral request (an HTTP/2 stream's, rsp.http2.heads), its response written through
    `client`'s Downstream methods, and the host the route store must look up before it starts (else None).
    No HTTP/1 bytes are made or parsed for it: the head the exchange reads (method, target, version b"2",
    Host, framing) is built from `request`, and `request` is serialised for the backend
    (rsp.http1.serialise.serialise_request), the framing recomputed from `body_length`: a count as
    Content-Length, a body of unknown length chunked (RFC 9112 §7.1). With filters the exchange runs the
    phases (routing is among them, after rewrite); without, it is routed here, as an HTTP/1 client's
    (rsp.proxy.client.ClientConnection.start_exchange), and no filter run is made."""
    if proxy.filtered:
        return filtered_exchange(client, proxy, request), None
    head = _request_head(request)
    router = proxy.router
    name = router.match(request.authority, request.target, request.method)
    if name is None:
        host_pools = proxy.host_pools
        if host_pools is not None:
            # A route store: hosts no static rule matches are routed by it (rsp.routestore).
            host = host_only(request.authority)
            found = host_pools.get(host)
            if found is None:
                return Exchange(client, proxy, head, proxy.pools[router.default], request=request), host
            return Exchange(client, proxy, head, found, request=request), None
        name = router.default
    return Exchange(client, proxy, head, proxy.pools[name], request=request), None



def filtered_exchange(client: ClientSide, proxy: SessionState, request: Request) -> Exchange:
    """An exchange for a neutral request that runs the filter phases (routing among them), whatever the
    listener has: an HTTP/2 stream's on a listener with filters, or a filter's background request
    (rsp.proxy.background, which starts its run from the balancer phase)."""
    return Exchange(client, proxy, _request_head(request), proxy.pools[proxy.router.default], filtered=True,
                    request=request)


def _request_head(request: Request) -> RequestHead:
    """The head an exchange reads (method, target, version b"2", Host, framing), built from `request`."""
    length = request.body_length
    body = CHUNKED if length == UNKNOWN_LENGTH else (Framing("length", length) if length > 0 else NO_BODY)
    return RequestHead(request.method, request.target, request.version, tuple(request.headers), True, body,
                       host=request.authority)
