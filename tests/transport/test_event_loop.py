"""rsp's own event loop (rsp.transport.event_loop, rsp.transport.poller) on real sockets: asyncio's
contract (timers, call_soon, call_soon_threadsafe, streams, stop) and the poller's own rules (native
watchers, edge-triggered watches, deferred reads, stale events of a reused descriptor, errors in a
callback)."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import threading
from collections.abc import Iterator

import pytest

from rsp.transport.event_loop import RspEventLoop
from rsp.transport.poller import EDGE_EVENTS, CallbackWatcher, Poller
from rsp.transport.stream import MAX_EDGE_READS, READ_SIZE, SocketStream
from support.sockets import nonblocking_pair


@pytest.fixture
def loop() -> Iterator[RspEventLoop]:
    loop = RspEventLoop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    loop.errors = errors  # type: ignore[attr-defined]
    try:
        yield loop
    finally:
        loop.close()


class Recorder:
    """Writes down what a watcher was told (registered through a CallbackWatcher: an interpreted class
    cannot subclass the compiled Watcher)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.edges: list[int] = []
        self.watcher = CallbackWatcher(lambda: self.seen.append("read"), lambda: self.seen.append("write"),
                                       self.edges.append)


def run_briefly(loop: asyncio.AbstractEventLoop, seconds: float = 0.05) -> None:
    loop.run_until_complete(asyncio.sleep(seconds))


def test_timers_run_in_order_and_cancelled_ones_never(loop: RspEventLoop) -> None:
    ran: list[int] = []
    handles = [loop.call_later(0.001 * (i % 7), ran.append, i) for i in range(300)]
    # More than half of more than 100 timers cancelled: the loop purges its heap (its other branch).
    for handle in handles[::3] + handles[1::3]:
        handle.cancel()
    run_briefly(loop, 0.05)
    kept = [i for i in range(300) if i % 3 == 2]
    assert sorted(ran) == kept
    # By deadline (a loaded machine may take more than the 1 ms step to schedule them all: order by the
    # deadlines the handles hold, not by the delays asked for).
    assert ran == sorted(kept, key=lambda i: (handles[i].when(), i))
    assert all(not h._scheduled for h in handles)  # type: ignore[attr-defined]


def test_call_soon_threadsafe_wakes_a_sleeping_loop(loop: RspEventLoop) -> None:
    done = loop.create_future()
    threading.Timer(0.05, lambda: loop.call_soon_threadsafe(done.set_result, "woken")).start()
    assert loop.run_until_complete(asyncio.wait_for(done, 5)) == "woken"


def test_asyncio_streams_share_the_epoll_with_rsp_watchers(loop: RspEventLoop) -> None:
    """An asyncio server and client (the selector's descriptors) work beside a native watcher."""
    ours, peer = nonblocking_pair()
    recorder = Recorder()
    loop.rsp_poller.add_reader(ours.fileno(), recorder.watcher)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    async def scenario() -> bytes:
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"hello\n")
        peer.send(b"x")  # the native watcher's socket becomes readable meanwhile
        line = await reader.readline()
        writer.close()
        server.close()
        await server.wait_closed()
        return line

    try:
        assert loop.run_until_complete(asyncio.wait_for(scenario(), 5)) == b"hello\n"
        assert "read" in recorder.seen  # level-triggered: reported while the byte waits
        loop.rsp_poller.remove_reader(ours.fileno())
        assert loop.rsp_poller.interest(ours.fileno()) == 0
    finally:
        ours.close()
        peer.close()


def test_asyncio_cannot_register_a_descriptor_the_poller_owns(loop: RspEventLoop) -> None:
    ours, peer = nonblocking_pair()
    try:
        loop.rsp_poller.add_reader(ours.fileno(), Recorder().watcher)
        with pytest.raises(RuntimeError, match="registered with rsp's poller"):
            loop.add_reader(ours.fileno(), lambda: None)
        loop.rsp_poller.remove_reader(ours.fileno())
    finally:
        ours.close()
        peer.close()


def test_a_failing_watcher_reaches_the_exception_handler_and_the_loop_goes_on(loop: RspEventLoop) -> None:
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise ValueError("bug in a callback")

    ours, peer = nonblocking_pair()
    try:
        loop.rsp_poller.add_reader(ours.fileno(), CallbackWatcher(broken))
        peer.send(b"x")
        run_briefly(loop, 0.02)
        assert calls
        errors = loop.errors  # type: ignore[attr-defined]
        assert errors and isinstance(errors[0]["exception"], ValueError)
        assert loop.run_until_complete(asyncio.sleep(0, "still running")) == "still running"
        loop.rsp_poller.remove_reader(ours.fileno())
    finally:
        ours.close()
        peer.close()


def test_an_edge_is_reported_once_until_the_state_changes(loop: RspEventLoop) -> None:
    ours, peer = nonblocking_pair()
    recorder = Recorder()
    try:
        loop.rsp_poller.watch(ours.fileno(), recorder.watcher)
        assert loop.rsp_poller.interest(ours.fileno()) == EDGE_EVENTS
        peer.send(b"abc")
        run_briefly(loop, 0.02)
        reads = [e for e in recorder.edges if e & select.EPOLLIN]
        assert len(reads) == 1  # unread data is not reported again (level-triggered would spin)
        peer.send(b"def")
        run_briefly(loop, 0.02)
        assert len([e for e in recorder.edges if e & select.EPOLLIN]) == 2
        peer.shutdown(socket.SHUT_WR)
        run_briefly(loop, 0.02)
        assert recorder.edges[-1] & select.EPOLLRDHUP
        loop.rsp_poller.forget(ours.fileno())
        assert loop.rsp_poller.interest(ours.fileno()) == 0
    finally:
        ours.close()
        peer.close()


