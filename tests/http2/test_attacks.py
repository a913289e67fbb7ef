"""Each known HTTP/2 attack mounted against rsp.http2's server connection, in memory, on a fake clock.

Every test asserts that the connection is bounded (the limit fires at its figure, with the RFC's error
code) and, where the attack targets one stream, that the other streams keep being served.
"""

from __future__ import annotations

import dataclasses

import hpack
import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from rsp.config.model import Http2Settings
from rsp.http2 import codes
from rsp.http2.events import ConnectionEnded, RequestOpened, StreamCancelled
from rsp.http2.server import ServerConnection
from rsp.pipeline.messages import Response
from support.h2_peer import FakeClock, H2Peer

REQUEST = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"example.test"), (b":path", b"/")]


def encoded_request(encoder: hpack.Encoder | None = None) -> bytes:
    return (encoder or hpack.Encoder()).encode(REQUEST)


def server(**limits: object) -> tuple[ServerConnection, FakeClock]:
    clock = FakeClock()
    return ServerConnection(dataclasses.replace(Http2Settings(), **limits), clock), clock


def opened(peer: H2Peer) -> list[int]:
    return [e.stream_id for e in peer.events if isinstance(e, RequestOpened)]


def serve(srv: ServerConnection, sid: int, body: bytes = b"ok") -> None:
    srv.send_head(sid, Response(200, [(b"content-length", str(len(body)).encode())]))
    srv.send_data(sid, body)
    srv.send_end(sid, [])


# ---- max concurrent streams --------------------------------------------------------------------------------

def test_streams_beyond_the_advertised_limit_are_refused_and_the_others_served() -> None:
    srv, _ = server(max_concurrent_streams=4)
    peer = H2Peer(srv, learn_settings=False)  # a client that ignores SETTINGS_MAX_CONCURRENT_STREAMS
    for sid in range(1, 13, 2):
        peer.request(sid)
    assert opened(peer) == [1, 3, 5, 7]
    assert peer.resets() == {9: codes.REFUSED_STREAM, 11: codes.REFUSED_STREAM}
    assert not peer.ended()
    serve(srv, 1)
    peer.read()
    peer.request(13)  # a slot is free again
    assert opened(peer)[-1] == 13
    assert srv.open_streams == 4


def test_advertised_limit_is_in_the_server_settings() -> None:
    srv, _ = server(max_concurrent_streams=7)
    peer = H2Peer(srv)
    settings = next(f for f in peer.frames if isinstance(f, SettingsFrame) and "ACK" not in f.flags)
    assert settings.settings[SettingsFrame.MAX_CONCURRENT_STREAMS] == 7
    assert settings.settings[SettingsFrame.ENABLE_PUSH] == 0


# ---- rapid reset (CVE-2023-44487) ---------------------------------------------------------------------------

def test_rapid_reset_ends_the_connection_with_enhance_your_calm() -> None:
    srv, _ = server()
    peer = H2Peer(srv, learn_settings=False)
    enc = hpack.Encoder()
    sent = 0
    for sid in range(1, 2001, 2):
        peer.raw(HeadersFrame(sid, data=encoded_request(enc), flags=["END_HEADERS", "END_STREAM"]),
                 RstStreamFrame(sid, error_code=codes.CANCEL))
        sent += 1
        if peer.ended():
            break
    goaway = peer.goaway()
    assert goaway is not None and goaway.error_code == codes.ENHANCE_YOUR_CALM
    assert sent == Http2Settings().max_resets + 1  # the bound, not the client, decided when it stopped
    # A stream opened and reset within one read never reaches the pipeline (no exchange started for it);
    # every one that did reach it was cancelled: none is left running.
    started = set(opened(peer))
    cancelled = {e.stream_id for e in peer.events if isinstance(e, StreamCancelled)}
    assert started <= cancelled
    assert len(started) <= 1  # at most the last one, whose reset ended the connection


def test_a_stream_opened_and_reset_in_one_read_never_starts_an_exchange() -> None:
    srv, _ = server()
    peer = H2Peer(srv, learn_settings=False)
    events = peer.raw(HeadersFrame(1, data=encoded_request(), flags=["END_HEADERS", "END_STREAM"]),
                      RstStreamFrame(1, error_code=codes.CANCEL))
    assert events == []
    events = peer.raw(HeadersFrame(3, data=encoded_request(), flags=["END_HEADERS", "END_STREAM"]))
    assert [type(e).__name__ for e in events] == ["RequestOpened", "RequestEnded"]
    assert [type(e).__name__ for e in peer.raw(RstStreamFrame(3, error_code=codes.CANCEL))] == ["StreamCancelled"]


