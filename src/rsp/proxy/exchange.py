"""HTTP mode's exchange: one request and its response, from routing to the last byte.

Pick a backend (its pool's balancer), take an idle connection to it or open one (HttpProxy.open_upstream),
send the head (and the body as it comes), forward the response, and return the backend connection to its
idle pool when the response is complete and both sides allow it.

Failures before any response byte reached the client are answered with a status (502 bad gateway, 503 no
backend, 504 timeout); after, the client connection is closed, the only honest signal left. A request
whose backend connection dies before any response byte is sent again when that is safe
(rsp.proxy.retry_policy); a death that is not the routine close of a kept-alive connection counts as a
failure of that backend (passive health hears of it). A 101 turns the exchange into a tunnel
(rsp.proxy.tunnel).
"""

from __future__ import annotations

from typing import Final

from rsp.errors import ProtocolError
from rsp.http1 import forward
from rsp.http1.error_pages import error_response
from rsp.http1.events import EndOfMessage, RequestHead, ResponseHead
from rsp.http1.serialise import error_page, response_of
from rsp.logs import get_logger
from rsp.pipeline.messages import Request, Response
from rsp.proxy.changed_heads import unfiltered_head
from rsp.proxy.filter_run import FilterRun
from rsp.proxy.hash_key import balance_key
from rsp.proxy.outcome import count_outcome, log_access
from rsp.proxy.pacing import pace_by_client, pace_by_follower, stop_following
from rsp.proxy.pools import PoolRuntime
from rsp.proxy.retry_policy import RETRY_FRESH, RETRY_OTHER, next_try
from rsp.proxy.session_api import ClientSide, ExchangeSide, Http1ClientSide, UpstreamSide
from rsp.proxy.session_state import SessionState
from rsp.proxy.tunnel import open_tunnel, uncached_head
from rsp.proxy.waits import WAIT_BODY, WAIT_RESPONSE, WAIT_STREAM
from rsp.upstream.records import BackendRecord

# Request body bytes held while the backend connection is being opened, before the client is paused.
CONNECT_BUFFER_LIMIT: Final = 256 * 1024

# What an exchange excludes from its first pick: nothing (a list is made only when a backend fails).
_NO_RECORDS: Final[tuple[BackendRecord, ...]] = ()


