"""SocketStream on real non-blocking sockets: asyncio's Transport/Protocol contract for the methods it has.

The contract tests run against both streams (the `variant` fixture, tests/transport/conftest.py): the plain
SocketStream, and TlsStream against a TLS peer (support.tls_peer.TlsPeer), which shares SocketStream's
readiness, flow control, half-close and close-after-flush code. The tests that put raw bytes on the socket
(`fill_kernel_buffers`) or count exact read sizes stay plain-only: TLS frames and encrypts those bytes.

Most tests use an AF_UNIX socketpair; the reset tests use a TCP pair on 127.0.0.1 (a reset is a TCP
thing: SO_LINGER on with a zero timeout makes close() send RST). The protocol is a plain recorder; every
loop run is bounded in time, and every socket is closed in `finally`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator

import pytest
import uvloop

from rsp.logs import LOGGER_NAME
from rsp.transport.event_loop import RspEventLoop
from rsp.transport.poller import EDGE_EVENTS
from rsp.transport.stream import READ_SIZE, SocketStream
from rsp.transport.tls_stream import TlsStream
from support.sockets import nonblocking_pair
from support.tls_peer import TlsPeer
from transport.conftest import StreamVariant

PLAIN = StreamVariant("plain")
CLOSE_NOTIFY_BYTES = 24

HIGH = 64 * 1024
LOW = 16 * 1024
MIB = 1024 * 1024


@pytest.fixture(params=["rsp", "uvloop", "asyncio"])
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    """Every loop rsp runs on (rsp.cli.new_event_loop): its own epoll loop, where streams register on the
    loop's poller instead of add_reader/add_writer, uvloop, and the stdlib loop."""
    loop: asyncio.AbstractEventLoop
    if request.param == "rsp":
        loop = RspEventLoop()
    elif request.param == "uvloop":
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