def test_resets_under_the_budget_per_interval_are_allowed() -> None:
    srv, clock = server(max_resets=10, flood_interval=1.0)
    peer = H2Peer(srv, learn_settings=False)
    sid = 1
    for _ in range(5):  # five intervals of 10 resets: a browser cancelling navigations, not an attack
        for _ in range(10):
            peer.client.send_headers(sid, REQUEST, end_stream=True)
            peer.client.reset_stream(sid, codes.CANCEL)
            peer.flush()
            sid += 2
        clock.advance(1.0)
    assert not peer.ended()
    peer.request(sid)
    assert opened(peer)[-1] == sid


# ---- CONTINUATION flood and oversized header blocks (CVE-2024-27316 family) ---------------------------------

def test_continuation_flood_is_refused_on_bytes_before_decoding() -> None:
    srv, _ = server()
    peer = H2Peer(srv, learn_settings=False)
    peer.raw(HeadersFrame(1, data=encoded_request()))  # no END_HEADERS: a block starts
    sent = 0
    while not peer.ended() and sent < 1000:
        peer.raw(ContinuationFrame(1, data=b"\x00" * 16000))  # never END_HEADERS
        sent += 1
    goaway = peer.goaway()
    assert goaway is not None and goaway.error_code == codes.ENHANCE_YOUR_CALM
    assert sent == 5  # 64 KiB of block: the 5th 16 KB frame crosses it
    assert opened(peer) == []


def test_empty_continuation_frames_are_bounded_by_count() -> None:
    srv, _ = server()
    peer = H2Peer(srv, learn_settings=False)
    peer.raw(HeadersFrame(1, data=encoded_request()))
    sent = 0
    while not peer.ended() and sent < 1000:
        peer.raw(ContinuationFrame(1, data=b""))
        sent += 1
    assert sent == Http2Settings().max_header_frames  # the HEADERS frame + 31 CONTINUATIONs are allowed
    goaway = peer.goaway()
    assert goaway is not None and goaway.error_code == codes.ENHANCE_YOUR_CALM


def test_an_oversized_frame_is_refused_on_its_header_without_buffering_it() -> None:
    srv, _ = server()
    peer = H2Peer(srv, learn_settings=False)
    # A DATA frame header declaring 16 MiB - 1, and nothing of its payload yet.
    peer.raw_bytes((2**24 - 1).to_bytes(3, "big") + bytes([codes.DATA, 0]) + (1).to_bytes(4, "big"))
    goaway = peer.goaway()
    assert goaway is not None and goaway.error_code == codes.FRAME_SIZE_ERROR


def test_a_header_block_left_unfinished_times_out() -> None:
    srv, clock = server()
    peer = H2Peer(srv, learn_settings=False)
    peer.raw(HeadersFrame(1, data=encoded_request()))
    clock.advance(Http2Settings().header_timeout - 0.5)
    srv.tick()
    assert not srv.closing
    clock.advance(1.0)
    peer.events += srv.tick()
    peer.read()
    assert peer.ended()


# ---- HPACK bomb ---------------------------------------------------------------------------------------------

def test_hpack_bomb_is_stopped_by_the_decoded_header_list_size() -> None:
    srv, _ = server()
    peer = H2Peer(srv, learn_settings=False)
    # One 4000-byte field in the dynamic table, then a block of 1-byte references to it: 60 bytes that
    # decode to 240 KB (CVE-2016-6581).
    big = hpack.Encoder()
    first = big.encode([*REQUEST, (b"x-bomb", b"a" * 4000)])
    peer.raw(HeadersFrame(1, data=first, flags=["END_HEADERS", "END_STREAM"]))
    assert opened(peer) == [1]
    index = 62  # the newest dynamic-table entry
    block = big.encode(REQUEST) + bytes([0x80 | index]) * 60
    assert len(block) < 100
    peer.raw(HeadersFrame(3, data=block, flags=["END_HEADERS", "END_STREAM"]))
    goaway = peer.goaway()
    # hpack stops decoding at the cap (OversizedHeaderListError); h2 answers ENHANCE_YOUR_CALM.
    assert goaway is not None and goaway.error_code == codes.ENHANCE_YOUR_CALM
    assert opened(peer) == [1]


