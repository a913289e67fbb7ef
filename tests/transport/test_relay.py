"""The byte relay in-process, on socketpairs: order, backpressure bound, half-close, peer loss."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator

import pytest
import uvloop

from rsp.transport.event_loop import RspEventLoop
from rsp.transport.relay import SPLICE_SWITCH_BYTES, Relay, SharedBuffer
from support.sockets import nonblocking_pair

READ_SIZE = 64 * 1024


@pytest.fixture(params=["rsp", "uvloop"])
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    """rsp's own loop (the relay registers on its poller) and uvloop (add_reader/add_writer)."""
    loop: asyncio.AbstractEventLoop = RspEventLoop() if request.param == "rsp" else uvloop.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


class Harness:
    """client_peer <-> [client | relay | upstream] <-> upstream_peer"""

    def __init__(self, loop: asyncio.AbstractEventLoop, read_size: int = READ_SIZE) -> None:
        self.loop = loop
        self.client_peer, client = nonblocking_pair()
        upstream, self.upstream_peer = nonblocking_pair()
        self.closed: list[Relay] = []
        self.relay = Relay(loop, client, upstream, SharedBuffer(read_size), read_size, self.closed.append)
        self.relay.start()

    def run(self, seconds: float) -> None:
        self.loop.run_until_complete(asyncio.sleep(seconds))

    def drain(self, sock: socket.socket, limit: float = 2.0) -> bytes:
        """Read whatever `sock` can give within `limit` seconds of the loop running."""
        out = bytearray()
        deadline = self.loop.time() + limit
        while self.loop.time() < deadline:
            self.run(0.005)
            try:
                chunk = sock.recv(1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def close(self) -> None:
        self.relay.close("test end")
        self.client_peer.close()
        self.upstream_peer.close()


def test_bytes_in_order_both_ways(loop: asyncio.AbstractEventLoop) -> None:
    h = Harness(loop)
    try:
        h.client_peer.sendall(b"request")
        assert h.drain(h.upstream_peer, 0.2) == b"request"
        h.upstream_peer.sendall(b"response")
        assert h.drain(h.client_peer, 0.2) == b"response"
    finally:
        h.close()


def test_a_reader_that_never_reads_bounds_pending_and_stops_reading(loop: asyncio.AbstractEventLoop) -> None:
    h = Harness(loop)
    try:
        # The client never reads: once the kernel buffers fill, the relay holds at most one read and
        # stops reading the upstream, so the upstream's own sends start to fail with EAGAIN.
        blob = os.urandom(256 * 1024)
        stream = bytearray()  # exactly what the upstream managed to send (sends may be partial)
        for _ in range(400):
            try:
                stream += blob[: h.upstream_peer.send(blob)]
            except BlockingIOError:
                h.run(0.01)
                try:
                    stream += blob[: h.upstream_peer.send(blob)]
                except BlockingIOError:
                    break
        sent = len(stream)
        pump = h.relay.u2c
        assert pump.has_pending() and not pump.reading
        pending = len(pump.pending) if pump.pending is not None else pump.piped
        assert pending <= max(READ_SIZE, 1024 * 1024)  # one read, or one pipe's worth when spliced
        assert sent < 400 * len(blob)  # backpressure reached the sender
        # Now the client reads everything: every byte arrives, in order.
        got = h.drain(h.client_peer, 3.0)
        assert got == bytes(stream)
    finally:
        h.close()


def test_half_close_is_propagated_after_pending_data(loop: asyncio.AbstractEventLoop) -> None:
    h = Harness(loop)
    try:
        h.client_peer.sendall(b"last words")
        h.client_peer.shutdown(socket.SHUT_WR)
        assert h.drain(h.upstream_peer, 0.5) == b"last words"  # then EOF (drain stopped on b"")
        h.upstream_peer.sendall(b"reply after EOF")
        h.upstream_peer.shutdown(socket.SHUT_WR)
        assert h.drain(h.client_peer, 0.5) == b"reply after EOF"
        h.run(0.05)
        assert h.closed == [h.relay] and h.relay.reason == "done"
    finally:
        h.close()


def test_backend_reset_still_delivers_what_was_read(loop: asyncio.AbstractEventLoop) -> None:
    h = Harness(loop)
    try:
        h.upstream_peer.sendall(b"partial answer")
        h.run(0.05)
        h.upstream_peer.close()  # the backend goes away
        assert h.drain(h.client_peer, 0.5) == b"partial answer"  # then EOF
        assert h.closed == []  # half-closed: the client may still talk (it will hit the dead backend)
        h.client_peer.sendall(b"anyone there?")
        h.run(0.1)
        assert h.closed == [h.relay]
    finally:
        h.close()


def test_client_gone_closes_the_pair(loop: asyncio.AbstractEventLoop) -> None:
    h = Harness(loop)
    try:
        h.client_peer.close()
        h.run(0.1)
        h.upstream_peer.sendall(b"x" * 100)  # may or may not fail; must not raise inside rsp
        h.run(0.1)
        assert h.closed == [h.relay]
    finally:
        h.close()


def test_bulk_transfer_switches_to_splice_and_stays_exact(loop: asyncio.AbstractEventLoop) -> None:
    h = Harness(loop, read_size=256 * 1024)
    try:
        blob = os.urandom(8 * 1024 * 1024)
        view = memoryview(blob)
        got = bytearray()
        offset = 0
        deadline = loop.time() + 10
        while len(got) < len(blob) and loop.time() < deadline:
            if offset < len(blob):
                try:
                    offset += h.upstream_peer.send(view[offset:offset + SPLICE_SWITCH_BYTES * 4])
                except BlockingIOError:
                    pass
            h.run(0.001)
            try:
                got += h.client_peer.recv(1 << 20)
            except BlockingIOError:
                pass
        assert bytes(got) == blob
        assert h.relay.u2c.pipe_r >= 0, "a bulk direction should have switched to splice"
    finally:
        h.close()


def test_a_bug_in_a_callback_closes_that_relay_instead_of_spinning(loop: asyncio.AbstractEventLoop) -> None:
    h = Harness(loop)
    try:
        # An empty read buffer makes the next recv_into raise ValueError ("buffer too small"): a stand-in
        # for any bug (an attribute set to None would be refused at assignment by the compiled build).
        h.relay.c2u.shared = SharedBuffer(0)
        h.client_peer.sendall(b"boom")
        h.run(0.1)
        assert h.closed == [h.relay]
        assert h.relay.reason.startswith("internal error: ValueError")
    finally:
        h.close()
