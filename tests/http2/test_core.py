"""rsp's own HTTP/2 frame layer (rsp.http2.core, rsp.http2.wire) through ServerConnection: the RFC 9113 rules
h2 used to keep, with h2 as the client (it parses and checks every frame rsp writes) and raw frames for the
protocol errors."""

from __future__ import annotations

import dataclasses

import h2.events as h2e
import hpack
import pytest
from hyperframe.frame import (
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
from rsp.http2.core import FrameConnection
from rsp.http2.events import RequestData, RequestEnded, RequestOpened, StreamCancelled
from rsp.http2.server import ServerConnection
from rsp.pipeline.messages import Response
from support.h2_peer import FakeClock, H2Peer


def server(**limits: object) -> ServerConnection:
    return ServerConnection(dataclasses.replace(Http2Settings(), **limits), FakeClock())


def cancelled(peer: H2Peer) -> dict[int, int]:
    return {e.stream_id: e.error_code for e in peer.events if isinstance(e, StreamCancelled)}


# ---- Content-Length against the DATA received (§8.1.1) -------------------------------------------------------

def test_body_longer_than_content_length_resets_the_stream_only() -> None:
    srv = server()
    peer = H2Peer(srv)
    peer.request(1, end=False, method="POST", extra=[("content-length", "5")])
    peer.client.send_data(1, b"0123456789")
    events = peer.flush()
    assert not any(isinstance(e, RequestData) for e in events)  # nothing past the length reaches a backend
    assert peer.resets() == {1: codes.PROTOCOL_ERROR}
    peer.request(3)
    assert not peer.ended()
    assert [e.stream_id for e in peer.events if isinstance(e, RequestOpened)] == [1, 3]


def test_body_shorter_than_content_length_resets_the_stream() -> None:
    srv = server()
    peer = H2Peer(srv)
    peer.request(1, end=False, method="POST", extra=[("content-length", "10")])
    peer.client.send_data(1, b"01234", end_stream=True)
    events = peer.flush()
    assert not any(isinstance(e, RequestEnded) for e in events)
    assert cancelled(peer) == {1: codes.PROTOCOL_ERROR}


def test_body_matching_content_length_passes() -> None:
    srv = server()
    peer = H2Peer(srv)
    peer.request(1, end=False, method="POST", extra=[("content-length", "10")])
    peer.client.send_data(1, b"01234")
    peer.client.send_data(1, b"56789", end_stream=True)
    events = peer.flush()
    assert [type(e).__name__ for e in events] == ["RequestData", "RequestData", "RequestEnded"]


# ---- what rsp writes, read by h2 ------------------------------------------------------------------------------

def test_a_large_head_is_split_into_continuation_frames() -> None:
    srv = server()
    peer = H2Peer(srv)
    peer.request(1)
    fields = [(b"x-big-%d" % i, b"v" * 1000) for i in range(40)]  # ~40 KB, over a 16 KiB frame
    srv.send_head(1, Response(200, fields))
    srv.send_end(1, [])
    peer.read()
    kinds = [type(f).__name__ for f in peer.frames if f.stream_id == 1]
    assert kinds[:2] == ["HeadersFrame", "ContinuationFrame"]
    head = next(e for e in peer.client_events if isinstance(e, h2e.ResponseReceived))
    assert head.headers[1:] == fields


def test_data_frames_respect_the_clients_max_frame_size_and_windows() -> None:
    srv = server()
    peer = H2Peer(srv, client_settings={0x4: 20000})  # SETTINGS_INITIAL_WINDOW_SIZE 20000
    peer.request(1)
    srv.send_head(1, Response(200, []))
    assert srv.send_data(1, b"d" * 50000)
    peer.read()
    sizes = [len(f.data) for f in peer.frames if isinstance(f, DataFrame)]
    assert sizes == [16384, 20000 - 16384]  # the stream window stops it
    peer.client.acknowledge_received_data(20000, 1)
    peer.client.increment_flow_control_window(30000, 1)
    peer.flush()
    assert sum(len(f.data) for f in peer.frames if isinstance(f, DataFrame)) == 50000


def test_a_window_shrunk_by_settings_goes_negative_and_recovers() -> None:
    """§6.9.2: SETTINGS_INITIAL_WINDOW_SIZE changes every open stream's window, even below zero."""
    srv = server()
    peer = H2Peer(srv)
    peer.request(1)
    srv.send_head(1, Response(200, []))
    srv.send_data(1, b"d" * 30000)
    peer.read()
    peer.raw(SettingsFrame(0, settings={0x4: 10000}))  # window 65535 -> 10000, 30000 already sent
    srv.send_data(1, b"e" * 10)
    peer.read()
    assert sum(len(f.data) for f in peer.frames if isinstance(f, DataFrame)) == 30000
    peer.raw(WindowUpdateFrame(1, window_increment=20010))  # back to 10 available
    assert sum(len(f.data) for f in peer.frames if isinstance(f, DataFrame)) == 30010


def test_settings_and_ping_are_acknowledged() -> None:
    srv = server()
    peer = H2Peer(srv)
    peer.raw(PingFrame(0, opaque_data=b"12345678"), SettingsFrame(0, settings={0x1: 65536}))
    acks = [f for f in peer.frames if isinstance(f, PingFrame) and "ACK" in f.flags]
    assert [a.opaque_data for a in acks] == [b"12345678"]
    settings_acks = [f for f in peer.frames if isinstance(f, SettingsFrame) and "ACK" in f.flags]
    assert len(settings_acks) == 2  # the client's preface SETTINGS, and this one's
    assert not peer.ended()
    # A larger HPACK table offered by the client: rsp's encoder keeps to its own bound.
    assert srv._core.encoder.table.max_size == 4096


def test_padding_is_returned_to_the_windows() -> None:
    srv = server()
    peer = H2Peer(srv)
    peer.request(1, end=False, method="POST")
    frame = DataFrame(1, data=b"x" * 10, flags=["PADDED"])
    frame.pad_length = 200
    events = peer.raw(frame)
    assert [e.data for e in events if isinstance(e, RequestData)] == [b"x" * 10]
    srv.acknowledge(1, 10)
    core = srv._core
    assert isinstance(core, FrameConnection)
    assert core._conn_recv + core._conn_to_ack == core._conn_max


def test_priority_frames_are_ignored() -> None:
    srv = server()
    peer = H2Peer(srv)
    peer.request(1, end=False, method="POST")
    peer.raw(PriorityFrame(1, depends_on=0, stream_weight=16), PriorityFrame(7, depends_on=1))
    peer.client.send_data(1, b"ok", end_stream=True)
    assert peer.flush() == [RequestData(1, b"ok"), RequestEnded(1, [])]


# ---- protocol errors ---------------------------------------------------------------------------------------

def headers(sid: int) -> bytes:
    block = hpack.Encoder().encode([(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a"),
                                    (b":path", b"/")])
    return HeadersFrame(sid, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize()


def raw(*frames: Frame) -> bytes:
    return b"".join(f.serialize() for f in frames)


DATA_ON_STREAM_0 = b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x"


@pytest.mark.parametrize(("setup", "attack", "code"), [
    ("", DATA_ON_STREAM_0, codes.PROTOCOL_ERROR),  # DATA on stream 0 (§6.1)
    ("", raw(DataFrame(9, data=b"x")), codes.PROTOCOL_ERROR),  # DATA on an idle stream (§5.1)
    ("", headers(2), codes.PROTOCOL_ERROR),  # a client stream with an even id (§5.1.1)
    ("", raw(RstStreamFrame(11)), codes.PROTOCOL_ERROR),  # RST_STREAM on an idle stream (§6.4)
    ("", raw(WindowUpdateFrame(0, window_increment=0)), codes.PROTOCOL_ERROR),  # increment 0 (§6.9)
    ("", raw(WindowUpdateFrame(0, window_increment=2**31 - 1)), codes.FLOW_CONTROL_ERROR),  # §6.9.1
    ("", raw(SettingsFrame(0, settings={0x5: 100})), codes.PROTOCOL_ERROR),  # MAX_FRAME_SIZE < 16384
    ("", raw(SettingsFrame(0, settings={0x4: 2**31})), codes.FLOW_CONTROL_ERROR),  # window over 2^31-1
    ("", raw(SettingsFrame(0, settings={0x2: 2})), codes.PROTOCOL_ERROR),  # ENABLE_PUSH not 0/1 (§6.5.2)
    ("", raw(HeadersFrame(1, data=b"\x82"), PingFrame(0, opaque_data=b"8 octets")),
     codes.PROTOCOL_ERROR),  # a header block interrupted by another frame (§6.10)
    ("served", headers(1), codes.STREAM_CLOSED),  # HEADERS again on a closed stream (§5.1)
    ("post", raw(*[DataFrame(1, data=b"x" * 16384)] * 5), codes.FLOW_CONTROL_ERROR),  # past the window
])
def test_protocol_errors_end_the_connection(setup: str, attack: bytes, code: int) -> None:
    srv = server()
    peer = H2Peer(srv)
    if setup == "post":
        peer.request(1, end=False, method="POST")
    elif setup == "served":
        peer.request(1)
        srv.send_head(1, Response(200, []))
        srv.send_end(1, [])
        peer.read()
    peer.raw_bytes(attack)
    assert peer.ended()
    goaway = peer.goaway()
    assert goaway is not None and goaway.error_code == code


def test_a_bad_preface_or_a_first_frame_other_than_settings_ends_the_connection() -> None:
    srv = server()
    srv.receive(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + PingFrame(0, opaque_data=b"12345678").serialize())
    assert srv.closing
    core = FrameConnection(Http2Settings())
    with pytest.raises(Exception, match="preface"):
        core.receive_data(b"GET / HTTP/1.1\r\n\r\n" + b"x" * 10)


def test_frames_the_client_sent_before_seeing_our_reset_are_ignored() -> None:
    """§5.1: after rsp resets a stream, its DATA in flight is not an error, and its window comes back."""
    srv = server()
    peer = H2Peer(srv)
    peer.request(1, end=False, method="POST")
    srv.reset(1, code=codes.CANCEL)
    peer.raw(DataFrame(1, data=b"late" * 100))
    assert not peer.ended()
    assert peer.resets() == {1: codes.CANCEL}
    core = srv._core
    assert core._conn_recv + core._conn_to_ack == core._conn_max


def test_remembered_good_fields_do_not_let_a_bad_value_through() -> None:
    """heads memoises whole fields that passed its checks; the same name with a bad value is still refused."""
    srv = server()
    peer = H2Peer(srv)
    peer.request(1, extra=[("x-note", "fine")])
    peer.request(3, extra=[("x-note", "fine")])
    peer.request(5, extra=[("x-note", "fine ")])  # trailing space (§8.2.1)
    assert [e.stream_id for e in peer.events if isinstance(e, RequestOpened)] == [1, 3]
    assert peer.resets() == {5: codes.PROTOCOL_ERROR}
