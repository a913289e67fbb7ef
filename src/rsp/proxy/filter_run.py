"""One exchange's run through a listener's filter chain (rsp.pipeline.phases): the ExchangeView its filters see.

Only an exchange on a listener with filters has one (HttpProxy.filtered); without filters the exchange
runs as before the pipeline existed and no Request, Response or run is ever built.

The order, and where rsp's own steps sit among the filters (docs/architecture.md, "The request pipeline"):

    rewrite filters -> routing (Host, path, method of the possibly rewritten request; the route store) ->
    access filters -> [per try: balancer filters -> pick (the pool's balancer, or the filter's peer) ->
    the head serialised (forward_request, or serialise_request when a filter changed it) -> connect] ->
    header_filter -> body_filter per chunk, then last=True -> log

Routing and the pick are rsp.proxy.filter_routing's (`route`, `pick_target`); the run calls them in their places.

A request phase's filter may answer (a LocalReply: the remaining request phases and the backend are
skipped; the response phases run over the reply) or SUSPEND: the run remembers where it stopped and the
exchange waits, its client's body buffered as while connecting, until the filter calls resume() or
answer(), on the loop. A filter that raises is logged and answered 500 (or, once the response began, the
client connection is reset): a filter's bug never takes the worker down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from rsp.errors import PipelineError
from rsp.http1.events import ResponseHead
from rsp.http1.serialise import (
    error_reply,
    local_response,
    request_of,
    response_of,
)
from rsp.logs import get_logger
from rsp.pipeline.messages import LocalReply, Request, Response
from rsp.pipeline.phases import ACCESS, BALANCER, REWRITE, ExchangeView, Filter, Suspend, Verdict
from rsp.pipeline.try_times import TryTiming
from rsp.proxy.changed_heads import backend_head, mark_changed, request_key, response_key
from rsp.proxy.filter_routing import pick_target, route
from rsp.proxy.held_body import HeldBody
from rsp.proxy.pools import PoolRuntime
from rsp.proxy.session_api import ExchangeSide
from rsp.proxy.session_state import SessionState
from rsp.proxy.waits import WAIT_RESPONSE, WAIT_STREAM
from rsp.upstream.records import BackendRecord

# Where a run is (`stage`): in a request phase, waiting for the route store, past the request phases
# (connecting or streaming), or done (answered locally, finished, or failed).
_IN_REWRITE: Final = 0
_IN_ACCESS: Final = 1
_IN_BALANCER: Final = 2
_ROUTING: Final = 3
_FORWARDING: Final = 4
_DONE: Final = 5
_STAGE_PHASE: Final = {_IN_REWRITE: REWRITE, _IN_ACCESS: ACCESS, _IN_BALANCER: BALANCER}


class FilterRun:
    """The ExchangeView of one exchange (rsp.pipeline.phases.ExchangeView) and where it is in its phases.

    What no filter asks for is never built: the Request on first access of `request` (routing and the
    forwarded head use the parsed head until then), the Response only when the chain has header or body
    filters (otherwise the response goes out by the exchange's direct path, head cache and all)."""

    __slots__ = (
        "_ctx",
        "_record",
        "_request",
        "_request_was",
        "_response",
        "_response_head",
        "exchange",
        "failed",
        "held",
        "index",
        "logged",
        "more_tries",
        "peer",
        "pool",
        "proxy",
        "stage",
        "started",
        "streamed",
        "suspended",
        "tries_timing",
        "upstream_status",
    )

    def __init__(self, exchange: ExchangeSide, proxy: SessionState, request: Request | None = None) -> None:
        """`request`: the neutral request the client's codec made (HTTP/2), else None (made from the parsed
        HTTP/1 head when a filter asks)."""
        self.exchange = exchange
        self.proxy = proxy
        self._request = request
        self._request_was: tuple[object, ...] = request_key(request) if request is not None else ()
        self._response: Response | None = None
        # The backend's head when the response took the direct path (no header or body filter): `response`
        # is made from it if a filter asks (log), after the fact.
        self._response_head: ResponseHead | None = None
        self._ctx: dict[str, object] | None = None
        self.pool = exchange.pool.name
        self.peer: tuple[str, int] | None = None
        self.more_tries = 0
        # The loop iteration's time, as nginx's cached time that $request_time starts from; now() is exact.
        self.started = proxy.now()
        self._record: BackendRecord | None = None  # the backend of the last try
        self.upstream_status = 0
        self.stage = _IN_REWRITE
        self.index = 0  # the next filter of the current request phase
        self.suspended = False
        self.streamed = False  # answer_head began an answer whose body answer_data sends
        self.logged = False
        self.failed = False  # a filter raised: no filter runs again for this exchange but log
        self.held = HeldBody(exchange)  # the request body held during the request phases
        self.tries_timing = TryTiming(proxy.tries_timed)

    # -- ExchangeView ---------------------------------------------------------------------------------
    @property
    def request(self) -> Request:
        request = self._request
        if request is None:
            request = self._request = request_of(self.exchange.head, self.proxy.proto)
            self._request_was = request_key(request)
        return request

    @request.setter
    def request(self, request: Request) -> None:
        self.request  # noqa: B018 -- the original, to compare with
        self._request = request
        request.changed = True

    @property
    def response(self) -> Response | None:
        response = self._response
        if response is None and self._response_head is not None:
            response = self._response = response_of(self._response_head)
        return response

    @response.setter
    def response(self, response: Response | None) -> None:
        self._response = response

    @property
    def ctx(self) -> dict[str, object]:
        ctx = self._ctx
        if ctx is None:
            ctx = self._ctx = {}
        return ctx

    @ctx.setter
    def ctx(self, ctx: dict[str, object]) -> None:
        self._ctx = ctx

    @property
    def upstream_addr(self) -> str:
        record = self._record
        return record.spec.address if record is not None else ""

    @property
    def client_ip(self) -> str:
        return self.exchange.client.client_ip

    @property
    def client_port(self) -> int:
        peer = self.exchange.client.peer
        port = peer[1] if len(peer) > 1 else 0
        return port if isinstance(port, int) else 0

    @property
    def server_port(self) -> int:
        return self.proxy.server_port

    @property
    def tries(self) -> int:
        return len(self.exchange.tried or ())

    @property
    def last_failure(self) -> str:
        return self.exchange.last_failure

    @property
    def status(self) -> int:
        return self.exchange.status

    def now(self) -> float:
        return self.proxy.clock()

    def background(self, request: Request, ctx: dict[str, object]) -> None:
        """Start `request` on this listener with no client (rsp.proxy.background), from this client's address,
        to the pool this exchange goes to now (routing and the filters so far decided it)."""
        exchange = self.exchange
        self.proxy.background(request, ctx, exchange.client.client_ip, exchange.pool, self.pool)

    @property
    def upstream_timings(self) -> tuple[tuple[float, float, float], ...]:
        return self.tries_timing.durations(self.proxy.now())

    def resume(self) -> None:
        """Go on after the filter that returned SUSPEND."""
        if self.suspended and self._current():
            self.suspended = False
            self._run_request_phases()

    def answer(self, reply: LocalReply) -> None:
        """Answer with `reply` after the filter that returned SUSPEND."""
        if self.suspended and self._current():
            self.suspended = False
            self.stage = _DONE
            self.send_local(reply, close=False)

    def answer_head(self, response: Response) -> None:
        """Answer with `response` after the filter that returned SUSPEND, its body to come by answer_data."""
        if self.suspended and self._current():
            self.suspended = False
            self.stage = _DONE
            self.streamed = True
            out = self.header_phase(response)
            if out is None:
                self.streamed = False
                return
            exchange = self.exchange
            exchange.local_head(out, False)
            exchange.client.wait = WAIT_STREAM  # its deadline now moves with every part (local_data)

    def answer_data(self, chunk: bytes, last: bool) -> None:
        """A part of the body of the answer answer_head began (`last`: the end, with the final part)."""
        if not self.streamed or not self._current():
            self.streamed = False
            return
        out = self.body_phase(chunk, last)
        if out is None:
            self.streamed = False  # a filter failed: the client connection was reset
            return
        if last:
            self.streamed = False
            self.exchange.local_end(out)
        else:
            self.exchange.local_data(out)

    def follow(self, source: ExchangeView) -> None:
        """This exchange's answer streams `source`'s response (a cache's waiter): once `source` goes on without
        its client, this one's client paces it (Exchange.client_behind)."""
        if isinstance(source, FilterRun) and source is not self:
            self.exchange.source = source.exchange

    def answer_reset(self, reason: str) -> None:
        """The answer answer_head began cannot be finished: the client learns as from a backend's failure."""
        if self.streamed and self._current():
            self.streamed = False
            self.exchange.fail_hard(reason)

    # -- the request body (rsp.proxy.held_body holds it) ----------------------------------------------------
    def read_body(self, done: Callable[[], None]) -> bool:
        return self.held.read(done)

    def body_data(self) -> bytes | None:
        return self.held.data()

    def set_body(self, data: bytes) -> None:
        length = self.held.replace(data, self.request)  # (first: the request, made now, sets _request_was)
        self._request_was = (*self._request_was[:4], length)  # a change the filter may make (_request_ready)

    def discard_body(self) -> None:
        length = self.held.discard(self.request)  # (first: the request, made now, sets _request_was)
        self._request_was = (*self._request_was[:4], length)

    def take_data(self, data: bytes) -> bool:
        """Client body bytes: True when the run holds or drops them, False when the exchange forwards them."""
        return self.held.take_data(data, self.stage < _FORWARDING)

    def take_end(self, trailers: tuple[tuple[bytes, bytes], ...]) -> bool:
        """The end of the client's body: True when the run keeps it (held body, or discarded)."""
        return self.held.take_end(trailers, self.stage < _FORWARDING)

    # -- the request phases ---------------------------------------------------------------------------
    def begin(self) -> None:
        self._run_request_phases()

    def begin_background(self, pool: PoolRuntime, pool_name: str) -> None:
        """A background request (rsp.proxy.background) to `pool`, the pool of the exchange whose filter made
        it: that filter gave it as it should go (rewritten, routed), and it is the filter's own, so neither the
        rewrite nor the access filters run (nginx runs no access handlers for a subrequest), nor routing; the
        balancer filters, the response phases and log do."""
        self._set_pool(pool)
        self.pool = pool_name
        self.stage = _IN_BALANCER
        self.index = 0
        self.peer = None
        self._run_request_phases()

    def _current(self) -> bool:
        """The exchange is still its client's current one (the client may have left while a filter waited)."""
        exchange = self.exchange
        return not exchange.client.closing and exchange.client.exchange is exchange

    def _filters(self, stage: int) -> tuple[Filter, ...]:
        proxy = self.proxy
        if stage == _IN_REWRITE:
            return proxy.rewrite_filters
        if stage == _IN_ACCESS:
            return proxy.access_filters
        return proxy.balancer_filters

    def _run_request_phases(self) -> None:
        """Run filters from (stage, index) on, with routing after rewrite and the pick after balancer, until
        the exchange connects, a filter answers or a filter suspends."""
        while True:
            stage = self.stage
            filters = self._filters(stage)
            while self.index < len(filters):
                flt = filters[self.index]
                self.index += 1
                try:
                    verdict = self._call(flt, stage)
                except Exception as exc:  # a filter's bug must not take the worker down
                    self._filter_failed(flt, _STAGE_PHASE[stage], exc)
                    return
                if verdict is None:
                    continue
                if isinstance(verdict, Suspend):
                    self.suspended = True
                    return  # resume() or answer() goes on
                self.stage = _DONE
                self.send_local(verdict, close=False)
                return
            self.index = 0
            if stage == _IN_REWRITE:
                # rsp's routing (rsp.proxy.filter_routing.route). Marked first: the route store, when it has to
                # look the host up, may answer (routed()) before route() returns.
                self.stage = _ROUTING
                name = route(self.proxy, self.exchange, self._request)
                if name is None:
                    return  # routed() goes on
                self.stage = _IN_ACCESS
                self.pool = name
            elif stage == _IN_ACCESS:
                if not self._request_ready():
                    return
                self.stage = _IN_BALANCER
                self.peer = None
                self.tries_timing.next_try()
            else:
                self.stage = _FORWARDING
                self._pick()
                return

    def _call(self, flt: Filter, stage: int) -> Verdict:
        if stage == _IN_REWRITE:
            return flt.rewrite(self)
        if stage == _IN_ACCESS:
            return flt.access(self)
        return flt.balancer(self)

    def routed(self, pool: PoolRuntime | None, status: int) -> None:
        """The route store's answer for a request that waited for its host (Exchange.route_to)."""
        if self.stage != _ROUTING:
            return
        if pool is None:
            self.stage = _DONE
            self.exchange.answer_error(status, "no route for this host")
            return
        self._set_pool(pool)
        self.stage = _IN_ACCESS
        self.index = 0
        self._run_request_phases()

    def _set_pool(self, pool: PoolRuntime) -> None:
        self.pool = pool.name
        self.exchange.pool = pool

    def _request_ready(self) -> bool:
        """After access: mark the request changed when it is, and refuse what a filter may not change."""
        request = self._request
        if request is None:
            return True
        mark_changed(request, self._request_was)
        if request.body_length != self._request_was[4]:
            # The body comes from the client as it was framed; nothing here re-frames it.
            self._fail_request("a filter changed the request's body_length")
            return False
        return True

    def _pick(self) -> None:
        """After the balancer filters: this try's backend, the filter's peer or the pool's pick
        (rsp.proxy.filter_routing.pick_target); a pool or peer that cannot be is answered 500."""
        exchange = self.exchange
        try:
            record = pick_target(self.proxy, exchange, self.pool, self.peer)
        except PipelineError as exc:
            self._fail_request(str(exc))
            return
        exchange.extra_tries = self.more_tries
        self._fill_head()
        if record is not None:
            exchange.connect_record(record, fresh=False)
        else:
            exchange.pick_from_pool(fresh=False)

    def _fill_head(self) -> None:
        """The forwarded head in the place the exchange kept for it in its connect buffer."""
        buffer = self.exchange.buffer
        if buffer is not None:
            buffer[0] = self.head_bytes()
            self.held.flush(buffer)

    def head_bytes(self) -> bytes:
        """The request head for the backend (rsp.proxy.changed_heads.backend_head)."""
        return backend_head(self.exchange, self._request, self._request_was)

    def next_try(self) -> None:
        """A retry (Exchange._pick_and_connect): the balancer filters again, seeing tries and last_failure."""
        self.stage = _IN_BALANCER
        self.index = 0
        self.peer = None
        self.tries_timing.next_try()  # each try sets its own (ngx.balancer.set_timeouts)
        self._run_request_phases()

    def answer_error(self, status: int) -> None:
        """rsp's own error answer (502/503/504, no route) for this exchange, through the response phases."""
        self.stage = _DONE
        self.send_local(error_reply(status), close=True)

    def connected_to(self, record: BackendRecord) -> float:
        """A try begins, to `record` (the previous one, if any, ended now): its connect timeout (0: the
        pool's); its read timeout goes to the exchange."""
        self._record = record
        connect, self.exchange.read_timeout = self.tries_timing.begin(self.proxy.now())
        return connect

    def attached(self) -> None:
        """This try has its backend connection (a pooled one: at once); a read timeout of its own counts the
        wait for the response head from now."""
        self.tries_timing.connected(self.proxy.now())
        read = self.exchange.read_timeout
        client = self.exchange.client
        if read and client.wait == WAIT_RESPONSE:
            client.deadline = self.proxy.now() + read

    def set_timeouts(self, connect: float, send: float, read: float) -> None:
        """This try's timeouts, in seconds (0: the pool's or the listener's). rsp has no send timeout of its
        own (a backend that stops reading stalls the client's body, which body_timeout bounds): `send` is
        kept, not applied."""
        self.tries_timing.timeouts = (connect, send, read)

    def _fail_request(self, reason: str) -> None:
        get_logger().error("client %s: %s", self.exchange.client.client_ip, reason)
        self.stage = _DONE
        self.send_local(error_reply(500), close=True)

    def _filter_failed(self, flt: Filter, phase: str, exc: Exception) -> None:
        """A request-phase filter raised: answer 500 (its other phases are skipped)."""
        get_logger().error("filter %s failed in %s: %s: %s", flt.name, phase, type(exc).__name__, exc)
        self.failed = True
        self.stage = _DONE
        self.send_local(error_reply(500), close=True)

    # -- the response phases --------------------------------------------------------------------------
    def send_local(self, reply: LocalReply, close: bool) -> None:
        """Answer with `reply` through header_filter and body_filter (a filter's answer, or an error)."""
        exchange = self.exchange
        head_request = exchange.head.method == b"HEAD"
        made = local_response(reply.response.status, reply.response.headers, reply.body, head_request)
        made.lines = reply.response.lines  # (a cache hit's lines, already written: Response.lines)
        response = self.header_phase(made)
        if response is None:
            return
        # The head and the body leave in one send, not two (a system call saved on every cache hit); what a
        # pipelined next request writes meanwhile queues behind them, in order.
        client = exchange.client
        client.cork()
        try:
            exchange.local_head(response, close)
            out = self.body_phase(reply.body if not head_request else b"", True)
            if out is not None:
                exchange.local_end(out)
        finally:
            client.uncork()

    def backend_head(self, head: ResponseHead) -> Response | None:
        """The backend's response head through header_filter: the response to send, or None when a filter
        failed (the exchange was answered 500 instead)."""
        self.upstream_status = head.status
        self.tries_timing.header(self.proxy.now())
        self._response_head = None
        return self.header_phase(response_of(head))

    def direct_head(self, head: ResponseHead) -> None:
        """The backend's response head went to the client by the direct path (no header or body filter)."""
        self.upstream_status = head.status
        self.tries_timing.header(self.proxy.now())
        self._response_head = head

    def header_phase(self, response: Response) -> Response | None:
        """`response` through the header filters: what to send, or None when one failed (answered 500)."""
        self.response = response
        if self.failed or not self.proxy.header_filters:
            return response  # (the 500 for a failed filter: no filter runs over it)
        status, reason = response.status, response.reason
        was = response_key(response)
        for flt in self.proxy.header_filters:
            try:
                flt.header_filter(self)
            except Exception as exc:  # see _filter_failed
                get_logger().error("filter %s failed in header_filter: %s: %s", flt.name, type(exc).__name__, exc)
                self.failed = True
                self.stage = _DONE
                self.exchange.abort_response()
                self.send_local(error_reply(500), close=True)
                return None
        # A filter may have put another Response in its place (its fields are then all new).
        replaced = self._response
        if replaced is not None and replaced is not response:
            response = replaced
            response.changed = True
        if not response.changed and response_key(response) != was:
            response.changed = True
        if response.status != status and response.reason is reason:
            response.reason = b""  # the phrase of the new status
        return response

    def body_phase(self, chunk: bytes, last: bool) -> bytes | None:
        """`chunk` through the body filters (None when one failed: the client connection was reset)."""
        if self.failed:
            return chunk
        for flt in self.proxy.body_filters:
            try:
                chunk = flt.body_filter(self, chunk, last)
            except Exception as exc:  # see _filter_failed
                get_logger().error("filter %s failed in body_filter: %s: %s", flt.name, type(exc).__name__, exc)
                self.failed = True
                self.exchange.fail_hard(f"filter {flt.name} failed in body_filter")
                return None
        return chunk

    def keeps_going(self) -> bool:
        """The client left: whether a filter lets the exchange go on without it (Filter.client_left). Only
        past the request phases (the request as it went to the backend is whole), and never after a filter
        failed."""
        if self.failed or self.stage != _FORWARDING:
            return False
        for flt in self.proxy.keep_filters:
            try:
                if flt.client_left(self):
                    return True
            except Exception as exc:  # see _filter_failed: the exchange then ends, as without the filter
                get_logger().error("filter %s failed in client_left: %s: %s", flt.name, type(exc).__name__, exc)
                self.failed = True
                return False
        return False

    def log_phase(self) -> None:
        if self.logged:
            return
        self.logged = True
        self.stage = _DONE
        self.tries_timing.end(self.proxy.now())
        for flt in self.proxy.log_filters:
            try:
                flt.log(self)
            except Exception as exc:  # see _filter_failed
                get_logger().error("filter %s failed in log: %s: %s", flt.name, type(exc).__name__, exc)

