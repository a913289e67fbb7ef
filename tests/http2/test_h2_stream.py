"""An HTTP/2 stream as the client side of an exchange (rsp.proxy.h2_stream), without sockets: an h2 client in
memory, rsp's sans-IO ServerConnection, and the HTTP session on its fakes (tests/support/fake_session.py).
The stream's Request reaches the backend as an HTTP/1.1 head serialised from it; its response comes back as
HTTP/2 frames; request-body credit returns only once the bytes went to the backend connection."""

from __future__ import annotations

from collections.abc import Iterator

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from rsp.config.model import Http2Settings
from rsp.http2.events import RequestData, RequestEnded, RequestOpened
from rsp.http2.server import ServerConnection
from rsp.proxy.h2_stream import H2Stream
from support.fake_session import FakeSession

CHUNK = 13000
CHUNKS = 3  # 39000 bytes: more than half the initial window, so h2 sends WINDOW_UPDATE once acknowledged


class Owner:
    """The stream's HTTP/2 connection, as far as the stream sees it."""

    def __init__(self) -> None:
        self.done: list[int] = []

    def flush_soon(self) -> None:
        pass

    def stream_done(self, stream_id: int) -> None:
        self.done.append(stream_id)


class Pair:
    """An h2 client and rsp's ServerConnection talking in memory; `streams` the H2Streams opened."""

    def __init__(self, session: FakeSession) -> None:
        self.session = session
        self.owner = Owner()
        self.server = ServerConnection(Http2Settings(), session.clock, b"http")
        self.client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.client.initiate_connection()
        self.streams: dict[int, H2Stream] = {}
        self.to_server()
        self.to_client()

    def to_server(self) -> None:
        for event in self.server.receive(self.client.data_to_send()):
            if isinstance(event, RequestOpened):
                stream = H2Stream(self.owner, self.server, self.session.proxy, event.stream_id, ("192.0.2.7", 4000))
                self.streams[event.stream_id] = stream
                stream.begin(event.request)
            elif isinstance(event, RequestData):
                self.streams[event.stream_id].body(event.data)
            elif isinstance(event, RequestEnded):
                self.streams[event.stream_id].end(event.trailers)

    def to_client(self) -> list[h2.events.Event]:
        return self.client.receive_data(self.server.data_to_send())


@pytest.fixture
def session() -> Iterator[FakeSession]:
    s = FakeSession()
    try:
        yield s
    finally:
        s.close()


def window_updates(events: list[h2.events.Event], stream_id: int) -> int:
    return sum(e.delta for e in events if isinstance(e, h2.events.WindowUpdated) and e.stream_id == stream_id)


def test_a_stream_reaches_the_backend_as_http1_and_its_body_credit_follows_the_backend(session: FakeSession) -> None:
    pair = Pair(session)
    pair.client.send_headers(1, [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"app.example"),
                                 (b":path", b"/up?x=1"), (b"x-trace", b"7")])
    for _ in range(CHUNKS):
        pair.client.send_data(1, b"y" * CHUNK)
    pair.to_server()
    # No backend connection yet: the body waits in the exchange's connect buffer, and no credit goes back.
    assert window_updates(pair.to_client(), 1) == 0
    backend = session.accept()
    sent = backend.take()
    head, _, body = sent.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /up?x=1 HTTP/1.1"
    # Framing recomputed from the Request: no content-length from the client, so chunked (RFC 9112 §7.1).
    assert b"Transfer-Encoding: chunked" in lines and b"host: app.example" in lines and b"x-trace: 7" in lines
    assert b"Via: 2 rsp" in lines  # the client's protocol as the request came (RFC 9110 §7.6.3)
    assert body.startswith(b"%x\r\n" % CHUNK)
    # Written to the backend connection: the client gets its window back.
    assert window_updates(pair.to_client(), 1) >= CHUNK * CHUNKS
    pair.client.end_stream(1)
    pair.to_server()
    assert backend.take() == b"0\r\n\r\n"
    backend.send(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-From: b\r\n\r\nok")
    events = pair.to_client()
    heads = [dict(e.headers) for e in events if isinstance(e, h2.events.ResponseReceived)]
    assert heads == [{b":status": b"201", b"content-length": b"2", b"x-from": b"b", b"via": b"1.1 rsp"}]
    assert b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived)) == b"ok"
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)
    assert pair.owner.done == [1] and pair.streams[1] not in session.proxy.connections
    assert session.idle_upstreams()  # the backend connection went back to its pool


