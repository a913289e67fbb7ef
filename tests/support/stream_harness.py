"""The harness of the SocketStream/TlsStream tests (tests/transport/test_stream_*.py): a stream on one end
of a real socket pair, driven by a recording protocol, and a peer socket (plain, or TLS through
support.tls_peer.TlsPeer) the test drives; plus the socket helpers those tests share (TCP pairs, resets,
full kernel buffers)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import uvloop

from rsp.transport.event_loop import RspEventLoop
from rsp.transport.stream import SocketStream
from rsp.transport.tls_stream import TlsStream
from support.tls_peer import TlsPeer


@dataclass(frozen=True)
class StreamVariant:
    """"plain": SocketStream against a plain peer socket; "tls": TlsStream (server side) against a TLS peer
    (support.tls_peer.TlsPeer) over the same kind of socket pair."""

    kind: str
    server: ssl.SSLContext | None = None
    client: ssl.SSLContext | None = None


PLAIN = StreamVariant("plain")
CLOSE_NOTIFY_BYTES = 24

HIGH = 64 * 1024
LOW = 16 * 1024
MIB = 1024 * 1024


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

