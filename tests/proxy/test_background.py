"""What the session gives a filter beyond the verdicts, on fakes (rsp.proxy.background, rsp.proxy.filter_run):
a background request of its own through the pipeline (ExchangeView.background), whose response reaches the
filters and no client; and a streamed answer to a suspended exchange (answer_head / answer_data / answer_reset)."""

from __future__ import annotations

from collections.abc import Callable

from rsp.pipeline.messages import UNKNOWN_LENGTH, Request, Response
from rsp.pipeline.phases import SUSPEND, ExchangeView, Filter, Verdict
from rsp.proxy.background import BackgroundClient
from support.fake_session import FakeSession

Make = Callable[..., FakeSession]
GET_X = b"GET /x HTTP/1.1\r\nHost: example\r\n\r\n"
OK_5 = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def loop_turn(s: FakeSession) -> None:
    """One turn of the session's loop (the fakes never run it): what call_soon queued runs."""
    s.loop.call_soon(s.loop.stop)
    s.loop.run_forever()


class Refresher(Filter):
    """Starts a background GET /bg (ctx {"bg": True}) from every client request's access; records what its
    phases see of the background one."""

    def __init__(self, target: bytes = b"/bg") -> None:
        self.target = target
        self.seen: list[tuple[str, object]] = []

    def rewrite(self, exchange: ExchangeView) -> Verdict:
        if exchange.ctx.get("bg"):
            self.seen.append(("rewrite", exchange.request.target))
        return None

    def access(self, exchange: ExchangeView) -> Verdict:
        if exchange.ctx.get("bg"):
            self.seen.append(("access", exchange.request.target))
            return None
        request = Request(b"GET", b"http", b"example", self.target, [(b"X-Why", b"refresh")])
        exchange.background(request, {"bg": True})
        return None

    def balancer(self, exchange: ExchangeView) -> Verdict:
        if exchange.ctx.get("bg"):
            self.seen.append(("balancer", exchange.pool))
        return None

    def header_filter(self, exchange: ExchangeView) -> Verdict:
        if exchange.ctx.get("bg"):
            assert exchange.response is not None
            self.seen.append(("header_filter", exchange.response.status))
        return None

    def body_filter(self, exchange: ExchangeView, chunk: bytes, last: bool) -> bytes:
        if exchange.ctx.get("bg"):
            self.seen.append(("body_filter", chunk))
        return chunk

    def log(self, exchange: ExchangeView) -> None:
        if exchange.ctx.get("bg"):
            self.seen.append(("log", exchange.status))


