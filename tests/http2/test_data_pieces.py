"""Response DATA kept as pieces (rsp.http2.outbound.Stream.take, rsp.http2.core's output): a body chunk is cut
into DATA frames as views of it and joined with the other frames once per data_to_send(). What the client
reads must be exactly what one copy per frame gave: frames in the order queued, lengths and flags right,
payloads the body's bytes in order; h2 (the client) checks every frame."""

from __future__ import annotations

import h2.events as h2e
from hyperframe.frame import DataFrame, PingFrame, WindowUpdateFrame

from rsp.config.model import Http2Settings
from rsp.http2.core import DATA_PIECE_MIN
from rsp.http2.outbound import Stream
from rsp.http2.server import ServerConnection
from rsp.pipeline.messages import UNKNOWN_LENGTH, Request, Response
from support.h2_peer import FakeClock, H2Peer
from support.payload import payload

FRAME = 16384  # the client's SETTINGS_MAX_FRAME_SIZE (the default)


def data_frames(peer: H2Peer) -> list[tuple[int, int, bool]]:
    return [(f.stream_id, len(f.data), "END_STREAM" in f.flags) for f in peer.frames if isinstance(f, DataFrame)]


def body_of(peer: H2Peer, stream_id: int) -> bytes:
    return b"".join(bytes(f.data) for f in peer.frames if isinstance(f, DataFrame) and f.stream_id == stream_id)


def test_take_cuts_a_chunk_into_views_and_counts_what_is_left() -> None:
    stream = Stream(1, Request(b"GET", b"https", b"example.test", b"/", []))
    chunk = payload(40000)
    stream.pending.append(chunk)
    stream.pending.append(b"tail")
    stream.pending_bytes = len(chunk) + 4
    pieces = [stream.take(FRAME), stream.take(FRAME), stream.take(FRAME), stream.take(FRAME)]
    assert [len(p) for p in pieces] == [FRAME, FRAME, 40000 - 2 * FRAME, 4]
    assert b"".join(pieces) == chunk + b"tail"
    assert stream.pending_bytes == 0 and not stream.pending and stream.offset == 0
    # A chunk that fits is handed over as it is; a part of one is a view of it, not a copy.
    stream.pending.append(chunk)
    stream.pending_bytes = len(chunk)
    part = stream.take(100)
    assert isinstance(part, memoryview) and part.obj is chunk and bytes(part) == chunk[:100]
    rest = stream.take(len(chunk))
    assert bytes(rest) == chunk[100:] and stream.pending_bytes == 0
    stream.pending.append(chunk)
    stream.pending_bytes = len(chunk)
    assert stream.take(len(chunk)) is chunk


def test_large_data_is_framed_in_order_around_small_frames() -> None:
    srv = ServerConnection(Http2Settings(), FakeClock())
    peer = H2Peer(srv)
    peer.client.increment_flow_control_window(2**30)  # only frame sizes cut the data
    peer.request(1)
    peer.frames.clear()
    first, small, big = payload(20000), b"s" * (DATA_PIECE_MIN - 1), payload(40000)[::-1]
    srv.send_head(1, Response(200, [], UNKNOWN_LENGTH))
    srv.send_data(1, first)  # framed at once (over MAX_DEFERRED_DATA): kept as pieces
    peer.client.ping(b"12345678")
    srv.receive(peer.client.data_to_send())  # its ACK is queued after those pieces
    srv.send_data(1, small)  # small: copied into the buffer behind the ACK
    srv.send_data(1, big)
    srv.send_end(1, [])
    peer.read()
    kinds = [type(f).__name__ for f in peer.frames if not isinstance(f, WindowUpdateFrame)]
    assert kinds == ["HeadersFrame", "DataFrame", "DataFrame", "PingFrame", "DataFrame", "DataFrame",
                     "DataFrame", "DataFrame", "DataFrame"]
    ack = next(f for f in peer.frames if isinstance(f, PingFrame))
    assert "ACK" in ack.flags and ack.opaque_data == b"12345678"
    assert data_frames(peer) == [(1, FRAME, False), (1, 20000 - FRAME, False), (1, len(small), False),
                                 (1, FRAME, False), (1, FRAME, False), (1, 40000 - 2 * FRAME, False), (1, 0, True)]
    assert body_of(peer, 1) == first + small + big
    received = b"".join(e.data for e in peer.client_events if isinstance(e, h2e.DataReceived))
    assert received == first + small + big  # h2 accepted every frame (lengths, flags, windows)
    assert any(isinstance(e, h2e.StreamEnded) for e in peer.client_events)
    assert srv.open_streams == 0


def test_streams_interleave_and_windows_still_hold_data_back() -> None:
    """Two streams' large data through a small window: each frame's payload is its own stream's next
    bytes, whatever the pieces in between; what the window holds back waits in the stream (bounded)."""
    srv = ServerConnection(Http2Settings(), FakeClock())
    peer = H2Peer(srv, client_settings={0x4: 20000})  # SETTINGS_INITIAL_WINDOW_SIZE: 20000 per stream
    peer.client.increment_flow_control_window(2**30)
    peer.flush()
    peer.request(1)
    peer.request(3)
    peer.frames.clear()
    bodies = {1: payload(100_000), 3: payload(70_000)[::-1]}
    for sid in (1, 3):
        srv.send_head(sid, Response(200, [], UNKNOWN_LENGTH))
    for start in range(0, 100_000, 30_000):  # chunks as a backend's reads bring them, alternating
        for sid, body in bodies.items():
            if start < len(body):
                srv.send_data(sid, body[start:start + 30_000])
    for sid in bodies:
        srv.send_end(sid, [])
    peer.read()
    assert len(body_of(peer, 1)) == 20000 and len(body_of(peer, 3)) == 20000  # one window each
    assert srv.buffered(1) == 80_000 and srv.buffered(3) == 50_000
    for _ in range(20):  # the client reads and reopens the windows (h2 acknowledges what it received)
        for event in peer.client_events:
            if isinstance(event, h2e.DataReceived) and event.flow_controlled_length:
                peer.client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        peer.client_events.clear()
        peer.flush()
        if srv.open_streams == 0:
            break
    assert body_of(peer, 1) == bodies[1] and body_of(peer, 3) == bodies[3]
    assert all(length <= FRAME for _, length, _ in data_frames(peer))
    assert srv.open_streams == 0
