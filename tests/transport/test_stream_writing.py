"""SocketStream on real non-blocking sockets, the writing side of asyncio's Transport/Protocol contract:
write-buffer limits (pause_writing/resume_writing), exact buffer sizes, writelines, and the ends of a
stream: close after flush, abort, write_eof and half-close.

The contract tests run against both streams (the `variant` fixture, tests/transport/conftest.py): the plain
SocketStream, and TlsStream against a TLS peer (support.tls_peer.TlsPeer), which shares SocketStream's
readiness, flow control, half-close and close-after-flush code. Every test runs on each loop rsp runs on
(the `loop` fixture); the harness is support.stream_harness, the protocol a plain recorder; every loop run
is bounded in time, and every socket is closed in `finally`. The tests that put raw bytes on the socket
(`fill_kernel_buffers`) or count exact buffer sizes stay plain-only: TLS frames and encrypts those bytes.
"""

from __future__ import annotations

import asyncio
import os
import socket

import pytest
import uvloop

from rsp.transport.event_loop import RspEventLoop
from rsp.transport.poller import EDGE_EVENTS
from support.sockets import nonblocking_pair
from support.stream_harness import (
    HIGH,
    LOW,
    MIB,
    Harness,
    Recorder,
    StreamVariant,
    assert_unregistered,
    fill_kernel_buffers,
    reset,
    tcp_pair,
)

# -- writing: flow control ----------------------------------------------------------------------------

def test_write_buffer_limits_pause_once_and_resume_once(loop: asyncio.AbstractEventLoop,
                                                        variant: StreamVariant) -> None:
    h = Harness(loop, *nonblocking_pair(), variant=variant)
    try:
        h.stream.set_write_buffer_limits(high=HIGH, low=LOW)
        blob = os.urandom(4 * MIB)
        crossed = False
        for start in range(0, len(blob), 256 * 1024):
            h.stream.write(blob[start:start + 256 * 1024])  # the peer is not reading
            crossed = crossed or h.stream.get_write_buffer_size() > HIGH
            assert h.proto.count("pause") == (1 if crossed else 0)  # called inside write(), once
        assert crossed
        h.run(0.05)
        assert h.proto.names() == ["made", "pause"]  # nothing drains while the peer does not read
        got, end = h.drain(5.0, want=len(blob))
        assert (end, len(got)) == ("enough", len(blob)) and got == blob
        assert h.run_until(lambda: h.stream.get_write_buffer_size() == 0)
        assert h.proto.names() == ["made", "pause", "resume"]
        [paused_at] = h.proto.args("pause")
        [resumed_at] = h.proto.args("resume")
        assert isinstance(paused_at, int) and paused_at > HIGH
        assert isinstance(resumed_at, int) and resumed_at <= LOW
        h.run(0.05)
        # A writer left registered on an empty buffer would run at once (the socket is writable) and fail;
        # on the stdlib loop remove_writer() also says so directly.
        assert h.proto.names() == ["made", "pause", "resume"]
        if isinstance(loop, RspEventLoop):
            # Watched edge-triggered: one registration for good, and an edge is reported once, so nothing
            # can spin; what matters is that the stream still watches (and nothing else was registered).
            assert loop.rsp_poller.interest(h.fd) == EDGE_EVENTS
        elif not isinstance(loop, uvloop.Loop):
            assert loop.remove_writer(h.fd) is False
        assert not h.stream.is_closing()
        assert h.loop_errors == []
    finally:
        h.close()


def test_write_buffer_size_counts_exactly_what_is_queued(loop: asyncio.AbstractEventLoop) -> None:
    ours, peer = nonblocking_pair()
    h = Harness(loop, ours, peer, start=False)
    try:
        filled = fill_kernel_buffers(ours)  # so that nothing the stream writes can be sent at once
        h.stream.start()
        assert h.stream.get_write_buffer_size() == 0
        h.stream.write(b"a" * 1000)
        assert h.stream.get_write_buffer_size() == 1000
        h.stream.writelines([b"b" * 500, b"", b"c" * 24])
        h.stream.write(b"")
        assert h.stream.get_write_buffer_size() == 1524
        got, end = h.drain(3.0, want=filled + 1524)
        assert (end, len(got)) == ("enough", filled + 1524)
        assert got[filled:] == b"a" * 1000 + b"b" * 500 + b"c" * 24
        assert h.run_until(lambda: h.stream.get_write_buffer_size() == 0)
        assert h.proto.names() == ["made"]
    finally:
        h.close()


def test_writelines_with_nothing_queued_sends_every_part_at_once(loop: asyncio.AbstractEventLoop,
                                                                 variant: StreamVariant) -> None:
    """A head and a body (a cache hit, a local reply) handed over together leave together: nothing is queued
    when the socket has room for them all, and they arrive in order."""
    h = Harness(loop, *nonblocking_pair(), variant=variant)
    try:
        parts = [b"HTTP/1.1 200 OK\r\n\r\n", b"", b"b" * 20_000, b"end"]
        h.stream.writelines(parts)
        if variant.kind == "plain":
            assert h.stream.get_write_buffer_size() == 0
        got, end = h.drain(3.0, want=sum(map(len, parts)))
        assert (end, got) == ("enough", b"".join(parts))
    finally:
        h.close()


