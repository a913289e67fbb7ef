"""The request pipeline in the session (rsp.proxy.filter_run) on fakes: every phase (rewrite, access,
balancer, header_filter, body_filter, log), local replies, failing filters, and a chain whose filters change
nothing giving the bytes of no chain at all. SUSPEND and filters that read the request body are in
test_phase_suspend.py, each try's times and timeouts in test_phase_times.py. The session and its peers are
fakes (support.fake_session); the `make_session` fixture is in conftest.py."""

from __future__ import annotations

import pytest

from rsp.pipeline.messages import UNKNOWN_LENGTH
from rsp.pipeline.phases import ExchangeView, Filter, Verdict
from support.fake_session import FakeSession, FakeTransport, protocol_of
from support.phase_filters import GET_X, OK_5, Deny, Make, Recorder


def request_line(forwarded: bytes) -> bytes:
    return forwarded.split(b"\r\n", 1)[0]


class Rewrite(Filter):
    def __init__(self, target: bytes = b"", host: bytes = b"") -> None:
        self.target = target
        self.host = host

    def rewrite(self, exchange: ExchangeView) -> Verdict:
        if self.target:
            exchange.request.target = self.target + exchange.request.target
        if self.host:
            exchange.request.set(b"host", self.host)
        return None


API_POOL = 'api = { backends = { "127.0.0.1:9201" } }'


def test_rewrite_changes_the_target_and_routing_follows_the_rewritten_request(make_session: Make) -> None:
    s = make_session(pools=API_POOL, extra='routes = { { path = "/api", pool = "api" } }',
                     filters=[Rewrite(target=b"/api")])
    client = s.client()
    client.send(GET_X)
    assert s.connector.pending()[0].record.spec.port == 9201  # routed by the rewritten path
    backend = s.accept()
    forwarded = backend.take()
    assert request_line(forwarded) == b"GET /api/x HTTP/1.1"
    assert b"\r\nHost: example\r\n" in forwarded and b"X-Forwarded-Host: example\r\n" in forwarded
    backend.send(OK_5)
    assert client.take().endswith(b"hello")


def test_a_rewritten_host_reroutes_and_is_the_host_the_backend_gets(make_session: Make) -> None:
    s = make_session(pools=API_POOL, extra='routes = { { host = "api.example", pool = "api" } }',
                     filters=[Rewrite(host=b"api.example")])
    client = s.client()
    client.send(GET_X)
    assert s.connector.pending()[0].record.spec.port == 9201
    forwarded = s.accept().take()
    assert b"\r\nHost: api.example\r\n" in forwarded and b"X-Forwarded-Host: example\r\n" in forwarded


class AddFields(Filter):
    def __init__(self, *fields: tuple[bytes, bytes | None]) -> None:
        self.fields = fields

    def access(self, exchange: ExchangeView) -> Verdict:
        for name, value in self.fields:
            exchange.request.set(name, value)
        return None


@pytest.mark.parametrize("fields, spliced", [
    ([(b"x-tier", b"gold"), (b"x-two", b"2")], True),   # only added: the forwarded head with the lines appended
    ([(b"x-tier", b"gold"), (b"host", b"other")], False),  # a line replaced: serialised whole
    ([(b"x-tier", b"gold"), (b"via", b"1.1 mine")], False),  # a field rsp writes itself: serialised whole
])
def test_added_fields_reach_the_backend_once_and_the_rest_as_forwarded(
        make_session: Make, fields: list[tuple[bytes, bytes]], spliced: bool) -> None:
    plain = make_session()
    client = plain.client()
    client.send(GET_X)
    unchanged = plain.accept().take()
    s = make_session(filters=[AddFields(*fields)])
    client = s.client()
    client.send(GET_X)
    forwarded = s.accept().take()
    for name, value in fields:
        assert forwarded.lower().count(b"\r\n" + name + b": " + value + b"\r\n") == 1
    added = b"".join(name + b": " + value + b"\r\n" for name, value in fields)
    assert (forwarded == unchanged[:-2] + added + b"\r\n") is spliced


def test_access_answers_locally_and_the_response_phases_run_over_the_answer(make_session: Make) -> None:
    recorder = Recorder()
    s = make_session(filters=[Deny(), recorder])
    client = s.client()
    client.send(GET_X)
    assert client.take() == b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\ncontent-length: 2\r\n\r\nno"
    assert not s.connector.attempts  # no backend
    assert recorder.phases() == ["rewrite", "header_filter", "body_filter", "log"]
    assert recorder.seen[-1][1] == 403
    client.send(GET_X)  # the connection stays open for the next request
    assert client.take().startswith(b"HTTP/1.1 403 ")


def test_a_local_answer_to_head_has_its_length_and_no_body(make_session: Make) -> None:
    s = make_session(filters=[Deny()])
    client = s.client()
    client.send(b"HEAD /x HTTP/1.1\r\nHost: example\r\n\r\n")
    assert client.take() == b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\ncontent-length: 2\r\n\r\n"