def test_a_background_request_runs_the_pipeline_and_reaches_no_client(make_session: Make) -> None:
    refresher = Refresher()
    s = make_session(filters=[refresher])
    client = s.client(ip="192.0.2.33")
    backend, received = s.serve(client, GET_X, OK_5)
    assert received.endswith(b"hello") and backend.take() == b""  # nothing before the loop's next turn
    loop_turn(s)
    forwarded = backend.take()  # on the idle connection the client's request left
    assert forwarded.startswith(b"GET /bg HTTP/1.1\r\n") and b"X-Why: refresh" in forwarded
    assert b"X-Forwarded-For: 192.0.2.33" in forwarded  # the client whose exchange started it
    backend.send(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nnew")
    # Neither rewrite nor access runs for it (it is the filter's own, as given); the balancer and response
    # phases do.
    assert refresher.seen == [("balancer", "default"), ("header_filter", 200), ("body_filter", b"new"),
                              ("body_filter", b""), ("log", 200)]
    assert client.take() == b""  # the client got its own response only
    assert s.proxy.connections == {client.protocol}  # the background exchange is gone
    assert len(s.idle_upstreams()) == 1  # its backend connection went back to the idle pool


def test_a_background_request_has_the_response_timeout(make_session: Make) -> None:
    refresher = Refresher()
    s = make_session(filters=[refresher])
    client = s.client()
    backend, _ = s.serve(client, GET_X, OK_5)
    loop_turn(s)
    assert backend.take().startswith(b"GET /bg ")  # the backend never answers
    s.advance(s.settings.response_timeout + 1)
    assert refresher.seen[-1] == ("log", 504)
    assert not any(isinstance(c, BackgroundClient) for c in s.proxy.connections)


def test_a_background_request_goes_to_the_pool_of_the_exchange_that_started_it(make_session: Make) -> None:
    refresher = Refresher(target=b"/elsewhere")  # a target routing would send to the default pool
    s = make_session(filters=[refresher], pools='api = { backends = { "127.0.0.1:9201" } }',
                     extra='routes = { { path = "/api/", pool = "api" } }')
    client = s.client()
    backend, _ = s.serve(client, b"GET /api/x HTTP/1.1\r\nHost: example\r\n\r\n", OK_5)
    loop_turn(s)
    assert backend.take().startswith(b"GET /elsewhere ")  # on the api backend's idle connection
    assert refresher.seen == [("balancer", "api")]


def test_nothing_starts_while_draining(make_session: Make) -> None:
    s = make_session(filters=[Refresher()])
    client = s.client()
    backend, _ = s.serve(client, GET_X, OK_5)
    s.proxy.draining = True
    loop_turn(s)
    assert backend.take() == b"" and not s.connector.pending()


class Held(Filter):
    """Suspends every request in access; the test answers it, streamed."""

    def __init__(self) -> None:
        self.waiting: list[ExchangeView] = []

    def access(self, exchange: ExchangeView) -> Verdict:
        self.waiting.append(exchange)
        return SUSPEND

    def body_filter(self, exchange: ExchangeView, chunk: bytes, last: bool) -> bytes:
        return chunk.upper()


def test_a_streamed_answer_goes_out_part_by_part_through_the_response_phases(make_session: Make) -> None:
    held = Held()
    s = make_session(filters=[held])
    client = s.client()
    client.send(GET_X)
    ex = held.waiting[0]
    ex.answer_head(Response(200, [(b"Content-Type", b"text/plain")], UNKNOWN_LENGTH))
    ex.answer_data(b"first ", False)
    head_and_first = client.take()
    assert head_and_first.startswith(b"HTTP/1.1 200 OK\r\n") and b"transfer-encoding: chunked" in head_and_first.lower()
    assert head_and_first.endswith(b"6\r\nFIRST \r\n")
    ex.answer_data(b"last", True)
    assert client.take() == b"4\r\nLAST\r\n0\r\n\r\n"
    ex.answer_data(b"more", False)  # after the end: ignored
    assert client.take() == b""
    # The connection goes on (keep-alive): the next request is served.
    client.send(GET_X)
    held.waiting[1].answer_head(Response(200, [], 2))
    held.waiting[1].answer_data(b"ok", True)
    assert client.take().endswith(b"\r\n\r\nOK")


def test_a_streamed_answer_that_cannot_finish_resets_the_client(make_session: Make) -> None:
    held = Held()
    s = make_session(filters=[held])
    client = s.client()
    client.send(GET_X)
    ex = held.waiting[0]
    ex.answer_head(Response(200, [], 10))
    ex.answer_data(b"01234", False)
    ex.answer_reset("the fetch failed")
    s.turns.run()
    assert client.closing  # HTTP/1's only signal: the connection closes
    assert client.take().endswith(b"01234")


def test_a_streamed_answer_keeps_the_client_deadline_moving(make_session: Make) -> None:
    held = Held()
    s = make_session(filters=[held])
    client = s.client()
    client.send(GET_X)
    ex = held.waiting[0]
    ex.answer_head(Response(200, [], UNKNOWN_LENGTH))
    for _ in range(3):  # each part comes within the response timeout, the whole takes longer
        s.advance(s.settings.response_timeout * 0.6)
        ex.answer_data(b"x", False)
    ex.answer_data(b"", True)
    assert not client.closing and client.take().endswith(b"0\r\n\r\n")