def test_a_backend_that_dies_mid_response_resets_only_that_stream(session: FakeSession) -> None:
    pair = Pair(session)
    for sid in (1, 3):
        pair.client.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a"),
                                       (b":path", b"/%d" % sid)], end_stream=True)
    pair.to_server()
    first, second = session.accept(), session.accept()
    first.take()
    second.take()
    first.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    first.reset()
    second.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    events = pair.to_client()
    assert [e.stream_id for e in events if isinstance(e, h2.events.StreamReset)] == [1]
    assert [e.stream_id for e in events if isinstance(e, h2.events.StreamEnded)] == [3]
    assert sorted(pair.owner.done) == [1, 3]


def test_a_backend_paused_by_a_slow_stream_reads_again_once_back_in_its_pool(session: FakeSession) -> None:
    pair = Pair(session)
    pair.client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1024})
    pair.to_server()
    pair.to_client()
    pair.client.send_headers(1, [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a"),
                                 (b":path", b"/big")], end_stream=True)
    pair.to_server()
    backend = session.accept()
    backend.take()
    size = 200 * 1024  # more than the stream's output high-water mark: the connection cannot take it all now
    backend.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"z" * size)
    # The whole response was read (it came in one read), so the exchange is over and its connection idle,
    # though the stream paused the backend's reading while the client's window was closed.
    assert session.idle_upstreams() and pair.owner.done == [1]
    assert backend.reading  # an idle connection must see its backend's close


def test_without_filters_a_stream_is_routed_directly_and_rsp_answers_errors_through_it(session: FakeSession) -> None:
    """A listener without filters makes no filter run for a stream (its exchange is routed as an HTTP/1
    client's); a backend that cannot be reached is answered with rsp's error page on the stream."""
    pair = Pair(session)
    pair.client.send_headers(1, [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a"),
                                 (b":path", b"/x")], end_stream=True)
    pair.to_server()
    exchange = pair.streams[1].exchange
    assert exchange is not None and exchange.run is None  # type: ignore[attr-defined]
    while session.connector.pending():  # the first try and the pool's retries all refused
        session.fail()
    events = pair.to_client()
    heads = [dict(e.headers) for e in events if isinstance(e, h2.events.ResponseReceived)]
    assert len(heads) == 1 and heads[0][b":status"] == b"502", heads
    body = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
    assert body and heads[0][b"content-length"] == b"%d" % len(body)
    assert any(isinstance(e, h2.events.StreamEnded) for e in events)
    assert pair.owner.done == [1]


def test_without_filters_a_request_is_sent_again_with_the_same_head(session: FakeSession) -> None:
    """A kept-alive backend connection that closes before any response byte: the stream's request goes again,
    on a new connection, as the same serialised head (RFC 9110 §9.2.2: GET is idempotent)."""
    pair = Pair(session)
    pair.client.send_headers(1, [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a"),
                                 (b":path", b"/1")], end_stream=True)
    pair.to_server()
    backend = session.accept()
    backend.take()
    backend.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    pair.to_client()
    assert session.idle_upstreams()
    pair.client.send_headers(3, [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a"),
                                 (b":path", b"/3"), (b"x-n", b"3")], end_stream=True)
    pair.to_server()
    first = backend.take()
    assert first.startswith(b"GET /3 HTTP/1.1\r\n") and b"x-n: 3\r\n" in first
    backend.send_eof()  # the routine close of a kept-alive connection, before any byte of the response
    again = session.accept()
    assert again.take() == first
    again.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    events = pair.to_client()
    assert b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived)) == b"hi"
    assert sorted(pair.owner.done) == [1, 3]