class Exchange(ExchangeSide):
    """One request and its response, from routing to the last byte. Its client connection and its backend
    connection are a ClientSide and an UpstreamSide (rsp.proxy.session_api); `proxy` is what the listener's
    session shares."""

    __slots__ = (
        "body_sent",
        "buffered",
        "downstream",
        "heard",
        "interim",
        "keep_client",
        "length_due",
        "proxy",
        "record",
        "request",
        "response_chunked",
        "response_head",
        "retried_fresh",
        "reused",
        "run",
        "sent_bytes",
        "started",
        "upstream_started",
    )

    def __init__(self, client: ClientSide, proxy: SessionState, head: RequestHead, pool: PoolRuntime,
                 filtered: bool = False, request: Request | None = None) -> None:
        """`filtered`: the listener has filters (HttpProxy.chain): the exchange runs its phases (self.run),
        and its head is forwarded once they decided it; else it is forwarded as it came, now. `request`: the
        neutral request an HTTP/2 stream made (exchange_for_request), serialised for the backend
        (rsp.http1.serialise) instead of forwarding HTTP/1 bytes; its response goes through the stream's
        Downstream (send_head/send_data/send_end), with or without filters."""
        self.client = client
        h1 = client if isinstance(client, Http1ClientSide) else None
        self.h1 = h1
        self.proxy = proxy
        self.head = head
        self.pool = pool
        self.record: BackendRecord | None = None
        self.upstream: UpstreamSide | None = None
        self.tried: list[BackendRecord] | None = None  # the backends that failed this request, when any
        self.request = request
        self.run: FilterRun | None = FilterRun(self, proxy, request) if filtered else None
        # The forwarded head, then the body as it comes, until the backend connection is ready. With filters,
        # the head's place is kept until the request phases are done (FilterRun._pick fills it).
        self.buffer: list[bytes] | None = [b"" if filtered else unfiltered_head(self, request)]
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
        self.heard = False  # a response head (even interim) came from the backend
        self.status = 0
        self.sent_bytes = 0
        self.started = self.proxy.clock() if self.proxy.access_log.enabled else 0.0  # (only the access log's)
        self.upstream_started = 0.0
        self.extra_tries = 0  # tries a balancer filter allowed beyond the pool's retries
        self.read_timeout = 0.0  # this try's, when a balancer filter set one (ngx.balancer.set_timeouts)
        self.last_failure = ""  # why the last try failed (the balancer filters read it)
        # The response goes through the client's Downstream interface (header or body filters, a local reply,
        # or a client that is not HTTP/1); else by the direct writes of the head cache.
        self.downstream = h1 is None or (filtered and proxy.response_filtered)
        self.length_due = -1  # with filters: the Content-Length the client was sent, when it was one
        self.source: ExchangeSide | None = None
        self.behind = False
        self.followers_behind = 0
        self.detached = False

    # -- backend selection and connection -------------------------------------------------------------
    def start(self) -> None:
        run = self.run
        if run is not None:
            run.begin()  # rewrite, routing, access, balancer; then pick_from_pool or connect_record
        else:
            self._pick_and_connect(fresh=False)

    def route_to(self, pool: PoolRuntime | None, status: int) -> None:
        """The route store decided for a request that waited for its host's route: go on with `pool`, or
        answer `status` when there is no route. Nothing if the client left meanwhile."""
        if self.client.closing or self.client.exchange is not self:
            return
        if self.run is not None:
            self.run.routed(pool, status)
            return
        if pool is None:
            self.answer_error(status, "no route for this host")
            return
        self.pool = pool
        self.start()

    def _pick_and_connect(self, fresh: bool) -> None:
        run = self.run
        if run is not None and not fresh:
            run.next_try()  # the balancer filters see every try
            return
        self.pick_from_pool(fresh)

    def pick_from_pool(self, fresh: bool) -> None:
        """This try's backend from the pool's balancer (excluding those that failed this request)."""
        pool = self.pool
        key = balance_key(self.pool.spec, self.head, self.client.client_ip) if pool.wants_key else None
        record = pool.pick(key, self.tried or _NO_RECORDS)
        if record is None:
            if self.tried:
                self.answer_error(502, "every backend tried failed")
            else:
                self.answer_error(503, f"no backend available in pool {pool.name}")
            return
        self.connect_record(record, fresh)

    def connect_record(self, record: BackendRecord, fresh: bool) -> None:
        """Send this try to `record` (of self.pool): an idle connection to it, unless `fresh`, or a new one."""
        self.record = record
        connect_timeout = self.run.connected_to(record) if self.run is not None else 0.0  # (0: the pool's)
        record.active += 1
        record.total += 1
        proxy = self.proxy
        # The access log's exact clock when it is on; else the poller's, for the response-time histogram.
        self.upstream_started = proxy.clock() if proxy.access_log.enabled else proxy.now()
        conn = None if fresh else self.proxy.idle_pools[record].take()
        if conn is not None:
            self.attach(conn, reused=True)
        else:
            self.proxy.open_upstream(self, record, self.pool, connect_timeout)

    def connect_failed(self, record: BackendRecord, reason: str) -> None:
        record.active -= 1
        record.stats.connect_failures += 1
        self.pool.traffic_failed(record, reason)
        get_logger().warning("backend %s connect failed for client %s: %s", record.label,
                             self.client.client_ip, reason)
        if self.client.closing or self.client.exchange is not self:
            return
        if self.tried is None:
            self.tried = []
        self.tried.append(record)
        self.record = None
        self.last_failure = reason
        if len(self.tried) <= self.pool.spec.retries + self.extra_tries:
            self.pool.stats.retries += 1
            self._pick_and_connect(fresh=False)
        elif reason == "connect timeout":
            self.answer_error(504, "backend connect timeout")
        else:
            self.answer_error(502, f"backend connect failed: {reason}")

    def attach(self, conn: UpstreamSide, reused: bool) -> None:
        if self.client.closing or self.client.exchange is not self:
            # The client went away while we connected: keep the fresh connection for someone else.
            if self.record is not None:
                self.record.active -= 1
                conn.release(self.proxy.now())
            return
        # Passive health hears of success at the response head, not at connect (a backend may accept, then fail)
        self.reused = reused
        self.upstream = conn
        if self.run is not None:
            self.run.attached()  # $upstream_connect_time
        conn.exchange = self
        conn.requests += 1
        conn.parser.expect(self.head.method)
        buffer = self.buffer
        self.buffer = None
        if buffer:
            conn.write(b"".join(buffer))
            waited = self.body_sent - (self.run.held.acked if self.run is not None else 0)  # (held bytes: acked)
            if waited > 0:
                self.client.body_written(waited)  # the body that waited for the connection
        if self.client.paused_upstream:
            self.client.resume_reading()  # the connect buffer is flushed

    # -- request body ---------------------------------------------------------------------------------
    def request_data(self, data: bytes) -> None:
        client = self.client
        self.body_sent += len(data)
        if self.body_sent > self.proxy.max_body_size:
            client.refuse(ProtocolError("request body is over the limit", 413))
            return
        if client.wait == WAIT_BODY:
            client.deadline = self.proxy.now() + self.proxy.body_timeout
        if self.run is not None and self.run.take_data(data):  # held for the request phases, or discarded
            return
        out = forward.encode_chunk(data) if self.head.body.kind == "chunked" else data
        if self.buffer is not None:
            self.buffer.append(out)
            self.buffered += len(out)
            if self.buffered > CONNECT_BUFFER_LIMIT:
                client.pause_reading()
        elif self.upstream is not None:
            self.upstream.write(out)
            client.body_written(len(data))

    def request_end(self, end: EndOfMessage) -> None:
        self.request_done = True
        if (self.run is None or not self.run.take_end(end.trailers)) and self.head.body.kind == "chunked":
            tail = forward.last_chunk(end.trailers)
            if self.buffer is not None:
                self.buffer.append(tail)
            elif self.upstream is not None:
                self.upstream.write(tail)
        client = self.client
        if self.response_head is None and client.wait == WAIT_BODY:
            client.set_wait(WAIT_RESPONSE, self.read_timeout or self.proxy.response_timeout)

    # -- response -------------------------------------------------------------------------------------
    def on_data(self, data: bytes) -> None:
        if self.downstream:
            run = self.run
            out = run.body_phase(data, False) if run is not None else data
            if out:
                self.sent_bytes += len(out)
                if 0 <= self.length_due < self.sent_bytes:
                    self._length_broken()
                    return
                self.client.send_data(out)
            return
        h1 = self.h1
        assert h1 is not None  # the direct path is HTTP/1's only
        self.sent_bytes += len(data)
        h1.write(forward.encode_chunk(data) if self.response_chunked else data)

    def on_end(self, end: EndOfMessage) -> None:
        if self.interim:
            self.interim = False  # the end of a 1xx: the final response is still to come
        elif not self.tunnel:
            self._response_end(end)

    def on_head(self, head: ResponseHead) -> None:
        client = self.client
        self.heard = True
        status = head.status
        if status < 200 and status != 101:
            # Interim responses (100 Continue, 103 Early Hints) go to HTTP/1.1 clients only (RFC 9110 §15.2).
            self.interim = True
            if self.downstream:
                interim = Response(status, [], 0, head.reason)
                interim.origin = head
                client.send_head(interim)
            elif self.head.version == b"1.1" and self.h1 is not None:
                self.h1.write(uncached_head(head, self.head, self.proxy.via, upgrade=False))
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
        if self.downstream:
            self._filtered_head(head)
            return
        run = self.run
        if run is not None:
            run.direct_head(head)
        # Backend answered before the request body ended: the client stream cannot be resynced.
        close = self.proxy.draining or not self.request_done
        request = self.head
        upstream = self.upstream
        via = self.proxy.via
        if upstream is not None:
            # A backend repeats its response head: its connection keeps the last one it sent on.
            cache = upstream.replies
            out = cache.head_bytes(head, request.version, request.keep_alive, close, via, False)
            reply = cache.reply
            assert reply is not None
        else:
            reply = forward.forward_response(head, forward.ResponseContext(request.version, request.keep_alive,
                                                                           close, via, False))
            out = reply.data
        chunked = reply.chunked
        keep = reply.keep_alive
        self.response_chunked = chunked
        self.keep_client = keep
        # The response timeout now counts inactivity: UpstreamConnection.data_received sets the deadline
        # once per read, after its events (most small responses end in the read that began them).
        client.wait = WAIT_STREAM
        h1 = self.h1
        assert h1 is not None  # (a client of another protocol has self.downstream set)
        h1.write(out)

    def _filtered_head(self, head: ResponseHead) -> None:
        """The backend's response head through header_filter (when the listener has filters), then to the
        client through its Downstream."""
        run = self.run
        response = run.backend_head(head) if run is not None else response_of(head)
        if response is None:
            return  # a filter failed: answered 500 instead
        self.status = response.status
        self.length_due = response.body_length if response.body_length > 0 else -1
        client = self.client
        client.wait = WAIT_STREAM  # as in on_head
        client.send_head(response)
        self.keep_client = client.reply_keep_alive

    def _length_broken(self) -> None:
        """A body filter changed the length of a body sent with Content-Length (it should have set
        body_length = UNKNOWN_LENGTH in header_filter): the client cannot find the end; reset it."""
        get_logger().error("client %s: the body filters sent %d bytes of a body of Content-Length %d (a filter "
                           "that changes the length sets response.body_length = UNKNOWN_LENGTH in header_filter)",
                           self.client.client_ip, self.sent_bytes, self.length_due)
        self.fail_hard("body filter changed the length")

    def local_head(self, response: Response, close: bool) -> None:
        """The head of a local reply (a filter's answer or rsp's error page) to the client; `close` the
        connection after it."""
        self.abort_response()
        self.status = response.status
        self.response_started = True
        self.downstream = True
        client = self.client
        client.send_head(response, close)
        self.keep_client = client.reply_keep_alive and not close

    def local_end(self, body: bytes) -> None:
        """The body of a local reply (after body_filter) and its end: the exchange is complete."""
        client = self.client
        if body:
            self.sent_bytes += len(body)
            client.send_data(body)
        client.send_end([])
        now = self.proxy.now()
        self._finish()
        client.exchange_done(self, self.keep_client, now)

    def local_data(self, data: bytes) -> None:
        """A part of a streamed local reply's body (FilterRun.answer_data): the client's stream deadline moves."""
        client = self.client
        client.stream_continues(0.0)  # a local reply: the listener's response_timeout
        if data:
            self.sent_bytes += len(data)
            client.send_data(data)

    def abort_response(self) -> None:
        """Drop the backend connection (its response is not sent: a local reply replaces it)."""
        upstream = self.upstream
        self.upstream = None
        if upstream is not None:
            upstream.abort()

    def _response_end(self, end: EndOfMessage) -> None:
        client = self.client
        if self.downstream:
            run = self.run
            out = run.body_phase(b"", True) if run is not None else b""
            if out is None:
                return  # a filter failed: the client connection was reset
            if out:
                self.sent_bytes += len(out)
                client.send_data(out)
            if self.length_due >= 0 and self.sent_bytes != self.length_due:
                self._length_broken()
                return
            client.send_end(list(end.trailers))
        elif self.response_chunked and self.h1 is not None:
            self.h1.write(forward.last_chunk(end.trailers))
        upstream = self.upstream
        head = self.response_head
        self.upstream = None
        now = self.proxy.now()  # once for the idle pool and the client's next deadline
        if upstream is not None:
            upstream.response_done(head is not None and head.keep_alive and self.request_done, now)
        self._finish()
        client.exchange_done(self, self.keep_client, now)

    def _begin_tunnel(self, head: ResponseHead) -> None:
        """A 101 to an upgrade: the exchange is counted and logged now, and released when the tunnel closes."""
        client = self.h1
        upstream = self.upstream
        assert client is not None and upstream is not None  # only HTTP/1 requests ask for an upgrade
        self.tunnel = True
        self.status = 101
        self.response_started = True
        self.proxy.stats.responses.count(101)
        if self.record is not None:
            self.record.stats.responses.count(101)
        open_tunnel(client, upstream, uncached_head(head, self.head, self.proxy.via, upgrade=True))
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
        self.last_failure = reason
        # The connection died before any response byte (a reset or an EOF, not a protocol error).
        silent = not self.heard and not protocol_error
        stale = self.reused and silent
        if record is not None and not stale:  # a kept-alive connection the backend closed is routine
            self.pool.traffic_failed(record, reason)
        if not self.response_started:
            # When a request is sent again, and where: rsp.proxy.retry_policy.
            another = (record is not None
                       and len(self.tried or _NO_RECORDS) < self.pool.spec.retries + self.extra_tries)
            verdict = next_try(self.head.method, self.head.body.kind != "none", silent, stale, self.retried_fresh,
                               another)
            if verdict == RETRY_FRESH:
                self.retried_fresh = True
                self._resend(fresh=True)
                return
            if verdict == RETRY_OTHER and record is not None:
                if self.tried is None:
                    self.tried = []
                self.tried.append(record)
                self.pool.stats.retries += 1
                self._resend(fresh=False)
                return
            self.answer_error(502, reason)
            return
        get_logger().warning("backend failed mid-response for client %s: %s", client.client_ip, reason)
        self.fail_hard(reason)

    def _resend(self, fresh: bool) -> None:
        """Send the request again (idempotent, no body): on a new connection to the same backend when
        `fresh`, else to a backend not in `tried`."""
        record = self.record
        if record is not None:
            record.active -= 1
            self.record = None
        run = self.run
        self.buffer = [run.head_bytes() if run is not None else unfiltered_head(self, self.request)]
        self._pick_and_connect(fresh=fresh)

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
        filtered = self.run is not None or self.h1 is None  # (a stream is reset, not its connection closed)
        self._finish()
        client = self.client
        client.exchange = None
        if filtered:
            client.reset(reason)
        else:
            client.close()

    def answer_error(self, status: int, reason: str) -> None:
        """Answer `status` for the backend side's failure (no response byte was sent yet), then close."""
        client = self.client
        where = f" (backend {self.record.label})" if self.record is not None else ""
        get_logger().warning("client %s: %d for %s %s%s: %s", client.client_ip, status,
                             self.head.method.decode("latin-1"), self.head.target.decode("latin-1")[:200], where,
                             reason)
        self.status = status
        run = self.run
        if not self.response_started:
            if run is not None:
                run.answer_error(status)
                return
            if self.h1 is None:  # an HTTP/2 stream without filters: rsp's error page through its Downstream
                response, body = error_page(status, self.head.method == b"HEAD")
                self.local_head(response, True)
                self.local_end(body)
                return
        upstream = self.upstream
        self.upstream = None
        if upstream is not None:
            upstream.abort()
        self._finish()
        client.exchange = None
        if self.h1 is not None:
            self.h1.send_and_close(error_response(status))
        else:
            client.reset(reason)

    def client_gone(self) -> None:
        """The client disconnected: drop the backend connection unless it is cleanly between messages, or a
        filter lets the exchange go on without its client (Filter.client_left: a response cache still storing
        the response, or streaming it to other exchanges), its client side then a background one
        (SessionState.detach)."""
        run = self.run
        if (run is not None and self.downstream and not self.tunnel and self.request_done
                and run.keeps_going() and self.proxy.detach(self)):
            return
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

    def client_behind(self, behind: bool) -> None:
        pace_by_client(self, behind)

    def follower_behind(self, behind: bool) -> None:
        pace_by_follower(self, behind)

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
        stop_following(self)
        record = self.record
        if record is not None:
            record.active -= 1
            self.record = None
        count_outcome(self.proxy, self.pool, record, self.status, self.upstream_started)
        self._log(record)

    def _log(self, record: BackendRecord | None = None) -> None:
        run = self.run
        if run is not None:
            run.log_phase()
            # The run refers to the exchange: dropping the exchange's reference breaks the cycle, so both are
            # freed by reference counting, not by the cyclic garbage collector (docs/performance.md).
            self.run = None
        log_access(self.proxy, self.client.client_ip, self.head, self.status, self.sent_bytes,
                   record if record is not None else self.record, self.upstream_started, self.started)
