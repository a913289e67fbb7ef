"""Background requests: an exchange a filter starts for itself, with no client waiting for its response.

A filter calls `ExchangeView.background(request, ctx)` (rsp.pipeline.phases); the session (FilterRun) hands it
to its listener (HttpProxy.background), which starts it here, on the next loop iteration, as an exchange of
its own, to the pool the starting exchange goes to: the balancer filters, the pools and their idle
connections, retries, timeouts and error answers, the response phases and log, as a client's request
(rsp.proxy.h2_stream.filtered_exchange makes the exchange from the neutral Request, as for an HTTP/2
stream). The rewrite and access filters and routing do not run again (FilterRun.begin_background): the filter
gives the request as it should go, already rewritten and routed, and a request of its own needs no admission
(nginx runs no access handlers for a subrequest either). Its client side is a
`BackgroundClient`: a ClientSide whose Downstream writes go nowhere, so the filters see the response (the
cache stores it) and nothing is sent. It is what nginx's `proxy_cache_background_update` subrequest and
Varnish's background fetch are to their caches.

Lua's cosockets (rsp.lua.cosocket) open sockets of their own and speak whatever the handler writes; a
background request instead goes through the pipeline, so a backend's pool, balancing, health and TLS apply.

It counts and logs as a request from the address of the client whose exchange started it (its access log
line and X-Forwarded-For say that client), and a drain waits for it like for any live exchange.

The same client side takes over an exchange whose client went away when a filter lets it go on
(Filter.client_left, `detach`): the response cache keeps a fetch going that it is storing or streaming to
other exchanges (nginx keeps reading a response it caches after its client closed; Varnish's fetch never
depended on the client). From then on the exchange is a background one: read at the pace of the slowest of
the exchanges streaming from it (ExchangeView.follow; at the backend's when none does), under the read
timeout, its response through the filters and nowhere else, and it ends as soon as no filter needs it any
longer (asked after each read of the response).
Compiled with the session (native_modules.txt): it derives from the compiled ClientSide.
"""

from __future__ import annotations

from rsp.errors import ProtocolError
from rsp.logs import get_logger
from rsp.pipeline.messages import Header, Request, Response
from rsp.proxy.exchange import Exchange
from rsp.proxy.filter_run import FilterRun
from rsp.proxy.h2_stream import filtered_exchange
from rsp.proxy.pools import PoolRuntime
from rsp.proxy.session_api import ClientSide, ExchangeSide
from rsp.proxy.session_state import SessionState
from rsp.proxy.waits import WAIT_NONE, WAIT_RESPONSE, WAIT_STREAM

log = get_logger()


