"""rsp.http2.server with a well-behaved h2 client: requests, bodies and flow control, responses, trailers,
graceful shutdown in both directions."""

from __future__ import annotations

import dataclasses

import h2.events as h2e
from hyperframe.frame import DataFrame, GoAwayFrame, PingFrame, WindowUpdateFrame

from rsp.config.model import Http2Settings
from rsp.http2 import codes
from rsp.http2.events import (
    ConnectionEnded,
    RequestData,
    RequestEnded,
    RequestOpened,
    StreamCancelled,
    StreamWritable,
)
from rsp.http2.server import MAX_DEFERRED_DATA, ServerConnection
from rsp.pipeline.messages import UNKNOWN_LENGTH, Response
from support.h2_peer import FakeClock, H2Peer


def server(**limits: object) -> tuple[ServerConnection, FakeClock]:
    clock = FakeClock()
    return ServerConnection(dataclasses.replace(Http2Settings(), **limits), clock), clock


def test_a_request_becomes_a_neutral_request() -> None:
    srv, _ = server()
    peer = H2Peer(srv)
    events = peer.request(1, path="/a/b?c=d", extra=[("user-agent", "t"), ("cookie", "a=1"), ("cookie", "b=2")])
    opened = events[0]
    assert isinstance(opened, RequestOpened)
    req = opened.request
    assert (req.method, req.scheme, req.authority, req.target, req.version) == (
        b"GET", b"https", b"example.test", b"/a/b?c=d", b"2")
    assert req.headers == [(b"host", b"example.test"), (b"user-agent", b"t"), (b"cookie", b"a=1; b=2")]
    assert events[1] == RequestEnded(1, [])


def test_response_head_is_lower_cased_without_connection_fields_and_trailers_pass() -> None:
    srv, _ = server()
    peer = H2Peer(srv)
    peer.request(1)
    srv.send_head(1, Response(103, [(b"Link", b"</s.css>; rel=preload")]))
    srv.send_head(1, Response(200, [(b"Content-Type", b"text/plain"), (b"Connection", b"keep-alive"),
                                    (b"Keep-Alive", b"timeout=5"), (b"Transfer-Encoding", b"chunked")]))
    srv.send_data(1, b"hello")
    srv.send_end(1, [(b"X-Checksum", b"abc")])
    peer.read()
    kinds = [type(e).__name__ for e in peer.client_events if getattr(e, "stream_id", 0) == 1]
    assert kinds == ["InformationalResponseReceived", "ResponseReceived", "DataReceived", "TrailersReceived",
                     "StreamEnded"]
    final = next(e for e in peer.client_events if isinstance(e, h2e.ResponseReceived))
    assert final.headers == [(b":status", b"200"), (b"content-type", b"text/plain")]
    trailers = next(e for e in peer.client_events if isinstance(e, h2e.TrailersReceived))
    assert trailers.headers == [(b"x-checksum", b"abc")]
    assert srv.open_streams == 0


def test_request_body_window_reopens_only_as_the_backend_takes_it() -> None:
    srv, _ = server()
    peer = H2Peer(srv)
    peer.request(1, end=False, method="POST", extra=[("content-length", "60000")])
    for _ in range(4):
        peer.client.send_data(1, b"a" * 15000)
    events = peer.flush()
    assert sum(len(e.data) for e in events if isinstance(e, RequestData)) == 60000
    updates = [f for f in peer.frames if isinstance(f, WindowUpdateFrame) and f.stream_id == 1]
    assert updates == []  # nothing acknowledged on receipt
    assert peer.client.local_flow_control_window(1) == 65535 - 60000
    srv.acknowledge(1, 40000)  # the backend took 40000 bytes
    peer.read()
    updates = [f for f in peer.frames if isinstance(f, WindowUpdateFrame) and f.stream_id == 1]
    assert sum(f.window_increment for f in updates) == 40000
    peer.client.end_stream(1)
    assert peer.flush() == [RequestEnded(1, [])]


def test_request_trailers_pass_through() -> None:
    srv, _ = server()
    peer = H2Peer(srv)
    peer.request(1, end=False, method="POST")
    peer.client.send_data(1, b"xyz")
    peer.client.send_headers(1, [("grpc-status", "0")], end_stream=True)
    events = peer.flush()
    assert events == [RequestData(1, b"xyz"), RequestEnded(1, [(b"grpc-status", b"0")])]


