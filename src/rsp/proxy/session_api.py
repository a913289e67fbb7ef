"""The interfaces the parts of HTTP mode's session talk through, so that their imports point one way.

    http_proxy -> client -> exchange -> filter_run -> session_state -> http_upstream -> session_api -> session_io

A part names another part it does not create only through one of these three bases: the client connection
as the exchange, its backend connection and the proxy see it (`ClientSide`); the exchange as the client,
the backend connection and the route store see it (`ExchangeSide`); the backend connection as the exchange
sees it (`UpstreamSide`). `ClientConnection`, `Exchange` and `UpstreamConnection` derive from them.

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
    """One client connection, as the rest of the session sees it (rsp.proxy.client.ClientConnection).

    Besides the attributes below it is the Downstream of its exchanges (rsp.pipeline.phases.Downstream:
    send_head, send_data, send_end, reset), which exchanges with filters write through.
    """

    __slots__ = ("client_ip", "closing", "context", "deadline", "exchange", "forwarded", "parser", "paused_upstream",
                 "peer", "reply_keep_alive", "requests", "tunnel_mode", "wait")

    client_ip: str
    peer: tuple[object, ...]
    closing: bool
    wait: int
    deadline: float
    paused_upstream: bool
    tunnel_mode: bool
    reply_keep_alive: bool
    requests: int  # requests received on this connection
    exchange: ExchangeSide | None
    forwarded: RequestHeadCache
    context: RequestContext
    parser: RequestParser

    # -- output ---------------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def cork(self) -> None:
        raise NotImplementedError

    def uncork(self) -> None:
        raise NotImplementedError

    def send_head(self, response: Response, close: bool = False) -> None:
        raise NotImplementedError

    def send_data(self, data: bytes) -> None:
        raise NotImplementedError

    def send_end(self, trailers: list[Header]) -> None:
        raise NotImplementedError

    def reset(self, reason: str) -> None:
        raise NotImplementedError

    def send_and_close(self, data: bytes) -> None:
        raise NotImplementedError

    def refuse(self, error: ProtocolError) -> None:
        """Answer a request rsp will not forward with the error's status, then close."""
        raise NotImplementedError

    # -- the exchange's life --------------------------------------------------------------------------
    def set_wait(self, wait: int, timeout: float) -> None:
        raise NotImplementedError

    def stream_continues(self) -> None:
        """Bytes of the response arrived: the backend has response_timeout from now for its next ones."""
        raise NotImplementedError

    def exchange_done(self, exchange: ExchangeSide, keep_alive: bool, now: float) -> None:
        raise NotImplementedError

    def pause_reading(self) -> None:
        raise NotImplementedError

    def resume_reading(self) -> None:
        raise NotImplementedError

    # -- the proxy's housekeeping ---------------------------------------------------------------------
    def on_timeout(self) -> None:
        raise NotImplementedError

    def is_idle(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    # -- tunnel (WebSocket after 101) -----------------------------------------------------------------
    def tunnel_to_client(self, data: bytes) -> None:
        raise NotImplementedError

    def tunnel_eof_from_upstream(self) -> None:
        raise NotImplementedError

    def tunnel_closed(self) -> None:
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

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class ExchangeSide:
    """One exchange, as its client connection, its backend connection, its filter run (rsp.proxy.filter_run)
    and the route store see it (rsp.proxy.exchange.Exchange)."""

    __slots__ = ("buffer", "client", "extra_tries", "head", "last_failure", "pool", "request_done", "response_started",
                 "status", "tried", "tunnel", "upstream")

    client: ClientSide
    head: RequestHead
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

    def abort_response(self) -> None:
        raise NotImplementedError
