"""The interfaces the parts of HTTP mode's session talk through, so that their imports point one way.

    http_proxy -> client -> exchange -> filter_run -> session_state -> http_upstream -> session_api -> session_io

A part names another part it does not create only through one of these bases: the client side of an exchange
as the exchange, its backend connection and the proxy see it (`ClientSide`, protocol-neutral; an HTTP/1
connection's own parts in `Http1ClientSide`); the exchange as the client,
the backend connection and the route store see it (`ExchangeSide`); the backend connection as the exchange
sees it (`UpstreamSide`). `ClientConnection`, `H2Stream`, `Exchange` and `UpstreamConnection` derive from them.

They are base classes, not typing Protocols, on purpose: compiled (native_modules.txt), a call through a base
is the same native vtable call as through the concrete class and an attribute the same struct field, where a
Protocol-typed call goes through Python's generic call (docs/performance.md: that cost +3 % once). Each
declares only what the others use; the concrete class says what it does.
"""

from __future__ import annotations

from rsp.errors import ProtocolError
from rsp.http1.events import EndOfMessage, RequestHead, ResponseHead
from rsp.http1.forward import RequestContext
from rsp.http1.parser import RequestParser, ResponseParser
from rsp.pipeline.messages import Header, Response
from rsp.proxy.pools import PoolRuntime
from rsp.proxy.reply_cache import RequestHeadCache, ResponseHeadCache
from rsp.transport.stream import NativeProtocol
from rsp.upstream.records import BackendRecord