class BackgroundClient(ClientSide):
    """The client side of a background exchange: it takes the response and drops it."""

    __slots__ = ("ctx", "kept", "pool", "pool_name", "proxy", "request")

    def __init__(self, proxy: SessionState, request: Request, ctx: dict[str, object], client_ip: str,
                 pool: PoolRuntime, pool_name: str) -> None:
        self.proxy = proxy
        self.request = request
        self.ctx = ctx
        self.pool = pool
        self.pool_name = pool_name
        self.client_ip = client_ip
        self.peer = (client_ip, 0)
        self.context = proxy.request_context(client_ip)
        self.closing = False
        self.exchange: ExchangeSide | None = None
        self.wait = WAIT_NONE
        self.deadline = 0.0
        self.paused_upstream = False
        self.reply_keep_alive = True
        self.requests = 1
        self.kept: FilterRun | None = None  # the run of an exchange whose client went away (detach)

    def start(self) -> None:
        """Run the exchange (a loop callback: the exchange that asked for it has gone on meanwhile)."""
        proxy = self.proxy
        if proxy.draining:
            return  # stopping: nothing new starts
        proxy.connections.add(self)  # the proxy's tick checks the response timeout; drain waits for it
        self.set_wait(WAIT_RESPONSE, proxy.response_timeout)
        exchange = filtered_exchange(self, proxy, self.request)
        run = exchange.run
        assert run is not None  # filtered_exchange always runs the phases
        run.ctx = self.ctx
        self.exchange = exchange
        run.begin_background(self.pool, self.pool_name)  # from the balancer filters on

    # -- Downstream: the response goes nowhere --------------------------------------------------------
    def send_head(self, response: Response, close: bool = False) -> None:
        return None

    def send_data(self, data: bytes) -> None:
        return None

    def send_end(self, trailers: list[Header]) -> None:
        return None

    def reset(self, reason: str) -> None:
        self._over()

    def refuse(self, error: ProtocolError) -> None:
        log.info("background request %r refused: %s", self.request, error)
        exchange = self.exchange
        self.exchange = None
        if exchange is not None:
            exchange.abandon()
        self._over()

    # -- the exchange's life --------------------------------------------------------------------------
    def set_wait(self, wait: int, timeout: float) -> None:
        self.wait = wait
        self.deadline = self.proxy.now() + timeout if timeout else 0.0

    def stream_continues(self, timeout: float) -> None:
        """A read of the response was handled (the exchange goes on): the read timeout starts again. A detached
        exchange that no filter needs any longer (Filter.client_left) ends here, between reads."""
        kept = self.kept
        if kept is not None and not kept.keeps_going():
            self.abort()
            return
        proxy = self.proxy
        self.deadline = proxy.now() + (timeout or proxy.response_timeout)

    def exchange_done(self, exchange: ExchangeSide, keep_alive: bool, now: float) -> None:
        if self.exchange is exchange:
            self.exchange = None
        self._over()

    def _over(self) -> None:
        if not self.closing:
            self.closing = True
            self.deadline = 0.0
            self.proxy.connections.discard(self)

    def pause_reading(self) -> None:
        return None  # no request body to hold back

    def resume_reading(self) -> None:
        return None

    # -- the proxy's housekeeping ---------------------------------------------------------------------
    def on_timeout(self) -> None:
        self.deadline = 0.0
        exchange = self.exchange
        if self.wait in (WAIT_RESPONSE, WAIT_STREAM) and exchange is not None:
            exchange.upstream_timeout()

    def is_idle(self) -> bool:
        return self.exchange is None

    def close(self) -> None:
        self.abort()

    def abort(self) -> None:
        exchange = self.exchange
        self.exchange = None
        if exchange is not None:
            exchange.abandon()
        self._over()

    # -- tunnel: a background request asks for no upgrade ---------------------------------------------
    def tunnel_to_client(self, data: bytes) -> None:
        return None

    def tunnel_eof_from_upstream(self) -> None:
        return None

    def tunnel_closed(self) -> None:
        return None


def detach(proxy: SessionState, exchange: Exchange) -> bool:
    """`exchange`'s client went away and a filter lets the exchange go on (FilterRun.keeps_going): a
    BackgroundClient becomes its client side, so the response is read to its end through the filters and goes
    nowhere. The backend connection is read again if the client that left had paused it (it was behind)."""
    run = exchange.run
    if run is None or proxy.draining:
        return False  # (stopping: nothing goes on that drain would have to wait for)
    gone = exchange.client
    client = BackgroundClient(proxy, run.request, run.ctx, gone.client_ip, exchange.pool, run.pool)
    client.kept = run
    client.exchange = exchange
    proxy.connections.add(client)  # the tick applies the read timeout; drain waits for it
    if gone.wait in (WAIT_RESPONSE, WAIT_STREAM) and gone.deadline:
        client.wait, client.deadline = gone.wait, gone.deadline
    else:  # (connecting: the connector's own timeout runs first)
        client.set_wait(WAIT_RESPONSE, exchange.read_timeout or proxy.response_timeout)
    exchange.client = client
    exchange.h1 = None
    exchange.keep_client = False
    exchange.detached = True
    upstream = exchange.upstream
    if upstream is not None:  # from now on paced by the slowest follower (Exchange.follower_behind)
        if exchange.followers_behind > 0:
            upstream.pause_reading()
        else:
            upstream.resume_reading()
    log.info("client %s went away; its request %s %r goes on for the filters", gone.client_ip,
             run.request.method.decode("latin-1"), run.request.target[:200])
    return True


def start_background(proxy: SessionState, request: Request, ctx: dict[str, object], client_ip: str,
                     pool: PoolRuntime, pool_name: str) -> None:
    """Start `request` as a background exchange of `proxy` to `pool` (named `pool_name` by the filters) on the
    loop's next iteration, `ctx` its ctx."""
    proxy.loop.call_soon(BackgroundClient(proxy, request, ctx, client_ip, pool, pool_name).start)