def test_malformed_requests_are_stream_errors_and_the_connection_stays() -> None:
    srv, _ = server()
    peer = H2Peer(srv)
    peer.request(1, extra=[("connection", "keep-alive")])
    peer.request(3, extra=[("te", "gzip")])
    peer.request(5, extra=[("host", "other.test")])  # differs from :authority
    peer.request(7, extra=[("transfer-encoding", "chunked")])
    peer.request(9, extra=[("X-Upper", "case")])  # upper-case field names are malformed (§8.2.1)
    peer.client.send_headers(11, [(":method", "GET"), (":scheme", "https"), (":authority", "u:p@example.test"),
                                  (":path", "/")], end_stream=True)
    peer.client.send_headers(13, [(":method", "GET"), (":path", "/"), (":scheme", "https"),
                                  ("accept", "*/*"), (":authority", "late.example")], end_stream=True)
    peer.flush()
    assert peer.resets() == dict.fromkeys((1, 3, 5, 7, 9, 11, 13), codes.PROTOCOL_ERROR)
    events = peer.request(15, extra=[("te", "trailers")])
    assert isinstance(events[0], RequestOpened)
    assert not peer.ended()


def test_a_slow_stream_does_not_stall_the_others_and_pauses_its_producer() -> None:
    srv, _ = server()
    peer = H2Peer(srv)
    peer.request(1)
    peer.request(3)
    srv.send_head(1, Response(200, []))
    srv.send_head(3, Response(200, []))
    # Stream 1's client never acknowledges: 65535 bytes go, the rest waits, and the producer is paused.
    more = True
    while more:
        more = srv.send_data(1, b"a" * 65536)
    assert srv.buffered(1) > 64 * 1024
    # The connection window was raised by the client: stream 3 is served in full meanwhile.
    peer.client.increment_flow_control_window(10_000_000)
    peer.client.increment_flow_control_window(1_000_000, stream_id=3)
    peer.flush()
    assert srv.send_data(3, b"b" * 500_000)
    srv.send_end(3, [])
    peer.read()
    got3 = sum(len(e.data) for e in peer.client_events if isinstance(e, h2e.DataReceived) and e.stream_id == 3)
    assert got3 == 500_000
    # Stream 1's window opens: its data moves and its producer hears it may go on.
    peer.client.increment_flow_control_window(1_000_000, stream_id=1)
    events = peer.flush()
    assert StreamWritable(1) in events


def test_the_client_resets_a_stream_the_exchange_is_cancelled() -> None:
    srv, _ = server()
    peer = H2Peer(srv)
    peer.request(1, end=False)
    peer.client.reset_stream(1, codes.CANCEL)
    assert peer.flush() == [StreamCancelled(1, codes.CANCEL, "reset by the client")]
    srv.send_data(1, b"late")  # the exchange's last write after the cancel is dropped, not an error
    assert srv.open_streams == 0


def test_rsp_resets_a_stream_whose_backend_died_and_only_that_one() -> None:
    srv, _ = server()
    peer = H2Peer(srv)
    peer.request(1)
    peer.request(3)
    srv.send_head(1, Response(200, [], body_length=UNKNOWN_LENGTH))
    srv.send_data(1, b"part")
    srv.reset(1, "backend died")
    peer.read()
    assert peer.resets() == {1: codes.INTERNAL_ERROR}
    srv.send_head(3, Response(200, []))
    srv.send_end(3, [])
    peer.read()
    assert any(isinstance(e, h2e.StreamEnded) and e.stream_id == 3 for e in peer.client_events)


def test_drain_sends_two_goaways_and_lets_streams_in_flight_finish() -> None:
    srv, _ = server()
    peer = H2Peer(srv, learn_settings=False)  # raw: h2's own client stops reading at the first GOAWAY
    peer.request(1)
    peer.request(3)
    srv.drain()
    peer.read()
    first = peer.goaway()
    assert first is not None and first.last_stream_id == codes.MAX_STREAM_ID and first.error_code == 0
    ping = [f for f in peer.frames if isinstance(f, PingFrame)][-1]
    peer.request(5)  # in flight when the first GOAWAY left: still served
    peer.raw(PingFrame(0, opaque_data=ping.opaque_data, flags=["ACK"]))
    final = peer.goaway()
    assert final is not None and final.last_stream_id == 5
    peer.request(7)  # after the final GOAWAY: refused, the client may retry it elsewhere
    assert peer.resets() == {7: codes.REFUSED_STREAM}
    for sid in (1, 3, 5):
        assert not srv.closing
        srv.send_head(sid, Response(200, []))
        srv.send_data(sid, b"done")
        srv.send_end(sid, [])
    peer.read()
    assert srv.closing and srv.close_reason == "finished after GOAWAY"
    assert peer.ended_streams() == [1, 3, 5]


