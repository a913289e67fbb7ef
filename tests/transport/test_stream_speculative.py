"""SocketStream.start(speculative=True): read an accepted socket before registering it with the poller.

On rsp's loop a speculative stream reads at once and registers only when it must wait: a read found
nothing, or took all there was while reading is still wanted, reading resumes, or a write must wait for
room. What must never happen is a lost request: a client that connects and sends later, data that arrives
while reading is paused, a response too large for one send. On the other loops (level-triggered
add_reader) the flag changes nothing, and the same tests must pass there too.
"""

from __future__ import annotations

import asyncio
import time

from rsp.transport.event_loop import RspEventLoop
from support.sockets import nonblocking_pair
from support.stream_harness import MIB, Harness, fill_kernel_buffers, tcp_pair

REQUEST = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"


def interest(h: Harness) -> int:
    """The poller's registration of the stream's socket (rsp's loop), -1 on the other loops."""
    if isinstance(h.loop, RspEventLoop):
        return h.loop.rsp_poller.interest(h.fd)
    return -1


def speculative_harness(loop: asyncio.AbstractEventLoop, sent_first: bytes = b"") -> Harness:
    ours, peer = nonblocking_pair()
    if sent_first:
        peer.sendall(sent_first)
    h = Harness(loop, ours, peer, start=False)
    h.stream.start(speculative=True)
    return h


def test_data_sent_with_the_connect_is_delivered_inside_start(loop: asyncio.AbstractEventLoop) -> None:
    h = speculative_harness(loop, REQUEST)
    try:
        if isinstance(loop, RspEventLoop):
            assert h.proto.names() == ["made", "data"] and bytes(h.proto.data) == REQUEST
            assert interest(h) != 0  # reading is still wanted: registered for the next bytes
        h.peer.sendall(b"more")
        assert h.run_until(lambda: bytes(h.proto.data) == REQUEST + b"more")
    finally:
        h.close()


def test_a_client_that_connects_and_sends_later_is_read(loop: asyncio.AbstractEventLoop) -> None:
    h = speculative_harness(loop)
    try:
        assert h.proto.names() == ["made"]
        if isinstance(loop, RspEventLoop):
            assert interest(h) != 0  # the first read found nothing: registered
        h.run(0.05)
        h.peer.sendall(REQUEST)
        assert h.run_until(lambda: bytes(h.proto.data) == REQUEST)
        assert h.loop_errors == []
    finally:
        h.close()


def test_a_stream_that_stops_reading_after_its_request_is_never_registered(
        loop: asyncio.AbstractEventLoop) -> None:
    """The `Connection: close` case: the protocol pauses reading in data_received, answers in one send
    and closes; on rsp's loop the socket never reaches epoll."""
    ours, peer = nonblocking_pair()
    peer.sendall(REQUEST)
    h = Harness(loop, ours, peer, start=False)
    try:
        h.proto.hooks["data"] = h.stream.pause_reading
        h.stream.start(speculative=True)
        if isinstance(loop, RspEventLoop):
            assert h.proto.names() == ["made", "data"]
            assert interest(h) == 0
        assert h.run_until(lambda: h.proto.count("data") == 1)
        h.stream.write(b"HTTP/1.1 200 OK\r\n\r\n")
        h.stream.close()
        assert h.run_until(h.lost)
        assert h.drain() == (b"HTTP/1.1 200 OK\r\n\r\n", "eof")
        assert h.loop_errors == []
    finally:
        h.close()


def test_data_that_came_while_paused_is_read_on_resume(loop: asyncio.AbstractEventLoop) -> None:
    ours, peer = nonblocking_pair()
    peer.sendall(REQUEST)
    h = Harness(loop, ours, peer, start=False)
    try:
        h.proto.hooks["data"] = h.stream.pause_reading
        h.stream.start(speculative=True)
        assert h.run_until(lambda: h.proto.count("data") == 1)
        h.proto.hooks.clear()
        h.peer.sendall(b"second")
        h.run(0.05)
        assert bytes(h.proto.data) == REQUEST  # paused: nothing read
        h.stream.resume_reading()
        assert h.run_until(lambda: bytes(h.proto.data) == REQUEST + b"second")
        h.peer.sendall(b"third")  # registered now: later data raises an edge
        assert h.run_until(lambda: bytes(h.proto.data).endswith(b"third"))
    finally:
        h.close()


def test_a_response_too_large_for_one_send_is_flushed(loop: asyncio.AbstractEventLoop) -> None:
    """A stream never registered must register when a write waits for room, or the rest is never sent."""
    ours, peer, _ = tcp_pair(small_buffers=True)
    peer.sendall(REQUEST)
    time.sleep(0.05)  # on loopback the bytes are in ours's receive queue by now
    h = Harness(loop, ours, peer, start=False)
    try:
        h.proto.hooks["data"] = h.stream.pause_reading
        h.stream.start(speculative=True)
        assert h.run_until(lambda: h.proto.count("data") == 1)
        body = b"r" * (4 * MIB)
        h.stream.write(body)
        assert h.stream.get_write_buffer_size() > 0  # the kernel took only part of it
        h.stream.close()
        assert h.drain(limit=10.0) == (body, "eof")
        assert h.run_until(h.lost)
        assert h.loop_errors == []
    finally:
        h.close()


def test_the_end_of_data_sent_with_the_connect_is_seen(loop: asyncio.AbstractEventLoop) -> None:
    ours, peer = nonblocking_pair()
    peer.sendall(REQUEST)
    peer.shutdown(2 - 1)  # SHUT_WR
    h = Harness(loop, ours, peer, start=False)
    try:
        h.stream.start(speculative=True)
        assert h.run_until(lambda: h.proto.count("eof") == 1)
        assert bytes(h.proto.data) == REQUEST
        assert h.run_until(h.lost)  # eof_received answered None: the stream closes
    finally:
        h.close()


def test_writes_after_a_peer_that_filled_our_buffers_still_flush(loop: asyncio.AbstractEventLoop) -> None:
    """A speculative stream that queued bytes is registered for room to write, also while reading is on."""
    ours, peer, _ = tcp_pair(small_buffers=True)
    h = Harness(loop, ours, peer, start=False)
    try:
        h.stream.start(speculative=True)
        taken = fill_kernel_buffers(ours)
        h.stream.write(b"tail")
        assert h.stream.get_write_buffer_size() == 4
        out, how = h.drain(limit=10.0, want=taken + 4)
        assert how == "enough" and out.endswith(b"tail") and len(out) == taken + 4
    finally:
        h.close()