def test_writelines_queues_what_the_socket_did_not_take_in_order(loop: asyncio.AbstractEventLoop) -> None:
    """One gathered send takes what the kernel has room for, possibly ending inside a part: the rest of that
    part and every later part are queued in order, counted against the write-buffer marks, and flushed."""
    h = Harness(loop, *nonblocking_pair())
    try:
        parts = [b"head\r\n\r\n", bytes(range(256)) * 4096, b"", b"tail"]  # 1 MiB in the middle
        total = sum(map(len, parts))
        h.stream.writelines(parts)
        queued = h.stream.get_write_buffer_size()
        assert 0 < queued < total  # the socket took some, not all
        assert h.proto.names() == ["made", "pause"]  # more than the high-water mark is queued
        h.stream.write(b"after")  # a later write goes behind what is queued
        got, end = h.drain(5.0, want=total + 5)
        assert (end, len(got)) == ("enough", total + 5)
        assert got == b"".join(parts) + b"after"
        assert h.run_until(lambda: h.stream.get_write_buffer_size() == 0)
        assert h.proto.names() == ["made", "pause", "resume"]
    finally:
        h.close()


def test_writelines_to_a_full_socket_queues_every_part_in_order(loop: asyncio.AbstractEventLoop) -> None:
    """Nothing queued, but the kernel has no room: the gathered send takes nothing (EAGAIN), and every part
    but the empty one is queued whole, in order, counted exactly, and flushed once the peer reads."""
    ours, peer = nonblocking_pair()
    h = Harness(loop, ours, peer, start=False)
    try:
        filled = fill_kernel_buffers(ours)
        h.stream.start()
        parts = [b"head\r\n\r\n", b"", b"b" * 3000, b"tail"]
        h.stream.writelines(parts)
        assert h.stream.get_write_buffer_size() == 3012  # all of it queued, the empty part no byte
        h.stream.write(b"after")  # behind what is queued
        assert h.stream.get_write_buffer_size() == 3017
        got, end = h.drain(3.0, want=filled + 3017)
        assert (end, len(got)) == ("enough", filled + 3017)
        assert got[filled:] == b"".join(parts) + b"after"
        assert h.run_until(lambda: h.stream.get_write_buffer_size() == 0)
        assert h.proto.names() == ["made"]  # never above the high-water mark
        assert h.loop_errors == []
    finally:
        h.close()


def test_writelines_to_a_reset_peer_fails_the_stream(loop: asyncio.AbstractEventLoop) -> None:
    ours, peer, _ = tcp_pair()
    h = Harness(loop, ours, peer)
    try:
        reset(peer)
        h.run(0.01)
        for _ in range(3):  # the first send after a reset may still succeed; a later one is refused
            h.stream.writelines([b"x" * 1000, b"y" * 100_000])
            h.run(0.01)
        assert h.run_until(h.lost)
        assert h.loop_errors == []
    finally:
        h.close()


def test_more_queued_writes_than_iov_max_still_arrive(loop: asyncio.AbstractEventLoop) -> None:
    ours, peer = nonblocking_pair()
    h = Harness(loop, ours, peer, start=False)
    try:
        filled = fill_kernel_buffers(ours)
        h.stream.start()
        for i in range(2000):  # 2000 small writes, 20 KB: well below the high-water mark
            h.stream.write(b"%09d\n" % i)
        assert h.stream.get_write_buffer_size() == 20_000
        got, end = h.drain(3.0, want=filled + 20_000)
        assert h.proto.args("lost") == []
        assert end == "enough"
        assert got[filled:] == b"".join(b"%09d\n" % i for i in range(2000))
    finally:
        h.close()


# -- close, abort, write_eof --------------------------------------------------------------------------

def test_close_sends_everything_queued_then_eof(loop: asyncio.AbstractEventLoop, variant: StreamVariant) -> None:
    h = Harness(loop, *nonblocking_pair(), variant=variant)
    try:
        blob = os.urandom(MIB)
        h.stream.write(blob)
        queued = h.stream.get_write_buffer_size()
        assert queued > 0
        h.stream.close()
        assert h.stream.is_closing()
        assert not h.lost()  # never from inside close()
        h.stream.write(b"after close")  # ignored, no exception
        h.stream.close()
        assert h.stream.get_write_buffer_size() in (queued, queued + h.ending_bytes)
        h.run(0.05)
        assert not h.lost()  # still waiting for the peer to take what is queued
        assert h.drain(5.0) == (blob, "eof")
        assert h.run_until(h.lost)
        h.stream.close()
        h.stream.abort()
        h.run(0.05)
        assert h.proto.args("lost") == [None]
        # 1 MiB queued is above the default 64 KiB high-water mark; flushing goes below the low one.
        assert h.proto.names() == ["made", "pause", "resume", "lost"]
        assert h.ours.fileno() == -1
        assert h.loop_errors == []
    finally:
        h.close()