def test_drain_without_a_ping_answer_sends_the_final_goaway_after_a_second() -> None:
    srv, clock = server()
    peer = H2Peer(srv, learn_settings=False)  # never answers the PING
    peer.request(1)
    srv.drain()
    peer.read()
    clock.advance(1.0)
    srv.tick()
    peer.read()
    final = peer.goaway()
    assert final is not None and final.last_stream_id == 1
    peer.request(3)
    assert peer.resets() == {3: codes.REFUSED_STREAM}


def test_a_client_goaway_lets_the_responses_in_flight_finish() -> None:
    srv, _ = server()
    peer = H2Peer(srv)
    peer.request(1)
    peer.raw(GoAwayFrame(0, last_stream_id=0, error_code=codes.NO_ERROR))
    assert not srv.closing
    srv.send_head(1, Response(200, []))
    srv.send_data(1, b"still sent")
    srv.send_end(1, [])
    peer.read()
    got = b"".join(e.data for e in peer.client_events if isinstance(e, h2e.DataReceived))
    assert got == b"still sent"
    assert srv.closing


def test_max_streams_per_connection_ends_gracefully() -> None:
    srv, _ = server(max_streams_per_connection=2)
    peer = H2Peer(srv)
    peer.request(1)
    peer.request(3)
    goaway = peer.goaway()
    assert goaway is not None and goaway.last_stream_id == 3 and goaway.error_code == codes.NO_ERROR
    for sid in (1, 3):
        srv.send_head(sid, Response(204, []))
        srv.send_end(sid, [])
    assert any(isinstance(e, ConnectionEnded) for e in peer.events) or srv.closing


def test_a_small_response_ends_on_its_data_frame() -> None:
    """Data and end in one turn: one DATA frame with END_STREAM, not an empty DATA frame after it."""
    srv, _ = server()
    peer = H2Peer(srv)
    peer.request(1)
    peer.request(3)
    peer.frames.clear()
    srv.send_head(1, Response(200, [(b"content-length", b"5")], 5))
    srv.send_data(1, b"hello")
    srv.send_end(1, [])
    # Stream 3's data comes alone this turn: framed at data_to_send, its end later on an empty frame.
    srv.send_head(3, Response(200, [], UNKNOWN_LENGTH))
    srv.send_data(3, b"part")
    peer.read()
    data = [(f.stream_id, bytes(f.data), "END_STREAM" in f.flags) for f in peer.frames if isinstance(f, DataFrame)]
    assert data == [(1, b"hello", True), (3, b"part", False)]
    peer.frames.clear()
    srv.send_end(3, [])
    peer.read()
    data = [(f.stream_id, bytes(f.data), "END_STREAM" in f.flags) for f in peer.frames if isinstance(f, DataFrame)]
    assert data == [(3, b"", True)]
    assert [e.stream_id for e in peer.client_events if isinstance(e, h2e.StreamEnded)] == [1, 3]
    assert srv.open_streams == 0


def test_large_response_data_is_framed_as_it_comes() -> None:
    """Data over MAX_DEFERRED_DATA is not held for data_to_send: framed by send_data itself."""
    srv, _ = server()
    peer = H2Peer(srv)
    peer.request(1)
    peer.frames.clear()
    srv.send_head(1, Response(200, [], UNKNOWN_LENGTH))
    srv.send_data(1, b"x" * (MAX_DEFERRED_DATA + 1))
    assert srv.buffered(1) < MAX_DEFERRED_DATA + 1  # framed (up to the window) before any data_to_send
    srv.send_end(1, [])
    peer.read()
    sent = sum(len(f.data) for f in peer.frames if isinstance(f, DataFrame))
    assert sent == MAX_DEFERRED_DATA + 1