class ClientSide(NativeProtocol):
    """The client side of one exchange, whatever its protocol, as the exchange, its backend connection and the
    proxy see it: an HTTP/1 client connection (Http1ClientSide, rsp.proxy.client.ClientConnection) or one
    HTTP/2 stream (rsp.proxy.h2_stream.H2Stream).

    It is the Downstream of its exchanges (rsp.pipeline.phases.Downstream: send_head, send_data, send_end,
    reset): an exchange whose response goes through the response phases, and every exchange of an HTTP/2
    stream, writes its response only through these; the codec frames it for its protocol.
    """

    __slots__ = ("client_ip", "closing", "context", "deadline", "exchange", "paused_upstream", "peer",
                 "reply_keep_alive", "requests", "wait")

    client_ip: str
    peer: tuple[object, ...]
    closing: bool
    wait: int
    deadline: float
    paused_upstream: bool
    reply_keep_alive: bool
    requests: int  # requests received on this connection
    exchange: ExchangeSide | None
    context: RequestContext  # what forwarding a request to a backend reads besides its head

    # -- output (Downstream) --------------------------------------------------------------------------
    def cork(self) -> None:
        """Collect writes until uncork() (a codec that batches its output by itself needs nothing here)."""

    def uncork(self) -> None:
        """Send what cork() collected."""

    def send_head(self, response: Response, close: bool = False) -> None:
        raise NotImplementedError

    def send_data(self, data: bytes) -> None:
        raise NotImplementedError

    def send_end(self, trailers: list[Header]) -> None:
        raise NotImplementedError

    def reset(self, reason: str) -> None:
        raise NotImplementedError

    def refuse(self, error: ProtocolError) -> None:
        """Answer a request rsp will not forward with the error's status (HTTP/1 then closes)."""
        raise NotImplementedError

    # -- the exchange's life --------------------------------------------------------------------------
    def set_wait(self, wait: int, timeout: float) -> None:
        raise NotImplementedError

    def stream_continues(self, timeout: float) -> None:
        """Bytes of the response arrived: the backend has `timeout` (0: response_timeout) from now for its next
        ones (a balancer filter's read timeout for its try, ExchangeSide.read_timeout)."""
        raise NotImplementedError

    def exchange_done(self, exchange: ExchangeSide, keep_alive: bool, now: float) -> None:
        raise NotImplementedError

    def pause_reading(self) -> None:
        """Send no more request body for now (the backend side is not taking it)."""
        raise NotImplementedError

    def resume_reading(self) -> None:
        raise NotImplementedError

    def body_written(self, size: int) -> None:
        """`size` request-body bytes went to the backend connection. HTTP/2 gives the client that much flow
        control credit back (WINDOW_UPDATE, RFC 9113 §6.9); HTTP/1's reading needs nothing."""

    # -- the proxy's housekeeping ---------------------------------------------------------------------
    def on_timeout(self) -> None:
        raise NotImplementedError

    def is_idle(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    # -- tunnel (WebSocket after 101; HTTP/1 only, an HTTP/2 request never asks for an upgrade) ----------
    def tunnel_to_client(self, data: bytes) -> None:
        raise NotImplementedError

    def tunnel_eof_from_upstream(self) -> None:
        raise NotImplementedError

    def tunnel_closed(self) -> None:
        raise NotImplementedError


class Http1ClientSide(ClientSide):
    """What only an HTTP/1 client connection has: its parser (a tunnel takes its trailing bytes), the cache
    of its last forwarded head (a keep-alive client repeats its head), the tunnel mode, and writes of HTTP/1
    bytes (the direct path of an exchange without response filters, error pages)."""

    __slots__ = ("forwarded", "parser", "tunnel_mode")

    tunnel_mode: bool
    forwarded: RequestHeadCache
    parser: RequestParser

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def send_and_close(self, data: bytes) -> None:
        raise NotImplementedError


class UpstreamSide(NativeProtocol):
    """One backend connection, as the exchange it serves sees it (rsp.proxy.http_upstream.UpstreamConnection)."""

    __slots__ = ("closed", "exchange", "parser", "record", "replies", "requests")

    record: BackendRecord
    exchange: ExchangeSide | None
    parser: ResponseParser
    replies: ResponseHeadCache
    requests: int
    closed: bool

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def write_eof(self) -> None:
        raise NotImplementedError

    def pause_reading(self) -> None:
        raise NotImplementedError

    def resume_reading(self) -> None:
        raise NotImplementedError

    def release(self, now: float) -> None:
        """Back to its backend's idle pool (or closed when the pool is full or it served its quota)."""
        raise NotImplementedError

    def response_done(self, keep_alive: bool, now: float) -> None:
        """The response ended: back to the idle pool if the connection can carry another (`keep_alive`: both
        messages allowed it), else closed."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class ExchangeSide:
    """One exchange, as its client connection, its backend connection, its filter run (rsp.proxy.filter_run)
    and the route store see it (rsp.proxy.exchange.Exchange)."""

    __slots__ = ("behind", "buffer", "client", "detached", "extra_tries", "followers_behind", "h1", "head",
                 "last_failure", "pool", "read_timeout", "request_done", "response_started", "source", "status",
                 "tried", "tunnel", "upstream")

    client: ClientSide
    h1: Http1ClientSide | None  # the client when it is an HTTP/1 connection (the direct path writes to it)
    head: RequestHead  # an HTTP/2 stream's is built from its Request (rsp.proxy.h2_stream.exchange_for_request)
    pool: PoolRuntime
    upstream: UpstreamSide | None
    tunnel: bool
    request_done: bool
    response_started: bool
    status: int
    buffer: list[bytes] | None  # the head and body bytes kept until the backend connection is ready
    tried: list[BackendRecord] | None  # the backends that failed this request, when any
    last_failure: str
    extra_tries: int
    read_timeout: float  # this try's response timeout when a balancer filter set one (0: the proxy's)
    # Pacing a fetch by the exchanges streaming from it (ExchangeView.follow): the exchange whose response this
    # one streams, whether this one's client is behind (counted in the source's followers_behind), and whether
    # this exchange's client went away and it goes on without (rsp.proxy.background.detach), its backend then
    # read only while none of its followers' clients is behind.
    source: ExchangeSide | None
    behind: bool
    followers_behind: int
    detached: bool

    # -- from the client connection -------------------------------------------------------------------
    def start(self) -> None:
        raise NotImplementedError

    def request_data(self, data: bytes) -> None:
        raise NotImplementedError

    def request_end(self, end: EndOfMessage) -> None:
        raise NotImplementedError

    def upstream_timeout(self) -> None:
        raise NotImplementedError

    def fail_hard(self, reason: str) -> None:
        raise NotImplementedError

    def client_gone(self) -> None:
        raise NotImplementedError

    def abandon(self) -> None:
        raise NotImplementedError

    def client_behind(self, behind: bool) -> None:
        """The client cannot take more now (True), or can again (False)."""
        raise NotImplementedError

    # -- from an exchange that streams this one's response (ExchangeView.follow) ----------------------
    def follower_behind(self, behind: bool) -> None:
        raise NotImplementedError

    # -- from the backend connection ------------------------------------------------------------------
    def attach(self, conn: UpstreamSide, reused: bool) -> None:
        raise NotImplementedError

    def connect_failed(self, record: BackendRecord, reason: str) -> None:
        raise NotImplementedError

    def on_head(self, head: ResponseHead) -> None:
        raise NotImplementedError

    def on_data(self, data: bytes) -> None:
        raise NotImplementedError

    def on_end(self, end: EndOfMessage) -> None:
        raise NotImplementedError

    def upstream_failed(self, reason: str, protocol_error: bool = False) -> None:
        raise NotImplementedError

    # -- from the route store -------------------------------------------------------------------------
    def route_to(self, pool: PoolRuntime | None, status: int) -> None:
        """Go on with `pool`, or answer `status` when it is None."""
        raise NotImplementedError

    # -- from its filter run --------------------------------------------------------------------------
    def pick_from_pool(self, fresh: bool) -> None:
        raise NotImplementedError

    def connect_record(self, record: BackendRecord, fresh: bool) -> None:
        raise NotImplementedError

    def answer_error(self, status: int, reason: str) -> None:
        raise NotImplementedError

    def local_head(self, response: Response, close: bool) -> None:
        raise NotImplementedError

    def local_end(self, body: bytes) -> None:
        raise NotImplementedError

    def local_data(self, data: bytes) -> None:
        """A part of a local reply's body sent as it comes (a streamed answer, FilterRun.answer_head)."""
        raise NotImplementedError

    def abort_response(self) -> None:
        raise NotImplementedError