def test_close_stops_reading_at_once(loop: asyncio.AbstractEventLoop, variant: StreamVariant) -> None:
    h = Harness(loop, *nonblocking_pair(), variant=variant)
    try:
        blob = os.urandom(MIB)
        h.stream.write(blob)
        h.stream.close()  # still flushing...
        h.peer.sendall(b"too late")  # ...but no longer reading
        h.run(0.05)
        assert h.proto.names() == ["made", "pause"]
        # The peer still gets everything; the bytes it sent were never read, so closing our end makes the
        # kernel report ECONNRESET to the peer instead of EOF (AF_UNIX, like TCP's RST in that case). A TLS
        # peer reads the stream's close_notify (a clean end) after the data, before the reset.
        got, end = h.drain(5.0)
        assert got == blob and end in (("reset",) if h.tls_peer is None else ("eof", "reset"))
        assert h.run_until(h.lost)
        assert h.proto.names() == ["made", "pause", "resume", "lost"] and h.proto.args("lost") == [None]
        assert h.loop_errors == []
    finally:
        h.close()


def test_abort_drops_what_is_queued(loop: asyncio.AbstractEventLoop, variant: StreamVariant) -> None:
    h = Harness(loop, *nonblocking_pair(), variant=variant)
    try:
        blob = os.urandom(MIB)
        h.stream.write(blob)
        queued = h.stream.get_write_buffer_size()
        assert queued > 0
        h.stream.abort()
        assert h.stream.is_closing()
        assert h.ours.fileno() == -1  # closed at once
        assert h.stream.get_write_buffer_size() == 0
        assert not h.lost()
        h.stream.write(b"after abort")  # ignored, no exception
        assert_unregistered(loop, h.fd)
        # The peer gets what the kernel had taken before the abort, then EOF: the queue is gone. (TLS: the
        # queue holds ciphertext, so the plaintext lost is about, not exactly, `queued` bytes.)
        got, end = h.drain(3.0)
        assert end == "eof" and blob.startswith(got) and len(got) <= len(blob) - queued + h.ending_bytes
        if h.tls_peer is None:
            assert got == blob[:len(blob) - queued]
        assert h.run_until(h.lost)
        h.stream.abort()
        h.run(0.05)
        assert h.proto.args("lost") == [None]
        assert h.loop_errors == []
    finally:
        h.close()


@pytest.mark.parametrize("size", [0, 16, 512 * 1024])
def test_write_eof_after_queued_data_and_reading_goes_on(loop: asyncio.AbstractEventLoop,
                                                         variant: StreamVariant, size: int) -> None:
    h = Harness(loop, *nonblocking_pair(), variant=variant)
    try:
        assert h.stream.can_write_eof() is True
        blob = os.urandom(size)
        h.stream.write(blob)
        queued = h.stream.get_write_buffer_size()
        assert (queued > 0) == (size > 100_000)
        h.stream.write_eof()
        h.stream.write(b"after write_eof")  # ignored, no exception (asyncio's transports raise here)
        assert h.stream.get_write_buffer_size() in (queued, queued + h.ending_bytes)
        assert not h.stream.is_closing()
        h.peer.sendall(b"reply")
        assert h.run_until(lambda: h.proto.data == b"reply")
        assert h.drain(5.0) == (blob, "eof")
        h.peer.sendall(b" and more")
        assert h.run_until(lambda: h.proto.data == b"reply and more")
        assert not h.lost()
        h.peer.shutdown(socket.SHUT_WR)  # both sides shut: eof_received's None closes the stream
        assert h.run_until(h.lost)
        assert h.proto.names()[-2:] == ["eof", "lost"] and h.proto.args("lost") == [None]
        assert h.loop_errors == []
    finally:
        h.close()


@pytest.mark.parametrize("ours_first", [True, False])
def test_both_directions_ended_closes_even_when_eof_answered_true(loop: asyncio.AbstractEventLoop,
                                                                  variant: StreamVariant,
                                                                   ours_first: bool) -> None:
    """A tunnel keeps its side open on the peer's EOF (eof_received -> True) and sends its own EOF later, or
    the other way round: once both directions have ended nothing is left to carry, and the stream closes."""
    h = Harness(loop, *nonblocking_pair(), protocol=Recorder(keep_open=True), variant=variant)
    try:
        if ours_first:
            h.stream.write_eof()
            assert h.drain(1.0) == (b"", "eof")
            assert not h.lost()
            h.peer.shutdown(socket.SHUT_WR)
        else:
            h.peer.shutdown(socket.SHUT_WR)
            assert h.run_until(lambda: h.proto.count("eof"))
            assert not h.lost()
            h.stream.write_eof()
        assert h.run_until(h.lost)
        assert h.proto.names()[-1] == "lost" and h.proto.args("lost") == [None]
        assert h.loop_errors == []
    finally:
        h.close()