def assert_unregistered(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """No reader or writer left on `fd`. The stdlib loop says so through remove_reader()/remove_writer()'s
    result; uvloop's return None whatever was registered, so on uvloop the callers' other checks (socket
    closed, no further callbacks, nothing reaching the exception handler) have to do."""
    if isinstance(loop, uvloop.Loop):
        return
    if isinstance(loop, RspEventLoop):
        assert loop.rsp_poller.interest(fd) == 0
        return
    assert loop.remove_reader(fd) is False
    assert loop.remove_writer(fd) is False


def tcp_pair(small_buffers: bool = False) -> tuple[socket.socket, socket.socket, tuple[str, int]]:
    """(ours, peer, peer's address) on 127.0.0.1; small buffers make a few hundred KiB fill the kernel."""
    server = socket.create_server(("127.0.0.1", 0))
    peer = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if small_buffers:
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        peer.connect(server.getsockname())
        ours, address = server.accept()
    except BaseException:
        peer.close()
        raise
    finally:
        server.close()
    if small_buffers:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
    ours.setblocking(False)
    peer.setblocking(False)
    return ours, peer, address


def reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN (SO_LINGER on, timeout 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def fill_kernel_buffers(sock: socket.socket) -> int:
    """Send on `sock` until the kernel takes no more (the peer is not reading); returns the bytes taken."""
    taken = 0
    for size in (64 * 1024, 1024, 1):
        for _ in range(10_000):
            try:
                taken += sock.send(b"k" * size)
            except BlockingIOError:
                break
    return taken


class Recorder:
    """A protocol that records its calls; `hooks[name]` runs inside the callback of that name."""

    def __init__(self, keep_open: bool | None = None) -> None:
        self.keep_open = keep_open
        self.calls: list[tuple[str, object]] = []
        self.data = bytearray()
        self.chunks: list[int] = []  # the size of each data_received
        self.transport: SocketStream | None = None
        self.hooks: dict[str, Callable[[], object]] = {}

    def _event(self, name: str, arg: object = None) -> None:
        self.calls.append((name, arg))
        hook = self.hooks.get(name)
        if hook is not None:
            hook()

    def _buffered(self) -> int:
        assert self.transport is not None
        return self.transport.get_write_buffer_size()

    def connection_made(self, transport: object) -> None:
        assert isinstance(transport, SocketStream)
        self.transport = transport
        self._event("made", transport)

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.chunks.append(len(data))
        self._event("data", len(data))

    def eof_received(self) -> bool | None:
        self._event("eof")
        return self.keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        self._event("lost", exc)

    def pause_writing(self) -> None:
        self._event("pause", self._buffered())

    def resume_writing(self) -> None:
        self._event("resume", self._buffered())

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def count(self, name: str) -> int:
        return self.names().count(name)

    def args(self, name: str) -> list[object]:
        return [arg for call, arg in self.calls if call == name]


class Harness:
    """ours (driven by a SocketStream with a Recorder) <-> peer (a plain socket the test drives)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, ours: socket.socket, peer: socket.socket,
                 protocol: Recorder | None = None, peername: tuple[object, ...] = ("198.51.100.7", 4321),
                 start: bool = True, variant: StreamVariant = PLAIN) -> None:
        self.loop = loop
        self.ours = ours
        self.peer: socket.socket | TlsPeer = peer
        self.fd = ours.fileno()
        self.proto = Recorder() if protocol is None else protocol
        # Anything reaching the loop's exception handler is a bug the stream let escape.
        self.loop_errors: list[dict[str, object]] = []
        loop.set_exception_handler(lambda _loop, context: self.loop_errors.append(context))
        self.tls_peer: TlsPeer | None = None
        # Bytes a stream queues when its direction ends: TLS 1.3's close_notify record (5-byte header, the
        # 2-byte alert and its content type, a 16-byte tag: RFC 8446 §5.2, §6.1); nothing for a plain one.
        self.ending_bytes = CLOSE_NOTIFY_BYTES if variant.kind == "tls" else 0
        if variant.kind == "tls":
            assert variant.server is not None and variant.client is not None
            self.stream: SocketStream = TlsStream(loop, ours, self.proto, variant.server, server_side=True,
                                                  peer=peername)
            self.tls_peer = self.peer = TlsPeer(peer, variant.client, "stream.test")
        else:
            self.stream = SocketStream(loop, ours, self.proto, peername)
        if start:
            self.start()

    def start(self) -> None:
        """Start the stream; a TLS one is run until its handshake is done, so that the tests start from
        the same place on both variants (a connected stream)."""
        self.stream.start()
        if self.tls_peer is not None and not self.stream.is_closing():
            stream = self.stream
            assert isinstance(stream, TlsStream)
            assert self.run_until(lambda: stream.tls.version() is not None)

    def run(self, seconds: float) -> None:
        if self.tls_peer is None:
            self.loop.run_until_complete(asyncio.sleep(seconds))
            return
        deadline = time.monotonic() + seconds
        while True:  # the TLS peer moves its bytes between loop iterations
            self.tls_peer.pump()
            self.loop.run_until_complete(asyncio.sleep(min(0.001, seconds)))
            if time.monotonic() >= deadline:
                break
        self.tls_peer.pump()

    def run_until(self, condition: Callable[[], object], limit: float = 3.0) -> bool:
        deadline = time.monotonic() + limit
        while not condition() and time.monotonic() < deadline:
            self.run(0.002)
        return bool(condition())

    def wait_for(self, name: str, count: int, limit: float = 3.0) -> bool:
        """Run the loop until the protocol has had `count` calls of `name`."""
        return self.run_until(lambda: self.proto.count(name) >= count, limit)

    def lost(self) -> bool:
        return self.proto.count("lost") > 0

    def drain(self, limit: float = 3.0, want: int | None = None) -> tuple[bytes, str]:
        """Read the peer while the loop runs: (bytes, "eof" | "reset" | "enough" | "timeout")."""
        out = bytearray()
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                chunk = self.peer.recv(MIB)
            except BlockingIOError:
                self.run(0.002)
                continue
            except ConnectionResetError:
                return bytes(out), "reset"
            if not chunk:
                return bytes(out), "eof"
            out += chunk
            if want is not None and len(out) >= want:
                return bytes(out), "enough"
        return bytes(out), "timeout"

    def close(self) -> None:
        self.stream.abort()  # a no-op when the stream is already closed; unregisters the fd otherwise
        self.ours.close()
        if self.peer.fileno() != -1:
            self.peer.close()


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


# -- a bug in a protocol callback -----------------------------------------------------------------------

class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("where", ["data", "eof", "pause", "resume"])
def test_a_bug_in_a_protocol_callback_aborts_the_stream_and_is_logged(
        loop: asyncio.AbstractEventLoop, variant: StreamVariant, where: str) -> None:
    logger = logging.getLogger(LOGGER_NAME)
    records = _Records()
    logger.addHandler(records)  # on the logger itself: setup_logging() turns propagation off
    h = Harness(loop, *nonblocking_pair(), variant=variant)
    try:
        def bug() -> None:
            raise RuntimeError(f"bug in {where}")

        h.proto.hooks[where] = bug
        blob = os.urandom(MIB)
        if where == "data":
            h.peer.sendall(b"boom")
        elif where == "eof":
            h.peer.shutdown(socket.SHUT_WR)
        else:
            h.stream.set_write_buffer_limits(high=HIGH, low=LOW)
            h.stream.write(blob)  # pause_writing runs inside write(); write() must not raise
            if where == "resume":
                assert not h.stream.is_closing()
                # resume_writing raises once the queue is at most LOW; what is left then is dropped.
                got, end = h.drain(5.0)
                assert end == "eof" and MIB - LOW <= len(got) <= MIB and got == blob[:len(got)]
        assert h.run_until(h.lost)
        h.run(0.1)  # the loop goes on, and nothing is registered to make it spin
        assert h.proto.count(where) == 1
        assert h.proto.args("lost") == [None]
        assert h.stream.is_closing() and h.ours.fileno() == -1
        assert_unregistered(loop, h.fd)
        errors = [r for r in records.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1
        message = errors[0].getMessage()
        assert "internal error" in message and f"RuntimeError: bug in {where}" in message
        assert "198.51.100.7" in message  # names the connection
        assert errors[0].exc_info is not None
        assert h.loop_errors == []
    finally:
        logger.removeHandler(records)
        h.close()


# -- peer reset (TCP) -----------------------------------------------------------------------------------

def test_peer_reset_while_reading(loop: asyncio.AbstractEventLoop, variant: StreamVariant) -> None:
    ours, peer, address = tcp_pair()
    h = Harness(loop, ours, peer, peername=address, variant=variant)
    try:
        h.run(0.02)
        reset(h.peer)
        assert h.run_until(h.lost)
        h.run(0.05)
        [exc] = h.proto.args("lost")
        assert isinstance(exc, ConnectionResetError)  # recv() reports ECONNRESET
        assert h.proto.names() == ["made", "lost"]
        assert h.ours.fileno() == -1
        assert h.loop_errors == []
    finally:
        h.close()


@pytest.mark.parametrize("closing", [False, True], ids=["open", "after-close"])
def test_peer_reset_with_data_queued(loop: asyncio.AbstractEventLoop, variant: StreamVariant, closing: bool) -> None:
    ours, peer, address = tcp_pair(small_buffers=True)
    h = Harness(loop, ours, peer, peername=address, variant=variant)
    try:
        h.stream.write(os.urandom(4 * MIB))
        h.run(0.05)
        assert h.stream.get_write_buffer_size() > 0  # the peer is not reading: the kernel buffers are full
        if closing:
            h.stream.close()
        reset(h.peer)
        assert h.run_until(h.lost)
        h.run(0.05)
        [exc] = h.proto.args("lost")
        # Open: the reader runs first on the error event and recv() reports ECONNRESET. Closing: only the
        # writer is registered, and send() reports the pending ECONNRESET before any EPIPE.
        assert isinstance(exc, ConnectionResetError)
        assert h.proto.names() == ["made", "pause", "lost"]
        assert h.stream.get_write_buffer_size() == 0
        assert h.ours.fileno() == -1
        assert_unregistered(loop, h.fd)
        assert h.loop_errors == []
    finally:
        h.close()


def test_peer_reset_while_idle_is_found_by_the_next_write(loop: asyncio.AbstractEventLoop,
                                                          variant: StreamVariant) -> None:
    ours, peer, address = tcp_pair()
    h = Harness(loop, ours, peer, peername=address, variant=variant)
    try:
        h.stream.pause_reading()  # nothing registered: the reset goes unnoticed for now
        reset(h.peer)
        h.run(0.05)
        assert h.proto.names() == ["made"]
        h.stream.write(b"anyone there?")  # must not raise
        assert not h.lost()  # connection_lost comes in a later iteration
        assert h.run_until(h.lost)
        [exc] = h.proto.args("lost")
        assert isinstance(exc, ConnectionResetError)
        h.stream.write(b"again")  # ignored once closed
        h.run(0.05)
        assert h.proto.count("lost") == 1
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