def test_a_dynamic_table_larger_than_advertised_ends_the_connection() -> None:
    srv, _ = server(header_table_size=4096)
    peer = H2Peer(srv, learn_settings=False)
    enc = hpack.Encoder()
    enc.header_table_size = 1 << 20  # emits a dynamic table size update of 1 MiB at the block's start
    peer.raw(HeadersFrame(1, data=enc.encode(REQUEST), flags=["END_HEADERS", "END_STREAM"]))
    goaway = peer.goaway()
    # RFC 9113 §4.3 names COMPRESSION_ERROR; h2 reports every HPACK failure as PROTOCOL_ERROR
    # (docs/http2.md). Either way the connection ends and no request reaches the pipeline.
    assert goaway is not None and goaway.error_code in (codes.COMPRESSION_ERROR, codes.PROTOCOL_ERROR)
    assert peer.ended() and opened(peer) == []


# ---- control-frame floods -------------------------------------------------------------------------------------

def _flood_frame(kind: str) -> Frame:
    if kind == "settings":
        return SettingsFrame(0, settings={SettingsFrame.MAX_CONCURRENT_STREAMS: 100})
    if kind == "ping":
        return PingFrame(0, opaque_data=b"12345678")
    if kind == "priority":
        return PriorityFrame(3, depends_on=0, stream_weight=16)
    if kind == "window update":
        return WindowUpdateFrame(0, window_increment=1)
    if kind == "empty data":
        return DataFrame(1, data=b"")
    assert kind == "padded empty data"
    return DataFrame(1, data=b"", pad_length=10, flags=["PADDED"])


FLOODS = {"settings": "max_settings", "ping": "max_pings", "priority": "max_priority",
          "window update": "max_window_updates", "empty data": "max_empty_data",
          "padded empty data": "max_empty_data"}


@pytest.mark.parametrize("kind", sorted(FLOODS))
def test_control_frame_flood_ends_the_connection_at_its_budget(kind: str) -> None:
    srv, _ = server()
    peer = H2Peer(srv, learn_settings=False)
    if "data" in kind:
        peer.request(1, end=False)  # a stream with a body the flood is sent on
    budget = getattr(Http2Settings(), FLOODS[kind])
    frame = _flood_frame(kind)
    sent = 0
    while not peer.ended() and sent < 10 * budget:
        peer.raw(frame)
        sent += 1
    # The client's own first SETTINGS frame (the preface's) counts too.
    assert sent == budget + 1 - (kind == "settings")
    goaway = peer.goaway()
    assert goaway is not None and goaway.error_code == codes.ENHANCE_YOUR_CALM
    # The same rate spread over intervals is served: the budget is per interval.
    srv2, clock2 = server()
    peer2 = H2Peer(srv2, learn_settings=False)
    if "data" in kind:
        peer2.request(1, end=False)
    clock2.advance(Http2Settings().flood_interval)
    for _ in range(3):
        for _ in range(budget):
            peer2.raw(frame)
        clock2.advance(Http2Settings().flood_interval)
    assert not peer2.ended()


def test_unknown_frame_flood_ends_the_connection() -> None:
    srv, _ = server()
    peer = H2Peer(srv, learn_settings=False)
    unknown = (4).to_bytes(3, "big") + bytes([0xEE, 0]) + (0).to_bytes(4, "big") + b"abcd"
    sent = 0
    while not peer.ended() and sent < 1000:
        peer.raw_bytes(unknown)
        sent += 1
    assert sent == Http2Settings().max_unknown_frames + 1


def test_a_flood_split_into_single_bytes_is_counted_the_same() -> None:
    srv, _ = server(max_pings=5)
    peer = H2Peer(srv, learn_settings=False)
    data = PingFrame(0, opaque_data=b"12345678").serialize() * 6
    for i in range(len(data)):
        peer.raw_bytes(data[i:i + 1])
    assert peer.ended()
    goaway = peer.goaway()
    assert goaway is not None and goaway.error_code == codes.ENHANCE_YOUR_CALM


# ---- a client that never opens its window -------------------------------------------------------------------