def test_a_stale_event_never_reaches_the_new_owner_of_a_reused_descriptor(loop: RspEventLoop) -> None:
    """Two sockets ready in one batch; the first callback closes the second and a new socket takes its
    descriptor number: the batch's event for the old socket must not be delivered to the new one."""
    poller: Poller = loop.rsp_poller
    a, a_peer = nonblocking_pair()
    b, b_peer = nonblocking_pair()
    replacement: list[socket.socket] = []
    reused: list[bool] = []
    newcomer = Recorder()

    def close_b_and_reuse_its_number(events: int) -> None:
        if replacement or not events & select.EPOLLIN:
            return  # only on a's data edge (the first edges only say writable)
        number = b.fileno()
        poller.forget(number)
        b.close()
        new, new_peer = nonblocking_pair()
        if new.fileno() != number:
            # Give the new socket b's old number for sure (the lowest free descriptor was another one).
            os.dup2(new.fileno(), number)
            new.close()
            new = socket.socket(fileno=number)
        replacement.extend((new, new_peer))
        reused.append(new.fileno() == number)
        poller.watch(new.fileno(), newcomer.watcher)

    try:
        poller.watch(a.fileno(), CallbackWatcher(edge=close_b_and_reuse_its_number))
        original = Recorder()
        poller.watch(b.fileno(), original.watcher)
        run_briefly(loop, 0.01)  # the first edges (writable) are out of the way
        a_peer.send(b"1")
        b_peer.send(b"2")
        run_briefly(loop, 0.02)
        assert reused == [True], loop.errors  # type: ignore[attr-defined]  # the closer ran without error
        # b's data edge was in the batch after a's (b was ready before the poll) and was never delivered.
        assert all(not e & select.EPOLLIN for e in original.edges)
        # The newcomer may see its own first edge (writable), never the old socket's data edge.
        assert all(not e & select.EPOLLIN for e in newcomer.edges)
    finally:
        for s in (a, a_peer, b, b_peer, *replacement):
            s.close()


class Logged(asyncio.Protocol):
    """Writes each read into a log shared with other streams and the loop's iteration ticks."""

    def __init__(self, name: str, log: list[tuple[str, int]], iteration: list[int]) -> None:
        self.name = name
        self.log = log
        self.iteration = iteration
        self.received = 0
        self.eof = False

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        self.log.append((self.name, self.iteration[0]))

    def eof_received(self) -> bool:
        self.eof = True
        return True


# Linux's SO_SNDBUFFORCE (asm-generic/socket.h; the socket module does not export it): a send buffer above
# net.core.wmem_max, for a process with CAP_NET_ADMIN.
SO_SNDBUFFORCE = 32


def queue_and_shut(peer: socket.socket, size: int) -> None:
    """Put `size` bytes in the socket pair's queue now (no sender runs later: nothing can raise a new edge),
    then shut the sending side. A Unix socket pair queues up to the sender's buffer size."""
    try:
        peer.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 2 * size)
    except PermissionError:
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2 * size)
    if peer.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < 2 * size and os.geteuid() != 0:
        pytest.skip(f"needs root (SO_SNDBUFFORCE) or net.core.wmem_max of at least {2 * size} bytes to queue "
                    f"{size} bytes at once")
    data = memoryview(b"x" * size)
    sent = 0
    while sent < size:
        try:
            sent += peer.send(data[sent:])
        except BlockingIOError:
            raise AssertionError(f"the socket pair queued only {sent} of the {size} bytes") from None
    peer.shutdown(socket.SHUT_WR)


def runs(log: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Consecutive reads of one stream, as (stream, count)."""
    out: list[tuple[str, int]] = []
    for name, _ in log:
        if out and out[-1][0] == name:
            out[-1] = (name, out[-1][1] + 1)
        else:
            out.append((name, 1))
    return out


def test_a_stream_reads_past_the_per_edge_limit_by_deferring(loop: RspEventLoop) -> None:
    """Two streams, each with more than twice MAX_EDGE_READS full reads queued behind its one edge (all the
    data is queued and the senders shut before the streams start, so no later edge can come): each reads at
    most MAX_EDGE_READS at a time, the other stream reads in between, and the rest of each is read in later
    loop iterations, from the deferred list alone."""
    total = (2 * MAX_EDGE_READS + 8) * READ_SIZE
    log: list[tuple[str, int]] = []
    iteration = [0]
    pairs = [nonblocking_pair(), nonblocking_pair()]
    protocols = [Logged("a", log, iteration), Logged("b", log, iteration)]
    streams: list[SocketStream] = []

    def tick() -> None:  # the ready queue runs once per iteration, after the poll and the deferred reads
        iteration[0] += 1
        if not all(p.eof for p in protocols):
            loop.call_soon(tick)

    try:
        for (_, peer) in pairs:
            queue_and_shut(peer, total)
        for (ours, _), protocol in zip(pairs, protocols, strict=True):
            streams.append(SocketStream(loop, ours, protocol))
        for stream in streams:
            stream.start()
        loop.call_soon(tick)

        async def until_done() -> None:
            while not all(p.eof for p in protocols):
                await asyncio.sleep(0.001)

        loop.run_until_complete(asyncio.wait_for(until_done(), 10))
        assert [p.received for p in protocols] == [total, total]
        assert all(count <= MAX_EDGE_READS for _, count in runs(log)), runs(log)
        for name in ("a", "b"):
            reads = [when for who, when in log if who == name]
            assert len(reads) > 2 * MAX_EDGE_READS  # full reads of READ_SIZE
            assert len(set(reads)) >= 2, log  # read in more than one iteration with no edge after the first
    finally:
        for stream in streams:
            stream.abort()
        run_briefly(loop, 0.01)
        for pair in pairs:
            for sock in pair:
                sock.close()
