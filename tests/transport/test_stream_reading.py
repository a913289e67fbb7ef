"""SocketStream on real non-blocking sockets, the reading side of asyncio's Transport/Protocol contract:
start and connection_made, data in order, the peer's EOF (closing, or kept open by eof_received), pausing
and resuming reading, and get_extra_info.

The contract tests run against both streams (the `variant` fixture, tests/transport/conftest.py): the plain
SocketStream, and TlsStream against a TLS peer (support.tls_peer.TlsPeer), which shares SocketStream's
readiness, flow control, half-close and close-after-flush code. Every test runs on each loop rsp runs on
(the `loop` fixture); the harness is support.stream_harness, the protocol a plain recorder; every loop run
is bounded in time, and every socket is closed in `finally`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time

from rsp.transport.stream import READ_SIZE
from support.sockets import nonblocking_pair
from support.stream_harness import (
    MIB,
    Harness,
    Recorder,
    StreamVariant,
    tcp_pair,
)

# -- start, reading -----------------------------------------------------------------------------------

def test_start_calls_connection_made_then_delivers_a_large_payload_in_order(
        loop: asyncio.AbstractEventLoop, variant: StreamVariant) -> None:
    h = Harness(loop, *nonblocking_pair(), start=False, variant=variant)
    try:
        assert h.proto.calls == []
        h.stream.start()
        assert h.proto.calls == [("made", h.stream)]
        blob = os.urandom(MIB)
        view = memoryview(blob)
        offset = 0
        deadline = time.monotonic() + 5
        while len(h.proto.data) < len(blob) and time.monotonic() < deadline:
            if offset < len(blob):
                try:
                    offset += h.peer.send(view[offset:offset + 256 * 1024])
                except BlockingIOError:
                    pass
            h.run(0.001)
        assert bytes(h.proto.data) == blob
        assert max(h.proto.chunks) <= READ_SIZE
        assert len(h.proto.chunks) >= len(blob) // READ_SIZE
        assert set(h.proto.names()[1:]) == {"data"}
        assert h.loop_errors == []
    finally:
        h.close()


def test_close_inside_connection_made_reads_nothing(loop: asyncio.AbstractEventLoop, variant: StreamVariant) -> None:
    ours, peer = nonblocking_pair()
    peer.sendall(b"never read")
    h = Harness(loop, ours, peer, start=False, variant=variant)
    try:
        h.proto.hooks["made"] = h.stream.close
        h.stream.start()
        assert h.stream.is_closing() and h.proto.names() == ["made"]  # connection_lost comes later
        assert h.run_until(h.lost)
        h.run(0.05)
        assert h.proto.calls[1:] == [("lost", None)]
        assert h.ours.fileno() == -1
        assert h.loop_errors == []
    finally:
        h.close()


# -- peer EOF -----------------------------------------------------------------------------------------

def test_peer_eof_with_default_answer_closes_in_a_later_iteration(loop: asyncio.AbstractEventLoop,
                                                                  variant: StreamVariant) -> None:
    h = Harness(loop, *nonblocking_pair(), variant=variant)
    try:
        # A callback scheduled from inside eof_received runs before connection_lost: the stream closed
        # after eof_received returned, and connection_lost was scheduled, not called from inside.
        h.proto.hooks["eof"] = lambda: loop.call_soon(h.proto.calls.append, ("next callback", None))
        h.peer.sendall(b"last words")
        h.peer.shutdown(socket.SHUT_WR)
        assert h.run_until(h.lost)
        h.run(0.05)
        assert h.proto.names() == ["made", "data", "eof", "next callback", "lost"]
        assert h.proto.data == b"last words"
        assert h.proto.args("lost") == [None]
        assert h.stream.is_closing()
        assert h.ours.fileno() == -1
        assert h.drain(1.0) == (b"", "eof")
        assert h.loop_errors == []
    finally:
        h.close()


def test_peer_eof_answered_true_keeps_our_side_writable(loop: asyncio.AbstractEventLoop,
                                                        variant: StreamVariant) -> None:
    h = Harness(loop, *nonblocking_pair(), protocol=Recorder(keep_open=True), variant=variant)
    try:
        h.peer.shutdown(socket.SHUT_WR)
        assert h.run_until(lambda: h.proto.count("eof"))
        h.run(0.05)  # a level-triggered EOF left registered would call eof_received again and again
        assert h.proto.names() == ["made", "eof"]
        assert not h.stream.is_closing()
        h.stream.write(b"answer after your EOF")
        assert h.drain(1.0, want=21) == (b"answer after your EOF", "enough")
        h.stream.close()
        assert h.drain(1.0) == (b"", "eof")
        assert h.run_until(h.lost)
        assert h.proto.names() == ["made", "eof", "lost"] and h.proto.args("lost") == [None]
        assert h.loop_errors == []
    finally:
        h.close()


# -- reading: flow control ----------------------------------------------------------------------------

def test_pause_reading_holds_data_and_eof_until_resumed(loop: asyncio.AbstractEventLoop,
                                                        variant: StreamVariant) -> None:
    h = Harness(loop, *nonblocking_pair(), variant=variant)
    try:
        h.stream.pause_reading()
        h.peer.sendall(b"sent while paused")
        h.peer.shutdown(socket.SHUT_WR)
        h.run(0.1)
        assert h.proto.names() == ["made"]
        h.stream.resume_reading()
        assert h.run_until(h.lost)
        assert h.proto.data == b"sent while paused"
        assert h.proto.names() == ["made", "data", "eof", "lost"]
        assert h.loop_errors == []
    finally:
        h.close()


def test_pausing_inside_data_received_takes_one_read_per_resume(loop: asyncio.AbstractEventLoop,
                                                                variant: StreamVariant) -> None:
    h = Harness(loop, *nonblocking_pair(), variant=variant)
    try:
        h.proto.hooks["data"] = h.stream.pause_reading
        blob = os.urandom(192 * 1024)
        sent = 0
        while sent < len(blob):  # the peer's kernel buffer may take it in several sends
            try:
                sent += h.peer.send(blob[sent:])
            except BlockingIOError:
                break
        assert sent >= READ_SIZE * 2
        rounds = 0
        while len(h.proto.data) < sent and rounds < 50:
            assert h.wait_for("data", rounds + 1)
            h.run(0.02)
            assert len(h.proto.chunks) == rounds + 1  # paused again: no further read
            rounds += 1
            h.stream.resume_reading()
        assert bytes(h.proto.data) == blob[:sent]
        assert rounds >= 3
        assert h.loop_errors == []
    finally:
        h.close()


# -- extra info -----------------------------------------------------------------------------------------

def test_extra_info(loop: asyncio.AbstractEventLoop, variant: StreamVariant) -> None:
    ours, peer, address = tcp_pair()
    h = Harness(loop, ours, peer, peername=address, variant=variant)
    anonymous = Harness(loop, *nonblocking_pair(), peername=(), variant=variant)
    try:
        assert h.stream.get_extra_info("peername") == address == peer.getsockname()
        assert h.stream.get_extra_info("sockname") == ours.getsockname()
        assert h.stream.get_extra_info("socket") is ours
        assert h.stream.get_extra_info("no such thing") is None
        assert h.stream.get_extra_info("no such thing", "default") == "default"
        assert h.stream.can_write_eof() is True
        assert anonymous.stream.get_extra_info("peername") is None
        assert anonymous.stream.get_extra_info("peername", "unknown") == "unknown"
    finally:
        h.close()
        anonymous.close()