class Balance(Filter):
    """First try: pool `other`; later tries: one peer outside every pool. Records tries and failures."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []

    def balancer(self, exchange: ExchangeView) -> Verdict:
        self.calls.append((exchange.tries, exchange.last_failure))
        if exchange.tries == 0:
            exchange.pool = "other"
            exchange.more_tries = 1
        else:
            exchange.peer = ("127.0.0.1", 9555)
        return None


def test_balancer_chooses_a_pool_then_a_peer_and_sees_each_retry(make_session: Make) -> None:
    balance = Balance()
    recorder = Recorder()
    s = make_session(pools='other = { backends = { "127.0.0.1:9301" }, retries = 0 }', filters=[balance, recorder])
    client = s.client()
    client.send(GET_X)
    assert s.connector.pending()[0].record.spec.port == 9301
    s.fail("connection refused")  # pool `other` has retries = 0; the filter allowed one more
    assert balance.calls == [(0, ""), (1, "connection refused")]
    attempt = s.connector.pending()[0]
    assert (attempt.record.spec.host, attempt.record.spec.port) == ("127.0.0.1", 9555)
    backend = s.accept()
    assert request_line(backend.take()) == b"GET /x HTTP/1.1"
    backend.send(OK_5)
    assert client.take().endswith(b"hello")
    assert recorder.seen[-1][:3] == ("log", 200, "127.0.0.1:9555")
    # The peer's connection is pooled: the next request to it reuses it.
    client.send(GET_X)
    s.fail("connection refused")
    assert backend.take().startswith(b"GET /x ")
    assert len(s.connector.attempts) == 3


class Headers(Filter):
    def header_filter(self, exchange: ExchangeView) -> Verdict:
        response = exchange.response
        assert response is not None
        response.status = 203
        response.set(b"x-added", b"yes")
        response.set(b"x-remove", None)
        return None


def test_header_filter_adds_and_removes_fields_and_changes_the_status(make_session: Make) -> None:
    s = make_session(filters=[Headers()])
    client = s.client()
    _, received = s.serve(client, GET_X, OK_5)
    assert received == (b"HTTP/1.1 203 Non-Authoritative Information\r\nServer: s\r\nContent-Length: 5\r\n"
                        b"x-added: yes\r\nVia: 1.1 rsp\r\n\r\nhello")


class Upper(Filter):
    def header_filter(self, exchange: ExchangeView) -> Verdict:
        assert exchange.response is not None
        exchange.response.body_length = UNKNOWN_LENGTH  # the body's length changes
        return None

    def body_filter(self, exchange: ExchangeView, chunk: bytes, last: bool) -> bytes:
        return chunk.upper() + (b"!" if last else b"")


def test_body_filter_uppercases_each_chunk_and_appends_at_the_end(make_session: Make) -> None:
    s = make_session(filters=[Upper()])
    client = s.client()
    backend = s.open(client, GET_X)
    backend.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    assert client.take() == b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nVia: 1.1 rsp\r\n\r\n3\r\nABC\r\n"
    backend.send(b"2\r\nde\r\n0\r\n\r\n")
    assert client.take() == b"2\r\nDE\r\n1\r\n!\r\n0\r\n\r\n"
    assert not client.closing  # keep-alive survives a re-framed body
    # An HTTP/1.0 client gets the changed body delimited by the close.
    client10 = s.client()
    client10.send(b"GET /x HTTP/1.0\r\n\r\n")
    backend.take()
    backend.send(OK_5)
    assert client10.take() == (b"HTTP/1.1 200 OK\r\nServer: s\r\nX-Remove: 1\r\nConnection: close\r\n"
                               b"Via: 1.1 rsp\r\n\r\nHELLO!")
    assert client10.closing


def test_log_sees_the_status_and_the_backend_once_and_also_after_a_failure(make_session: Make) -> None:
    recorder = Recorder()
    s = make_session(backends=1, pool="retries = 0", filters=[recorder])
    client = s.client()
    s.serve(client, GET_X, OK_5)
    assert recorder.phases() == ["rewrite", "access", "balancer", "header_filter", "body_filter", "body_filter", "log"]
    assert recorder.seen[-1][:3] == ("log", 200, "127.0.0.1:9101")
    recorder = Recorder()
    s = make_session(backends=1, pool="retries = 0", filters=[recorder])
    other = s.client()
    other.send(GET_X)
    s.fail("connection refused")  # no retry left: 502
    assert other.take().startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert recorder.phases()[-1] == "log" and recorder.phases().count("log") == 1
    assert recorder.seen[-1][:5] == ("log", 502, "127.0.0.1:9101", 1, "connection refused")


class Broken(Filter):
    name = "broken"

    def __init__(self, phase: str) -> None:
        self.phase = phase

    def access(self, exchange: ExchangeView) -> Verdict:
        if self.phase == "access":
            raise RuntimeError("bug")
        return None

    def header_filter(self, exchange: ExchangeView) -> Verdict:
        if self.phase == "header_filter":
            raise RuntimeError("bug")
        return None


def test_a_filter_that_raises_is_answered_500_and_the_session_goes_on(make_session: Make) -> None:
    s = make_session(filters=[Broken("access")])
    client = s.client()
    client.send(GET_X)
    assert client.take().startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert client.closing and not s.connector.attempts
    s = make_session(filters=[Broken("header_filter")])
    client = s.client()
    backend = s.open(client, GET_X)
    backend.send(OK_5)
    assert client.take().startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert backend.closing  # the backend's response was dropped with its connection


class PoolNamed(Filter):
    def access(self, exchange: ExchangeView) -> Verdict:
        exchange.pool = "nonexistent"
        return None


def test_a_pool_that_does_not_exist_is_answered_500(make_session: Make) -> None:
    s = make_session(filters=[PoolNamed()])
    client = s.client()
    client.send(GET_X)
    assert client.take().startswith(b"HTTP/1.1 500 ")


def test_no_chain_builds_no_run(make_session: Make) -> None:
    s = make_session()
    client = s.client()
    client.send(GET_X)
    assert protocol_of(client).exchange.run is None
    s = make_session(filters=[Recorder()])
    client = s.client()
    client.send(GET_X)
    assert protocol_of(client).exchange.run is not None


# A filter on every phase that changes nothing: the client and the backend get the bytes they get without
# any filter, over a keep-alive connection, an HTTP/1.0 client, HEAD, 100-continue, chunked bodies.
SCRIPT: list[tuple[bytes, list[bytes]]] = [
    (GET_X, [OK_5]),
    (b"GET /c HTTP/1.1\r\nHost: example\r\n\r\n",
     [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", b"0\r\nX-T: 1\r\n\r\n"]),
    (b"HEAD /h HTTP/1.1\r\nHost: example\r\n\r\n", [b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"]),
    (b"POST /p HTTP/1.1\r\nHost: example\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
     [b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"]),
    (b"GET /u HTTP/1.1\r\nHost: example\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n", [OK_5]),
]


def _replay(s: FakeSession, client: FakeTransport) -> list[bytes]:
    out: list[bytes] = []
    backend: FakeTransport | None = None
    for request, responses in SCRIPT:
        client.send(request)
        if backend is None:
            backend = s.accept()
        out.append(backend.take())
        for response in responses:
            backend.send(response)
            out.append(client.take())
    http10 = s.client()
    http10.send(b"GET /old HTTP/1.0\r\n\r\n")
    assert backend is not None
    out.append(backend.take())
    backend.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
    out.append(http10.take())
    return out


def test_filters_that_change_nothing_change_no_byte(make_session: Make) -> None:
    plain = make_session()
    filtered = make_session(filters=[Recorder()])
    assert _replay(filtered, filtered.client()) == _replay(plain, plain.client())


def test_routing_after_rewrite_waits_for_the_route_store_and_answers_through_the_response_phases(
        make_session: Make) -> None:
    recorder = Recorder()
    s = make_session(filters=[Rewrite(host=b"dynamic.example"), recorder])
    waiting: list[tuple[object, str]] = []
    s.proxy.host_pools = {}
    s.proxy.host_lookup = lambda exchange, host: waiting.append((exchange, host))
    client = s.client()
    client.send(GET_X)
    assert [host for _, host in waiting] == ["dynamic.example"]  # the rewritten host is looked up
    assert recorder.phases() == ["rewrite"] and not s.connector.attempts
    exchange = protocol_of(client).exchange
    exchange.route_to(s.pools["default"], 404)
    assert recorder.phases() == ["rewrite", "access", "balancer"]
    backend = s.accept()
    assert b"\r\nHost: dynamic.example\r\n" in backend.take()
    backend.send(OK_5)
    assert client.take().endswith(b"hello")
    other = s.client()
    other.send(GET_X)
    protocol_of(other).exchange.route_to(None, 404)
    assert other.take().startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert recorder.seen[-1][:2] == ("log", 404)


class Grow(Filter):
    """Changes the body's length without saying so in header_filter: a filter's bug."""

    def body_filter(self, exchange: ExchangeView, chunk: bytes, last: bool) -> bytes:
        return chunk + chunk


def test_a_body_filter_that_breaks_the_declared_length_resets_the_client(make_session: Make) -> None:
    s = make_session(filters=[Grow()])
    client = s.client()
    backend = s.open(client, GET_X)
    backend.send(OK_5)
    received = client.take()
    assert received.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 5\r\n" in received
    assert not received.endswith(b"hellohello")  # never more than the length the client was told
    assert client.closing


class LogOnly(Filter):
    """Only log: the response takes the direct path, and log still sees it."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, bytes | None]] = []

    def log(self, exchange: ExchangeView) -> None:
        response = exchange.response
        self.seen.append((exchange.status, exchange.upstream_status,
                          response.get(b"server") if response is not None else None))


def test_log_sees_the_response_that_took_the_direct_path(make_session: Make) -> None:
    log = LogOnly()
    s = make_session(filters=[log])
    client = s.client()
    _, received = s.serve(client, GET_X, OK_5)
    assert received == b"HTTP/1.1 200 OK\r\nServer: s\r\nX-Remove: 1\r\nContent-Length: 5\r\nVia: 1.1 rsp\r\n\r\nhello"
    assert protocol_of(client).exchange is None
    assert log.seen == [(200, 200, b"s")]