def test_a_stream_whose_window_stays_shut_is_reset_after_the_send_timeout_and_others_go_on() -> None:
    srv, clock = server()
    peer = H2Peer(srv, client_settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    peer.request(1)
    peer.request(3)
    srv.send_head(1, Response(200, []))
    srv.send_data(1, b"x" * 1000)  # window 0: held
    assert srv.buffered(1) == 1000
    # Stream 3's window is opened by the client; stream 1's never is.
    peer.client.increment_flow_control_window(100_000, stream_id=3)
    peer.flush()
    srv.send_head(3, Response(200, []))
    srv.send_data(3, b"y" * 5000)
    srv.send_end(3, [])
    peer.read()
    assert any(getattr(e, "stream_id", None) == 3 and type(e).__name__ == "StreamEnded"
               for e in peer.client_events)
    clock.advance(Http2Settings().send_timeout)
    events = srv.tick()
    peer.read()
    assert [e for e in events if isinstance(e, StreamCancelled)] == [
        StreamCancelled(1, codes.CANCEL, "send timeout: stream window closed")]
    assert peer.resets() == {1: codes.CANCEL}
    assert not srv.closing


def test_a_connection_whose_window_stays_shut_is_closed_after_the_send_timeout() -> None:
    srv, clock = server()
    peer = H2Peer(srv)
    peer.request(1)
    srv.send_head(1, Response(200, []))
    srv.send_data(1, b"x" * 100_000)  # 65535 go out; the client never sends WINDOW_UPDATE
    peer.read()
    assert srv.buffered(1) == 100_000 - 65535
    clock.advance(Http2Settings().send_timeout)
    events = srv.tick()
    assert any(isinstance(e, ConnectionEnded) for e in events)
    assert srv.closing
    peer.learn = False
    peer.read()
    goaway = peer.goaway()
    assert goaway is not None and goaway.error_code == codes.ENHANCE_YOUR_CALM


def test_a_client_that_does_not_read_its_socket_is_closed_after_the_send_timeout() -> None:
    srv, clock = server()
    peer = H2Peer(srv)
    peer.request(1)
    srv.pause_output()  # what the transport reports when the socket buffer is full
    srv.send_head(1, Response(200, []))
    assert srv.send_data(1, b"x" * 200_000) is False
    clock.advance(Http2Settings().send_timeout)
    assert any(isinstance(e, ConnectionEnded) for e in srv.tick())


# ---- idle connections -----------------------------------------------------------------------------------------

def test_an_idle_connection_is_closed_and_pings_do_not_keep_it_open() -> None:
    srv, clock = server()
    peer = H2Peer(srv)
    peer.request(1)
    serve(srv, 1)
    peer.read()
    for _ in range(5):
        clock.advance(Http2Settings().idle_timeout / 6)
        peer.client.ping(b"keepmeup")
        peer.flush()
        assert not srv.tick()
    clock.advance(Http2Settings().idle_timeout / 6)
    events = srv.tick()
    peer.read()
    assert any(isinstance(e, ConnectionEnded) for e in events)
    goaway = peer.goaway()
    assert goaway is not None and goaway.error_code == codes.NO_ERROR and goaway.last_stream_id == 1


def test_a_connection_with_a_stream_in_flight_is_not_idle() -> None:
    srv, clock = server()
    peer = H2Peer(srv)
    peer.request(1)
    clock.advance(Http2Settings().idle_timeout * 2)
    assert not srv.tick()
    assert not srv.closing


# ---- DATA on closed streams (CVE-2019-9514: each would be answered with RST_STREAM) ----------------------------

def test_data_on_a_reset_stream_is_bounded() -> None:
    srv, _ = server()
    peer = H2Peer(srv, learn_settings=False)
    peer.request(1, end=False)
    peer.raw(RstStreamFrame(1, error_code=codes.CANCEL))
    sent = 0
    while not peer.ended() and sent < 10_000:
        peer.raw(DataFrame(1, data=b"x"))
        sent += 1
    assert sent == Http2Settings().max_closed_stream_data + 1
    goaway = peer.goaway()
    assert goaway is not None and goaway.error_code == codes.ENHANCE_YOUR_CALM


def test_an_early_response_asks_the_client_to_stop_its_body_without_error() -> None:
    srv, _ = server()
    peer = H2Peer(srv)
    peer.request(1, end=False, method="POST")
    peer.client.send_data(1, b"part of a large upload")
    peer.flush()
    srv.send_head(1, Response(413, []))
    srv.send_end(1, [])
    peer.read()
    assert peer.resets() == {1: codes.NO_ERROR}  # RFC 9113 §8.1
