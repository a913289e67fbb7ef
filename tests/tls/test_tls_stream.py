"""TlsStream (rsp.transport.tls_stream) on real non-blocking sockets, both ends TLS streams on one loop:
order, backpressure, half-close, close after flush, handshake failure. On rsp's own loop (edge-triggered)
and on the stdlib loop (level-triggered)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable, Iterator

import pytest

from rsp.transport.event_loop import RspEventLoop
from rsp.transport.tls_stream import TlsStream
from support.payload import payload as content

from .conftest import CertSet, client_context

MIB = 1024 * 1024
HIGH = 64 * 1024
LOW = 16 * 1024


_OPEN: list[TlsStream] = []


@pytest.fixture(params=["rsp", "asyncio"])
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    loop: asyncio.AbstractEventLoop = RspEventLoop() if request.param == "rsp" else asyncio.new_event_loop()
    try:
        yield loop
    finally:
        for stream in _OPEN:
            stream.abort()  # closes its socket (a no-op when the test closed it)
        _OPEN.clear()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()


class Recorder:
    def __init__(self, keep_open: bool = True) -> None:
        self.keep_open = keep_open
        self.transport: TlsStream | None = None
        self.data = bytearray()
        self.events: list[str] = []
        self.lost: list[Exception | None] = []

    def connection_made(self, transport: object) -> None:
        assert isinstance(transport, TlsStream)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool:
        self.events.append("eof")
        return self.keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")


def run_until(loop: asyncio.AbstractEventLoop, condition: Callable[[], object], limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        loop.run_until_complete(asyncio.sleep(0.002))
    return bool(condition())


def server_context(certs: CertSet) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.a.cert_path, certs.a.key_path)
    return context


def pair(loop: asyncio.AbstractEventLoop, certs: CertSet, client_ca: object = None,
         server_keep_open: bool = True) -> tuple[Recorder, Recorder]:
    a, b = socket.socketpair()
    for s in (a, b):
        s.setblocking(False)
    server, client = Recorder(server_keep_open), Recorder()
    s_stream = TlsStream(loop, a, server, server_context(certs), server_side=True)
    c_stream = TlsStream(loop, b, client, client_context(client_ca or certs.ca.path), server_side=False,
                         server_hostname="a.example")
    for stream in (s_stream, c_stream):
        stream.set_write_buffer_limits(HIGH, LOW)
    _OPEN.extend((s_stream, c_stream))
    s_stream.start()
    c_stream.start()
    return server, client


def test_bytes_in_order_both_ways_with_backpressure(loop: asyncio.AbstractEventLoop, certs: CertSet) -> None:
    server, client = pair(loop, certs)
    assert client.transport is not None and server.transport is not None
    payload = bytes(range(256)) * (8 * 1024)  # 2 MiB
    server.transport.pause_reading()
    client.transport.write(payload)  # queued before the handshake: written once it completes
    assert run_until(loop, lambda: "pause" in client.events)  # the paused reader holds it back
    assert len(server.data) == 0
    server.transport.resume_reading()
    assert run_until(loop, lambda: len(server.data) == len(payload))
    assert bytes(server.data) == payload
    assert "resume" in client.events and client.transport.get_write_buffer_size() == 0
    server.transport.writelines([b"head ", b"and ", b"body"])
    assert run_until(loop, lambda: bytes(client.data) == b"head and body")


def test_half_close_keeps_the_other_direction(loop: asyncio.AbstractEventLoop, certs: CertSet) -> None:
    server, client = pair(loop, certs)
    assert client.transport is not None and server.transport is not None
    client.transport.write(b"request")
    client.transport.write_eof()  # close_notify, then SHUT_WR
    assert run_until(loop, lambda: server.events == ["eof"])
    assert bytes(server.data) == b"request"
    server.transport.write(b"response after the client's end")
    assert run_until(loop, lambda: bytes(client.data) == b"response after the client's end")
    server.transport.close()
    assert run_until(loop, lambda: client.events == ["eof"] and server.lost == [None])
    client.transport.close()
    assert run_until(loop, lambda: client.lost == [None])


def test_close_flushes_then_notifies(loop: asyncio.AbstractEventLoop, certs: CertSet) -> None:
    server, client = pair(loop, certs, server_keep_open=False)
    assert client.transport is not None and server.transport is not None
    assert run_until(loop, lambda: client.transport is not None and client.transport.tls.version() is not None)
    big = b"x" * (3 * MIB)
    client.transport.write(big)
    client.transport.close()  # everything queued goes out, then close_notify
    assert run_until(loop, lambda: len(server.data) == len(big) and server.events == ["eof"])
    assert run_until(loop, lambda: server.lost and client.lost)
    assert client.lost == [None] and client.transport.get_write_buffer_size() == 0
    # The server answers the close_notify with its own; the client's socket may be gone by then (it closed,
    # not half-closed), which the server hears as EPIPE/ECONNRESET: nothing was lost, only the reply.
    assert server.lost[0] is None or isinstance(server.lost[0], ConnectionError)


def test_handshake_failure_reaches_the_protocol(loop: asyncio.AbstractEventLoop, certs: CertSet) -> None:
    server, client = pair(loop, certs, client_ca=certs.other_ca.path)  # the client does not trust the server
    assert client.transport is not None
    client.transport.write(b"never sent")
    assert run_until(loop, lambda: client.lost and server.lost)
    assert isinstance(client.lost[0], ssl.SSLCertVerificationError)
    assert isinstance(server.lost[0], ssl.SSLError)  # the client's alert
    assert server.data == bytearray()


@pytest.mark.parametrize("server_first", [True, False])
def test_both_directions_ended_closes_even_when_eof_answered_true(loop: asyncio.AbstractEventLoop, certs: CertSet,
                                                                   server_first: bool) -> None:
    """A tunnel (WebSocket between a TLS listener and a TLS pool) keeps its side open on the peer's end and
    ends its own later: once both directions have ended the stream closes, as the plain stream does."""
    server, client = pair(loop, certs)  # both answer eof_received with True (keep open)
    assert client.transport is not None and server.transport is not None
    first, second = (server, client) if server_first else (client, server)
    assert first.transport is not None and second.transport is not None
    first.transport.write(b"last words")
    first.transport.write_eof()
    assert run_until(loop, lambda: second.events == ["eof"] and bytes(second.data) == b"last words")
    assert not first.lost and not second.lost
    second.transport.write_eof()
    assert run_until(loop, lambda: first.lost and second.lost)
    assert first.lost == [None] and second.lost == [None]


def test_writes_behind_a_full_socket_keep_their_order_and_the_end_comes_last(loop: asyncio.AbstractEventLoop,
                                                                           certs: CertSet) -> None:
    """Plaintext the socket cannot take yet waits unencrypted behind the ciphertext it could not take
    (OpenSSL gets a chunk at a time): large and small writes come out in order, and the close_notify that
    write_eof asks for while they wait goes after all of them."""
    server, client = pair(loop, certs)
    assert client.transport is not None and server.transport is not None
    assert run_until(loop, lambda: client.transport is not None and client.transport.tls.version() is not None)
    server.transport.pause_reading()
    parts = [content(3 * MIB), b"small", content(MIB + 5)[::-1], b"x", content(70_000)[1000:]]
    for part in parts:
        client.transport.write(part)
    client.transport.write_eof()
    assert "pause" in client.events  # far over the high-water mark, counted before the socket took it
    assert client.transport.get_write_buffer_size() > HIGH
    server.transport.resume_reading()
    assert run_until(loop, lambda: server.events == ["eof"])
    assert bytes(server.data) == b"".join(parts)
    assert client.transport.get_write_buffer_size() == 0 and "resume" in client.events
